//! `/metrics`: requests by route template (never by path: no ids), per-source state and the
//! record cache, in Prometheus text format.

mod common;
use common::*;

#[tokio::test]
async fn metrics_count_routes_sources_and_cache_without_ids() {
    let gw = Gateway::start(&fixture_file_sources()).await;
    let p = gw.patient_id("ehr", "pt-10001");
    for _ in 0..2 {
        assert_eq!(gw.get(&format!("Patient/{p}/$everything")).await.0, 200);
    }
    assert_eq!(gw.get("Patient/pt-00000000000000000000").await.0, 404);
    let r = reqwest::get(format!("{}/metrics", gw.origin)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = r.text().await.unwrap();
    let line = |needle: &str| text.lines().find(|l| l.contains(needle) && !l.starts_with('#')).map(str::to_string);
    let everything =
        line("portico_http_requests_total{method=\"GET\",route=\"/fhir/Patient/{id}/$everything\",status=\"200\"}")
            .expect(&text);
    assert!(everything.ends_with(" 2"), "{everything}");
    assert!(line("route=\"/fhir/{resource_type}/{id}\",status=\"404\"").is_some(), "{text}");
    assert!(!text.contains(&p) && !text.contains("pt-0000"), "no ids in metrics");
    for s in ["ehr", "lab", "imaging", "behavioral"] {
        assert_eq!(
            line(&format!("portico_source_up{{source=\"{s}\"}}")).unwrap(),
            format!("portico_source_up{{source=\"{s}\"}} 1")
        );
    }
    let hits: u64 =
        line("portico_record_cache_lookups{result=\"hit\"}").unwrap().rsplit(' ').next().unwrap().parse().unwrap();
    assert!(hits >= 1, "the second $everything came from the cache");
    assert!(line("portico_http_request_duration_seconds_count{route=\"/fhir/Patient/{id}/$everything\"}").is_some());
}
