//! Share links (SMART Health Links, issue 16 part 1) over real HTTP: people make links on
//! their record pages; an independent decoder written from the specification in Python
//! (PyPI jwcrypto, `tests/share/shl_decode.py`) opens them — payload, manifest, JWE — and
//! checks the Bundle; expired, revoked and wrong-passcode links show nothing; a parent's
//! link for a teenager holds nothing of her confidential care; each opening is in the audit
//! log with the fields the accounting of disclosures reads, and on the patient's access-log
//! page; passcode floods meet 429 and lockout, never a 500.

use crate::common::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

async fn gateway() -> Gateway {
    Gateway::start(&fixture_file_sources()).await
}

async fn enroll(b: &Browser, mrn: &str, birth: &str, family: &str) {
    let (token, _) = b.form_page("/enroll").await;
    let birth = shifted(birth);
    let (status, html, _) =
        b.post("/enroll", &[("csrf", &token), ("mrn", mrn), ("birth_date", &birth), ("family", family)]).await;
    assert_eq!(status, 303, "{html}");
}

async fn only_record(b: &Browser) -> String {
    let (status, _, location) = b.get("/records").await;
    assert_eq!(status, 303);
    location.unwrap().strip_prefix("/records/").unwrap().to_string()
}

/// Bob, signed in, with his own record connected: (browser, record link).
async fn bob(gw: &Gateway) -> (Browser, String) {
    let b = register(gw, "Robert Martinez", "bob@example.org").await;
    enroll(&b, "HG100142", "1967-06-18", "Martinez").await;
    let link = only_record(&b).await;
    (b, link)
}

/// The text of the element marked `data-testid="{id}"` (a textarea's content), unescaped.
fn testid_text(html: &str, id: &str) -> String {
    let marker = format!("data-testid=\"{id}\">");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {id} in {html}")) + marker.len();
    let end = start + html[start..].find('<').unwrap();
    unescape(&html[start..end])
}

/// Makes a link on the share page; its viewer link (`…/share#shlink:/…`).
pub(crate) async fn share(b: &Browser, link: &str, sections: &[&str], label: &str, passcode: &str) -> String {
    let (csrf, _) = b.form_page(&format!("/records/{link}/share")).await;
    let mut form = vec![("csrf", csrf.as_str()), ("label", label), ("passcode", passcode), ("days", "30")];
    form.extend(sections.iter().map(|s| ("section", *s)));
    let (status, html, _) = b.post(&format!("/records/{link}/share"), &form).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<svg") && html.contains("QR code of the share link"), "a QR code");
    testid_text(&html, "share-viewer-link")
}

/// The payload of a viewer link, read by the test itself (only for the manifest URL).
fn payload(viewer_link: &str) -> Value {
    let encoded = viewer_link.split("#shlink:/").nth(1).expect("a viewer link");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(encoded).unwrap()).unwrap()
}

