//! SMART App Launch end to end over real HTTP: a person registers, connects their record
//! (MRN + birth date + last name), and an app walks the standalone launch — first the real
//! SMART client library (PyPI fhirclient), then this file's own browser for the refusals.

use crate::common::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

pub(crate) const CLIENT: &str = "growth-chart";
const REDIRECT: &str = "http://127.0.0.1:9/callback";

pub(crate) fn body() -> String {
    let files = fixture_file_sources();
    format!(
        "[auth]\nlockout_attempts = 3\nlockout_duration = \"10m\"\n[[auth.clients]]\nclient_id = \"{CLIENT}\"\nname = \"Growth Chart\"\nkind = \"public\"\nredirect_uris = [\"{REDIRECT}\"]\nallowed_scopes = \"launch/patient openid fhirUser offline_access online_access patient/*.rs patient/*.read\"\n{files}"
    )
}

/// Bob Martinez's birth date as the index holds it (fixture dates move with today).
fn bob_birth_date() -> String {
    let d = chrono::NaiveDate::parse_from_str("1967-06-18", "%Y-%m-%d").unwrap() + chrono::Duration::days(shift_days());
    d.format("%Y-%m-%d").to_string()
}

/// Registers and enrolls Bob through the pages; returns his browser, signed in.
pub(crate) async fn bob(gw: &Gateway, username: &str) -> Browser {
    let b = Browser::new(gw);
    let (token, _) = b.form_page("/register").await;
    let (status, html, location) = b
        .post(
            "/register",
            &[("csrf", &token), ("display_name", "Bob Martinez"), ("username", username), ("password", PASSWORD)],
        )
        .await;
    assert_eq!((status, location.as_deref()), (303, Some("/enroll")), "{html}");
    verify_email(gw, &b, username).await;
    let (token, _) = b.form_page("/enroll").await;
    let birth = bob_birth_date();
    let (status, html, _) = b
        .post("/enroll", &[("csrf", &token), ("mrn", "HG100142"), ("birth_date", &birth), ("family", "martinez")])
        .await;
    assert_eq!(status, 303, "{html}");
    b
}

fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
        + &URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn authorize_url(gw: &Gateway, scope: &str, challenge: Option<(&str, &str)>, aud: &str, redirect: &str) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", CLIENT)
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", scope)
        .append_pair("state", "st-123")
        .append_pair("aud", aud);
    if let Some((c, m)) = challenge {
        q.append_pair("code_challenge", c).append_pair("code_challenge_method", m);
    }
    format!("{}/authorize?{}", gw.origin, q.finish())
}

/// Walks picker and consent for a signed-in browser; returns the redirect to the app.
async fn approve(b: &Browser, url: &str, untick: &[&str]) -> String {
    let (status, _, location) = b.get(url).await;
    assert_eq!((status, location.as_deref()), (303, Some("/authorize/pick")));
    let (token, html) = b.form_page("/authorize/pick").await;
    let link = value_of(&html, "link_id").remove(0);
    let (status, _, _) = b.post("/authorize/pick", &[("csrf", &token), ("link_id", &link)]).await;
    assert_eq!(status, 303);
    let (token, html) = b.form_page("/authorize/consent").await;
    let scopes: Vec<String> = value_of(&html, "scope").into_iter().filter(|s| !untick.contains(&s.as_str())).collect();
    let mut form: Vec<(&str, &str)> = vec![("csrf", &token), ("decision", "allow")];
    form.extend(scopes.iter().map(|s| ("scope", s.as_str())));
    let (status, _, location) = b.post("/authorize/consent", &form).await;
    assert_eq!(status, 303);
    location.unwrap()
}

