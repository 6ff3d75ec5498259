//! The shipped `config/labels.toml` over the Harbor Health fixtures: every sensitive item
//! that fixtures/README.md names gets its labels, and ordinary items get none. Slices are
//! built per person from the sources' compartments, tagged with a source tag as the merge
//! does; ids stay the sources' own ids (references are relative, so they still resolve).

use super::*;
use crate::aggregate::provenance::SOURCE_TAG_SYSTEM;
use crate::sources::files::ResourceStore;
use std::collections::HashMap;
use std::path::Path;

const SOURCES: &[&str] = &["ehr", "lab", "imaging", "behavioral"];

fn shipped_labeler() -> Labeler {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/labels.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let file: LabelsFile = toml::from_str(&text).unwrap();
    assert!(
        file.label_rules.iter().all(|r| r.source.as_deref().is_some_and(|s| !s.is_empty())),
        "every group names its source"
    );
    Labeler::new(&file.label_rules).unwrap()
}

fn stores() -> HashMap<&'static str, ResourceStore> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    SOURCES.iter().map(|s| (*s, ResourceStore::load(&root.join(s), 0).unwrap())).collect()
}

/// One person's slice: `(source, source patient id)` records, every compartment type plus
/// the Patient, each tagged with its source.
fn slice(stores: &HashMap<&str, ResourceStore>, records: &[(&str, &str)]) -> Vec<Value> {
    let mut out = Vec::new();
    for (source, pid) in records {
        let store = &stores[source];
        let mut push = |r: &Value| {
            let mut r = r.clone();
            let meta = r.as_object_mut().unwrap().entry("meta").or_insert_with(|| json!({}));
            let tags = meta.as_object_mut().unwrap().entry("tag").or_insert_with(|| json!([]));
            tags.as_array_mut().unwrap().push(json!({"system": SOURCE_TAG_SYSTEM, "code": source}));
            out.push(r);
        };
        push(store.get("Patient", pid).unwrap());
        for t in fhir::PATIENT_COMPARTMENT_TYPES {
            store.compartment(pid, t).into_iter().for_each(&mut push);
        }
    }
    out
}

/// Every person with a record in the fixtures, by the README's number.
const PEOPLE: &[(&str, &[(&str, &str)])] = &[
    ("P01", &[("ehr", "pt-10001"), ("lab", "12234b6a-63ea-5997-91fa-0ff4d7f2341d"), ("imaging", "IMG.PT.00001")]),
    ("P02", &[("ehr", "pt-10002"), ("lab", "75feff3f-4707-53c7-80f2-01d1ced25532"), ("imaging", "IMG.PT.00002")]),
    ("P03", &[("ehr", "pt-10003"), ("lab", "ba966dcb-7c8a-5e06-9cc5-20e3e7895abd")]),
    ("P04", &[("ehr", "pt-10004"), ("behavioral", "7300007")]),
    ("P05", &[("ehr", "pt-10005"), ("behavioral", "7300026")]),
    ("P06", &[("ehr", "pt-10006"), ("lab", "e02f1810-32e8-563f-a0ac-ab996cdbd2ed")]),
    ("P07", &[("ehr", "pt-10007"), ("lab", "fef820aa-cf25-562a-94de-c928ab61bc4e")]),
    ("P08", &[("ehr", "pt-10008"), ("imaging", "IMG.PT.00003")]),
    ("P09", &[("ehr", "pt-10009"), ("lab", "6f908407-fe97-5f75-8d03-96e53fff4a77")]),
    ("P10", &[("ehr", "pt-10010"), ("lab", "ced72a8e-a4ec-5c37-b2ca-8978b90365b0")]),
    ("P11", &[("ehr", "pt-10011"), ("imaging", "IMG.PT.00004")]),
    ("P12", &[("ehr", "pt-10012"), ("lab", "2d38a90b-7db8-5424-9c69-4a862610684b"), ("imaging", "IMG.PT.00005")]),
    ("P13", &[("ehr", "pt-10013"), ("imaging", "IMG.PT.00006")]),
    ("P14", &[("ehr", "pt-10014"), ("lab", "f1a43359-8c30-536b-a971-d54954c36aec")]),
    ("P15", &[("ehr", "pt-10015"), ("imaging", "IMG.PT.00007")]),
];

/// Labels every person's slice; returns `Type/id` → label codes, and the explanations.
fn label_everyone() -> (HashMap<String, BTreeSet<String>>, BTreeMap<String, Vec<String>>) {
    let labeler = shipped_labeler();
    let stores = stores();
    let part2 = HashSet::from(["behavioral".to_string()]);
    let (mut labels, mut why) = (HashMap::new(), BTreeMap::new());
    for (_, records) in PEOPLE {
        let mut record = slice(&stores, records);
        why.extend(labeler.label_record(&mut record, &part2));
        for r in &record {
            labels.insert(propagate::key_of(r).unwrap(), labels_of(r));
        }
    }
    (labels, why)
}

