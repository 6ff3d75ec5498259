//! The tests' own Bulk Data client (kick-off, poll, manifest, download) and the reference
//! it is checked against: the union of `$everything` for the same viewer.
#![allow(dead_code)]

use crate::common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A finished export as a client sees it.
pub struct Finished {
    pub manifest: Value,
    pub expires: Option<String>,
    /// Every resource of every output file.
    pub resources: Vec<Value>,
    /// Every OperationOutcome of the error files.
    pub errors: Vec<Value>,
    pub job: String,
}

pub const ASYNC: (&str, &str) = ("Prefer", "respond-async");
pub const FHIR_JSON: (&str, &str) = ("Accept", "application/fhir+json");

/// GET kick-off; returns (status, Content-Location, body).
pub async fn kick_off(gw: &Gateway, path: &str, token: &str, headers: &[(&str, &str)]) -> (u16, Option<String>, Value) {
    let mut req = gw.http.get(format!("{}/{path}", gw.fhir)).bearer_auth(token);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    answer(req).await
}

/// POST kick-off with a Parameters body.
pub async fn kick_off_post(gw: &Gateway, path: &str, token: &str, body: &Value) -> (u16, Option<String>, Value) {
    let req = gw
        .http
        .post(format!("{}/{path}", gw.fhir))
        .bearer_auth(token)
        .header(ASYNC.0, ASYNC.1)
        .header(FHIR_JSON.0, FHIR_JSON.1)
        .header("Content-Type", "application/fhir+json")
        .body(body.to_string());
    answer(req).await
}

