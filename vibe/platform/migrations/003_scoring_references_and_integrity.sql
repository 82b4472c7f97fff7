-- Scoring for real (issue 6): per-language reference solutions, the scaling-input generator and
-- the custom checker of each problem (never returned to candidates), and what the judge found
-- beyond per-test verdicts (complexity estimate and integrity check) for each submission.
ALTER TABLE problems
    ADD COLUMN reference_solutions JSONB NOT NULL DEFAULT '{}'::jsonb,  -- language -> source
    ADD COLUMN scale_generator     TEXT  NOT NULL DEFAULT '',           -- `python scale.py N`
    ADD COLUMN checker_source      TEXT  NOT NULL DEFAULT '';           -- custom checker, if any

CREATE TABLE code_checks (
    session_id         TEXT PRIMARY KEY REFERENCES submissions (session_id) ON DELETE CASCADE,
    language           TEXT NOT NULL,
    isolation          TEXT NOT NULL,               -- 'bubblewrap' or 'rlimits'
    time_limit_ms      INTEGER NOT NULL,            -- derived from the reference
    complexity         JSONB NOT NULL,              -- estimated class, exponent, points
    integrity          JSONB NOT NULL,              -- score, flagged, matching fragments
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
