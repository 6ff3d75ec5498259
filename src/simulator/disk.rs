//! The simulator's store for large populations: a folder of NDJSON files read in place.
//! Opening scans each file once and keeps only an offset index in memory — per type, where
//! each resource's line is (file, offset, length) and which position holds which id, plus
//! each patient's compartment as positions — never a resource. A resource is read with a
//! positioned read when it is asked for (dates shifted as it is read), so memory follows the
//! number of resources, not their size. Searches scan the type's lines one at a time and
//! keep only the ids of the matches. It never writes to the folder and never logs a value.

use crate::fhir;
use crate::fhir::search as fsearch;
use chrono::{Offset, Utc};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Why a folder could not be indexed or a resource could not be read; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path} line {line}: {source}")]
    Json { path: String, line: usize, source: serde_json::Error },
    #[error("{path} line {line}: a resource without resourceType or id")]
    NoTypeOrId { path: String, line: usize },
    #[error("{path} line {line}: {resource} appears twice")]
    Twice { path: String, line: usize, resource: String },
    #[error("{path}: a line longer than 4 GiB")]
    TooLong { path: String },
    #[error("search: {0}")]
    Search(#[from] fsearch::SearchError),
}

/// Where one resource's line is, and when it last changed as written in the file
/// (`meta.lastUpdated` in seconds; [`UNKNOWN_UPDATE`] without one).
#[derive(Debug, Clone, Copy)]
struct Slot {
    file: u32,
    len: u32,
    offset: u64,
    updated: i64,
}

/// The `updated` of a resource without a readable `meta.lastUpdated`: never skipped by a
/// `_lastUpdated` search (the search's own filter decides).
const UNKNOWN_UPDATE: i64 = i64::MAX;

/// Slack below a `_lastUpdated` bound before a resource is skipped without being read (more
/// than any zone offset: skipping only what cannot match).
const UPDATE_SLACK: i64 = 2 * 86_400;

#[derive(Debug, Default)]
struct TypeIndex {
    /// In file order.
    slots: Vec<Slot>,
    by_id: HashMap<Box<str>, u32>,
    /// Patient id → positions in `slots` of the patient's resources.
    compartment: HashMap<Box<str>, Vec<u32>>,
}

/// One page of a search: how many matched, this page's resources (by id), and the id to
/// continue after when there is more.
#[derive(Debug)]
pub struct DiskPage {
    pub total: usize,
    pub items: Vec<Value>,
    pub next: Option<String>,
}

/// An indexed folder of NDJSON files.
#[derive(Debug)]
pub struct DiskStore {
    files: Vec<(PathBuf, File)>,
    types: BTreeMap<String, TypeIndex>,
    shift_days: i64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DiskError + '_ {
    move |source| DiskError::Io { path: path.display().to_string(), source }
}

