//! Decisions already made: the released view of one gathered record for one viewer, reused
//! while nothing it was decided from can have changed — the very record the aggregator holds
//! (the same `Arc`, so new data is a new decision), the same viewer (role, actor, app
//! scopes), the same ledger (releases, preferences, consents), the same day in the policy's
//! zone (ages change by the day) — and never past the first moment a hold in it ends.
//! Apps and pages make many small requests over one record; each used to decide the whole
//! record again.
//!
//! With a decision it keeps what is derived from it alone: the released resources as they go
//! out, serialized once (`Rendered`) — so a warm page is assembled from bytes, and only the
//! viewer the decision was made for gets them.
//!
//! Decisions are kept two ways. One made for a whole answer (`$everything`, a search, a page)
//! is kept with what it renders and keeps its record alive, so they are bounded together by
//! the resources they hold. One made to read one resource by id finishes only that resource
//! and renders nothing else: it is kept apart, one per patient, only while the record cache
//! holds its record (the aggregator tells [`Decisions::forget`] when it lets a record go), so
//! it holds little beyond the record the cache holds anyway — a staff member or a partner
//! reading many people's resources one by one finds each person's decision again without
//! pushing out the whole answers. Used for a whole answer, it moves to the others.
//!
//! It must never hand a decision to another viewer, outlive the record or ledger it was made
//! from, or be used for a decision "as of" another time (staff's `explain`).

use super::released::{Rendered, RenderedOne};
use crate::aggregate::Record;
use crate::policy::holds::PatientLedger;
use crate::policy::{Explanation, Released, Viewer};
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use moka::future::Cache;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

/// Resources held across all cached decisions (each decision weighs its resource count).
/// A kept decision also keeps its record alive, so this bounds memory: about 20 KB per
/// resource with its record, its released copy and its rendered bytes (the export bench
/// measured 2.3 GB for 1,000 kept records of ~100 resources), so at most ~400 MB. Exports
/// and prepared downloads keep no decisions at all (`At::NowOnce` in the reader).
const MAX_RESOURCES: u64 = 20_000;
/// Decisions kept for reads of one resource, at most one per patient and only while the
/// record cache holds their records (so in practice no more than it holds records): each
/// holds its explanations and which resources it releases, about 150 bytes per resource of
/// its record, and the one resource it last sent as written.
const MAX_FOR_ONE: u64 = 10_000;
/// A decision is dropped this long after it was made even if nothing changed.
const TIME_TO_LIVE: Duration = Duration::from_secs(300);

/// What a decision is wanted for: a whole answer, or a read of one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wanted {
    Whole,
    One,
}

/// One viewer's decision over one record.
pub(super) struct Decided {
    key: Key,
    record: Arc<Record>,
    /// Kept with the whole answers (weighed by its resources): only then may it render them all.
    whole: AtomicBool,
    pub released: Arc<Released>,
    pub explanations: Arc<Vec<Explanation>>,
    /// The released resources as they go out, rendered on first use.
    rendered: OnceLock<Arc<Rendered>>,
    /// Reads of one resource answered before the whole record was rendered.
    single_reads: AtomicU32,
    /// The resource the last such read sent, as written (one, whatever the decision holds).
    last_one: Mutex<Option<Arc<RenderedOne>>>,
}

impl Decided {
    /// The released resources as they go out, rendered by `outward` the first time: each
    /// finished as a copy of its own (not a copy of the finished release, which is made only
    /// when asked for) and written.
    pub(super) fn rendered(&self, outward: impl Fn(Value) -> Value) -> Arc<Rendered> {
        self.rendered
            .get_or_init(|| {
                let written = |r: Value| serde_json::to_vec(&outward(r)).unwrap_or_default().into_boxed_slice();
                let json =
                    (0..self.released.len()).map(|n| self.released.one(n).map(written).unwrap_or_default()).collect();
                Arc::new(Rendered::new(self.released.clone(), json))
            })
            .clone()
    }

    /// The rendering for a read of one resource: the whole record's once it is rendered;
    /// for a decision kept for whole answers, rendered from its second such read on; none
    /// otherwise (the read renders only its resource: [`Decided::rendered_one`]). A decision
    /// kept for reads of one resource never renders the rest.
    pub(super) fn rendered_for_one(&self, outward: impl Fn(Value) -> Value) -> Option<Arc<Rendered>> {
        if let Some(rendered) = self.rendered.get() {
            return Some(rendered.clone());
        }
        if !self.whole.load(Ordering::Relaxed) {
            return None;
        }
        (self.single_reads.fetch_add(1, Ordering::Relaxed) > 0).then(|| self.rendered(outward))
    }

    /// Released resource `at` as it goes out (made so by `outward`) for a read of it alone:
    /// as written for the last such read when that was this one, else written now and kept in
    /// its place. None when there is no such resource.
    pub(super) fn rendered_one(&self, at: usize, outward: impl Fn(Value) -> Value) -> Option<Arc<RenderedOne>> {
        let last = || self.last_one.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(one) = last().as_ref().filter(|one| one.index == at) {
            return Some(one.clone());
        }
        let one = Arc::new(RenderedOne::new(at, &outward(self.released.one(at)?)));
        *last() = Some(one.clone());
        Some(one)
    }

