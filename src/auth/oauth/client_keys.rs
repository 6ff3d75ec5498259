//! Asymmetric clients' public keys: validating a JWKS at registration, and finding the key
//! an assertion names (`kid`, and a key type fit for RS384 or ES384) in the client's inline
//! JWKS or its `jwks_uri` — fetched without following redirects, with a timeout and a size
//! limit, cached, and fetched again once when an assertion names a key not yet seen. It
//! never accepts private key material and never trusts a key the client did not publish.

use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::clients::ClientRecord;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// How long a fetched JWKS is used before it is fetched again.
const CACHE_TTL: Duration = Duration::from_secs(600);
/// An unknown `kid` makes the JWKS be fetched again at most this often per client.
const REFETCH_FLOOR: Duration = Duration::from_secs(10);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Why a client's JWKS is refused or could not be had.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("the JWKS is not JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("the JWKS has no `keys` array")]
    NoKeys,
    #[error("every JWKS key must be a JSON object")]
    KeyNotAnObject,
    #[error("the JWKS holds private key material; publish only public keys")]
    PrivateKeyMaterial,
    #[error("the JWKS has no key with a `kid` usable for RS384 (RSA ≥ 2048 bits) or ES384 (EC P-384)")]
    NoUsableKey,
    #[error("stored JWKS unreadable: {0}")]
    StoredUnreadable(serde_json::Error),
    #[error("cannot fetch the jwks_uri: {0}")]
    Fetch(reqwest::Error),
    #[error("the jwks_uri answered {0}")]
    Status(reqwest::StatusCode),
    #[error("cannot read the jwks_uri: {0}")]
    Read(reqwest::Error),
    #[error("the jwks_uri document is too large")]
    TooLarge,
    #[error("the jwks_uri document is not UTF-8")]
    NotUtf8,
}

/// Checks a JWKS document: an object with `keys`, no private key material, and at least
/// one key with a `kid` usable for RS384 (RSA, ≥ 2048 bits) or ES384 (EC P-384).
pub fn parse_jwks(text: &str) -> Result<Value, JwksError> {
    let set: Value = serde_json::from_str(text).map_err(JwksError::NotJson)?;
    let keys = set.get("keys").and_then(Value::as_array).ok_or(JwksError::NoKeys)?;
    for k in keys {
        if !k.is_object() {
            return Err(JwksError::KeyNotAnObject);
        }
        if ["d", "p", "q", "dp", "dq", "qi", "k"].iter().any(|f| k.get(f).is_some()) {
            return Err(JwksError::PrivateKeyMaterial);
        }
    }
    let usable = keys.iter().any(|k| {
        let kid_ok = k.get("kid").and_then(Value::as_str).is_some_and(|s| !s.is_empty());
        kid_ok && (decoding_key(k, Algorithm::RS384).is_some() || decoding_key(k, Algorithm::ES384).is_some())
    });
    if !usable {
        return Err(JwksError::NoUsableKey);
    }
    Ok(set)
}

