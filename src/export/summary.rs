//! The human-readable summary of a released record (`summary.html` in the download zip):
//! one self-contained, printable HTML page — whose record, when it was produced,
//! demographics, problems, medications, allergies, immunizations, results, reports, visits,
//! procedures, plans, care team and documents, each item with the system it came from —
//! plus the withheld-notice and any missing-source warning. It reads only the few fields
//! it shows from the released JSON (never rewrites it), escapes everything through
//! minijinja's HTML auto-escaping, and loads nothing from outside (no scripts, no links to
//! assets: the file is opened offline).

use super::readable::*;
use crate::fhir;
use crate::read::WholeRecord;
use chrono::{DateTime, Utc};
use minijinja::{context, Environment};
use serde::Serialize;
use serde_json::Value;
use std::sync::LazyLock;

#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error("the summary template failed: {0}")]
    Template(#[from] minijinja::Error),
}

/// Its own environment: the summary is a file, not a page of the site, so it shares no
/// layout (and no stylesheet link) with the portal. Names ending in `.html` auto-escape.
// Cannot fail at run time: the template is built in, and every summary test renders it.
#[allow(clippy::expect_used)]
static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.add_template("summary.html", include_str!("templates/summary.html")).expect("summary template parses");
    env
});

/// One line of a section's table.
#[derive(Debug, Serialize)]
struct Row {
    cells: Vec<String>,
    source: String,
    #[serde(skip)]
    sort: String,
}

#[derive(Debug, Serialize)]
struct Section {
    id: &'static str,
    title: &'static str,
    columns: Vec<&'static str>,
    /// The column holding dates (kept on one line).
    date_column: Option<usize>,
    rows: Vec<Row>,
    empty: &'static str,
}

/// A labelled line of the demographics.
#[derive(Debug, Serialize)]
struct Fact {
    label: &'static str,
    value: String,
}

/// Renders the summary of `record`, produced at `produced`.
pub fn render(record: &WholeRecord, produced: DateTime<Utc>) -> Result<String, SummaryError> {
    let patient = record.resources().iter().find(|r| fhir::resource_type(r) == Some("Patient"));
    let name = patient.map(person_name).filter(|n| !n.is_empty()).unwrap_or_else(|| "this patient".to_string());
    let demographics = patient.map(demographics).unwrap_or_default();
    let patient_source = patient.map(source_of).unwrap_or_default();
    let notices: Vec<&str> = record.notices().iter().map(|i| i.diagnostics.as_str()).collect();
    let missing: Vec<String> = record.missing().iter().map(|m| crate::read::missing_warning(m).diagnostics).collect();
    let html = TEMPLATES.get_template("summary.html")?.render(context! {
        name,
        patient_id => record.patient_id(),
        produced => produced.format("%Y-%m-%d %H:%M UTC").to_string(),
        demographics,
        patient_source,
        sections => sections(record.resources()),
        notices,
        missing,
    })?;
    Ok(html)
}

