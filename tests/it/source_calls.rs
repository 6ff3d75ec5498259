//! Fewer calls per person (issue 13 part 5). The four fixture systems are served three ways —
//! plain (one search per type), offering `Patient/$everything`, and offering
//! `_revinclude=Provenance:target` — each behind its own gateway. A person's record is
//! gathered with one `$everything` call per source record (plus its pages) and no searches
//! when offered, without separate Provenance searches when the revinclude is, and every way
//! releases exactly the same resources to staff, the patient and her mother. A source whose
//! `$everything` fails leaves a partial record with a warning naming it, never a silent gap.

use crate::common::*;
use portico::simulator::{RunningSimulator, SimulatorOptions, SimulatorStats};
use serde_json::Value;
use std::collections::BTreeMap;

const MAYA: &str = "source-calls-maya-token-0001";
const MOTHER: &str = "source-calls-mother-token-01";
const SOURCES: [&str; 4] = ["ehr", "lab", "imaging", "behavioral"];

/// The four fixture systems, simulated with `options`, behind one gateway.
struct Hospital {
    sims: BTreeMap<&'static str, RunningSimulator>,
    gw: Gateway,
}

async fn hospital(options: SimulatorOptions) -> Hospital {
    let mut sims = BTreeMap::new();
    for s in SOURCES {
        sims.insert(s, simulate(s, options.clone()).await);
    }
    let pairs: Vec<(&str, &RunningSimulator)> = sims.iter().map(|(n, s)| (*n, s)).collect();
    let body = format!(
        "[[server.dev_tokens]]\ntoken = \"{MAYA}\"\nviewer = \"patient\"\npatient = \"ehr/pt-10007\"\n\
         [[server.dev_tokens]]\ntoken = \"{MOTHER}\"\nviewer = \"proxy:MTH\"\npatient = \"ehr/pt-10007\"\n{}",
        fixture_sources(&pairs)
    );
    let gw = Gateway::start(&body).await;
    Hospital { sims, gw }
}

impl Hospital {
    fn stats(&self) -> BTreeMap<&'static str, SimulatorStats> {
        self.sims.iter().map(|(n, s)| (*n, s.stats())).collect()
    }
}

/// Per source, the calls per route between two snapshots (routes with none left out).
fn calls_between(
    before: &BTreeMap<&'static str, SimulatorStats>,
    after: &BTreeMap<&'static str, SimulatorStats>,
) -> BTreeMap<&'static str, BTreeMap<String, u64>> {
    after
        .iter()
        .map(|(source, stats)| {
            let diff = stats
                .calls
                .iter()
                .map(|(route, n)| (route.clone(), n - before[source].calls_to(route)))
                .filter(|(_, n)| *n > 0)
                .collect();
            (*source, diff)
        })
        .collect()
}

