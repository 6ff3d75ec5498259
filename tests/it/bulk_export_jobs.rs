//! Export jobs that survive: DELETE cancels (also mid-job) and removes the files, expired
//! jobs and their files are cleaned up, a job cut off by a restart completes afterwards with
//! exactly the right resources, and two gateways on one PostgreSQL schema share the queue
//! without exporting a patient twice.

use crate::bulk::client::*;
use crate::common::*;
use portico::simulator::{RunningSimulator, SimulatorOptions};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PARTNER: &str = "jobs-hie-south-treat-token";

/// The fixture systems: the lab over HTTP from `lab` (a simulator whose latency the test
/// turns up), the others as files.
fn body(exports: &Path, lab: &RunningSimulator, extra: &str) -> String {
    let files: String = fixture_file_sources()
        .split("[[sources]]")
        .filter(|b| !b.trim().is_empty() && !b.contains("name = \"lab\""))
        .map(|b| format!("[[sources]]{b}"))
        .collect();
    format!(
        "[[server.dev_tokens]]\ntoken = \"{PARTNER}\"\nviewer = \"partner:hie-south:TREAT\"\n\
         [export]\ndirectory = {:?}\npoll_interval = \"100ms\"\npatients_per_unit = 2\nworkers = 1\n{extra}\n{files}{}",
        exports.display().to_string(),
        rest_source("lab", &display_of("lab"), lab.base_url(), "retry_backoff = \"20ms\"")
    )
}

async fn lab() -> RunningSimulator {
    simulate("lab", SimulatorOptions::default()).await
}

