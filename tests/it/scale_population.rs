//! Populations at scale: `portico fixtures generate --patients-only` writes a Patient-only
//! population (one NDJSON file of Patients per source, people overlapping across sources)
//! for patient index runs, and the simulator's disk store serves such a population from
//! its files (an offset index in memory, resources read on demand).

use portico::simulator::disk::DiskStore;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `portico fixtures generate --patients-only` into `out`.
pub fn generate_patients_only(out: &Path, patients: usize, seed: u64) {
    let output = Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["fixtures", "generate", "--patients-only", "--patients", &patients.to_string(), "--sources", "4"])
        .args(["--seed", &seed.to_string(), "--out"])
        .arg(out)
        .stdin(Stdio::null())
        .output()
        .expect("portico runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn the_cli_writes_a_patient_only_population_of_twenty_thousand() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("population");
    generate_patients_only(&out, 20_000, 3);
    let manifest: Value = serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["patients"], 20_000);
    let mut patients = 0u64;
    let mut identifiers: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for source in ["ehr", "lab", "imaging", "behavioral"] {
        let files: Vec<String> = std::fs::read_dir(out.join(source))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(files, ["Patient.ndjson"], "{source} holds Patients only");
        let file = std::fs::File::open(out.join(source).join("Patient.ndjson")).unwrap();
        for line in std::io::BufReader::new(file).lines() {
            let p: Value = serde_json::from_str(&line.unwrap()).unwrap();
            assert_eq!(p["resourceType"], "Patient");
            patients += 1;
            for i in p["identifier"].as_array().unwrap() {
                identifiers.entry(i["value"].as_str().unwrap().to_string()).or_default().insert(source);
            }
        }
    }
    assert_eq!(manifest["resources"], patients, "every record is one Patient line");
    assert!(patients > 30_000, "people overlap across sources: {patients} records for 20,000 people");
    let shared = identifiers.values().filter(|s| s.len() > 1).count();
    assert!(shared > 2_000, "identifiers shared across sources: {shared}");
}

fn pairs(query: &[(&str, &str)]) -> Vec<(String, String)> {
    query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Set to a population folder, the ignored test below only indexes it and prints the
/// growth of its process's memory (run alone in a child, other tests cannot disturb it).
const RSS_CHILD_DIR: &str = "PORTICO_TEST_DISK_RSS_DIR";

#[test]
#[ignore = "run as a child by the_disk_store_serves_twenty_thousand_patients_from_an_offset_index"]
fn disk_store_index_growth_child() {
    let Ok(dir) = std::env::var(RSS_CHILD_DIR) else { return };
    // Once-per-process tables (the compartment definitions) are loaded before measuring.
    let warm = tempfile::tempdir().unwrap();
    std::fs::write(
        warm.path().join("Observation.ndjson"),
        r#"{"resourceType":"Observation","id":"o","subject":{"reference":"Patient/p"}}"#,
    )
    .unwrap();
    assert_eq!(DiskStore::open(warm.path(), 0).unwrap().compartment("Observation", "p"), [0]);
    let before = crate::common::process::memory_of(std::process::id(), "VmRSS:");
    let stores: Vec<DiskStore> = ["ehr", "lab", "imaging", "behavioral"]
        .iter()
        .map(|s| DiskStore::open(&Path::new(&dir).join(s), 0).unwrap())
        .collect();
    let growth = crate::common::process::memory_of(std::process::id(), "VmRSS:").saturating_sub(before);
    assert!(stores[0].count("Patient") > 0);
    println!("\nrss-growth={growth}");
}

/// Indexes the population in a fresh process and answers how much its memory grew.
fn index_growth_in_child(dir: &Path) -> u64 {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "scale_population::disk_store_index_growth_child", "--ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(RSS_CHILD_DIR, dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout} {}", String::from_utf8_lossy(&output.stderr));
    // libtest prints the test's name on the same line, before its output.
    let line = stdout.lines().find_map(|l| l.split("rss-growth=").nth(1)).expect("the child reports its growth");
    line.trim().parse().unwrap()
}

