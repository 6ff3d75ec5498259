//! The spill area of sources' own Bulk Data exports: what a source's export held, grouped by
//! the source's patient as it streamed in (rows in the store, so memory stays bounded and
//! every replica can build any person's part from it), and per job and source whether the
//! export was spilled or failed. Rows are the resources exactly as the source sent them
//! (its own references made relative); they are read back only by aggregation, to build a
//! person's part of a record in place of searching the source, and they go when the job
//! ends. It decides nothing about access and never logs a resource.

use crate::store::{Store, StoreError};
use serde_json::Value;
use sqlx::Row;
use std::collections::{BTreeSet, HashMap};

/// What became of one source's export for a job: spilled whole (system level: a resource
/// not in it is not at the source), spilled for a Group (the patients' compartments only:
/// what they reference may still be read from the source), or failed.
pub const SPILLED: &str = "spilled";
pub const SPILLED_COMPARTMENTS: &str = "spilled-compartments";
pub const FAILED: &str = "failed";

/// Source patients whose spilled resources one cleanup statement drops (about a hundred
/// rows each).
const DROP_PATIENTS_AT_ONCE: i64 = 50;

/// The patient key of resources that belong to no one patient.
pub const NO_PATIENT: &str = "";

/// One spilled resource: whose (source patient id, or [`NO_PATIENT`]), its type and id,
/// and its JSON.
#[derive(Debug, Clone)]
pub struct SpillRow {
    pub patient: String,
    pub resource_type: String,
    pub resource_id: String,
    pub body: String,
}

/// A job's spilled source exports: the sources whose part of every person's record is
/// built from the spill instead of searching them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spilled {
    pub job_id: String,
    pub sources: BTreeSet<String>,
    /// Those of `sources` whose export held only the patients' compartments.
    pub compartments_only: BTreeSet<String>,
}

#[derive(Clone)]
pub struct Spill {
    store: Store,
}

/// Rows per INSERT (4 parameters each, within SQLite's and PostgreSQL's limits).
const ROWS_PER_INSERT: usize = 100;

/// Ids per statement when reading resources back by id.
const IDS_PER_QUERY: usize = 200;

impl Spill {
    pub fn new(store: Store) -> Spill {
        Spill { store }
    }

