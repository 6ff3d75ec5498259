//! The gateway's own signing keys for id_tokens, kept in the store (`signing_keys`) so every
//! replica and restart signs with the same key and publishes the same JWKS. id_tokens are
//! RS256 — OpenID Connect's default — with one RSA key (2048 bits, the `rsa` crate)
//! generated the first time any replica needs it (concurrent first uses agree: at most one
//! signing key per purpose, the loser's insert does nothing). Private keys are stored sealed
//! by the key-encryption key ([`KeyEncryptionKey`]); rows in clear from earlier versions are
//! sealed at start ([`Signer::prepare`]), which also refuses a KEK that does not open them.
//! Rotation ([`Signer::rotate`], [`Signer::activate`]): a new key is published first as
//! "next", signs only once activated after `auth.key_publish_delay`, and the key it replaces
//! stays published until the id_tokens it signed (access-token lifetime) have expired. The
//! ES256 key earlier versions signed with stays published the same way. It signs only what
//! [`super::tokens`] gives it and must never publish or log the private half.

use super::crypto::{self, parse_ts};
use super::error::ClientError;
use crate::auth::keyring::KeyEncryptionKey;
use crate::store::Store;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The RS256 key's purpose in `signing_keys`.
const PURPOSE: &str = "id_token_rs256";
/// The ES256 key of earlier versions (published, no longer used to sign).
const ES256_PURPOSE: &str = "id_token";
const RSA_BITS: usize = 2048;

/// The id_token signer. Every signature and JWKS reads the (few) key rows, so a key rotated
/// by another process or replica is published and used at once; opened private keys are
/// kept by kid.
#[derive(Clone)]
pub struct Signer {
    store: Store,
    kek: Arc<KeyEncryptionKey>,
    /// How long a retired key stays published: the id_token lifetime.
    id_token_ttl: Duration,
    opened: Arc<Mutex<HashMap<String, Arc<EncodingKey>>>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({:?})", self.kek)
    }
}

/// One stored key, without its private half.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: String,
    /// `signing`, `next` (published, not signing yet) or `retired` (published until
    /// `published_until`, then removed).
    pub state: &'static str,
    pub created_at: String,
    pub activated_at: Option<String>,
    pub retired_at: Option<String>,
    pub published_until: Option<String>,
}

struct KeyRow {
    kid: String,
    purpose: String,
    alg: String,
    public_jwk: String,
    created_at: String,
    activated_at: Option<String>,
    retired_at: Option<String>,
}

impl Signer {
    /// A signer over `store` whose private keys `kek` seals.
    pub fn new(store: Store, kek: Arc<KeyEncryptionKey>, id_token_ttl: Duration) -> Signer {
        Signer { store, kek, id_token_ttl, opened: Arc::new(Mutex::new(HashMap::new())) }
    }

    /// At start: seals every private key still stored in clear, then opens every stored key,
    /// so a gateway started with another (or a wrong) KEK refuses at once, naming the key.
    pub async fn prepare(&self) -> Result<(), ClientError> {
        let rows = sqlx::query("SELECT kid, private_key FROM signing_keys").fetch_all(&self.store.pool).await?;
        for r in &rows {
            let (kid, stored): (String, String) = (r.get(0), r.get(1));
            if KeyEncryptionKey::is_sealed(&stored) {
                self.kek.open(&kid, &stored)?;
                continue;
            }
            if !stored.starts_with("-----BEGIN") {
                return Err(crate::auth::keyring::KeyringError::NotSealed { kid }.into());
            }
            let sealed = self.kek.seal(&kid, &stored)?;
            sqlx::query("UPDATE signing_keys SET private_key = $1 WHERE kid = $2 AND private_key = $3")
                .bind(&sealed)
                .bind(&kid)
                .bind(&stored)
                .execute(&self.store.pool)
                .await?;
            tracing::info!(%kid, "sealed a signing key stored in clear by an earlier version");
        }
        Ok(())
    }

    /// The public keys as a JWKS document: the signing key, a next key, and retired keys
    /// until the id_tokens they signed have expired.
    pub async fn jwks(&self) -> Result<Value, ClientError> {
        let mut rows = self.rows().await?;
        if !rows.iter().any(KeyRow::signing) {
            self.create_signing_key().await?;
            rows = self.rows().await?;
        }
        Ok(self.jwks_of(&rows, Utc::now()))
    }

    fn jwks_of(&self, rows: &[KeyRow], now: DateTime<Utc>) -> Value {
        let mut keys = Vec::new();
        for r in rows.iter().filter(|r| self.published_until(r).is_none_or(|until| until > now)) {
            let Ok(mut jwk) = serde_json::from_str::<Value>(&r.public_jwk) else { continue };
            jwk["kid"] = json!(r.kid);
            jwk["use"] = json!("sig");
            jwk["alg"] = json!(r.alg);
            keys.push(jwk);
        }
        json!({ "keys": keys })
    }

