//! The accounting of disclosures (issue 16 part 3) over real HTTP: after a partner's read
//! and Bulk export, an app's read and an opening of Bob's share link, his accounting
//! lists exactly those — as a page, a printable page and a Bundle of AuditEvents — and
//! nothing else: not his own visits, not staff's reads, not a refused partner, not an app's
//! read of a made-up id, not a share-link opening with a wrong passcode, not disclosures of someone else.
//! Staff produce the same list (admin API and CLI); a proxy is not shown it.
//! With TEST_ON_POSTGRES=1 every gateway here runs on PostgreSQL.

use crate::access_reach::{token_for, ALLOWED, CLIENT, REDIRECT};
use crate::common::*;
use crate::corrections::bob;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

const NORTH: &str = "disclosures-hie-north-token";
const RESEARCH: &str = "disclosures-hie-research-token";

async fn gateway() -> Gateway {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let body = format!(
        "[[server.dev_tokens]]\ntoken = \"{NORTH}\"\nviewer = \"partner:hie-north:TREAT\"\ngroups = [\"north-roster\"]\n\
         [[server.dev_tokens]]\ntoken = \"{RESEARCH}\"\nviewer = \"partner:hie-north:HRESCH\"\n\
         [auth]\n[[auth.clients]]\nclient_id = \"{CLIENT}\"\nname = \"Chart\"\nkind = \"public\"\n\
         redirect_uris = [\"{REDIRECT}\"]\nallowed_scopes = \"{ALLOWED}\"\n\
         [export]\ndirectory = {:?}\npoll_interval = \"100ms\"\n\
         [[export.groups]]\nid = \"north-roster\"\nname = \"HIE North shared patients\"\n\
         members = [\"ehr/pt-10001\", \"ehr/pt-10004\"]\n{}",
        dir.path().join("exports").display().to_string(),
        fixture_file_sources()
    );
    Gateway::start_in(dir, &body, None).await
}

async fn store(gw: &Gateway) -> portico::store::Store {
    portico::store::Store::open(&gw.database_url, 2).await.unwrap()
}

/// A share-link view as the share-link feature logs it (role `share link`, actor
/// `share-link/{id}`, the link's label as purpose).
async fn share_view(gw: &Gateway, patient: &str, outcome: &str) {
    let entry = portico::audit::AuditEntry {
        actor: "share-link/sl-1".into(),
        role: "share link".into(),
        patient_id: Some(patient.into()),
        action: "share-view".into(),
        what: "/share/sl-1".into(),
        purpose: Some("For my new doctor".into()),
        outcome: outcome.into(),
        source_ip: Some("192.0.2.7".into()),
    };
    portico::audit::AuditLog::new(store(gw).await).record(&entry).await.unwrap();
}

/// `(action, role)` → count, of AuditEvents (`subtype[1]` and `agent.type.text`).
fn tally(events: &[Value]) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for e in events {
        let key = (
            e["subtype"][1]["code"].as_str().unwrap().to_string(),
            e["agent"][0]["type"]["text"].as_str().unwrap().to_string(),
        );
        *out.entry(key).or_insert(0) += 1;
    }
    out
}

