//! File sources: a folder of FHIR JSON (a Bundle, or a single resource, per file) and
//! NDJSON files, loaded once into memory. Also the store the simulator serves. Dates may
//! be shifted by whole days when loading (fixtures are written relative to an anchor day).

use super::{SourceError, SourceStatus, SourceSystem};
use crate::fhir::{self, reference};
use async_trait::async_trait;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use tokio::time::Instant;

/// Every resource of one source, by type, in file order.
#[derive(Debug, Default, Clone)]
pub struct ResourceStore {
    by_type: BTreeMap<String, Vec<Value>>,
}

impl ResourceStore {
    /// Loads every `*.json` and `*.ndjson` file under `dir` (not recursive). Bundles
    /// contribute their entries' resources. Duplicate (type, id) pairs are refused.
    pub fn load(dir: &Path, shift_days: i64) -> Result<ResourceStore, String> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| matches!(p.extension().and_then(|x| x.to_str()), Some("json" | "ndjson")))
            .collect();
        files.sort();
        let mut store = ResourceStore::default();
        let mut seen = HashSet::new();
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let mut values = Vec::new();
            if path.extension().is_some_and(|x| x == "ndjson") {
                for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                    values.push(
                        serde_json::from_str(line).map_err(|e| format!("{} line {}: {e}", path.display(), n + 1))?,
                    );
                }
            } else {
                values.push(serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?);
            }
            for value in values {
                for mut resource in unbundle(value) {
                    let (Some(t), Some(id)) = (fhir::resource_type(&resource), fhir::resource_id(&resource)) else {
                        return Err(format!("{}: a resource without resourceType or id", path.display()));
                    };
                    if !seen.insert((t.to_string(), id.to_string())) {
                        return Err(format!("{}: {t}/{id} appears twice", path.display()));
                    }
                    let t = t.to_string();
                    crate::fhir::time::shift_dates(&mut resource, shift_days);
                    store.by_type.entry(t).or_default().push(resource);
                }
            }
        }
        Ok(store)
    }

    /// Builds a store from resources already in memory (tests, generated populations).
    pub fn from_resources(resources: impl IntoIterator<Item = Value>) -> ResourceStore {
        let mut store = ResourceStore::default();
        for r in resources {
            if let Some(t) = fhir::resource_type(&r) {
                store.by_type.entry(t.to_string()).or_default().push(r);
            }
        }
        store
    }

    pub fn of_type(&self, resource_type: &str) -> &[Value] {
        self.by_type.get(resource_type).map_or(&[], Vec::as_slice)
    }

    pub fn get(&self, resource_type: &str, id: &str) -> Option<&Value> {
        self.of_type(resource_type).iter().find(|r| fhir::resource_id(r) == Some(id))
    }

    pub fn types(&self) -> impl Iterator<Item = &str> {
        self.by_type.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.by_type.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The resources of `resource_type` in patient `patient_id`'s compartment: those whose
    /// `subject`/`patient` points at the patient; for Provenance, those whose `target` is the
    /// patient or one of the patient's resources.
    pub fn compartment(&self, patient_id: &str, resource_type: &str) -> Vec<&Value> {
        let points_at_patient = |v: &Value| {
            v.get("reference").and_then(Value::as_str).and_then(reference::parse) == Some(("Patient", patient_id))
        };
        if resource_type == "Provenance" {
            let owned: HashSet<(String, String)> = fhir::PATIENT_COMPARTMENT_TYPES
                .iter()
                .filter(|t| **t != "Provenance")
                .flat_map(|t| self.compartment(patient_id, t))
                .filter_map(|r| Some((fhir::resource_type(r)?.to_string(), fhir::resource_id(r)?.to_string())))
                .collect();
            return self
                .of_type("Provenance")
                .iter()
                .filter(|p| {
                    fhir::path_values(p, "target").iter().any(|t| {
                        points_at_patient(t)
                            || t.get("reference")
                                .and_then(Value::as_str)
                                .and_then(reference::parse)
                                .is_some_and(|(ty, id)| owned.contains(&(ty.to_string(), id.to_string())))
                    })
                })
                .collect();
        }
        let Some(element) = fhir::patient_element(resource_type) else { return Vec::new() };
        self.of_type(resource_type).iter().filter(|r| r.get(element).is_some_and(points_at_patient)).collect()
    }
}

