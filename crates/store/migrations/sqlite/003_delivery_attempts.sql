-- Failed delivery attempts: what went wrong last and when, for operators and backoff.
ALTER TABLE work ADD COLUMN last_error TEXT;
ALTER TABLE work ADD COLUMN last_attempt_at TEXT;

-- Delivery is FIFO per (user, service): finding whether an earlier upload still waits.
CREATE INDEX transactions_user_service ON transactions (user_id, service, state);

-- Work that delivers an already delivered transaction again (an operator's replay): the
-- backend gets the file once more, nothing else changes.
ALTER TABLE work ADD COLUMN replay INTEGER NOT NULL DEFAULT 0;
