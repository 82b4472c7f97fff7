-- Nothing doubled, nothing stale (issue 14).
--
-- Idempotency: a chat's user message keeps the key its request came with (the client's
-- Idempotency-Key, or one the gateway drew when the client sent none); a retry with the
-- same key finds its turn instead of storing a second one. Unique per session, so even
-- two attempts racing past every lease cannot both store.
ALTER TABLE messages ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX messages_idempotency_key
    ON messages (session_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
ALTER TABLE submissions ADD COLUMN idempotency_key TEXT;

-- Fencing tokens (vibe/platform/leases.py): the highest token of the lease whose holder
-- last wrote the row. A write carrying a lower token comes from a holder whose lease
-- expired and was taken over: it is refused, so it never overwrites a newer result.
ALTER TABLE sessions ADD COLUMN chat_fence BIGINT NOT NULL DEFAULT 0;
ALTER TABLE submissions ADD COLUMN fence BIGINT NOT NULL DEFAULT 0;
ALTER TABLE prompt_evaluations ADD COLUMN fence BIGINT NOT NULL DEFAULT 0;