#[test]
fn shipped_rules_label_the_fixtures_sensitive_items() {
    let (labels, why) = label_everyone();
    let has = |key: &str, expected: &[&str]| {
        let got = labels.get(key).unwrap_or_else(|| panic!("{key} is not in any slice"));
        for code in expected {
            assert!(got.contains(*code), "{key} should carry {code}, has {got:?}");
        }
    };
    // P03 Marcus: HIV.
    has("Observation/75cc5d2e-c4da-5426-8ebe-1416a195d5d2", &["HIV", "R"]);
    assert_eq!(why["Observation/75cc5d2e-c4da-5426-8ebe-1416a195d5d2"], ["source"]);
    has("Observation/1eb4c356-aec1-5b9f-b2cc-233cff1e191c", &["HIV", "R"]);
    has("Observation/0d7489bb-3f39-5adc-88e5-07689f628816", &["HIV", "R"]);
    has("Condition/cond-10006", &["HIV", "R"]);
    has("MedicationRequest/mrx-10005", &["HIV", "R"]);
    has("Encounter/enc-10007", &["HIV"]);
    // P04 Danny and P05 Thomas: Part 2.
    has("Condition/7300012", &["ETH", "R", "42CFRPart2"]);
    assert_eq!(why["Condition/7300012"], ["source"], "the source sent all three");
    has("Condition/7300013", &["42CFRPart2"]);
    // Nicotine dependence is never substance use by its own codes (F17 is excluded) …
    assert!(!why["Condition/7300013"].iter().any(|w| w == "substance-use" || w == "substance-use:words"));
    // … but it was diagnosed in a substance-use treatment visit, and carries the visit's reason.
    assert!(why["Condition/7300013"].iter().any(|w| w.starts_with("propagated:Encounter/")), "{:?}", why["Condition/7300013"]);
    for mr in ["MedicationRequest/7300014", "MedicationRequest/7300015", "Observation/7300016", "Observation/7300018"] {
        has(mr, &["ETH", "R", "42CFRPart2"]);
    }
    has("Encounter/7300008", &["ETH", "42CFRPart2"]);
    has("DocumentReference/7300025", &["ETH", "42CFRPart2"]);
    has("DocumentReference/7300024", &["42CFRPart2"]);
    has("Observation/7300019", &["MH", "42CFRPart2"]);
    has("Condition/7300030", &["ETH", "R", "42CFRPart2"]);
    has("Observation/7300031", &["ETH", "42CFRPart2"]);
    has("MedicationRequest/7300032", &["ETH", "42CFRPart2"]);
    for ehr in ["Encounter/enc-10009", "Immunization/imm-10004", "DocumentReference/doc-10005", "Condition/cond-10007"]
    {
        assert!(labels[ehr].is_empty(), "{ehr} (EHR, not Part 2) has {:?}", labels[ehr]);
    }
    // P06 Sarah: depression, violence.
    has("Condition/cond-10008", &["MH", "R"]);
    has("Observation/obs-10036", &["MH", "R"]);
    has("Observation/obs-10037", &["MH", "R"]);
    has("MedicationRequest/mrx-10006", &["MH", "R"]);
    has("Observation/obs-10038", &["SDV", "R"]);
    has("Procedure/proc-10002", &["SDV", "R"]);
    has("Condition/cond-10009", &["SDV", "R"]);
    has("Condition/cond-10010", &["SDV", "R"]);
    has("Encounter/enc-10011", &["MH", "SDV", "R"]);
    has("DocumentReference/doc-10008", &["MH", "SDV"]);
    // P07 Maya: contraception, pregnancy, STI, depression.
    has("Condition/cond-10011", &["SEX", "R"]);
    has("MedicationRequest/mrx-10007", &["SEX", "R"]);
    has("Condition/cond-10013", &["PREGNANT", "R"]);
    has("Observation/obs-10045", &["PREGNANT", "R"]);
    has("Observation/9e989c92-5860-5b3f-9e05-510d900b67e2", &["PREGNANT", "R"]);
    has("Condition/cond-10014", &["STD", "R"]);
    has("Observation/3e04b8c2-03f7-5a97-a0e1-79b596b418af", &["STD", "R"]);
    has("Observation/ac5325b0-0f30-5b04-9b7f-5c69697bfe2d", &["STD", "R"]);
    has("Observation/a1239056-10d1-5528-bdef-518ea6ea16c7", &["STD", "R"]);
    has("Observation/obs-10043", &["MH", "R"]);
    has("Observation/obs-10044", &["MH", "R"]);
    has("Condition/cond-10012", &["MH", "R"]);
    has("Encounter/enc-10014", &["SEX", "MH"]);
    has("Encounter/enc-10015", &["PREGNANT", "STD"]);
    has("DocumentReference/doc-10009", &["PREGNANT", "STD", "R"]);
    // The depression diagnosis was recorded in the contraception visit: what happened in a
    // visit for a confidential service carries the visit's reason.
    has("Condition/cond-10012", &["SEX"]);
    // P02 Liz: genetics, and her pathology report is not labelled.
    has("DiagnosticReport/b0f9dcef-738d-5371-8bc7-4288c487c5cc", &["GDIS", "R"]);
    has("Observation/0bab68ea-73d4-5db6-ba09-6ae4b9e9c161", &["GDIS", "R"]);
    has("Observation/f953656a-56f7-5298-9d1b-b7a6c038b854", &["GDIS", "R"]);
    has("Condition/cond-10005", &["GDIS", "R"]);
    has("DocumentReference/doc-10003", &["GDIS"]);
    assert!(labels["DiagnosticReport/c0e13e6c-a3ba-5a10-86f8-498d8d0c049d"].is_empty());
    // P09 Noah and P10 Olivia.
    has("Condition/cond-10017", &["MH", "R"]);
    has("Observation/obs-10054", &["MH", "R"]);
    has("DocumentReference/doc-10011", &["MH"]);
    has("Observation/a11813ca-1cd0-5714-9efe-9a54e6defda9", &["STD", "R"]);
    assert!(labels["Observation/4a2441b5-7c9f-5770-9095-356f6504ffcd"].is_empty());
    // Ordinary items.
    for key in [
        "Condition/cond-10001",
        "Immunization/imm-10001",
        "Immunization/imm-10017",
        "Observation/70a610d1-8854-5891-ad7b-8a17e7c7f344",
        "Observation/obs-10022",
        "Condition/cond-10016",
        "Patient/pt-10003",
        "Patient/7300007",
    ] {
        assert!(labels[key].is_empty(), "{key} has {:?}", labels[key]);
    }
}

