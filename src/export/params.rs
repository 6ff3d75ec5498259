//! Kick-off parameters of Bulk Data `$export` (IG 2.0): `_outputFormat`, `_type`, `_since`,
//! `_typeFilter` and, in a POSTed Parameters resource, `patient`. Unknown or malformed
//! parameters are refused (or, under `Prefer: handling=lenient`, ignored with a warning).
//! Also the [`Selection`] a worker applies to each released resource. It never reads data.

use crate::fhir::search::{self, SearchQuery};
use crate::fhir::{self, time::parse_range};
use chrono::FixedOffset;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParamError(pub String);

fn bad(message: impl Into<String>) -> ParamError {
    ParamError(message.into())
}

/// The output formats accepted (all mean NDJSON of FHIR resources).
pub const OUTPUT_FORMATS: &[&str] = &["application/fhir+ndjson", "application/ndjson", "ndjson"];

/// The parsed, validated parameters (stored with the job as JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportParams {
    /// `_type`: only these resource types.
    pub types: Option<Vec<String>>,
    /// `_since`, as given (an instant with a zone).
    pub since: Option<String>,
    /// `_typeFilter`: (type, query) pairs; a type's resources must match one of its queries.
    pub type_filters: Vec<(String, String)>,
    /// `patient` (POST): gateway patient ids.
    pub patients: Option<Vec<String>>,
}

/// Parameters and the warnings about what was ignored.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub params: ExportParams,
    pub warnings: Vec<String>,
}

/// Parses GET query pairs, or a POSTed Parameters resource (`body`) plus any query pairs.
pub fn parse(
    pairs: &[(String, String)],
    body: Option<&Value>,
    lenient: bool,
    zone: FixedOffset,
) -> Result<Parsed, ParamError> {
    let mut all: Vec<(String, String)> = pairs.to_vec();
    let mut patients: Option<Vec<String>> = None;
    if let Some(body) = body {
        if fhir::resource_type(body) != Some("Parameters") {
            return Err(bad("the POST body must be a FHIR Parameters resource"));
        }
        for p in body.get("parameter").and_then(Value::as_array).into_iter().flatten() {
            let name = p.get("name").and_then(Value::as_str).ok_or_else(|| bad("a parameter without a name"))?;
            if name == "patient" {
                let reference = p
                    .pointer("/valueReference/reference")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("`patient` needs a valueReference with a reference (Patient/[id])"))?;
                let id = reference
                    .strip_prefix("Patient/")
                    .filter(|id| fhir::is_valid_id(id))
                    .ok_or_else(|| bad(format!("`patient`: `{reference}` is not a Patient/[id] reference")))?;
                patients.get_or_insert_with(Vec::new).push(id.to_string());
                continue;
            }
            let value = ["valueString", "valueInstant", "valueCode", "valueUri", "valueDateTime"]
                .iter()
                .find_map(|k| p.get(*k).and_then(Value::as_str))
                .ok_or_else(|| {
                    bad(format!("parameter `{name}` has no supported value (valueString, valueInstant …)"))
                })?;
            all.push((name.to_string(), value.to_string()));
        }
    }
    let mut parsed = Parsed::default();
    parsed.params.patients = patients;
    for (name, value) in &all {
        match name.as_str() {
            "_format" => {}
            "_outputFormat" => {
                if !OUTPUT_FORMATS.contains(&value.as_str()) {
                    return Err(bad(format!(
                        "_outputFormat `{value}` is not supported (application/fhir+ndjson, application/ndjson, ndjson)"
                    )));
                }
            }
            "_type" => {
                let types = parsed.params.types.get_or_insert_with(Vec::new);
                for t in value.split(',').map(str::trim) {
                    if !fhir::is_served_type(t) {
                        return Err(bad(format!("_type: `{t}` is not a resource type this server exports")));
                    }
                    if !types.iter().any(|x| x == t) {
                        types.push(t.to_string());
                    }
                }
            }
            "_since" => {
                if parsed.params.since.is_some() {
                    return Err(bad("_since is given twice"));
                }
                since_instant(value, zone)?;
                parsed.params.since = Some(value.clone());
            }
            "_typeFilter" => {
                for filter in split_type_filters(value) {
                    let (t, q) = filter
                        .split_once('?')
                        .ok_or_else(|| bad(format!("_typeFilter `{filter}` is not [type]?[search parameters]")))?;
                    type_filter_query(t, q, zone)?;
                    parsed.params.type_filters.push((t.to_string(), q.to_string()));
                }
            }
            "patient" => return Err(bad("`patient` is accepted only in a POSTed Parameters resource")),
            other if lenient => parsed.warnings.push(format!("parameter `{other}` is not supported and was ignored")),
            other => return Err(bad(format!("parameter `{other}` is not supported by $export"))),
        }
    }
    if let Some(types) = &parsed.params.types {
        if let Some((t, _)) = parsed.params.type_filters.iter().find(|(t, _)| !types.contains(t)) {
            return Err(bad(format!("_typeFilter names {t}, which _type leaves out")));
        }
    }
    Ok(parsed)
}

