//! Which of a source's references are its own: a source's base URL is its identity
//! (`crate::fhir::reference::parse_local`). What a source answers has its absolute references
//! under its own base made relative as soon as it arrives, so the rest of aggregation (the
//! supporting reads, the merge) treats only relative references as the source's; and a
//! resource whose patient is named only by another server's URL is not this patient's. Never
//! changes anything but those references.

use crate::fhir::{self, reference};
use crate::sources::SharedSource;
use serde_json::Value;

/// Makes a source's absolute references under its own base URL relative.
pub(super) fn localize(source: &SharedSource, resources: &mut [Value]) {
    if let Some(base) = source.base_url() {
        resources.iter_mut().for_each(|r| reference::localize(r, base));
    }
}

/// Whether a compartment resource names its patient only by absolute references to another
/// server (and its compartment elements point at nothing local, as a Provenance's target
/// may): it is that server's patient's, not this source's patient of the same id, and is
/// left out of the record however the source matched it.
pub(super) fn names_only_foreign_patients(r: &Value) -> bool {
    let Some(t) = fhir::resource_type(r) else { return false };
    let Some(types) = fhir::compartment::get(t) else { return false };
    let references: Vec<&str> = types
        .paths
        .iter()
        .flat_map(|p| fhir::path_values(r, p))
        .filter_map(|v| v.get("reference").and_then(Value::as_str))
        .collect();
    let foreign_patient = references
        .iter()
        .any(|s| reference::is_absolute(s) && reference::parse(s).is_some_and(|(rt, _)| rt == "Patient"));
    foreign_patient && references.iter().all(|s| reference::parse_local(s, None).is_none())
}

#[cfg(test)]
mod tests {
    use super::names_only_foreign_patients;
    use serde_json::json;

    #[test]
    fn a_resource_of_another_servers_patient_is_not_this_patients() {
        let obs = |subject: &str| json!({"resourceType": "Observation", "id": "o", "subject": {"reference": subject}});
        assert!(names_only_foreign_patients(&obs("http://other.example/fhir/Patient/123")));
        assert!(!names_only_foreign_patients(&obs("Patient/123")));
        assert!(!names_only_foreign_patients(&obs("Group/g1")), "no patient named at all: kept as before");
        let both = json!({"resourceType": "Coverage", "id": "c",
                          "beneficiary": {"reference": "Patient/123"},
                          "payor": [{"reference": "http://other.example/fhir/Patient/9"}]});
        assert!(!names_only_foreign_patients(&both), "a local patient is named too");
        let provenance = json!({"resourceType": "Provenance", "id": "p",
                                "target": [{"reference": "http://other.example/fhir/Patient/9"},
                                           {"reference": "Observation/o1"}]});
        assert!(!names_only_foreign_patients(&provenance), "it also targets a local resource");
    }
}
