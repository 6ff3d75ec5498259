//! Imaging series through the gateway (issue 13 part 3, "ImagingStudy series (WADO-RS URLs
//! where the source gives them)"). The imaging system of the fixtures, served over HTTP by
//! the simulator, names a WADO-RS Endpoint for Bob's renal ultrasound; the simulator answers the series as
//! a PACS does (`multipart/related; type="application/dicom"`, after content negotiation).
//! The gateway serves the Endpoint with its own WADO-RS base as `address`; the series URL a
//! DICOMweb client builds from it gives the source's answer byte for byte, content type
//! (boundary included) kept — under the study's decision: a viewer the study is withheld
//! from, another person, a made-up series all get the same 404. A gateway started later on
//! the same database serves it to staff by URL alone.

use crate::common::*;
use portico::simulator::SimulatorOptions;

const BOB: &str = "imaging-test-bob-self-0123";
const BOB_LAB_APP: &str = "imaging-test-bob-lab-app-0123";
const MAYA: &str = "imaging-test-maya-self-0123";
const STUDY: &str = "2.25.4471902.1";
const SERIES: &str = "2.25.4471902.1.1";
const WADO_ACCEPT: &str = "multipart/related; type=\"application/dicom\"";

fn tokens() -> String {
    let lab_only = "patient/Observation.rs";
    format!(
        "[[server.dev_tokens]]\ntoken = {BOB:?}\nviewer = \"patient\"\npatient = \"ehr/pt-10001\"\n\
         [[server.dev_tokens]]\ntoken = {BOB_LAB_APP:?}\nviewer = \"patient\"\npatient = \"ehr/pt-10001\"\nscopes = {lab_only:?}\n\
         [[server.dev_tokens]]\ntoken = {MAYA:?}\nviewer = \"patient\"\npatient = \"ehr/pt-10007\"\n"
    )
}

async fn start(dir: std::sync::Arc<tempfile::TempDir>, imaging: &str) -> Gateway {
    let files: String = fixture_file_sources()
        .split("[[sources]]")
        .filter(|s| !s.trim().is_empty() && !s.contains("\"imaging\""))
        .map(|s| format!("[[sources]]{s}"))
        .collect();
    let imaging = rest_source("imaging", &display_of("imaging"), imaging, "");
    Gateway::start_in(dir, &format!("{}{files}{imaging}", tokens()), None).await
}

/// GET with a token and an Accept header: (status, content type, body).
async fn get(gw: &Gateway, url: &str, token: &str, accept: &str) -> (u16, String, Vec<u8>) {
    let r = gw.http.get(url).bearer_auth(token).header("accept", accept).send().await.unwrap();
    let status = r.status().as_u16();
    let content_type = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, content_type, r.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_series_passes_from_the_sources_wado_rs_under_the_studys_decision() {
    let sim = simulate("imaging", SimulatorOptions::default()).await;
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let gw = start(dir.clone(), sim.base_url()).await;
    let bob = gw.patient_id("ehr", "pt-10001");

    // The source, as a PACS: the series as DICOM instances, and 406 for what it cannot give.
    let at_source = format!("{}/wado-rs/studies/{STUDY}/series/{SERIES}", sim.base_url());
    let (status, source_type, source_body) = get(&gw, &at_source, "", WADO_ACCEPT).await;
    assert_eq!(status, 200);
    assert!(source_type.starts_with("multipart/related; type=\"application/dicom\"; boundary="), "{source_type}");
    assert_eq!(source_body.windows(4).filter(|w| w == b"DICM").count(), 3, "three instances");
    assert_eq!(get(&gw, &at_source, "", "application/dicom+json").await.0, 406);

    // Staff's $everything: the study, and the Endpoint with the gateway's WADO-RS base.
    let (record, _) = gw.all_pages(&format!("Patient/{bob}/$everything?_count=500")).await;
    let study =
        record.iter().find(|r| r["resourceType"] == "ImagingStudy" && r["id"] == "imaging.IMG.IS.00001").unwrap();
    assert_eq!(study["endpoint"][0]["reference"], "Endpoint/imaging.IMG.EP.00001", "{study}");
    let endpoint =
        record.iter().find(|r| r["resourceType"] == "Endpoint").expect("the study's Endpoint is in the record");
    let base = format!("{}/wado-rs/imaging.IMG.EP.00001", gw.fhir);
    assert_eq!(endpoint["address"], base.as_str());
    assert!(!endpoint.to_string().contains(sim.base_url()), "the source's address does not go out");
    let url = format!("{base}/studies/{STUDY}/series/{SERIES}");

    // Bob reads his study, and the series as the source gave it.
    let (status, read) = gw.get_with("Endpoint/imaging.IMG.EP.00001", Some(BOB), &[]).await;
    assert_eq!((status, read["address"].as_str()), (200, Some(base.as_str())), "{read}");
    let (status, content_type, body) = get(&gw, &url, BOB, WADO_ACCEPT).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(content_type, source_type, "the content type, boundary included, is kept");
    assert!(body == source_body, "byte for byte");
    assert!(String::from_utf8_lossy(&body).contains("2.25.4471902.1.1.3"));
    let (status, _, _) = get(&gw, &url, BOB, "*/*").await;
    assert_eq!(status, 200);
    let (status, _, refused) = get(&gw, &url, BOB, "application/dicom+json").await;
    assert_eq!(status, 406, "{}", String::from_utf8_lossy(&refused));

    // The withheld side: an app of Bob's with lab scopes only (the study is not released to
    // it), and Maya, whose record it is not, get exactly what a made-up series gets.
    let made_up = format!("{base}/studies/{STUDY}/series/2.25.999");
    let missing = get(&gw, &made_up, BOB, WADO_ACCEPT).await;
    assert_eq!(missing.0, 404);
    for token in [BOB_LAB_APP, MAYA] {
        assert_eq!(get(&gw, &url, token, WADO_ACCEPT).await, missing, "{token}");
        assert_eq!(get(&gw, &made_up, token, WADO_ACCEPT).await, missing, "{token}");
    }
    let other_endpoint = format!("{}/wado-rs/imaging.nothing/studies/{STUDY}/series/{SERIES}", gw.fhir);
    assert_eq!(get(&gw, &other_endpoint, BOB, WADO_ACCEPT).await, missing);
    assert_eq!(get(&gw, &url, "", WADO_ACCEPT).await.0, 401, "a token is needed");
    let write = gw.http.post(&url).bearer_auth(TOKEN).send().await.unwrap().status().as_u16();
    assert_eq!(write, 405);
    gw.stop().await;

    // A gateway started afterwards on the same database serves staff the series by its URL
    // alone (nothing of the record passed through it yet), and still not Maya.
    let cold = start(dir.clone(), sim.base_url()).await;
    let cold_url = url.replace(&gw_fhir_of(&url), &cold.fhir);
    let (status, content_type, body) = get(&cold, &cold_url, TOKEN, WADO_ACCEPT).await;
    assert_eq!((status, content_type.as_str()), (200, source_type.as_str()), "{}", String::from_utf8_lossy(&body));
    assert!(body == source_body);
    let cold_missing = get(&cold, &cold_url.replace(SERIES, "2.25.999"), TOKEN, WADO_ACCEPT).await;
    assert_eq!(cold_missing.0, 404);
    assert_eq!(get(&cold, &cold_url, MAYA, WADO_ACCEPT).await.0, 404);
    cold.stop().await;
}

/// The `…/fhir` an URL of the gateway starts with.
fn gw_fhir_of(url: &str) -> String {
    url[..url.find("/fhir/").unwrap() + 5].to_string()
}
