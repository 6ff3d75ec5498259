//! The decision on small hand-made records: each rule on both sides.

use super::*;
use crate::policy::holds::Consent;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

pub(super) const NOW: &str = "2026-06-15T12:00:00Z";

pub(super) fn now() -> DateTime<Utc> {
    NOW.parse().unwrap()
}

pub(super) fn policy_with(edit: impl Fn(String) -> String) -> Policy {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let text = edit(std::fs::read_to_string(dir.join("policy.toml")).unwrap());
    let config = PolicyConfig::from_toml(&text, "policy.toml", &dir).unwrap();
    Policy::new(config, FixedOffset::east_opt(0).unwrap()).unwrap()
}

pub(super) fn policy() -> Policy {
    policy_with(|t| t)
}

fn sec(codes: &[&str]) -> Value {
    json!(codes
        .iter()
        .map(|c| match *c {
            "R" | "V" | "N" => json!({"system": crate::label::CONFIDENTIALITY, "code": c}),
            _ => json!({"system": crate::label::ACT_CODE, "code": c}),
        })
        .collect::<Vec<_>>())
}

fn record(birth: &str, mut resources: Vec<Value>) -> Arc<Record> {
    resources.insert(0, json!({"resourceType": "Patient", "id": "p", "birthDate": birth}));
    Arc::new(Record::new("p".into(), resources, HashMap::new(), vec![], BTreeMap::new()))
}

fn obs(id: &str, labels: &[&str]) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final", "subject": {"reference": "Patient/p"},
           "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
           "code": {"text": id}, "issued": "2026-06-10T00:00:00Z", "meta": {"security": sec(labels)}})
}

fn ctx() -> PolicyContext {
    PolicyContext { now: now(), ledger: PatientLedger::default() }
}

fn decided(p: &Policy, r: &Arc<Record>, v: &Viewer, c: &PolicyContext) -> BTreeMap<String, (Decision, Vec<String>)> {
    let (_, ex) = p.decide(r, v, c).unwrap();
    ex.into_iter().map(|e| (e.resource, (e.decision, e.rules))).collect()
}

fn viewer(spec: &str) -> Viewer {
    Viewer::from_spec(spec, None).unwrap()
}

fn shown(d: &BTreeMap<String, (Decision, Vec<String>)>, key: &str) -> bool {
    d[key].0 == Decision::Shown
}

#[test]
fn a_parent_of_a_16_year_old_sees_only_the_limited_unlabelled_record() {
    let r = record(
        "2010-01-01",
        vec![
            obs("preg", &["PREGNANT", "R"]),
            obs("cbc", &[]),
            json!({"resourceType": "Immunization", "id": "flu", "patient": {"reference": "Patient/p"}}),
            json!({"resourceType": "Condition", "id": "acne", "subject": {"reference": "Patient/p"}}),
            json!({"resourceType": "Condition", "id": "conf", "subject": {"reference": "Patient/p"}, "meta": {"security": sec(&["R"])}}),
        ],
    );
    let p = policy();
    let d = decided(&p, &r, &viewer("proxy:MTH"), &ctx());
    assert!(!shown(&d, "Observation/preg"));
    assert!(d["Observation/preg"].1.contains(&"minors:minor-consented:PREGNANT".to_string()));
    assert_eq!(d["Observation/cbc"].1, vec!["minors:proxy-limited-type"]);
    assert!(shown(&d, "Immunization/flu") && shown(&d, "Condition/acne") && shown(&d, "Patient/p"));
    assert_eq!(d["Condition/conf"].1, vec!["minors:proxy-limited-labelled"]);
    let me = decided(&p, &r, &viewer("patient"), &ctx());
    assert!(me.values().all(|(d, _)| *d == Decision::Shown), "the adolescent sees her whole record: {me:?}");
}

#[test]
fn a_parent_of_a_10_year_old_sees_all_but_minor_consented_services() {
    let r = record("2016-01-01", vec![obs("sti", &["STD"]), obs("cbc", &[])]);
    let d = decided(&policy(), &r, &viewer("proxy:FTH"), &ctx());
    assert!(shown(&d, "Observation/cbc"));
    assert!(!shown(&d, "Observation/sti"));
}

