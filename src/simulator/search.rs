//! Search as the simulated hospital answers it: strict query-string decoding, the patient
//! compartment (`patient=` / `subject=`, through targets for Provenance), the shared FHIR
//! filters (`crate::fhir::search`), a stable order by id and keyset paging with an opaque
//! `_cursor`, with next links absolute or (quirk) relative, and, when offered,
//! `_revinclude=Provenance:target`. Pure functions over the store:
//! it never changes the store, never alters a resource and never logs query values.

use super::Shared;
use crate::fhir;
use crate::fhir::bundle::{decode_cursor, page_after, searchset_bytes, Searchset, WriteJson};
use crate::fhir::model::codes::{IssueType, SearchEntryMode};
use crate::fhir::outcome::Issue;
use crate::fhir::reference;
use crate::fhir::search::include::Include;
use crate::fhir::search::{self as fsearch, SearchError};
use crate::sources::files::ResourceStore;
use axum::http::StatusCode;
use chrono::{Offset, SubsecRound, Utc};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

/// Where each patient's resources are, as positions in `store.of_type(type)`: built once
/// when the simulator starts, so a patient search costs the size of its answer, not the size
/// of the store (a generated population holds a million resources). The same compartment as
/// [`ResourceStore::compartment`]: `subject`/`patient` points at the patient; a Provenance
/// belongs to the patients its targets are or belong to.
#[derive(Debug, Default)]
pub(super) struct CompartmentIndex {
    members: HashMap<String, HashMap<String, Vec<usize>>>,
    /// `Type/id` → positions in `store.of_type("Provenance")` of the Provenances targeting
    /// it (for `_revinclude=Provenance:target`).
    provenance_targets: HashMap<String, Vec<usize>>,
}

impl CompartmentIndex {
    pub(super) fn build(store: &ResourceStore) -> CompartmentIndex {
        let mut index = CompartmentIndex::default();
        let mut owners: HashMap<(&str, &str), &str> = HashMap::new();
        for t in fhir::compartment::type_names().filter(|t| *t != "Provenance") {
            for (i, r) in store.of_type(t).iter().enumerate() {
                let mut patients = fhir::compartment::patients_of(r, t);
                patients.sort_unstable();
                patients.dedup();
                for patient in patients {
                    index.add(t, patient, i);
                    if let Some(id) = fhir::resource_id(r) {
                        owners.insert((t, id), patient);
                    }
                }
            }
        }
        for (i, p) in store.of_type("Provenance").iter().enumerate() {
            let mut targets: Vec<String> = fhir::path_values(p, "target")
                .iter()
                .filter_map(|target| target.get("reference").and_then(Value::as_str).and_then(reference::parse))
                .map(|(t, id)| format!("{t}/{id}"))
                .collect();
            targets.sort_unstable();
            targets.dedup();
            for target in targets {
                index.provenance_targets.entry(target).or_default().push(i);
            }
            let mut patients: Vec<&str> = fhir::path_values(p, "target")
                .iter()
                .filter_map(|target| {
                    let (t, id) = target
                        .get("reference")
                        .and_then(Value::as_str)
                        .and_then(|r| reference::parse_local(r, None))?;
                    if t == "Patient" {
                        Some(id)
                    } else {
                        owners.get(&(t, id)).copied()
                    }
                })
                .collect();
            patients.sort_unstable();
            patients.dedup();
            for patient in patients {
                index.add("Provenance", patient, i);
            }
        }
        index
    }

    fn add(&mut self, resource_type: &str, patient: &str, position: usize) {
        let by_patient = self.members.entry(resource_type.to_string()).or_default();
        by_patient.entry(patient.to_string()).or_default().push(position);
    }

    /// Positions in `store.of_type("Provenance")` of the Provenances targeting `Type/id`.
    pub(super) fn provenances_of(&self, key: &str) -> impl Iterator<Item = usize> + '_ {
        self.provenance_targets.get(key).into_iter().flatten().copied()
    }

    /// Positions in `store.of_type(resource_type)` of the patient's resources.
    pub(super) fn positions(&self, resource_type: &str, patient_id: &str) -> impl Iterator<Item = usize> + '_ {
        self.members.get(resource_type).and_then(|m| m.get(patient_id)).into_iter().flatten().copied()
    }
}

/// The paging parameter this server puts in its next links.
pub(super) const CURSOR: &str = "_cursor";

/// The include parameter answered when the simulator offers it.
const REVINCLUDE: &str = "_revinclude";

/// Why a search was refused: the status and the issue to answer with.
pub(super) type Refusal = (StatusCode, Issue);

pub(super) fn bad(message: impl Into<String>) -> Refusal {
    (StatusCode::BAD_REQUEST, Issue::error(IssueType::Invalid, message))
}

