//! What operators see of aggregation, as numbers: each source's breaker state and call
//! statistics, how many people the index holds, and the record cache's hits and misses.
//! A snapshot of counters only — it carries no patient data and no way to fetch any, so
//! health and metrics endpoints hold it instead of the aggregator.

use super::Aggregator;
use crate::sources::stats::StatsSnapshot;
use crate::sources::SourceStatus;
use std::sync::Arc;

/// The operators' view of the aggregator (cheap to clone).
#[derive(Clone)]
pub struct Gauges {
    aggregator: Arc<Aggregator>,
}

/// One source as staff see it in health and `portico sources`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SourceReport {
    pub name: String,
    pub display: String,
    pub state: &'static str,
    pub offer_known: bool,
    pub gathered: Vec<String>,
    pub not_served: std::collections::BTreeMap<String, Option<usize>>,
}

/// One source's upstream call statistics (sources that make no upstream calls have none).
pub struct SourceCalls {
    pub name: String,
    pub stats: StatsSnapshot,
}

impl Gauges {
    pub fn new(aggregator: Arc<Aggregator>) -> Gauges {
        Gauges { aggregator }
    }

    /// Each source's status as its circuit breaker sees it.
    pub fn sources(&self) -> Vec<SourceStatus> {
        self.aggregator.sources().iter().map(|s| s.status()).collect()
    }

    /// Upstream call statistics per source that makes upstream calls.
    pub fn calls(&self) -> Vec<SourceCalls> {
        self.aggregator
            .sources()
            .iter()
            .filter_map(|s| s.stats().map(|st| SourceCalls { name: s.name().to_string(), stats: st.snapshot() }))
            .collect()
    }

    /// How many people (linked records) the patient index holds.
    pub async fn patients_indexed(&self) -> Result<usize, crate::store::StoreError> {
        self.aggregator.index().people().await
    }

    /// Per source: its state, the types it is searched for per person, whether its
    /// CapabilityStatement is known, and what it holds that the gateway does not serve
    /// (type → count, `None` when the source cannot say). Type names and counts only.
    pub fn source_report(&self) -> Vec<SourceReport> {
        let unserved = self.aggregator.unserved();
        let unknown = self.aggregator.offers_unknown();
        let mut gathered = self.aggregator.gathered_types();
        self.aggregator
            .sources()
            .iter()
            .map(|s| {
                let status = s.status();
                SourceReport {
                    name: status.name,
                    display: status.display,
                    state: status.state,
                    offer_known: !unknown.iter().any(|u| u == s.name()),
                    gathered: gathered.remove(s.name()).unwrap_or_default(),
                    not_served: unserved.get(s.name()).cloned().unwrap_or_default(),
                }
            })
            .collect()
    }

    /// How many records the record cache holds.
    pub async fn cached_records(&self) -> u64 {
        self.aggregator.cached_records().await
    }

    /// The record cache's (hits, misses).
    pub fn cache(&self) -> (u64, u64) {
        self.aggregator.cache_stats()
    }
}
