//! `/metrics`: requests by route template (never by path: no ids), per-source state and the
//! record cache, in Prometheus text format.

use crate::common::*;
use portico::simulator::SimulatorOptions;

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
    let audit = |measure: &str| -> u64 {
        let l = line(&format!("portico_audit_appends{{measure=\"{measure}\"}}")).expect(&text);
        l.rsplit(' ').next().unwrap().parse().unwrap()
    };
    // Two `$everything` and the refused read, each logged before its answer went out.
    assert!(audit("entries") >= 3, "{text}");
    assert!((1..=audit("entries")).contains(&audit("commits")), "{text}");
    assert!(audit("single_statements") <= audit("commits"), "{text}");
    assert!(line("portico_http_request_duration_seconds_count{route=\"/fhir/Patient/{id}/$everything\"}").is_some());
}

/// Per-source upstream calls, failures and latency, for sources read over HTTP.
#[tokio::test]
async fn metrics_count_upstream_calls_and_failures_per_source() {
    let ehr = simulate("ehr", SimulatorOptions::default()).await;
    let lab = simulate("lab", SimulatorOptions::default()).await;
    let body = format!(
        "[aggregate]\ncache_ttl = \"1ms\"\n{}{}",
        rest_source("ehr", "Harbor General Hospital", ehr.base_url(), ""),
        rest_source("lab", "Bayview Regional Reference Lab", lab.base_url(), "max_retries = 0")
    );
    let gw = Gateway::start(&body).await;
    let scrape = || async {
        let text = reqwest::get(format!("{}/metrics", gw.origin)).await.unwrap().text().await.unwrap();
        let value = |needle: &str| -> f64 {
            text.lines()
                .find(|l| l.starts_with(needle))
                .unwrap_or_else(|| panic!("{needle} missing in\n{text}"))
                .rsplit(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        (
            value("portico_source_requests_total{source=\"lab\"}"),
            value("portico_source_errors_total{source=\"lab\"}"),
            value("portico_source_errors_total{source=\"ehr\"}"),
            value("portico_source_request_duration_seconds_count{source=\"lab\"}"),
            value("portico_source_request_duration_seconds_bucket{source=\"lab\",le=\"+Inf\"}"),
        )
    };
    let (calls, errors, ehr_errors, count, inf) = scrape().await;
    assert!(calls >= 1.0, "the patient index read the lab");
    assert_eq!((errors, ehr_errors), (0.0, 0.0));
    assert_eq!((count, inf), (calls, calls), "every call is in the histogram");

    lab.controls().set_down(true);
    let p = gw.patient_id("ehr", "pt-10001");
    assert_eq!(gw.get(&format!("Patient/{p}/$everything")).await.0, 200);
    let (calls_after, errors_after, ehr_errors_after, _, _) = scrape().await;
    assert!(errors_after >= 1.0, "the lab's outage is counted");
    assert!(calls_after > calls);
    assert_eq!(ehr_errors_after, 0.0, "only the lab failed");
}