#[test]
fn proxy_access_ends_at_18_unless_granted_and_birthdays_are_exact() {
    let p = policy();
    let adult = record("2008-06-15", vec![obs("cbc", &[])]);
    assert!(matches!(p.decide(&adult, &viewer("proxy:PRN"), &ctx()), Err(Denied::NoAccess(_))));
    assert!(shown(&decided(&p, &adult, &viewer("proxy:PRN:adult-granted"), &ctx()), "Observation/cbc"));
    let day_before = record("2008-06-16", vec![obs("cbc", &[])]);
    assert!(p.decide(&day_before, &viewer("proxy:PRN"), &ctx()).is_ok(), "17 until the birthday");
}

#[test]
fn assent_jurisdiction_needs_the_teens_assent() {
    let p = policy_with(|t| t.replace("jurisdiction = \"default\"", "jurisdiction = \"assent-at-13\""));
    let r = record(
        "2012-06-01",
        vec![json!({"resourceType": "Immunization", "id": "flu", "patient": {"reference": "Patient/p"}})],
    );
    assert!(matches!(p.decide(&r, &viewer("proxy:MTH"), &ctx()), Err(Denied::NoAccess(_))));
    assert!(shown(&decided(&p, &r, &viewer("proxy:MTH:assent"), &ctx()), "Immunization/flu"));
    let twelve = record("2014-01-01", vec![obs("cbc", &[])]);
    assert!(shown(&decided(&p, &twelve, &viewer("proxy:MTH"), &ctx()), "Observation/cbc"), "12 is still a child there");
}

#[test]
fn part2_goes_to_partners_only_with_consent_or_in_an_emergency_and_is_stamped() {
    let p = policy();
    let r = record("1990-01-01", vec![obs("oud", &["42CFRPart2", "ETH", "R"]), obs("cbc", &[])]);
    let d = decided(&p, &r, &viewer("partner:hie:TREAT"), &ctx());
    assert_eq!(d["Observation/oud"].1, vec!["part2:no-consent"]);
    assert!(shown(&d, "Observation/cbc"));
    let mut with_consent = ctx();
    with_consent.ledger.consents.push(Consent {
        id: "c".into(),
        partner: "hie".into(),
        purposes: vec!["TREAT".into()],
        part2: true,
    });
    let (released, ex) = p.decide(&r, &viewer("partner:hie:TREAT"), &with_consent).unwrap();
    assert!(ex.iter().any(|e| e.resource == "Observation/oud" && e.rules == vec!["part2:released:consent"]));
    let oud = released.get("Observation", "oud").unwrap();
    assert!(label_codes(oud).is_superset(&["R", "42CFRPart2", "NORDSCLCD"].iter().map(ToString::to_string).collect()));
    assert!(released.notices().iter().any(|n| n.diagnostics.contains("42 CFR part 2")));
    assert!(
        !decided(&p, &r, &viewer("partner:other:TREAT"), &with_consent)["Observation/oud"].0.eq(&Decision::Shown),
        "consent names the partner"
    );
    assert!(shown(&decided(&p, &r, &viewer("partner:hie:ETREAT"), &ctx()), "Observation/oud"));
    assert!(matches!(p.decide(&r, &viewer("partner:hie:HRESCH"), &ctx()), Err(Denied::Purpose(_))));
}

#[test]
fn internal_notes_are_never_released_to_patient_facing_viewers() {
    let note = json!({"resourceType": "DocumentReference", "id": "n", "subject": {"reference": "Patient/p"},
        "type": {"coding": [{"system": "https://ehr.harbor-health.example/fhir/CodeSystem/note-type", "code": "internal-staff-note"}]}});
    let r = record("1980-01-01", vec![note]);
    let p = policy();
    assert_eq!(decided(&p, &r, &viewer("patient"), &ctx())["DocumentReference/n"].1, vec!["exclusion:document-type"]);
    assert!(shown(&decided(&p, &r, &viewer("staff"), &ctx()), "DocumentReference/n"));
}

