//! Unit tests of the labeling service: rule compilation errors, matching, source labels
//! kept, no duplicates, confidentiality never lowered, Part 2 and propagation.

use super::*;
use crate::aggregate::provenance::SOURCE_TAG_SYSTEM;
use serde_json::json;

fn rule(id: &str, sensitivity: &str, confidentiality: Option<&str>) -> LabelRuleConfig {
    LabelRuleConfig {
        id: id.into(),
        sensitivity: sensitivity.into(),
        confidentiality: confidentiality.map(str::to_string),
        ..Default::default()
    }
}

fn icd(id: &str, sensitivity: &str, codes: &[&str]) -> LabelRuleConfig {
    LabelRuleConfig { icd10cm: codes.iter().map(ToString::to_string).collect(), ..rule(id, sensitivity, Some("R")) }
}

fn starter() -> Labeler {
    let mut sud = icd("sud", "ETH", &["F10-F16", "F18-F19"]);
    sud.icd10cm_exclude = vec!["F17".into()];
    let mut hiv = icd("hiv", "HIV", &["B20", "Z21"]);
    hiv.loinc = vec!["56888-1".into(), "20447-9".into()];
    let mut genetics = rule("genetics", "GDIS", Some("R"));
    genetics.report_category = vec!["GE".into()];
    let mut gender = icd("gender", "GENDER", &["F64"]);
    gender.confidentiality = None;
    Labeler::new(&[sud, hiv, genetics, gender, icd("mh", "MH", &["F20-F48"])]).unwrap()
}

fn condition(id: &str, code: &str) -> Value {
    json!({"resourceType": "Condition", "id": id,
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code}]}})
}

fn observation(id: &str, loinc: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]}})
}

fn tagged(mut r: Value, source: &str) -> Value {
    r["meta"] = json!({"tag": [{"system": SOURCE_TAG_SYSTEM, "code": source}]});
    r
}

fn codes(r: &Value) -> Vec<String> {
    fhir::path_values(r, "meta.security").iter().filter_map(|c| c["code"].as_str().map(str::to_string)).collect()
}

fn label(labeler: &Labeler, resources: &mut [Value]) -> BTreeMap<String, Vec<String>> {
    labeler.label_record(resources, &HashSet::from(["behavioral".to_string()]))
}

#[test]
fn compile_errors_name_the_rule_and_the_problem() {
    let cases: Vec<(LabelRuleConfig, &str)> = vec![
        (icd("r1", "FOO", &["B20"]), "`FOO` is not a v3-ActCode sensitivity code"),
        (icd("r2", "N", &["B20"]), "`N` is not a v3-ActCode sensitivity code"),
        (LabelRuleConfig { confidentiality: Some("N".into()), ..icd("r3", "HIV", &["B20"]) }, "must be R or V"),
        (icd("r4", "ETH", &["F16-F10"]), "runs backwards"),
        (icd("r5", "ETH", &["X"]), "`X` is not an ICD-10-CM code"),
        (icd("r6", "ETH", &[""]), "empty"),
        (rule("r7", "HIV", None), "matches nothing"),
        (LabelRuleConfig { loinc: vec!["56888-2".into()], ..rule("r8", "HIV", None) }, "expected 56888-1"),
        (LabelRuleConfig { snomed: vec!["86406009".into()], ..rule("r9", "HIV", None) }, "check digit"),
        (LabelRuleConfig { icd10cm_exclude: vec!["F17".into()], ..rule("r10", "ETH", None) }, "excludes from nothing"),
        (LabelRuleConfig { codings: vec!["nocode".into()], ..rule("r11", "ETH", None) }, "not `system|code`"),
        (icd("source", "HIV", &["B20"]), "reserved"),
        (icd("", "HIV", &["B20"]), "empty id"),
    ];
    for (config, expected) in cases {
        let err = Labeler::new(std::slice::from_ref(&config)).unwrap_err().to_string();
        assert!(err.contains(expected), "{}: {err}", config.id);
        assert!(config.id.is_empty() || err.contains(&format!("`{}`", config.id)), "{err}");
    }
    let err = Labeler::new(&[icd("twice", "HIV", &["B20"]), icd("twice", "STD", &["A56"])]).unwrap_err().to_string();
    assert!(err.contains("`twice`: duplicate id"), "{err}");
}

