//! HIE partners' Bulk Data exports end to end with real SMART Backend Services tokens
//! (`client_credentials`, ES384 and RS384 assertions): a full Group export (kick-off, poll,
//! manifest, every file with the same token) equals `$everything` for the roster as that
//! partner sees it, with no 42 CFR Part 2 record for treatment without consent; a Group
//! outside the partner's roster answers like no Group; system and all-patients exports are
//! refused to a partner limited to its Groups; another partner cannot see, download or
//! delete the job; expired and revoked tokens download nothing; system scopes narrow the
//! types. Run on SQLite, and with TEST_ON_POSTGRES=1 on PostgreSQL.
//!
//! Then two real `portico serve` processes on one PostgreSQL schema and one export folder
//! share the queue: a job kicked off on one and polled on the other is done by both, each
//! patient once; a process killed (SIGKILL) in the middle of a job leaves its unit to the
//! other when the lease ends, and the job completes with nothing twice and nothing missing.

use crate::bulk::client::*;
use crate::common::process::Process;
use crate::common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portico::simulator::{RunningSimulator, SimulatorOptions};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// TREAT partner with every system read; its roster is north-roster.
const NORTH: &str = "hie-north";
/// TREAT partner with every system read; its roster is south-roster.
const SOUTH: &str = "hie-south";
/// TREAT partner allowed only laboratory Observations and Patient, roster north-roster.
const LABS: &str = "hie-labs";
const LAB_SCOPE: &str =
    "system/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const ROSTER: [&str; 3] = ["pt-10001", "pt-10004", "pt-10005"];

fn key_file(name: &str) -> Vec<u8> {
    std::fs::read(root().join("tests/keys").join(name)).unwrap()
}

/// A JWKS file with the test RS384 and ES384 public keys, written into `dir`.
fn jwks_file(dir: &Path) -> String {
    let jwk = |n: &str| -> Value { serde_json::from_slice(&key_file(&format!("{n}.jwk.json"))).unwrap() };
    let file = dir.join("partner-jwks.json");
    std::fs::write(&file, json!({ "keys": [jwk("rs384"), jwk("es384")] }).to_string()).unwrap();
    file.display().to_string()
}

/// `[[auth.clients]]` for a backend partner.
fn partner(id: &str, scopes: &str, groups: &[&str], jwks: &str) -> String {
    let groups: Vec<String> = groups.iter().map(|g| format!("{g:?}")).collect();
    format!(
        "[[auth.clients]]\nclient_id = \"{id}\"\nname = \"Partner {id}\"\nkind = \"backend\"\npurpose = \"TREAT\"\n\
         groups = [{}]\nallowed_scopes = \"{scopes}\"\njwks_file = {jwks:?}\n",
        groups.join(", ")
    )
}

/// An assertion for `client_id`, signed ES384 (`es-1`) or RS384 (`rs-1`) for `token_url`.
fn assertion(client_id: &str, kid: &str, token_url: &str) -> String {
    let (alg, key) = match kid {
        "rs-1" => (Algorithm::RS384, EncodingKey::from_rsa_pem(&key_file("rs384.pem")).unwrap()),
        "es-1" => (Algorithm::ES384, EncodingKey::from_ec_pem(&key_file("es384.pem")).unwrap()),
        other => panic!("no key {other}"),
    };
    let claims = json!({
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "exp": chrono::Utc::now().timestamp() + 240,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    jsonwebtoken::encode(&Header { kid: Some(kid.into()), ..Header::new(alg) }, &claims, &key).unwrap()
}

/// A backend services access token from the gateway at `origin` (must be issued).
async fn token_at(http: &reqwest::Client, origin: &str, client_id: &str, kid: &str, scope: &str) -> String {
    let token_url = format!("{origin}/token");
    let a = assertion(client_id, kid, &token_url);
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", scope),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", a.as_str()),
    ];
    let resp = http.post(&token_url).form(&form).send().await.unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{client_id}: {body}");
    assert_eq!(body["token_type"], "bearer");
    body["access_token"].as_str().unwrap().to_string()
}

async fn token(gw: &Gateway, client_id: &str, kid: &str, scope: &str) -> String {
    token_at(&gw.http, &gw.origin, client_id, kid, scope).await
}

