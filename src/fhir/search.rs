//! FHIR search parameters on raw JSON: which parameters each type supports, parsing a
//! query string into [`Filter`]s (unknown or malformed parameters are errors unless the
//! caller asked for lenient handling), and matching a resource against a filter.
//! Repeated parameters AND together; comma-separated values OR together. `_include` and
//! `_revinclude` are parsed here too ([`include`]); `_summary` and `_elements` are read by
//! [`subset`]; both from the facts of R4 in [`r4`].

pub mod include;
pub mod r4;
pub mod subset;

use super::time::{parse_range, value_range, DateRange};
use chrono::FixedOffset;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Token,
    Date,
    Text,
    Reference,
}

/// A supported search parameter of one resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamDef {
    pub name: &'static str,
    pub kind: ParamKind,
    pub paths: &'static [&'static str],
}

const fn def(name: &'static str, kind: ParamKind, paths: &'static [&'static str]) -> ParamDef {
    ParamDef { name, kind, paths }
}

use ParamKind::*;

const COMMON: &[ParamDef] = &[def("_id", Token, &["id"]), def("_lastUpdated", Date, &["meta.lastUpdated"])];

const TYPE_PARAMS: &[(&str, &[ParamDef])] = &[
    (
        "Patient",
        &[
            def("identifier", Token, &["identifier"]),
            def("family", Text, &["name.family"]),
            def("given", Text, &["name.given"]),
            def("name", Text, &["name.family", "name.given", "name.text"]),
            def("birthdate", Date, &["birthDate"]),
            def("gender", Token, &["gender"]),
        ],
    ),
    (
        "Observation",
        &[
            def("category", Token, &["category"]),
            def("code", Token, &["code"]),
            def("date", Date, &["effectiveDateTime", "effectivePeriod", "effectiveInstant"]),
            def("status", Token, &["status"]),
        ],
    ),
    (
        "Condition",
        &[
            def("category", Token, &["category"]),
            def("code", Token, &["code"]),
            def("clinical-status", Token, &["clinicalStatus"]),
            def("onset-date", Date, &["onsetDateTime", "onsetPeriod"]),
        ],
    ),
    (
        "DiagnosticReport",
        &[
            def("category", Token, &["category"]),
            def("code", Token, &["code"]),
            def("date", Date, &["effectiveDateTime", "effectivePeriod"]),
            def("status", Token, &["status"]),
        ],
    ),
    (
        "DocumentReference",
        &[
            def("category", Token, &["category"]),
            def("type", Token, &["type"]),
            def("date", Date, &["date"]),
            def("status", Token, &["status"]),
        ],
    ),
    (
        "Encounter",
        &[
            def("class", Token, &["class"]),
            def("type", Token, &["type"]),
            def("date", Date, &["period"]),
            def("status", Token, &["status"]),
        ],
    ),
    (
        "MedicationRequest",
        &[
            def("category", Token, &["category"]),
            def("code", Token, &["medicationCodeableConcept"]),
            def("authoredon", Date, &["authoredOn"]),
            def("intent", Token, &["intent"]),
            def("status", Token, &["status"]),
        ],
    ),
    ("AllergyIntolerance", &[def("clinical-status", Token, &["clinicalStatus"]), def("code", Token, &["code"])]),
    (
        "Immunization",
        &[
            def("date", Date, &["occurrenceDateTime"]),
            def("status", Token, &["status"]),
            def("vaccine-code", Token, &["vaccineCode"]),
        ],
    ),
    (
        "Procedure",
        &[
            def("code", Token, &["code"]),
            def("date", Date, &["performedDateTime", "performedPeriod"]),
            def("status", Token, &["status"]),
        ],
    ),
    (
        "CarePlan",
        &[def("category", Token, &["category"]), def("date", Date, &["period"]), def("status", Token, &["status"])],
    ),
    ("CareTeam", &[def("status", Token, &["status"])]),
    ("Goal", &[def("lifecycle-status", Token, &["lifecycleStatus"])]),
    (
        "Practitioner",
        &[def("identifier", Token, &["identifier"]), def("name", Text, &["name.family", "name.given", "name.text"])],
    ),
    ("Organization", &[def("identifier", Token, &["identifier"]), def("name", Text, &["name"])]),
    ("Location", &[def("identifier", Token, &["identifier"]), def("name", Text, &["name"])]),
];

/// Per type, the hand-written parameters above, then the R4 date/code/category/status/
/// reason-code parameters of the Patient compartment table ([`super::compartment`]) that
/// the hand-written ones do not already name.
static ALL_TYPE_PARAMS: std::sync::LazyLock<std::collections::BTreeMap<&'static str, Vec<ParamDef>>> =
    std::sync::LazyLock::new(|| {
        let mut all: std::collections::BTreeMap<&'static str, Vec<ParamDef>> =
            TYPE_PARAMS.iter().map(|(t, d)| (*t, d.to_vec())).collect();
        for t in super::compartment::types() {
            let defs = all.entry(t.resource_type).or_default();
            for p in &t.params {
                if !defs.iter().any(|d| d.name == p.name) {
                    defs.push(*p);
                }
            }
        }
        all
    });

/// The parameters a type supports beyond `_id`, `_lastUpdated` and its patient reference.
pub fn type_params(resource_type: &str) -> &'static [ParamDef] {
    ALL_TYPE_PARAMS.get(resource_type).map_or(&[], Vec::as_slice)
}

