//! File sources: a folder of FHIR JSON (a Bundle, or a single resource, per file) and
//! NDJSON files, loaded once into memory. Also the store the simulator serves. Dates may
//! be shifted by whole days when loading (fixtures are written relative to an anchor day).
//! Transaction Bundles as exporters such as Synthea write them (entries named by
//! `urn:uuid:` fullUrls, references to those) load as the resources they create: each such
//! reference becomes `Type/id`. A resource repeated identically across files (the same
//! Organization in every patient's Bundle) is kept once.

use super::{SourceError, SourceStatus, SourceSystem};
use crate::fhir::{self, reference};
use async_trait::async_trait;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use tokio::time::Instant;

/// Why a folder of files (or one file) could not be loaded; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {source}")]
    Unreadable { path: String, source: std::io::Error },
    #[error("{path}: {source}")]
    Json { path: String, source: serde_json::Error },
    #[error("{path} line {line}: {source}")]
    JsonLine { path: String, line: usize, source: serde_json::Error },
    #[error("{path}: a resource without resourceType or id")]
    NoTypeOrId { path: String },
    #[error("{path}: {resource} appears twice")]
    Twice { path: String, resource: String },
}

fn unreadable(path: &Path) -> impl FnOnce(std::io::Error) -> LoadError + '_ {
    move |source| LoadError::Unreadable { path: path.display().to_string(), source }
}

fn not_json(path: &Path) -> impl FnOnce(serde_json::Error) -> LoadError + '_ {
    move |source| LoadError::Json { path: path.display().to_string(), source }
}

/// Every resource of one source, by type, in file order.
#[derive(Debug, Default, Clone)]
pub struct ResourceStore {
    by_type: BTreeMap<String, Vec<Value>>,
    /// Type → id → position in `by_type[type]` (the first resource with that id): reads and
    /// `_id` searches cost one lookup, not a scan of the type.
    positions: HashMap<String, HashMap<String, usize>>,
    /// The attachments beside the resources (`Binary/{id}.{ext}`).
    binaries: super::attachments::BinaryFiles,
}

