-- The patient index: which source patient records are one person, under which stable
-- gateway patient id, and why they were linked.
CREATE TABLE patient_links (
    source TEXT NOT NULL,
    source_patient_id TEXT NOT NULL,
    gateway_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    linked_at TEXT NOT NULL,
    PRIMARY KEY (source, source_patient_id)
);
CREATE INDEX patient_links_gateway_id ON patient_links (gateway_id);

-- Gateway ids retired when two linked groups merged: the old id keeps resolving.
CREATE TABLE patient_id_aliases (
    old_id TEXT PRIMARY KEY,
    gateway_id TEXT NOT NULL
);
