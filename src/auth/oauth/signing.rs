//! The gateway's own signing key for id_tokens: one ES256 key, generated the first time any
//! replica starts and kept in the store (`signing_keys`) so every replica and restart signs
//! with the same key and publishes the same JWKS. It signs only what [`super::tokens`] gives
//! it and must never publish or log the private half.

use super::crypto;
use super::error::ClientError;
use crate::store::Store;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::Row;

const PURPOSE: &str = "id_token";

/// The active signing key and the published public keys.
#[derive(Clone)]
pub struct Signer {
    kid: String,
    key: EncodingKey,
    jwks: Value,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer(kid={})", self.kid)
    }
}

impl Signer {
    /// Loads the stored key, creating it when there is none (concurrent first starts agree:
    /// at most one unretired key per purpose, the loser's insert does nothing).
    pub async fn load_or_create(store: &Store) -> Result<Signer, ClientError> {
        if let Some(s) = Self::load(store).await? {
            return Ok(s);
        }
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let pem = secret.to_pkcs8_pem(LineEnding::LF).map_err(|e| ClientError::Signing(e.to_string()))?;
        let jwk: Value = serde_json::from_str(&secret.public_key().to_jwk_string())
            .map_err(|e| ClientError::Signing(e.to_string()))?;
        let kid = thumbprint(&jwk);
        sqlx::query(
            "INSERT INTO signing_keys (kid, purpose, alg, private_pem, public_jwk, created_at) VALUES ($1, $2, 'ES256', $3, $4, $5)
             ON CONFLICT DO NOTHING",
        )
        .bind(&kid)
        .bind(PURPOSE)
        .bind(pem.as_str())
        .bind(jwk.to_string())
        .bind(crypto::ts(Utc::now()))
        .execute(&store.pool)
        .await?;
        Self::load(store).await?.ok_or_else(|| ClientError::Signing("the signing key was not stored".into()))
    }

    async fn load(store: &Store) -> Result<Option<Signer>, ClientError> {
        let rows = sqlx::query(
            "SELECT kid, private_pem, public_jwk, retired_at FROM signing_keys WHERE purpose = $1 ORDER BY created_at, kid",
        )
        .bind(PURPOSE)
        .fetch_all(&store.pool)
        .await?;
        let mut keys = Vec::new();
        let mut active = None;
        for r in &rows {
            let kid: String = r.get(0);
            let jwk: String = r.get(2);
            let mut jwk: Value = serde_json::from_str(&jwk).map_err(|e| ClientError::Signing(e.to_string()))?;
            jwk["kid"] = json!(kid);
            jwk["use"] = json!("sig");
            jwk["alg"] = json!("ES256");
            keys.push(jwk);
            let retired: Option<String> = r.get(3);
            if retired.is_none() && active.is_none() {
                let pem: String = r.get(1);
                let key = EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|e| ClientError::Signing(e.to_string()))?;
                active = Some((kid, key));
            }
        }
        Ok(active.map(|(kid, key)| Signer { kid, key, jwks: json!({ "keys": keys }) }))
    }

    /// The public keys as a JWKS document.
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// A compact JWS (ES256, `kid` in the header) over `claims`.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key)
    }
}

/// RFC 7638 JWK thumbprint of an EC key.
fn thumbprint(jwk: &Value) -> String {
    let canonical = json!({ "crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"], "y": jwk["y"] });
    // serde_json with preserve_order keeps insertion order, which is already lexicographic.
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.to_string().as_bytes()))
}
