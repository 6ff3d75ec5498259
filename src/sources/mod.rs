//! Source systems: one adapter per kind (FHIR R4 REST, a folder of files), all behind the
//! [`SourceSystem`] trait, with their upstream auth, retries, concurrency limits and
//! circuit breakers. Sources return resources exactly as the system sent them; they know
//! nothing of gateway ids, viewers or policy.

pub mod attachments;
pub mod breaker;
pub mod bulk;
pub mod files;
pub mod rest;
mod retry;
pub mod stats;
pub mod upstream_auth;

use async_trait::async_trait;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::time::Instant;

/// Why a source could not answer. Messages name the source and the failure, never patient
/// data.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    #[error("{source_name}: did not answer before the deadline")]
    DeadlineExceeded { source_name: String },
    #[error("{source_name}: not called, circuit open after repeated failures")]
    CircuitOpen { source_name: String },
    #[error("{source_name}: {message}")]
    Unavailable { source_name: String, message: String },
    /// The source answered 401 or 403 to the gateway.
    #[error("{source_name}: upstream authentication failed: HTTP {status}")]
    Auth { source_name: String, status: u16 },
    /// The gateway's credentials for the source could not be read or a token not fetched.
    #[error("{source_name}: upstream authentication failed: {problem}")]
    Credentials { source_name: String, problem: std::sync::Arc<upstream_auth::CredentialError> },
    #[error("{source_name}: unexpected response: {message}")]
    BadResponse { source_name: String, message: String },
    #[error("{source_name}: cannot load files: {problem}")]
    Files { source_name: String, problem: std::sync::Arc<files::LoadError> },
}

/// Health of a source as the gateway sees it.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct SourceStatus {
    pub name: String,
    pub display: String,
    /// `up`, `degraded` (recent failures) or `down` (circuit open).
    pub state: &'static str,
    pub consecutive_failures: u32,
}

/// What a source says it offers, from its CapabilityStatement: per resource type it can
/// search, the search parameters it declares (empty when it lists none); whether it answers
/// `Patient/{id}/$everything`; per type, the `_revinclude` values it declares
/// (`searchRevInclude`, e.g. `Provenance:target`); whether it answers Bulk Data `$export`
/// at system level and at `Group/{id}/` level.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Offer {
    pub types: BTreeMap<String, BTreeSet<String>>,
    pub everything: bool,
    pub revinclude: BTreeMap<String, BTreeSet<String>>,
    pub bulk: bool,
    pub group_bulk: bool,
}

/// Which Bulk Data kick-off a CapabilityStatement `operation` entry is: `export` (system),
/// `patient-export` or `group-export`, by its canonical definition (any version), or by the
/// name `export` (system level, or on the Group resource).
fn bulk_operation(operation: &Value, on: Option<&str>) -> Option<&'static str> {
    let definition = operation.get("definition").and_then(Value::as_str).unwrap_or("");
    let canonical = definition.split('|').next().unwrap_or("");
    let named_export =
        operation.get("name").and_then(Value::as_str).map(|n| n.trim_start_matches('$')) == Some("export");
    match canonical.rsplit('/').next() {
        Some("export") if canonical.contains("bulkdata") => Some("export"),
        Some("patient-export") if canonical.contains("bulkdata") => Some("patient-export"),
        Some("group-export") if canonical.contains("bulkdata") => Some("group-export"),
        _ if named_export && on.is_none() => Some("export"),
        _ if named_export && on == Some("Group") => Some("group-export"),
        _ => None,
    }
}

/// The `_revinclude` that brings a resource's Provenances along with it.
pub const PROVENANCE_REVINCLUDE: &str = "Provenance:target";

/// Whether a CapabilityStatement `operation` entry is Patient `$everything` (by its
/// canonical definition, or by name where the entry sits on the Patient resource).
fn is_patient_everything(operation: &Value, on_patient: bool) -> bool {
    let definition = operation.get("definition").and_then(Value::as_str).unwrap_or("");
    let canonical = definition.split('|').next().unwrap_or("");
    canonical.ends_with("/OperationDefinition/Patient-everything")
        || (on_patient
            && operation.get("name").and_then(Value::as_str).map(|n| n.trim_start_matches('$')) == Some("everything"))
}

