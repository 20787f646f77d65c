-- Work is claimed with a lease before it is attempted: until `lease_until` no other worker
-- (of this node or another) takes it; a worker that dies lets the lease run out and the
-- work is taken again, and a node that starts again ends its own earlier claims at once
-- (`lease_owner`: its node id). `lease_token` counts the claims, so that a worker whose
-- lease ran out cannot record a failure over the attempt of the worker that took the work
-- after it.
ALTER TABLE work ADD COLUMN lease_until TEXT;
ALTER TABLE work ADD COLUMN lease_owner TEXT;
ALTER TABLE work ADD COLUMN lease_token INTEGER NOT NULL DEFAULT 0;