async fn exchange(gw: &Gateway, callback: &str, verifier: &str) -> serde_json::Value {
    let code = url::Url::parse(callback).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.to_string();
    let r = reqwest::Client::new()
        .post(format!("{}/token", gw.origin))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", CLIENT),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

pub(crate) async fn token_for(gw: &Gateway, b: &Browser, scope: &str, untick: &[&str]) -> serde_json::Value {
    let (verifier, challenge) = pkce();
    let url = authorize_url(gw, scope, Some((&challenge, "S256")), &gw.fhir, REDIRECT);
    let callback = approve(b, &url, untick).await;
    assert!(callback.starts_with(REDIRECT) && callback.contains("state=st-123"), "{callback}");
    exchange(gw, &callback, &verifier).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_fhirclient_library_completes_a_standalone_launch() {
    if !require("python") {
        return;
    }
    let gw = Gateway::start(&body()).await;
    bob(&gw, "bob@example.org").await;
    let script = root().join("conformance/smart/run_fhirclient.sh");
    let out = tokio::process::Command::new("bash")
        .arg(script)
        .args([&gw.fhir, CLIENT, REDIRECT, "bob@example.org", PASSWORD])
        .output()
        .await
        .expect("run the fhirclient script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the real client's launch failed");
    assert!(stdout.contains(" passed, 0 failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_reaches_one_patient_within_its_scopes_and_stops_when_revoked_or_terminated() {
    let gw = Gateway::start(&body()).await;
    let b = bob(&gw, "bob2@example.org").await;
    let t = token_for(
        &gw,
        &b,
        "launch/patient openid fhirUser offline_access patient/Observation.rs patient/Patient.r",
        &[],
    )
    .await;
    let access = t["access_token"].as_str().unwrap().to_string();
    let pid = t["patient"].as_str().unwrap().to_string();
    assert_eq!(pid, gw.patient_id("ehr", "pt-10001"));
    assert!(t["id_token"].is_string() && t["refresh_token"].is_string());
    let get = |path: String, token: String| {
        let gw = &gw;
        async move { gw.get_with(&path, Some(&token), &[]).await }
    };
    assert_eq!(get(format!("Patient/{pid}"), access.clone()).await.0, 200);
    let (status, bundle) = get(format!("Observation?patient={pid}"), access.clone()).await;
    assert_eq!(status, 200);
    assert!(bundle["total"].as_u64().unwrap() > 0);
    // Not granted: Condition search is refused outright; Patient search (only .r) too.
    assert_eq!(get(format!("Condition?patient={pid}"), access.clone()).await.0, 403);
    assert_eq!(get(format!("Patient?_id={pid}"), access.clone()).await.0, 403);
    // Another patient's data answers like a missing one.
    let other = gw.patient_id("ehr", "pt-10012");
    let (s1, b1) = get(format!("Patient/{other}"), access.clone()).await;
    let (s2, b2) = get("Patient/pt-00000000000000000000".into(), access.clone()).await;
    assert_eq!((s1, &b1), (s2, &b2));
    assert_eq!(s1, 404);
    let (_, other_obs) = get(format!("Observation?patient={other}"), access.clone()).await;
    assert_eq!(other_obs["total"], 0);
    // Tampered and unknown tokens.
    let mut tampered = access.clone();
    tampered.replace_range(0..1, if tampered.starts_with('A') { "B" } else { "A" });
    assert_eq!(get(format!("Patient/{pid}"), tampered).await.0, 401);

    // Revocation (RFC 7009) stops the token at once.
    let r = reqwest::Client::new()
        .post(format!("{}/revoke", gw.origin))
        .form(&[("token", access.as_str()), ("client_id", CLIENT)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(get(format!("Patient/{pid}"), access.clone()).await.0, 401);

    // Termination of access stops a live token on the next request.
    let t2 = token_for(&gw, &b, "launch/patient patient/*.rs", &[]).await;
    let live = t2["access_token"].as_str().unwrap().to_string();
    assert_eq!(get(format!("Patient/{pid}"), live.clone()).await.0, 200);
    let store = portico::store::Store::open(&gw.database_url.clone(), 2).await.unwrap();
    let accounts =
        portico::auth::accounts::Accounts::new(store.clone(), gw.index.clone(), Default::default(), test_kek());
    let account: String = sqlx::query_scalar("SELECT id FROM accounts WHERE username = 'bob2@example.org'")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    let link = accounts.links(&account).await.unwrap().remove(0);
    assert_eq!(accounts.terminate(&link.id, "left the practice", "HIM desk").await.unwrap(), 1);
    assert_eq!(get(format!("Patient/{pid}"), live).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unticked_scopes_are_not_granted() {
    let gw = Gateway::start(&body()).await;
    let b = bob(&gw, "bob3@example.org").await;
    let t = token_for(&gw, &b, "launch/patient patient/Observation.rs patient/Condition.rs", &["patient/Condition.rs"])
        .await;
    assert_eq!(t["scope"], "launch/patient patient/Observation.rs");
    let pid = t["patient"].as_str().unwrap();
    let token = t["access_token"].as_str().unwrap();
    assert_eq!(gw.get_with(&format!("Condition?patient={pid}"), Some(token), &[]).await.0, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_authorization_requests_are_refused_in_the_right_place() {
    let gw = Gateway::start(&body()).await;
    let b = bob(&gw, "bob4@example.org").await;
    let (_, challenge) = pkce();
    let scope = "launch/patient patient/*.rs";
    // Verified client and redirect: errors go back to the app.
    for (url, error) in [
        (authorize_url(&gw, scope, None, &gw.fhir, REDIRECT), "invalid_request"),
        (authorize_url(&gw, scope, Some((&challenge, "plain")), &gw.fhir, REDIRECT), "invalid_request"),
        (
            authorize_url(&gw, scope, Some((&challenge, "S256")), "https://evil.example/fhir", REDIRECT),
            "invalid_request",
        ),
    ] {
        let (status, _, location) = b.get(&url).await;
        let location = location.unwrap_or_default();
        assert_eq!(status, 303);
        assert!(
            location.starts_with(REDIRECT)
                && location.contains(&format!("error={error}"))
                && location.contains("state=st-123"),
            "{location}"
        );
    }
    // An unregistered redirect URI: an error page, no redirect anywhere.
    let (status, html, location) =
        b.get(&authorize_url(&gw, scope, Some((&challenge, "S256")), &gw.fhir, "http://127.0.0.1:9/elsewhere")).await;
    assert_eq!((status, location), (400, None));
    assert!(html.contains("did not register"));
    // A form post without the CSRF token changes nothing.
    let (status, _, _) = b.post("/authorize/pick", &[("link_id", "x")]).await;
    assert_eq!(status, 403);
    // Denying sends access_denied.
    let url = authorize_url(&gw, scope, Some((&challenge, "S256")), &gw.fhir, REDIRECT);
    b.get(&url).await;
    let (token, html) = b.form_page("/authorize/pick").await;
    let link = value_of(&html, "link_id").remove(0);
    b.post("/authorize/pick", &[("csrf", &token), ("link_id", &link)]).await;
    let (token, _) = b.form_page("/authorize/consent").await;
    let (_, _, location) = b.post("/authorize/consent", &[("csrf", &token), ("decision", "deny")]).await;
    assert!(location.unwrap().contains("error=access_denied"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_locks_after_repeated_failures_without_saying_who_exists() {
    let gw = Gateway::start(&body()).await;
    bob(&gw, "bob5@example.org").await;
    let b = Browser::new(&gw);
    let attempt = |user: &'static str, pass: &'static str| {
        let b = &b;
        async move {
            let (token, _) = b.form_page("/login").await;
            b.post("/login", &[("csrf", &token), ("username", user), ("password", pass)]).await
        }
    };
    let (s_unknown, html_unknown, _) = attempt("nobody@example.org", "whatever-password-1").await;
    let (s_wrong, html_wrong, _) = attempt("bob5@example.org", "wrong-password-123").await;
    assert_eq!((s_unknown, s_wrong), (401, 401));
    let message = |h: &str| h[h.find("role=\"alert\">").unwrap()..].split('<').next().unwrap().to_string();
    assert_eq!(message(&html_unknown), message(&html_wrong), "the same words whether or not the account exists");
    attempt("bob5@example.org", "wrong-password-123").await;
    attempt("bob5@example.org", "wrong-password-123").await;
    let (status, _, _) = attempt("bob5@example.org", PASSWORD).await;
    assert_eq!(status, 401, "locked after 3 failures, even with the right password");
    let (token, _) = b.form_page("/login").await;
    let (status, _, _) = b.post("/login", &[("username", "bob5@example.org"), ("password", PASSWORD)]).await;
    assert_eq!(status, 403, "no CSRF token: refused before anything is checked");
    let _ = token;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_documents_name_what_is_built() {
    let gw = Gateway::start(&body()).await;
    let (status, smart) = gw.get_with(&format!("{}/.well-known/smart-configuration", gw.origin), None, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(smart["authorization_endpoint"], format!("{}/authorize", gw.origin));
    assert_eq!(smart["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    for cap in [
        "launch-standalone",
        "client-public",
        "client-confidential-asymmetric",
        "permission-v2",
        "permission-offline",
        "sso-openid-connect",
        "authorize-post",
    ] {
        assert!(smart["capabilities"].as_array().unwrap().iter().any(|c| c == cap), "{cap}");
    }
    let (status, jwks) = gw.get_with(smart["jwks_uri"].as_str().unwrap(), None, &[]).await;
    assert_eq!(status, 200, "{jwks}");
    assert!(!jwks["keys"].as_array().unwrap().is_empty());
    let (_, cs) = gw.get_with("metadata", None, &[]).await;
    let oauth = &cs["rest"][0]["security"]["extension"][0];
    assert_eq!(oauth["url"], "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris");
    assert_eq!(oauth["extension"][1]["valueUri"], format!("{}/token", gw.origin));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_granted_by_staff_launches_an_app_for_her_teen_and_sees_only_what_a_parent_may() {
    let gw = Gateway::start(&body()).await;
    // Ana Rodriguez registers; HIM grants her access to Maya (16) as her mother.
    let b = Browser::new(&gw);
    let (token, _) = b.form_page("/register").await;
    let (status, _, _) = b
        .post(
            "/register",
            &[
                ("csrf", &token),
                ("display_name", "Ana Rodriguez"),
                ("username", "ana@example.org"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let admin = reqwest::Client::new();
    let grant = |body: serde_json::Value, bearer: &'static str| {
        let (admin, origin) = (&admin, gw.origin.clone());
        async move { admin.post(format!("{origin}/admin/proxies")).bearer_auth(bearer).json(&body).send().await.unwrap() }
    };
    let proxy = serde_json::json!({"username": "ana@example.org", "patient": "ehr/pt-10007", "relationship": "MTH", "related_person": "ehr/rp-10001", "by": "HIM desk"});
    assert_eq!(grant(proxy.clone(), "not-a-staff-token-at-all").await.status(), 401);
    let r = grant(proxy.clone(), TOKEN).await;
    assert_eq!(r.status(), 201);
    let link_id = r.json::<serde_json::Value>().await.unwrap()["link"]["id"].as_str().unwrap().to_string();
    let bad = serde_json::json!({"username": "ana@example.org", "patient": "ehr/pt-10007", "relationship": "SELF", "by": "HIM desk"});
    assert_eq!(grant(bad, TOKEN).await.status(), 400, "staff cannot make someone SELF");

    let (_, html, _) = b.get("/account").await;
    assert!(html.contains("Maya Rodriguez") && html.contains("your child"), "{html}");
    let t = token_for(&gw, &b, "launch/patient openid fhirUser patient/*.rs", &[]).await;
    let pid = t["patient"].as_str().unwrap().to_string();
    assert_eq!(pid, gw.patient_id("ehr", "pt-10007"));
    let access = t["access_token"].as_str().unwrap().to_string();
    let (resources, outcomes) = {
        let (status, bundle) = gw.get_with(&format!("Patient/{pid}/$everything?_count=500"), Some(&access), &[]).await;
        assert_eq!(status, 200);
        let entries = bundle["entry"].as_array().unwrap().clone();
        let (o, r): (Vec<_>, Vec<_>) = entries.into_iter().partition(|e| e["search"]["mode"] == "outcome");
        (r, o)
    };
    let text = serde_json::to_string(&resources).unwrap().to_lowercase();
    assert!(text.contains("immunization"), "a parent sees immunizations");
    for secret in ["pregnan", "chlamydia", "contracept", "phq"] {
        assert!(!text.contains(secret), "a parent must not see `{secret}`");
    }
    assert_eq!(outcomes.len(), 1, "the withheld-notice");
    // The id_token's fhirUser names her RelatedPerson.
    let id_token = t["id_token"].as_str().unwrap();
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(id_token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(claims["fhirUser"], format!("{}/RelatedPerson/ehr.rp-10001", gw.fhir));

    // HIM terminates her access: the live token stops at once.
    let r = admin
        .post(format!("{}/admin/access/terminate", gw.origin))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"link_id": link_id, "reason": "revoked by court order", "by": "HIM desk"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(gw.get_with(&format!("Patient/{pid}"), Some(&access), &[]).await.0, 401);
    let r = admin
        .post(format!("{}/admin/access/terminate", gw.origin))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"link_id": link_id, "reason": "again", "by": "HIM desk"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "nothing left to terminate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_launch_runs_the_same_on_postgresql() {
    if !require("postgres") {
        return;
    }
    with_schema(|schema, pool| async move {
        let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
        let gw = Gateway::start_in(dir, &body(), Some(&url_for(&schema))).await;
        let b = bob(&gw, "bob-pg@example.org").await;
        let t = token_for(&gw, &b, "launch/patient offline_access patient/*.rs", &[]).await;
        let pid = t["patient"].as_str().unwrap().to_string();
        assert_eq!(gw.get_with(&format!("Patient/{pid}"), Some(t["access_token"].as_str().unwrap()), &[]).await.0, 200);
        let r = reqwest::Client::new()
            .post(format!("{}/token", gw.origin))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", t["refresh_token"].as_str().unwrap()),
                ("client_id", CLIENT),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let refreshed: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            gw.get_with(&format!("Patient/{pid}"), Some(refreshed["access_token"].as_str().unwrap()), &[]).await.0,
            200
        );
        for (table, at_least) in
            [("accounts", 1), ("account_patients", 1), ("grants", 1), ("tokens", 3), ("sessions", 1)]
        {
            let n: i64 =
                sqlx::query_scalar(&format!("SELECT count(*) FROM {schema}.{table}")).fetch_one(&pool).await.unwrap();
            assert!(n >= at_least, "{table}: {n} rows in PostgreSQL");
        }
        gw.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_patient_sees_the_apps_she_allowed_and_revokes_one() {
    let gw = Gateway::start(&body()).await;
    let b = bob(&gw, "bob6@example.org").await;
    let t = token_for(&gw, &b, "launch/patient patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory", &[]).await;
    let (pid, access) = (t["patient"].as_str().unwrap().to_string(), t["access_token"].as_str().unwrap().to_string());
    assert_eq!(gw.get_with(&format!("Observation?patient={pid}"), Some(&access), &[]).await.0, 200);
    let (token, html) = b.form_page("/account").await;
    assert!(html.contains("Growth Chart") && html.contains("Read lab results") && html.contains("last used"), "{html}");
    let grant = value_of(&html, "grant_id").remove(0);
    // Someone else's grant id, or no CSRF token: refused, nothing revoked.
    let (status, _, _) = b.post("/account/apps/revoke", &[("csrf", &token), ("grant_id", "not-mine")]).await;
    assert_eq!(status, 400);
    let (status, _, _) = b.post("/account/apps/revoke", &[("grant_id", &grant)]).await;
    assert_eq!(status, 403);
    assert_eq!(gw.get_with(&format!("Observation?patient={pid}"), Some(&access), &[]).await.0, 200);
    let (status, _, location) = b.post("/account/apps/revoke", &[("csrf", &token), ("grant_id", &grant)]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/account")));
    assert_eq!(gw.get_with(&format!("Observation?patient={pid}"), Some(&access), &[]).await.0, 401);
    let (_, html) = b.form_page("/account").await;
    assert!(html.contains("You have not allowed any apps"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_never_says_which_detail_was_wrong_and_counts_toward_the_lockout() {
    let gw = Gateway::start(&body()).await;
    let b = Browser::new(&gw);
    let (token, _) = b.form_page("/register").await;
    b.post(
        "/register",
        &[("csrf", &token), ("display_name", "Bob Martinez"), ("username", "bob7@example.org"), ("password", PASSWORD)],
    )
    .await;
    verify_email(&gw, &b, "bob7@example.org").await;
    let birth = bob_birth_date();
    let mut messages = Vec::new();
    for (mrn, dob, family) in [
        ("HG999999", birth.as_str(), "Martinez"),
        ("HG100142", "1999-01-01", "Martinez"),
        ("HG100142", birth.as_str(), "Smith"),
    ] {
        let (token, _) = b.form_page("/enroll").await;
        let (status, html, _) =
            b.post("/enroll", &[("csrf", &token), ("mrn", mrn), ("birth_date", dob), ("family", family)]).await;
        assert_eq!(status, 400);
        messages.push(html[html.find("role=\"alert\">").unwrap()..].split('<').next().unwrap().to_string());
    }
    assert!(messages.iter().all(|m| m == &messages[0]), "one message for every wrong field: {messages:?}");
    // Three failures lock the account (lockout_attempts = 3): the right details fail too.
    let (token, _) = b.form_page("/enroll").await;
    let (status, _, _) = b
        .post("/enroll", &[("csrf", &token), ("mrn", "HG100142"), ("birth_date", &birth), ("family", "Martinez")])
        .await;
    assert_eq!(status, 400);
    let (_, html, _) = b.get("/account").await;
    assert!(html.contains("not connected to a record"), "{html}");
}
