use super::*;
use crate::aggregate::merge::SOURCE_TAG_SYSTEM;
use crate::aggregate::MissingSource;
use crate::fhir::model::codes::IssueType;
use crate::fhir::outcome::Issue;
use serde_json::json;

fn tagged(mut r: Value, code: &str, display: &str) -> Value {
    r["meta"] = json!({"source": format!("urn:portico:source:{code}"), "tag": [{"system": SOURCE_TAG_SYSTEM, "code": code, "display": display}]});
    r
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T12:00:00Z").unwrap().with_timezone(&Utc)
}

fn record() -> WholeRecord {
    let ehr = |r: Value| tagged(r, "ehr", "Harbor General Hospital");
    WholeRecord::for_test(
        "pt-1",
        vec![
            ehr(
                json!({"resourceType": "Patient", "id": "pt-1", "birthDate": "2015-05-03", "name": [{"family": "Rodriguez", "given": ["Ethan"]}]}),
            ),
            ehr(
                json!({"resourceType": "AllergyIntolerance", "id": "ehr.a1", "criticality": "high", "code": {"text": "Peanut"},
                       "clinicalStatus": {"coding": [{"code": "active"}]}, "recordedDate": "2019-02-01",
                       "reaction": [{"severity": "severe", "manifestation": [{"coding": [{"display": "Anaphylaxis"}]}]}]}),
            ),
            ehr(
                json!({"resourceType": "AllergyIntolerance", "id": "ehr.a2", "code": {"text": "Latex"}, "recordedDate": "2024-02-01"}),
            ),
            ehr(json!({"resourceType": "Encounter", "id": "ehr.e1", "status": "finished", "class": {"code": "EMER"},
                       "type": [{"text": "Emergency visit"}], "period": {"start": "2025-11-08T10:00:00-08:00"},
                       "participant": [{"individual": {"reference": "Practitioner/ehr.p1"}}],
                       "reasonReference": [{"reference": "Condition/ehr.c1"}]})),
            ehr(
                json!({"resourceType": "Encounter", "id": "ehr.e2", "status": "finished", "class": {"code": "AMB"}, "period": {"start": "2025-05-03T09:00:00-07:00"}}),
            ),
            ehr(
                json!({"resourceType": "Encounter", "id": "ehr.e3", "status": "planned", "class": {"code": "AMB"}, "type": [{"text": "Well-child visit"}], "period": {"start": "2026-02-03T09:00:00-08:00"}}),
            ),
            ehr(
                json!({"resourceType": "Appointment", "id": "ehr.ap1", "status": "booked", "description": "Fracture clinic follow-up", "start": "2026-01-20T10:00:00-08:00"}),
            ),
            ehr(
                json!({"resourceType": "Condition", "id": "ehr.c1", "code": {"text": "Torus fracture of the wrist"}, "clinicalStatus": {"coding": [{"code": "active"}]}, "onsetDateTime": "2025-11-08"}),
            ),
            ehr(
                json!({"resourceType": "MedicationRequest", "id": "ehr.m1", "status": "active", "medicationCodeableConcept": {"text": "Ibuprofen 100 mg/5 mL"},
                       "authoredOn": "2025-11-08", "dosageInstruction": [{"text": "10 mL every 6 hours as needed"}],
                       "requester": {"reference": "Practitioner/ehr.p1"}, "reasonReference": [{"reference": "Condition/ehr.c1"}, {"reference": "Condition/withheld"}]}),
            ),
            ehr(
                json!({"resourceType": "Immunization", "id": "ehr.i1", "status": "completed", "vaccineCode": {"text": "MMR"}, "occurrenceDateTime": "2016-05-03"}),
            ),
            ehr(
                json!({"resourceType": "DocumentReference", "id": "ehr.d1", "description": "ED note", "date": "2025-11-08T11:00:00-08:00",
                       "type": {"text": "Emergency department note"}, "author": [{"reference": "Practitioner/ehr.p1"}],
                       "content": [{"attachment": {"contentType": "text/plain", "data": "U0VDUkVU"}}]}),
            ),
            ehr(json!({"resourceType": "CareTeam", "id": "ehr.ct1", "name": "Pediatrics", "status": "active",
                       "participant": [{"role": [{"text": "Pediatrician"}], "member": {"reference": "Practitioner/ehr.p1"}}, {"member": {"reference": "Patient/pt-1"}}]})),
            ehr(
                json!({"resourceType": "Practitioner", "id": "ehr.p1", "name": [{"family": "Shah", "given": ["Priya"], "prefix": ["Dr."]}], "telecom": [{"system": "phone", "value": "360-555-0101"}]}),
            ),
            ehr(json!({"resourceType": "Organization", "id": "ehr.o1", "name": "Harbor General Hospital"})),
        ],
        vec![MissingSource {
            source: "lab".into(),
            display: "Bayview Regional Reference Lab".into(),
            reason: "did not answer".into(),
        }],
        vec![Issue::information(IssueType::Informational, "Some information may not be shown here.")],
    )
}

