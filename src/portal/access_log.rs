//! "Who accessed this record" in plain words: turns access-log entries into rows saying
//! who (you, a named person with access, an app and who allowed it, a partner, hospital
//! staff), when, what kind of access, for what purpose and with what outcome. Names come
//! from lookups the caller makes (account display names, app names); it never reads the
//! log or decides who may see the record; for proxies it leaves out the patient's own
//! activity ([`for_proxy`]).

use crate::audit::AuditRecord;
use serde::Serialize;
use std::collections::HashMap;

/// One access, as the page shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AccessRow {
    pub when: String,
    pub who: String,
    pub what: String,
    pub purpose: Option<String>,
    pub outcome: String,
    /// False when the access was refused or failed.
    pub allowed: bool,
    pub from: Option<String>,
}

/// Names for the actors of the log.
#[derive(Debug, Default)]
pub struct Names {
    /// The signed-in account (shown as "You").
    pub me: String,
    /// Account id → display name.
    pub accounts: HashMap<String, String>,
    /// App (client) id → app name.
    pub apps: HashMap<String, String>,
}

/// The entries a proxy may see: not the patient's own activity, nor that of the apps the
/// patient allowed (a teenager's own visits to their record, or the name of an app they
/// use, can be as confidential as the record itself), nor the openings of share links
/// (the log does not say who made a link, and a teenager's sharing is theirs). Accesses by
/// staff, partners and proxies stay.
pub fn for_proxy(records: Vec<AuditRecord>) -> Vec<AuditRecord> {
    records
        .into_iter()
        .filter(|r| r.entry.role != "patient" && r.entry.role != "app for patient" && r.entry.role != "share link")
        .collect()
}

/// The account ids and app ids named by `records`' actors, to look their names up.
pub fn actors(records: &[AuditRecord]) -> (Vec<String>, Vec<String>) {
    let (mut accounts, mut apps) = (Vec::new(), Vec::new());
    for r in records {
        let (app, account) = split_actor(&r.entry.actor);
        if let Some(a) = account.filter(|a| !accounts.contains(a)) {
            accounts.push(a);
        }
        if let Some(c) = app.filter(|c| !apps.contains(c)) {
            apps.push(c);
        }
    }
    (accounts, apps)
}

/// `app:{client}:account:{id}` → (client, id); `account:{id}` → (None, id).
fn split_actor(actor: &str) -> (Option<String>, Option<String>) {
    if let Some(rest) = actor.strip_prefix("app:") {
        return match rest.split_once(":account:") {
            Some((client, account)) => (Some(client.to_string()), Some(account.to_string())),
            None => (Some(rest.to_string()), None),
        };
    }
    (None, actor.strip_prefix("account:").map(str::to_string))
}

/// The relationship codes and roles of the log in words.
fn role_words(role: &str) -> &str {
    match role {
        "patient" => "the patient",
        "MTH" => "mother",
        "FTH" => "father",
        "PRN" => "parent",
        "GUARD" => "guardian",
        "CAREGIVER" => "caregiver",
        "staff" => "Harbor Health staff",
        "partner" => "a partner organization",
        other => other,
    }
}