#[test]
fn holds_last_until_release_or_their_maximum_and_take_the_report_with_them() {
    let p = policy_with(|t| {
        t.replace("rules = []", "rules = [{ id = \"crit\", interpretations = [\"HH\"], max = \"7d\" }]")
    });
    let mut k = obs("k", &[]);
    k["interpretation"] = json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "HH"}]}]);
    let report = json!({"resourceType": "DiagnosticReport", "id": "bmp", "subject": {"reference": "Patient/p"}, "result": [{"reference": "Observation/k"}, {"reference": "Observation/na"}]});
    let r = record("1970-01-01", vec![k, obs("na", &[]), report]);
    let d = decided(&p, &r, &viewer("patient"), &ctx());
    assert_eq!(d["Observation/k"].1, vec!["hold:crit"]);
    assert_eq!(d["DiagnosticReport/bmp"].1, vec!["hold:with-its-report"]);
    assert_eq!(d["Observation/na"].1, vec!["hold:with-its-report"]);
    assert!(shown(&decided(&p, &r, &viewer("staff"), &ctx()), "Observation/k"), "staff are not held");
    assert!(shown(&decided(&p, &r, &viewer("partner:hie:TREAT"), &ctx()), "Observation/k"), "partners are not held");
    let mut released = ctx();
    released.ledger.releases.insert("Observation/k".into());
    assert!(shown(&decided(&p, &r, &viewer("patient"), &released), "DiagnosticReport/bmp"));
    let later = PolicyContext { now: "2026-06-17T00:00:01Z".parse().unwrap(), ledger: PatientLedger::default() };
    assert!(shown(&decided(&p, &r, &viewer("patient"), &later), "Observation/k"), "7 days after issue the hold ends");
}

#[test]
fn a_patients_own_preference_holds_labelled_results() {
    let r = record("1970-01-01", vec![obs("hiv", &["HIV", "R"]), obs("cbc", &[])]);
    let mut c = ctx();
    c.ledger.preferences.insert("HIV".into());
    let d = decided(&policy(), &r, &viewer("patient"), &c);
    assert_eq!(d["Observation/hiv"].1, vec!["hold:patient-preference"]);
    assert!(shown(&d, "Observation/cbc"));
}

#[test]
fn app_scopes_only_narrow() {
    let vitals = json!({"resourceType": "Observation", "id": "bp", "subject": {"reference": "Patient/p"},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}]});
    let r = record(
        "1970-01-01",
        vec![
            obs("cbc", &[]),
            vitals,
            json!({"resourceType": "Condition", "id": "c", "subject": {"reference": "Patient/p"}}),
        ],
    );
    let app = Viewer::from_spec(
        "patient",
        Some("patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"),
    )
    .unwrap();
    let d = decided(&policy(), &r, &app, &ctx());
    assert!(shown(&d, "Observation/cbc"));
    assert_eq!(d["Observation/bp"].1, vec!["scope:not-granted"]);
    assert_eq!(d["Condition/c"].1, vec!["scope:not-granted"]);
    let proxy_app = Viewer::from_spec("proxy:MTH", Some("patient/*.read")).unwrap();
    let teen = record("2010-01-01", vec![obs("cbc", &[])]);
    assert!(
        !shown(&decided(&policy(), &teen, &proxy_app, &ctx()), "Observation/cbc"),
        "a wide scope does not widen a proxy"
    );
}

#[test]
fn system_scopes_narrow_a_partner_as_patient_scopes_narrow_an_app() {
    let vitals = json!({"resourceType": "Observation", "id": "bp", "subject": {"reference": "Patient/p"},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}]});
    let oud = json!({"resourceType": "Condition", "id": "oud", "subject": {"reference": "Patient/p"},
        "meta": {"security": sec(&["42CFRPart2", "R"])}});
    let r = record("1970-01-01", vec![obs("cbc", &[]), vitals, oud]);
    let lab = "system/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory";
    let partner = Viewer::from_spec("partner:hie:ETREAT", Some(lab)).unwrap();
    let d = decided(&policy(), &r, &partner, &ctx());
    assert!(shown(&d, "Observation/cbc"));
    assert_eq!(d["Patient/p"].1, vec!["scope:not-granted"], "as for an app not granted Patient");
    assert_eq!(d["Observation/bp"].1, vec!["scope:not-granted"]);
    assert_eq!(d["Condition/oud"].1, vec!["scope:not-granted"], "an emergency does not widen scopes");
    let wide = Viewer::from_spec("partner:hie:TREAT", Some("system/*.read")).unwrap();
    let d = decided(&policy(), &r, &wide, &ctx());
    assert!(shown(&d, "Observation/bp") && shown(&d, "Observation/cbc"));
    assert_eq!(d["Condition/oud"].1, vec!["part2:no-consent"], "scopes do not widen the purpose either");
}

