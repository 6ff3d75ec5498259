//! The record pages' view model: turns a released record ([`WholeRecord`]) into whose record
//! it is, plain display rows per section (results, medications, allergies, immunizations,
//! problems, visits, documents, care team), upcoming and recent visits, the sources missing
//! right now and the notices to show. It knows nothing of HTTP and takes nothing but the
//! released record, so it cannot show what the policy withheld.

use super::fhir_text::{self as fx, Lookup};
use super::results_view::{self, ResultsView};
use crate::i18n::t;
use crate::read::WholeRecord;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// The sections of a record, in menu order: (path segment, catalogue key of its heading).
pub const SECTIONS: [(&str, &str); 9] = [
    ("results", "section-test-results"),
    ("medications", "section-medications"),
    ("allergies", "section-allergies"),
    ("immunizations", "section-immunizations"),
    ("problems", "section-health-problems"),
    ("visits", "section-visits"),
    ("documents", "section-documents"),
    ("care-team", "section-care-team"),
    ("other", "section-other-records"),
];

/// One labelled fact about an item.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Detail {
    /// The label's catalogue key (what code compares, e.g. `detail-phone`).
    pub key: &'static str,
    /// The label in the page's language.
    pub label: String,
    pub value: String,
}

/// One item of a section, in plain words.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub title: String,
    pub date: Option<String>,
    #[serde(skip)]
    pub sort: String,
    pub status: Option<String>,
    pub details: Vec<Detail>,
    /// The hospital systems it came from.
    pub sources: Vec<String>,
    /// Worth a second look (a high-risk allergy).
    pub alert: bool,
    /// A note's own words, when it is plain text.
    pub text: Option<String>,
    /// Links to the content the gateway serves for it (PDF, C-CDA …).
    pub files: Vec<super::documents_view::DocumentLink>,
    /// The item's gateway `Type/id` (a correction request names it).
    pub key: String,
}

impl Item {
    /// `fallback`: the catalogue key of the title used when the item has no name.
    pub(super) fn new(r: &Value, title: Option<String>, fallback: &str) -> Item {
        Item {
            title: title.unwrap_or_else(|| t(fallback)),
            date: None,
            sort: String::new(),
            status: None,
            details: Vec::new(),
            sources: fx::sources(r),
            alert: false,
            text: None,
            files: Vec::new(),
            key: format!("{}/{}", r["resourceType"].as_str().unwrap_or(""), r["id"].as_str().unwrap_or("")),
        }
    }

    pub(super) fn when(mut self, value: Option<String>, with_time: bool) -> Item {
        if let Some(v) = value {
            self.date = Some(if with_time { fx::date_time(&v) } else { fx::date(&v) });
            self.sort = v;
        }
        self
    }

    fn with_text(mut self, text: Option<String>) -> Item {
        self.text = text;
        self
    }

    /// A fact labelled by the catalogue key `key`, when it has a value.
    fn detail(mut self, key: &'static str, value: Option<String>) -> Item {
        if let Some(v) = value.filter(|v| !v.trim().is_empty()) {
            self.details.push(Detail { key, label: t(key), value: v });
        }
        self
    }
}

/// Whose record is open.
#[derive(Debug, Clone, Serialize)]
pub struct Whose {
    pub name: Option<String>,
    pub age: Option<i32>,
    pub deceased: Option<String>,
}

/// The care team section: teams, clinicians and organizations in the shown data.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CareTeamView {
    pub teams: Vec<Item>,
    pub people: Vec<Item>,
    pub organizations: Vec<Item>,
}

/// Everything the record pages show, from the released record only.
#[derive(Debug, Clone, Serialize)]
pub struct RecordView {
    pub whose: Whose,
    /// The policy's notices (the withheld-notice), word for word.
    pub notices: Vec<String>,
    /// Display names of the systems whose part may be missing right now.
    pub missing: Vec<String>,
    pub results: ResultsView,
    pub medications: Vec<Item>,
    pub allergies: Vec<Item>,
    pub immunizations: Vec<Item>,
    pub problems: Vec<Item>,
    /// Newest first.
    pub visits: Vec<Item>,
    /// Soonest first.
    pub upcoming: Vec<Item>,
    /// The latest few past visits, newest first.
    pub recent: Vec<Item>,
    pub documents: Vec<Item>,
    pub care_team: CareTeamView,
    /// Every type no other section shows (claims, coverage, imaging studies …).
    pub other: Vec<Item>,
}

