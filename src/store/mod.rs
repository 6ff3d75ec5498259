//! Database pools and migrations: an SQLite file by default, PostgreSQL when `database.url`
//! says so; both run the same migrations (`migrations/`) and the same queries (written with
//! `$n` placeholders, which both accept). It owns connections, never business rules.
//!
//! SQLite has one writer at a time. So that concurrent writers queue instead of failing
//! with "database is locked", the file runs in WAL mode (readers never wait for the
//! writer), every connection waits up to [`SQLITE_BUSY_TIMEOUT`] for the write lock, and a
//! transaction that writes starts with [`Store::begin_write`] (`BEGIN IMMEDIATE`: it takes
//! the write lock first, so it never has to upgrade a read snapshot another writer has
//! made stale — an error no wait can cure). Writes are single statements or short
//! transactions; nothing holds the write lock across a network call.
//!
//! On an SQLite file the access log (`audit_events`) lives in a file of its own beside it
//! ([`audit_file`], attached to every connection as `audit`, so the same unqualified
//! statements reach it): it is appended on every request, and a commit to a file makes
//! every other connection of that file drop its page cache and its memo of what it read
//! ([`inline`]) — the patient index and the policy ledger no longer are. The table is
//! created by the migrations in the main file and moved on opening ([`move_access_log`]).
//! A later migration that touches `audit_events` must say so for SQLite (`audit.`).

use sqlx::AnyPool;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use std::path::Path;

pub mod inline;
pub mod text;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {url}: {message}")]
    Open { url: String, message: String },
    #[error("cannot migrate database: {0}")]
    Migrate(String),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
}

impl StoreError {
    /// A failure that waiting may cure: the write lock still held (SQLite busy or locked,
    /// a stale snapshot), a race for the same row (unique violation), a serialization
    /// failure or deadlock (PostgreSQL), no connection free in time.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Query(sqlx::Error::PoolTimedOut) => true,
            StoreError::Query(sqlx::Error::Database(e)) => {
                e.is_unique_violation()
                    || matches!(
                        e.code().as_deref(),
                        Some("5" | "6" | "261" | "262" | "517" | "773" | "40001" | "40P01" | "55P03")
                    )
                    || e.message().contains("database is locked")
            }
            _ => false,
        }
    }

    /// Text the database refused as it was given, not a failure of the database: on
    /// PostgreSQL a NUL byte in a text value (SQLSTATE 22021, invalid byte sequence) or
    /// `\u0000` in JSON (22P05, untranslatable character). Each surface answers it 400 like
    /// any other bad input (a backstop: the text is checked at the door, see [`text`]).
    pub fn is_bad_text(&self) -> bool {
        match self {
            StoreError::Query(sqlx::Error::Database(e)) => matches!(e.code().as_deref(), Some("22021" | "22P05")),
            _ => false,
        }
    }
}

/// Which database a pool talks to (a few statements differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// `count` placeholders bound in order (see [`Store::placeholders`]).
    pub fn placeholders(self, count: usize) -> Vec<String> {
        match self {
            Dialect::Sqlite => vec!["?".to_string(); count],
            Dialect::Postgres => (1..=count).map(|n| format!("${n}")).collect(),
        }
    }
}

