//! Reading sources into the index. A refresh asks each source for the Patients changed
//! since its last refresh (`Patient?_lastUpdated=gt…`; everything only the first time), a
//! page at a time, writing each page in short batches while the next is fetched, so a
//! replica holds a page, never a source's population; a source that refuses a listing
//! (HTTP 403 to an unparameterized Patient search, as Epic does) is marked lookup-only and
//! its people are looked up on demand — by identifier, and by birth date with family name —
//! when a person is first asked for (a record gathered, a Group member, a staff or
//! enrollment search). Every answer goes through the same [`super::rows::ingest`]. It never
//! holds a write transaction across a call to a source.

use super::matching::Demographics;
use super::{rows, IdentityError, PatientIndex, PatientLink};
use crate::sources::{SharedSource, SourceError};
use crate::store::StoreError;
use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use std::collections::{BTreeSet, HashMap};
use std::sync::PoisonError;
use tokio::time::Instant;

/// Records changed this long before a refresh started are asked for again by the next
/// one (clock skew between the gateway and a source); unchanged ones are skipped.
const OVERLAP: chrono::Duration = chrono::Duration::minutes(5);
/// Records written per transaction.
const BATCH: usize = 100;
/// Pages of one source's Patient listing followed at most in one refresh (a bound on a
/// source whose next links never end, not on the population: 100,000 pages).
const MAX_PAGES: usize = 100_000;

/// What reading one source brought: records read and changed, and how the listing ended.
struct SourceRead {
    patients_read: usize,
    changed: usize,
    outcome: Result<(), SourceError>,
}

/// What a refresh saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RebuildReport {
    /// Records the sources answered with.
    pub patients_read: usize,
    /// Of those, records new or changed since they were last read.
    pub changed: usize,
    /// People in the index afterwards.
    pub links: usize,
    /// Sources that could not be read (their earlier links were kept), with the error.
    pub failed_sources: Vec<(String, String)>,
    /// Sources that refuse to list their patients (looked up on demand).
    pub lookup_only: Vec<String>,
}

