//! `Patient/{id}/$everything` as the simulated hospital answers it (when offered): the
//! Patient, every resource of its compartment (the same index patient searches use) and the
//! resources those point at of the types a client reads by reference (Practitioner,
//! Organization, Medication, Device …, followed until nothing new is found), in a stable
//! order by `Type/id`, keyset-paged with `_cursor` like searches. Pure over the store: it
//! never changes a resource and never logs query values.

use super::search::{bad, decode_pairs, page_bundle, Refusal};
use super::Shared;
use crate::fhir;
use crate::fhir::bundle::{decode_cursor, page_after};
use crate::fhir::model::codes::{IssueType, SearchEntryMode};
use crate::fhir::outcome::Issue;
use crate::fhir::reference;
use axum::http::StatusCode;
use serde_json::Value;
use std::collections::BTreeMap;

/// One page of `patient_id`'s `$everything`. `raw_query` is the query string as received:
/// `_count` and `_cursor` are understood, anything else is refused.
pub(super) fn run(shared: &Shared, patient_id: &str, raw_query: &str) -> Result<Vec<u8>, Refusal> {
    let page_size = shared.options.page_size;
    let mut count = page_size;
    let mut after = None;
    let cursor_param = shared.options.cursor_param();
    for (name, value) in decode_pairs(raw_query).map_err(bad)? {
        match name.as_str() {
            "_count" => {
                let n: usize = value.parse().map_err(|_| bad("`_count` is not a non-negative whole number"))?;
                count = n.min(page_size);
            }
            n if n == cursor_param => {
                let cursor =
                    decode_cursor(&value).ok_or_else(|| bad("`_cursor` is not a cursor this server issued"))?;
                after = Some(cursor);
            }
            "_format" => {}
            other => return Err(bad(format!("`{other}` is not supported on $everything here"))),
        }
    }
    let Some(patient) = shared.store.get("Patient", patient_id) else {
        return Err((
            StatusCode::NOT_FOUND,
            Issue::error(IssueType::NotFound, format!("Patient/{patient_id} is not known")),
        ));
    };

    // `Type/id` → (resource, mode): the compartment as matches, what it points at as includes.
    let mut members: BTreeMap<String, (&Value, SearchEntryMode)> = BTreeMap::new();
    members.insert(format!("Patient/{patient_id}"), (patient, SearchEntryMode::Match));
    for t in fhir::compartment::type_names() {
        let all = shared.store.of_type(t);
        for i in shared.index.positions(t, patient_id) {
            if let Some(id) = fhir::resource_id(&all[i]) {
                members.insert(format!("{t}/{id}"), (&all[i], SearchEntryMode::Match));
            }
        }
    }
    let mut frontier: Vec<&Value> = members.values().map(|(r, _)| *r).collect();
    while !frontier.is_empty() {
        let mut found = Vec::new();
        for r in frontier {
            for s in reference::all(r) {
                let Some((t, id)) = reference::parse(&s) else { continue };
                if !fhir::REFERENCED_TYPES.contains(&t) || members.contains_key(&format!("{t}/{id}")) {
                    continue;
                }
                if let Some(target) = shared.store.get(t, id) {
                    members.insert(format!("{t}/{id}"), (target, SearchEntryMode::Include));
                    found.push(target);
                }
            }
        }
        frontier = found;
    }

    let total = members.len();
    let all: Vec<(String, (&Value, SearchEntryMode))> = members.into_iter().collect();
    let page = page_after(all, |(key, _)| key.clone(), after.as_deref(), count);
    let base = &shared.base_url;
    let operation = format!("Patient/{patient_id}/$everything");
    let entries = page.items.into_iter().map(|(key, (r, mode))| (format!("{base}/{key}"), r, mode)).collect::<Vec<_>>();
    Ok(page_bundle(shared, &operation, raw_query, page.next.as_deref(), total, entries))
}
