//! What a share link holds: the chosen sections of a record already released to the person
//! sharing it, as a FHIR Bundle of type `collection` — the Patient resource, the resources
//! of the chosen sections, and the clinicians, places and medications they point at (when
//! released too). It picks from a released record only; it never reads or decides access.

use crate::fhir;
use serde_json::{json, Value};
use std::collections::HashSet;

/// The sections a person may share, as (name, words, resource types). `everything` is
/// every released resource.
pub const SECTIONS: &[(&str, &str, &[&str])] = &[
    ("allergies", "Allergies", &["AllergyIntolerance"]),
    ("immunizations", "Immunizations", &["Immunization"]),
    ("medications", "Medications", &["MedicationRequest", "MedicationStatement", "MedicationDispense"]),
    ("problems", "Health problems", &["Condition"]),
    ("results", "Test results", &["Observation", "DiagnosticReport"]),
    ("visits", "Visits", &["Encounter", "Appointment"]),
    ("procedures", "Procedures", &["Procedure"]),
    ("documents", "Documents", &["DocumentReference"]),
    ("everything", "Everything you can see", &[]),
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("choose at least one section to share")]
    NoSection,
    #[error("`{0}` is not a section that can be shared")]
    UnknownSection(String),
}

/// The chosen sections, checked, in the order of [`SECTIONS`] (only `everything` when
/// chosen with others).
pub fn sections(chosen: &[String]) -> Result<Vec<&'static str>, SnapshotError> {
    if let Some(bad) = chosen.iter().find(|c| !SECTIONS.iter().any(|(n, _, _)| n == c)) {
        return Err(SnapshotError::UnknownSection(bad.clone()));
    }
    if chosen.iter().any(|c| c == "everything") {
        return Ok(vec!["everything"]);
    }
    let picked: Vec<&'static str> =
        SECTIONS.iter().map(|(n, _, _)| *n).filter(|n| chosen.iter().any(|c| c == n)).collect();
    if picked.is_empty() {
        Err(SnapshotError::NoSection)
    } else {
        Ok(picked)
    }
}

/// The words of a section name.
pub fn words(section: &str) -> &'static str {
    SECTIONS.iter().find(|(n, _, _)| *n == section).map_or("", |(_, w, _)| w)
}

/// The resources of `released` (a record released to the sharer, in record order) that
/// the `sections` share.
pub fn select(released: &[Value], sections: &[&str]) -> Vec<Value> {
    if sections.contains(&"everything") {
        return released.to_vec();
    }
    let types: HashSet<&str> =
        SECTIONS.iter().filter(|(n, _, _)| sections.contains(n)).flat_map(|(_, _, t)| t.iter().copied()).collect();
    let chosen: Vec<&Value> =
        released.iter().filter(|r| fhir::resource_type(r).is_some_and(|t| types.contains(t))).collect();
    let mut pointed = HashSet::new();
    for r in &chosen {
        references(r, &mut pointed);
    }
    released
        .iter()
        .filter(|r| {
            let t = fhir::resource_type(r).unwrap_or("");
            t == "Patient"
                || types.contains(t)
                || (fhir::SUPPORTING_TYPES.contains(&t)
                    && pointed.contains(&format!("{t}/{}", fhir::resource_id(r).unwrap_or(""))))
        })
        .cloned()
        .collect()
}

/// `Type/id` of a literal reference (relative or absolute).
fn type_and_id(reference: &str) -> Option<String> {
    let mut parts = reference.rsplit('/');
    let id = parts.next().filter(|p| !p.is_empty())?;
    let t = parts.next().filter(|p| !p.is_empty())?;
    Some(format!("{t}/{id}"))
}

/// Every `reference` string in `v`, as `Type/id`.
fn references(v: &Value, out: &mut HashSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                match (k.as_str(), x) {
                    ("reference", Value::String(s)) => {
                        if let Some(key) = type_and_id(s) {
                            out.insert(key);
                        }
                    }
                    _ => references(x, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|x| references(x, out)),
        _ => {}
    }
}

/// The snapshot as a Bundle of type `collection`, stamped `now` (RFC 3339).
pub fn bundle(resources: Vec<Value>, fhir_base: &str, now: &str) -> Value {
    let base = fhir_base.trim_end_matches('/');
    let entries: Vec<Value> = resources
        .into_iter()
        .map(|r| {
            let url =
                format!("{base}/{}/{}", fhir::resource_type(&r).unwrap_or(""), fhir::resource_id(&r).unwrap_or(""));
            json!({"fullUrl": url, "resource": r})
        })
        .collect();
    let id = uuid::Uuid::new_v4().to_string();
    json!({"resourceType": "Bundle", "id": id, "type": "collection", "timestamp": now, "entry": entries})
}

/// The resources of a snapshot Bundle.
pub fn resources_of(bundle: &Value) -> Vec<Value> {
    bundle["entry"].as_array().into_iter().flatten().map(|e| e["resource"].clone()).filter(Value::is_object).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Vec<Value> {
        vec![
            json!({"resourceType": "Patient", "id": "p"}),
            json!({"resourceType": "Immunization", "id": "i1", "performer": [{"actor": {"reference": "Practitioner/dr"}}]}),
            json!({"resourceType": "AllergyIntolerance", "id": "a1"}),
            json!({"resourceType": "Condition", "id": "c1", "asserter": {"reference": "Practitioner/other"}}),
            json!({"resourceType": "Practitioner", "id": "dr"}),
            json!({"resourceType": "Practitioner", "id": "other"}),
        ]
    }

    #[test]
    fn sections_are_checked_and_ordered() {
        assert_eq!(
            sections(&["immunizations".into(), "allergies".into()]).unwrap(),
            vec!["allergies", "immunizations"]
        );
        assert_eq!(sections(&["allergies".into(), "everything".into()]).unwrap(), vec!["everything"]);
        assert_eq!(sections(&[]), Err(SnapshotError::NoSection));
        assert_eq!(sections(&["secrets".into()]), Err(SnapshotError::UnknownSection("secrets".into())));
    }

    #[test]
    fn a_section_brings_the_patient_and_what_it_points_at_only() {
        let ids: Vec<String> = select(&record(), &["immunizations", "allergies"])
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids, ["p", "i1", "a1", "dr"]);
        assert_eq!(select(&record(), &["everything"]).len(), 6);
        let b = bundle(select(&record(), &["allergies"]), "https://gw/fhir/", "2026-01-01T00:00:00Z");
        assert_eq!(b["type"], "collection");
        assert_eq!(b["entry"][1]["fullUrl"], "https://gw/fhir/AllergyIntolerance/a1");
        assert_eq!(resources_of(&b).len(), 2);
    }
}
