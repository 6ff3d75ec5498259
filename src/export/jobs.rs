//! The export job store: jobs, their work units and progress in the database (SQLite or
//! PostgreSQL), so jobs survive restarts and several gateway replicas share one queue.
//! A unit is claimed with a lease (owner + expiry): on PostgreSQL with `SELECT … FOR UPDATE
//! SKIP LOCKED` inside a transaction, on SQLite with one atomic `UPDATE … RETURNING`; a
//! lease that expires (its worker died) lets another worker redo the unit from scratch.
//! A job may start with source units — one per source asked for its own Bulk Data export —
//! and then its person units are claimable only once every source unit is done.
//! It stores ids and parameters only, never patient data (what source units spill is
//! `aggregate::spill`'s, dropped here with the job), and decides nothing about access.

use super::ndjson::Limits;
use crate::auth::{Access, Basis, PatientScope};
use crate::policy::viewer::Scope;
use crate::policy::{Role, Viewer};
use crate::store::{Dialect, Store, StoreError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// A timestamp as stored: RFC 3339 UTC with milliseconds, so text order is time order.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn parse_stamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// The caller's [`Access`] as stored with a job: a worker in any replica rebuilds exactly
/// the same view from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAccess {
    pub actor: String,
    pub role: Role,
    pub app_scopes: Option<Vec<Scope>>,
    /// A patient or proxy: the one person (source, source patient id).
    pub person: Option<(String, String)>,
    pub groups: Option<Vec<String>>,
    /// The link and grant the access rests on: the job ends with them.
    #[serde(default)]
    pub basis: Basis,
}

impl StoredAccess {
    pub fn of(a: &Access) -> StoredAccess {
        StoredAccess {
            actor: a.viewer.actor.clone(),
            role: a.viewer.role.clone(),
            app_scopes: a.viewer.app_scopes.clone(),
            person: match &a.patients {
                PatientScope::Any => None,
                PatientScope::Person { source, source_patient_id } => Some((source.clone(), source_patient_id.clone())),
            },
            groups: a.groups.clone(),
            basis: a.basis.clone(),
        }
    }

    pub fn access(&self) -> Access {
        Access {
            viewer: Viewer { actor: self.actor.clone(), role: self.role.clone(), app_scopes: self.app_scopes.clone() },
            patients: match &self.person {
                None => PatientScope::Any,
                Some((source, id)) => PatientScope::Person { source: source.clone(), source_patient_id: id.clone() },
            },
            groups: self.groups.clone(),
            basis: self.basis.clone(),
        }
    }
}

/// A job to create.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: String,
    /// `bulk` (`$export`) or `download` (a record page's download prepared as a job).
    pub kind: &'static str,
    pub client: String,
    pub access: StoredAccess,
    pub request: String,
    /// The parsed kick-off parameters (JSON).
    pub params: String,
    pub level: &'static str,
    pub group_id: Option<String>,
    pub transaction_time: DateTime<Utc>,
    /// The patients, already cut into units.
    pub units: Vec<Vec<String>>,
    /// How large its files may grow.
    pub limits: Limits,
    /// The sources asked for their own export first.
    pub source_units: Vec<SourceUnit>,
}

/// A unit that runs one source's own Bulk Data export for its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceUnit {
    pub source: String,
    /// The source's Group, for `Group/{id}/$export` (else system level).
    pub group: Option<String>,
}

/// A job as stored.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    /// `bulk` or `download`.
    pub kind: String,
    pub client: String,
    pub access: StoredAccess,
    pub request: String,
    pub params: String,
    pub state: String,
    pub transaction_time: String,
    pub expires_at: Option<String>,
    pub total_patients: i64,
    pub error: Option<String>,
    /// Steps done (download jobs).
    pub step: i64,
    /// JSON array of notice texts (download jobs, once the record was read).
    pub notices: Option<String>,
    /// How large its files may grow (`None`: a job from before limits were stored).
    pub limits: Option<Limits>,
}

/// A claimed unit of work.
#[derive(Debug, Clone)]
pub struct Unit {
    pub id: String,
    pub job_id: String,
    pub seq: i64,
    pub patients: Vec<String>,
    pub attempts: i64,
    /// Set for a source unit (it has no patients).
    pub source: Option<SourceUnit>,
}