#[derive(Clone)]
pub struct Store {
    pub pool: AnyPool,
    pub dialect: Dialect,
    /// Short reads on the calling thread (an SQLite file only; see [`inline`]).
    pub inline: Option<std::sync::Arc<inline::InlineReads>>,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long an SQLite connection waits for another's write to finish before giving up.
pub const SQLITE_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl Store {
    /// Opens (creating an SQLite file and its folder when missing) and migrates.
    pub async fn open(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        install_default_drivers();
        let open_err = |message: String| StoreError::Open { url: redact(url), message };
        let mut file_path: Option<std::path::PathBuf> = None;
        let (connect_url, dialect) =
            if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
                let file = path.split('?').next().unwrap_or(path);
                if file != ":memory:" && !file.is_empty() && !path.contains("mode=memory") {
                    if let Some(parent) = Path::new(file).parent().filter(|p| !p.as_os_str().is_empty()) {
                        std::fs::create_dir_all(parent).map_err(|e| open_err(e.to_string()))?;
                    }
                    file_path = Some(Path::new(file).to_path_buf());
                }
                let sep = if path.contains('?') { '&' } else { '?' };
                (format!("sqlite://{path}{sep}mode=rwc"), Dialect::Sqlite)
            } else {
                (url.to_string(), Dialect::Postgres)
            };
        let audit_path = file_path.as_deref().map(audit_file);
        let attach = audit_path.as_ref().map(|p| p.to_string_lossy().into_owned());
        let pool = AnyPoolOptions::new()
            .max_connections(if dialect == Dialect::Sqlite { max_connections.min(4) } else { max_connections })
            .acquire_timeout(std::time::Duration::from_secs(10))
            // An SQLite connection is a file handle in this process: it does not go stale the
            // way a network connection does, so it is not pinged (a round trip to its thread)
            // each time it is taken from the pool. PostgreSQL connections still are.
            .test_before_acquire(dialect == Dialect::Postgres)
            .after_connect(move |conn, _| {
                let attach = attach.clone();
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        let wait = format!("PRAGMA busy_timeout = {}", SQLITE_BUSY_TIMEOUT.as_millis());
                        sqlx::query(&wait).execute(&mut *conn).await?;
                        // WAL keeps committed data safe with NORMAL; only the last commits
                        // before a power loss may be lost, never the file.
                        sqlx::query("PRAGMA main.synchronous = NORMAL").execute(&mut *conn).await?;
                        if let Some(file) = attach {
                            sqlx::query("ATTACH DATABASE $1 AS audit").bind(file).execute(&mut *conn).await?;
                            sqlx::query("PRAGMA audit.synchronous = NORMAL").execute(&mut *conn).await?;
                            // Appends and index lookups: a small page cache, as the inline
                            // append connection's ([`inline::APPEND_CACHE_KIB`]).
                            let cache = format!("PRAGMA audit.cache_size = -{}", inline::APPEND_CACHE_KIB);
                            sqlx::query(&cache).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect(&connect_url)
            .await
            .map_err(|e| open_err(e.to_string()))?;
        if dialect == Dialect::Sqlite {
            sqlx::query("PRAGMA main.journal_mode = WAL").execute(&pool).await?;
            if audit_path.is_some() {
                sqlx::query("PRAGMA audit.journal_mode = WAL").execute(&pool).await?;
            }
        }
        MIGRATOR.run(&pool).await.map_err(|e| StoreError::Migrate(e.to_string()))?;
        let inline = match (file_path, audit_path) {
            (Some(main), Some(audit)) => {
                move_access_log(&pool).await?;
                Some(std::sync::Arc::new(inline::InlineReads::new(&main, &audit)))
            }
            _ => None,
        };
        Ok(Store { pool, dialect, inline })
    }

    /// `count` placeholders for a statement's parameters, bound in order: `$1`, `$2` … on
    /// PostgreSQL, `?` on SQLite — where binding a `$N` looks its name up in a list of all
    /// the statement's names, so a statement of hundreds of parameters spent most of its time
    /// binding them.
    pub fn placeholders(&self, count: usize) -> Vec<String> {
        self.dialect.placeholders(count)
    }

    /// A transaction that will write: on SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`, waiting its turn behind other writers), so a read inside it can
    /// never be made stale by another writer; on PostgreSQL an ordinary transaction.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Dialect::Postgres => self.pool.begin().await,
        }
    }
}

/// The access log's file beside an SQLite file: `portico.db` → `portico-audit.db`.
pub fn audit_file(main: &Path) -> std::path::PathBuf {
    let stem = main.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match main.extension() {
        Some(ext) => format!("{stem}-audit.{}", ext.to_string_lossy()),
        None => format!("{stem}-audit"),
    };
    main.with_file_name(name)
}

/// Moves `audit_events` from the main file (where the migrations create it, and where a
/// gateway before the move kept it) to the attached `audit` file. Two steps, each its own
/// transaction, so that a stop between them loses nothing: the rows are copied first (only
/// those past the last one already there, so a second run copies none twice), then the
/// main file's table is dropped. Each step looks again under the write lock, so a second
/// process opening the same file at the same moment finds the work done, not an error.
async fn move_access_log(pool: &AnyPool) -> Result<(), StoreError> {
    const IN_MAIN: &str = "SELECT COUNT(*) FROM main.sqlite_master WHERE type = 'table' AND name = 'audit_events'";
    let in_main: i64 = sqlx::query_scalar(IN_MAIN).fetch_one(pool).await?;
    if in_main == 0 {
        return Ok(());
    }
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let in_main: i64 = sqlx::query_scalar(IN_MAIN).fetch_one(&mut *tx).await?;
    if in_main == 0 {
        return Ok(tx.commit().await?);
    }
    let in_audit: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit.sqlite_master WHERE type = 'table' AND name = 'audit_events'",
    )
    .fetch_one(&mut *tx)
    .await?;
    if in_audit == 0 {
        // The table first, then its indexes, as the migrations wrote them.
        let ddl: Vec<String> = sqlx::query_scalar(
            "SELECT sql FROM main.sqlite_master WHERE tbl_name = 'audit_events' AND sql IS NOT NULL \
             ORDER BY type = 'index'",
        )
        .fetch_all(&mut *tx)
        .await?;
        for statement in ddl {
            // Its sequence number as the rowid itself (SQLite's `INTEGER PRIMARY KEY`; still
            // unique): one b-tree fewer to write on every append.
            let statement = statement.replacen("seq BIGINT PRIMARY KEY", "seq INTEGER PRIMARY KEY", 1);
            let statement = ["CREATE TABLE ", "CREATE INDEX ", "CREATE UNIQUE INDEX "]
                .iter()
                .find_map(|head| statement.strip_prefix(head).map(|rest| format!("{head}audit.{rest}")))
                .ok_or_else(|| StoreError::Migrate(format!("cannot move the access log: {statement}")))?;
            sqlx::query(&statement).execute(&mut *tx).await?;
        }
    }
    sqlx::query(
        "INSERT INTO audit.audit_events SELECT * FROM main.audit_events \
         WHERE seq > (SELECT COALESCE(MAX(seq), 0) FROM audit.audit_events) ORDER BY seq",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query("DROP TABLE IF EXISTS main.audit_events").execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// A database URL with any password removed, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("****"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}
