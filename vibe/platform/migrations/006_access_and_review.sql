-- Who may call what (issue 13): backend API keys, the key behind each session, the
-- release of a report to its candidate, and the outbox of graded-session webhooks.

-- Backend API keys (vibe/platform/api_keys.py). The secret is stored only as its SHA-256;
-- a revoked key stays, so that what it did can still be traced to it.
CREATE TABLE api_keys (
    key_id       TEXT PRIMARY KEY,
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    secret_hash  BYTEA NOT NULL CHECK (length(secret_hash) = 32),
    scopes       TEXT[] NOT NULL CHECK (cardinality(scopes) >= 1
                                        AND scopes <@ ARRAY['sessions:create', 'reports:read', 'admin']),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at   TIMESTAMPTZ
);

-- The key that created the session: its limits (sessions per hour, concurrent streams)
-- count against it. No foreign key: keys from VIBE_API_KEYS are not rows. NULL for
-- sessions created before keys existed.
ALTER TABLE sessions ADD COLUMN api_key_id TEXT;
-- The reviewer API lists sessions newest first, by a cursor on (created_at, session_id).
CREATE INDEX sessions_by_created ON sessions (created_at DESC, session_id DESC);
CREATE INDEX sessions_by_candidate ON sessions (candidate_id, created_at DESC);

-- When a reviewer released the full report to the candidate (VIBE_CANDIDATE_REPORT).
ALTER TABLE submissions ADD COLUMN released_at TIMESTAMPTZ;

-- Webhook deliveries of "session graded", written in the transaction that stores the
-- report, delivered by a background task of the gateway, retried with backoff until a
-- 2xx or `attempts` reaches the limit (then gave_up_at is set).
CREATE TABLE webhook_outbox (
    id               BIGSERIAL PRIMARY KEY,
    event_id         TEXT NOT NULL,
    url              TEXT NOT NULL,
    body             TEXT NOT NULL,            -- the exact bytes signed and sent
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at     TIMESTAMPTZ,
    gave_up_at       TIMESTAMPTZ,
    last_error       TEXT NOT NULL DEFAULT '',
    UNIQUE (event_id, url)
);
CREATE INDEX webhook_outbox_pending ON webhook_outbox (next_attempt_at)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;
