-- Requests to amend the record (issue 16 part 2, 45 CFR 164.526). A request names one item
-- of the record (gateway Type/id, with a fingerprint of the item as the requester saw it)
-- or none (free text). HIM accept or deny it with a reason by `due_at` (60 days after
-- receipt; one 30-day extension with a written reason); after a denial the requester may
-- file a statement of disagreement. Source data is never edited: an accepted correction is
-- shown beside its item while the item's fingerprint is unchanged.
CREATE TABLE correction_requests (
    id TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL,
    requester TEXT NOT NULL,
    relationship TEXT NOT NULL,
    item TEXT,
    item_fingerprint TEXT,
    requested_change TEXT NOT NULL,
    status TEXT NOT NULL,
    received_at TEXT NOT NULL,
    due_at TEXT NOT NULL,
    extension_reason TEXT,
    decided_at TEXT,
    decided_by TEXT,
    decision_reason TEXT,
    disagreement TEXT,
    disagreement_at TEXT
);
CREATE INDEX correction_requests_patient ON correction_requests (patient_id, received_at);
CREATE INDEX correction_requests_queue ON correction_requests (status, due_at);