#[test]
fn the_disk_store_serves_twenty_thousand_patients_from_an_offset_index() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("population");
    generate_patients_only(&out, 20_000, 9);
    let sources = ["ehr", "lab", "imaging", "behavioral"];
    let size: u64 = sources.iter().map(|s| std::fs::metadata(out.join(s).join("Patient.ndjson")).unwrap().len()).sum();
    let growth = index_growth_in_child(&out);
    assert!(growth < size / 2, "indexing {size} bytes of NDJSON grew memory by {growth} bytes");
    assert!(growth > 0, "the child measured something");
    let stores: Vec<DiskStore> = sources.iter().map(|s| DiskStore::open(&out.join(s), 0).unwrap()).collect();

    let ehr = &stores[0];
    // What the file says, streamed: the first Patient, and how many were updated since July.
    let file = std::fs::File::open(out.join("ehr/Patient.ndjson")).unwrap();
    let (mut first, mut since_july, mut lines) = (None::<Value>, 0usize, 0usize);
    for line in std::io::BufReader::new(file).lines() {
        let p: Value = serde_json::from_str(&line.unwrap()).unwrap();
        lines += 1;
        if p["meta"]["lastUpdated"].as_str().unwrap() >= "2025-07-01" {
            since_july += 1;
        }
        first.get_or_insert(p);
    }
    let first = first.unwrap();
    assert_eq!(ehr.count("Patient"), lines);
    assert!(lines > 15_000, "{lines}");

    // Read by id.
    let id = first["id"].as_str().unwrap();
    assert_eq!(ehr.get("Patient", id).unwrap().as_ref(), Some(&first));
    assert_eq!(ehr.get("Patient", "pt-9999999").unwrap(), None);

    // Search by identifier: exactly that Patient.
    let mrn = first["identifier"][0]["value"].as_str().unwrap();
    let system = first["identifier"][0]["system"].as_str().unwrap();
    let page =
        ehr.search("Patient", &pairs(&[("identifier", &format!("{system}|{mrn}"))]), None, None, 50, false).unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.items, vec![first.clone()]);
    assert!(page.next.is_none());
    let none =
        ehr.search("Patient", &pairs(&[("identifier", &format!("{system}|HG-none"))]), None, None, 50, false).unwrap();
    assert_eq!((none.total, none.items.len()), (0, 0));

    // `_lastUpdated` listing, page by page: every match once, in id order.
    let query = pairs(&[("_lastUpdated", "ge2025-07-01")]);
    let (mut seen, mut after, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let page = ehr.search("Patient", &query, None, after.as_deref(), 1000, false).unwrap();
        assert_eq!(page.total, since_july);
        assert!(page.items.len() <= 1000);
        seen.extend(page.items.iter().map(|p| p["id"].as_str().unwrap().to_string()));
        pages += 1;
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), since_july);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "id order, no repeats");
    assert!(pages > 2 && since_july > 2_000 && since_july < lines, "{pages} pages, {since_july} of {lines}");
    assert!(DiskStore::open(&tmp.path().join("missing"), 0).is_err());
}

