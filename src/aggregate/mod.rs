//! Aggregation: gathers one person's resources from every source that holds them, within
//! one deadline, merges them ([`merge`]) and caches the record (moka, TTL and size from
//! config; a record an export reads once, [`Reuse::Once`], is not cached). Each source's part
//! is gathered in a task of its own and read by the label rules as it arrives, so that after
//! the slowest source answers only its part, the merge and the labels are left to do. A
//! source that fails or misses the deadline yields a partial record that says which source is
//! missing; it never hangs and never fails the whole record. It applies no policy: a
//! [`Record`] is everything, labelled (the labels are facts about the data), before any
//! viewer's rules. For a system- or Group-level export job, a source that offers Bulk Data
//! `$export` is asked for its own export once ([`source_export`]), spilled grouped by person
//! ([`spill`]), and each person's part of it built from the spill; the merge, labels and
//! everything after are the same.

mod gather;
mod gauges;
mod locality;
pub mod merge;
pub mod provenance;
pub mod source_export;
pub mod spill;

use gather::Plan;
pub use gauges::{Gauges, SourceCalls, SourceReport};

use crate::fhir::{self, reference};
use crate::identity::PatientIndex;
use crate::sources::{Offer, SharedSource, SourceError};
use moka::future::Cache;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// A source that could not give its part of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingSource {
    pub source: String,
    pub display: String,
    pub reason: String,
}

/// Whether a record gathered now is kept for the next request ([`Aggregator::record_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// Kept in the record cache (and its resources' homes noted) for the cache's TTL.
    Cached,
    /// Read once — an export job's or a prepared download's pass over many people: kept by
    /// no one, so that a pass over a whole population neither evicts what interactive readers
    /// use nor holds its records longer than it writes them (a record already cached is
    /// still used).
    Once,
}

/// One person's aggregated resources, before policy.
#[derive(Debug)]
pub struct Record {
    pub patient_id: String,
    /// Patient first, then by type and id ([`merge::sort_key`]).
    pub resources: Vec<Value>,
    /// `Type/id` → index in `resources`, dropped duplicates' ids included.
    positions: HashMap<String, usize>,
    /// Sources whose part is missing or incomplete.
    pub missing: Vec<MissingSource>,
    /// Per `Type/id`, the ids of the label rules that labelled it.
    pub label_rules: BTreeMap<String, Vec<String>>,
    /// Per resource, the resources of the record its references name ([`Record::references`]).
    references: std::sync::OnceLock<Vec<Vec<u32>>>,
    /// Per resource, its key and labels ([`Record::facts`]).
    facts: std::sync::OnceLock<Vec<Facts>>,
    /// Set once a reader noted where this record's attachments live: a home is only where to
    /// look (content is served only where a released view names it), so it is noted once per
    /// record, not for every decision over it.
    pub attachments_noted: tokio::sync::OnceCell<()>,
}

/// What every decision reads of one resource of a record: its gateway `Type/id` and its
/// security labels (as [`crate::label::labels_of`] reads them).
#[derive(Debug)]
pub struct Facts {
    /// `Type/id` (an empty part where the resource has none).
    pub key: String,
    type_end: usize,
    pub labels: BTreeSet<String>,
}

impl Facts {
    fn of(r: &Value) -> Facts {
        let t = fhir::resource_type(r).unwrap_or_default();
        Facts {
            key: format!("{t}/{}", fhir::resource_id(r).unwrap_or_default()),
            type_end: t.len(),
            labels: crate::label::labels_of(r),
        }
    }

    /// The resource's type (empty when it has none).
    pub fn resource_type(&self) -> &str {
        &self.key[..self.type_end]
    }
}

impl Record {
    pub(crate) fn new(
        patient_id: String,
        resources: Vec<Value>,
        aliases: HashMap<String, String>,
        missing: Vec<MissingSource>,
        label_rules: BTreeMap<String, Vec<String>>,
    ) -> Record {
        let mut positions: HashMap<String, usize> = resources
            .iter()
            .enumerate()
            .filter_map(|(i, r)| Some((format!("{}/{}", fhir::resource_type(r)?, fhir::resource_id(r)?), i)))
            .collect();
        for (alias, kept) in aliases {
            if let Some(&i) = positions.get(&kept) {
                positions.insert(alias, i);
            }
        }
        Record {
            patient_id,
            resources,
            positions,
            missing,
            label_rules,
            references: Default::default(),
            facts: Default::default(),
            attachments_noted: Default::default(),
        }
    }

