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
use crate::i18n::{self, text_in, Lang};
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

/// The summary's template (the catalogue tests read every key it uses).
pub const TEMPLATE: &str = include_str!("templates/summary.html");

/// Its own environment: the summary is a file, not a page of the site, so it shares no
/// layout (and no stylesheet link) with the portal. Names ending in `.html` auto-escape.
// Cannot fail at run time: the template is built in, and every summary test renders it.
#[allow(clippy::expect_used)]
static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    crate::i18n::jinja::install(&mut env);
    env.add_template("summary.html", TEMPLATE).expect("summary template parses");
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
    title: String,
    columns: Vec<String>,
    /// The column holding dates (kept on one line).
    date_column: Option<usize>,
    rows: Vec<Row>,
    empty: String,
}

/// A labelled line of the demographics.
#[derive(Debug, Serialize)]
struct Fact {
    label: String,
    value: String,
}

/// Renders the summary of `record`, produced at `produced`, in `lang` (the gateway's words
/// and the dates; the record's own texts stay as the sources wrote them).
pub fn render(record: &WholeRecord, produced: DateTime<Utc>, lang: Lang) -> Result<String, SummaryError> {
    let patient = record.resources().iter().find(|r| fhir::resource_type(r) == Some("Patient"));
    let name = patient
        .map(person_name)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| text_in(lang, "summary-this-patient", &[]));
    let demographics = patient.map(|p| demographics(p, lang)).unwrap_or_default();
    let patient_source = patient.map(source_of).unwrap_or_default();
    let notices: Vec<&str> = record.notices().iter().map(|i| i.diagnostics.as_str()).collect();
    let missing: Vec<String> = record
        .missing()
        .iter()
        .map(|m| {
            let args = [("source", m.display.as_str().into()), ("reason", m.reason.to_string().into())];
            text_in(lang, "summary-missing", &args)
        })
        .collect();
    let html = TEMPLATES.get_template("summary.html")?.render(context! {
        lang => lang.code(),
        name,
        patient_id => record.patient_id(),
        produced => i18n::long_utc(lang, produced),
        demographics,
        patient_source,
        sections => sections(record.resources(), lang),
        notices,
        missing,
    })?;
    Ok(html)
}

fn sections(resources: &[Value], lang: Lang) -> Vec<Section> {
    let of = |types: &[&str]| -> Vec<&Value> {
        resources.iter().filter(|r| fhir::resource_type(r).is_some_and(|t| types.contains(&t))).collect()
    };
    let mut out = vec![
        section(
            lang,
            "problems",
            "summary-section-problems",
            &["summary-col-problem", "summary-col-status", "summary-col-since"],
            "summary-empty-problems",
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
            lang,
            "medications",
            "summary-section-medications",
            &["summary-col-medication", "summary-col-status", "summary-col-instructions", "summary-col-prescribed"],
            "summary-empty-medications",
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
            lang,
            "allergies",
            "summary-section-allergies",
            &["summary-col-allergy", "summary-col-reaction", "summary-col-criticality", "summary-col-status"],
            "summary-empty-allergies",
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
            lang,
            "immunizations",
            "summary-section-immunizations",
            &["summary-col-vaccine", "summary-col-date", "summary-col-status"],
            "summary-empty-immunizations",
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
            lang,
            "results",
            "summary-section-results",
            &[
                "summary-col-test",
                "summary-col-result",
                "summary-col-unit",
                "summary-col-reference-range",
                "summary-col-flag",
                "summary-col-date",
            ],
            "summary-empty-results",
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
            lang,
            "reports",
            "summary-section-reports",
            &["summary-col-report", "summary-col-conclusion", "summary-col-date", "summary-col-status"],
            "summary-empty-reports",
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
            lang,
            "visits",
            "summary-section-visits",
            &["summary-col-visit", "summary-col-date", "summary-col-reason", "summary-col-status"],
            "summary-empty-visits",
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
            lang,
            "procedures",
            "summary-section-procedures",
            &["summary-col-procedure", "summary-col-date", "summary-col-status"],
            "summary-empty-procedures",
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
            lang,
            "plans",
            "summary-section-plans",
            &["summary-col-plan-or-goal", "summary-col-status", "summary-col-since"],
            "summary-empty-plans",
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
            lang,
            "care-team",
            "summary-section-care-team",
            &["summary-col-team", "summary-col-members", "summary-col-status"],
            "summary-empty-care-team",
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
            lang,
            "documents",
            "summary-section-documents",
            &["summary-col-document", "summary-col-description", "summary-col-date"],
            "summary-empty-documents",
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

/// One section; `title`, `columns` and `empty` are catalogue keys.
fn section(
    lang: Lang,
    id: &'static str,
    title: &str,
    columns: &[&str],
    empty: &str,
    resources: &[&Value],
    row: impl Fn(&Value) -> (Vec<String>, String),
) -> Section {
    let date_column =
        columns.iter().position(|c| ["summary-col-date", "summary-col-since", "summary-col-prescribed"].contains(c));
    let rows = resources
        .iter()
        .map(|r| {
            let (mut cells, sort) = row(r);
            if let Some(cell) = date_column.and_then(|i| cells.get_mut(i)) {
                *cell = day(lang, cell);
            }
            Row { cells, source: source_of(r), sort }
        })
        .collect();
    Section {
        id,
        title: text_in(lang, title, &[]),
        columns: columns.iter().map(|c| text_in(lang, c, &[])).collect(),
        date_column,
        rows,
        empty: text_in(lang, empty, &[]),
    }
}

/// A day written `YYYY-MM-DD` in the language's format; anything else (a partial date, a
/// text) as written.
fn day(lang: Lang, written: &str) -> String {
    chrono::NaiveDate::parse_from_str(written, "%Y-%m-%d").map_or_else(|_| written.to_string(), |d| i18n::day(lang, d))
}

fn demographics(p: &Value, lang: Lang) -> Vec<Fact> {
    let mut facts = vec![
        Fact { label: text_in(lang, "summary-fact-name", &[]), value: person_name(p) },
        Fact { label: text_in(lang, "summary-fact-date-of-birth", &[]), value: day(lang, &plain(p.get("birthDate"))) },
        Fact { label: text_in(lang, "summary-fact-sex", &[]), value: plain(p.get("gender")) },
    ];
    if let Some(d) = p.get("deceasedDateTime") {
        facts.push(Fact { label: text_in(lang, "summary-fact-date-of-death", &[]), value: day(lang, &date(Some(d))) });
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
    facts.push(Fact { label: text_in(lang, "summary-fact-record-numbers", &[]), value: numbers.join("; ") });
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
    facts.push(Fact { label: text_in(lang, "summary-fact-address", &[]), value: addresses.join("; ") });
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
    facts.push(Fact { label: text_in(lang, "summary-fact-phone-and-email", &[]), value: contacts.join("; ") });
    facts.retain(|f| !f.value.is_empty());
    facts
}

#[cfg(test)]
mod tests;
