//! Plain words from raw FHIR JSON for the portal's view models: the text of a coded
//! concept, people's names, dates as people read them, quantities, and which hospital
//! system an item came from (its provenance tags). It reads only the elements it is given
//! and never decides what may be shown — everything it sees was already released.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use std::collections::HashMap;

/// The words of a CodeableConcept: its text, else the first coding's display, else its code.
pub fn concept(cc: Option<&Value>) -> Option<String> {
    let cc = cc?;
    if let Some(t) = cc.get("text").and_then(Value::as_str).filter(|t| !t.trim().is_empty()) {
        return Some(t.to_string());
    }
    let codings = cc.get("coding").and_then(Value::as_array)?;
    codings
        .iter()
        .find_map(|c| c.get("display").and_then(Value::as_str))
        .or_else(|| codings.iter().find_map(|c| c.get("code").and_then(Value::as_str)))
        .map(str::to_string)
}

/// The words of the first concept of a list of CodeableConcepts (`category`, `type` …).
pub fn first_concept(list: Option<&Value>) -> Option<String> {
    list.and_then(Value::as_array).and_then(|l| l.iter().find_map(|c| concept(Some(c))))
}

/// Every code (`system|code`) of a CodeableConcept.
pub fn codes(cc: Option<&Value>) -> Vec<String> {
    cc.and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let code = c.get("code").and_then(Value::as_str)?;
            Some(format!("{}|{code}", c.get("system").and_then(Value::as_str).unwrap_or("")))
        })
        .collect()
}

/// A string element.
pub fn text(r: &Value, key: &str) -> Option<String> {
    r.get(key).and_then(Value::as_str).filter(|s| !s.trim().is_empty()).map(str::to_string)
}

/// A person's name as people write it: first given name and family name (a HumanName list).
pub fn person_name(r: &Value) -> Option<String> {
    let names = r.get("name").and_then(Value::as_array)?;
    let name = names.iter().find(|n| n.get("use").and_then(Value::as_str) == Some("official")).or(names.first())?;
    if let Some(t) = name.get("text").and_then(Value::as_str) {
        return Some(t.to_string());
    }
    let prefix = name.get("prefix").and_then(|p| p.get(0)).and_then(Value::as_str).unwrap_or("");
    let given = name.get("given").and_then(|g| g.get(0)).and_then(Value::as_str).unwrap_or("");
    let family = name.get("family").and_then(Value::as_str).unwrap_or("");
    let suffix = name.get("suffix").and_then(|s| s.get(0)).and_then(Value::as_str).unwrap_or("");
    let full = [prefix, given, family].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join(" ");
    let full = if suffix.is_empty() || full.is_empty() { full } else { format!("{full}, {suffix}") };
    (!full.is_empty()).then_some(full)
}

/// The name of a Practitioner, Patient, RelatedPerson (a person) or Organization, Location
/// (a `name` string).
pub fn name_of(r: &Value) -> Option<String> {
    match r.get("name") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(_)) => person_name(r),
        _ => None,
    }
}

/// The first phone number among a resource's `telecom`.
pub fn phone(r: &Value) -> Option<String> {
    r.get("telecom").and_then(Value::as_array)?.iter().find_map(|t| {
        (t.get("system").and_then(Value::as_str) == Some("phone"))
            .then(|| t.get("value")?.as_str().map(str::to_string))?
    })
}

/// A FHIR date, dateTime or instant as people read it, in the language of the request:
/// "Mar 14, 2025" / "14 mar 2025" (the date as written, in the zone it was written in);
/// partial dates as "March 2025" / "marzo de 2025", or "2025".
pub fn date(value: &str) -> String {
    let lang = crate::i18n::current();
    if let Ok(d) = DateTime::parse_from_rfc3339(value) {
        return crate::i18n::day(lang, d.date_naive());
    }
    if let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return crate::i18n::day(lang, d);
    }
    if let Ok(d) = NaiveDate::parse_from_str(&format!("{value}-01"), "%Y-%m-%d") {
        return crate::i18n::month(lang, d);
    }
    value.to_string()
}

/// Like [`date`], with the time of day when the value has one: "Mar 14, 2025, 9:00 AM" /
/// "14 mar 2025, 09:00".
pub fn date_time(value: &str) -> String {
    match DateTime::parse_from_rfc3339(value) {
        Ok(d) => crate::i18n::day_time(crate::i18n::current(), &d),
        Err(_) => date(value),
    }
}

/// The instant a FHIR date or dateTime starts at (dates at midnight UTC), for comparing.
pub fn instant(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(d) = DateTime::parse_from_rfc3339(value) {
        return Some(d.with_timezone(&Utc));
    }
    let padded = match value.len() {
        4 => format!("{value}-01-01"),
        7 => format!("{value}-01"),
        _ => value.to_string(),
    };
    NaiveDate::parse_from_str(&padded, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|d| d.and_utc())
}

