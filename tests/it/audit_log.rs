//! The access log over HTTP: every access is recorded before the answer, the patient sees
//! who looked at their record (and no one else's), and `portico audit verify` notices a
//! changed entry.

use crate::common::*;
use serde_json::Value;

const MAYA: &str = "audit-maya-self-token";
const MOTHER: &str = "audit-maya-mother-token";
const PARTNER: &str = "audit-partner-token-1";
const SARAH: &str = "audit-sarah-self-token";

fn body() -> String {
    format!(
        "[[server.dev_tokens]]\ntoken = \"{MAYA}\"\nviewer = \"patient\"\npatient = \"ehr/pt-10007\"\n\
         [[server.dev_tokens]]\ntoken = \"{MOTHER}\"\nviewer = \"proxy:MTH\"\npatient = \"ehr/pt-10007\"\n\
         [[server.dev_tokens]]\ntoken = \"{PARTNER}\"\nviewer = \"partner:hie-north:TREAT\"\n\
         [[server.dev_tokens]]\ntoken = \"{SARAH}\"\nviewer = \"patient\"\npatient = \"ehr/pt-10006\"\n{}",
        fixture_file_sources()
    )
}

fn events(bundle: &Value) -> Vec<Value> {
    bundle["entry"].as_array().unwrap().iter().map(|e| e["resource"].clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_patient_sees_who_accessed_her_record_and_nothing_else() {
    let gw = Gateway::start(&body()).await;
    let maya = gw.patient_id("ehr", "pt-10007");
    let bob = gw.patient_id("ehr", "pt-10001");
    assert_eq!(gw.get_with(&format!("Patient/{maya}/$everything"), Some(MOTHER), &[]).await.0, 200);
    assert_eq!(gw.get_with(&format!("Patient/{maya}"), Some(PARTNER), &[]).await.0, 200);
    assert_eq!(gw.get_with(&format!("Observation?patient={maya}&category=laboratory"), Some(TOKEN), &[]).await.0, 200);
    assert_eq!(gw.get_with(&format!("Patient/{bob}"), Some(MAYA), &[]).await.0, 404, "someone else's record");
    assert_eq!(gw.get_with(&format!("Patient/{maya}"), Some(MAYA), &[]).await.0, 200, "her own");

    let (status, bundle) = gw.get_with(&format!("AuditEvent?patient={maya}"), Some(MAYA), &[]).await;
    assert_eq!(status, 200, "{bundle}");
    let list = events(&bundle);
    assert_eq!(bundle["total"], list.len());
    let who: Vec<String> = list.iter().map(|e| e["agent"][0]["who"]["display"].as_str().unwrap().to_string()).collect();
    assert!(who.iter().any(|w| w.contains("proxy:MTH")), "{who:?}");
    assert!(who.iter().any(|w| w.contains("partner:hie-north:TREAT")), "{who:?}");
    assert!(who.iter().any(|w| w.contains("staff")), "{who:?}");
    let partner = list.iter().find(|e| e["agent"][0]["who"]["display"].as_str().unwrap().contains("partner")).unwrap();
    assert_eq!(partner["purposeOfEvent"][0]["coding"][0]["code"], "TREAT");
    assert_eq!(partner["subtype"][0]["code"], "read");
    assert_eq!(partner["outcome"], "0");
    // Other people's network addresses are for staff; her own requests keep theirs.
    assert!(partner["agent"][0].get("network").is_none(), "{partner}");
    let own = list.iter().find(|e| e["agent"][0]["type"]["text"] == "patient").unwrap();
    assert_eq!(own["agent"][0]["network"]["address"], "127.0.0.1", "{own}");
    let (_, staff_view) = gw.get_with(&format!("AuditEvent?patient={maya}"), Some(TOKEN), &[]).await;
    let staff_partner = events(&staff_view)
        .into_iter()
        .find(|e| e["agent"][0]["who"]["display"].as_str().unwrap().contains("partner"))
        .unwrap();
    assert_eq!(staff_partner["agent"][0]["network"]["address"], "127.0.0.1", "staff see the log as written");
    let seqs: Vec<i64> =
        list.iter().map(|e| e["id"].as_str().unwrap().trim_start_matches("audit-").parse().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "newest first: {seqs:?}");
    // Nothing about Bob, and no names or clinical content in the log.
    let text = bundle.to_string();
    assert!(!text.contains(&bob) && !text.contains("Rodriguez") && !text.contains("Martinez"), "{text}");

    // Bob's record shows Maya's refused attempt.
    let (_, bobs) = gw.get_with(&format!("AuditEvent?patient={bob}"), Some(TOKEN), &[]).await;
    assert!(events(&bobs)
        .iter()
        .any(|e| e["outcome"] == "4" && e["agent"][0]["who"]["display"].as_str().unwrap().contains("patient")));

    // The log is Maya's alone: her mother, an app and another patient's log answer like nothing.
    assert_eq!(gw.get_with(&format!("AuditEvent?patient={maya}"), Some(MOTHER), &[]).await.0, 404);
    assert_eq!(gw.get_with(&format!("AuditEvent?patient={bob}"), Some(MAYA), &[]).await.0, 404);
    assert_eq!(gw.get_with("AuditEvent", Some(MAYA), &[]).await.0, 400);
    assert_eq!(gw.get_with(&format!("AuditEvent?patient={maya}&actor=x"), Some(MAYA), &[]).await.0, 400);
    assert_eq!(gw.get_with(&format!("AuditEvent?patient={maya}"), None, &[]).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_notices_a_changed_entry() {
    let gw = Gateway::start(&body()).await;
    let maya = gw.patient_id("ehr", "pt-10007");
    for _ in 0..3 {
        gw.get_with(&format!("Patient/{maya}"), Some(MOTHER), &[]).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("portico.toml");
    std::fs::write(&config, format!("[database]\nurl = {:?}\n{}", gw.database_url, fixture_file_sources())).unwrap();
    let verify = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_portico"))
            .args(["audit", "verify", "--config", config.to_str().unwrap()])
            .env_remove("PORTICO_CONFIG")
            .output()
            .unwrap()
    };
    let ok = verify();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("access log intact: 3 entries"));
    let store = portico::store::Store::open(&gw.database_url, 2).await.unwrap();
    sqlx::query("UPDATE audit_events SET actor = 'nobody' WHERE seq = 2").execute(&store.pool).await.unwrap();
    let broken = verify();
    assert!(!broken.status.success());
    assert!(
        String::from_utf8_lossy(&broken.stderr).contains("broken at entry 2"),
        "{}",
        String::from_utf8_lossy(&broken.stderr)
    );
}

/// Staff search the log by patient, actor and time; patients can't search by actor across
/// other records, and bad parameters are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_search_the_log_by_patient_actor_and_time() {
    let gw = Gateway::start(&body()).await;
    let maya = gw.patient_id("ehr", "pt-10007");
    let bob = gw.patient_id("ehr", "pt-10001");
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    assert_eq!(gw.get_with(&format!("Patient/{maya}"), Some(PARTNER), &[]).await.0, 200);
    assert_eq!(gw.get_with(&format!("Patient/{bob}"), Some(PARTNER), &[]).await.0, 200);
    assert_eq!(gw.get_with(&format!("Patient/{maya}"), Some(MOTHER), &[]).await.0, 200);
    let q = |s: String| s.replace(':', "%3A").replace('+', "%2B");

    let (_, bobs) = gw.get(&format!("AuditEvent?patient={bob}")).await;
    let partner_actor = events(&bobs)
        .iter()
        .map(|e| e["agent"][0]["who"]["display"].as_str().unwrap().to_string())
        .find(|a| a.contains("partner"))
        .unwrap();
    let partner_actor = partner_actor.as_str();
    let (status, by_actor) = gw.get(&format!("AuditEvent?agent={}", q(partner_actor.into()))).await;
    assert_eq!(status, 200, "{by_actor}");
    let list = events(&by_actor);
    let actors: Vec<&str> = list.iter().map(|e| e["agent"][0]["who"]["display"].as_str().unwrap()).collect();
    assert!(actors.len() >= 2 && actors.iter().all(|a| *a == partner_actor), "{actors:?}");
    let patients: Vec<String> = list.iter().map(|e| e["entity"].to_string()).collect();
    assert!(patients.iter().any(|p| p.contains(&maya)) && patients.iter().any(|p| p.contains(&bob)), "{patients:?}");

    // Actor and patient together: only the partner's look at Maya.
    let (_, both) = gw.get(&format!("AuditEvent?agent={}&patient={maya}", q(partner_actor.into()))).await;
    assert_eq!(events(&both).len(), 1, "{both}");

    // Time window: everything since the test started includes them; a window in the past has none.
    let since = before.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (_, recent) = gw.get(&format!("AuditEvent?date=ge{}&agent={}", q(since), q(partner_actor.into()))).await;
    assert_eq!(events(&recent).len(), list.len());
    let (_, old) = gw.get(&format!("AuditEvent?date=lt2020-01-01&agent={}", q(partner_actor.into()))).await;
    assert_eq!(events(&old).len(), 0, "{old}");

    // Non-staff: an actor search without their own patient is refused; bad input is a 400.
    assert_eq!(gw.get_with(&format!("AuditEvent?agent={}", q(partner_actor.into())), Some(MAYA), &[]).await.0, 400);
    assert_eq!(gw.get_with(&format!("AuditEvent?patient={maya}"), Some(PARTNER), &[]).await.0, 404);
    assert_eq!(gw.get("AuditEvent?date=sometime").await.0, 400);
    assert_eq!(gw.get("AuditEvent?_count=9999").await.0, 400);
}

/// A patient's log never names an item withheld from her: a staff read of Sarah's internal
/// note is in her log as a read of "an item", with no type, id or source; staff see it as
/// written, and the note is still not hers to read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_patients_log_names_no_item_withheld_from_her() {
    let gw = Gateway::start(&body()).await;
    let sarah = gw.patient_id("ehr", "pt-10006");
    let note = "DocumentReference/ehr.doc-10008";
    assert_eq!(gw.get_with(note, Some(SARAH), &[]).await.0, 404, "withheld from Sarah");
    assert_eq!(gw.get_with(note, Some(TOKEN), &[]).await.0, 200, "staff read it");
    assert_eq!(gw.get_with(&format!("Patient/{sarah}"), Some(TOKEN), &[]).await.0, 200, "and her Patient");

    let (status, bundle) = gw.get_with(&format!("AuditEvent?patient={sarah}"), Some(SARAH), &[]).await;
    assert_eq!(status, 200, "{bundle}");
    let text = bundle.to_string();
    assert!(!text.contains("DocumentReference") && !text.contains("doc-10008"), "{text}");
    let staff_reads: Vec<String> = events(&bundle)
        .iter()
        .filter(|e| e["agent"][0]["who"]["display"].as_str().unwrap().contains("staff"))
        .map(|e| e["entity"][0]["what"]["display"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(staff_reads.len(), 2, "both staff reads are there: {staff_reads:?}");
    assert!(staff_reads.contains(&"/fhir".to_string()), "the note as an unnamed item: {staff_reads:?}");
    assert!(staff_reads.contains(&format!("/fhir/Patient/{sarah}")), "what she may see keeps its name");

    let (_, as_written) = gw.get_with(&format!("AuditEvent?patient={sarah}"), Some(TOKEN), &[]).await;
    assert!(as_written.to_string().contains(&format!("/fhir/{note}")), "staff see the log as written");
}

// Group commit: concurrent appends share a transaction and still make one chain, on
// SQLite and (TEST_ON_POSTGRES=1) on PostgreSQL.

use portico::audit::{AuditEntry, AuditLog};
use portico::store::{Dialect, Store};

fn entry(actor: String) -> AuditEntry {
    AuditEntry {
        actor,
        role: "patient".into(),
        patient_id: Some("pt-batch".into()),
        action: "read".into(),
        what: "/fhir/Patient/pt-batch".into(),
        purpose: None,
        outcome: "success".into(),
        source_ip: Some("127.0.0.1".into()),
    }
}

/// `n` logs on the test gateway's database, each on its own pool, as `n` replicas of the
/// gateway would have.
async fn replicas(gw: &Gateway, n: usize) -> Vec<(Store, AuditLog)> {
    let mut logs = Vec::new();
    for _ in 0..n {
        let store = Store::open(&gw.database_url, 4).await.unwrap();
        logs.push((store.clone(), AuditLog::new(store)));
    }
    logs
}

/// The actor of every entry, by sequence number.
async fn actors(store: &Store) -> std::collections::BTreeMap<i64, String> {
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT seq, actor FROM audit_events ORDER BY seq").fetch_all(&store.pool).await.unwrap();
    rows.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_from_two_replicas_are_committed_together_in_one_chain() {
    let gw = Gateway::start(&fixture_file_sources()).await;
    let logs = replicas(&gw, 2).await;
    let before = logs[0].1.verify().await.unwrap().entries as i64;
    let writers = (0..200).map(|i| {
        let log = logs[i % 2].1.clone();
        tokio::spawn(async move { (i, log.record(&entry(format!("app:batch:{i}"))).await.unwrap()) })
    });
    let answers: Vec<(usize, i64)> = futures::future::join_all(writers).await.into_iter().map(|r| r.unwrap()).collect();

    // Every caller's entry is there, at the position it was told, once; no gaps.
    let written = actors(&logs[0].0).await;
    for (i, seq) in &answers {
        assert_eq!(written.get(seq), Some(&format!("app:batch:{i}")), "caller {i} was told {seq}");
    }
    let mut seqs: Vec<i64> = answers.iter().map(|(_, s)| *s).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (before + 1..=before + 200).collect::<Vec<_>>());
    assert_eq!(written.len() as i64, before + 200);
    let v = logs[1].1.verify().await.unwrap();
    assert_eq!((v.entries as i64, v.first_broken), (before + 200, None), "one chain across both replicas");

    // Far fewer transactions than entries.
    let stats: Vec<_> = logs.iter().map(|(_, l)| l.stats()).collect();
    assert_eq!(stats.iter().map(|s| s.entries).sum::<u64>(), 200, "{stats:?}");
    assert_eq!(stats.iter().map(|s| s.submitted).sum::<u64>(), 200, "{stats:?}");
    let commits: u64 = stats.iter().map(|s| s.commits).sum();
    assert!((2..=50).contains(&commits), "200 entries in {commits} transactions: {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn more_appends_than_the_queue_holds_wait_their_turn_and_all_land() {
    let gw = Gateway::start(&fixture_file_sources()).await;
    let (store, log) = replicas(&gw, 1).await.remove(0);
    let before = log.verify().await.unwrap().entries;
    let writers = (0..1500).map(|i| {
        let log = log.clone();
        tokio::spawn(async move { log.record(&entry(format!("app:flood:{i}"))).await.unwrap() })
    });
    let mut seqs: Vec<i64> = futures::future::join_all(writers).await.into_iter().map(|r| r.unwrap()).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 1500, "no entry dropped or doubled");
    let v = log.verify().await.unwrap();
    assert_eq!((v.entries, v.first_broken), (before + 1500, None));
    let stats = log.stats();
    assert!(stats.commits >= 1500 / 256, "at most 256 entries a transaction: {stats:?}");
    assert_eq!(actors(&store).await.values().filter(|a| a.starts_with("app:flood:")).count(), 1500);
}

/// On SQLite an append made while the write lock is free is one autocommitted `INSERT`;
/// while another holds the lock it waits as a transaction; after another replica moved the
/// chain on it reads the head again. On both databases: one chain, each entry once, in
/// order, and nothing answered before it is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_take_one_statement_when_the_lock_is_free_and_wait_their_turn_when_it_is_not() {
    let gw = Gateway::start(&fixture_file_sources()).await;
    let mut logs = replicas(&gw, 2).await;
    let (other_store, other) = logs.remove(1);
    let (store, log) = logs.remove(0);
    let sqlite = store.dialect == Dialect::Sqlite;
    let first = log.record(&entry("app:alone:0".into())).await.unwrap();
    for i in 1..5 {
        assert_eq!(log.record(&entry(format!("app:alone:{i}"))).await.unwrap(), first + i);
    }
    let s = log.stats();
    assert_eq!(s.commits, 5, "{s:?}");
    if sqlite {
        // The first append reads the head in a transaction; the next four need one statement
        // each (three allowed, should a background write of the gateway hold the lock).
        assert!((3..=4).contains(&s.single_statements), "{s:?}");
    } else {
        assert_eq!(s.single_statements, 0, "PostgreSQL appends read the head under the advisory lock: {s:?}");
    }

    // Another connection holds the chain lock: the append waits for it, not answered early.
    let mut holder = other_store.begin_write().await.unwrap();
    if !sqlite {
        sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock(7370001)) AS locked")
            .execute(&mut *holder)
            .await
            .unwrap();
    }
    let single_before = log.stats().single_statements;
    let waiting = {
        let log = log.clone();
        tokio::spawn(async move { log.record(&entry("app:waited".into())).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "an append was answered while another held the chain lock");
    assert!(!actors(&store).await.values().any(|a| a == "app:waited"));
    holder.commit().await.unwrap();
    assert_eq!(waiting.await.unwrap().unwrap(), first + 5);
    assert_eq!(log.stats().single_statements, single_before, "the waited append went as a transaction");

    // Another replica moves the chain on; this one's remembered head is stale, its next
    // append collides, reads the head again and follows the other's entry.
    assert_eq!(other.record(&entry("app:other".into())).await.unwrap(), first + 6);
    assert_eq!(log.record(&entry("app:after-other".into())).await.unwrap(), first + 7);
    assert_eq!(log.stats().single_statements, single_before, "the collided append went as a transaction");
    assert_eq!(log.record(&entry("app:last".into())).await.unwrap(), first + 8);
    if sqlite {
        assert!(log.stats().single_statements > single_before, "{:?}", log.stats());
    }

    let written = actors(&store).await;
    let ours: Vec<&str> = (first..=first + 8).map(|seq| written[&seq].as_str()).collect();
    assert_eq!(
        ours,
        [
            "app:alone:0",
            "app:alone:1",
            "app:alone:2",
            "app:alone:3",
            "app:alone:4",
            "app:waited",
            "app:other",
            "app:after-other",
            "app:last"
        ]
    );
    assert_eq!(log.verify().await.unwrap().first_broken, None);
}

/// A store refusing one entry of a batch: every caller in that batch is refused, none of
/// its entries is written, and the chain goes on from where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_that_cannot_be_written_fails_every_caller_and_writes_none_of_it() {
    let gw = Gateway::start(&fixture_file_sources()).await;
    let (store, log) = replicas(&gw, 1).await.remove(0);
    let first = log.record(&entry("app:before".into())).await.unwrap();
    // On an SQLite file the access log has a file of its own, attached as `audit`; a
    // trigger lives in its table's file.
    let sqlite_trigger = format!(
        "CREATE TRIGGER {}refuse_poison BEFORE INSERT ON audit_events WHEN NEW.actor = 'poison' \
         BEGIN SELECT RAISE(ABORT, 'poison refused'); END",
        if store.inline.is_some() { "audit." } else { "" }
    );
    let refuse_poison: &[&str] = match store.dialect {
        Dialect::Sqlite => &[sqlite_trigger.as_str()],
        Dialect::Postgres => &[
            "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS \
             'BEGIN IF NEW.actor = ''poison'' THEN RAISE EXCEPTION ''poison refused''; END IF; RETURN NEW; END'",
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
        ],
    };
    for sql in refuse_poison {
        sqlx::query(sql).execute(&store.pool).await.unwrap();
    }

    // Another replica holds the chain lock while 20 appends queue, so they go as one batch.
    let other = Store::open(&gw.database_url, 1).await.unwrap();
    let mut holder = other.begin_write().await.unwrap();
    if other.dialect == Dialect::Postgres {
        sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock(7370001)) AS locked")
            .execute(&mut *holder)
            .await
            .unwrap();
    }
    let submitted = log.stats().submitted;
    let writers: Vec<_> = (0..20)
        .map(|i| {
            let log = log.clone();
            let actor = if i == 13 { "poison".to_string() } else { format!("app:doomed:{i}") };
            tokio::spawn(async move { log.record(&entry(actor)).await })
        })
        .collect();
    let queued = std::time::Instant::now();
    while log.stats().submitted < submitted + 20 {
        assert!(queued.elapsed() < std::time::Duration::from_secs(5), "{:?}", log.stats());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    holder.commit().await.unwrap();
    for w in writers {
        let err = w.await.unwrap().expect_err("no caller of the failed batch is told it was logged");
        assert!(err.to_string().contains("batch of 20 entries was not written"), "{err}");
    }
    let written = actors(&store).await;
    assert!(written.values().all(|a| a != "poison" && !a.starts_with("app:doomed:")), "{written:?}");
    assert_eq!(log.stats().commits, 1, "only the first entry's transaction committed");

    // The log goes on: the next entry follows the last one written, and the chain holds.
    let next = log.record(&entry("app:after".into())).await.unwrap();
    assert_eq!(next, first + 1);
    assert_eq!(log.verify().await.unwrap().first_broken, None);
}