/// Decodes an `application/x-www-form-urlencoded` string strictly: bad percent escapes,
/// non-UTF-8 text and empty names are errors (where a lenient decoder would guess).
pub(super) fn decode_pairs(raw: &str) -> Result<Vec<(String, String)>, String> {
    raw.split('&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            let (name, value) = segment.split_once('=').unwrap_or((segment, ""));
            let name = decode_component(name).ok_or("a parameter name is not valid percent-encoded UTF-8")?;
            let value = decode_component(value)
                .ok_or_else(|| format!("the value of `{name}` is not valid percent-encoded UTF-8"))?;
            if name.is_empty() {
                return Err("a parameter has no name".to_string());
            }
            Ok((name, value))
        })
        .collect()
}

fn decode_component(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn refusal(e: SearchError) -> Refusal {
    let code = match e {
        SearchError::UnknownParameter { .. } | SearchError::UnsupportedModifier { .. } => IssueType::NotSupported,
        SearchError::BadValue { .. } => IssueType::Invalid,
    };
    (StatusCode::BAD_REQUEST, Issue::error(code, e.to_string()))
}

/// Whether `name` is a patient-compartment parameter of `resource_type` here: `patient`
/// on every compartment type, the type's own compartment parameter (`actor` …), and
/// `subject` where that element names the patient.
fn is_patient_param(resource_type: &str, name: &str) -> bool {
    let name = name.strip_suffix(":Patient").unwrap_or(name);
    fsearch::definition(resource_type, name).is_some_and(|d| d.kind == fsearch::ParamKind::Reference)
}

/// The patient id of a `patient=` value: `id`, `Patient/id` or an absolute `…/Patient/id`.
fn patient_id(value: &str) -> Result<&str, Refusal> {
    let id = match value.rsplit_once('/') {
        None => value,
        Some((prefix, id)) if prefix == "Patient" || prefix.ends_with("/Patient") => id,
        Some(_) => return Err(bad(format!("`{value}` is not a Patient reference"))),
    };
    if fhir::is_valid_id(id) {
        Ok(id)
    } else {
        Err(bad("a patient reference holds an invalid id"))
    }
}

/// Runs a search of `resource_type` (already known to be supported) and answers the
/// searchset page. `raw_query` is the query string exactly as received.
pub(super) fn run(shared: &Shared, resource_type: &str, raw_query: &str, lenient: bool) -> Result<Vec<u8>, Refusal> {
    let zone = Utc.fix();
    let pairs = decode_pairs(raw_query).map_err(bad)?;
    let (patient_pairs, other_pairs): (Vec<_>, Vec<_>) =
        pairs.into_iter().partition(|(name, _)| is_patient_param(resource_type, name));
    let page_size = shared.options.page_size;
    let cursor_param = shared.options.cursor_param();
    let controls: &[&str] = if shared.options.revinclude_provenance {
        &[cursor_param, "_summary", REVINCLUDE]
    } else {
        &[cursor_param, "_summary"]
    };
    let query = fsearch::parse(resource_type, &other_pairs, controls, lenient, page_size, zone).map_err(refusal)?;
    // `fsearch::parse` hands a `_revinclude` listed among the controls back parsed, in
    // `query.includes` (never in `query.controls`).
    let revinclude = match query.includes.iter().find(|i| !is_provenance_target(i)) {
        None => !query.includes.is_empty(),
        Some(other) => {
            return Err(bad(format!("`{}` is not supported here (only `Provenance:target`)", other.describe())))
        }
    };
    let count_only = match query.control("_summary") {
        None => false,
        Some("count") => true,
        Some(other) => return Err(bad(format!("`_summary={other}` is not supported here (only `count`)"))),
    };
    let after = match query.control(cursor_param) {
        Some(c) => {
            Some(decode_cursor(c).ok_or_else(|| bad(format!("`{cursor_param}` is not a cursor this server issued")))?)
        }
        None => None,
    };

    if let Some(disk) = &shared.disk {
        if revinclude {
            return Err(bad("`_revinclude` is not supported by this server"));
        }
        return run_on_disk(
            shared,
            disk,
            resource_type,
            raw_query,
            &patient_pairs,
            &other_pairs,
            after,
            count_only,
            lenient,
        );
    }
    let all = shared.store.of_type(resource_type);
    // Repeated patient parameters AND together; comma-separated patients OR together.
    let mut selected: Option<BTreeSet<usize>> = None;
    for (_, value) in &patient_pairs {
        let mut these = BTreeSet::new();
        for v in value.split(',') {
            these.extend(shared.index.positions(resource_type, patient_id(v)?));
        }
        selected = Some(match selected {
            None => these,
            Some(before) => before.intersection(&these).copied().collect(),
        });
    }
    let mut matched: Vec<&Value> = match (selected, ids_searched(&other_pairs)) {
        // An `_id` search is answered from the store's id index, as a real server's is (the
        // filters below still apply).
        (None, Some(ids)) => ids.filter_map(|id| shared.store.get(resource_type, id)).collect(),
        (None, None) => all.iter().collect(),
        (Some(positions), _) => positions.into_iter().map(|i| &all[i]).collect(),
    };
    matched.retain(|r| fhir::resource_id(r).is_some());
    matched.retain(|r| query.filters.iter().all(|f| fsearch::matches(r, f, zone)));
    matched.sort_by(|a, b| fhir::resource_id(a).cmp(&fhir::resource_id(b)));
    matched.dedup_by(|a, b| fhir::resource_id(a) == fhir::resource_id(b));

    let total = matched.len();
    if count_only {
        matched.clear();
    }
    let count = query.count.unwrap_or(page_size);
    let key = |r: &&Value| fhir::resource_id(r).unwrap_or_default().to_string();
    let page = page_after(matched, key, after.as_deref(), count);

    let base = &shared.base_url;
    let included = if revinclude { provenances_targeting(shared, resource_type, &page.items) } else { Vec::new() };
    let entries = page
        .items
        .into_iter()
        .map(|r| {
            let id = fhir::resource_id(r).unwrap_or_default();
            (format!("{base}/{resource_type}/{id}"), r, SearchEntryMode::Match)
        })
        .chain(included.into_iter().map(|p| {
            let id = fhir::resource_id(p).unwrap_or_default();
            (format!("{base}/Provenance/{id}"), p, SearchEntryMode::Include)
        }))
        .collect();
    Ok(page_bundle(shared, resource_type, raw_query, page.next.as_deref(), total, entries))
}

/// The ids a plain `_id` parameter asks for (the first, when repeated: the filters AND the
/// rest), unless a value is one the id index cannot answer alone (an escape or a system).
pub(super) fn ids_searched(pairs: &[(String, String)]) -> Option<std::str::Split<'_, char>> {
    let (_, value) = pairs.iter().find(|(name, _)| name == "_id")?;
    (!value.contains(['\\', '|'])).then(|| value.split(','))
}

