//! The accounting of disclosures (45 CFR 164.528) in the forms it is handed out: rows in
//! plain words (date, recipient, what, purpose) for the page and the printable copy, and a
//! FHIR Bundle of AuditEvents. It is given the access log's disclosure entries as the
//! reader let the viewer see them; it names recipients by the app or partner registry
//! (names an organization chose, never a person's name or any patient data) and never
//! reads the log itself.

use crate::audit::AuditRecord;
use crate::fhir::bundle::{searchset, Searchset};
use crate::fhir::model::codes::SearchEntryMode;
use crate::i18n::{t, tr};
use crate::portal::{access_log, fhir_text};
use serde::Serialize;
use std::collections::HashMap;

/// How far back an accounting goes (164.528(a)): six years.
pub const YEARS: i64 = 6;

/// The first instant an accounting made at `now` covers, in the log's stored form.
pub fn since(now: chrono::DateTime<chrono::Utc>) -> String {
    let start = now.date_naive().checked_sub_months(chrono::Months::new(12 * YEARS as u32)).unwrap_or(now.date_naive());
    super::corrections::stamp(start.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
}

/// One disclosure in plain words.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DisclosureRow {
    /// The access log entry.
    pub seq: i64,
    pub when: String,
    pub recipient: String,
    pub what: String,
    pub purpose: String,
}

/// The registered names of the apps and partners in the entries, by client id.
pub type ClientNames = HashMap<String, String>;

/// The client ids named by the entries' actors (`client:{id}`, `app:{id}:…`), to look up.
pub fn clients(records: &[AuditRecord]) -> Vec<String> {
    let mut ids: Vec<String> = records.iter().filter_map(|r| client_of(&r.entry.actor)).collect();
    ids.sort();
    ids.dedup();
    ids
}

fn client_of(actor: &str) -> Option<String> {
    if let Some(id) = actor.strip_prefix("client:") {
        return Some(id.to_string());
    }
    let rest = actor.strip_prefix("app:")?;
    Some(rest.split_once(':').map_or(rest, |(id, _)| id).to_string())
}

/// Who received the data, in words: a registered name, never an account's name.
pub fn recipient(r: &AuditRecord, names: &ClientNames, me: &str) -> String {
    let e = &r.entry;
    let registered = client_of(&e.actor).and_then(|id| names.get(&id).cloned());
    match e.role.as_str() {
        "partner" => match registered {
            Some(name) => tr("disclosure-to-partner", &[("name", name.into())]),
            // A configured (demonstration) partner token: `…partner:{name}:{purpose}`.
            None => match e.actor.split(':').skip_while(|p| *p != "partner").nth(1) {
                Some(name) => tr("disclosure-to-partner-named", &[("name", name.into())]),
                None => t("disclosure-to-a-partner"),
            },
        },
        "share link" => t("disclosure-to-share-link"),
        role => {
            let key = match role.strip_prefix("app for ") {
                Some("patient") if e.actor.ends_with(&format!(":{me}")) => "disclosure-allowed-by-you",
                Some("patient") => "disclosure-allowed-by-the-patient",
                Some(_) => "disclosure-allowed-by-a-proxy",
                None => "disclosure-allowed-by-someone",
            };
            let app =
                registered.map_or_else(|| t("disclosure-an-app"), |n| tr("disclosure-the-app", &[("name", n.into())]));
            tr(key, &[("app", app.into())])
        }
    }
}

/// One disclosure in plain words, each from the catalogue in the language being served
/// (English outside a request: the CLI's text and JSON).
pub fn rows(records: &[AuditRecord], names: &ClientNames, me: &str) -> Vec<DisclosureRow> {
    records
        .iter()
        .map(|r| DisclosureRow {
            seq: r.seq,
            when: fhir_text::date_time(&r.recorded),
            recipient: recipient(r, names, me),
            what: access_log::what(r),
            purpose: match (r.entry.role.as_str(), &r.entry.purpose) {
                ("share link", Some(label)) => tr("disclosure-purpose-shared", &[("label", label.as_str().into())]),
                (_, Some(code)) => access_log::purpose_words(code),
                (role, None) if role.starts_with("app for ") => t("disclosure-purpose-app"),
                _ => "—".into(),
            },
        })
        .collect()
}

/// The accounting as a searchset Bundle of AuditEvents (as `audit` renders each entry).
pub fn bundle(
    records: &[AuditRecord],
    base_url: &str,
    self_url: &str,
) -> Result<serde_json::Value, crate::audit::AuditEventError> {
    let entries = records
        .iter()
        .map(|r| {
            let event = crate::audit::as_audit_event(r)?;
            Ok((format!("{base_url}/AuditEvent/audit-{}", r.seq), event, SearchEntryMode::Match))
        })
        .collect::<Result<Vec<_>, crate::audit::AuditEventError>>()?;
    let shell =
        Searchset { self_url, total: Some(entries.len()), timestamp: Some(chrono::Utc::now()), ..Default::default() };
    Ok(searchset(&shell, entries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditEntry;

    fn record(actor: &str, role: &str, purpose: Option<&str>) -> AuditRecord {
        AuditRecord {
            seq: 3,
            recorded: "2026-03-01T10:20:30.000Z".into(),
            entry: AuditEntry {
                actor: actor.into(),
                role: role.into(),
                patient_id: Some("pt".into()),
                action: "read".into(),
                what: "/fhir/Observation/ehr.o1".into(),
                purpose: purpose.map(str::to_string),
                outcome: "success".into(),
                source_ip: None,
            },
        }
    }

    #[test]
    fn recipients_are_named_by_the_registry_and_never_by_a_person() {
        let names: ClientNames =
            [("hie".to_string(), "North HIE".to_string()), ("growth".to_string(), "Growth".to_string())].into();
        let partner = record("client:hie", "partner", Some("TREAT"));
        assert_eq!(recipient(&partner, &names, "account:me"), "North HIE (partner organization)");
        let app = record("app:growth:account:me", "app for patient", None);
        assert_eq!(recipient(&app, &names, "account:me"), "The app “Growth”, allowed by you");
        let mothers = record("app:growth:account:mom", "app for MTH", None);
        assert_eq!(
            recipient(&mothers, &names, "account:me"),
            "The app “Growth”, allowed by a person with access to the record"
        );
        let dev = record("dev-token:2:partner:hie-north:TREAT", "partner", Some("TREAT"));
        assert_eq!(recipient(&dev, &names, "account:me"), "Partner organization “hie-north”");
        let shared = record("share-link/abc", "share link", Some("For school"));
        let row = &rows(&[shared], &names, "account:me")[0];
        assert_eq!(
            (row.recipient.as_str(), row.purpose.as_str()),
            ("Someone who opened a share link", "Shared by the patient: “For school”")
        );
        assert_eq!(clients(&[partner, app, mothers, dev]), ["growth", "hie"]);
    }

    #[test]
    fn six_years_back_from_the_day() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z").unwrap().with_timezone(&chrono::Utc);
        assert_eq!(since(now), "2020-03-01T00:00:00.000Z");
    }
}
