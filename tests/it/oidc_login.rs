//! Sign-in through a hospital's OpenID Connect provider, against a real one: panva's
//! `oidc-provider` (npm, pinned in tests/oidc-provider/package-lock.json) started as a child
//! process, its own login and consent pages driven over HTTP like a browser would. The tests
//! that start it need Node.js and run under `TEST_WITH_NODE=1` (scripts/test sets it and
//! runs `npm ci --prefix tests/oidc-provider`; they install on first use too).

use crate::common::*;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const CLIENT_ID: &str = "portico-gateway";
const CLIENT_SECRET: &str = "a-long-client-secret-for-the-test-provider-0123456789";
const LABEL: &str = "Sign in with Harbor Health ID";
/// An app registered with the gateway (for a sign-in in the middle of an authorization).
const APP: &str = "growth-chart";
const APP_REDIRECT: &str = "http://127.0.0.1:9/callback";

/// The test provider: a child process, killed when dropped.
struct Provider {
    issuer: String,
    child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

fn provider_dir() -> std::path::PathBuf {
    root().join("tests").join("oidc-provider")
}

impl Provider {
    /// Starts the provider; it knows its issuer at once, its client's redirect URI later.
    async fn start(name_in_id_token: bool) -> Provider {
        let dir = provider_dir();
        install_once(&dir);
        let mut child = tokio::process::Command::new("node")
            .arg("server.mjs")
            .current_dir(&dir)
            .env("OIDC_CLIENT_ID", CLIENT_ID)
            .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
            .env_remove("OIDC_REDIRECT_URI")
            .env("OIDC_NAME_IN_ID_TOKEN", if name_in_id_token { "1" } else { "0" })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `node` for the test OpenID provider (Node 20+ is needed): {e}"));
        // The provider's warnings (development keys, Node version) go to the test's output.
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                eprintln!("[oidc-provider] {line}");
            }
        });
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut p = Provider { issuer: String::new(), child, stdin, stdout };
        let line = p.next_line().await;
        p.issuer = line.strip_prefix("issuer ").unwrap_or_else(|| panic!("unexpected provider output: {line}")).into();
        p
    }

    async fn next_line(&mut self) -> String {
        match tokio::time::timeout(Duration::from_secs(30), self.stdout.next_line()).await {
            Ok(Ok(Some(line))) => line,
            other => panic!("the test OpenID provider did not start: {other:?} (exit: {:?})", self.child.try_wait()),
        }
    }

    /// Registers the gateway's redirect URI and waits until the provider serves.
    async fn register(&mut self, redirect_uri: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(format!("{redirect_uri}\n").as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
        assert_eq!(self.next_line().await, "ready");
    }
}

fn secret_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("oidc-client-secret");
    std::fs::write(&path, format!("{CLIENT_SECRET}\n")).unwrap();
    path
}

fn sources() -> String {
    fixture_file_sources()
}

fn body(issuer: &str, secret: &std::path::Path) -> String {
    let files = sources();
    format!(
        "[[auth.clients]]\nclient_id = \"{APP}\"\nname = \"Growth Chart\"\nkind = \"public\"\nredirect_uris = [\"{APP_REDIRECT}\"]\nallowed_scopes = \"launch/patient openid fhirUser patient/*.rs\"\n[auth.oidc]\nissuer = \"{issuer}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = {{ file = \"{}\" }}\nlabel = \"{LABEL}\"\n{files}",
        secret.display()
    )
}

/// A provider and a gateway that trust each other. The provider gives the person's name in
/// the ID token, or (as many do) only at its userinfo endpoint.
async fn setup(name_in_id_token: bool) -> (Provider, Gateway, tempfile::TempDir) {
    let mut provider = Provider::start(name_in_id_token).await;
    let secrets = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&body(&provider.issuer, &secret_file(secrets.path()))).await;
    provider.register(&format!("{}/login/oidc/callback", gw.origin)).await;
    (provider, gw, secrets)
}

/// The account page's greeting, or `None` when not signed in.
async fn signed_in_as(b: &Browser) -> Option<String> {
    let (status, html, location) = b.get("/account").await;
    if status == 303 {
        assert_eq!(location.as_deref(), Some("/login"));
        return None;
    }
    assert_eq!(status, 200, "{html}");
    let start = html.find("<h1>Hello, ").expect("a greeting") + "<h1>Hello, ".len();
    Some(html[start..start + html[start..].find("</h1>").unwrap()].to_string())
}

/// The first `attr="…"` after `from` in `html`.
fn attr_after(html: &str, from: &str, attr: &str) -> Option<String> {
    let at = html.find(from)?;
    let marker = format!("{attr}=\"");
    let s = at + html[at..].find(&marker)? + marker.len();
    Some(unescape(&html[s..s + html[s..].find('"')?]))
}