impl ResourceStore {
    /// Loads every `*.json` and `*.ndjson` file under `dir` (not recursive). Bundles
    /// contribute their entries' resources. Duplicate (type, id) pairs are refused.
    pub fn load(dir: &Path, shift_days: i64) -> Result<ResourceStore, LoadError> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(unreadable(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| matches!(p.extension().and_then(|x| x.to_str()), Some("json" | "ndjson")))
            .collect();
        files.sort();
        let mut store = ResourceStore::default();
        let binaries = dir.join("Binary");
        store.binaries = super::attachments::BinaryFiles::load(&binaries).map_err(unreadable(&binaries))?;
        let mut seen: std::collections::HashMap<(String, String), Value> = std::collections::HashMap::new();
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(unreadable(&path))?;
            let mut values = Vec::new();
            if path.extension().is_some_and(|x| x == "ndjson") {
                for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                    values.push(serde_json::from_str(line).map_err(|source| LoadError::JsonLine {
                        path: path.display().to_string(),
                        line: n + 1,
                        source,
                    })?);
                }
            } else {
                values.push(serde_json::from_str(&text).map_err(not_json(&path))?);
            }
            for value in values {
                for mut resource in unbundle(value) {
                    let (Some(t), Some(id)) = (fhir::resource_type(&resource), fhir::resource_id(&resource)) else {
                        return Err(LoadError::NoTypeOrId { path: path.display().to_string() });
                    };
                    let key = (t.to_string(), id.to_string());
                    match seen.get(&key) {
                        Some(first) if *first == resource => continue,
                        Some(_) => {
                            return Err(LoadError::Twice {
                                path: path.display().to_string(),
                                resource: format!("{t}/{id}"),
                            })
                        }
                        None => {
                            seen.insert(key, resource.clone());
                        }
                    }
                    crate::fhir::time::shift_dates(&mut resource, shift_days);
                    store.push(resource);
                }
            }
        }
        Ok(store)
    }

    /// Builds a store from resources already in memory (tests, generated populations).
    pub fn from_resources(resources: impl IntoIterator<Item = Value>) -> ResourceStore {
        let mut store = ResourceStore::default();
        for r in resources {
            store.push(r);
        }
        store
    }

    /// Adds a resource at the end of its type (one without a type is not kept).
    fn push(&mut self, resource: Value) {
        let Some(t) = fhir::resource_type(&resource) else { return };
        let of_type = self.by_type.entry(t.to_string()).or_default();
        if let Some(id) = fhir::resource_id(&resource) {
            let ids = self.positions.entry(t.to_string()).or_default();
            ids.entry(id.to_string()).or_insert(of_type.len());
        }
        of_type.push(resource);
    }

    /// The attachments this store serves as `Binary/{id}`.
    pub fn binaries(&self) -> &super::attachments::BinaryFiles {
        &self.binaries
    }

    /// Adds an attachment served as `Binary/{id}` (tests, generated content).
    pub fn with_binary(mut self, id: &str, binary: super::attachments::StoredBinary) -> ResourceStore {
        self.binaries.insert(id, binary);
        self
    }

    pub fn of_type(&self, resource_type: &str) -> &[Value] {
        self.by_type.get(resource_type).map_or(&[], Vec::as_slice)
    }

    pub fn get(&self, resource_type: &str, id: &str) -> Option<&Value> {
        let position = *self.positions.get(resource_type)?.get(id)?;
        self.by_type.get(resource_type)?.get(position)
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
    /// compartment search parameter's elements (`subject`, `patient`, `beneficiary` …) point
    /// at the patient; for Provenance, those whose `target` is the
    /// patient or one of the patient's resources.
    pub fn compartment(&self, patient_id: &str, resource_type: &str) -> Vec<&Value> {
        let points_at_patient = |v: &Value| {
            v.get("reference").and_then(Value::as_str).and_then(|r| reference::parse_local(r, None))
                == Some(("Patient", patient_id))
        };
        if resource_type == "Provenance" {
            let owned: HashSet<(String, String)> = fhir::compartment::type_names()
                .filter(|t| *t != "Provenance")
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
                                .and_then(|r| reference::parse_local(r, None))
                                .is_some_and(|(ty, id)| owned.contains(&(ty.to_string(), id.to_string())))
                    })
                })
                .collect();
        }
        self.of_type(resource_type)
            .iter()
            .filter(|r| fhir::compartment::patients_of(r, resource_type).contains(&patient_id))
            .collect()
    }
}

/// The resources of one JSON file (a Bundle's entries, or the one resource), as [`ResourceStore::load`]
/// reads them: `urn:` references between a Bundle's entries become `Type/id`.
pub fn read_json_file(path: &Path) -> Result<Vec<Value>, LoadError> {
    let text = std::fs::read_to_string(path).map_err(unreadable(path))?;
    let value = serde_json::from_str(&text).map_err(not_json(path))?;
    Ok(unbundle(value))
}