/// A listing refused outright: the source does not list its patients to anyone.
fn refuses_listing(e: &SourceError) -> bool {
    matches!(e, SourceError::Auth { status: 403, .. })
}

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl PatientIndex {
    /// Reads what changed in every source since its last refresh and links it, a page at
    /// a time (each page written before the next is asked for, so memory holds a page per
    /// source, whatever the population); a source that fails keeps its earlier links (and
    /// the pages already written) and is read from its old cursor again next time. Each
    /// call to a source has as long as the whole refresh had at its start (`deadline`): a
    /// listing of a large population takes many of them.
    pub async fn refresh(&self, sources: &[SharedSource], deadline: Instant) -> Result<RebuildReport, IdentityError> {
        let budget = deadline.saturating_duration_since(Instant::now());
        let cursors: HashMap<String, String> =
            sqlx::query("SELECT source, changed_since FROM index_sources WHERE changed_since IS NOT NULL")
                .fetch_all(&self.store.pool)
                .await?
                .into_iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
        let mut report = RebuildReport::default();
        let mut unread = Vec::new();
        for source in sources {
            let name = source.name();
            let started = Utc::now();
            let read = self.read_changes(source, cursors.get(name).map(String::as_str), budget).await?;
            report.patients_read += read.patients_read;
            report.changed += read.changed;
            match read.outcome {
                Ok(()) => {
                    let cursor = (started - OVERLAP).to_rfc3339_opts(SecondsFormat::Secs, true);
                    self.mark_source(name, "listed", Some(&cursor)).await?;
                    self.lookup_only.write().unwrap_or_else(PoisonError::into_inner).remove(name);
                }
                Err(e) if refuses_listing(&e) => {
                    self.mark_source(name, "lookup", None).await?;
                    self.lookup_only.write().unwrap_or_else(PoisonError::into_inner).insert(name.to_string());
                    report.lookup_only.push(name.to_string());
                }
                Err(e) => {
                    report.failed_sources.push((name.to_string(), e.to_string()));
                    unread.push(name.to_string());
                }
            }
        }
        *self.unread.write().unwrap_or_else(PoisonError::into_inner) = unread;
        report.links = self.people().await?;
        Ok(report)
    }

    /// Pages through one source's Patients changed since `since` (all without it), writing
    /// each page while the next is fetched. A source that cannot answer `_lastUpdated` is
    /// listed in full. Store errors end the refresh; the source's own ends its listing.
    async fn read_changes(
        &self,
        source: &SharedSource,
        since: Option<&str>,
        budget: std::time::Duration,
    ) -> Result<SourceRead, StoreError> {
        let mut read = SourceRead { patients_read: 0, changed: 0, outcome: Ok(()) };
        let mut since = since;
        let mut page = match source.patients_changed_page(since, None, Instant::now() + budget).await {
            Err(SourceError::BadResponse { .. }) if since.is_some() => {
                since = None;
                source.patients_changed_page(None, None, Instant::now() + budget).await
            }
            other => other,
        };
        let mut pages = 0usize;
        loop {
            let current = match page {
                Ok(p) => p,
                Err(e) => {
                    read.outcome = Err(e);
                    return Ok(read);
                }
            };
            pages += 1;
            read.patients_read += current.patients.len();
            let Some(next) = current.next.filter(|_| pages < MAX_PAGES) else {
                read.changed += self.ingest_all(source.name(), &current.patients).await?;
                if pages >= MAX_PAGES {
                    read.outcome = Err(SourceError::BadResponse {
                        source_name: source.name().to_string(),
                        message: format!("Patient listing longer than {MAX_PAGES} pages"),
                    });
                }
                return Ok(read);
            };
            let (written, fetched) = futures::join!(
                self.ingest_all(source.name(), &current.patients),
                source.patients_changed_page(since, Some(&next), Instant::now() + budget)
            );
            read.changed += written?;
            page = fetched;
        }
    }

    /// Writes records read from `source`, a batch per transaction; how many changed.
    async fn ingest_all(&self, source: &str, patients: &[Value]) -> Result<usize, StoreError> {
        let now = now_text();
        let mut changed = 0;
        let patients: Vec<&Value> =
            patients.iter().filter(|p| crate::fhir::resource_type(p) == Some("Patient")).collect();
        for chunk in patients.chunks(BATCH) {
            let mut tx = self.store.begin_write().await?;
            rows::take_turn(&mut tx).await?;
            for patient in chunk {
                if rows::ingest(&mut tx, source, patient, &now).await? {
                    changed += 1;
                }
            }
            tx.commit().await?;
        }
        Ok(changed)
    }

    async fn mark_source(&self, source: &str, mode: &str, changed_since: Option<&str>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO index_sources (source, mode, changed_since, refreshed_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (source) DO UPDATE SET mode = $2, changed_since = $3, refreshed_at = $4",
        )
        .bind(source)
        .bind(mode)
        .bind(changed_since)
        .bind(now_text())
        .execute(&self.store.pool)
        .await?;
        Ok(())
    }

    /// Lookup-only sources not asked about `subject` within `lookup_again`.
    async fn pending(&self, subject: &str) -> Result<Vec<SharedSource>, StoreError> {
        let lookup_only = self.lookup_only_sources();
        if lookup_only.is_empty() {
            return Ok(Vec::new());
        }
        let fresh_after = (Utc::now() - chrono::Duration::from_std(self.lookup_again).unwrap_or_default())
            .to_rfc3339_opts(SecondsFormat::Secs, true);
        let asked: BTreeSet<String> =
            sqlx::query("SELECT source FROM index_lookups WHERE subject = $1 AND looked_at > $2")
                .bind(subject)
                .bind(&fresh_after)
                .fetch_all(&self.store.pool)
                .await?
                .into_iter()
                .map(|r| r.get(0))
                .collect();
        Ok(self
            .sources
            .iter()
            .filter(|s| lookup_only.contains(s.name()) && !asked.contains(s.name()))
            .cloned()
            .collect())
    }

    async fn looked_up(&self, source: &str, subjects: &BTreeSet<String>) -> Result<(), StoreError> {
        let now = now_text();
        for subject in subjects {
            sqlx::query(
                "INSERT INTO index_lookups (source, subject, looked_at) VALUES ($1, $2, $3)
                 ON CONFLICT (source, subject) DO UPDATE SET looked_at = $3",
            )
            .bind(source)
            .bind(subject)
            .bind(&now)
            .execute(&self.store.pool)
            .await?;
        }
        Ok(())
    }

    /// Runs each search in `source` and writes what it finds.
    async fn ask(
        &self,
        source: &SharedSource,
        searches: &BTreeSet<Vec<(&'static str, String)>>,
        deadline: Instant,
    ) -> Result<(), IdentityError> {
        let mut found: Vec<Value> = Vec::new();
        let mut seen = BTreeSet::new();
        for params in searches {
            let answer = match source.search_patients(params, deadline).await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(source = source.name(), error = %e, "patient index: on-demand lookup failed");
                    return Err(IdentityError::Lookup(source.name().to_string()));
                }
            };
            for p in answer {
                if crate::fhir::resource_id(&p).is_some_and(|id| seen.insert(id.to_string())) {
                    found.push(p);
                }
            }
        }
        self.ingest_all(source.name(), &found).await?;
        Ok(())
    }

    /// The link under `gateway_id` once the person has been looked up in every source that
    /// refuses listings and was not asked about them lately, with the sources whose lookup
    /// failed (the person's records there may be missing).
    pub async fn person(
        &self,
        gateway_id: &str,
        deadline: Instant,
    ) -> Result<Option<(PatientLink, Vec<String>)>, StoreError> {
        let Some(link) = self.resolve(gateway_id).await? else { return Ok(None) };
        self.person_of(link, deadline).await
    }

    /// [`PatientIndex::person`] for a link the caller has just resolved (not resolved again
    /// unless a lookup may have changed it).
    pub async fn person_of(
        &self,
        link: PatientLink,
        deadline: Instant,
    ) -> Result<Option<(PatientLink, Vec<String>)>, StoreError> {
        let pending = self.pending(&link.gateway_id).await?;
        if pending.is_empty() {
            return Ok(Some((link, Vec::new())));
        }
        let mut searches: BTreeSet<Vec<(&'static str, String)>> = BTreeSet::new();
        for m in &link.members {
            let Some(d) = self.demographics_of(&m.source, &m.source_patient_id).await? else { continue };
            for (system, value) in &d.identifiers {
                searches.insert(vec![("identifier", format!("{system}|{value}"))]);
            }
            if let Some(born) = &d.birth_date {
                for family in &d.written_families {
                    searches.insert(vec![("birthdate", born.clone()), ("family", family.clone())]);
                }
            }
        }
        let mut failed = Vec::new();
        for source in pending {
            match self.ask(&source, &searches, deadline).await {
                Ok(()) => {
                    let after = self.resolve(&link.gateway_id).await?.map(|l| l.gateway_id);
                    let subjects: BTreeSet<String> =
                        [Some(link.gateway_id.clone()), after].into_iter().flatten().collect();
                    self.looked_up(source.name(), &subjects).await?;
                }
                Err(IdentityError::Store(e)) => return Err(e),
                Err(IdentityError::Lookup(_)) => failed.push(source.name().to_string()),
            }
        }
        Ok(self.resolve(&link.gateway_id).await?.map(|l| (l, failed)))
    }

    /// The gateway id of a source's record; a record of a lookup-only source not yet in
    /// the index is read from it (by id) and linked first.
    pub async fn member(&self, source: &str, id: &str, deadline: Instant) -> Result<Option<String>, StoreError> {
        if let Some(g) = self.gateway_id_of(source, id).await? {
            return Ok(Some(g));
        }
        if !crate::fhir::is_valid_id(id) || !self.lookup_only_sources().contains(source) {
            return Ok(None);
        }
        let Some(s) = self.sources.iter().find(|s| s.name() == source) else { return Ok(None) };
        match s.patients(&[id.to_string()], deadline).await {
            Ok(found) => {
                let found: Vec<Value> = found.into_iter().filter(|p| crate::fhir::resource_id(p) == Some(id)).collect();
                self.ingest_all(source, &found).await?;
            }
            Err(e) => tracing::warn!(source, error = %e, "patient index: on-demand read failed"),
        }
        self.gateway_id_of(source, id).await
    }

    /// Source records holding an identifier with this value (any system), with their
    /// demographics: what enrollment checks a medical record number against. Lookup-only
    /// sources are asked first (`Patient?identifier=value`).
    pub async fn records_with_identifier(
        &self,
        value: &str,
        deadline: Instant,
    ) -> Result<Vec<(String, String, Demographics)>, StoreError> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(Vec::new());
        }
        let key = rows::identifier_value_key(value);
        let subject = format!("identifier:{key}");
        let searches = BTreeSet::from([vec![("identifier", value.to_string())]]);
        for source in self.pending(&subject).await? {
            match self.ask(&source, &searches, deadline).await {
                Ok(()) => self.looked_up(source.name(), &BTreeSet::from([subject.clone()])).await?,
                Err(IdentityError::Store(e)) => return Err(e),
                Err(IdentityError::Lookup(_)) => {}
            }
        }
        let rows = sqlx::query(
            "SELECT r.source, r.source_patient_id, r.demographics FROM index_keys k
             JOIN index_records r ON r.source = k.source AND r.source_patient_id = k.source_patient_id
             WHERE k.blocking_key = $1",
        )
        .bind(&key)
        .fetch_all(&self.store.pool)
        .await?;
        let mut found: Vec<(String, String, Demographics)> = rows
            .into_iter()
            .filter_map(|r| {
                let d: Demographics = serde_json::from_str(&r.get::<String, _>(2)).ok()?;
                d.identifiers.iter().any(|(_, v)| v.eq_ignore_ascii_case(value)).then(|| (r.get(0), r.get(1), d))
            })
            .collect();
        found.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        Ok(found)
    }
}
