//! Floods don't stall the gateway (issue 12 part 2): a login flood is answered 429 with
//! `Retry-After` by the bounded hashing pool while FHIR reads go on; rate limits per client
//! IP on `/login`, `/register`, `/enroll`, `/token` and `/authorize` and per account; thirty
//! parallel wrong passwords take no more attempts than the lockout allows; anonymous visits
//! store no session rows, ended sessions are swept, over-long `state`/`nonce` are refused;
//! an unknown HTTP method is counted as `other`. Statuses are asserted, never timings.
//! `TEST_ON_POSTGRES=1` runs the same on PostgreSQL.

use crate::common::*;
use std::sync::Arc;

const CLIENT: &str = "flood-app";
const REDIRECT: &str = "http://127.0.0.1:9/callback";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// The gateway over the fixture files with one public app and `auth` as extra `[auth]` lines.
async fn gateway(auth: &str) -> Gateway {
    let body = format!(
        "[auth]\n{auth}\n[[auth.clients]]\nclient_id = \"{CLIENT}\"\nname = \"Flood App\"\nkind = \"public\"\n\
         redirect_uris = [\"{REDIRECT}\"]\nallowed_scopes = \"launch/patient openid fhirUser patient/*.rs\"\n{}",
        fixture_file_sources()
    );
    Gateway::start(&body).await
}

/// Rate limits far above anything a test sends, for the tests about something else.
const NO_LIMITS: &str = "[auth.rate_limits]\nper_ip_per_minute = 100000\nper_ip_burst = 100000\n\
                         per_account_per_minute = 100000\nper_account_burst = 100000";

async fn store_of(gw: &Gateway) -> portico::store::Store {
    portico::store::Store::open(&gw.database_url, 1).await.unwrap()
}

async fn count(store: &portico::store::Store, sql: &str) -> i64 {
    use sqlx::Row;
    sqlx::query(sql).fetch_one(&store.pool).await.unwrap().get(0)
}

