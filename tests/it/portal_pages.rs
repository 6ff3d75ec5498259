//! The per-patient record pages over real HTTP: people register, connect their record or
//! are granted proxy access by staff, sign in with a cookie jar, and read their records'
//! pages. Checks what each viewer sees and — as carefully — what they must not: withheld
//! items appear nowhere in the HTML, the withheld-notice is the same whether or not
//! anything was withheld, another account's record answers like a made-up address, a down
//! source shows a banner, every page view is in the access log, forms need their CSRF token.

use crate::common::*;
use portico::simulator::SimulatorOptions;
use std::time::Duration;

const CLINIC: &str = "Harbor Teen & Family Clinic";

/// A small extra source (a family clinic) holding two problems for Ethan (10), linked to
/// his EHR record by his MRN: one ordinary, one mental health care (his parent's to consent
/// to, and so to see, until the minor-consent age of the jurisdiction: 12 by default).
fn clinic_source(dir: &std::path::Path) -> String {
    let folder = dir.join("clinic");
    std::fs::create_dir_all(&folder).unwrap();
    let patient = serde_json::json!({"resourceType": "Patient", "id": "c-1",
        "identifier": [{"system": "https://ehr.harbor-health.example/fhir/sid/mrn", "value": "HG100734"}],
        "name": [{"family": "Rodriguez", "given": ["Ethan"]}], "gender": "male", "birthDate": "2015-05-03"});
    let rhinitis = serde_json::json!({"resourceType": "Condition", "id": "c-2", "subject": {"reference": "Patient/c-1"},
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "problem-list-item"}]}],
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "J30.2"}], "text": "Seasonal hay fever"},
        "onsetDateTime": "2024-04-02"});
    let anxiety = serde_json::json!({"resourceType": "Condition", "id": "c-3", "subject": {"reference": "Patient/c-1"},
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "problem-list-item"}]}],
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F93.0"}], "text": "Separation anxiety disorder of childhood"},
        "onsetDateTime": "2025-09-15"});
    write_file(&folder, "Patient.ndjson", &format!("{patient}\n"));
    write_file(&folder, "Condition.ndjson", &format!("{rhinitis}\n{anxiety}\n"));
    let anchor = fixture_anchor();
    format!(
        "[[sources]]\nname = \"clinic\"\ndisplay = \"{CLINIC}\"\nkind = \"files\"\npath = {:?}\nshift_dates_from = \"{anchor}\"\n",
        folder.display().to_string()
    )
}

fn apps_config() -> &'static str {
    "[[auth.clients]]\nclient_id = \"growth-chart\"\nname = \"Growth Chart\"\nkind = \"public\"\nredirect_uris = [\"http://127.0.0.1:9/callback\"]\nallowed_scopes = \"launch/patient patient/*.rs\"\n"
}

async fn gateway() -> Gateway {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let body = format!("{}{}{}", apps_config(), fixture_file_sources(), clinic_source(dir.path()));
    Gateway::start_in(dir, &body, None).await
}

/// Connects the signed-in account to its own record.
async fn enroll(b: &Browser, mrn: &str, birth: &str, family: &str) {
    let (token, _) = b.form_page("/enroll").await;
    let birth = shifted(birth);
    let (status, html, _) =
        b.post("/enroll", &[("csrf", &token), ("mrn", mrn), ("birth_date", &birth), ("family", family)]).await;
    assert_eq!(status, 303, "{html}");
}

/// The link id `/records` sends a one-record account to.
async fn only_record(b: &Browser) -> String {
    let (status, _, location) = b.get("/records").await;
    assert_eq!(status, 303);
    location.unwrap().strip_prefix("/records/").expect("straight to the one record").to_string()
}

/// The element carrying `data-testid="{id}"`, whole (same-name tags nested inside counted).
fn region(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("data-testid=\"{id}\""))?;
    let start = html[..at].rfind('<')?;
    let tag: String = html[start + 1..].chars().take_while(char::is_ascii_alphanumeric).collect();
    let (open, close) = (format!("<{tag}"), format!("</{tag}>"));
    let mut depth = 0;
    let mut i = start;
    loop {
        let next_open = html[i + 1..].find(&open).map(|p| p + i + 1);
        let next_close = html[i..].find(&close).map(|p| p + i)?;
        match next_open {
            Some(o) if o < next_close => {
                depth += 1;
                i = o;
            }
            _ => {
                if depth == 0 {
                    return Some(html[start..next_close + close.len()].to_string());
                }
                depth -= 1;
                i = next_close + 1;
            }
        }
    }
}

