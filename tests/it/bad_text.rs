//! Free text with a NUL byte or another control character, sent to every endpoint that
//! stores what a person, an app or staff type: PostgreSQL refuses NUL in a text column
//! (SQLSTATE 22021) where SQLite would keep it, and a name never holds U+0001. Each is
//! refused with a 4xx that names the field (never the value) and changes nothing — on both
//! databases (with TEST_ON_POSTGRES=1 every gateway here runs on PostgreSQL). Tab and line
//! breaks stay allowed in multi-line text (a correction request keeps them; only its ends
//! are trimmed, the documented normalisation). An address whose path holds a NUL names
//! nothing: a 4xx before any lookup (a 400 in the surface's form), never a 500 or 503.

use crate::common::*;
use serde_json::{Value, json};

const NUL: &str = "\u{0}";
const SOH: &str = "\u{1}";

async fn count(gw: &Gateway, table: &str) -> i64 {
    let store = portico::store::Store::open(&gw.database_url, 2).await.unwrap();
    let n = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&store.pool).await.unwrap();
    store.pool.close().await;
    n
}

/// A refused page form: 400 with the page's message about control characters.
fn refused_page(what: &str, (status, html, _): (u16, String, Option<String>)) {
    assert_eq!(status, 400, "{what}: {html}");
    assert!(html.contains("control character"), "{what}: a clear message: {html}");
}

/// A JSON answer that must be a 400 naming `field` and not holding the value sent.
fn refused_json(what: &str, status: u16, body: &Value, field: &str) {
    assert_eq!(status, 400, "{what}: {body}");
    let text = body.to_string();
    assert!(text.contains("control character") && text.contains(field), "{what}: names `{field}`: {text}");
    assert!(!text.contains("\\u0000") && !text.contains("\\u0001"), "{what}: the value is not echoed: {text}");
}

