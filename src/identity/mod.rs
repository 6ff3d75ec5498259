//! The patient index: which source patient records are one person, under which stable
//! gateway patient id, and why. It lives in the database (SQLite or PostgreSQL, shared by
//! every replica): links, aliases, each record's normalized demographics, its blocking
//! keys and the possible matches are rows (`rows.rs`), so a replica holds nothing that
//! grows with the population and is ready at once over a stored index. Records arrive
//! incrementally — each source's changes since the last refresh, or, for a source that
//! refuses a listing, an on-demand lookup when a person is first asked for
//! (`refresh.rs`) — and each new record is compared, by the one rule in [`matching`], with
//! the records of other sources sharing a blocking key. A source that cannot be read keeps
//! its earlier links. It never fetches clinical data and never decides what a viewer may see.

pub mod matching;
mod refresh;
mod rows;

pub use refresh::RebuildReport;

use crate::sources::SharedSource;
use crate::store::{Store, StoreError};
use matching::Demographics;
use serde::Serialize;
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{LazyLock, PoisonError, RwLock};
use std::time::Duration;

/// One source's record of a person, as a member of a link.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct LinkMember {
    pub source: String,
    pub source_patient_id: String,
    /// Why this record joined the link (attributes that agreed, never their values).
    pub reason: String,
}

/// The gateway id a requested id (`$1`) stands for now: the id it was merged into, if any,
/// else itself — as SQL, for the statements that resolve a link.
pub const RESOLVED_ID: &str = "COALESCE((SELECT gateway_id FROM patient_id_aliases WHERE old_id = $1), $1)";

/// The records that are one person, under one gateway patient id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PatientLink {
    pub gateway_id: String,
    pub members: Vec<LinkMember>,
}

impl PatientLink {
    /// A link of `members` as read from the store, in the one order links are compared in.
    pub fn of(gateway_id: String, mut members: Vec<LinkMember>) -> PatientLink {
        members.sort();
        PatientLink { gateway_id, members }
    }
}

/// Two records that might be one person; listed for a human, never linked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PossibleMatch {
    pub a: (String, String),
    pub b: (String, String),
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An on-demand lookup in this source failed (the person's records there may be
    /// missing; asked again next time).
    #[error("{0}: on-demand patient lookup failed")]
    Lookup(String),
}

impl From<sqlx::Error> for IdentityError {
    fn from(e: sqlx::Error) -> Self {
        IdentityError::Store(StoreError::Query(e))
    }
}

/// How long an on-demand lookup in a source that refuses listings stands before the
/// person is looked up there again, unless the index is opened with another.
const LOOKUP_AGAIN: Duration = Duration::from_secs(300);

pub struct PatientIndex {
    store: Store,
    /// The sources on-demand lookups ask (those in `lookup_only`).
    sources: Vec<SharedSource>,
    lookup_again: Duration,
    /// Sources the last refresh could not read: anyone may have records there that the
    /// index does not know of. At most one entry per source.
    unread: RwLock<Vec<String>>,
    /// Sources that refuse to list their patients: looked up on demand. At most one
    /// entry per source.
    lookup_only: RwLock<BTreeSet<String>>,
}

impl PatientIndex {
    /// The index kept in the store, with no sources to look people up in on demand.
    pub async fn open(store: Store) -> Result<PatientIndex, IdentityError> {
        Self::open_with(store, Vec::new(), LOOKUP_AGAIN).await
    }

    /// The index kept in the store; people are looked up on demand in those of `sources`
    /// that refuse listings, again after `lookup_again`.
    pub async fn open_with(
        store: Store,
        sources: Vec<SharedSource>,
        lookup_again: Duration,
    ) -> Result<PatientIndex, IdentityError> {
        let lookup_only = sqlx::query("SELECT source FROM index_sources WHERE mode = 'lookup'")
            .fetch_all(&store.pool)
            .await?
            .into_iter()
            .map(|r| r.get::<String, _>(0))
            .collect();
        Ok(PatientIndex {
            store,
            sources,
            lookup_again,
            unread: RwLock::new(Vec::new()),
            lookup_only: RwLock::new(lookup_only),
        })
    }

