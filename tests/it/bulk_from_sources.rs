//! Bulk from the sources (issue 14 part 2): a system-level export over sources that offer
//! Bulk Data `$export` asks each for its own export (one kick-off, no per-person searches)
//! and writes exactly what the same export over sources searched person by person writes;
//! `_since` reaches the sources; a source whose export fails is searched person by person
//! instead; withheld data stays withheld (and is released where the policy says so); a
//! source Group's export (`Group/ehr.{id}/$export`) asks that source for its Group's export;
//! a source export cut off by a restart is redone by the next gateway, nothing doubled.

use crate::bulk::client::*;
use crate::common::*;
use portico::simulator::{RunningSimulator, SimulatorOptions};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SOUTH: &str = "from-src-hie-south-treat-tok";
const EMERGENCY: &str = "from-src-hie-south-etreat-tok";
const SOURCES: [&str; 4] = ["ehr", "lab", "imaging", "behavioral"];
/// Danny's F11.20 (opioid use disorder) at the behavioral program: 42 CFR Part 2.
const PART2_ITEM: &str = "behavioral.7300012";

struct Sims(Vec<(&'static str, RunningSimulator)>);

impl Sims {
    async fn start(bulk: bool) -> Sims {
        let mut sims = Vec::new();
        for s in SOURCES {
            sims.push((s, simulate(s, SimulatorOptions { bulk, ..SimulatorOptions::default() }).await));
        }
        Sims(sims)
    }

    /// The same, the EHR holding a Group resource of two of its patients too.
    async fn start_with_a_group(bulk: bool) -> Sims {
        let mut sims = Sims::start(bulk).await;
        let ehr = fixture_store("ehr");
        let mut resources: Vec<Value> = ehr.types().flat_map(|t| ehr.of_type(t).to_vec()).collect();
        resources.push(serde_json::json!({"resourceType": "Group", "id": "cardiology-panel", "type": "person",
            "actual": true, "member": [{"entity": {"reference": "Patient/pt-10001"}},
                                       {"entity": {"reference": "Patient/pt-10002"}}]}));
        let options = SimulatorOptions { bulk, name: "ehr".into(), ..SimulatorOptions::default() };
        let with_group =
            simulate_store(portico::sources::files::ResourceStore::from_resources(resources), options).await;
        sims.0[0] = ("ehr", with_group);
        sims
    }

    fn get(&self, name: &str) -> &RunningSimulator {
        &self.0.iter().find(|(n, _)| *n == name).unwrap().1
    }

    /// Per source, the calls that read data (searches, reads, `$everything`) so far.
    fn data_calls(&self) -> BTreeMap<&'static str, u64> {
        self.0.iter().map(|(n, sim)| (*n, data_calls(sim))).collect()
    }
}

fn data_calls(sim: &RunningSimulator) -> u64 {
    sim.stats()
        .calls
        .iter()
        .filter(|(route, _)| {
            route.starts_with("search ") || route.starts_with("read ") || *route == "Patient/$everything"
        })
        .map(|(_, n)| n)
        .sum()
}

async fn gateway(sims: &Sims) -> Gateway {
    gateway_in(Arc::new(tempfile::tempdir().unwrap()), sims).await
}

async fn gateway_in(dir: Arc<tempfile::TempDir>, sims: &Sims) -> Gateway {
    let sources = fixture_sources(&sims.0.iter().map(|(n, s)| (*n, s)).collect::<Vec<_>>());
    let body = format!(
        "[[server.dev_tokens]]\ntoken = \"{SOUTH}\"\nviewer = \"partner:hie-south:TREAT\"\n\
         [[server.dev_tokens]]\ntoken = \"{EMERGENCY}\"\nviewer = \"partner:hie-south:ETREAT\"\n\
         [identity]\nrefresh_every = \"1h\"\n\
         [export]\ndirectory = {:?}\npoll_interval = \"100ms\"\npatients_per_unit = 4\n{sources}",
        dir.path().join("exports").display().to_string(),
    );
    Gateway::start_in(dir, &body, None).await
}

/// The exported resources by `Type/id`, each without what may differ between two gateways'
/// runs of one export: gateway patient ids (made on each gateway; named here by their
/// source records instead), the gateway's own address (in attachment URLs), and a shared supporting resource's copy (it follows which unit
/// wrote it first).
fn comparable(gw: &Gateway, resources: &[Value]) -> BTreeMap<String, Value> {
    let people: BTreeMap<String, String> = gw
        .links()
        .into_iter()
        .map(|l| {
            let mut members: Vec<String> =
                l.members.iter().map(|m| format!("{}~{}", m.source, m.source_patient_id)).collect();
            members.sort();
            (l.gateway_id, format!("person~{}", members.join("~")))
        })
        .collect();
    let gateway_id = regex::Regex::new(r"pt-[0-9a-f]{20}").unwrap();
    let renamed: Vec<Value> = resources
        .iter()
        .map(|r| {
            let original = r.to_string().replace(&gw.origin, "https://gateway");
            let text = gateway_id.replace_all(&original, |c: &regex::Captures| {
                people.get(&c[0]).cloned().unwrap_or_else(|| c[0].to_string())
            });
            serde_json::from_str(&text).unwrap()
        })
        .collect();
    by_key(&renamed)
        .into_iter()
        .map(|(k, mut r)| {
            if portico::fhir::SUPPORTING_TYPES.contains(&r["resourceType"].as_str().unwrap_or("")) {
                r = serde_json::json!({"resourceType": r["resourceType"], "id": r["id"]});
            }
            (k, r)
        })
        .collect()
}

fn assert_same_export((bulk_gw, bulk): (&Gateway, &[Value]), (plain_gw, fan_out): (&Gateway, &[Value])) {
    let (a, b) = (comparable(bulk_gw, bulk), comparable(plain_gw, fan_out));
    let only_bulk: Vec<&String> = a.keys().filter(|k| !b.contains_key(*k)).collect();
    let only_fan_out: Vec<&String> = b.keys().filter(|k| !a.contains_key(*k)).collect();
    assert!(
        only_bulk.is_empty() && only_fan_out.is_empty(),
        "only bulk: {only_bulk:?}; only fan-out: {only_fan_out:?}"
    );
    for (k, r) in &a {
        assert_eq!(r, &b[k], "{k} differs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_export_over_bulk_sources_asks_each_once_and_equals_the_fan_out() {
    let (bulk_sims, plain_sims) = (Sims::start(true).await, Sims::start(false).await);
    let (bulk_gw, plain_gw) = (gateway(&bulk_sims).await, gateway(&plain_sims).await);
    let before = bulk_sims.data_calls();

    let bulk = export(&bulk_gw, "$export", SOUTH).await;
    let fan_out = export(&plain_gw, "$export", SOUTH).await;
    assert!(bulk.resources.len() > 100, "{}", bulk.resources.len());
    assert_same_export((&bulk_gw, &bulk.resources), (&plain_gw, &fan_out.resources));
    // (The behavioral program's records are all 42 CFR Part 2: none for treatment without
    // consent; see the next test.)
    for source in ["ehr", "lab", "imaging"] {
        assert!(count_from_source(&bulk.resources, source) > 0, "{source}'s data is in the export");
    }
    // Every patient of the index is in it, each once.
    let patients: BTreeSet<&str> =
        bulk.resources.iter().filter(|r| r["resourceType"] == "Patient").map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(patients.len(), all_patients(&bulk_gw).len());

    // One kick-off per source, its files read, and no search or read of any source.
    for source in SOURCES {
        let stats = bulk_sims.get(source).stats();
        assert_eq!(stats.calls_to("$export"), 1, "{source}: {:?}", stats.calls);
        assert!(stats.calls_to("$export file") >= 1, "{source}: {:?}", stats.calls);
        assert!(stats.calls_to("$export status") >= 2, "{source} polled until done: {:?}", stats.calls);
        assert_eq!(stats.calls_to("$export cancel"), 1, "{source}: told its files may go");
        assert!(!stats.export_requests[0].contains("_since"), "{:?}", stats.export_requests);
        assert!(stats.export_requests[0].contains("_type="), "only the types gathered are asked for");
    }
    assert_eq!(bulk_sims.data_calls(), before, "no per-person searches of bulk sources");
    // The plain sources were searched person by person, and never asked for an export.
    for source in SOURCES {
        let stats = plain_sims.get(source).stats();
        assert_eq!(stats.calls_to("$export"), 0);
        assert!(data_calls(plain_sims.get(source)) > before[source], "{source} was searched");
    }

    // What was spilled is gone with the finished job.
    let store = portico::store::Store::open(&bulk_gw.database_url, 2).await.unwrap();
    let left = portico::aggregate::spill::Spill::new(store).tables().await.unwrap();
    assert!(left.is_empty(), "the spill is dropped when the job completes: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withheld_data_stays_withheld_when_it_comes_from_a_source_export() {
    let sims = Sims::start(true).await;
    let gw = gateway(&sims).await;
    // Treatment without Part 2 consent: the F11.20 diagnosis does not leave, and no
    // resource names it.
    let treat = export(&gw, "$export", SOUTH).await;
    assert!(!treat.resources.iter().any(|r| r["id"] == PART2_ITEM), "Part 2 withheld for treatment");
    assert!(!treat.resources.iter().any(|r| r.to_string().contains(&format!("Condition/{PART2_ITEM}\""))));
    // Emergency treatment: released from the same source export.
    let emergency = export(&gw, "$export", EMERGENCY).await;
    assert!(emergency.resources.iter().any(|r| r["id"] == PART2_ITEM), "released for emergency treatment");
    assert_eq!(sims.get("behavioral").stats().calls_to("$export"), 2, "one kick-off per job");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_reaches_the_sources_and_an_incremental_export_equals_the_fan_out() {
    let (bulk_sims, plain_sims) = (Sims::start(true).await, Sims::start(false).await);
    let (bulk_gw, plain_gw) = (gateway(&bulk_sims).await, gateway(&plain_sims).await);
    // An instant between the data's own last updates, so the export is narrowed.
    let full = export(&plain_gw, "$export", SOUTH).await;
    let mut updated: Vec<chrono::DateTime<chrono::FixedOffset>> = full
        .resources
        .iter()
        .filter_map(|r| r.pointer("/meta/lastUpdated").and_then(Value::as_str))
        .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .collect();
    updated.sort();
    let since =
        updated[updated.len() / 2].with_timezone(&chrono::Utc).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let path = format!("$export?_since={}", since.replace('+', "%2B"));

    let bulk = export(&bulk_gw, &path, SOUTH).await;
    let fan_out = export(&plain_gw, &path, SOUTH).await;
    assert!(fan_out.resources.len() < full.resources.len(), "_since narrows the export");
    assert_same_export((&bulk_gw, &bulk.resources), (&plain_gw, &fan_out.resources));
    for source in SOURCES {
        let asked = &bulk_sims.get(source).stats().export_requests;
        assert_eq!(asked.len(), 1);
        let query: BTreeMap<String, String> =
            url::form_urlencoded::parse(asked[0].split_once('?').map_or("", |(_, q)| q).as_bytes())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        assert_eq!(query.get("_since"), Some(&since), "{source}: `_since` passed through: {asked:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_whose_export_fails_is_searched_person_by_person() {
    let (bulk_sims, plain_sims) = (Sims::start(true).await, Sims::start(false).await);
    let (bulk_gw, plain_gw) = (gateway(&bulk_sims).await, gateway(&plain_sims).await);
    bulk_sims.get("lab").controls().set_bulk_broken(true);
    let before = bulk_sims.data_calls();

    let bulk = export(&bulk_gw, "$export", SOUTH).await;
    let fan_out = export(&plain_gw, "$export", SOUTH).await;
    assert_same_export((&bulk_gw, &bulk.resources), (&plain_gw, &fan_out.resources));
    assert!(count_from_source(&bulk.resources, "lab") > 0, "the lab's results are there");
    assert!(
        !warnings(&bulk.errors).iter().any(|w| w.contains(&display_of("lab"))),
        "nothing is missing: {:?}",
        warnings(&bulk.errors)
    );
    let after = bulk_sims.data_calls();
    let lab = bulk_sims.get("lab").stats();
    assert_eq!(lab.calls_to("$export"), 1, "the lab was asked once");
    assert!(after["lab"] > before["lab"], "then searched person by person");
    for source in ["ehr", "imaging", "behavioral"] {
        assert_eq!(after[source], before[source], "{source}: its export was used");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_group_is_exported_from_its_sources_group_export() {
    let (bulk_sims, plain_sims) = (Sims::start_with_a_group(true).await, Sims::start_with_a_group(false).await);
    let (bulk_gw, plain_gw) = (gateway(&bulk_sims).await, gateway(&plain_sims).await);
    let before = bulk_sims.data_calls();
    let ehr_before = bulk_sims.get("ehr").stats().calls;
    let path = "Group/ehr.cardiology-panel/$export";
    let bulk = export(&bulk_gw, path, SOUTH).await;
    let fan_out = export(&plain_gw, path, SOUTH).await;
    assert_same_export((&bulk_gw, &bulk.resources), (&plain_gw, &fan_out.resources));
    let patients = bulk.resources.iter().filter(|r| r["resourceType"] == "Patient").count();
    assert_eq!(patients, 2, "the Group's two members");

    // The EHR was asked for its Group's export; the other sources (a few people's worth)
    // were searched person by person.
    let asked = bulk_sims.get("ehr").stats().export_requests;
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(asked[0].starts_with("Group/cardiology-panel/$export?_type="), "{asked:?}");
    for source in ["lab", "imaging", "behavioral"] {
        assert_eq!(bulk_sims.get(source).stats().calls_to("$export"), 0, "{source}");
    }
    let after = bulk_sims.data_calls();
    assert!(after["lab"] > before["lab"], "the lab was searched");
    // The EHR was not searched for its patients' records: only the Group itself was read
    // (at kick-off), and what the records point at that a Group's export does not hold
    // (Practitioners, Organizations …) was read by id.
    let ehr_after = bulk_sims.get("ehr").stats().calls;
    for (route, n) in &ehr_after {
        if !route.starts_with("search ") || ehr_before.get(route) == Some(n) {
            continue;
        }
        let t = route.trim_start_matches("search ");
        assert!(t == "Group" || portico::fhir::REFERENCED_TYPES.contains(&t), "the EHR was searched: {route}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_export_cut_off_by_a_restart_is_redone_and_nothing_is_doubled() {
    let sims = Sims::start(true).await;
    for (_, sim) in &sims.0 {
        sim.controls().set_latency(Duration::from_millis(300));
    }
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let first = gateway_in(dir.clone(), &sims).await;
    let database_url = first.database_url.clone();
    let (status, location, _) = kick_off(&first, "$export", SOUTH, &[ASYNC, FHIR_JSON]).await;
    assert_eq!(status, 202);
    let job = location.unwrap().rsplit('/').next().unwrap().to_string();
    // Stopped once a source has been asked for its export (the unit is polling it).
    let started = Instant::now();
    while sims.0.iter().all(|(_, s)| s.stats().calls_to("$export") == 0) {
        assert!(started.elapsed() < Duration::from_secs(30), "no source was asked for its export");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first_origin = first.origin.clone();
    first.stop().await;
    let store = portico::store::Store::open(&database_url, 2).await.unwrap();
    let source_units_done: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM export_units WHERE job_id = $1 AND source_name IS NOT NULL AND state = 'done'",
    )
    .bind(&job)
    .fetch_one(&store.pool)
    .await
    .unwrap();
    assert!(source_units_done < 4, "cut off before the sources' exports were all read");

    for (_, sim) in &sims.0 {
        sim.controls().set_latency(Duration::ZERO);
    }
    let second = gateway_in(dir.clone(), &sims).await;
    let finished = collect(&second, &format!("{}/$export-status/{job}", second.fhir), SOUTH).await;
    let all = all_patients(&second);
    let exported = as_if_from(&finished.resources, &first_origin, &second.origin);
    assert_same(&exported, &everything(&second, &all, SOUTH).await);
    let mut patients: Vec<&str> = finished
        .resources
        .iter()
        .filter(|r| r["resourceType"] == "Patient")
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    patients.sort();
    assert_eq!(patients, all.iter().map(String::as_str).collect::<Vec<_>>(), "each patient exactly once");
    let audits = export_audits(&second.database_url, &job).await;
    assert!(audits.len() == all.len() && audits.values().all(|n| *n == 1), "each patient logged once: {audits:?}");
    // The source unit cut off was started afresh: some source was asked twice, none thrice.
    let asked: Vec<u64> = sims.0.iter().map(|(_, s)| s.stats().calls_to("$export")).collect();
    assert!(asked.iter().all(|n| (1..=2).contains(n)) && asked.contains(&2), "{asked:?}");
    let left = portico::aggregate::spill::Spill::new(store.clone()).tables().await.unwrap();
    assert!(left.is_empty(), "{left:?}");
}