/// How many past visits the home page lists.
const RECENT_VISITS: usize = 3;

impl RecordView {
    /// Builds the view of `record` as of `now` (ages, upcoming or past visits).
    pub fn of(record: &WholeRecord, now: DateTime<Utc>) -> RecordView {
        let resources = record.resources();
        let lookup = Lookup::new(resources);
        let mut files = super::documents_view::links(record);
        let of_type =
            |t: &'static str| resources.iter().filter(move |r| fx::text(r, "resourceType").as_deref() == Some(t));
        let mut visits: Vec<(Item, bool)> = of_type("Encounter")
            .map(|r| encounter(r, &lookup, now))
            .chain(of_type("Appointment").map(|r| appointment(r, now)))
            .collect();
        visits.sort_by(|a, b| b.0.sort.cmp(&a.0.sort));
        let mut upcoming: Vec<Item> = visits.iter().filter(|(_, up)| *up).map(|(i, _)| i.clone()).collect();
        upcoming.reverse();
        let recent = visits.iter().filter(|(_, up)| !*up).take(RECENT_VISITS).map(|(i, _)| i.clone()).collect();
        RecordView {
            whose: whose(resources.first().filter(|r| fx::text(r, "resourceType").as_deref() == Some("Patient")), now),
            notices: record.notices().iter().map(|n| n.diagnostics.clone()).collect(),
            missing: record.missing().iter().map(|m| m.display.clone()).collect(),
            results: {
                let mut results = results_view::results(resources, &lookup);
                for report in &mut results.reports {
                    report.files = files.remove(&report.key).unwrap_or_default();
                }
                results
            },
            medications: newest_first(
                of_type("MedicationRequest").chain(of_type("MedicationStatement")).map(|r| medication(r, &lookup)),
            ),
            allergies: newest_first(of_type("AllergyIntolerance").map(allergy)),
            immunizations: newest_first(of_type("Immunization").map(|r| immunization(r, &lookup))),
            problems: newest_first(of_type("Condition").map(condition)),
            visits: visits.into_iter().map(|(i, _)| i).collect(),
            upcoming,
            recent,
            documents: newest_first(of_type("DocumentReference").map(|r| {
                let key = format!("DocumentReference/{}", fx::text(r, "id").unwrap_or_default());
                Item { files: files.remove(&key).unwrap_or_default(), ..document(r, &lookup) }
            })),
            care_team: CareTeamView {
                teams: of_type("CareTeam").map(|r| care_team(r, &lookup)).collect(),
                people: of_type("Practitioner").map(contact).collect(),
                organizations: of_type("Organization").map(contact).collect(),
            },
            other: super::other_records::items(resources),
        }
    }

    /// How many items a section holds (for the home page's menu).
    pub fn count(&self, section: &str) -> usize {
        match section {
            "results" => self.results.len(),
            "medications" => self.medications.len(),
            "allergies" => self.allergies.len(),
            "immunizations" => self.immunizations.len(),
            "problems" => self.problems.len(),
            "visits" => self.visits.len(),
            "documents" => self.documents.len(),
            "other" => self.other.len(),
            "care-team" => {
                self.care_team.teams.len() + self.care_team.people.len() + self.care_team.organizations.len()
            }
            _ => 0,
        }
    }

    /// The items of a list section (not results or care team, which have their own shape).
    pub fn items(&self, section: &str) -> Option<&[Item]> {
        Some(match section {
            "medications" => &self.medications,
            "allergies" => &self.allergies,
            "immunizations" => &self.immunizations,
            "problems" => &self.problems,
            "visits" => &self.visits,
            "documents" => &self.documents,
            "other" => &self.other,
            _ => return None,
        })
    }
}

