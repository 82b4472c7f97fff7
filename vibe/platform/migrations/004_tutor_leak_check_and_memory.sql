-- The tutor's leak check (issue 4): each assistant message records whether the reply was
-- cut because it reproduced a reference solution, and the highest share of one
-- reference's fingerprints it reached (NULL: not checked, e.g. stored before this
-- migration or interrupted). Conversation summaries are LLM requests of their own.
ALTER TABLE messages
    ADD COLUMN leak_cut   BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN leak_share REAL CHECK (leak_share IS NULL OR (leak_share >= 0 AND leak_share <= 1));

ALTER TABLE llm_usage DROP CONSTRAINT llm_usage_purpose_check;
ALTER TABLE llm_usage ADD CONSTRAINT llm_usage_purpose_check
    CHECK (purpose IN ('guardrail', 'tutor_reply', 'turn_evaluation', 'holistic_evaluation', 'conversation_summary'));
