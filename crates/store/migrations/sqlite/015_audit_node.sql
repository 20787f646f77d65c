-- The node that wrote each audit event (several nodes may share one store).
ALTER TABLE audit_log ADD COLUMN node TEXT;
