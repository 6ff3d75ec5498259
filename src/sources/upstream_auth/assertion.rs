//! SMART Backend Services client assertions (RFC 7523 `private_key_jwt`): the gateway's
//! private key for a source, read once from its secret (PEM: PKCS#8 RSA or EC P-384, or
//! PKCS#1 RSA), signs one fresh assertion per token request — `iss` = `sub` = the client
//! id, `aud` = the token URL, `exp` four minutes ahead (the specification allows five),
//! a random `jti`, `kid` in the header — RS384 for RSA (at least 2048 bits), ES384 for
//! P-384. Its public half is the JWK the gateway publishes for sources to register.
//! Signing is jsonwebtoken's, key parsing the `rsa` crate's and ring's: nothing is
//! hand-rolled here. The private key is never logged, printed or published.

use super::CredentialError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

/// How far ahead an assertion expires (SMART: at most five minutes).
pub const ASSERTION_LIFETIME_SECS: i64 = 240;
/// Smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;

/// One source's signing key, with the public JWK to publish.
pub struct AssertionKey {
    alg: Algorithm,
    kid: String,
    encoding: EncodingKey,
    public_jwk: Value,
}

impl std::fmt::Debug for AssertionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AssertionKey({:?}, kid={})", self.alg, self.kid)
    }
}

impl AssertionKey {
    /// Parses a PEM private key: RSA (RS384) or EC P-384 (ES384).
    pub fn from_pem(pem: &str, kid: &str) -> Result<AssertionKey, CredentialError> {
        let bad = |m: &str| CredentialError::Key(m.to_string());
        if let Some(rsa) = rsa_key(pem) {
            use rsa::traits::PublicKeyParts;
            if rsa.size() * 8 < MIN_RSA_BITS {
                return Err(bad("the RSA key is shorter than 2048 bits"));
            }
            let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| bad("the RSA key is unusable"))?;
            let public_jwk = json!({
                "kty": "RSA",
                "kid": kid,
                "alg": "RS384",
                "use": "sig",
                "key_ops": ["verify"],
                "n": URL_SAFE_NO_PAD.encode(rsa.n().to_bytes_be()),
                "e": URL_SAFE_NO_PAD.encode(rsa.e().to_bytes_be()),
            });
            return Ok(AssertionKey { alg: Algorithm::RS384, kid: kid.to_string(), encoding, public_jwk });
        }
        let point = p384_public_point(pem).ok_or_else(|| {
            bad("not an RSA private key (PKCS#8 or PKCS#1 PEM) or an EC P-384 private key (PKCS#8 PEM)")
        })?;
        let encoding = EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|_| bad("the EC key is unusable"))?;
        let public_jwk = json!({
            "kty": "EC",
            "kid": kid,
            "alg": "ES384",
            "use": "sig",
            "key_ops": ["verify"],
            "crv": "P-384",
            "x": URL_SAFE_NO_PAD.encode(&point[1..49]),
            "y": URL_SAFE_NO_PAD.encode(&point[49..97]),
        });
        Ok(AssertionKey { alg: Algorithm::ES384, kid: kid.to_string(), encoding, public_jwk })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// `RS384` or `ES384`.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The public key as a JWK (`kid`, `alg`, `use: sig`), never any private part.
    pub fn public_jwk(&self) -> &Value {
        &self.public_jwk
    }

    /// A fresh client assertion for `client_id` at `token_url`.
    pub fn sign(&self, client_id: &str, token_url: &str) -> Result<String, CredentialError> {
        let now = chrono::Utc::now().timestamp();
        let claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": token_url,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        let header = Header { kid: Some(self.kid.clone()), typ: Some("JWT".into()), ..Header::new(self.alg) };
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| CredentialError::Key(format!("cannot sign the client assertion: {e}")))
    }
}

fn rsa_key(pem: &str) -> Option<rsa::RsaPrivateKey> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    rsa::RsaPrivateKey::from_pkcs8_pem(pem).or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem)).ok()
}