impl Offer {
    /// The searchable types of a CapabilityStatement's server `rest` entries.
    pub fn from_capability_statement(statement: &Value) -> Option<Offer> {
        if crate::fhir::resource_type(statement) != Some("CapabilityStatement") {
            return None;
        }
        let mut offer = Offer::default();
        let rests = statement.get("rest").and_then(Value::as_array).into_iter().flatten();
        for rest in rests.filter(|r| r.get("mode").and_then(Value::as_str) != Some("client")) {
            let operations = |v: &Value| v.get("operation").and_then(Value::as_array).cloned().unwrap_or_default();
            if operations(rest).iter().any(|o| is_patient_everything(o, false)) {
                offer.everything = true;
            }
            for o in operations(rest) {
                match bulk_operation(&o, None) {
                    Some("export") => offer.bulk = true,
                    Some("group-export") => offer.group_bulk = true,
                    _ => {}
                }
            }
            for resource in rest.get("resource").and_then(Value::as_array).into_iter().flatten() {
                let Some(t) = resource.get("type").and_then(Value::as_str) else { continue };
                if operations(resource).iter().any(|o| is_patient_everything(o, t == "Patient")) {
                    offer.everything = true;
                }
                if operations(resource).iter().any(|o| bulk_operation(o, Some(t)) == Some("group-export")) {
                    offer.group_bulk = true;
                }
                let revincludes = resource
                    .get("searchRevInclude")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect::<BTreeSet<_>>();
                if !revincludes.is_empty() {
                    offer.revinclude.entry(t.to_string()).or_default().extend(revincludes);
                }
                let searches = resource
                    .get("interaction")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|i| i.get("code").and_then(Value::as_str) == Some("search-type"));
                if !searches {
                    continue;
                }
                let params = resource
                    .get("searchParam")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.get("name").and_then(Value::as_str).map(str::to_string));
                offer.types.entry(t.to_string()).or_default().extend(params);
            }
        }
        Some(offer)
    }

    /// The parameter to search `resource_type` for one patient's resources with, if the
    /// source offers the type with a usable one: `patient`, else the type's compartment
    /// search parameter (`subject`, `actor` …); a type declared without any parameter list
    /// is asked with the compartment's.
    pub fn patient_param(&self, resource_type: &str) -> Option<&'static str> {
        let t = crate::fhir::compartment::get(resource_type)?;
        let declared = self.types.get(resource_type)?;
        if declared.is_empty() {
            return Some(t.search);
        }
        ["patient", t.search].into_iter().find(|p| declared.contains(*p))
    }

    pub fn offers(&self, resource_type: &str) -> bool {
        self.types.contains_key(resource_type)
    }

    /// Whether a search of `resource_type` can bring the Provenances that target its
    /// matches along (`_revinclude=Provenance:target`).
    pub fn revincludes_provenance(&self, resource_type: &str) -> bool {
        self.revinclude.get(resource_type).is_some_and(|r| r.contains(PROVENANCE_REVINCLUDE))
    }
}

/// One page of a source's Patients for the patient index, and where the next one is
/// (an opaque cursor for [`SourceSystem::patients_changed_page`]).
#[derive(Debug, Default)]
pub struct PatientPage {
    pub patients: Vec<Value>,
    pub next: Option<String>,
}

