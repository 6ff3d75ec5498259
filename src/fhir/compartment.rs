//! The FHIR R4 Patient compartment as the gateway gathers it: every resource type that
//! CompartmentDefinition `patient` lists, the search parameter to ask a source with
//! (`patient` where R4 defines one for the type, else the compartment parameter such as
//! `subject`, `beneficiary` or `actor`), the elements that parameter reads, and the type's
//! date/code/category/status/reason-code search parameters. The facts live in
//! `r4-patient-compartment.json`, written from the official R4 definitions by
//! `scripts/r4-compartment.py` (FHIR is CC0); this module only reads them. It never decides
//! who may see a type (policy does) and never fetches anything.

use super::search::{ParamDef, ParamKind};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// Compartment types the gateway does not gather as a person's data: the Patient itself
/// (read by id), Group and Person (rosters and identity links of other systems, not a
/// person's record) and AuditEvent (the gateway answers that type with its own access log).
const NOT_GATHERED: &[&str] = &["Patient", "Group", "Person", "AuditEvent"];

/// One gathered type of the Patient compartment.
#[derive(Debug)]
pub struct PatientType {
    pub resource_type: &'static str,
    /// The compartment parameters R4 lists for the type.
    pub compartment: Vec<&'static str>,
    /// The search parameter a source is asked with.
    pub search: &'static str,
    /// The elements `search` reads (dotted paths; a reference to the Patient).
    pub paths: Vec<&'static str>,
    /// The type's date/code/category/status/reason-code parameters.
    pub params: Vec<ParamDef>,
}

#[derive(Deserialize)]
struct File {
    types: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "type")]
    resource_type: String,
    compartment: Vec<String>,
    search: String,
    paths: Vec<String>,
    params: BTreeMap<String, Param>,
}

#[derive(Deserialize)]
struct Param {
    #[serde(rename = "type")]
    kind: String,
    paths: Vec<String>,
}

const DATA: &str = include_str!("r4-patient-compartment.json");

/// Strings of the table live as long as the process: leaked once, when first read.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// A choice element (`effective[x]`) is named in FHIRPath without its type; in JSON it
/// carries one (`effectiveDateTime`).
fn date_paths(path: &str) -> Vec<String> {
    let mut out = vec![path.to_string()];
    if !path.ends_with("DateTime") && !path.ends_with("Period") {
        for suffix in ["DateTime", "Period", "Instant", "Date"] {
            out.push(format!("{path}{suffix}"));
        }
    }
    out
}

fn build(entry: Entry) -> PatientType {
    let params = entry
        .params
        .into_iter()
        .filter_map(|(name, p)| {
            let (kind, paths) = match p.kind.as_str() {
                "date" => (ParamKind::Date, p.paths.iter().flat_map(|x| date_paths(x)).collect::<Vec<_>>()),
                "token" => (ParamKind::Token, p.paths),
                _ => return None,
            };
            let paths: Vec<&'static str> = paths.into_iter().map(leak).collect();
            Some(ParamDef { name: leak(name), kind, paths: Box::leak(paths.into_boxed_slice()) })
        })
        .collect();
    PatientType {
        resource_type: leak(entry.resource_type),
        compartment: entry.compartment.into_iter().map(leak).collect(),
        search: leak(entry.search),
        paths: entry.paths.into_iter().map(leak).collect(),
        params,
    }
}

static TABLE: LazyLock<Vec<PatientType>> = LazyLock::new(|| {
    let file: File = match serde_json::from_str(DATA) {
        Ok(f) => f,
        // A unit test reads the file; a broken one cannot ship.
        Err(_) => return Vec::new(),
    };
    let mut types: Vec<PatientType> =
        file.types.into_iter().filter(|e| !NOT_GATHERED.contains(&e.resource_type.as_str())).map(build).collect();
    // Not in R4's Patient compartment (it is in the Device compartment), but `Device.patient`
    // names the person a device is implanted in or used by: a person's record holds it.
    types.push(PatientType {
        resource_type: "Device",
        compartment: vec!["patient"],
        search: "patient",
        paths: vec!["patient"],
        params: vec![
            ParamDef { name: "status", kind: ParamKind::Token, paths: &["status"] },
            ParamDef { name: "type", kind: ParamKind::Token, paths: &["type"] },
        ],
    });
    types.sort_by_key(|t| t.resource_type);
    types
});

/// Every type gathered as a person's data, by type name.
pub fn types() -> &'static [PatientType] {
    &TABLE
}