/// [`run`] over the disk store: the patient parameters select compartment positions, the
/// other parameters filter as they are read, one page of resources is held.
#[allow(clippy::too_many_arguments)]
fn run_on_disk(
    shared: &Shared,
    disk: &super::disk::DiskStore,
    resource_type: &str,
    raw_query: &str,
    patient_pairs: &[(String, String)],
    other_pairs: &[(String, String)],
    after: Option<String>,
    count_only: bool,
    lenient: bool,
) -> Result<Vec<u8>, Refusal> {
    let mut within: Option<BTreeSet<u32>> = None;
    for (_, value) in patient_pairs {
        let mut these = BTreeSet::new();
        for v in value.split(',') {
            these.extend(disk.compartment(resource_type, patient_id(v)?).iter().copied());
        }
        within = Some(match within {
            None => these,
            Some(before) => before.intersection(&these).copied().collect(),
        });
    }
    let cursor_param = shared.options.cursor_param();
    let filters: Vec<(String, String)> =
        other_pairs.iter().filter(|(n, _)| n != cursor_param && n != "_summary").cloned().collect();
    let within: Option<Vec<u32>> = within.map(|w| w.into_iter().collect());
    let page = disk
        .search(resource_type, &filters, within.as_deref(), after.as_deref(), shared.options.page_size, lenient)
        .map_err(|e| match e {
            super::disk::DiskError::Search(e) => refusal(e),
            other => {
                tracing::error!(error = %other, "simulator disk store search failed");
                (StatusCode::INTERNAL_SERVER_ERROR, Issue::error(IssueType::Exception, "the store could not be read"))
            }
        })?;
    let base = &shared.base_url;
    let items = if count_only { Vec::new() } else { page.items };
    let entries = items
        .into_iter()
        .map(|r| {
            let id = fhir::resource_id(&r).unwrap_or_default().to_string();
            (format!("{base}/{resource_type}/{id}"), r, SearchEntryMode::Match)
        })
        .collect();
    let next = page.next.filter(|_| !count_only).map(|id| crate::fhir::bundle::encode_cursor(&id));
    Ok(page_bundle(shared, resource_type, raw_query, next.as_deref(), page.total, entries))
}

