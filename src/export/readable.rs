//! FHIR elements as plain words for people: a CodeableConcept's text, a Quantity's value
//! and unit, an Observation's result and reference range, a dateTime as its date, a
//! person's name, and the source systems a resource came from. Read-only views of raw
//! JSON (DESIGN.md promise 3: source data is never rewritten); they never fail — a
//! missing or odd element is an empty string.

use serde_json::Value;

/// A fallback for an empty cell.
pub trait OrDisplay {
    fn or_display(self, other: Option<&Value>) -> String;
}

impl OrDisplay for String {
    fn or_display(self, other: Option<&Value>) -> String {
        if self.is_empty() {
            plain(other)
        } else {
            self
        }
    }
}

/// The names of the systems a resource came from (its provenance tags).
pub fn source_of(r: &Value) -> String {
    crate::aggregate::provenance::holder_names(r).join(", ")
}

/// A string, number or boolean as text; anything else is empty.
pub fn plain(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => if *b { "yes" } else { "no" }.to_string(),
        _ => String::new(),
    }
}

/// A CodeableConcept (or Coding) as words: its text, else the first display, else the
/// first code.
pub fn concept(v: Option<&Value>) -> String {
    let Some(v) = v else { return String::new() };
    if let Some(t) = v.get("text").and_then(Value::as_str) {
        return t.to_string();
    }
    let codings: Vec<&Value> = match v.get("coding").and_then(Value::as_array) {
        Some(list) => list.iter().collect(),
        None => vec![v],
    };
    codings
        .iter()
        .find_map(|c| c.get("display").and_then(Value::as_str))
        .or_else(|| codings.iter().find_map(|c| c.get("code").and_then(Value::as_str)))
        .unwrap_or_default()
        .to_string()
}

/// The first of several dotted element paths that holds a value.
pub fn first<'a>(r: &'a Value, paths: &[&str]) -> Option<&'a Value> {
    paths.iter().find_map(|p| {
        let pointer = format!("/{}", p.replace('.', "/"));
        r.pointer(&pointer)
    })
}

/// A date or dateTime shown as its date.
pub fn date(v: Option<&Value>) -> String {
    let s = plain(v);
    if s.len() > 10 && s.as_bytes()[4] == b'-' && s.as_bytes()[10] == b'T' {
        s[..10].to_string()
    } else {
        s
    }
}

pub fn date_key(r: &Value, paths: &[&str]) -> String {
    plain(first(r, paths))
}

pub fn number(v: Option<&Value>) -> String {
    plain(v)
}

/// A Quantity as (value with comparator, unit).
pub fn quantity(q: &Value) -> (String, String) {
    let value = format!("{}{}", plain(q.get("comparator")), number(q.get("value")));
    let unit = plain(q.get("unit")).or_display(q.get("code"));
    (value, unit)
}

/// An Observation's value and unit; a panel's components are listed in the value.
pub fn observation_value(r: &Value) -> (String, String) {
    if let Some((value, unit)) = value_of(r) {
        return (value, unit);
    }
    let parts: Vec<String> = r
        .get("component")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let (value, unit) = value_of(c)?;
            let name = concept(c.get("code"));
            Some(format!("{name}: {value} {unit}").trim_end().to_string())
        })
        .collect();
    if !parts.is_empty() {
        return (parts.join("; "), String::new());
    }
    (concept(r.get("dataAbsentReason")), String::new())
}

pub fn value_of(r: &Value) -> Option<(String, String)> {
    if let Some(q) = r.get("valueQuantity") {
        return Some(quantity(q));
    }
    if let Some(c) = r.get("valueCodeableConcept") {
        return Some((concept(Some(c)), String::new()));
    }
    for key in ["valueString", "valueInteger", "valueBoolean", "valueDateTime", "valueTime"] {
        if let Some(v) = r.get(key) {
            return Some((plain(Some(v)), String::new()));
        }
    }
    if let Some(range) = r.get("valueRange") {
        let (low, unit) = range.get("low").map(quantity).unwrap_or_default();
        let (high, high_unit) = range.get("high").map(quantity).unwrap_or_default();
        return Some((format!("{low}–{high}"), unit.or_display(Some(&Value::String(high_unit)))));
    }
    None
}

/// A reference range as words: its text, or low–high with the unit.
pub fn reference_range(range: Option<&Value>) -> String {
    let Some(range) = range else { return String::new() };
    if let Some(t) = range.get("text").and_then(Value::as_str) {
        return t.to_string();
    }
    let low = range.get("low").map(quantity);
    let high = range.get("high").map(quantity);
    match (low, high) {
        (Some((l, u)), Some((h, _))) => format!("{l}–{h} {u}").trim_end().to_string(),
        (Some((l, u)), None) => format!("at least {l} {u}").trim_end().to_string(),
        (None, Some((h, u))) => format!("up to {h} {u}").trim_end().to_string(),
        (None, None) => String::new(),
    }
}

/// "Given Family" of a Patient's first name.
pub fn person_name(p: &Value) -> String {
    let Some(name) = p.pointer("/name/0") else { return String::new() };
    if let Some(t) = name.get("text").and_then(Value::as_str) {
        return t.to_string();
    }
    let given: Vec<&str> =
        name.get("given").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    format!("{} {}", given.join(" "), plain(name.get("family"))).trim().to_string()
}