fn join(base: &str, location: &str) -> String {
    url::Url::parse(base).unwrap().join(location).unwrap().to_string()
}

/// What the provider showed on the way back.
#[derive(Debug, Default)]
struct Walk {
    login_pages: usize,
    consent_pages: usize,
}

/// Follows the provider from `url` as the person `login` (submitting its login and consent
/// forms when it shows them, or its abort link when `abort`), until it sends the browser
/// back to the gateway; returns that callback URL, not yet visited.
async fn walk_provider(b: &Browser, url: &str, login: &str, abort: bool) -> (String, Walk) {
    let callback = format!("{}/login/oidc/callback", b.origin);
    let mut walk = Walk::default();
    let mut next = url.to_string();
    for _ in 0..20 {
        if next.starts_with(&callback) {
            return (next, walk);
        }
        let (status, html, location) = b.get(&next).await;
        let (status, html, location, base) = if status == 200 && html.contains("name=\"prompt\"") {
            let action = join(&next, &attr_after(&html, "<form", "action").expect("a form action"));
            if abort {
                let href = attr_after(&html, "class=\"login-help\"", "href").expect("the provider's cancel link");
                assert!(href.ends_with("/abort"), "{href}");
                let (s, h, l) = b.get(&join(&next, &href)).await;
                (s, h, l, next.clone())
            } else if html.contains("name=\"prompt\" value=\"login\"") {
                walk.login_pages += 1;
                let (s, h, l) =
                    b.post(&action, &[("prompt", "login"), ("login", login), ("password", "anything")]).await;
                (s, h, l, action)
            } else {
                assert!(html.contains("name=\"prompt\" value=\"consent\""), "an unexpected provider page: {html}");
                walk.consent_pages += 1;
                let (s, h, l) = b.post(&action, &[("prompt", "consent")]).await;
                (s, h, l, action)
            }
        } else {
            (status, html, location, next.clone())
        };
        assert!((300..400).contains(&status), "the provider answered {status} at {base}: {html}");
        next = join(&base, &location.expect("a redirect"));
    }
    panic!("the provider never sent the browser back");
}

/// `/login/oidc` → the provider (as `login`) → the callback URL it sends back (unvisited).
async fn to_provider_and_back(b: &Browser, login: &str) -> (String, Walk) {
    let (status, html, location) = b.get("/login/oidc").await;
    assert_eq!(status, 303, "{html}");
    let location = location.unwrap();
    let authorize = url::Url::parse(&location).unwrap();
    let q: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
    assert_eq!(q.get("response_type").map(String::as_str), Some("code"));
    assert_eq!(q.get("client_id").map(String::as_str), Some(CLIENT_ID));
    assert_eq!(q.get("code_challenge_method").map(String::as_str), Some("S256"));
    assert!(q.contains_key("code_challenge") && q.contains_key("state") && q.contains_key("nonce"), "{location}");
    assert!(q["scope"].split(' ').any(|s| s == "openid"), "{location}");
    walk_provider(b, &location, login, false).await
}

/// The whole round trip; returns where the gateway sent the browser.
async fn sign_in(b: &Browser, login: &str) -> (String, Walk) {
    let (callback, walk) = to_provider_and_back(b, login).await;
    let (status, html, location) = b.get(&callback).await;
    assert_eq!(status, 303, "the callback refused the sign-in: {html}");
    (location.unwrap(), walk)
}

/// The accounts table's federated rows: (id, issuer, subject, display name).
async fn federated_rows(gw: &Gateway) -> Vec<(String, String, String, String)> {
    use sqlx::Row;
    let store = portico::store::Store::open(&gw.database_url, 2).await.unwrap();
    let rows = sqlx::query("SELECT id, oidc_issuer, oidc_subject, display_name FROM accounts WHERE oidc_subject IS NOT NULL ORDER BY created_at")
        .fetch_all(&store.pool)
        .await
        .unwrap();
    store.pool.close().await;
    rows.into_iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect()
}

fn with_state(url: &str, state: &str) -> String {
    let mut u = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> =
        u.query_pairs().into_owned().map(|(k, v)| if k == "state" { (k, state.to_string()) } else { (k, v) }).collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.to_string()
}

/// Bob Martinez's birth date as the index holds it (fixture dates move with today).
fn bob_birth_date() -> String {
    let d = chrono::NaiveDate::parse_from_str("1967-06-18", "%Y-%m-%d").unwrap() + chrono::Duration::days(shift_days());
    d.format("%Y-%m-%d").to_string()
}

