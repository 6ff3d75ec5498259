use super::*;
use crate::sources::files::{FileSource, ResourceStore};
use crate::sources::{SourceError, SourceStatus, SourceSystem};
use serde_json::{json, Value};
use std::sync::Arc;

fn patient(id: &str, family: &str, given: &str, birth: &str, phone: &str, ids: &[(&str, &str)]) -> Value {
    json!({
        "resourceType": "Patient", "id": id, "gender": "male", "birthDate": birth,
        "name": [{"family": family, "given": [given]}],
        "telecom": [{"system": "phone", "value": phone}],
        "identifier": ids.iter().map(|(s, v)| json!({"system": s, "value": v})).collect::<Vec<_>>()
    })
}

fn source(name: &str, patients: Vec<Value>) -> SharedSource {
    Arc::new(FileSource::from_store(name, ResourceStore::from_resources(patients)))
}

struct Broken;
#[async_trait::async_trait]
impl SourceSystem for Broken {
    fn name(&self) -> &str {
        "lab"
    }
    fn display(&self) -> &str {
        "lab"
    }
    async fn list_patients(&self, _: Instant) -> Result<Vec<Value>, SourceError> {
        Err(SourceError::Unavailable { source_name: "lab".into(), message: "HTTP 503".into() })
    }
    async fn patient_resources(&self, _: &str, _: &str, _: Instant) -> Result<Vec<Value>, SourceError> {
        unreachable!()
    }
    async fn read_many(&self, _: &str, _: &[String], _: Instant) -> Result<Vec<Value>, SourceError> {
        unreachable!()
    }
    fn status(&self) -> SourceStatus {
        unreachable!()
    }
}

fn deadline() -> Instant {
    Instant::now() + std::time::Duration::from_secs(5)
}

fn sources() -> Vec<SharedSource> {
    vec![
        source(
            "ehr",
            vec![
                patient("e1", "Smith", "James", "1970-01-01", "555-010-1111", &[("urn:ehr:mrn", "M1")]),
                patient("e2", "Smith", "James", "1985-06-30", "555-010-2222", &[("urn:ehr:mrn", "M2")]),
                patient("e3", "Okafor", "Grace", "1990-03-03", "555-010-3333", &[("urn:ehr:mrn", "M3")]),
            ],
        ),
        source(
            "lab",
            vec![
                patient("l1", "Smith", "Jim", "1970-01-01", "555-010-1111", &[("urn:lab:id", "X1")]),
                patient("l2", "Okafor", "Grace", "1990-03-03", "555-010-9999", &[("urn:lab:id", "X2")]),
                patient(
                    "l3",
                    "Nobody",
                    "Else",
                    "2001-01-01",
                    "555-010-4444",
                    &[("urn:lab:id", "X3"), ("urn:ehr:mrn", "M2")],
                ),
            ],
        ),
    ]
}

async fn index_in(dir: &tempfile::TempDir) -> PatientIndex {
    let url = format!("sqlite://{}/index.db", dir.path().display());
    PatientIndex::open(Store::open(&url, 2).await.unwrap()).await.unwrap()
}

#[tokio::test]
async fn links_by_demographics_and_identifier_keeps_look_alikes_apart() {
    let dir = tempfile::tempdir().unwrap();
    let index = index_in(&dir).await;
    let report = index.rebuild(&sources(), deadline()).await.unwrap();
    assert_eq!(report.patients_read, 6);
    let james = index.gateway_id_of("ehr", "e1").unwrap();
    assert_eq!(index.gateway_id_of("lab", "l1").as_deref(), Some(james.as_str()), "nickname + birth date + phone link");
    let other_james = index.gateway_id_of("ehr", "e2").unwrap();
    assert_ne!(james, other_james, "look-alike with another birth date stays apart");
    assert_eq!(index.gateway_id_of("lab", "l3").as_deref(), Some(other_james.as_str()), "shared MRN links");
    let link = index.resolve(&james).unwrap();
    assert_eq!(link.members.len(), 2);
    assert!(link.members.iter().any(|m| m.reason.starts_with("birth date and phone agree")), "{link:?}");
    assert_ne!(
        index.gateway_id_of("ehr", "e3"),
        index.gateway_id_of("lab", "l2"),
        "name + birth date alone never link"
    );
    let possible = index.possible_matches();
    assert_eq!(possible.len(), 1, "{possible:?}");
    assert_eq!(possible[0].a, ("ehr".to_string(), "e3".to_string()));
    assert_eq!(possible[0].b, ("lab".to_string(), "l2".to_string()));
}

#[tokio::test]
async fn gateway_ids_survive_restart_and_a_failed_source_keeps_its_links() {
    let dir = tempfile::tempdir().unwrap();
    let first = {
        let index = index_in(&dir).await;
        index.rebuild(&sources(), deadline()).await.unwrap();
        index.links()
    };
    let index = index_in(&dir).await;
    assert_eq!(index.links(), first, "loaded from the store as written");
    index.rebuild(&sources(), deadline()).await.unwrap();
    assert_eq!(
        index.links().iter().map(|l| &l.gateway_id).collect::<Vec<_>>(),
        first.iter().map(|l| &l.gateway_id).collect::<Vec<_>>()
    );
    let james = index.gateway_id_of("ehr", "e1").unwrap();
    let degraded = vec![sources().remove(0), Arc::new(Broken) as SharedSource];
    let report = index.rebuild(&degraded, deadline()).await.unwrap();
    assert_eq!(report.failed_sources.len(), 1);
    assert!(report.failed_sources[0].1.contains("HTTP 503"));
    assert_eq!(index.gateway_id_of("lab", "l1").as_deref(), Some(james.as_str()), "lab's members kept");
}
