//! Client authentication at `/token`, `/introspect` and `/revoke`: each client by the one
//! method of its kind — public: `client_id` alone (a secret or assertion is refused), or
//! nothing at all for a refresh, where the refresh token names the client;
//! confidential-symmetric: HTTP Basic (RFC 6749 §2.3.1, form-urlencoded id and secret) or
//! `client_secret_post`; confidential-asymmetric and backend: `private_key_jwt` (RFC 7523, RS384 or
//! ES384, `iss` = `sub` = client id, `aud` = the token URL, `exp` at most five minutes
//! ahead, `jti` never seen before). A spent `jti` is recorded even when the request then
//! fails, so an assertion works once. It must never log a secret or an assertion.

use super::clients::{Client, ClientKind, ClientRecord, Clients};
use super::crypto;
use super::error::OAuthError;
use super::form::Form;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{TimeZone, Utc};
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use std::sync::atomic::Ordering;

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The furthest ahead an assertion's `exp` may be (plus [`CLOCK_SKEW`]).
pub const MAX_ASSERTION_LIFETIME: i64 = 300;
/// Tolerated clock difference with clients, in seconds.
pub const CLOCK_SKEW: u64 = 30;

/// How a client authenticated (decides the shape of an `invalid_client` answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    None,
    Basic,
    Post,
    PrivateKeyJwt,
}

#[derive(Deserialize)]
struct AssertionClaims {
    exp: i64,
    jti: Option<String>,
}

