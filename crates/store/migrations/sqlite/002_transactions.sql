-- Transactions, the work still to do for them, their status history, and each user's /out.

-- One row per accepted upload, kept forever: the unique index is what makes a
-- FTPTransactionID unusable a second time by the same user, in any service.
CREATE TABLE transactions (
    id                  INTEGER PRIMARY KEY,
    skat_transaction_id TEXT NOT NULL UNIQUE,
    user_id             INTEGER NOT NULL REFERENCES users (id),
    service             TEXT NOT NULL,
    ftp_transaction_id  TEXT NOT NULL,
    upload_path         TEXT NOT NULL,
    size                INTEGER NOT NULL,
    sha256              TEXT NOT NULL,
    transfer_type       TEXT NOT NULL CHECK (transfer_type IN ('A', 'I')),
    -- NULL once the retention has removed the uploaded body.
    blob_key            TEXT,
    state               TEXT NOT NULL
        CHECK (state IN ('received', 'delivered', 'accepted', 'answered', 'rejected')),
    received_at         TEXT NOT NULL,
    UNIQUE (user_id, ftp_transaction_id)
);

-- The outbox: written in the same commit as its transaction, removed in the same commit as
-- the step that finishes the work. Whatever is here after a crash is resumed.
CREATE TABLE work (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_id INTEGER NOT NULL UNIQUE REFERENCES transactions (id),
    due_at         TEXT NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL
);

CREATE INDEX work_due ON work (due_at, id);

CREATE TABLE status_history (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_id INTEGER NOT NULL REFERENCES transactions (id),
    status_code    TEXT NOT NULL CHECK (status_code IN ('0', '1', '2', '3')),
    at             TEXT NOT NULL,
    UNIQUE (transaction_id, status_code)
);

-- A user's /out. Small files (status files, short responses) live in the row, so that a
-- status file appears in the same commit as the state change it reports; large ones are
-- blobs. Exactly one of content and blob_key is set.
CREATE TABLE out_files (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    name       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    content    BLOB,
    blob_key   TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (user_id, name),
    CHECK ((content IS NULL) <> (blob_key IS NULL))
);

CREATE INDEX out_files_created ON out_files (created_at);
