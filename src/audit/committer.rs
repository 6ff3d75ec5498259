//! Group commit for the access log. Callers hand an entry to their log's one committer task
//! and wait for its outcome; the task takes whatever is queued (at most [`MAX_BATCH`]),
//! writes it in arrival order in one transaction that extends the hash chain under the
//! chain lock (SQLite's write lock, a transaction-scoped advisory lock on PostgreSQL, so
//! several gateways on one database still make one chain), commits once and only then
//! answers each caller. On SQLite a batch that fits one `INSERT` is first tried as that one
//! statement on the committer's own connection, which does not wait for the write lock (an
//! autocommitted statement is its own transaction: all its rows or none); when another
//! writer holds the lock, the batch goes the transaction's way, waiting its turn. A batch
//! that cannot be written fails every caller in it and leaves none of its entries. The queue is bounded: when it is full callers wait; an entry is
//! never dropped. It never decides access.

use super::{chain_hash, AuditEntry, APPEND_DEADLINE, GENESIS};
use crate::store::{Dialect, Store, StoreError};
use sqlx::Row;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{mpsc, oneshot};

/// The most entries one transaction writes, all in one `INSERT` (12 values each, 3,072 at
/// most: under the bundled SQLite's limit of 32,766 variables and PostgreSQL's 65,535
/// parameters), so that every batch can be the one-statement append on SQLite. When a
/// statement took at most 64 rows, batches of a hundred (concurrency 256) went the
/// transaction's way through the pool's connection thread: reads of every person in turn
/// served 8–30 % fewer requests/s.
pub(super) const MAX_BATCH: usize = 256;
/// How many entries may wait for the committer before callers wait to queue theirs.
const QUEUE: usize = 1024;

/// Why an append was refused. Callers receive it inside a [`StoreError`] (as the source
/// of an I/O error), so the read path refuses the answer as for any store failure.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("the access log batch of {entries} entries was not written: {source}")]
    BatchFailed {
        entries: usize,
        #[source]
        source: Arc<StoreError>,
    },
    #[error("the access log writer stopped before the entry was written")]
    WriterGone,
}

impl From<AppendError> for StoreError {
    fn from(e: AppendError) -> StoreError {
        StoreError::Query(sqlx::Error::Io(std::io::Error::other(e)))
    }
}

/// What the committer has done (for tests and metrics).
#[derive(Debug, Default)]
pub(super) struct Counters {
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Entries written by those transactions.
    pub entries: AtomicU64,
    /// Entries handed to the committer.
    pub submitted: AtomicU64,
    /// Commits made by one autocommitted statement.
    pub single_statements: AtomicU64,
}

struct Pending {
    entry: AuditEntry,
    answer: oneshot::Sender<Result<i64, AppendError>>,
}

/// The callers' side: the queue to the committer task, started on first use (and again if
/// the runtime it ran on has ended).
pub(super) struct Committer {
    store: Store,
    queue: Mutex<Option<mpsc::Sender<Pending>>>,
    pub counters: Arc<Counters>,
}

impl Committer {
    pub fn new(store: Store) -> Committer {
        Committer { store, queue: Mutex::new(None), counters: Arc::default() }
    }

    fn sender(&self) -> mpsc::Sender<Pending> {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = queue.as_ref().filter(|tx| !tx.is_closed()) {
            return tx.clone();
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(self.store.clone(), rx, self.counters.clone()));
        *queue = Some(tx.clone());
        tx
    }

    /// Queues `entry` (waiting while the queue is full) and waits until it is committed:
    /// its sequence number, or the error that refused its whole batch.
    pub async fn append(&self, entry: AuditEntry) -> Result<i64, StoreError> {
        let (answer, outcome) = oneshot::channel();
        let mut pending = Pending { entry, answer };
        // A committer whose runtime has ended is replaced once.
        for _ in 0..2 {
            match self.sender().send(pending).await {
                Ok(()) => {
                    self.counters.submitted.fetch_add(1, Ordering::Relaxed);
                    return match outcome.await {
                        Ok(result) => result.map_err(StoreError::from),
                        Err(_) => Err(AppendError::WriterGone.into()),
                    };
                }
                Err(mpsc::error::SendError(back)) => pending = back,
            }
        }
        Err(AppendError::WriterGone.into())
    }
}

/// The committer task: one batch at a time until every sender is gone and the queue is
/// drained (so nothing queued is left unanswered when the log is dropped).
async fn run(store: Store, mut queue: mpsc::Receiver<Pending>, counters: Arc<Counters>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut chain = Chain::default();
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        gather(&mut queue, &mut batch).await;
        commit(&store, &mut queue, &mut batch, &mut chain, &counters).await;
    }
}