/// The gathered type `resource_type`, if it is one.
pub fn get(resource_type: &str) -> Option<&'static PatientType> {
    TABLE.iter().find(|t| t.resource_type == resource_type)
}

/// The names of every gathered type.
pub fn type_names() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|t| t.resource_type)
}

/// The Patient ids a resource of `resource_type` names through its compartment search
/// parameter's elements (relative `Patient/id` references only: an absolute one names a
/// patient of another server, see [`super::reference::parse_local`]).
pub fn patients_of<'a>(resource: &'a Value, resource_type: &str) -> Vec<&'a str> {
    let Some(t) = get(resource_type) else { return Vec::new() };
    t.paths
        .iter()
        .flat_map(|p| super::path_values(resource, p))
        .filter_map(|v| v.get("reference").and_then(Value::as_str))
        .filter_map(|r| super::reference::parse_local(r, None))
        .filter_map(|(rt, id)| (rt == "Patient").then_some(id))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;

    #[test]
    fn the_table_loads_with_the_types_that_matter() {
        assert!(types().len() > 60, "{}", types().len());
        for t in ["Claim", "ExplanationOfBenefit", "ImagingStudy", "MedicationAdministration", "Coverage", "Device"] {
            assert!(get(t).is_some(), "{t}");
        }
        for t in NOT_GATHERED {
            assert!(get(t).is_none(), "{t}");
        }
        let coverage = get("Coverage").unwrap();
        assert_eq!((coverage.search, coverage.paths.as_slice()), ("patient", &["beneficiary"][..]));
        let schedule = get("Schedule").unwrap();
        assert_eq!((schedule.search, schedule.paths.as_slice()), ("actor", &["actor"][..]));
        let appointment = get("Appointment").unwrap();
        assert_eq!(appointment.paths, vec!["participant.actor"]);
        let obs = get("Observation").unwrap();
        assert_eq!((obs.search, obs.paths.as_slice()), ("patient", &["subject"][..]));
        let date = obs.params.iter().find(|p| p.name == "date").unwrap();
        assert!(date.paths.contains(&"effectiveDateTime") && date.paths.contains(&"effectivePeriod"));
        let a = json!({"resourceType": "Appointment", "participant": [
            {"actor": {"reference": "Practitioner/d"}}, {"actor": {"reference": "Patient/p1"}}]});
        assert_eq!(patients_of(&a, "Appointment"), vec!["p1"]);
        assert!(patients_of(&a, "Practitioner").is_empty());
    }

    /// The committed table against the official R4 files, when they are on this machine
    /// (`R4_PACKAGE`, default `/tmp/r4core/package`: npm hl7.fhir.r4.examples@4.0.1).
    #[test]
    fn the_table_matches_the_official_r4_definitions() {
        let dir = std::env::var("R4_PACKAGE").unwrap_or_else(|_| "/tmp/r4core/package".into());
        let dir = Path::new(&dir);
        let Ok(text) = std::fs::read_to_string(dir.join("CompartmentDefinition-patient.json")) else {
            eprintln!("skipped: no official R4 package at {} (set R4_PACKAGE)", dir.display());
            return;
        };
        let official: Value = serde_json::from_str(&text).unwrap();
        let ours: Value = serde_json::from_str(DATA).unwrap();
        let mut with_patient = std::collections::HashSet::new();
        for f in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
            if !f.file_name().to_string_lossy().starts_with("SearchParameter-") {
                continue;
            }
            let sp: Value = serde_json::from_str(&std::fs::read_to_string(f.path()).unwrap()).unwrap();
            if sp["code"] == "patient" {
                with_patient.extend(sp["base"].as_array().unwrap().iter().map(|b| b.as_str().unwrap().to_string()));
            }
        }
        let mut listed = 0;
        for r in official["resource"].as_array().unwrap() {
            let Some(params) = r["param"].as_array().filter(|p| !p.is_empty()) else { continue };
            listed += 1;
            let t = r["code"].as_str().unwrap();
            let entry =
                ours["types"].as_array().unwrap().iter().find(|e| e["type"] == t).unwrap_or_else(|| panic!("{t}"));
            assert_eq!(&entry["compartment"], &Value::Array(params.clone()), "{t}");
            let has_patient = with_patient.contains(t);
            let want = if has_patient { "patient" } else { params[0].as_str().unwrap() };
            assert_eq!(entry["search"], want, "{t}");
        }
        assert_eq!(listed, ours["types"].as_array().unwrap().len());
    }
}
