//! A correction request as FHIR, after the HL7 Patient Request for Corrections IG where it
//! fits: a Task (code `medRecCxReq`, business status `queued`, `accepted` or `denied`, the
//! due date as `restriction.period.end`, the item as `focus`) with the Communications it
//! carries — the request, HIM's answer and the statement of disagreement (category
//! `medRecCxDenialDisagree`) — in one searchset Bundle. Built with the typed models the
//! gateway writes its own resources with; never anything of the record itself.

use super::corrections::Correction;
use crate::fhir::bundle::{searchset, Searchset};
use crate::fhir::model::codes::{EventStatus, SearchEntryMode, TaskIntent, TaskStatus};
use crate::fhir::model::resources::{
    Communication, CommunicationPayload, CommunicationPayloadContent, Task, TaskRestriction,
};
use crate::fhir::model::types::{Annotation, CodeableConcept, Coding, Period, Reference};
use crate::fhir::model::{finish, instant, BuilderError, DateTime};
use serde_json::Value;

const TASK_TYPES: &str = "http://hl7.org/fhir/uv/patient-corrections/CodeSystem/PatientCorrectionTaskTypes";
const COMMUNICATION_TYPES: &str =
    "http://hl7.org/fhir/uv/patient-corrections/CodeSystem/PatientCorrectionCommunicationTypes";
const BUSINESS_STATUS: &str = "http://hl7.org/fhir/uv/patient-corrections/CodeSystem/PatientCorrectionBusinessStatus";
const PROFILE_TASK: &str = "http://hl7.org/fhir/uv/patient-corrections/StructureDefinition/patient-correction-task";

fn at(stamp: &str) -> Option<DateTime> {
    let t = chrono::DateTime::parse_from_rfc3339(stamp).ok()?.with_timezone(&chrono::Utc);
    Some(DateTime::DateTime(instant(t)))
}

fn concept(system: &str, code: &str, display: &str) -> Result<CodeableConcept, BuilderError> {
    let coding =
        Coding::builder().system(system.to_string()).code(code.to_string()).display(display.to_string()).build()?;
    CodeableConcept::builder().coding(vec![Some(coding)]).build()
}

fn reference(to: String) -> Result<Reference, BuilderError> {
    Reference::builder().reference(to).build()
}

/// The Task of a request.
pub fn task(c: &Correction) -> Value {
    finish(typed_task(c))
}

fn typed_task(c: &Correction) -> Result<Task, BuilderError> {
    let (status, business) = match c.status.as_str() {
        "accepted" => (TaskStatus::Completed, ("accepted", "Accepted")),
        "denied" => (TaskStatus::Completed, ("denied", "Denied")),
        _ => (TaskStatus::Received, ("queued", "Queued")),
    };
    let meta = crate::fhir::model::types::Meta::builder().profile(vec![Some(PROFILE_TASK.to_string())]).build()?;
    let mut restriction = Period::builder();
    if let Some(end) = at(&c.due_at) {
        restriction = restriction.end(end);
    }
    let mut task = Task::builder()
        .id(format!("correction-{}", c.id))
        .meta(meta)
        .status(status)
        .business_status(concept(BUSINESS_STATUS, business.0, business.1)?)
        .intent(TaskIntent::_Custom("order".to_string()))
        .code(concept(TASK_TYPES, "medRecCxReq", "Correction Request")?)
        .r#for(reference(format!("Patient/{}", c.patient_id))?)
        .requester(Reference::builder().display(c.requester.clone()).build()?)
        .restriction(TaskRestriction::builder().period(restriction.build()?).build()?);
    if let Some(t) = at(&c.received_at) {
        task = task.authored_on(t);
    }
    if let Some(item) = &c.item {
        task = task.focus(reference(item.clone())?);
    }
    let mut notes = Vec::new();
    if let Some(reason) = &c.extension_reason {
        notes.push(Some(Annotation::builder().text(format!("Extended by 30 days: {reason}")).build()?));
    }
    if let Some(reason) = &c.decision_reason {
        notes.push(Some(Annotation::builder().text(reason.clone()).build()?));
    }
    if !notes.is_empty() {
        task = task.note(notes);
    }
    task.build()
}

