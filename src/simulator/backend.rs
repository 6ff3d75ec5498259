//! The simulated hospital's SMART Backend Services check at its token endpoint, as an EHR
//! vendor's would do it: a `client_credentials` request must carry a `private_key_jwt`
//! client assertion (RFC 7523) from the one registered client — RS384 or ES384, `kid` naming
//! a key of the client's JWKS (registered inline, or fetched from its JWKS URL on every
//! check), a signature that verifies, `iss` = `sub` = the client id, `aud` = this token URL,
//! `exp` in the future and at most five minutes ahead, and a `jti` never used before. It
//! keeps spent `jti`s until their assertion expires. It never logs an assertion.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Furthest ahead an assertion may expire (SMART Backend Services: five minutes).
const MAX_LIFETIME_SECS: i64 = 300;
/// Clock difference tolerated with the client.
const LEEWAY_SECS: u64 = 10;
const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The client the simulated hospital registered for Backend Services.
#[derive(Debug, Clone)]
pub struct BackendClient {
    pub client_id: String,
    pub keys: ClientKeys,
}

/// Where the registered client's public keys are.
#[derive(Debug, Clone)]
pub enum ClientKeys {
    /// A JWKS registered with the hospital.
    Jwks(Value),
    /// A JWKS URL the hospital reads the keys from.
    JwksUrl(String),
}

/// `jti`s already presented, with the `exp` of their assertion.
#[derive(Debug, Default)]
pub(super) struct SpentAssertions {
    seen: Mutex<HashMap<String, i64>>,
}

impl SpentAssertions {
    /// Records `jti`; false when it was already spent.
    fn spend(&self, jti: &str, exp: i64) -> bool {
        let now = chrono::Utc::now().timestamp();
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.retain(|_, e| *e + LEEWAY_SECS as i64 >= now);
        seen.insert(jti.to_string(), exp).is_none()
    }
}

#[derive(Deserialize)]
struct Claims {
    exp: i64,
    jti: Option<String>,
}

/// Checks a token request's client authentication (its form fields); `Err` is the
/// `error_description` of the `invalid_client` answer.
pub(super) async fn verify(
    client: &BackendClient,
    token_url: &str,
    fields: &HashMap<&str, &str>,
    spent: &SpentAssertions,
) -> Result<(), String> {
    if fields.contains_key("client_secret") {
        return Err("this client authenticates with a signed assertion, not a secret".into());
    }
    if fields.get("client_assertion_type") != Some(&JWT_BEARER) {
        return Err(format!("client_assertion_type must be {JWT_BEARER}"));
    }
    let assertion = fields.get("client_assertion").ok_or("client_assertion is required")?;
    if fields.get("client_id").is_some_and(|id| *id != client.client_id) {
        return Err("client_id is not the assertion's issuer".into());
    }
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| "the assertion is not a signed JWT")?;
    if !matches!(header.alg, Algorithm::RS384 | Algorithm::ES384) {
        return Err("the assertion must be signed RS384 or ES384".into());
    }
    let kid = header.kid.ok_or("the assertion's header has no kid")?;
    let jwks = match &client.keys {
        ClientKeys::Jwks(set) => set.clone(),
        ClientKeys::JwksUrl(url) => fetch_jwks(url).await?,
    };
    let key = find_key(&jwks, &kid, header.alg).ok_or("no registered key matches the assertion's kid and algorithm")?;
    let mut validation = Validation::new(header.alg);
    validation.leeway = LEEWAY_SECS;
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    validation.set_issuer(&[client.client_id.as_str()]);
    validation.sub = Some(client.client_id.clone());
    validation.set_audience(&[token_url]);
    let claims = jsonwebtoken::decode::<Claims>(assertion, &key, &validation)
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind::*;
            match e.kind() {
                ExpiredSignature => "the assertion has expired".to_string(),
                InvalidAudience => "aud must be this token URL".to_string(),
                InvalidIssuer => "iss must be the registered client id".to_string(),
                InvalidSubject => "sub must be the registered client id".to_string(),
                InvalidSignature => "the assertion's signature does not verify".to_string(),
                MissingRequiredClaim(c) => format!("the assertion has no {c}"),
                _ => "the assertion does not verify".to_string(),
            }
        })?
        .claims;
    if claims.exp > chrono::Utc::now().timestamp() + MAX_LIFETIME_SECS + LEEWAY_SECS as i64 {
        return Err("the assertion expires more than five minutes ahead".into());
    }
    let jti = claims.jti.filter(|j| !j.is_empty() && j.len() <= 255).ok_or("the assertion has no usable jti")?;
    if !spent.spend(&jti, claims.exp) {
        return Err("this assertion (jti) was already used".into());
    }
    Ok(())
}

/// The key `kid` of a JWKS, if it is of the type `alg` needs (RSA for RS384, EC P-384 for
/// ES384) and not restricted to another algorithm.
fn find_key(jwks: &Value, kid: &str, alg: Algorithm) -> Option<DecodingKey> {
    let keys = jwks.get("keys")?.as_array()?;
    keys.iter().filter(|k| k.get("kid").and_then(Value::as_str) == Some(kid)).find_map(|k| {
        let s = |f: &str| k.get(f).and_then(Value::as_str);
        match (alg, s("kty"), s("alg")) {
            (_, _, Some(a)) if Some(a) != alg_name(alg) => None,
            (Algorithm::RS384, Some("RSA"), _) => DecodingKey::from_rsa_components(s("n")?, s("e")?).ok(),
            (Algorithm::ES384, Some("EC"), _) if s("crv") == Some("P-384") => {
                DecodingKey::from_ec_components(s("x")?, s("y")?).ok()
            }
            _ => None,
        }
    })
}

fn alg_name(alg: Algorithm) -> Option<&'static str> {
    match alg {
        Algorithm::RS384 => Some("RS384"),
        Algorithm::ES384 => Some("ES384"),
        _ => None,
    }
}

async fn fetch_jwks(url: &str) -> Result<Value, String> {
    let failed = || "the client's JWKS URL could not be read".to_string();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(JWKS_FETCH_TIMEOUT)
        .build()
        .map_err(|_| failed())?;
    let resp = http.get(url).send().await.map_err(|_| failed())?;
    if !resp.status().is_success() {
        return Err(failed());
    }
    resp.json::<Value>().await.map_err(|_| failed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_is_spent_once() {
        let spent = SpentAssertions::default();
        let exp = chrono::Utc::now().timestamp() + 60;
        assert!(spent.spend("a", exp));
        assert!(!spent.spend("a", exp));
        assert!(spent.spend("b", exp));
    }
}
