//! Per-source call statistics: how many upstream requests a source adapter made, how many
//! failed, and how long they took (a fixed-bucket histogram). Lock-free counters read by
//! the metrics endpoint. It counts calls, never what they returned.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the latency buckets; the last bucket is +Inf.
pub const LATENCY_BUCKETS: [f64; 9] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

#[derive(Debug, Default)]
pub struct SourceStats {
    requests: AtomicU64,
    errors: AtomicU64,
    latency_micros: AtomicU64,
    /// Observations per bucket (not cumulative); index `LATENCY_BUCKETS.len()` is +Inf.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
}

/// A consistent-enough copy for rendering.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsSnapshot {
    pub requests: u64,
    pub errors: u64,
    pub latency_sum_seconds: f64,
    /// Cumulative counts per bucket of [`LATENCY_BUCKETS`] (Prometheus `le` semantics).
    pub cumulative: Vec<u64>,
}

impl SourceStats {
    /// Records one upstream call (all its retries count as one call).
    pub fn observe(&self, took: Duration, ok: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.latency_micros.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        let slot = LATENCY_BUCKETS.iter().position(|b| secs <= *b).unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let mut running = 0;
        let cumulative = self.buckets[..LATENCY_BUCKETS.len()]
            .iter()
            .map(|b| {
                running += b.load(Ordering::Relaxed);
                running
            })
            .collect();
        StatsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            latency_sum_seconds: self.latency_micros.load(Ordering::Relaxed) as f64 / 1e6,
            cumulative,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_errors_counted() {
        let s = SourceStats::default();
        s.observe(Duration::from_millis(3), true);
        s.observe(Duration::from_millis(80), false);
        s.observe(Duration::from_secs(10), true);
        let snap = s.snapshot();
        assert_eq!((snap.requests, snap.errors), (3, 1));
        assert_eq!(snap.cumulative[0], 1, "3 ms is within 5 ms");
        assert_eq!(snap.cumulative[3], 1, "80 ms is not within 50 ms");
        assert_eq!(snap.cumulative[4], 2, "80 ms is within 100 ms");
        assert_eq!(*snap.cumulative.last().unwrap(), 2, "10 s is only in +Inf");
        assert!((snap.latency_sum_seconds - 10.083).abs() < 1e-6);
    }
}
