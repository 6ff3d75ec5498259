//! A job's source units in the queue: claimed first, person units waiting for them, and a
//! dead worker's source unit taken over.

use super::*;
use std::time::Duration;

#[tokio::test]
async fn person_units_wait_for_the_jobs_source_units() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}/j.db", dir.path().display()), 4).await.unwrap();
    let jobs = JobStore::new(store);
    let hour = Duration::from_secs(3600);
    let mut job = tests_job("j1");
    job.source_units = vec![
        SourceUnit { source: "ehr".into(), group: None },
        SourceUnit { source: "lab".into(), group: Some("g1".into()) },
    ];
    assert_eq!(jobs.create(&job, 5, hour).await.unwrap(), Created::Yes);
    assert_eq!(jobs.get("j1").await.unwrap().unwrap().total_patients, 2, "source units hold no patients");

    // The source units come first; while one runs, no person unit is claimable.
    let a = jobs.claim("w1", Duration::from_millis(200)).await.unwrap().expect("a source unit");
    let b = jobs.claim("w2", hour).await.unwrap().expect("the other source unit");
    let mut sources: Vec<SourceUnit> = vec![a.source.clone().unwrap(), b.source.clone().unwrap()];
    sources.sort_by(|x, y| x.source.cmp(&y.source));
    assert_eq!(sources, job.source_units);
    assert!(a.patients.is_empty() && b.patients.is_empty());
    assert!(jobs.claim("w3", hour).await.unwrap().is_none(), "person units wait");
    assert!(jobs.complete_unit(&b.id, "w2", &[]).await.unwrap());
    assert!(jobs.claim("w3", hour).await.unwrap().is_none(), "one source unit is still running");

    // Its worker dies: another takes the source unit over, and then the person unit runs.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = jobs.claim("w4", hour).await.unwrap().expect("the expired source unit");
    assert_eq!((again.id.as_str(), again.attempts), (a.id.as_str(), 2));
    assert!(!jobs.complete_unit(&a.id, "w1", &[]).await.unwrap(), "the dead worker's lease is gone");
    assert!(jobs.complete_unit(&a.id, "w4", &[]).await.unwrap());
    let person = jobs.claim("w3", hour).await.unwrap().expect("the person unit");
    assert_eq!((person.source, person.patients.len()), (None, 2));
    assert!(jobs.complete_unit(&person.id, "w3", &[]).await.unwrap());
    assert!(jobs.finish_if_done("j1", hour).await.unwrap());
    assert_eq!(jobs.progress("j1").await.unwrap(), 2);
    assert!(jobs.delete("j1").await.unwrap());
}

fn tests_job(id: &str) -> NewJob {
    NewJob {
        id: id.into(),
        kind: "bulk",
        client: "c".into(),
        access: StoredAccess {
            actor: "c".into(),
            role: Role::Partner { partner: "hie".into(), purpose: "TREAT".into() },
            app_scopes: None,
            person: None,
            groups: None,
            basis: Basis::default(),
        },
        request: "http://x/fhir/$export".into(),
        params: "{}".into(),
        level: "system",
        group_id: None,
        transaction_time: Utc::now(),
        units: vec![vec!["pt-1".into(), "pt-2".into()]],
        limits: Limits { resources: 10, bytes: 10_000 },
        source_units: Vec::new(),
    }
}
