//! The decision over every resource type: the matrix of billing and newly gathered types
//! (and types the policy has no rules for) against every kind of viewer, the fail-closed
//! default and how HIM opens a type, and a minor's confidential visit billed in the shared
//! Synthea sample (`../shared/data/synthea-r4`), which no parent reaches through its Claim or
//! ExplanationOfBenefit.
//!
//! The decision is tested here, on records labelled by the shipped labeller; the gathering of
//! these types and every output path are tested in `tests/it` (whole_record, synthea_privacy).

use super::*;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

// The clock and the shipped policy, as the other decision tests use them.
use super::tests::{now, policy, policy_with};

fn ctx() -> PolicyContext {
    PolicyContext { now: now(), ledger: PatientLedger::default() }
}

fn r(v: &str) -> Value {
    json!({"reference": v})
}

fn icd(code: &str) -> Value {
    json!({"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code}]})
}

fn snomed(code: &str, display: &str) -> Value {
    json!({"coding": [{"system": "http://snomed.info/sct", "code": code, "display": display}]})
}

/// One record of each new type, twice where it matters: tied to a contraception visit (SEX,
/// a service a minor consents to at any age), to an ADHD visit (MH, from 12 in the default
/// jurisdiction) and to nothing sensitive; plus a Coverage and two types the policy has no
/// rules for. The labels come from the shipped labeller, not from the test.
fn new_types_record(policy: &Policy, birth: &str) -> Arc<Record> {
    let checkup = snomed("185349003", "Encounter for check up");
    let mut resources = vec![
        json!({"resourceType": "Patient", "id": "p", "birthDate": birth}),
        json!({"resourceType": "Encounter", "id": "contraception", "status": "finished", "subject": r("Patient/p"),
            "reasonCode": [icd("Z30.011")]}),
        json!({"resourceType": "Encounter", "id": "adhd", "status": "finished", "subject": r("Patient/p"),
            "reasonCode": [icd("F90.0")]}),
        json!({"resourceType": "Encounter", "id": "checkup", "status": "finished", "subject": r("Patient/p"), "type": [checkup]}),
    ];
    for (visit, suffix) in [("contraception", "sex"), ("adhd", "mh"), ("checkup", "plain")] {
        let v = format!("Encounter/{visit}");
        resources.extend([
            json!({"resourceType": "Claim", "id": format!("claim-{suffix}"), "patient": r("Patient/p"),
                "item": [{"sequence": 1, "productOrService": checkup, "encounter": [r(&v)]}]}),
            json!({"resourceType": "ExplanationOfBenefit", "id": format!("eob-{suffix}"), "patient": r("Patient/p"),
                "claim": r(&format!("Claim/claim-{suffix}"))}),
            json!({"resourceType": "MedicationDispense", "id": format!("fill-{suffix}"), "subject": r("Patient/p"),
                "context": r(&v), "medicationCodeableConcept": {"text": "tablet"}}),
            json!({"resourceType": "ServiceRequest", "id": format!("order-{suffix}"), "subject": r("Patient/p"),
                "encounter": r(&v), "code": {"text": "follow-up"}}),
            json!({"resourceType": "ImagingStudy", "id": format!("study-{suffix}"), "subject": r("Patient/p"),
                "encounter": r(&v)}),
            json!({"resourceType": "QuestionnaireResponse", "id": format!("form-{suffix}"), "subject": r("Patient/p"),
                "encounter": r(&v), "status": "completed"}),
        ]);
    }
    resources
        .extend([json!({"resourceType": "Coverage", "id": "cov", "beneficiary": r("Patient/p"), "status": "active"})]);
    // Types the policy has no rules for: official R4 examples (a BRCAPRO genetic risk
    // assessment the labeller cannot read as genetic, a referral in a Basic), made this
    // patient's.
    for name in ["RiskAssessment-genetic", "Basic-referral"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/r4-examples").join(format!("{name}.json"));
        let mut x: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        x["subject"] = r("Patient/p");
        resources.push(x);
    }
    policy.labeler().label(&mut resources);
    Arc::new(Record::new("p".into(), resources, HashMap::new(), vec![], BTreeMap::new()))
}

fn key_of(r: &Value) -> String {
    format!("{}/{}", fhir::resource_type(r).unwrap_or_default(), fhir::resource_id(r).unwrap_or_default())
}

fn decided(p: &Policy, rec: &Arc<Record>, v: &Viewer) -> BTreeMap<String, (Decision, Vec<String>)> {
    let (_, ex) = p.decide(rec, v, &ctx()).unwrap();
    ex.into_iter().map(|e| (e.resource, (e.decision, e.rules))).collect()
}

const NEW_KEYS: &[(&str, &str)] = &[
    ("Claim", "claim"),
    ("ExplanationOfBenefit", "eob"),
    ("MedicationDispense", "fill"),
    ("ServiceRequest", "order"),
    ("ImagingStudy", "study"),
    ("QuestionnaireResponse", "form"),
];
const UNKNOWN: &[&str] = &["RiskAssessment/genetic", "Basic/referral"];

fn keys(suffix: &str) -> Vec<String> {
    NEW_KEYS.iter().map(|(t, id)| format!("{t}/{id}-{suffix}")).collect()
}

/// Every case: the key is shown (`None`) or withheld by exactly a rule starting with `Some(rule)`.
fn check(d: &BTreeMap<String, (Decision, Vec<String>)>, key: &str, want: Option<&str>, who: &str) -> Option<String> {
    let (decision, rules) = d.get(key).unwrap_or_else(|| panic!("{who}: {key} missing"));
    let ok = match want {
        None => *decision == Decision::Shown && rules.is_empty(),
        Some(rule) => *decision == Decision::Withheld && rules.iter().any(|r| r.starts_with(rule)),
    };
    (!ok).then(|| format!("{who}: {key}: expected {want:?}, got {decision:?} {rules:?}"))
}

#[test]
fn the_labeller_gives_each_new_type_the_labels_of_its_visit() {
    let rec = new_types_record(&policy(), "2016-01-01");
    let labels = |key: &str| {
        let i = rec.resources.iter().position(|x| key_of(x) == key).unwrap();
        label_codes(&rec.resources[i])
    };
    for key in keys("sex") {
        assert!(labels(&key).contains("SEX"), "{key}: {:?}", labels(&key));
    }
    for key in keys("mh") {
        assert!(labels(&key).contains("MH"), "{key}: {:?}", labels(&key));
    }
    for key in keys("plain").iter().map(String::as_str).chain(["Coverage/cov"]).chain(UNKNOWN.iter().copied()) {
        assert!(labels(key).is_empty(), "{key}: {:?}", labels(key));
    }
}

#[test]
fn matrix_of_new_types_by_viewer() {
    let p = policy();
    let child = new_types_record(&p, "2016-01-01"); // 10
    let teen = new_types_record(&p, "2011-01-01"); // 15
    let adult = new_types_record(&p, "1990-01-01");
    let none: Option<&str> = None;
    let mut wrong = Vec::new();
    let mut run = |rec: &Arc<Record>, who: &str, v: Viewer, expect: &dyn Fn(&str) -> Option<&'static str>| {
        let d = decided(&p, rec, &v);
        let all = ["sex", "mh", "plain"].iter().flat_map(|s| keys(s)).chain(UNKNOWN.iter().map(ToString::to_string));
        for key in all.chain(["Coverage/cov".to_string()]) {
            wrong.extend(check(&d, &key, expect(&key), who));
        }
    };
    let unknown = |k: &str| UNKNOWN.contains(&k);
    // The patient themself (child, teen or adult) and staff: everything, unknown types too.
    for (rec, name) in [(&child, "child"), (&teen, "teen"), (&adult, "adult")] {
        run(rec, &format!("patient {name}"), Viewer::from_spec("patient", None).unwrap(), &|_| None);
        run(rec, &format!("staff {name}"), Viewer::from_spec("staff", None).unwrap(), &|_| None);
    }
    // Parent of a 10-year-old: all but the any-age confidential visit (and its bill); ADHD
    // care is the parent's to consent to and see at 10; unknown types withheld.
    run(&child, "parent of 10", Viewer::from_spec("proxy:MTH", None).unwrap(), &|k| {
        if unknown(k) {
            Some(TYPE_NOT_CONFIGURED)
        } else if k.ends_with("-sex") {
            Some("minors:minor-consented:SEX")
        } else {
            None
        }
    });
    // Parent of a 15-year-old: none of the new types is in proxy_limited_types, and the
    // confidential ones are minor-consented too.
    run(&teen, "parent of 15", Viewer::from_spec("proxy:MTH", None).unwrap(), &|k| {
        if unknown(k) {
            Some(TYPE_NOT_CONFIGURED)
        } else if k.ends_with("-sex") {
            Some("minors:minor-consented:SEX")
        } else if k.ends_with("-mh") {
            Some("minors:minor-consented:MH")
        } else {
            Some("minors:proxy-limited-type")
        }
    });
    // An adult's proxy the adult granted access, an app with every read scope, a partner:
    // every configured type; the unknown ones are withheld.
    for (rec, who, v) in [
        (&adult, "adult's proxy", Viewer::from_spec("proxy:SPS:adult-granted", None).unwrap()),
        (&adult, "app", Viewer::from_spec("patient", Some("patient/*.read")).unwrap()),
        (&teen, "teen's app", Viewer::from_spec("patient", Some("patient/*.rs")).unwrap()),
        (&adult, "partner", Viewer::from_spec("partner:hie-north:TREAT", None).unwrap()),
    ] {
        run(rec, who, v, &|k| if unknown(k) { Some(TYPE_NOT_CONFIGURED) } else { none });
    }
    assert!(wrong.is_empty(), "{} wrong:\n{}", wrong.len(), wrong.join("\n"));
}

#[test]
fn a_type_is_opened_only_by_listing_it_and_old_policy_files_stay_closed_for_new_types() {
    let app = Viewer::from_spec("patient", Some("patient/*.read")).unwrap();
    let partner = Viewer::from_spec("partner:hie-north:TREAT", None).unwrap();
    let opened = policy_with(|t| {
        t.replacen(
            "  \"QuestionnaireResponse\", \"Specimen\",\n",
            "  \"QuestionnaireResponse\", \"Specimen\", \"RiskAssessment\",\n",
            1,
        )
    });
    assert!(opened.config().types.is_configured("RiskAssessment"), "the edit applied");
    let rec = new_types_record(&opened, "1990-01-01");
    for v in [&app, &partner] {
        let d = decided(&opened, &rec, v);
        assert_eq!(d["RiskAssessment/genetic"], (Decision::Shown, vec![]), "{v:?}");
        assert_eq!(d["Basic/referral"].1, vec![TYPE_NOT_CONFIGURED.to_string()], "{v:?}");
    }
    // A policy file without [types]: the Patient and the types served before [types] existed
    // (the 14 compartment types and the supporting types) only.
    let old = policy_with(|t| {
        let start = t.find("[types]").unwrap();
        let end = t[start..].find("\n]\n").unwrap() + start + 3;
        format!("{}{}", &t[..start], &t[end..])
    });
    assert_eq!(old.config().types.configured.len(), crate::policy::config::served_types().len());
    assert!(!old.config().types.is_configured("Claim"));
    let rec = new_types_record(&old, "1990-01-01");
    let d = decided(&old, &rec, &partner);
    for key in keys("plain").iter().chain(["Coverage/cov".to_string()].iter()) {
        assert_eq!(d[key].1, vec![TYPE_NOT_CONFIGURED.to_string()], "{key}");
    }
    assert_eq!(d["Encounter/checkup"], (Decision::Shown, vec![]));
    let me = decided(&old, &rec, &Viewer::from_spec("patient", None).unwrap());
    assert!(me.values().all(|(d, _)| *d == Decision::Shown), "the patient sees every type: {me:?}");
}

#[test]
fn a_parent_never_reaches_a_teens_confidential_visit_through_its_bill_even_with_bills_in_the_limited_record() {
    // HIM lets parents of teens see claims: the plain bill is shown, the confidential one not.
    let p = policy_with(|t| {
        t.replacen(
            "proxy_limited_types = [\"AllergyIntolerance\"",
            "proxy_limited_types = [\"Claim\", \"ExplanationOfBenefit\", \"AllergyIntolerance\"",
            1,
        )
    });
    let rec = new_types_record(&p, "2011-01-01");
    let d = decided(&p, &rec, &Viewer::from_spec("proxy:FTH", None).unwrap());
    for key in ["Claim/claim-plain", "ExplanationOfBenefit/eob-plain"] {
        assert_eq!(d[key], (Decision::Shown, vec![]), "{key}");
    }
    for key in ["Claim/claim-sex", "ExplanationOfBenefit/eob-sex", "Claim/claim-mh"] {
        assert_eq!(d[key].0, Decision::Withheld, "{key}");
        assert!(d[key].1.iter().any(|r| r.starts_with("minors:minor-consented:")), "{key}: {:?}", d[key].1);
    }
}

#[test]
fn configured_types_are_checked_at_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let text = std::fs::read_to_string(dir.join("policy.toml")).unwrap();
    let load = |t: String| PolicyConfig::from_toml(&t, "policy.toml", &dir).map(|_| ()).map_err(|e| e.to_string());
    let e = load(text.replacen("\"Claim\", \"ExplanationOfBenefit\"", "\"claim\", \"ExplanationOfBenefit\"", 1));
    assert!(e.unwrap_err().contains("types.configured: `claim` is not a resource type name"));
    let e = load(text.replacen("\"Claim\", \"ExplanationOfBenefit\"", "\"Claim\", \"Claim\"", 1));
    assert!(e.unwrap_err().contains("`Claim` is listed twice"));
    let e = load(text.replacen(
        "\"Immunization\", \"MedicationRequest\", \"Observation\"",
        "\"MedicationRequest\", \"Observation\"",
        1,
    ));
    assert!(e.unwrap_err().contains("minors.proxy_limited_types: `Immunization` is not in types.configured"));
    assert!(load(text).is_ok());
}

