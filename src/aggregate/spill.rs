//! The spill area of sources' own Bulk Data exports: what a source's export held, grouped by
//! the source's patient as it streamed in (rows in the store, so memory stays bounded and
//! every replica can build any person's part from it), and per job and source whether the
//! export was spilled or failed. Each job's export from each source gets a table of its own
//! (named in `export_spills`), loaded without indexes — appends, not a random insert into two
//! B-trees per row — and indexed once loaded ([`Spill::seal`]); it goes whole when the job
//! ends. Rows are the resources exactly as the source sent them (its own references made
//! relative); they are read back only by aggregation, to build a person's part of a record
//! in place of searching the source. It decides nothing about access and never logs a
//! resource.

use crate::store::{Dialect, Store, StoreError};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::collections::{BTreeSet, HashMap};

/// What became of one source's export for a job: spilled whole (system level: a resource
/// not in it is not at the source), spilled for a Group (the patients' compartments only:
/// what they reference may still be read from the source), or failed.
pub const SPILLED: &str = "spilled";
pub const SPILLED_COMPARTMENTS: &str = "spilled-compartments";
pub const FAILED: &str = "failed";

/// The patient key of resources that belong to no one patient.
pub const NO_PATIENT: &str = "";

/// How every spill table's name starts.
const TABLE_PREFIX: &str = "spill_";

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

/// The table of `source`'s export for job `job_id`: a digest of the two, so neither needs
/// quoting and the name stays within PostgreSQL's 63 characters.
fn table_of(job_id: &str, source: &str) -> String {
    let digest = Sha256::new().chain_update(job_id).chain_update([0u8]).chain_update(source).finalize();
    format!("{TABLE_PREFIX}{}", &hex::encode(digest)[..24])
}