/// Looks up a parameter of a type, including `_id`, `_lastUpdated` and the patient
/// reference: `patient` on every type of the Patient compartment, the type's own
/// compartment search parameter (`actor`, `subject` …) and `subject` where that is the
/// element that names the patient.
pub fn definition(resource_type: &str, name: &str) -> Option<ParamDef> {
    if let Some(d) = COMMON.iter().find(|d| d.name == name) {
        return Some(*d);
    }
    if let Some(d) = type_params(resource_type).iter().find(|d| d.name == name) {
        return Some(*d);
    }
    if resource_type == "Provenance" && name == "patient" {
        // Provenance.target.where(resolve() is Patient); in a record, every Provenance is
        // about the record's patient or one of their resources.
        return Some(def("patient", Reference, &["target"]));
    }
    let t = super::compartment::get(resource_type)?;
    let known = ["patient", t.search].into_iter().chain((t.paths.as_slice() == ["subject"]).then_some("subject"));
    let name = known.into_iter().find(|k| *k == name)?;
    Some(def(name, Reference, t.paths.as_slice()))
}

/// One parsed search parameter occurrence: the values OR together.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub def: ParamDef,
    pub modifier: Option<String>,
    pub values: Vec<String>,
}

/// A parsed query: filters, the page size asked for, and the result-control parameters the
/// caller allowed (e.g. `_cursor`, `_type`, `_since`) with their raw values.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub filters: Vec<Filter>,
    pub count: Option<usize>,
    pub controls: Vec<(String, String)>,
    /// Parameters ignored under `Prefer: handling=lenient`.
    pub ignored: Vec<String>,
    /// `_include` and `_revinclude`, when the caller allowed them.
    pub includes: Vec<include::Include>,
}

