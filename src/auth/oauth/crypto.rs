//! The small cryptographic helpers the authorization server shares: random opaque values
//! (codes, tokens, secrets), the SHA-256 digests they are stored under, argon2id for client
//! secrets, constant-time comparison and the one timestamp format its tables use. It must
//! never log or return a secret's value anywhere but to its caller.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `bytes` random bytes from the OS, base64url without padding (32 bytes = 256 bits).
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// base64url(SHA-256(value)): how codes and tokens are stored and looked up.
pub fn digest(value: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(value.as_bytes()))
}

/// Constant-time equality of two strings.
pub fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// argon2 refused to hash a secret (only an over-long secret or salt does).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HashError(argon2::password_hash::Error);

/// An argon2id PHC string for a secret.
pub fn hash_secret(secret: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(secret.as_bytes(), &salt).map(|h| h.to_string()).map_err(HashError)
}

/// Whether `secret` matches the argon2 PHC string `phc` (false for a malformed hash).
pub fn verify_secret(secret: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(secret.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A PHC string no secret matches, verified against when the client is unknown so that
/// unknown and known client ids take the same time.
// Cannot fail: argon2 with its default parameters fails only on an over-long secret or salt
// (the secret is 32 random bytes; the salt is generated at the right length).
#[allow(clippy::expect_used)]
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_secret(&random_token(32)).expect("argon2 hashes"))
}

/// The timestamp format of the tables this module owns (fixed width, UTC, `Z`), so that
/// text comparison in SQL is time order.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Reads a timestamp written by [`ts`] (or any RFC 3339 instant).
pub fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// base64url(SHA-256(verifier)) — the PKCE S256 transform.
pub fn pkce_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_is_base64url_of_sha256() {
        // Computed independently (Python hashlib + base64.urlsafe_b64encode, padding removed).
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r7wW1gFWFOEjXk"),
            "bwWFMyPfdG9qreDhH2lmftFx_dFeLDalzcT1gb_j68g"
        );
    }

    #[test]
    fn secrets_verify_only_themselves() {
        let h = hash_secret("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_secret("s3cret", &h));
        assert!(!verify_secret("s3creT", &h));
        assert!(!verify_secret("s3cret", "not a hash"));
        assert!(!verify_secret("s3cret", decoy_hash()));
    }

    #[test]
    fn timestamps_sort_as_text() {
        let a = Utc::now();
        let b = a + chrono::Duration::microseconds(1);
        assert!(ts(a) < ts(b));
        assert_eq!(ts(a).len(), ts(b).len());
        assert_eq!(parse_ts(&ts(a)).unwrap().timestamp_micros(), a.timestamp_micros());
        assert!(random_token(32).len() >= 43);
    }
}
