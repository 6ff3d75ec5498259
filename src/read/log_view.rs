//! The access log as someone other than staff may see it: no more than the record. An entry
//! that names a resource the viewer is not released (a staff read of a held result or an
//! internal note, by type and id, which also names its source) is shown as a read of "an
//! item of the record", and the network address of anyone but the viewer (and the viewer's
//! own apps) is left out. Staff see the log as written. It never changes the stored log.

use crate::audit::AuditRecord;
use crate::auth::Access;
use std::collections::HashSet;

/// What an entry's path becomes when it names a resource the viewer may not see.
pub(super) const UNNAMED_ITEM: &str = "/fhir";

/// `entries` as `access` may see them, where `shown` holds the `Type/id` of every resource
/// the viewer is released of the record.
pub(super) fn as_seen_by(access: &Access, shown: &HashSet<String>, entries: Vec<AuditRecord>) -> Vec<AuditRecord> {
    if access.is_staff() {
        return entries;
    }
    let me = &access.viewer.actor;
    entries
        .into_iter()
        .map(|mut r| {
            if named_resource(&r.entry.what).is_some_and(|key| !shown.contains(&key)) {
                r.entry.what = UNNAMED_ITEM.to_string();
            }
            if !is_own(me, &r.entry.actor) {
                r.entry.source_ip = None;
            }
            r
        })
        .collect()
}

/// The `Type/id` a logged path names (`/fhir/{Type}/{id}`, with or without a query).
fn named_resource(what: &str) -> Option<String> {
    let path = what.split('?').next().unwrap_or("");
    let rest = path.strip_prefix("/fhir/")?;
    match rest.split('/').collect::<Vec<_>>().as_slice() {
        [t, id] if t.starts_with(|c: char| c.is_ascii_uppercase()) && !id.starts_with('$') => Some(format!("{t}/{id}")),
        _ => None,
    }
}

/// Whether `actor` is the viewer or an app acting for the viewer (`app:{client}:{viewer}`).
fn is_own(me: &str, actor: &str) -> bool {
    actor == me || actor.strip_prefix("app:").and_then(|rest| rest.split_once(':')).is_some_and(|(_, who)| who == me)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditEntry;

    fn entry(actor: &str, what: &str) -> AuditRecord {
        AuditRecord {
            seq: 1,
            recorded: "2026-01-01T00:00:00Z".into(),
            entry: AuditEntry {
                actor: actor.into(),
                role: "staff".into(),
                patient_id: Some("pt-1".into()),
                action: "read".into(),
                what: what.into(),
                purpose: None,
                outcome: "success".into(),
                source_ip: Some("10.1.2.3".into()),
            },
        }
    }

    #[test]
    fn paths_name_resources_only_by_type_and_id() {
        assert_eq!(named_resource("/fhir/Observation/ehr.obs-1"), Some("Observation/ehr.obs-1".into()));
        assert_eq!(named_resource("/fhir/Observation/ehr.obs-1?_format=json"), Some("Observation/ehr.obs-1".into()));
        assert_eq!(named_resource("/fhir/Observation"), None);
        assert_eq!(named_resource("/fhir/Patient/pt-1/$everything"), None);
        assert_eq!(named_resource("/fhir/$export-status/abc"), None);
        assert_eq!(named_resource("/records/link-1/results"), None);
    }

    #[test]
    fn apps_of_the_viewer_are_the_viewer() {
        assert!(is_own("account:a", "account:a"));
        assert!(is_own("account:a", "app:growth:account:a"));
        assert!(!is_own("account:a", "app:growth:account:b"));
        assert!(!is_own("account:a", "account:ab"));
        assert!(!is_own("account:a", "dev-token:staff"));
    }

    #[test]
    fn a_withheld_item_and_other_peoples_addresses_are_not_shown() {
        let shown: HashSet<String> = ["Patient/pt-1".to_string(), "Observation/ehr.obs-1".to_string()].into();
        let entries = vec![
            entry("dev-token:staff", "/fhir/DocumentReference/ehr.doc-9"),
            entry("dev-token:staff", "/fhir/Observation/ehr.obs-1"),
            entry("account:me", "/fhir/Patient/pt-1"),
            entry("app:growth:account:me", "/fhir/Observation"),
        ];
        use crate::policy::{Role, Viewer};
        let access = Access {
            viewer: Viewer::new("account:me", Role::Patient),
            patients: crate::auth::PatientScope::Any,
            groups: None,
            basis: Default::default(),
        };
        let seen = as_seen_by(&access, &shown, entries.clone());
        let text = serde_json::to_string(&seen).unwrap();
        assert!(!text.contains("DocumentReference") && !text.contains("ehr.doc-9"), "{text}");
        assert_eq!(seen[0].entry.what, UNNAMED_ITEM);
        assert_eq!(seen[1].entry.what, "/fhir/Observation/ehr.obs-1", "a shown item keeps its name");
        assert_eq!(seen.iter().map(|r| r.entry.source_ip.is_some()).collect::<Vec<_>>(), [false, false, true, true]);
        let staff = Access { viewer: Viewer::new("dev-token:staff", Role::Staff), ..access };
        assert_eq!(as_seen_by(&staff, &shown, entries.clone()), entries, "staff see the log as written");
    }
}
