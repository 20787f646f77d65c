-- Which node leads each job that one node at a time should run (the retention sweeps, role
-- replication), and until when; past that, another node may take the lead.
CREATE TABLE job_leads (
    job        TEXT PRIMARY KEY,
    node       TEXT NOT NULL,
    lead_until TEXT COLLATE "C" NOT NULL
);