#[test]
fn released_copies_lose_references_to_withheld_items_and_proxies_lose_sensitivity_labels() {
    let cond = json!({"resourceType": "Condition", "id": "sti", "subject": {"reference": "Patient/p"}, "meta": {"security": sec(&["STD", "R"])}});
    let enc = json!({"resourceType": "Encounter", "id": "e", "subject": {"reference": "Patient/p"},
        "diagnosis": [{"condition": {"reference": "Condition/sti", "display": "Chlamydia"}}], "meta": {"security": sec(&["HIV", "R"])}});
    let r = record("2016-01-01", vec![cond, enc]);
    let p = policy();
    let (released, _) = p.decide(&r, &viewer("staff"), &ctx()).unwrap();
    assert_eq!(
        label_codes(released.get("Condition", "sti").unwrap()),
        ["R", "STD"].iter().map(ToString::to_string).collect()
    );
    assert!(released.notices().is_empty(), "no withheld-notice for staff");
    // Make the encounter visible to a proxy by dropping its minor-consented label.
    let mut r2 = record("2016-01-01", vec![r.resources[1].clone(), r.resources[2].clone()]);
    Arc::get_mut(&mut r2).unwrap().resources[2]["meta"]["security"] = sec(&["GDIS", "R"]);
    let (released, _) = p.decide(&r2, &viewer("proxy:MTH"), &ctx()).unwrap();
    let alone = released.one(released.position("Encounter", "e").unwrap()).unwrap();
    let enc = released.get("Encounter", "e").unwrap();
    assert_eq!(&alone, enc, "read alone, it is finished as in the whole release");
    assert!(enc.get("diagnosis").is_none(), "{enc}");
    assert!(!enc.to_string().contains("Chlamydia"));
    assert!(label_codes(enc).is_empty(), "sensitivity and the confidentiality that would single it out are stripped");
    assert!(released.get("Condition", "sti").is_none());
    assert_eq!(released.notices().len(), 1, "the withheld-notice");
}

#[test]
fn the_patient_does_not_name_a_system_whose_data_was_all_withheld() {
    let tag = |code: &str| json!({"system": crate::aggregate::merge::SOURCE_TAG_SYSTEM, "code": code});
    let mut r = record(
        "1990-01-01",
        vec![
            {
                let mut o = obs("oud", &["42CFRPart2", "ETH", "R"]);
                o["meta"]["tag"] = json!([tag("behavioral")]);
                o
            },
            {
                let mut o = obs("cbc", &[]);
                o["meta"]["tag"] = json!([tag("ehr")]);
                o
            },
        ],
    );
    Arc::get_mut(&mut r).unwrap().resources[0]["meta"] =
        json!({"source": "urn:portico:source:ehr", "tag": [tag("ehr"), tag("behavioral")]});
    let p = policy();
    let tags = |released: &Released| -> Vec<String> {
        released.patient().unwrap()["meta"]["tag"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["code"].as_str().unwrap().to_string())
            .collect()
    };
    let (partner, _) = p.decide(&r, &viewer("partner:hie:TREAT"), &ctx()).unwrap();
    assert_eq!(tags(&partner), vec!["ehr"]);
    // Read alone (before the rest is finished), the Patient is finished as in the whole release.
    let alone = partner.patient().unwrap();
    assert_eq!(Some(&alone), partner.resources().first());
    let (staff, _) = p.decide(&r, &viewer("staff"), &ctx()).unwrap();
    assert_eq!(tags(&staff), vec!["ehr", "behavioral"]);
    let (emergency, _) = p.decide(&r, &viewer("partner:hie:ETREAT"), &ctx()).unwrap();
    assert_eq!(tags(&emergency), vec!["ehr", "behavioral"]);
}