/// One upstream system the gateway reads from.
#[async_trait]
pub trait SourceSystem: Send + Sync {
    /// The short name from config.
    fn name(&self) -> &str;
    /// The human-readable name of the system.
    fn display(&self) -> &str;
    /// Every Patient the source holds, for the patient index.
    async fn list_patients(&self, deadline: Instant) -> Result<Vec<Value>, SourceError>;
    /// The Patients changed after the instant `since` (`Patient?_lastUpdated=gt…`), or
    /// every Patient without one. A source that cannot tell what changed lists them all.
    async fn patients_changed_since(&self, _since: Option<&str>, deadline: Instant) -> Result<Vec<Value>, SourceError> {
        self.list_patients(deadline).await
    }
    /// One page of [`Self::patients_changed_since`]: the first page when `page` is `None`,
    /// else the page a previous answer's `next` named. The patient index reads listings
    /// this way, a page at a time, so a source's population is never held at once. A
    /// source without pages answers everything as one page.
    async fn patients_changed_page(
        &self,
        since: Option<&str>,
        page: Option<&str>,
        deadline: Instant,
    ) -> Result<PatientPage, SourceError> {
        if page.is_some() {
            return Ok(PatientPage::default());
        }
        Ok(PatientPage { patients: self.patients_changed_since(since, deadline).await?, next: None })
    }
    /// The Patients matching search parameters (`identifier`, `birthdate` with `family`):
    /// how the patient index looks people up in a source that lists none.
    async fn search_patients(&self, _params: &[(&str, String)], _deadline: Instant) -> Result<Vec<Value>, SourceError> {
        Err(SourceError::BadResponse {
            source_name: self.name().to_string(),
            message: "does not search patients".into(),
        })
    }
    /// The resources of `resource_type` belonging to the source's patient `patient_id`,
    /// plus — where the source offers `_revinclude=Provenance:target` on the type — the
    /// Provenances that target them.
    async fn patient_resources(
        &self,
        patient_id: &str,
        resource_type: &str,
        deadline: Instant,
    ) -> Result<Vec<Value>, SourceError>;
    /// The person's whole record in one operation, `Patient/{id}/$everything` with every
    /// page: the Patient, its compartment and what those reference, exactly as sent. Only
    /// called when the source's [`Offer`] says it answers it; a source that does not
    /// refuses.
    async fn everything(&self, _patient_id: &str, _deadline: Instant) -> Result<Vec<Value>, SourceError> {
        Err(SourceError::BadResponse {
            source_name: self.name().to_string(),
            message: "does not offer Patient/$everything".into(),
        })
    }
    /// The source's Patient resources `ids`, plus — where the source offers
    /// `_revinclude=Provenance:target` on Patient — the Provenances that target them.
    async fn patients(&self, ids: &[String], deadline: Instant) -> Result<Vec<Value>, SourceError> {
        self.read_many("Patient", ids, deadline).await
    }
    /// Resources of one type by id (referenced Practitioners, Organizations …). Ids the
    /// source does not have are simply absent from the answer.
    async fn read_many(
        &self,
        resource_type: &str,
        ids: &[String],
        deadline: Instant,
    ) -> Result<Vec<Value>, SourceError>;
    /// What the source offers (its CapabilityStatement), read now; `None` for a kind of
    /// source that does not describe itself (the configured types are gathered).
    async fn offer(&self, _deadline: Instant) -> Result<Option<Offer>, SourceError> {
        Ok(None)
    }
    /// How many resources of `resource_type` the source holds in all, when it can say
    /// (staff see what is held but not served).
    async fn count(&self, _resource_type: &str, _deadline: Instant) -> Result<Option<usize>, SourceError> {
        Ok(None)
    }
    /// The source's FHIR base URL, its identity: an absolute reference in its data is its
    /// own only under this base (`crate::fhir::reference::parse_local`). `None` for a kind
    /// of source without one (a folder of files: only relative references are its own).
    fn base_url(&self) -> Option<&str> {
        None
    }
    /// The source's own key for the content an attachment URL names, when the URL is one
    /// this source serves (`Binary/{id}` relative to its base, or, for a REST source, a URL
    /// on its own origin): stable and a valid FHIR id. `None` for anything else.
    fn attachment_key(&self, _url: &str) -> Option<String> {
        None
    }
    /// The content an attachment URL names (one [`SourceSystem::attachment_key`] accepts),
    /// streamed; `content_type` is what the attachment says it is. `None` when the source
    /// does not have it.
    async fn attachment(
        &self,
        _url: &str,
        _content_type: Option<&str>,
        _deadline: Instant,
    ) -> Result<Option<attachments::AttachmentBody>, SourceError> {
        Ok(None)
    }
    /// Kicks off the source's own Bulk Data export (`$export`, or `Group/{id}/$export`,
    /// with `Prefer: respond-async`); the status URL to poll. Only called when the
    /// source's [`Offer`] says it answers it; a source that does not refuses.
    async fn bulk_kick_off(&self, _ask: &bulk::BulkAsk, _deadline: Instant) -> Result<String, SourceError> {
        Err(bulk::not_offered(self.name()))
    }
    /// Polls a source export's status URL (one the kick-off gave).
    async fn bulk_poll(&self, _status_url: &str, _deadline: Instant) -> Result<bulk::BulkPoll, SourceError> {
        Err(bulk::not_offered(self.name()))
    }
    /// Opens one output file of a finished source export, read a resource at a time;
    /// `with_token` when its manifest says the file needs the access token.
    async fn bulk_file(
        &self,
        _url: &str,
        _with_token: bool,
        _deadline: Instant,
    ) -> Result<Box<dyn bulk::NdjsonLines>, SourceError> {
        Err(bulk::not_offered(self.name()))
    }
    /// Tells the source its export is no longer wanted (DELETE on the status URL), so it
    /// can drop the files; best effort.
    async fn bulk_cancel(&self, _status_url: &str, _deadline: Instant) -> Result<(), SourceError> {
        Ok(())
    }
    /// Current health.
    fn status(&self) -> SourceStatus;
    /// Upstream call statistics, for sources that call out (none for files).
    fn stats(&self) -> Option<&stats::SourceStats> {
        None
    }
}

