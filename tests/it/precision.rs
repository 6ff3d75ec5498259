//! Exact pass-through (issue 13 part 6): FHIR decimals are arbitrary precision, so a number
//! a source wrote comes out exactly as written — digits, trailing zeros (`0.10` is not
//! `0.1`), integers beyond 64 bits — through a read, `$everything`, the whole-record
//! download's NDJSON and a Bulk Data `$export`. One spelling is normalised (serde_json's
//! parser does it, and no public API keeps the original): an exponent is written with a
//! lower-case `e` and a sign, so `1.0e2` comes out `1.0e+2` (not `100.0`: the digits and the
//! exponent are the source's). The sources are
//! a small made-up record over REST and a Synthea patient from the shared sample
//! (`../shared/data/synthea-r4`), whose geolocation latitudes have 17 significant digits.

use crate::bulk::client::{kick_off, wait, ASYNC, FHIR_JSON};
use crate::common::*;
use portico::simulator::SimulatorOptions;
use portico::sources::files::ResourceStore;
use serde_json::Value;
use std::sync::Arc;

const PARTNER: &str = "precision-hie-north-treat-token";

/// Numbers as the source writes them, and as they are served: a float round trip changes
/// every one of them (`…386`, `0.1`, `100.0`, `1.2345678901234568e29` …).
const NUMBERS: [(&str, &str); 6] = [
    ("19.630846485868382", "19.630846485868382"),
    ("-71.06291163", "-71.06291163"),
    ("1.0e2", "1.0e+2"),
    ("0.10", "0.10"),
    ("123456789012345678901234567890", "123456789012345678901234567890"),
    ("6.02214076E+23", "6.02214076e+23"),
];

/// The made-up record, as JSON text (so the numbers are exactly the literals above).
fn source_text() -> Vec<String> {
    let [lat, long, hundred, tenth, huge, avogadro] = NUMBERS.map(|(written, _)| written);
    vec![
        format!(
            r#"{{"resourceType":"Patient","id":"dec-1","name":[{{"family":"Decimal","given":["Dora"]}}],"birthDate":"1970-05-06","address":[{{"city":"Harborview","extension":[{{"url":"http://hl7.org/fhir/StructureDefinition/geolocation","extension":[{{"url":"latitude","valueDecimal":{lat}}},{{"url":"longitude","valueDecimal":{long}}}]}}]}}]}}"#
        ),
        format!(
            r#"{{"resourceType":"Observation","id":"dec-o1","status":"final","code":{{"coding":[{{"system":"http://loinc.org","code":"2345-7"}}]}},"subject":{{"reference":"Patient/dec-1"}},"effectiveDateTime":"2025-03-01","valueQuantity":{{"value":{tenth},"unit":"mg/dL"}},"referenceRange":[{{"low":{{"value":{hundred}}}}}]}}"#
        ),
        format!(
            r#"{{"resourceType":"Observation","id":"dec-o2","status":"final","code":{{"coding":[{{"system":"http://loinc.org","code":"8302-2"}}]}},"subject":{{"reference":"Patient/dec-1"}},"effectiveDateTime":"2025-03-02","component":[{{"code":{{"text":"count"}},"valueInteger":{huge}}},{{"code":{{"text":"ratio"}},"valueQuantity":{{"value":{avogadro}}}}}]}}"#
        ),
    ]
}

/// GET `url` with `token`: (status, body text).
async fn text(gw: &Gateway, url: &str, token: &str) -> (u16, String) {
    let resp = gw.http.get(url).bearer_auth(token).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Every number in `v`, as written.
fn numbers(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(a) => a.iter().for_each(|x| numbers(x, out)),
        Value::Object(m) => m.values().for_each(|x| numbers(x, out)),
        _ => {}
    }
}

