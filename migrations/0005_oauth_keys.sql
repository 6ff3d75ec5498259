-- The authorization server's additions: its own signing keys, and where a client's
-- registration came from.

-- The gateway's own signing keys (id_tokens): generated once by the first replica to start,
-- shared by all through the store. At most one unretired key per purpose; retired keys
-- stay published in the JWKS until removed.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    alg TEXT NOT NULL,
    -- PKCS#8 PEM of the private key
    private_pem TEXT NOT NULL,
    -- the public key as a JWK (JSON)
    public_jwk TEXT NOT NULL,
    created_at TEXT NOT NULL,
    retired_at TEXT
);
CREATE UNIQUE INDEX signing_keys_active ON signing_keys (purpose) WHERE retired_at IS NULL;

-- 1 when the client is defined in the config file ([[auth.clients]]): taking it out of the
-- config disables it at the next start; putting it back enables it again.
ALTER TABLE oauth_clients ADD COLUMN from_config INTEGER NOT NULL DEFAULT 0;
-- Who disabled the client: staff (CLI / admin API) or config (removed from the file).
ALTER TABLE oauth_clients ADD COLUMN disabled_by TEXT;
