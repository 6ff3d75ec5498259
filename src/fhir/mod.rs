//! FHIR R4 plumbing on raw JSON: resource access, references, Bundle and OperationOutcome
//! writing, search-parameter parsing and matching, dates (the CapabilityStatement itself is
//! written in `api::capability`). What the gateway writes itself is built with fhir-sdk's
//! typed models (`model`); source resources stay JSON.
//! It knows FHIR and nothing of Portico's sources, viewers or policy, and it never
//! round-trips source JSON through typed models (DESIGN.md promise 3).

pub mod bundle;
pub mod compartment;
pub mod model;
pub mod outcome;
pub mod reference;
pub mod search;
pub mod time;

use serde_json::Value;

/// The media type the API speaks.
pub const FHIR_JSON: &str = "application/fhir+json";
/// The FHIR version served.
pub const FHIR_VERSION: &str = "4.0.1";

/// The US Core types gathered from a source until its CapabilityStatement says what it
/// offers (and the default of `aggregate.resource_types`). Every type of the R4 Patient
/// compartment is gathered once a source declares it ([`compartment`]).
pub const PATIENT_COMPARTMENT_TYPES: &[&str] = &[
    "AllergyIntolerance",
    "CarePlan",
    "CareTeam",
    "Condition",
    "DiagnosticReport",
    "DocumentReference",
    "Encounter",
    "Goal",
    "Immunization",
    "MedicationRequest",
    "Observation",
    "Procedure",
    "Provenance",
    "RelatedPerson",
];

/// Types that are not about one patient but are referenced by patient data (Endpoint: where
/// an ImagingStudy's images are kept, WADO-RS).
pub const SUPPORTING_TYPES: &[&str] =
    &["Practitioner", "PractitionerRole", "Organization", "Location", "Medication", "Substance", "Endpoint"];

/// Types fetched by id when a gathered resource points at them and no search found them:
/// the supporting types, and Device and Specimen (a person's, but often only referenced).
pub const REFERENCED_TYPES: &[&str] = &[
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Location",
    "Medication",
    "Substance",
    "Endpoint",
    "Device",
    "Specimen",
];

/// Every type the API answers for.
pub fn is_served_type(t: &str) -> bool {
    t == "Patient" || compartment::get(t).is_some() || SUPPORTING_TYPES.contains(&t)
}

/// Every type the API answers for: Patient, the gathered compartment types, the supporting
/// types.
pub fn served_types() -> Vec<&'static str> {
    let mut types: Vec<&'static str> = vec!["Patient"];
    types.extend(compartment::type_names());
    types.extend(SUPPORTING_TYPES.iter().copied().filter(|t| compartment::get(t).is_none()));
    types
}

/// The element that points a resource of this type at its patient (the first element of
/// its compartment search parameter, possibly dotted such as `participant.actor`; read it
/// with [`compartment::patients_of`]). None for Provenance, whose `target` may also be one
/// of the patient's resources.
pub fn patient_element(resource_type: &str) -> Option<&'static str> {
    if resource_type == "Provenance" {
        return None;
    }
    compartment::get(resource_type).and_then(|t| t.paths.first().copied())
}

pub fn resource_type(r: &Value) -> Option<&str> {
    r.get("resourceType").and_then(Value::as_str)
}

pub fn resource_id(r: &Value) -> Option<&str> {
    r.get("id").and_then(Value::as_str)
}

/// True when `id` is a valid FHIR logical id.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// The values an element path reaches: `a.b.c` steps into objects and flattens arrays.
pub fn path_values<'a>(root: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut current = vec![root];
    for step in path.split('.') {
        let mut next = Vec::new();
        for v in current {
            match v.get(step) {
                Some(Value::Array(items)) => next.extend(items.iter()),
                Some(other) => next.push(other),
                None => {}
            }
        }
        current = next;
    }
    current
}