    /// When a retired key leaves the JWKS (`None`: it has not been retired).
    fn published_until(&self, r: &KeyRow) -> Option<DateTime<Utc>> {
        let retired = parse_ts(r.retired_at.as_deref()?)?;
        Some(retired + chrono::Duration::from_std(self.id_token_ttl).unwrap_or(chrono::Duration::hours(1)))
    }

    /// A compact JWS (RS256, `kid` in the header) over `claims`.
    pub async fn sign<T: Serialize>(&self, claims: &T) -> Result<String, ClientError> {
        let (kid, key) = self.signing_key().await?;
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid);
        jsonwebtoken::encode(&header, claims, &key).map_err(|e| ClientError::Signing(e.to_string()))
    }

    /// The key that signs now (created the first time), opened.
    async fn signing_key(&self) -> Result<(String, Arc<EncodingKey>), ClientError> {
        let kid = match self.rows().await?.into_iter().find(KeyRow::signing) {
            Some(r) => r.kid,
            None => self.create_signing_key().await?,
        };
        if let Some(key) = self.opened.lock().ok().and_then(|m| m.get(&kid).cloned()) {
            return Ok((kid, key));
        }
        let stored: String = sqlx::query_scalar("SELECT private_key FROM signing_keys WHERE kid = $1")
            .bind(&kid)
            .fetch_one(&self.store.pool)
            .await?;
        let pem = self.kek.open(&kid, &stored)?;
        let key = Arc::new(EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| ClientError::Signing(e.to_string()))?);
        if let Ok(mut m) = self.opened.lock() {
            m.insert(kid.clone(), key.clone());
        }
        Ok((kid, key))
    }

    async fn rows(&self) -> Result<Vec<KeyRow>, ClientError> {
        let rows = sqlx::query(
            "SELECT kid, purpose, alg, public_jwk, created_at, activated_at, retired_at FROM signing_keys
             WHERE purpose = $1 OR purpose = $2 ORDER BY created_at, kid",
        )
        .bind(PURPOSE)
        .bind(ES256_PURPOSE)
        .fetch_all(&self.store.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| KeyRow {
                kid: r.get(0),
                purpose: r.get(1),
                alg: r.get(2),
                public_jwk: r.get(3),
                created_at: r.get(4),
                activated_at: r.get(5),
                retired_at: r.get(6),
            })
            .collect())
    }

    /// Makes the first signing key (signing at once: nothing could have cached an older
    /// JWKS); of two replicas at once, the second insert does nothing and both use the first.
    async fn create_signing_key(&self) -> Result<String, ClientError> {
        let now = crypto::ts(Utc::now());
        self.insert_new_key(Some(&now)).await?;
        self.rows()
            .await?
            .into_iter()
            .find(KeyRow::signing)
            .map(|r| r.kid)
            .ok_or_else(|| ClientError::Signing("the signing key was not stored".into()))
    }

    /// Generates and stores a sealed key; `activated_at` None makes it the next key.
    async fn insert_new_key(&self, activated_at: Option<&str>) -> Result<String, ClientError> {
        let (pem, jwk) =
            tokio::task::spawn_blocking(generate).await.map_err(|e| ClientError::Signing(e.to_string()))??;
        let kid = thumbprint(&jwk);
        let sealed = self.kek.seal(&kid, &pem)?;
        drop(pem);
        sqlx::query(
            "INSERT INTO signing_keys (kid, purpose, alg, private_key, public_jwk, created_at, activated_at)
             VALUES ($1, $2, 'RS256', $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(&kid)
        .bind(PURPOSE)
        .bind(&sealed)
        .bind(jwk.to_string())
        .bind(crypto::ts(Utc::now()))
        .bind(activated_at)
        .execute(&self.store.pool)
        .await?;
        Ok(kid)
    }

    /// Step one of a rotation: a new key, published in the JWKS as "next" but not signing.
    /// Refused while a next key is waiting.
    pub async fn rotate(&self) -> Result<KeyInfo, ClientError> {
        let rows = self.rows().await?;
        if !rows.iter().any(KeyRow::signing) {
            self.create_signing_key().await?;
        }
        if let Some(next) = rows.iter().find(|r| r.next()) {
            return Err(ClientError::Rotation(format!(
                "key {} is already published as the next key (since {}); activate it with `portico keys rotate --activate`",
                next.kid, next.created_at
            )));
        }
        let kid = self.insert_new_key(None).await?;
        self.list()
            .await?
            .into_iter()
            .find(|k| k.kid == kid && k.state == "next")
            .ok_or_else(|| ClientError::Rotation("another rotation started at the same time; list the keys".into()))
    }

    /// Step two: the next key signs from now on, once it has been published for
    /// `publish_delay`; the key it replaces is retired (published until its id_tokens expire).
    /// Keys whose id_tokens have all expired are removed.
    pub async fn activate(&self, publish_delay: Duration, now: DateTime<Utc>) -> Result<KeyInfo, ClientError> {
        let rows = self.rows().await?;
        let Some(next) = rows.iter().find(|r| r.next()) else {
            return Err(ClientError::Rotation("there is no next key: run `portico keys rotate` first".into()));
        };
        let delay = chrono::Duration::from_std(publish_delay).unwrap_or(chrono::Duration::hours(1));
        let ready = parse_ts(&next.created_at).map_or(now, |t| t + delay);
        if ready > now {
            return Err(ClientError::Rotation(format!(
                "key {} has been published only since {}; apps may not have fetched it yet. It can sign from {} (auth.key_publish_delay)",
                next.kid,
                next.created_at,
                crypto::ts(ready)
            )));
        }
        let at = crypto::ts(now);
        let mut tx = self.store.pool.begin().await?;
        sqlx::query(
            "UPDATE signing_keys SET retired_at = $1 WHERE (purpose = $2 OR purpose = $3) AND retired_at IS NULL AND activated_at IS NOT NULL",
        )
        .bind(&at)
        .bind(PURPOSE)
        .bind(ES256_PURPOSE)
        .execute(&mut *tx)
        .await?;
        let moved = sqlx::query(
            "UPDATE signing_keys SET activated_at = $1 WHERE kid = $2 AND activated_at IS NULL AND retired_at IS NULL",
        )
        .bind(&at)
        .bind(&next.kid)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() != 1 {
            return Err(ClientError::Rotation("another activation ran at the same time; list the keys".into()));
        }
        tx.commit().await?;
        self.remove_expired(now).await?;
        self.list()
            .await?
            .into_iter()
            .find(|k| k.kid == next.kid)
            .ok_or_else(|| ClientError::Signing("the activated key is gone".into()))
    }

    /// Deletes retired keys no unexpired id_token can name.
    async fn remove_expired(&self, now: DateTime<Utc>) -> Result<(), ClientError> {
        for r in self.rows().await? {
            if self.published_until(&r).is_some_and(|until| until <= now) {
                sqlx::query("DELETE FROM signing_keys WHERE kid = $1 AND retired_at IS NOT NULL")
                    .bind(&r.kid)
                    .execute(&self.store.pool)
                    .await?;
                tracing::info!(kid = %r.kid, "removed a retired signing key whose id_tokens have expired");
            }
        }
        Ok(())
    }

    /// Every stored key and its state, oldest first (no private halves).
    pub async fn list(&self) -> Result<Vec<KeyInfo>, ClientError> {
        Ok(self
            .rows()
            .await?
            .into_iter()
            .map(|r| KeyInfo {
                state: if r.signing() {
                    "signing"
                } else if r.next() {
                    "next"
                } else {
                    "retired"
                },
                published_until: self.published_until(&r).map(crypto::ts),
                kid: r.kid,
                alg: r.alg,
                created_at: r.created_at,
                activated_at: r.activated_at,
                retired_at: r.retired_at,
            })
            .collect())
    }
}

impl KeyRow {
    fn signing(&self) -> bool {
        self.purpose == PURPOSE && self.retired_at.is_none() && self.activated_at.is_some()
    }
    fn next(&self) -> bool {
        self.purpose == PURPOSE && self.retired_at.is_none() && self.activated_at.is_none()
    }
}

/// A new RSA key: its PKCS#8 PEM and its public JWK.
fn generate() -> Result<(String, Value), ClientError> {
    let signing = |e: &dyn std::fmt::Display| ClientError::Signing(e.to_string());
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, RSA_BITS).map_err(|e| signing(&e))?;
    let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| signing(&e))?;
    let public = key.to_public_key();
    let b64 = |n: &rsa::BigUint| URL_SAFE_NO_PAD.encode(n.to_bytes_be());
    let jwk = json!({ "kty": "RSA", "n": b64(public.n()), "e": b64(public.e()) });
    Ok((pem.as_str().to_string(), jwk))
}

/// RFC 7638 JWK thumbprint of an RSA or EC key: its required members in lexicographic order
/// (serde_json with preserve_order keeps the insertion order).
fn thumbprint(jwk: &Value) -> String {
    let canonical = match jwk["kty"].as_str() {
        Some("RSA") => json!({ "e": jwk["e"], "kty": "RSA", "n": jwk["n"] }),
        _ => json!({ "crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"], "y": jwk["y"] }),
    };
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.to_string().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_rsa_thumbprint_follows_rfc_7638() {
        // RFC 7638 §3.1's example key and thumbprint.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(thumbprint(&jwk), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }
}