#[test]
fn whose_record_and_the_sections_in_plain_words() {
    let v = RecordView::of(&record(), now());
    assert_eq!(v.whose.name.as_deref(), Some("Ethan Rodriguez"));
    assert_eq!(v.whose.age, Some(10));
    assert_eq!(v.notices, vec!["Some information may not be shown here."]);
    assert_eq!(v.missing, vec!["Bayview Regional Reference Lab"]);

    assert_eq!(v.allergies[0].title, "Peanut", "high-risk allergies first");
    assert!(v.allergies[0].alert);
    assert!(v.allergies[0].details.iter().any(|d| d.label == "Reaction" && d.value == "Anaphylaxis (severe)"));
    assert_eq!(v.allergies[0].sources, vec!["Harbor General Hospital"]);

    let m = &v.medications[0];
    assert_eq!((m.title.as_str(), m.status.as_deref()), ("Ibuprofen 100 mg/5 mL", Some("Active")));
    assert!(m.details.iter().any(|d| d.label == "Prescribed by" && d.value == "Dr. Priya Shah"));
    assert!(m.details.iter().any(|d| d.label == "Why" && d.value == "Torus fracture of the wrist"), "{m:?}");

    assert_eq!(v.immunizations[0].status.as_deref(), Some("Given"));
    assert_eq!(v.problems[0].date.as_deref(), Some("Nov 8, 2025"));
    let d = &v.documents[0];
    assert_eq!(d.title, "ED note");
    let text = serde_json::to_string(&v).unwrap();
    assert!(!text.contains("U0VDUkVU"), "attachments are not shown");
    assert_eq!(v.care_team.teams[0].details[0].value, "Dr. Priya Shah — Pediatrician, phone 360-555-0101");
    assert_eq!(v.care_team.people.len(), 1);
    assert_eq!(v.count("care-team"), 3);
}

#[test]
fn visits_split_into_upcoming_and_recent() {
    let v = RecordView::of(&record(), now());
    assert_eq!(v.visits.len(), 4);
    let upcoming: Vec<&str> = v.upcoming.iter().map(|i| i.title.as_str()).collect();
    assert_eq!(upcoming, vec!["Fracture clinic follow-up", "Well-child visit"], "soonest first");
    let recent: Vec<&str> = v.recent.iter().map(|i| i.title.as_str()).collect();
    assert_eq!(recent, vec!["Emergency visit", "Office or clinic visit"], "newest first");
    assert_eq!(v.recent[0].date.as_deref(), Some("Nov 8, 2025, 10:00 AM"));
    assert!(v.recent[0].details.iter().any(|d| d.label == "Reason" && d.value == "Torus fracture of the wrist"));
}

#[test]
fn a_record_without_a_released_patient_or_data_is_still_a_view() {
    let empty = WholeRecord::for_test("pt-2", vec![], vec![], vec![]);
    let v = RecordView::of(&empty, now());
    assert_eq!(v.whose.name, None);
    assert!(SECTIONS.iter().all(|(s, _)| v.count(s) == 0));
    let dead = WholeRecord::for_test(
        "pt-3",
        vec![
            json!({"resourceType": "Patient", "id": "pt-3", "birthDate": "1941-03-08", "deceasedDateTime": "2025-11-02T04:18:00-08:00", "name": [{"family": "Jensen", "given": ["Harold"]}]}),
        ],
        vec![],
        vec![],
    );
    let v = RecordView::of(&dead, now());
    assert_eq!((v.whose.age, v.whose.deceased.as_deref()), (None, Some("Nov 2, 2025")));
}
