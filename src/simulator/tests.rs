//! End-to-end tests of the simulator over real HTTP on 127.0.0.1:0 with a small synthetic
//! store. They exercise what the gateway's REST adapter relies on; they never use real
//! patient data.

mod bulk;
mod calls;
mod operations;

use super::*;
use serde_json::json;

fn store() -> ResourceStore {
    let mut resources = vec![
        json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Rivera", "given": ["Ana"]}],
               "birthDate": "1980-02-03", "identifier": [{"system": "urn:mrn", "value": "MRN-1"}]}),
        json!({"resourceType": "Patient", "id": "p2", "name": [{"family": "Okafor"}], "birthDate": "2012-07-01"}),
        json!({"resourceType": "AllergyIntolerance", "id": "a1", "patient": {"reference": "Patient/p1"}}),
        json!({"resourceType": "AllergyIntolerance", "id": "a2", "patient": {"reference": "Patient/p2"}}),
        json!({"resourceType": "Provenance", "id": "v1", "target": [{"reference": "Observation/o03"}]}),
    ];
    // Seven observations for p1 (three pages of 3), one for p2.
    for n in 1..=7 {
        let code = if n % 2 == 0 { "2339-0" } else { "718-7" };
        resources.push(json!({"resourceType": "Observation", "id": format!("o{n:02}"), "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": format!("2024-01-{n:02}")}));
    }
    resources.push(json!({"resourceType": "Observation", "id": "o99", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
        "subject": {"reference": "Patient/p2"}}));
    ResourceStore::from_resources(resources)
}