impl Clients {
    /// Authenticates the client of a request from its `Authorization` header and form
    /// parameters. `token_url` is the audience assertions must name.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        form: &Form,
        token_url: &str,
    ) -> Result<(Client, Method), OAuthError> {
        let basic = match authorization {
            Some(h) => Some(parse_basic(h)?),
            None => None,
        };
        let fail = |d: &str| OAuthError { basic_attempted: basic.is_some(), ..OAuthError::invalid_client(d) };
        let post_secret = form.get("client_secret");
        let assertion = form.get("client_assertion");
        let assertion_type = form.get("client_assertion_type");
        let methods = u8::from(basic.is_some())
            + u8::from(post_secret.is_some())
            + u8::from(assertion.is_some() || assertion_type.is_some());
        if methods > 1 {
            return Err(OAuthError::invalid_request("use exactly one client authentication method"));
        }
        if let (Some((id, _)), Some(form_id)) = (&basic, form.get("client_id")) {
            if id != form_id {
                return Err(OAuthError::invalid_request("client_id differs from the Authorization header's"));
            }
        }
        if let Some((id, secret)) = &basic {
            return self
                .by_secret(id, secret)
                .await
                .map(|c| (c, Method::Basic))
                .map_err(|_| fail("client authentication failed"));
        }
        if let Some(secret) = post_secret {
            let id = form.get("client_id").ok_or_else(|| fail("client_secret needs client_id"))?;
            return self
                .by_secret(id, secret)
                .await
                .map(|c| (c, Method::Post))
                .map_err(|_| fail("client authentication failed"));
        }
        if assertion.is_some() || assertion_type.is_some() {
            if assertion_type != Some(JWT_BEARER) {
                return Err(fail(&format!("client_assertion_type must be {JWT_BEARER}")));
            }
            let assertion = assertion.ok_or_else(|| fail("client_assertion is required"))?;
            return self
                .by_assertion(assertion, form.get("client_id"), token_url)
                .await
                .map(|c| (c, Method::PrivateKeyJwt));
        }
        let id = form.get("client_id").ok_or_else(|| fail("the client is not identified (client_id)"))?;
        let record = self.enabled(id).await?.ok_or_else(|| fail("unknown client"))?;
        match record.client.kind {
            ClientKind::Public => Ok((record.client, Method::None)),
            ClientKind::ConfidentialSymmetric => Err(fail("this client must authenticate with its client secret")),
            ClientKind::ConfidentialAsymmetric | ClientKind::Backend => {
                Err(fail("this client must authenticate with a signed client assertion (private_key_jwt)"))
            }
        }
    }

    /// The client a refresh token was issued to, for a refresh without client
    /// authentication: only an enabled public client may refresh that way.
    pub(super) async fn public_by_refresh(&self, id: &str) -> Result<(Client, Method), OAuthError> {
        let record = self.enabled(id).await?.ok_or_else(|| OAuthError::invalid_client("unknown client"))?;
        match record.client.kind {
            ClientKind::Public => Ok((record.client, Method::None)),
            _ => Err(OAuthError::invalid_client("this client must authenticate to refresh its tokens")),
        }
    }

    async fn enabled(&self, id: &str) -> Result<Option<ClientRecord>, OAuthError> {
        let record = self.record(id).await.map_err(|e| OAuthError::server(&e))?;
        Ok(record.filter(|r| r.disabled_at.is_none()))
    }

    /// A confidential-symmetric client by its secret. Every failure looks the same and takes
    /// one argon2 verification.
    async fn by_secret(&self, id: &str, secret: &str) -> Result<Client, OAuthError> {
        let record = self.enabled(id).await?;
        let hash = match &record {
            Some(r) if r.client.kind == ClientKind::ConfidentialSymmetric => r.secret_hash.clone(),
            _ => None,
        };
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| crypto::decoy_hash().to_string());
        let secret = secret.to_string();
        let ok = self.hasher.run(move || crypto::verify_secret(&secret, &hash)).await?;
        match record {
            Some(r) if ok && known => Ok(r.client),
            _ => Err(OAuthError::invalid_client("client authentication failed")),
        }
    }

    async fn by_assertion(
        &self,
        assertion: &str,
        form_id: Option<&str>,
        token_url: &str,
    ) -> Result<Client, OAuthError> {
        let bad = |d: &str| OAuthError::invalid_client(format!("client assertion refused: {d}"));
        let header = jsonwebtoken::decode_header(assertion).map_err(|_| bad("not a signed JWT"))?;
        if !matches!(header.alg, Algorithm::RS384 | Algorithm::ES384) {
            return Err(bad("the algorithm must be RS384 or ES384"));
        }
        let kid = header.kid.ok_or_else(|| bad("the header has no kid"))?;
        // Who the assertion claims to be from, to find its keys; trusted only once verified.
        let payload = assertion.split('.').nth(1).ok_or_else(|| bad("not a signed JWT"))?;
        let claims: serde_json::Value = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| bad("the claims are not JSON"))?;
        let iss = claims.get("iss").and_then(|v| v.as_str()).ok_or_else(|| bad("iss is missing"))?;
        if claims.get("sub").and_then(|v| v.as_str()) != Some(iss) {
            return Err(bad("sub must equal iss (the client id)"));
        }
        if form_id.is_some_and(|id| id != iss) {
            return Err(bad("client_id differs from the assertion's issuer"));
        }
        let record = self.enabled(iss).await?.ok_or_else(|| bad("unknown client"))?;
        if !record.client.kind.uses_assertions() {
            return Err(bad("this client does not authenticate with private_key_jwt"));
        }
        let key = self
            .keys
            .key_for(&record, &kid, header.alg)
            .await
            .map_err(|m| {
                tracing::warn!(client_id = %iss, error = %m, "client keys unavailable");
                bad("the client's keys could not be read")
            })?
            .ok_or_else(|| bad("no key of the client matches kid and algorithm"))?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = CLOCK_SKEW;
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        validation.set_issuer(&[iss]);
        validation.sub = Some(iss.to_string());
        validation.set_audience(&[token_url]);
        let data = jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind::*;
            match e.kind() {
                ExpiredSignature => bad("it has expired"),
                InvalidAudience => bad("aud must be the token URL"),
                ImmatureSignature => bad("it is not valid yet (nbf)"),
                InvalidSignature => bad("the signature does not verify"),
                MissingRequiredClaim(c) => bad(&format!("{c} is missing")),
                _ => bad("it does not verify"),
            }
        })?;
        let now = Utc::now();
        if data.claims.exp > now.timestamp() + MAX_ASSERTION_LIFETIME + CLOCK_SKEW as i64 {
            return Err(bad("exp is more than five minutes ahead"));
        }
        let jti = data.claims.jti.filter(|j| !j.is_empty()).ok_or_else(|| bad("jti is missing"))?;
        if jti.len() > 255 {
            return Err(bad("jti is longer than 255 characters"));
        }
        let expires = Utc.timestamp_opt(data.claims.exp + CLOCK_SKEW as i64, 0).single().unwrap_or(now);
        let inserted = sqlx::query(
            "INSERT INTO client_assertions (jti, client_id, expires_at) VALUES ($1, $2, $3) ON CONFLICT (client_id, jti) DO NOTHING",
        )
        .bind(&jti)
        .bind(iss)
        .bind(crypto::ts(expires))
        .execute(&self.store.pool)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(bad("this assertion (jti) was already used"));
        }
        self.clean_spent_assertions().await;
        Ok(record.client)
    }

    /// Removes expired assertion ids, at most once a minute per process.
    async fn clean_spent_assertions(&self) {
        let now = Utc::now();
        let last = self.last_cleanup.load(Ordering::Relaxed);
        if now.timestamp() - last < 60
            || self.last_cleanup.compare_exchange(last, now.timestamp(), Ordering::SeqCst, Ordering::Relaxed).is_err()
        {
            return;
        }
        if let Err(e) = sqlx::query("DELETE FROM client_assertions WHERE expires_at < $1")
            .bind(crypto::ts(now))
            .execute(&self.store.pool)
            .await
        {
            tracing::warn!(error = %e, "could not clean spent client assertions");
        }
    }
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
fn parse_basic(header: &str) -> Result<(String, String), OAuthError> {
    let malformed =
        || OAuthError { basic_attempted: true, ..OAuthError::invalid_client("malformed HTTP Basic credentials") };
    let (scheme, value) = header.trim().split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_request(
            "only HTTP Basic client authentication goes in the Authorization header",
        ));
    }
    let decoded = STANDARD.decode(value.trim()).map_err(|_| malformed())?;
    let text = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = text.split_once(':').ok_or_else(malformed)?;
    let unform = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(std::borrow::Cow::into_owned)
            .map_err(|_| malformed())
    };
    let (id, secret) = (unform(id)?, unform(secret)?);
    if id.is_empty() {
        return Err(malformed());
    }
    Ok((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let h = format!("Basic {}", STANDARD.encode("my%20app:s%3Ac+r"));
        assert_eq!(parse_basic(&h).unwrap(), ("my app".into(), "s:c r".into()));
        assert!(parse_basic("Basic !!!").unwrap_err().basic_attempted);
        assert_eq!(parse_basic("Bearer x").unwrap_err().code, super::super::error::ErrorCode::InvalidRequest);
    }
}