/// `_typeFilter` values are comma-separated; a comma inside a query (between values of one
/// parameter) does not start a new filter.
fn split_type_filters(value: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for piece in value.split(',') {
        let starts_filter = piece.split_once('?').is_some_and(|(t, _)| {
            !t.is_empty()
                && t.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && t.chars().all(|c| c.is_ascii_alphabetic())
        });
        match out.last_mut() {
            Some(last) if !starts_filter => {
                last.push(',');
                last.push_str(piece);
            }
            _ => out.push(piece.to_string()),
        }
    }
    out
}

fn since_instant(value: &str, zone: FixedOffset) -> Result<i64, ParamError> {
    if value.len() <= 10 {
        return Err(bad(format!("_since: `{value}` must be an instant with a time and zone")));
    }
    parse_range(value, zone).map(|r| r.start).ok_or_else(|| bad(format!("_since: `{value}` is not an instant")))
}

/// One `_typeFilter` query, parsed with the type's search parameters: at least one filter,
/// nothing but filters.
fn type_filter_query(t: &str, q: &str, zone: FixedOffset) -> Result<SearchQuery, ParamError> {
    if !fhir::is_served_type(t) {
        return Err(bad(format!("_typeFilter: `{t}` is not a resource type this server exports")));
    }
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(q.as_bytes()).into_owned().collect();
    let query =
        search::parse(t, &pairs, &[], false, usize::MAX, zone).map_err(|e| bad(format!("_typeFilter {t}: {e}")))?;
    if query.count.is_some() || pairs.iter().any(|(k, _)| k == "_format") {
        return Err(bad(format!("_typeFilter {t}: only search parameters are allowed")));
    }
    if query.filters.is_empty() {
        return Err(bad(format!("_typeFilter {t}: at least one search parameter is needed")));
    }
    Ok(query)
}

/// What a job takes of each released resource.
pub struct Selection {
    types: Option<Vec<String>>,
    since: Option<i64>,
    filters: BTreeMap<String, Vec<SearchQuery>>,
    zone: FixedOffset,
}

impl Selection {
    /// From stored parameters (validated at kick-off).
    pub fn new(params: &ExportParams, zone: FixedOffset) -> Result<Selection, ParamError> {
        let mut filters: BTreeMap<String, Vec<SearchQuery>> = BTreeMap::new();
        for (t, q) in &params.type_filters {
            filters.entry(t.clone()).or_default().push(type_filter_query(t, q, zone)?);
        }
        let since = params.since.as_deref().map(|s| since_instant(s, zone)).transpose()?;
        Ok(Selection { types: params.types.clone(), since, filters, zone })
    }