fn resources(bundle: &Value) -> Vec<Value> {
    bundle["entry"].as_array().unwrap().iter().map(|e| e["resource"].clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_accounting_lists_exactly_the_disclosures_made_and_nothing_else() {
    let gw = gateway().await;
    let (b, link) = bob(&gw).await;
    let bob_id = gw.patient_id("ehr", "pt-10001");
    let maya = gw.patient_id("ehr", "pt-10007");

    // Not disclosures: Bob's own visits, staff's read, a refused partner, someone else's.
    b.every_page(&link).await;
    assert_eq!(gw.get(&format!("Patient/{bob_id}")).await.0, 200);
    assert_eq!(gw.get_with(&format!("Patient/{bob_id}"), Some(RESEARCH), &[]).await.0, 403);
    assert_eq!(gw.get_with(&format!("Patient/{maya}"), Some(NORTH), &[]).await.0, 200);
    let viewer = crate::share_links::share(&b, &link, &["allergies"], "For my new doctor", "harbor-1234").await;
    let wrong = serde_json::json!({"recipient": "Guesser", "passcode": "nope"});
    assert_eq!(crate::share_links::post_manifest(&gw, &viewer, wrong).await.0, 401, "not disclosed");

    // Disclosures: an app Bob allowed reads his record; the partner reads it and exports it;
    // someone opens his share link.
    let token = token_for(&gw, &b, "launch/patient patient/*.rs").await["access_token"].as_str().unwrap().to_string();
    assert_eq!(gw.get_with(&format!("Patient/{bob_id}"), Some(&token), &[]).await.0, 200);
    assert_eq!(gw.get_with("Observation/ehr.no-such-id", Some(&token), &[]).await.0, 404, "not disclosed");
    assert_eq!(gw.get_with(&format!("Patient/{bob_id}"), Some(NORTH), &[]).await.0, 200);
    let export = crate::bulk::client::export(&gw, "Group/north-roster/$export", NORTH).await;
    assert!(!export.resources.is_empty());
    let right = serde_json::json!({"recipient": "Dr. Lee's office", "passcode": "harbor-1234"});
    assert_eq!(crate::share_links::post_manifest(&gw, &viewer, right).await.0, 200);
    let downloads: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_events WHERE patient_id = $1 AND action = 'download' AND role = 'partner'",
    )
    .bind(&bob_id)
    .fetch_one(&store(&gw).await.pool)
    .await
    .unwrap();
    assert!(downloads >= 1, "the export's files that hold Bob went out");
    let mut expected = BTreeMap::new();
    expected.insert(("read".to_string(), "app for patient".to_string()), 1);
    expected.insert(("read".to_string(), "partner".to_string()), 1);
    expected.insert(("export".to_string(), "partner".to_string()), 1);
    expected.insert(("download".to_string(), "partner".to_string()), downloads as usize);
    expected.insert(("share-view".to_string(), "share link".to_string()), 1);
    let total: usize = expected.values().sum();

    // The FHIR Bundle: exactly those, each about Bob, each successful.
    let (status, body, _) = b.get(&format!("/records/{link}/disclosures/fhir")).await;
    assert_eq!(status, 200, "{body}");
    let bundle: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((bundle["resourceType"].as_str(), bundle["total"].as_u64()), (Some("Bundle"), Some(total as u64)));
    let events = resources(&bundle);
    assert_eq!(tally(&events), expected, "{bundle}");
    assert!(events.iter().all(|e| e["outcome"] == "0" && e["resourceType"] == "AuditEvent"));
    assert!(events.iter().all(|e| e["entity"][1]["what"]["reference"] == format!("Patient/{bob_id}").as_str()));
    let text = bundle.to_string();
    assert!(!text.contains(&maya) && !text.contains("HRESCH") && !text.contains("no-such-id"), "{text}");
    let others = events.iter().filter(|e| e["agent"][0]["type"]["text"] != "app for patient");
    assert!(
        others.clone().count() > 0 && others.into_iter().all(|e| e["agent"][0].get("network").is_none()),
        "other people's addresses are not shown"
    );

    // The page and the printable copy: one row each, recipients by their registered names.
    let page = b.view(&format!("/records/{link}/disclosures")).await;
    assert_eq!(page.matches("data-testid=\"disclosure\"").count(), total, "{page}");
    assert!(page.contains("The app “Chart”, allowed by you"), "{page}");
    assert!(page.contains("Partner organization “hie-north”") && page.contains("Treatment"));
    assert!(page.contains("Someone who opened a share link") && page.contains("For my new doctor"));
    assert!(page.contains("(as “Dr. Lee's office”)") && !page.contains("Guesser"), "{page}");
    assert!(!page.contains("Research") && !page.contains("Harbor Health staff"));
    let print = b.view(&format!("/records/{link}/disclosures/print")).await;
    assert_eq!(print.matches("data-testid=\"disclosure\"").count(), total);
    assert!(print.contains("Accounting of disclosures") && print.contains("Robert Martinez"), "{print}");
    assert!(!print.contains("record-switcher") && !print.contains("<form"), "a page for paper");

    // Staff produce the same for a request: admin API (JSON, printable HTML, FHIR) and CLI.
    let admin = |q: String| {
        let gw = &gw;
        async move {
            let r =
                gw.http.get(format!("{}/admin/disclosures?{q}", gw.origin)).bearer_auth(TOKEN).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, json) = admin("patient=ehr/pt-10001".into()).await;
    assert_eq!(status, 200, "{json}");
    let json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["disclosures"].as_array().unwrap().len(), total);
    let (status, staff_bundle) = admin("patient=ehr/pt-10001&format=fhir".into()).await;
    assert_eq!(status, 200);
    assert_eq!(tally(&resources(&serde_json::from_str(&staff_bundle).unwrap())), expected);
    let (status, html) = admin(format!("patient={bob_id}&format=html")).await;
    assert_eq!((status, html.matches("data-testid=\"disclosure\"").count()), (200, total));
    assert_eq!(admin("patient=ehr/pt-10001&format=pdf".into()).await.0, 400);
    assert_eq!(admin("patient=ehr/no-such".into()).await.0, 404);
    assert_eq!(admin("who=ehr/pt-10001".into()).await.0, 400);
    let anonymous = gw.http.get(format!("{}/admin/disclosures?patient=ehr/pt-10001", gw.origin)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("portico.toml");
    std::fs::write(&config, format!("[database]\nurl = {:?}\n{}", gw.database_url, fixture_file_sources())).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["disclosures", "--patient", "ehr/pt-10001", "--format", "json", "--config", config.to_str().unwrap()])
        .env_remove("PORTICO_CONFIG")
        .env(KEK_ENV, TEST_KEK)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli["disclosures"].as_array().unwrap().len(), total);

    // Producing the accounting is itself logged, and is not a disclosure.
    let (_, again, _) = b.get(&format!("/records/{link}/disclosures/fhir")).await;
    assert_eq!(serde_json::from_str::<Value>(&again).unwrap()["total"].as_u64(), Some(total as u64));
    let accountings: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'accounting' AND role = 'staff'")
            .fetch_one(&store(&gw).await.pool)
            .await
            .unwrap();
    assert_eq!(accountings, 6, "each staff accounting, done or refused, is in the access log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_is_not_shown_the_accounting_and_the_patient_sees_an_empty_one() {
    let gw = gateway().await;
    let maya = register(&gw, "Maya Rodriguez", "maya@example.org").await;
    crate::corrections::enroll(&maya, "HG100733", "2009-08-14", "rodriguez").await;
    let maya_link = crate::corrections::only_record(&maya).await;
    let ana = register(&gw, "Ana Rodriguez", "ana@example.org").await;
    let ana_link = grant_proxy(&gw, "ana@example.org", "ehr/pt-10007", "MTH", "ehr/rp-10001").await;
    let maya_id = gw.patient_id("ehr", "pt-10007");
    // A share-link view is a disclosure of Maya's record …
    share_view(&gw, &maya_id, "success").await;

    // … which Maya sees; her mother is told to ask HIM, in every form, and has no menu entry.
    let page = maya.view(&format!("/records/{maya_link}/disclosures")).await;
    assert_eq!(page.matches("data-testid=\"disclosure\"").count(), 1);
    for form in ["", "/print", "/fhir"] {
        let (status, html, _) = ana.get(&format!("/records/{ana_link}/disclosures{form}")).await;
        assert_eq!(status, 403, "{form}");
        assert!(html.contains("Health Information Management") && !html.contains("share link"), "{html}");
    }
    assert!(!ana.view(&format!("/records/{ana_link}")).await.contains("/disclosures"));
    // Someone else's link answers like none.
    let (status, _, _) = ana.get(&format!("/records/{maya_link}/disclosures")).await;
    assert_eq!(status, 404);

    // Bob, with nothing disclosed, gets an empty accounting in each form.
    let (b, link) = bob(&gw).await;
    assert!(b.view(&format!("/records/{link}/disclosures")).await.contains("No disclosures since"));
    let (_, body, _) = b.get(&format!("/records/{link}/disclosures/fhir")).await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["total"], 0);
}
