//! What R4 says of each served type that `_include`, `_revinclude`, `_elements` and
//! `_summary` need: its top-level elements, which are summary (`isSummary`) and which are
//! mandatory, and its reference search parameters with their element paths and target
//! types. The facts live in `r4-search-extras.json`, written from the official R4
//! definitions by `scripts/r4-search-extras.py` (FHIR is CC0); this module only reads them.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// A reference search parameter of one type.
#[derive(Debug)]
pub struct ReferenceParam {
    pub name: &'static str,
    /// Dotted element paths (a choice element with its type: `medicationReference`).
    pub paths: Vec<&'static str>,
    /// The types it may point at; empty when R4 lets it point at any type.
    pub targets: Vec<&'static str>,
}

impl ReferenceParam {
    /// True when the parameter may point at a resource of `resource_type`.
    pub fn may_target(&self, resource_type: &str) -> bool {
        self.targets.is_empty() || self.targets.contains(&resource_type)
    }
}

/// The facts of one type.
#[derive(Debug)]
pub struct TypeFacts {
    pub resource_type: &'static str,
    /// Top-level element names, a choice element as `value[x]`.
    pub elements: Vec<&'static str>,
    pub summary: Vec<&'static str>,
    pub mandatory: Vec<&'static str>,
    pub references: Vec<ReferenceParam>,
}

#[derive(Deserialize)]
struct File {
    types: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "type")]
    resource_type: String,
    elements: Vec<String>,
    summary: Vec<String>,
    mandatory: Vec<String>,
    references: BTreeMap<String, Reference>,
}

#[derive(Deserialize)]
struct Reference {
    paths: Vec<String>,
    targets: Vec<String>,
}

const DATA: &str = include_str!("r4-search-extras.json");

/// Strings of the table live as long as the process: leaked once, when first read.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn leak_all(v: Vec<String>) -> Vec<&'static str> {
    v.into_iter().map(leak).collect()
}

static TABLE: LazyLock<Vec<TypeFacts>> = LazyLock::new(|| {
    let file: File = match serde_json::from_str(DATA) {
        Ok(f) => f,
        // A unit test reads the file; a broken one cannot ship.
        Err(_) => return Vec::new(),
    };
    file.types
        .into_iter()
        .map(|e| TypeFacts {
            resource_type: leak(e.resource_type),
            elements: leak_all(e.elements),
            summary: leak_all(e.summary),
            mandatory: leak_all(e.mandatory),
            references: e
                .references
                .into_iter()
                .map(|(name, r)| ReferenceParam {
                    name: leak(name),
                    paths: leak_all(r.paths),
                    targets: leak_all(r.targets),
                })
                .collect(),
        })
        .collect()
});

/// The facts of `resource_type`, if it is a type the table holds.
pub fn facts(resource_type: &str) -> Option<&'static TypeFacts> {
    TABLE.iter().find(|t| t.resource_type == resource_type)
}

/// The reference search parameter `name` of `resource_type`.
pub fn reference_param(resource_type: &str, name: &str) -> Option<&'static ReferenceParam> {
    facts(resource_type)?.references.iter().find(|r| r.name == name)
}

/// Whether JSON key `key` is the element `element` (`value[x]` is `valueQuantity`,
/// `valueString` …; a primitive's extensions `_status` go with `status`).
pub fn key_is_element(key: &str, element: &str) -> bool {
    let key = key.strip_prefix('_').unwrap_or(key);
    match element.strip_suffix("[x]") {
        Some(stem) => key.strip_prefix(stem).is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase())),
        None => key == element,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_loads_every_served_type_with_its_references_and_summary() {
        for t in crate::fhir::served_types() {
            let f = facts(t).unwrap_or_else(|| panic!("{t} has no facts"));
            assert!(f.elements.contains(&"id") && f.elements.contains(&"meta"), "{t}");
        }
        let medication = reference_param("MedicationRequest", "medication").unwrap();
        assert_eq!(
            (medication.paths.as_slice(), medication.targets.as_slice()),
            (&["medicationReference"][..], &["Medication"][..])
        );
        let performer = reference_param("Observation", "performer").unwrap();
        assert!(performer.may_target("Practitioner") && !performer.may_target("Encounter"));
        assert!(reference_param("Observation", "focus").unwrap().may_target("Anything"));
        assert!(reference_param("Observation", "code").is_none());
        let obs = facts("Observation").unwrap();
        assert!(obs.summary.contains(&"value[x]") && !obs.summary.contains(&"note"));
        assert_eq!(obs.mandatory, vec!["status", "code"]);
        assert!(key_is_element("valueQuantity", "value[x]") && !key_is_element("valued", "value[x]"));
        assert!(key_is_element("_status", "status") && !key_is_element("statusReason", "status"));
    }
}
