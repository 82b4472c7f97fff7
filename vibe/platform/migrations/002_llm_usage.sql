-- LLM usage accounting: one row per request sent to an LLM (a retry is another
-- request; both spend quota), stored with the session and turn it was made for, so the
-- report can show tokens and calls per turn and per submit (issue 3).
CREATE TABLE llm_usage (
    id               BIGSERIAL PRIMARY KEY,
    session_id       TEXT NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
    turn             INTEGER CHECK (turn >= 1),  -- NULL for the holistic evaluation
    -- When it was spent: answering the chat, the background evaluation, or the submit
    -- (the guard evaluating a missing turn, the holistic evaluation).
    phase            TEXT NOT NULL CHECK (phase IN ('chat', 'background', 'submit')),
    purpose          TEXT NOT NULL
                     CHECK (purpose IN ('guardrail', 'tutor_reply', 'turn_evaluation', 'holistic_evaluation')),
    provider         TEXT NOT NULL,
    model            TEXT NOT NULL,
    prompt_tokens    INTEGER NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    output_tokens    INTEGER NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    thinking_tokens  INTEGER NOT NULL DEFAULT 0 CHECK (thinking_tokens >= 0),
    ok               BOOLEAN NOT NULL,  -- false: failed (429, 5xx, broken stream, unusable output)
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX llm_usage_by_session ON llm_usage (session_id, turn);