/// The resources in a value: a Bundle's entries, or the value itself.
fn unbundle(value: Value) -> Vec<Value> {
    if fhir::resource_type(&value) == Some("Bundle") {
        match value.get("entry") {
            Some(Value::Array(entries)) => entries.iter().filter_map(|e| e.get("resource").cloned()).collect(),
            _ => Vec::new(),
        }
    } else {
        vec![value]
    }
}

/// A source backed by a folder of files.
pub struct FileSource {
    name: String,
    display: String,
    store: ResourceStore,
}

impl FileSource {
    pub fn open(name: &str, display: &str, dir: &Path, shift_days: i64) -> Result<FileSource, SourceError> {
        let store = ResourceStore::load(dir, shift_days)
            .map_err(|message| SourceError::Files { source_name: name.into(), message })?;
        Ok(FileSource { name: name.into(), display: display.into(), store })
    }

    pub fn from_store(name: &str, store: ResourceStore) -> FileSource {
        FileSource { name: name.into(), display: name.into(), store }
    }
}

#[async_trait]
impl SourceSystem for FileSource {
    fn name(&self) -> &str {
        &self.name
    }
    fn display(&self) -> &str {
        &self.display
    }
    async fn list_patients(&self, _deadline: Instant) -> Result<Vec<Value>, SourceError> {
        Ok(self.store.of_type("Patient").to_vec())
    }
    async fn patient_resources(
        &self,
        patient_id: &str,
        resource_type: &str,
        _deadline: Instant,
    ) -> Result<Vec<Value>, SourceError> {
        Ok(self.store.compartment(patient_id, resource_type).into_iter().cloned().collect())
    }
    async fn read_many(
        &self,
        resource_type: &str,
        ids: &[String],
        _deadline: Instant,
    ) -> Result<Vec<Value>, SourceError> {
        Ok(ids.iter().filter_map(|id| self.store.get(resource_type, id).cloned()).collect())
    }
    fn status(&self) -> SourceStatus {
        SourceStatus { name: self.name.clone(), display: self.display.clone(), state: "up", consecutive_failures: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn loads_bundles_and_ndjson_and_shifts_dates() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": {"resourceType": "Patient", "id": "p1", "birthDate": "2010-01-01"}},
            {"resource": {"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2025-12-31"}}
        ]});
        write(dir.path(), "a.json", &bundle.to_string());
        write(
            dir.path(),
            "Provenance.ndjson",
            "{\"resourceType\":\"Provenance\",\"id\":\"v1\",\"target\":[{\"reference\":\"Observation/o1\"}]}\n\n",
        );
        write(dir.path(), "notes.txt", "ignored");
        let store = ResourceStore::load(dir.path(), 1).unwrap();
        assert_eq!(store.len(), 3);
        assert_eq!(store.get("Patient", "p1").unwrap()["birthDate"], "2010-01-02");
        assert_eq!(store.compartment("p1", "Observation").len(), 1);
        assert_eq!(store.compartment("p1", "Provenance").len(), 1);
        assert!(store.compartment("p2", "Provenance").is_empty());
    }

    #[test]
    fn refuses_duplicates_and_bad_json_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "x.ndjson",
            "{\"resourceType\":\"Patient\",\"id\":\"a\"}\n{\"resourceType\":\"Patient\",\"id\":\"a\"}\n",
        );
        let e = ResourceStore::load(dir.path(), 0).unwrap_err();
        assert!(e.contains("x.ndjson") && e.contains("Patient/a appears twice"), "{e}");
        write(dir.path(), "x.ndjson", "{not json\n");
        let e = ResourceStore::load(dir.path(), 0).unwrap_err();
        assert!(e.contains("x.ndjson line 1"), "{e}");
    }
}
