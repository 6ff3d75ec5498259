//! The patient index over the fixtures (fixtures/README.md, "People"): exactly the groups
//! the README names, the look-alikes and the siblings kept apart, the one possible match
//! listed and not linked, and reasons that name attributes, never values.

use crate::common::*;
use std::collections::BTreeSet;

fn file_sources() -> String {
    fixture_file_sources()
}

/// The README's groups, as `source/id` sets.
fn expected_groups() -> Vec<BTreeSet<&'static str>> {
    let groups: &[&[&str]] = &[
        &["ehr/pt-10001", "lab/12234b6a-63ea-5997-91fa-0ff4d7f2341d", "imaging/IMG.PT.00001"],
        &["ehr/pt-10002", "lab/75feff3f-4707-53c7-80f2-01d1ced25532", "imaging/IMG.PT.00002"],
        &["ehr/pt-10003", "lab/ba966dcb-7c8a-5e06-9cc5-20e3e7895abd"],
        &["ehr/pt-10004", "behavioral/7300007"],
        &["ehr/pt-10005", "behavioral/7300026"],
        &["ehr/pt-10006", "lab/e02f1810-32e8-563f-a0ac-ab996cdbd2ed"],
        &["ehr/pt-10007", "lab/fef820aa-cf25-562a-94de-c928ab61bc4e"],
        &["ehr/pt-10008", "imaging/IMG.PT.00003"],
        &["ehr/pt-10009", "lab/6f908407-fe97-5f75-8d03-96e53fff4a77"],
        &["ehr/pt-10010", "lab/ced72a8e-a4ec-5c37-b2ca-8978b90365b0"],
        &["ehr/pt-10011", "imaging/IMG.PT.00004"],
        &["ehr/pt-10012", "lab/2d38a90b-7db8-5424-9c69-4a862610684b", "imaging/IMG.PT.00005"],
        &["ehr/pt-10013"],
        &["imaging/IMG.PT.00006"],
        &["ehr/pt-10014", "lab/f1a43359-8c30-536b-a971-d54954c36aec"],
        &["ehr/pt-10015", "imaging/IMG.PT.00007"],
    ];
    groups.iter().map(|g| g.iter().copied().collect()).collect()
}

#[tokio::test]
async fn the_index_links_exactly_the_people_the_fixtures_describe() {
    let gw = Gateway::start(&file_sources()).await;
    let mut got: Vec<BTreeSet<String>> = gw
        .index
        .links()
        .await
        .unwrap()
        .iter()
        .map(|l| l.members.iter().map(|m| format!("{}/{}", m.source, m.source_patient_id)).collect())
        .collect();
    got.sort();
    let mut want: Vec<BTreeSet<String>> =
        expected_groups().into_iter().map(|g| g.into_iter().map(str::to_string).collect()).collect();
    want.sort();
    assert_eq!(got, want);

    // Reasons: an identifier link names the system, a demographic link the attributes.
    let reason = |source: &str, id: &str| {
        let gid = gw.patient_id(source, id);
        gw.links()
            .into_iter()
            .find(|l| l.gateway_id == gid)
            .unwrap()
            .members
            .into_iter()
            .find(|m| m.source == source && m.source_patient_id == id)
            .unwrap()
            .reason
    };
    assert!(reason("lab", "ba966dcb-7c8a-5e06-9cc5-20e3e7895abd")
        .starts_with("shared identifier (https://ehr.harbor-health.example/fhir/sid/mrn)"));
    let married = reason("lab", "75feff3f-4707-53c7-80f2-01d1ced25532");
    assert!(married.contains("birth date") && married.contains("different family name"), "{married}");
    let transposed = reason("behavioral", "7300007");
    assert!(transposed.contains("address") && !transposed.contains("phone"), "{transposed}");
    for link in gw.index.links().await.unwrap() {
        for m in link.members {
            for value in ["HG1", "555", "Alder", "1990-01-27", "O'Brien", "Carter"] {
                assert!(!m.reason.contains(value), "a reason carries a value: {}", m.reason);
            }
        }
    }

    let possible = gw.index.possible_matches().await.unwrap();
    assert_eq!(possible.len(), 1, "{possible:?}");
    let pair = BTreeSet::from([
        format!("{}/{}", possible[0].a.0, possible[0].a.1),
        format!("{}/{}", possible[0].b.0, possible[0].b.1),
    ]);
    assert_eq!(pair, BTreeSet::from(["ehr/pt-10013".to_string(), "imaging/IMG.PT.00006".to_string()]));
    assert_ne!(gw.patient_id("ehr", "pt-10013"), gw.patient_id("imaging", "IMG.PT.00006"));
    assert_ne!(gw.patient_id("ehr", "pt-10014"), gw.patient_id("ehr", "pt-10015"), "look-alikes");
    assert_ne!(gw.patient_id("ehr", "pt-10007"), gw.patient_id("ehr", "pt-10008"), "siblings");
}

#[tokio::test]
async fn gateway_patient_ids_survive_a_restart() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let first = Gateway::start_in(dir.clone(), &file_sources(), None).await;
    let ids: Vec<String> = ["pt-10001", "pt-10004", "pt-10013"].iter().map(|p| first.patient_id("ehr", p)).collect();
    let (status, before) = first.get(&format!("Patient/{}", ids[0])).await;
    assert_eq!(status, 200);
    first.stop().await;
    let second = Gateway::start_in(dir, &file_sources(), None).await;
    let again: Vec<String> = ["pt-10001", "pt-10004", "pt-10013"].iter().map(|p| second.patient_id("ehr", p)).collect();
    assert_eq!(ids, again);
    let (status, after) = second.get(&format!("Patient/{}", ids[0])).await;
    assert_eq!(status, 200);
    assert_eq!(before, after);
}
