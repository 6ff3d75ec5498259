//! Export files sized by content and kept in object storage (issue 14 parts 3 and 4).
//!
//! A Bulk Data job's files hold up to `[export] file_max_resources` resources, packed across
//! work units (not one file per type per unit); with the default limits a type is one file.
//! Downloads stream from storage: one byte range gives 206 with its Content-Range, several
//! ranges the whole file (200), a range past the end 416; `Accept-Encoding: gzip` gives the
//! same bytes gzip-compressed. Then real `portico serve` processes keep their files in a
//! real S3-compatible server (moto, started here) with no shared folder: one is SIGKILLed in
//! the middle of a job and another (on PostgreSQL, a second replica already running; on
//! SQLite, the same database restarted) finishes it; the downloaded export equals the one an
//! uninterrupted gateway wrote — nothing lost, nothing doubled — and its files are in the
//! bucket, not on local disk; cancelling removes them from the bucket.

use crate::bulk::client::*;
use crate::common::process::Process;
use crate::common::s3::S3Server;
use crate::common::*;
use portico::simulator::SimulatorOptions;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PARTNER: &str = "storage-hie-south-treat-token";

fn body(exports: &Path, extra: &str) -> String {
    format!(
        "[[server.dev_tokens]]\ntoken = \"{PARTNER}\"\nviewer = \"partner:hie-south:TREAT\"\n\
         [export]\ndirectory = {:?}\npoll_interval = \"100ms\"\npatients_per_unit = 2\n{extra}\n{}",
        exports.display().to_string(),
        fixture_file_sources()
    )
}

/// GET `url` with `headers`: (status, headers, body bytes).
async fn fetch(
    http: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = http.get(url).bearer_auth(PARTNER);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, headers, resp.bytes().await.unwrap().to_vec())
}

async fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    async_compression::tokio::bufread::GzipDecoder::new(bytes).read_to_end(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_sized_by_content_and_downloads_take_ranges_and_gzip() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let exports = dir.path().join("exports");
    let gw = Gateway::start_in(dir.clone(), &body(&exports, "file_max_resources = 7"), None).await;
    let all = all_patients(&gw);
    let done = export(&gw, "$export", PARTNER).await;
    assert_same(&done.resources, &everything(&gw, &all, PARTNER).await);

    let outputs = done.manifest["output"].as_array().unwrap();
    assert!(outputs.iter().all(|o| o["count"].as_u64().unwrap() <= 7), "{outputs:?}");
    let units = units(&gw.database_url, &done.job).await;
    assert!(units.len() >= 4, "several units: {units:?}");
    let patient_files: Vec<&Value> = outputs.iter().filter(|o| o["type"] == "Patient").collect();
    assert!(patient_files.len() < units.len(), "Patient files pack units: {patient_files:?}");
    assert!(patient_files[0]["count"].as_u64().unwrap() > 2, "a file holds more than one unit's 2 patients");
    let observations = outputs.iter().filter(|o| o["type"] == "Observation").count() as u64;
    let total: u64 = outputs.iter().filter(|o| o["type"] == "Observation").map(|o| o["count"].as_u64().unwrap()).sum();
    assert!(observations > 1 && observations >= total.div_ceil(7), "Observation is cut into files of at most 7");
    assert!(exports.join(&done.job).is_dir(), "files in the local folder by default");

    // Ranges of a file made of several units' pieces.
    let file = patient_files[0]["url"].as_str().unwrap();
    let (status, h, full) = fetch(&gw.http, file, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(h["accept-ranges"], "bytes");
    assert_eq!(h["content-length"].to_str().unwrap(), full.len().to_string());
    let len = full.len();
    assert!(len > 200, "{len}");
    let mid = len / 2;
    let (status, h, part) = fetch(&gw.http, file, &[("Range", &format!("bytes={}-{}", mid - 50, mid + 49))]).await;
    assert_eq!(status, 206);
    assert_eq!(h["content-range"].to_str().unwrap(), format!("bytes {}-{}/{len}", mid - 50, mid + 49));
    assert_eq!(part, full[mid - 50..mid + 50]);
    let (status, _, tail) = fetch(&gw.http, file, &[("Range", "bytes=-10")]).await;
    assert_eq!((status, tail.as_slice()), (206, &full[len - 10..]));
    let (status, _, open) = fetch(&gw.http, file, &[("Range", "bytes=7-")]).await;
    assert_eq!((status, open.as_slice()), (206, &full[7..]));
    let (status, _, whole) = fetch(&gw.http, file, &[("Range", "bytes=0-1,10-20")]).await;
    assert_eq!((status, whole.len()), (200, len), "several ranges: the whole file");
    let (status, h, _) = fetch(&gw.http, file, &[("Range", &format!("bytes={len}-"))]).await;
    assert_eq!(status, 416);
    assert_eq!(h["content-range"].to_str().unwrap(), format!("bytes */{len}"));

    // gzip when asked for; the same bytes once decompressed.
    let (status, h, zipped) = fetch(&gw.http, file, &[("Accept-Encoding", "gzip")]).await;
    assert_eq!(status, 200);
    assert_eq!(h["content-encoding"], "gzip");
    assert!(h.get("content-length").is_none_or(|l| l.to_str().unwrap() == zipped.len().to_string()));
    assert_eq!(gunzip(&zipped).await, full);
    let (_, h, plain) = fetch(&gw.http, file, &[("Accept-Encoding", "gzip;q=0, br")]).await;
    assert!(h.get("content-encoding").is_none());
    assert_eq!(plain, full);
    let (status, h, part) = fetch(&gw.http, file, &[("Accept-Encoding", "gzip"), ("Range", "bytes=0-9")]).await;
    assert_eq!((status, part.as_slice()), (206, &full[..10]), "a range is sent as stored");
    assert!(h.get("content-encoding").is_none());
    // Another client's token gets nothing of it.
    let resp = gw.http.get(file).bearer_auth(TOKEN).header("Range", "bytes=0-9").send().await.unwrap();
    assert_eq!(resp.status(), 404);
    gw.stop().await;

    // The default limits: one file per type however many units wrote it.
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let gw = Gateway::start_in(dir.clone(), &body(&dir.path().join("exports"), ""), None).await;
    let done = export(&gw, "$export?_type=Patient,Observation", PARTNER).await;
    let types: Vec<&str> =
        done.manifest["output"].as_array().unwrap().iter().map(|o| o["type"].as_str().unwrap()).collect();
    assert_eq!(types, vec!["Observation", "Patient"]);
    assert_same(&done.resources, &everything_of(&gw, &["Patient", "Observation"]).await);
    gw.stop().await;
}

/// `$everything` for every patient, only the given types.
async fn everything_of(gw: &Gateway, types: &[&str]) -> BTreeMap<String, Vec<Value>> {
    let all = all_patients(gw);
    everything(gw, &all, PARTNER)
        .await
        .into_iter()
        .filter(|(k, _)| types.iter().any(|t| k.starts_with(&format!("{t}/"))))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Object storage, real processes.

/// Polls `status_url` to the manifest and downloads every output file; (manifest, resources).
async fn finish_at(http: &reqwest::Client, status_url: &str) -> (Value, Vec<Value>) {
    let started = Instant::now();
    let manifest: Value = loop {
        let resp = http.get(status_url).bearer_auth(PARTNER).send().await.unwrap();
        match resp.status().as_u16() {
            202 => {}
            200 => break resp.json().await.unwrap(),
            other => panic!("{other}: {}", resp.text().await.unwrap()),
        }
        assert!(started.elapsed() < Duration::from_secs(120), "the job did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut resources = Vec::new();
    for o in manifest["output"].as_array().unwrap() {
        let (status, _, body) = fetch(http, o["url"].as_str().unwrap(), &[]).await;
        assert_eq!(status, 200);
        let got: Vec<Value> =
            String::from_utf8(body).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(got.len() as u64, o["count"].as_u64().unwrap());
        resources.extend(got);
    }
    (manifest, resources)
}

async fn kick_off_at(http: &reqwest::Client, fhir: &str) -> String {
    let resp = http
        .get(format!("{fhir}/$export"))
        .bearer_auth(PARTNER)
        .header(ASYNC.0, ASYNC.1)
        .header(FHIR_JSON.0, FHIR_JSON.1)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202, "{}", resp.text().await.unwrap());
    resp.headers()["content-location"].to_str().unwrap().to_string()
}

/// (seq, state, owner, done_by) of a job's units.
async fn unit_rows(store: &portico::store::Store, job: &str) -> Vec<(i64, String, String, String)> {
    let rows: Vec<(i64, String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT seq, state, owner, done_by FROM export_units WHERE job_id = $1 ORDER BY seq")
            .bind(job)
            .fetch_all(&store.pool)
            .await
            .unwrap();
    rows.into_iter().map(|(s, st, o, d)| (s, st, o.unwrap_or_default(), d.unwrap_or_default())).collect()
}

/// Every file under `dir` whose name ends with `suffix`.
fn local_files(dir: &Path, suffix: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = e.path();
        if path.is_dir() {
            found.extend(local_files(&path, suffix));
        } else if path.to_string_lossy().ends_with(suffix) {
            found.push(path.display().to_string());
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_kept_in_s3_survive_a_killed_process_with_nothing_lost_or_doubled() {
    if !require("python") {
        return;
    }
    let on_postgres = std::env::var("TEST_ON_POSTGRES").as_deref() == Ok("1");
    if on_postgres && !require("postgres") {
        return;
    }
    let s3 = S3Server::start();
    s3.create_bucket("portico-exports").await;
    let ehr = simulate("ehr", SimulatorOptions::default()).await;
    let lab = simulate("lab", SimulatorOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let schema = format!("portico_s3_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let database = if on_postgres {
        let pool = sqlx::postgres::PgPoolOptions::new().connect(PG_SERVER).await.unwrap();
        sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&pool).await.unwrap();
        url_for(&schema)
    } else {
        format!("sqlite://{}/portico.db", dir.path().display())
    };
    let files: String = fixture_file_sources()
        .split("[[sources]]")
        .filter(|b| b.contains("name = \"imaging\"") || b.contains("name = \"behavioral\""))
        .map(|b| format!("[[sources]]{b}"))
        .collect();
    // Each process its own config: its own scratch folder, one bucket.
    let config = |name: &str| {
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:8080\"\ndev_token = \"{TOKEN}\"\n\
             [[server.dev_tokens]]\ntoken = \"{PARTNER}\"\nviewer = \"partner:hie-south:TREAT\"\n\
             [database]\nurl = \"{database}\"\nmax_connections = 4\n[aggregate]\ncache_ttl = \"1ms\"\n\
             [export]\nstore = \"s3://portico-exports/gateway\"\ndirectory = {scratch:?}\npoll_interval = \"100ms\"\n\
             patients_per_unit = 1\nworkers = 1\nlease = \"2s\"\nfile_max_resources = 40\n{ehr}{lab}{files}",
            scratch = dir.path().join(format!("{name}-scratch")).display().to_string(),
            ehr = rest_source("ehr", &display_of("ehr"), ehr.base_url(), "retry_backoff = \"20ms\""),
            lab = rest_source("lab", &display_of("lab"), lab.base_url(), "retry_backoff = \"20ms\""),
        );
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    };
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let a = Process::start(&config("a"), "a", &s3.env()).await;
    let store = portico::store::Store::open(&database, 2).await.unwrap();

    // The reference: one uninterrupted gateway's export.
    let status0 = kick_off_at(&http, &a.fhir()).await;
    let job0 = status0.rsplit('/').next().unwrap().to_string();
    let (manifest0, reference) = finish_at(&http, &status0).await;
    let keys0 = s3.keys("portico-exports", &format!("gateway/{job0}/")).await;
    assert!(!keys0.is_empty() && keys0.iter().all(|k| k.ends_with(".ndjson")), "{keys0:?}");
    assert!(local_files(dir.path(), ".ndjson").is_empty(), "no export file on local disk");
    assert!(manifest0["output"].as_array().unwrap().iter().all(|o| o["count"].as_u64().unwrap() <= 40));
    let patients = reference.iter().filter(|r| r["resourceType"] == "Patient").count();
    assert!(patients >= 10, "{patients}");

    // On PostgreSQL a second replica shares the queue and the bucket; on SQLite the same
    // database is restarted after the kill.
    let mut b = if on_postgres { Some(Process::start(&config("b"), "b", &s3.env()).await) } else { None };
    ehr.controls().set_latency(Duration::from_millis(60));
    lab.controls().set_latency(Duration::from_millis(60));
    let status1 = kick_off_at(&http, &b.as_ref().unwrap_or(&a).fhir()).await;
    let job1 = status1.rsplit('/').next().unwrap().to_string();
    let started = Instant::now();
    let held = loop {
        let rows = unit_rows(&store, &job1).await;
        let a_holds: Vec<i64> =
            rows.iter().filter(|u| u.1 == "claimed" && u.2.starts_with(&a.replica)).map(|u| u.0).collect();
        if !a_holds.is_empty() && rows.iter().any(|u| u.1 == "done") {
            break a_holds;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "A never held a unit mid-job: {rows:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut a = a;
    a.child.kill().unwrap(); // SIGKILL: no chance to give its unit back or finish its upload
    a.child.wait().unwrap();
    let at_kill = unit_rows(&store, &job1).await;
    let done_before: Vec<(i64, String)> =
        at_kill.iter().filter(|u| u.1 == "done").map(|u| (u.0, u.3.clone())).collect();
    let held: Vec<i64> = held.into_iter().filter(|s| at_kill.iter().any(|u| u.0 == *s && u.1 == "claimed")).collect();
    if b.is_none() {
        b = Some(Process::start(&config("b"), "b", &s3.env()).await);
    }
    let b = b.unwrap();
    ehr.controls().set_latency(Duration::from_millis(5));
    lab.controls().set_latency(Duration::from_millis(5));
    let (_, resumed) = finish_at(&http, &format!("{}/$export-status/{job1}", b.fhir())).await;

    let after = unit_rows(&store, &job1).await;
    assert!(after.iter().all(|u| u.1 == "done"), "{after:?}");
    for seq in &held {
        let now = after.iter().find(|u| u.0 == *seq).unwrap();
        assert!(now.3.starts_with(&b.replica), "A's unit {seq} was redone by B: {now:?}");
    }
    for (seq, by) in &done_before {
        assert_eq!(&after.iter().find(|u| u.0 == *seq).unwrap().3, by, "unit {seq}, done before the kill, not redone");
    }
    // Nothing lost, nothing doubled: the same resources as the uninterrupted export. A
    // Practitioner or Organization shared by several people is written once, by the first unit
    // to claim it, as merged in that person's record: its source tags name the systems that
    // held it for that person, so which copy is written follows the order units finished in.
    // Those tags are left out of the comparison for supporting types; everything else counts.
    let expected: BTreeMap<String, Vec<Value>> = as_if_from(&reference, &a.origin, &b.origin)
        .into_iter()
        .map(without_shared_tags)
        .map(|r| (key(&r), vec![r]))
        .collect();
    assert_eq!(expected.len(), reference.len(), "the reference itself holds nothing twice");
    let resumed_compared: Vec<Value> =
        as_if_from(&resumed, &a.origin, &b.origin).into_iter().map(without_shared_tags).collect();
    assert_same(&resumed_compared, &expected);
    let audits = export_audits(&database, &job1).await;
    assert_eq!(audits.len(), patients);
    assert!(audits.values().all(|n| *n == 1), "each patient logged once: {audits:?}");
    assert!(!s3.keys("portico-exports", &format!("gateway/{job1}/")).await.is_empty());
    assert!(local_files(dir.path(), ".ndjson").is_empty(), "no export file on local disk");

    // Cancelling removes the files from the bucket.
    let resp = http.delete(format!("{}/$export-status/{job0}", b.fhir())).bearer_auth(PARTNER).send().await.unwrap();
    assert_eq!(resp.status(), 202);
    assert!(s3.keys("portico-exports", &format!("gateway/{job0}/")).await.is_empty(), "cancelled job's files removed");
    drop(b);
    drop(a);
    if on_postgres {
        let pool = sqlx::postgres::PgPoolOptions::new().connect(PG_SERVER).await.unwrap();
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&pool).await.unwrap();
    }
}

#[test]
fn a_bad_store_url_is_a_clear_error_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for (store, says) in [("exports-bucket", "not a URL"), ("gs://bucket/x", "only s3://"), ("s3://", "no bucket")] {
        let config = dir.path().join("bad.toml");
        std::fs::write(
            &config,
            format!(
                "[database]\nurl = \"sqlite://{}/p.db\"\n[export]\nstore = \"{store}\"\n{}",
                dir.path().display(),
                fixture_file_sources()
            ),
        )
        .unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_portico"))
            .args(["serve", "--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .env(KEK_ENV, TEST_KEK)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{store}: started");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("export.store") && err.contains(says), "{store}: {err}");
    }
}

/// A supporting resource (shared between people) without its source-system tags; any other
/// resource as it is.
fn without_shared_tags(mut r: Value) -> Value {
    let supporting = r["resourceType"].as_str().is_some_and(|t| portico::fhir::SUPPORTING_TYPES.contains(&t));
    if let (true, Some(tags)) = (supporting, r.pointer_mut("/meta/tag").and_then(Value::as_array_mut)) {
        tags.retain(|t| t["system"] != "http://portico.example/fhir/CodeSystem/source-system");
    }
    r
}
