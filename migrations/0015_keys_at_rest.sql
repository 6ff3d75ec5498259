-- Keys at rest (issue 12 part 9). Private signing keys are sealed with the key-encryption
-- key (environment or key file, never the database): the column now holds `kek1:…`, and
-- rows still in clear PEM are sealed by the next start. A key is published from creation,
-- signs from `activated_at` (a rotated-in "next" key has none yet: published, not signing)
-- and stays published after `retired_at` until the id_tokens it signed have expired.
ALTER TABLE signing_keys RENAME COLUMN private_pem TO private_key;
ALTER TABLE signing_keys ADD COLUMN activated_at TEXT;
UPDATE signing_keys SET activated_at = created_at WHERE retired_at IS NULL;
DROP INDEX signing_keys_active;
-- At most one signing key and one next key per purpose.
CREATE UNIQUE INDEX signing_keys_signing ON signing_keys (purpose) WHERE retired_at IS NULL AND activated_at IS NOT NULL;
CREATE UNIQUE INDEX signing_keys_next ON signing_keys (purpose) WHERE retired_at IS NULL AND activated_at IS NULL;

-- Activation codes are now looked up by an HMAC keyed from the key-encryption key, not a
-- plain SHA-256 a database dump could be searched against: unused codes issued before
-- cannot match any more, so they lapse now (HIM issues new ones).
UPDATE activation_codes SET expires_at = created_at WHERE used_at IS NULL;
