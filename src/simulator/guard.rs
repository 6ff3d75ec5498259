//! The simulator's front door, run before every handler: counts requests, sleeps the
//! configured latency, answers 503 while "down", 429 + Retry-After when throttling, and 401
//! when a bearer token is required and missing, unknown or expired; under the Epic-like
//! profile, 403 for a `Patient` search without search parameters. Also the FHIR response
//! helpers every simulator handler uses. It never looks at request bodies or query values
//! and never logs anything but method and path.

use super::{Counters, Shared, SimulatorProfile};
use crate::fhir::model::codes::IssueType;
use crate::fhir::outcome::{operation_outcome, Issue};
use crate::fhir::FHIR_JSON;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::Arc;

/// Longest query string accepted on FHIR endpoints.
const MAX_QUERY_BYTES: usize = 8 * 1024;

/// Which part of the simulator a path belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Area {
    /// `/fhir/metadata` and the SMART discovery document: no token, no throttling.
    PublicFhir,
    Fhir,
    Token,
    /// `/_simulator/…` and anything else: the simulator's own instrument panel.
    Other,
}

fn area(path: &str) -> Area {
    match path {
        "/fhir/metadata" | "/fhir/.well-known/smart-configuration" => Area::PublicFhir,
        "/token" => Area::Token,
        p if p == "/fhir" || p.starts_with("/fhir/") => Area::Fhir,
        _ => Area::Other,
    }
}

pub(super) async fn guard(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let area = area(req.uri().path());
    tracing::debug!(method = %req.method(), path = %req.uri().path(), "simulator request");
    if area == Area::Other {
        return next.run(req).await;
    }
    let counters = &shared.counters;
    Counters::bump(if area == Area::Token { &counters.token_requests } else { &counters.fhir_requests });

    let latency = shared.controls.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if shared.controls.is_down() {
        let mut resp = outcome(
            StatusCode::SERVICE_UNAVAILABLE,
            Issue::error(IssueType::Transient, "the system is down for maintenance"),
        );
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(shared.options.retry_after_secs));
        return resp;
    }
    if area != Area::Fhir {
        return next.run(req).await;
    }
    if req.uri().query().is_some_and(|q| q.len() > MAX_QUERY_BYTES) {
        return outcome(
            StatusCode::URI_TOO_LONG,
            Issue::error(IssueType::TooLong, format!("query string longer than {MAX_QUERY_BYTES} bytes")),
        );
    }
    if shared.controls.take_forced_failure() || throttled_at_random(shared.options.fail_rate) {
        Counters::bump(&counters.answered_429);
        let mut resp = outcome(
            StatusCode::TOO_MANY_REQUESTS,
            Issue::error(IssueType::Throttled, "too many requests, retry later"),
        );
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(shared.options.retry_after_secs));
        return resp;
    }
    if shared.options.issues_tokens() {
        let token = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer_token);
        let live = token.is_some_and(|t| shared.tokens.is_live(t, shared.controls.epoch()));
        if !live {
            Counters::bump(&counters.rejected_401);
            let message = if token.is_some() {
                "the access token is unknown or expired"
            } else {
                "a bearer access token is required"
            };
            let mut resp = outcome(StatusCode::UNAUTHORIZED, Issue::error(IssueType::Login, message));
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
            return resp;
        }
    }
    if shared.options.profile == SimulatorProfile::Epic && is_unparameterized_patient_search(&req) {
        return outcome(
            StatusCode::FORBIDDEN,
            Issue::error(
                IssueType::Forbidden,
                "a Patient search needs search parameters (this system does not list every patient)",
            ),
        );
    }
    next.run(req).await
}

/// `GET /fhir/Patient` with nothing to search by: no parameter but result controls
/// (`_count`, `_format` …); the paging cursor continues a search that had some.
fn is_unparameterized_patient_search(req: &Request) -> bool {
    const RESULT_CONTROLS: [&str; 7] = ["_count", "_format", "_pretty", "_summary", "_elements", "_sort", "_total"];
    let path = req.uri().path().trim_end_matches('/');
    if path != "/fhir/Patient" {
        return false;
    }
    let query = req.uri().query().unwrap_or("");
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').map_or(p, |(name, _)| name))
        .all(|name| RESULT_CONTROLS.contains(&name))
}

fn throttled_at_random(rate: f64) -> bool {
    rate > 0.0 && rand::random::<f64>() < rate
}

/// The token of an `Authorization: Bearer …` header (scheme case-insensitive).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A FHIR JSON response.
pub(super) fn fhir_json(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, FHIR_JSON)], body.to_string()).into_response()
}

/// A FHIR JSON response already written.
pub(super) fn fhir_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, FHIR_JSON)], body).into_response()
}

/// An OperationOutcome response with one issue.
pub(super) fn outcome(status: StatusCode, issue: Issue) -> Response {
    fhir_json(status, &operation_outcome(&[issue]))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn classifies_paths_and_reads_bearer_tokens() {
        assert_eq!(area("/fhir/metadata"), Area::PublicFhir);
        assert_eq!(area("/fhir/Patient/1"), Area::Fhir);
        assert_eq!(area("/fhir"), Area::Fhir);
        assert_eq!(area("/fhirx"), Area::Other);
        assert_eq!(area("/token"), Area::Token);
        assert_eq!(area("/_simulator/stats"), Area::Other);
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
    }

    #[test]
    fn knows_an_unparameterized_patient_search() {
        let req = |uri: &str| axum::http::Request::builder().uri(uri).body(axum::body::Body::empty()).unwrap();
        assert!(is_unparameterized_patient_search(&req("/fhir/Patient")));
        assert!(is_unparameterized_patient_search(&req("/fhir/Patient/?_count=100")));
        assert!(!is_unparameterized_patient_search(&req("/fhir/Patient?identifier=x|1&_count=10")));
        assert!(!is_unparameterized_patient_search(&req("/fhir/Patient?_id=a,b")));
        assert!(!is_unparameterized_patient_search(&req("/fhir/Patient/p1")));
        assert!(!is_unparameterized_patient_search(&req("/fhir/Observation")));
    }
}
