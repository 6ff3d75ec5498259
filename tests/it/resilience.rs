//! A source that is down, slow, throttling or whose token expires: the gateway answers
//! within its deadline with what it has, says which system is missing, recovers when the
//! source does, and stops calling a source whose circuit is open.

use crate::common::*;
use portico::simulator::{RunningSimulator, SimulatorOptions};
use serde_json::Value;
use std::time::{Duration, Instant};

/// A person held by both the EHR and the lab.
fn ehr_and_lab_person(gw: &Gateway) -> String {
    gw.links()
        .into_iter()
        .find(|l| l.members.iter().any(|m| m.source == "ehr") && l.members.iter().any(|m| m.source == "lab"))
        .expect("a person in the EHR and the lab")
        .gateway_id
}

async fn two_sources(lab: &RunningSimulator, lab_extra: &str, aggregate: &str) -> (RunningSimulator, Gateway) {
    let ehr = simulate("ehr", SimulatorOptions::default()).await;
    let body = format!(
        "{aggregate}\n{}{}",
        rest_source("ehr", "Harbor General Hospital", ehr.base_url(), ""),
        rest_source(
            "lab",
            "Bayview Regional Reference Lab",
            lab.base_url(),
            &format!("retry_backoff = \"20ms\"\n{lab_extra}")
        )
    );
    let gw = Gateway::start(&body).await;
    (ehr, gw)
}

#[tokio::test]
async fn a_source_that_is_down_gives_a_partial_answer_that_names_it_then_recovers() {
    let lab = simulate("lab", SimulatorOptions::default()).await;
    let (_ehr, gw) = two_sources(
        &lab,
        "max_retries = 1\nbreaker_cooldown = \"100ms\"",
        "[aggregate]\ndeadline = \"3s\"\ncache_ttl = \"1ms\"",
    )
    .await;
    let person = ehr_and_lab_person(&gw);
    let path = format!("Patient/{person}/$everything?_count=500");

    lab.controls().set_down(true);
    let (resources, outcomes) = gw.all_pages(&path).await;
    let w = warnings(&outcomes);
    assert_eq!(w.len(), 1, "{outcomes:?}");
    assert!(w[0].contains("Bayview Regional Reference Lab"), "{}", w[0]);
    assert_eq!(count_from_source(&resources, "lab"), 0);
    assert!(count_from_source(&resources, "ehr") > 1, "the EHR's part is still there");

    lab.controls().set_down(false);
    // The failures opened the lab's circuit; after its cooldown a probe goes through.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (resources, outcomes) = gw.all_pages(&path).await;
    assert!(warnings(&outcomes).is_empty(), "partial records are not cached: {outcomes:?}");
    assert!(count_from_source(&resources, "lab") > 0);

    // A source that is gone altogether (connection refused) is reported the same way.
    let (status, _) = gw.get(&format!("Patient/{person}")).await;
    assert_eq!(status, 200);
    lab.stop().await;
    let (resources, outcomes) = gw.all_pages(&path).await;
    assert!(warnings(&outcomes).iter().any(|w| w.contains("Bayview Regional Reference Lab")));
    assert!(count_from_source(&resources, "ehr") > 1);
}

#[tokio::test]
async fn a_slow_source_does_not_hold_the_answer_past_the_deadline() {
    let lab = simulate("lab", SimulatorOptions::default()).await;
    let (_ehr, gw) = two_sources(&lab, "", "[aggregate]\ndeadline = \"1s\"").await;
    let person = ehr_and_lab_person(&gw);
    lab.controls().set_latency(Duration::from_secs(30));
    let started = Instant::now();
    let (resources, outcomes) = gw.all_pages(&format!("Patient/{person}/$everything?_count=500")).await;
    // Generous bound: the point is that a 30 s source does not make a 30 s answer.
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    let w = warnings(&outcomes);
    assert!(w.iter().any(|w| w.contains("Bayview Regional Reference Lab") && w.contains("in time")), "{w:?}");
    assert!(count_from_source(&resources, "ehr") > 1);
}

#[tokio::test]
async fn throttling_with_retry_after_is_retried_and_an_excessive_wait_is_not() {
    let lab = simulate("lab", SimulatorOptions { retry_after_secs: 1, ..Default::default() }).await;
    let (_ehr, gw) =
        two_sources(&lab, "max_retries = 3\nmax_retry_after = \"2s\"", "[aggregate]\ncache_ttl = \"1ms\"").await;
    let person = ehr_and_lab_person(&gw);
    let path = format!("Patient/{person}/$everything?_count=500");
    lab.controls().fail_next(2);
    let before = lab.stats().answered_429;
    let (resources, outcomes) = gw.all_pages(&path).await;
    assert!(warnings(&outcomes).is_empty(), "{outcomes:?}");
    assert_eq!(lab.stats().answered_429 - before, 2, "both 429s were met and retried");
    assert!(count_from_source(&resources, "lab") > 0);

    let slow = simulate("lab", SimulatorOptions { retry_after_secs: 30, ..Default::default() }).await;
    let (_ehr2, gw2) = two_sources(&slow, "max_retries = 3\nmax_retry_after = \"2s\"", "").await;
    slow.controls().fail_next(1000);
    let started = Instant::now();
    let (_, outcomes) = gw2.all_pages(&format!("Patient/{}/$everything", ehr_and_lab_person(&gw2))).await;
    assert!(started.elapsed() < Duration::from_secs(10), "a 30 s Retry-After is not waited out");
    assert!(warnings(&outcomes).iter().any(|w| w.contains("retry after 30s")), "{outcomes:?}");
}