async fn sim(options: SimulatorOptions) -> RunningSimulator {
    start(store(), options, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

/// Which store a test's simulator serves from.
#[derive(Debug, Clone, Copy)]
enum Backing {
    Memory,
    /// `store()` written as NDJSON (one file per type) and served by the disk store.
    Disk,
}

async fn sim_on(backing: Backing, options: SimulatorOptions) -> RunningSimulator {
    match backing {
        Backing::Memory => sim(options).await,
        Backing::Disk => {
            let dir = tempfile::tempdir().unwrap();
            let store = store();
            for t in store.types() {
                let lines: Vec<String> = store.of_type(t).iter().map(Value::to_string).collect();
                std::fs::write(dir.path().join(format!("{t}.ndjson")), lines.join("\n") + "\n").unwrap();
            }
            // The open files stay readable once the folder is removed.
            let disk = disk::DiskStore::open(dir.path(), 0).unwrap();
            start_disk(disk, options, "127.0.0.1:0".parse().unwrap()).await.unwrap()
        }
    }
}

/// Runs `check` against the memory store and the disk store, as two tests.
macro_rules! on_both_stores {
    ($check:ident) => {
        mod $check {
            #[tokio::test]
            async fn memory() {
                super::$check(super::Backing::Memory).await
            }
            #[tokio::test]
            async fn disk() {
                super::$check(super::Backing::Disk).await
            }
        }
    };
}

on_both_stores!(reads_found_missing_and_invalid);
on_both_stores!(searches_by_patient_code_id_and_patient_details);
on_both_stores!(pages_with_absolute_next_links);
on_both_stores!(pages_with_relative_next_links);
on_both_stores!(refuses_unknown_params_unless_lenient_and_bad_input);

fn secured() -> SimulatorOptions {
    SimulatorOptions { client_credentials: Some(("gw".into(), "s3cret".into())), ..Default::default() }
}

async fn get(url: &str) -> reqwest::Response {
    reqwest::get(url).await.unwrap()
}

async fn body(resp: reqwest::Response) -> Value {
    assert_eq!(resp.headers()["content-type"], crate::fhir::FHIR_JSON);
    resp.json().await.unwrap()
}

fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|e| e.iter().map(|e| e["resource"]["id"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn next_link(bundle: &Value) -> Option<String> {
    bundle["link"].as_array()?.iter().find(|l| l["relation"] == "next").map(|l| l["url"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn metadata_describes_the_server() {
    let s = sim(SimulatorOptions { name: "Bayview Lab".into(), ..secured() }).await;
    assert!(s.base_url().starts_with("http://127.0.0.1:") && s.base_url().ends_with("/fhir"));
    let cs = body(get(&format!("{}/metadata", s.base_url())).await).await;
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!((cs["status"].as_str(), cs["kind"].as_str()), (Some("active"), Some("instance")));
    assert_eq!(cs["fhirVersion"], "4.0.1");
    assert_eq!(cs["software"]["name"], "Bayview Lab");
    let rest = &cs["rest"][0];
    assert_eq!(rest["mode"], "server");
    let obs = rest["resource"].as_array().unwrap().iter().find(|r| r["type"] == "Observation").unwrap();
    let names: Vec<&str> = obs["searchParam"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    for n in ["_id", "_lastUpdated", "patient", "subject", "code", "date"] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    let ext = &rest["security"]["extension"][0];
    assert_eq!(ext["url"], "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris");
    assert_eq!(ext["extension"][0]["valueUri"].as_str(), Some(s.token_url().as_str()));
    s.stop().await;
}

async fn reads_found_missing_and_invalid(backing: Backing) {
    let s = sim_on(backing, SimulatorOptions::default()).await;
    let resp = get(&format!("{}/Patient/p1", s.base_url())).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(body(resp).await["name"][0]["family"], "Rivera");
    let resp = get(&format!("{}/Patient/nobody", s.base_url())).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(body(resp).await["issue"][0]["code"], "not-found");
    let resp = get(&format!("{}/Patient/bad_id!", s.base_url())).await;
    assert_eq!(resp.status(), 400);
    let resp = get(&format!("{}/Spaceship/x", s.base_url())).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(body(resp).await["issue"][0]["code"], "not-supported");
    s.stop().await;
}

async fn searches_by_patient_code_id_and_patient_details(backing: Backing) {
    let s = sim_on(backing, SimulatorOptions::default()).await;
    let base = s.base_url();
    let b = body(get(&format!("{base}/Observation?subject=Patient/p2")).await).await;
    assert_eq!((ids(&b), b["total"].as_u64()), (vec!["o99".to_string()], Some(1)));
    assert_eq!(b["entry"][0]["search"]["mode"], "match");
    assert_eq!(b["entry"][0]["fullUrl"].as_str().unwrap(), format!("{base}/Observation/o99"));
    // `patient` element type, and Provenance through its target.
    assert_eq!(ids(&body(get(&format!("{base}/AllergyIntolerance?patient=p1")).await).await), vec!["a1"]);
    assert_eq!(ids(&body(get(&format!("{base}/Provenance?patient=p1")).await).await), vec!["v1"]);
    assert!(ids(&body(get(&format!("{base}/Provenance?patient=p2")).await).await).is_empty());
    // A type this fixture lacks but a hospital supports: an empty searchset.
    let empty = body(get(&format!("{base}/Immunization?patient=p1")).await).await;
    assert_eq!((empty["total"].as_u64(), ids(&empty).len()), (Some(0), 0));
    let b = body(get(&format!("{base}/Observation?patient=p1&code=http://loinc.org%7C2339-0")).await).await;
    assert_eq!(ids(&b), vec!["o02", "o04", "o06"]);
    let b = body(get(&format!("{base}/Observation?_id=o99,o03,nope")).await).await;
    assert_eq!(ids(&b), vec!["o03", "o99"]);
    // Answered from the id index, with the other filters still applied: a repeated id once,
    // repeated `_id` parameters AND together.
    let b = body(get(&format!("{base}/Observation?_id=o02,o03,o04,o02&code=http://loinc.org%7C2339-0")).await).await;
    assert_eq!((ids(&b), b["total"].as_u64()), (vec!["o02".to_string(), "o04".to_string()], Some(2)));
    assert!(ids(&body(get(&format!("{base}/Observation?_id=o03&_id=o99")).await).await).is_empty());
    assert_eq!(ids(&body(get(&format!("{base}/Patient?_id=p2,p1")).await).await), vec!["p1", "p2"]);
    let b = body(get(&format!("{base}/Patient?identifier=urn:mrn%7CMRN-1")).await).await;
    assert_eq!(ids(&b), vec!["p1"]);
    let b = body(get(&format!("{base}/Patient?family=okafor&birthdate=2012-07-01")).await).await;
    assert_eq!(ids(&b), vec!["p2"]);
    let b = body(get(&format!("{base}/Observation?patient=p1&date=ge2024-01-06")).await).await;
    assert_eq!(ids(&b), vec!["o06", "o07"]);
    s.stop().await;
}

/// Follows next links from `first`, resolving relative ones against the base as a client
/// would; returns every id seen and the number of pages.
async fn follow(base: &str, first: &str) -> (Vec<String>, usize, Vec<String>) {
    let base_url = url::Url::parse(&format!("{base}/")).unwrap();
    let (mut seen, mut pages, mut links) = (Vec::new(), 0, Vec::new());
    let mut url = first.to_string();
    loop {
        let b = body(get(&url).await).await;
        assert_eq!(b["total"], 7);
        pages += 1;
        seen.extend(ids(&b));
        match next_link(&b) {
            Some(next) => {
                links.push(next.clone());
                url = base_url.join(&next).unwrap().to_string();
            }
            None => return (seen, pages, links),
        }
        assert!(pages < 10, "paging does not end");
    }
}

async fn pages_with_absolute_next_links(backing: Backing) {
    let s = sim_on(backing, SimulatorOptions { page_size: 3, ..Default::default() }).await;
    let base = s.base_url();
    let (seen, pages, links) = follow(base, &format!("{base}/Observation?patient=p1")).await;
    assert_eq!(pages, 3);
    assert_eq!(seen, (1..=7).map(|n| format!("o{n:02}")).collect::<Vec<_>>());
    for link in &links {
        assert!(link.starts_with(&format!("{base}/Observation?patient=p1&_cursor=")), "{link}");
    }
    // _count above the page size is clamped; below it is honoured.
    let b = body(get(&format!("{base}/Observation?patient=p1&_count=100")).await).await;
    assert_eq!(ids(&b).len(), 3);
    let (seen, pages, _) = follow(base, &format!("{base}/Observation?patient=p1&_count=2")).await;
    assert_eq!((seen.len(), pages), (7, 4));
    s.stop().await;
}

async fn pages_with_relative_next_links(backing: Backing) {
    let s = sim_on(backing, SimulatorOptions { page_size: 3, relative_next_links: true, ..Default::default() }).await;
    let base = s.base_url();
    let (seen, pages, links) = follow(base, &format!("{base}/Observation?subject=Patient%2Fp1&_count=3")).await;
    assert_eq!(pages, 3);
    assert_eq!(seen, (1..=7).map(|n| format!("o{n:02}")).collect::<Vec<_>>());
    assert_eq!(links.len(), 2);
    for link in &links {
        assert!(link.starts_with("Observation?subject=Patient%2Fp1&_count=3&_cursor="), "{link}");
    }
    let resp = get(&format!("{base}/Observation?patient=p1&_cursor=%21%21")).await;
    assert_eq!(resp.status(), 400, "a cursor this server did not issue");
    s.stop().await;
}

async fn refuses_unknown_params_unless_lenient_and_bad_input(backing: Backing) {
    let s = sim_on(backing, SimulatorOptions::default()).await;
    let base = s.base_url();
    let resp = get(&format!("{base}/Observation?patient=p1&colour=blue")).await;
    assert_eq!(resp.status(), 400);
    let oo = body(resp).await;
    assert_eq!(oo["resourceType"], "OperationOutcome");
    assert!(oo["issue"][0]["diagnostics"].as_str().unwrap().contains("colour"));
    let resp = reqwest::Client::new()
        .get(format!("{base}/Observation?patient=p1&colour=blue"))
        .header("Prefer", "handling=lenient")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(body(resp).await["total"], 7);
    for bad in ["_count=lots", "_count=-1", "code=%zz", "date=yesterday", "patient=Group/g1"] {
        let resp = get(&format!("{base}/Observation?{bad}")).await;
        assert_eq!(resp.status(), 400, "{bad}");
        assert_eq!(body(resp).await["resourceType"], "OperationOutcome");
    }
    s.stop().await;
}

#[tokio::test]
async fn writes_are_refused() {
    let s = sim(SimulatorOptions::default()).await;
    let client = reqwest::Client::new();
    let base = s.base_url();
    for resp in [
        client.post(format!("{base}/Observation")).body("{}").send().await.unwrap(),
        client.put(format!("{base}/Patient/p1")).body("{}").send().await.unwrap(),
        client.delete(format!("{base}/Patient/p1")).send().await.unwrap(),
        client.post(base).body("{}").send().await.unwrap(),
    ] {
        assert_eq!(resp.status(), 405);
        assert_eq!(body(resp).await["resourceType"], "OperationOutcome");
    }
    assert_eq!(get(&format!("{base}/Patient/p1")).await.status(), 200, "nothing changed");
    let resp = get(&format!("{base}/Patient/p1/_history")).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(body(resp).await["issue"][0]["code"], "not-found");
    s.stop().await;
}
