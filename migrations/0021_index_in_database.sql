-- The patient index in the database (issue 14 part 1). Links stay in patient_links and
-- patient_id_aliases (0001); these tables hold what matching needs, so no replica keeps
-- the population in memory.

-- Each source patient record the index has read: the demographics the matching rule
-- compares (normalized, as JSON), a digest to skip unchanged re-reads, and, for a record
-- its source merged into another (Patient.link replaced-by), that record's id.
CREATE TABLE index_records (
    source TEXT NOT NULL,
    source_patient_id TEXT NOT NULL,
    demographics TEXT NOT NULL,
    digest TEXT NOT NULL,
    replaced_by TEXT,
    read_at TEXT NOT NULL,
    PRIMARY KEY (source, source_patient_id)
);

-- Blocking keys (hashed): only records sharing one are compared. One per identifier
-- (system|value), per identifier value alone (enrollment), and per birth date together
-- with a phone, an address or a family+given name pair.
CREATE TABLE index_keys (
    blocking_key TEXT NOT NULL,
    source TEXT NOT NULL,
    source_patient_id TEXT NOT NULL,
    PRIMARY KEY (blocking_key, source, source_patient_id)
);
CREATE INDEX index_keys_by_record ON index_keys (source, source_patient_id);

-- Pairs that might be one person: listed for a human, never linked. `a` sorts before `b`.
CREATE TABLE index_possible_matches (
    a_source TEXT NOT NULL,
    a_id TEXT NOT NULL,
    b_source TEXT NOT NULL,
    b_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (a_source, a_id, b_source, b_id)
);
CREATE INDEX index_possible_matches_b ON index_possible_matches (b_source, b_id);

-- Per source: `listed` (read incrementally from `changed_since`) or `lookup` (refuses a
-- listing; looked up on demand).
CREATE TABLE index_sources (
    source TEXT PRIMARY KEY,
    mode TEXT NOT NULL,
    changed_since TEXT,
    refreshed_at TEXT
);

-- On-demand lookups done in a lookup-only source: for which gateway patient or which
-- identifier value (hashed), and when.
CREATE TABLE index_lookups (
    source TEXT NOT NULL,
    subject TEXT NOT NULL,
    looked_at TEXT NOT NULL,
    PRIMARY KEY (source, subject)
);
