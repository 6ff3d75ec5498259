//! The shapes generated resources share: codings, references, quantities, dates relative
//! to the anchor day, and each source's directory (clinicians, organization, sites). Also
//! the context one person's content is written through. Builds JSON only; writes nothing
//! itself.

use super::codes::{self, FAMILIES, FEMALE_GIVEN, MALE_GIVEN};
use super::output::{IdBook, Output};
use super::people::{LinkBy, Person, Record};
use super::{GenerateError, SourceKind};
use chrono::{Duration, NaiveDate};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

/// One person's content for one source is written through this.
pub(super) struct Ctx<'a> {
    pub person: &'a Person,
    pub record: &'a Record,
    pub source: usize,
    pub directory: &'a Directory,
    pub out: &'a mut Output,
    pub rng: &'a mut ChaCha8Rng,
}

impl Ctx<'_> {
    pub fn id(&mut self, resource_type: &'static str) -> String {
        self.out.ids.next(self.source, resource_type)
    }

    pub fn put(&mut self, resource: Value) -> Result<(), GenerateError> {
        self.out.put(self.source, &resource)
    }

    /// Notes in the manifest that `Type/id` must carry `label` at the gateway.
    pub fn flag(&mut self, resource_type: &str, id: &str, label: &str, what: &str) -> Result<(), GenerateError> {
        let source = self.directory.source_name.clone();
        self.out.expect(self.person, &source, &format!("{resource_type}/{id}"), Some(label), what)
    }

    /// Notes in the manifest that `Type/id` is ordinary: it must carry no sensitivity label.
    pub fn ordinary(&mut self, resource_type: &str, id: &str, what: &str) -> Result<(), GenerateError> {
        let source = self.directory.source_name.clone();
        self.out.expect(self.person, &source, &format!("{resource_type}/{id}"), None, what)
    }

    /// Writes this record's Patient (with the anchor record's identifier when it links by it).
    pub fn write_patient(&mut self) -> Result<(), GenerateError> {
        let patient = self.patient_value();
        self.put(patient)
    }

    /// This record's Patient, with `meta.lastUpdated` on a day of the year before the anchor
    /// (drawn from the person's key, not the random stream), for incremental listings.
    pub fn write_patient_updated(&mut self) -> Result<(), GenerateError> {
        let mut patient = self.patient_value();
        let number: i64 = self.person.key.trim_start_matches('G').parse().unwrap_or(0);
        let day = anchor() - Duration::days(1 + (number * 7919 + self.source as i64 * 31) % 365);
        patient["meta"] = json!({"lastUpdated": format!("{}T08:00:00Z", day.format("%Y-%m-%d"))});
        self.put(patient)
    }

    fn patient_value(&self) -> Value {
        let anchor = &self.person.records[0];
        let shared = (self.record.link == LinkBy::Identifier)
            .then(|| (identifier_system(anchor.source), anchor.identifier.clone()));
        self.person.patient_resource(
            self.record,
            &self.directory.identifier_system,
            shared.as_ref().map(|(s, v)| (s.as_str(), v.as_str())),
        )
    }

    /// Whether the person has a record in a source of `kind`.
    pub fn has(&self, kind: SourceKind) -> bool {
        self.person.records.iter().any(|r| super::kind_of(r.source) == kind)
    }

    /// Whether this record is the person's care home: their first hospital or clinic record,
    /// which holds their problems and sensitive diagnoses.
    pub fn is_care_home(&self) -> bool {
        self.person
            .records
            .iter()
            .find(|r| matches!(super::kind_of(r.source), SourceKind::Hospital | SourceKind::Clinic))
            .is_some_and(|r| r.source == self.source)
    }

    pub fn patient(&self) -> Value {
        reference("Patient", &self.record.id)
    }

    pub fn clinician(&mut self) -> Value {
        let id = pick(self.rng, &self.directory.practitioners);
        reference("Practitioner", id)
    }

    pub fn organization(&self) -> Value {
        reference("Organization", &self.directory.organization)
    }

    pub fn location(&mut self) -> Value {
        let id = pick(self.rng, &self.directory.locations);
        reference("Location", id)
    }

    /// Days before the anchor, spread over the last `span` days.
    pub fn days_ago(&mut self, span: i64) -> i64 {
        self.rng.gen_range(1..=span.max(1))
    }

    /// A time of day during clinic hours on the day `days_ago` before the anchor.
    pub fn clinic_time(&mut self, days_ago: i64) -> String {
        let minutes = self.rng.gen_range(7 * 60..17 * 60);
        at(days_ago, minutes)
    }
}

