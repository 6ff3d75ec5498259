//! The access log: one entry per data access (who, in what role, whose record, what, when,
//! from where, for what purpose, with what outcome), written to the store before the
//! response completes, and chained — each entry holds the hash of the one before — so that
//! changing or removing an entry is detectable. Concurrent appends are committed together
//! (`committer.rs`: one transaction for many entries). It records ids, never names or
//! clinical content, and it never decides access.

mod committer;
pub mod disclosures;
mod search;

pub use committer::AppendError;
pub use search::{AuditQuery, AuditQueryError};

use crate::fhir::model::codes::{AuditEventAction, AuditEventAgentNetworkType, AuditEventOutcome};
use crate::fhir::model::resources::{
    AuditEvent, AuditEventAgent, AuditEventAgentNetwork, AuditEventEntity, AuditEventSource,
};
use crate::fhir::model::types::{CodeableConcept, Coding, Reference};
use crate::fhir::model::{finish, instant, BuilderError, Instant};
use crate::store::{Store, StoreError};
use chrono::Utc;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The code system of Portico's own access actions (read, search, everything, download,
/// export, page, explain, release …), the second `AuditEvent.subtype`.
pub const ACTION_SYSTEM: &str = "http://portico.example/fhir/CodeSystem/access-action";

/// The hash before the first entry.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, as the caller describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub actor: String,
    pub role: String,
    pub patient_id: Option<String>,
    /// read, search, everything, explain, release …
    pub action: String,
    /// The request path (gateway ids only).
    pub what: String,
    pub purpose: Option<String>,
    /// success, denied, not-found, error
    pub outcome: String,
    pub source_ip: Option<String>,
}

impl AuditEntry {
    /// The entry for an access by `access`'s viewer: role and purpose come from the viewer
    /// (an app acting for a viewer is `app for …`).
    pub fn of(
        access: &crate::auth::Access,
        action: &str,
        what: String,
        patient_id: Option<String>,
        outcome: &str,
        from: Option<std::net::IpAddr>,
    ) -> AuditEntry {
        use crate::policy::Role;
        let (role, purpose) = match &access.viewer.role {
            Role::Patient => ("patient", None),
            Role::Proxy { relationship, .. } => (relationship.as_str(), None),
            Role::Partner { purpose, .. } => ("partner", Some(purpose.clone())),
            Role::Staff => ("staff", None),
        };
        let role = if access.viewer.app_scopes.is_some() { format!("app for {role}") } else { role.to_string() };
        // What a request named is kept as asked, but a NUL byte (which PostgreSQL refuses in
        // text, and so would refuse the answer) is written as U+FFFD.
        let text = |s: String| if s.contains('\0') { s.replace('\0', "\u{FFFD}") } else { s };
        AuditEntry {
            actor: access.viewer.actor.clone(),
            role,
            patient_id: patient_id.map(text),
            action: action.to_string(),
            what: text(what),
            purpose,
            outcome: outcome.to_string(),
            source_ip: from.map(|ip| ip.to_string()),
        }
    }
}

/// An entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    pub seq: i64,
    pub recorded: String,
    #[serde(flatten)]
    pub entry: AuditEntry,
}

/// The result of checking the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub entries: u64,
    /// The first entry whose hash or link does not hold.
    pub first_broken: Option<i64>,
}

/// The access log over one store. Clones share one committer (one queue, one task); build
/// one per process and clone it, so that its appends are committed together.
#[derive(Clone)]
pub struct AuditLog {
    store: Store,
    committer: Arc<committer::Committer>,
}

/// What an [`AuditLog`] (and its clones) has written so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AppendStats {
    /// Transactions committed.
    pub commits: u64,
    /// Entries they wrote.
    pub entries: u64,
    /// Entries handed to the committer (written, refused or still queued).
    pub submitted: u64,
    /// Of the commits, those made by one autocommitted `INSERT` (SQLite, the write lock
    /// free); the others were transactions.
    pub single_statements: u64,
}