#[test]
fn ranges_and_exclusions_f17_is_never_substance_use() {
    let mut record = vec![
        condition("opioid", "F11.20"),
        condition("nicotine", "F17.210"),
        condition("other", "f19.10"),
        condition("alcohol", "F10"),
        condition("htn", "I10"),
    ];
    let why = label(&starter(), &mut record);
    assert_eq!(codes(&record[0]), ["ETH", "R"]);
    assert!(codes(&record[1]).is_empty(), "F17 nicotine must not be labelled ETH");
    assert_eq!(codes(&record[2]), ["ETH", "R"]);
    assert_eq!(codes(&record[3]), ["ETH", "R"]);
    assert!(codes(&record[4]).is_empty());
    assert_eq!(why["Condition/opioid"], ["sud"]);
    assert!(!why.contains_key("Condition/nicotine") && !why.contains_key("Condition/htn"));
    let added = &record[0]["meta"]["security"];
    assert_eq!(
        added[0],
        json!({"system": ACT_CODE, "code": "ETH", "display": "substance abuse information sensitivity"})
    );
    assert_eq!(added[1], json!({"system": CONFIDENTIALITY, "code": "R", "display": "restricted"}));
}

#[test]
fn source_labels_kept_in_order_and_legacy_nordslcd_normalized() {
    let source_labels = json!([
        {"system": "https://ehr.example/labels", "code": "LOCAL", "display": "local"},
        {"system": ACT_CODE, "code": "NORDSLCD", "display": "no redisclosure without consent directive"},
        {"system": CONFIDENTIALITY, "code": "N"},
    ]);
    let mut r = condition("c", "B20");
    r["meta"] = json!({"security": source_labels.clone(), "versionId": "3"});
    let mut record = vec![r];
    let why = label(&starter(), &mut record);
    let security = record[0]["meta"]["security"].as_array().unwrap();
    assert_eq!(security[0], source_labels[0]);
    let mut expected = source_labels[1].clone();
    expected["code"] = json!("NORDSCLCD");
    assert_eq!(security[1], expected, "only the code is rewritten");
    assert_eq!(security[2], source_labels[2]);
    assert_eq!(codes(&record[0])[3..], ["HIV", "R"]);
    assert_eq!(record[0]["meta"]["versionId"], "3");
    assert_eq!(why["Condition/c"], ["source", "hiv"]);
    assert_eq!(labels_of(&record[0]), BTreeSet::from(["LOCAL", "NORDSCLCD", "N", "HIV", "R"].map(String::from)));
}