/// The resources in a value: a Bundle's entries (references to an entry's `urn:` fullUrl
/// rewritten to `Type/id`), or the value itself.
fn unbundle(value: Value) -> Vec<Value> {
    if fhir::resource_type(&value) != Some("Bundle") {
        return vec![value];
    }
    let Some(Value::Array(entries)) = value.get("entry") else { return Vec::new() };
    let names: std::collections::HashMap<&str, String> = entries
        .iter()
        .filter_map(|e| {
            let full_url = e.get("fullUrl")?.as_str().filter(|u| u.starts_with("urn:"))?;
            let r = e.get("resource")?;
            Some((full_url, format!("{}/{}", fhir::resource_type(r)?, fhir::resource_id(r)?)))
        })
        .collect();
    entries
        .iter()
        .filter_map(|e| e.get("resource").cloned())
        .map(|mut r| {
            if !names.is_empty() {
                reference::for_each_mut(&mut r, &mut |s| {
                    if let Some(local) = names.get(s.as_str()) {
                        *s = local.clone();
                    }
                });
            }
            r
        })
        .collect()
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
            .map_err(|problem| SourceError::Files { source_name: name.into(), problem: problem.into() })?;
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
    async fn offer(&self, _deadline: Instant) -> Result<Option<super::Offer>, SourceError> {
        let mut offer = super::Offer::default();
        for t in self.store.types() {
            let params = offer.types.entry(t.to_string()).or_default();
            params.insert("_id".to_string());
            if let Some(c) = fhir::compartment::get(t) {
                params.insert(c.search.to_string());
            }
        }
        Ok(Some(offer))
    }
    async fn count(&self, resource_type: &str, _deadline: Instant) -> Result<Option<usize>, SourceError> {
        Ok(Some(self.store.of_type(resource_type).len()))
    }
    fn status(&self) -> SourceStatus {
        SourceStatus { name: self.name.clone(), display: self.display.clone(), state: "up", consecutive_failures: 0 }
    }
    fn attachment_key(&self, url: &str) -> Option<String> {
        super::attachments::files_key(url)
    }
    async fn attachment(
        &self,
        url: &str,
        _content_type: Option<&str>,
        _deadline: Instant,
    ) -> Result<Option<super::attachments::AttachmentBody>, SourceError> {
        let Some(id) = super::attachments::files_key(url) else { return Ok(None) };
        self.store.binaries().open(&id).await.map_err(|e| SourceError::Unavailable {
            source_name: self.name.clone(),
            message: format!("attachment file unreadable: {}", e.kind()),
        })
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
    fn transaction_bundles_resolve_urn_references_and_identical_repeats_load_once() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = |org_name: &str| {
            json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                {"fullUrl": "urn:uuid:p1", "resource": {"resourceType": "Patient", "id": "p1"}, "request": {"method": "POST", "url": "Patient"}},
                {"fullUrl": "urn:uuid:o1", "resource": {"resourceType": "Organization", "id": "o1", "name": org_name}},
                {"fullUrl": "urn:uuid:e1", "resource": {"resourceType": "Encounter", "id": "e1",
                    "subject": {"reference": "urn:uuid:p1"}, "serviceProvider": {"reference": "urn:uuid:o1"},
                    "reasonReference": [{"reference": "urn:uuid:elsewhere"}]}}
            ]})
        };
        write(dir.path(), "a.json", &bundle("Clinic").to_string());
        let mut second = bundle("Clinic");
        second["entry"].as_array_mut().unwrap().retain(|e| e["resource"]["resourceType"] == "Organization");
        write(dir.path(), "b.json", &second.to_string());
        let store = ResourceStore::load(dir.path(), 0).unwrap();
        assert_eq!(store.len(), 3, "the repeated Organization is kept once");
        let e = store.get("Encounter", "e1").unwrap();
        assert_eq!(e["subject"]["reference"], "Patient/p1");
        assert_eq!(e["serviceProvider"]["reference"], "Organization/o1");
        assert_eq!(e["reasonReference"][0]["reference"], "urn:uuid:elsewhere", "not an entry: left alone");
        assert_eq!(store.compartment("p1", "Encounter").len(), 1);
        write(dir.path(), "b.json", &bundle("Another name").to_string());
        let err = ResourceStore::load(dir.path(), 0).unwrap_err().to_string();
        assert!(err.contains("appears twice"), "{err}");
    }

    #[test]
    fn refuses_duplicates_and_bad_json_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "x.ndjson",
            "{\"resourceType\":\"Patient\",\"id\":\"a\"}\n{\"resourceType\":\"Patient\",\"id\":\"a\",\"gender\":\"other\"}\n",
        );
        let e = ResourceStore::load(dir.path(), 0).unwrap_err().to_string();
        assert!(e.contains("x.ndjson") && e.contains("Patient/a appears twice"), "{e}");
        write(dir.path(), "x.ndjson", "{not json\n");
        let e = ResourceStore::load(dir.path(), 0).unwrap_err().to_string();
        assert!(e.contains("x.ndjson line 1"), "{e}");
    }
}
