-- Bulk Data $export: jobs, their work units (a batch of patients each) and the supporting
-- resources (Practitioner, Organization …) already written by a unit of a job, so a job's
-- output holds each of them once. Workers of every gateway replica claim units from here:
-- PostgreSQL with SELECT … FOR UPDATE SKIP LOCKED, SQLite with one atomic UPDATE; a claim
-- is a lease (owner + expiry) renewed while the unit runs.
CREATE TABLE export_jobs (
    id TEXT PRIMARY KEY,
    -- who started it (the caller's actor id); only they may see it, poll it, delete it
    client TEXT NOT NULL,
    -- JSON: the caller's Access (role, purpose, app scopes, patient scope, groups), so a
    -- worker in any replica exports under exactly the same policy view
    access TEXT NOT NULL,
    -- the kick-off request URL, and its parsed parameters (JSON)
    request TEXT NOT NULL,
    params TEXT NOT NULL,
    -- system | group | patient
    level TEXT NOT NULL,
    group_id TEXT,
    -- queued | running | completed | failed
    state TEXT NOT NULL,
    transaction_time TEXT NOT NULL,
    created_at TEXT NOT NULL,
    completed_at TEXT,
    -- when the job and its files are removed
    expires_at TEXT,
    total_patients BIGINT NOT NULL,
    error TEXT
);
CREATE INDEX export_jobs_client ON export_jobs (client, state);

CREATE TABLE export_units (
    -- {job id}-{seq}
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    -- JSON array of gateway patient ids
    patients TEXT NOT NULL,
    patient_count BIGINT NOT NULL,
    -- ready | claimed | done
    state TEXT NOT NULL,
    -- the job's creation time, so older jobs are served first
    queued_at TEXT NOT NULL,
    owner TEXT,
    lease_until TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    -- which worker (replica/worker) finished it
    done_by TEXT,
    -- JSON: [{"type", "file", "count"}] of the files it wrote
    outputs TEXT
);
CREATE INDEX export_units_job ON export_units (job_id, seq);
CREATE INDEX export_units_queue ON export_units (state, queued_at);

CREATE TABLE export_shared (
    job_id TEXT NOT NULL,
    -- gateway Type/id of a supporting resource
    resource_key TEXT NOT NULL,
    -- the unit that writes it
    unit_seq BIGINT NOT NULL,
    PRIMARY KEY (job_id, resource_key)
);