async fn admin_get_status(gw: &Gateway, path: &str) -> (u16, String) {
    let r = gw.http.get(format!("{}{path}", gw.origin)).bearer_auth(TOKEN).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_sign_in_and_enrollment_refuse_control_characters() {
    let gw = Gateway::start(&fixture_file_sources()).await;
    let b = Browser::new(&gw);
    for (field, value) in [("display_name", format!("Bob{SOH}")), ("username", format!("bob{NUL}@example.org"))] {
        let (token, _) = b.form_page("/register").await;
        let mut form = vec![("csrf", token.as_str()), ("display_name", "Bob"), ("username", "bob@example.org")];
        form.retain(|(k, _)| *k != field);
        form.push((field, &value));
        form.push(("password", PASSWORD));
        refused_page(field, b.post("/register", &form).await);
    }
    assert_eq!(count(&gw, "accounts").await, 0, "no account was made");
    let (token, _) = b.form_page("/login").await;
    let nul_user = format!("bob{NUL}@example.org");
    refused_page("sign-in", b.post("/login", &[("csrf", &token), ("username", &nul_user), ("password", "x")]).await);
    let (status, html, _) = b.get("/verify-email?token=%00").await;
    assert!((400..500).contains(&status), "verification link: {status} {html}");

    let bob = register(&gw, "Bob Martinez", "bob@example.org").await;
    let (token, _) = bob.form_page("/enroll").await;
    let birth = shifted("1967-06-18");
    let mrn = format!("HG100142{NUL}");
    refused_page(
        "enroll by demographics",
        bob.post("/enroll", &[("csrf", &token), ("mrn", &mrn), ("birth_date", &birth), ("family", "martinez")]).await,
    );
    let code = format!("ABCD{NUL}");
    refused_page(
        "enroll by code",
        bob.post("/enroll", &[("csrf", &token), ("code", &code), ("birth_date", &birth)]).await,
    );
    assert_eq!(count(&gw, "account_patients").await, 0, "no record was connected");
    // Staff cannot issue a code for a patient named with a NUL either.
    let (status, body) =
        admin_post(&gw, "/admin/activation-codes", json!({"patient": format!("ehr/pt-10001{NUL}")})).await;
    refused_json("activation code", status, &body, "patient");
    assert_eq!(count(&gw, "activation_codes").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrections_keep_line_breaks_and_refuse_other_controls_from_patient_and_staff() {
    let gw = Gateway::start(&fixture_file_sources()).await;
    let (b, link) = crate::corrections::bob(&gw).await;
    let path = format!("/records/{link}/corrections");
    let (token, _) = b.form_page(&path).await;
    for text in [format!("please fix{NUL}"), format!("my name{SOH}")] {
        refused_page("correction request", b.post(&path, &[("csrf", &token), ("text", &text)]).await);
    }
    assert_eq!(count(&gw, "correction_requests").await, 0, "nothing was stored");
    // Tab and line breaks are text; the ends are trimmed.
    let (status, html, _) = b.post(&path, &[("csrf", &token), ("text", "  line one\r\nline two\tend  ")]).await;
    assert_eq!(status, 303, "{html}");
    let store = portico::store::Store::open(&gw.database_url, 2).await.unwrap();
    let (id, kept): (String, String) =
        sqlx::query_as("SELECT id, requested_change FROM correction_requests").fetch_one(&store.pool).await.unwrap();
    assert_eq!(kept, "line one\r\nline two\tend");

    // Staff: a decision or an extension with a NUL in its reason changes nothing.
    let before = admin_get(&gw, &format!("/admin/corrections/{id}")).await.1["entry"].clone();
    for (what, url, body, field) in [
        (
            "decision",
            format!("/admin/corrections/{id}/decision"),
            json!({"decision": "deny", "reason": format!("no{NUL}"), "by": "HIM"}),
            "reason",
        ),
        (
            "decision by",
            format!("/admin/corrections/{id}/decision"),
            json!({"decision": "accept", "reason": "ok", "by": format!("HIM{SOH}")}),
            "by",
        ),
        ("extension", format!("/admin/corrections/{id}/extension"), json!({"reason": format!("busy{NUL}")}), "reason"),
    ] {
        let (status, answer) = admin_post(&gw, &url, body).await;
        refused_json(what, status, &answer, field);
    }
    assert_eq!(
        admin_get(&gw, &format!("/admin/corrections/{id}")).await.1["entry"],
        before,
        "the request is unchanged"
    );
    // The disagreement form is a page form like the request's.
    let (status, _) = admin_post(
        &gw,
        &format!("/admin/corrections/{id}/decision"),
        json!({"decision": "deny", "reason": "the record is right", "by": "HIM"}),
    )
    .await;
    assert_eq!(status, 200);
    let (token, _) = b.form_page(&path).await;
    let disagree = format!("{path}/{id}/disagreement");
    refused_page("disagreement", b.post(&disagree, &[("csrf", &token), ("text", &format!("no{NUL}"))]).await);
    let disagreement: Option<String> =
        sqlx::query_scalar("SELECT disagreement FROM correction_requests").fetch_one(&store.pool).await.unwrap();
    assert_eq!(disagreement, None);
    // Queue and accounting queries are checked like bodies.
    for query in [
        "/admin/corrections?show=%00",
        "/admin/disclosures?patient=%00",
        "/admin/policy/explain?patient=%00&viewer=patient",
    ] {
        let (status, body) = admin_get_status(&gw, query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.contains("control character"), "{query}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_links_proxies_and_notices_refuse_control_characters() {
    let gw = Gateway::start(&fixture_file_sources()).await;
    let (b, link) = crate::corrections::bob(&gw).await;
    let share = format!("/records/{link}/share");
    let (token, _) = b.form_page(&share).await;
    let label = format!("Camp{SOH}");
    let form = [("csrf", token.as_str()), ("label", label.as_str()), ("days", "30"), ("section", "allergies")];
    refused_page("share label", b.post(&share, &form).await);
    let passcode = format!("1234{NUL}");
    let form = [
        ("csrf", token.as_str()),
        ("label", "Camp"),
        ("days", "30"),
        ("section", "allergies"),
        ("passcode", passcode.as_str()),
    ];
    refused_page("share passcode", b.post(&share, &form).await);
    // The app API checks the body first (the dev token makes no links at all).
    let expires = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let body = json!({"sections": ["allergies"], "label": format!("x{NUL}"), "expires": expires});
    let r = gw.http.post(format!("{}/share-links", gw.origin)).bearer_auth(TOKEN).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    refused_json("share API label", status, &r.json().await.unwrap(), "label");
    assert_eq!(count(&gw, "share_links").await, 0, "no link was made");
    // Opening a link: the recipient is written to the access log.
    let r = gw
        .http
        .post(format!("{}/shl/abc", gw.origin))
        .json(&json!({"recipient": format!("School{NUL}")}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    refused_json("manifest recipient", status, &r.json().await.unwrap(), "recipient");
    let recipient = format!("School{NUL}");
    let (status, html, _) =
        Browser::new(&gw).post("/share/view", &[("shlink", "shlink:/x"), ("recipient", &recipient)]).await;
    assert_eq!(status, 400, "{html}");

    // Proxy invitations, from the page and the JSON API.
    let (token, _) = b.form_page("/account/proxies").await;
    let email = format!("carol{NUL}@example.org");
    refused_page(
        "invitation page",
        b.post("/account/proxies/invite", &[("csrf", &token), ("email", &email), ("relationship", "SPS")]).await,
    );
    for (body, field) in [
        (json!({"email": format!("carol{NUL}@example.org")}), "email"),
        (json!({"email": "carol@example.org", "relationship": format!("SPS{SOH}")}), "relationship"),
    ] {
        let r = b
            .http
            .post(b.url("/api/account/proxies/invitations"))
            .header("x-csrf-token", &token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        refused_json("invitation API", status, &r.json().await.unwrap(), field);
    }
    assert_eq!(count(&gw, "proxy_invitations").await, 0, "no invitation was made");
    let (status, html, _) = b.get("/proxy-invitations/accept?token=%00").await;
    assert!((400..500).contains(&status), "accept link: {status} {html}");
    // Staff granting proxy access.
    let grant = json!({"username": format!("ana{NUL}@example.org"), "patient": "ehr/pt-10007", "relationship": "MTH", "by": "HIM"});
    let links_before = count(&gw, "account_patients").await;
    let (status, body) = admin_post(&gw, "/admin/proxies", grant).await;
    refused_json("staff proxy grant", status, &body, "username");
    let end = json!({"link_id": "nope", "reason": format!("moved{NUL}"), "by": "HIM"});
    let (status, body) = admin_post(&gw, "/admin/access/terminate", end).await;
    refused_json("termination", status, &body, "reason");
    assert_eq!(count(&gw, "account_patients").await, links_before);

    // Notice choices (JSON) and a held result's release.
    let r = b
        .http
        .put(b.url("/api/account/notices"))
        .header("x-csrf-token", &token)
        .json(&json!({"on": [format!("results{NUL}")]}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    refused_json("notice choice", status, &r.json().await.unwrap(), "on[0]");
    let release = json!({"patient": "ehr/pt-10001", "resource": format!("Observation/x{NUL}"), "by": "HIM"});
    let (status, body) = admin_post(&gw, "/admin/holds/release", release).await;
    refused_json("hold release", status, &body, "resource");
    assert_eq!(count(&gw, "hold_releases").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_oauth_and_export_parameters_refuse_control_characters() {
    let gw = Gateway::start(&fixture_file_sources()).await;
    let clients = |gw: &Gateway| {
        let gw_origin = gw.origin.clone();
        let http = gw.http.clone();
        async move {
            let r = http.get(format!("{gw_origin}/admin/clients")).bearer_auth(TOKEN).send().await.unwrap();
            r.json::<Value>().await.unwrap()
        }
    };
    let before = clients(&gw).await;
    for (body, field) in [
        (
            json!({"name": format!("App{SOH}"), "kind": "public", "redirect_uris": ["http://127.0.0.1:9/cb"],
                "allowed_scopes": "launch/patient"}),
            "name",
        ),
        (
            json!({"name": "App", "kind": "public", "redirect_uris": [format!("http://127.0.0.1:9/cb{NUL}")],
                "allowed_scopes": "launch/patient"}),
            "redirect_uris[0]",
        ),
    ] {
        let (status, answer) = admin_post(&gw, "/admin/clients", body).await;
        refused_json("app registration", status, &answer, field);
    }
    assert_eq!(clients(&gw).await, before, "no app was registered");

    // OAuth forms: invalid_request naming the parameter.
    for path in ["/token", "/introspect", "/revoke"] {
        for form in [
            vec![
                ("grant_type", "authorization_code".to_string()),
                ("client_id", format!("app{NUL}")),
                ("code", "x".into()),
            ],
            vec![("token", format!("t{SOH}")), ("client_id", "app".into())],
        ] {
            let r = gw.http.post(format!("{}{path}", gw.origin)).form(&form).send().await.unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap();
            assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{path}: {body}");
            assert!(body["error_description"].as_str().unwrap().contains("control character"), "{path}: {body}");
        }
    }
    // /authorize: nothing of the request is kept in the session.
    let b = Browser::new(&gw);
    for query in ["client_id=%00&response_type=code", "client_id=app&response_type=code&state=a%01b"] {
        let (status, html, _) = b.get(&format!("/authorize?{query}")).await;
        refused_page(query, (status, html, None));
    }
    let (status, html, _) = b.post("/authorize", &[("client_id", "app"), ("state", "a\u{0}b")]).await;
    refused_page("authorize POST", (status, html, None));
    assert_eq!(count(&gw, "sessions").await, 0, "no session was stored");

    // $export kick-off: its parameters are kept with the job.
    for query in ["_type=Patient%00", "_since=2020-01-01T00:00:00Z%00", "_typeFilter=Observation%3Fcode%3D%01"] {
        let r = gw
            .http
            .get(format!("{}/$export?{query}", gw.fhir))
            .bearer_auth(TOKEN)
            .header("prefer", "respond-async")
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.to_string().contains("control character"), "{query}: {body}");
    }
    assert_eq!(count(&gw, "export_jobs").await, 0, "no job was started");
}

/// Ids with a NUL in paths and forms (lookups, not stored text): a 4xx, never a 500 or 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_with_a_nul_are_refused_never_a_server_error() {
    let gw = Gateway::start(&fixture_file_sources()).await;
    let (b, link) = crate::corrections::bob(&gw).await;
    let (token, _) = b.form_page(&format!("/records/{link}/corrections")).await;
    let get = |path: String| {
        let http = b.http.clone();
        let url = b.url(&path);
        async move {
            let r = http.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    for path in [
        "/records/%00".to_string(),
        format!("/records/{link}/documents/%00"),
        format!("/records/{link}/corrections/%00/fhir"),
        format!("/records/{link}/downloads/%00"),
        "/shl/file/%00".to_string(),
    ] {
        let (status, body) = get(path.clone()).await;
        assert!((400..500).contains(&status), "{path}: {status} {body}");
    }
    for (path, form) in [
        (format!("/records/{link}/corrections/%00/disagreement"), vec![("csrf", token.as_str()), ("text", "no")]),
        (format!("/records/{link}/share/revoke"), vec![("csrf", token.as_str()), ("id", "\u{0}")]),
        (format!("/records/{link}/apps/revoke"), vec![("csrf", token.as_str()), ("grant_id", "\u{0}")]),
        ("/account/apps/revoke".to_string(), vec![("csrf", token.as_str()), ("grant_id", "\u{0}")]),
    ] {
        let (status, html, _) = b.post(&path, &form).await;
        assert!((400..500).contains(&status), "{path}: {status} {html}");
    }
    let staff = |method: reqwest::Method, path: &str| {
        gw.http.request(method, format!("{}{path}", gw.origin)).bearer_auth(TOKEN)
    };
    for (method, path) in [
        (reqwest::Method::POST, "/admin/clients/%00/disable"),
        (reqwest::Method::GET, "/admin/corrections/%00"),
        (reqwest::Method::GET, "/fhir/$export-status/%00"),
        (reqwest::Method::DELETE, "/fhir/$export-status/%00"),
        (reqwest::Method::DELETE, "/share-links/%00"),
    ] {
        let r = staff(method, path).send().await.unwrap();
        let status = r.status().as_u16();
        assert!((400..500).contains(&status), "{path}: {status} {}", r.text().await.unwrap());
    }
    let r = gw.http.post(format!("{}/shl/%00", gw.origin)).json(&json!({"recipient": "School"})).send().await.unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("control character"), "{body}");
}

/// The backstop under the checks at the door: the store tells text the database refused
/// (PostgreSQL: NUL in text, 22021; `\u0000` in JSON, 22P05) from a failure, so each surface
/// answers it 400. SQLite keeps such text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_tells_refused_text_from_a_failure() {
    let gw = Gateway::start(&fixture_file_sources()).await;
    let store = portico::store::Store::open(&gw.database_url, 2).await.unwrap();
    let text = sqlx::query("SELECT CAST($1 AS TEXT)").bind("a\u{0}b").execute(&store.pool).await;
    let failure = sqlx::query("SELECT no_such_column FROM accounts").execute(&store.pool).await;
    let failure = portico::store::StoreError::from(failure.unwrap_err());
    assert!(!failure.is_bad_text(), "{failure}");
    match store.dialect {
        portico::store::Dialect::Postgres => {
            let refused = portico::store::StoreError::from(text.unwrap_err());
            assert!(refused.is_bad_text(), "{refused}");
            let json = sqlx::query("SELECT CAST($1 AS JSONB)").bind("\"\\u0000\"").execute(&store.pool).await;
            let refused = portico::store::StoreError::from(json.unwrap_err());
            assert!(refused.is_bad_text(), "{refused}");
        }
        portico::store::Dialect::Sqlite => assert!(text.is_ok(), "SQLite keeps a NUL"),
    }
    store.pool.close().await;
}
