//! Bearer checks without a store round trip per token (issue 15 part 3): a check that
//! passed is cached, yet every kind of revocation and termination — the RFC 7009 endpoint,
//! the patient revoking the app, HIM terminating the link, refresh-token reuse — refuses
//! the very next request, on this gateway and on another sharing the PostgreSQL database,
//! and a cached token is refused at its expiry.

use crate::common::*;
use crate::smart_launch::{bob, body, token_for, CLIENT};
use serde_json::Value;
use std::sync::Arc;

/// Scopes with a refresh token and patient reads.
const SCOPES: &str = "launch/patient offline_access patient/*.rs";

/// The status of reading the patient `pid` with `token` on `gw`.
async fn read(gw: &Gateway, pid: &str, token: &str) -> u16 {
    gw.get_with(&format!("Patient/{pid}"), Some(token), &[]).await.0
}

/// Reads twice (the second answer comes from the cached check) and expects both to pass.
async fn used(gw: &Gateway, pid: &str, token: &str) {
    assert_eq!(read(gw, pid, token).await, 200, "a fresh check passes");
    assert_eq!(read(gw, pid, token).await, 200, "the cached check passes");
}

fn tokens(t: &Value) -> (String, String) {
    (t["access_token"].as_str().unwrap().to_string(), t["patient"].as_str().unwrap().to_string())
}