/// Lets the requests already running on this runtime reach their own append before the batch
/// is written: the committer yields (it runs again once the tasks ready now have run) while
/// doing so brought at least [`GATHER_MORE`] entries, at most [`GATHER_ROUNDS`] times.
/// Without it a busy gateway wrote about one entry per commit (the committer woke for the
/// first entry and wrote it before the others were queued), and each commit pays for its
/// statement, its WAL frames and its locks. A round that brought only a few means the
/// requests in flight have mostly reached theirs: another round would keep those waiting
/// while the rest go round the scheduler once more (at concurrency 8, stopping there served
/// 13–16 % more requests/s than four rounds; at 64, the same). An idle gateway loses one
/// pass of the scheduler.
async fn gather(queue: &mut mpsc::Receiver<Pending>, batch: &mut Vec<Pending>) {
    for _ in 0..GATHER_ROUNDS {
        if batch.len() >= MAX_BATCH {
            return;
        }
        tokio::task::yield_now().await;
        if take_queued(queue, batch) < GATHER_MORE {
            return;
        }
    }
}

/// Moves what is queued now into `batch`, up to [`MAX_BATCH`]; how many were taken.
fn take_queued(queue: &mut mpsc::Receiver<Pending>, batch: &mut Vec<Pending>) -> usize {
    let before = batch.len();
    while batch.len() < MAX_BATCH {
        let Ok(p) = queue.try_recv() else { break };
        batch.push(p);
    }
    batch.len() - before
}

/// How many times [`gather`] yields at most before a batch is written.
const GATHER_ROUNDS: usize = 4;
/// The fewest entries a round of [`gather`] must bring for it to yield again.
const GATHER_MORE: usize = 8;

/// What the committer keeps between batches on SQLite: the head it wrote last and its own
/// connection for one-statement appends (opened on first use, dropped after a failure):
/// on an SQLite file one it runs on its own thread ([`crate::store::inline`]), else one
/// taken from the pool.
#[derive(Default)]
struct Chain {
    head: Option<Head>,
    own: Option<sqlx::AnyConnection>,
    own_inline: Option<rusqlite::Connection>,
    /// Appends made inline since the pool last checkpointed the WAL for them.
    inline_since_checkpoint: u32,
}

/// Inline appends between checkpoints: the inline connection never checkpoints itself (a
/// checkpoint syncs the file, which must not happen on a runtime thread); the committer has
/// the pool do it, on its connection thread, after this many (a thousand WAL pages or so).
const CHECKPOINT_EVERY: u32 = 256;

/// Writes `batch` (retrying, for up to [`APPEND_DEADLINE`], a failure waiting may cure)
/// and answers every caller in it.
async fn commit(
    store: &Store,
    queue: &mut mpsc::Receiver<Pending>,
    batch: &mut Vec<Pending>,
    chain: &mut Chain,
    counters: &Counters,
) {
    let started = std::time::Instant::now();
    let mut attempt: u64 = 0;
    let result = loop {
        attempt += 1;
        match write(store, queue, batch, chain, counters).await {
            Ok(first) => break Ok(first),
            Err(err) if err.is_transient() && started.elapsed() < APPEND_DEADLINE => {
                tracing::debug!(error = %err, attempt, "audit batch raced; retrying");
                tokio::time::sleep(std::time::Duration::from_millis((5 * attempt).min(100))).await;
            }
            Err(err) => break Err(err),
        }
    };
    let entries = batch.len();
    match result {
        Ok(first) => {
            counters.commits.fetch_add(1, Ordering::Relaxed);
            counters.entries.fetch_add(entries as u64, Ordering::Relaxed);
            for (seq, p) in (first..).zip(batch.drain(..)) {
                // A caller that stopped waiting is over-logged, never under-logged.
                let _ = p.answer.send(Ok(seq));
            }
        }
        Err(err) => {
            tracing::error!(error = %err, entries, attempt, "the access log could not be written; refusing the batch");
            let source = Arc::new(err);
            for p in batch.drain(..) {
                let _ = p.answer.send(Err(AppendError::BatchFailed { entries, source: source.clone() }));
            }
        }
    }
}

/// The chain's last entry: its sequence number and hash.
type Head = (i64, String);

/// The head of the chain as the transaction sees it (the genesis before the first entry).
async fn read_head(tx: &mut sqlx::Transaction<'static, sqlx::Any>) -> Result<Head, StoreError> {
    let head =
        sqlx::query("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").fetch_optional(&mut **tx).await?;
    Ok(head.map_or((0, GENESIS.to_string()), |r| (r.get::<i64, _>(0), r.get::<String, _>(1))))
}

