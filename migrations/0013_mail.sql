-- Email for security events and one owner per record (issue 12 parts 1 and 3).

-- When the account's e-mail address (its user name) was confirmed by a link from a mail;
-- NULL: not yet, and the account cannot enroll into a record.
ALTER TABLE accounts ADD COLUMN email_verified_at TEXT;

-- Single-use links sent by mail (e-mail verification). Only the SHA-256 of the token is
-- kept; a token is spent by the UPDATE that sets used_at where it is still NULL.
CREATE TABLE email_tokens (
    token_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
);
CREATE INDEX email_tokens_account ON email_tokens (account_id, created_at);

-- Browsers an account has signed in from: the SHA-256 of a long-lived random device cookie.
-- A sign-in from a browser not listed here sends the "new sign-in" mail.
CREATE TABLE account_devices (
    account_id TEXT NOT NULL,
    device_hash TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    PRIMARY KEY (account_id, device_hash)
);

-- Links made before this rule could give one record two live SELF links: the older one
-- stays, each later one goes on the HIM review list and is terminated.
INSERT INTO enrollment_reviews (id, account_id, source, source_patient_id, method, created_at)
SELECT 'migration-0013-' || l.id, l.account_id, l.source, l.source_patient_id, 'duplicate-owner', CAST(CURRENT_TIMESTAMP AS TEXT)
FROM account_patients l
WHERE l.relationship = 'SELF' AND l.terminated_at IS NULL AND EXISTS (
    SELECT 1 FROM account_patients o
    WHERE o.source = l.source AND o.source_patient_id = l.source_patient_id AND o.relationship = 'SELF'
      AND o.terminated_at IS NULL AND (o.created_at < l.created_at OR (o.created_at = l.created_at AND o.id < l.id)));
UPDATE account_patients SET terminated_at = CAST(CURRENT_TIMESTAMP AS TEXT),
    termination_reason = 'a second owner of the record (HIM review; migration 0013)'
WHERE terminated_at IS NULL
  AND id IN (SELECT substr(r.id, 16) FROM enrollment_reviews r WHERE r.method = 'duplicate-owner');

-- One live SELF link per record, kept by the database: of two enrollments into one record
-- at the same instant only one insert succeeds; the other goes on the HIM review list.
CREATE UNIQUE INDEX account_patients_one_owner ON account_patients (source, source_patient_id)
WHERE relationship = 'SELF' AND terminated_at IS NULL;