/// `$everything` of the source patient `ehr/{source_patient}` for `token`: the resources
/// sorted by `Type/id`, with the gateway's patient id (each gateway makes its own) written
/// `PATIENT` and its address (in attachment URLs) `GATEWAY`, and the outcomes.
async fn everything(gw: &Gateway, source_patient: &str, token: &str) -> (Vec<Value>, Vec<Value>) {
    let patient = gw.patient_id("ehr", source_patient);
    let (resources, outcomes) = gw.all_pages_with(&format!("Patient/{patient}/$everything?_count=500"), token).await;
    let mut resources: Vec<Value> =
        resources.iter().map(|r| serde_json::from_str(&r.to_string().replace(&patient, "PATIENT").replace(&gw.origin, "GATEWAY")).unwrap()).collect();
    resources.sort_by_key(|r| format!("{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap()));
    (resources, outcomes)
}

fn incomplete(outcomes: &[Value]) -> Vec<String> {
    outcomes
        .iter()
        .flat_map(|o| o["issue"].as_array().cloned().unwrap_or_default())
        .filter(|i| i["code"] == "incomplete")
        .map(|i| i["diagnostics"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// How many pages a simulator's `$everything` of `source_id` takes, asked directly.
async fn everything_pages(sim: &RunningSimulator, source_id: &str, page_size: u64) -> u64 {
    let url = format!("{}/Patient/{source_id}/$everything", sim.base_url());
    let bundle: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    bundle["total"].as_u64().unwrap().div_ceil(page_size)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_and_revinclude_take_fewer_calls_and_release_the_same_record() {
    const PAGE: usize = 10;
    let plain = hospital(SimulatorOptions::default()).await;
    let whole = hospital(SimulatorOptions { everything: true, page_size: PAGE, ..SimulatorOptions::default() }).await;
    let revinclude = hospital(SimulatorOptions { revinclude_provenance: true, ..SimulatorOptions::default() }).await;

    for (source_patient, viewers) in [("pt-10007", vec![TOKEN, MAYA, MOTHER]), ("pt-10001", vec![TOKEN])] {
        let gid = plain.gw.patient_id("ehr", source_patient);
        let members: Vec<(String, String)> = plain
            .gw
            .index
            .resolve(&gid)
            .await
            .unwrap()
            .unwrap()
            .members
            .iter()
            .map(|m| (m.source.clone(), m.source_patient_id.clone()))
            .collect();

        // Per type: searches, one per type the source holds, Provenance among them.
        let before = plain.stats();
        let (reference, outcomes) = everything(&plain.gw, source_patient, TOKEN).await;
        assert!(incomplete(&outcomes).is_empty(), "{outcomes:?}");
        let per_type = calls_between(&before, &plain.stats());
        assert!(per_type["ehr"].keys().filter(|r| r.starts_with("search ")).count() > 10, "{per_type:?}");
        let lab_records = members.iter().filter(|(s, _)| s == "lab").count() as u64;
        assert_eq!(per_type["lab"].get("search Provenance").copied().unwrap_or(0), lab_records, "{per_type:?}");

        // $everything: one call per source record (each page counted), no searches at all.
        let before = whole.stats();
        let (got, outcomes) = everything(&whole.gw, source_patient, TOKEN).await;
        assert!(incomplete(&outcomes).is_empty(), "{outcomes:?}");
        let calls = calls_between(&before, &whole.stats());
        for source in SOURCES {
            let ids: Vec<&str> = members.iter().filter(|(s, _)| s == source).map(|(_, id)| id.as_str()).collect();
            let mut pages = 0;
            for id in &ids {
                pages += everything_pages(&whole.sims[source], id, PAGE as u64).await;
            }
            let mut want = BTreeMap::new();
            if pages > 0 {
                want.insert("Patient/$everything".to_string(), pages);
            }
            assert_eq!(calls[source], want, "{source_patient} at {source} ({} records)", ids.len());
        }
        assert!(calls["ehr"]["Patient/$everything"] > 1, "the record is paged: {calls:?}");
        assert_eq!(got, reference, "{source_patient}: $everything gathers the same record as searches");

        // The revinclude: Provenance comes with the searches, never searched on its own.
        let before = revinclude.stats();
        let (got, outcomes) = everything(&revinclude.gw, source_patient, TOKEN).await;
        assert!(incomplete(&outcomes).is_empty(), "{outcomes:?}");
        let calls = calls_between(&before, &revinclude.stats());
        for source in SOURCES {
            assert_eq!(calls[source].get("search Provenance"), None, "{source}: {calls:?}");
        }
        assert_eq!(got, reference, "{source_patient}: revinclude gathers the same record as searches");
        let provenances = got.iter().filter(|r| r["resourceType"] == "Provenance").count();
        assert!(provenances > 0, "{source_patient}: the lab results carry Provenance");

        // Every viewer is released the same resources whichever way the record came.
        for token in viewers {
            let (want, _) = everything(&plain.gw, source_patient, token).await;
            assert!(!want.is_empty());
            assert_eq!(everything(&whole.gw, source_patient, token).await.0, want, "{source_patient} for {token}");
            assert_eq!(everything(&revinclude.gw, source_patient, token).await.0, want, "{source_patient} for {token}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_everything_is_a_partial_record_with_a_warning() {
    let h = hospital(SimulatorOptions { everything: true, ..SimulatorOptions::default() }).await;
    let lab = &h.sims["lab"];
    lab.controls().set_everything_broken(true);
    let before = lab.stats().calls_to("Patient/$everything");
    let (partial, outcomes) = everything(&h.gw, "pt-10007", TOKEN).await;
    assert!(lab.stats().calls_to("Patient/$everything") > before, "the lab was asked");
    let warnings = incomplete(&outcomes);
    assert_eq!(warnings.len(), 1, "{outcomes:?}");
    assert!(warnings[0].contains("Bayview Regional Reference Lab"), "{warnings:?}");
    let holders = |rs: &[Value], source: &str| rs.iter().filter(|r| source_tags(r).iter().any(|s| s == source)).count();
    assert_eq!(holders(&partial, "lab"), 0, "nothing of the lab's");
    assert!(holders(&partial, "ehr") > 0, "the other systems' part is there");

    // A partial record is not cached: once the lab answers, the record is whole again.
    lab.controls().set_everything_broken(false);
    let (whole, outcomes) = everything(&h.gw, "pt-10007", TOKEN).await;
    assert!(incomplete(&outcomes).is_empty(), "{outcomes:?}");
    assert!(holders(&whole, "lab") > 0);
    assert!(whole.len() > partial.len());
}
