-- Audit retention, the feed of changes that end live sessions, role history, and the
-- portal's one-time first passwords.

-- The audit log is append-only within its retention: rows at or after the cutoff cannot be
-- deleted, and the cutoff only moves forward (the retention sweep moves it, archives the
-- rows before it, then deletes them).
CREATE TABLE audit_retention (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    cutoff TEXT NOT NULL
);
INSERT INTO audit_retention (id, cutoff) VALUES (1, '0000-01-01T00:00:00.000000Z');

CREATE TRIGGER audit_retention_moves_forward BEFORE UPDATE ON audit_retention
WHEN NEW.cutoff < OLD.cutoff
BEGIN
    SELECT RAISE(ABORT, 'the audit retention cutoff only moves forward');
END;

-- Nor past now: events that have not happened yet cannot have outlived the retention.
CREATE TRIGGER audit_retention_not_ahead BEFORE UPDATE ON audit_retention
WHEN NEW.cutoff > strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
BEGIN
    SELECT RAISE(ABORT, 'the audit retention cutoff cannot pass the present');
END;

CREATE TRIGGER audit_retention_no_delete BEFORE DELETE ON audit_retention
BEGIN
    SELECT RAISE(ABORT, 'the audit retention cutoff cannot be deleted');
END;

DROP TRIGGER audit_log_no_delete;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN OLD.at >= (SELECT cutoff FROM audit_retention)
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only within its retention');
END;

CREATE INDEX audit_log_at ON audit_log (at);

-- Changes that may withdraw a live session's authorisation (a suspension, a deletion, a
-- replaced certificate, a changed interface choice), in commit order. Gateway processes
-- follow it to end the sessions concerned, whichever process made the change.
CREATE TABLE security_changes (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       TEXT NOT NULL,
    username TEXT NOT NULL,
    change   TEXT NOT NULL
);

-- When a user last stopped holding a role (no source grants it any more), so that a
-- backend may still answer within the retention period.
CREATE TABLE roles_ended (
    user_id  INTEGER NOT NULL REFERENCES users (id),
    service  TEXT NOT NULL,
    ended_at TEXT NOT NULL,
    PRIMARY KEY (user_id, service)
);

-- Roles that ended before this table existed: held at least until the user's last upload to
-- the service.
INSERT INTO roles_ended (user_id, service, ended_at)
SELECT user_id, service, MAX(received_at) FROM transactions
WHERE NOT EXISTS (
    SELECT 1 FROM roles WHERE roles.user_id = transactions.user_id
                          AND roles.service = transactions.service
)
GROUP BY user_id, service;

-- A one-time first portal password an operator handed out (the stricter first-login mode).
ALTER TABLE portal_accounts ADD COLUMN initial_code_hash TEXT;
ALTER TABLE portal_accounts ADD COLUMN initial_code_expires_at TEXT;

-- Whose upload each piece of work is, and its size, so that the bytes a user has waiting
-- (their quota) are summed from their own work alone. Replays count for nobody.
ALTER TABLE work ADD COLUMN user_id INTEGER REFERENCES users (id);
ALTER TABLE work ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
UPDATE work SET
    user_id = (SELECT user_id FROM transactions WHERE transactions.id = work.transaction_id),
    size = (SELECT size FROM transactions WHERE transactions.id = work.transaction_id)
WHERE replay = 0;
CREATE INDEX work_pending_by_user ON work (user_id, size) WHERE user_id IS NOT NULL;
