//! Short reads of an SQLite file on the calling thread. sqlx runs every SQLite statement on
//! a connection thread of its own: each statement is a hand-off there and back (two thread
//! wake-ups, and a third when the pool pings the connection it is given back), which on a
//! data request cost more than the indexed lookup itself. The one statement every data
//! request makes (the patient's link and ledger) and the bearer check's revocation
//! generation run here instead, on query-only connections of the same file in WAL mode,
//! where a reader never waits for the writer: they see every committed write at once, as
//! the pool's connections do.
//!
//! Each connection keeps what it read, per statement and parameter, only while SQLite's
//! `data_version` of the file — read before every use, one cheap statement — is unchanged:
//! it changes whenever any other connection, in this process or another, commits to the
//! file. So a kept answer is never older than one read afresh at that moment would be. The
//! access log lives in a file of its own (see [`crate::store`]), so the appends every request
//! makes do not change this one.
//!
//! The access log's committer also appends here, one autocommitted `INSERT` of a batch on
//! a connection of its own to the access log's file ([`InlineReads::append_connection`]),
//! for the same reason.
//!
//! Its reads must never write, and nothing here may run a statement that can take longer
//! than an index lookup or a short append, or wait for a lock: a busy file (a checkpoint
//! or recovery holding it, rare) is answered [`InlineError::Busy`] at once, and on any
//! error the caller runs the statement through the pool instead. It is used only for an
//! SQLite file (an in-memory database has no file to open twice).

