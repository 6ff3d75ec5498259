//! The REST adapter against small real HTTP servers: bearer and basic credentials, a next
//! link to another origin, a body that is not JSON, and the deadline.

use super::*;
use crate::config::{Secret, UpstreamAuth};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::sync::{Arc, Mutex};

type Seen = Arc<Mutex<Vec<Option<String>>>>;

/// A FHIR-ish server answering `/fhir/Patient` with one Patient and a `next` link chosen by
/// the test, recording each request's Authorization header.
async fn server(next: Option<String>, body: Option<&'static str>) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route(
            "/fhir/Patient",
            get(move |State(seen): State<Seen>, headers: HeaderMap| {
                let next = next.clone();
                async move {
                    seen.lock()
                        .unwrap()
                        .push(headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string));
                    if let Some(b) = body {
                        return b.to_string();
                    }
                    let mut bundle = json!({"resourceType": "Bundle", "type": "searchset", "entry": [
                        {"resource": {"resourceType": "Patient", "id": "p1"}, "search": {"mode": "match"}},
                        {"resource": {"resourceType": "OperationOutcome", "id": "o"}, "search": {"mode": "outcome"}}
                    ]});
                    if let Some(n) = next {
                        bundle["link"] = json!([{"relation": "next", "url": n}]);
                    }
                    bundle.to_string()
                }
            }),
        )
        .route(
            "/slow/Patient",
            get(|| async {
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                Json(json!({}))
            }),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/fhir"), seen)
}

fn source(url: &str, auth: UpstreamAuth) -> RestSource {
    let mut c = SourceConfig::rest("test", url);
    c.auth = auth;
    c.max_retries = 0;
    RestSource::new(&c, std::path::Path::new(".")).unwrap()
}

fn secret_in_env(var: &str, value: &str) -> Secret {
    // Each test uses its own variable name, so parallel tests do not race.
    std::env::set_var(var, value);
    Secret { env: Some(var.into()), file: None }
}

fn soon() -> Instant {
    Instant::now() + std::time::Duration::from_secs(5)
}

#[tokio::test]
async fn bearer_and_basic_credentials_are_sent_and_outcome_entries_skipped() {
    let (url, seen) = server(None, None).await;
    let bearer = source(&url, UpstreamAuth::Bearer { token: secret_in_env("PORTICO_TEST_BEARER_1", "tok-123") });
    let patients = bearer.list_patients(soon()).await.unwrap();
    assert_eq!(patients.len(), 1, "only match entries of the searched type");
    let basic = source(
        &url,
        UpstreamAuth::Basic { username: "gw".into(), password: secret_in_env("PORTICO_TEST_BASIC_1", "pw") },
    );
    basic.list_patients(soon()).await.unwrap();
    let none = source(&url, UpstreamAuth::None);
    none.list_patients(soon()).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen, vec![Some("Bearer tok-123".into()), Some("Basic Z3c6cHc=".into()), None]);
}

#[tokio::test]
async fn a_next_link_to_another_origin_is_not_followed() {
    let (url, seen) = server(Some("http://127.0.0.1:9/fhir/Patient?page=2".into()), None).await;
    let s = source(&url, UpstreamAuth::Bearer { token: secret_in_env("PORTICO_TEST_BEARER_2", "tok") });
    let err = s.list_patients(soon()).await.unwrap_err();
    assert!(err.to_string().contains("another origin"), "{err}");
    assert_eq!(seen.lock().unwrap().len(), 1, "the credentials went nowhere else");
}

#[tokio::test]
async fn a_body_that_is_not_a_bundle_is_a_clear_error() {
    let (url, _) = server(None, Some("<html>maintenance</html>")).await;
    let err = source(&url, UpstreamAuth::None).list_patients(soon()).await.unwrap_err();
    assert!(matches!(err, SourceError::BadResponse { .. }), "{err}");
    assert!(err.to_string().starts_with("test: unexpected response: body is not JSON"), "{err}");
}

#[tokio::test]
async fn the_deadline_cuts_a_hanging_request() {
    let (url, _) = server(None, None).await;
    let slow = url.replace("/fhir", "/slow");
    let s = source(&slow, UpstreamAuth::None);
    let deadline = Instant::now() + std::time::Duration::from_millis(300);
    let err = s.list_patients(deadline).await.unwrap_err();
    assert!(matches!(err, SourceError::DeadlineExceeded { .. }), "{err}");
    assert!(Instant::now() < deadline + std::time::Duration::from_secs(2));
    assert_eq!(s.status().state, "degraded");
}