/// One page of a searchset at `path` (a type, or `Patient/{id}/$everything`) as this server
/// writes it: self and next links under its base (next relative when that quirk is on, the
/// cursor in its profile's parameter), `total`, and `meta.lastUpdated`.
pub(super) fn page_bundle<R: WriteJson>(
    shared: &Shared,
    path: &str,
    raw_query: &str,
    cursor: Option<&str>,
    total: usize,
    entries: Vec<(String, R, SearchEntryMode)>,
) -> Vec<u8> {
    let base = &shared.base_url;
    let self_url = match raw_query {
        "" => format!("{base}/{path}"),
        q => format!("{base}/{path}?{q}"),
    };
    let next_url = cursor.map(|cursor| {
        let relative = next_link(path, raw_query, shared.options.cursor_param(), cursor);
        if shared.options.relative_next_links {
            relative
        } else {
            format!("{base}/{relative}")
        }
    });
    let shell = Searchset {
        id: Some(uuid::Uuid::new_v4().to_string()),
        self_url: &self_url,
        next_url: next_url.as_deref(),
        total: Some(total),
        last_updated: Some(chrono::Utc::now().trunc_subsecs(0)),
        ..Searchset::default()
    };
    // The matches are written where they are held, not copied into the page first.
    searchset_bytes(&shell, entries)
}

/// Whether an include is the one the simulator answers, `_revinclude=Provenance:target`
/// (no `:iterate`, no target type).
fn is_provenance_target(include: &Include) -> bool {
    include.reverse
        && !include.iterate
        && include.target.is_none()
        && format!("{}:{}", include.source_type, include.param.name) == crate::sources::PROVENANCE_REVINCLUDE
}

/// The Provenances targeting any of `matches` (each once, by id), for
/// `_revinclude=Provenance:target`; a Provenance already among the matches is not repeated.
fn provenances_targeting<'a>(shared: &'a Shared, resource_type: &str, matches: &[&Value]) -> Vec<&'a Value> {
    let all = shared.store.of_type("Provenance");
    let mut seen: BTreeSet<usize> = BTreeSet::new();
    for r in matches {
        let Some(id) = fhir::resource_id(r) else { continue };
        seen.extend(shared.index.provenances_of(&format!("{resource_type}/{id}")));
    }
    let mut out: Vec<&Value> = seen.into_iter().map(|i| &all[i]).collect();
    if resource_type == "Provenance" {
        out.retain(|p| !matches.iter().any(|m| fhir::resource_id(m) == fhir::resource_id(p)));
    }
    out
}

/// `Type?<original params, as sent, minus any old cursor>&<cursor_param>=<cursor>`.
fn next_link(resource_type: &str, raw_query: &str, cursor_param: &str, cursor: &str) -> String {
    let mut segments: Vec<&str> = raw_query
        .split('&')
        .filter(|s| !s.is_empty())
        .filter(|s| s.split_once('=').map_or(*s, |(n, _)| n) != cursor_param)
        .collect();
    let cursor_segment = format!("{cursor_param}={cursor}");
    segments.push(&cursor_segment);
    format!("{resource_type}?{}", segments.join("&"))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn decodes_strictly() {
        let pairs = decode_pairs("code=http%3A%2F%2Floinc.org%7C1234-5&name=a+b&&flag").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("code".into(), "http://loinc.org|1234-5".into()),
                ("name".into(), "a b".into()),
                ("flag".into(), String::new())
            ]
        );
        assert!(decode_pairs("code=%zz").is_err());
        assert!(decode_pairs("code=%+1").is_err());
        assert!(decode_pairs("code=%e9").is_err(), "not UTF-8");
        assert!(decode_pairs("=x").is_err());
    }

    #[test]
    fn next_link_keeps_params_and_replaces_cursor() {
        assert_eq!(
            next_link("Observation", "patient=p1&_cursor=old&_count=2", CURSOR, "abc"),
            "Observation?patient=p1&_count=2&_cursor=abc"
        );
        assert_eq!(next_link("Patient", "", CURSOR, "abc"), "Patient?_cursor=abc");
    }

    #[test]
    fn reads_prefer_and_patient_values() {
        assert_eq!(patient_id("p1").unwrap(), "p1");
        assert_eq!(patient_id("Patient/p1").unwrap(), "p1");
        assert_eq!(patient_id("http://x/fhir/Patient/p1").unwrap(), "p1");
        assert!(patient_id("Group/g1").is_err());
        assert!(is_patient_param("Provenance", "patient"));
        assert!(!is_patient_param("Provenance", "subject"));
        assert!(is_patient_param("AllergyIntolerance", "patient"));
        assert!(!is_patient_param("AllergyIntolerance", "subject"));
        assert!(is_patient_param("Observation", "subject:Patient"));
        assert!(!is_patient_param("Practitioner", "patient"));
    }
}
