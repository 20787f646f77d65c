-- Unrelated outbound files a backend posted for a user: their id numbers the status file
-- (status_<service>_<id>_3.xml), and the unique key makes posting the same file twice one post.
CREATE TABLE outbound_files (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    service    TEXT NOT NULL,
    name       TEXT NOT NULL,
    -- What was posted: the same name again is the same post only with the same content.
    sha256     TEXT NOT NULL,
    skat_transaction_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (user_id, service, name)
);