/// Drops the spill tables registered for `job_id` (only `source`'s, when given) and their
/// registrations, inside the caller's transaction.
async fn drop_tables(
    conn: &mut sqlx::AnyConnection,
    job_id: &str,
    source: Option<&str>,
) -> Result<(), StoreError> {
    let (select, delete) = match source {
        Some(_) => (
            "SELECT table_name FROM export_spills WHERE job_id = $1 AND source_name = $2",
            "DELETE FROM export_spills WHERE job_id = $1 AND source_name = $2",
        ),
        None => (
            "SELECT table_name FROM export_spills WHERE job_id = $1",
            "DELETE FROM export_spills WHERE job_id = $1",
        ),
    };
    let mut q = sqlx::query_scalar(select).bind(job_id);
    if let Some(source) = source {
        q = q.bind(source);
    }
    let tables: Vec<String> = q.fetch_all(&mut *conn).await?;
    for table in tables {
        // Names are made by `table_of` only; checked again before they reach DDL.
        if table.starts_with(TABLE_PREFIX) && table[TABLE_PREFIX.len()..].bytes().all(|b| b.is_ascii_hexdigit()) {
            sqlx::query(&format!("DROP TABLE IF EXISTS {table}")).persistent(false).execute(&mut *conn).await?;
        }
    }
    let mut q = sqlx::query(delete).bind(job_id);
    if let Some(source) = source {
        q = q.bind(source);
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

/// Drops `source`'s table for `job_id` (every source's, when none is given) and forgets how
/// its export ended, inside the caller's transaction.
pub(crate) async fn forget(
    conn: &mut sqlx::AnyConnection,
    job_id: &str,
    source: Option<&str>,
) -> Result<(), StoreError> {
    drop_tables(conn, job_id, source).await?;
    match source {
        Some(source) => {
            sqlx::query("DELETE FROM export_source_runs WHERE job_id = $1 AND source_name = $2")
                .bind(job_id)
                .bind(source)
                .execute(&mut *conn)
                .await?
        }
        None => sqlx::query("DELETE FROM export_source_runs WHERE job_id = $1").bind(job_id).execute(&mut *conn).await?,
    };
    Ok(())
}

impl Spill {
    pub fn new(store: Store) -> Spill {
        Spill { store }
    }

    /// Makes an empty table for `source`'s export in `job` (what an earlier attempt spilled
    /// and recorded is dropped first: a unit redone starts afresh).
    pub async fn begin(&self, job_id: &str, source: &str) -> Result<(), StoreError> {
        let table = table_of(job_id, source);
        // SQLite numbers rows itself; PostgreSQL is told to.
        let seq = match self.store.dialect {
            Dialect::Sqlite => "seq INTEGER PRIMARY KEY",
            Dialect::Postgres => "seq BIGINT GENERATED ALWAYS AS IDENTITY",
        };
        let mut tx = self.store.begin_write().await?;
        forget(&mut tx, job_id, Some(source)).await?;
        sqlx::query(&format!(
            "CREATE TABLE {table} ({seq}, patient TEXT NOT NULL, resource_type TEXT NOT NULL,
             resource_id TEXT NOT NULL, body TEXT NOT NULL)"
        ))
        .persistent(false)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO export_spills (job_id, source_name, table_name) VALUES ($1, $2, $3)")
            .bind(job_id)
            .bind(source)
            .bind(&table)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Drops what was spilled and recorded for `source` in `job` (its export failed).
    pub async fn clear(&self, job_id: &str, source: &str) -> Result<(), StoreError> {
        let mut tx = self.store.begin_write().await?;
        forget(&mut tx, job_id, Some(source)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Appends rows (one transaction) to the table [`Spill::begin`] made. A resource spilled
    /// twice for one patient is read back once, as first spilled.
    pub async fn put(&self, job_id: &str, source: &str, rows: &[SpillRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let table = table_of(job_id, source);
        let mut tx = self.store.begin_write().await?;
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let marks = self.store.placeholders(chunk.len() * 4);
            let values: Vec<String> = marks.chunks(4).map(|m| format!("({})", m.join(", "))).collect();
            let sql =
                format!("INSERT INTO {table} (patient, resource_type, resource_id, body) VALUES {}", values.join(", "));
            let mut q = sqlx::query(&sql);
            for r in chunk {
                q = q.bind(&r.patient).bind(&r.resource_type).bind(&r.resource_id).bind(&r.body);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Indexes a loaded table, by patient and by resource: each index built in one pass (a
    /// sort), where inserting into it row by row was a random write per row. Rows put after
    /// (Provenances) are indexed as they come.
    pub async fn seal(&self, job_id: &str, source: &str) -> Result<(), StoreError> {
        let table = table_of(job_id, source);
        for (suffix, columns) in [("p", "patient, resource_type, resource_id, seq"), ("r", "resource_type, resource_id")] {
            let mut tx = self.store.begin_write().await?;
            sqlx::query(&format!("CREATE INDEX IF NOT EXISTS {table}_{suffix} ON {table} ({columns})"))
                .persistent(false)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
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
        let table = table_of(job_id, source);
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let marks = self.store.placeholders(chunk.len() + 1);
            let sql = format!(
                "SELECT resource_id, patient FROM {table}
                 WHERE resource_type = {} AND patient <> '' AND resource_id IN ({})",
                marks[0],
                marks[1..].join(", ")
            );
            let mut q = sqlx::query(&sql).bind(resource_type);
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

    /// Everything spilled for the source's patients `patients` (each resource once per
    /// patient).
    pub async fn part(&self, job_id: &str, source: &str, patients: &[String]) -> Result<Vec<Value>, StoreError> {
        let sql = format!(
            "SELECT resource_type, resource_id, body FROM {} WHERE patient = $1 ORDER BY resource_type, resource_id, seq",
            table_of(job_id, source)
        );
        let mut out = Vec::new();
        for patient in patients {
            let rows = sqlx::query(&sql).bind(patient).fetch_all(&self.store.pool).await?;
            let mut last: Option<(String, String)> = None;
            for row in rows {
                let key: (String, String) = (row.get(0), row.get(1));
                if last.as_ref() != Some(&key) {
                    out.push(decode(&row.get::<String, _>(2))?);
                    last = Some(key);
                }
            }
        }
        Ok(out)
    }

    /// Spilled resources of `resource_type` by id, whoever they belong to (each once, as
    /// first spilled).
    pub async fn by_id(
        &self,
        job_id: &str,
        source: &str,
        resource_type: &str,
        ids: &[String],
    ) -> Result<Vec<Value>, StoreError> {
        let table = table_of(job_id, source);
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let marks = self.store.placeholders(chunk.len() + 1);
            let sql = format!(
                "SELECT resource_id, body FROM {table} WHERE resource_type = {} AND resource_id IN ({}) ORDER BY seq",
                marks[0],
                marks[1..].join(", ")
            );
            let mut q = sqlx::query(&sql).bind(resource_type);
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
        let sql = format!("SELECT CAST(1 AS BIGINT) FROM {} WHERE patient = $1 LIMIT 1", table_of(job_id, source));
        for patient in patients {
            let found: Option<i64> = sqlx::query_scalar(&sql).bind(patient).fetch_optional(&self.store.pool).await?;
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

    /// Drops everything spilled for a job (it ended): each source's table whole, each in a
    /// short transaction of its own, so the write lock is never held for all of them at once.
    /// Whatever a crash leaves is dropped with the job ([`Spill::drop_orphans`]).
    pub async fn drop_job(&self, job_id: &str) -> Result<(), StoreError> {
        let sources: Vec<String> = sqlx::query_scalar("SELECT source_name FROM export_spills WHERE job_id = $1")
            .bind(job_id)
            .fetch_all(&self.store.pool)
            .await?;
        for source in sources {
            let mut tx = self.store.begin_write().await?;
            drop_tables(&mut tx, job_id, Some(&source)).await?;
            tx.commit().await?;
        }
        sqlx::query("DELETE FROM export_source_runs WHERE job_id = $1").bind(job_id).execute(&self.store.pool).await?;
        Ok(())
    }

    /// Drops what was spilled for jobs that no longer exist (cancelled while a source
    /// unit ran).
    pub async fn drop_orphans(&self) -> Result<(), StoreError> {
        let jobs: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT job_id FROM export_spills s WHERE NOT EXISTS (SELECT 1 FROM export_jobs j WHERE j.id = s.job_id)",
        )
        .fetch_all(&self.store.pool)
        .await?;
        for job_id in jobs {
            self.drop_job(&job_id).await?;
        }
        sqlx::query(
            "DELETE FROM export_source_runs WHERE NOT EXISTS (SELECT 1 FROM export_jobs j WHERE j.id = export_source_runs.job_id)",
        )
        .execute(&self.store.pool)
        .await?;
        Ok(())
    }

    /// The spill tables the database holds, by name (registered or not): what a finished
    /// job must leave none of.
    pub async fn tables(&self) -> Result<Vec<String>, StoreError> {
        let sql = match self.store.dialect {
            Dialect::Sqlite => "SELECT name FROM main.sqlite_master WHERE type = 'table' AND name LIKE 'spill!_%' ESCAPE '!'",
            Dialect::Postgres => {
                "SELECT table_name::text FROM information_schema.tables
                 WHERE table_schema = current_schema() AND table_name LIKE 'spill!_%' ESCAPE '!'"
            }
        };
        let mut names: Vec<String> = sqlx::query_scalar(sql).fetch_all(&self.store.pool).await?;
        names.sort();
        Ok(names)
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
        row_with(patient, t, id, 0)
    }

    fn row_with(patient: &str, t: &str, id: &str, version: u32) -> SpillRow {
        SpillRow {
            patient: patient.into(),
            resource_type: t.into(),
            resource_id: id.into(),
            body: serde_json::json!({"resourceType": t, "id": id, "meta": {"versionId": version.to_string()}})
                .to_string(),
        }
    }

    async fn store(dir: &tempfile::TempDir) -> Store {
        Store::open(&format!("sqlite://{}/s.db", dir.path().display()), 2).await.unwrap()
    }

    #[tokio::test]
    async fn rows_are_kept_by_patient_read_back_by_id_and_dropped_with_the_job() {
        let dir = tempfile::tempdir().unwrap();
        let spill = Spill::new(store(&dir).await);
        spill.begin("j1", "lab").await.unwrap();
        spill.begin("j1", "ehr").await.unwrap();
        // More rows than one INSERT holds, one of them twice (the second copy differs: the
        // first spilled is the one read back).
        let mut rows: Vec<SpillRow> = (0..250).map(|i| row("p1", "Observation", &format!("o{i:03}"))).collect();
        rows.push(row_with("p1", "Observation", "o000", 2));
        rows.push(row("p2", "Patient", "p2"));
        rows.push(row(NO_PATIENT, "Practitioner", "dr"));
        spill.put("j1", "lab", &rows[..120]).await.unwrap();
        // Rows put after the table is indexed are found too.
        spill.seal("j1", "lab").await.unwrap();
        spill.put("j1", "lab", &rows[120..]).await.unwrap();
        spill.put("j1", "ehr", &[row("p1", "Condition", "c1")]).await.unwrap();
        spill.seal("j1", "ehr").await.unwrap();
        assert_eq!(spill.tables().await.unwrap().len(), 2, "a table per job and source");

        let p1 = spill.part("j1", "lab", &["p1".into()]).await.unwrap();
        assert_eq!(p1.len(), 250, "each once");
        assert_eq!(p1[0]["id"], "o000");
        assert_eq!(p1[0]["meta"]["versionId"], "0", "as first spilled");
        assert_eq!(spill.part("j1", "lab", &["p2".into(), "p9".into()]).await.unwrap().len(), 1);
        assert_eq!(spill.part("j1", "ehr", &["p1".into()]).await.unwrap()[0]["id"], "c1", "per source");
        let ids = ["o007".to_string(), "o249".to_string(), "none".to_string()];
        let owners = spill.owners_of("j1", "lab", "Observation", &ids).await.unwrap();
        assert_eq!(owners.len(), 2, "{owners:?}");
        assert_eq!(owners["o007"], ["p1"]);
        assert!(spill.owners_of("j1", "lab", "Practitioner", &["dr".into()]).await.unwrap().is_empty(), "no one's");
        let found = spill.by_id("j1", "lab", "Practitioner", &["dr".into(), "nobody".into()]).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0]["id"], "dr");
        let twice = spill.by_id("j1", "lab", "Observation", &["o000".into()]).await.unwrap();
        assert_eq!((twice.len(), &twice[0]["meta"]["versionId"]), (1, &serde_json::json!("0")));
        assert!(spill.holds_any("j1", "lab", &["p9".into(), "p2".into()]).await.unwrap());
        assert!(!spill.holds_any("j1", "ehr", &["p2".into()]).await.unwrap(), "per source");

        spill.record_run("j1", "lab", SPILLED, 252).await.unwrap();
        spill.record_run("j1", "ehr", SPILLED_COMPARTMENTS, 1).await.unwrap();
        spill.record_run("j1", "imaging", FAILED, 0).await.unwrap();
        let spilled = spill.spilled("j1").await.unwrap();
        assert_eq!(spilled.sources.iter().collect::<Vec<_>>(), ["ehr", "lab"], "a failed export is not used");
        assert_eq!(spilled.compartments_only.iter().collect::<Vec<_>>(), ["ehr"]);

        // A unit redone starts afresh: its table is empty again, its outcome forgotten.
        spill.begin("j1", "lab").await.unwrap();
        assert!(spill.part("j1", "lab", &["p1".into()]).await.unwrap().is_empty());
        assert_eq!(spill.spilled("j1").await.unwrap().sources.len(), 1);
        assert_eq!(spill.tables().await.unwrap().len(), 2);
        // A failed export: its table and outcome go.
        spill.clear("j1", "lab").await.unwrap();
        assert_eq!(spill.tables().await.unwrap().len(), 1);
        assert!(spill.part("j1", "lab", &["p1".into()]).await.is_err(), "no table to read: not an empty part");
        // No such job in export_jobs: the sweep drops its tables and outcomes.
        spill.drop_orphans().await.unwrap();
        assert!(spill.tables().await.unwrap().is_empty());
        assert!(spill.spilled("j1").await.unwrap().sources.is_empty());
        let registered: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM export_spills").fetch_one(&spill.store.pool).await.unwrap();
        assert_eq!(registered, 0);
    }

    #[tokio::test]
    async fn a_job_is_dropped_table_by_table_and_only_that_job() {
        let dir = tempfile::tempdir().unwrap();
        let spill = Spill::new(store(&dir).await);
        for source in ["lab", "ehr"] {
            spill.begin("ending", source).await.unwrap();
            let rows: Vec<SpillRow> = (0..40)
                .flat_map(|p| (0..3).map(move |n| row(&format!("p{p}"), "Observation", &format!("p{p}-o{n}"))))
                .chain([row(NO_PATIENT, "Practitioner", "dr")])
                .collect();
            spill.put("ending", source, &rows).await.unwrap();
            spill.seal("ending", source).await.unwrap();
            spill.record_run("ending", source, SPILLED, rows.len() as u64).await.unwrap();
        }
        spill.begin("other", "lab").await.unwrap();
        spill.put("other", "lab", &[row("p1", "Observation", "kept")]).await.unwrap();
        spill.seal("other", "lab").await.unwrap();
        spill.record_run("other", "lab", SPILLED, 1).await.unwrap();
        assert_eq!(spill.tables().await.unwrap().len(), 3);

        spill.drop_job("ending").await.unwrap();
        assert_eq!(spill.tables().await.unwrap(), [table_of("other", "lab")]);
        assert!(spill.spilled("ending").await.unwrap().sources.is_empty());
        assert_eq!(spill.part("other", "lab", &["p1".into()]).await.unwrap().len(), 1, "another job's spill stays");
        assert_eq!(spill.spilled("other").await.unwrap().sources.len(), 1);
        // Dropping again is no error.
        spill.drop_job("ending").await.unwrap();
    }

    #[test]
    fn table_names_are_plain_and_distinct() {
        let a = table_of("a1", "lab");
        assert!(a.starts_with(TABLE_PREFIX) && a.len() == TABLE_PREFIX.len() + 24, "{a}");
        assert!(a[TABLE_PREFIX.len()..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, table_of("a1", "ehr"));
        assert_ne!(table_of("a1", "lab"), table_of("a1l", "ab"), "the parts are kept apart");
    }
}
