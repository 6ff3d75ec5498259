use super::*;
use serde_json::json;

fn utc() -> FixedOffset {
    FixedOffset::east_opt(0).unwrap()
}

fn q(t: &str, pairs: &[(&str, &str)]) -> Result<SearchQuery, SearchError> {
    let pairs: Vec<(String, String)> = pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    parse(t, &pairs, &["_cursor"], false, 100, utc())
}

fn obs() -> Value {
    json!({
        "resourceType": "Observation", "id": "o1", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2025-06-15T10:00:00Z"
    })
}

fn all_match(t: &str, pairs: &[(&str, &str)], r: &Value) -> bool {
    q(t, pairs).unwrap().filters.iter().all(|f| matches(r, f, utc()))
}

#[test]
fn tokens_match_with_and_without_system() {
    let o = obs();
    assert!(all_match("Observation", &[("code", "2823-3")], &o));
    assert!(all_match("Observation", &[("code", "http://loinc.org|2823-3")], &o));
    assert!(!all_match("Observation", &[("code", "http://snomed.info/sct|2823-3")], &o));
    assert!(all_match("Observation", &[("code", "1-1,2823-3")], &o));
    assert!(all_match("Observation", &[("category", "laboratory"), ("status", "final")], &o));
    assert!(!all_match("Observation", &[("category", "laboratory"), ("status", "amended")], &o));
}

#[test]
fn dates_honour_prefixes_and_precision() {
    let o = obs();
    assert!(all_match("Observation", &[("date", "2025-06")], &o));
    assert!(all_match("Observation", &[("date", "ge2025-06-15"), ("date", "le2025-06-15")], &o));
    assert!(!all_match("Observation", &[("date", "gt2025-06-15")], &o));
    assert!(!all_match("Observation", &[("date", "lt2025-06-15")], &o));
    assert!(all_match("Observation", &[("date", "lt2025-06-16")], &o));
    assert!(!all_match("Observation", &[("date", "2025-07")], &o));
}

#[test]
fn patient_reference_matches_bare_or_typed_id() {
    let o = obs();
    assert!(all_match("Observation", &[("patient", "p1")], &o));
    assert!(all_match("Observation", &[("subject", "Patient/p1")], &o));
    assert!(!all_match("Observation", &[("patient", "p2")], &o));
}

#[test]
fn unknown_and_malformed_parameters_are_errors() {
    assert!(matches!(q("Observation", &[("colour", "red")]), Err(SearchError::UnknownParameter { .. })));
    assert!(matches!(q("Observation", &[("date", "last tuesday")]), Err(SearchError::BadValue { .. })));
    assert!(matches!(q("Observation", &[("_count", "-1")]), Err(SearchError::BadValue { .. })));
    assert!(matches!(q("Observation", &[("code:text", "x")]), Err(SearchError::UnsupportedModifier { .. })));
    assert!(matches!(q("Immunization", &[("subject", "p1")]), Err(SearchError::UnknownParameter { .. })));
    let pairs = vec![("colour".to_string(), "red".to_string())];
    let lenient = parse("Observation", &pairs, &[], true, 100, utc()).unwrap();
    assert_eq!(lenient.ignored, vec!["colour"]);
}

#[test]
fn count_is_capped_and_controls_kept() {
    let s = q("Observation", &[("_count", "5000"), ("_cursor", "abc")]).unwrap();
    assert_eq!(s.count, Some(100));
    assert_eq!(s.control("_cursor"), Some("abc"));
}

#[test]
fn patient_string_search() {
    let p = json!({"resourceType": "Patient", "name": [{"family": "García", "given": ["Robert", "Bob"]}], "birthDate": "1980-02-03"});
    assert!(all_match("Patient", &[("family", "garc")], &p));
    assert!(!all_match("Patient", &[("family:exact", "garcía")], &p));
    assert!(all_match("Patient", &[("given", "bob"), ("birthdate", "1980-02-03")], &p));
}

#[test]
fn prefer_lenient_in_any_of_its_forms() {
    assert!(prefers_lenient(["handling=lenient"]));
    assert!(prefers_lenient(["return=minimal, handling = lenient"]));
    assert!(prefers_lenient(["return=minimal", "HANDLING=Lenient"]));
    assert!(!prefers_lenient(["handling=strict"]));
    assert!(!prefers_lenient(["handling-lenient"]));
    assert!(!prefers_lenient([]));
}

#[test]
fn includes_are_parsed_only_where_allowed_and_subsets_read_from_the_controls() {
    let pairs: Vec<(String, String)> = [
        ("_include", "Observation:performer"),
        ("_include:iterate", "PractitionerRole:practitioner"),
        ("_revinclude", "Provenance:target"),
        ("_elements", "code"),
        ("_elements", "value"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    let allowed = ["_include", "_revinclude", "_elements", "_summary"];
    let s = parse("Observation", &pairs, &allowed, false, 100, utc()).unwrap();
    let parsed: Vec<(bool, bool, &str)> = s.includes.iter().map(|i| (i.reverse, i.iterate, i.param.name)).collect();
    assert_eq!(parsed, [(false, false, "performer"), (false, true, "practitioner"), (true, false, "target")]);
    assert_eq!(s.subset("Observation").unwrap(), subset::Subset::Elements(vec!["code".into(), "value[x]".into()]));
    // An endpoint that does not take them refuses them as unknown, or ignores them leniently.
    assert!(matches!(
        parse("Observation", &pairs[..1], &[], false, 100, utc()),
        Err(SearchError::UnknownParameter { .. })
    ));
    assert_eq!(parse("Observation", &pairs[..1], &[], true, 100, utc()).unwrap().ignored, ["_include"]);
    let bad = [("_include".to_string(), "Observation:code".to_string())];
    assert!(matches!(parse("Observation", &bad, &allowed, true, 100, utc()), Err(SearchError::BadValue { .. })));
}
