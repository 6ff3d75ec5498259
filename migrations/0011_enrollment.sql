-- Enrollment that can't be guessed (issue 12 part 1).

-- One-time activation codes issued by HIM for one patient record. Only the SHA-256 of the
-- code is kept; a code is spent by the UPDATE that sets used_at where it is still NULL.
CREATE TABLE activation_codes (
    code_hash TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    source_patient_id TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    -- wrong birth dates entered with this code; the code is void after a few
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    used_at TEXT,
    used_by TEXT
);

-- Attempts to enroll by demographics (MRN + birth date + last name), for the throttles per
-- target record and overall. One attempt may name several records (rows share attempt_id);
-- an MRN that names no record leaves one row with no record. A successful attempt's rows
-- are deleted.
CREATE TABLE enrollment_attempts (
    attempt_id TEXT NOT NULL,
    source TEXT,
    source_patient_id TEXT,
    at TEXT NOT NULL
);
CREATE INDEX enrollment_attempts_record ON enrollment_attempts (source, source_patient_id, at);
CREATE INDEX enrollment_attempts_at ON enrollment_attempts (at);

-- Enrollments refused because the record already has an owner (a live SELF link): HIM
-- reviews them. Ids only.
CREATE TABLE enrollment_reviews (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    source TEXT NOT NULL,
    source_patient_id TEXT NOT NULL,
    -- demographics or activation-code
    method TEXT NOT NULL,
    created_at TEXT NOT NULL,
    resolved_at TEXT
);
CREATE INDEX enrollment_reviews_open ON enrollment_reviews (resolved_at, created_at);