#[test]
fn clinics_and_clinicians_are_shown_only_through_what_is_shown() {
    let mut oud = obs("oud", &["42CFRPart2", "ETH", "R"]);
    oud["performer"] = json!([{"reference": "Organization/clinic"}]);
    let mut cbc = obs("cbc", &[]);
    cbc["performer"] = json!([{"reference": "Practitioner/doc"}]);
    let r = record(
        "1990-01-01",
        vec![
            oud,
            cbc,
            json!({"resourceType": "Organization", "id": "clinic", "name": "Harbor Behavioral Health Clinic"}),
            json!({"resourceType": "Organization", "id": "lab", "name": "Bayview"}),
            json!({"resourceType": "Practitioner", "id": "doc", "extension": [{"url": "x", "valueReference": {"reference": "Organization/lab"}}]}),
        ],
    );
    let d = decided(&policy(), &r, &viewer("partner:hie:TREAT"), &ctx());
    assert_eq!(d["Organization/clinic"].1, vec!["supporting:not-referenced"]);
    assert!(
        shown(&d, "Practitioner/doc") && shown(&d, "Organization/lab"),
        "reached through the shown result and its performer"
    );
    assert!(shown(&decided(&policy(), &r, &viewer("staff"), &ctx()), "Organization/clinic"));
}

/// The policy with `jurisdiction` in force.
fn policy_in(jurisdiction: &str) -> Policy {
    policy_with(|t| t.replace("jurisdiction = \"default\"", &format!("jurisdiction = {jurisdiction:?}")))
}

/// A proxy's decision and rules for one labelled Condition of a minor born on `birth`.
fn parent_sees(p: &Policy, birth: &str, labels: &[&str]) -> (bool, Vec<String>) {
    let c = json!({"resourceType": "Condition", "id": "c", "subject": {"reference": "Patient/p"},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F90.0"}]},
        "meta": {"security": sec(labels)}});
    let r = record(birth, vec![c, obs("cbc", &[])]);
    let d = decided(p, &r, &viewer("proxy:MTH"), &ctx());
    assert!(shown(&d, "Patient/p"));
    (shown(&d, "Condition/c"), d["Condition/c"].1.clone())
}

#[test]
fn a_parent_of_an_8_year_old_sees_adhd_care_a_parent_of_a_13_year_old_does_not() {
    // On 2026-06-15: born 2018-01-01 is 8, 2013-01-01 is 13. Mental health consent starts at 12.
    for j in ["default", "california"] {
        let p = policy_in(j);
        assert_eq!(parent_sees(&p, "2018-01-01", &["MH", "R"]), (true, vec![]), "{j}: 8-year-old's ADHD care");
        let (seen, rules) = parent_sees(&p, "2013-01-01", &["MH", "R"]);
        assert!(!seen, "{j}: 13-year-old's mental health care");
        assert!(rules.contains(&"minors:minor-consented:MH".to_string()), "{j}: {rules:?}");
        // The same 8-year-old's confidential services stay withheld whatever the band.
        let (seen, rules) = parent_sees(&p, "2018-01-01", &["PREGNANT", "R"]);
        assert!(!seen && rules == vec!["minors:minor-consented:PREGNANT"], "{j}: {rules:?}");
        // And the child's own view is the whole record at any age.
        let r = record("2018-01-01", vec![obs("adhd", &["MH", "R"])]);
        assert!(shown(&decided(&p, &r, &viewer("patient"), &ctx()), "Observation/adhd"));
    }
}

#[test]
fn the_birthday_that_makes_mental_health_care_the_minors_own_is_exact() {
    let p = policy();
    // 12 on 2026-06-15 exactly; the day before, 11.
    assert_eq!(parent_sees(&p, "2014-06-16", &["MH"]), (true, vec![]));
    let (seen, rules) = parent_sees(&p, "2014-06-15", &["MH"]);
    assert!(!seen);
    assert!(rules.contains(&"minors:minor-consented:MH".to_string()), "{rules:?}");
    // BH and PSY are the same service.
    assert_eq!(parent_sees(&p, "2014-06-16", &["BH", "PSY"]), (true, vec![]));
    assert!(parent_sees(&p, "2014-06-15", &["PSY"]).1.contains(&"minors:minor-consented:PSY".to_string()));
}