/// Polls until the job has done some but not all of its patients; returns (done, total).
async fn wait_mid_job(gw: &Gateway, status_url: &str) -> (i64, i64) {
    let started = Instant::now();
    loop {
        let resp = gw.http.get(status_url).bearer_auth(PARTNER).send().await.unwrap();
        assert_eq!(resp.status(), 202, "the job must still be running");
        let progress = resp.headers()["x-progress"].to_str().unwrap().to_string();
        let counts = progress.split('(').nth(1).unwrap().split(' ').next().unwrap().to_string();
        let (done, total) = counts.split_once('/').unwrap();
        let (done, total): (i64, i64) = (done.parse().unwrap(), total.parse().unwrap());
        if done > 0 {
            assert!(done < total, "{progress}");
            return (done, total);
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no progress");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn job_folder(exports: &Path, job: &str) -> std::path::PathBuf {
    exports.join(job)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_cancels_a_job_and_removes_its_files() {
    let sim = lab().await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let exports = dir.path().join("exports");
    let gw = Gateway::start_in(dir.clone(), &body(&exports, &sim, ""), None).await;

    // A finished job: its files are on disk until it is deleted.
    let done = export(&gw, "$export?_type=Patient,Condition", PARTNER).await;
    let folder = job_folder(&exports, &done.job);
    assert!(folder.join("0").is_dir(), "unit 0's pieces are in the job's folder");
    let status_url = format!("{}/$export-status/{}", gw.fhir, done.job);
    let resp = gw.http.delete(&status_url).bearer_auth(PARTNER).send().await.unwrap();
    assert_eq!(resp.status(), 202);
    assert!(!folder.exists(), "files removed");
    assert_eq!(gw.get_with(&status_url, Some(PARTNER), &[]).await.0, 404);
    let file_url = done.manifest["output"][0]["url"].as_str().unwrap();
    assert_eq!(gw.get_with(file_url, Some(PARTNER), &[]).await.0, 404);
    assert_eq!(gw.http.delete(&status_url).bearer_auth(PARTNER).send().await.unwrap().status(), 404);

    // A running job: cancelled mid-way, its worker gives up and leaves nothing behind.
    sim.controls().set_latency(Duration::from_millis(250));
    let (status, location, _) = kick_off(&gw, "$export", PARTNER, &[ASYNC, FHIR_JSON]).await;
    assert_eq!(status, 202);
    let status_url = location.unwrap();
    wait_mid_job(&gw, &status_url).await;
    let job = status_url.rsplit('/').next().unwrap().to_string();
    assert_eq!(gw.http.delete(&status_url).bearer_auth(PARTNER).send().await.unwrap().status(), 202);
    assert_eq!(gw.get_with(&status_url, Some(PARTNER), &[]).await.0, 404);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!job_folder(&exports, &job).exists(), "a cancelled job's folder does not come back");
    assert!(units(&gw.database_url, &job).await.is_empty(), "its units are gone from the queue");
    sim.controls().set_latency(Duration::ZERO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_jobs_and_their_files_are_cleaned_up() {
    let sim = lab().await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let exports = dir.path().join("exports");
    let gw = Gateway::start_in(dir.clone(), &body(&exports, &sim, "file_lifetime = \"1s\""), None).await;
    let done = export(&gw, "$export?_type=Patient", PARTNER).await;
    assert!(job_folder(&exports, &done.job).is_dir());
    // A folder no job owns (left by a replica that died mid-cancel) goes too.
    let orphan = exports.join("0123456789abcdef0123456789abcdef");
    std::fs::create_dir_all(&orphan).unwrap();
    std::fs::write(orphan.join("Patient.0.ndjson"), "{}\n").unwrap();
    let status_url = format!("{}/$export-status/{}", gw.fhir, done.job);
    let started = Instant::now();
    while gw.get_with(&status_url, Some(PARTNER), &[]).await.0 != 404 {
        assert!(started.elapsed() < Duration::from_secs(10), "the job did not expire");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!job_folder(&exports, &done.job).exists(), "expired files removed");
    assert!(!orphan.exists(), "orphaned folder removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_cut_off_by_a_restart_completes_with_exactly_the_right_resources() {
    let sim = lab().await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let exports = dir.path().join("exports");
    let config = body(&exports, &sim, "");
    let first = Gateway::start_in(dir.clone(), &config, None).await;
    sim.controls().set_latency(Duration::from_millis(250));
    let (status, location, _) = kick_off(&first, "$export", PARTNER, &[ASYNC, FHIR_JSON]).await;
    assert_eq!(status, 202);
    let job = location.unwrap().rsplit('/').next().unwrap().to_string();
    let (done, total) = wait_mid_job(&first, &format!("{}/$export-status/{job}", first.fhir)).await;
    let first_origin = first.origin.clone();
    first.stop().await;
    let before = units(&dir_url(&dir), &job).await;
    assert!(before.iter().any(|(_, by, _)| !by.is_empty()), "some units were done before the restart");

    sim.controls().set_latency(Duration::from_millis(20));
    let second = Gateway::start_in(dir.clone(), &config, None).await;
    let finished = collect(&second, &format!("{}/$export-status/{job}", second.fhir), PARTNER).await;
    let all = all_patients(&second);
    assert_eq!(all.len() as i64, total);
    // Units written before the restart name the first gateway's address in attachment URLs.
    let exported = as_if_from(&finished.resources, &first_origin, &second.origin);
    assert_same(&exported, &everything(&second, &all, PARTNER).await);

    // Which replica did which unit: units finished before the restart were not redone.
    let after = units(&second.database_url, &job).await;
    let replica = |by: &str| by.split('/').next().unwrap().to_string();
    let replicas: std::collections::BTreeSet<String> = after.iter().map(|(_, by, _)| replica(by)).collect();
    assert_eq!(replicas.len(), 2, "both gateways did units: {after:?}");
    for (seq, by, _) in before.iter().filter(|(_, by, _)| !by.is_empty()) {
        assert_eq!(&after.iter().find(|(s, _, _)| s == seq).unwrap().1, by, "unit {seq} was done once");
    }
    let mut covered: Vec<String> = after.iter().flat_map(|(_, _, p)| p.clone()).collect();
    covered.sort();
    assert_eq!(covered, all, "units partition the patients");
    let audits = export_audits(&second.database_url, &job).await;
    assert_eq!(audits.len(), all.len());
    assert!(audits.values().all(|n| *n == 1), "each patient logged once: {audits:?}");
    assert!(done > 0);
}

/// The database of a gateway started on `dir` (SQLite file, or its PostgreSQL schema).
fn dir_url(dir: &Arc<tempfile::TempDir>) -> String {
    if std::env::var("TEST_ON_POSTGRES").as_deref() == Ok("1") {
        use sha2::Digest;
        let digest = hex::encode(sha2::Sha256::digest(dir.path().to_string_lossy().as_bytes()));
        url_for(&format!("portico_g_{}", &digest[..16]))
    } else {
        format!("sqlite://{}/portico.db", dir.path().display())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_on_one_postgresql_share_the_queue_and_export_each_patient_once() {
    if !require("postgres") {
        return;
    }
    with_schema(|schema, _pool| async move {
        let url = url_for(&schema);
        let sim = lab().await;
        let shared = tempfile::tempdir().unwrap();
        let exports = shared.path().join("exports");
        let config = body(&exports, &sim, "patients_per_unit = 1");
        let config = config.replace("patients_per_unit = 2\n", "");
        let a = Gateway::start_in(Arc::new(tempfile::tempdir().unwrap()), &config, Some(&url)).await;
        let b = Gateway::start_in(Arc::new(tempfile::tempdir().unwrap()), &config, Some(&url)).await;
        let all = all_patients(&a);
        assert_eq!(all, all_patients(&b), "one patient index");
        sim.controls().set_latency(Duration::from_millis(100));

        let (status, location, _) = kick_off(&a, "$export", PARTNER, &[ASYNC, FHIR_JSON]).await;
        assert_eq!(status, 202);
        let job = location.unwrap().rsplit('/').next().unwrap().to_string();
        // Polled and downloaded through the other gateway.
        let finished = collect(&b, &format!("{}/$export-status/{job}", b.fhir), PARTNER).await;
        assert_same(&as_if_from(&finished.resources, &a.origin, &b.origin), &everything(&b, &all, PARTNER).await);
        let mut exported: Vec<String> = finished
            .resources
            .iter()
            .filter(|r| r["resourceType"] == "Patient")
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        exported.sort();
        assert_eq!(exported, all, "each patient exactly once");

        let done = units(&url, &job).await;
        assert_eq!(done.len(), all.len(), "one patient per unit");
        let replicas: std::collections::BTreeSet<String> =
            done.iter().map(|(_, by, _)| by.split('/').next().unwrap().to_string()).collect();
        assert_eq!(replicas.len(), 2, "both gateways took units from the queue: {done:?}");
        let audits = export_audits(&url, &job).await;
        assert_eq!(audits.len(), all.len());
        assert!(audits.values().all(|n| *n == 1), "{audits:?}");
        a.stop().await;
        b.stop().await;
    })
    .await;
}