/// One transaction: take the chain lock, let entries that queued meanwhile join, extend
/// the chain from its head, commit. Returns the first entry's sequence number.
///
/// On SQLite the head this committer wrote last (`head`) is used instead of reading it
/// again. Entries are never deleted and `seq` is the primary key, so a head that another
/// process has moved on from makes the first row collide: the head is then read under the
/// same lock and the batch written after it. On PostgreSQL, where replicas take turns, the
/// head is read in every transaction.
async fn write(
    store: &Store,
    queue: &mut mpsc::Receiver<Pending>,
    batch: &mut Vec<Pending>,
    chain: &mut Chain,
    counters: &Counters,
) -> Result<i64, StoreError> {
    if let Some(first) = write_at_once(store, batch, chain).await? {
        counters.single_statements.fetch_add(1, Ordering::Relaxed);
        return Ok(first);
    }
    let head = &mut chain.head;
    let mut tx = store.begin_write().await?;
    if store.dialect == Dialect::Postgres {
        // One appender at a time across replicas (released at commit or rollback).
        sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock(7370001)) AS locked").execute(&mut *tx).await?;
    }
    take_queued(queue, batch);
    let remembered = head.take().filter(|_| store.dialect == Dialect::Sqlite);
    let from_memory = remembered.is_some();
    let start = match remembered {
        Some(h) => h,
        None => read_head(&mut tx).await?,
    };
    let last = match insert(&mut tx, store.dialect, batch, &start).await {
        Ok(last) => last,
        Err(e) if from_memory && is_collision(&e) => {
            let start = read_head(&mut tx).await?;
            insert(&mut tx, store.dialect, batch, &start).await?
        }
        Err(e) => return Err(e),
    };
    tx.commit().await?;
    let first = last.0 - batch.len() as i64 + 1;
    *head = Some(last);
    Ok(first)
}

/// SQLite, with the head known: the batch's one `INSERT` alone, on
/// the committer's own connection, which never waits for the write lock. The first entry's
/// sequence number when it was written; `None` when the batch must go the transaction's
/// way (the lock was held, or another process moved the chain on — nothing was written
/// either way); an error that waiting cannot cure fails the batch as in a transaction.
async fn write_at_once(store: &Store, batch: &[Pending], chain: &mut Chain) -> Result<Option<i64>, StoreError> {
    if store.dialect != Dialect::Sqlite || chain.head.is_none() {
        return Ok(None);
    }
    if let Some(inline) = &store.inline {
        let first = write_inline(inline, batch, chain);
        if first.is_some() {
            chain.inline_since_checkpoint += 1;
            if chain.inline_since_checkpoint >= CHECKPOINT_EVERY {
                chain.inline_since_checkpoint = 0;
                // Before the next append, so that it finds the WAL copied back in full and
                // starts it again from the beginning (the file does not grow).
                // The access log's own file (attached as `audit`, see [`crate::store`]).
                if let Err(e) = sqlx::query("PRAGMA audit.wal_checkpoint(PASSIVE)").execute(&store.pool).await {
                    tracing::debug!(error = %e, "checkpoint after inline access log appends failed");
                }
            }
        }
        return Ok(first);
    }
    if chain.own.is_none() {
        let mut conn = store.pool.acquire().await?.detach();
        sqlx::query("PRAGMA busy_timeout = 0").execute(&mut conn).await?;
        chain.own = Some(conn);
    }
    let (Some(conn), Some(start)) = (chain.own.as_mut(), chain.head.as_ref()) else { return Ok(None) };
    match insert(conn, store.dialect, batch, start).await {
        Ok(last) => {
            let first = last.0 - batch.len() as i64 + 1;
            chain.head = Some(last);
            Ok(Some(first))
        }
        Err(e) if is_collision(&e) => {
            chain.head = None;
            Ok(None)
        }
        Err(e) if e.is_transient() => Ok(None),
        Err(e) => {
            chain.own = None;
            Err(e)
        }
    }
}