#[test]
fn never_adds_a_label_twice() {
    let mut screen = observation("screen", "56888-1");
    screen["meta"] = json!({"security": [
        {"system": CONFIDENTIALITY, "code": "R"},
        {"system": "http://hl7.org/fhir/v3/ActCode", "code": "HIV"},
    ]});
    let mut both = condition("both", "B20");
    both["code"]["coding"]
        .as_array_mut()
        .unwrap()
        .push(json!({"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "Z21"}));
    let mut record = vec![screen, both];
    let labeler = starter();
    let why = label(&labeler, &mut record);
    assert_eq!(codes(&record[0]), ["R", "HIV"], "a label under the old ActCode URL counts");
    assert_eq!(why["Observation/screen"], ["source"], "the rule added nothing");
    assert_eq!(codes(&record[1]), ["HIV", "R"]);
    let before = record.clone();
    label(&labeler, &mut record);
    assert_eq!(record, before, "labeling is idempotent");
}

#[test]
fn confidentiality_is_never_lowered_or_repeated() {
    let with = |code: &str| {
        let mut r = condition(code, "B20");
        r["meta"] = json!({"security": [{"system": CONFIDENTIALITY, "code": code}]});
        r
    };
    let mut record = vec![with("V"), with("R"), with("N"), condition("none", "F64.0")];
    label(&starter(), &mut record);
    assert_eq!(codes(&record[0]), ["V", "HIV"]);
    assert_eq!(codes(&record[1]), ["R", "HIV"]);
    assert_eq!(codes(&record[2]), ["N", "HIV", "R"]);
    assert_eq!(codes(&record[3]), ["GENDER"], "F64 is gender identity, without R and not MH");
}

#[test]
fn part2_only_for_resources_a_part2_program_holds() {
    let mut both = tagged(condition("both", "I10"), "ehr");
    both["meta"]["tag"].as_array_mut().unwrap().push(json!({"system": SOURCE_TAG_SYSTEM, "code": "behavioral"}));
    let mut already = tagged(condition("already", "F11.20"), "behavioral");
    already["meta"]["security"] = json!([{"system": US_PRIVACY_LAW, "code": "42CFRPart2"}]);
    let not_a_tag = {
        let mut r = condition("fake", "I10");
        r["meta"] = json!({"tag": [{"system": "http://other.example", "code": "behavioral"}]});
        r
    };
    let mut record = vec![
        tagged(condition("nicotine", "F17.210"), "behavioral"),
        tagged(condition("ehr", "F17.210"), "ehr"),
        both,
        already,
        not_a_tag,
        tagged(json!({"resourceType": "Patient", "id": "p"}), "behavioral"),
    ];
    let why = label(&starter(), &mut record);
    assert_eq!(codes(&record[0]), ["42CFRPart2"]);
    assert_eq!(record[0]["meta"]["security"][0]["system"], ACT_CODE);
    assert_eq!(why["Condition/nicotine"], ["part2-program"]);
    assert!(codes(&record[1]).is_empty());
    assert_eq!(codes(&record[2]), ["42CFRPart2"]);
    assert_eq!(codes(&record[3]), ["42CFRPart2", "ETH", "R"], "42CFRPart2 under ActUSPrivacyLaw is the same label");
    assert_eq!(why["Condition/already"], ["source", "sud"]);
    assert!(codes(&record[4]).is_empty());
    assert!(codes(&record[5]).is_empty(), "the Patient is never labelled 42CFRPart2");
}

#[test]
fn report_and_results_propagate_both_ways() {
    let report = |id: &str, category: &str, results: &[&str]| {
        json!({"resourceType": "DiagnosticReport", "id": id,
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": category}]}],
            "result": results.iter().map(|r| json!({"reference": format!("Observation/{r}")})).collect::<Vec<_>>()})
    };
    let mut record = vec![
        report("ge", "GE", &["brca1", "brca2"]),
        observation("brca1", "21636-6"),
        observation("brca2", "21637-4"),
        report("panel", "LAB", &["vl", "cd4"]),
        observation("vl", "20447-9"),
        observation("cd4", "24467-3"),
        report("bmp", "LAB", &["k"]),
        observation("k", "2823-3"),
    ];
    let why = label(&starter(), &mut record);
    assert_eq!(codes(&record[0]), ["GDIS", "R"]);
    assert_eq!(why["DiagnosticReport/ge"], ["genetics"]);
    assert_eq!(codes(&record[1]), ["GDIS", "R"]);
    assert_eq!(why["Observation/brca1"], ["propagated:DiagnosticReport/ge"]);
    assert_eq!(codes(&record[3]), ["HIV", "R"], "result → report");
    assert_eq!(why["DiagnosticReport/panel"], ["propagated:Observation/vl"]);
    assert_eq!(codes(&record[5]), ["HIV", "R"], "result → report → other result");
    assert_eq!(why["Observation/cd4"], ["propagated:DiagnosticReport/panel"]);
    assert!(codes(&record[6]).is_empty() && codes(&record[7]).is_empty());
}

#[test]
fn encounter_medication_and_document_propagation() {
    let encounter = |id: &str, diagnoses: &[&str]| {
        json!({"resourceType": "Encounter", "id": id,
            "diagnosis": diagnoses.iter().map(|c| json!({"condition": {"reference": format!("Condition/{c}")}})).collect::<Vec<_>>()})
    };
    let document = |id: &str, enc: &str| json!({"resourceType": "DocumentReference", "id": id, "context": {"encounter": [{"reference": format!("Encounter/{enc}")}]}});
    let mut by_pointer = condition("hiv", "B20");
    by_pointer["encounter"] = json!({"reference": "Encounter/visit2"});
    let mut part2 = tagged(condition("oud", "F11.20"), "behavioral");
    part2["encounter"] = json!({"reference": "https://gw.example/fhir/Encounter/visit3"});
    let mut record = vec![
        encounter("visit1", &["mdd", "htn"]),
        condition("mdd", "F32.1"),
        condition("htn", "I10"),
        encounter("visit2", &[]),
        by_pointer,
        json!({"resourceType": "MedicationRequest", "id": "rx", "reasonReference": [{"reference": "Condition/hiv"}]}),
        json!({"resourceType": "MedicationRequest", "id": "rx2", "reasonReference": [{"reference": "Condition/htn"}]}),
        document("note1", "visit1"),
        document("note2", "visit2"),
        encounter("visit3", &[]),
        part2,
        document("note3", "visit3"),
    ];
    let why = label(&starter(), &mut record);
    let by_id = |id: &str| record.iter().find(|r| r["id"] == id).map(codes).unwrap();
    assert_eq!(by_id("visit1"), ["MH", "R"], "Encounter.diagnosis → Encounter");
    assert!(by_id("htn").is_empty(), "labels do not flow from the encounter back to its other diagnoses");
    assert_eq!(by_id("visit2"), ["HIV", "R"], "Condition.encounter → Encounter");
    assert_eq!(by_id("rx"), ["HIV", "R"], "reasonReference → MedicationRequest");
    assert!(by_id("rx2").is_empty());
    assert_eq!(by_id("note1"), ["MH", "R"], "Encounter → DocumentReference");
    assert_eq!(by_id("note2"), ["HIV", "R"], "Condition → Encounter → DocumentReference");
    assert_eq!(by_id("visit3"), ["ETH", "R"], "42CFRPart2 does not propagate");
    assert_eq!(by_id("note3"), ["ETH", "R"]);
    assert_eq!(why["Encounter/visit2"], ["propagated:Condition/hiv"]);
    assert_eq!(why["DocumentReference/note2"], ["propagated:Encounter/visit2"]);
    assert_eq!(why["MedicationRequest/rx"], ["propagated:Condition/hiv"]);
}

#[test]
fn propagated_confidentiality_is_the_highest_and_never_lowers() {
    let mut v = condition("v", "I10");
    v["meta"] =
        json!({"security": [{"system": CONFIDENTIALITY, "code": "V"}, {"system": CONFIDENTIALITY, "code": "R"}]});
    v["encounter"] = json!({"reference": "Encounter/e"});
    let mut e = json!({"resourceType": "Encounter", "id": "e"});
    e["meta"] =
        json!({"security": [{"system": CONFIDENTIALITY, "code": "R"}, {"system": ACT_CODE, "code": "NORDSCLCD"}]});
    let mut record = vec![
        v,
        e,
        json!({"resourceType": "DocumentReference", "id": "d", "context": {"encounter": [{"reference": "Encounter/e"}]}}),
    ];
    label(&starter(), &mut record);
    assert_eq!(codes(&record[1]), ["R", "NORDSCLCD", "V"]);
    assert_eq!(codes(&record[2]), ["V"], "handling codes do not propagate");
}

#[test]
fn classification_of_label_codings() {
    let c = |system: &str, code: &str| json!({"system": system, "code": code});
    for code in ["HIV", "STD", "ETH", "SUD", "BH", "MH", "PSY", "SEX", "PREGNANT", "SDV", "GDIS", "GENDER"] {
        assert!(is_sensitivity(&c(ACT_CODE, code)), "{code}");
        assert!(sensitivity_codes().contains(&code));
    }
    assert!(is_sensitivity(&c("urn:oid:2.16.840.1.113883.5.4", "HIV")));
    assert!(!is_sensitivity(&c("https://local.example", "HIV")));
    assert_eq!(label_kind(&c(CONFIDENTIALITY, "R")), LabelKind::Confidentiality);
    assert_eq!(label_kind(&c(ACT_CODE, "42CFRPart2")), LabelKind::PrivacyLaw);
    assert_eq!(label_kind(&c(US_PRIVACY_LAW, "42CFRPart2")), LabelKind::PrivacyLaw);
    assert_eq!(label_kind(&c(ACT_CODE, "NORDSCLCD")), LabelKind::Handling);
    assert_eq!(label_kind(&c(OBSERVATION_VALUE, "REDACTED")), LabelKind::Integrity);
    for not in
        [c(CONFIDENTIALITY, "R"), c(ACT_CODE, "42CFRPart2"), c(ACT_CODE, "NORDSCLCD"), c(OBSERVATION_VALUE, "REDACTED")]
    {
        assert!(!is_sensitivity(&not), "{not}");
    }
    let mut r = condition("c", "I10");
    r["meta"] = json!({"security": [c(ACT_CODE, "HIV"), c(CONFIDENTIALITY, "R"), c(ACT_CODE, "NORDSLCD")]});
    assert_eq!(labels_of(&r), BTreeSet::from(["HIV", "R", "NORDSCLCD"].map(String::from)));
    assert_eq!(sensitivity_labels_of(&r), BTreeSet::from(["HIV".to_string()]));
}

#[test]
fn reads_every_coding_wherever_it_sits_but_never_meta_notes_or_narrative() {
    let hiv = json!({"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "B20"}]});
    let hiv_coding = json!({"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "B20"});
    let mut record = vec![
        json!({"resourceType": "Observation", "id": "value", "code": {"text": "x"}, "valueCodeableConcept": hiv}),
        json!({"resourceType": "Procedure", "id": "reason", "reasonCode": [hiv]}),
        json!({"resourceType": "Encounter", "id": "enc", "reasonCode": [hiv]}),
        json!({"resourceType": "Goal", "id": "goal", "description": hiv}),
        json!({"resourceType": "Claim", "id": "claim", "diagnosis": [{"sequence": 1, "diagnosisCodeableConcept": hiv}]}),
        json!({"resourceType": "QuestionnaireResponse", "id": "qr",
            "item": [{"linkId": "1", "answer": [{"valueCoding": hiv_coding}]}]}),
        json!({"resourceType": "Condition", "id": "tag-only", "code": {"text": "x"},
            "meta": {"tag": [hiv_coding]}, "note": [{"text": "HIV B20"}],
            "text": {"status": "generated", "div": "<div>HIV B20</div>"}}),
        json!({"resourceType": "Patient", "id": "p", "extension": [{"url": "x", "valueCodeableConcept": hiv}]}),
    ];
    label(&starter(), &mut record);
    for r in &record[..6] {
        assert_eq!(codes(r), ["HIV", "R"], "{}", r["id"]);
    }
    assert_eq!(codes(&record[6]), Vec::<String>::new(), "meta, notes and the narrative are not read");
    assert_eq!(codes(&record[7]), Vec::<String>::new(), "the Patient is never labelled by rules");
}

#[test]
fn words_label_unknown_codes_with_a_telling_display_and_nothing_else() {
    let mut preg = rule("pregnancy", "PREGNANT", Some("R"));
    preg.terms = vec!["pregnan*".into(), "prenatal".into(), "embaraz*".into()];
    preg.terms_exclude = vec!["pregnancy test negative".into()];
    let mut mh = rule("adhd", "MH", Some("R"));
    mh.ingredients = vec!["methylphenidate".into()];
    mh.terms = vec!["attention deficit".into()];
    let labeler = Labeler::new(&[preg, mh]).unwrap();
    let display = |t: &str, id: &str, d: &str| json!({"resourceType": t, "id": id, "code": {"coding": [{"system": "http://local.example", "code": "1", "display": d}]}});
    let mut record = vec![
        display("Procedure", "a", "Prenatal visit"),
        display("Procedure", "b", "Control de embarazo"),
        json!({"resourceType": "Condition", "id": "c", "code": {"text": "Attention-deficit disorder"}}),
        json!({"resourceType": "MedicationRequest", "id": "d", "medicationCodeableConcept": {"coding": [
            {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "999999", "display": "Methylphenidate 10 MG Oral Tablet"}]}}),
        // Not a medication: an ingredient name alone does not label a lab test.
        display("Observation", "e", "Methylphenidate [Mass/volume] in Urine"),
        display("Observation", "f", "Pregnancy test negative"),
        display("Observation", "g", "Nonpregnant state"),
        display("Observation", "h", "Body weight"),
    ];
    let why = label(&labeler, &mut record);
    for r in &record[..4] {
        assert!(!codes(r).is_empty(), "{} should be labelled", r["id"]);
    }
    assert_eq!(why["Procedure/a"], ["pregnancy:words"]);
    assert_eq!(why["MedicationRequest/d"], ["adhd:words"]);
    for r in &record[4..8] {
        assert!(codes(r).is_empty(), "{} must not be labelled: {:?}", r["id"], codes(r));
    }
}

#[test]
fn a_sensitive_visit_labels_what_happened_in_it_but_a_diagnosis_does_not_spread_to_vitals() {
    let labeler = starter();
    let enc = |id: &str, reason: Option<&str>| {
        let mut e = json!({"resourceType": "Encounter", "id": id});
        if let Some(code) = reason {
            e["reasonCode"] = json!([{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code}]}]);
        }
        e
    };
    let in_visit = |mut r: Value, e: &str| {
        r["encounter"] = json!({"reference": format!("Encounter/{e}")});
        r
    };
    let mut record = vec![
        enc("detox", Some("F11.20")),
        in_visit(observation("bp", "85354-9"), "detox"),
        json!({"resourceType": "Claim", "id": "claim", "item": [{"sequence": 1, "encounter": [{"reference": "Encounter/detox"}]}]}),
        enc("checkup", None),
        in_visit(condition("hiv-dx", "B20"), "checkup"),
        in_visit(observation("weight", "29463-7"), "checkup"),
        json!({"resourceType": "DocumentReference", "id": "note", "context": {"encounter": [{"reference": "Encounter/checkup"}]}}),
        enc("only-confidential", None),
        in_visit(observation("vl", "20447-9"), "only-confidential"),
    ];
    let why = label(&labeler, &mut record);
    assert_eq!(codes(&record[1]), ["ETH", "R"], "vitals taken in a detox visit");
    assert_eq!(codes(&record[2]), ["ETH", "R"], "the claim for the detox visit");
    assert_eq!(codes(&record[3]), ["HIV", "R"], "the visit addressed the HIV diagnosis");
    assert!(codes(&record[5]).is_empty(), "a diagnosis does not make the visit's vitals sensitive");
    assert_eq!(codes(&record[6]), ["HIV", "R"], "the visit's note describes the diagnosis");
    assert_eq!(codes(&record[7]), ["HIV", "R"], "a visit that was only a confidential service");
    assert_eq!(why["Encounter/only-confidential"], ["propagated:Observation/vl"]);
}

#[test]
fn contained_resources_code_system_oids_and_referenced_medications() {
    let hiv_drug = json!({"coding": [{"system": "urn:oid:2.16.840.1.113883.6.88", "code": "1999667"}]});
    let mut labeler_rules = vec![icd("hiv", "HIV", &["B20"])];
    labeler_rules[0].rxnorm = vec!["1999667".into()];
    let labeler = Labeler::new(&labeler_rules).unwrap();
    let mut record = vec![
        json!({"resourceType": "MedicationRequest", "id": "contained", "medicationReference": {"reference": "#m"},
            "contained": [{"resourceType": "Medication", "id": "m", "code": hiv_drug}]}),
        json!({"resourceType": "Medication", "id": "shared", "code": hiv_drug}),
        json!({"resourceType": "MedicationRequest", "id": "referencing", "medicationReference": {"reference": "Medication/shared"}}),
        json!({"resourceType": "Condition", "id": "oid",
            "code": {"coding": [{"system": "urn:oid:2.16.840.1.113883.6.90", "code": "B20"}]}}),
    ];
    let why = label(&labeler, &mut record);
    assert_eq!(codes(&record[0]), ["HIV", "R"]);
    assert_eq!(codes(&record[1]), ["HIV", "R"]);
    assert_eq!(codes(&record[2]), ["HIV", "R"]);
    assert_eq!(why["MedicationRequest/referencing"], ["propagated:Medication/shared"]);
    assert_eq!(codes(&record[3]), ["HIV", "R"]);
}

#[test]
fn codes_are_compared_the_way_their_systems_write_them() {
    let mut sud = icd("sud", "ETH", &["F10-F16"]);
    sud.hcpcs = vec!["H0020".into()];
    sud.cpt = vec!["0001U".into()];
    sud.snomed = vec!["87612001".into()];
    let mut genetics = rule("genetics", "GDIS", Some("R"));
    genetics.report_category = vec!["GE".into()];
    let labeler = Labeler::new(&[sud, genetics]).unwrap();
    let coded = |id: &str, t: &str, system: &str, code: &str| json!({"resourceType": t, "id": id, "code": {"coding": [{"system": system, "code": code}]}});
    let mut record = vec![
        coded("icd", "Condition", "http://hl7.org/fhir/sid/icd-10-cm", " f11.20 "),
        coded("hcpcs", "Procedure", "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "h0020"),
        coded("cpt", "Procedure", "http://www.ama-assn.org/go/cpt", "0001u"),
        json!({"resourceType": "DiagnosticReport", "id": "ge",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "ge"}]}]}),
        // Never labelled: a rule's SNOMED code under the CPT system, a neighbouring HCPCS
        // code, an ICD-10-CM code outside the ranges, another report category.
        coded("other-system", "Procedure", "http://www.ama-assn.org/go/cpt", "87612001"),
        coded("next-code", "Procedure", "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "H0021"),
        coded("icd-out", "Condition", "http://hl7.org/fhir/sid/icd-10-cm", "F17.210"),
        json!({"resourceType": "DiagnosticReport", "id": "lab",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}]}),
    ];
    let why = label(&labeler, &mut record);
    for (i, expected) in [(0, "ETH"), (1, "ETH"), (2, "ETH"), (3, "GDIS")] {
        assert_eq!(codes(&record[i])[0], expected, "{}", record[i]["id"]);
    }
    assert_eq!(why["Condition/icd"], ["sud"]);
    assert_eq!(why["DiagnosticReport/ge"], ["genetics"]);
    for r in &record[4..] {
        assert!(codes(r).is_empty(), "{} must not be labelled", r["id"]);
    }
}
