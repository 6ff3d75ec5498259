//! The specialty systems' records of one person. The imaging center: studies, each an
//! encounter, a procedure and a report with findings and an impression. The substance use
//! program (42 CFR Part 2: the gateway labels everything it holds `42CFRPart2`): the
//! diagnosis (sometimes with the labels the program sends itself), medication for
//! addiction treatment, counseling sessions with notes, urine drug screens or AUDIT-C
//! scores, a care plan.

use super::codes::{self, ICD10, IMPRESSIONS, LOINC, SNOMED, STUDIES};
use super::shape::{at, attachment, cc, coding, day, later, observation_category, pick, reference, security, Ctx};
use super::GenerateError;
use rand::Rng;
use serde_json::{json, Value};

type Result<T> = std::result::Result<T, GenerateError>;

pub(super) fn imaging(ctx: &mut Ctx) -> Result<()> {
    ctx.write_patient()?;
    let t = ctx.person.traits.clone();
    let studies = 1 + ctx.rng.gen_range(0..3);
    for n in 0..studies {
        let (loinc, cpt, title) = if n == 0 && (t.brca || (ctx.person.female && ctx.person.age >= 40)) {
            STUDIES[2]
        } else if n == 0 && t.back_pain {
            STUDIES[3]
        } else if n == 0 && t.hypothyroid {
            STUDIES[4]
        } else {
            *pick(ctx.rng, STUDIES)
        };
        let d = ctx.days_ago(1095);
        let start = ctx.clinic_time(d);
        let enc = ctx.id("Encounter");
        let resource = json!({
            "resourceType": "Encounter", "id": enc, "status": "finished",
            "class": coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB", "ambulatory"),
            "type": [cc(SNOMED, "363679005", "Imaging")],
            "subject": ctx.patient(), "period": {"start": start, "end": later(&start, 30)},
            "participant": [{"individual": ctx.clinician()}],
            "location": [{"location": ctx.location()}], "serviceProvider": ctx.organization()
        });
        ctx.put(resource)?;
        let procedure = ctx.id("Procedure");
        let resource = json!({
            "resourceType": "Procedure", "id": procedure, "status": "completed",
            "code": cc(codes::CPT, cpt, title),
            "subject": ctx.patient(), "encounter": reference("Encounter", &enc),
            "performedDateTime": start, "performer": [{"actor": ctx.clinician()}], "location": ctx.location()
        });
        ctx.put(resource)?;
        let report = ctx.id("DiagnosticReport");
        let accession = format!("RAD-{}", &report[7..]);
        let impression = *pick(ctx.rng, IMPRESSIONS);
        let resource = json!({
            "resourceType": "DiagnosticReport", "id": report, "status": "final",
            "identifier": [{"system": format!("{}/sid/accession", ctx.directory.base), "value": accession}],
            "category": [{"coding": [coding(codes::V2_0074, "RAD", "Radiology")]}],
            "code": cc(LOINC, loinc, title),
            "subject": ctx.patient(), "encounter": reference("Encounter", &enc),
            "effectiveDateTime": start, "issued": later(&start, 120),
            "performer": [ctx.organization()], "resultsInterpreter": [ctx.clinician()],
            "conclusion": impression,
            "presentedForm": [attachment(&format!("{title}\nFindings: unremarkable for age.\nImpression: {impression}"), title)]
        });
        ctx.put(resource)?;
    }
    Ok(())
}

