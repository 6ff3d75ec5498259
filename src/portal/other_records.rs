//! The record pages' "Other records" section: every released resource whose type no other
//! section shows (claims, explanations of benefit, coverage, imaging studies, devices,
//! dispenses …), one plain row each with its kind, what it is, when and its status. It
//! reads only the released record it is given, so it cannot show what the policy withheld.

use super::fhir_text as fx;
use super::record_view::Item;
use serde_json::Value;

/// Types the other sections show (or that only describe what they show).
const SHOWN_ELSEWHERE: &[&str] = &[
    "Patient",
    "Observation",
    "DiagnosticReport",
    "MedicationRequest",
    "MedicationStatement",
    "AllergyIntolerance",
    "Immunization",
    "Condition",
    "Encounter",
    "Appointment",
    "DocumentReference",
    "CareTeam",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Location",
    "Medication",
    "Substance",
    "Provenance",
];

/// The kind of a resource in the request's language: the catalogue's word for the kinds
/// records commonly hold (`kind-*`), else the type in words (`ExplanationOfBenefit` →
/// `Explanation of benefit`).
fn kind_words(resource_type: &str) -> String {
    let key = match resource_type {
        "ExplanationOfBenefit" => "kind-explanation-of-benefit",
        "Claim" => "kind-claim",
        "Coverage" => "kind-coverage",
        "CoverageEligibilityRequest" => "kind-eligibility-request",
        "CoverageEligibilityResponse" => "kind-eligibility-response",
        "ImagingStudy" => "kind-imaging-study",
        "Procedure" => "kind-procedure",
        "CarePlan" => "kind-care-plan",
        "Goal" => "kind-goal",
        "MedicationDispense" => "kind-medication-dispense",
        "MedicationAdministration" => "kind-medication-administration",
        "RelatedPerson" => "kind-related-person",
        "Device" => "kind-device",
        "ServiceRequest" => "kind-service-request",
        "QuestionnaireResponse" => "kind-questionnaire-response",
        _ => return type_in_words(resource_type),
    };
    crate::i18n::t(key)
}

/// `ExplanationOfBenefit` → `Explanation of benefit`.
fn type_in_words(resource_type: &str) -> String {
    let mut out = String::new();
    for (i, c) in resource_type.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// What the resource is, in the words its codes carry.
fn what(r: &Value) -> Option<String> {
    ["code", "type", "medicationCodeableConcept", "vaccineCode", "category", "class"]
        .iter()
        .find_map(|k| match r.get(*k) {
            Some(list @ Value::Array(_)) => fx::first_concept(Some(list)),
            Some(cc) => fx::concept(Some(cc)),
            None => None,
        })
        .or_else(|| fx::text(r, "description"))
        .or_else(|| fx::text(r, "name"))
}

/// The first date-like element the resource carries.
fn when(r: &Value) -> Option<String> {
    let keys = [
        "effectiveDateTime",
        "occurrenceDateTime",
        "performedDateTime",
        "whenHandedOver",
        "started",
        "created",
        "authoredOn",
        "recordedDate",
        "date",
        "issued",
    ];
    keys.iter().find_map(|k| fx::text(r, k)).or_else(|| {
        ["billablePeriod", "period", "effectivePeriod", "performedPeriod"]
            .iter()
            .find_map(|k| r.get(*k).and_then(|p| fx::text(p, "start")))
    })
}

/// The rows of "Other records", newest first.
pub fn items(resources: &[Value]) -> Vec<Item> {
    let mut items: Vec<Item> = resources
        .iter()
        .filter_map(|r| {
            let t = fx::text(r, "resourceType")?;
            if SHOWN_ELSEWHERE.contains(&t.as_str()) {
                return None;
            }
            let kind = kind_words(&t);
            let title = match what(r) {
                Some(w) => format!("{kind}: {w}"),
                None => kind.clone(),
            };
            let mut item = Item::new(r, Some(title), &kind).when(when(r), false);
            item.status = fx::text(r, "status");
            Some(item)
        })
        .collect();
    items.sort_by(|a, b| b.sort.cmp(&a.sort).then(a.title.cmp(&b.title)));
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_types_no_other_section_shows_in_plain_words() {
        let resources = vec![
            json!({"resourceType": "Condition", "id": "c"}),
            json!({"resourceType": "ExplanationOfBenefit", "id": "e", "status": "active",
                   "type": {"text": "Professional claim"}, "billablePeriod": {"start": "2024-05-01"}}),
            json!({"resourceType": "ImagingStudy", "id": "i", "started": "2025-01-02T10:00:00Z"}),
        ];
        let items = items(&resources);
        let titles: Vec<&str> = items.iter().map(|i| i.title.as_str()).collect();
        assert_eq!(titles, vec!["Imaging study", "Explanation of benefit: Professional claim"]);
        assert_eq!(items[1].status.as_deref(), Some("active"));
        assert!(items[1].date.is_some());
    }
}
