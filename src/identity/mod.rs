//! The patient index: which source patient records are one person, under which stable
//! gateway patient id, and why. Built from every source's Patient list (see
//! [`matching`] for the rule), kept in the store so ids survive restarts, and rebuilt
//! periodically. A source that cannot be read during a rebuild keeps its earlier links.
//! It never fetches clinical data and never decides what a viewer may see.

pub mod matching;

use crate::sources::SharedSource;
use crate::store::{Store, StoreError};
use matching::{compare, Demographics, Verdict};
use serde::Serialize;
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{PoisonError, RwLock};
use tokio::time::Instant;

/// One source's record of a person, as a member of a link.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct LinkMember {
    pub source: String,
    pub source_patient_id: String,
    /// Why this record joined the link (attributes that agreed, never their values).
    pub reason: String,
}

/// The records that are one person, under one gateway patient id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PatientLink {
    pub gateway_id: String,
    pub members: Vec<LinkMember>,
}

/// Two records that might be one person; listed for a human, never linked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PossibleMatch {
    pub a: (String, String),
    pub b: (String, String),
    pub reason: String,
}

/// What a rebuild saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RebuildReport {
    pub patients_read: usize,
    pub links: usize,
    /// Sources that could not be read (their earlier links were kept), with the error.
    pub failed_sources: Vec<(String, String)>,
}

#[derive(Debug, Default)]
struct IndexState {
    links: BTreeMap<String, PatientLink>,
    by_member: HashMap<(String, String), String>,
    aliases: HashMap<String, String>,
    possible: Vec<PossibleMatch>,
    /// Sources the last rebuild could not read: anyone may have records there that the
    /// index does not know of.
    unread: Vec<String>,
    /// The demographics of every record read by the last rebuild (memory only), for
    /// identity verification at enrollment.
    demographics: HashMap<(String, String), Demographics>,
}

impl IndexState {
    fn from_rows(rows: Vec<(String, String, String, String)>, aliases: HashMap<String, String>) -> IndexState {
        let mut state = IndexState { aliases, ..Default::default() };
        for (source, id, gid, reason) in rows {
            state.by_member.insert((source.clone(), id.clone()), gid.clone());
            state
                .links
                .entry(gid.clone())
                .or_insert_with(|| PatientLink { gateway_id: gid, members: Vec::new() })
                .members
                .push(LinkMember { source, source_patient_id: id, reason });
        }
        for link in state.links.values_mut() {
            link.members.sort();
        }
        state
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for IdentityError {
    fn from(e: sqlx::Error) -> Self {
        IdentityError::Store(StoreError::Query(e))
    }
}

pub struct PatientIndex {
    store: Store,
    /// Replaced whole under the write lock, so a poisoned lock still holds a complete state
    /// and is read as it is.
    state: RwLock<IndexState>,
}

impl PatientIndex {
    /// Loads the links kept in the store.
    pub async fn open(store: Store) -> Result<PatientIndex, IdentityError> {
        let index = PatientIndex { store, state: RwLock::new(IndexState::default()) };
        let state = index.load().await?;
        *index.state.write().unwrap_or_else(PoisonError::into_inner) = state;
        Ok(index)
    }

    async fn load(&self) -> Result<IndexState, IdentityError> {
        let mut conn = self.store.pool.acquire().await?;
        load_state(&mut conn).await
    }

    /// The link under `gateway_id` (or under the id it was merged into).
    pub fn resolve(&self, gateway_id: &str) -> Option<PatientLink> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        let id = state.aliases.get(gateway_id).map_or(gateway_id, String::as_str);
        state.links.get(id).cloned()
    }

    /// The gateway id of a source's patient record.
    pub fn gateway_id_of(&self, source: &str, source_patient_id: &str) -> Option<String> {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .by_member
            .get(&(source.to_string(), source_patient_id.to_string()))
            .cloned()
    }

    pub fn links(&self) -> Vec<PatientLink> {
        self.state.read().unwrap_or_else(PoisonError::into_inner).links.values().cloned().collect()
    }

    pub fn possible_matches(&self) -> Vec<PossibleMatch> {
        self.state.read().unwrap_or_else(PoisonError::into_inner).possible.clone()
    }

    /// Source records holding an identifier with this value (any system), with their
    /// demographics: what enrollment checks a medical record number against.
    pub fn records_with_identifier(&self, value: &str) -> Vec<(String, String, Demographics)> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        let value = value.trim();
        let mut found: Vec<_> = state
            .demographics
            .iter()
            .filter(|(_, d)| d.identifiers.iter().any(|(_, v)| v.eq_ignore_ascii_case(value)))
            .map(|((s, id), d)| (s.clone(), id.clone(), d.clone()))
            .collect();
        found.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        found
    }

