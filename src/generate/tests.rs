use super::manifest::{Manifest, CONFIG_FILE, PEOPLE_FILE, SENSITIVE_FILE};
use super::*;
use crate::sources::files::ResourceStore;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

fn run(patients: usize, sources: usize, seed: u64) -> (tempfile::TempDir, PathBuf, Manifest) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("population");
    let manifest = generate(&GenerateOptions { patients, sources, seed, out: out.clone() }).unwrap();
    (tmp, out, manifest)
}

/// Every file under `dir`, relative path → bytes (the config names its own folder, so it is
/// compared with the folder replaced).
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut all = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().display().to_string();
                let mut bytes = std::fs::read(&path).unwrap();
                if rel == CONFIG_FILE {
                    let canonical = std::fs::canonicalize(dir).unwrap().display().to_string();
                    bytes = String::from_utf8(bytes).unwrap().replace(&canonical, "DIR").into_bytes();
                }
                all.insert(rel, bytes);
            }
        }
    }
    all
}

#[test]
fn same_arguments_same_bytes_other_seed_other_people() {
    let (_a, dir_a, _) = run(60, 5, 7);
    let (_b, dir_b, _) = run(60, 5, 7);
    let (a, b) = (files(&dir_a), files(&dir_b));
    assert!(a.len() > 20, "{:?}", a.keys());
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, bytes) in &a {
        assert!(bytes == &b[name], "{name} differs between two runs with the same arguments");
    }
    let (_c, dir_c, _) = run(60, 5, 8);
    let c = files(&dir_c);
    assert_ne!(a[PEOPLE_FILE], c[PEOPLE_FILE], "another seed draws other people");
    assert_ne!(a["ehr/Observation.ndjson"], c["ehr/Observation.ndjson"]);
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Every `reference` string anywhere in a resource.
fn references(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("reference", Value::String(s)) => out.push(s.clone()),
                    _ => references(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| references(x, out)),
        _ => {}
    }
}

#[test]
fn shape_of_a_population() {
    let (_tmp, dir, manifest) = run(200, 4, 3);
    assert_eq!(manifest.patients, 200);
    assert!(
        manifest.resources_per_patient >= 100.0,
        "about 100 resources per patient: {}",
        manifest.resources_per_patient
    );
    let date = regex::Regex::new(r"^\d{4}-\d{2}-\d{2}").unwrap();
    let mut total = 0;
    for s in &manifest.sources {
        let folder = dir.join(&s.folder);
        // Readable by the files source and the simulator (no duplicates, valid JSON).
        let store = ResourceStore::load(&folder, 0).unwrap();
        assert_eq!(store.len() as u64, s.resources, "{}", s.name);
        let mut keys = HashSet::new();
        let mut refs = Vec::new();
        for t in store.types() {
            assert_eq!(store.of_type(t).len() as u64, s.by_type[t], "{}/{t}", s.name);
            for r in store.of_type(t) {
                let id = r["id"].as_str().unwrap();
                assert!(crate::fhir::is_valid_id(id), "{id}");
                assert!(!date.is_match(id), "ids never look like dates (they would be shifted): {id}");
                keys.insert(format!("{t}/{id}"));
                references(r, &mut refs);
                if let Some(element) = crate::fhir::patient_element(t) {
                    let patient = r[element]["reference"].as_str().unwrap_or_else(|| panic!("{t}/{id} has no patient"));
                    assert!(patient.starts_with("Patient/"), "{patient}");
                }
            }
        }
        for r in &refs {
            assert!(keys.contains(r), "{}: {r} does not resolve inside its source", s.name);
        }
        total += s.resources;
    }
    assert_eq!(total, manifest.resources);

    // The manifest's people and expectations point at what was written.
    let people = lines(&dir.join(PEOPLE_FILE));
    assert_eq!(people.len(), 200);
    let records: usize = people.iter().map(|p| p["records"].as_array().unwrap().len()).sum();
    assert_eq!(records as u64, manifest.expected.records);
    for p in &people {
        let recs = p["records"].as_array().unwrap();
        assert_eq!(recs[0]["link"], "anchor");
        let sources: HashSet<_> = recs.iter().map(|r| r["source"].as_str().unwrap()).collect();
        assert_eq!(sources.len(), recs.len(), "at most one record per source: {p}");
    }
    assert!(manifest.expected.namesakes > 0 && manifest.expected.possible_matches > 0);
    assert!(manifest.expected.children_under_12 > 0 && manifest.expected.adolescents > 0);
    let expectations = lines(&dir.join(SENSITIVE_FILE));
    let mut labels = HashSet::new();
    for e in &expectations {
        let (t, id) = e["resource"].as_str().unwrap().split_once('/').unwrap();
        let store_file = dir.join(e["source"].as_str().unwrap()).join(format!("{t}.ndjson"));
        let text = std::fs::read_to_string(store_file).unwrap();
        assert!(text.contains(&format!("\"id\":\"{id}\"")), "{e}");
        if let Some(l) = e["label"].as_str() {
            labels.insert(l.to_string());
        }
    }
    for l in ["HIV", "MH", "ETH", "42CFRPart2", "SEX", "PREGNANT", "STD", "SDV", "GDIS", "R"] {
        assert!(labels.contains(l), "some content must be {l}: {labels:?}");
    }
    assert!(manifest.expected.unlabelled > 0);
}

