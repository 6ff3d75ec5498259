//! The same store code on a real PostgreSQL (127.0.0.1:5432, trust auth, database `test`).
//! Each test works in its own schema `portico_t_<random>`, reached through the URL's
//! `options=-c search_path=…`, and drops it at the end, pass or fail. Runs under
//! `TEST_ON_POSTGRES=1` (scripts/test starts the server); there, PostgreSQL not answering is
//! a failure, not a skip.

use crate::common::*;
use portico::simulator::RunningSimulator;
use portico::store::{Dialect, Store};
use sqlx::postgres::PgPool;
use sqlx::Row;
use std::collections::BTreeSet;
use std::sync::Arc;

#[tokio::test]
async fn migrations_run_into_the_schema_named_by_the_url() {
    if !require("postgres") {
        return;
    }
    with_schema(|schema, pool| async move {
        let url = url_for(&schema);
        let store = Store::open(&url, 2).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.dialect, Dialect::Postgres);
        let current: String = sqlx::query("SELECT current_schema()::text").fetch_one(&store.pool).await.unwrap().get(0);
        assert_eq!(current, schema, "sqlx must honour options=-c search_path=… in the URL");

        let tables = tables_in(&pool, &schema).await;
        for t in ["_sqlx_migrations", "patient_links", "patient_id_aliases"] {
            assert!(tables.contains(t), "{t} not created in {schema}: {tables:?}");
        }
        let files = std::fs::read_dir(root().join("migrations"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "sql"));
        let applied = migrations(&pool, &schema).await;
        assert_eq!(applied.len(), files.count(), "one row per migration file: {applied:?}");
        assert!(applied.iter().all(|(_, ok)| *ok), "{applied:?}");

        // Opening again (a restart, a second replica) applies nothing twice.
        let again = Store::open(&url, 2).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(migrations(&pool, &schema).await, applied);
        store.pool.close().await;
        again.pool.close().await;
    })
    .await;
}

#[tokio::test]
async fn the_patient_index_lives_in_postgres_and_survives_restarts() {
    if !require("postgres") {
        return;
    }
    with_schema(|schema, pool| async move {
        let url = url_for(&schema);
        let mut sims: Vec<RunningSimulator> = Vec::new();
        for s in ["ehr", "lab", "imaging", "behavioral"] {
            sims.push(simulate(s, Default::default()).await);
        }
        let names = ["ehr", "lab", "imaging", "behavioral"];
        let body = fixture_sources(&names.iter().copied().zip(sims.iter()).collect::<Vec<_>>());
        let start = || async { Gateway::start_in(Arc::new(tempfile::tempdir().unwrap()), &body, Some(&url)).await };

        let gw = start().await;
        let links = gw.index.links().await.unwrap();
        let rows = link_rows(&pool, &schema).await;
        let indexed: BTreeSet<(String, String, String)> = links
            .iter()
            .flat_map(|l| {
                l.members.iter().map(|m| (m.source.clone(), m.source_patient_id.clone(), l.gateway_id.clone()))
            })
            .collect();
        assert_eq!(rows, indexed, "{schema}.patient_links holds exactly the index");
        let fixture_patients: usize = names.iter().map(|s| fixture_store(s).of_type("Patient").len()).sum();
        assert_eq!(rows.len(), fixture_patients, "every source patient record is indexed");

        let busiest = links.iter().max_by_key(|l| l.members.len()).unwrap();
        let everything = format!("Patient/{}/$everything", busiest.gateway_id);
        let (resources, outcomes) = gw.all_pages(&everything).await;
        assert!(outcomes.is_empty(), "{outcomes:?}");
        assert_eq!(resources[0]["id"].as_str(), Some(busiest.gateway_id.as_str()));
        let tags: BTreeSet<String> = resources.iter().flat_map(source_tags).collect();
        let members: BTreeSet<String> = busiest.members.iter().map(|m| m.source.clone()).collect();
        assert_eq!(tags, members, "every linked system contributes");
        gw.stop().await;

        // A fresh gateway (new temp dir, same schema) keeps every gateway id …
        let fresh = start().await;
        assert_eq!(fresh.index.links().await.unwrap(), links, "gateway ids survive a restart");
        assert_eq!(link_rows(&pool, &schema).await, rows);
        let (again, _) = fresh.all_pages(&everything).await;
        assert_eq!(keys(&again), keys(&resources));
        // … and so does a second replica started beside it on the same database.
        let replica = start().await;
        assert_eq!(replica.index.links().await.unwrap(), links, "replicas share the index");
        let (status, patient) = replica.get(&format!("Patient/{}", busiest.gateway_id)).await;
        assert_eq!((status, patient["id"].as_str()), (200, Some(busiest.gateway_id.as_str())));
        replica.stop().await;
        fresh.stop().await;
    })
    .await;
}

#[tokio::test]
async fn replicas_starting_together_agree_on_gateway_ids() {
    if !require("postgres") {
        return;
    }
    with_schema(|schema, _pool| async move {
        let url = url_for(&schema);
        let names = ["ehr", "lab", "imaging", "behavioral"];
        let mut sims: Vec<RunningSimulator> = Vec::new();
        for s in names {
            sims.push(simulate(s, Default::default()).await);
        }
        let body = fixture_sources(&names.iter().copied().zip(sims.iter()).collect::<Vec<_>>());
        let start = || async { Gateway::start_in(Arc::new(tempfile::tempdir().unwrap()), &body, Some(&url)).await };
        // Migrated beforehand and with equally slow sources, the two starts run neck and neck.
        Store::open(&url, 1).await.unwrap_or_else(|e| panic!("{e}")).pool.close().await;
        sims.iter().for_each(|s| s.controls().set_latency(std::time::Duration::from_millis(300)));
        let (a, b) = tokio::join!(start(), start());
        assert_eq!(
            a.index.links().await.unwrap(),
            b.index.links().await.unwrap(),
            "two replicas serve different gateway ids for the same people"
        );
        a.stop().await;
        b.stop().await;
    })
    .await;
}

// ---- helpers ----

async fn tables_in(pool: &PgPool, schema: &str) -> BTreeSet<String> {
    sqlx::query("SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1")
        .bind(schema)
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn migrations(pool: &PgPool, schema: &str) -> Vec<(i64, bool)> {
    let sql = format!("SELECT version, success FROM {schema}._sqlx_migrations ORDER BY version");
    sqlx::query(&sql).fetch_all(pool).await.unwrap().iter().map(|r| (r.get(0), r.get(1))).collect()
}

async fn link_rows(pool: &PgPool, schema: &str) -> BTreeSet<(String, String, String)> {
    let sql = format!("SELECT source, source_patient_id, gateway_id FROM {schema}.patient_links");
    sqlx::query(&sql).fetch_all(pool).await.unwrap().iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect()
}
