//! The shipped rules over every resource type, on data nobody on this project wrote: the
//! official FHIR R4 examples (`tests/data/r4-examples`, CC0) for billing and the newly
//! gathered types, and hand-made resources for the places the walk must not read and the
//! propagation links of billing, orders, specimens and questionnaires.

use super::*;
use crate::policy::PolicyConfig;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The labeller of config/policy.toml (and its labels.toml).
fn shipped() -> Labeler {
    let policy = PolicyConfig::load(&root().join("config/policy.toml")).unwrap();
    Labeler::new(&policy.label_rules).unwrap()
}

fn example(name: &str) -> Value {
    let path = root().join("tests/data/r4-examples").join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn labelled_alone(labeler: &Labeler, r: Value) -> BTreeSet<String> {
    let mut one = [r];
    labeler.label_record(&mut one, &HashSet::new());
    sensitivity_labels_of(&one[0])
}

fn set(codes: &[&str]) -> BTreeSet<String> {
    codes.iter().map(ToString::to_string).collect()
}

#[test]
fn official_r4_examples_of_billing_and_new_types_are_labelled_where_sensitive_and_only_there() {
    let labeler = shipped();
    // Expected sensitivity per example, read from the examples themselves (not the rules).
    let expected: &[(&str, &[&str])] = &[
        // Pharmacy claim for alprazolam (an anxiolytic): mental health.
        ("Claim-760151", &["MH"]),
        // Smoking cessation: tobacco is not substance use in the rules (F17 excluded).
        ("Claim-760150", &[]),
        ("Claim-960151", &[]),
        ("Claim-MED-00050", &[]),
        ("Claim-100152", &[]),
        ("ExplanationOfBenefit-EB3500", &[]),
        ("ExplanationOfBenefit-EB3501", &[]),
        ("Coverage-9876B1", &[]),
        // Oxycodone, azithromycin, fentanyl: not by themselves a sensitive service.
        ("MedicationDispense-meddisp0303", &[]),
        ("MedicationDispense-meddisp0319", &[]),
        ("MedicationDispense-meddisp0325", &[]),
        // An order for a vaginal delivery: pregnancy.
        ("ServiceRequest-ob", &["PREGNANT"]),
        // CYP2D6 gene mutation analysis: genetic.
        ("ServiceRequest-example-pgx", &["GDIS"]),
        ("ServiceRequest-lipid", &[]),
        ("ServiceRequest-myringotomy", &[]),
        ("ImagingStudy-example-xr", &[]),
        ("QuestionnaireResponse-gcs", &[]),
        ("QuestionnaireResponse-3141", &[]),
        ("Specimen-101", &[]),
        // A BRCAPRO genetic risk assessment: genetic, but nothing in it is a code or word the
        // rules know (method `BRCAPRO` without a system, outcome "Breast Cancer") — why a type
        // the policy has no rules for is withheld from proxies, apps and partners.
        ("RiskAssessment-genetic", &[]),
        ("Basic-referral", &[]),
    ];
    let mut wrong = Vec::new();
    for (name, want) in expected {
        let got = labelled_alone(&labeler, example(name));
        if got != set(want) {
            wrong.push(format!("{name}: expected {want:?}, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn claim_and_eob_codes_are_read_wherever_they_sit() {
    let labeler = shipped();
    let claim = json!({"resourceType": "Claim", "id": "c",
        "diagnosis": [{"sequence": 1, "diagnosisCodeableConcept": {"coding": [
            {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "Z30.011"}]}}],
        "item": [{"sequence": 1, "productOrService": {"coding": [{"system": "http://snomed.info/sct", "code": "185349003"}]}}]});
    assert!(labelled_alone(&labeler, claim).contains("SEX"), "contraception diagnosis on a claim");
    let eob = json!({"resourceType": "ExplanationOfBenefit", "id": "e",
        "item": [{"sequence": 1, "detail": [{"sequence": 1, "subDetail": [{"sequence": 1,
            "productOrService": {"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "12496-1208-1",
                "display": "buprenorphine and naloxone sublingual film"}]}}]}]}]});
    assert!(labelled_alone(&labeler, eob).contains("ETH"), "an NDC drug line is a medication text");
    let dispense = json!({"resourceType": "MedicationDispense", "id": "d",
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
            "code": "1000126", "display": "medroxyprogesterone acetate 150 MG/ML Injectable Suspension"}]}});
    assert!(labelled_alone(&labeler, dispense).contains("SEX"));
    let imaging = json!({"resourceType": "ImagingStudy", "id": "i",
        "reasonCode": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "O26.891"}]}]});
    assert!(labelled_alone(&labeler, imaging).contains("PREGNANT"));
    let encounter = json!({"resourceType": "Encounter", "id": "v",
        "reasonCode": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F90.0"}]}]});
    assert!(labelled_alone(&labeler, encounter).contains("MH"), "ADHD visit");
}

#[test]
fn money_plan_person_and_bookkeeping_places_are_never_read() {
    let labeler = shipped();
    let telling = |text: &str| json!({"coding": [{"system": "http://example.org/x", "code": "x", "display": text}], "text": text});
    // Every word here would label the resource if it were read.
    let eob = json!({"resourceType": "ExplanationOfBenefit", "id": "e",
        "meta": {"tag": [{"system": "http://example.org/t", "code": "hiv", "display": "HIV program"}]},
        "identifier": [{"type": telling("HIV clinic claim number"), "value": "1"}],
        "benefitBalance": [{"category": telling("Mental health"), "financial": [{"type": telling("substance abuse benefit")}]}],
        "adjudication": [{"category": telling("pregnancy benefit")}],
        "item": [{"sequence": 1, "productOrService": telling("office visit"),
            "adjudication": [{"category": telling("contraception allowance"), "reason": telling("HIV test not covered")}]}],
        "total": [{"category": telling("mental health total"), "amount": {"value": 1, "currency": "USD"}}],
        "payment": {"type": telling("abortion fund")},
        "payee": {"type": telling("methadone clinic")},
        "insurance": [{"focal": true, "coverage": {"display": "Family planning only plan"}}],
        "processNote": [{"text": "depression screening billed separately"}],
        "note": [{"text": "HIV"}]});
    assert_eq!(labelled_alone(&labeler, eob.clone()), set(&[]), "{eob}");
    let coverage = json!({"resourceType": "Coverage", "id": "cov",
        "relationship": telling("self"), "costToBeneficiary": [{"type": telling("mental health copay")}],
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EHCPOL"}]}});
    assert_eq!(labelled_alone(&labeler, coverage), set(&[]));
    // A UCUM unit code is not a finding, even one that spells a listed code.
    let obs = json!({"resourceType": "Observation", "id": "o", "code": {"text": "weight"},
        "valueQuantity": {"value": 1, "system": "http://unitsofmeasure.org", "code": "44249-1"}});
    assert_eq!(labelled_alone(&labeler, obs), set(&[]));
    // The other side: the same telling words where care is described are read.
    let mut billed = eob;
    billed["item"][0]["productOrService"] = telling("Mental health counseling");
    assert!(labelled_alone(&labeler, billed).contains("MH"));
}

#[test]
fn questionnaire_responses_read_their_loinc_form_and_items_not_their_prose() {
    let labeler = shipped();
    let answer = |link: &str| {
        json!({"linkId": link, "text": "Little interest or pleasure in doing things",
        "answer": [{"valueCoding": {"system": "http://loinc.org", "code": "LA6569-3", "display": "Several days"}}]})
    };
    // The LHC-Forms shape of LOINC 44249-1 (PHQ-9): form canonical and LOINC linkIds.
    let by_form = json!({"resourceType": "QuestionnaireResponse", "id": "q1", "status": "completed",
        "questionnaire": "http://loinc.org/q/44249-1|2.72", "item": [answer("q1")]});
    assert!(labelled_alone(&labeler, by_form).contains("MH"));
    let by_items = json!({"resourceType": "QuestionnaireResponse", "id": "q2", "status": "completed",
        "questionnaire": "https://forms.example.org/Questionnaire/intake",
        "item": [{"linkId": "/44249-1", "item": [answer("/44249-1/44250-9")]}]});
    assert!(labelled_alone(&labeler, by_items).contains("MH"));
    let contained = json!({"resourceType": "QuestionnaireResponse", "id": "q3", "status": "completed",
        "contained": [{"resourceType": "Questionnaire", "id": "f", "status": "active",
            "code": [{"system": "http://loinc.org", "code": "44249-1"}]}],
        "questionnaire": "#f", "item": [answer("1")]});
    assert!(labelled_alone(&labeler, contained).contains("MH"));
    // Answers alone (shared Likert codes) and question prose do not label; a wrong check digit
    // in a linkId is not a LOINC code.
    let anonymous = json!({"resourceType": "QuestionnaireResponse", "id": "q4", "status": "completed",
        "questionnaire": "https://forms.example.org/Questionnaire/44249-2",
        "item": [answer("/44249-2"), answer("phq-1")]});
    assert_eq!(labelled_alone(&labeler, anonymous), set(&[]));
}

#[test]
fn billing_orders_specimens_and_questionnaires_inherit_along_references() {
    let labeler = shipped();
    let r = |v: &str| json!({"reference": v});
    let icd = |code: &str| json!({"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code}]});
    let plain = json!({"coding": [{"system": "http://snomed.info/sct", "code": "185349003", "display": "Encounter for check up"}]});
    let mut record = vec![
        json!({"resourceType": "Patient", "id": "p"}),
        json!({"resourceType": "Encounter", "id": "visit", "reasonCode": [icd("Z11.3")]}),
        json!({"resourceType": "Condition", "id": "chlamydia", "code": icd("A56.0")}),
        json!({"resourceType": "MedicationRequest", "id": "rx", "medicationCodeableConcept": plain.clone(), "reasonCode": [icd("A56.0")]}),
        json!({"resourceType": "Coverage", "id": "cov", "beneficiary": r("Patient/p"), "subscriber": r("RelatedPerson/mom")}),
        json!({"resourceType": "Claim", "id": "by-visit", "item": [{"sequence": 1, "productOrService": plain.clone(), "encounter": [r("Encounter/visit")]}],
            "insurance": [{"focal": true, "coverage": r("Coverage/cov")}]}),
        json!({"resourceType": "Claim", "id": "by-diagnosis", "diagnosis": [{"sequence": 1, "diagnosisReference": r("Condition/chlamydia")}]}),
        json!({"resourceType": "Claim", "id": "by-prescription", "prescription": r("MedicationRequest/rx")}),
        json!({"resourceType": "ExplanationOfBenefit", "id": "eob", "claim": r("Claim/by-diagnosis")}),
        json!({"resourceType": "MedicationDispense", "id": "fill", "authorizingPrescription": [r("MedicationRequest/rx")]}),
        json!({"resourceType": "ServiceRequest", "id": "order", "code": plain.clone(), "reasonReference": [r("Condition/chlamydia")]}),
        json!({"resourceType": "DiagnosticReport", "id": "report", "code": plain.clone(), "basedOn": [r("ServiceRequest/order")],
            "specimen": [r("Specimen/swab")]}),
        json!({"resourceType": "Specimen", "id": "swab", "type": plain.clone()}),
        json!({"resourceType": "Specimen", "id": "drawn", "type": plain.clone(), "request": [r("ServiceRequest/order")]}),
        json!({"resourceType": "Claim", "id": "unrelated", "item": [{"sequence": 1, "productOrService": plain.clone()}]}),
    ];
    labeler.label_record(&mut record, &HashSet::new());
    let labels = |key: &str| {
        let r = record.iter().find(|r| propagate::key_of(r).as_deref() == Some(key)).unwrap();
        sensitivity_labels_of(r)
    };
    for key in [
        "Claim/by-visit",
        "Claim/by-diagnosis",
        "Claim/by-prescription",
        "ExplanationOfBenefit/eob",
        "MedicationDispense/fill",
        "ServiceRequest/order",
        "DiagnosticReport/report",
        "Specimen/swab",
        "Specimen/drawn",
    ] {
        assert!(labels(key).contains("STD"), "{key}: {:?}", labels(key));
    }
    assert_eq!(labels("Claim/unrelated"), set(&[]));
    assert_eq!(labels("Coverage/cov"), set(&[]), "a coverage inherits nothing from the claims that name it");
}