    /// Runs `note` over the resources of the record this decision was made from, once per
    /// record whichever decisions are made over it (concurrent callers wait for the first).
    pub(super) async fn note_record_once<'a, F: std::future::Future<Output = ()>>(
        &'a self,
        note: impl FnOnce(&'a Record) -> F,
    ) {
        self.record.attachments_noted.get_or_init(|| note(&self.record)).await;
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    patient: String,
    viewer: String,
    ledger: String,
    day: NaiveDate,
}

impl Key {
    fn new(patient: &str, viewer: &Viewer, ledger: &PatientLedger, now: DateTime<Utc>, zone: FixedOffset) -> Key {
        let mut releases: Vec<&String> = ledger.releases.iter().collect();
        releases.sort();
        Key {
            patient: patient.to_string(),
            viewer: format!("{viewer:?}"),
            ledger: format!("{releases:?}|{:?}|{:?}", ledger.preferences, ledger.consents),
            day: now.with_timezone(&zone).date_naive(),
        }
    }
}

/// The shared cache of decisions (cheap to clone; one per app).
#[derive(Clone)]
pub struct Decisions {
    whole: Cache<Key, Arc<Decided>>,
    /// Per patient, the last decision made to read one resource of their record.
    for_one: Cache<String, Arc<Decided>>,
}

impl Default for Decisions {
    fn default() -> Decisions {
        Decisions {
            whole: Cache::builder()
                .max_capacity(MAX_RESOURCES)
                .weigher(|_, d: &Arc<Decided>| u32::try_from(d.released.len() + 1).unwrap_or(u32::MAX))
                .time_to_live(TIME_TO_LIVE)
                .build(),
            for_one: Cache::builder().max_capacity(MAX_FOR_ONE).time_to_live(TIME_TO_LIVE).build(),
        }
    }
}

/// What a decision is made from.
pub(super) struct Inputs<'a> {
    pub record: &'a Arc<Record>,
    pub viewer: &'a Viewer,
    pub ledger: &'a PatientLedger,
    pub now: DateTime<Utc>,
    pub zone: FixedOffset,
}

impl Decisions {
    /// How many decisions are kept, the resources the ones kept for whole answers hold, and
    /// how many are kept for reads of one resource (for `/metrics`).
    pub async fn held(&self) -> (u64, u64, u64) {
        self.whole.run_pending_tasks().await;
        self.for_one.run_pending_tasks().await;
        (self.whole.entry_count() + self.for_one.entry_count(), self.whole.weighted_size(), self.for_one.entry_count())
    }

    /// Drops what is kept for reads of one resource of `patient_id`'s record: the record
    /// cache let that record go, and nothing kept for one read may keep it alive.
    pub async fn forget(&self, patient_id: &str) {
        self.for_one.invalidate(patient_id).await;
    }

    /// The decision for `inputs` if one was made from exactly them and still holds at
    /// `inputs.now`. One kept for reads of one resource, found for a whole answer, is kept
    /// with the whole answers from now on.
    pub(super) async fn get(&self, inputs: &Inputs<'_>, wanted: Wanted) -> Option<Arc<Decided>> {
        let key = Key::new(&inputs.record.patient_id, inputs.viewer, inputs.ledger, inputs.now, inputs.zone);
        let current = |d: &Decided| {
            Arc::ptr_eq(&d.record, inputs.record) && d.released.changes_at().is_none_or(|at| inputs.now < at)
        };
        if let Some(hit) = self.whole.get(&key).await {
            if current(&hit) {
                return Some(hit);
            }
            self.whole.invalidate(&key).await;
        }
        let hit = self.for_one.get(&key.patient).await.filter(|d| d.key == key)?;
        if !current(&hit) {
            self.for_one.invalidate(&key.patient).await;
            return None;
        }
        if wanted == Wanted::Whole {
            hit.whole.store(true, Ordering::Relaxed);
            self.for_one.invalidate(&key.patient).await;
            self.whole.insert(key, hit.clone()).await;
        }
        Some(hit)
    }

    /// Keeps a decision made from `inputs` for what it was `wanted` for. The caller keeps
    /// only decisions over a record the record cache holds (another could never be found
    /// again: a record gathered anew is another record).
    pub(super) async fn keep(
        &self,
        inputs: &Inputs<'_>,
        released: Released,
        explanations: Vec<Explanation>,
        wanted: Wanted,
    ) -> Arc<Decided> {
        let key = Key::new(&inputs.record.patient_id, inputs.viewer, inputs.ledger, inputs.now, inputs.zone);
        let decided = Arc::new(Decided {
            key: key.clone(),
            record: inputs.record.clone(),
            whole: AtomicBool::new(wanted == Wanted::Whole),
            released: Arc::new(released),
            explanations: Arc::new(explanations),
            rendered: OnceLock::new(),
            single_reads: AtomicU32::new(0),
            last_one: Mutex::new(None),
        });
        match wanted {
            Wanted::Whole => self.whole.insert(key, decided.clone()).await,
            Wanted::One => self.for_one.insert(key.patient, decided.clone()).await,
        }
        decided
    }
}
