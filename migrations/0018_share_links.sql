-- Share links (SMART Health Links, issue 16 part 1). A link holds a snapshot of part of a
-- released record, taken for the person who made it, as a compact JWE encrypted with the
-- link's own key — a key that lives only in the `shlink:/` payload the person was given,
-- never here. Only the SHA-256 of the manifest token (the secret part of the manifest URL)
-- and the argon2 hash of the passcode are kept.
CREATE TABLE share_links (
    id TEXT PRIMARY KEY,
    manifest_hash TEXT NOT NULL UNIQUE,
    patient_id TEXT NOT NULL,
    -- who made it (`account:{id}`, or an app acting for one): the account and the record
    -- link it was made through (the link stops when that access ends)
    created_by TEXT NOT NULL,
    account_id TEXT NOT NULL,
    record_link TEXT NOT NULL,
    label TEXT NOT NULL,
    -- the chosen sections, comma-separated
    sections TEXT NOT NULL,
    items INTEGER NOT NULL,
    passcode_hash TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT,
    -- wrong passcodes so far (attempts in progress included); the link is void at the limit
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    views INTEGER NOT NULL DEFAULT 0,
    last_viewed_at TEXT,
    jwe TEXT NOT NULL
);
CREATE INDEX share_links_record_link ON share_links (record_link, created_at);
CREATE INDEX share_links_patient ON share_links (patient_id, created_at);

-- Short-lived addresses of a link's file (the manifest's `location`, for a viewer that
-- asks for files by address): only the SHA-256 of the ticket is kept.
CREATE TABLE share_link_files (
    ticket_hash TEXT PRIMARY KEY,
    link_id TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX share_link_files_expiry ON share_link_files (expires_at);
