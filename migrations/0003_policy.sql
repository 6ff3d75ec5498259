-- Results a clinician released from a hold, per patient and gateway resource (Type/id).
CREATE TABLE hold_releases (
    patient_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    released_by TEXT NOT NULL,
    released_at TEXT NOT NULL,
    PRIMARY KEY (patient_id, resource)
);

-- A patient's own preference: results with these labels wait for clinician review.
CREATE TABLE hold_preferences (
    patient_id TEXT NOT NULL,
    label TEXT NOT NULL,
    set_at TEXT NOT NULL,
    PRIMARY KEY (patient_id, label)
);

-- Consents on file that let a partner receive a patient's data for given purposes,
-- including 42 CFR Part 2 data when part2 = 1.
CREATE TABLE consents (
    id TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL,
    partner TEXT NOT NULL,
    purposes TEXT NOT NULL,
    part2 INTEGER NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX consents_patient ON consents (patient_id);