pub type SharedSource = Arc<dyn SourceSystem>;

#[cfg(test)]
mod offer_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_everything_and_revincludes_from_a_capability_statement() {
        let statement = |patient: Value, rest_ops: Value| {
            json!({"resourceType": "CapabilityStatement", "rest": [{"mode": "server", "operation": rest_ops, "resource": [
                patient,
                {"type": "Observation", "interaction": [{"code": "search-type"}], "searchParam": [{"name": "patient"}],
                 "searchRevInclude": ["Provenance:target", "AuditEvent:entity"]},
                {"type": "Condition", "interaction": [{"code": "search-type"}]}
            ]}]})
        };
        let patient = json!({"type": "Patient", "interaction": [{"code": "search-type"}],
            "operation": [{"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}]});
        let offer = Offer::from_capability_statement(&statement(patient, json!([]))).unwrap();
        assert!(offer.everything);
        assert!(offer.revincludes_provenance("Observation"));
        assert!(!offer.revincludes_provenance("Condition"), "declares none");
        assert!(!offer.revincludes_provenance("Patient"));

        // By name only on the Patient resource; by canonical (with a version) at system level.
        let named = json!({"type": "Patient", "operation": [{"name": "$everything", "definition": "http://x/OD/pe"}]});
        assert!(Offer::from_capability_statement(&statement(named, json!([]))).unwrap().everything);
        let plain = json!({"type": "Patient", "interaction": [{"code": "search-type"}]});
        assert!(!Offer::from_capability_statement(&statement(plain.clone(), json!([]))).unwrap().everything);
        let system = json!([{"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything|4.0.1"}]);
        assert!(Offer::from_capability_statement(&statement(plain.clone(), system)).unwrap().everything);
        let other = json!([{"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Encounter-everything"}]);
        assert!(
            !Offer::from_capability_statement(&statement(plain.clone(), other)).unwrap().everything,
            "not Patient's"
        );
        assert!(!offer.bulk && !offer.group_bulk, "no Bulk Data declared");

        // Bulk Data: `export` at system level, `group-export` on Group, by canonical or name.
        let system = json!([{"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export|2.0.0"}]);
        let bulk = Offer::from_capability_statement(&statement(plain.clone(), system)).unwrap();
        assert!(bulk.bulk && !bulk.group_bulk);
        let group = json!({"type": "Group", "operation": [{"name": "export", "definition": "http://x/OperationDefinition/mine"}]});
        let mut st = statement(plain.clone(), json!([{"name": "$export"}]));
        st["rest"][0]["resource"].as_array_mut().unwrap().push(group);
        let by_name = Offer::from_capability_statement(&st).unwrap();
        assert!(by_name.bulk && by_name.group_bulk);
        let other = json!([{"name": "export-poll-status", "definition": "http://x/OperationDefinition/status"}]);
        assert!(!Offer::from_capability_statement(&statement(plain, other)).unwrap().bulk);
    }
}