    /// A resource of the record by gateway `Type/id`.
    pub fn get(&self, resource_type: &str, id: &str) -> Option<&Value> {
        self.index_of(resource_type, id).map(|i| &self.resources[i])
    }

    /// Where gateway `Type/id` is in `resources` (a dropped duplicate's id names the
    /// resource kept for it).
    pub fn index_of(&self, resource_type: &str, id: &str) -> Option<usize> {
        self.positions.get(&format!("{resource_type}/{id}")).copied()
    }

    /// For each resource (by index), the indexes of the resources its references name by
    /// their own `Type/id`, each once, ascending. Worked out on the first
    /// call and kept with the record: every viewer's decision follows the same references.
    pub fn references(&self) -> &[Vec<u32>] {
        self.references.get_or_init(|| {
            // A key with an empty part (no type or id) is named by no reference.
            let own: HashMap<&str, u32> = self
                .facts()
                .iter()
                .enumerate()
                .filter_map(|(i, f)| Some((f.key.as_str(), u32::try_from(i).ok()?)))
                .collect();
            let mut key = String::new();
            self.resources
                .iter()
                .map(|r| {
                    let mut named: Vec<u32> = Vec::new();
                    reference::for_each(r, &mut |target| {
                        let Some((t, id)) = reference::parse(target) else { return };
                        key.clear();
                        key.push_str(t);
                        key.push('/');
                        key.push_str(id);
                        if let Some(&j) = own.get(key.as_str()) {
                            named.push(j);
                        }
                    });
                    named.sort_unstable();
                    named.dedup();
                    named
                })
                .collect()
        })
    }

    /// Each resource's key and labels, by index: read from the resources on the first call
    /// and kept with the record, which every viewer's decision reads again.
    pub fn facts(&self) -> &[Facts] {
        self.facts.get_or_init(|| self.resources.iter().map(Facts::of).collect())
    }

    pub fn patient(&self) -> Option<&Value> {
        self.resources.first().filter(|r| fhir::resource_type(r) == Some("Patient"))
    }