/// A Communication of a request: what was said, by whom, when.
fn communication(c: &Correction, id: &str, category: (&str, &str), text: &str, sent: Option<&str>) -> Value {
    let built = (|| {
        let payload =
            CommunicationPayload::builder().content(CommunicationPayloadContent::String(text.to_string())).build()?;
        let mut m = Communication::builder()
            .id(format!("correction-{}-{id}", c.id))
            .status(EventStatus::Completed)
            .category(vec![Some(concept(COMMUNICATION_TYPES, category.0, category.1)?)])
            .subject(reference(format!("Patient/{}", c.patient_id))?)
            .about(vec![Some(reference(format!("Task/correction-{}", c.id))?)])
            .payload(vec![Some(payload)]);
        if let Some(t) = sent.and_then(at) {
            m = m.sent(t);
        }
        m.build()
    })();
    finish(built)
}

/// The request, its Task and every Communication so far, as one Bundle.
pub fn bundle(c: &Correction, self_url: &str) -> Value {
    let mut entries = vec![(format!("Task/correction-{}", c.id), task(c), SearchEntryMode::Match)];
    let mut add = |id: &str, category, text: &str, sent: Option<&str>| {
        let resource = communication(c, id, category, text, sent);
        entries.push((format!("Communication/correction-{}-{id}", c.id), resource, SearchEntryMode::Include));
    };
    add("request", ("medRecCxReq", "Correction Request"), &c.requested_change, Some(&c.received_at));
    if let Some(reason) = &c.decision_reason {
        let answer = format!("{}: {reason}", if c.status == "accepted" { "Accepted" } else { "Denied" });
        add("answer", ("medRecCxReq", "Correction Request"), &answer, c.decided_at.as_deref());
    }
    if let Some(statement) = &c.disagreement {
        add("disagreement", ("medRecCxDenialDisagree", "Disagreement"), statement, c.disagreement_at.as_deref());
    }
    let total = entries.iter().filter(|e| e.2 == SearchEntryMode::Match).count();
    searchset(
        &Searchset { self_url, total: Some(total), timestamp: Some(chrono::Utc::now()), ..Default::default() },
        entries,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denied_request_with_a_statement_is_a_task_and_three_communications() {
        let c = Correction {
            id: "c1".into(),
            patient_id: "pt".into(),
            requester: "account:a".into(),
            relationship: "SELF".into(),
            item: Some("Observation/ehr.o1".into()),
            item_fingerprint: None,
            requested_change: "wrong value".into(),
            status: "denied".into(),
            received_at: "2026-03-01T10:00:00.000Z".into(),
            due_at: "2026-04-30T10:00:00.000Z".into(),
            extension_reason: None,
            decided_at: Some("2026-03-02T10:00:00.000Z".into()),
            decided_by: Some("HIM".into()),
            decision_reason: Some("accurate".into()),
            disagreement: Some("it is not".into()),
            disagreement_at: Some("2026-03-03T10:00:00.000Z".into()),
        };
        let b = bundle(&c, "http://x/records/l/corrections/c1/fhir");
        let resources: Vec<&Value> = b["entry"].as_array().unwrap().iter().map(|e| &e["resource"]).collect();
        assert_eq!(resources.len(), 4);
        let task = resources[0];
        assert_eq!(task["resourceType"], "Task");
        assert_eq!(task["businessStatus"]["coding"][0]["code"], "denied");
        assert_eq!(task["code"]["coding"][0]["code"], "medRecCxReq");
        assert_eq!(task["focus"]["reference"], "Observation/ehr.o1");
        assert_eq!(task["restriction"]["period"]["end"], "2026-04-30T10:00:00Z");
        assert_eq!(resources[3]["category"][0]["coding"][0]["code"], "medRecCxDenialDisagree");
        assert_eq!(resources[3]["payload"][0]["contentString"], "it is not");
        let back: Task = serde_json::from_value(task.clone()).unwrap();
        assert_eq!(&serde_json::to_value(back).unwrap(), task, "round-trips through the R4B model");
    }
}
