//! A hospital EHR's or community clinic's record of one person: the Patient, parents on
//! record for minors, visits with vital signs and notes, problems with their medications,
//! allergies, immunizations, screening procedures, and — in the person's care home only —
//! the sensitive parts (HIV, mental health, substance use outside a Part 2 program,
//! violence, pregnancy, contraception, STI, genetic risk, adolescents' confidential visits,
//! internal staff notes), each marked in the manifest with the label it must get.

use super::codes::{self, Problem, ALLERGIES, ICD10, LOINC, NOTE_LINES, RXNORM, SNOMED};
use super::lab;
use super::shape::{
    at, attachment, cc, coding, day, later, observation_category, pick, quantity, reference, security, Ctx,
};
use super::{GenerateError, SourceKind};
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};

type Result<T> = std::result::Result<T, GenerateError>;

pub(super) fn write(ctx: &mut Ctx) -> Result<()> {
    ctx.write_patient()?;
    let home = ctx.is_care_home();
    if home {
        guardians(ctx)?;
    }
    let p = ctx.person;
    let visits = if home {
        let chronic = p.traits.problems().len() as u32;
        let base = if p.age < 18 { 2 } else { 4 + 2 * chronic };
        (base + ctx.rng.gen_range(0..4) + if p.age >= 65 { 2 } else { 0 }).min(16)
    } else {
        ctx.rng.gen_range(1..4)
    };
    let mut days: Vec<i64> = (0..visits).map(|_| ctx.days_ago(1095)).collect();
    days.sort_unstable_by(|a, b| b.cmp(a));
    let mut encounters = Vec::new();
    for (n, d) in days.iter().enumerate() {
        encounters.push(visit(ctx, *d, n == 0)?);
    }
    let first = encounters.first().cloned();
    if home {
        for problem in p.traits.problems() {
            let (d, enc) = first.clone().unwrap_or((ctx.days_ago(1095), String::new()));
            problem_with_medication(ctx, problem, d, &enc, None)?;
        }
        allergies(ctx)?;
        immunizations(ctx)?;
        procedures(ctx)?;
        sensitive(ctx)?;
    } else if ctx.rng.gen_bool(0.5) {
        let d = ctx.rng.gen_range(1..365);
        immunization(ctx, codes::FLU, d, true)?;
    }
    Ok(())
}

fn guardians(ctx: &mut Ctx) -> Result<()> {
    let p = ctx.person;
    for (relationship, given) in p.guardians.clone() {
        let id = ctx.id("RelatedPerson");
        let display = if relationship == "MTH" { "mother" } else { "father" };
        let line = p.address_line(false);
        let resource = json!({
            "resourceType": "RelatedPerson", "id": id, "active": true, "patient": ctx.patient(),
            "relationship": [cc("http://terminology.hl7.org/CodeSystem/v3-RoleCode", relationship, display)],
            "name": [{"family": p.family, "given": [given]}],
            "gender": if relationship == "MTH" { "female" } else { "male" },
            "telecom": [{"system": "phone", "value": p.phone(), "use": "home"}],
            "address": [{"use": "home", "line": [line], "state": "WA"}]
        });
        ctx.put(resource)?;
    }
    Ok(())
}

/// A visit: the encounter, vital signs, sometimes a note. Returns (days ago, encounter id).
fn visit(ctx: &mut Ctx, days_ago: i64, first: bool) -> Result<(i64, String)> {
    let start = ctx.clinic_time(days_ago);
    let (code, display) =
        if ctx.person.age < 18 { ("410620009", "Well child visit") } else { ("185349003", "Encounter for check up") };
    let enc = encounter(ctx, &start, 30, code, display, None)?;
    vitals(ctx, &enc, &start, first)?;
    if ctx.rng.gen_bool(0.6) {
        note(ctx, &enc, &start, ("11506-3", "Progress note"), None, &[])?;
    }
    Ok((days_ago, enc))
}

fn encounter(
    ctx: &mut Ctx,
    start: &str,
    minutes: u32,
    code: &str,
    display: &str,
    reason: Option<&Problem>,
) -> Result<String> {
    let id = ctx.id("Encounter");
    let mut enc = json!({
        "resourceType": "Encounter", "id": id, "status": "finished",
        "identifier": [{"system": format!("{}/sid/visit-number", ctx.directory.base), "value": format!("V7{}", &id[4..])}],
        "class": coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB", "ambulatory"),
        "type": [cc(SNOMED, code, display)],
        "subject": ctx.patient(),
        "participant": [{"individual": ctx.clinician()}],
        "period": {"start": start, "end": later(start, minutes)},
        "location": [{"location": ctx.location()}],
        "serviceProvider": ctx.organization()
    });
    if let Some(p) = reason {
        enc["reasonCode"] = json!([cc(ICD10, p.icd, p.display)]);
    }
    ctx.put(enc)?;
    Ok(id)
}