/// A gateway with the fixture systems (the lab over HTTP from `lab`, whose latency the test
/// turns up so a job is seen running) and three backend partners.
async fn start(lab: &RunningSimulator, backend_ttl: &str) -> Gateway {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let jwks = jwks_file(dir.path());
    let files: String = fixture_file_sources()
        .split("[[sources]]")
        .filter(|b| !b.trim().is_empty() && !b.contains("name = \"lab\""))
        .map(|b| format!("[[sources]]{b}"))
        .collect();
    let body = format!(
        "[auth]\nbackend_token_ttl = \"{backend_ttl}\"\n{north}{south}{labs}\n\
         [export]\ndirectory = {exports:?}\npoll_interval = \"100ms\"\npatients_per_unit = 1\nworkers = 1\n\
         [[export.groups]]\nid = \"north-roster\"\nname = \"HIE North shared patients\"\n\
         members = [\"ehr/pt-10001\", \"ehr/pt-10004\", \"ehr/pt-10005\"]\n\
         [[export.groups]]\nid = \"south-roster\"\nname = \"HIE South shared patients\"\nmembers = [\"ehr/pt-10002\"]\n\
         {files}{lab}",
        north = partner(NORTH, "system/*.rs", &["north-roster"], &jwks),
        south = partner(SOUTH, "system/*.rs", &["south-roster"], &jwks),
        labs = partner(LABS, &format!("{LAB_SCOPE} system/Patient.rs"), &["north-roster"], &jwks),
        exports = dir.path().join("exports").display().to_string(),
        lab = rest_source("lab", &display_of("lab"), lab.base_url(), "retry_backoff = \"20ms\""),
    );
    Gateway::start_in(dir, &body, None).await
}

async fn lab() -> RunningSimulator {
    simulate("lab", SimulatorOptions::default()).await
}

async fn jobs_in_store(gw: &Gateway) -> i64 {
    let store = portico::store::Store::open(&gw.database_url, 2).await.unwrap();
    sqlx::query_scalar("SELECT COUNT(*) FROM export_jobs").fetch_one(&store.pool).await.unwrap()
}

fn from_source(r: &Value, source: &str) -> bool {
    source_tags(r).iter().any(|s| s == source)
}

/// Records from the Part 2 program (the behavioral source) about `patient`.
fn part2_about(resources: &[Value], patient: &str) -> usize {
    let reference = format!("Patient/{patient}\"");
    resources
        .iter()
        .filter(|r| r["resourceType"] != "Patient" && from_source(r, "behavioral"))
        .filter(|r| r.to_string().contains(&reference))
        .count()
}