async fn post_form(gw: &Gateway, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = reqwest::Client::new().post(format!("{}{path}", gw.origin)).form(form).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The id of the first patient link of `username`'s account.
async fn first_link(gw: &Gateway, username: &str) -> String {
    let store = portico::store::Store::open(&gw.database_url, 2).await.unwrap();
    let link: String = sqlx::query_scalar(
        "SELECT p.id FROM account_patients p JOIN accounts a ON a.id = p.account_id WHERE a.username = $1",
    )
    .bind(username)
    .fetch_one(&store.pool)
    .await
    .unwrap();
    store.pool.close().await;
    link
}

/// HIM ends the link through the staff endpoint.
async fn terminate(gw: &Gateway, link: &str) {
    let r = gw
        .http
        .post(format!("{}/admin/access/terminate", gw.origin))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"link_id": link, "reason": "left the practice", "by": "HIM desk"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_revocation_refuses_the_next_request_after_a_cached_check() {
    let gw = Gateway::start(&body()).await;
    let b = bob(&gw, "tc1@example.org").await;

    // The revocation endpoint.
    let (access, pid) = tokens(&token_for(&gw, &b, SCOPES, &[]).await);
    used(&gw, &pid, &access).await;
    let (status, _) = post_form(&gw, "/revoke", &[("token", &access), ("client_id", CLIENT)]).await;
    assert_eq!(status, 200);
    assert_eq!(read(&gw, &pid, &access).await, 401, "revoked at the endpoint");

    // The patient revokes the app.
    let (access, _) = tokens(&token_for(&gw, &b, SCOPES, &[]).await);
    used(&gw, &pid, &access).await;
    let (csrf, html) = b.form_page("/account").await;
    let grant = value_of(&html, "grant_id").remove(0);
    let (status, _, _) = b.post("/account/apps/revoke", &[("csrf", &csrf), ("grant_id", &grant)]).await;
    assert_eq!(status, 303);
    assert_eq!(read(&gw, &pid, &access).await, 401, "the patient revoked the app");

    // Refresh-token reuse revokes the family, including the rotated access token in use.
    let t = token_for(&gw, &b, SCOPES, &[]).await;
    let (first, _) = tokens(&t);
    let refresh = t["refresh_token"].as_str().unwrap().to_string();
    used(&gw, &pid, &first).await;
    let refresh_form = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str()), ("client_id", CLIENT)];
    let (status, rotated) = post_form(&gw, "/token", &refresh_form).await;
    assert_eq!(status, 200, "{rotated}");
    let (second, _) = tokens(&rotated);
    used(&gw, &pid, &second).await;
    let (status, reused) = post_form(&gw, "/token", &refresh_form).await;
    assert_eq!((status, reused["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(read(&gw, &pid, &second).await, 401, "refresh reuse revoked the rotated token");
    assert_eq!(read(&gw, &pid, &first).await, 401, "and the first one");

    // HIM terminates the link: every token on it stops.
    let (access, _) = tokens(&token_for(&gw, &b, SCOPES, &[]).await);
    used(&gw, &pid, &access).await;
    terminate(&gw, &first_link(&gw, "tc1@example.org").await).await;
    assert_eq!(read(&gw, &pid, &access).await, 401, "HIM terminated the link");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_app_is_refused_on_the_next_request() {
    let gw = Gateway::start(&body()).await;
    let b = bob(&gw, "tc5@example.org").await;
    let (access, pid) = tokens(&token_for(&gw, &b, SCOPES, &[]).await);
    used(&gw, &pid, &access).await;
    let r =
        gw.http.post(format!("{}/admin/clients/{CLIENT}/disable", gw.origin)).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(read(&gw, &pid, &access).await, 401, "staff disabled the app");
}

/// The check really is cached, and the generation is what keeps it honest: a token revoked
/// behind the gateway's back (no generation raised — no path of the gateway does this)
/// still passes, and refuses as soon as the generation moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cached_check_holds_only_while_the_revocation_generation_is_unchanged() {
    let gw = Gateway::start(&body()).await;
    let b = bob(&gw, "tc2@example.org").await;
    let (access, pid) = tokens(&token_for(&gw, &b, SCOPES, &[]).await);
    used(&gw, &pid, &access).await;
    let store = portico::store::Store::open(&gw.database_url, 2).await.unwrap();
    sqlx::query("UPDATE tokens SET revoked_at = '2000-01-01T00:00:00+00:00' WHERE kind = 'access'")
        .execute(&store.pool)
        .await
        .unwrap();
    assert_eq!(read(&gw, &pid, &access).await, 200, "served from the cached check");
    sqlx::query("UPDATE revocation_generation SET generation = generation + 1 WHERE id = 1")
        .execute(&store.pool)
        .await
        .unwrap();
    assert_eq!(read(&gw, &pid, &access).await, 401, "a new generation sends the check to the store");
    store.pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_token_is_refused_at_its_expiry() {
    let gw = Gateway::start(&body().replacen("[auth]\n", "[auth]\naccess_token_ttl = \"3s\"\n", 1)).await;
    let b = bob(&gw, "tc3@example.org").await;
    let t = token_for(&gw, &b, SCOPES, &[]).await;
    assert_eq!(t["expires_in"], 3);
    let (access, pid) = tokens(&t);
    used(&gw, &pid, &access).await;
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    assert_eq!(read(&gw, &pid, &access).await, 401, "expired, though cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_on_one_postgresql_see_each_others_revocations_on_the_next_request() {
    if !require("postgres") {
        return;
    }
    with_schema(|schema, _pool| async move {
        let url = url_for(&schema);
        let body = body();
        let start = || async { Gateway::start_in(Arc::new(tempfile::tempdir().unwrap()), &body, Some(&url)).await };
        let (one, two) = (start().await, start().await);
        let b = bob(&one, "tc4@example.org").await;

        // Revoked on one, refused on two.
        let (access, pid) = tokens(&token_for(&one, &b, SCOPES, &[]).await);
        used(&one, &pid, &access).await;
        used(&two, &pid, &access).await;
        let (status, _) = post_form(&one, "/revoke", &[("token", &access), ("client_id", CLIENT)]).await;
        assert_eq!(status, 200);
        assert_eq!(read(&two, &pid, &access).await, 401, "revoked on the other gateway");
        assert_eq!(read(&one, &pid, &access).await, 401);

        // Terminated on two, refused on one.
        let (access, _) = tokens(&token_for(&one, &b, SCOPES, &[]).await);
        used(&one, &pid, &access).await;
        used(&two, &pid, &access).await;
        terminate(&two, &first_link(&two, "tc4@example.org").await).await;
        assert_eq!(read(&one, &pid, &access).await, 401, "terminated on the other gateway");
        one.stop().await;
        two.stop().await;
    })
    .await;
}