/// One item of `list`, drawn as `SliceRandom::choose` draws it (the same draws, so a seed
/// still gives the same population).
// Cannot fail: every list passed is non-empty — the fixed tables of `codes`, and each source's
// directory, built below with at least two sites and six clinicians.
#[allow(clippy::expect_used)]
pub fn pick<'a, T, R: Rng + ?Sized>(rng: &mut R, list: &'a [T]) -> &'a T {
    list.choose(rng).expect("a non-empty list")
}

/// The anchor day.
// Cannot fail: `ANCHOR` is a date literal (every generator test uses it).
#[allow(clippy::expect_used)]
pub fn anchor() -> NaiveDate {
    static ANCHOR_DAY: std::sync::OnceLock<NaiveDate> = std::sync::OnceLock::new();
    *ANCHOR_DAY.get_or_init(|| NaiveDate::parse_from_str(super::ANCHOR, "%Y-%m-%d").expect("anchor is a date"))
}

/// `YYYY-MM-DD`, `days_ago` days before the anchor.
pub fn day(days_ago: i64) -> String {
    (anchor() - Duration::days(days_ago)).format("%Y-%m-%d").to_string()
}

/// A dateTime `days_ago` days before the anchor, `minutes` after midnight, Harborview winter time.
pub fn at(days_ago: i64, minutes: u32) -> String {
    format!("{}T{:02}:{:02}:00-08:00", day(days_ago), minutes / 60 % 24, minutes % 60)
}

/// The same instant `minutes` later (within the day).
pub fn later(datetime: &str, minutes: u32) -> String {
    let (date, rest) = datetime.split_at(11);
    let h: u32 = rest[0..2].parse().unwrap_or(8);
    let m: u32 = rest[3..5].parse().unwrap_or(0);
    let total = (h * 60 + m + minutes).min(23 * 60 + 59);
    format!("{date}{:02}:{:02}:00-08:00", total / 60, total % 60)
}

pub fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({"system": system, "code": code, "display": display})
}

pub fn cc(system: &str, code: &str, display: &str) -> Value {
    json!({"coding": [coding(system, code, display)], "text": display})
}

pub fn reference(resource_type: &str, id: &str) -> Value {
    json!({"reference": format!("{resource_type}/{id}")})
}

pub fn quantity(value: f64, unit: &str, decimals: usize) -> Value {
    let rounded: f64 = format!("{value:.decimals$}").parse().unwrap_or(value);
    json!({"value": rounded, "unit": unit, "system": codes::UCUM, "code": unit})
}

pub fn category(system: &str, code: &str, display: &str) -> Value {
    json!([cc(system, code, display)])
}

pub fn observation_category(code: &str) -> Value {
    let display = match code {
        "vital-signs" => "Vital Signs",
        "laboratory" => "Laboratory",
        "survey" => "Survey",
        "social-history" => "Social History",
        _ => "Exam",
    };
    category("http://terminology.hl7.org/CodeSystem/observation-category", code, display)
}

/// A `meta.security` list of v3 labels (ActCode or Confidentiality).
pub fn security(codes: &[&str]) -> Value {
    Value::Array(
        codes
            .iter()
            .map(|c| {
                let system = if matches!(*c, "R" | "V" | "N" | "M" | "L") {
                    "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
                } else {
                    "http://terminology.hl7.org/CodeSystem/v3-ActCode"
                };
                json!({"system": system, "code": c})
            })
            .collect(),
    )
}

/// A note's text as an attachment.
pub fn attachment(text: &str, title: &str) -> Value {
    use base64::Engine;
    json!({"contentType": "text/plain", "data": base64::engine::general_purpose::STANDARD.encode(text), "title": title})
}