#[tokio::test]
async fn signing_in_through_the_provider_creates_one_account_per_subject_and_can_enroll() {
    if !require("node") {
        return;
    }
    let (provider, gw, _secrets) = setup(false).await;

    // The login page offers the provider.
    let b = Browser::new(&gw);
    let (status, html, _) = b.get("/login").await;
    assert_eq!(status, 200);
    assert!(html.contains("href=\"/login/oidc\"") && html.contains(LABEL), "{html}");

    // First sign-in: the provider's login and consent pages, then back, signed in.
    let (next, walk) = sign_in(&b, "bob").await;
    assert_eq!(next, "/account");
    assert_eq!((walk.login_pages, walk.consent_pages), (1, 1), "{walk:?}");
    assert_eq!(signed_in_as(&b).await.as_deref(), Some("Bob Martinez"), "the provider's name (from userinfo)");
    let rows = federated_rows(&gw).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (bob_id, issuer, subject, name) = rows[0].clone();
    assert_eq!((issuer.as_str(), subject.as_str(), name.as_str()), (provider.issuer.as_str(), "bob", "Bob Martinez"));

    // The federated account connects its record like any other.
    let (status, html, _) = b.get("/enroll").await;
    assert_eq!(status, 200, "{html}");
    let birth = bob_birth_date();
    let (status, html, location) = b
        .post("/enroll", &[("csrf", &csrf(&html)), ("mrn", "HG100142"), ("birth_date", &birth), ("family", "martinez")])
        .await;
    assert_eq!((status, location.as_deref()), (303, Some("/account")), "{html}");
    let (_, html, _) = b.get("/account").await;
    assert!(html.contains("Records you can open") && html.contains("(you)"), "{html}");

    // Signing out and in again in the same browser: the provider remembers the person and
    // the consent, and the gateway the account.
    let (_, html, _) = b.get("/account").await;
    let (status, _, _) = b.post("/logout", &[("csrf", &csrf(&html))]).await;
    assert_eq!(status, 303);
    assert_eq!(signed_in_as(&b).await, None);
    let (next, walk) = sign_in(&b, "bob").await;
    assert_eq!(next, "/account");
    assert_eq!((walk.login_pages, walk.consent_pages), (0, 0), "{walk:?}");
    assert_eq!(signed_in_as(&b).await.as_deref(), Some("Bob Martinez"));

    // Another browser, the same person: the same account (one row for issuer + sub).
    let other = Browser::new(&gw);
    let (_, walk) = sign_in(&other, "bob").await;
    assert_eq!(walk.login_pages, 1);
    let (_, html, _) = other.get("/account").await;
    assert!(html.contains("(you)"), "the same, enrolled account: {html}");
    let rows = federated_rows(&gw).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, bob_id);

    // Another person gets another account.
    let alice = Browser::new(&gw);
    sign_in(&alice, "alice").await;
    assert_eq!(signed_in_as(&alice).await.as_deref(), Some("Alice Nguyen"));
    let rows = federated_rows(&gw).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1].2, "alice");
    assert_ne!(rows[1].0, bob_id);

    // A sign-in made while an app's authorization waits goes on to the record picker.
    let app = Browser::new(&gw);
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", APP)
        .append_pair("redirect_uri", APP_REDIRECT)
        .append_pair("scope", "launch/patient openid fhirUser patient/*.rs")
        .append_pair("state", "app-state")
        .append_pair("aud", &gw.fhir)
        .append_pair("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
        .append_pair("code_challenge_method", "S256");
    let (status, html, location) = app.get(&format!("/authorize?{}", q.finish())).await;
    assert_eq!((status, location.as_deref()), (303, Some("/login")), "{html}");
    let (next, _) = sign_in(&app, "bob").await;
    assert_eq!(next, "/authorize/pick");
    let (status, html, _) = app.get("/authorize/pick").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("(you)"), "{html}");
    gw.stop().await;
}

