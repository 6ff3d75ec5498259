-- The access log: one row per data access, chained (each row holds the hash of the one
-- before) so that changing or removing a row is detectable (`portico audit verify`).
CREATE TABLE audit_events (
    seq BIGINT PRIMARY KEY,
    recorded TEXT NOT NULL,
    -- who: the actor (app/account, proxy, partner, staff, dev token) and their role
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    -- whose record (gateway patient id), when one was addressed
    patient_id TEXT,
    -- what: read, search, everything, explain, release …; and the request path (ids only)
    action TEXT NOT NULL,
    what TEXT NOT NULL,
    purpose TEXT,
    -- success, denied, not-found, error
    outcome TEXT NOT NULL,
    source_ip TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_events_patient ON audit_events (patient_id);