/// A Luhn-valid (fictional) NPI from nine digits.
fn npi(base9: u32) -> String {
    let digits = format!("80840{base9:09}");
    let mut sum = 0;
    for (i, b) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(b - b'0');
        if i % 2 == 0 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    format!("{base9:09}{}", (10 - sum % 10) % 10)
}

/// The base of source `source`'s code systems and identifier systems.
pub(super) fn base_url(source: usize) -> String {
    format!("https://{}.harbor-health.example/fhir", super::source_plans(source + 1)[source].name)
}

/// The system of source `source`'s own patient identifier.
pub(super) fn identifier_system(source: usize) -> String {
    let base = base_url(source);
    match super::kind_of(source) {
        SourceKind::Hospital | SourceKind::Clinic => format!("{base}/sid/mrn"),
        SourceKind::Lab | SourceKind::Imaging => format!("{base}/sid/patient-id"),
        SourceKind::Part2Program => format!("{base}/sid/client-id"),
    }
}

/// Who works where: the ids a source's resources point at.
pub(super) struct Directory {
    pub source_name: String,
    pub organization: String,
    pub practitioners: Vec<String>,
    pub locations: Vec<String>,
    /// System of the source's own patient identifier.
    pub identifier_system: String,
    /// Base of the source's other code systems and identifiers.
    pub base: String,
}

/// The directory of source `source`: its resources and ids.
pub(super) fn directory(
    source: usize,
    kind: SourceKind,
    ids: &mut IdBook,
    rng: &mut ChaCha8Rng,
) -> (Vec<Value>, Directory) {
    let plan = &super::source_plans(source + 1)[source];
    let base = base_url(source);
    let identifier_system = identifier_system(source);
    let (clinicians, sites) = match kind {
        SourceKind::Hospital => (40, 5),
        SourceKind::Lab => (6, 2),
        SourceKind::Imaging => (8, 3),
        SourceKind::Part2Program => (6, 2),
        SourceKind::Clinic => (10, 2),
    };
    let mut resources = Vec::new();
    let organization = ids.next(source, "Organization");
    resources.push(json!({
        "resourceType": "Organization", "id": organization,
        "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": npi(rng.gen_range(100_000_000..999_999_999))}],
        "active": true, "name": plan.display,
        "telecom": [{"system": "phone", "value": format!("360-555-{:04}", 100 + source)}],
        "address": [{"line": [format!("{} Waterfront Way", 1200 + source * 10)], "city": "Harborview", "state": "WA", "postalCode": "98390"}]
    }));
    let mut practitioners = Vec::new();
    for _ in 0..clinicians {
        let id = ids.next(source, "Practitioner");
        let female = rng.gen_bool(0.5);
        let given = pick(rng, if female { FEMALE_GIVEN } else { MALE_GIVEN });
        let family = pick(rng, FAMILIES);
        resources.push(json!({
            "resourceType": "Practitioner", "id": id,
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": npi(rng.gen_range(100_000_000..999_999_999))}],
            "active": true,
            "name": [{"family": family, "given": [given], "prefix": ["Dr."]}],
            "gender": if female { "female" } else { "male" }
        }));
        practitioners.push(id);
    }
    let mut locations = Vec::new();
    for n in 0..sites {
        let id = ids.next(source, "Location");
        resources.push(json!({
            "resourceType": "Location", "id": id, "status": "active",
            "name": format!("{} — site {}", plan.display, n + 1),
            "managingOrganization": reference("Organization", &organization)
        }));
        locations.push(id);
    }
    let directory =
        Directory { source_name: plan.name.clone(), organization, practitioners, locations, identifier_system, base };
    (resources, directory)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn dates_and_npis() {
        assert_eq!(day(1), "2025-12-31");
        assert_eq!(at(1, 8 * 60 + 5), "2025-12-31T08:05:00-08:00");
        assert_eq!(later("2025-12-31T08:05:00-08:00", 70), "2025-12-31T09:15:00-08:00");
        // The fixtures' Dr. Shah: 1234567893 is the textbook Luhn-valid NPI.
        assert_eq!(npi(123_456_789), "1234567893");
    }
}