fn newest_first(items: impl Iterator<Item = Item>) -> Vec<Item> {
    let mut v: Vec<Item> = items.collect();
    v.sort_by(|a, b| b.alert.cmp(&a.alert).then(b.sort.cmp(&a.sort)).then(a.title.cmp(&b.title)));
    v
}

fn whose(patient: Option<&Value>, now: DateTime<Utc>) -> Whose {
    let Some(p) = patient else { return Whose { name: None, age: None, deceased: None } };
    let deceased = match (p.get("deceasedDateTime").and_then(Value::as_str), p.get("deceasedBoolean")) {
        (Some(when), _) => Some(fx::date(when)),
        (None, Some(Value::Bool(true))) => Some(String::new()),
        _ => None,
    };
    let age = p
        .get("birthDate")
        .and_then(Value::as_str)
        .and_then(|b| chrono::NaiveDate::parse_from_str(b, "%Y-%m-%d").ok())
        .map(|b| crate::fhir::time::age_on(b, now.date_naive()))
        .filter(|_| deceased.is_none());
    Whose { name: fx::person_name(p), age, deceased }
}

fn status_word(status: Option<&str>) -> Option<String> {
    let s = status?;
    Some(t(match s {
        "active" => "status-active",
        "inactive" => "status-inactive",
        "resolved" => "status-resolved",
        "remission" => "status-in-remission",
        "recurrence" | "relapse" => "status-came-back",
        "stopped" => "status-stopped",
        "completed" => "status-completed",
        "on-hold" => "status-on-hold",
        "cancelled" => "status-cancelled",
        "finished" => "status-completed",
        "planned" => "status-planned",
        "booked" => "status-booked",
        "arrived" | "in-progress" => "status-in-progress",
        "entered-in-error" => "status-entered-in-error",
        "not-done" => "status-not-given",
        "draft" => "status-draft",
        "unknown" => "status-unknown",
        other => return Some(other.to_string()),
    }))
}

fn clinical_status(r: &Value) -> Option<String> {
    let code = r.pointer("/clinicalStatus/coding/0/code").and_then(Value::as_str);
    status_word(code).or_else(|| fx::concept(r.get("clinicalStatus")))
}

fn medication(r: &Value, lookup: &Lookup<'_>) -> Item {
    let name = fx::concept(r.get("medicationCodeableConcept"))
        .or_else(|| r.get("medicationReference").and_then(|m| lookup.concept_of(m)));
    let reasons: Vec<String> = r
        .get("reasonCode")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| fx::concept(Some(c)))
        .chain(
            r.get("reasonReference")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|x| lookup.concept_of(x)),
        )
        .collect();
    let dosage = r
        .get("dosageInstruction")
        .or_else(|| r.get("dosage"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| fx::text(d, "text"))
        .collect::<Vec<_>>()
        .join("; ");
    let mut item = Item::new(r, name, "item-medication").when(
        fx::text(r, "authoredOn").or_else(|| fx::text(r, "effectiveDateTime")).or_else(|| fx::text(r, "dateAsserted")),
        false,
    );
    item.status = status_word(r.get("status").and_then(Value::as_str));
    item.detail("detail-how-to-take-it", Some(dosage))
        .detail("detail-prescribed-by", r.get("requester").and_then(|x| lookup.name(x)))
        .detail("detail-why", (!reasons.is_empty()).then(|| reasons.join(", ")))
        .detail("detail-why-it-was-stopped", r.get("statusReason").and_then(|s| fx::concept(Some(s))))
}

fn allergy(r: &Value) -> Item {
    let reactions: Vec<String> = r
        .get("reaction")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|x| {
            let severity = fx::text(x, "severity");
            x.get("manifestation").and_then(Value::as_array).into_iter().flatten().filter_map(move |m| {
                let words = fx::concept(Some(m))?;
                Some(match &severity {
                    Some(s) => format!("{words} ({s})"),
                    None => words,
                })
            })
        })
        .collect();
    let categories: Vec<String> = r
        .get("category")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    let high = r.get("criticality").and_then(Value::as_str) == Some("high");
    let mut item = Item::new(r, fx::concept(r.get("code")), "item-allergy")
        .when(fx::text(r, "recordedDate").or_else(|| fx::text(r, "onsetDateTime")), false);
    item.status = clinical_status(r);
    item.alert = high;
    item.detail("detail-reaction", (!reactions.is_empty()).then(|| reactions.join(", ")))
        .detail("detail-risk", high.then(|| t("value-high-risk-a-reaction-could")))
        .detail("detail-kind", (!categories.is_empty()).then(|| categories.join(", ")))
}