    /// The demographics of one source record, as the last rebuild read them.
    pub fn demographics_of(&self, source: &str, source_patient_id: &str) -> Option<Demographics> {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .demographics
            .get(&(source.to_string(), source_patient_id.to_string()))
            .cloned()
    }

    /// Sources the last rebuild could not read (their patients may be missing from links).
    pub fn unread_sources(&self) -> Vec<String> {
        self.state.read().unwrap_or_else(PoisonError::into_inner).unread.clone()
    }

    /// Re-reads every source's patients, recomputes links, keeps existing gateway ids, and
    /// writes the result in one transaction.
    pub async fn rebuild(&self, sources: &[SharedSource], deadline: Instant) -> Result<RebuildReport, IdentityError> {
        let reads = futures::future::join_all(
            sources.iter().map(|s| async move { (s.name().to_string(), s.list_patients(deadline).await) }),
        )
        .await;
        let mut report = RebuildReport::default();
        let mut nodes: Vec<(String, String, Demographics)> = Vec::new();
        let mut read_sources = BTreeSet::new();
        for (source, result) in reads {
            match result {
                Ok(patients) => {
                    read_sources.insert(source.clone());
                    for p in patients {
                        if let Some(id) = crate::fhir::resource_id(&p) {
                            nodes.push((source.clone(), id.to_string(), Demographics::of(&p)));
                        }
                    }
                }
                Err(e) => report.failed_sources.push((source, e.to_string())),
            }
        }
        report.patients_read = nodes.len();
        let (clusters, possible) = cluster(&nodes);

        // Rebuilds by several replicas take turns: the first statement of the transaction
        // updates the lock row (SQLite: takes the write lock; PostgreSQL: a row lock held
        // to commit), and the links are read only after it, so each rebuild reuses the ids
        // the previous one assigned.
        let mut tx = self.store.begin_write().await?;
        sqlx::query("UPDATE index_rebuild_lock SET generation = generation + 1 WHERE id = 1").execute(&mut *tx).await?;
        let previous = load_state(&mut tx).await?;
        let mut claimed: BTreeSet<String> = BTreeSet::new();
        let mut new_aliases: Vec<(String, String)> = Vec::new();
        let mut rows: Vec<(String, String, String, String)> = Vec::new();
        for members in clusters {
            let existing: BTreeSet<String> = members
                .iter()
                .filter_map(|(s, id, _)| previous.by_member.get(&(s.clone(), id.clone())))
                .filter(|g| !claimed.contains(*g))
                .cloned()
                .collect();
            let gid = existing.iter().next().cloned().unwrap_or_else(new_gateway_id);
            for other in existing.iter().skip(1) {
                new_aliases.push((other.clone(), gid.clone()));
            }
            claimed.insert(gid.clone());
            for (s, id, reason) in members {
                rows.push((s, id, gid.clone(), reason));
            }
        }
        // Records of sources that could not be read keep their earlier links.
        for ((s, id), gid) in &previous.by_member {
            if !read_sources.contains(s) {
                let reason = previous
                    .links
                    .get(gid)
                    .and_then(|l| l.members.iter().find(|m| &m.source == s && &m.source_patient_id == id))
                    .map_or_else(String::new, |m| m.reason.clone());
                rows.push((s.clone(), id.clone(), gid.clone(), reason));
            }
        }

        let now = chrono::Utc::now().to_rfc3339();
        sqlx::query("DELETE FROM patient_links").execute(&mut *tx).await?;
        for (s, id, gid, reason) in &rows {
            sqlx::query("INSERT INTO patient_links (source, source_patient_id, gateway_id, reason, linked_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(s)
                .bind(id)
                .bind(gid)
                .bind(reason)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
        }
        for (old, gid) in &new_aliases {
            sqlx::query("DELETE FROM patient_id_aliases WHERE old_id = $1").bind(old).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO patient_id_aliases (old_id, gateway_id) VALUES ($1, $2)")
                .bind(old)
                .bind(gid)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE patient_id_aliases SET gateway_id = $1 WHERE gateway_id = $2")
                .bind(gid)
                .bind(old)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;

        let mut aliases = previous.aliases;
        for (old, gid) in new_aliases {
            for target in aliases.values_mut().filter(|t| **t == old) {
                *target = gid.clone();
            }
            aliases.insert(old, gid);
        }
        let mut state = IndexState::from_rows(rows, aliases);
        state.possible = possible;
        state.unread = report.failed_sources.iter().map(|(s, _)| s.clone()).collect();
        state.demographics = nodes.into_iter().map(|(s, id, d)| ((s, id), d)).collect();
        report.links = state.links.len();
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = state;
        Ok(report)
    }
}

async fn load_state(conn: &mut sqlx::AnyConnection) -> Result<IndexState, IdentityError> {
    let rows = sqlx::query("SELECT source, source_patient_id, gateway_id, reason FROM patient_links")
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1), r.get::<String, _>(2), r.get::<String, _>(3)))
        .collect();
    let aliases = sqlx::query("SELECT old_id, gateway_id FROM patient_id_aliases")
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
        .collect();
    Ok(IndexState::from_rows(rows, aliases))
}