#[test]
fn people_without_sensitive_data_get_no_labels() {
    let (labels, _) = label_everyone();
    let stores = stores();
    for (person, records) in
        PEOPLE.iter().filter(|(p, _)| ["P01", "P08", "P11", "P12", "P13", "P14", "P15"].contains(p))
    {
        for r in slice(&stores, records) {
            let key = propagate::key_of(&r).unwrap();
            assert!(labels[&key].is_empty(), "{person}: {key} has {:?}", labels[&key]);
        }
    }
}

/// The aggregator matches the rules on each source's resources as its answer arrives, before
/// the merge ([`Labeler::find`]), and adds the labels to the merged record afterwards
/// ([`Labeler::label_found`]): for every fixture person this labels the merged record exactly
/// as matching the rules on the merged record itself does.
#[test]
fn rules_matched_before_the_merge_label_the_merged_record_the_same() {
    use crate::aggregate::merge::{merge, merge_owned, Fetched};
    let labeler = shipped_labeler();
    let stores = stores();
    let part2 = HashSet::from(["behavioral".to_string()]);
    let mut labelled = 0;
    for (person, records) in PEOPLE {
        let parts: Vec<Fetched> = records
            .iter()
            .map(|(source, pid)| {
                let store = &stores[source];
                let mut resources = vec![store.get("Patient", pid).unwrap().clone()];
                for t in fhir::PATIENT_COMPARTMENT_TYPES {
                    resources.extend(store.compartment(pid, t).into_iter().cloned());
                }
                let patient_ids = vec![(*pid).to_string()];
                Fetched { source: (*source).to_string(), display: (*source).to_string(), patient_ids, resources }
            })
            .collect();
        let early: Vec<Vec<Findings>> =
            parts.iter().map(|p| p.resources.iter().map(|r| labeler.find(r)).collect()).collect();
        let (mut whole, _) = merge("g1", &parts);
        let expected = labeler.label_record(&mut whole, &part2);
        let (merged, _) = merge_owned("g1", parts);
        let (mut record, found): (Vec<Value>, Vec<Option<Findings>>) =
            merged.into_iter().map(|(r, (s, i))| (r, Some(early[s][i].clone()))).unzip();
        let got = labeler.label_found(&mut record, &found, &part2);
        assert_eq!(got, expected, "{person}: the same explanations");
        assert_eq!(record, whole, "{person}: the same labels on the same resources");
        labelled += got.len();
    }
    assert!(labelled > 20, "the fixtures have labelled items ({labelled})");
}
