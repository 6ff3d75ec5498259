//! The simulated hospital's OAuth2 token endpoint (RFC 6749 client credentials, client
//! auth by HTTP Basic or form fields, or by a SMART Backend Services assertion checked in
//! `backend.rs`) and the book of tokens it has issued, each with a
//! real expiry and the epoch it was issued in (`expire_tokens` starts a new epoch). Errors
//! are RFC 6749 JSON, every answer `Cache-Control: no-store`. It never logs secrets or
//! tokens and never accepts a token it did not issue.

use super::search::decode_pairs;
use super::{Counters, Shared};
use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest token request body accepted.
const MAX_BODY_BYTES: usize = 16 * 1024;
/// Scope granted when the client asks for none.
const DEFAULT_SCOPE: &str = "system/*.read";

/// Issued tokens: expiry and issuing epoch.
#[derive(Debug, Default)]
pub(super) struct TokenBook {
    tokens: Mutex<HashMap<String, (Instant, u64)>>,
}

impl TokenBook {
    pub(super) fn issue(&self, ttl: Duration, epoch: u64) -> String {
        let token = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let now = Instant::now();
        let mut tokens = self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        tokens.retain(|_, (expires, issued_in)| *expires > now && *issued_in == epoch);
        tokens.insert(token.clone(), (now + ttl, epoch));
        token
    }

    pub(super) fn is_live(&self, token: &str, epoch: u64) -> bool {
        let tokens = self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        tokens.get(token).is_some_and(|(expires, issued_in)| *expires > Instant::now() && *issued_in == epoch)
    }
}

fn oauth_json(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store"), (header::PRAGMA, "no-cache")],
        body.to_string(),
    )
        .into_response()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    oauth_json(status, &json!({"error": error, "error_description": description}))
}

pub(super) async fn method_not_allowed() -> Response {
    let mut resp = oauth_error(StatusCode::METHOD_NOT_ALLOWED, "invalid_request", "use POST");
    resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
    resp
}

/// `POST /token`.
pub(super) async fn token(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    if !shared.options.issues_tokens() {
        return oauth_error(StatusCode::NOT_FOUND, "invalid_request", "this server does not issue tokens");
    }
    let (parts, body) = req.into_parts();
    let is_form = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| {
        ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/x-www-form-urlencoded")
    });
    if !is_form {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        );
    }
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
        return oauth_error(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request", "the request body is too large");
    };
    let form = match std::str::from_utf8(&bytes).map_err(|_| "the body is not UTF-8".to_string()).and_then(decode_pairs)
    {
        Ok(form) => form,
        Err(message) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &message),
    };
    let mut fields: HashMap<&str, &str> = HashMap::new();
    for (name, value) in &form {
        if fields.insert(name, value).is_some() {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("`{name}` appears more than once"),
            );
        }
    }
    match fields.get("grant_type") {
        None => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "grant_type is required"),
        Some(&"client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only client_credentials is supported",
            )
        }
    }
    if let Some(client) = &shared.options.backend_services {
        if let Err(reason) = super::backend::verify(client, &shared.token_url, &fields, &shared.spent_assertions).await
        {
            Counters::bump(&shared.counters.rejected_401);
            return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", &reason);
        }
        return issue(&shared, &fields);
    }
    let Some((client_id, client_secret)) = &shared.options.client_credentials else {
        return oauth_error(StatusCode::NOT_FOUND, "invalid_request", "this server does not issue tokens");
    };
    let basic = basic_credentials(&parts.headers);
    let presented = match (&basic, fields.get("client_id"), fields.get("client_secret")) {
        (Some(_), _, Some(_)) => {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "use one client authentication method")
        }
        (Some(Some((id, secret))), _, None) => Some((id.as_str(), secret.as_str(), true)),
        (Some(None), _, None) => None,
        (None, Some(id), Some(secret)) => Some((*id, *secret, false)),
        (None, _, _) => None,
    };
    let authenticated =
        presented.is_some_and(|(id, secret, basic)| matches_client(id, secret, basic, client_id, client_secret));
    if !authenticated {
        Counters::bump(&shared.counters.rejected_401);
        let mut resp = oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "client authentication failed");
        if basic.is_some() {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"token\""));
        }
        return resp;
    }
    issue(&shared, &fields)
}

/// A new access token for an authenticated client.
fn issue(shared: &Shared, fields: &HashMap<&str, &str>) -> Response {
    let ttl = shared.options.token_ttl;
    let access_token = shared.tokens.issue(ttl, shared.controls.epoch());
    let scope = fields.get("scope").copied().unwrap_or(DEFAULT_SCOPE);
    oauth_json(
        StatusCode::OK,
        &json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ttl.as_millis().div_ceil(1000),
            "scope": scope,
        }),
    )
}

/// `Some(Some((id, secret)))` for a well-formed Basic header, `Some(None)` for a malformed
/// one, `None` when there is none. The parts are returned as sent (see [`matches_client`]).
fn basic_credentials(headers: &HeaderMap) -> Option<Option<(String, String)>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let parsed = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|text| text.split_once(':').map(|(id, secret)| (id.to_string(), secret.to_string())));
    Some(parsed)
}

/// True when the presented pair is the registered client's. RFC 6749 §2.3.1 form-urlencodes
/// Basic credentials first; many clients do not, so for Basic both spellings are accepted.
fn matches_client(id: &str, secret: &str, basic: bool, client_id: &str, client_secret: &str) -> bool {
    let exact = |i: &str, s: &str| {
        constant_time_eq(i.as_bytes(), client_id.as_bytes()) & constant_time_eq(s.as_bytes(), client_secret.as_bytes())
    };
    let decoded = basic
        && decode_pairs(&format!("i={id}&s={secret}"))
            .ok()
            .filter(|p| p.len() == 2)
            .is_some_and(|p| exact(&p[0].1, &p[1].1));
    exact(id, secret) | decoded
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn tokens_expire_and_die_with_their_epoch() {
        let book = TokenBook::default();
        let t = book.issue(Duration::from_secs(60), 0);
        assert!(book.is_live(&t, 0));
        assert!(!book.is_live(&t, 1));
        assert!(!book.is_live("made-up", 0));
        let short = book.issue(Duration::ZERO, 0);
        assert!(!book.is_live(&short, 0));
    }

    #[test]
    fn reads_basic_credentials() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {}", STANDARD.encode("a%3Ab:s+1"))).unwrap(),
        );
        assert_eq!(basic_credentials(&h), Some(Some(("a%3Ab".into(), "s+1".into()))));
        assert!(matches_client("a%3Ab", "s+1", true, "a:b", "s 1"));
        assert!(matches_client("a+b", "p&q", true, "a+b", "p&q"));
        assert!(!matches_client("a", "wrong", false, "a", "right"));
        assert!(!matches_client("a%3Ab", "s+1", false, "a:b", "s 1"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert_eq!(basic_credentials(&h), Some(None));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert_eq!(basic_credentials(&h), None);
    }
}
