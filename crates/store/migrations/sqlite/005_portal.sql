-- The Certificate Portal: each person's portal account, their browser sessions, and the
-- registration jobs they start. Keyed by username, not user id: a portal account exists
-- before its gateway user (the first login comes before the first registration).

-- password_hash NULL: the first login, with the username as the password; a change is forced.
CREATE TABLE portal_accounts (
    username      TEXT PRIMARY KEY,
    password_hash TEXT,
    se_number     TEXT,
    email         TEXT,
    interfaces    TEXT NOT NULL DEFAULT 'ftps',
    updated_at    TEXT NOT NULL
);

-- Only a hash of the cookie's token is kept; a session is bound to one certificate.
CREATE TABLE portal_sessions (
    token_hash           TEXT PRIMARY KEY,
    username             TEXT NOT NULL,
    cert_fingerprint     TEXT NOT NULL,
    csrf_token           TEXT NOT NULL,
    must_change_password INTEGER NOT NULL,
    created_at           TEXT NOT NULL,
    last_seen_at         TEXT NOT NULL
);

CREATE INDEX portal_sessions_last_seen ON portal_sessions (last_seen_at);

CREATE TABLE registration_jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    username         TEXT NOT NULL,
    cert_fingerprint TEXT NOT NULL,
    cert_der         BLOB NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('queued', 'done', 'failed')),
    requested_at     TEXT NOT NULL,
    finished_at      TEXT,
    error            TEXT
);

-- Clicking "Register" twice queues one job.
CREATE UNIQUE INDEX registration_jobs_one_queued
    ON registration_jobs (cert_fingerprint) WHERE state = 'queued';
CREATE INDEX registration_jobs_by_certificate ON registration_jobs (cert_fingerprint, id);

-- The gateway password sealed (AES-256-GCM under a key derived from the password key), so
-- the portal can show it again; FTPS logins check password_hash only.
ALTER TABLE users ADD COLUMN password_sealed TEXT;