impl SearchQuery {
    pub fn control(&self, name: &str) -> Option<&str> {
        self.controls.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    /// Every value of a control, in query order.
    pub fn controls_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.controls.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    /// The subset (`_summary`, `_elements`) asked for, for resources of `resource_type`.
    pub fn subset(&self, resource_type: &str) -> Result<subset::Subset, SearchError> {
        let summary: Vec<&str> = self.controls_named("_summary").collect();
        let elements: Vec<&str> = self.controls_named("_elements").collect();
        subset::Subset::parse(resource_type, &summary, &elements)
    }
    /// The filters on one parameter name.
    pub fn filters_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Filter> + 'a {
        self.filters.iter().filter(move |f| f.def.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    #[error("unknown search parameter `{param}` for {resource_type}")]
    UnknownParameter { resource_type: String, param: String },
    #[error("unsupported modifier `{modifier}` on `{param}`")]
    UnsupportedModifier { param: String, modifier: String },
    #[error("invalid value for `{param}`: {message}")]
    BadValue { param: String, message: String },
}

/// True when the `Prefer` header values ask for lenient handling of unknown parameters
/// (`handling=lenient`, spaces around `=` allowed as RFC 7240 does).
pub fn prefers_lenient<'a>(prefer_headers: impl IntoIterator<Item = &'a str>) -> bool {
    prefer_headers.into_iter().flat_map(|v| v.split([',', ';'])).any(|pref| {
        pref.split_once('=')
            .is_some_and(|(k, v)| k.trim().eq_ignore_ascii_case("handling") && v.trim().eq_ignore_ascii_case("lenient"))
    })
}

/// Parameters that are never filters and that every search accepts.
const ALWAYS_ALLOWED: &[&str] = &["_format"];

/// Parses query pairs for a search on `resource_type`. `controls` names the result
/// parameters this endpoint understands besides `_count`; anything else unknown is an
/// error, or ignored (and listed) when `lenient`. `_include` and `_revinclude` among the
/// controls are parsed into [`SearchQuery::includes`] (modifier `:iterate` kept).
pub fn parse(
    resource_type: &str,
    pairs: &[(String, String)],
    controls: &[&str],
    lenient: bool,
    max_count: usize,
    zone: FixedOffset,
) -> Result<SearchQuery, SearchError> {
    let mut q = SearchQuery::default();
    for (raw_name, raw_value) in pairs {
        let (name, modifier) = match raw_name.split_once(':') {
            Some((n, m)) => (n, Some(m.to_string())),
            None => (raw_name.as_str(), None),
        };
        if ALWAYS_ALLOWED.contains(&name) {
            continue;
        }
        if name == "_count" {
            let n: usize = raw_value.parse().map_err(|_| SearchError::BadValue {
                param: "_count".into(),
                message: format!("`{raw_value}` is not a non-negative whole number"),
            })?;
            q.count = Some(n.min(max_count));
            continue;
        }
        if (name == "_include" || name == "_revinclude") && controls.contains(&name) {
            q.includes.push(include::Include::parse(name, modifier.as_deref(), raw_value, resource_type)?);
            continue;
        }
        if controls.contains(&name) {
            q.controls.push((name.to_string(), raw_value.clone()));
            continue;
        }
        let Some(def) = definition(resource_type, name) else {
            if lenient {
                q.ignored.push(raw_name.clone());
                continue;
            }
            return Err(SearchError::UnknownParameter { resource_type: resource_type.into(), param: raw_name.clone() });
        };
        let modifier_ok = match (&modifier, def.kind) {
            (None, _) => true,
            (Some(m), Text) => m == "exact" || m == "contains",
            (Some(m), Reference) => m == "Patient",
            _ => false,
        };
        if !modifier_ok {
            return Err(SearchError::UnsupportedModifier {
                param: name.into(),
                modifier: modifier.unwrap_or_default(),
            });
        }
        let values: Vec<String> = raw_value.split(',').map(str::to_string).collect();
        if values.iter().any(std::string::String::is_empty) {
            return Err(SearchError::BadValue { param: name.into(), message: "empty value".into() });
        }
        if def.kind == Date {
            for v in &values {
                parse_date_value(v, zone).ok_or_else(|| SearchError::BadValue {
                    param: name.into(),
                    message: format!("`{v}` is not a FHIR date with an optional prefix (eq, ne, gt, lt, ge, le)"),
                })?;
            }
        }
        q.filters.push(Filter { def, modifier, values });
    }
    Ok(q)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
}

fn parse_date_value(v: &str, zone: FixedOffset) -> Option<(Prefix, DateRange)> {
    let prefixes = [
        ("eq", Prefix::Eq),
        ("ne", Prefix::Ne),
        ("gt", Prefix::Gt),
        ("lt", Prefix::Lt),
        ("ge", Prefix::Ge),
        ("le", Prefix::Le),
    ];
    let (prefix, rest) = prefixes
        .iter()
        .find(|(p, _)| v.starts_with(p))
        .map(|(p, pre)| (*pre, &v[p.len()..]))
        .unwrap_or((Prefix::Eq, v));
    Some((prefix, parse_range(rest, zone)?))
}

/// True when `resource` satisfies the filter (any value of it).
pub fn matches(resource: &Value, filter: &Filter, zone: FixedOffset) -> bool {
    let targets: Vec<&Value> = filter.def.paths.iter().flat_map(|p| super::path_values(resource, p)).collect();
    filter.values.iter().any(|v| match filter.def.kind {
        Token => targets.iter().any(|t| token_matches(t, v)),
        Date => match parse_date_value(v, zone) {
            Some((prefix, want)) => {
                targets.iter().filter_map(|t| value_range(t, zone)).any(|have| date_matches(prefix, want, have))
            }
            None => false,
        },
        Text => targets.iter().filter_map(|t| t.as_str()).any(|t| string_matches(t, v, filter.modifier.as_deref())),
        Reference => {
            let want = v.rsplit('/').next().unwrap_or(v);
            targets
                .iter()
                .filter_map(|t| t.get("reference").and_then(Value::as_str))
                .filter_map(super::reference::parse)
                .any(|(t, id)| t == "Patient" && id == want)
        }
    })
}

fn token_matches(target: &Value, want: &str) -> bool {
    let (system, code) = match want.split_once('|') {
        Some((s, c)) => (Some(s), c),
        None => (None, want),
    };
    let pair_matches = |sys: Option<&str>, value: Option<&str>| {
        let system_ok = match system {
            None => true,
            Some("") => sys.is_none(),
            Some(s) => sys == Some(s),
        };
        system_ok && (code.is_empty() || value == Some(code))
    };
    match target {
        Value::String(s) => system.is_none() && s == code,
        Value::Bool(b) => system.is_none() && b.to_string() == code,
        Value::Object(o) => {
            if let Some(Value::Array(codings)) = o.get("coding") {
                return codings.iter().any(|c| {
                    pair_matches(c.get("system").and_then(Value::as_str), c.get("code").and_then(Value::as_str))
                });
            }
            let value = o.get("code").or_else(|| o.get("value")).and_then(Value::as_str);
            pair_matches(o.get("system").and_then(Value::as_str), value)
        }
        _ => false,
    }
}

fn date_matches(prefix: Prefix, want: DateRange, have: DateRange) -> bool {
    match prefix {
        Prefix::Eq => have.start >= want.start && have.end <= want.end,
        Prefix::Ne => !(have.start >= want.start && have.end <= want.end),
        Prefix::Gt => have.end > want.end,
        Prefix::Lt => have.start < want.start,
        Prefix::Ge => have.end > want.start,
        Prefix::Le => have.start < want.end,
    }
}

fn fold(s: &str) -> String {
    s.to_lowercase()
}

fn string_matches(target: &str, want: &str, modifier: Option<&str>) -> bool {
    match modifier {
        Some("exact") => target == want,
        Some("contains") => fold(target).contains(&fold(want)),
        _ => fold(target).starts_with(&fold(want)),
    }
}

#[cfg(test)]
mod tests;