fn synthea(file_prefix: &str) -> Vec<Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/synthea-r4");
    let path = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (the shared Synthea sample is needed)", dir.display()))
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(file_prefix)))
        .unwrap();
    crate::sources::files::read_json_file(&path).unwrap()
}

/// Lashaunda Rodriguez (Synthea, born 1997-11-20) had contraception visits at 13 and 14
/// (2011-11-17, 2012-11-11). Decided as of 2012-12-01 (she is 15, her parent sees the
/// limited record) and as a 10-year-old's would be (the visit is any-age confidential).
#[test]
fn synthea_teens_contraception_visits_are_billed_but_never_shown_to_her_parent() {
    const VISITS: &[&str] = &["19203367-20d0-46b3-adb0-841891a84628", "4ce07fea-8e6a-4fc2-9998-142f02640cc0"];
    // With bills in the limited record, so that only the labels can keep them back.
    let p = policy_with(|t| {
        t.replacen(
            "proxy_limited_types = [\"AllergyIntolerance\"",
            "proxy_limited_types = [\"Claim\", \"ExplanationOfBenefit\", \"AllergyIntolerance\"",
            1,
        )
    });
    let mut resources = synthea("Lashaunda_Rodriguez_");
    p.labeler().label(&mut resources);
    let patient_id = fhir::resource_id(&resources[0]).unwrap().to_string();
    let rec = Arc::new(Record::new(patient_id, resources, HashMap::new(), vec![], BTreeMap::new()));
    // The bills of the visits, found by what they reference (not by their labels).
    let bills: Vec<String> = rec
        .resources
        .iter()
        .filter(|x| matches!(fhir::resource_type(x), Some("Claim" | "ExplanationOfBenefit")))
        .filter(|x| VISITS.iter().any(|v| x.to_string().contains(v)))
        .map(key_of)
        .collect();
    let claims = bills.iter().filter(|k| k.starts_with("Claim/")).count();
    let eobs = bills.iter().filter(|k| k.starts_with("ExplanationOfBenefit/")).count();
    assert!(claims >= 2 && eobs >= 2, "the sample bills both visits: {bills:?}");
    let other_claims = rec.resources.iter().filter(|x| fhir::resource_type(x) == Some("Claim")).count() - claims;
    assert!(other_claims > 10, "and many other visits");
    let at = |date: &str| PolicyContext { now: date.parse().unwrap(), ledger: PatientLedger::default() };
    for (date, age) in [("2012-12-01T12:00:00Z", "15"), ("2008-01-01T12:00:00Z", "10")] {
        let (released, ex) = p.decide(&rec, &Viewer::from_spec("proxy:MTH", None).unwrap(), &at(date)).unwrap();
        let d: BTreeMap<String, (Decision, Vec<String>)> =
            ex.into_iter().map(|e| (e.resource, (e.decision, e.rules))).collect();
        for key in &bills {
            assert!(
                d[key].0 == Decision::Withheld && d[key].1.contains(&"minors:minor-consented:SEX".to_string()),
                "parent of {age}: {key}: {:?}",
                d[key]
            );
        }
        let out = serde_json::to_string(released.resources()).unwrap();
        for v in VISITS {
            assert!(!out.contains(v), "parent of {age}: the visit {v} is named in what is released");
        }
        let shown_claims = d.iter().filter(|(k, (dec, _))| k.starts_with("Claim/") && *dec == Decision::Shown).count();
        assert!(shown_claims > 10, "parent of {age} sees the other bills ({shown_claims})");
    }
    // She sees her own bills.
    let d = decided(&p, &rec, &Viewer::from_spec("patient", None).unwrap());
    assert!(bills.iter().all(|k| d[k].0 == Decision::Shown));
}
