//! Short reads of an SQLite file on the calling thread. sqlx runs every SQLite statement on
//! a connection thread of its own: each statement is a hand-off there and back (two thread
//! wake-ups, and a third when the pool pings the connection it is given back), which on a
//! data request cost more than the indexed lookup itself. The one statement every data
//! request makes (the patient's link and ledger) and the bearer check's revocation
//! generation run here instead, on query-only connections of the same file in WAL mode,
//! where a reader never waits for the writer: they see every committed write at once, as
//! the pool's connections do.
//!
//! The access log's committer also appends here, one autocommitted `INSERT` of a batch on
//! a connection of its own ([`InlineReads::append_connection`]), for the same reason.
//!
//! Its reads must never write, and nothing here may run a statement that can take longer
//! than an index lookup or a short append, or wait for a lock: a busy file (a checkpoint
//! or recovery holding it, rare) is answered [`InlineError::Busy`] at once, and on any
//! error the caller runs the statement through the pool instead. It is used only for an
//! SQLite file (an in-memory database has no file to open twice).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// How many idle connections are kept (one per runtime thread is enough: a read holds one
/// only while its statement steps).
const KEPT: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum InlineError {
    /// The file is locked for the moment: run the statement through the pool.
    #[error("the database file is busy")]
    Busy,
    #[error("inline statement failed: {0}")]
    Sqlite(rusqlite::Error),
}

/// Every SQLite error the same way: busy or locked is [`InlineError::Busy`].
impl From<rusqlite::Error> for InlineError {
    fn from(e: rusqlite::Error) -> InlineError {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => InlineError::Busy,
            _ => InlineError::Sqlite(e),
        }
    }
}

/// Query-only connections to one SQLite file, taken by the statement that needs one (and
/// the access log's append connection, made on request).
pub struct InlineReads {
    path: PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
}

impl InlineReads {
    /// For the SQLite file at `path` (which the pool has created and migrated).
    pub fn new(path: &Path) -> InlineReads {
        InlineReads { path: path.to_path_buf(), idle: Mutex::new(Vec::new()) }
    }

    /// Runs `sql` with its one text parameter (`$1`, however often it appears) and maps each
    /// row with `row`.
    pub fn rows<T>(
        &self,
        sql: &str,
        param: &str,
        mut row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, InlineError> {
        let conn = match self.take() {
            Some(c) => c,
            None => self.open()?,
        };
        let out = (|| {
            let mut stmt = conn.prepare_cached(sql)?;
            let mut rows = stmt.query([param])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(row(r)?);
            }
            Ok::<_, rusqlite::Error>(out)
        })();
        // A failed connection is dropped, not kept.
        let out = out?;
        self.give_back(conn);
        Ok(out)
    }

    /// A connection that may write, for the access log's one-statement appends only: it
    /// never waits for the write lock (busy is answered at once, and the batch goes through
    /// a transaction on the pool instead).
    pub fn append_connection(&self) -> Result<rusqlite::Connection, InlineError> {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = rusqlite::Connection::open_with_flags(&self.path, flags)?;
        conn.busy_timeout(std::time::Duration::ZERO)?;
        // As the pool's connections: WAL keeps committed data safe with NORMAL.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // It never checkpoints (a checkpoint syncs the file): its user has the pool do it.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        Ok(conn)
    }

    fn take(&self) -> Option<rusqlite::Connection> {
        self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop()
    }

    fn give_back(&self, conn: rusqlite::Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < KEPT {
            idle.push(conn);
        }
    }

    fn open(&self) -> Result<rusqlite::Connection, InlineError> {
        use rusqlite::OpenFlags;
        // Opened for reading and writing (so that it may recreate the WAL's shared-memory
        // file if every other connection has closed), but `query_only`: any statement that
        // would change the file is refused.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = rusqlite::Connection::open_with_flags(&self.path, flags)?;
        // Never wait for a lock on a runtime thread: busy is answered at once.
        conn.busy_timeout(std::time::Duration::ZERO)?;
        conn.pragma_update(None, "query_only", true)?;
        Ok(conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_what_the_pool_committed_and_never_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&format!("sqlite://{}/t.db", dir.path().display()), 4).await.unwrap();
        let inline = store.inline.as_ref().expect("a file database reads inline");
        sqlx::query("INSERT INTO hold_preferences (patient_id, label, set_at) VALUES ('p1', 'HIV', 'now')")
            .execute(&store.pool)
            .await
            .unwrap();
        let sql = "SELECT label FROM hold_preferences WHERE patient_id = $1 OR patient_id = $1 || 'x'";
        let got = inline.rows(sql, "p1", |r| r.get::<_, String>(0)).unwrap();
        assert_eq!(got, vec!["HIV".to_string()]);
        // A later commit is seen by the next read on the same kept connection.
        sqlx::query("INSERT INTO hold_preferences (patient_id, label, set_at) VALUES ('p1', 'ETH', 'now')")
            .execute(&store.pool)
            .await
            .unwrap();
        let mut got = inline.rows(sql, "p1", |r| r.get::<_, String>(0)).unwrap();
        got.sort();
        assert_eq!(got, vec!["ETH".to_string(), "HIV".to_string()]);
        assert!(inline.rows(sql, "p2", |r| r.get::<_, String>(0)).unwrap().is_empty());
        // Query-only: a write through it is refused and changes nothing.
        let write = inline.rows("DELETE FROM hold_preferences WHERE patient_id = $1 RETURNING label", "p1", |r| {
            r.get::<_, String>(0)
        });
        assert!(matches!(write, Err(InlineError::Sqlite(_))), "{write:?}");
        let left: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM hold_preferences").fetch_one(&store.pool).await.unwrap();
        assert_eq!(left, 2);
    }

    #[test]
    fn a_file_locked_exclusively_is_busy_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        // Another process's exclusive lock (as during WAL recovery or a truncating checkpoint).
        let other = rusqlite::Connection::open(&path).unwrap();
        other
            .execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE t (x); PRAGMA locking_mode = EXCLUSIVE; \
                 BEGIN EXCLUSIVE; INSERT INTO t VALUES (1);",
            )
            .unwrap();
        let inline = InlineReads::new(&path);
        let count = "SELECT COUNT(*) FROM t WHERE $1 = $1";
        let started = std::time::Instant::now();
        let got = inline.rows(count, "x", |r| r.get::<_, i64>(0));
        assert!(matches!(got, Err(InlineError::Busy)), "{got:?}");
        // Not after a busy timeout like the pool's (10 s): at once.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        other.execute_batch("COMMIT").unwrap();
        drop(other);
        assert_eq!(inline.rows(count, "x", |r| r.get::<_, i64>(0)).unwrap(), vec![1]);
    }
}
