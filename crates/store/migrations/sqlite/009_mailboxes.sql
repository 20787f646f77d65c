-- /out files belong to a mailbox rather than to a user: today one per gateway user
-- (`user:<username>`), later also one per company (the legacy profile). A transaction records
-- the mailbox it reports to, and every step's files go there.
CREATE TABLE mailboxes (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL UNIQUE
);
INSERT INTO mailboxes (owner) SELECT 'user:' || username FROM users ORDER BY id;

ALTER TABLE transactions ADD COLUMN mailbox_id INTEGER REFERENCES mailboxes (id);
UPDATE transactions SET mailbox_id = (
    SELECT mailboxes.id FROM mailboxes JOIN users ON mailboxes.owner = 'user:' || users.username
    WHERE users.id = transactions.user_id
);

CREATE TABLE out_files_in_mailboxes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id),
    name       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    content    BLOB,
    blob_key   TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (mailbox_id, name),
    CHECK ((content IS NULL) <> (blob_key IS NULL))
);
INSERT INTO out_files_in_mailboxes (id, mailbox_id, name, size, content, blob_key, created_at)
SELECT out_files.id, mailboxes.id, out_files.name, out_files.size, out_files.content,
       out_files.blob_key, out_files.created_at
FROM out_files
JOIN users ON users.id = out_files.user_id
JOIN mailboxes ON mailboxes.owner = 'user:' || users.username
ORDER BY out_files.id;
DROP TABLE out_files;
ALTER TABLE out_files_in_mailboxes RENAME TO out_files;
CREATE INDEX out_files_created ON out_files (created_at);
-- As before, keyed by mailbox: a listing reads this index alone, in the order files came.
CREATE INDEX out_files_listing ON out_files (mailbox_id, id, name, size, created_at);
