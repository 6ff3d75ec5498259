//! End-to-end tests of the simulator's operational behaviour — bearer tokens and the token
//! endpoint, throttling, outages, latency, stats and shutdown — over real HTTP on
//! 127.0.0.1:0 with the synthetic store of `super`. Never real patient data.

use super::{body, get, secured, sim};
use crate::simulator::{RunningSimulator, SimulatorOptions};
use serde_json::Value;
use std::time::Duration;

async fn fetch_token(s: &RunningSimulator, secret: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(s.token_url())
        .basic_auth("gw", Some(secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "system/*.read")])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn bearer_tokens_are_required_checked_and_expire() {
    let s = sim(secured()).await;
    let url = format!("{}/Patient/p1", s.base_url());
    let client = reqwest::Client::new();
    let resp = get(&url).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer error=\"invalid_token\"");
    assert_eq!(get(&format!("{}/metadata", s.base_url())).await.status(), 200, "metadata is public");

    let resp = fetch_token(&s, "wrong").await;
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "invalid_client");

    let resp = fetch_token(&s, "s3cret").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let t: Value = resp.json().await.unwrap();
    assert_eq!((t["token_type"].as_str(), t["expires_in"].as_u64()), (Some("Bearer"), Some(3600)));
    let token = t["access_token"].as_str().unwrap().to_string();
    assert_eq!(client.get(&url).bearer_auth(&token).send().await.unwrap().status(), 200);
    assert_eq!(client.get(&url).bearer_auth("forged").send().await.unwrap().status(), 401);

    s.controls().expire_tokens();
    assert_eq!(client.get(&url).bearer_auth(&token).send().await.unwrap().status(), 401);
    let fresh: Value = fetch_token(&s, "s3cret").await.json().await.unwrap();
    let fresh = fresh["access_token"].as_str().unwrap();
    assert_ne!(fresh, token);
    assert_eq!(client.get(&url).bearer_auth(fresh).send().await.unwrap().status(), 200);

    // Client secret in the form body; other grants and a missing grant are refused.
    let form = |pairs: &[(&str, &str)]| client.post(s.token_url()).form(pairs).send();
    let ok =
        form(&[("grant_type", "client_credentials"), ("client_id", "gw"), ("client_secret", "s3cret")]).await.unwrap();
    assert_eq!(ok.status(), 200);
    let resp = form(&[("grant_type", "password"), ("client_id", "gw"), ("client_secret", "s3cret")]).await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "unsupported_grant_type");
    let resp = form(&[("client_id", "gw"), ("client_secret", "s3cret")]).await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "invalid_request");
    let big = "x".repeat(20 * 1024);
    let resp = form(&[("grant_type", "client_credentials"), ("scope", &big)]).await.unwrap();
    assert_eq!(resp.status(), 413);

    let stats = s.stats();
    assert_eq!(stats.rejected_401, 4, "{stats:?}");
    assert_eq!(stats.token_requests, 7, "{stats:?}");
    s.stop().await;
}

#[tokio::test]
async fn tokens_expire_after_their_lifetime() {
    let s = sim(SimulatorOptions { token_ttl: Duration::from_millis(300), ..secured() }).await;
    let t: Value = fetch_token(&s, "s3cret").await.json().await.unwrap();
    assert_eq!(t["expires_in"], 1);
    let token = t["access_token"].as_str().unwrap();
    let url = format!("{}/Observation?patient=p1", s.base_url());
    let client = reqwest::Client::new();
    assert_eq!(client.get(&url).bearer_auth(token).send().await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(client.get(&url).bearer_auth(token).send().await.unwrap().status(), 401);
    s.stop().await;
}

#[tokio::test]
async fn throttles_goes_down_and_counts() {
    let s = sim(SimulatorOptions { retry_after_secs: 7, ..Default::default() }).await;
    let url = format!("{}/Patient/p1", s.base_url());
    s.controls().fail_next(2);
    for _ in 0..2 {
        let resp = get(&url).await;
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["retry-after"], "7");
        assert_eq!(body(resp).await["issue"][0]["code"], "throttled");
    }
    assert_eq!(get(&url).await.status(), 200);

    s.controls().set_down(true);
    let resp = get(&url).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(body(resp).await["resourceType"], "OperationOutcome");
    assert_eq!(get(&format!("{}/metadata", s.base_url())).await.status(), 503);
    assert_eq!(get(&format!("{}/Patient/p1/_history", s.base_url())).await.status(), 503);
    s.controls().set_down(false);

    s.controls().set_latency(Duration::from_millis(150));
    let began = std::time::Instant::now();
    assert_eq!(get(&url).await.status(), 200);
    assert!(began.elapsed() >= Duration::from_millis(150));

    let stats: Value = get(&format!("http://{}/_simulator/stats", s.addr())).await.json().await.unwrap();
    assert_eq!(stats["fhir_requests"], 7);
    assert_eq!(stats["answered_429"], 2);
    assert_eq!(s.stats().fhir_requests, 7);
    s.stop().await;
}

#[tokio::test]
async fn fail_rate_one_always_throttles_but_not_metadata() {
    let s = sim(SimulatorOptions { fail_rate: 1.0, ..Default::default() }).await;
    assert_eq!(get(&format!("{}/Patient?_count=1", s.base_url())).await.status(), 429);
    assert_eq!(get(&format!("{}/metadata", s.base_url())).await.status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn stop_frees_the_port() {
    let s = sim(SimulatorOptions::default()).await;
    let addr = s.addr();
    s.stop().await;
    assert!(reqwest::get(format!("http://{addr}/fhir/metadata")).await.is_err());
    let again = tokio::net::TcpListener::bind(addr).await;
    assert!(again.is_ok(), "port still held");
}