/// A number as people write it: no trailing ".0".
pub fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// A Quantity: "7.2 %", "< 7 %".
pub fn quantity(q: &Value) -> Option<String> {
    let value = q.get("value").and_then(Value::as_f64)?;
    let comparator = q.get("comparator").and_then(Value::as_str).map(|c| format!("{c} ")).unwrap_or_default();
    let unit = q.get("unit").or_else(|| q.get("code")).and_then(Value::as_str).unwrap_or("");
    Some(format!("{comparator}{} {unit}", number(value)).trim().to_string())
}

/// The hospital systems an item came from: the display of each provenance tag, else the
/// name in `meta.source`.
pub fn sources(r: &Value) -> Vec<String> {
    crate::aggregate::provenance::holder_names(r)
}

/// The released resources by `Type/id`, for following references.
pub struct Lookup<'a> {
    by_key: HashMap<String, &'a Value>,
}

impl<'a> Lookup<'a> {
    pub fn new(resources: &'a [Value]) -> Lookup<'a> {
        let by_key = resources
            .iter()
            .filter_map(|r| Some((format!("{}/{}", r.get("resourceType")?.as_str()?, r.get("id")?.as_str()?), r)))
            .collect();
        Lookup { by_key }
    }

    /// The resource a Reference points at, when it is in the released record.
    pub fn resolve(&self, reference: &Value) -> Option<&'a Value> {
        let key = reference.get("reference").and_then(Value::as_str)?;
        self.by_key.get(key).copied()
    }

    /// The name behind a Reference: the named resource's name, else the reference's display.
    pub fn name(&self, reference: &Value) -> Option<String> {
        self.resolve(reference).and_then(name_of).or_else(|| text(reference, "display"))
    }

    /// The words for a Reference to a clinical item (a Condition's name …).
    pub fn concept_of(&self, reference: &Value) -> Option<String> {
        self.resolve(reference).and_then(|r| concept(r.get("code"))).or_else(|| text(reference, "display"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::provenance::SOURCE_TAG_SYSTEM;
    use serde_json::json;

    #[test]
    fn words_from_concepts_names_dates_and_quantities() {
        assert_eq!(concept(Some(&json!({"coding": [{"code": "x", "display": "Penicillin"}]}))).unwrap(), "Penicillin");
        assert_eq!(concept(Some(&json!({"text": "Peanut", "coding": [{"display": "Arachis"}]}))).unwrap(), "Peanut");
        assert_eq!(concept(Some(&json!({"coding": [{"code": "I10"}]}))).unwrap(), "I10");
        assert_eq!(concept(Some(&json!({}))), None);
        let p = json!({"name": [{"use": "usual", "given": ["Bob"]}, {"use": "official", "family": "Martinez", "given": ["Robert", "James"], "prefix": ["Dr."]}]});
        assert_eq!(person_name(&p).unwrap(), "Dr. Robert Martinez");
        assert_eq!(name_of(&json!({"name": "Harbor General Hospital"})).unwrap(), "Harbor General Hospital");
        assert_eq!(date("2025-03-14T09:00:00-07:00"), "Mar 14, 2025");
        assert_eq!(date("2025-03-04"), "Mar 4, 2025");
        assert_eq!(date("2025-03"), "March 2025");
        assert_eq!(date("2025"), "2025");
        assert_eq!(date_time("2025-03-14T15:05:00-07:00"), "Mar 14, 2025, 3:05 PM");
        assert_eq!(instant("2025-03-14").unwrap().to_rfc3339(), "2025-03-14T00:00:00+00:00");
        assert_eq!(instant("2025-03-14T09:00:00-07:00").unwrap().to_rfc3339(), "2025-03-14T16:00:00+00:00");
        assert_eq!(quantity(&json!({"value": 7.0, "comparator": "<", "unit": "%"})).unwrap(), "< 7 %");
        assert_eq!(quantity(&json!({"value": 6.8, "code": "mmol/L"})).unwrap(), "6.8 mmol/L");
        assert_eq!(number(148.0), "148");
        assert_eq!(number(0.25), "0.25");
    }

    #[test]
    fn sources_come_from_the_provenance_tags() {
        let r = json!({"meta": {"source": "urn:portico:source:lab", "tag": [
            {"system": SOURCE_TAG_SYSTEM, "code": "lab", "display": "Bayview Regional Reference Lab"},
            {"system": "http://other", "code": "x", "display": "not a source"},
            {"system": SOURCE_TAG_SYSTEM, "code": "ehr", "display": "Harbor General Hospital"}]}});
        assert_eq!(sources(&r), vec!["Bayview Regional Reference Lab", "Harbor General Hospital"]);
        assert_eq!(sources(&json!({"meta": {"source": "urn:portico:source:ehr"}})), vec!["ehr"]);
    }

    #[test]
    fn references_resolve_only_to_released_resources() {
        let released = vec![
            json!({"resourceType": "Practitioner", "id": "ehr.p1", "name": [{"family": "Shah", "given": ["Priya"]}]}),
        ];
        let l = Lookup::new(&released);
        assert_eq!(l.name(&json!({"reference": "Practitioner/ehr.p1"})).unwrap(), "Priya Shah");
        assert_eq!(l.name(&json!({"reference": "Practitioner/ehr.p2"})), None);
        assert_eq!(l.name(&json!({"display": "Bayview Lab"})).unwrap(), "Bayview Lab");
    }
}