/// How long a batch keeps retrying before the accesses in it (which must be logged) are
/// refused.
const APPEND_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// The entry's hash: SHA-256 of the JSON array `[prev, seq, recorded, actor, role,
/// patient_id, action, what, purpose, outcome, source_ip]` (compact, as serde_json writes
/// it), in hex. The array is written straight from the fields (a tuple serializes as that
/// array); the text must never change, or every stored chain stops verifying.
fn chain_hash(prev: &str, seq: i64, recorded: &str, e: &AuditEntry) -> String {
    let fields = (
        prev,
        seq,
        recorded,
        &e.actor,
        &e.role,
        &e.patient_id,
        &e.action,
        &e.what,
        &e.purpose,
        &e.outcome,
        &e.source_ip,
    );
    // Writing strings, integers and nulls into a Vec cannot fail.
    let text = serde_json::to_vec(&fields).unwrap_or_default();
    hex::encode(Sha256::digest(&text))
}

impl AuditLog {
    pub fn new(store: Store) -> AuditLog {
        AuditLog { committer: Arc::new(committer::Committer::new(store.clone())), store }
    }

    /// Appends an entry to the chain and returns once it is committed (its sequence
    /// number). Entries queued together are written in one transaction under the chain
    /// lock (SQLite's write lock, a transaction-scoped advisory lock on PostgreSQL); a
    /// batch that fails for a reason waiting may cure (a busy store) is retried for up to
    /// [`APPEND_DEADLINE`]; any other failure refuses every entry in the batch at once.
    pub async fn record(&self, e: &AuditEntry) -> Result<i64, StoreError> {
        self.committer.append(e.clone()).await
    }

    /// Appends several entries together — queued at once, so the committer writes them in as
    /// few transactions as it can instead of one after another — and returns once every one
    /// is committed (their sequence numbers), or the first refusal. Entries of other batches
    /// may then still be written: over-logged, never under-logged.
    pub async fn record_all(&self, entries: Vec<AuditEntry>) -> Result<Vec<i64>, StoreError> {
        futures::future::try_join_all(entries.into_iter().map(|e| self.committer.append(e))).await
    }

    /// Commits and entries so far (several entries per commit under concurrent load).
    pub fn stats(&self) -> AppendStats {
        let c = &self.committer.counters;
        AppendStats {
            commits: c.commits.load(Ordering::Relaxed),
            entries: c.entries.load(Ordering::Relaxed),
            submitted: c.submitted.load(Ordering::Relaxed),
            single_statements: c.single_statements.load(Ordering::Relaxed),
        }
    }

    /// Recomputes every link of the chain.
    pub async fn verify(&self) -> Result<Verification, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, recorded, actor, role, patient_id, action, what, purpose, outcome, source_ip, prev_hash, hash FROM audit_events ORDER BY seq",
        )
        .fetch_all(&self.store.pool)
        .await?;
        let mut prev = GENESIS.to_string();
        let mut entries = 0;
        for (expected_seq, r) in (1..).zip(rows) {
            entries += 1;
            let record = to_record(&r);
            let (stored_prev, stored_hash): (String, String) = (r.get(10), r.get(11));
            let recomputed = chain_hash(&prev, record.seq, &record.recorded, &record.entry);
            if record.seq != expected_seq || stored_prev != prev || stored_hash != recomputed {
                return Ok(Verification { entries, first_broken: Some(record.seq) });
            }
            prev = stored_hash;
        }
        Ok(Verification { entries, first_broken: None })
    }

    /// Whether an entry for this patient, action and `what` exists (an export job logs each
    /// patient once, even when a unit is redone).
    pub async fn has_entry(&self, patient_id: &str, action: &str, what: &str) -> Result<bool, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE patient_id = $1 AND action = $2 AND what = $3")
                .bind(patient_id)
                .bind(action)
                .bind(what)
                .fetch_one(&self.store.pool)
                .await?;
        Ok(n > 0)
    }

    /// The newest entries about one patient's record.
    pub async fn for_patient(&self, patient_id: &str, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, recorded, actor, role, patient_id, action, what, purpose, outcome, source_ip FROM audit_events
             WHERE patient_id = $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(patient_id)
        .bind(limit)
        .fetch_all(&self.store.pool)
        .await?;
        Ok(rows.iter().map(to_record).collect())
    }
}

