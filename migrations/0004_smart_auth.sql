-- SMART App Launch: registered apps, accounts and whose records they may open, browser
-- sessions, the grants patients give apps, one-time codes and tokens. Secrets and tokens
-- are stored only as hashes.

CREATE TABLE oauth_clients (
    client_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    -- public | confidential-symmetric | confidential-asymmetric
    kind TEXT NOT NULL,
    -- argon2id PHC string (confidential-symmetric)
    secret_hash TEXT,
    -- inline JWKS JSON or a jwks_uri (confidential-asymmetric)
    jwks TEXT,
    jwks_uri TEXT,
    -- JSON array of exact redirect URIs
    redirect_uris TEXT NOT NULL,
    -- space-separated scopes the client may request at most
    allowed_scopes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    disabled_at TEXT
);

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    -- local accounts: lower-cased user name (e-mail)
    username TEXT UNIQUE,
    password_hash TEXT,
    -- federated accounts: the identity provider's issuer and subject
    oidc_issuer TEXT,
    oidc_subject TEXT,
    display_name TEXT NOT NULL,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_until TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (oidc_issuer, oidc_subject)
);

-- Whose records an account may open: its own (relationship SELF, by enrollment) and those
-- it is a proxy for (by a staff grant). Anchored on a source record so a re-linked index
-- keeps the right person.
CREATE TABLE account_patients (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    source TEXT NOT NULL,
    source_patient_id TEXT NOT NULL,
    -- SELF, or a v3-RoleCode relationship (MTH, FTH, PRN, GUARD, CAREGIVER …)
    relationship TEXT NOT NULL,
    valid_from TEXT,
    valid_until TEXT,
    adult_granted INTEGER NOT NULL DEFAULT 0,
    teen_assent INTEGER NOT NULL DEFAULT 0,
    -- the proxy's RelatedPerson in the source (source/id), when known: the id_token's fhirUser
    related_person TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    terminated_at TEXT,
    termination_reason TEXT
);
CREATE INDEX account_patients_account ON account_patients (account_id);

-- Browser sessions (cookie value stored hashed).
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    account_id TEXT,
    csrf_token TEXT NOT NULL,
    -- JSON: the pending authorization request, OIDC state, …
    data TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_seen TEXT NOT NULL
);

-- An app's authorization, given by an account for one patient.
CREATE TABLE grants (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    account_patient_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_used TEXT,
    revoked_at TEXT
);
CREATE INDEX grants_account ON grants (account_id);

CREATE TABLE auth_codes (
    code_hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    scopes TEXT NOT NULL,
    nonce TEXT,
    expires_at TEXT NOT NULL,
    used_at TEXT
);

-- Access and refresh tokens. A refresh token's family is every token descended from one
-- code; reuse of a rotated refresh token revokes the family.
CREATE TABLE tokens (
    token_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    grant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    family TEXT NOT NULL,
    scopes TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    used_at TEXT,
    revoked_at TEXT
);
CREATE INDEX tokens_family ON tokens (family);
CREATE INDEX tokens_grant ON tokens (grant_id);

-- client_assertion jti values already seen (replay protection for private_key_jwt).
CREATE TABLE client_assertions (
    jti TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