#[tokio::test]
async fn the_simulator_serves_a_population_from_disk_over_http() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("population");
    generate_patients_only(&out, 2_000, 4);
    let disk = DiskStore::open(&out.join("ehr"), 0).unwrap();
    let options = portico::simulator::SimulatorOptions { page_size: 100, ..Default::default() };
    let sim = portico::simulator::start_disk(disk, options, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = sim.base_url().to_string();
    let http = reqwest::Client::new();
    let get = |url: String| {
        let http = http.clone();
        async move {
            let r = http.get(&url).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let file = std::fs::File::open(out.join("ehr/Patient.ndjson")).unwrap();
    let first: Value = serde_json::from_str(&std::io::BufReader::new(file).lines().next().unwrap().unwrap()).unwrap();
    let id = first["id"].as_str().unwrap();
    let (status, read) = get(format!("{base}/Patient/{id}")).await;
    assert_eq!((status, &read), (200, &first));
    let (status, missing) = get(format!("{base}/Patient/pt-9999999")).await;
    assert_eq!((status, missing["resourceType"].as_str()), (404, Some("OperationOutcome")));

    let mrn = first["identifier"][0]["value"].as_str().unwrap();
    let (status, found) = get(format!("{base}/Patient?identifier={mrn}")).await;
    assert_eq!((status, found["total"].as_u64()), (200, Some(1)));
    assert_eq!(found["entry"][0]["resource"], first);

    // Every page of a `_lastUpdated` listing, by the server's next links.
    let mut url = Some(format!("{base}/Patient?_lastUpdated=ge2025-01-01"));
    let (mut ids, mut total) = (Vec::new(), None);
    while let Some(u) = url.take() {
        let (status, page) = get(u).await;
        assert_eq!(status, 200, "{page}");
        total = page["total"].as_u64();
        let entries = page["entry"].as_array().cloned().unwrap_or_default();
        assert!(entries.len() <= 100);
        ids.extend(entries.iter().map(|e| e["resource"]["id"].as_str().unwrap().to_string()));
        url = page["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| l["url"].as_str().unwrap().to_string());
    }
    let lines = std::io::BufReader::new(std::fs::File::open(out.join("ehr/Patient.ndjson")).unwrap()).lines().count();
    assert_eq!(total, Some(lines as u64));
    assert_eq!(ids.len(), lines, "every Patient once");
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let (status, bad) = get(format!("{base}/Patient?_lastUpdated=notadate")).await;
    assert_eq!((status, bad["resourceType"].as_str()), (400, Some("OperationOutcome")));
}

/// A listing without filters pages through the id index (each page reads only its own
/// resources): every Patient once, in id order, whatever the page size.
#[test]
fn the_disk_store_lists_every_patient_once_in_pages() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("population");
    generate_patients_only(&out, 1_000, 5);
    let disk = DiskStore::open(&out.join("lab"), 0).unwrap();
    let lines = std::io::BufReader::new(std::fs::File::open(out.join("lab/Patient.ndjson")).unwrap()).lines().count();
    let (mut ids, mut after) = (Vec::new(), None::<String>);
    loop {
        let page = disk.search("Patient", &pairs(&[("_count", "37")]), None, after.as_deref(), 50, false).unwrap();
        assert_eq!(page.total, lines);
        assert!(page.items.len() <= 37);
        ids.extend(page.items.iter().map(|p| p["id"].as_str().unwrap().to_string()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(ids.len(), lines, "every Patient once");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in id order");
    let empty = disk.search("Observation", &[], None, None, 50, false).unwrap();
    assert_eq!((empty.total, empty.items.len(), empty.next), (0, 0, None));
}

/// `simulator_from_disk = true`: simulated sources served from their files, read by the
/// index a page at a time (100 records a page, so many pages per source); the links are
/// the ones the generator wrote down.
#[tokio::test]
async fn simulated_sources_from_disk_are_indexed_page_by_page() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("population");
    generate_patients_only(&out, 2_000, 6);
    let manifest: Value = serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let sources: String = ["ehr", "lab", "imaging", "behavioral"]
        .iter()
        .map(|s| {
            format!(
                "[[sources]]\nname = \"{s}\"\nkind = \"simulated\"\npath = {:?}\nsimulator_from_disk = true\n\
                 simulator_page_size = 100\npage_size = 100\n\n",
                out.join(s).display().to_string()
            )
        })
        .collect();
    let gw = crate::common::Gateway::start(&sources).await;
    let links = gw.index.links().await.unwrap();
    let expected = &manifest["expected"];
    assert_eq!(links.len() as u64, expected["people"].as_u64().unwrap(), "one link per person");
    let members: usize = links.iter().map(|l| l.members.len()).sum();
    assert_eq!(members as u64, expected["records"].as_u64().unwrap(), "every record linked once");
    let across = links.iter().filter(|l| l.members.len() > 1).count();
    assert_eq!(across as u64, expected["linked_across_sources"].as_u64().unwrap());
    // Listed per pair of records (a stranger may resemble several records of one person).
    let possible = gw.index.possible_matches().await.unwrap();
    let strangers = expected["possible_matches"].as_u64().unwrap();
    assert!(strangers > 0 && possible.len() as u64 >= strangers, "{} pairs, {strangers} strangers", possible.len());
    let listed = manifest["sources"][0]["resources"].as_u64().unwrap();
    assert!(listed > 300, "the EHR needs several pages: {listed} records");
}
