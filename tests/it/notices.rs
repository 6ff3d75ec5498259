//! Notices that carry no PHI (issue 16 part 5), over real HTTP and a real SMTP server (PyPI
//! aiosmtpd): results held for review (a hold rule on laboratory results) are told as new
//! when a clinician releases them — to the teen for her own confidential result and never to
//! her parent, to an adult and to his proxy for his — with words that name no test, code or
//! person; a download that is ready and a share link opened are told too; and each account
//! chooses which notices it gets (JSON API and page), bad choices changing nothing.

use crate::common::*;
use serde_json::{json, Value};
use std::path::Path;

/// The shipped policy with every laboratory result held until a clinician releases it.
fn held_policy(dir: &Path) -> String {
    let config = root().join("config");
    let text = std::fs::read_to_string(config.join("policy.toml")).unwrap();
    let labels = format!("labels = {:?}", config.join("labels.toml").display().to_string());
    let rules = "\nrules = [\n  { id = \"lab-review\", description = \"Results wait for the clinician\", categories = [\"laboratory\"], max = \"3650d\" },\n]";
    assert_eq!(text.matches("\nrules = []").count(), 1);
    let text = text.replacen("labels = \"labels.toml\"", &labels, 1).replacen("\nrules = []", rules, 1);
    let path = dir.join("policy-held.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

async fn enroll(b: &Browser, mrn: &str, birth: &str, family: &str) -> String {
    let (token, _) = b.form_page("/enroll").await;
    let birth = shifted(birth);
    let (status, html, _) =
        b.post("/enroll", &[("csrf", &token), ("mrn", mrn), ("birth_date", &birth), ("family", family)]).await;
    assert_eq!(status, 303, "{html}");
    let (_, _, location) = b.get("/records").await;
    location.unwrap().strip_prefix("/records/").unwrap().to_string()
}

async fn staff(gw: &Gateway, path: &str, body: Value) -> Value {
    let r = gw.http.post(format!("{}{path}", gw.origin)).bearer_auth(TOKEN).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert!(status == 200 || status == 201, "{path}: {status} {body}");
    body
}

async fn release(gw: &Gateway, patient: &str, resource: &str) {
    staff(gw, "/admin/holds/release", json!({"patient": patient, "resource": resource, "by": "Dr. Review"})).await;
}

/// The account's notice choices through the JSON API: PUT `on` (with the CSRF header).
async fn choose(b: &Browser, on: Value) -> (u16, Value) {
    let (token, _) = b.form_page("/account/notices").await;
    let r = b.http.put(b.url("/api/account/notices")).header("x-csrf-token", token).json(&on).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn enabled(list: &Value, kind: &str) -> bool {
    list["notices"].as_array().unwrap().iter().any(|n| n["kind"] == kind && n["enabled"] == true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_results_are_told_without_content_and_never_to_a_parent_about_a_teens_confidential_result() {
    if !require("python") {
        return;
    }
    let sink = SmtpSink::start();
    let dir = tempfile::tempdir().unwrap();
    let exports = dir.path().join("exports").display().to_string();
    let body = format!(
        "{}[policy]\nfile = {:?}\n[export]\ndirectory = {exports:?}\npoll_interval = \"100ms\"\ndownload_job_threshold = 1\n{}",
        sink.config(),
        held_policy(dir.path()),
        fixture_file_sources()
    );
    let gw = Gateway::start(&body).await;
    let bob = sink.register(&gw, "Robert Martinez", "bob@example.org").await;
    let bob_link = enroll(&bob, "HG100142", "1967-06-18", "Martinez").await;
    let maya = sink.register(&gw, "Maya Rodriguez", "maya@example.org").await;
    enroll(&maya, "HG100733", "2009-08-14", "Rodriguez").await;
    sink.register(&gw, "Ana Rodriguez", "ana@example.org").await;
    grant_proxy(&gw, "ana@example.org", "ehr/pt-10007", "MTH", "ehr/rp-10001").await;
    sink.register(&gw, "Carol Diaz", "carol@example.org").await;
    staff(
        &gw,
        "/admin/proxies",
        json!({"username": "carol@example.org", "patient": "ehr/pt-10001",
        "relationship": "SPS", "adult_granted": true, "by": "HIM desk"}),
    )
    .await;
    sink.wait("bob@example.org", "can now see your health record").await;
    let (bob_id, maya_id) = (gw.patient_id("ehr", "pt-10001"), gw.patient_id("ehr", "pt-10007"));
    assert!(!bob.view(&format!("/records/{bob_link}/results")).await.contains("Hemoglobin A1c"), "held");

    // The first sweep records what each link sees, and tells nobody.
    let swept = staff(&gw, "/admin/notices/sweep", json!({})).await;
    assert_eq!((swept["baselines"].as_i64(), swept["mailed"].as_i64()), (Some(4), Some(0)), "{swept}");

    // Maya's pregnancy test (confidential from her mother) is released: Maya is told.
    release(&gw, &maya_id, "Observation/ehr.obs-10045").await;
    let swept = staff(&gw, "/admin/notices/sweep", json!({})).await;
    assert_eq!(swept["mailed"], 1, "{swept}");
    sink.wait("maya@example.org", "new results").await;
    // Bob's HbA1c: Bob and the proxy he allowed are told.
    release(&gw, &bob_id, "Observation/ehr.obs-10015").await;
    assert_eq!(staff(&gw, "/admin/notices/sweep", json!({})).await["mailed"], 2);
    sink.wait("bob@example.org", "new results").await;
    sink.wait("carol@example.org", "new results").await;
    assert!(bob.view(&format!("/records/{bob_link}/results")).await.contains("Hemoglobin A1c"), "released");
    // Nothing new: nobody is told again.
    assert_eq!(staff(&gw, "/admin/notices/sweep", json!({})).await["mailed"], 0);

    // Bob turns result notices off (the JSON API); a choice that names no notice changes nothing.
    let (status, list) = choose(&bob, json!({"on": ["download-ready", "share-link-opened", "proxy-added"]})).await;
    assert_eq!(status, 200, "{list}");
    assert!(!enabled(&list, "new-results") && enabled(&list, "download-ready"), "{list}");
    let (status, _) = choose(&bob, json!({"on": ["everything"]})).await;
    assert_eq!(status, 400);
    let (status, _) = choose(&bob, json!({"off": []})).await;
    assert_eq!(status, 400);
    let r = bob.http.get(bob.url("/api/account/notices")).send().await.unwrap();
    let list: Value = r.json().await.unwrap();
    assert!(!enabled(&list, "new-results") && enabled(&list, "share-link-opened"), "{list}");
    let r = Browser::new(&gw).http.get(format!("{}/api/account/notices", gw.origin)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // Maya uses the page: only new results.
    let (token, page) = maya.form_page("/account/notices").await;
    assert!(page.contains("there are new results in a record I can open"), "{page}");
    let (status, page, _) = maya.post("/account/notices", &[("csrf", &token), ("on", "new-results")]).await;
    assert_eq!(status, 200);
    assert!(page.contains("Your choices are saved"), "{page}");

    // Another of Bob's results: his proxy is told, Bob (who turned it off) is not.
    let (resources, _) = gw.all_pages(&format!("Observation?patient={bob_id}&category=laboratory")).await;
    let other =
        resources.iter().map(|r| r["id"].as_str().unwrap().to_string()).find(|id| id != "ehr.obs-10015").unwrap();
    release(&gw, &bob_id, &format!("Observation/{other}")).await;
    assert_eq!(staff(&gw, "/admin/notices/sweep", json!({})).await["mailed"], 1);
    for _ in 0..1500 {
        if sink.count("carol@example.org", "new results") == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(sink.count("carol@example.org", "new results"), 2, "the proxy is told again");

    // A download prepared as a job: Bob is told it is ready.
    let (token, _) = bob.form_page(&format!("/records/{bob_link}")).await;
    let (status, _, _) =
        bob.post(&format!("/records/{bob_link}/downloads"), &[("csrf", &token), ("format", "zip")]).await;
    assert_eq!(status, 303);
    sink.wait("bob@example.org", "Your download is ready").await;

    // A share link opened: the function the share-link route calls tells the sharer.
    let store = portico::store::Store::open(&gw.database_url, 2).await.unwrap();
    let cfg: portico::config::MailConfig = toml::from_str(&format!(
        "smtp_url = \"smtp://127.0.0.1:{}?tls=none\"\nfrom = \"Harbor Health portal <no-reply@harbor.example>\"",
        sink.port
    ))
    .unwrap();
    let mailer = portico::mail::Mailer::start(Some(&cfg), Path::new("."), &gw.origin).unwrap();
    let notices = portico::notices::Notices::new(store.clone(), mailer);
    let account: String = sqlx::query_scalar("SELECT id FROM accounts WHERE username = 'bob@example.org'")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert!(notices.share_link_opened(&account).await.unwrap());
    sink.wait("bob@example.org", "A link you shared was opened").await;
    choose(&bob, json!({"on": []})).await;
    assert!(!notices.share_link_opened(&account).await.unwrap(), "turned off");

    // Everyone else is settled: the counts, and nothing of any record in any mail.
    sink.register(&gw, "Last", "last@example.org").await;
    assert_eq!(sink.count("ana@example.org", "new results"), 0, "the parent is never told of the teen's result");
    assert_eq!(sink.count("maya@example.org", "new results"), 1);
    assert_eq!(sink.count("bob@example.org", "new results"), 1);
    assert_eq!(sink.count("carol@example.org", "new results"), 2);
    assert_eq!(sink.count("bob@example.org", "A link you shared"), 1);
    let (_, pregnancy) = gw.get("Observation/ehr.obs-10045").await;
    let (_, a1c) = gw.get("Observation/ehr.obs-10015").await;
    let mut phi: Vec<String> =
        ["Martinez", "Robert", "Rodriguez", "Maya", "pregnan", "hcg", "Hemoglobin", "A1c", "HG100"]
            .iter()
            .map(ToString::to_string)
            .collect();
    for r in [&pregnancy, &a1c] {
        for c in r["code"]["coding"].as_array().unwrap() {
            phi.push(c["code"].as_str().unwrap().to_string());
        }
    }
    phi.extend([shifted("1967-06-18"), shifted("2009-08-14")]);
    // The body and subject (the addresses hold the account holders' own names).
    for m in sink.mails() {
        let text = format!("{} {}", m.subject(), m.body()).to_lowercase();
        for p in &phi {
            assert!(!text.contains(&p.to_lowercase()), "a mail holds {p:?}:\n{}", m.raw);
        }
    }
}
