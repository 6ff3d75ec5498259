//! References inside a resource: finding every `reference` string (nested elements,
//! extensions, contained resources) and rewriting them in place, and telling a local
//! reference from one to another server. A source's FHIR base URL is its identity: a
//! reference is local to a source when it is relative (`Patient/123`) or absolute under
//! the source's own base (`https://ehr.example/fhir/Patient/123` from the source at
//! `https://ehr.example/fhir`); an absolute reference under any other base
//! (`http://other.example/fhir/Patient/123`) names a resource on another server, never the
//! source's own resource of the same type and id ([`parse_local`], [`localize`]).

use serde_json::Value;

/// A parsed literal reference `Type/id` (relative, or absolute `…/Type/id`, optionally
/// `/_history/n`). Local (`#x`), logical (`urn:`) and unparseable ones are `None`.
pub fn parse(reference: &str) -> Option<(&str, &str)> {
    if reference.starts_with('#') || reference.starts_with("urn:") {
        return None;
    }
    let path = reference.split(['?', '#']).next()?.trim_end_matches('/');
    // From the end: `…/Type/id`, or `…/Type/id/_history/version`.
    let mut parts = path.rsplit('/');
    let (mut id, mut t) = (parts.next()?, parts.next()?);
    if t == "_history" {
        (id, t) = (parts.next()?, parts.next()?);
    }
    let type_ok =
        t.chars().next().is_some_and(|c| c.is_ascii_uppercase()) && t.chars().all(|c| c.is_ascii_alphanumeric());
    (type_ok && super::is_valid_id(id)).then_some((t, id))
}

/// Whether `reference` is an absolute URL (`scheme://…`).
pub fn is_absolute(reference: &str) -> bool {
    reference.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

/// A literal reference local to a server whose FHIR base URL is `base`: a relative
/// `Type/id`, or an absolute one under `base`. An absolute reference under another base —
/// or any absolute reference when `base` is `None` — is `None`, as are local (`#x`),
/// logical (`urn:`) and unparseable ones.
pub fn parse_local<'a>(reference: &'a str, base: Option<&str>) -> Option<(&'a str, &'a str)> {
    let parsed = parse(reference)?;
    if !is_absolute(reference) {
        return Some(parsed);
    }
    let base = base?;
    let own = base_of(reference).is_some_and(|b| same_base(b, base));
    own.then_some(parsed)
}

/// The FHIR base an absolute literal reference carries: the URL before its `Type/id` (and
/// `/_history/n`), without a trailing slash.
fn base_of(reference: &str) -> Option<&str> {
    let (t, id) = parse(reference)?;
    let path = reference.split(['?', '#']).next()?.trim_end_matches('/');
    let marker = format!("/{t}/{id}");
    let end = path.rfind(&marker)?;
    Some(&path[..end])
}

/// Two FHIR base URLs are the same server: same scheme, host, port and path (trailing
/// slash, letter case of scheme and host, and default ports aside).
fn same_base(a: &str, b: &str) -> bool {
    match (url::Url::parse(a), url::Url::parse(b)) {
        (Ok(a), Ok(b)) => {
            a.scheme() == b.scheme()
                && a.host_str() == b.host_str()
                && a.port_or_known_default() == b.port_or_known_default()
                && a.path().trim_end_matches('/') == b.path().trim_end_matches('/')
        }
        _ => false,
    }
}

/// Rewrites every absolute reference in `value` that is under `base` (the source's own
/// FHIR base URL) to its relative `Type/id`, so the rest of the road treats it as local;
/// absolute references to any other server are left as they are (not local: the merge
/// makes them display-only).
pub fn localize(value: &mut Value, base: &str) {
    for_each_mut(value, &mut |s| {
        if is_absolute(s) {
            if let Some((t, id)) = parse_local(s, Some(base)) {
                *s = format!("{t}/{id}");
            }
        }
    });
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

/// Calls `f` on every `reference` string in `value`, at any depth (reading, not copying).
pub fn for_each(value: &Value, f: &mut impl FnMut(&str)) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match v {
                    Value::String(s) if key == "reference" => f(s),
                    _ => for_each(v, f),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| for_each(v, f)),
        _ => {}
    }
}

/// Every `reference` string in `value`.
pub fn all(value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for_each(value, &mut |s| out.push(s.to_string()));
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
        assert_eq!(parse("Patient/123/"), Some(("Patient", "123")));
        assert_eq!(parse("Patient/123?_format=json"), Some(("Patient", "123")));
        assert_eq!(parse("Patient/_history/2"), None);
        assert_eq!(parse("_history/2"), None);
        assert_eq!(parse("Patient"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn only_the_sources_own_base_is_local() {
        let base = Some("https://ehr.example/fhir/");
        assert_eq!(parse_local("Patient/123", None), Some(("Patient", "123")));
        assert_eq!(parse_local("Patient/123", base), Some(("Patient", "123")));
        assert_eq!(parse_local("https://ehr.example/fhir/Patient/123", base), Some(("Patient", "123")));
        assert_eq!(parse_local("HTTPS://EHR.example:443/fhir/Patient/123/_history/2", base), Some(("Patient", "123")));
        assert_eq!(parse_local("http://other.example/fhir/Patient/123", base), None);
        assert_eq!(parse_local("https://ehr.example/other/Patient/123", base), None);
        assert_eq!(parse_local("http://ehr.example/fhir/Patient/123", base), None, "another scheme");
        assert_eq!(parse_local("https://ehr.example:8443/fhir/Patient/123", base), None, "another port");
        assert_eq!(parse_local("https://ehr.example/fhir/Patient/123", None), None);
        assert_eq!(parse_local("#c1", base), None);
        assert!(is_absolute("http://x/Patient/1") && !is_absolute("Patient/1") && !is_absolute("urn:uuid:1"));

        let mut r = json!({
            "subject": {"reference": "https://ehr.example/fhir/Patient/123"},
            "performer": [{"reference": "http://other.example/fhir/Practitioner/9"}, {"reference": "Practitioner/8"}]
        });
        localize(&mut r, "https://ehr.example/fhir");
        assert_eq!(all(&r), vec!["Patient/123", "http://other.example/fhir/Practitioner/9", "Practitioner/8"]);
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