/// The key `kid` of `set`, if it is fit for `alg`.
pub fn find_key(set: &Value, kid: &str, alg: Algorithm) -> Option<DecodingKey> {
    set.get("keys")?
        .as_array()?
        .iter()
        .filter(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
        .find_map(|k| decoding_key(k, alg))
}

fn decoding_key(k: &Value, alg: Algorithm) -> Option<DecodingKey> {
    let s = |f: &str| k.get(f).and_then(Value::as_str);
    let alg_name = match alg {
        Algorithm::RS384 => "RS384",
        Algorithm::ES384 => "ES384",
        _ => return None,
    };
    if s("alg").is_some_and(|a| a != alg_name) || s("use").is_some_and(|u| u != "sig") {
        return None;
    }
    if let Some(ops) = k.get("key_ops") {
        if !ops.as_array().is_some_and(|o| o.iter().any(|v| v == "verify")) {
            return None;
        }
    }
    let bytes = |f: &str| s(f).and_then(|v| URL_SAFE_NO_PAD.decode(v).ok());
    match alg {
        Algorithm::RS384 if s("kty") == Some("RSA") => {
            let n = bytes("n")?;
            let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
            if bits < 2048 || bytes("e")?.is_empty() {
                return None;
            }
            DecodingKey::from_rsa_components(s("n")?, s("e")?).ok()
        }
        Algorithm::ES384 if s("kty") == Some("EC") && s("crv") == Some("P-384") => {
            if bytes("x")?.len() != 48 || bytes("y")?.len() != 48 {
                return None;
            }
            DecodingKey::from_ec_components(s("x")?, s("y")?).ok()
        }
        _ => None,
    }
}

/// Fetched JWKS documents by client id.
#[derive(Clone)]
pub(super) struct KeyCache {
    fetched: moka::future::Cache<String, Arc<Value>>,
    /// One insert or lookup per lock: a poisoned lock's map is still good and is used.
    refetched: Arc<Mutex<HashMap<String, Instant>>>,
    http: reqwest::Client,
}

impl KeyCache {
    // Cannot fail: with rustls and only a redirect policy and a timeout set, reqwest's builder
    // has no TLS backend, certificate or proxy setting to refuse (`Clients::new`, and the tests
    // that call it, take no error).
    #[allow(clippy::expect_used)]
    pub fn new() -> KeyCache {
        KeyCache {
            fetched: moka::future::Cache::builder().max_capacity(10_000).time_to_live(CACHE_TTL).build(),
            refetched: Arc::new(Mutex::new(HashMap::new())),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(FETCH_TIMEOUT)
                .build()
                .expect("HTTP client builds"),
        }
    }

    /// Drops what is cached for a client (after its registration changed).
    pub async fn forget(&self, client_id: &str) {
        self.fetched.invalidate(client_id).await;
    }

    /// The client's key `kid` fit for `alg`. `Err` says why keys could not be had.
    pub async fn key_for(
        &self,
        record: &ClientRecord,
        kid: &str,
        alg: Algorithm,
    ) -> Result<Option<DecodingKey>, JwksError> {
        if let Some(text) = &record.jwks {
            let set: Value = serde_json::from_str(text).map_err(JwksError::StoredUnreadable)?;
            return Ok(find_key(&set, kid, alg));
        }
        let Some(uri) = &record.jwks_uri else { return Ok(None) };
        let client_id = &record.client.client_id;
        let (set, fresh) = match self.fetched.get(client_id).await {
            Some(set) => (set, false),
            None => (self.fetch_into_cache(client_id, uri).await?, true),
        };
        if let Some(key) = find_key(&set, kid, alg) {
            return Ok(Some(key));
        }
        if fresh || !self.may_refetch(client_id) {
            return Ok(None);
        }
        let set = self.fetch_into_cache(client_id, uri).await?;
        Ok(find_key(&set, kid, alg))
    }

    fn may_refetch(&self, client_id: &str) -> bool {
        let mut map = self.refetched.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        map.retain(|_, t| now.duration_since(*t) < REFETCH_FLOOR);
        if map.contains_key(client_id) {
            return false;
        }
        map.insert(client_id.to_string(), now);
        true
    }

    async fn fetch_into_cache(&self, client_id: &str, uri: &str) -> Result<Arc<Value>, JwksError> {
        let set = Arc::new(self.fetch(uri).await?);
        self.fetched.insert(client_id.to_string(), set.clone()).await;
        Ok(set)
    }

    async fn fetch(&self, uri: &str) -> Result<Value, JwksError> {
        let mut resp = self.http.get(uri).send().await.map_err(JwksError::Fetch)?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(JwksError::Status(resp.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(JwksError::Read)? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(JwksError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(body).map_err(|_| JwksError::NotUtf8)?;
        parse_jwks(&text)
    }
}
