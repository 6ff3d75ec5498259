//! The gateway's own signing keys for id_tokens, kept in the store (`signing_keys`) so every
//! replica and restart signs with the same key and publishes the same JWKS. id_tokens are
//! RS256 — OpenID Connect's default, the one algorithm every relying party supports — with
//! one RSA key (2048 bits, the `rsa` crate) generated the first time any replica needs it
//! (concurrent first uses agree: at most one unretired key per purpose, the loser's insert
//! does nothing). The ES256 key earlier versions signed with stays published, so the
//! id_tokens it signed still verify until they expire. It signs only what [`super::tokens`]
//! gives it and must never publish or log the private half.

use super::crypto;
use super::error::ClientError;
use crate::store::Store;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::sync::Arc;

/// The RS256 key's purpose in `signing_keys`.
const PURPOSE: &str = "id_token_rs256";
/// The ES256 key of earlier versions (published, no longer used to sign).
const ES256_PURPOSE: &str = "id_token";
const RSA_BITS: usize = 2048;

/// The id_token signer: the active RS256 key and the published public keys, loaded (or
/// created) on first use and then kept.
#[derive(Clone)]
pub struct Signer {
    store: Store,
    active: Arc<tokio::sync::OnceCell<Active>>,
}

struct Active {
    kid: String,
    key: EncodingKey,
    jwks: Value,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer(kid={:?})", self.active.get().map(|a| a.kid.as_str()))
    }
}

impl Signer {
    /// A signer over `store`; the key is read or made when first needed.
    pub fn new(store: Store) -> Signer {
        Signer { store, active: Arc::new(tokio::sync::OnceCell::new()) }
    }

    async fn active(&self) -> Result<&Active, ClientError> {
        self.active.get_or_try_init(|| load_or_create(&self.store)).await
    }

    /// The public keys as a JWKS document.
    pub async fn jwks(&self) -> Result<Value, ClientError> {
        Ok(self.active().await?.jwks.clone())
    }

    /// A compact JWS (RS256, `kid` in the header) over `claims`.
    pub async fn sign<T: Serialize>(&self, claims: &T) -> Result<String, ClientError> {
        let active = self.active().await?;
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(active.kid.clone());
        jsonwebtoken::encode(&header, claims, &active.key).map_err(|e| ClientError::Signing(e.to_string()))
    }
}

/// Loads the stored RS256 key, creating it when there is none.
async fn load_or_create(store: &Store) -> Result<Active, ClientError> {
    if let Some(a) = load(store).await? {
        return Ok(a);
    }
    let (pem, jwk) = tokio::task::spawn_blocking(generate).await.map_err(|e| ClientError::Signing(e.to_string()))??;
    let kid = thumbprint(&jwk);
    sqlx::query(
        "INSERT INTO signing_keys (kid, purpose, alg, private_pem, public_jwk, created_at) VALUES ($1, $2, 'RS256', $3, $4, $5)
         ON CONFLICT DO NOTHING",
    )
    .bind(&kid)
    .bind(PURPOSE)
    .bind(pem.as_str())
    .bind(jwk.to_string())
    .bind(crypto::ts(Utc::now()))
    .execute(&store.pool)
    .await?;
    load(store).await?.ok_or_else(|| ClientError::Signing("the signing key was not stored".into()))
}

async fn load(store: &Store) -> Result<Option<Active>, ClientError> {
    let rows = sqlx::query(
        "SELECT kid, purpose, alg, private_pem, public_jwk, retired_at FROM signing_keys
         WHERE purpose = $1 OR purpose = $2 ORDER BY created_at, kid",
    )
    .bind(PURPOSE)
    .bind(ES256_PURPOSE)
    .fetch_all(&store.pool)
    .await?;
    let mut keys = Vec::new();
    let mut active = None;
    for r in &rows {
        let (kid, purpose, alg, jwk): (String, String, String, String) = (r.get(0), r.get(1), r.get(2), r.get(4));
        let mut jwk: Value = serde_json::from_str(&jwk).map_err(|e| ClientError::Signing(e.to_string()))?;
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        jwk["alg"] = json!(alg);
        keys.push(jwk);
        let retired: Option<String> = r.get(5);
        if purpose == PURPOSE && retired.is_none() && active.is_none() {
            let pem: String = r.get(3);
            let key = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| ClientError::Signing(e.to_string()))?;
            active = Some((kid, key));
        }
    }
    Ok(active.map(|(kid, key)| Active { kid, key, jwks: json!({ "keys": keys }) }))
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