/// Checks one poll of a running job: 202, `X-Progress: N% (d/t patients)`, `Retry-After`.
async fn assert_running(http: &reqwest::Client, status_url: &str, token: &str, total: usize) {
    let resp = http.get(status_url).bearer_auth(token).send().await.unwrap();
    assert_eq!(resp.status(), 202, "the job is still running at the first poll");
    let progress = resp.headers()["x-progress"].to_str().unwrap().to_string();
    let suffix = format!("/{total} patients)");
    assert!(progress.contains("% (") && progress.ends_with(&suffix), "{progress}");
    let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().expect("Retry-After in seconds");
    assert!(retry >= 1, "{retry}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_exports_its_group_with_a_backend_services_token() {
    let sim = lab().await;
    let gw = start(&sim, "4m").await;
    let north = token(&gw, NORTH, "es-1", "system/*.rs").await;
    let roster: Vec<String> = ROSTER.iter().map(|p| gw.patient_id("ehr", p)).collect();
    let (danny, thomas) = (roster[1].clone(), roster[2].clone());

    // Kick-off; the lab is slow, so the first poll finds the job running.
    sim.controls().set_latency(Duration::from_millis(400));
    let (status, location, outcome) = kick_off(&gw, "Group/north-roster/$export", &north, &[ASYNC, FHIR_JSON]).await;
    assert_eq!(status, 202, "{outcome}");
    let status_url = location.expect("Content-Location");
    assert!(status_url.starts_with(&format!("{}/$export-status/", gw.fhir)), "{status_url}");
    assert_running(&gw.http, &status_url, &north, 3).await;
    sim.controls().set_latency(Duration::ZERO);
    // Poll to the manifest and download every file with the same token.
    let done = collect(&gw, &status_url, &north).await;
    assert_eq!(done.manifest["request"], format!("{}/Group/north-roster/$export", gw.fhir));
    let everything_north = everything(&gw, &roster, &north).await;
    assert_same(&done.resources, &everything_north);
    let mut patients: Vec<String> = done
        .resources
        .iter()
        .filter(|r| r["resourceType"] == "Patient")
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    patients.sort();
    let mut sorted = roster.clone();
    sorted.sort();
    assert_eq!(patients, sorted, "the roster's members, each once, no one else");
    assert!(done.resources.iter().any(|r| r["id"] == "ehr.imm-10004"), "Danny's EHR record is there");
    assert!(done.resources.iter().any(|r| from_source(r, "lab")), "Bob's lab results are there");
    // Treatment without consent: no Part 2 record leaves — though staff see them.
    assert_eq!(part2_about(&done.resources, &danny), 0, "Danny's Part 2 records");
    assert_eq!(part2_about(&done.resources, &thomas), 0, "Thomas's Part 2 records");
    assert!(!done.resources.iter().any(|r| r["id"] == "behavioral.7300012"), "F11.20 withheld");
    let staff = everything(&gw, &[danny.clone(), thomas.clone()], TOKEN).await;
    let staff_part2: Vec<Value> = staff.values().flatten().cloned().collect();
    assert!(part2_about(&staff_part2, &danny) > 3 && part2_about(&staff_part2, &thomas) > 0, "the fixtures hold them");
    assert!(staff.contains_key("Condition/behavioral.7300012"));
    // Every roster patient is in the access log once for this job, as this partner.
    let audits = export_audits(&gw.database_url, &done.job).await;
    assert_eq!(audits.keys().cloned().collect::<Vec<_>>(), sorted);
    assert!(audits.values().all(|n| *n == 1), "{audits:?}");

    // A Group not in the partner's roster answers exactly like one that does not exist.
    let jobs = jobs_in_store(&gw).await;
    let (s1, _, b1) = kick_off(&gw, "Group/south-roster/$export", &north, &[ASYNC, FHIR_JSON]).await;
    let (s2, _, b2) = kick_off(&gw, "Group/no-such-roster/$export", &north, &[ASYNC, FHIR_JSON]).await;
    assert_eq!((s1, &b1), (s2, &b2), "another partner's Group looks like no Group");
    assert_eq!(s1, 404, "{b1}");
    // System level and all patients: refused to a partner limited to its Groups.
    for path in ["$export", "Patient/$export", "$export?_type=Patient"] {
        let (s, location, b) = kick_off(&gw, path, &north, &[ASYNC, FHIR_JSON]).await;
        assert_eq!(s, 403, "{path}: {b}");
        assert!(location.is_none());
        assert_eq!(b["issue"][0]["code"], "forbidden");
        assert!(b["issue"][0]["diagnostics"].as_str().unwrap().contains("north-roster"), "{b}");
    }
    assert_eq!(jobs_in_store(&gw).await, jobs, "refused kick-offs leave no job");

    // Another partner (a real token of its own) cannot poll, download or delete the job.
    let south = token(&gw, SOUTH, "rs-1", "system/*.rs").await;
    let unknown_url = format!("{}/$export-status/{}", gw.fhir, "0".repeat(32));
    let (s1, b1) = gw.get_with(&status_url, Some(&south), &[]).await;
    let (s2, b2) = gw.get_with(&unknown_url, Some(&south), &[]).await;
    assert_eq!((s1, &b1), (s2, &b2), "another partner's job looks like no job");
    assert_eq!(s1, 404);
    let urls: Vec<String> = done.manifest["output"]
        .as_array()
        .unwrap()
        .iter()
        .chain(done.manifest["error"].as_array().unwrap())
        .map(|o| o["url"].as_str().unwrap().to_string())
        .collect();
    assert!(urls.len() > 5, "{urls:?}");
    for url in &urls {
        assert_eq!(gw.get_with(url, Some(&south), &[]).await.0, 404, "{url}");
        assert_eq!(gw.get_with(url, None, &[]).await.0, 401, "{url} without a token");
    }
    assert_eq!(gw.http.delete(&status_url).bearer_auth(&south).send().await.unwrap().status(), 404);
    // The owner's job is untouched, and a fresh token of the same partner reaches it.
    let again = token(&gw, NORTH, "rs-1", "system/*.rs").await;
    let (manifest, _) = wait(&gw, &status_url, &again).await;
    assert_eq!(manifest, done.manifest);
    let mut total = 0;
    for o in manifest["output"].as_array().unwrap() {
        total += download(&gw, o["url"].as_str().unwrap(), &again).await.len();
    }
    assert_eq!(total, done.resources.len());
    // Its owner deletes it: gone for everyone.
    assert_eq!(gw.http.delete(&status_url).bearer_auth(&north).send().await.unwrap().status(), 202);
    assert_eq!(gw.get_with(&status_url, Some(&north), &[]).await.0, 404);
    assert_eq!(gw.get_with(&urls[0], Some(&north), &[]).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_scopes_narrow_the_types_a_partner_exports() {
    let sim = lab().await;
    let gw = start(&sim, "4m").await;
    let labs = token(&gw, LABS, "rs-1", &format!("{LAB_SCOPE} system/Patient.rs")).await;
    let roster: Vec<String> = ROSTER.iter().map(|p| gw.patient_id("ehr", p)).collect();
    let jobs = jobs_in_store(&gw).await;

    // Asking for a type the scopes do not grant is refused, as a search of it would be.
    for path in [
        "Group/north-roster/$export?_type=Condition",
        "Group/north-roster/$export?_type=Observation,MedicationRequest",
        "Group/north-roster/$export?_typeFilter=Condition%3Fclinical-status%3Dactive",
    ] {
        let (s, location, b) = kick_off(&gw, path, &labs, &[ASYNC, FHIR_JSON]).await;
        assert_eq!(s, 403, "{path}: {b}");
        assert!(location.is_none());
        assert!(b["issue"][0]["diagnostics"].as_str().unwrap().contains("scopes do not grant"), "{b}");
    }
    assert_eq!(jobs_in_store(&gw).await, jobs, "nothing queued");

    // Without _type: only granted types, only laboratory Observations — $everything's view.
    let all = export(&gw, "Group/north-roster/$export", &labs).await;
    let types: BTreeSet<&str> =
        all.manifest["output"].as_array().unwrap().iter().map(|o| o["type"].as_str().unwrap()).collect();
    assert_eq!(types, BTreeSet::from(["Observation", "Patient"]), "no file of an ungranted type");
    assert!(all
        .resources
        .iter()
        .filter(|r| r["resourceType"] == "Observation")
        .all(|r| { r["category"].to_string().contains("\"laboratory\"") }));
    assert!(all.resources.iter().any(|r| r["resourceType"] == "Observation"), "Bob's labs");
    assert_same(&all.resources, &everything(&gw, &roster, &labs).await);
    // The same roster for a partner with every scope has much more (the narrowing is real).
    let north = token(&gw, NORTH, "es-1", "system/*.rs").await;
    let wide = export(&gw, "Group/north-roster/$export", &north).await;
    let wide_types: BTreeSet<&str> = wide.resources.iter().map(|r| r["resourceType"].as_str().unwrap()).collect();
    assert!(wide_types.contains("Condition") && wide_types.contains("MedicationRequest"), "{wide_types:?}");
    assert!(wide
        .resources
        .iter()
        .any(|r| r["resourceType"] == "Observation" && !r["category"].to_string().contains("\"laboratory\"")));

    // With a granted _type: just that type.
    let observations = export(&gw, "Group/north-roster/$export?_type=Observation", &labs).await;
    assert!(observations.resources.iter().all(|r| r["resourceType"] == "Observation"));
    let expected: Vec<&Value> = all.resources.iter().filter(|r| r["resourceType"] == "Observation").collect();
    assert_eq!(observations.resources.len(), expected.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_revoked_tokens_download_nothing() {
    let sim = lab().await;
    let gw = start(&sim, "2s").await;
    let issued = Instant::now();
    let first = token(&gw, NORTH, "es-1", "system/*.rs").await;
    let (status, location, b) = kick_off(&gw, "Group/north-roster/$export", &first, &[ASYNC, FHIR_JSON]).await;
    assert_eq!(status, 202, "{b}");
    let status_url = location.unwrap();
    // The job outlives the 2-second token: the partner polls with fresh ones.
    let fresh = token(&gw, NORTH, "rs-1", "system/*.rs").await;
    let (manifest, _) = wait(&gw, &status_url, &fresh).await;
    let url = manifest["output"][0]["url"].as_str().unwrap().to_string();
    let live = token(&gw, NORTH, "es-1", "system/*.rs").await;
    assert!(!download(&gw, &url, &live).await.is_empty());

    // Expired: 401, for files and status alike.
    tokio::time::sleep(Duration::from_millis(2300).saturating_sub(issued.elapsed())).await;
    let resp = gw.http.get(&url).bearer_auth(&first).send().await.unwrap();
    assert_eq!(resp.status(), 401, "an expired token downloads nothing");
    assert!(resp.headers().get("www-authenticate").is_some());
    assert!(!resp.text().await.unwrap().contains("\"resourceType\":\"Patient\""));
    assert_eq!(gw.get_with(&status_url, Some(&first), &[]).await.0, 401);

    // Revoked by its client: 401 at once, while a new token still works.
    let revoked = token(&gw, NORTH, "es-1", "system/*.rs").await;
    assert_eq!(gw.get_with(&url, Some(&revoked), &[]).await.0, 200);
    let a = assertion(NORTH, "rs-1", &format!("{}/token", gw.origin));
    let form = [("token", revoked.as_str()), ("client_assertion_type", JWT_BEARER), ("client_assertion", a.as_str())];
    let r = gw.http.post(format!("{}/revoke", gw.origin)).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(gw.get_with(&url, Some(&revoked), &[]).await.0, 401, "a revoked token downloads nothing");
    assert_eq!(gw.get_with(&status_url, Some(&revoked), &[]).await.0, 401);
    let newer = token(&gw, NORTH, "rs-1", "system/*.rs").await;
    assert!(!download(&gw, &url, &newer).await.is_empty(), "the job is the partner's, not the token's");
}

// ---------------------------------------------------------------------------------------
// Two real gateway processes on one PostgreSQL schema.

/// A unit row: (seq, state, owner, done_by, attempts).
type UnitRow = (i64, String, String, String, i64);

async fn unit_rows(pool: &sqlx::PgPool, job: &str) -> Vec<UnitRow> {
    sqlx::query_as::<_, (i64, String, Option<String>, Option<String>, i64)>(
        "SELECT seq, state, owner, done_by, attempts FROM export_units WHERE job_id = $1 ORDER BY seq",
    )
    .bind(job)
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(seq, state, owner, by, attempts)| (seq, state, owner.unwrap_or_default(), by.unwrap_or_default(), attempts))
    .collect()
}

fn replica_of(owner: &str) -> &str {
    owner.split('/').next().unwrap()
}

/// Kick-off at `fhir` (202), returning the status URL.
async fn kick_off_at(http: &reqwest::Client, fhir: &str, path: &str, token: &str) -> String {
    let resp = http
        .get(format!("{fhir}/{path}"))
        .bearer_auth(token)
        .header(ASYNC.0, ASYNC.1)
        .header(FHIR_JSON.0, FHIR_JSON.1)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202, "{}", resp.text().await.unwrap());
    resp.headers()["content-location"].to_str().unwrap().to_string()
}

/// Polls a status URL to the manifest (any 202 seen must carry X-Progress and Retry-After)
/// and downloads every listed file; returns (resources, 202s seen).
async fn finish_at(http: &reqwest::Client, status_url: &str, token: &str) -> (Vec<Value>, usize) {
    let started = Instant::now();
    let mut running = 0;
    let manifest: Value = loop {
        let resp = http.get(status_url).bearer_auth(token).send().await.unwrap();
        match resp.status().as_u16() {
            202 => {
                running += 1;
                assert!(resp.headers()["x-progress"].to_str().unwrap().contains("patients"));
                assert!(resp.headers().get("retry-after").is_some());
            }
            200 => break resp.json().await.unwrap(),
            other => panic!("{other}: {}", resp.text().await.unwrap()),
        }
        assert!(started.elapsed() < Duration::from_secs(90), "the job did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut resources = Vec::new();
    for o in manifest["output"].as_array().unwrap() {
        let resp = http.get(o["url"].as_str().unwrap()).bearer_auth(token).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.unwrap();
        let got: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(got.len() as u64, o["count"].as_u64().unwrap());
        resources.extend(got);
    }
    (resources, running)
}

/// The union of `$everything` for `patients` as `token` sees them at `fhir`.
async fn everything_at(
    http: &reqwest::Client,
    fhir: &str,
    patients: &[String],
    token: &str,
) -> BTreeMap<String, Vec<Value>> {
    let mut union: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for p in patients {
        let mut next = Some(format!("{fhir}/Patient/{p}/$everything?_count=500"));
        while let Some(url) = next.take() {
            let bundle: Value = http.get(&url).bearer_auth(token).send().await.unwrap().json().await.unwrap();
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

/// Resources per patient (by the `Patient/{id}` they point at; the Patient itself counts),
/// asserting none is there twice.
fn per_patient(resources: &[Value], patients: &[String]) -> BTreeMap<String, usize> {
    let unique = by_key(resources);
    patients
        .iter()
        .map(|p| {
            let reference = format!("\"Patient/{p}\"");
            let n = unique
                .values()
                .filter(|r| {
                    (r["resourceType"] == "Patient" && r["id"] == p.as_str()) || r.to_string().contains(&reference)
                })
                .count();
            (p.clone(), n)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateway_processes_share_one_queue_and_survive_a_killed_one() {
    if !require("postgres") {
        return;
    }
    with_schema(|schema, _| async move {
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(2).connect(&url_for(&schema)).await.unwrap();
        // The EHR and the lab over HTTP from simulators here (their latency turned up while
        // jobs run, so both processes take units); imaging and behavioral as files.
        let ehr = simulate("ehr", SimulatorOptions::default()).await;
        let lab = lab().await;
        let dir = tempfile::tempdir().unwrap();
        let jwks = jwks_file(dir.path());
        let files: String = fixture_file_sources()
            .split("[[sources]]")
            .filter(|b| b.contains("name = \"imaging\"") || b.contains("name = \"behavioral\""))
            .map(|b| format!("[[sources]]{b}"))
            .collect();
        let members: Vec<String> = (1..=15).map(|n| format!("\"ehr/pt-{}\"", 10000 + n)).collect();
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:8080\"\ndev_token = \"{TOKEN}\"\n\
             [database]\nurl = \"{url}\"\nmax_connections = 4\n\
             [aggregate]\ncache_ttl = \"1ms\"\n\
             [auth]\nbackend_token_ttl = \"5m\"\n{north}\n\
             [export]\ndirectory = {exports:?}\npoll_interval = \"100ms\"\npatients_per_unit = 1\nworkers = 1\nlease = \"2s\"\n\
             [[export.groups]]\nid = \"everyone\"\nname = \"Every Harbor General patient\"\nmembers = [{members}]\n\
             {ehr}{lab}{files}",
            url = url_for(&schema),
            north = partner(NORTH, "system/*.rs", &["everyone"], &jwks),
            exports = dir.path().join("exports").display().to_string(),
            members = members.join(", "),
            ehr = rest_source("ehr", &display_of("ehr"), ehr.base_url(), "retry_backoff = \"20ms\""),
            lab = rest_source("lab", &display_of("lab"), lab.base_url(), "retry_backoff = \"20ms\""),
        );
        let t0 = Instant::now();
        let config_file = dir.path().join("portico.toml");
        std::fs::write(&config_file, config).unwrap();
        // One after the other: the first creates the schema's tables.
        let a = Process::start(&config_file, "a", &[]).await;
        eprintln!("{:?} started", t0.elapsed());
        let b = Process::start(&config_file, "b", &[]).await;
        assert_ne!(a.replica, b.replica);
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        // A real partner token from process A works on B (one token store).
        let token = token_at(&http, &a.origin, NORTH, "es-1", "system/*.rs").await;
        eprintln!("{:?} processes up", t0.elapsed());

        // Job 1: kicked off on A, polled and downloaded on B.
        ehr.controls().set_latency(Duration::from_millis(20));
        lab.controls().set_latency(Duration::from_millis(20));
        let status_on_a = kick_off_at(&http, &a.fhir(), "Group/everyone/$export", &token).await;
        let job1 = status_on_a.rsplit('/').next().unwrap().to_string();
        let status_on_b = format!("{}/$export-status/{job1}", b.fhir());
        let (first, polls) = finish_at(&http, &status_on_b, &token).await;
        assert!(polls > 0, "the job was seen running");
        eprintln!("{:?} job 1 done", t0.elapsed());
        ehr.controls().set_latency(Duration::ZERO);
        lab.controls().set_latency(Duration::ZERO);
        let mut patients: Vec<String> = first
            .iter()
            .filter(|r| r["resourceType"] == "Patient")
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        patients.sort();
        assert_eq!(patients.len(), 15, "every member once");
        assert_eq!(patients.iter().collect::<BTreeSet<_>>().len(), 15);
        assert_same(&as_if_from(&first, &a.origin, &b.origin), &everything_at(&http, &b.fhir(), &patients, &token).await);
        let counts = per_patient(&first, &patients);
        assert!(counts.values().all(|n| *n > 1), "{counts:?}");
        let units = unit_rows(&pool, &job1).await;
        assert_eq!(units.len(), 15, "one patient per unit");
        assert!(units.iter().all(|u| u.1 == "done"));
        let by: BTreeSet<&str> = units.iter().map(|u| replica_of(&u.3)).collect();
        assert_eq!(by, BTreeSet::from([a.replica.as_str(), b.replica.as_str()]), "both processes did units: {units:?}");
        let audits = export_audits(&url_for(&schema), &job1).await;
        eprintln!("{:?} job 1 checked", t0.elapsed());
        assert_eq!(audits.keys().cloned().collect::<Vec<_>>(), patients);
        assert!(audits.values().all(|n| *n == 1), "{audits:?}");

        // Job 2: kicked off on B; A is killed while it holds a unit.
        ehr.controls().set_latency(Duration::from_millis(50));
        lab.controls().set_latency(Duration::from_millis(50));
        let status2 = kick_off_at(&http, &b.fhir(), "Group/everyone/$export", &token).await;
        let job2 = status2.rsplit('/').next().unwrap().to_string();
        let started = Instant::now();
        let held_by_a: Vec<UnitRow> = loop {
            let rows = unit_rows(&pool, &job2).await;
            let a_holds: Vec<UnitRow> =
                rows.iter().filter(|u| u.1 == "claimed" && replica_of(&u.2) == a.replica).cloned().collect();
            let done = rows.iter().filter(|u| u.1 == "done").count();
            if !a_holds.is_empty() && done > 0 {
                break a_holds;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "A never held a unit: {rows:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let mut a = a;
        a.child.kill().unwrap(); // SIGKILL: no chance to give its unit back
        a.child.wait().unwrap();
        eprintln!("{:?} A killed", t0.elapsed());
        // What A held at the moment it died (it may have finished one of the units seen
        // above in the instant before the signal landed: those count as done).
        let at_kill = unit_rows(&pool, &job2).await;
        let held_by_a: Vec<UnitRow> = held_by_a
            .into_iter()
            .filter(|h| at_kill.iter().any(|u| u.0 == h.0 && u.1 == "claimed"))
            .collect();
        if held_by_a.is_empty() {
            eprintln!("A finished its units just before the kill; checking completeness only");
        }
        let done_before: Vec<UnitRow> = at_kill.into_iter().filter(|u| u.1 == "done").collect();
        let (second, _) = finish_at(&http, &status2, &token).await;
        eprintln!("{:?} job 2 done", t0.elapsed());
        ehr.controls().set_latency(Duration::ZERO);
        lab.controls().set_latency(Duration::ZERO);

        let after = unit_rows(&pool, &job2).await;
        assert!(after.iter().all(|u| u.1 == "done"), "{after:?}");
        for held in &held_by_a {
            let now = after.iter().find(|u| u.0 == held.0).unwrap();
            assert_eq!(replica_of(&now.3), b.replica, "A's unit {} was redone by B: {now:?}", held.0);
            assert!(now.4 >= 2, "claimed again after the lease ended: {now:?}");
        }
        for d in &done_before {
            let now = after.iter().find(|u| u.0 == d.0).unwrap();
            assert_eq!(now.3, d.3, "a unit done before the kill was not redone");
        }
        // Nothing twice, nothing missing: the same resources per patient as job 1 and as
        // $everything.
        assert_eq!(per_patient(&second, &patients), counts, "per-patient counts equal job 1's");
        assert_same(&as_if_from(&second, &a.origin, &b.origin), &everything_at(&http, &b.fhir(), &patients, &token).await);
        let audits = export_audits(&url_for(&schema), &job2).await;
        assert_eq!(audits.keys().cloned().collect::<Vec<_>>(), patients);
        assert!(audits.values().all(|n| *n == 1), "each patient logged once: {audits:?}");
        drop(b);
    })
    .await;
}