fn sections(resources: &[Value]) -> Vec<Section> {
    let of = |types: &[&str]| -> Vec<&Value> {
        resources.iter().filter(|r| fhir::resource_type(r).is_some_and(|t| types.contains(&t))).collect()
    };
    let mut out = vec![
        section(
            "problems",
            "Problems",
            &["Problem", "Status", "Since"],
            "No problems are listed.",
            &of(&["Condition"]),
            |r| {
                (
                    vec![
                        concept(r.get("code")),
                        concept(r.get("clinicalStatus")),
                        date(first(r, &["onsetDateTime", "onsetPeriod.start", "recordedDate"])),
                    ],
                    date_key(r, &["onsetDateTime", "onsetPeriod.start", "recordedDate"]),
                )
            },
        ),
        section(
            "medications",
            "Medications",
            &["Medication", "Status", "Instructions", "Prescribed"],
            "No medications are listed.",
            &of(&["MedicationRequest", "MedicationStatement"]),
            |r| {
                let instructions = r.pointer("/dosageInstruction/0/text").or_else(|| r.pointer("/dosage/0/text"));
                (
                    vec![
                        concept(r.get("medicationCodeableConcept"))
                            .or_display(r.pointer("/medicationReference/display")),
                        plain(r.get("status")),
                        plain(instructions),
                        date(first(r, &["authoredOn", "effectiveDateTime", "effectivePeriod.start"])),
                    ],
                    date_key(r, &["authoredOn", "effectiveDateTime", "effectivePeriod.start"]),
                )
            },
        ),
        section(
            "allergies",
            "Allergies",
            &["Allergy", "Reaction", "Criticality", "Status"],
            "No allergies are listed.",
            &of(&["AllergyIntolerance"]),
            |r| {
                (
                    vec![
                        concept(r.get("code")),
                        concept(r.pointer("/reaction/0/manifestation/0")),
                        plain(r.get("criticality")),
                        concept(r.get("clinicalStatus")),
                    ],
                    date_key(r, &["recordedDate", "onsetDateTime"]),
                )
            },
        ),
        section(
            "immunizations",
            "Immunizations",
            &["Vaccine", "Date", "Status"],
            "No immunizations are listed.",
            &of(&["Immunization"]),
            |r| {
                (
                    vec![
                        concept(r.get("vaccineCode")),
                        date(first(r, &["occurrenceDateTime", "occurrenceString"])),
                        plain(r.get("status")),
                    ],
                    date_key(r, &["occurrenceDateTime"]),
                )
            },
        ),
        section(
            "results",
            "Test results and measurements",
            &["Test", "Result", "Unit", "Reference range", "Flag", "Date"],
            "No results are listed.",
            &of(&["Observation"]),
            |r| {
                let (value, unit) = observation_value(r);
                (
                    vec![
                        concept(r.get("code")),
                        value,
                        unit,
                        reference_range(r.pointer("/referenceRange/0")),
                        concept(r.pointer("/interpretation/0")),
                        date(first(r, &["effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "issued"])),
                    ],
                    date_key(r, &["effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "issued"]),
                )
            },
        ),
        section(
            "reports",
            "Reports",
            &["Report", "Conclusion", "Date", "Status"],
            "No reports are listed.",
            &of(&["DiagnosticReport"]),
            |r| {
                (
                    vec![
                        concept(r.get("code")),
                        plain(r.get("conclusion")).or_display(r.pointer("/conclusionCode/0/text")),
                        date(first(r, &["effectiveDateTime", "effectivePeriod.start", "issued"])),
                        plain(r.get("status")),
                    ],
                    date_key(r, &["effectiveDateTime", "effectivePeriod.start", "issued"]),
                )
            },
        ),
        section(
            "visits",
            "Visits",
            &["Visit", "Date", "Reason", "Status"],
            "No visits are listed.",
            &of(&["Encounter"]),
            |r| {
                let kind = concept(r.pointer("/type/0"))
                    .or_display(r.pointer("/class/display"))
                    .or_display(r.pointer("/class/code"));
                (
                    vec![
                        kind,
                        date(first(r, &["period.start"])),
                        concept(r.pointer("/reasonCode/0")),
                        plain(r.get("status")),
                    ],
                    date_key(r, &["period.start"]),
                )
            },
        ),
        section(
            "procedures",
            "Procedures",
            &["Procedure", "Date", "Status"],
            "No procedures are listed.",
            &of(&["Procedure"]),
            |r| {
                (
                    vec![
                        concept(r.get("code")),
                        date(first(r, &["performedDateTime", "performedPeriod.start"])),
                        plain(r.get("status")),
                    ],
                    date_key(r, &["performedDateTime", "performedPeriod.start"]),
                )
            },
        ),
        section(
            "plans",
            "Care plans and goals",
            &["Plan or goal", "Status", "Since"],
            "No care plans or goals are listed.",
            &of(&["CarePlan", "Goal"]),
            |r| {
                let what =
                    plain(r.get("title")).or_display(r.pointer("/description/text")).or_display(r.get("description"));
                let status = plain(r.get("status")).or_display(r.get("lifecycleStatus"));
                (
                    vec![what, status, date(first(r, &["period.start", "startDate", "created"]))],
                    date_key(r, &["period.start", "startDate", "created"]),
                )
            },
        ),
        section(
            "care-team",
            "Care team",
            &["Team", "Members", "Status"],
            "No care team is listed.",
            &of(&["CareTeam"]),
            |r| {
                let members: Vec<String> = r
                    .get("participant")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|p| concept(p.pointer("/role/0")).or_display(p.pointer("/member/display")))
                    .filter(|s| !s.is_empty())
                    .collect();
                (vec![plain(r.get("name")), members.join("; "), plain(r.get("status"))], date_key(r, &["period.start"]))
            },
        ),
        section(
            "documents",
            "Documents",
            &["Document", "Description", "Date"],
            "No documents are listed.",
            &of(&["DocumentReference"]),
            |r| {
                (
                    vec![
                        concept(r.get("type")),
                        plain(r.get("description")),
                        date(first(r, &["date", "context.period.start"])),
                    ],
                    date_key(r, &["date", "context.period.start"]),
                )
            },
        ),
    ];
    for s in &mut out {
        // Newest first; undated items last, in record order.
        s.rows.sort_by(|a, b| b.sort.cmp(&a.sort));
    }
    out
}

fn section(
    id: &'static str,
    title: &'static str,
    columns: &[&'static str],
    empty: &'static str,
    resources: &[&Value],
    row: impl Fn(&Value) -> (Vec<String>, String),
) -> Section {
    let rows = resources
        .iter()
        .map(|r| {
            let (cells, sort) = row(r);
            Row { cells, source: source_of(r), sort }
        })
        .collect();
    let date_column = columns.iter().position(|c| ["Date", "Since", "Prescribed"].contains(c));
    Section { id, title, columns: columns.to_vec(), date_column, rows, empty }
}

fn demographics(p: &Value) -> Vec<Fact> {
    let mut facts = vec![
        Fact { label: "Name", value: person_name(p) },
        Fact { label: "Date of birth", value: plain(p.get("birthDate")) },
        Fact { label: "Sex", value: plain(p.get("gender")) },
    ];
    if let Some(d) = p.get("deceasedDateTime") {
        facts.push(Fact { label: "Date of death", value: date(Some(d)) });
    }
    let numbers: Vec<String> = p
        .get("identifier")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| {
            let value = i.get("value").and_then(Value::as_str)?;
            let kind = concept(i.get("type")).or_display(i.pointer("/assigner/display"));
            Some(if kind.is_empty() { value.to_string() } else { format!("{value} ({kind})") })
        })
        .collect();
    facts.push(Fact { label: "Record numbers", value: numbers.join("; ") });
    let addresses: Vec<String> = p
        .get("address")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|a| {
            let mut parts: Vec<String> = a
                .get("line")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            parts.extend(["city", "state", "postalCode"].iter().map(|k| plain(a.get(*k))).filter(|s| !s.is_empty()));
            parts.join(", ")
        })
        .filter(|s| !s.is_empty())
        .collect();
    facts.push(Fact { label: "Address", value: addresses.join("; ") });
    let contacts: Vec<String> = p
        .get("telecom")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let value = t.get("value").and_then(Value::as_str)?;
            let usage = plain(t.get("use"));
            Some(if usage.is_empty() { value.to_string() } else { format!("{value} ({usage})") })
        })
        .collect();
    facts.push(Fact { label: "Phone and email", value: contacts.join("; ") });
    facts.retain(|f| !f.value.is_empty());
    facts
}

#[cfg(test)]
mod tests;
