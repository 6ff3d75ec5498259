use super::*;
use serde_json::json;

fn fetched(source: &str, pid: &str, resources: Vec<Value>) -> Fetched {
    Fetched { source: source.into(), display: format!("{source} system"), patient_ids: vec![pid.into()], resources }
}

fn find<'a>(out: &'a [Value], t: &str, id: &str) -> &'a Value {
    out.iter().find(|r| r["resourceType"] == t && r["id"] == id).unwrap_or_else(|| panic!("{t}/{id} missing"))
}

fn tags(r: &Value) -> Vec<&str> {
    r["meta"]["tag"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["system"] == SOURCE_TAG_SYSTEM)
        .map(|t| t["code"].as_str().unwrap())
        .collect()
}

fn potassium(id: &str, subject: &str, ident: Option<&str>) -> Value {
    let mut o = json!({
        "resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}]},
        "subject": {"reference": subject},
        "effectiveDateTime": "2025-12-30T08:00:00Z",
        "valueQuantity": {"value": 6.8, "unit": "mmol/L"}
    });
    if let Some(v) = ident {
        o["identifier"] = json!([{"system": "urn:lab:accession", "value": v}]);
    }
    o
}

#[test]
fn duplicates_by_identifier_keep_both_provenances_and_references_follow() {
    let ehr = fetched(
        "ehr",
        "e1",
        vec![
            json!({"resourceType": "Patient", "id": "e1"}),
            potassium("ek", "Patient/e1", Some("A1")),
            json!({"resourceType": "DiagnosticReport", "id": "dr", "subject": {"reference": "Patient/e1"}, "result": [{"reference": "Observation/ek"}]}),
        ],
    );
    let lab = fetched(
        "lab",
        "L9",
        vec![json!({"resourceType": "Patient", "id": "L9"}), potassium("lk", "Patient/L9", Some("A1"))],
    );
    let (out, aliases) = merge("pt-1", &[ehr, lab]);
    assert_eq!(out.len(), 3, "one Patient, one Observation, one report: {out:#?}");
    assert_eq!(out[0]["resourceType"], "Patient", "Patient first");
    assert_eq!(tags(&out[0]), vec!["ehr", "lab"]);
    let obs = find(&out, "Observation", "ehr.ek");
    assert_eq!(tags(obs), vec!["ehr", "lab"]);
    assert_eq!(obs["subject"]["reference"], "Patient/pt-1");
    assert_eq!(aliases.get("Observation/lab.lk").map(String::as_str), Some("Observation/ehr.ek"));
    assert_eq!(find(&out, "DiagnosticReport", "ehr.dr")["result"][0]["reference"], "Observation/ehr.ek");
}

#[test]
fn duplicates_by_content_without_identifiers() {
    let ehr = fetched("ehr", "e1", vec![potassium("a", "Patient/e1", None)]);
    let lab = fetched("lab", "L9", vec![potassium("b", "Patient/L9", None)]);
    let (out, _) = merge("pt-1", &[ehr.clone(), lab]);
    assert_eq!(out.len(), 1);
    let mut other_value = potassium("b", "Patient/L9", None);
    other_value["valueQuantity"]["value"] = json!(4.1);
    let (out, _) = merge("pt-1", &[ehr, fetched("lab", "L9", vec![other_value])]);
    assert_eq!(out.len(), 2, "a different value is a different result");
}

#[test]
fn same_source_copies_are_not_merged() {
    let ehr =
        fetched("ehr", "e1", vec![potassium("a", "Patient/e1", Some("X")), potassium("b", "Patient/e1", Some("X"))]);
    assert_eq!(merge("pt-1", &[ehr]).0.len(), 2);
}

#[test]
fn source_json_passes_through_apart_from_documented_rewrites() {
    let original = json!({
        "resourceType": "Observation", "id": "o1",
        "meta": {"versionId": "3", "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]},
        "status": "final",
        "vendorQuirk": {"nested": [1, 2, {"deep": true}]},
        "extension": [{"url": "https://vendor.example/unknown", "valueString": "kept"}],
        "code": {"text": "x"},
        "subject": {"reference": "Patient/e1", "display": "kept display"},
        "contained": [{"resourceType": "Specimen", "id": "s", "subject": {"reference": "Patient/e1"}}],
        "specimen": {"reference": "#s"},
        "basedOn": [{"reference": "ServiceRequest/unknown", "display": "Order 7"}],
        "hasMember": [{"reference": "http://elsewhere.example/fhir/Observation/zz"}],
        "valueString": "ok"
    });
    let (out, _) = merge("pt-1", &[fetched("ehr", "e1", vec![original.clone()])]);
    let got = &out[0];
    assert_eq!(got["id"], "ehr.o1");
    assert_eq!(got["subject"], json!({"reference": "Patient/pt-1", "display": "kept display"}));
    assert_eq!(got["contained"][0]["subject"]["reference"], "Patient/pt-1");
    assert_eq!(got["specimen"]["reference"], "#s");
    assert_eq!(got["basedOn"][0], json!({"display": "Order 7"}));
    assert_eq!(got["hasMember"][0], json!({"display": "(not available through this gateway)"}));
    assert_eq!(got["meta"]["source"], "urn:portico:source:ehr");
    assert_eq!(got["meta"]["versionId"], "3");
    assert_eq!(got["meta"]["security"], original["meta"]["security"]);
    // Everything not named above is byte-for-byte the source's.
    let mut a = got.clone();
    let mut b = original.clone();
    for v in [&mut a, &mut b] {
        let o = v.as_object_mut().unwrap();
        for k in ["id", "meta", "subject", "contained", "basedOn", "hasMember"] {
            o.remove(k);
        }
    }
    assert_eq!(a, b);
    assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap(), "element order kept");
}

#[test]
fn long_ids_are_digested_to_fit() {
    let long = "x".repeat(64);
    let id = gateway_resource_id("imaging", &long);
    assert!(id.len() <= 64 && crate::fhir::is_valid_id(&id), "{id}");
    assert_eq!(id, gateway_resource_id("imaging", &long));
    assert_eq!(gateway_resource_id("lab", "L-1"), "lab.L-1");
}

#[test]
fn a_reference_to_another_servers_resource_is_never_this_sources() {
    // The EHR holds Patient/e1 and Observation/o2; a note points at another server's
    // Patient/e1 and Observation/o2 (absolute URLs under another base).
    let obs = json!({
        "resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"},
        "subject": {"reference": "Patient/e1"},
        "hasMember": [{"reference": "http://other.example/fhir/Observation/o2", "display": "their result"}],
        "focus": [{"reference": "http://other.example/fhir/Patient/e1"}]
    });
    let own = json!({"resourceType": "Observation", "id": "o2", "status": "final", "code": {"text": "y"},
                     "subject": {"reference": "Patient/e1"}});
    let (out, _) = merge("pt-1", &[fetched("ehr", "e1", vec![obs, own])]);
    let got = find(&out, "Observation", "ehr.o1");
    assert_eq!(got["subject"]["reference"], "Patient/pt-1");
    assert_eq!(got["hasMember"][0], json!({"display": "their result"}), "not Observation/ehr.o2");
    assert_eq!(got["focus"][0], json!({"display": "(not available through this gateway)"}), "not Patient/pt-1");
    assert!(!got.to_string().contains("other.example"), "no reference points at another server");
}