/// One file a unit wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitOutput {
    #[serde(rename = "type")]
    pub resource_type: String,
    /// The piece's key within the job's folder.
    pub file: String,
    pub count: u64,
    /// Its length (0 in rows written before lengths were recorded).
    #[serde(default)]
    pub bytes: u64,
}

/// What became of a unit that finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoneUnit {
    pub seq: i64,
    pub done_by: String,
    pub patients: Vec<String>,
    pub outputs: Vec<UnitOutput>,
}

/// Whether a kick-off was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    Yes,
    /// The client already has this many jobs queued or running.
    TooMany(usize),
}

#[derive(Clone)]
pub struct JobStore {
    store: Store,
}

const JOB_COLUMNS: &str =
    "id, client, access, request, params, state, transaction_time, expires_at, total_patients, error, kind, step, notices, file_max_resources, file_max_bytes";

fn to_job(r: &sqlx::any::AnyRow) -> Result<Job, StoreError> {
    let access: String = r.get(2);
    Ok(Job {
        id: r.get(0),
        client: r.get(1),
        access: serde_json::from_str(&access)
            .map_err(|e| StoreError::Query(sqlx::Error::Decode(format!("stored access: {e}").into())))?,
        request: r.get(3),
        params: r.get(4),
        state: r.get(5),
        transaction_time: r.get(6),
        expires_at: r.get(7),
        total_patients: r.get(8),
        error: r.get(9),
        kind: r.get(10),
        step: r.get(11),
        notices: r.get(12),
        limits: match (r.get::<Option<i64>, _>(13), r.get::<Option<i64>, _>(14)) {
            (Some(resources), Some(bytes)) => Some(Limits { resources: resources as u64, bytes: bytes as u64 }),
            _ => None,
        },
    })
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Query(sqlx::Error::Decode(format!("{what}: {e}").into())))
}

impl JobStore {
    pub fn new(store: Store) -> JobStore {
        JobStore { store }
    }

    /// Creates a job and its units in one transaction, unless the client already has
    /// `max_active` jobs queued or running. A job without patients is complete at once.
    pub async fn create(
        &self,
        job: &NewJob,
        max_active: usize,
        lifetime: std::time::Duration,
    ) -> Result<Created, StoreError> {
        let mut tx = self.store.begin_write().await?;
        let active: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM export_jobs WHERE client = $1 AND state IN ('queued', 'running')")
                .bind(&job.client)
                .fetch_one(&mut *tx)
                .await?;
        if active as usize >= max_active {
            return Ok(Created::TooMany(active as usize));
        }
        let now = stamp(Utc::now());
        let total: usize = job.units.iter().map(Vec::len).sum();
        let (state, completed, expires) = if job.units.is_empty() {
            ("completed", Some(now.clone()), Some(stamp(Utc::now() + lifetime)))
        } else {
            ("queued", None, None)
        };
        sqlx::query(
            "INSERT INTO export_jobs (id, client, access, request, params, level, group_id, state, transaction_time, created_at, completed_at, expires_at, total_patients, kind, link_id, grant_id, file_max_resources, file_max_bytes)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
        )
        .bind(&job.id)
        .bind(&job.client)
        .bind(crate::json::text(&job.access))
        .bind(&job.request)
        .bind(&job.params)
        .bind(job.level)
        .bind(&job.group_id)
        .bind(state)
        .bind(stamp(job.transaction_time))
        .bind(&now)
        .bind(completed)
        .bind(expires)
        .bind(total as i64)
        .bind(job.kind)
        .bind(&job.access.basis.link)
        .bind(&job.access.basis.grant)
        .bind(job.limits.resources as i64)
        .bind(job.limits.bytes as i64)
        .execute(&mut *tx)
        .await?;
        for (seq, patients) in job.units.iter().enumerate() {
            sqlx::query(
                "INSERT INTO export_units (id, job_id, seq, patients, patient_count, state, queued_at)
                 VALUES ($1, $2, $3, $4, $5, 'ready', $6)",
            )
            .bind(format!("{}-{seq}", job.id))
            .bind(&job.id)
            .bind(seq as i64)
            .bind(crate::json::text(patients))
            .bind(patients.len() as i64)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
        // Source units come first in claim order (negative seq) and hold no patients.
        for (i, u) in job.source_units.iter().enumerate() {
            if job.units.is_empty() {
                break;
            }
            sqlx::query(
                "INSERT INTO export_units (id, job_id, seq, patients, patient_count, state, queued_at, source_name, source_group)
                 VALUES ($1, $2, $3, '[]', 0, 'ready', $4, $5, $6)",
            )
            .bind(format!("{}-s{i}", job.id))
            .bind(&job.id)
            .bind(-1 - i as i64)
            .bind(&now)
            .bind(&u.source)
            .bind(&u.group)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Created::Yes)
    }

    pub async fn get(&self, id: &str) -> Result<Option<Job>, StoreError> {
        let row = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM export_jobs WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.store.pool)
            .await?;
        row.as_ref().map(to_job).transpose()
    }