    /// Drops what an earlier attempt spilled for `source` in `job` (a unit redone).
    pub async fn clear(&self, job_id: &str, source: &str) -> Result<(), StoreError> {
        let mut tx = self.store.begin_write().await?;
        for table in ["export_source_parts", "export_source_runs"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE job_id = $1 AND source_name = $2"))
                .bind(job_id)
                .bind(source)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Adds rows (one transaction); a row already there is kept.
    pub async fn put(&self, job_id: &str, source: &str, rows: &[SpillRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.store.begin_write().await?;
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let n = 2 + i * 4;
                    format!("($1, $2, ${}, ${}, ${}, ${})", n + 1, n + 2, n + 3, n + 4)
                })
                .collect();
            let sql = format!(
                "INSERT INTO export_source_parts (job_id, source_name, patient, resource_type, resource_id, body)
                 VALUES {}
                 ON CONFLICT (job_id, source_name, patient, resource_type, resource_id) DO NOTHING",
                values.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(job_id).bind(source);
            for r in chunk {
                q = q.bind(&r.patient).bind(&r.resource_type).bind(&r.resource_id).bind(&r.body);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The patients spilled resources of `resource_type` with ids `ids` belong to, by id
    /// (an id of no one patient's, or not spilled, is absent): one query per
    /// [`IDS_PER_QUERY`] ids.
    pub async fn owners_of(
        &self,
        job_id: &str,
        source: &str,
        resource_type: &str,
        ids: &[String],
    ) -> Result<HashMap<String, Vec<String>>, StoreError> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 4)).collect();
            let sql = format!(
                "SELECT resource_id, patient FROM export_source_parts
                 WHERE job_id = $1 AND source_name = $2 AND resource_type = $3 AND patient <> '' AND resource_id IN ({})",
                marks.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(job_id).bind(source).bind(resource_type);
            for id in chunk {
                q = q.bind(id);
            }
            for row in q.fetch_all(&self.store.pool).await? {
                let owners = out.entry(row.get(0)).or_default();
                let patient: String = row.get(1);
                if !owners.contains(&patient) {
                    owners.push(patient);
                }
            }
        }
        Ok(out)
    }

    /// Everything spilled for the source's patients `patients`.
    pub async fn part(&self, job_id: &str, source: &str, patients: &[String]) -> Result<Vec<Value>, StoreError> {
        let mut out = Vec::new();
        for patient in patients {
            let bodies: Vec<String> = sqlx::query_scalar(
                "SELECT body FROM export_source_parts WHERE job_id = $1 AND source_name = $2 AND patient = $3
                 ORDER BY resource_type, resource_id",
            )
            .bind(job_id)
            .bind(source)
            .bind(patient)
            .fetch_all(&self.store.pool)
            .await?;
            for body in bodies {
                out.push(decode(&body)?);
            }
        }
        Ok(out)
    }

    /// Spilled resources of `resource_type` by id, whoever they belong to (each once).
    pub async fn by_id(
        &self,
        job_id: &str,
        source: &str,
        resource_type: &str,
        ids: &[String],
    ) -> Result<Vec<Value>, StoreError> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 4)).collect();
            let sql = format!(
                "SELECT resource_id, body FROM export_source_parts
                 WHERE job_id = $1 AND source_name = $2 AND resource_type = $3 AND resource_id IN ({})",
                marks.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(job_id).bind(source).bind(resource_type);
            for id in chunk {
                q = q.bind(id);
            }
            for row in q.fetch_all(&self.store.pool).await? {
                let id: String = row.get(0);
                if seen.insert(id) {
                    out.push(decode(&row.get::<String, _>(1))?);
                }
            }
        }
        Ok(out)
    }

    /// Whether anything was spilled for any of the source's patients `patients`.
    pub async fn holds_any(&self, job_id: &str, source: &str, patients: &[String]) -> Result<bool, StoreError> {
        for patient in patients {
            let found: Option<i64> = sqlx::query_scalar(
                "SELECT CAST(1 AS BIGINT) FROM export_source_parts WHERE job_id = $1 AND source_name = $2 AND patient = $3 LIMIT 1",
            )
            .bind(job_id)
            .bind(source)
            .bind(patient)
            .fetch_optional(&self.store.pool)
            .await?;
            if found.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Records how the source's export for the job ended ([`SPILLED`] or [`FAILED`]).
    pub async fn record_run(
        &self,
        job_id: &str,
        source: &str,
        outcome: &str,
        resources: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO export_source_runs (job_id, source_name, outcome, resources) VALUES ($1, $2, $3, $4)
             ON CONFLICT (job_id, source_name) DO UPDATE SET outcome = excluded.outcome, resources = excluded.resources",
        )
        .bind(job_id)
        .bind(source)
        .bind(outcome)
        .bind(i64::try_from(resources).unwrap_or(i64::MAX))
        .execute(&self.store.pool)
        .await?;
        Ok(())
    }

    /// The job's sources whose export was spilled.
    pub async fn spilled(&self, job_id: &str) -> Result<Spilled, StoreError> {
        let rows = sqlx::query("SELECT source_name, outcome FROM export_source_runs WHERE job_id = $1")
            .bind(job_id)
            .fetch_all(&self.store.pool)
            .await?;
        let mut spilled =
            Spilled { job_id: job_id.to_string(), sources: BTreeSet::new(), compartments_only: BTreeSet::new() };
        for row in rows {
            let (source, outcome): (String, String) = (row.get(0), row.get(1));
            if outcome == SPILLED_COMPARTMENTS {
                spilled.compartments_only.insert(source.clone());
            }
            if outcome == SPILLED || outcome == SPILLED_COMPARTMENTS {
                spilled.sources.insert(source);
            }
        }
        Ok(spilled)
    }

    /// Drops everything spilled for a job (it ended). The resources go a few patients at a
    /// time, each batch its own short statement, so a job's hundred thousand rows never hold
    /// the write lock for long: the access-log entries of its files' first downloads, made
    /// right after, do not wait behind the cleanup. Whatever a crash leaves is dropped with
    /// the job ([`Spill::drop_orphans`]).
    pub async fn drop_job(&self, job_id: &str) -> Result<(), StoreError> {
        loop {
            let dropped = sqlx::query(
                "DELETE FROM export_source_parts WHERE job_id = $1 AND (source_name, patient) IN                  (SELECT DISTINCT source_name, patient FROM export_source_parts WHERE job_id = $1 LIMIT $2)",
            )
            .bind(job_id)
            .bind(DROP_PATIENTS_AT_ONCE)
            .execute(&self.store.pool)
            .await?;
            if dropped.rows_affected() == 0 {
                break;
            }
        }
        sqlx::query("DELETE FROM export_source_runs WHERE job_id = $1").bind(job_id).execute(&self.store.pool).await?;
        Ok(())
    }
}

impl Spill {
    /// Drops what was spilled for jobs that no longer exist (cancelled while a source
    /// unit ran).
    pub async fn drop_orphans(&self) -> Result<(), StoreError> {
        for table in ["export_source_parts", "export_source_runs"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE NOT EXISTS (SELECT 1 FROM export_jobs j WHERE j.id = {table}.job_id)"
            ))
            .execute(&self.store.pool)
            .await?;
        }
        Ok(())
    }
}