#[tokio::test]
async fn forged_replayed_and_refused_callbacks_sign_no_one_in() {
    if !require("node") {
        return;
    }
    let (_provider, gw, _secrets) = setup(true).await;

    // A forged state is refused and signs no one in; the genuine answer still works.
    let b = Browser::new(&gw);
    let (callback, _) = to_provider_and_back(&b, "bob").await;
    let (status, html, _) = b.get(&with_state(&callback, "forged-state-value")).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("not valid for this browser"), "{html}");
    assert_eq!(signed_in_as(&b).await, None);
    let (status, callback_without_state) = {
        let mut u = url::Url::parse(&callback).unwrap();
        let pairs: Vec<(String, String)> = u.query_pairs().into_owned().filter(|(k, _)| k != "state").collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
        (b.get(u.as_str()).await.0, u.to_string())
    };
    assert_eq!(status, 400, "{callback_without_state}");
    assert_eq!(signed_in_as(&b).await, None);
    assert!(federated_rows(&gw).await.is_empty());
    let (status, _, location) = b.get(&callback).await;
    assert_eq!((status, location.as_deref()), (303, Some("/account")));
    assert_eq!(signed_in_as(&b).await.as_deref(), Some("Bob Martinez"));

    // Replaying the same callback URL: refused in the same browser and in another one.
    let (status, html, _) = b.get(&callback).await;
    assert_eq!(status, 400, "{html}");
    let thief = Browser::new(&gw);
    let (status, html, _) = thief.get(&callback).await;
    assert_eq!(status, 400, "{html}");
    assert_eq!(signed_in_as(&thief).await, None);

    // A callback with another browser's state and code: refused, and it does not spoil that
    // browser's sign-in.
    let victim = Browser::new(&gw);
    let (victim_callback, _) = to_provider_and_back(&victim, "alice").await;
    let attacker = Browser::new(&gw);
    let (status, _, _) = attacker.get("/login/oidc").await;
    assert_eq!(status, 303);
    let (status, _, _) = attacker.get(&victim_callback).await;
    assert_eq!(status, 400);
    assert_eq!(signed_in_as(&attacker).await, None);
    let (status, _, _) = victim.get(&victim_callback).await;
    assert_eq!(status, 303);
    assert_eq!(signed_in_as(&victim).await.as_deref(), Some("Alice Nguyen"));

    // The person cancels at the provider: the provider answers `access_denied`.
    let c = Browser::new(&gw);
    let (status, _, location) = c.get("/login/oidc").await;
    assert_eq!(status, 303);
    let (callback, _) = walk_provider(&c, &location.unwrap(), "bob", true).await;
    assert!(callback.contains("error=access_denied"), "{callback}");
    let (status, html, _) = c.get(&callback).await;
    assert_eq!(status, 403, "{html}");
    assert!(html.contains("cancelled"), "{html}");
    assert_eq!(signed_in_as(&c).await, None);

    // A code the provider did not issue (right state, wrong code): refused by the provider.
    let d = Browser::new(&gw);
    let (callback, _) = to_provider_and_back(&d, "bob").await;
    let mut u = url::Url::parse(&callback).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .into_owned()
        .map(|(k, v)| if k == "code" { (k, "not-a-real-code".to_string()) } else { (k, v) })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    let (status, html, _) = d.get(u.as_str()).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("couldn"), "{html}");
    assert_eq!(signed_in_as(&d).await, None);

    assert_eq!(federated_rows(&gw).await.len(), 2);
    gw.stop().await;
}

#[tokio::test]
async fn a_provider_that_is_down_gives_a_clear_page_and_the_gateway_still_serves() {
    // A loopback port with nothing listening on it.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let secrets = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&body(&format!("http://127.0.0.1:{port}"), &secret_file(secrets.path()))).await;
    let b = Browser::new(&gw);
    let started = std::time::Instant::now();
    let (status, html, _) = b.get("/login/oidc").await;
    assert_eq!(status, 503, "{html}");
    assert!(
        html.contains("can&#x27;t reach the sign-in service") || html.contains("can't reach the sign-in service"),
        "{html}"
    );
    assert!(html.contains(LABEL), "{html}");
    assert!(started.elapsed() < Duration::from_secs(25));
    assert_eq!(signed_in_as(&b).await, None);
    let (status, _) = gw.get_with("metadata", None, &[]).await;
    assert_eq!(status, 200);
    let (status, _, _) = b.get("/login").await;
    assert_eq!(status, 200);
    gw.stop().await;
}

#[tokio::test]
async fn without_a_provider_the_routes_do_not_exist() {
    let gw = Gateway::start(&sources()).await;
    let b = Browser::new(&gw);
    let (status, _, _) = b.get("/login/oidc").await;
    assert_eq!(status, 404);
    let (status, _, _) = b.get("/login/oidc/callback?code=x&state=y").await;
    assert_eq!(status, 404);
    let (_, html, _) = b.get("/login").await;
    assert!(!html.contains("/login/oidc"), "{html}");
    gw.stop().await;
}

/// Installs the provider's pinned npm packages the first time a test needs them (the
/// lockfile pins every version), so `cargo test` alone works on a fresh machine with Node.js.
fn install_once(dir: &std::path::Path) {
    static INSTALLED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let result = INSTALLED.get_or_init(|| {
        if dir.join("node_modules").join("oidc-provider").join("package.json").exists() {
            return Ok(());
        }
        let out = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .output()
            .map_err(|e| format!("cannot run npm (Node.js and npm are needed for this test): {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("npm ci in {} failed:\n{}", dir.display(), String::from_utf8_lossy(&out.stderr)))
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
