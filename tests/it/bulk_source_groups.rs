//! `Group/{source}.{id}/$export` for a Group resource a source system holds: its active
//! Patient members, mapped through the patient index, are exported — nobody else — and a
//! Group the source does not hold is answered like any unknown Group.

use crate::bulk::client::*;
use crate::common::*;
use serde_json::json;
use std::sync::Arc;

/// The EHR's fixtures plus a Group resource of its own: two active members, one inactive,
/// and a member that is not a patient.
fn ehr_with_a_group(dir: &std::path::Path) -> std::path::PathBuf {
    let ehr = dir.join("ehr");
    std::fs::create_dir_all(&ehr).unwrap();
    for entry in std::fs::read_dir(fixtures("ehr")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            continue; // the documents' files (Binary/)
        }
        std::fs::copy(&path, ehr.join(path.file_name().unwrap())).unwrap();
    }
    let group = json!({
        "resourceType": "Group",
        "id": "cardiology-panel",
        "type": "person",
        "actual": true,
        "member": [
            {"entity": {"reference": "Patient/pt-10001"}},
            {"entity": {"reference": "Patient/pt-10002"}},
            {"entity": {"reference": "Patient/pt-10003"}, "inactive": true},
            {"entity": {"reference": "Practitioner/prac-1"}}
        ]
    });
    std::fs::write(ehr.join("zz-group.json"), group.to_string()).unwrap();
    ehr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sources_group_resource_is_exported_by_its_members() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let ehr = ehr_with_a_group(dir.path());
    let sources = fixture_file_sources().replacen(
        &format!("{:?}", fixtures("ehr").display().to_string()),
        &format!("{:?}", ehr.display().to_string()),
        1,
    );
    assert_ne!(sources, fixture_file_sources(), "the EHR source reads the copy");
    let body = format!(
        "[export]\ndirectory = {:?}\npoll_interval = \"100ms\"\n{sources}",
        dir.path().join("exports").display().to_string()
    );
    let gw = Gateway::start_in(dir.clone(), &body, None).await;

    let members: Vec<String> = ["pt-10001", "pt-10002"].iter().map(|p| gw.patient_id("ehr", p)).collect();
    let done = export(&gw, "Group/ehr.cardiology-panel/$export", TOKEN).await;
    let mut exported: Vec<String> = done
        .resources
        .iter()
        .filter(|r| r["resourceType"] == "Patient")
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    exported.sort();
    let mut expected = members.clone();
    expected.sort();
    assert_eq!(exported, expected, "the active patient members, and not the inactive one");
    assert_same(&done.resources, &everything(&gw, &members, TOKEN).await);
    let inactive = gw.patient_id("ehr", "pt-10003");
    assert!(!serde_json::to_string(&done.resources).unwrap().contains(&inactive));

    // A Group the source does not hold, or of a source that does not exist: 404, no job.
    for path in ["Group/ehr.no-such-group/$export", "Group/nowhere.cardiology-panel/$export"] {
        let (status, location, body) = kick_off(&gw, path, TOKEN, &[("prefer", "respond-async")]).await;
        assert_eq!((status, location), (404, None), "{path}: {body}");
        assert_eq!(body["resourceType"], "OperationOutcome");
    }
}