#[test]
fn washington_mental_health_is_the_minors_own_at_13_and_sti_care_at_14() {
    let wa = policy_in("washington");
    // 12 (born 2014-01-01): still the child's band there, and MH is the parent's to consent to.
    assert_eq!(parent_sees(&wa, "2014-01-01", &["MH", "R"]), (true, vec![]));
    assert_eq!(parent_sees(&wa, "2014-01-01", &["ETH"]), (true, vec![]), "substance use too");
    // 13 (born 2013-01-01): the minor's own.
    let (seen, rules) = parent_sees(&wa, "2013-01-01", &["MH", "R"]);
    assert!(!seen && rules.contains(&"minors:minor-consented:MH".to_string()), "{rules:?}");
    assert!(parent_sees(&wa, "2013-01-01", &["SUD"]).1.contains(&"minors:minor-consented:SUD".to_string()));
    // STI at 13: not yet the minor's own (withheld only because a limited band keeps every
    // labelled item); at 14 it is.
    let (seen, rules) = parent_sees(&wa, "2013-01-01", &["STD"]);
    assert!(!seen);
    assert_eq!(rules, vec!["minors:proxy-limited-labelled"], "13 in Washington: not minor-consented");
    let (seen, rules) = parent_sees(&wa, "2012-01-01", &["STD"]);
    assert!(!seen);
    assert!(rules.contains(&"minors:minor-consented:STD".to_string()), "14: {rules:?}");
    assert!(parent_sees(&wa, "2012-01-01", &["HIV"]).1.contains(&"minors:minor-consented:HIV".to_string()));
    // Under 13 in Washington STI care is the parent's to consent to, and so to see.
    assert_eq!(parent_sees(&wa, "2014-01-01", &["STD"]), (true, vec![]));
    // Contraception and pregnancy: any age.
    assert!(!parent_sees(&wa, "2014-01-01", &["SEX"]).0);
    assert!(!parent_sees(&wa, "2014-01-01", &["PREGNANT"]).0);
}

#[test]
fn california_pregnancy_care_is_confidential_at_11_and_sti_care_from_12() {
    let ca = policy_in("california");
    // 11 (born 2015-01-01): the child's band (all but confidential).
    let (seen, rules) = parent_sees(&ca, "2015-01-01", &["PREGNANT", "R"]);
    assert!(!seen);
    assert_eq!(rules, vec!["minors:minor-consented:PREGNANT"]);
    assert!(!parent_sees(&ca, "2015-01-01", &["SEX"]).0, "contraception: any age");
    assert!(!parent_sees(&ca, "2015-01-01", &["SDV"]).0, "sexual assault care: any age (Fam. Code § 6928)");
    assert_eq!(parent_sees(&ca, "2015-01-01", &["STD"]), (true, vec![]), "STI consent starts at 12");
    assert_eq!(parent_sees(&ca, "2015-01-01", &["HIV"]), (true, vec![]), "HIV testing consent starts at 12");
    assert_eq!(parent_sees(&ca, "2015-01-01", &["ETH"]), (true, vec![]), "substance use consent starts at 12");
    // An unlabelled result of the same 11-year-old: shown.
    let r = record("2015-01-01", vec![obs("cbc", &[])]);
    assert!(shown(&decided(&ca, &r, &viewer("proxy:MTH"), &ctx()), "Observation/cbc"));
    // 12 (born 2014-01-01): STI, HIV and substance use are the minor's own.
    for label in ["STD", "HIV", "ETH", "MH"] {
        let (seen, rules) = parent_sees(&ca, "2014-01-01", &[label]);
        assert!(!seen && rules.contains(&format!("minors:minor-consented:{label}")), "{label}: {rules:?}");
    }
}

#[test]
fn part2_records_are_never_a_parents_at_any_age_anywhere() {
    for j in ["default", "california", "washington", "assent-at-13"] {
        let (seen, rules) = parent_sees(&policy_in(j), "2020-01-01", &["42CFRPart2", "R"]);
        assert!(!seen, "{j}");
        assert_eq!(rules, vec!["minors:minor-consented:42CFRPart2"], "{j}");
    }
}

#[test]
fn an_adult_who_granted_access_has_no_minor_consented_services() {
    let (_, ex) = policy_in("california")
        .decide(&record("2000-01-01", vec![obs("preg", &["PREGNANT"])]), &viewer("proxy:MTH:adult-granted"), &ctx())
        .unwrap();
    assert!(ex.iter().all(|e| e.decision == Decision::Shown), "{ex:?}");
}
