//! The shipped label rules measured on data nobody on this project wrote: the shared Synthea
//! sample (`../shared/data/synthea-r4`, 60 patients) against the independent case list in
//! `tests/data/synthea-sensitive/cases.tsv`, written from public value sets and the data
//! (not from these rules). Per category, recall ≥ 99 % and precision ≥ 95 %.

use super::*;
use crate::policy::PolicyConfig;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

/// The categories the case list covers.
const CATEGORIES: &[&str] = &["HIV", "STD", "PREGNANT", "SEX", "MH", "ETH", "GDIS", "SDV", "GENDER"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// (file, Type/id) → expected categories.
fn cases() -> HashMap<(String, String), BTreeSet<String>> {
    let path = root().join("tests/data/synthea-sensitive/cases.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out: HashMap<(String, String), BTreeSet<String>> = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert!(cols.len() >= 4, "cases.tsv: malformed line {line}");
        out.entry((cols[0].to_string(), format!("{}/{}", cols[1], cols[2]))).or_default().insert(cols[3].to_string());
    }
    out
}

#[derive(Default, Debug)]
struct Score {
    tp: usize,
    missed: Vec<String>,
    extra: Vec<String>,
}

#[test]
fn shipped_rules_find_the_sensitive_items_of_the_synthea_sample() {
    let dir = root().join("../shared/data/synthea-r4");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (the shared Synthea sample is needed)", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 60, "the shared sample has 60 patients");
    let policy = PolicyConfig::load(&root().join("config/policy.toml")).unwrap();
    let labeler = Labeler::new(&policy.label_rules).unwrap();
    let expected = cases();
    let mut scores: BTreeMap<&str, Score> = CATEGORIES.iter().map(|c| (*c, Score::default())).collect();
    let mut seen = 0;
    for path in &files {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let mut resources = crate::sources::files::read_json_file(path).unwrap();
        labeler.label_record(&mut resources, &HashSet::new());
        for r in &resources {
            let t = fhir::resource_type(r).unwrap();
            if matches!(t, "Patient" | "Organization" | "Practitioner") {
                continue;
            }
            let key = format!("{t}/{}", fhir::resource_id(r).unwrap());
            let got = sensitivity_labels_of(r);
            let want = expected.get(&(file.clone(), key.clone())).cloned().unwrap_or_default();
            seen += usize::from(!want.is_empty());
            for c in CATEGORIES {
                let s = scores.get_mut(c).unwrap();
                let display = || format!("{file} {key} {}", texts_of(r).first().map(|t| t.0.as_str()).unwrap_or(""));
                match (want.contains(*c), got.contains(*c)) {
                    (true, true) => s.tp += 1,
                    (true, false) => s.missed.push(display()),
                    (false, true) => s.extra.push(display()),
                    (false, false) => {}
                }
            }
        }
    }
    assert_eq!(seen, expected.len(), "every case of the list was found in the sample");
    let mut failures = Vec::new();
    for (c, s) in &scores {
        let recall = s.tp as f64 / (s.tp + s.missed.len()).max(1) as f64;
        let precision = s.tp as f64 / (s.tp + s.extra.len()).max(1) as f64;
        println!(
            "{c:<9} expected {:>5}  found {:>5}  missed {:>4}  extra {:>4}  recall {:.3}  precision {:.3}",
            s.tp + s.missed.len(),
            s.tp,
            s.missed.len(),
            s.extra.len(),
            recall,
            precision
        );
        for m in s.missed.iter().take(8) {
            println!("    missed {m}");
        }
        for m in s.extra.iter().take(8) {
            println!("    extra  {m}");
        }
        if recall < 0.99 || precision < 0.95 {
            failures.push(format!("{c}: recall {recall:.3}, precision {precision:.3}"));
        }
    }
    assert!(failures.is_empty(), "below recall 0.99 / precision 0.95: {failures:?}");
}

/// The one-regex pass that keeps only texts some rule's words could match changes no
/// finding: every resource of the sample, found with it and with every text going to every
/// rule, gives the same rules (and it does keep texts out: the sample's are mostly plain).
#[test]
fn the_words_prefilter_changes_no_finding_on_the_synthea_sample() {
    let policy = PolicyConfig::load(&root().join("config/policy.toml")).unwrap();
    let filtered = Labeler::new(&policy.label_rules).unwrap();
    let any = filtered.any_words.clone().expect("the shipped rules have words");
    let unfiltered = Labeler { any_words: None, ..Labeler::new(&policy.label_rules).unwrap() };
    let dir = root().join("../shared/data/synthea-r4");
    let (mut resources, mut by_words, mut texts, mut kept) = (0, 0, 0, 0);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let bundle: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for r in crate::fhir::path_values(&bundle, "entry.resource") {
            let (with, without) = (filtered.find(r), unfiltered.find(r));
            assert_eq!(with, without, "{} in {}", r["id"], path.display());
            resources += 1;
            by_words += with.0.iter().filter(|(_, words)| *words).count();
            for (text, _) in rules::texts_of(r) {
                texts += 1;
                kept += usize::from(any.is_match(&text));
            }
        }
    }
    assert!(resources > 10_000, "{resources} resources read");
    assert!(by_words > 0, "some findings are by words alone, so the filter was put to the test");
    assert!(kept * 5 < texts, "the filter keeps {kept} of {texts} texts");
}
