-- Users, their certificates, their roles, and the audit log.
-- Times are ISO-8601 UTC text with microseconds, 'YYYY-MM-DDTHH:MM:SS.ffffffZ'
-- (fixed width, so text order is time order).

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    cvr           TEXT NOT NULL,
    account       TEXT NOT NULL,
    kind          TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'active', 'suspended', 'deleted')),
    password_hash TEXT NOT NULL,
    activate_at   TEXT,
    created_at    TEXT NOT NULL
);

-- Every certificate ever registered. A renewal sets replaced_at on the previous one, so an
-- old certificate can be told apart from one that was never registered.
CREATE TABLE certificates (
    fingerprint   TEXT PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id),
    subject       TEXT NOT NULL,
    serial_hex    TEXT NOT NULL,
    not_after     TEXT NOT NULL,
    der           BLOB NOT NULL,
    registered_at TEXT NOT NULL,
    replaced_at   TEXT
);

CREATE UNIQUE INDEX certificates_one_current_per_user
    ON certificates (user_id) WHERE replaced_at IS NULL;

-- A role is held while any source grants it: 'local' (an operator) or 'replicated'
-- (the central security system). Each source grants and revokes only its own rows.
CREATE TABLE roles (
    user_id    INTEGER NOT NULL REFERENCES users (id),
    service    TEXT NOT NULL,
    source     TEXT NOT NULL CHECK (source IN ('local', 'replicated')),
    granted_at TEXT NOT NULL,
    UNIQUE (user_id, service, source)
);

-- Usernames are copied, not referenced: the trail must outlive and predate any user row.
CREATE TABLE audit_log (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    at               TEXT NOT NULL,
    action           TEXT NOT NULL,
    outcome          TEXT NOT NULL CHECK (outcome IN ('allowed', 'refused', 'info')),
    reason           TEXT,
    username         TEXT,
    peer_ip          TEXT,
    cert_fingerprint TEXT,
    detail           TEXT
);

CREATE INDEX audit_log_username ON audit_log (username, id);
CREATE INDEX audit_log_action ON audit_log (action, id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