    /// Claims the oldest unit that is ready or whose lease has expired, for `owner` until
    /// `lease` from now.
    pub async fn claim(&self, owner: &str, lease: std::time::Duration) -> Result<Option<Unit>, StoreError> {
        let now = Utc::now();
        let (now_s, until) = (stamp(now), stamp(now + lease));
        // A person unit waits for its job's source units (their spilled exports).
        const CLAIMABLE: &str = "(u.state = 'ready' OR (u.state = 'claimed' AND u.lease_until < $1))
             AND (u.source_name IS NOT NULL OR NOT EXISTS (SELECT 1 FROM export_units s
                  WHERE s.job_id = u.job_id AND s.source_name IS NOT NULL AND s.state <> 'done'))";
        let row = match self.store.dialect {
            Dialect::Postgres => {
                let mut tx = self.store.pool.begin().await?;
                let picked = sqlx::query(&format!(
                    "SELECT u.id FROM export_units u WHERE {CLAIMABLE} ORDER BY u.queued_at, u.job_id, u.seq LIMIT 1 FOR UPDATE OF u SKIP LOCKED"
                ))
                .bind(&now_s)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(picked) = picked else {
                    tx.commit().await?;
                    return Ok(None);
                };
                let id: String = picked.get(0);
                let row = sqlx::query(
                    "UPDATE export_units SET state = 'claimed', owner = $1, lease_until = $2, attempts = attempts + 1
                     WHERE id = $3 RETURNING id, job_id, seq, patients, attempts, source_name, source_group",
                )
                .bind(owner)
                .bind(&until)
                .bind(&id)
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await?;
                row
            }
            Dialect::Sqlite => {
                // One statement: SQLite runs it under its write lock, so two workers never
                // claim the same unit.
                let row = sqlx::query(&format!(
                    "UPDATE export_units SET state = 'claimed', owner = $2, lease_until = $3, attempts = attempts + 1
                     WHERE id = (SELECT u.id FROM export_units u WHERE {CLAIMABLE} ORDER BY u.queued_at, u.job_id, u.seq LIMIT 1)
                     RETURNING id, job_id, seq, patients, attempts, source_name, source_group"
                ))
                .bind(&now_s)
                .bind(owner)
                .bind(&until)
                .fetch_optional(&self.store.pool)
                .await?;
                let Some(row) = row else { return Ok(None) };
                row
            }
        };
        let patients: String = row.get(3);
        Ok(Some(Unit {
            id: row.get(0),
            job_id: row.get(1),
            seq: row.get(2),
            patients: decode("unit patients", &patients)?,
            attempts: row.get(4),
            source: row
                .get::<Option<String>, _>(5)
                .map(|source| SourceUnit { source, group: row.get::<Option<String>, _>(6) }),
        }))
    }