    /// True when `r` belongs in the export.
    pub fn selects(&self, r: &Value) -> bool {
        let Some(t) = fhir::resource_type(r) else { return false };
        if self.types.as_ref().is_some_and(|ts| !ts.iter().any(|x| x == t)) {
            return false;
        }
        if let (Some(since), Some(updated)) = (self.since, r.pointer("/meta/lastUpdated").and_then(Value::as_str)) {
            // Without meta.lastUpdated a resource cannot be shown to be older: it is included
            // (as $everything does).
            if parse_range(updated, self.zone).is_some_and(|u| u.start < since) {
                return false;
            }
        }
        match self.filters.get(t) {
            None => true,
            Some(queries) => queries.iter().any(|q| q.filters.iter().all(|f| search::matches(r, f, self.zone))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn utc() -> FixedOffset {
        FixedOffset::east_opt(0).unwrap()
    }

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parameters_parse_and_refuse_clearly() {
        let ok = parse(
            &p(&[
                ("_outputFormat", "application/fhir+ndjson"),
                ("_type", "Observation,Condition"),
                ("_since", "2025-01-01T00:00:00Z"),
                (
                    "_typeFilter",
                    "Observation?category=laboratory,vital-signs&status=final,Condition?clinical-status=active",
                ),
            ]),
            None,
            false,
            utc(),
        )
        .unwrap();
        assert_eq!(ok.params.types, Some(vec!["Observation".to_string(), "Condition".to_string()]));
        assert_eq!(
            ok.params.type_filters,
            vec![
                ("Observation".to_string(), "category=laboratory,vital-signs&status=final".to_string()),
                ("Condition".to_string(), "clinical-status=active".to_string())
            ]
        );
        for (pairs, needle) in [
            (p(&[("_outputFormat", "text/csv")]), "_outputFormat"),
            (p(&[("_type", "Spaceship")]), "Spaceship"),
            (p(&[("_since", "2025-01-01")]), "_since"),
            (p(&[("_since", "yesterday at noon")]), "_since"),
            (p(&[("_typeFilter", "Observation")]), "_typeFilter"),
            (p(&[("_typeFilter", "Observation?")]), "at least one"),
            (p(&[("_typeFilter", "Observation?colour=blue")]), "colour"),
            (p(&[("_typeFilter", "Observation?_count=3&code=x")]), "only search"),
            (p(&[("_type", "Condition"), ("_typeFilter", "Observation?code=x")]), "leaves out"),
            (p(&[("_elements", "id")]), "_elements"),
            (p(&[("patient", "Patient/x")]), "POST"),
        ] {
            let e = parse(&pairs, None, false, utc()).unwrap_err();
            assert!(e.0.contains(needle), "{pairs:?}: {e}");
        }
        let lenient = parse(&p(&[("_elements", "id")]), None, true, utc()).unwrap();
        assert_eq!(lenient.warnings.len(), 1);
        // Malformed values stay errors under lenient handling.
        assert!(parse(&p(&[("_outputFormat", "csv")]), None, true, utc()).is_err());
    }

    #[test]
    fn a_posted_parameters_resource_names_patients() {
        let body = json!({"resourceType": "Parameters", "parameter": [
            {"name": "_type", "valueString": "Patient"},
            {"name": "patient", "valueReference": {"reference": "Patient/pt-1"}},
            {"name": "patient", "valueReference": {"reference": "Patient/pt-2"}}
        ]});
        let parsed = parse(&[], Some(&body), false, utc()).unwrap();
        assert_eq!(parsed.params.patients, Some(vec!["pt-1".to_string(), "pt-2".to_string()]));
        assert_eq!(parsed.params.types, Some(vec!["Patient".to_string()]));
        let bad_ref = json!({"resourceType": "Parameters", "parameter": [{"name": "patient", "valueReference": {"reference": "Group/x"}}]});
        assert!(parse(&[], Some(&bad_ref), false, utc()).is_err());
        assert!(parse(&[], Some(&json!({"resourceType": "Patient"})), false, utc()).is_err());
    }

    #[test]
    fn selection_applies_type_since_and_filters() {
        let params = ExportParams {
            types: Some(vec!["Observation".into(), "Condition".into()]),
            since: Some("2025-06-01T00:00:00Z".into()),
            type_filters: vec![("Observation".into(), "category=laboratory".into())],
            patients: None,
        };
        let s = Selection::new(&params, utc()).unwrap();
        let lab = |updated: &str| json!({"resourceType": "Observation", "meta": {"lastUpdated": updated}, "category": [{"coding": [{"code": "laboratory"}]}]});
        assert!(s.selects(&lab("2025-07-01T00:00:00Z")));
        assert!(!s.selects(&lab("2025-05-01T00:00:00Z")), "before _since");
        assert!(
            !s.selects(&json!({"resourceType": "Observation", "category": [{"coding": [{"code": "vital-signs"}]}]}))
        );
        assert!(s.selects(&json!({"resourceType": "Condition"})), "no filter on Condition; no lastUpdated");
        assert!(!s.selects(&json!({"resourceType": "Patient"})), "not in _type");
    }
}
