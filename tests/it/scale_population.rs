//! Populations at scale: `portico fixtures generate --patients-only` writes a Patient-only
//! population (one NDJSON file of Patients per source, people overlapping across sources)
//! for patient index runs.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
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
        let text = std::fs::read_to_string(out.join(source).join("Patient.ndjson")).unwrap();
        for line in text.lines() {
            let p: Value = serde_json::from_str(line).unwrap();
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