    /// Extends a lease; false when the unit is no longer this owner's (taken over, or its
    /// job was cancelled).
    pub async fn renew(&self, unit_id: &str, owner: &str, lease: std::time::Duration) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE export_units SET lease_until = $1 WHERE id = $2 AND owner = $3 AND state = 'claimed'")
                .bind(stamp(Utc::now() + lease))
                .bind(unit_id)
                .bind(owner)
                .execute(&self.store.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks a unit done with the files it wrote; false when it was no longer this owner's.
    pub async fn complete_unit(&self, unit_id: &str, owner: &str, outputs: &[UnitOutput]) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE export_units SET state = 'done', done_by = $1, outputs = $2, lease_until = NULL
             WHERE id = $3 AND owner = $1 AND state = 'claimed'",
        )
        .bind(owner)
        .bind(crate::json::text(outputs))
        .bind(unit_id)
        .execute(&self.store.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a unit back to the queue (its worker is stopping, or it failed and may be
    /// retried).
    pub async fn release(&self, unit_id: &str, owner: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE export_units SET state = 'ready', owner = NULL, lease_until = NULL WHERE id = $1 AND owner = $2 AND state = 'claimed'",
        )
        .bind(unit_id)
        .bind(owner)
        .execute(&self.store.pool)
        .await?;
        Ok(())
    }

    /// Gives back every unit claimed by owners starting with `prefix` (a replica shutting
    /// down), so another worker redoes them at once instead of waiting for the lease.
    pub async fn release_all(&self, prefix: &str) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE export_units SET state = 'ready', owner = NULL, lease_until = NULL WHERE owner LIKE $1 AND state = 'claimed'",
        )
        .bind(format!("{prefix}%"))
        .execute(&self.store.pool)
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn mark_running(&self, job_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE export_jobs SET state = 'running' WHERE id = $1 AND state = 'queued'")
            .bind(job_id)
            .execute(&self.store.pool)
            .await?;
        Ok(())
    }