fn decode(body: &str) -> Result<Value, StoreError> {
    serde_json::from_str(body)
        .map_err(|e| StoreError::Query(sqlx::Error::Decode(format!("a spilled resource: {e}").into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(patient: &str, t: &str, id: &str) -> SpillRow {
        SpillRow {
            patient: patient.into(),
            resource_type: t.into(),
            resource_id: id.into(),
            body: serde_json::json!({"resourceType": t, "id": id}).to_string(),
        }
    }

    #[tokio::test]
    async fn rows_are_kept_by_patient_read_back_by_id_and_dropped_with_the_job() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/s.db", dir.path().display()), 2).await.unwrap();
        let spill = Spill::new(store.clone());
        // More rows than one INSERT holds, one of them twice.
        let mut rows: Vec<SpillRow> = (0..250).map(|i| row("p1", "Observation", &format!("o{i:03}"))).collect();
        rows.push(row("p1", "Observation", "o000"));
        rows.push(row("p2", "Patient", "p2"));
        rows.push(row(NO_PATIENT, "Practitioner", "dr"));
        spill.put("j1", "lab", &rows).await.unwrap();
        spill.put("j1", "lab", &rows[..3]).await.unwrap();
        spill.put("j1", "ehr", &[row("p1", "Condition", "c1")]).await.unwrap();

        assert_eq!(spill.part("j1", "lab", &["p1".into()]).await.unwrap().len(), 250, "each once");
        assert_eq!(spill.part("j1", "lab", &["p2".into(), "p9".into()]).await.unwrap().len(), 1);
        let ids = ["o007".to_string(), "o249".to_string(), "none".to_string()];
        let owners = spill.owners_of("j1", "lab", "Observation", &ids).await.unwrap();
        assert_eq!(owners.len(), 2, "{owners:?}");
        assert_eq!(owners["o007"], ["p1"]);
        assert!(spill.owners_of("j1", "lab", "Practitioner", &["dr".into()]).await.unwrap().is_empty(), "no one's");
        let found = spill.by_id("j1", "lab", "Practitioner", &["dr".into(), "nobody".into()]).await.unwrap();
        assert_eq!(found, [serde_json::json!({"resourceType": "Practitioner", "id": "dr"})]);
        assert!(spill.holds_any("j1", "lab", &["p9".into(), "p2".into()]).await.unwrap());
        assert!(!spill.holds_any("j1", "ehr", &["p2".into()]).await.unwrap(), "per source");

        spill.record_run("j1", "lab", SPILLED, 252).await.unwrap();
        spill.record_run("j1", "ehr", SPILLED_COMPARTMENTS, 1).await.unwrap();
        spill.record_run("j1", "imaging", FAILED, 0).await.unwrap();
        let spilled = spill.spilled("j1").await.unwrap();
        assert_eq!(spilled.sources.iter().collect::<Vec<_>>(), ["ehr", "lab"], "a failed export is not used");
        assert_eq!(spilled.compartments_only.iter().collect::<Vec<_>>(), ["ehr"]);

        spill.clear("j1", "lab").await.unwrap();
        assert!(spill.part("j1", "lab", &["p1".into()]).await.unwrap().is_empty(), "a redone unit starts afresh");
        assert_eq!(spill.spilled("j1").await.unwrap().sources.len(), 1);
        // No such job in export_jobs: the sweep drops its rows.
        spill.drop_orphans().await.unwrap();
        assert!(spill.part("j1", "ehr", &["p1".into()]).await.unwrap().is_empty());
        assert!(spill.spilled("j1").await.unwrap().sources.is_empty());
    }
    #[tokio::test]
    async fn a_job_is_dropped_a_few_patients_at_a_time_and_only_that_job() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/d.db", dir.path().display()), 2).await.unwrap();
        let spill = Spill::new(store.clone());
        // More patients than one cleanup statement drops, in two sources, and another job.
        let patients: Vec<String> = (0..(DROP_PATIENTS_AT_ONCE * 3 + 7)).map(|i| format!("p{i}")).collect();
        for source in ["lab", "ehr"] {
            let rows: Vec<SpillRow> = patients
                .iter()
                .flat_map(|p| (0..3).map(move |n| row(p, "Observation", &format!("{p}-o{n}"))))
                .chain([row(NO_PATIENT, "Practitioner", "dr")])
                .collect();
            spill.put("ending", source, &rows).await.unwrap();
            spill.record_run("ending", source, SPILLED, rows.len() as u64).await.unwrap();
        }
        spill.put("other", "lab", &[row("p1", "Observation", "kept")]).await.unwrap();
        spill.record_run("other", "lab", SPILLED, 1).await.unwrap();

        spill.drop_job("ending").await.unwrap();
        let left: Vec<(String, i64)> =
            sqlx::query_as("SELECT job_id, COUNT(*) FROM export_source_parts GROUP BY job_id")
                .fetch_all(&store.pool)
                .await
                .unwrap();
        assert_eq!(left, [("other".to_string(), 1)]);
        assert!(spill.spilled("ending").await.unwrap().sources.is_empty());
        assert_eq!(spill.part("other", "lab", &["p1".into()]).await.unwrap().len(), 1, "another job's spill stays");
        assert_eq!(spill.spilled("other").await.unwrap().sources.len(), 1);
    }
}