    /// Whether a refresh has stored anything yet (a replica over a stored index is ready
    /// without waiting for one).
    pub async fn is_stored(&self) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT source FROM index_sources LIMIT 1").fetch_optional(&self.store.pool).await?;
        Ok(row.is_some())
    }

    /// The link under `gateway_id` (or under the id it was merged into).
    pub async fn resolve(&self, gateway_id: &str) -> Result<Option<PatientLink>, StoreError> {
        // Not an id (a NUL byte, say, which PostgreSQL refuses in text): no one, not a store error.
        if !crate::fhir::is_valid_id(gateway_id) {
            return Ok(None);
        }
        // One statement, the alias, if any, picked inside (data requests read the link with
        // the policy ledger instead: `PolicyLedger::with_link`).
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT gateway_id, source, source_patient_id, reason FROM patient_links WHERE gateway_id = {RESOLVED_ID}"
            )
        });
        let rows = sqlx::query(SQL.as_str()).bind(gateway_id).fetch_all(&self.store.pool).await?;
        let Some(id) = rows.first().map(|r| r.get::<String, _>(0)) else { return Ok(None) };
        let members =
            rows.into_iter().map(|r| LinkMember { source: r.get(1), source_patient_id: r.get(2), reason: r.get(3) });
        Ok(Some(PatientLink::of(id, members.collect())))
    }

    /// The gateway id of a source's patient record.
    pub async fn gateway_id_of(&self, source: &str, source_patient_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT gateway_id FROM patient_links WHERE source = $1 AND source_patient_id = $2")
            .bind(source)
            .bind(source_patient_id)
            .fetch_optional(&self.store.pool)
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Every link (a full listing: for the command line, tests and whole-system reports).
    pub async fn links(&self) -> Result<Vec<PatientLink>, StoreError> {
        let rows = sqlx::query("SELECT gateway_id, source, source_patient_id, reason FROM patient_links")
            .fetch_all(&self.store.pool)
            .await?;
        let mut links: BTreeMap<String, PatientLink> = BTreeMap::new();
        for r in rows {
            let gid: String = r.get(0);
            links
                .entry(gid.clone())
                .or_insert_with(|| PatientLink { gateway_id: gid, members: Vec::new() })
                .members
                .push(LinkMember { source: r.get(1), source_patient_id: r.get(2), reason: r.get(3) });
        }
        let mut links: Vec<PatientLink> = links.into_values().collect();
        for link in &mut links {
            link.members.sort();
        }
        Ok(links)
    }

    /// Every gateway patient id, sorted.
    pub async fn gateway_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut ids: Vec<String> = sqlx::query("SELECT DISTINCT gateway_id FROM patient_links")
            .fetch_all(&self.store.pool)
            .await?
            .into_iter()
            .map(|r| r.get(0))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// How many people the index holds.
    pub async fn people(&self) -> Result<usize, StoreError> {
        let row =
            sqlx::query("SELECT COUNT(DISTINCT gateway_id) FROM patient_links").fetch_one(&self.store.pool).await?;
        Ok(usize::try_from(row.get::<i64, _>(0)).unwrap_or(0))
    }

    /// Pairs that might be one person and are not linked, in a stable order.
    pub async fn possible_matches(&self) -> Result<Vec<PossibleMatch>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.a_source, p.a_id, p.b_source, p.b_id, p.reason FROM index_possible_matches p
             JOIN patient_links a ON a.source = p.a_source AND a.source_patient_id = p.a_id
             JOIN patient_links b ON b.source = p.b_source AND b.source_patient_id = p.b_id
             WHERE a.gateway_id <> b.gateway_id",
        )
        .fetch_all(&self.store.pool)
        .await?;
        let mut possible: Vec<PossibleMatch> = rows
            .into_iter()
            .map(|r| PossibleMatch { a: (r.get(0), r.get(1)), b: (r.get(2), r.get(3)), reason: r.get(4) })
            .collect();
        possible.sort_by(|x, y| (&x.a, &x.b).cmp(&(&y.a, &y.b)));
        Ok(possible)
    }

    /// The demographics of one source record, as last read.
    pub async fn demographics_of(
        &self,
        source: &str,
        source_patient_id: &str,
    ) -> Result<Option<Demographics>, StoreError> {
        let row = sqlx::query("SELECT demographics FROM index_records WHERE source = $1 AND source_patient_id = $2")
            .bind(source)
            .bind(source_patient_id)
            .fetch_optional(&self.store.pool)
            .await?;
        Ok(row.and_then(|r| serde_json::from_str(&r.get::<String, _>(0)).ok()))
    }

    /// Sources the last refresh could not read (their patients may be missing from links).
    pub fn unread_sources(&self) -> Vec<String> {
        self.unread.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Sources that refuse listings, looked up on demand instead.
    pub fn lookup_only_sources(&self) -> BTreeSet<String> {
        self.lookup_only.read().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

#[cfg(test)]
mod tests;