    /// Completes the job when every unit is done; true for the one caller that did.
    pub async fn finish_if_done(&self, job_id: &str, lifetime: std::time::Duration) -> Result<bool, StoreError> {
        let open: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM export_units WHERE job_id = $1 AND state <> 'done'")
            .bind(job_id)
            .fetch_one(&self.store.pool)
            .await?;
        if open > 0 {
            return Ok(false);
        }
        let now = Utc::now();
        let done = sqlx::query(
            "UPDATE export_jobs SET state = 'completed', completed_at = $1, expires_at = $2
             WHERE id = $3 AND state IN ('queued', 'running')",
        )
        .bind(stamp(now))
        .bind(stamp(now + lifetime))
        .bind(job_id)
        .execute(&self.store.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Fails the job (its units are dropped); the error is kept until the job expires.
    pub async fn fail(&self, job_id: &str, error: &str, lifetime: std::time::Duration) -> Result<bool, StoreError> {
        let mut tx = self.store.begin_write().await?;
        let now = Utc::now();
        let done = sqlx::query(
            "UPDATE export_jobs SET state = 'failed', error = $1, completed_at = $2, expires_at = $3
             WHERE id = $4 AND state IN ('queued', 'running')",
        )
        .bind(error)
        .bind(stamp(now))
        .bind(stamp(now + lifetime))
        .bind(job_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM export_units WHERE job_id = $1").bind(job_id).execute(&mut *tx).await?;
        crate::aggregate::spill::forget(&mut tx, job_id, None).await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Patients in finished units, of all.
    pub async fn progress(&self, job_id: &str) -> Result<i64, StoreError> {
        let done: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(SUM(patient_count) AS BIGINT) FROM export_units WHERE job_id = $1 AND state = 'done'",
        )
        .bind(job_id)
        .fetch_one(&self.store.pool)
        .await?;
        Ok(done.unwrap_or(0))
    }

    /// The finished units of a job, in order.
    pub async fn done_units(&self, job_id: &str) -> Result<Vec<DoneUnit>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, done_by, patients, outputs FROM export_units WHERE job_id = $1 AND state = 'done' ORDER BY seq",
        )
        .bind(job_id)
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let (patients, outputs): (String, Option<String>) = (r.get(2), r.get(3));
                Ok(DoneUnit {
                    seq: r.get(0),
                    done_by: r.get::<Option<String>, _>(1).unwrap_or_default(),
                    patients: decode("unit patients", &patients)?,
                    outputs: decode("unit outputs", outputs.as_deref().unwrap_or("[]"))?,
                })
            })
            .collect()
    }

    /// How many jobs the client has queued or running.
    pub async fn active(&self, client: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM export_jobs WHERE client = $1 AND state IN ('queued', 'running')")
            .bind(client)
            .fetch_one(&self.store.pool)
            .await?)
    }

    /// Removes a job, its units, its shared-resource claims and what its sources' exports
    /// spilled.
    pub async fn delete(&self, job_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.store.begin_write().await?;
        sqlx::query("DELETE FROM export_units WHERE job_id = $1").bind(job_id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM export_shared WHERE job_id = $1").bind(job_id).execute(&mut *tx).await?;
        crate::aggregate::spill::forget(&mut tx, job_id, None).await?;
        let done = sqlx::query("DELETE FROM export_jobs WHERE id = $1").bind(job_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Jobs whose lifetime has ended.
    pub async fn expired(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT id FROM export_jobs WHERE expires_at IS NOT NULL AND expires_at < $1")
            .bind(stamp(now))
            .fetch_all(&self.store.pool)
            .await?)
    }

    /// Records a download job's steps done and, once known, its notices (JSON array).
    pub async fn set_step(&self, job_id: &str, step: i64, notices: Option<&str>) -> Result<(), StoreError> {
        sqlx::query("UPDATE export_jobs SET step = $1, notices = COALESCE($2, notices) WHERE id = $3")
            .bind(step)
            .bind(notices)
            .bind(job_id)
            .execute(&self.store.pool)
            .await?;
        Ok(())
    }

    /// The client's queued or running job of `kind` with exactly these parameters.
    pub async fn active_like(&self, client: &str, kind: &str, params: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM export_jobs WHERE client = $1 AND kind = $2 AND params = $3 AND state IN ('queued', 'running')
             ORDER BY created_at LIMIT 1",
        )
        .bind(client)
        .bind(kind)
        .bind(params)
        .fetch_optional(&self.store.pool)
        .await?)
    }

    /// The jobs (of any kind and state) started under the account's link `link` (by the
    /// account itself or an app it allowed) or under the app's grant `grant`.
    pub async fn of_basis(&self, link: Option<&str>, grant: Option<&str>) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT id FROM export_jobs WHERE link_id = $1 OR grant_id = $2 ORDER BY id")
            .bind(link)
            .bind(grant)
            .fetch_all(&self.store.pool)
            .await?)
    }

    /// Whether a job exists (in any state).
    pub async fn exists(&self, job_id: &str) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM export_jobs WHERE id = $1")
            .bind(job_id)
            .fetch_one(&self.store.pool)
            .await?;
        Ok(n > 0)
    }

    /// Claims a supporting resource (Practitioner, Organization …) for unit `seq` of a
    /// job: true when this unit writes it (first to claim, or the same unit redone). A job
    /// deleted meanwhile (cancelled) claims nothing and leaves no row behind.
    pub async fn claim_shared(&self, job_id: &str, key: &str, seq: i64) -> Result<bool, StoreError> {
        sqlx::query(
            "INSERT INTO export_shared (job_id, resource_key, unit_seq)
             SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM export_jobs WHERE id = $1)
             ON CONFLICT (job_id, resource_key) DO NOTHING",
        )
        .bind(job_id)
        .bind(key)
        .bind(seq)
        .execute(&self.store.pool)
        .await?;
        let owner: Option<i64> =
            sqlx::query_scalar("SELECT unit_seq FROM export_shared WHERE job_id = $1 AND resource_key = $2")
                .bind(job_id)
                .bind(key)
                .fetch_optional(&self.store.pool)
                .await?;
        Ok(owner == Some(seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn job(id: &str, client: &str, units: Vec<Vec<String>>) -> NewJob {
        NewJob {
            id: id.into(),
            kind: "bulk",
            client: client.into(),
            access: StoredAccess {
                actor: client.into(),
                role: Role::Partner { partner: "hie".into(), purpose: "TREAT".into() },
                app_scopes: None,
                person: None,
                groups: Some(vec!["g1".into()]),
                basis: Basis::default(),
            },
            request: "http://x/fhir/$export".into(),
            params: "{}".into(),
            level: "system",
            group_id: None,
            transaction_time: Utc::now(),
            units,
            limits: Limits { resources: 10, bytes: 10_000 },
            source_units: Vec::new(),
        }
    }

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("pt-{i}")).collect()
    }

    #[tokio::test]
    async fn units_are_claimed_once_leases_expire_and_jobs_finish() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/j.db", dir.path().display()), 4).await.unwrap();
        let jobs = JobStore::new(store);
        let hour = Duration::from_secs(3600);
        assert_eq!(jobs.create(&job("j1", "c", vec![ids(2), ids(1)]), 1, hour).await.unwrap(), Created::Yes);
        assert_eq!(jobs.create(&job("j2", "c", vec![ids(1)]), 1, hour).await.unwrap(), Created::TooMany(1));
        assert!(!jobs.exists("j2").await.unwrap(), "a refused job leaves nothing behind");
        let stored = jobs.get("j1").await.unwrap().unwrap();
        assert_eq!(stored.limits, Some(Limits { resources: 10, bytes: 10_000 }), "the job keeps its file limits");
        assert_eq!(stored.access.access().groups, Some(vec!["g1".to_string()]));
        assert_eq!(stored.total_patients, 3);

        // Concurrent claimers never get the same unit.
        let claims = futures::future::join_all((0..4).map(|i| {
            let jobs = jobs.clone();
            async move { jobs.claim(&format!("w{i}"), Duration::from_millis(300)).await.unwrap() }
        }))
        .await;
        let got: Vec<&Unit> = claims.iter().flatten().collect();
        assert_eq!(got.len(), 2, "{claims:?}");
        assert_ne!(got[0].id, got[1].id);
        let first = got.iter().find(|u| u.seq == 0).unwrap();
        let owner_of_first = claims.iter().position(|c| c.as_ref().is_some_and(|u| u.seq == 0)).unwrap();
        let owner = format!("w{owner_of_first}");
        assert!(jobs.renew(&first.id, &owner, Duration::from_millis(300)).await.unwrap());
        assert!(!jobs.renew(&first.id, "someone-else", Duration::from_millis(300)).await.unwrap());

        // The other unit's worker "dies": after the lease another worker takes it over.
        assert!(jobs.claim("w9", Duration::from_secs(60)).await.unwrap().is_none(), "leases still held");
        tokio::time::sleep(Duration::from_millis(400)).await;
        let out = vec![UnitOutput {
            resource_type: "Patient".into(),
            file: "0/w9/Patient.1.ndjson".into(),
            count: 2,
            bytes: 90,
        }];
        let retaken = jobs.claim("w9", Duration::from_secs(60)).await.unwrap().expect("expired lease");
        let late = jobs.claim("w8", Duration::from_secs(60)).await.unwrap().expect("the other expired lease");
        assert_ne!(retaken.id, late.id);
        assert!(retaken.attempts == 2 && late.attempts == 2);
        assert!(!jobs.complete_unit(&first.id, &owner, &out).await.unwrap(), "lost its lease");
        for (u, w) in [(&retaken, "w9"), (&late, "w8")] {
            assert!(jobs.complete_unit(&u.id, w, &out).await.unwrap());
            jobs.mark_running("j1").await.unwrap();
        }
        assert!(jobs.finish_if_done("j1", hour).await.unwrap());
        assert!(!jobs.finish_if_done("j1", hour).await.unwrap(), "completed once");
        assert_eq!(jobs.progress("j1").await.unwrap(), 3);
        let done = jobs.done_units("j1").await.unwrap();
        let mut by: Vec<&str> = done.iter().map(|d| d.done_by.as_str()).collect();
        by.sort();
        assert_eq!(by, vec!["w8", "w9"], "which worker did which unit is recorded");
        assert_eq!(jobs.get("j1").await.unwrap().unwrap().state, "completed");

        // Shared resources: the first unit to claim writes it; the same unit redone still does.
        assert!(jobs.claim_shared("j1", "Practitioner/a", 0).await.unwrap());
        assert!(!jobs.claim_shared("j1", "Practitioner/a", 1).await.unwrap());
        assert!(jobs.claim_shared("j1", "Practitioner/a", 0).await.unwrap());

        assert!(jobs.expired(Utc::now() + hour * 2).await.unwrap().contains(&"j1".to_string()));
        assert!(jobs.delete("j1").await.unwrap());
        assert!(jobs.get("j1").await.unwrap().is_none());
        assert!(!jobs.claim_shared("j1", "Practitioner/b", 0).await.unwrap(), "a deleted job claims nothing");
        assert!(jobs.done_units("j1").await.unwrap().is_empty());
    }
}

#[cfg(test)]
mod source_unit_tests;