fn immunization(r: &Value, lookup: &Lookup<'_>) -> Item {
    let mut item =
        Item::new(r, fx::concept(r.get("vaccineCode")), "item-vaccine").when(fx::text(r, "occurrenceDateTime"), false);
    item.status = match r.get("status").and_then(Value::as_str) {
        Some("completed") => Some(t("value-given")),
        other => status_word(other),
    };
    item.detail("detail-where", r.get("location").and_then(|l| lookup.name(l)))
        .detail("detail-dose", r.get("doseQuantity").and_then(fx::quantity))
}

fn condition(r: &Value) -> Item {
    let onset = fx::text(r, "onsetDateTime")
        .or_else(|| r.pointer("/onsetPeriod/start").and_then(Value::as_str).map(str::to_string));
    let verification = r.pointer("/verificationStatus/coding/0/code").and_then(Value::as_str);
    let mut item = Item::new(r, fx::concept(r.get("code")), "item-health-problem")
        .when(onset.clone().or_else(|| fx::text(r, "recordedDate")), false);
    item.status = clinical_status(r);
    item.detail("detail-since", onset.as_deref().map(fx::date))
        .detail("detail-kind", fx::first_concept(r.get("category")))
        .detail(
            "detail-confirmed",
            match verification {
                Some("provisional" | "differential" | "unconfirmed") => Some(t("value-not-yet-confirmed")),
                Some("refuted") => Some(t("value-ruled-out")),
                _ => None,
            },
        )
        .detail("detail-ended", fx::text(r, "abatementDateTime").as_deref().map(fx::date))
}

/// An Encounter, and whether it is still to come.
fn encounter(r: &Value, lookup: &Lookup<'_>, now: DateTime<Utc>) -> (Item, bool) {
    let start = r.pointer("/period/start").and_then(Value::as_str).map(str::to_string);
    let class = r.pointer("/class/code").and_then(Value::as_str);
    let kind = match class {
        Some("AMB") => Some(t("value-office-or-clinic-visit")),
        Some("EMER") => Some(t("value-emergency-department")),
        Some("IMP" | "ACUTE") => Some(t("value-hospital-stay")),
        Some("VR") => Some(t("value-virtual-visit")),
        Some("HH") => Some(t("value-home-visit")),
        _ => r.pointer("/class/display").and_then(Value::as_str).map(str::to_string),
    };
    let status = r.get("status").and_then(Value::as_str);
    let upcoming = status == Some("planned")
        || (status != Some("cancelled")
            && status != Some("finished")
            && start.as_deref().and_then(fx::instant).is_some_and(|s| s > now));
    let reasons: Vec<String> = r
        .get("reasonCode")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| fx::concept(Some(c)))
        .chain(
            r.get("reasonReference")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|x| lookup.concept_of(x)),
        )
        .collect();
    let with: Vec<String> = r
        .get("participant")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("individual").and_then(|i| lookup.name(i)))
        .collect();
    let place = r
        .get("location")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|l| l.get("location").and_then(|x| lookup.name(x)))
        .or_else(|| r.get("serviceProvider").and_then(|x| lookup.name(x)));
    let mut item = Item::new(r, fx::first_concept(r.get("type")).or(kind.clone()), "item-visit").when(start, true);
    item.status = status_word(status);
    let item = item
        .detail("detail-kind", kind)
        .detail("detail-reason", (!reasons.is_empty()).then(|| reasons.join(", ")))
        .detail("detail-with", (!with.is_empty()).then(|| with.join(", ")))
        .detail("detail-where", place)
        .detail(
            "detail-ended",
            r.pointer("/period/end").and_then(Value::as_str).filter(|_| class != Some("AMB")).map(fx::date_time),
        );
    (item, upcoming)
}