/// [`write_at_once`] on the committer's inline connection, on this thread: one
/// autocommitted `INSERT` that never waits for the lock. Any failure wrote nothing (the
/// statement is its own transaction) and sends the batch the transaction's way; a
/// collision also forgets the remembered head, any other failure the connection.
fn write_inline(inline: &crate::store::inline::InlineReads, batch: &[Pending], chain: &mut Chain) -> Option<i64> {
    if chain.own_inline.is_none() {
        match inline.append_connection() {
            Ok(c) => chain.own_inline = Some(c),
            Err(e) => {
                tracing::debug!(error = %e, "no inline access log connection; appending in a transaction");
                return None;
            }
        }
    }
    let (Some(conn), Some(start)) = (chain.own_inline.as_ref(), chain.head.as_ref()) else { return None };
    let first = start.0 + 1;
    let mut seq = first;
    let mut prev = start.1.clone();
    let rows = chained(batch, &mut seq, &mut prev);
    let written = conn.prepare_cached(insert_sql(rows.len(), Dialect::Sqlite)).and_then(|mut stmt| {
        let values: Vec<&dyn rusqlite::ToSql> = rows.iter().flat_map(ChainedRow::values).collect();
        stmt.execute(values.as_slice())
    });
    match written {
        Ok(_) => {
            chain.head = Some((seq - 1, prev));
            Some(first)
        }
        Err(e) => {
            match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::ConstraintViolation) => chain.head = None,
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {}
                _ => {
                    tracing::debug!(error = %e, "inline access log append failed; appending in a transaction");
                    chain.own_inline = None;
                }
            }
            None
        }
    }
}

/// One entry as written: its place in the chain, when, and the hashes that link it.
struct ChainedRow<'a> {
    seq: i64,
    recorded: String,
    entry: &'a AuditEntry,
    prev: String,
    hash: String,
}

impl ChainedRow<'_> {
    /// The twelve values in [`insert_sql`]'s column order.
    fn values(&self) -> [&dyn rusqlite::ToSql; 12] {
        let e = self.entry;
        [
            &self.seq,
            &self.recorded,
            &e.actor,
            &e.role,
            &e.patient_id,
            &e.action,
            &e.what,
            &e.purpose,
            &e.outcome,
            &e.source_ip,
            &self.prev,
            &self.hash,
        ]
    }
}

/// `batch`'s entries chained after `seq - 1` / `prev` (both moved on to the last entry's).
fn chained<'a>(batch: &'a [Pending], seq: &mut i64, prev: &mut String) -> Vec<ChainedRow<'a>> {
    batch
        .iter()
        .map(|p| {
            let recorded = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let hash = chain_hash(prev, *seq, &recorded, &p.entry);
            let row =
                ChainedRow { seq: *seq, recorded, entry: &p.entry, prev: std::mem::replace(prev, hash.clone()), hash };
            *seq += 1;
            row
        })
        .collect()
}

/// The `INSERT` of `rows` entries (12 values each, bound in order), 1 to
/// [`MAX_BATCH`], for `dialect`: `?` placeholders on SQLite (binding a `$N` there looks
/// its name up among all the statement's, 3,072 of them for a full insert), `$1` … on
/// PostgreSQL. Made once per size, when first needed (it is the key of each connection's
/// prepared statements, looked up on every append).
fn insert_sql(rows: usize, dialect: Dialect) -> &'static str {
    use std::sync::OnceLock;
    static SQLITE: [OnceLock<String>; MAX_BATCH + 1] = [const { OnceLock::new() }; MAX_BATCH + 1];
    static POSTGRES: [OnceLock<String>; MAX_BATCH + 1] = [const { OnceLock::new() }; MAX_BATCH + 1];
    let made = match dialect {
        Dialect::Sqlite => &SQLITE[rows],
        Dialect::Postgres => &POSTGRES[rows],
    };
    made.get_or_init(|| {
        let rows: Vec<String> =
            dialect.placeholders(rows * 12).chunks(12).map(|row| format!("({})", row.join(", "))).collect();
        format!(
            "INSERT INTO audit_events (seq, recorded, actor, role, patient_id, action, what, purpose, outcome, source_ip, prev_hash, hash) VALUES {}",
            rows.join(", ")
        )
    })
}

/// Whether `e` is a primary-key collision (another writer moved the chain on).
fn is_collision(e: &StoreError) -> bool {
    matches!(e, StoreError::Query(sqlx::Error::Database(d)) if d.is_unique_violation())
}

/// Writes `batch` (at most [`MAX_BATCH`] entries: one statement, so a failure wrote none of
/// it) after `start`; the new head.
async fn insert(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    batch: &[Pending],
    start: &Head,
) -> Result<Head, StoreError> {
    let mut seq = start.0 + 1;
    let mut prev = start.1.clone();
    let mut insert = sqlx::query(insert_sql(batch.len(), dialect));
    for row in chained(batch, &mut seq, &mut prev) {
        let e = row.entry;
        insert = insert
            .bind(row.seq)
            .bind(row.recorded)
            .bind(e.actor.clone())
            .bind(e.role.clone())
            .bind(e.patient_id.clone())
            .bind(e.action.clone())
            .bind(e.what.clone())
            .bind(e.purpose.clone())
            .bind(e.outcome.clone())
            .bind(e.source_ip.clone())
            .bind(row.prev)
            .bind(row.hash);
    }
    insert.execute(&mut *conn).await?;
    Ok((seq - 1, prev))
}
