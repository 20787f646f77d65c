-- The fingerprint of each key the store's data depends on (the gateway password key), as
-- recorded by the first node that used the store: a node with another key refuses to start.
CREATE TABLE key_fingerprints (
    purpose     TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    recorded_at TEXT COLLATE "C" NOT NULL
);
