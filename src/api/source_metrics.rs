//! Per-source upstream metrics for `/metrics`: calls, failed calls and a latency histogram
//! for each source, read from the adapters' own counters at scrape time (labelled by the
//! source's configured name only). No patient data, no URLs.

use crate::sources::stats::LATENCY_BUCKETS;
use crate::aggregate::SourceCalls;
use prometheus::proto::{Bucket, Counter, Histogram, LabelPair, Metric, MetricFamily, MetricType};

fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.into());
    f.set_help(help.into());
    f.set_field_type(kind);
    f.set_metric(metrics);
    f
}

fn labelled(source: &str) -> Metric {
    let mut label = LabelPair::default();
    label.set_name("source".into());
    label.set_value(source.into());
    Metric::from_label(vec![label])
}

fn counter(source: &str, value: u64) -> Metric {
    let mut m = labelled(source);
    let mut c = Counter::default();
    c.set_value(value as f64);
    m.set_counter(c);
    m
}

/// The metric families for `sources` (empty for sources that make no upstream calls).
pub fn families(sources: &[SourceCalls]) -> Vec<MetricFamily> {
    let (mut calls, mut errors, mut latency) = (Vec::new(), Vec::new(), Vec::new());
    for s in sources {
        let snap = &s.stats;
        calls.push(counter(&s.name, snap.requests));
        errors.push(counter(&s.name, snap.errors));
        let mut h = Histogram::default();
        h.set_sample_count(snap.requests);
        h.set_sample_sum(snap.latency_sum_seconds);
        h.set_bucket(
            LATENCY_BUCKETS
                .iter()
                .zip(&snap.cumulative)
                .map(|(le, n)| {
                    let mut b = Bucket::default();
                    b.set_upper_bound(*le);
                    b.set_cumulative_count(*n);
                    b
                })
                .collect(),
        );
        let mut m = labelled(&s.name);
        m.set_histogram(h);
        latency.push(m);
    }
    if calls.is_empty() {
        return Vec::new();
    }
    vec![
        family("portico_source_requests_total", "Upstream calls per source", MetricType::COUNTER, calls),
        family("portico_source_errors_total", "Failed upstream calls per source", MetricType::COUNTER, errors),
        family(
            "portico_source_request_duration_seconds",
            "Upstream call latency per source (retries included)",
            MetricType::HISTOGRAM,
            latency,
        ),
    ]
}
