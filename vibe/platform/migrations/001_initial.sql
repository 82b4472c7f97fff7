-- The system of record. Every table is created in the schema named by
-- VIBE_DB_SCHEMA (the connection's search_path), so tests can isolate themselves.

-- The problem bank, loaded from vibe/services/scoring/problems by the scoring service.
CREATE TABLE problems (
    problem_id          TEXT PRIMARY KEY,
    title               TEXT NOT NULL,
    difficulty          TEXT NOT NULL,
    spec                JSONB NOT NULL,   -- statement, formats, limits, starter code, hints, checker
    reference_solution  TEXT NOT NULL,    -- never returned to candidates
    content_hash        TEXT NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE problem_tests (
    problem_id  TEXT NOT NULL REFERENCES problems (problem_id) ON DELETE CASCADE,
    test_id     TEXT NOT NULL,
    hidden      BOOLEAN NOT NULL,
    large       BOOLEAN NOT NULL DEFAULT false,  -- a scaling test: weighted more for performance
    input       BYTEA NOT NULL,
    expected    BYTEA NOT NULL,
    PRIMARY KEY (problem_id, test_id)
);

CREATE TABLE sessions (
    session_id    TEXT PRIMARY KEY,
    candidate_id  TEXT NOT NULL,
    problem_id    TEXT NOT NULL REFERENCES problems (problem_id),
    token_hash    BYTEA NOT NULL,         -- sha256 of the session token
    status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'submitted', 'graded')),
    turn_count    INTEGER NOT NULL DEFAULT 0 CHECK (turn_count >= 0),  -- completed turns
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    submitted_at  TIMESTAMPTZ,
    graded_at     TIMESTAMPTZ
);

-- Every message carries its turn, assigned once when the turn is stored
-- (the prototype lost turn numbers in serialisation; docs/DESIGN.md §2, item 1).
CREATE TABLE messages (
    session_id          TEXT NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
    turn                INTEGER NOT NULL CHECK (turn >= 1),
    role                TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content             TEXT NOT NULL,
    guardrail_violation TEXT,             -- user messages: NULL when the message was fine
    guardrail_reason    TEXT,
    provider            TEXT,             -- assistant messages: which LLM wrote it
    interrupted         BOOLEAN NOT NULL DEFAULT false,  -- the candidate left mid-reply
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, turn, role)
);

-- Exactly the design's table (shared/seeds/004): one TURN_EVAL row per turn,
-- one HOLISTIC_FLOW row per session; saving again updates.
CREATE TABLE prompt_evaluations (
    id               BIGSERIAL PRIMARY KEY,
    session_id       TEXT NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
    turn             INTEGER,
    evaluation_type  TEXT NOT NULL CHECK (evaluation_type IN ('TURN_EVAL', 'HOLISTIC_FLOW')),
    details          JSONB NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((evaluation_type = 'TURN_EVAL') = (turn IS NOT NULL))
);
CREATE UNIQUE INDEX prompt_evaluations_turn_eval
    ON prompt_evaluations (session_id, turn, evaluation_type) WHERE evaluation_type = 'TURN_EVAL';
CREATE UNIQUE INDEX prompt_evaluations_holistic_flow
    ON prompt_evaluations (session_id, evaluation_type) WHERE evaluation_type = 'HOLISTIC_FLOW';

CREATE TABLE submissions (
    session_id    TEXT PRIMARY KEY REFERENCES sessions (session_id) ON DELETE CASCADE,
    language      TEXT NOT NULL,
    code          TEXT NOT NULL,
    submitted_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    graded_at     TIMESTAMPTZ,
    report        JSONB                  -- the report as shown, stored before it is shown
);

CREATE TABLE test_results (
    session_id      TEXT NOT NULL REFERENCES submissions (session_id) ON DELETE CASCADE,
    test_id         TEXT NOT NULL,
    hidden          BOOLEAN NOT NULL,
    verdict         TEXT NOT NULL,
    cpu_ms          DOUBLE PRECISION NOT NULL,
    wall_ms         DOUBLE PRECISION NOT NULL,
    peak_memory_kb  BIGINT NOT NULL,
    exit_code       INTEGER,
    detail          TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (session_id, test_id)
);

CREATE TABLE final_scores (
    session_id            TEXT PRIMARY KEY REFERENCES sessions (session_id) ON DELETE CASCADE,
    holistic_flow_score   DOUBLE PRECISION NOT NULL,
    aggregate_turn_score  DOUBLE PRECISION NOT NULL,
    prompt_score          DOUBLE PRECISION NOT NULL,
    performance_score     DOUBLE PRECISION NOT NULL,
    correctness_score     DOUBLE PRECISION NOT NULL,
    total_score           DOUBLE PRECISION NOT NULL,
    grade                 TEXT NOT NULL,
    formula               TEXT NOT NULL,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now()
);
