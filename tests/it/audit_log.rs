//! The access log over HTTP: every access is recorded before the answer, the patient sees
//! who looked at their record (and no one else's), and `portico audit verify` notices a
//! changed entry.

use crate::common::*;
use serde_json::Value;

const MAYA: &str = "audit-maya-self-token";
const MOTHER: &str = "audit-maya-mother-token";
const PARTNER: &str = "audit-partner-token-1";
const SARAH: &str = "audit-sarah-self-token";

fn body() -> String {
    format!(
        "[[server.dev_tokens]]\ntoken = \"{MAYA}\"\nviewer = \"patient\"\npatient = \"ehr/pt-10007\"\n\
         [[server.dev_tokens]]\ntoken = \"{MOTHER}\"\nviewer = \"proxy:MTH\"\npatient = \"ehr/pt-10007\"\n\
         [[server.dev_tokens]]\ntoken = \"{PARTNER}\"\nviewer = \"partner:hie-north:TREAT\"\n\
         [[server.dev_tokens]]\ntoken = \"{SARAH}\"\nviewer = \"patient\"\npatient = \"ehr/pt-10006\"\n{}",
        fixture_file_sources()
    )
}

fn events(bundle: &Value) -> Vec<Value> {
    bundle["entry"].as_array().unwrap().iter().map(|e| e["resource"].clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_patient_sees_who_accessed_her_record_and_nothing_else() {
    let gw = Gateway::start(&body()).await;
    let maya = gw.patient_id("ehr", "pt-10007");
    let bob = gw.patient_id("ehr", "pt-10001");
    assert_eq!(gw.get_with(&format!("Patient/{maya}/$everything"), Some(MOTHER), &[]).await.0, 200);
    assert_eq!(gw.get_with(&format!("Patient/{maya}"), Some(PARTNER), &[]).await.0, 200);
    assert_eq!(gw.get_with(&format!("Observation?patient={maya}&category=laboratory"), Some(TOKEN), &[]).await.0, 200);
    assert_eq!(gw.get_with(&format!("Patient/{bob}"), Some(MAYA), &[]).await.0, 404, "someone else's record");
    assert_eq!(gw.get_with(&format!("Patient/{maya}"), Some(MAYA), &[]).await.0, 200, "her own");

    let (status, bundle) = gw.get_with(&format!("AuditEvent?patient={maya}"), Some(MAYA), &[]).await;
    assert_eq!(status, 200, "{bundle}");
    let list = events(&bundle);
    assert_eq!(bundle["total"], list.len());
    let who: Vec<String> = list.iter().map(|e| e["agent"][0]["who"]["display"].as_str().unwrap().to_string()).collect();
    assert!(who.iter().any(|w| w.contains("proxy:MTH")), "{who:?}");
    assert!(who.iter().any(|w| w.contains("partner:hie-north:TREAT")), "{who:?}");
    assert!(who.iter().any(|w| w.contains("staff")), "{who:?}");
    let partner = list.iter().find(|e| e["agent"][0]["who"]["display"].as_str().unwrap().contains("partner")).unwrap();
    assert_eq!(partner["purposeOfEvent"][0]["coding"][0]["code"], "TREAT");
    assert_eq!(partner["subtype"][0]["code"], "read");
    assert_eq!(partner["outcome"], "0");
    // Other people's network addresses are for staff; her own requests keep theirs.
    assert!(partner["agent"][0].get("network").is_none(), "{partner}");
    let own = list.iter().find(|e| e["agent"][0]["type"]["text"] == "patient").unwrap();
    assert_eq!(own["agent"][0]["network"]["address"], "127.0.0.1", "{own}");
    let (_, staff_view) = gw.get_with(&format!("AuditEvent?patient={maya}"), Some(TOKEN), &[]).await;
    let staff_partner = events(&staff_view)
        .into_iter()
        .find(|e| e["agent"][0]["who"]["display"].as_str().unwrap().contains("partner"))
        .unwrap();
    assert_eq!(staff_partner["agent"][0]["network"]["address"], "127.0.0.1", "staff see the log as written");
    let seqs: Vec<i64> =
        list.iter().map(|e| e["id"].as_str().unwrap().trim_start_matches("audit-").parse().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "newest first: {seqs:?}");
    // Nothing about Bob, and no names or clinical content in the log.
    let text = bundle.to_string();
    assert!(!text.contains(&bob) && !text.contains("Rodriguez") && !text.contains("Martinez"), "{text}");

    // Bob's record shows Maya's refused attempt.
    let (_, bobs) = gw.get_with(&format!("AuditEvent?patient={bob}"), Some(TOKEN), &[]).await;
    assert!(events(&bobs)
        .iter()
        .any(|e| e["outcome"] == "4" && e["agent"][0]["who"]["display"].as_str().unwrap().contains("patient")));

    // The log is Maya's alone: her mother, an app and another patient's log answer like nothing.
    assert_eq!(gw.get_with(&format!("AuditEvent?patient={maya}"), Some(MOTHER), &[]).await.0, 404);
    assert_eq!(gw.get_with(&format!("AuditEvent?patient={bob}"), Some(MAYA), &[]).await.0, 404);
    assert_eq!(gw.get_with("AuditEvent", Some(MAYA), &[]).await.0, 400);
    assert_eq!(gw.get_with(&format!("AuditEvent?patient={maya}&actor=x"), Some(MAYA), &[]).await.0, 400);
    assert_eq!(gw.get_with(&format!("AuditEvent?patient={maya}"), None, &[]).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_notices_a_changed_entry() {
    let gw = Gateway::start(&body()).await;
    let maya = gw.patient_id("ehr", "pt-10007");
    for _ in 0..3 {
        gw.get_with(&format!("Patient/{maya}"), Some(MOTHER), &[]).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("portico.toml");
    std::fs::write(&config, format!("[database]\nurl = {:?}\n{}", gw.database_url, fixture_file_sources())).unwrap();
    let verify = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_portico"))
            .args(["audit", "verify", "--config", config.to_str().unwrap()])
            .env_remove("PORTICO_CONFIG")
            .output()
            .unwrap()
    };
    let ok = verify();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("access log intact: 3 entries"));
    let store = portico::store::Store::open(&gw.database_url, 2).await.unwrap();
    sqlx::query("UPDATE audit_events SET actor = 'nobody' WHERE seq = 2").execute(&store.pool).await.unwrap();
    let broken = verify();
    assert!(!broken.status.success());
    assert!(
        String::from_utf8_lossy(&broken.stderr).contains("broken at entry 2"),
        "{}",
        String::from_utf8_lossy(&broken.stderr)
    );
}

/// Staff search the log by patient, actor and time; patients can't search by actor across
/// other records, and bad parameters are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_search_the_log_by_patient_actor_and_time() {
    let gw = Gateway::start(&body()).await;
    let maya = gw.patient_id("ehr", "pt-10007");
    let bob = gw.patient_id("ehr", "pt-10001");
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    assert_eq!(gw.get_with(&format!("Patient/{maya}"), Some(PARTNER), &[]).await.0, 200);
    assert_eq!(gw.get_with(&format!("Patient/{bob}"), Some(PARTNER), &[]).await.0, 200);
    assert_eq!(gw.get_with(&format!("Patient/{maya}"), Some(MOTHER), &[]).await.0, 200);
    let q = |s: String| s.replace(':', "%3A").replace('+', "%2B");

    let (_, bobs) = gw.get(&format!("AuditEvent?patient={bob}")).await;
    let partner_actor = events(&bobs)
        .iter()
        .map(|e| e["agent"][0]["who"]["display"].as_str().unwrap().to_string())
        .find(|a| a.contains("partner"))
        .unwrap();
    let partner_actor = partner_actor.as_str();
    let (status, by_actor) = gw.get(&format!("AuditEvent?agent={}", q(partner_actor.into()))).await;
    assert_eq!(status, 200, "{by_actor}");
    let list = events(&by_actor);
    let actors: Vec<&str> = list.iter().map(|e| e["agent"][0]["who"]["display"].as_str().unwrap()).collect();
    assert!(actors.len() >= 2 && actors.iter().all(|a| *a == partner_actor), "{actors:?}");
    let patients: Vec<String> = list.iter().map(|e| e["entity"].to_string()).collect();
    assert!(patients.iter().any(|p| p.contains(&maya)) && patients.iter().any(|p| p.contains(&bob)), "{patients:?}");

    // Actor and patient together: only the partner's look at Maya.
    let (_, both) = gw.get(&format!("AuditEvent?agent={}&patient={maya}", q(partner_actor.into()))).await;
    assert_eq!(events(&both).len(), 1, "{both}");

    // Time window: everything since the test started includes them; a window in the past has none.
    let since = before.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (_, recent) = gw.get(&format!("AuditEvent?date=ge{}&agent={}", q(since), q(partner_actor.into()))).await;
    assert_eq!(events(&recent).len(), list.len());
    let (_, old) = gw.get(&format!("AuditEvent?date=lt2020-01-01&agent={}", q(partner_actor.into()))).await;
    assert_eq!(events(&old).len(), 0, "{old}");

    // Non-staff: an actor search without their own patient is refused; bad input is a 400.
    assert_eq!(gw.get_with(&format!("AuditEvent?agent={}", q(partner_actor.into())), Some(MAYA), &[]).await.0, 400);
    assert_eq!(gw.get_with(&format!("AuditEvent?patient={maya}"), Some(PARTNER), &[]).await.0, 404);
    assert_eq!(gw.get("AuditEvent?date=sometime").await.0, 400);
    assert_eq!(gw.get("AuditEvent?_count=9999").await.0, 400);
}

/// A patient's log never names an item withheld from her: a staff read of Sarah's internal
/// note is in her log as a read of "an item", with no type, id or source; staff see it as
/// written, and the note is still not hers to read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_patients_log_names_no_item_withheld_from_her() {
    let gw = Gateway::start(&body()).await;
    let sarah = gw.patient_id("ehr", "pt-10006");
    let note = "DocumentReference/ehr.doc-10008";
    assert_eq!(gw.get_with(note, Some(SARAH), &[]).await.0, 404, "withheld from Sarah");
    assert_eq!(gw.get_with(note, Some(TOKEN), &[]).await.0, 200, "staff read it");
    assert_eq!(gw.get_with(&format!("Patient/{sarah}"), Some(TOKEN), &[]).await.0, 200, "and her Patient");

    let (status, bundle) = gw.get_with(&format!("AuditEvent?patient={sarah}"), Some(SARAH), &[]).await;
    assert_eq!(status, 200, "{bundle}");
    let text = bundle.to_string();
    assert!(!text.contains("DocumentReference") && !text.contains("doc-10008"), "{text}");
    let staff_reads: Vec<String> = events(&bundle)
        .iter()
        .filter(|e| e["agent"][0]["who"]["display"].as_str().unwrap().contains("staff"))
        .map(|e| e["entity"][0]["what"]["display"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(staff_reads.len(), 2, "both staff reads are there: {staff_reads:?}");
    assert!(staff_reads.contains(&"/fhir".to_string()), "the note as an unnamed item: {staff_reads:?}");
    assert!(staff_reads.contains(&format!("/fhir/Patient/{sarah}")), "what she may see keeps its name");

    let (_, as_written) = gw.get_with(&format!("AuditEvent?patient={sarah}"), Some(TOKEN), &[]).await;
    assert!(as_written.to_string().contains(&format!("/fhir/{note}")), "staff see the log as written");
}
