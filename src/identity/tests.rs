use super::*;
use crate::sources::files::{FileSource, ResourceStore};
use crate::sources::{SourceError, SourceStatus, SourceSystem};
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::time::Instant;

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
    let report = index.refresh(&sources(), deadline()).await.unwrap();
    assert_eq!(report.patients_read, 6);
    let james = index.gateway_id_of("ehr", "e1").await.unwrap().unwrap();
    assert_eq!(
        index.gateway_id_of("lab", "l1").await.unwrap().as_deref(),
        Some(james.as_str()),
        "nickname + birth date + phone link"
    );
    let other_james = index.gateway_id_of("ehr", "e2").await.unwrap().unwrap();
    assert_ne!(james, other_james, "look-alike with another birth date stays apart");
    assert_eq!(
        index.gateway_id_of("lab", "l3").await.unwrap().as_deref(),
        Some(other_james.as_str()),
        "shared MRN links"
    );
    let link = index.resolve(&james).await.unwrap().unwrap();
    assert_eq!(link.members.len(), 2);
    assert!(link.members.iter().any(|m| m.reason.starts_with("birth date and phone agree")), "{link:?}");
    assert_ne!(
        index.gateway_id_of("ehr", "e3").await.unwrap(),
        index.gateway_id_of("lab", "l2").await.unwrap(),
        "name + birth date alone never link"
    );
    let possible = index.possible_matches().await.unwrap();
    assert_eq!(possible.len(), 1, "{possible:?}");
    assert_eq!(possible[0].a, ("ehr".to_string(), "e3".to_string()));
    assert_eq!(possible[0].b, ("lab".to_string(), "l2".to_string()));
}

#[tokio::test]
async fn gateway_ids_survive_restart_and_a_failed_source_keeps_its_links() {
    let dir = tempfile::tempdir().unwrap();
    let first = {
        let index = index_in(&dir).await;
        index.refresh(&sources(), deadline()).await.unwrap();
        index.links().await.unwrap()
    };
    let index = index_in(&dir).await;
    assert_eq!(index.links().await.unwrap(), first, "loaded from the store as written");
    index.refresh(&sources(), deadline()).await.unwrap();
    assert_eq!(
        index.links().await.unwrap().iter().map(|l| &l.gateway_id).collect::<Vec<_>>(),
        first.iter().map(|l| &l.gateway_id).collect::<Vec<_>>()
    );
    let james = index.gateway_id_of("ehr", "e1").await.unwrap().unwrap();
    let degraded = vec![sources().remove(0), Arc::new(Broken) as SharedSource];
    let report = index.refresh(&degraded, deadline()).await.unwrap();
    assert_eq!(report.failed_sources.len(), 1);
    assert!(report.failed_sources[0].1.contains("HTTP 503"));
    assert_eq!(index.gateway_id_of("lab", "l1").await.unwrap().as_deref(), Some(james.as_str()), "lab's members kept");
}

/// A source whose patients change between refreshes and which answers `since` itself:
/// the records whose `meta.lastUpdated` is later.
struct Changing {
    patients: std::sync::Mutex<Vec<Value>>,
    asked: std::sync::Mutex<Vec<Option<String>>>,
}

#[async_trait::async_trait]
impl SourceSystem for Changing {
    fn name(&self) -> &str {
        "lab"
    }
    fn display(&self) -> &str {
        "lab"
    }
    async fn list_patients(&self, _: Instant) -> Result<Vec<Value>, SourceError> {
        Ok(self.patients.lock().unwrap().clone())
    }
    async fn patients_changed_since(&self, since: Option<&str>, _: Instant) -> Result<Vec<Value>, SourceError> {
        self.asked.lock().unwrap().push(since.map(str::to_string));
        let all = self.patients.lock().unwrap().clone();
        Ok(match since {
            None => all,
            Some(since) => all
                .into_iter()
                .filter(|p| p.pointer("/meta/lastUpdated").and_then(Value::as_str).is_some_and(|u| u > since))
                .collect(),
        })
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

fn updated(mut patient: Value, at: &str) -> Value {
    patient["meta"] = json!({"lastUpdated": at});
    patient
}

#[tokio::test]
async fn refresh_reads_only_changes_and_follows_a_merge_in_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let index = index_in(&dir).await;
    let long_ago = "2020-01-01T00:00:00Z";
    let lab = Arc::new(Changing {
        patients: std::sync::Mutex::new(vec![
            updated(patient("l1", "Smith", "Jim", "1970-01-01", "555-010-1111", &[("urn:lab:id", "X1")]), long_ago),
            updated(patient("l5", "Smyth", "J", "1999-09-09", "555-010-5555", &[("urn:lab:id", "X5")]), long_ago),
        ]),
        asked: std::sync::Mutex::new(Vec::new()),
    });
    let sources = vec![sources().remove(0), lab.clone() as SharedSource];
    let first = index.refresh(&sources, deadline()).await.unwrap();
    assert_eq!((first.patients_read, first.changed), (5, 5));
    let james = index.gateway_id_of("ehr", "e1").await.unwrap().unwrap();
    assert_eq!(index.gateway_id_of("lab", "l1").await.unwrap(), Some(james.clone()));
    let stray = index.gateway_id_of("lab", "l5").await.unwrap().unwrap();
    assert_ne!(stray, james, "nothing links l5 yet");

    // Nothing changed: the lab is asked for changes since the last refresh, not listed (a
    // folder of files cannot say what changed and answers its three again, unchanged).
    let again = index.refresh(&sources, deadline()).await.unwrap();
    assert_eq!((again.patients_read, again.changed), (3, 0));
    let asked = lab.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 2);
    assert_eq!(asked[0], None, "the first refresh lists");
    assert!(asked[1].as_deref().is_some_and(|s| s > long_ago), "{asked:?}");

    // A new record and a merge arrive as changes: l9 shares Grace's MRN; the lab merged
    // l5 into l1 (Patient.link replaced-by).
    let soon = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    {
        let mut held = lab.patients.lock().unwrap();
        let mut merged = held[1].clone();
        merged["link"] = json!([{"type": "replaced-by", "other": {"reference": "Patient/l1"}}]);
        held[1] = updated(merged, &soon);
        held.push(updated(patient("l9", "Okafor", "G", "1990-03-03", "555-010-0000", &[("urn:ehr:mrn", "M3")]), &soon));
    }
    let third = index.refresh(&sources, deadline()).await.unwrap();
    assert_eq!((third.patients_read, third.changed), (3 + 2, 2), "only the lab's two changed records");
    let grace = index.gateway_id_of("ehr", "e3").await.unwrap().unwrap();
    assert_eq!(index.gateway_id_of("lab", "l9").await.unwrap(), Some(grace));
    assert_eq!(index.gateway_id_of("lab", "l5").await.unwrap(), Some(james.clone()), "merged into l1's person");
    let link = index.resolve(&stray).await.unwrap().expect("the merged-away id still resolves");
    assert_eq!(link.gateway_id, james);
    let l5 = link.members.iter().find(|m| m.source_patient_id == "l5").unwrap();
    assert!(l5.reason.starts_with("replaced by lab/l1"), "{l5:?}");
    // A merged-away record is no candidate for anyone any more.
    assert!(index.records_with_identifier("X5", deadline()).await.unwrap().is_empty());
    assert_eq!(index.records_with_identifier("x1", deadline()).await.unwrap().len(), 1, "any case");
}
