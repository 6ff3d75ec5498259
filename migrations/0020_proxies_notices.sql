-- Proxy invitations and their lifecycle, and notices without PHI (issue 16 parts 4 and 5).

-- A patient's invitation to someone (by e-mail) to see the patient's record as a proxy.
-- Only the SHA-256 of the link's token is kept. The invitee confirms the patient's birth
-- date: each try is counted first; after `failed_attempts` reaches 3 the invitation is dead.
CREATE TABLE proxy_invitations (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    -- the patient's account and the record (its SELF link's source record)
    patient_account_id TEXT NOT NULL,
    source TEXT NOT NULL,
    source_patient_id TEXT NOT NULL,
    -- lower-cased address the invitation was sent to
    email TEXT NOT NULL,
    relationship TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    accepted_at TEXT,
    accepted_by TEXT,
    link_id TEXT,
    cancelled_at TEXT
);
CREATE INDEX proxy_invitations_patient ON proxy_invitations (patient_account_id, created_at);

-- Lifecycle notices already sent, so each goes once: (link, what), e.g. `ahead:12`,
-- `ended:18`, `expires:<valid_until>`.
CREATE TABLE proxy_milestones (
    link_id TEXT NOT NULL,
    milestone TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    PRIMARY KEY (link_id, milestone)
);

-- Notices a patient turned off (default: every notice on).
CREATE TABLE notice_preferences (
    account_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    PRIMARY KEY (account_id, kind)
);

-- The results a record link has been told about: SHA-256 of (link, Type/id) only. A link's
-- first sweep records what it already sees without a mail (notice_baselines).
CREATE TABLE notice_results (
    link_id TEXT NOT NULL,
    result_hash TEXT NOT NULL,
    PRIMARY KEY (link_id, result_hash)
);
CREATE TABLE notice_baselines (
    link_id TEXT PRIMARY KEY,
    at TEXT NOT NULL
);