fn observation(ctx: &mut Ctx, enc: &str, when: &str, cat: &str, code: (&str, &str), value: Value) -> Result<String> {
    let id = ctx.id("Observation");
    let mut obs = json!({
        "resourceType": "Observation", "id": id, "status": "final",
        "category": observation_category(cat),
        "code": cc(LOINC, code.0, code.1),
        "subject": ctx.patient(),
        "effectiveDateTime": when,
        "performer": [ctx.clinician()]
    });
    if !enc.is_empty() {
        obs["encounter"] = reference("Encounter", enc);
    }
    match value {
        Value::Object(ref m) if m.contains_key("component") => obs["component"] = m["component"].clone(),
        Value::Object(ref m) if m.contains_key("coding") => obs["valueCodeableConcept"] = value,
        Value::Number(_) => obs["valueInteger"] = value,
        other => obs["valueQuantity"] = other,
    }
    ctx.put(obs)?;
    Ok(id)
}

fn vitals(ctx: &mut Ctx, enc: &str, when: &str, first: bool) -> Result<()> {
    let age = ctx.person.age;
    let r = &mut *ctx.rng;
    let (hr, rr, temp) = (r.gen_range(58..96), r.gen_range(12..20), r.gen_range(36.3..37.4));
    let weight: f64 = if age < 18 { 3.5 + f64::from(age) * r.gen_range(2.6..3.6) } else { r.gen_range(52.0..112.0) };
    let height: f64 = if age < 18 { 50.0 + f64::from(age.min(17)) * 6.5 } else { r.gen_range(152.0..192.0) };
    let (sys, dia) = (r.gen_range(104..156), r.gen_range(62..96));
    let spo2 = r.gen_range(94..100);
    let vital = "vital-signs";
    if age >= 3 {
        let bp = json!({"component": [
            {"code": cc(LOINC, "8480-6", "Systolic blood pressure"), "valueQuantity": quantity(f64::from(sys), "mm[Hg]", 0)},
            {"code": cc(LOINC, "8462-4", "Diastolic blood pressure"), "valueQuantity": quantity(f64::from(dia), "mm[Hg]", 0)}
        ]});
        let id =
            observation(ctx, enc, when, vital, ("85354-9", "Blood pressure panel with all children optional"), bp)?;
        if first {
            ctx.ordinary("Observation", &id, "blood pressure")?;
        }
    }
    observation(ctx, enc, when, vital, ("8867-4", "Heart rate"), quantity(f64::from(hr), "/min", 0))?;
    observation(ctx, enc, when, vital, ("9279-1", "Respiratory rate"), quantity(f64::from(rr), "/min", 0))?;
    observation(ctx, enc, when, vital, ("8310-5", "Body temperature"), quantity(temp, "Cel", 1))?;
    observation(ctx, enc, when, vital, ("29463-7", "Body weight"), quantity(weight, "kg", 1))?;
    if age >= 18 {
        let spo2 = quantity(f64::from(spo2), "%", 0);
        observation(ctx, enc, when, vital, ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"), spo2)?;
        let bmi = weight / (height / 100.0).powi(2);
        observation(ctx, enc, when, vital, ("39156-5", "Body mass index (BMI) [Ratio]"), quantity(bmi, "kg/m2", 1))?;
        let smoking = if ctx.rng.gen_bool(0.8) {
            cc(SNOMED, "266919005", "Never smoked tobacco")
        } else {
            cc(SNOMED, "8517006", "Ex-smoker")
        };
        observation(ctx, enc, when, "social-history", ("72166-2", "Tobacco smoking status"), smoking)?;
    }
    if first || age < 18 {
        observation(ctx, enc, when, vital, ("8302-2", "Body height"), quantity(height, "cm", 1))?;
    }
    Ok(())
}

/// A clinical note; `labels` are sent by the source in `meta.security`.
fn note(
    ctx: &mut Ctx,
    enc: &str,
    when: &str,
    kind: (&str, &str),
    local: Option<(&str, &str)>,
    labels: &[&str],
) -> Result<String> {
    let id = ctx.id("DocumentReference");
    let mut codings = vec![coding(LOINC, kind.0, kind.1)];
    if let Some((code, display)) = local {
        codings.push(coding("https://ehr.harbor-health.example/fhir/CodeSystem/note-type", code, display));
    }
    let text: Vec<&str> = NOTE_LINES.choose_multiple(ctx.rng, 3).copied().collect();
    let mut doc = json!({
        "resourceType": "DocumentReference", "id": id, "status": "current", "docStatus": "final",
        "type": {"coding": codings, "text": kind.1},
        "category": [cc("http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category", "clinical-note", "Clinical Note")],
        "subject": ctx.patient(), "date": when, "author": [ctx.clinician()],
        "custodian": ctx.organization(),
        "content": [{"attachment": attachment(&text.join("\n"), kind.1)}],
        "context": {"encounter": [reference("Encounter", enc)], "period": {"start": when}}
    });
    if !labels.is_empty() {
        doc["meta"] = json!({"security": security(labels)});
    }
    ctx.put(doc)?;
    Ok(id)
}

fn condition(ctx: &mut Ctx, problem: &Problem, days_ago: i64, enc: &str, category: &str) -> Result<String> {
    let id = ctx.id("Condition");
    let mut codings = vec![coding(ICD10, problem.icd, problem.display)];
    if !problem.snomed.is_empty() {
        codings.push(coding(SNOMED, problem.snomed, problem.display));
    }
    let display = if category == "problem-list-item" { "Problem List Item" } else { "Encounter Diagnosis" };
    let mut c = json!({
        "resourceType": "Condition", "id": id,
        "clinicalStatus": cc("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"),
        "verificationStatus": cc("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed"),
        "category": [cc("http://terminology.hl7.org/CodeSystem/condition-category", category, display)],
        "code": {"coding": codings, "text": problem.display},
        "subject": ctx.patient(),
        "onsetDateTime": day(days_ago + 30),
        "recordedDate": day(days_ago),
        "recorder": ctx.clinician()
    });
    if !enc.is_empty() {
        c["encounter"] = reference("Encounter", enc);
    }
    ctx.put(c)?;
    Ok(id)
}

fn medication(ctx: &mut Ctx, rx: (&str, &str), days_ago: i64, enc: &str, reason: &str) -> Result<String> {
    let id = ctx.id("MedicationRequest");
    let mut m = json!({
        "resourceType": "MedicationRequest", "id": id, "status": "active", "intent": "order",
        "medicationCodeableConcept": cc(RXNORM, rx.0, rx.1),
        "subject": ctx.patient(),
        "authoredOn": at(days_ago, 10 * 60),
        "requester": ctx.clinician(),
        "dosageInstruction": [{"text": "Take as directed", "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}]
    });
    if !enc.is_empty() {
        m["encounter"] = reference("Encounter", enc);
    }
    if !reason.is_empty() {
        m["reasonReference"] = json!([reference("Condition", reason)]);
    }
    ctx.put(m)?;
    Ok(id)
}

/// A problem (and its medication); `label` marks both as sensitive in the manifest.
fn problem_with_medication(
    ctx: &mut Ctx,
    problem: &Problem,
    days_ago: i64,
    enc: &str,
    label: Option<&str>,
) -> Result<(String, Option<String>)> {
    let category = if label.is_some() { "encounter-diagnosis" } else { "problem-list-item" };
    let cond = condition(ctx, problem, days_ago, enc, category)?;
    let med = match problem.med {
        Some(rx) => Some(medication(ctx, rx, days_ago, enc, &cond)?),
        None => None,
    };
    if let Some(label) = label {
        ctx.flag("Condition", &cond, label, problem.icd)?;
        if let Some(m) = &med {
            ctx.flag("MedicationRequest", m, label, problem.med.map_or("", |(code, _)| code))?;
        }
    }
    Ok((cond, med))
}

fn allergies(ctx: &mut Ctx) -> Result<()> {
    let mut list: Vec<&(&str, &str, &str, &str)> = Vec::new();
    if ctx.person.traits.peanut_allergy {
        list.push(&ALLERGIES[1]);
    }
    if ctx.rng.gen_bool(0.3) {
        list.push(pick(ctx.rng, ALLERGIES));
    }
    list.dedup_by_key(|a| a.0);
    for (code, display, category, criticality) in list {
        let id = ctx.id("AllergyIntolerance");
        let d = ctx.days_ago(2000);
        let resource = json!({
            "resourceType": "AllergyIntolerance", "id": id,
            "clinicalStatus": cc("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active", "Active"),
            "verificationStatus": cc("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "confirmed", "Confirmed"),
            "category": [category], "criticality": criticality,
            "code": cc(SNOMED, code, display),
            "patient": ctx.patient(), "recordedDate": day(d), "recorder": ctx.clinician()
        });
        ctx.put(resource)?;
    }
    Ok(())
}

fn immunization(ctx: &mut Ctx, vaccine: (&str, &str), days_ago: i64, ordinary: bool) -> Result<()> {
    let id = ctx.id("Immunization");
    let lot = format!("{}{}{}", pick(ctx.rng, &["FK", "UV", "HT", "MD"]), 4400 + days_ago, id.len());
    let resource = json!({
        "resourceType": "Immunization", "id": id, "status": "completed",
        "vaccineCode": cc(codes::CVX, vaccine.0, vaccine.1),
        "patient": ctx.patient(), "occurrenceDateTime": at(days_ago, 9 * 60 + 15), "primarySource": true,
        "lotNumber": lot, "location": ctx.location(),
        "performer": [{"actor": ctx.clinician()}]
    });
    ctx.put(resource)?;
    if ordinary {
        ctx.ordinary("Immunization", &id, vaccine.1)?;
    }
    Ok(())
}

fn immunizations(ctx: &mut Ctx) -> Result<()> {
    let age = ctx.person.age;
    let mut first = true;
    if age < 12 {
        for v in codes::CHILDHOOD {
            let d = ctx.days_ago(i64::from(age.max(1)) * 365);
            immunization(ctx, *v, d, first)?;
            first = false;
        }
    } else if age < 18 {
        for v in codes::ADOLESCENT {
            let d = ctx.days_ago(900);
            immunization(ctx, *v, d, first)?;
            first = false;
        }
    } else {
        let d = ctx.days_ago(3000);
        immunization(ctx, codes::TDAP, d, true)?;
        let d = ctx.days_ago(900);
        immunization(ctx, codes::COVID, d, false)?;
        if age >= 50 {
            let d = ctx.days_ago(1500);
            immunization(ctx, codes::ZOSTER, d, false)?;
        }
    }
    for year in 0..3 {
        if ctx.rng.gen_bool(0.7) {
            let d = 30 + 365 * year + ctx.rng.gen_range(0..60);
            immunization(ctx, codes::FLU, d, false)?;
        }
    }
    Ok(())
}

fn procedures(ctx: &mut Ctx) -> Result<()> {
    if ctx.person.age >= 50 && ctx.rng.gen_bool(0.4) {
        let id = ctx.id("Procedure");
        let d = ctx.days_ago(1500);
        let resource = json!({
            "resourceType": "Procedure", "id": id, "status": "completed",
            "code": cc(SNOMED, "73761001", "Colonoscopy"),
            "subject": ctx.patient(), "performedDateTime": ctx.clinic_time(d),
            "performer": [{"actor": ctx.clinician()}], "location": ctx.location()
        });
        ctx.put(resource)?;
    }
    Ok(())
}

/// A dedicated visit for something sensitive: the encounter, in the last `span` days.
fn sensitive_visit(ctx: &mut Ctx, span: i64, problem: &Problem) -> Result<(i64, String, String)> {
    let d = ctx.days_ago(span);
    let start = ctx.clinic_time(d);
    let enc = encounter(ctx, &start, 40, "11429006", "Consultation", Some(problem))?;
    Ok((d, enc, start))
}

fn sensitive(ctx: &mut Ctx) -> Result<()> {
    let t = ctx.person.traits.clone();
    let adolescent = (12..18).contains(&ctx.person.age);
    if t.hiv {
        let (d, enc, _) = sensitive_visit(ctx, 1000, &codes::HIV)?;
        problem_with_medication(ctx, &codes::HIV, d, &enc, Some("HIV"))?;
    }
    if t.depression {
        let problem = if adolescent { &codes::ADOLESCENT_DEPRESSION } else { &codes::DEPRESSION };
        let (d, enc, start) = sensitive_visit(ctx, 700, problem)?;
        problem_with_medication(ctx, problem, d, &enc, Some("MH"))?;
        let score = json!(ctx.rng.gen_range(10..22));
        let id = observation(ctx, &enc, &start, "survey", ("44261-6", "PHQ-9 total score [Reported]"), score)?;
        ctx.flag("Observation", &id, "MH", "PHQ-9")?;
        if adolescent && t.confidential_visit {
            confidential_note(ctx, &enc, &start)?;
        }
    }
    if t.anxiety {
        let (d, enc, start) = sensitive_visit(ctx, 700, &codes::ANXIETY)?;
        problem_with_medication(ctx, &codes::ANXIETY, d, &enc, Some("MH"))?;
        let score = json!(ctx.rng.gen_range(10..21));
        let id = observation(ctx, &enc, &start, "survey", ("70274-6", "GAD-7 total score [Reported.PHQ]"), score)?;
        ctx.flag("Observation", &id, "MH", "GAD-7")?;
    }
    // Substance use treated here only when no Part 2 program holds it.
    if (t.opioid_use || t.alcohol_use) && !ctx.has(SourceKind::Part2Program) {
        let problem = if t.opioid_use { &codes::OPIOID_USE } else { &codes::ALCOHOL_USE };
        let (d, enc, start) = sensitive_visit(ctx, 700, problem)?;
        problem_with_medication(ctx, problem, d, &enc, Some("ETH"))?;
        if t.alcohol_use {
            let score = json!(ctx.rng.gen_range(5..12));
            let id = observation(ctx, &enc, &start, "survey", ("75626-2", "Total score [AUDIT-C]"), score)?;
            ctx.flag("Observation", &id, "ETH", "AUDIT-C")?;
        }
    }
    if t.violence {
        let (d, enc, start) = sensitive_visit(ctx, 500, &codes::ABUSE)?;
        let id = observation(
            ctx,
            &enc,
            &start,
            "survey",
            ("76499-3", "Humiliation, Afraid, Rape, and Kick questionnaire [HARK]"),
            json!(3),
        )?;
        ctx.flag("Observation", &id, "SDV", "HARK")?;
        for problem in [&codes::ABUSE, &codes::ABUSE_HISTORY] {
            problem_with_medication(ctx, problem, d, &enc, Some("SDV"))?;
        }
    }
    if t.contraception {
        let (d, enc, start) = sensitive_visit(ctx, 600, &codes::CONTRACEPTION)?;
        problem_with_medication(ctx, &codes::CONTRACEPTION, d, &enc, Some("SEX"))?;
        if adolescent {
            confidential_note(ctx, &enc, &start)?;
        }
    }
    if t.pregnant {
        let (d, enc, start) = sensitive_visit(ctx, 120, &codes::PREGNANCY)?;
        let positive = cc(SNOMED, "10828004", "Positive");
        let id = observation(
            ctx,
            &enc,
            &start,
            "laboratory",
            ("2106-3", "Choriogonadotropin (pregnancy test) [Presence] in Urine"),
            positive,
        )?;
        ctx.flag("Observation", &id, "PREGNANT", "urine hCG")?;
        problem_with_medication(ctx, &codes::PREGNANCY, d, &enc, Some("PREGNANT"))?;
        if adolescent {
            confidential_note(ctx, &enc, &start)?;
        }
    }
    if t.sti {
        let (d, enc, start) = sensitive_visit(ctx, 400, &codes::CHLAMYDIA)?;
        problem_with_medication(ctx, &codes::CHLAMYDIA, d, &enc, Some("STD"))?;
        if !ctx.has(SourceKind::Lab) {
            let detected = cc(SNOMED, "260373001", "Detected");
            let id = observation(
                ctx,
                &enc,
                &start,
                "laboratory",
                ("21613-5", "Chlamydia trachomatis DNA [Presence] in Specimen by NAA with probe detection"),
                detected,
            )?;
            ctx.flag("Observation", &id, "STD", "chlamydia NAAT")?;
        }
        if adolescent {
            confidential_note(ctx, &enc, &start)?;
        }
    }
    if t.brca {
        let (d, enc, _) = sensitive_visit(ctx, 900, &codes::BRCA)?;
        problem_with_medication(ctx, &codes::BRCA, d, &enc, Some("GDIS"))?;
    }
    if t.internal_note {
        let d = ctx.days_ago(300);
        let start = ctx.clinic_time(d);
        let enc = encounter(ctx, &start, 20, "185349003", "Encounter for check up", None)?;
        note(ctx, &enc, &start, ("34109-9", "Note"), Some(("internal-staff-note", "Internal staff note")), &[])?;
    }
    if t.diabetes && !ctx.has(SourceKind::Lab) {
        // Without a reference lab, the clinic measures HbA1c itself (repeated results).
        for n in 0..3 {
            let d = 90 + 120 * n;
            let when = ctx.clinic_time(d);
            lab::point_of_care(ctx, &codes::HBA1C.tests[0], &when, 8.4 - 0.5 * n as f64)?;
        }
    }
    Ok(())
}

/// An adolescent's confidential note: the source marks it restricted (R).
fn confidential_note(ctx: &mut Ctx, enc: &str, when: &str) -> Result<()> {
    let id = note(ctx, enc, when, ("34117-2", "History and physical note"), None, &["R"])?;
    ctx.flag("DocumentReference", &id, "R", "confidential adolescent note")
}
