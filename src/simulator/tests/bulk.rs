//! End-to-end tests of the simulator's Bulk Data `$export` over real HTTP on 127.0.0.1:0,
//! on the memory store and the disk store: kick-off, polls, manifest, files, `_type`,
//! `_since`, Group level, cancel, auth, and the CapabilityStatement saying so only when
//! offered. Synthetic data only.

use crate::simulator::{disk, start, start_disk, RunningSimulator, SimulatorOptions};
use crate::sources::files::ResourceStore;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn store() -> ResourceStore {
    ResourceStore::from_resources(vec![
        json!({"resourceType": "Patient", "id": "p1", "meta": {"lastUpdated": "2025-01-01T00:00:00Z"}}),
        json!({"resourceType": "Patient", "id": "p2", "meta": {"lastUpdated": "2025-06-01T00:00:00Z"}}),
        json!({"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/p1"},
               "meta": {"lastUpdated": "2025-07-01T00:00:00Z"}}),
        json!({"resourceType": "Observation", "id": "o2", "subject": {"reference": "Patient/p2"},
               "meta": {"lastUpdated": "2025-02-01T00:00:00Z"}}),
        json!({"resourceType": "Practitioner", "id": "dr"}),
        json!({"resourceType": "Group", "id": "g1", "member": [{"entity": {"reference": "Patient/p2"}}]}),
    ])
}

async fn sim(disk_backed: bool, options: SimulatorOptions) -> RunningSimulator {
    let options = SimulatorOptions { bulk: true, ..options };
    if !disk_backed {
        return start(store(), options, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let store = store();
    for t in store.types() {
        let lines: Vec<String> = store.of_type(t).iter().map(Value::to_string).collect();
        std::fs::write(dir.path().join(format!("{t}.ndjson")), lines.join("\n") + "\n").unwrap();
    }
    let disk = disk::DiskStore::open(dir.path(), 0).unwrap();
    start_disk(disk, options, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

/// Kicks off `path`, polls until done; the manifest and, per type, the ids in its file.
async fn export(s: &RunningSimulator, path: &str, token: Option<&str>) -> (Value, BTreeMap<String, Vec<String>>) {
    let client = reqwest::Client::new();
    let auth = |r: reqwest::RequestBuilder| match token {
        Some(t) => r.bearer_auth(t),
        None => r,
    };
    let resp =
        auth(client.get(format!("{}/{path}", s.base_url())).header("Prefer", "respond-async")).send().await.unwrap();
    assert_eq!(resp.status(), 202);
    let status_url = resp.headers()["content-location"].to_str().unwrap().to_string();
    let first = auth(client.get(&status_url)).send().await.unwrap();
    assert_eq!(first.status(), 202, "the first poll is told to wait");
    assert_eq!(first.headers()["retry-after"], "1");
    assert!(first.headers().contains_key("x-progress"));
    let manifest: Value = loop {
        let resp = auth(client.get(&status_url)).send().await.unwrap();
        if resp.status() == 200 {
            break resp.json().await.unwrap();
        }
        assert_eq!(resp.status(), 202);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let mut files = BTreeMap::new();
    for o in manifest["output"].as_array().unwrap() {
        let text = auth(client.get(o["url"].as_str().unwrap())).send().await.unwrap().text().await.unwrap();
        let ids: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(o["count"].as_u64(), Some(ids.len() as u64));
        files.insert(o["type"].as_str().unwrap().to_string(), ids);
    }
    assert_eq!(auth(client.delete(&status_url)).send().await.unwrap().status(), 202, "cancelled");
    assert_eq!(auth(client.get(&status_url)).send().await.unwrap().status(), 404, "gone");
    (manifest, files)
}

fn owned(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    pairs.iter().map(|(t, ids)| (t.to_string(), ids.iter().map(ToString::to_string).collect())).collect()
}

async fn exports_by_level_type_and_since(disk_backed: bool) {
    let s = sim(disk_backed, SimulatorOptions::default()).await;
    let (manifest, files) = export(&s, "$export", None).await;
    assert_eq!(manifest["requiresAccessToken"], false);
    assert!(manifest["request"].as_str().unwrap().ends_with("/$export"));
    assert!(manifest["transactionTime"].is_string() && manifest["error"] == json!([]));
    assert_eq!(
        files,
        owned(&[
            ("Group", &["g1"]),
            ("Observation", &["o1", "o2"]),
            ("Patient", &["p1", "p2"]),
            ("Practitioner", &["dr"])
        ])
    );
    let (_, files) = export(&s, "$export?_type=Observation,Patient&_since=2025-03-01T00:00:00Z", None).await;
    assert_eq!(files, owned(&[("Observation", &["o1"]), ("Patient", &["p2"])]), "changed after _since only");
    let (_, files) = export(&s, "Patient/$export", None).await;
    assert_eq!(files, owned(&[("Observation", &["o1", "o2"]), ("Patient", &["p1", "p2"])]), "compartments only");
    let (_, files) = export(&s, "Group/g1/$export", None).await;
    assert_eq!(files, owned(&[("Observation", &["o2"]), ("Patient", &["p2"])]), "the Group's members only");

    let client = reqwest::Client::new();
    let refused = client.get(format!("{}/$export", s.base_url())).send().await.unwrap();
    assert_eq!(refused.status(), 400, "respond-async is required");
    let unknown = client.get(format!("{}/Group/nope/$export", s.base_url())).header("Prefer", "respond-async");
    assert_eq!(unknown.send().await.unwrap().status(), 404);
    let bad = client.get(format!("{}/$export?_since=yesterday", s.base_url())).header("Prefer", "respond-async");
    assert_eq!(bad.send().await.unwrap().status(), 400);
    let stats = s.stats();
    assert_eq!(stats.calls_to("$export"), 7);
    assert_eq!(stats.export_requests[1], "$export?_type=Observation,Patient&_since=2025-03-01T00:00:00Z");
}

#[tokio::test]
async fn exports_by_level_type_and_since_from_memory() {
    exports_by_level_type_and_since(false).await;
}

#[tokio::test]
async fn exports_by_level_type_and_since_from_disk() {
    exports_by_level_type_and_since(true).await;
}

#[tokio::test]
async fn the_sources_auth_applies_and_the_statement_says_what_is_offered() {
    let s = sim(false, super::secured()).await;
    let resp = reqwest::Client::new()
        .get(format!("{}/$export", s.base_url()))
        .header("Prefer", "respond-async")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "a token is required");
    let token: Value = reqwest::Client::new()
        .post(s.token_url())
        .basic_auth("gw", Some("s3cret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (manifest, files) = export(&s, "$export?_type=Patient", token["access_token"].as_str()).await;
    assert_eq!(manifest["requiresAccessToken"], true);
    assert_eq!(files, owned(&[("Patient", &["p1", "p2"])]));

    let statement: Value = reqwest::get(format!("{}/metadata", s.base_url())).await.unwrap().json().await.unwrap();
    let offer = crate::sources::Offer::from_capability_statement(&statement).unwrap();
    assert!(offer.bulk && offer.group_bulk);
    let plain = start(store(), SimulatorOptions::default(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let statement: Value = reqwest::get(format!("{}/metadata", plain.base_url())).await.unwrap().json().await.unwrap();
    let offer = crate::sources::Offer::from_capability_statement(&statement).unwrap();
    assert!(!offer.bulk && !offer.group_bulk, "not offered unless enabled");
    let resp = reqwest::Client::new()
        .get(format!("{}/$export", plain.base_url()))
        .header("Prefer", "respond-async")
        .send()
        .await
        .unwrap();
    assert_ne!(resp.status(), 202);
}