pub(super) fn part2_program(ctx: &mut Ctx) -> Result<()> {
    ctx.write_patient()?;
    let t = ctx.person.traits.clone();
    let problem = if t.opioid_use { &codes::OPIOID_USE } else { &codes::ALCOHOL_USE };
    let intake = 200 + ctx.rng.gen_range(0..500);
    let cond = ctx.id("Condition");
    let mut c = json!({
        "resourceType": "Condition", "id": cond,
        "clinicalStatus": cc("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"),
        "verificationStatus": cc("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed"),
        "category": [cc("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item", "Problem List Item")],
        "code": {"coding": [coding(ICD10, problem.icd, problem.display), coding(SNOMED, problem.snomed, problem.display)], "text": problem.display},
        "subject": ctx.patient(), "onsetDateTime": day(intake + 60), "recordedDate": day(intake), "recorder": ctx.clinician()
    });
    if ctx.rng.gen_bool(0.5) {
        c["meta"] = json!({"security": security(&["R", "ETH", "42CFRPart2"])});
    }
    ctx.put(c)?;
    ctx.flag("Condition", &cond, "ETH", problem.icd)?;
    ctx.flag("Condition", &cond, "42CFRPart2", "Part 2 program diagnosis")?;
    if let Some(rx) = problem.med {
        let med = ctx.id("MedicationRequest");
        let resource = json!({
            "resourceType": "MedicationRequest", "id": med, "status": "active", "intent": "order",
            "medicationCodeableConcept": cc(codes::RXNORM, rx.0, rx.1),
            "subject": ctx.patient(), "authoredOn": at(intake, 11 * 60), "requester": ctx.clinician(),
            "reasonReference": [reference("Condition", &cond)],
            "dosageInstruction": [{"text": "Daily, as directed by the program"}]
        });
        ctx.put(resource)?;
        ctx.flag("MedicationRequest", &med, "42CFRPart2", rx.1)?;
    }
    let sessions = 6 + ctx.rng.gen_range(0..8);
    for n in 0..sessions {
        let d = intake - n * (intake / (sessions + 1)).max(1);
        let start = ctx.clinic_time(d.max(1));
        let enc = ctx.id("Encounter");
        let resource = json!({
            "resourceType": "Encounter", "id": enc, "status": "finished",
            "class": coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB", "ambulatory"),
            "type": [cc(SNOMED, "313075001", "Substance abuse counseling")],
            "subject": ctx.patient(), "period": {"start": start, "end": later(&start, 50)},
            "reasonCode": [cc(ICD10, problem.icd, problem.display)],
            "participant": [{"individual": ctx.clinician()}], "serviceProvider": ctx.organization()
        });
        ctx.put(resource)?;
        let obs = ctx.id("Observation");
        let (code, value) = if t.opioid_use {
            (
                ("19295-5", "Opiates [Presence] in Urine by Screen method"),
                json!({"valueCodeableConcept": cc(SNOMED, "260415000", "Not detected")}),
            )
        } else {
            (("75626-2", "Total score [AUDIT-C]"), json!({"valueInteger": ctx.rng.gen_range(2..10)}))
        };
        let mut o = json!({
            "resourceType": "Observation", "id": obs, "status": "final",
            "category": observation_category(if t.opioid_use { "laboratory" } else { "survey" }),
            "code": cc(LOINC, code.0, code.1), "subject": ctx.patient(),
            "encounter": reference("Encounter", &enc), "effectiveDateTime": start
        });
        if let Value::Object(fields) = value {
            for (k, v) in fields {
                o[k] = v;
            }
        }
        ctx.put(o)?;
        if n % 2 == 0 {
            let doc = ctx.id("DocumentReference");
            let resource = json!({
                "resourceType": "DocumentReference", "id": doc, "status": "current", "docStatus": "final",
                "type": cc(LOINC, "11488-4", "Consult note"), "subject": ctx.patient(), "date": start,
                "author": [ctx.clinician()],
                "content": [{"attachment": attachment("Counseling session. Progress toward goals reviewed.", "Counseling note")}],
                "context": {"encounter": [reference("Encounter", &enc)]}
            });
            ctx.put(resource)?;
            if n == 0 {
                ctx.flag("DocumentReference", &doc, "42CFRPart2", "counseling note")?;
            }
        }
    }
    let plan = ctx.id("CarePlan");
    let resource = json!({
        "resourceType": "CarePlan", "id": plan, "status": "active", "intent": "plan",
        "title": "Recovery plan", "subject": ctx.patient(), "period": {"start": day(intake)},
        "addresses": [reference("Condition", &cond)], "author": ctx.clinician()
    });
    ctx.put(resource)?;
    Ok(())
}