    /// Every `Type/id` the record answers to (dropped duplicates' ids included) and the
    /// index of the resource it names.
    pub fn keys(&self) -> impl Iterator<Item = (&str, usize)> {
        self.positions.iter().map(|(k, &i)| (k.as_str(), i))
    }

    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AggregateError {
    #[error("no patient with this id")]
    UnknownPatient,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// What the labeling step found in one resource as its source sent it ([`Labelling::find`]):
/// the ids (the labeller's own numbering) of the rules that match it, each with whether it
/// matched by words only. Aggregation only carries it from the source's answer to the
/// merged resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings(pub Vec<(usize, bool)>);

/// The labeling step a record goes through (the security labeling service implements it):
/// the rules are matched on each source's resources as that source's answer arrives, while
/// slower sources are still answering, and the labels are added to the merged record. Aggregation
/// holds one of these, not the labeller itself, so that this module never imports the steps
/// after it on the road.
pub trait Labelling: Send + Sync {
    /// What the rules find in one resource before merging (they read only what merging
    /// does not change).
    fn find(&self, resource: &Value) -> Findings;
    /// Labels one merged record in place, `findings[i]` being what [`Labelling::find`] found
    /// in `resources[i]` (`None`, or none at all, and it is found now); per `Type/id`, what
    /// labelled each resource.
    fn label(&self, resources: &mut [Value], findings: &[Option<Findings>]) -> BTreeMap<String, Vec<String>>;
}

pub struct Aggregator {
    sources: Vec<SharedSource>,
    labeler: Arc<dyn Labelling>,
    index: Arc<PatientIndex>,
    /// `aggregate.resource_types`, when configured.
    configured: Option<Vec<String>>,
    /// Per source, what its CapabilityStatement last said it offers.
    offers: std::sync::RwLock<HashMap<String, Offer>>,
    /// Per source, what it holds that the gateway does not serve: type → how many (when
    /// the source can say).
    unserved: std::sync::RwLock<BTreeMap<String, BTreeMap<String, Option<usize>>>>,
    deadline: Duration,
    /// The record cache's time to live and size (`aggregate.cache_ttl`, `cache_max_records`).
    cache_ttl: Duration,
    max_records: u64,
    cache: Cache<String, Arc<Record>>,
    /// Where a resource lives: gateway `Type/id` → gateway patient id.
    homes: Cache<String, String>,
    /// Record cache hits and misses, for `/metrics`.
    hits: std::sync::atomic::AtomicU64,
    misses: std::sync::atomic::AtomicU64,
}

impl Aggregator {
    pub fn new(
        sources: Vec<SharedSource>,
        labeler: Arc<dyn Labelling>,
        index: Arc<PatientIndex>,
        configured: Option<Vec<String>>,
        deadline: Duration,
        ttl: Duration,
        max_records: u64,
    ) -> Self {
        Aggregator {
            sources,
            labeler,
            index,
            configured,
            offers: Default::default(),
            unserved: Default::default(),
            deadline,
            cache_ttl: ttl,
            max_records,
            cache: Cache::builder().time_to_live(ttl).max_capacity(max_records).build(),
            hits: Default::default(),
            misses: Default::default(),
            homes: Cache::builder()
                .max_capacity(max_records.saturating_mul(200))
                .time_to_live(ttl.max(Duration::from_secs(600)))
                .build(),
        }
    }

    /// Has `dropped` called with a patient's id whenever the record cache lets their record
    /// go (expired, replaced by newer data, invalidated, or evicted for room), so that what is
    /// kept over a record elsewhere does not keep it alive. Set before any record is cached.
    pub fn on_record_dropped<F, Fut>(mut self, dropped: F) -> Aggregator
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.cache = Cache::builder()
            .time_to_live(self.cache_ttl)
            .max_capacity(self.max_records)
            .async_eviction_listener(move |patient: Arc<String>, _, _| Box::pin(dropped(patient.as_ref().clone())))
            .build();
        self
    }

    /// Whether the record cache holds `record` itself now (a partial record, one read once,
    /// or any record of a gateway that caches none is not held).
    pub async fn holds(&self, record: &Arc<Record>) -> bool {
        self.max_records > 0 && self.cache.get(&record.patient_id).await.is_some_and(|r| Arc::ptr_eq(&r, record))
    }

    /// Record cache (hits, misses) since start.
    pub fn cache_stats(&self) -> (u64, u64) {
        (self.hits.load(std::sync::atomic::Ordering::Relaxed), self.misses.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// How many records the record cache holds now.
    pub async fn cached_records(&self) -> u64 {
        self.cache.run_pending_tasks().await;
        self.cache.entry_count()
    }

    pub fn sources(&self) -> &[SharedSource] {
        &self.sources
    }

    pub fn index(&self) -> &Arc<PatientIndex> {
        &self.index
    }

    /// The record of gateway patient `patient_id`, from cache or gathered now.
    pub async fn record(&self, patient_id: &str) -> Result<Arc<Record>, AggregateError> {
        let link = self.index.resolve(patient_id).await?.ok_or(AggregateError::UnknownPatient)?;
        self.record_of(link, None, Reuse::Cached).await
    }

    /// The record of a link the caller has just resolved (the read path resolves it once);
    /// the parts of the sources in `spilled` come from their spilled exports instead of
    /// searching them; `reuse` says whether a record gathered now is kept.
    pub async fn record_of(
        &self,
        link: crate::identity::PatientLink,
        spilled: Option<(&spill::Spill, &spill::Spilled)>,
        reuse: Reuse,
    ) -> Result<Arc<Record>, AggregateError> {
        let deadline = Instant::now() + self.deadline;
        // The person is looked up in sources that list no patients before the cache is
        // asked: a record kept from before a lookup found more would be partial.
        let (link, unlooked) = self.index.person_of(link, deadline).await?.ok_or(AggregateError::UnknownPatient)?;
        if let Some(hit) = self.cache.get(&link.gateway_id).await {
            self.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(hit);
        }
        self.misses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut members: HashMap<&str, Vec<String>> = HashMap::new();
        for m in &link.members {
            members.entry(m.source.as_str()).or_default().push(m.source_patient_id.clone());
        }
        // Each source's part is fetched, read and matched against the label rules in a task
        // of its own as its answer arrives, in parallel with the others (and on another core),
        // so that after the slowest source answers only its own part, the merge and the
        // labels themselves are left. A task is ended if the record is no longer wanted.
        let work = self.sources.iter().filter_map(|s| {
            let ids = members.get(s.name())?;
            let plan = self.plan(s.name());
            let labeler = self.labeler.clone();
            Some(async move {
                match spilled {
                    Some((store, job)) if job.sources.contains(s.name()) => {
                        let read_missing = job.compartments_only.contains(s.name()).then_some(deadline);
                        let (f, problems) =
                            gather::from_spill(s.clone(), ids.clone(), plan, store, &job.job_id, read_missing).await;
                        let findings = f.resources.iter().map(|r| labeler.find(r)).collect();
                        (f, problems, findings)
                    }
                    _ => {
                        let (source, ids) = (s.clone(), ids.clone());
                        let task = gather::Task(tokio::spawn(async move {
                            let (f, problems) = gather::gather(source, ids, plan, deadline).await;
                            let findings = f.resources.iter().map(|r| labeler.find(r)).collect::<Vec<_>>();
                            (f, problems, findings)
                        }));
                        task.join(s).await
                    }
                }
            })
        });
        let results = futures::future::join_all(work).await;
        let mut fetched = Vec::new();
        let mut missing: Vec<MissingSource> = self
            .index
            .unread_sources()
            .into_iter()
            .chain(unlooked)
            .filter(|s| !members.contains_key(s.as_str()))
            .filter_map(|s| self.sources.iter().find(|x| x.name() == s))
            .map(|s| MissingSource {
                source: s.name().to_string(),
                display: s.display().to_string(),
                reason: "could not be searched for this person's records".to_string(),
            })
            .collect();
        let mut findings: Vec<Vec<Option<Findings>>> = Vec::new();
        for (f, problems, found) in results {
            if let Some(reason) = summarize(&problems) {
                missing.push(MissingSource { source: f.source.clone(), display: f.display.clone(), reason });
            }
            fetched.push(f);
            findings.push(found.into_iter().map(Some).collect());
        }
        let (merged, aliases) = merge::merge_owned(&link.gateway_id, fetched);
        let (mut resources, found): (Vec<Value>, Vec<Option<Findings>>) = merged
            .into_iter()
            .map(|(r, (si, ri))| (r, findings.get_mut(si).and_then(|f| f.get_mut(ri)).and_then(Option::take)))
            .unzip();
        let label_rules = self.labeler.label(&mut resources, &found);
        let record = Arc::new(Record::new(link.gateway_id.clone(), resources, aliases, missing, label_rules));
        if !record.is_complete() {
            tracing::warn!(patient = %link.gateway_id, missing = record.missing.len(), "partial record");
        }
        if reuse == Reuse::Cached {
            for key in record.positions.keys() {
                self.homes.insert(key.clone(), link.gateway_id.clone()).await;
            }
            if record.is_complete() {
                self.cache.insert(link.gateway_id.clone(), record.clone()).await;
            }
        }
        Ok(record)
    }

    /// The gateway patient whose record holds `Type/id`, if known or discoverable: from
    /// records already gathered, else by asking the source named in the id which patient the
    /// resource (or, for a Provenance, its target) belongs to.
    pub async fn locate(&self, resource_type: &str, id: &str) -> Option<String> {
        if let Some(home) = self.homes.get(&format!("{resource_type}/{id}")).await {
            return Some(home);
        }
        let (source, source_id) = self.source_of(id)?;
        let deadline = Instant::now() + self.deadline;
        let mut found =
            source.read_many(resource_type, &[source_id.to_string()], deadline).await.ok()?.into_iter().next()?;
        if let Some(base) = source.base_url() {
            reference::localize(&mut found, base);
        }
        let candidates: Vec<String> = if resource_type == "Provenance" {
            fhir::path_values(&found, "target")
                .into_iter()
                .filter_map(|t| t.get("reference").and_then(Value::as_str).map(str::to_string))
                .collect()
        } else {
            fhir::compartment::patients_of(&found, resource_type).into_iter().map(|p| format!("Patient/{p}")).collect()
        };
        for reference in candidates {
            let Some((t, rid)) = reference::parse_local(&reference, None) else { continue };
            let patient = match t {
                "Patient" => Some(rid.to_string()),
                t if fhir::compartment::get(t).is_some() => {
                    let target =
                        source.read_many(t, &[rid.to_string()], deadline).await.ok().and_then(|v| v.into_iter().next());
                    target.as_ref().and_then(|r| {
                        fhir::compartment::patients_of(r, t).first().map(std::string::ToString::to_string)
                    })
                }
                _ => None,
            };
            let Some(patient) = patient else { continue };
            if let Ok(Some(gid)) = self.index.member(source.name(), &patient, deadline).await {
                return Some(gid);
            }
        }
        None
    }

    /// A supporting resource (Practitioner, Organization, Location …) read on its own from
    /// the source named in its gateway id, when no gathered record holds it.
    pub async fn standalone(&self, resource_type: &str, id: &str) -> Option<Value> {
        if !fhir::SUPPORTING_TYPES.contains(&resource_type) {
            return None;
        }
        let (source, source_id) = self.source_of(id)?;
        let deadline = Instant::now() + self.deadline;
        let mut found =
            source.read_many(resource_type, &[source_id.to_string()], deadline).await.ok()?.into_iter().next()?;
        if let Some(base) = source.base_url() {
            reference::localize(&mut found, base);
        }
        merge::standalone(source.name(), source.display(), found)
    }

    /// The source and source id named by a gateway id `{source}.{id}`.
    fn source_of<'a>(&self, id: &'a str) -> Option<(&SharedSource, &'a str)> {
        let (source_name, source_id) = provenance::split_gateway_id(id)?;
        Some((self.sources.iter().find(|s| s.name() == source_name)?, source_id))
    }

    /// What to ask source `name` for ([`Plan`]). From its CapabilityStatement when known:
    /// `Patient/{id}/$everything` when it offers that, else a search per compartment type it
    /// declares with a usable patient parameter (Provenance brought along by
    /// `_revinclude=Provenance:target` instead of its own search when the Patient and every
    /// such type offer it); within `aggregate.resource_types` when configured. Else the
    /// configured or US Core types, searched one by one.
    fn plan(&self, name: &str) -> Plan {
        let offers = self.offers.read().ok();
        match offers.as_ref().and_then(|o| o.get(name)) {
            Some(offer) => {
                // `$everything` answers the whole compartment, searchable type or not.
                let types: Vec<String> = fhir::compartment::type_names()
                    .filter(|t| offer.everything || offer.patient_param(t).is_some())
                    .filter(|t| self.configured.as_ref().is_none_or(|c| c.iter().any(|x| x == t)))
                    .map(str::to_string)
                    .collect();
                let referenced = fhir::REFERENCED_TYPES.iter().copied().filter(|t| offer.offers(t)).collect();
                let provenance_by_revinclude = types.iter().any(|t| t == "Provenance")
                    && offer.revincludes_provenance("Patient")
                    && types.iter().filter(|t| *t != "Provenance").all(|t| offer.revincludes_provenance(t));
                Plan { everything: offer.everything, types, referenced, provenance_by_revinclude }
            }
            None => {
                let types = match &self.configured {
                    Some(c) => c.clone(),
                    None => fhir::PATIENT_COMPARTMENT_TYPES.iter().map(std::string::ToString::to_string).collect(),
                };
                Plan {
                    everything: false,
                    types,
                    referenced: fhir::SUPPORTING_TYPES.to_vec(),
                    provenance_by_revinclude: false,
                }
            }
        }
    }

    /// Reads every source's CapabilityStatement (at start, then with the index refresh) and
    /// counts what each holds that the gateway does not serve. A source that cannot be read
    /// keeps what was known of it (or the configured types) and is named in the answer so
    /// the caller retries sooner; it never stops the gateway.
    pub async fn refresh_offers(&self, deadline: Instant) -> Vec<(String, SourceError)> {
        let mut failed = Vec::new();
        for source in &self.sources {
            let offer = match source.offer(deadline).await {
                Ok(Some(offer)) => offer,
                Ok(None) => continue,
                Err(e) => {
                    failed.push((source.name().to_string(), e));
                    continue;
                }
            };
            let Plan { types: gathered, referenced, .. } = {
                if let Ok(mut offers) = self.offers.write() {
                    offers.insert(source.name().to_string(), offer.clone());
                }
                self.plan(source.name())
            };
            let mut unserved = BTreeMap::new();
            for t in offer.types.keys() {
                let served = t == "Patient"
                    || gathered.contains(t)
                    || referenced.contains(&t.as_str())
                    || fhir::SUPPORTING_TYPES.contains(&t.as_str());
                if served {
                    continue;
                }
                match source.count(t, deadline).await {
                    Ok(Some(0)) => {}
                    Ok(n) => {
                        unserved.insert(t.clone(), n);
                    }
                    Err(_) => {
                        unserved.insert(t.clone(), None);
                    }
                }
            }
            for (t, n) in &unserved {
                tracing::warn!(source = source.name(), resource_type = %t, count = ?n, "source holds a type the gateway does not serve");
            }
            if let Ok(mut all) = self.unserved.write() {
                all.insert(source.name().to_string(), unserved);
            }
        }
        failed
    }

    /// The sources whose CapabilityStatement says they answer Bulk Data `$export` at system
    /// level (`group: false`) or at `Group/{id}/` level (`group: true`).
    pub fn bulk_sources(&self, group: bool) -> Vec<String> {
        let offers = self.offers.read().ok();
        self.sources
            .iter()
            .map(|s| s.name().to_string())
            .filter(|n| {
                offers.as_ref().and_then(|o| o.get(n)).is_some_and(|o| if group { o.group_bulk } else { o.bulk })
            })
            .collect()
    }

    /// Runs source `name`'s own Bulk Data export for job `job_id` into `spill` (system level,
    /// or its Group `group`), asking for the types gathered from it, `_since` passed through;
    /// how many resources were spilled.
    pub async fn export_source(
        &self,
        name: &str,
        spill: &spill::Spill,
        job_id: &str,
        group: Option<String>,
        since: Option<String>,
        deadline: Instant,
    ) -> Result<u64, source_export::SourceExportError> {
        let Some(source) = self.sources.iter().find(|s| s.name() == name) else {
            return Err(
                SourceError::BadResponse { source_name: name.to_string(), message: "not configured".into() }.into()
            );
        };
        let offer = self.offers.read().ok().and_then(|o| o.get(name).cloned()).unwrap_or_default();
        let ask = crate::sources::bulk::BulkAsk { group, types: self.plan(name).exported_types(&offer), since };
        source_export::run(source, spill, job_id, &ask, deadline).await
    }

    /// Sources whose CapabilityStatement is not known yet (to retry sooner).
    pub fn offers_unknown(&self) -> Vec<String> {
        let offers = self.offers.read().map(|o| o.keys().cloned().collect::<BTreeSet<_>>()).unwrap_or_default();
        self.sources.iter().map(|s| s.name().to_string()).filter(|s| !offers.contains(s)).collect()
    }

    /// Per source, what it declared that the gateway does not serve: type → count.
    pub fn unserved(&self) -> BTreeMap<String, BTreeMap<String, Option<usize>>> {
        self.unserved.read().map(|u| u.clone()).unwrap_or_default()
    }

    /// Per source, the types it is searched for per person.
    pub fn gathered_types(&self) -> BTreeMap<String, Vec<String>> {
        self.sources.iter().map(|s| (s.name().to_string(), self.plan(s.name()).types)).collect()
    }

    /// Drops a cached record (after new data or a policy change).
    pub async fn invalidate(&self, patient_id: &str) {
        self.cache.invalidate(patient_id).await;
    }
}

/// One line on what went wrong with a source, or `None` when nothing did.
fn summarize(problems: &[SourceError]) -> Option<String> {
    let first = problems.first()?;
    let reason = match first {
        SourceError::DeadlineExceeded { .. } => "did not answer in time".to_string(),
        SourceError::CircuitOpen { .. } => "is unavailable (recent failures)".to_string(),
        SourceError::Unavailable { message, .. } => format!("is unavailable ({message})"),
        SourceError::Auth { .. } | SourceError::Credentials { .. } => "refused the gateway's credentials".to_string(),
        SourceError::BadResponse { message, .. } => format!("answered unexpectedly ({message})"),
        SourceError::Files { problem, .. } => format!("could not be read ({problem})"),
    };
    Some(reason)
}