#[tokio::test]
async fn upstream_token_is_cached_refreshed_on_expiry_and_bad_credentials_are_reported() {
    let creds = Some(("portico".to_string(), "s3cret-value".to_string()));
    let lab = simulate("lab", SimulatorOptions { client_credentials: creds.clone(), ..Default::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "lab-secret", "s3cret-value\n");
    let auth = format!(
        "auth = {{ type = \"client_credentials\", token_url = \"{}\", client_id = \"portico\", client_secret = {{ file = \"{}\" }} }}",
        lab.token_url(),
        dir.path().join("lab-secret").display()
    );
    let (_ehr, gw) = two_sources(&lab, &auth, "[aggregate]\ncache_ttl = \"1ms\"").await;
    let person = ehr_and_lab_person(&gw);
    let path = format!("Patient/{person}/$everything?_count=500");
    let tokens_after_index = lab.stats().token_requests;
    assert_eq!(tokens_after_index, 1, "the index build fetched one token");
    let (first, outcomes) = gw.all_pages(&path).await;
    assert!(warnings(&outcomes).is_empty(), "{outcomes:?}");
    assert_eq!(lab.stats().token_requests, 1, "the cached token is reused");

    lab.controls().expire_tokens();
    let (second, outcomes) = gw.all_pages(&path).await;
    assert!(warnings(&outcomes).is_empty(), "{outcomes:?}");
    let stats = lab.stats();
    assert!(stats.rejected_401 >= 1, "{stats:?}");
    assert_eq!(stats.token_requests, 2, "one refresh after the 401: {stats:?}");
    assert_eq!(keys(&first), keys(&second));

    // Wrong secret: the source refuses the gateway, which reports it unhealthy (and its
    // patients stay out of the index) rather than failing to start.
    write_file(dir.path(), "wrong", "not-the-secret");
    let wrong = auth.replace("lab-secret", "wrong");
    let (_ehr2, gw2) = two_sources(&lab, &wrong, "").await;
    assert!(gw2.index.links().await.unwrap().iter().all(|l| l.members.iter().all(|m| m.source != "lab")));
    let (status, ready) = get_json(&format!("{}/health/ready", gw2.origin)).await;
    assert_eq!(status, 200);
    let lab_status = ready["sources"].as_array().unwrap().iter().find(|s| s["name"] == "lab").unwrap().clone();
    assert_eq!(lab_status["state"], "degraded", "{ready}");
}

#[tokio::test]
async fn an_open_circuit_stops_calls_until_a_probe_succeeds() {
    let lab = simulate("lab", SimulatorOptions::default()).await;
    // A cooldown long enough that a loaded machine still asks again within it.
    let (_ehr, gw) = two_sources(&lab, "max_retries = 0\nbreaker_failures = 2\nbreaker_cooldown = \"3s\"", "").await;
    let person = ehr_and_lab_person(&gw);
    let path = format!("Patient/{person}/$everything?_count=500");
    lab.controls().set_down(true);
    for _ in 0..2 {
        gw.all_pages(&path).await;
    }
    let (_, ready) = get_json(&format!("{}/health/ready", gw.origin)).await;
    let lab_state = ready["sources"].as_array().unwrap().iter().find(|s| s["name"] == "lab").unwrap()["state"].clone();
    assert_eq!(lab_state, "down", "{ready}");
    let calls = lab.stats().fhir_requests;
    let (_, outcomes) = gw.all_pages(&path).await;
    assert!(warnings(&outcomes).iter().any(|w| w.contains("recent failures")), "{outcomes:?}");
    assert_eq!(lab.stats().fhir_requests, calls, "no call while the circuit is open");

    lab.controls().set_down(false);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    // The first call after the cooldown is the probe; it succeeds and closes the circuit.
    gw.all_pages(&path).await;
    let (resources, outcomes) = gw.all_pages(&path).await;
    assert!(warnings(&outcomes).is_empty(), "{outcomes:?}");
    assert!(count_from_source(&resources, "lab") > 0);
}

#[tokio::test]
async fn upstream_paging_with_relative_next_links_reaches_every_resource() {
    let lab = simulate("lab", SimulatorOptions { relative_next_links: true, page_size: 2, ..Default::default() }).await;
    let (_ehr, gw) = two_sources(&lab, "page_size = 2", "").await;
    let person = ehr_and_lab_person(&gw);
    let link = gw.index.resolve(&person).await.unwrap().unwrap();
    let lab_id = link.members.iter().find(|m| m.source == "lab").unwrap().source_patient_id.clone();
    let store = fixture_store("lab");
    let (resources, outcomes) = gw.all_pages(&format!("Patient/{person}/$everything?_count=500")).await;
    assert!(warnings(&outcomes).is_empty(), "{outcomes:?}");
    for t in portico::fhir::PATIENT_COMPARTMENT_TYPES {
        let expected = store.compartment(&lab_id, t).len();
        let got =
            resources.iter().filter(|r| r["resourceType"] == *t && source_tags(r).contains(&"lab".to_string())).count();
        assert_eq!(got, expected, "{t}: every lab resource across pages of 2");
    }
    assert!(lab.stats().fhir_requests > 5, "several pages were fetched");
}

async fn get_json(url: &str) -> (u16, Value) {
    let resp = reqwest::get(url).await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn a_source_unreadable_when_the_index_was_built_is_never_a_silent_gap() {
    let lab = simulate("lab", SimulatorOptions::default()).await;
    lab.controls().set_down(true);
    let (_ehr, gw) = two_sources(
        &lab,
        "max_retries = 0\nbreaker_cooldown = \"50ms\"",
        "[aggregate]\ncache_ttl = \"1ms\"\n[identity]\nrefresh_every = \"300ms\"",
    )
    .await;
    // P01 is in both systems, but the index could not read the lab.
    let person = gw.patient_id("ehr", "pt-10001");
    assert_eq!(gw.index.resolve(&person).await.unwrap().unwrap().members.len(), 1);
    let (resources, outcomes) = gw.all_pages(&format!("Patient/{person}/$everything?_count=500")).await;
    let w = warnings(&outcomes);
    assert!(
        w.iter().any(|w| w.contains("Bayview Regional Reference Lab") && w.contains("could not be searched")),
        "{w:?}"
    );
    assert_eq!(count_from_source(&resources, "lab"), 0);

    lab.controls().set_down(false);
    let mut linked = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if gw.index.resolve(&person).await.unwrap().unwrap().members.len() == 2 {
            linked = true;
            break;
        }
    }
    assert!(linked, "the index picked the lab up on its next refresh");
    let (resources, outcomes) = gw.all_pages(&format!("Patient/{person}/$everything?_count=500")).await;
    assert!(warnings(&outcomes).is_empty(), "{outcomes:?}");
    assert!(count_from_source(&resources, "lab") > 0);
}

/// A 42 CFR Part 2 program that is down is named to the patient and staff, but a partner
/// is told only that some system is not answering: naming the program would disclose that
/// the patient is its client.
#[tokio::test]
async fn a_part2_program_that_is_down_is_named_only_to_the_patient_and_staff() {
    let ehr = simulate("ehr", SimulatorOptions::default()).await;
    let behavioral = simulate("behavioral", SimulatorOptions::default()).await;
    let body = format!(
        "[[server.dev_tokens]]\ntoken = \"danny-self-token\"\nviewer = \"patient\"\npatient = \"ehr/pt-10004\"\n\
         [[server.dev_tokens]]\ntoken = \"partner-treat-token\"\nviewer = \"partner:hie-north:TREAT\"\n\
         [aggregate]\ncache_ttl = \"1ms\"\n{}{}",
        rest_source("ehr", "Harbor General Hospital", ehr.base_url(), ""),
        rest_source("behavioral", "Harbor Behavioral Health Clinic", behavioral.base_url(), "max_retries = 0")
    );
    let gw = Gateway::start(&body).await;
    let danny = gw.patient_id("ehr", "pt-10004");
    behavioral.controls().set_down(true);
    let path = format!("Patient/{danny}/$everything?_count=500");
    for (token, named) in [(TOKEN, true), ("danny-self-token", true), ("partner-treat-token", false)] {
        let (status, bundle) = gw.get_with(&path, Some(token), &[]).await;
        assert_eq!(status, 200, "{token}: {bundle}");
        let outcomes: Vec<Value> = bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["search"]["mode"] == "outcome")
            .map(|e| e["resource"].clone())
            .collect();
        let w = warnings(&outcomes);
        assert_eq!(w.len(), 1, "{token}: always told something is missing: {w:?}");
        assert_eq!(w[0].contains("Behavioral"), named, "{token}: {w:?}");
        if !named {
            assert!(w[0].contains("one of the hospital's systems"), "{w:?}");
            assert!(!bundle.to_string().contains("Behavioral"), "{token}: the program is not named anywhere");
        }
    }
}
