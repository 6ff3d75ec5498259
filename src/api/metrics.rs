//! Prometheus metrics at `/metrics`: requests and latencies by route template (never by
//! path, so no ids reach the metrics), per-source state from the circuit breakers, per-source
//! upstream calls, failures and latency (source_metrics), the record cache's hit rate and
//! size, the policy decisions kept for reuse, the access log's group commits, and bulk export
//! jobs. No patient data.

use super::ApiState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
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
    cached_records: prometheus::IntGauge,
    decisions: IntGaugeVec,
    audit_appends: IntGaugeVec,
    export_jobs: IntGaugeVec,
    export_units: prometheus::IntGauge,
    export_resources: prometheus::IntGauge,
}

impl Metrics {
    // Cannot fail: prometheus refuses only invalid or repeated metric and label names, and
    // these are fixed literals, valid and distinct (every test that builds a router runs this).
    #[allow(clippy::expect_used)]
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
        let cached_records =
            prometheus::IntGauge::new("portico_cached_records", "Records the record cache holds").expect("metric");
        let decisions = IntGaugeVec::new(
            Opts::new(
                "portico_kept_decisions",
                "Policy decisions kept for reuse, those kept to read one resource, and the resources the ones kept for whole answers hold",
            ),
            &["measure"],
        )
        .expect("metric");
        let audit_appends = IntGaugeVec::new(
            Opts::new(
                "portico_audit_appends",
                "Access log entries written by this process since start, and the commits that wrote them",
            ),
            &["measure"],
        )
        .expect("metric");
        let export_jobs = IntGaugeVec::new(
            Opts::new(
                "portico_export_jobs",
                "Bulk export jobs started, completed and failed by this process since start",
            ),
            &["event"],
        )
        .expect("metric");
        let export_units =
            prometheus::IntGauge::new("portico_export_units_in_flight", "Export work units this process is running")
                .expect("metric");
        let export_resources = prometheus::IntGauge::new(
            "portico_export_resources_written",
            "Resources written to export files by this process since start",
        )
        .expect("metric");
        for m in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(source_up.clone()),
            Box::new(source_failures.clone()),
            Box::new(cache.clone()),
            Box::new(cached_records.clone()),
            Box::new(decisions.clone()),
            Box::new(audit_appends.clone()),
            Box::new(export_jobs.clone()),
            Box::new(export_units.clone()),
            Box::new(export_resources.clone()),
        ] {
            registry.register(m).expect("unique metric");
        }
        Metrics {
            registry,
            requests,
            latency,
            source_up,
            source_failures,
            cache,
            cached_records,
            decisions,
            audit_appends,
            export_jobs,
            export_units,
            export_resources,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// A request method as a label: the standard ones by name, anything else `other` (so a
/// client cannot mint label values).
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// One request being counted and timed, by its route template (`unmatched` when no route
/// matched) and method (see [`super::front`]).
pub struct Tracked {
    route: Option<MatchedPath>,
    method: &'static str,
    started: Instant,
}

impl Tracked {
    pub fn start(request: &Request) -> Tracked {
        Tracked {
            route: request.extensions().get::<MatchedPath>().cloned(),
            method: method_label(request.method()),
            started: Instant::now(),
        }
    }

    /// Counts the request with the status of its `response`, and its time.
    pub fn finish(self, state: &ApiState, response: &Response) {
        let route = self.route.as_ref().map_or("unmatched", MatchedPath::as_str);
        state.metrics.latency.with_label_values(&[route]).observe(self.started.elapsed().as_secs_f64());
        state.metrics.requests.with_label_values(&[route, self.method, response.status().as_str()]).inc();
    }
}

pub async fn render(State(state): State<Arc<ApiState>>) -> Response {
    let m = &state.metrics;
    for status in state.gauges.sources() {
        m.source_up.with_label_values(&[&status.name]).set(i64::from(status.state != "down"));
        m.source_failures.with_label_values(&[&status.name]).set(i64::from(status.consecutive_failures));
    }
    let (hits, misses) = state.gauges.cache();
    m.cache.with_label_values(&["hit"]).set(hits as i64);
    m.cache.with_label_values(&["miss"]).set(misses as i64);
    m.cached_records.set(state.gauges.cached_records().await as i64);
    let (decisions, resources, for_one) = state.reader.decisions_held().await;
    m.decisions.with_label_values(&["decisions"]).set(decisions as i64);
    m.decisions.with_label_values(&["resources"]).set(resources as i64);
    m.decisions.with_label_values(&["for_one_read"]).set(for_one as i64);
    let audit = state.reader.audit_stats();
    m.audit_appends.with_label_values(&["entries"]).set(audit.entries as i64);
    m.audit_appends.with_label_values(&["commits"]).set(audit.commits as i64);
    m.audit_appends.with_label_values(&["single_statements"]).set(audit.single_statements as i64);
    let x = state.exports.stats();
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed) as i64;
    m.export_jobs.with_label_values(&["started"]).set(load(&x.jobs_started));
    m.export_jobs.with_label_values(&["completed"]).set(load(&x.jobs_completed));
    m.export_jobs.with_label_values(&["failed"]).set(load(&x.jobs_failed));
    m.export_units.set(x.units_in_flight.load(std::sync::atomic::Ordering::Relaxed));
    m.export_resources.set(load(&x.resources_written));
    let mut out = Vec::new();
    let encoder = TextEncoder::new();
    let mut families = m.registry.gather();
    families.extend(super::source_metrics::families(&state.gauges.calls()));
    if let Err(e) = encoder.encode(&families, &mut out) {
        tracing::error!(error = %e, "metrics could not be encoded");
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    ([(header::CONTENT_TYPE, encoder.format_type().to_string())], out).into_response()
}
