-- The legacy "Secure FTP" profile shows every certificate of a company one shared `/out`:
-- each company with a user has a mailbox `company:<cvr>`, made with its first user.
INSERT INTO mailboxes (owner)
SELECT DISTINCT 'company:' || cvr FROM users ORDER BY 1
ON CONFLICT (owner) DO NOTHING;