fn who(r: &AuditRecord, names: &Names) -> String {
    let role = r.entry.role.strip_prefix("app for ").unwrap_or(&r.entry.role);
    let person = |account: &str| -> String {
        if account == names.me {
            "you".into()
        } else {
            match names.accounts.get(account) {
                Some(name) => format!("{name} ({})", role_words(role)),
                None => format!("someone with access ({})", role_words(role)),
            }
        }
    };
    match split_actor(&r.entry.actor) {
        (Some(app), account) => {
            let app_name = names.apps.get(&app).cloned().unwrap_or(app);
            match account {
                Some(a) => format!("The app “{app_name}”, allowed by {}", person(&a)),
                None => format!("The app “{app_name}”"),
            }
        }
        (None, Some(a)) if a == names.me => "You".into(),
        (None, Some(a)) => capitalize(&person(&a)),
        (None, None) => match role {
            "staff" => "Harbor Health staff".into(),
            "share link" => format!("Someone with your share link “{}”", r.entry.purpose.as_deref().unwrap_or("")),
            "partner" => {
                // Partner actors name the organization: `partner:{name}…` or a client id.
                let name = r.entry.actor.split(':').skip_while(|p| *p != "partner").nth(1);
                match name {
                    Some(n) => format!("Partner organization “{n}” (health information exchange)"),
                    None => "A partner organization (health information exchange)".into(),
                }
            }
            other => capitalize(&format!("{} (demonstration access)", role_words(other))),
        },
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// FHIR resource types in words.
fn type_words(t: &str) -> &str {
    match t {
        "Observation" => "test results and measurements",
        "DiagnosticReport" => "test and imaging reports",
        "Condition" => "health problems",
        "MedicationRequest" | "MedicationStatement" => "medications",
        "AllergyIntolerance" => "allergies",
        "Immunization" => "immunizations",
        "Encounter" | "Appointment" => "visits",
        "DocumentReference" => "documents",
        "CareTeam" => "the care team",
        "CarePlan" => "care plans",
        "Goal" => "health goals",
        "Procedure" => "procedures",
        "Patient" => "name and contact details",
        "RelatedPerson" => "family members on file",
        "AuditEvent" => "the access log",
        "Provenance" => "where items came from",
        "Practitioner" | "Organization" | "Location" | "PractitionerRole" => "clinicians and places",
        other => other,
    }
}

pub fn what(r: &AuditRecord) -> String {
    let path = r.entry.what.split('?').next().unwrap_or("");
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match r.entry.action.as_str() {
        "page" => {
            let section = segments.get(2).copied().unwrap_or("");
            match section {
                "" => "Opened the record's home page".into(),
                "access-log" => "Looked at who accessed the record (this page)".into(),
                "apps" => "Looked at the apps allowed to read the record".into(),
                "share" => "Looked at the record's share links".into(),
                s => match super::record_view::SECTIONS.iter().find(|(slug, _)| *slug == s) {
                    Some((_, title)) => format!("Viewed the “{title}” page"),
                    None => "Viewed a page of the record".into(),
                },
            }
        }
        // An item the viewer is not shown is logged as `/fhir` for them: no type, no id.
        "read" if segments.len() < 2 => "Read one item of the record".into(),
        "read" => format!("Read one item: {}", type_words(segments.get(1).copied().unwrap_or(""))),
        "search" => format!("Looked up {}", type_words(segments.get(1).copied().unwrap_or(""))),
        "everything" => "Retrieved the whole record".into(),
        "download" => "Downloaded a copy of the record".into(),
        "export" => "Exported the record (bulk data)".into(),
        "explain" => "Reviewed the privacy decisions for the record".into(),
        "release" => "Released a result that was on hold".into(),
        "share" => "Made a share link of the record".into(),
        "share-view" => match recipient(&r.entry.what) {
            Some(who) => format!("Opened a share link of the record (as “{who}”)"),
            None => "Opened a share link of the record".into(),
        },
        other => capitalize(other),
    }
}

/// The recipient a share-link opening named (`/shl/{id}?recipient=…`).
fn recipient(what: &str) -> Option<String> {
    let query = what.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "recipient").map(|(_, v)| v.into_owned())
}

pub fn purpose_words(code: &str) -> String {
    match code {
        "TREAT" => "Treatment".into(),
        "ETREAT" => "Emergency treatment".into(),
        "BTG" => "Emergency access (break the glass)".into(),
        "HPAYMT" => "Payment".into(),
        "HOPERAT" => "Health care operations".into(),
        "HRESCH" => "Research".into(),
        "PUBHLTH" => "Public health".into(),
        other => other.into(),
    }
}

fn outcome_words(outcome: &str) -> (&'static str, bool) {
    match outcome {
        "success" => ("Allowed", true),
        "not-found" => ("Nothing shown", false),
        "denied" => ("Refused", false),
        _ => ("Did not complete", false),
    }
}

/// "Jan 5, 2026, 2:03 PM UTC".
fn when(recorded: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(recorded) {
        Ok(d) => d.with_timezone(&chrono::Utc).format("%b %-d, %Y, %-I:%M %p UTC").to_string(),
        Err(_) => recorded.to_string(),
    }
}

/// The rows of the page, newest first (as given).
pub fn rows(records: &[AuditRecord], names: &Names) -> Vec<AccessRow> {
    records
        .iter()
        .map(|r| {
            let (outcome, allowed) = outcome_words(&r.entry.outcome);
            AccessRow {
                when: when(&r.recorded),
                who: who(r, names),
                what: what(r),
                purpose: r.entry.purpose.as_deref().map(purpose_words),
                outcome: outcome.into(),
                allowed,
                from: r.entry.source_ip.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditEntry;

    fn record(actor: &str, role: &str, action: &str, what: &str, purpose: Option<&str>, outcome: &str) -> AuditRecord {
        AuditRecord {
            seq: 1,
            recorded: "2026-01-05T14:03:00.000Z".into(),
            entry: AuditEntry {
                actor: actor.into(),
                role: role.into(),
                patient_id: Some("pt-1".into()),
                action: action.into(),
                what: what.into(),
                purpose: purpose.map(str::to_string),
                outcome: outcome.into(),
                source_ip: Some("127.0.0.1".into()),
            },
        }
    }

    #[test]
    fn each_kind_of_access_in_plain_words() {
        let records = vec![
            record("account:me", "patient", "page", "/records/l1/results", None, "success"),
            record("account:mom", "MTH", "page", "/records/l2", None, "success"),
            record("app:growth:account:me", "app for patient", "search", "/fhir/Observation", None, "success"),
            record("app:growth:account:mom", "app for MTH", "read", "/fhir/Immunization/x", None, "not-found"),
            record("dev-token:staff", "staff", "everything", "/fhir/Patient/pt-1/$everything", None, "success"),
            record(
                "dev-token:5:partner:hie-north:TREAT",
                "partner",
                "read",
                "/fhir/Patient/pt-1",
                Some("TREAT"),
                "success",
            ),
            record("partner-client-9", "partner", "export", "/fhir/Group/g/$export", Some("HRESCH"), "denied"),
        ];
        assert_eq!(actors(&records), (vec!["me".to_string(), "mom".to_string()], vec!["growth".to_string()]));
        let names = Names {
            me: "me".into(),
            accounts: [("mom".to_string(), "Ana Rodriguez".to_string())].into(),
            apps: [("growth".to_string(), "Growth Chart".to_string())].into(),
        };
        let rows = rows(&records, &names);
        let who: Vec<&str> = rows.iter().map(|r| r.who.as_str()).collect();
        assert_eq!(
            who,
            vec![
                "You",
                "Ana Rodriguez (mother)",
                "The app “Growth Chart”, allowed by you",
                "The app “Growth Chart”, allowed by Ana Rodriguez (mother)",
                "Harbor Health staff",
                "Partner organization “hie-north” (health information exchange)",
                "A partner organization (health information exchange)",
            ]
        );
        let what: Vec<&str> = rows.iter().map(|r| r.what.as_str()).collect();
        assert_eq!(what[0], "Viewed the “Test results” page");
        assert_eq!(what[1], "Opened the record's home page");
        assert_eq!(what[2], "Looked up test results and measurements");
        assert_eq!(what[3], "Read one item: immunizations");
        assert_eq!(what[4], "Retrieved the whole record");
        assert_eq!(rows[5].purpose.as_deref(), Some("Treatment"));
        assert_eq!((rows[3].outcome.as_str(), rows[3].allowed), ("Nothing shown", false));
        assert_eq!((rows[6].outcome.as_str(), rows[6].allowed), ("Refused", false));
        assert_eq!(rows[0].when, "Jan 5, 2026, 2:03 PM UTC");
    }

    #[test]
    fn share_link_openings_in_plain_words_and_not_for_proxies() {
        let records = vec![
            record(
                "share-link/abc",
                "share link",
                "share-view",
                "/shl/abc?recipient=Lincoln%20High",
                Some("For school"),
                "success",
            ),
            record("account:me", "patient", "share", "/records/l1/share", None, "success"),
        ];
        let rows = rows(&records, &Names { me: "me".into(), ..Default::default() });
        assert_eq!(rows[0].who, "Someone with your share link “For school”");
        assert_eq!(rows[0].what, "Opened a share link of the record (as “Lincoln High”)");
        assert_eq!(rows[0].purpose.as_deref(), Some("For school"));
        assert_eq!(rows[1].what, "Made a share link of the record");
        assert!(for_proxy(records).is_empty());
    }
}
