//! The patient index in the database (issue 14 part 1), over real simulators: a source that
//! refuses to list its patients (the Epic-like profile) is looked up on demand when a
//! person's record is first asked for, and the link is stored — kept across a restart and
//! shared by two replicas on one PostgreSQL; the simulator answers the incremental
//! `Patient?_lastUpdated=gt…` a refresh asks.

use crate::common::*;
use portico::simulator::{SimulatorOptions, SimulatorProfile};
use portico::sources::files::ResourceStore;
use serde_json::{json, Value};
use std::sync::Arc;

/// Bob: in the EHR, and in the lab under this id.
const BOB: &str = "pt-10001";
const BOB_IN_LAB: &str = "12234b6a-63ea-5997-91fa-0ff4d7f2341d";

fn ids(bundle: &Value) -> Vec<String> {
    let entries = bundle["entry"].as_array().cloned().unwrap_or_default();
    entries.iter().map(|e| e["resource"]["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn the_simulator_answers_which_patients_changed_after_an_instant() {
    let patient = |id: &str, updated: Option<&str>| {
        let mut p = json!({"resourceType": "Patient", "id": id, "birthDate": "1980-01-01"});
        if let Some(at) = updated {
            p["meta"] = json!({"lastUpdated": at});
        }
        p
    };
    let store = ResourceStore::from_resources([
        patient("old", Some("2020-05-01T10:00:00Z")),
        patient("new", Some("2030-05-01T10:00:00Z")),
        patient("undated", None),
    ]);
    let sim = simulate_store(store, SimulatorOptions::default()).await;
    let search = |query: &str| {
        let url = format!("{}/Patient?{query}", sim.base_url());
        async move { reqwest::get(url).await.unwrap().json::<Value>().await.unwrap() }
    };
    assert_eq!(ids(&search("_lastUpdated=gt2025-01-01T00:00:00Z").await), vec!["new"]);
    let mut both = ids(&search("_lastUpdated=gt2019-01-01T00:00:00Z").await);
    both.sort();
    assert_eq!(both, vec!["new", "old"], "a record without meta.lastUpdated is never reported changed");
    assert!(ids(&search("_lastUpdated=gt2031-01-01T00:00:00Z").await).is_empty());
}

/// The EHR as a standard simulator and the lab as an Epic-like one.
async fn ehr_and_epic_lab() -> (portico::simulator::RunningSimulator, portico::simulator::RunningSimulator, String) {
    let ehr = simulate("ehr", SimulatorOptions::default()).await;
    let lab = simulate("lab", SimulatorOptions { profile: SimulatorProfile::Epic, ..Default::default() }).await;
    let body = fixture_sources(&[("ehr", &ehr), ("lab", &lab)]);
    (ehr, lab, body)
}

#[tokio::test]
async fn a_person_in_an_epic_like_source_is_looked_up_on_demand_and_kept_across_a_restart() {
    let (_ehr, lab, body) = ehr_and_epic_lab().await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let gw = Gateway::start_in(dir.clone(), &body, None).await;
    assert!(gw.index.lookup_only_sources().contains("lab"));
    assert_eq!(lab.stats().calls_to("search Patient"), 0, "the refused listing reached no handler");
    let person = gw.patient_id("ehr", BOB);
    assert_eq!(gw.index.gateway_id_of("lab", BOB_IN_LAB).await.unwrap(), None, "not known before anyone asks");

    let (resources, outcomes) = gw.all_pages(&format!("Patient/{person}/$everything?_count=500")).await;
    assert!(warnings(&outcomes).is_empty(), "{outcomes:?}");
    let from_lab = count_from_source(&resources, "lab");
    assert!(from_lab > 0, "Bob's lab results arrive after the lookup");
    assert_eq!(gw.patient_id("lab", BOB_IN_LAB), person, "linked by the matching rule and stored");
    let link = gw.index.resolve(&person).await.unwrap().unwrap();
    let member = link.members.iter().find(|m| m.source == "lab").unwrap();
    assert!(member.reason.contains(" with ehr/pt-10001"), "{member:?}");
    let searches = lab.stats().calls_to("search Patient");
    assert!(searches > 0);
    gw.stop().await;

    // Restarted over the stored index: the link is there before anything is asked again.
    let again = Gateway::start_in(dir, &body, None).await;
    assert_eq!(again.patient_id("lab", BOB_IN_LAB), person);
    assert_eq!(lab.stats().calls_to("search Patient"), searches, "no lookup, no listing at start");
    let (resources, outcomes) = again.all_pages(&format!("Patient/{person}/$everything?_count=500")).await;
    assert!(warnings(&outcomes).is_empty(), "{outcomes:?}");
    assert_eq!(count_from_source(&resources, "lab"), from_lab);
}

#[tokio::test]
async fn a_staff_search_for_a_record_of_an_epic_like_source_reads_and_links_it() {
    let (_ehr, _lab, body) = ehr_and_epic_lab().await;
    let gw = Gateway::start(&body).await;
    let person = gw.patient_id("ehr", BOB);
    let query = format!("patient=lab/{BOB_IN_LAB}&viewer=patient");
    let (status, answer) = gw.get_with(&format!("{}/admin/policy/explain?{query}", gw.origin), Some(TOKEN), &[]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["patient"].as_str(), Some(person.as_str()), "read by id, linked to Bob by the rule");
    assert_eq!(gw.patient_id("lab", BOB_IN_LAB), person);
    // A record the source does not have stays unknown.
    let (status, _) = gw
        .get_with(&format!("{}/admin/policy/explain?patient=lab/nobody&viewer=patient", gw.origin), Some(TOKEN), &[])
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn an_epic_like_source_that_fails_a_lookup_is_named_on_the_record() {
    let (_ehr, lab, body) = ehr_and_epic_lab().await;
    let gw = Gateway::start(&format!("{body}\n")).await;
    let person = gw.patient_id("ehr", BOB);
    lab.controls().set_down(true);
    let (resources, outcomes) = gw.all_pages(&format!("Patient/{person}/$everything?_count=500")).await;
    assert!(warnings(&outcomes).iter().any(|w| w.contains("Bayview Regional Reference Lab")), "{outcomes:?}");
    assert_eq!(count_from_source(&resources, "lab"), 0);
    assert_eq!(gw.index.resolve(&person).await.unwrap().unwrap().members.len(), 1);
}

#[tokio::test]
async fn two_gateways_on_one_postgres_share_the_links_either_makes() {
    if !require("postgres") {
        return;
    }
    with_schema(|schema, _pool| async move {
        let url = url_for(&schema);
        let (_ehr, _lab, body) = ehr_and_epic_lab().await;
        let a = Gateway::start_in(Arc::new(tempfile::tempdir().unwrap()), &body, Some(&url)).await;
        let b = Gateway::start_in(Arc::new(tempfile::tempdir().unwrap()), &body, Some(&url)).await;
        let person = a.patient_id("ehr", BOB);
        assert_eq!(b.patient_id("ehr", BOB), person, "one index, one id");
        assert_eq!(b.index.gateway_id_of("lab", BOB_IN_LAB).await.unwrap(), None);

        // Replica A asks for Bob's record and links his lab record …
        let (resources, _) = a.all_pages(&format!("Patient/{person}/$everything?_count=500")).await;
        let from_lab = count_from_source(&resources, "lab");
        assert!(from_lab > 0);
        // … and replica B uses that link at once.
        assert_eq!(b.index.gateway_id_of("lab", BOB_IN_LAB).await.unwrap(), Some(person.clone()));
        assert_eq!(b.index.resolve(&person).await.unwrap().unwrap().members.len(), 2);
        let (resources, outcomes) = b.all_pages(&format!("Patient/{person}/$everything?_count=500")).await;
        assert!(warnings(&outcomes).is_empty(), "{outcomes:?}");
        assert_eq!(count_from_source(&resources, "lab"), from_lab);
        a.stop().await;
        b.stop().await;
    })
    .await;
}