impl DiskStore {
    /// Indexes every `*.ndjson` file directly under `dir` (other files are not read).
    pub fn open(dir: &Path, shift_days: i64) -> Result<DiskStore, DiskError> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
            .collect();
        paths.sort();
        let mut store = DiskStore { files: Vec::new(), types: BTreeMap::new(), shift_days };
        let mut provenances = Vec::new();
        for path in paths {
            let file = File::open(&path).map_err(io(&path))?;
            store.index_file(&path, &file, &mut provenances)?;
            store.files.push((path, file));
        }
        store.index_provenances(provenances);
        for index in store.types.values_mut() {
            index.slots.shrink_to_fit();
            index.by_id.shrink_to_fit();
            index.compartment.values_mut().for_each(Vec::shrink_to_fit);
            index.compartment.shrink_to_fit();
        }
        Ok(store)
    }

    /// A Provenance belongs to the patients its targets are or belong to: resolved once
    /// every file is indexed (`provenances`: position and target references).
    fn index_provenances(&mut self, provenances: Vec<(u32, Vec<(String, String)>)>) {
        let mut owners: HashMap<(&str, u32), Vec<&str>> = HashMap::new();
        for (t, index) in &self.types {
            for (patient, positions) in &index.compartment {
                for p in positions {
                    owners.entry((t.as_str(), *p)).or_default().push(patient);
                }
            }
        }
        let mut found: Vec<(u32, String)> = Vec::new();
        for (position, targets) in provenances {
            let mut patients: Vec<String> = Vec::new();
            for (t, id) in targets {
                if t == "Patient" {
                    patients.push(id);
                } else if let Some(p) = self.types.get(&t).and_then(|i| i.by_id.get(id.as_str())) {
                    let key = (self.types.get_key_value(&t).map_or("", |(k, _)| k.as_str()), *p);
                    patients.extend(owners.get(&key).into_iter().flatten().map(ToString::to_string));
                }
            }
            patients.sort_unstable();
            patients.dedup();
            found.extend(patients.into_iter().map(|p| (position, p)));
        }
        drop(owners);
        if let Some(index) = self.types.get_mut("Provenance") {
            for (position, patient) in found {
                index.compartment.entry(patient.into()).or_default().push(position);
            }
        }
    }

    fn index_file(
        &mut self,
        path: &Path,
        file: &File,
        provenances: &mut Vec<(u32, Vec<(String, String)>)>,
    ) -> Result<(), DiskError> {
        let number = u32::try_from(self.files.len()).unwrap_or(u32::MAX);
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        let mut line = Vec::with_capacity(4096);
        let (mut offset, mut n) = (0u64, 0usize);
        loop {
            line.clear();
            let read = reader.read_until(b'\n', &mut line).map_err(io(path))?;
            if read == 0 {
                return Ok(());
            }
            n += 1;
            let start = offset;
            offset += read as u64;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let shown = || path.display().to_string();
            let resource: Value =
                serde_json::from_slice(&line).map_err(|source| DiskError::Json { path: shown(), line: n, source })?;
            let (Some(t), Some(id)) = (fhir::resource_type(&resource), fhir::resource_id(&resource)) else {
                return Err(DiskError::NoTypeOrId { path: shown(), line: n });
            };
            let len = u32::try_from(read).map_err(|_| DiskError::TooLong { path: shown() })?;
            let index = self.types.entry(t.to_string()).or_default();
            let position = u32::try_from(index.slots.len()).unwrap_or(u32::MAX);
            if index.by_id.insert(id.into(), position).is_some() {
                return Err(DiskError::Twice { path: shown(), line: n, resource: format!("{t}/{id}") });
            }
            let updated = resource
                .pointer("/meta/lastUpdated")
                .and_then(Value::as_str)
                .and_then(|t| fhir::time::parse_range(t, Utc.fix()))
                .map_or(UNKNOWN_UPDATE, |r| r.start);
            index.slots.push(Slot { file: number, len, offset: start, updated });
            if t == "Provenance" {
                let targets = fhir::path_values(&resource, "target")
                    .iter()
                    .filter_map(|v| v.get("reference").and_then(Value::as_str))
                    .filter_map(|r| fhir::reference::parse_local(r, None))
                    .map(|(t, id)| (t.to_string(), id.to_string()))
                    .collect();
                provenances.push((position, targets));
                continue;
            }
            let mut patients = fhir::compartment::patients_of(&resource, t);
            patients.sort_unstable();
            patients.dedup();
            for patient in patients {
                index.compartment.entry(patient.into()).or_default().push(position);
            }
        }
    }

    pub fn types(&self) -> impl Iterator<Item = &str> {
        self.types.keys().map(String::as_str)
    }

    /// How many resources of `resource_type` there are.
    pub fn count(&self, resource_type: &str) -> usize {
        self.types.get(resource_type).map_or(0, |i| i.slots.len())
    }

    /// The resource at `position` of its type (file order).
    pub fn at(&self, resource_type: &str, position: usize) -> Result<Option<Value>, DiskError> {
        let Some(slot) = self.types.get(resource_type).and_then(|i| i.slots.get(position)) else {
            return Ok(None);
        };
        let (path, file) = &self.files[slot.file as usize];
        let mut buf = vec![0u8; slot.len as usize];
        file.read_exact_at(&mut buf, slot.offset).map_err(io(path))?;
        let mut resource: Value = serde_json::from_slice(&buf).map_err(|source| DiskError::Json {
            path: path.display().to_string(),
            line: 0,
            source,
        })?;
        fhir::time::shift_dates(&mut resource, self.shift_days);
        Ok(Some(resource))
    }

    /// Where `Type/id` is in its type's file order.
    pub fn position(&self, resource_type: &str, id: &str) -> Option<usize> {
        self.types.get(resource_type).and_then(|i| i.by_id.get(id)).map(|p| *p as usize)
    }

    /// `Type/id`, read from disk.
    pub fn get(&self, resource_type: &str, id: &str) -> Result<Option<Value>, DiskError> {
        match self.types.get(resource_type).and_then(|i| i.by_id.get(id)) {
            Some(position) => self.at(resource_type, *position as usize),
            None => Ok(None),
        }
    }

    /// Positions of the patient's resources of `resource_type` (its compartment).
    pub fn compartment(&self, resource_type: &str, patient_id: &str) -> &[u32] {
        self.types.get(resource_type).and_then(|i| i.compartment.get(patient_id)).map_or(&[], Vec::as_slice)
    }

    /// Searches `resource_type` with the shared FHIR filters (`pairs` as decoded from the
    /// query), among the positions `within` when given (a compartment): matches in id order,
    /// `count` per page (or the query's `_count`), continuing after the id `after`. Holds the
    /// ids of the matches, never more than one page of resources.
    pub fn search(
        &self,
        resource_type: &str,
        pairs: &[(String, String)],
        within: Option<&[u32]>,
        after: Option<&str>,
        count: usize,
        lenient: bool,
    ) -> Result<DiskPage, DiskError> {
        let zone = Utc.fix();
        let query = fsearch::parse(resource_type, pairs, &[], lenient, count, zone)?;
        let count = query.count.unwrap_or(count).max(1);
        if query.filters.is_empty() {
            return self.listing(resource_type, within, after, count);
        }
        let mut matched: Vec<(Box<str>, u32)> = Vec::new();
        let all: Vec<u32>;
        let by_id: Vec<u32>;
        let index = self.types.get(resource_type);
        let positions = match (within, super::search::ids_searched(pairs)) {
            (Some(w), _) => w,
            // `_id` from the id index (the filters still apply to what it finds).
            (None, Some(ids)) => {
                let mut found: Vec<u32> = ids.filter_map(|id| index.and_then(|i| i.by_id.get(id)).copied()).collect();
                found.sort_unstable();
                found.dedup();
                by_id = found;
                &by_id
            }
            (None, None) => {
                all = (0..u32::try_from(self.count(resource_type)).unwrap_or(u32::MAX)).collect();
                &all
            }
        };
        // `_lastUpdated` with a lower bound (as a source's index on it would): a resource
        // written before it, by the time kept at opening, is not read at all.
        let since = self.updated_since(pairs);
        let slots = self.types.get(resource_type).map(|i| i.slots.as_slice()).unwrap_or_default();
        for &position in positions {
            let position = position as usize;
            if since.is_some_and(|s| slots.get(position).is_some_and(|slot| slot.updated < s)) {
                continue;
            }
            let Some(r) = self.at(resource_type, position)? else { continue };
            if query.filters.iter().all(|f| fsearch::matches(&r, f, zone)) {
                let id = fhir::resource_id(&r).unwrap_or_default();
                matched.push((id.into(), position as u32));
            }
        }
        matched.sort_unstable();
        let total = matched.len();
        let start = after.map_or(0, |a| matched.partition_point(|(id, _)| &**id <= a));
        let page = &matched[start..(start + count).min(total)];
        let mut items = Vec::with_capacity(page.len());
        for (_, position) in page {
            items.extend(self.at(resource_type, *position as usize)?);
        }
        let next = (start + count < total).then(|| page.last().map(|(id, _)| id.to_string())).flatten();
        Ok(DiskPage { total, items, next })
    }

    /// The earliest `meta.lastUpdated` (as written in the files, before the date shift) a
    /// resource can have and still match the `_lastUpdated` parameters among `pairs`, less
    /// [`UPDATE_SLACK`]; `None` when they set no lower bound.
    fn updated_since(&self, pairs: &[(String, String)]) -> Option<i64> {
        pairs
            .iter()
            .filter(|(k, _)| k == "_lastUpdated")
            .filter_map(|(_, v)| {
                let (prefix, value) = if v.len() > 2 && v.as_bytes()[..2].iter().all(u8::is_ascii_lowercase) {
                    v.split_at(2)
                } else {
                    ("eq", v.as_str())
                };
                matches!(prefix, "gt" | "ge" | "sa" | "eq").then_some(value)
            })
            .filter_map(|value| fhir::time::parse_range(value, Utc.fix()))
            .map(|r| r.start - self.shift_days.saturating_mul(86_400) - UPDATE_SLACK)
            .max()
    }

    /// A search without filters: the page is chosen from the id index, so only its own
    /// resources are read (a listing of N resources costs N reads, not N per page).
    fn listing(
        &self,
        resource_type: &str,
        within: Option<&[u32]>,
        after: Option<&str>,
        count: usize,
    ) -> Result<DiskPage, DiskError> {
        let Some(index) = self.types.get(resource_type) else {
            return Ok(DiskPage { total: 0, items: Vec::new(), next: None });
        };
        let allowed: Option<std::collections::HashSet<u32>> = within.map(|w| w.iter().copied().collect());
        let mut total = 0;
        let mut rest: Vec<(&str, u32)> = Vec::new();
        for (id, &position) in &index.by_id {
            if allowed.as_ref().is_some_and(|a| !a.contains(&position)) {
                continue;
            }
            total += 1;
            if after.is_none_or(|a| &**id > a) {
                rest.push((id, position));
            }
        }
        let more = rest.len() > count;
        if more {
            rest.select_nth_unstable(count);
            rest.truncate(count);
        }
        rest.sort_unstable();
        let mut items = Vec::with_capacity(rest.len());
        for (_, position) in &rest {
            items.extend(self.at(resource_type, *position as usize)?);
        }
        let next = more.then(|| rest.last().map(|(id, _)| (*id).to_string())).flatten();
        Ok(DiskPage { total, items, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(page: &DiskPage) -> Vec<String> {
        page.items.iter().filter_map(fhir::resource_id).map(str::to_string).collect()
    }

    #[test]
    fn last_updated_searches_find_what_a_full_scan_finds_with_and_without_a_date_shift() {
        let dir = tempfile::tempdir().unwrap();
        let times = [
            Some("2024-01-01T00:00:00Z"),
            Some("2025-06-30T23:30:00-05:00"),
            None,
            Some("2025-07-01T03:00:00Z"),
            Some("2026-12-01T10:00:00+02:00"),
        ];
        let lines: Vec<String> = times
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut p = serde_json::json!({"resourceType": "Patient", "id": format!("p{i}")});
                if let Some(t) = t {
                    p["meta"] = serde_json::json!({"lastUpdated": t});
                }
                p.to_string()
            })
            .collect();
        std::fs::write(dir.path().join("Patient.ndjson"), lines.join("\n") + "\n").unwrap();
        for shift in [0, 40] {
            let store = DiskStore::open(dir.path(), shift).unwrap();
            let shifted = |t: &str| fhir::time::parse_range(t, Utc.fix()).unwrap().start + shift * 86_400;
            for (prefix, bound) in [
                ("gt", "2025-07-01T04:00:00Z"),
                ("ge", "2025-07-01T03:00:00Z"),
                ("gt", "2025-01-01"),
                ("", "2024-01-01"),
            ] {
                // The bound as a client would send it: after the shift, in the shifted world.
                let b = chrono::DateTime::from_timestamp(shifted(bound), 0).unwrap().to_rfc3339();
                let b = if bound.len() == 10 { b[..10].to_string() } else { b };
                let pairs = vec![("_lastUpdated".to_string(), format!("{prefix}{b}"))];
                let found = ids(&store.search("Patient", &pairs, None, None, 100, false).unwrap());
                // What reading every resource and applying the filter finds.
                let query = fsearch::parse("Patient", &pairs, &[], false, 100, Utc.fix()).unwrap();
                let mut expected: Vec<String> = (0..times.len())
                    .filter_map(|i| store.at("Patient", i).unwrap())
                    .filter(|r| query.filters.iter().all(|f| fsearch::matches(r, f, Utc.fix())))
                    .filter_map(|r| fhir::resource_id(&r).map(str::to_string))
                    .collect();
                expected.sort();
                assert_eq!(found, expected, "shift {shift}, _lastUpdated={prefix}{b}");
                assert!(!found.is_empty() || prefix == "gt", "the check has something to find");
            }
            let later = vec![("_lastUpdated".to_string(), "gt2030-01-01".to_string())];
            assert!(ids(&store.search("Patient", &later, None, None, 100, false).unwrap()).is_empty());
            let before = vec![("_lastUpdated".to_string(), "lt2025-01-01".to_string())];
            assert_eq!(
                ids(&store.search("Patient", &before, None, None, 100, false).unwrap()).len(),
                1,
                "no lower bound"
            );
        }
    }
}