/// An Appointment, and whether it is still to come.
fn appointment(r: &Value, now: DateTime<Utc>) -> (Item, bool) {
    let start = fx::text(r, "start");
    let status = r.get("status").and_then(Value::as_str);
    let upcoming = matches!(status, Some("proposed" | "pending" | "booked" | "arrived" | "checked-in"))
        && start.as_deref().and_then(fx::instant).is_none_or(|s| s > now);
    let title = fx::text(r, "description")
        .or_else(|| fx::first_concept(r.get("serviceType")))
        .or_else(|| fx::concept(r.get("appointmentType")));
    let mut item = Item::new(r, title, "item-appointment").when(start, true);
    item.status = status_word(status);
    (item.detail("detail-kind", Some(t("value-appointment"))), upcoming)
}

fn document(r: &Value, lookup: &Lookup<'_>) -> Item {
    let title = fx::text(r, "description")
        .or_else(|| r.pointer("/content/0/attachment/title").and_then(Value::as_str).map(str::to_string))
        .or_else(|| fx::concept(r.get("type")));
    let authors: Vec<String> =
        r.get("author").and_then(Value::as_array).into_iter().flatten().filter_map(|a| lookup.name(a)).collect();
    let mut item = Item::new(r, title, "item-document").when(
        fx::text(r, "date")
            .or_else(|| r.pointer("/content/0/attachment/creation").and_then(Value::as_str).map(str::to_string)),
        false,
    );
    item.status = match r.get("docStatus").and_then(Value::as_str) {
        Some("final") => Some(t("value-final")),
        Some("preliminary") => Some(t("value-preliminary")),
        Some("amended") => Some(t("value-corrected")),
        _ => None,
    };
    item.detail("detail-type", fx::concept(r.get("type")))
        .detail("detail-written-by", (!authors.is_empty()).then(|| authors.join(", ")))
        .detail("detail-kept-by", r.get("custodian").and_then(|c| lookup.name(c)))
        .with_text(super::documents_view::note_text(r))
}

fn care_team(r: &Value, lookup: &Lookup<'_>) -> Item {
    let members: Vec<String> = r
        .get("participant")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let member = p.get("member")?;
            if member.get("reference").and_then(Value::as_str).is_some_and(|s| s.starts_with("Patient/")) {
                return None;
            }
            let who = lookup.name(member)?;
            let phone = lookup.resolve(member).and_then(fx::phone);
            let role = fx::first_concept(p.get("role"));
            Some(match (role, phone) {
                (Some(role), Some(phone)) => format!("{who} — {role}, phone {phone}"),
                (Some(role), None) => format!("{who} — {role}"),
                (None, Some(phone)) => format!("{who}, phone {phone}"),
                (None, None) => who,
            })
        })
        .collect();
    let orgs: Vec<String> = r
        .get("managingOrganization")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|o| lookup.name(o))
        .collect();
    let mut item = Item::new(r, fx::text(r, "name"), "item-care-team");
    item.status = status_word(r.get("status").and_then(Value::as_str));
    item.detail("detail-members", (!members.is_empty()).then(|| members.join("; ")))
        .detail("detail-organization", (!orgs.is_empty()).then(|| orgs.join(", ")))
}

/// A clinician or organization with how to reach them.
fn contact(r: &Value) -> Item {
    let qualification = r
        .get("qualification")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|q| fx::concept(q.get("code")))
        .collect::<Vec<_>>()
        .join(", ");
    let address = r.pointer("/address/0").map(|a| {
        let line =
            a.get("line").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect::<Vec<_>>();
        let city = fx::text(a, "city");
        let mut parts: Vec<String> = line.into_iter().map(str::to_string).collect();
        parts.extend(city);
        parts.join(", ")
    });
    Item::new(r, fx::name_of(r), "item-unnamed")
        .detail("detail-qualification", Some(qualification))
        .detail("detail-phone", fx::phone(r))
        .detail("detail-address", address)
}

#[cfg(test)]
mod tests;
