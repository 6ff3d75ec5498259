//! Merging what each source returned for one person into one record: gateway ids,
//! de-duplication across sources (same business identifier, or same code + patient +
//! effective time + value), reference rewriting to gateway ids (at any depth, contained
//! resources included; a source's absolute references under its own base URL were made
//! relative when gathered, so an absolute reference left here names another server and is
//! made display-only — never resolved to this source's resource of the same id), and provenance (`meta.source`, a source `meta.tag` per system that
//! holds the item). These are the only changes made to source JSON (DESIGN.md promise 3);
//! everything else passes through untouched, unknown elements and extensions included.

use crate::fhir::{self, reference};
use ids::GatewayIds;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

mod ids;

pub use super::provenance::{gateway_resource_id, meta_source, SOURCE_TAG_SYSTEM};

/// What one source returned for the person.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub source: String,
    pub display: String,
    /// The source's own ids for this person.
    pub patient_ids: Vec<String>,
    pub resources: Vec<Value>,
}

/// A resource kept in the record: `fetched[source].resources[index]`, tagged with every
/// system holding it.
struct Kept {
    source: usize,
    index: usize,
    tags: Vec<(String, String)>,
}

/// Merges the sources' resources (sources in priority order) into the record of gateway
/// patient `patient_id`. Returns the resources, Patient first, then by type and id, plus
/// an alias map (`Type/id` of dropped duplicates → `Type/id` kept).
pub fn merge(patient_id: &str, fetched: &[Fetched]) -> (Vec<Value>, HashMap<String, String>) {
    let (merged, aliases) = merge_owned(patient_id, fetched.to_vec());
    (merged.into_iter().map(|(r, _)| r).collect(), aliases)
}

/// A merged resource with where it was in what was fetched: (source, index in its resources).
pub type Placed = (Value, (usize, usize));

/// [`merge`] of parts the caller hands over: the kept resources are moved into the record,
/// not copied. Each comes with where it was in `fetched` (source, index in its resources).
pub fn merge_owned(patient_id: &str, mut fetched: Vec<Fetched>) -> (Vec<Placed>, HashMap<String, String>) {
    let mut ids = GatewayIds::default();
    for f in &fetched {
        for pid in &f.patient_ids {
            ids.insert(&f.source, "Patient", pid, patient_id.to_string());
        }
        for r in &f.resources {
            let (Some(t), Some(id)) = (fhir::resource_type(r), fhir::resource_id(r)) else { continue };
            let gid = if t == "Patient" && f.patient_ids.iter().any(|p| p == id) {
                patient_id.to_string()
            } else {
                gateway_resource_id(&f.source, id)
            };
            ids.insert(&f.source, t, id, gid);
        }
    }

    // De-duplicate: earlier sources win; later copies become aliases and add their tag.
    let mut kept: Vec<Kept> = Vec::new();
    let mut by_key: HashMap<String, usize> = HashMap::new();
    let mut aliases: HashMap<String, String> = HashMap::new();
    for (si, f) in fetched.iter().enumerate() {
        for (ri, r) in f.resources.iter().enumerate() {
            let (Some(t), Some(id)) = (fhir::resource_type(r), fhir::resource_id(r)) else { continue };
            let gid = ids.get(&f.source, t, id).cloned().unwrap_or_default();
            let keys = duplicate_keys(r, t, &gid, patient_id, &f.source, &ids);
            let earlier = keys.iter().filter_map(|k| by_key.get(k)).copied().find(|&k| kept[k].source != si);
            let tag = (f.source.clone(), f.display.clone());
            match earlier {
                Some(k) => {
                    let kept_resource = &fetched[kept[k].source].resources[kept[k].index];
                    let kept_id = fhir::resource_id(kept_resource).unwrap_or_default().to_string();
                    let kept_gid = ids.get(&fetched[kept[k].source].source, t, &kept_id).cloned().unwrap_or_default();
                    if kept_gid != gid {
                        aliases.insert(format!("{t}/{gid}"), format!("{t}/{kept_gid}"));
                        ids.insert(&f.source, t, id, kept_gid);
                    }
                    if !kept[k].tags.contains(&tag) {
                        kept[k].tags.push(tag);
                    }
                }
                None => {
                    let k = kept.len();
                    kept.push(Kept { source: si, index: ri, tags: vec![tag] });
                    for key in keys {
                        by_key.entry(key).or_insert(k);
                    }
                }
            }
        }
    }

    // Each kept resource is taken once: a (source, index) is kept at most once.
    let mut out: Vec<(Value, (usize, usize))> = kept
        .into_iter()
        .map(|Kept { source: si, index, tags }| {
            let resource = std::mem::take(&mut fetched[si].resources[index]);
            (finish(resource, &fetched[si].source, &ids, &tags), (si, index))
        })
        .collect();
    out.sort_by_cached_key(|(r, _)| sort_key(r));
    (out, aliases)
}

/// Applies the documented rewrites to a resource from `source`: gateway id, references,
/// `meta.source` and one provenance tag per system in `tags`.
fn finish(mut r: Value, source: &str, ids: &GatewayIds, tags: &[(String, String)]) -> Value {
    let gid = ids.get(source, fhir::resource_type(&r).unwrap_or_default(), fhir::resource_id(&r).unwrap_or_default());
    r["id"] = json!(gid.cloned().unwrap_or_default());
    // Only a resource with a reference the gateway cannot serve is walked again.
    let mut unresolvable = false;
    reference::for_each_mut(&mut r, &mut |s| {
        rewrite(s, source, ids);
        unresolvable |= s == UNRESOLVABLE;
    });
    if unresolvable {
        finish_unresolvable(&mut r);
    }
    stamp_provenance(&mut r, source, tags);
    r
}