/// The uncompressed public point (`04 || x || y`, 97 bytes) of a PKCS#8 P-384 key.
fn p384_public_point(pem: &str) -> Option<Vec<u8>> {
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P384_SHA384_FIXED_SIGNING};
    let (label, document) = rsa::pkcs8::SecretDocument::from_pem(pem).ok()?;
    if label != "PRIVATE KEY" {
        return None;
    }
    let rng = ring::rand::SystemRandom::new();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, document.as_bytes(), &rng).ok()?;
    let point = pair.public_key().as_ref().to_vec();
    (point.len() == 97 && point[0] == 4).then_some(point)
}

/// The JWKS of `keys`' public halves (one entry per `kid`).
pub fn jwks<'a>(keys: impl IntoIterator<Item = &'a AssertionKey>) -> Result<Value, CredentialError> {
    let mut out: Vec<Value> = Vec::new();
    for k in keys {
        match out.iter().find(|j| j["kid"] == k.public_jwk["kid"]) {
            Some(same) if *same == k.public_jwk => {}
            Some(_) => return Err(CredentialError::Key(format!("kid `{}` names two different keys", k.kid))),
            None => out.push(k.public_jwk.clone()),
        }
    }
    Ok(json!({ "keys": out }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_key(name: &str) -> String {
        std::fs::read_to_string(format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn public(name: &str) -> Value {
        serde_json::from_str(&test_key(&format!("{name}.jwk.json"))).unwrap()
    }

    #[test]
    fn public_halves_match_the_keys_and_hold_nothing_private() {
        for (name, fields) in [("rs384", &["n", "e"][..]), ("es384", &["x", "y", "crv"][..])] {
            let key = AssertionKey::from_pem(&test_key(&format!("{name}.pem")), "k1").unwrap();
            let jwk = key.public_jwk();
            let expected = public(name);
            for f in fields {
                assert_eq!(jwk[f], expected[f], "{name} {f}");
            }
            assert_eq!(jwk["kid"], "k1");
            for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
                assert!(jwk.get(private).is_none(), "{name} publishes {private}");
            }
        }
    }

    #[test]
    fn assertions_verify_with_the_published_key_and_never_repeat_a_jti() {
        for (name, alg) in [("rs384", Algorithm::RS384), ("es384", Algorithm::ES384)] {
            let key = AssertionKey::from_pem(&test_key(&format!("{name}.pem")), "k1").unwrap();
            assert_eq!(key.algorithm(), alg);
            let a = key.sign("portico", "https://ehr.example/token").unwrap();
            let b = key.sign("portico", "https://ehr.example/token").unwrap();
            let header = jsonwebtoken::decode_header(&a).unwrap();
            assert_eq!((header.alg, header.kid.as_deref()), (alg, Some("k1")));
            let set = jwks([&key]).unwrap();
            // The gateway's own client-assertion check accepts the published key.
            let published = crate::auth::oauth::parse_jwks(&set.to_string()).expect("a usable published JWKS");
            let jwk = &published["keys"][0];
            let s = |f: &str| jwk[f].as_str().unwrap();
            let decoding = match alg {
                Algorithm::RS384 => jsonwebtoken::DecodingKey::from_rsa_components(s("n"), s("e")).unwrap(),
                _ => jsonwebtoken::DecodingKey::from_ec_components(s("x"), s("y")).unwrap(),
            };
            let mut v = jsonwebtoken::Validation::new(alg);
            v.set_audience(&["https://ehr.example/token"]);
            v.set_issuer(&["portico"]);
            let claims = |t: &str| jsonwebtoken::decode::<Value>(t, &decoding, &v).unwrap().claims;
            let (ca, cb) = (claims(&a), claims(&b));
            assert_eq!(ca["sub"], "portico");
            assert_ne!(ca["jti"], cb["jti"]);
            let lifetime = ca["exp"].as_i64().unwrap() - chrono::Utc::now().timestamp();
            assert!((200..=300).contains(&lifetime), "{lifetime}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_usable_private_key() {
        assert!(AssertionKey::from_pem("not a key", "k").is_err());
        assert!(AssertionKey::from_pem(&test_key("es384.jwk.json"), "k").is_err());
        let a = AssertionKey::from_pem(&test_key("rs384.pem"), "k").unwrap();
        let b = AssertionKey::from_pem(&test_key("es384.pem"), "k").unwrap();
        assert!(jwks([&a, &b]).is_err(), "one kid, two keys");
        assert_eq!(jwks([&a, &a]).unwrap()["keys"].as_array().unwrap().len(), 1);
    }
}
