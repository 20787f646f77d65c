-- A personal (PID) certificate's user belongs to no company: `users.cvr` becomes nullable.
-- SQLite cannot relax a column, so the table is rebuilt (with foreign keys off, see the
-- migration runner) and keeps its ids, which other tables refer to.
CREATE TABLE users_rebuilt (
    id              INTEGER PRIMARY KEY,
    username        TEXT NOT NULL UNIQUE,
    cvr             TEXT,
    account         TEXT NOT NULL,
    kind            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'active', 'suspended', 'deleted')),
    password_hash   TEXT NOT NULL,
    activate_at     TEXT,
    created_at      TEXT NOT NULL,
    password_sealed TEXT,
    CHECK (cvr IS NOT NULL OR kind = 'personal')
);

INSERT INTO users_rebuilt
    (id, username, cvr, account, kind, state, password_hash, activate_at, created_at,
     password_sealed)
SELECT id, username, cvr, account, kind, state, password_hash, activate_at, created_at,
       password_sealed
FROM users;

DROP TABLE users;
ALTER TABLE users_rebuilt RENAME TO users;