/// A supporting resource (Practitioner, Organization …) read on its own, outside any
/// record: the same rewrites, with references to other supporting resources mapped to their
/// gateway ids and anything else made display-only.
pub fn standalone(source: &str, display: &str, resource: Value) -> Option<Value> {
    let mut ids = GatewayIds::default();
    let id = fhir::resource_id(&resource)?;
    ids.insert(source, fhir::resource_type(&resource)?, id, gateway_resource_id(source, id));
    for r in reference::all(&resource) {
        if let Some((t, id)) = reference::parse_local(&r, None).filter(|(t, _)| fhir::SUPPORTING_TYPES.contains(t)) {
            ids.insert(source, t, id, gateway_resource_id(source, id));
        }
    }
    Some(finish(resource, source, &ids, &[(source.to_string(), display.to_string())]))
}

/// The order of a record: Patient first, then by type and id.
pub fn sort_key(r: &Value) -> String {
    let t = fhir::resource_type(r).unwrap_or_default();
    format!("{}{t}/{}", if t == "Patient" { "0" } else { "1" }, fhir::resource_id(r).unwrap_or_default())
}

/// Keys under which two copies of one fact coincide.
fn duplicate_keys(r: &Value, t: &str, gid: &str, patient_id: &str, source: &str, ids: &GatewayIds) -> Vec<String> {
    if t == "Patient" {
        return if gid == patient_id { vec![format!("Patient/{patient_id}")] } else { Vec::new() };
    }
    let mut keys: Vec<String> = fhir::path_values(r, "identifier")
        .into_iter()
        .filter_map(|i| Some(format!("id|{t}|{}|{}", i.get("system")?.as_str()?, i.get("value")?.as_str()?)))
        .collect();
    let subject = fhir::patient_element(t)
        .and_then(|e| fhir::path_values(r, e).into_iter().next())
        .and_then(|s| s.get("reference"))
        .and_then(Value::as_str)
        .and_then(|s| reference::parse_local(s, None))
        .and_then(|(rt, id)| ids.get(source, rt, id));
    let code = r.get("code").or_else(|| r.get("vaccineCode"));
    let when = first_with_prefix(r, "effective")
        .or_else(|| first_with_prefix(r, "occurrence"))
        .or_else(|| first_with_prefix(r, "performed"));
    if let (Some(subject), Some(code), Some(when)) = (subject, code, when) {
        let mut codings: Vec<String> = fhir::path_values(code, "coding")
            .into_iter()
            .filter_map(|c| Some(format!("{}|{}", c.get("system")?.as_str()?, c.get("code")?.as_str()?)))
            .collect();
        codings.sort();
        let value = first_with_prefix(r, "value").map(Value::to_string).unwrap_or_default();
        for coding in codings {
            keys.push(format!("content|{t}|{subject}|{coding}|{when}|{value}"));
        }
    }
    keys
}

/// The first element named `{prefix}[x]` (e.g. `effectiveDateTime`), as text.
fn first_with_prefix<'a>(r: &'a Value, prefix: &str) -> Option<&'a Value> {
    r.as_object()?
        .iter()
        .find(|(k, _)| {
            k.starts_with(prefix) && k.len() > prefix.len() && k.as_bytes()[prefix.len()].is_ascii_uppercase()
        })
        .map(|(_, v)| v)
}

/// Rewrites one reference of a resource from `source` to the gateway id it maps to.
/// References that map to nothing — absolute ones to another server included — are marked
/// for [`finish_unresolvable`].
fn rewrite(s: &mut String, source: &str, ids: &GatewayIds) {
    if s.starts_with('#') {
        return;
    }
    let target = reference::parse_local(s, None).and_then(|(t, id)| ids.get(source, t, id).map(|g| format!("{t}/{g}")));
    *s = match target {
        Some(t) => t,
        None => UNRESOLVABLE.to_string(),
    };
}

const UNRESOLVABLE: &str = "\u{0}unresolvable";

/// A reference to something the gateway cannot serve becomes display-only: `reference` is
/// removed (its `display`, `identifier` and `type` stay), so no reference in a record points
/// at a source system or at nothing.
fn finish_unresolvable(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.get("reference").and_then(Value::as_str) == Some(UNRESOLVABLE) {
                map.remove("reference");
                if !map.contains_key("display") && !map.contains_key("identifier") {
                    map.insert("display".into(), json!("(not available through this gateway)"));
                }
            }
            map.values_mut().for_each(finish_unresolvable);
        }
        Value::Array(items) => items.iter_mut().for_each(finish_unresolvable),
        _ => {}
    }
}

fn stamp_provenance(r: &mut Value, source: &str, tags: &[(String, String)]) {
    let Some(obj) = r.as_object_mut() else { return };
    let meta = obj.entry("meta").or_insert_with(|| Value::Object(Map::new()));
    let Some(meta) = meta.as_object_mut() else { return };
    meta.insert("source".into(), json!(meta_source(source)));
    let tag_list = meta.entry("tag").or_insert_with(|| json!([]));
    if let Some(list) = tag_list.as_array_mut() {
        for (code, display) in tags {
            list.push(json!({"system": SOURCE_TAG_SYSTEM, "code": code, "display": display}));
        }
    }
}

#[cfg(test)]
mod tests;
