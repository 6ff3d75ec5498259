//! An independent Bulk Data client drives a full export: PyPI `smart-fetch` (SMART Health
//! IT's bulk export tool, pinned in conformance/bulk/requirements.txt and installed under
//! target/ on first use) kicks off a Group export with a static bearer token, polls, reads
//! the manifest and downloads every file; what it saved equals `$everything` for the same
//! partner, resource for resource.

use crate::bulk::client::*;
use crate::common::*;
use serde_json::Value;
use std::sync::Arc;

const PARTNER: &str = "smart-fetch-partner-token-01";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_fetch_exports_a_group_and_gets_exactly_the_released_records() {
    if !require("python") {
        return;
    }
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let body = format!(
        "[[server.dev_tokens]]\ntoken = \"{PARTNER}\"\nviewer = \"partner:hie-north:TREAT\"\ngroups = [\"north\"]\n\
         [export]\ndirectory = {:?}\npoll_interval = \"200ms\"\npatients_per_unit = 2\n\
         [[export.groups]]\nid = \"north\"\nname = \"HIE North\"\nmembers = [\"ehr/pt-10001\", \"ehr/pt-10004\", \"ehr/pt-10007\"]\n{}",
        dir.path().join("exports").display().to_string(),
        fixture_file_sources()
    );
    let gw = Gateway::start_in(dir.clone(), &body, None).await;
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, PARTNER).unwrap();
    let out = dir.path().join("smart-fetch");
    let script = root().join("conformance/bulk/run_smart_fetch.sh");
    let run = tokio::process::Command::new("bash")
        .arg(script)
        .arg(&gw.fhir)
        .arg(&token_file)
        .arg(&out)
        .args(["--group", "north", "--type", "Patient,Condition,Observation,MedicationRequest,Encounter,Immunization"])
        .output()
        .await
        .expect("run smart-fetch");
    println!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "smart-fetch failed");

    let mut saved: Vec<Value> = Vec::new();
    for entry in std::fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".ndjson") && name != "log.ndjson" {
            let text = std::fs::read_to_string(&path).unwrap();
            saved.extend(text.lines().filter(|l| !l.is_empty()).map(|l| serde_json::from_str::<Value>(l).unwrap()));
        }
    }
    let members: Vec<String> = ["pt-10001", "pt-10004", "pt-10007"].iter().map(|p| gw.patient_id("ehr", p)).collect();
    let types = ["Patient", "Condition", "Observation", "MedicationRequest", "Encounter", "Immunization"];
    let expected: std::collections::BTreeMap<String, Vec<Value>> = everything(&gw, &members, PARTNER)
        .await
        .into_iter()
        .filter(|(_, v)| types.contains(&v[0]["resourceType"].as_str().unwrap()))
        .collect();
    let saved: Vec<Value> = saved.into_iter().filter(|r| r["resourceType"] != "OperationOutcome").collect();
    assert!(saved.len() > 50, "{}", saved.len());
    assert_same(&saved, &expected);
    // Its log shows the job it ran: kick-off, completion, downloads.
    let log = std::fs::read_to_string(out.join("log.ndjson")).unwrap();
    assert!(log.contains("\"kickoff\"") && log.contains("\"status_complete\""), "{log}");
}
