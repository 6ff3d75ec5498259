//! The parts of a search answer that are not about access: which patient a search names,
//! paging in record order, and the warnings an answer carries.

use super::released::{Out, Rendered};
use super::{Matches, ReadError, Visible};
use crate::aggregate::merge::sort_key;
use crate::aggregate::MissingSource;
use crate::fhir;
use crate::fhir::bundle::{decode_cursor, page_after};
use crate::fhir::model::codes::IssueType;
use crate::fhir::outcome::Issue;
use crate::fhir::search::subset::Subset;
use crate::fhir::search::{self, SearchQuery};
use serde_json::Value;
use std::sync::Arc;

use super::Paging;

/// The one patient a parsed search is about.
pub(super) fn patient_of_search(resource_type: &str, query: &SearchQuery) -> Result<String, ReadError> {
    if resource_type == "Patient" {
        let ids: Vec<&str> = query.filters_named("_id").flat_map(|f| f.values.iter().map(String::as_str)).collect();
        return match ids.as_slice() {
            [one] => Ok(one.to_string()),
            _ => Err(ReadError::BadRequest("Patient search needs exactly one _id".into())),
        };
    }
    if fhir::patient_element(resource_type).is_none() && resource_type != "Provenance" {
        return Err(ReadError::BadRequest(format!(
            "{resource_type} is read by id (GET {resource_type}/[id]), not searched"
        )));
    }
    let values: Vec<&str> = query
        .filters
        .iter()
        .filter(|f| f.def.kind == search::ParamKind::Reference)
        .flat_map(|f| f.values.iter().map(String::as_str))
        .collect();
    match values.as_slice() {
        [one] => Ok(one.strip_prefix("Patient/").unwrap_or(one).to_string()),
        [] => Err(ReadError::BadRequest(format!("a {resource_type} search must name one patient (patient=[id])"))),
        _ => Err(ReadError::BadRequest("a search names exactly one patient".into())),
    }
}

/// Checks the result parameters a search accepts besides paging: `_total` (`none`,
/// `estimate`, `accurate`: the total is always counted exactly, which each allows), and
/// `_summary`/`_elements` (what each resource carries; `_summary=count`: the total and no
/// entries).
pub(super) fn result_controls(resource_type: &str, query: &SearchQuery) -> Result<Subset, ReadError> {
    if let Some(t) = query.control("_total") {
        if !["none", "estimate", "accurate"].contains(&t) {
            return Err(ReadError::BadRequest(format!("_total must be none, estimate or accurate, not `{t}`")));
        }
    }
    Ok(query.subset(resource_type)?)
}

/// The patient a search's raw parameters name (`patient`, `subject`, or a Patient `_id`),
/// for the access log, even when the search itself is refused.
pub fn searched_patient(resource_type: &str, pairs: &[(String, String)]) -> Option<String> {
    let wanted: &[&str] = if resource_type == "Patient" { &["_id"] } else { &["patient", "subject"] };
    pairs
        .iter()
        .find(|(k, _)| wanted.contains(&k.split(':').next().unwrap_or("")))
        .map(|(_, v)| v.trim_start_matches("Patient/").to_string())
        // A value that is no id names no one (and a NUL byte must not reach the access log:
        // PostgreSQL refuses it in text).
        .filter(|id| crate::fhir::is_valid_id(id))
}

/// One page of `selected` (positions among `v`'s released resources, in record order, each
/// with the resource to order it by, finished or not) after the query's cursor, with the
/// warnings and notices the answer carries.
pub(super) fn page(
    v: &Visible,
    selected: Vec<(usize, &Value)>,
    query: &SearchQuery,
    paging: Paging,
    rendered: Option<&Arc<Rendered>>,
) -> Result<Matches, ReadError> {
    let after = match query.control("_cursor") {
        Some(c) => Some(
            decode_cursor(c).ok_or_else(|| ReadError::BadRequest("_cursor is not one this server issued".into()))?,
        ),
        None => None,
    };
    let total = selected.len();
    let count = query.count.unwrap_or(paging.default_count);
    let page = page_after(selected, |(_, r)| sort_key(r), after.as_deref(), count);
    let mut warnings = ignored(query);
    warnings.extend(v.missing.iter().map(missing_warning));
    warnings.extend(v.released.notices().iter().cloned());
    // Without a rendering, each resource of the page is finished now (a copy), and only
    // those: `selected` may hold them as the record has them.
    let resources = page
        .items
        .into_iter()
        .filter_map(|(i, _)| match rendered {
            Some(rendered) => Some(Out::rendered(rendered, i)),
            None => v.released.one(i).map(Out::value),
        })
        .collect();
    Ok(Matches { resources, included: Vec::new(), total, next_cursor: page.next, warnings })
}

/// The warning an answer carries for a source missing from the record.
pub fn missing_warning(m: &MissingSource) -> Issue {
    Issue::warning(
        IssueType::Incomplete,
        format!("Results from {} may be missing: the system {}.", m.display, m.reason),
    )
}

pub(super) fn ignored(query: &SearchQuery) -> Vec<Issue> {
    query
        .ignored
        .iter()
        .map(|p| {
            Issue::warning(IssueType::NotSupported, format!("search parameter `{p}` is not supported and was ignored"))
        })
        .collect()
}