#[test]
fn bad_arguments_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("p");
    let e = generate(&GenerateOptions { patients: 0, sources: 4, seed: 1, out: out.clone() }).unwrap_err();
    assert!(e.to_string().contains("--patients 0"), "{e}");
    let e = generate(&GenerateOptions { patients: 5, sources: 13, seed: 1, out: out.clone() }).unwrap_err();
    assert!(e.to_string().contains("--sources 13"), "{e}");
    assert!(!out.exists());
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "mine").unwrap();
    let e = generate(&GenerateOptions { patients: 5, sources: 2, seed: 1, out: out.clone() }).unwrap_err();
    assert!(matches!(e, GenerateError::OutputNotEmpty(_)), "{e}");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 1, "no partial folder left behind: {left:?}");
    assert_eq!(std::fs::read_to_string(out.join("keep.txt")).unwrap(), "mine");
    // One source: everyone in the EHR, nobody to link.
    let one = tmp.path().join("one");
    let m = generate(&GenerateOptions { patients: 30, sources: 1, seed: 1, out: one }).unwrap();
    assert_eq!(m.expected.records, 30);
    assert_eq!(m.expected.linked_across_sources, 0);
}

fn run_patients_only(patients: usize, seed: u64) -> (tempfile::TempDir, PathBuf, Manifest) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("population");
    let manifest = generate_patients_only(&GenerateOptions { patients, sources: 4, seed, out: out.clone() }).unwrap();
    (tmp, out, manifest)
}

#[test]
fn patients_only_is_deterministic_patient_files_with_identifiers_shared_across_sources() {
    let (_a, dir_a, manifest) = run_patients_only(400, 5);
    let (_b, dir_b, _) = run_patients_only(400, 5);
    let (a, b) = (files(&dir_a), files(&dir_b));
    assert_eq!(a, b, "same arguments, same bytes");
    let (_c, dir_c, _) = run_patients_only(400, 6);
    assert_ne!(a["ehr/Patient.ndjson"], files(&dir_c)["ehr/Patient.ndjson"], "another seed, other people");
    let data: Vec<&String> = a.keys().filter(|k| k.contains('/')).collect();
    assert_eq!(
        data,
        ["behavioral/Patient.ndjson", "ehr/Patient.ndjson", "imaging/Patient.ndjson", "lab/Patient.ndjson"]
    );
    assert_eq!(manifest.patients, 400);
    assert_eq!(manifest.resources, manifest.expected.records, "one Patient per record, nothing else");
    // Overlap: identifier values (anchor MRNs) that appear in more than one source.
    let mut sources_of: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    for source in ["ehr", "lab", "imaging", "behavioral"] {
        for p in lines(&dir_a.join(source).join("Patient.ndjson")) {
            assert_eq!(p["resourceType"], "Patient");
            assert!(p["birthDate"].is_string() && p["name"][0]["family"].is_string());
            for i in p["identifier"].as_array().unwrap() {
                sources_of.entry(i["value"].as_str().unwrap().to_string()).or_default().insert(source.into());
            }
        }
    }
    let shared = sources_of.values().filter(|s| s.len() > 1).count();
    assert!(shared >= 40, "identifiers shared across sources: {shared}");
    assert!(manifest.expected.linked_across_sources >= 100, "{:?}", manifest.expected.linked_across_sources);
    assert!(manifest.expected.possible_matches > 0 && manifest.expected.namesakes > 0);
}

#[test]
fn what_the_population_remembers_between_people_has_a_fixed_size() {
    use super::people::{Population, Taken};
    use rand::SeedableRng;
    let plans = source_plans(4);
    let tmp = tempfile::tempdir().unwrap();
    let mut output = output::Output::create(tmp.path(), &plans, 1).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut population = Population::new(&plans);
    let fresh = Taken::new().heap_bytes();
    for number in 1..=50_000 {
        population.draw(number, &mut rng, &mut output.ids);
    }
    assert_eq!(population.taken_bytes(), fresh, "50,000 people later, the same bytes");
}