fn assert_all_exact(what: &str, served: &str) {
    for (written, want) in NUMBERS {
        assert!(served.contains(want), "{what}: {written} is not served as {want}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_decimals_pass_through_read_everything_download_and_export_exactly() {
    let resources: Vec<Value> = source_text().iter().map(|t| serde_json::from_str(t).unwrap()).collect();
    let source_patient = resources[0].clone();
    let sim = simulate_store(ResourceStore::from_resources(resources), SimulatorOptions::default()).await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let body = format!(
        "[[server.dev_tokens]]\ntoken = \"{PARTNER}\"\nviewer = \"partner:hie-north:TREAT\"\n\
         [export]\ndirectory = {:?}\npoll_interval = \"100ms\"\n{}",
        dir.path().join("exports").display().to_string(),
        rest_source("decimals", "Decimal Hospital", sim.base_url(), "")
    );
    let gw = Gateway::start_in(dir.clone(), &body, None).await;
    let dora = gw.patient_id("decimals", "dec-1");

    // The source really sends them as written (the simulator is not where they change).
    let (status, sent) = text(&gw, &format!("{}/Observation?patient=dec-1", sim.base_url()), "").await;
    assert_eq!(status, 200);
    assert!(sent.contains("\"value\":0.10") && sent.contains("\"value\":1.0e+2"), "{sent}");

    // Read: the Patient's geolocation extension is the source's, number for number.
    let (status, read) = text(&gw, &format!("{}/Patient/{dora}", gw.fhir), TOKEN).await;
    assert_eq!(status, 200, "{read}");
    assert!(read.contains("19.630846485868382") && read.contains("-71.06291163"), "{read}");
    let read: Value = serde_json::from_str(&read).unwrap();
    assert_eq!(read["address"], source_patient["address"], "the address and its extension unchanged");
    assert_eq!(read["address"][0]["extension"][0]["extension"][0]["valueDecimal"].to_string(), "19.630846485868382");
    let (_, obs) = text(&gw, &format!("{}/Observation/decimals.dec-o1", gw.fhir), TOKEN).await;
    assert!(obs.contains("\"value\":0.10,") && obs.contains("\"value\":1.0e+2}"), "{obs}");

    // $everything (staff and a partner).
    for token in [TOKEN, PARTNER] {
        let (status, everything) = text(&gw, &format!("{}/Patient/{dora}/$everything", gw.fhir), token).await;
        assert_eq!(status, 200, "{everything}");
        assert_all_exact("$everything", &everything);
    }

    // The whole-record download: its NDJSON files.
    let resp = gw
        .http
        .get(format!("{}/Patient/{dora}/$everything?_format=zip", gw.fhir))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let files = unzip(&resp.bytes().await.unwrap());
    let ndjson: String = files.iter().filter(|(n, _)| n.ends_with(".ndjson")).map(|(_, t)| t.as_str()).collect();
    assert_all_exact("the download's NDJSON", &ndjson);

    // $export: the output files, byte for byte what the source wrote in those places.
    let (status, location, kicked) = kick_off(&gw, "$export", PARTNER, &[ASYNC, FHIR_JSON]).await;
    assert_eq!(status, 202, "{kicked}");
    let (manifest, _) = wait(&gw, &location.unwrap(), PARTNER).await;
    let mut exported = String::new();
    for o in manifest["output"].as_array().unwrap() {
        let (status, file) = text(&gw, o["url"].as_str().unwrap(), PARTNER).await;
        assert_eq!(status, 200);
        exported.push_str(&file);
    }
    assert_all_exact("$export", &exported);
    assert!(!exported.contains("0.1,") && !exported.contains("100.0"), "no rounded copy either");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synthea_patient_comes_out_with_every_number_as_written() {
    let file = root().join("../shared/data/synthea-r4/Darcy_Schmidt_af9d61c1-30b4-452b-9f07-abe1cb6d0a12.json");
    let raw = std::fs::read_to_string(&file).unwrap();
    assert!(raw.contains("42.508184665182135"), "the sample's 17-digit latitude");
    let resources = portico::sources::files::read_json_file(&file).unwrap();
    let patient = resources.iter().find(|r| r["resourceType"] == "Patient").unwrap().clone();
    let sim = simulate_store(
        ResourceStore::from_resources(resources.clone()),
        SimulatorOptions { page_size: 500, everything: true, ..SimulatorOptions::default() },
    )
    .await;
    let gw = Gateway::start(&rest_source("synthea", "Synthea EHR", sim.base_url(), "")).await;
    let darcy = gw.patient_id("synthea", patient["id"].as_str().unwrap());

    let (status, read) = text(&gw, &format!("{}/Patient/{darcy}", gw.fhir), TOKEN).await;
    assert_eq!(status, 200);
    assert!(read.contains("42.508184665182135") && read.contains("-71.09753992187838"), "{read}");
    let read: Value = serde_json::from_str(&read).unwrap();
    assert_eq!(read["address"], patient["address"], "geolocation exactly as the source wrote it");
    assert_eq!(read["extension"], patient["extension"], "the Synthea extensions too");

    // Every number of every resource of hers, as written (supporting resources are fetched
    // only when something points at them, so they are left out on both sides).
    let (served, outcomes) = gw.all_pages(&format!("Patient/{darcy}/$everything?_count=500")).await;
    assert!(outcomes.is_empty(), "{outcomes:?}");
    let hers = |r: &&Value| !portico::fhir::SUPPORTING_TYPES.contains(&r["resourceType"].as_str().unwrap());
    let mut want = Vec::new();
    resources.iter().filter(hers).for_each(|r| numbers(r, &mut want));
    let mut got = Vec::new();
    served.iter().filter(hers).for_each(|r| numbers(r, &mut got));
    want.sort();
    got.sort();
    assert!(want.len() > 100, "Synthea records are full of numbers: {}", want.len());
    assert_eq!(got, want, "the multiset of numbers is the source's");
}
