//! What the gateway writes itself — the CapabilityStatement, OperationOutcomes (errors,
//! warnings in a Bundle, an export's NDJSON lines), searchset Bundle shells (a search,
//! `$everything`, the download Bundle, the access log) and AuditEvents — built with
//! fhir-sdk's R4B models, checked against FHIR R4 by the independent validator of
//! `conformance/` (PyPI fhir.resources 6.4.0) and round-tripped through its R4 models.

use crate::common::*;
use portico::fhir::model::codes::IssueType;
use portico::fhir::outcome::{operation_outcome_with_id, Issue};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_gateway_writes_is_valid_r4_and_round_trips() {
    if !require("python") {
        return;
    }
    let gw = Gateway::start(&fixture_file_sources()).await;
    let maya = gw.patient_id("ehr", "pt-10007");
    let mut authored: Vec<Value> = Vec::new();

    let (status, statement) = gw.get("metadata").await;
    assert_eq!((status, statement["resourceType"].as_str()), (200, Some("CapabilityStatement")));
    authored.push(statement);
    let (status, not_found) = gw.get("Patient/no-such-patient").await;
    assert_eq!((status, not_found["resourceType"].as_str()), (404, Some("OperationOutcome")));
    authored.push(not_found);
    let (status, unauthenticated) = gw.get_with(&format!("Patient/{maya}"), None, &[]).await;
    assert_eq!((status, unauthenticated["resourceType"].as_str()), (401, Some("OperationOutcome")));
    authored.push(unauthenticated);

    // A search whose ignored parameter gives an OperationOutcome entry.
    let (status, search) = gw
        .get_with(&format!("Observation?patient={maya}&colour=red"), Some(TOKEN), &[("prefer", "handling=lenient")])
        .await;
    assert_eq!(status, 200, "{search}");
    let entries = search["entry"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["search"]["mode"] == "outcome"), "{search}");
    assert!(entries.iter().any(|e| e["search"]["mode"] == "match"), "{search}");
    authored.push(search);
    let (status, everything) = gw.get_with(&format!("Patient/{maya}/$everything?_count=20"), Some(TOKEN), &[]).await;
    assert_eq!(status, 200);
    assert!(link(&everything, "next").is_some(), "a page with a next link");
    authored.push(everything);

    // The access log as AuditEvents (staff reads it; the search and $everything are in it).
    let (status, log) = gw.get(&format!("AuditEvent?patient={maya}")).await;
    assert_eq!(status, 200, "{log}");
    assert!(log["entry"].as_array().unwrap().len() >= 2, "{log}");
    authored.push(log);

    // The download Bundle (a mother's download of her daughter's record, so it carries the
    // withheld-notice entry) and an export's OperationOutcome line, as their writers make them.
    let ana = register(&gw, "Ana Rodriguez", "ana@example.org").await;
    let link = grant_proxy(&gw, "ana@example.org", "ehr/pt-10007", "MTH", "ehr/rp-10001").await;
    let (status, download, _) = ana.get(&format!("/records/{link}/download.json")).await;
    assert_eq!(status, 200, "{download}");
    let download: Value = serde_json::from_str(&download).unwrap();
    assert!(download["entry"].as_array().unwrap().iter().any(|e| e["search"]["mode"] == "outcome"), "{download}");
    authored.push(download);
    authored.push(operation_outcome_with_id(
        "6a0c7e2e-0000-4000-8000-000000000001",
        &[Issue::error(IssueType::NotFound, "no record available to this client").at(format!("Patient/{maya}"))],
    ));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("authored.json");
    std::fs::write(&file, serde_json::to_string(&authored).unwrap()).unwrap();
    let install =
        std::process::Command::new("bash").arg(root().join("conformance/run.sh")).arg("--install").output().unwrap();
    assert!(install.status.success(), "{}", String::from_utf8_lossy(&install.stderr));
    let run = std::process::Command::new(root().join("target/conformance-venv/bin/python"))
        .arg(root().join("conformance/validate_authored.py"))
        .arg(&file)
        .output()
        .unwrap();
    let out = format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    println!("{out}");
    assert!(run.status.success(), "{out}");
    assert!(out.contains(&format!("{} authored resources checked against FHIR R4, 0 failed", authored.len())), "{out}");
}