use rusqlite::types::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How many idle connections are kept (one per runtime thread is enough: a read holds one
/// only while its statement steps).
const KEPT: usize = 8;

/// Each reader's page cache, in KiB.
const READER_CACHE_KIB: i64 = 256;

/// The page cache of a connection's access log file (appends, and the log's index lookups),
/// in KiB.
pub const APPEND_CACHE_KIB: i64 = 256;

/// How many answers one connection keeps (all are dropped at the file's next change, and
/// when this many are kept).
const KEPT_ANSWERS: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum InlineError {
    /// The file is locked for the moment: run the statement through the pool.
    #[error("the database file is busy")]
    Busy,
    #[error("inline statement failed: {0}")]
    Sqlite(rusqlite::Error),
    /// A value of another type than the statement's reader expected.
    #[error("unexpected value in column {0}")]
    Column(usize),
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

/// One row as read: its values in column order.
pub type Values = [Value];

/// The text in column `i` of `row`.
pub fn text(row: &Values, i: usize) -> Result<String, InlineError> {
    match row.get(i) {
        Some(Value::Text(t)) => Ok(t.clone()),
        _ => Err(InlineError::Column(i)),
    }
}

/// The integer in column `i` of `row`.
pub fn integer(row: &Values, i: usize) -> Result<i64, InlineError> {
    match row.get(i) {
        Some(Value::Integer(n)) => Ok(*n),
        _ => Err(InlineError::Column(i)),
    }
}

/// Query-only connections to one SQLite file, taken by the statement that needs one (and
/// the access log's append connection, made on request).
pub struct InlineReads {
    path: PathBuf,
    audit_path: PathBuf,
    idle: Mutex<Vec<Reader>>,
}

/// The rows one statement read for one parameter.
type Answer = Arc<Vec<Vec<Value>>>;

/// A query-only connection and the answers it keeps (per statement, then parameter) for
/// the file's `data_version` it saw.
struct Reader {
    conn: rusqlite::Connection,
    seen: i64,
    kept: HashMap<&'static str, HashMap<String, Answer>>,
    count: usize,
}

impl InlineReads {
    /// For the SQLite file at `path` (which the pool has created and migrated) and its
    /// access log's file at `audit_path`.
    pub fn new(path: &Path, audit_path: &Path) -> InlineReads {
        InlineReads { path: path.to_path_buf(), audit_path: audit_path.to_path_buf(), idle: Mutex::new(Vec::new()) }
    }

    /// Runs `sql` with its one text parameter (`$1`, however often it appears) — or takes
    /// the rows this connection kept from running it, if the file has not changed since —
    /// and maps each row with `row`.
    pub fn rows<T>(
        &self,
        sql: &'static str,
        param: &str,
        row: impl FnMut(&Values) -> Result<T, InlineError>,
    ) -> Result<Vec<T>, InlineError> {
        let mut reader = match self.take() {
            Some(r) => r,
            None => self.open()?,
        };
        // A failed connection is dropped, not kept.
        let rows = reader.rows(sql, param)?;
        self.give_back(reader);
        rows.iter().map(Vec::as_slice).map(row).collect()
    }

    /// A connection that may write, for the access log's one-statement appends only (to the
    /// access log's own file, where `audit_events` is the main schema's): it never waits for
    /// the write lock (busy is answered at once, and the batch goes through a transaction on
    /// the pool instead).
    pub fn append_connection(&self) -> Result<rusqlite::Connection, InlineError> {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = rusqlite::Connection::open_with_flags(&self.audit_path, flags)?;
        conn.busy_timeout(std::time::Duration::ZERO)?;
        // As the pool's connections: WAL keeps committed data safe with NORMAL.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // It never checkpoints (a checkpoint syncs the file): its user has the pool do it.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // An append touches the last pages of the table and of its index: a small cache.
        conn.pragma_update(None, "cache_size", -APPEND_CACHE_KIB)?;
        Ok(conn)
    }

    fn take(&self) -> Option<Reader> {
        self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop()
    }

    fn give_back(&self, reader: Reader) {
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < KEPT {
            idle.push(reader);
        }
    }

    fn open(&self) -> Result<Reader, InlineError> {
        use rusqlite::OpenFlags;
        // Opened for reading and writing (so that it may recreate the WAL's shared-memory
        // file if every other connection has closed), but `query_only`: any statement that
        // would change the file is refused.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = rusqlite::Connection::open_with_flags(&self.path, flags)?;
        // Never wait for a lock on a runtime thread: busy is answered at once.
        conn.busy_timeout(std::time::Duration::ZERO)?;
        conn.pragma_update(None, "query_only", true)?;
        // Its statements are indexed lookups, and what they answered is kept above: a small
        // page cache (SQLite's default is 2 MB a connection, which the access log's appends
        // no longer empty) keeps the gateway's memory from rising by KEPT × 2 MB as they fill.
        conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)?;
        Ok(Reader { conn, seen: -1, kept: HashMap::new(), count: 0 })
    }
}

impl Reader {
    /// The rows of `sql` for `param`: kept ones while the file's `data_version` is the one
    /// they were read at, else read now (after reading the version, so that a commit in
    /// between can only make them newer than the version they are kept under, never older).
    fn rows(&mut self, sql: &'static str, param: &str) -> Result<Answer, InlineError> {
        let version: i64 = self.conn.prepare_cached("PRAGMA data_version")?.query_row([], |r| r.get(0))?;
        if version != self.seen || self.count >= KEPT_ANSWERS {
            self.kept.clear();
            self.count = 0;
            self.seen = version;
        }
        if let Some(rows) = self.kept.get(sql).and_then(|k| k.get(param)) {
            return Ok(rows.clone());
        }
        let mut stmt = self.conn.prepare_cached(sql)?;
        let columns = stmt.column_count();
        let mut rows = stmt.query([param])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push((0..columns).map(|i| r.get::<_, Value>(i)).collect::<rusqlite::Result<Vec<_>>>()?);
        }
        let out = Arc::new(out);
        self.kept.entry(sql).or_default().insert(param.to_string(), out.clone());
        self.count += 1;
        Ok(out)
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
        let got = inline.rows(sql, "p1", |r| text(r, 0)).unwrap();
        assert_eq!(got, vec!["HIV".to_string()]);
        // A later commit is seen by the next read on the same kept connection.
        sqlx::query("INSERT INTO hold_preferences (patient_id, label, set_at) VALUES ('p1', 'ETH', 'now')")
            .execute(&store.pool)
            .await
            .unwrap();
        let mut got = inline.rows(sql, "p1", |r| text(r, 0)).unwrap();
        got.sort();
        assert_eq!(got, vec!["ETH".to_string(), "HIV".to_string()]);
        assert!(inline.rows(sql, "p2", |r| text(r, 0)).unwrap().is_empty());
        // Query-only: a write through it is refused and changes nothing.
        let write = inline.rows("DELETE FROM hold_preferences WHERE patient_id = $1 RETURNING label", "p1", |r| text(r, 0));
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
        let inline = InlineReads::new(&path, &dir.path().join("t-audit.db"));
        let count = "SELECT COUNT(*) FROM t WHERE $1 = $1";
        let started = std::time::Instant::now();
        let got = inline.rows(count, "x", |r| integer(r, 0));
        assert!(matches!(got, Err(InlineError::Busy)), "{got:?}");
        // Not after a busy timeout like the pool's (10 s): at once.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        other.execute_batch("COMMIT").unwrap();
        drop(other);
        assert_eq!(inline.rows(count, "x", |r| integer(r, 0)).unwrap(), vec![1]);
    }

    #[tokio::test]
    async fn keeps_an_answer_only_until_anyone_commits_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = crate::store::Store::open(&format!("sqlite://{}", path.display()), 4).await.unwrap();
        let inline = store.inline.as_ref().expect("a file database reads inline");
        let sql = "SELECT label FROM hold_preferences WHERE patient_id = $1";
        let labels = |who: &str| {
            let mut got = inline.rows(sql, who, |r| text(r, 0)).unwrap();
            got.sort();
            got
        };
        sqlx::query("INSERT INTO hold_preferences (patient_id, label, set_at) VALUES ('p1', 'HIV', 'now')")
            .execute(&store.pool)
            .await
            .unwrap();
        assert_eq!(labels("p1"), ["HIV"]);
        // Kept: the same connection answers again with what it read (the same rows, not a
        // copy read again).
        let mut reader = inline.take().expect("the connection was given back");
        let first = reader.rows(sql, "p1").unwrap();
        assert!(Arc::ptr_eq(&first, &reader.rows(sql, "p1").unwrap()), "answered from what it kept");
        assert!(!Arc::ptr_eq(&first, &reader.rows(sql, "p2").unwrap()), "kept per parameter");

        // The access log's appends go to their own file: they leave the answer kept.
        let log = inline.append_connection().unwrap();
        log.execute_batch(
            "INSERT INTO audit_events (seq, recorded, actor, role, action, what, outcome, prev_hash, hash) \
             VALUES (1, 'now', 'a', 'staff', 'read', 'Patient/p1', 'success', '', 'h')",
        )
        .unwrap();
        assert!(Arc::ptr_eq(&first, &reader.rows(sql, "p1").unwrap()), "still kept after an append to the access log");
        inline.give_back(reader);

        // Any other connection's commit to the file — the pool's, or one outside this
        // process's pool, as another process's — is seen by the next read.
        let other = rusqlite::Connection::open(&path).unwrap();
        other.execute_batch("INSERT INTO hold_preferences (patient_id, label, set_at) VALUES ('p1', 'ETH', 'now')").unwrap();
        assert_eq!(labels("p1"), ["ETH", "HIV"]);
        sqlx::query("DELETE FROM hold_preferences WHERE label = 'HIV'").execute(&store.pool).await.unwrap();
        assert_eq!(labels("p1"), ["ETH"]);
        let audited: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_events").fetch_one(&store.pool).await.unwrap();
        assert_eq!(audited, 1, "the pool reaches the access log's file by the same name");
    }
}