async fn answer(req: reqwest::RequestBuilder) -> (u16, Option<String>, Value) {
    let resp = req.send().await.expect("gateway answers");
    let status = resp.status().as_u16();
    let location = resp.headers().get("content-location").map(|v| v.to_str().unwrap().to_string());
    let text = resp.text().await.unwrap();
    (status, location, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Polls a status URL until the manifest (200), checking the 202s on the way.
pub async fn wait(gw: &Gateway, status_url: &str, token: &str) -> (Value, Option<String>) {
    let started = Instant::now();
    loop {
        let resp = gw.http.get(status_url).bearer_auth(token).send().await.unwrap();
        match resp.status().as_u16() {
            202 => {
                let progress = resp.headers().get("x-progress").expect("X-Progress").to_str().unwrap().to_string();
                assert!(progress.contains('%') && progress.contains("patients"), "{progress}");
                assert!(resp.headers().get("retry-after").is_some());
            }
            200 => {
                assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
                let expires = resp.headers().get("expires").map(|v| v.to_str().unwrap().to_string());
                return (resp.json().await.unwrap(), expires);
            }
            other => panic!("status {other}: {}", resp.text().await.unwrap()),
        }
        assert!(started.elapsed() < Duration::from_secs(120), "export did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Downloads one NDJSON file.
pub async fn download(gw: &Gateway, url: &str, token: &str) -> Vec<Value> {
    let resp = gw.http.get(url).bearer_auth(token).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{url}");
    assert_eq!(resp.headers()["content-type"], "application/fhir+ndjson");
    let text = resp.text().await.unwrap();
    text.lines().filter(|l| !l.is_empty()).map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

/// Kick-off (GET), poll, download every file.
pub async fn export(gw: &Gateway, path: &str, token: &str) -> Finished {
    let (status, location, body) = kick_off(gw, path, token, &[ASYNC, FHIR_JSON]).await;
    assert_eq!(status, 202, "{body}");
    collect(gw, &location.expect("Content-Location"), token).await
}

/// Poll a job to its end and download everything the manifest lists.
pub async fn collect(gw: &Gateway, status_url: &str, token: &str) -> Finished {
    let (manifest, expires) = wait(gw, status_url, token).await;
    assert_eq!(manifest["requiresAccessToken"], true);
    assert!(manifest["transactionTime"].as_str().is_some_and(|t| t.ends_with('Z')), "{manifest}");
    assert!(manifest["request"].as_str().unwrap().contains("/fhir/"), "{manifest}");
    let (mut resources, mut errors) = (Vec::new(), Vec::new());
    for (list, into) in [("output", &mut resources), ("error", &mut errors)] {
        for o in manifest[list].as_array().unwrap() {
            let got = download(gw, o["url"].as_str().unwrap(), token).await;
            assert_eq!(got.len() as u64, o["count"].as_u64().unwrap(), "{o}");
            assert!(got.iter().all(|r| r["resourceType"] == o["type"]), "{o}");
            into.extend(got);
        }
    }
    let job = status_url.rsplit('/').next().unwrap().to_string();
    Finished { manifest, expires, resources, errors, job }
}

/// The union of `$everything` for `patients` as `token` sees them, by `Type/id`. A
/// supporting resource (a Practitioner …) held by several records may differ between them
/// (each record merges the copies its own sources hold): every version is kept.
pub async fn everything(gw: &Gateway, patients: &[String], token: &str) -> BTreeMap<String, Vec<Value>> {
    let mut union: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for p in patients {
        let mut next = Some(format!("Patient/{p}/$everything?_count=500"));
        while let Some(path) = next.take() {
            let (status, bundle) = gw.get_with(&path, Some(token), &[]).await;
            assert_eq!(status, 200, "{bundle}");
            for e in bundle["entry"].as_array().into_iter().flatten() {
                if e["search"]["mode"] != "outcome" {
                    let versions = union.entry(key(&e["resource"])).or_default();
                    if !versions.contains(&e["resource"]) {
                        versions.push(e["resource"].clone());
                    }
                }
            }
            next = link(&bundle, "next");
        }
    }
    union
}

pub fn key(r: &Value) -> String {
    format!("{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap())
}

/// The exported resources by key, asserting none is there twice.
pub fn by_key(resources: &[Value]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for r in resources {
        assert!(out.insert(key(r), r.clone()).is_none(), "{} exported twice", key(r));
    }
    out
}

/// `resources` with gateway address `from` written `to`: attachment URLs name the replica whose
/// worker wrote the file (replicas behind one public address write the same; in tests each
/// has its own port).
pub fn as_if_from(resources: &[Value], from: &str, to: &str) -> Vec<Value> {
    resources.iter().map(|r| serde_json::from_str(&r.to_string().replace(from, to)).unwrap()).collect()
}

/// Asserts the export holds exactly `expected` (same keys; each resource as `$everything`
/// gave it), naming differences.
pub fn assert_same(exported: &[Value], expected: &BTreeMap<String, Vec<Value>>) {
    let got = by_key(exported);
    let missing: Vec<&String> = expected.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<&String> = got.keys().filter(|k| !expected.contains_key(*k)).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing {missing:?}\nextra {extra:?}");
    for (k, v) in &got {
        let versions = &expected[k];
        assert!(
            versions.len() == 1 || k.split('/').next().is_some_and(|t| portico::fhir::SUPPORTING_TYPES.contains(&t)),
            "{k}: {versions:?}"
        );
        assert!(versions.contains(v), "{k} differs from $everything:\n{v}\n{versions:?}");
    }
}

/// The gateway patient ids in the index.
pub fn all_patients(gw: &Gateway) -> Vec<String> {
    let mut all: Vec<String> = gw.links().into_iter().map(|l| l.gateway_id).collect();
    all.sort();
    all
}

/// Rows of the export tables, read directly from the gateway's database.
pub async fn units(database_url: &str, job: &str) -> Vec<(i64, String, Vec<String>)> {
    use sqlx::Row;
    let store = portico::store::Store::open(database_url, 2).await.unwrap();
    let rows = sqlx::query("SELECT seq, done_by, patients FROM export_units WHERE job_id = $1 ORDER BY seq")
        .bind(job)
        .fetch_all(&store.pool)
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            let patients: String = r.get(2);
            (r.get(0), r.get::<Option<String>, _>(1).unwrap_or_default(), serde_json::from_str(&patients).unwrap())
        })
        .collect()
}

/// Access-log entries of action `export` for a job, by patient.
pub async fn export_audits(database_url: &str, job: &str) -> BTreeMap<String, usize> {
    let store = portico::store::Store::open(database_url, 2).await.unwrap();
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT patient_id FROM audit_events WHERE action = 'export' AND what = $1")
            .bind(format!("/fhir/$export-status/{job}"))
            .fetch_all(&store.pool)
            .await
            .unwrap();
    let mut out = BTreeMap::new();
    for p in rows {
        *out.entry(p).or_insert(0) += 1;
    }
    out
}
