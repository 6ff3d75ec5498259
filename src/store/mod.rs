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
        let mut file_path = None;
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
        let pool = AnyPoolOptions::new()
            .max_connections(if dialect == Dialect::Sqlite { max_connections.min(4) } else { max_connections })
            .acquire_timeout(std::time::Duration::from_secs(10))
            // An SQLite connection is a file handle in this process: it does not go stale the
            // way a network connection does, so it is not pinged (a round trip to its thread)
            // each time it is taken from the pool. PostgreSQL connections still are.
            .test_before_acquire(dialect == Dialect::Postgres)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        let wait = format!("PRAGMA busy_timeout = {}", SQLITE_BUSY_TIMEOUT.as_millis());
                        sqlx::query(&wait).execute(&mut *conn).await?;
                        // WAL keeps committed data safe with NORMAL; only the last commits
                        // before a power loss may be lost, never the file.
                        sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect(&connect_url)
            .await
            .map_err(|e| open_err(e.to_string()))?;
        if dialect == Dialect::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
        }
        MIGRATOR.run(&pool).await.map_err(|e| StoreError::Migrate(e.to_string()))?;
        let inline = file_path.map(|f| std::sync::Arc::new(inline::InlineReads::new(&f)));
        Ok(Store { pool, dialect, inline })
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
