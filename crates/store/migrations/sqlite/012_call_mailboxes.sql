-- Every user gets a mailbox for the answers to their web-service (EMCS) calls.
INSERT INTO mailboxes (owner)
SELECT 'calls:' || username FROM users ORDER BY id
ON CONFLICT (owner) DO NOTHING;
