//! No 500 from races on the store (issue 12 part 8): sixteen clients at once — half reading
//! records (every read appends to the hash-chained access log), half kicking off `$export`
//! jobs back to back as one client, polling and deleting them while the export workers
//! claim, write and finish units — get only 2xx or 429 answers, never a 5xx. On the
//! embedded SQLite store the writes queue (one writer, `BEGIN IMMEDIATE`, a busy timeout)
//! instead of failing with "database is locked"; `TEST_ON_POSTGRES=1` runs the same
//! traffic on PostgreSQL.

use crate::bulk::client::{all_patients, kick_off, ASYNC, FHIR_JSON};
use crate::common::*;
use std::sync::Arc;

const CLIENTS: usize = 16;
const ROUNDS: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_clients_reading_and_exporting_at_once_never_get_a_5xx() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let body = format!(
        "[export]\ndirectory = {:?}\npoll_interval = \"20ms\"\npatients_per_unit = 1\nworkers = 4\n\
         max_jobs_per_client = 6\n{}",
        dir.path().join("exports").display().to_string(),
        fixture_file_sources()
    );
    let gw = Arc::new(Gateway::start_in(dir, &body, None).await);
    let patients = Arc::new(all_patients(&gw));
    let tasks = (0..CLIENTS).map(|client| {
        let (gw, patients) = (gw.clone(), patients.clone());
        tokio::spawn(async move {
            let mut seen: Vec<(String, u16, String)> = Vec::new();
            for round in 0..ROUNDS {
                if client % 2 == 0 {
                    let p = &patients[(client + round) % patients.len()];
                    for path in
                        [format!("Patient/{p}/$everything"), format!("Observation?patient={p}"), format!("Patient/{p}")]
                    {
                        let (status, body) = gw.get(&path).await;
                        seen.push((format!("GET {path}"), status, body.to_string()));
                    }
                } else {
                    let (status, location, body) = kick_off(&gw, "$export", TOKEN, &[ASYNC, FHIR_JSON]).await;
                    seen.push(("kick-off".into(), status, body.to_string()));
                    if let (202, Some(url)) = (status, location) {
                        let (status, body) = gw.get_with(&url, Some(TOKEN), &[]).await;
                        seen.push(("status".into(), status, body.to_string()));
                        let r = gw.http.delete(&url).bearer_auth(TOKEN).send().await.unwrap();
                        let status = r.status().as_u16();
                        seen.push(("delete".into(), status, r.text().await.unwrap()));
                    }
                }
            }
            seen
        })
    });
    let mut answers = Vec::new();
    for t in futures::future::join_all(tasks).await {
        answers.extend(t.unwrap());
    }
    let failed: Vec<_> = answers.iter().filter(|(_, status, _)| *status >= 500).collect();
    assert!(failed.is_empty(), "{} of {} answers were 5xx: {failed:#?}", failed.len(), answers.len());
    for (what, status, body) in &answers {
        let ok = match what.as_str() {
            "kick-off" => matches!(status, 202 | 429),
            "status" => matches!(status, 200 | 202),
            "delete" => *status == 202,
            _ => *status == 200,
        };
        assert!(ok, "{what}: {status} {body}");
    }
    let kicked = answers.iter().filter(|(w, s, _)| w == "kick-off" && *s == 202).count();
    assert!(kicked > 0, "some kick-offs were accepted");
}
