//! References inside a resource: finding every `reference` string (nested elements,
//! extensions, contained resources) and rewriting them in place.

use serde_json::Value;

/// A parsed literal reference `Type/id` (relative, or absolute `…/Type/id`, optionally
/// `/_history/n`). Local (`#x`), logical (`urn:`) and unparseable ones are `None`.
pub fn parse(reference: &str) -> Option<(&str, &str)> {
    if reference.starts_with('#') || reference.starts_with("urn:") {
        return None;
    }
    let path = reference.split(['?', '#']).next()?;
    let mut parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    if parts.len() >= 4 && parts[parts.len() - 2] == "_history" {
        parts.truncate(parts.len() - 2);
    }
    let n = parts.len();
    if n < 2 {
        return None;
    }
    let (t, id) = (parts[n - 2], parts[n - 1]);
    let type_ok =
        t.chars().next().is_some_and(|c| c.is_ascii_uppercase()) && t.chars().all(|c| c.is_ascii_alphanumeric());
    (type_ok && super::is_valid_id(id)).then_some((t, id))
}

/// Calls `f` on every `reference` string in `value`, at any depth.
pub fn for_each_mut(value: &mut Value, f: &mut dyn FnMut(&mut String)) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    Value::String(s) if key == "reference" => f(s),
                    _ => for_each_mut(v, f),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| for_each_mut(v, f)),
        _ => {}
    }
}

/// Every `reference` string in `value`.
pub fn all(value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut copy = value.clone();
    for_each_mut(&mut copy, &mut |s| out.push(s.clone()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_relative_absolute_and_versioned() {
        assert_eq!(parse("Patient/123"), Some(("Patient", "123")));
        assert_eq!(parse("https://x.example/fhir/Observation/a.b-1"), Some(("Observation", "a.b-1")));
        assert_eq!(parse("Observation/7/_history/2"), Some(("Observation", "7")));
        assert_eq!(parse("#contained1"), None);
        assert_eq!(parse("urn:uuid:123"), None);
        assert_eq!(parse("patient/1"), None);
    }

    #[test]
    fn rewrites_nested_and_contained() {
        let mut r = json!({
            "subject": {"reference": "Patient/1"},
            "contained": [{"resourceType": "Observation", "performer": [{"reference": "Practitioner/9"}]}],
            "extension": [{"valueReference": {"reference": "Encounter/3"}}],
            "note": [{"text": "reference"}]
        });
        for_each_mut(&mut r, &mut |s| *s = format!("X/{s}"));
        assert_eq!(all(&r), vec!["X/Patient/1", "X/Practitioner/9", "X/Encounter/3"]);
        assert_eq!(r["note"][0]["text"], "reference");
    }
}