/// The audit log's page-view entries for a patient (read by staff through the API).
async fn page_views(gw: &Gateway, patient: &str) -> Vec<String> {
    let (status, bundle) = gw.get(&format!("AuditEvent?patient={patient}&_count=500")).await;
    assert_eq!(status, 200, "{bundle}");
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["resource"]["entity"][0]["what"]["display"].as_str())
        .filter(|w| w.starts_with("/records/"))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adult_sees_every_section_with_the_system_each_item_came_from() {
    let gw = gateway().await;
    let b = register(&gw, "Bob Martinez", "bob@example.org").await;
    enroll(&b, "HG100142", "1967-06-18", "Martinez").await;
    let link = only_record(&b).await;
    assert!(link.len() >= 16 && !link.contains("HG100142") && !link.contains("1967"), "opaque: {link}");

    let home = b.view(&format!("/records/{link}")).await;
    let whose = region(&home, "whose-record").unwrap();
    assert!(
        whose.contains("your own record") && whose.contains("Robert Martinez") && whose.contains("age 58"),
        "{whose}"
    );
    assert!(region(&home, "emergency-notice").unwrap().contains("call 911"));
    assert!(region(&home, "withheld-notice").unwrap().contains("Harbor Health Information Management"));
    assert!(region(&home, "source-banner").is_none(), "all systems up: no banner");
    assert!(home.contains(&format!("href=\"/records/{link}/download.json\"")));
    assert!(home.contains(&format!("href=\"/records/{link}/download.zip\"")));
    assert!(region(&home, "recent-visits").unwrap().contains("Emergency"), "the ED visit is recent");
    assert!(home.contains("name=\"csrf\""), "the sign-out button is a form with its token");
    assert!(home.contains("class=\"skip\"") && home.contains("<html lang=\"en\">"));

    let results = b.view(&format!("/records/{link}/results")).await;
    let section = region(&results, "section-results").unwrap();
    assert!(section.contains("Hemoglobin A1c") && section.contains("<svg class=\"trend\""), "a trend for HbA1c");
    assert!(
        section.contains("6.8 mmol/L") && section.contains("3.5 to 5.1 mmol/L") && section.contains("Critically high")
    );
    assert!(section.contains("Bayview Regional Reference Lab") && section.contains("Harbor Imaging Center"));
    assert!(section.contains("<caption>") && section.contains("scope=\"col\""));

    let meds = region(&b.view(&format!("/records/{link}/medications")).await, "section-medications").unwrap();
    assert!(meds.to_lowercase().contains("metformin") && meds.contains("From Harbor General Hospital"), "{meds}");
    let allergies = region(&b.view(&format!("/records/{link}/allergies")).await, "section-allergies").unwrap();
    assert!(allergies.contains("Penicillin"));
    let imm = region(&b.view(&format!("/records/{link}/immunizations")).await, "section-immunizations").unwrap();
    assert!(imm.contains("Influenza"));
    let problems = region(&b.view(&format!("/records/{link}/problems")).await, "section-problems").unwrap();
    assert!(problems.contains("Essential (primary) hypertension"));
    let visits = region(&b.view(&format!("/records/{link}/visits")).await, "section-visits").unwrap();
    assert!(visits.contains("Outpatient imaging visit") && visits.contains("From Harbor Imaging Center"));
    let docs_page = b.view(&format!("/records/{link}/documents")).await;
    let docs = region(&docs_page, "section-documents").unwrap();
    assert!(docs.contains("Office visit note - diabetes follow-up"));
    assert!(!docs_page.contains("RGlhYmV0ZXMg"), "no raw attachment data");
    let team_page = b.view(&format!("/records/{link}/care-team")).await;
    assert!(region(&team_page, "section-care-team").unwrap().contains("Diabetes care team"));
    assert!(region(&team_page, "emergency-notice").is_some());

    // A made-up link id: a 404 page, still signed in; nothing about any record.
    let (status, html, _) = b.get("/records/not-a-real-link-id").await;
    assert_eq!(status, 404);
    assert!(!html.contains("Martinez") && html.contains("Sign out"));

    // Every record page view above is in the access log, with its opaque path.
    let bob = gw.patient_id("ehr", "pt-10001");
    let views = page_views(&gw, &bob).await;
    assert_eq!(views.len(), 9, "{views:?}");
    assert!(views.contains(&format!("/records/{link}/care-team")));
    assert!(!views.iter().any(|v| v.contains("not-a-real")), "no record, no data access");

    // If the access log cannot be written, no record page is shown (fail closed).
    let store = portico::store::Store::open(&gw.database_url, 2).await.unwrap();
    sqlx::query("ALTER TABLE audit_events RENAME TO audit_events_away").execute(&store.pool).await.unwrap();
    let (status, html, _) = b.get(&format!("/records/{link}/results")).await;
    assert_eq!(status, 503, "{html}");
    assert!(!html.contains("Martinez") && !html.contains("Hemoglobin"), "{html}");
    sqlx::query("ALTER TABLE audit_events_away RENAME TO audit_events").execute(&store.pool).await.unwrap();
    b.view(&format!("/records/{link}/results")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_switches_between_her_children_and_sees_only_what_a_parent_may() {
    let gw = gateway().await;
    let ana = register(&gw, "Ana Rodriguez", "ana@example.org").await;
    let maya = grant_proxy(&gw, "ana@example.org", "ehr/pt-10007", "MTH", "ehr/rp-10001").await;
    let ethan = grant_proxy(&gw, "ana@example.org", "ehr/pt-10008", "MTH", "ehr/rp-10002").await;
    let bob = register(&gw, "Bob Martinez", "bob@example.org").await;
    enroll(&bob, "HG100142", "1967-06-18", "Martinez").await;
    let bob_link = only_record(&bob).await;

    // Two records: a menu, and a switcher on every record page listing exactly those two.
    let (status, menu, _) = ana.get("/records").await;
    assert_eq!(status, 200);
    assert!(menu.contains(&format!("/records/{maya}")) && menu.contains(&format!("/records/{ethan}")));
    let home = ana.view(&format!("/records/{ethan}")).await;
    let switcher = region(&home, "record-switcher").unwrap();
    assert!(switcher.contains("Maya Rodriguez") && switcher.contains("Ethan Rodriguez"), "{switcher}");
    assert!(switcher.contains(&format!("href=\"/records/{maya}\"")) && !switcher.contains("Martinez"));
    assert_eq!(switcher.matches("<li>").count(), 2);
    assert!(switcher.contains("aria-current=\"page\""));
    let whose = region(&home, "whose-record").unwrap();
    assert!(
        whose.contains("Ethan Rodriguez's record") && whose.contains("age 10") && whose.contains("your child"),
        "{whose}"
    );

    // Ethan (10): all but minor-consented services (at 10, mental health care is not one of
    // them by default), each item with its system.
    let problems = region(&ana.view(&format!("/records/{ethan}/problems")).await, "section-problems").unwrap();
    assert!(problems.contains("Seasonal hay fever") && problems.contains(CLINIC), "{problems}");
    assert!(problems.to_lowercase().contains("fracture"));
    let allergies = region(&ana.view(&format!("/records/{ethan}/allergies")).await, "section-allergies").unwrap();
    assert!(allergies.to_lowercase().contains("peanut"));
    let ethan_pages = ana.every_page(&ethan).await;
    assert!(ethan_pages.contains("Separation anxiety"), "a 10-year-old's mental health care reaches the parent");
    let (_, staff_view) = gw.get(&format!("Condition?patient={}&_count=100", gw.patient_id("ehr", "pt-10008"))).await;
    assert!(staff_view.to_string().contains("Separation anxiety"), "it is in Ethan's record (linked from the clinic)");

    // Maya (16): only the limited record.
    let maya_pages = ana.every_page(&maya).await.to_lowercase();
    assert!(maya_pages.contains("tdap") && maya_pages.contains("hpv9"), "a parent of a teen sees immunizations");
    for secret in [
        "pregnan",
        "chlamydia",
        "contracept",
        "camila",
        "phq",
        "depression",
        "gonorrh",
        "choriogonadotropin",
        "confidential visit note",
        "well child visit",
    ] {
        assert!(!mentions(&maya_pages, secret), "a parent must not see `{secret}` anywhere");
    }

    // The withheld-notice: word for word the same where much was withheld (Maya for her
    // mother), where a little was (Ethan) and where nothing was (Bob's own record).
    let notice = |html: &str| region(html, "withheld-notice").unwrap();
    let maya_home = ana.view(&format!("/records/{maya}")).await;
    let bob_home = bob.view(&format!("/records/{bob_link}")).await;
    assert_eq!(notice(&maya_home), notice(&home));
    assert_eq!(notice(&maya_home), notice(&bob_home));

    // Someone else's record: exactly the page a made-up id gets.
    let (s1, theirs, _) = bob.get(&format!("/records/{maya}")).await;
    let (s2, made_up, _) = bob.get("/records/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0").await;
    assert_eq!((s1, s2), (404, 404));
    assert_eq!(theirs, made_up);
    let (s3, theirs_section, _) = bob.get(&format!("/records/{maya}/results")).await;
    let (_, made_up_section, _) = bob.get("/records/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/results").await;
    assert_eq!((s3, &theirs_section), (404, &made_up_section));
    assert!(!theirs.contains("Rodriguez"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_father_of_a_fifteen_year_old_sees_the_limited_record_and_a_teen_sees_her_own() {
    let gw = gateway().await;
    let david = register(&gw, "David Kim", "david@example.org").await;
    let noah = grant_proxy(&gw, "david@example.org", "ehr/pt-10009", "FTH", "ehr/rp-10004").await;
    let pages = david.every_page(&noah).await;
    let whose = region(&david.view(&format!("/records/{noah}")).await, "whose-record").unwrap();
    assert!(whose.contains("Noah Kim's record") && whose.contains("age 15"), "{whose}");
    let lower = pages.to_lowercase();
    let (_, everything) = gw.get(&format!("Patient/{}/$everything?_count=500", gw.patient_id("ehr", "pt-10009"))).await;
    let everything = everything.to_string().to_lowercase();
    assert!(
        everything.contains("generalized anxiety") && everything.contains("thyrotropin"),
        "staff see what is withheld"
    );
    assert!(lower.contains("asthma") && lower.contains("albuterol") && lower.contains("tdap"));
    for secret in ["anxiety", "gad-7", "well adolescent visit note", "thyrotropin", "spirometry", "well child visit"] {
        assert!(!lower.contains(secret), "a parent of a 15-year-old must not see `{secret}`");
    }

    // Maya (16) herself sees her confidential care.
    let maya = register(&gw, "Maya Rodriguez", "maya@example.org").await;
    enroll(&maya, "HG100733", "2009-08-14", "Rodriguez").await;
    let link = only_record(&maya).await;
    let results = region(&maya.view(&format!("/records/{link}/results")).await, "section-results").unwrap();
    assert!(results.contains("Chlamydia trachomatis") && results.contains("Choriogonadotropin"));
    let meds = region(&maya.view(&format!("/records/{link}/medications")).await, "section-medications").unwrap();
    assert!(meds.contains("Camila"));
    let problems = region(&maya.view(&format!("/records/{link}/problems")).await, "section-problems").unwrap();
    assert!(problems.contains("pregnancy test, result positive") && problems.contains("Depression, unspecified"));
    let docs = region(&maya.view(&format!("/records/{link}/documents")).await, "section-documents").unwrap();
    assert!(docs.contains("Adolescent confidential visit note"));
    let whose = region(&maya.view(&format!("/records/{link}")).await, "whose-record").unwrap();
    assert!(whose.contains("your own record") && whose.contains("age 16"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_shows_api_and_page_access_in_plain_words() {
    let gw = gateway().await;
    let maya = register(&gw, "Maya Rodriguez", "maya@example.org").await;
    enroll(&maya, "HG100733", "2009-08-14", "Rodriguez").await;
    let maya_link = only_record(&maya).await;
    let ana = register(&gw, "Ana Rodriguez", "ana@example.org").await;
    let ana_link = grant_proxy(&gw, "ana@example.org", "ehr/pt-10007", "MTH", "ehr/rp-10001").await;
    let pid = gw.patient_id("ehr", "pt-10007");

    // Staff read her Patient over the API; her mother opens the record's home page.
    assert_eq!(gw.get(&format!("Patient/{pid}")).await.0, 200);
    ana.view(&format!("/records/{ana_link}")).await;

    let html = maya.view(&format!("/records/{maya_link}/access-log")).await;
    let log = region(&html, "section-access-log").unwrap();
    assert!(log.contains("Harbor Health staff") && log.contains("Read one item: name and contact details"), "{log}");
    assert!(log.contains("Ana Rodriguez (mother)") && log.contains("Opened the record's home page"), "{log}");
    assert!(
        log.contains("You") && log.contains("Looked at who accessed the record"),
        "this view itself is logged first"
    );
    assert!(log.contains("127.0.0.1") && log.contains("Allowed"));
    assert!(!log.contains(&ana_link), "opaque ids are not shown");

    // A parent sees the log too, because the policy lets her see the record — but not the
    // teenager's own visits to it (the patient's activity is hers).
    let html = ana.view(&format!("/records/{ana_link}/access-log")).await;
    let log = region(&html, "section-access-log").unwrap();
    assert!(log.contains("Harbor Health staff") && log.contains("Opened the record's home page"), "{log}");
    assert!(!log.contains("Maya Rodriguez (the patient)") && !log.contains("Maya"), "{log}");
    // An adult's proxy without the adult's grant: the record — and its log — are not shown.
    let olivia = grant_proxy(&gw, "ana@example.org", "ehr/pt-10010", "PRN", "ehr/rp-10005").await;
    let (status, html, _) = ana.get(&format!("/records/{olivia}/access-log")).await;
    assert_eq!(status, 403);
    assert!(!html.contains("Olivia") && !html.contains("Bennett") && region(&html, "section-access-log").is_none());
    // The record picker names a record from what the account is released of it: Olivia's
    // record is listed, but not by her name (nor is her name anywhere on the account page).
    for page in ["/records", "/account"] {
        let html = ana.view(page).await;
        assert!(html.contains("Maya Rodriguez") && html.contains("Patient record"), "{page}: {html}");
        assert!(!html.contains("Olivia") && !html.contains("Bennett"), "{page}: {html}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_is_down_shows_a_banner_and_none_when_all_are_up() {
    let ehr = simulate("ehr", SimulatorOptions::default()).await;
    let lab = simulate("lab", SimulatorOptions::default()).await;
    let body = format!(
        "[aggregate]\ndeadline = \"3s\"\ncache_ttl = \"1ms\"\n{}{}",
        rest_source("ehr", "Harbor General Hospital", ehr.base_url(), "retry_backoff = \"20ms\""),
        rest_source(
            "lab",
            "Bayview Regional Reference Lab",
            lab.base_url(),
            "retry_backoff = \"20ms\"\nmax_retries = 1\nbreaker_cooldown = \"100ms\""
        )
    );
    let gw = Gateway::start(&body).await;
    let b = register(&gw, "Bob Martinez", "bob@example.org").await;
    enroll(&b, "HG100142", "1967-06-18", "Martinez").await;
    let link = only_record(&b).await;
    let path = format!("/records/{link}/results");
    assert!(region(&b.view(&path).await, "source-banner").is_none());

    lab.controls().set_down(true);
    let html = b.view(&path).await;
    let banner = region(&html, "source-banner").expect("a banner while the lab is down");
    assert!(banner.contains("Results from Bayview Regional Reference Lab may be missing right now"), "{banner}");
    let results = region(&html, "section-results").unwrap();
    assert!(!results.contains("Bayview Regional Reference Lab"), "nothing from the lab now");
    assert!(region(&b.view(&format!("/records/{link}")).await, "source-banner").is_some(), "on every record page");

    lab.controls().set_down(false);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let html = b.view(&path).await;
    assert!(region(&html, "source-banner").is_none(), "gone once the lab answers again");
    assert!(region(&html, "section-results").unwrap().contains("Bayview Regional Reference Lab"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_are_revoked_from_the_page_and_forms_need_their_csrf_token() {
    let gw = gateway().await;
    let b = register(&gw, "Bob Martinez", "bob@example.org").await;
    enroll(&b, "HG100142", "1967-06-18", "Martinez").await;
    let link = only_record(&b).await;
    let store = portico::store::Store::open(&gw.database_url, 2).await.unwrap();
    let account: String = sqlx::query_scalar("SELECT id FROM accounts WHERE username = 'bob@example.org'")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    let grant_id =
        portico::auth::grants::create(&store, &account, &link, "growth-chart", "launch/patient patient/Observation.rs")
            .await
            .unwrap();

    let html = b.view(&format!("/records/{link}/apps")).await;
    let apps = region(&html, "section-apps").unwrap();
    assert!(
        apps.contains("Growth Chart") && apps.contains("Read test results, vital signs and other measurements"),
        "{apps}"
    );
    let token = csrf(&html);
    assert_eq!(value_of(&html, "grant_id"), vec![grant_id.clone()]);

    // Without the CSRF token, or for someone else's grant: refused, nothing revoked.
    let revoke = format!("/records/{link}/apps/revoke");
    let (status, _, _) = b.post(&revoke, &[("grant_id", &grant_id)]).await;
    assert_eq!(status, 403);
    let (status, _, _) = b.post(&revoke, &[("csrf", "not-the-token"), ("grant_id", &grant_id)]).await;
    assert_eq!(status, 403);
    let (status, _, _) = b.post(&revoke, &[("csrf", &token), ("grant_id", "not-mine")]).await;
    assert_eq!(status, 400);
    let (status, _, _) = b.post("/records/made-up/apps/revoke", &[("csrf", &token), ("grant_id", &grant_id)]).await;
    assert_eq!(status, 404);
    assert_eq!(portico::auth::grants::of_account(&store, &account).await.unwrap().len(), 1);

    let (status, _, location) = b.post(&revoke, &[("csrf", &token), ("grant_id", &grant_id)]).await;
    assert_eq!((status, location.as_deref()), (303, Some(format!("/records/{link}/apps").as_str())));
    assert!(portico::auth::grants::of_account(&store, &account).await.unwrap().is_empty());
    assert!(b.view(&format!("/records/{link}/apps")).await.contains("You have not allowed any apps"));

    // Sign-out is a form too: without its token nothing happens, with it the session ends.
    let (status, _, _) = b.post("/logout", &[]).await;
    assert_eq!(status, 403);
    b.view(&format!("/records/{link}")).await;
    let (status, _, location) = b.post("/logout", &[("csrf", &token)]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/login")));
    let (status, _, location) = b.get(&format!("/records/{link}")).await;
    assert_eq!((status, location.as_deref()), (303, Some("/login")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_sends_the_browser_to_sign_in_with_a_clear_message() {
    let body = format!("[auth]\nsession_idle = \"2s\"\n{}", fixture_file_sources());
    let gw = Gateway::start(&body).await;
    let b = register(&gw, "Bob Martinez", "bob@example.org").await;
    enroll(&b, "HG100142", "1967-06-18", "Martinez").await;
    let link = only_record(&b).await;
    b.view(&format!("/records/{link}")).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, html, location) = b.get(&format!("/records/{link}/results")).await;
    assert_eq!((status, location.as_deref()), (303, Some("/login?signed_out=1")), "{html}");
    let (status, html, _) = b.get("/login?signed_out=1").await;
    assert_eq!(status, 200);
    assert!(region(&html, "signed-out-notice").unwrap().contains("You were signed out"), "{html}");
    // Never signed in at all: plain sign-in, no message.
    let stranger = Browser::new(&gw);
    let (status, _, location) = stranger.get(&format!("/records/{link}")).await;
    assert_eq!((status, location.as_deref()), (303, Some("/login")));
    let (_, html, _) = stranger.get("/login").await;
    assert!(region(&html, "signed-out-notice").is_none());
}