fn to_record(r: &sqlx::any::AnyRow) -> AuditRecord {
    AuditRecord {
        seq: r.get(0),
        recorded: r.get(1),
        entry: AuditEntry {
            actor: r.get(2),
            role: r.get(3),
            patient_id: r.get(4),
            action: r.get(5),
            what: r.get(6),
            purpose: r.get(7),
            outcome: r.get(8),
            source_ip: r.get(9),
        },
    }
}

/// An access log entry whose `recorded` is not an RFC 3339 instant (not one the log wrote).
#[derive(Debug, thiserror::Error)]
#[error("access log entry {seq}: `recorded` is not an instant")]
pub struct AuditEventError {
    seq: i64,
    #[source]
    source: chrono::ParseError,
}

/// An entry as a FHIR R4 AuditEvent (what patients see in "who accessed my record"), built
/// with the typed model.
pub fn as_audit_event(r: &AuditRecord) -> Result<Value, AuditEventError> {
    let recorded = chrono::DateTime::parse_from_rfc3339(&r.recorded)
        .map_err(|source| AuditEventError { seq: r.seq, source })?
        .with_timezone(&Utc);
    Ok(finish(typed_audit_event(r, instant(recorded))))
}

fn typed_audit_event(r: &AuditRecord, recorded: Instant) -> Result<AuditEvent, BuilderError> {
    let e = &r.entry;
    let interaction = match e.action.as_str() {
        "read" => "read",
        "search" => "search-type",
        _ => "operation",
    };
    let outcome = match e.outcome.as_str() {
        "success" => AuditEventOutcome::N0,
        "not-found" | "denied" => AuditEventOutcome::N4,
        _ => AuditEventOutcome::N8,
    };
    let action = if e.action == "read" || e.action == "search" { AuditEventAction::R } else { AuditEventAction::E };
    let coding = |system: &str, code: &str| Coding::builder().system(system.to_string()).code(code.to_string()).build();
    let display = |text: &str| Reference::builder().display(text.to_string()).build();

    let mut agent = AuditEventAgent::builder()
        .who(display(&e.actor)?)
        .r#type(CodeableConcept::builder().text(e.role.clone()).build()?)
        .requestor(true);
    if let Some(ip) = &e.source_ip {
        agent = agent.network(
            AuditEventAgentNetwork::builder().address(ip.clone()).r#type(AuditEventAgentNetworkType::N2).build()?,
        );
    }
    let mut entity = vec![Some(AuditEventEntity::builder().what(display(&e.what)?).build()?)];
    if let Some(p) = &r.entry.patient_id {
        let patient = Reference::builder().reference(format!("Patient/{p}")).build()?;
        entity.push(Some(AuditEventEntity::builder().what(patient).build()?));
    }
    let event_type = Coding::builder()
        .system("http://terminology.hl7.org/CodeSystem/audit-event-type".to_string())
        .code("rest".to_string())
        .display("RESTful Operation".to_string())
        .build()?;
    let mut event = AuditEvent::builder()
        .id(format!("audit-{}", r.seq))
        .r#type(event_type)
        .subtype(vec![
            Some(coding("http://hl7.org/fhir/restful-interaction", interaction)?),
            Some(coding(ACTION_SYSTEM, &e.action)?),
        ])
        .action(action)
        .recorded(recorded)
        .outcome(outcome)
        .agent(vec![Some(agent.build()?)])
        .source(AuditEventSource::builder().observer(display("Portico gateway")?).build()?)
        .entity(entity);
    if let Some(purpose) = &e.purpose {
        let concept = CodeableConcept::builder()
            .coding(vec![Some(coding("http://terminology.hl7.org/CodeSystem/v3-ActReason", purpose)?)])
            .build()?;
        event = event.purpose_of_event(vec![Some(concept)]);
    }
    event.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The hash is what it always was: SHA-256 of the fields as a `json!` array's text,
    /// escapes, non-ASCII text and absent fields included (stored chains depend on it).
    #[test]
    fn the_chain_hash_text_is_the_json_array_of_the_fields() {
        let odd = AuditEntry {
            actor: "app:\"quoted\"\\ \u{7}\u{e9}\u{1F600}".into(),
            role: "staff\n".into(),
            patient_id: None,
            action: "read".into(),
            what: "/fhir/Patient/pt-1?name=Jos\u{e9}&x=</script>".into(),
            purpose: Some("TREAT".into()),
            outcome: "success".into(),
            source_ip: None,
        };
        for (e, seq) in [(entry(7), 1_i64), (odd, i64::MAX)] {
            let text = json!([
                "prev", seq, "2026-12-05T08:00:00.000Z", e.actor, e.role, e.patient_id, e.action, e.what,
                e.purpose, e.outcome, e.source_ip
            ])
            .to_string();
            let expected = hex::encode(Sha256::digest(text.as_bytes()));
            assert_eq!(chain_hash("prev", seq, "2026-12-05T08:00:00.000Z", &e), expected);
        }
    }

    fn entry(n: usize) -> AuditEntry {
        AuditEntry {
            actor: format!("app:a:account:{n}"),
            role: "patient".into(),
            patient_id: Some("pt-1".into()),
            action: "read".into(),
            what: "/fhir/Patient/pt-1".into(),
            purpose: None,
            outcome: "success".into(),
            source_ip: Some("127.0.0.1".into()),
        }
    }

    #[tokio::test]
    async fn the_chain_holds_under_concurrent_writers_and_detects_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/a.db", dir.path().display()), 4).await.unwrap();
        let log = AuditLog::new(store.clone());
        let writers = (0..20).map(|n| {
            let log = log.clone();
            tokio::spawn(async move { log.record(&entry(n)).await.unwrap() })
        });
        let mut seqs: Vec<i64> = futures::future::join_all(writers).await.into_iter().map(|r| r.unwrap()).collect();
        seqs.sort();
        assert_eq!(seqs, (1..=20).collect::<Vec<_>>(), "no gaps, no duplicates");
        assert_eq!(log.verify().await.unwrap(), Verification { entries: 20, first_broken: None });
        assert_eq!(log.for_patient("pt-1", 5).await.unwrap().len(), 5);

        let actor: String =
            sqlx::query_scalar("SELECT actor FROM audit_events WHERE seq = 7").fetch_one(&store.pool).await.unwrap();
        sqlx::query("UPDATE audit_events SET actor = 'someone-else' WHERE seq = 7").execute(&store.pool).await.unwrap();
        assert_eq!(log.verify().await.unwrap().first_broken, Some(7), "an edited entry");
        sqlx::query("UPDATE audit_events SET actor = $1 WHERE seq = 7")
            .bind(&actor)
            .execute(&store.pool)
            .await
            .unwrap();
        assert_eq!(log.verify().await.unwrap().first_broken, None, "restored");
        sqlx::query("DELETE FROM audit_events WHERE seq = 12").execute(&store.pool).await.unwrap();
        let v = log.verify().await.unwrap();
        assert_eq!(v.first_broken, Some(13), "a removed entry breaks the next link: {v:?}");
    }

    /// On an SQLite file appends one at a time are single statements on the committer's
    /// inline connection, which never checkpoints: the pool does, so the WAL stays bounded
    /// (without it, 2,000 appends leave every page they wrote in the WAL).
    #[tokio::test]
    async fn inline_appends_keep_the_chain_and_leave_the_wal_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/a.db", dir.path().display()), 4).await.unwrap();
        assert!(store.inline.is_some());
        let log = AuditLog::new(store.clone());
        let wal = dir.path().join("a-audit.db-wal");
        let mut largest = 0;
        for n in 0..2000 {
            assert_eq!(log.record(&entry(n)).await.unwrap(), n as i64 + 1);
            if n % 100 == 99 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                largest = largest.max(std::fs::metadata(&wal).unwrap().len());
            }
        }
        let stats = log.stats();
        assert!(stats.single_statements >= 1990, "{stats:?}");
        assert_eq!(log.verify().await.unwrap(), Verification { entries: 2000, first_broken: None });
        // Each append rewrites at least the table's last page: 2,000 of them unchecked leave
        // at least 8 MB of WAL (27 MB when measured); checkpointed every 256, about 4 MB.
        assert!(largest < 7 << 20, "the WAL grew to {largest} bytes");
    }

    /// A gateway before the access log had its own file kept it in the main one: the next
    /// start moves every entry (the chain still verifies, none twice), also when an earlier
    /// move stopped between copying and dropping, and when two start at once.
    #[tokio::test]
    async fn an_access_log_in_the_main_file_moves_to_its_own_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (main, audit) = (dir.path().join("a.db"), dir.path().join("a-audit.db"));
        let url = format!("sqlite://{}", main.display());
        let tables = |path: &std::path::Path| {
            let conn = rusqlite::Connection::open(path).unwrap();
            let mut stmt =
                conn.prepare("SELECT name FROM sqlite_master WHERE tbl_name = 'audit_events' ORDER BY name").unwrap();
            stmt.query_map([], |r| r.get::<_, String>(0)).unwrap().collect::<Result<Vec<_>, _>>().unwrap()
        };
        for (stopped_between, two_at_once) in [(false, false), (true, false), (false, true)] {
            let _ = std::fs::remove_file(&main);
            let _ = std::fs::remove_file(&audit);
            let store = Store::open(&url, 2).await.unwrap();
            let log = AuditLog::new(store.clone());
            for n in 0..30 {
                log.record(&entry(n)).await.unwrap();
            }
            drop(log);
            store.pool.close().await;
            // Back to the old layout: the table (as the migration made it) in the main file.
            let old = rusqlite::Connection::open(&main).unwrap();
            old.execute("ATTACH DATABASE ?1 AS audit", [audit.to_string_lossy()]).unwrap();
            old.execute_batch(&format!(
                "{}; CREATE INDEX main.audit_events_patient ON audit_events (patient_id); \
                 INSERT INTO main.audit_events SELECT * FROM audit.audit_events;",
                include_str!("../../migrations/0006_audit.sql")
                    .split("CREATE INDEX")
                    .next()
                    .unwrap()
                    .replace("CREATE TABLE audit_events", "CREATE TABLE main.audit_events")
            ))
            .unwrap();
            if stopped_between {
                // Copied up to entry 20, then stopped before the main table was dropped.
                old.execute_batch("DELETE FROM audit.audit_events WHERE seq > 20").unwrap();
            } else {
                old.execute_batch("DROP TABLE audit.audit_events").unwrap();
            }
            drop(old);
            assert!(tables(&main).contains(&"audit_events".to_string()));

            let store = if two_at_once {
                // Two processes starting on the same file at once: one moves, the other
                // finds it moved.
                let (a, b) = tokio::join!(Store::open(&url, 2), Store::open(&url, 2));
                b.unwrap().pool.close().await;
                a.unwrap()
            } else {
                Store::open(&url, 2).await.unwrap()
            };
            assert!(tables(&main).is_empty(), "gone from the main file: {:?}", tables(&main));
            assert_eq!(
                tables(&audit),
                ["audit_events", "audit_events_patient"],
                "the table and its index, in the access log's file"
            );
            let log = AuditLog::new(store.clone());
            assert_eq!(log.verify().await.unwrap(), Verification { entries: 30, first_broken: None }, "{stopped_between}");
            assert_eq!(log.record(&entry(30)).await.unwrap(), 31, "the chain goes on");
            assert_eq!(log.verify().await.unwrap(), Verification { entries: 31, first_broken: None });
            store.pool.close().await;
        }
    }

    /// The runtime ends while appends are queued and in flight: every entry a caller was
    /// told is written is there, the chain holds, and the next process goes on from it.
    #[test]
    fn an_ending_runtime_loses_no_acknowledged_entry() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/a.db", dir.path().display());
        let (acked_tx, acked) = std::sync::mpsc::channel::<(usize, i64)>();
        let told = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let first = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        first.block_on(async {
            let log = AuditLog::new(Store::open(&url, 4).await.unwrap());
            for n in 0..400 {
                let (log, acked_tx, told) = (log.clone(), acked_tx.clone(), told.clone());
                tokio::spawn(async move {
                    let seq = log.record(&entry(n)).await.unwrap();
                    acked_tx.send((n, seq)).unwrap();
                    told.fetch_add(1, Ordering::Relaxed);
                });
            }
            while told.load(Ordering::Relaxed) < 50 {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        });
        first.shutdown_timeout(std::time::Duration::ZERO);
        drop(acked_tx);
        let acked: Vec<(usize, i64)> = acked.into_iter().collect();
        assert!(acked.len() >= 50, "{}", acked.len());

        let second = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        second.block_on(async {
            let store = Store::open(&url, 4).await.unwrap();
            let log = AuditLog::new(store.clone());
            for (n, seq) in &acked {
                let actor: String = sqlx::query_scalar("SELECT actor FROM audit_events WHERE seq = $1")
                    .bind(seq)
                    .fetch_one(&store.pool)
                    .await
                    .unwrap();
                assert_eq!(actor, entry(*n).actor, "entry {seq}");
            }
            let before = log.verify().await.unwrap();
            assert_eq!(before.first_broken, None);
            let next = log.record(&entry(999)).await.unwrap();
            assert_eq!(next, before.entries as i64 + 1);
            assert_eq!(log.verify().await.unwrap().first_broken, None);
        });
    }

    /// The AuditEvent as the gateway wrote it with json! before the typed model.
    fn audit_event_before(r: &AuditRecord) -> Value {
        let interaction = match r.entry.action.as_str() {
            "read" => "read",
            "search" => "search-type",
            _ => "operation",
        };
        let outcome = match r.entry.outcome.as_str() {
            "success" => "0",
            "not-found" | "denied" => "4",
            _ => "8",
        };
        let mut agent = json!({"who": {"display": r.entry.actor}, "type": {"text": r.entry.role}, "requestor": true});
        if let Some(ip) = &r.entry.source_ip {
            agent["network"] = json!({"address": ip, "type": "2"});
        }
        let mut event = json!({
            "resourceType": "AuditEvent",
            "id": format!("audit-{}", r.seq),
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"},
            "subtype": [
                {"system": "http://hl7.org/fhir/restful-interaction", "code": interaction},
                {"system": ACTION_SYSTEM, "code": r.entry.action}
            ],
            "action": "E",
            "recorded": r.recorded,
            "outcome": outcome,
            "agent": [agent],
            "source": {"observer": {"display": "Portico gateway"}},
            "entity": [{"what": {"display": r.entry.what}}]
        });
        if r.entry.action == "read" || r.entry.action == "search" {
            event["action"] = json!("R");
        }
        if let Some(p) = &r.entry.patient_id {
            event["entity"] =
                json!([{"what": {"display": r.entry.what}}, {"what": {"reference": format!("Patient/{p}")}}]);
        }
        if let Some(purpose) = &r.entry.purpose {
            event["purposeOfEvent"] = json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": purpose}]}]);
        }
        event
    }

    #[test]
    fn audit_events_are_what_the_gateway_wrote_before_and_read_back_typed() {
        let read = AuditRecord { seq: 7, recorded: "2026-03-01T10:20:30.123Z".into(), entry: entry(1) };
        let mut export = read.clone();
        export.entry.action = "export".into();
        export.entry.outcome = "denied".into();
        export.entry.purpose = Some("TREAT".into());
        export.entry.source_ip = None;
        export.entry.patient_id = None;
        let mut failed = read.clone();
        failed.entry.action = "search".into();
        failed.entry.outcome = "error".into();
        for r in [read, export, failed] {
            let served = as_audit_event(&r).unwrap();
            assert_eq!(served, audit_event_before(&r), "{}", r.entry.action);
            let back: AuditEvent = serde_json::from_value(served.clone()).unwrap();
            assert_eq!(serde_json::to_value(back).unwrap(), served, "round-trips through the R4B model");
        }
        // An instant is written in its shortest form: the same instant, trailing zeros dropped.
        let whole = AuditRecord { seq: 8, recorded: "2026-03-01T10:20:30.000Z".into(), entry: entry(2) };
        assert_eq!(as_audit_event(&whole).unwrap()["recorded"], "2026-03-01T10:20:30Z");
        let tampered = AuditRecord { seq: 9, recorded: "yesterday".into(), entry: entry(3) };
        assert!(as_audit_event(&tampered).unwrap_err().to_string().contains("entry 9"));
    }
}
