//! Prometheus metrics at `/metrics`: requests and latencies by route template (never by
//! path, so no ids reach the metrics), per-source state from the circuit breakers, per-source
//! upstream calls, failures and latency (source_metrics), and the
//! record cache's hit rate. No patient data.

use super::ApiState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};
use std::sync::Arc;
use std::time::Instant;

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    source_up: IntGaugeVec,
    source_failures: IntGaugeVec,
    cache: IntGaugeVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("portico_http_requests_total", "HTTP requests by route, method and status"),
            &["route", "method", "status"],
        )
        .expect("metric");
        let latency = HistogramVec::new(
            HistogramOpts::new("portico_http_request_duration_seconds", "HTTP request latency by route"),
            &["route"],
        )
        .expect("metric");
        let source_up =
            IntGaugeVec::new(Opts::new("portico_source_up", "1 when a source's circuit is closed"), &["source"])
                .expect("metric");
        let source_failures = IntGaugeVec::new(
            Opts::new("portico_source_consecutive_failures", "Consecutive failures of a source"),
            &["source"],
        )
        .expect("metric");
        let cache = IntGaugeVec::new(
            Opts::new("portico_record_cache_lookups", "Record cache lookups since start"),
            &["result"],
        )
        .expect("metric");
        for m in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(source_up.clone()),
            Box::new(source_failures.clone()),
            Box::new(cache.clone()),
        ] {
            registry.register(m).expect("unique metric");
        }
        Metrics { registry, requests, latency, source_up, source_failures, cache }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Counts and times every request by its route template.
pub async fn track(State(state): State<Arc<ApiState>>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_string();
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.latency.with_label_values(&[&route]).observe(started.elapsed().as_secs_f64());
    state.metrics.requests.with_label_values(&[&route, &method, response.status().as_str()]).inc();
    response
}

pub async fn render(State(state): State<Arc<ApiState>>) -> Response {
    let m = &state.metrics;
    for s in state.aggregator.sources() {
        let status = s.status();
        m.source_up.with_label_values(&[&status.name]).set(i64::from(status.state != "down"));
        m.source_failures.with_label_values(&[&status.name]).set(i64::from(status.consecutive_failures));
    }
    let (hits, misses) = state.aggregator.cache_stats();
    m.cache.with_label_values(&["hit"]).set(hits as i64);
    m.cache.with_label_values(&["miss"]).set(misses as i64);
    let mut out = Vec::new();
    let encoder = TextEncoder::new();
    let mut families = m.registry.gather();
    families.extend(super::source_metrics::families(state.aggregator.sources()));
    if encoder.encode(&families, &mut out).is_err() {
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    ([(header::CONTENT_TYPE, encoder.format_type().to_string())], out).into_response()
}