fn authorize_url(gw: &Gateway, state: &str, nonce: &str) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", CLIENT)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "launch/patient openid patient/*.rs")
        .append_pair("state", state)
        .append_pair("nonce", nonce)
        .append_pair("aud", &gw.fhir)
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    format!("{}/authorize?{}", gw.origin, q.finish())
}

fn retry_after(r: &reqwest::Response) -> Option<u64> {
    r.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_flood_is_answered_429_while_fhir_reads_go_on() {
    // One hashing thread and one waiting place; rate limits out of the way.
    let gw = Arc::new(gateway(&format!("hash_workers = 1\nhash_queue = 1\n{NO_LIMITS}")).await);
    let patient = gw.patient_id("ehr", "pt-10001");
    let b = Arc::new(Browser::new(&gw));
    let (csrf, _) = b.form_page("/login").await;
    let logins = (0..40).map(|i| {
        let (b, csrf) = (b.clone(), csrf.clone());
        tokio::spawn(async move {
            let name = format!("nobody-{i}@example.org");
            let r = b
                .http
                .post(b.url("/login"))
                .form(&[("csrf", csrf.as_str()), ("username", &name), ("password", "wrong-password-123")])
                .send()
                .await
                .unwrap();
            let (status, wait) = (r.status().as_u16(), retry_after(&r));
            (status, wait, r.text().await.unwrap())
        })
    });
    let reads = (0..5).map(|_| {
        let (gw, patient) = (gw.clone(), patient.clone());
        tokio::spawn(async move { gw.get(&format!("Patient/{patient}")).await })
    });
    let (logins, reads) =
        futures::future::join(futures::future::join_all(logins), futures::future::join_all(reads)).await;
    for read in reads {
        let (status, body) = read.unwrap();
        assert_eq!(status, 200, "a FHIR read during the flood: {body}");
        assert_eq!(body["resourceType"], "Patient");
    }
    let logins: Vec<_> = logins.into_iter().map(Result::unwrap).collect();
    assert!(logins.iter().all(|(s, _, _)| matches!(s, 401 | 429)), "only refusals, no 5xx: {logins:?}");
    let refused: Vec<_> = logins.iter().filter(|(s, _, _)| *s == 429).collect();
    assert!(!refused.is_empty(), "the pool's queue filled up");
    assert!(logins.iter().any(|(s, _, _)| *s == 401), "the admitted ones were checked");
    for (_, wait, html) in &refused {
        assert!(wait.is_some_and(|w| w >= 1), "429 carries Retry-After");
        assert!(html.contains("too many attempts"), "{html}");
    }
}

#[tokio::test]
async fn each_of_the_five_doors_is_limited_per_client_ip() {
    let gw = gateway(
        "[auth.rate_limits]\nper_ip_per_minute = 1\nper_ip_burst = 3\nper_account_per_minute = 1000\nper_account_burst = 1000",
    )
    .await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let url = |p: &str| format!("{}{p}", gw.origin);
    let token_form = [("grant_type", "authorization_code"), ("code", "nope"), ("client_id", CLIENT)];
    let page_form = [("csrf", "x"), ("username", "someone@example.org"), ("password", "whatever-long-one")];
    for door in ["/login", "/register", "/enroll", "/token", "/authorize"] {
        let send = || async {
            match door {
                "/authorize" => http.get(authorize_url(&gw, "st", "n")).send().await.unwrap(),
                "/token" => http.post(url(door)).form(&token_form).send().await.unwrap(),
                _ => http.post(url(door)).form(&page_form).send().await.unwrap(),
            }
        };
        for i in 0..3 {
            let r = send().await;
            assert_ne!(r.status().as_u16(), 429, "{door}: request {i} is within the burst");
        }
        let r = send().await;
        assert_eq!(r.status().as_u16(), 429, "{door}: the fourth is over the limit");
        assert!(retry_after(&r).is_some_and(|w| w >= 1), "{door}: Retry-After");
        let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
        let body = r.text().await.unwrap();
        if door == "/token" {
            assert!(content_type.starts_with("application/json"), "{content_type}");
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(json["error"], "temporarily_unavailable", "{body}");
        } else {
            assert!(content_type.starts_with("text/html") && body.contains("too many attempts"), "{door}: {body}");
        }
    }
    // Other endpoints are not limited.
    for _ in 0..5 {
        assert_eq!(gw.get("metadata").await.0, 200);
    }
}

#[tokio::test]
async fn sign_in_is_limited_per_account_whatever_the_address() {
    let gw = gateway(
        "[auth.rate_limits]\nper_ip_per_minute = 1000\nper_ip_burst = 1000\nper_account_per_minute = 1\nper_account_burst = 2",
    )
    .await;
    register(&gw, "Ann Lee", "ann@example.org").await;
    let b = Browser::new(&gw);
    let (csrf, _) = b.form_page("/login").await;
    let try_as = |name: &'static str| {
        let (b, csrf) = (&b, csrf.clone());
        async move {
            b.http
                .post(b.url("/login"))
                .form(&[("csrf", csrf.as_str()), ("username", name), ("password", "not-her-password-1")])
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(try_as("ann@example.org").await.status(), 401);
    assert_eq!(try_as("ANN@example.org").await.status(), 401);
    let r = try_as("ann@example.org").await;
    assert_eq!(r.status(), 429, "the account's third try within the minute");
    assert!(retry_after(&r).is_some());
    assert_eq!(try_as("bob@example.org").await.status(), 401, "another name has its own allowance");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_parallel_wrong_passwords_take_no_more_than_the_lockout_allows() {
    let gw = Arc::new(gateway(&format!("lockout_attempts = 5\nlockout_duration = \"10m\"\n{NO_LIMITS}")).await);
    register(&gw, "Cam Diaz", "cam@example.org").await;
    let b = Arc::new(Browser::new(&gw));
    let (csrf, _) = b.form_page("/login").await;
    let login = |password: &'static str| {
        let (b, csrf) = (b.clone(), csrf.clone());
        async move {
            b.http
                .post(b.url("/login"))
                .form(&[("csrf", csrf.as_str()), ("username", "cam@example.org"), ("password", password)])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let tries = (0..30).map(|_| tokio::spawn(login("wrong-password-guess")));
    for t in futures::future::join_all(tries).await {
        assert_eq!(t.unwrap(), 401);
    }
    let store = store_of(&gw).await;
    let failed = count(&store, "SELECT failed_attempts FROM accounts WHERE username = 'cam@example.org'").await;
    assert_eq!(failed, 5, "exactly the allowance was taken, never more");
    let locked =
        count(&store, "SELECT COUNT(*) FROM accounts WHERE username = 'cam@example.org' AND locked_until IS NOT NULL")
            .await;
    assert_eq!(locked, 1);
    assert_eq!(login(PASSWORD).await, 401, "locked: the right password is refused too");
}

#[tokio::test]
async fn anonymous_visits_store_no_sessions_and_a_pending_authorization_stores_one() {
    let gw = gateway(NO_LIMITS).await;
    let store = store_of(&gw).await;
    let before = count(&store, "SELECT COUNT(*) FROM sessions").await;
    for _ in 0..3 {
        let b = Browser::new(&gw);
        for path in ["/", "/login", "/register", "/account", "/enroll", "/authorize/pick", "/authorize/consent"] {
            let (status, html, _) = b.get(path).await;
            assert!(status < 500, "{path}: {status} {html}");
        }
        // A failed sign-in stores nothing either.
        let (csrf, _) = b.form_page("/login").await;
        let (status, _, _) =
            b.post("/login", &[("csrf", &csrf), ("username", "x@example.org"), ("password", "wrong-one-123")]).await;
        assert_eq!(status, 401);
    }
    assert_eq!(count(&store, "SELECT COUNT(*) FROM sessions").await, before, "no rows for anonymous visits");

    // The sign-in form of an anonymous session still works (its CSRF token is the cookie's).
    let b = register(&gw, "Dee Park", "dee@example.org").await;
    assert_eq!(count(&store, "SELECT COUNT(*) FROM sessions").await, before + 1, "signed in: one row");
    let (status, _, _) = b.get("/account").await;
    assert_eq!(status, 200);

    // A pending authorization is worth keeping.
    let anon = Browser::new(&gw);
    let (status, html, location) = anon.get(&authorize_url(&gw, "st-1", "n-1")).await;
    assert_eq!((status, location.as_deref()), (303, Some("/login")), "{html}");
    assert_eq!(count(&store, "SELECT COUNT(*) FROM sessions").await, before + 2);
}

#[tokio::test]
async fn over_long_state_or_nonce_is_refused_and_nothing_is_stored() {
    let gw = gateway(NO_LIMITS).await;
    let store = store_of(&gw).await;
    let b = Browser::new(&gw);
    for (state, nonce, named) in
        [("s".repeat(600), "n".to_string(), "state"), ("s".to_string(), "n".repeat(600), "nonce")]
    {
        let (status, html, location) = b.get(&authorize_url(&gw, &state, &nonce)).await;
        assert_eq!(status, 400, "{html}");
        assert_eq!(location, None, "not sent back to the app");
        assert!(html.contains(named) && html.contains("too long"), "{html}");
    }
    assert_eq!(count(&store, "SELECT COUNT(*) FROM sessions").await, 0, "nothing stored");
    // At the token endpoint: an OAuth error.
    let long = "c".repeat(5000);
    let r = gw
        .http
        .post(format!("{}/token", gw.origin))
        .form(&[("grant_type", "authorization_code"), ("code", long.as_str()), ("client_id", CLIENT)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let json: serde_json::Value = r.json().await.unwrap();
    assert_eq!(json["error"], "invalid_request", "{json}");
}

#[tokio::test]
async fn ended_sessions_are_swept() {
    let gw = gateway(&format!("session_idle = \"1s\"\nsweep_every = \"200ms\"\n{NO_LIMITS}")).await;
    let store = store_of(&gw).await;
    register(&gw, "Eve Stone", "eve@example.org").await;
    assert_eq!(count(&store, "SELECT COUNT(*) FROM sessions").await, 1, "signed in: one row");
    // Wait for the sweep (polling a condition, not asserting a duration).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while count(&store, "SELECT COUNT(*) FROM sessions").await > 0 {
        assert!(std::time::Instant::now() < deadline, "the idle session was never swept");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn an_unknown_method_is_counted_as_other() {
    let gw = gateway("").await;
    let method = reqwest::Method::from_bytes(b"FOOBAR").unwrap();
    let r = gw.http.request(method, format!("{}/metadata", gw.fhir)).bearer_auth(TOKEN).send().await.unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let text = reqwest::get(format!("{}/metrics", gw.origin)).await.unwrap().text().await.unwrap();
    assert!(!text.contains("FOOBAR"), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("portico_http_requests_total{") && l.contains("method=\"other\"")),
        "{text}"
    );
}