fn new_gateway_id() -> String {
    format!("pt-{}", &uuid::Uuid::new_v4().simple().to_string()[..20])
}

type Cluster = Vec<(String, String, String)>;

/// Groups records into people. Only records sharing an identifier or a birth date are
/// compared, so the work grows with the number of candidate pairs, not all pairs.
fn cluster(nodes: &[(String, String, Demographics)]) -> (Vec<Cluster>, Vec<PossibleMatch>) {
    let mut blocks: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, (_, _, d)) in nodes.iter().enumerate() {
        for (s, v) in &d.identifiers {
            blocks.entry(format!("id|{s}|{v}")).or_default().push(i);
        }
        if let Some(b) = &d.birth_date {
            blocks.entry(format!("bd|{b}")).or_default().push(i);
        }
    }
    let mut pairs: BTreeSet<(usize, usize)> = BTreeSet::new();
    for members in blocks.values() {
        for (x, &i) in members.iter().enumerate() {
            for &j in &members[x + 1..] {
                if nodes[i].0 != nodes[j].0 {
                    pairs.insert((i.min(j), i.max(j)));
                }
            }
        }
    }
    let mut parent: Vec<usize> = (0..nodes.len()).collect();
    fn find(p: &mut [usize], i: usize) -> usize {
        let mut r = i;
        while p[r] != r {
            r = p[r];
        }
        p[i] = r;
        r
    }
    let mut reasons: HashMap<usize, String> = HashMap::new();
    let mut possible = Vec::new();
    for (i, j) in pairs {
        match compare(&nodes[i].2, &nodes[j].2) {
            Verdict::Same(reason) => {
                let (ri, rj) = (find(&mut parent, i), find(&mut parent, j));
                if ri != rj {
                    parent[rj.max(ri)] = ri.min(rj);
                    let joined = if reasons.contains_key(&j) { i } else { j };
                    let other = if joined == j { i } else { j };
                    reasons
                        .entry(joined)
                        .or_insert_with(|| format!("{reason} with {}/{}", nodes[other].0, nodes[other].1));
                }
            }
            Verdict::Possible(reason) => possible.push(PossibleMatch {
                a: (nodes[i].0.clone(), nodes[i].1.clone()),
                b: (nodes[j].0.clone(), nodes[j].1.clone()),
                reason,
            }),
            Verdict::Different => {}
        }
    }
    let mut groups: BTreeMap<usize, Cluster> = BTreeMap::new();
    for (i, (source, id, _)) in nodes.iter().enumerate() {
        let root = find(&mut parent, i);
        let reason = reasons.remove(&i).unwrap_or_else(|| "first record of this person".to_string());
        groups.entry(root).or_default().push((source.clone(), id.clone(), reason));
    }
    // Records already linked are not also "possible" matches of each other.
    possible.retain(|p| {
        let idx = |k: &(String, String)| nodes.iter().position(|(s, id, _)| s == &k.0 && id == &k.1);
        match (idx(&p.a), idx(&p.b)) {
            (Some(a), Some(b)) => find(&mut parent, a) != find(&mut parent, b),
            _ => true,
        }
    });
    (groups.into_values().collect(), possible)
}

#[cfg(test)]
mod tests;