pub(crate) async fn post_manifest(gw: &Gateway, viewer_link: &str, body: Value) -> (u16, String) {
    let url = payload(viewer_link)["url"].as_str().unwrap().to_string();
    let r = gw.http.post(url).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Opens a link with the independent decoder.
async fn decode(link: &str, recipient: &str, passcode: Option<&str>, embedded_max: Option<usize>) -> Value {
    let mut cmd = tokio::process::Command::new(python_with("share-venv", "jwcrypto==1.5.6"));
    cmd.arg(root().join("tests/share/shl_decode.py")).arg(link).arg(recipient);
    if let Some(p) = passcode {
        cmd.args(["--passcode", p]);
    }
    if let Some(m) = embedded_max {
        cmd.args(["--embedded-length-max", &m.to_string()]);
    }
    let out = cmd.output().await.unwrap();
    assert!(out.status.success(), "decoder: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["problems"], json!([]), "{v}");
    v
}

/// The resources of the decoded link's one file (a collection Bundle).
fn resources(decoded: &Value) -> Vec<Value> {
    assert_eq!(decoded["manifest_status"], 200, "{decoded}");
    let files = decoded["files"].as_array().unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["contentType"], "application/fhir+json");
    let bundle = &files[0]["content"];
    assert_eq!((bundle["resourceType"].as_str(), bundle["type"].as_str()), (Some("Bundle"), Some("collection")));
    bundle["entry"].as_array().unwrap().iter().map(|e| e["resource"].clone()).collect()
}

fn types(resources: &[Value]) -> std::collections::BTreeSet<String> {
    resources.iter().map(|r| r["resourceType"].as_str().unwrap().to_string()).collect()
}

/// What must not be in an answer that shows nothing: Bob's names and record.
const BOB_PHI: &[&str] = &["Martinez", "Robert", "Penicillin", "Influenza", "hypertension", "Bundle", "embedded"];

fn shows_nothing(body: &str) {
    for word in BOB_PHI {
        assert!(!body.to_lowercase().contains(&word.to_lowercase()), "`{word}` in a refusal: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_decoder_opens_a_patients_link_and_finds_only_the_chosen_sections() {
    if !require("python") {
        return;
    }
    let gw = gateway().await;
    let (b, link) = bob(&gw).await;
    let viewer = share(&b, &link, &["immunizations", "allergies"], "For school", "harbor-1234").await;
    assert!(viewer.starts_with(&format!("{}/share#shlink:/", gw.origin)), "{viewer}");
    let p = payload(&viewer);
    assert_eq!((p["flag"].as_str(), p["label"].as_str(), p["v"].as_i64()), (Some("LP"), Some("For school"), Some(1)));
    assert!(p["exp"].as_i64().unwrap() > chrono::Utc::now().timestamp() + 29 * 86400);

    let decoded = decode(&viewer, "Lincoln High School nurse", Some("harbor-1234"), None).await;
    let header = &decoded["files"][0]["header"];
    assert_eq!((header["alg"].as_str(), header["enc"].as_str()), (Some("dir"), Some("A256GCM")));
    assert_eq!(decoded["files"][0]["how"], "embedded");
    let shared = resources(&decoded);
    let kinds = types(&shared);
    assert!(
        kinds.contains("Patient") && kinds.contains("AllergyIntolerance") && kinds.contains("Immunization"),
        "{kinds:?}"
    );
    for t in &kinds {
        let allowed = ["Patient", "AllergyIntolerance", "Immunization"].contains(&t.as_str())
            || portico::fhir::SUPPORTING_TYPES.contains(&t.as_str());
        assert!(allowed, "{t} is not in the sections shared");
    }
    // Exactly Bob's allergies and immunizations, as the FHIR API has them.
    let patient = gw.patient_id("ehr", "pt-10001");
    for t in ["AllergyIntolerance", "Immunization"] {
        let (all, _) = gw.all_pages(&format!("{t}?patient={patient}")).await;
        let mut want = keys(&all);
        let mut got = keys(&shared.iter().filter(|r| r["resourceType"] == t).cloned().collect::<Vec<_>>());
        want.sort();
        got.sort();
        assert_eq!(got, want, "{t}");
    }
    assert!(serde_json::to_string(&shared).unwrap().contains("Penicillin"));

    // A viewer that takes files by address gets the same file from `location`.
    let by_address = decode(&viewer, "Lincoln High School nurse", Some("harbor-1234"), Some(10)).await;
    assert_eq!(by_address["files"][0]["how"], "location");
    assert_eq!(by_address["files"][0]["content"], decoded["files"][0]["content"]);

    // The plain web view: the link pasted into the page, read as HTML.
    let (status, page, _) = Browser::new(&gw)
        .post("/share/view", &[("shlink", &viewer), ("recipient", "Camp Harbor"), ("passcode", "harbor-1234")])
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Penicillin") && page.contains("Influenza"), "{page}");
    assert!(!page.contains("hypertension"), "a section not shared is not shown");
    let (status, form, _) = Browser::new(&gw).get("/share").await;
    assert_eq!(status, 200);
    assert!(form.contains("/static/share.js") && form.contains("name=\"shlink\""));

    // Three openings, counted on the share page.
    let page = b.view(&format!("/records/{link}/share")).await;
    assert!(page.contains("Opened 3 times"), "{page}");

    // Bob is told once (three openings within a day), in words that carry nothing of the
    // record, the link or who opened it.
    let opened = |m: &Mail| m.to() == "bob@example.org" && m.subject() == "A link you shared was opened";
    let told = wait_for_mail(|| folder_mails(&gw.mail_dir), opened).await;
    let text = told.text();
    for secret in ["Penicillin", "Influenza", "For school", "Lincoln", "Camp Harbor", "Martinez", "shlink"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    assert_eq!(folder_mails(&gw.mail_dir).iter().filter(|m| opened(m)).count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_revoked_and_wrong_passcode_links_show_nothing() {
    let gw = gateway().await;
    let (b, link) = bob(&gw).await;
    let guarded = share(&b, &link, &["everything"], "New doctor", "harbor-1234").await;
    let open = share(&b, &link, &["allergies"], "Camp", "").await;
    assert_eq!(payload(&open)["flag"], "L", "no passcode: no P");

    let (status, body) = post_manifest(&gw, &guarded, json!({"recipient": "Dr. Who", "passcode": "wrong"})).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["remainingAttempts"], 9);
    shows_nothing(&body);
    let (status, body) = post_manifest(&gw, &guarded, json!({"recipient": "Dr. Who"})).await;
    assert_eq!((status, serde_json::from_str::<Value>(&body).unwrap()["remainingAttempts"].as_i64()), (401, Some(9)));
    let (status, body) = post_manifest(&gw, &guarded, json!({"recipient": "Dr. Who", "passcode": "harbor-1234"})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("embedded"));

    // Bad requests change nothing.
    let (status, body) = post_manifest(&gw, &open, json!({"passcode": "x"})).await;
    assert_eq!(status, 400, "no recipient: {body}");
    let url = payload(&open)["url"].as_str().unwrap().to_string();
    let r = gw.http.post(&url).body("not json").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r =
        gw.http.post(format!("{}/shl/made-up-token", gw.origin)).json(&json!({"recipient": "x"})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    shows_nothing(&r.text().await.unwrap());

    // Revoked: 404, nothing shown — the manifest and the web view alike.
    let (csrf, page) = b.form_page(&format!("/records/{link}/share")).await;
    let ids = value_of(&page, "id");
    assert_eq!(ids.len(), 2);
    for id in &ids {
        let (status, _, to) = b.post(&format!("/records/{link}/share/revoke"), &[("csrf", &csrf), ("id", id)]).await;
        assert_eq!((status, to.as_deref()), (303, Some(format!("/records/{link}/share").as_str())));
    }
    let (status, body) = post_manifest(&gw, &guarded, json!({"recipient": "Dr. Who", "passcode": "harbor-1234"})).await;
    assert_eq!(status, 404);
    shows_nothing(&body);
    let (status, page, _) = Browser::new(&gw).post("/share/view", &[("shlink", &open), ("recipient", "Camp")]).await;
    assert_eq!(status, 404);
    shows_nothing(&page);
    assert!(b.view(&format!("/records/{link}/share")).await.matches("revoked").count() >= 2);

    // Expired: 404, nothing shown.
    let expiring = share(&b, &link, &["allergies"], "School", "").await;
    let store = portico::store::Store::open(&gw.database_url, 2).await.unwrap();
    sqlx::query("UPDATE share_links SET expires_at = '2001-01-01T00:00:00.000000Z' WHERE label = 'School'")
        .execute(&store.pool)
        .await
        .unwrap();
    let (status, body) = post_manifest(&gw, &expiring, json!({"recipient": "School"})).await;
    assert_eq!(status, 404);
    shows_nothing(&body);

    // The web view: a link of another site, or not a link, is refused plainly; its script
    // is the gateway's own.
    let elsewhere = json!({"url": "https://elsewhere.example/shl/x", "key": URL_SAFE_NO_PAD.encode([1u8; 32])});
    let elsewhere = format!("shlink:/{}", URL_SAFE_NO_PAD.encode(elsewhere.to_string()));
    for (link, words) in [(elsewhere.as_str(), "not from this site"), ("hello", "not a share link")] {
        let (status, page, _) = Browser::new(&gw).post("/share/view", &[("shlink", link), ("recipient", "x")]).await;
        assert_eq!(status, 400);
        assert!(page.contains(words), "{page}");
    }
    let r = gw.http.get(format!("{}/static/share.js", gw.origin)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert!(r.text().await.unwrap().contains("location.hash"));

    // The form refuses a link with no section, and another account cannot use this record.
    let (csrf, _) = b.form_page(&format!("/records/{link}/share")).await;
    let (status, html, _) =
        b.post(&format!("/records/{link}/share"), &[("csrf", &csrf), ("label", "x"), ("days", "30")]).await;
    assert_eq!(status, 400, "{html}");
    let other = register(&gw, "Eve", "eve@example.org").await;
    let (csrf, _) = other.form_page("/account").await;
    let (status, html, _) = other
        .post(
            &format!("/records/{link}/share"),
            &[("csrf", &csrf), ("label", "x"), ("days", "30"), ("section", "allergies")],
        )
        .await;
    assert_eq!(status, 404, "{html}");
    // Staff and unauthenticated callers make no links through the app API.
    let r =
        gw.http.post(format!("{}/share-links", gw.origin)).bearer_auth(TOKEN).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400, "the request is checked first");
    let body = json!({"sections": ["allergies"], "label": "x", "expires": (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339()});
    let r = gw.http.post(format!("{}/share-links", gw.origin)).bearer_auth(TOKEN).json(&body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = gw.http.post(format!("{}/share-links", gw.origin)).json(&body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parents_link_for_a_teen_holds_nothing_confidential() {
    if !require("python") {
        return;
    }
    let gw = gateway().await;
    let ana = register(&gw, "Ana Rodriguez", "ana@example.org").await;
    let ana_link = grant_proxy(&gw, "ana@example.org", "ehr/pt-10007", "MTH", "ehr/rp-10001").await;
    let maya = register(&gw, "Maya Rodriguez", "maya@example.org").await;
    enroll(&maya, "HG100733", "2009-08-14", "Rodriguez").await;
    let maya_link = only_record(&maya).await;

    let from_ana =
        resources(&decode(&share(&ana, &ana_link, &["everything"], "Camp", "").await, "Camp", None, None).await);
    let from_maya =
        resources(&decode(&share(&maya, &maya_link, &["everything"], "Clinic", "").await, "Clinic", None, None).await);
    let ana_text = serde_json::to_string(&from_ana).unwrap().to_lowercase();
    let maya_text = serde_json::to_string(&from_maya).unwrap().to_lowercase();
    assert!(ana_text.contains("tdap") && ana_text.contains("hpv9"), "a parent shares the immunizations");
    let secrets = [
        "pregnan",
        "chlamydia",
        "contracept",
        "camila",
        "phq",
        "depression",
        "gonorrh",
        "choriogonadotropin",
        "confidential visit note",
    ];
    for secret in secrets {
        assert!(!mentions(&ana_text, secret), "a parent's link must not hold `{secret}`");
    }
    assert!(
        secrets.iter().filter(|s| maya_text.contains(**s)).count() >= 3,
        "Maya's own link holds her confidential care"
    );
    // Everything in Ana's link is what Ana sees; Maya's holds more.
    let (ana_keys, maya_keys): (std::collections::HashSet<_>, std::collections::HashSet<_>) =
        (keys(&from_ana).into_iter().collect(), keys(&from_maya).into_iter().collect());
    assert!(ana_keys.is_subset(&maya_keys) && ana_keys.len() < maya_keys.len());
    let ana_pages = ana.every_page(&ana_link).await;
    for imm in from_ana.iter().filter(|r| r["resourceType"] == "Immunization") {
        let text = imm["vaccineCode"]["text"].as_str().unwrap();
        assert!(ana_pages.contains(text), "{text} is on Ana's pages");
    }
    // Ana's access log lists her own sharing, not Maya's nor the openings of Maya's link.
    let log = ana.view(&format!("/records/{ana_link}/access-log")).await;
    assert_eq!(log.matches("Made a share link of the record").count(), 1, "{log}");
    assert!(!log.contains("Clinic") && !log.contains("Someone with your share link"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_opening_is_audited_and_on_the_patients_access_log() {
    let gw = gateway().await;
    let (b, link) = bob(&gw).await;
    let viewer = share(&b, &link, &["allergies"], "For school", "harbor-1234").await;
    for recipient in ["Lincoln High", "Camp Harbor"] {
        let (status, _) = post_manifest(&gw, &viewer, json!({"recipient": recipient, "passcode": "harbor-1234"})).await;
        assert_eq!(status, 200);
    }
    let (status, _) = post_manifest(&gw, &viewer, json!({"recipient": "Guesser", "passcode": "nope"})).await;
    assert_eq!(status, 401);

    let store = portico::store::Store::open(&gw.database_url, 2).await.unwrap();
    let rows: Vec<(String, String, Option<String>, Option<String>, String, String)> = sqlx::query_as(
        "SELECT actor, role, purpose, patient_id, outcome, what FROM audit_events WHERE action = 'share-view' ORDER BY seq",
    )
    .fetch_all(&store.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let patient = gw.patient_id("ehr", "pt-10001");
    for (actor, role, purpose, patient_id, _, what) in &rows {
        assert!(actor.starts_with("share-link/") && actor.len() > 20, "{actor}");
        assert_eq!((role.as_str(), purpose.as_deref()), ("share link", Some("For school")));
        assert_eq!(patient_id.as_deref(), Some(patient.as_str()));
        assert!(!what.contains(viewer.split("/shl/").nth(1).unwrap_or("-")), "no token in the log");
    }
    assert_eq!(rows.iter().map(|r| r.4.as_str()).collect::<Vec<_>>(), ["success", "success", "denied"]);
    // Making the link was a logged access of the record too.
    let made: (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM audit_events WHERE action = 'share' AND actor LIKE 'account:%'")
            .fetch_one(&store.pool)
            .await
            .unwrap();
    assert_eq!(made.0, 1);

    let log = b.view(&format!("/records/{link}/access-log")).await;
    assert_eq!(log.matches("Someone with your share link “For school”").count(), 3, "{log}");
    assert!(log.contains("(as “Lincoln High”)") && log.contains("(as “Camp Harbor”)"), "{log}");
    assert!(log.contains("Made a share link of the record"));
    assert!(b.view(&format!("/records/{link}/share")).await.contains("Opened 2 times"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passcode_floods_meet_429_and_lockout_never_500() {
    let gw = gateway().await;
    let (b, link) = bob(&gw).await;
    let viewer = share(&b, &link, &["allergies"], "Flooded", "harbor-1234").await;
    let guesses = (0..40).map(|i| {
        let body = json!({"recipient": "bot", "passcode": format!("guess-{i}")});
        let gw = &gw;
        let viewer = &viewer;
        async move { post_manifest(gw, viewer, body).await }
    });
    let answers = futures::future::join_all(guesses).await;
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert!(statuses.iter().all(|s| [401, 404, 429].contains(s)), "{statuses:?}");
    assert!(statuses.contains(&429), "the flood is slowed: {statuses:?}");
    assert!(statuses.iter().filter(|s| **s == 401).count() <= 10, "at most the limit of guesses: {statuses:?}");
    for (_, body) in &answers {
        shows_nothing(body);
    }
    // Locked once the guesses are spent (or still slowed): the right passcode opens nothing.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    for i in 0..12 {
        let (status, body) =
            post_manifest(&gw, &viewer, json!({"recipient": "bot", "passcode": format!("late-{i}")})).await;
        assert!([401, 404, 429].contains(&status), "{status} {body}");
    }
    let (status, body) = post_manifest(&gw, &viewer, json!({"recipient": "bot", "passcode": "harbor-1234"})).await;
    assert!(status == 404 || status == 429, "{status} {body}");
    shows_nothing(&body);
    let page = b.view(&format!("/records/{link}/share")).await;
    assert!(page.contains("locked"), "{page}");
}

const CLIENT: &str = "school-forms";
const REDIRECT: &str = "http://127.0.0.1:9/callback";
const APP_SCOPE: &str = "launch/patient patient/Patient.rs patient/AllergyIntolerance.rs";

/// An app token for Bob's record through `/authorize` and `/token`, as an app would get one.
async fn app_token(gw: &Gateway, b: &Browser) -> String {
    use sha2::Digest;
    let verifier = URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes()) + &URL_SAFE_NO_PAD.encode([7u8; 16]);
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", CLIENT)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", APP_SCOPE)
        .append_pair("state", "s")
        .append_pair("aud", &gw.fhir)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let (status, _, location) = b.get(&format!("{}/authorize?{}", gw.origin, q.finish())).await;
    let location = location.unwrap_or_default();
    assert_eq!(status, 303, "{location}");
    if location == "/authorize/pick" {
        let (token, html) = b.form_page("/authorize/pick").await;
        let link = value_of(&html, "link_id").remove(0);
        b.post("/authorize/pick", &[("csrf", &token), ("link_id", &link)]).await;
    }
    let (token, html) = b.form_page("/authorize/consent").await;
    let scopes = value_of(&html, "scope");
    let mut form: Vec<(&str, &str)> = vec![("csrf", &token), ("decision", "allow")];
    form.extend(scopes.iter().map(|s| ("scope", s.as_str())));
    let (status, _, location) = b.post("/authorize/consent", &form).await;
    assert_eq!(status, 303);
    let callback = url::Url::parse(&location.unwrap()).unwrap();
    let code = callback.query_pairs().find(|(k, _)| k == "code").unwrap().1.to_string();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", CLIENT),
        ("code_verifier", verifier.as_str()),
    ];
    let t: Value = gw.http.post(format!("{}/token", gw.origin)).form(&form).send().await.unwrap().json().await.unwrap();
    t["access_token"].as_str().unwrap_or_else(|| panic!("{t}")).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_makes_lists_and_revokes_links_within_its_scopes() {
    let body = format!(
        "[[auth.clients]]\nclient_id = \"{CLIENT}\"\nname = \"School forms\"\nkind = \"public\"\n\
         redirect_uris = [\"{REDIRECT}\"]\nallowed_scopes = \"{APP_SCOPE}\"\n{}",
        fixture_file_sources()
    );
    let gw = Gateway::start(&body).await;
    let (b, link) = bob(&gw).await;
    let token = app_token(&gw, &b).await;
    let api = format!("{}/share-links", gw.origin);
    let expires = (chrono::Utc::now() + chrono::Duration::days(7)).to_rfc3339();
    let ask = json!({"sections": ["everything"], "label": "From my app", "expires": expires});
    let r = gw.http.post(&api).bearer_auth(&token).json(&ask).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let made: Value = r.json().await.unwrap();
    assert!(made["shlink"].as_str().unwrap().starts_with("shlink:/") && made["qrSvg"].as_str().is_some());
    // "Everything" is everything the app may list: the patient and the allergies.
    let patient = gw.patient_id("ehr", "pt-10001");
    let (allergies, _) = gw.all_pages(&format!("AllergyIntolerance?patient={patient}")).await;
    assert_eq!(made["items"].as_u64(), Some(1 + allergies.len() as u64), "{made}");

    let bad = json!({"sections": ["secrets"], "label": "x", "expires": expires});
    let r = gw.http.post(&api).bearer_auth(&token).json(&bad).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let listed: Value = gw.http.get(&api).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    let links = listed["links"].as_array().unwrap();
    assert_eq!(links.len(), 1, "{listed}");
    assert_eq!((links[0]["status"].as_str(), links[0]["views"].as_i64()), (Some("active"), Some(0)));
    assert!(!listed.to_string().contains("shlink:/"), "the link itself is not kept");
    assert!(b.view(&format!("/records/{link}/share")).await.contains("From my app"), "the portal lists it too");

    let id = made["id"].as_str().unwrap();
    let r = gw.http.delete(format!("{api}/{id}")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let r = gw.http.delete(format!("{api}/{id}")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let viewer = format!("{}/share#{}", gw.origin, made["shlink"].as_str().unwrap());
    let (status, body) = post_manifest(&gw, &viewer, json!({"recipient": "School"})).await;
    assert_eq!(status, 404);
    shows_nothing(&body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_ends_when_its_makers_access_ends() {
    let gw = gateway().await;
    let ana = register(&gw, "Ana Rodriguez", "ana@example.org").await;
    let ana_link = grant_proxy(&gw, "ana@example.org", "ehr/pt-10007", "MTH", "ehr/rp-10001").await;
    let viewer = share(&ana, &ana_link, &["immunizations"], "Camp", "").await;
    let (status, _) = post_manifest(&gw, &viewer, json!({"recipient": "Camp"})).await;
    assert_eq!(status, 200);
    let r = gw
        .http
        .post(format!("{}/admin/access/terminate", gw.origin))
        .bearer_auth(TOKEN)
        .json(&json!({"link_id": ana_link, "reason": "custody changed", "by": "HIM desk"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, body) = post_manifest(&gw, &viewer, json!({"recipient": "Camp"})).await;
    assert_eq!(status, 404, "{body}");
    assert!(!body.to_lowercase().contains("maya") && !body.contains("embedded"), "{body}");
}
