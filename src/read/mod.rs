//! The read path, and the one door patient data leaves by: read, search, `$everything`,
//! whole records (pages, downloads, exports), the access log and the record picker's
//! names. Given who is asking ([`Access`]), what for and from where ([`Trail`]), the reader
//! resolves whose record it is, gathers it, has the policy decide what this viewer may see,
//! writes the access-log entry, and only then hands out what was released — as
//! [`Matches`] or [`WholeRecord`], which nothing else can make. Handlers never reach the
//! aggregator, the patient index or the access log themselves. It knows nothing of HTTP.

mod binary;
mod choices;
mod decisions;
mod imaging;
mod log_view;
mod query;
mod released;
mod trail;

pub use binary::{AttachmentIndex, BinaryContent, ReleasedAttachment};
pub use choices::RecordChoice;
pub use imaging::SERIES_CONTENT_TYPE;
pub use query::{missing_warning, searched_patient};
pub use released::{Matches, Out, WholeRecord};
pub use trail::{Trail, Use};

/// A download of one's own record: the record now, or too large to build while the person
/// waits (a download job prepares it).
pub enum OwnDownload {
    Now(WholeRecord),
    Later,
}

use crate::aggregate::{AggregateError, Aggregator, MissingSource, Reuse};
use crate::audit::{AuditLog, AuditQuery, AuditRecord};
use crate::auth::{Access, PatientScope};
use crate::fhir::model::codes::IssueType;
use crate::fhir::outcome::Issue;
use crate::fhir::search::subset::Subset;
use crate::fhir::search::{self, include, SearchError};
use crate::fhir::{self, time::parse_range};
use crate::policy::holds::PolicyLedger;
use crate::policy::{Denied, Explanation, Interaction, Policy, PolicyContext, Released, Role, Viewer};
use chrono::{DateTime, FixedOffset, Utc};
pub use decisions::Decisions;
use decisions::{Decided, Inputs, Wanted};
use query::{ignored, page, patient_of_search};
use serde_json::Value;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("resource not found")]
    NotFound,
    #[error("resource type `{0}` is not supported")]
    UnsupportedType(String),
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    /// The token's scopes do not grant this interaction at all (403 `insufficient_scope`).
    #[error("the access token's scopes do not allow this ({0})")]
    InsufficientScope(String),
    #[error("the gateway's store is unavailable")]
    Store(#[from] crate::store::StoreError),
    /// The system holding an attachment's content did not give it (names no system).
    #[error("the system that holds this content is not answering; try again later")]
    SourceUnavailable,
}

/// Some sources' parts of a record from a spilled export (export jobs), or none.
type Spilled<'a> = Option<(&'a crate::aggregate::spill::Spill, &'a crate::aggregate::spill::Spilled)>;

/// When a decision is made for: now (kept and reused), now to read one resource (kept
/// apart: see [`decisions`]), now for a single use (exports and prepared downloads read each
/// record once: keeping their decisions would hold every record of a whole export in
/// memory), or another time (staff's `explain`: never kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    Now,
    NowForOne,
    NowOnce,
    Then(DateTime<Utc>),
}

/// Page sizes.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    pub default_count: usize,
    pub max_count: usize,
}

/// Access-log entries an export file's hand-over queues at once: a file of many patients
/// never holds all its entries in memory, and each group is still committed together.
const HAND_OVER_AT_ONCE: usize = 1024;

pub struct Reader {
    aggregator: Arc<Aggregator>,
    policy: Arc<Policy>,
    ledger: PolicyLedger,
    audit: AuditLog,
    zone: FixedOffset,
    paging: Paging,
    decisions: Decisions,
    attachments: binary::AttachmentIndex,
    /// What "now" is for a decision made now (a proxy's age band, holds' ends).
    clock: crate::clock::Clock,
}

/// The `Type/id` of each resource.
fn keys<'a>(resources: impl IntoIterator<Item = &'a Value>) -> std::collections::HashSet<String> {
    resources
        .into_iter()
        .map(|r| format!("{}/{}", fhir::resource_type(r).unwrap_or(""), fhir::resource_id(r).unwrap_or("")))
        .collect()
}

/// A decision for one viewer over one record, with the sources missing from the record.
struct Decision {
    released: Arc<Released>,
    explanations: Arc<Vec<Explanation>>,
    missing: Vec<MissingSource>,
    kept: Option<Arc<Decided>>,
}

impl Decision {
    fn kept(decided: Arc<Decided>, missing: Vec<MissingSource>) -> Decision {
        Decision {
            released: decided.released.clone(),
            explanations: decided.explanations.clone(),
            missing,
            kept: Some(decided),
        }
    }
}

/// A released record with the sources missing from it.
struct Visible {
    released: Arc<Released>,
    missing: Vec<MissingSource>,
    /// The decision it is, when kept (what is rendered from it is kept with it).
    decided: Option<Arc<Decided>>,
}

impl Reader {
    pub fn new(
        aggregator: Arc<Aggregator>,
        policy: Arc<Policy>,
        ledger: PolicyLedger,
        audit: AuditLog,
        zone: FixedOffset,
        paging: Paging,
        decisions: Decisions,
    ) -> Reader {
        Reader {
            aggregator,
            policy,
            ledger,
            audit,
            zone,
            paging,
            decisions,
            attachments: binary::AttachmentIndex::new(""),
            clock: crate::clock::Clock::system(),
        }
    }

    /// Decides "now" by `clock` (the app's; see [`crate::clock`]).
    pub fn with_clock(mut self, clock: crate::clock::Clock) -> Reader {
        self.clock = clock;
        self
    }

    /// Decisions kept for reuse: how many, the resources of those kept for whole answers, and
    /// how many are kept to read one resource (for `/metrics`).
    pub async fn decisions_held(&self) -> (u64, u64, u64) {
        self.decisions.held().await
    }

    /// What the access log has written so far (for `/metrics`).
    pub fn audit_stats(&self) -> crate::audit::AppendStats {
        self.audit.stats()
    }

    /// The zone dates without one are read in.
    pub fn zone(&self) -> FixedOffset {
        self.zone
    }

    /// `GET [type]/[id]`. A withheld resource is answered exactly like a missing one.
    pub async fn read(
        &self,
        access: &Access,
        trail: &Trail,
        resource_type: &str,
        id: &str,
    ) -> Result<Out, ReadError> {
        let (patient, result) = match self.permit(access, resource_type, Interaction::Read) {
            Ok(()) => self.find(access, resource_type, id).await,
            Err(e) => (None, Err(e)),
        };
        let patient = if resource_type == "Patient" && fhir::is_valid_id(id) { Some(id.to_string()) } else { patient };
        let result = result.map(|r| r.outward_with(|v| self.outward(v)));
        trail::logged(&self.audit, access, trail, "read", patient, false, result).await
    }

    /// `GET [type]?patient=…&…`. `total` counts only what the viewer may see.
    pub async fn search(
        &self,
        access: &Access,
        trail: &Trail,
        resource_type: &str,
        pairs: &[(String, String)],
        lenient: bool,
    ) -> Result<Matches, ReadError> {
        let result = match self.permit(access, resource_type, Interaction::Search) {
            Ok(()) => self.select(access, resource_type, pairs, lenient).await,
            Err(e) => Err(e),
        };
        let patient = match searched_patient(resource_type, pairs) {
            Some(p) => Some(p),
            None => self.own_patient_search(access, resource_type, pairs).await,
        };
        let result = result.map(|m| self.outward_matches(m));
        trail::logged(&self.audit, access, trail, "search", patient, false, result).await
    }

    /// `GET Patient/[id]/$everything` with `_type`, `_since`, `_count`. It returns what the
    /// scopes grant (types without a scope are left out by the policy); an app with no
    /// search scope at all may not run it.
    pub async fn everything(
        &self,
        access: &Access,
        trail: &Trail,
        patient_id: &str,
        pairs: &[(String, String)],
        lenient: bool,
    ) -> Result<Matches, ReadError> {
        let result = match self.permit_whole_record(access) {
            Ok(()) => self.everything_unlogged(access, patient_id, pairs, lenient).await,
            Err(e) => Err(e),
        };
        let result = result.map(|m| self.outward_matches(m));
        trail::logged(&self.audit, access, trail, "everything", Some(patient_id.to_string()), false, result).await
    }

    /// Everything of `patient_id`'s record the caller may see now, unpaged, for `use_`
    /// (pages, downloads, exports).
    pub async fn record(
        &self,
        access: &Access,
        trail: &Trail,
        use_: Use,
        patient_id: &str,
    ) -> Result<WholeRecord, ReadError> {
        self.record_from(access, trail, use_, patient_id, None).await
    }

    /// Like [`Reader::record`] for an export job whose sources' own exports were spilled:
    /// those sources' parts of the record come from the spill (`spilled`), the rest as
    /// always; the decision, the access log and what is handed out are the same.
    pub async fn record_spilled(
        &self,
        access: &Access,
        trail: &Trail,
        use_: Use,
        patient_id: &str,
        spilled: (&crate::aggregate::spill::Spill, &crate::aggregate::spill::Spilled),
    ) -> Result<WholeRecord, ReadError> {
        self.record_from(access, trail, use_, patient_id, Some(spilled)).await
    }

    /// [`Reader::record`] and [`Reader::record_spilled`]: exports and prepared downloads
    /// read each record once, so their decisions are not kept.
    async fn record_from(
        &self,
        access: &Access,
        trail: &Trail,
        use_: Use,
        patient_id: &str,
        spilled: Spilled<'_>,
    ) -> Result<WholeRecord, ReadError> {
        let at = if matches!(use_, Use::Export | Use::Prepare) { At::NowOnce } else { At::Now };
        let result = match self.permit_whole_record(access) {
            Ok(()) => self.whole_with(access, patient_id, spilled, at).await,
            Err(e) => Err(e),
        };
        if use_ == Use::Prepare {
            return result;
        }
        let once = use_ == Use::Export;
        trail::logged(&self.audit, access, trail, use_.action(), Some(patient_id.to_string()), once, result).await
    }

    /// A whole-record request refused before anything was read (a parameter that does not
    /// apply, say): logged with its outcome like every other request, then `error` is the
    /// answer.
    pub async fn refuse(
        &self,
        access: &Access,
        trail: &Trail,
        use_: Use,
        patient_id: &str,
        error: ReadError,
    ) -> ReadError {
        let outcome = trail::refusal(&error);
        match trail::write(&self.audit, access, trail, use_.action(), Some(patient_id.to_string()), outcome).await {
            Ok(()) => error,
            Err(store) => store,
        }
    }

    /// The caller's own record (the record a patient's or proxy's access is for), whole.
    pub async fn own_record(&self, access: &Access, trail: &Trail, use_: Use) -> Result<WholeRecord, ReadError> {
        match self.own_id(access).await {
            Some(id) => self.record(access, trail, use_, &id).await,
            None => {
                trail::logged(&self.audit, access, trail, use_.action(), None, false, Err(ReadError::NotFound)).await
            }
        }
    }

    /// The gateway id of the record a patient's or proxy's access is for (none for staff
    /// and partners, or when the index does not know the person). Ids only, no content.
    pub async fn whose(&self, access: &Access) -> Option<String> {
        self.own_id(access).await
    }

    /// Logs a file prepared earlier from `patient_id`'s released record (a download job's
    /// file) going out now; the file may go out only when this succeeds.
    pub async fn hand_over(&self, access: &Access, trail: &Trail, patient_id: &str) -> Result<(), ReadError> {
        trail::logged(&self.audit, access, trail, Use::Download.action(), Some(patient_id.to_string()), false, Ok(()))
            .await
    }

    /// Logs a Bulk export file going out now (`download`): one entry for each patient of
    /// the unit that wrote it, so each patient's log shows it; the file may go out only
    /// when every entry was written.
    pub async fn hand_over_export(&self, access: &Access, trail: &Trail, patients: &[String]) -> Result<(), ReadError> {
        if patients.is_empty() {
            return trail::logged(&self.audit, access, trail, Use::Download.action(), None, false, Ok(())).await;
        }
        for some in patients.chunks(HAND_OVER_AT_ONCE) {
            trail::write_all(
                &self.audit,
                access,
                trail,
                Use::Download.action(),
                some,
                trail::outcome(&Ok::<(), ReadError>(())),
            )
            .await?;
        }
        Ok(())
    }

    /// The caller's own record for a download made now, decided once: `Later` when it holds
    /// more resources the caller may see than `is_large` allows — a job prepares it then,
    /// nothing went out and nothing is logged; otherwise the record, logged as a download.
    pub async fn own_download(
        &self,
        access: &Access,
        trail: &Trail,
        is_large: impl Fn(usize) -> bool,
    ) -> Result<OwnDownload, ReadError> {
        let action = Use::Download.action();
        let Some(id) = self.own_id(access).await else {
            return trail::logged(&self.audit, access, trail, action, None, false, Err(ReadError::NotFound)).await;
        };
        let result = match self.permit_whole_record(access) {
            Ok(()) => self.whole(access, &id).await,
            Err(e) => Err(e),
        };
        if matches!(&result, Ok(record) if is_large(record.resources.len())) {
            return Ok(OwnDownload::Later);
        }
        trail::logged(&self.audit, access, trail, action, Some(id), false, result).await.map(OwnDownload::Now)
    }

    /// A share link's snapshot as a record to render (the plain web view of a link). The
    /// resources are the ones this reader released to the link's maker when it was made,
    /// read back from the link's JWE (authenticated under the link's key, which only the
    /// holder has); their opening is already in the access log.
    pub fn reopen_shared(&self, patient_id: &str, resources: Vec<Value>) -> WholeRecord {
        WholeRecord {
            patient_id: patient_id.to_string(),
            resources,
            missing: Vec::new(),
            notices: Vec::new(),
            documents: Vec::new(),
        }
    }

    /// For HIM: every resource of the record with the decision for `viewer` at `at`, the
    /// rules and the labels behind it. Staff only; logged as `explain`.
    pub async fn explain(
        &self,
        access: &Access,
        trail: &Trail,
        patient_id: &str,
        viewer: &Viewer,
        at: DateTime<Utc>,
    ) -> Result<Vec<Explanation>, ReadError> {
        let result = if access.is_staff() {
            self.decide(access, viewer, patient_id, At::Then(at)).await.map(|d| d.explanations.to_vec())
        } else {
            Err(ReadError::Forbidden("explaining decisions is for staff".into()))
        };
        trail::logged(&self.audit, access, trail, "explain", Some(patient_id.to_string()), false, result).await
    }

    /// "Who accessed my record" (`GET /fhir/AuditEvent`): staff search the whole log; a
    /// patient (not an app acting for them) reads the log of their own record only, and
    /// anything else is answered like a record that does not exist. Reading the log is
    /// itself logged.
    pub async fn access_log(
        &self,
        access: &Access,
        trail: &Trail,
        pairs: &[(String, String)],
    ) -> Result<Vec<AuditRecord>, ReadError> {
        let parsed = AuditQuery::parse(pairs, self.zone);
        let patient = parsed.as_ref().ok().and_then(|q| q.patient.clone());
        let result = async {
            let q = parsed.map_err(|e| ReadError::BadRequest(e.to_string()))?;
            if !access.is_staff() {
                let patient = q
                    .patient
                    .as_deref()
                    .ok_or_else(|| ReadError::BadRequest("name the patient (patient=[id])".into()))?;
                let own = self.own_id(access).await.is_some_and(|g| g == patient);
                if !(own && access.viewer.role == Role::Patient && access.viewer.app_scopes.is_none()) {
                    return Err(ReadError::NotFound);
                }
                // Type and id only: finishing changes neither, so nothing is finished for them.
                let shown = keys(self.visible(access, patient).await?.released.unfinished());
                return Ok(log_view::as_seen_by(access, &shown, self.audit.search(&q).await?));
            }
            Ok(self.audit.search(&q).await?)
        }
        .await;
        trail::logged(&self.audit, access, trail, "search", patient, false, result).await
    }

    /// The newest `limit` entries of the access log of a record already released to the
    /// caller (the record page "who accessed this record"; its page view is the logged
    /// access).
    /// As everywhere the log is shown outside staff, it shows no more than the record.
    pub async fn access_log_of(
        &self,
        access: &Access,
        record: &WholeRecord,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, ReadError> {
        let entries = self.audit.for_patient(record.patient_id(), limit).await?;
        Ok(log_view::as_seen_by(access, &keys(record.resources()), entries))
    }

    /// The accounting of disclosures of a patient's data since `since` (see
    /// `audit::disclosures`), as `access` may see it: staff as written; anyone else only with
    /// the record they were released (`record`), whose withheld items are not named.
    pub async fn disclosures_of(
        &self,
        access: &Access,
        patient_id: &str,
        record: Option<&WholeRecord>,
        since: &str,
    ) -> Result<Vec<AuditRecord>, ReadError> {
        let shown = match record {
            Some(r) if r.patient_id() == patient_id => keys(r.resources()),
            _ if access.is_staff() => std::collections::HashSet::new(),
            _ => return Err(ReadError::NotFound),
        };
        let entries = self.audit.disclosures_of(patient_id, since).await?;
        Ok(log_view::as_seen_by(access, &shown, entries))
    }

    /// Refuses (403) an interaction the caller's scopes do not grant at all.
    fn permit(&self, access: &Access, resource_type: &str, interaction: Interaction) -> Result<(), ReadError> {
        if access.viewer.permits(resource_type, interaction) {
            Ok(())
        } else {
            Err(ReadError::InsufficientScope(resource_type.to_string()))
        }
    }

    /// A whole record (`$everything`, downloads, exports) needs some search scope when an
    /// app asks; what it lists is only of the types the scopes let it search (see
    /// [`searchable`]).
    fn permit_whole_record(&self, access: &Access) -> Result<(), ReadError> {
        if access.viewer.app_scopes.as_ref().is_some_and(|scopes| !scopes.iter().any(|s| s.search)) {
            Err(ReadError::InsufficientScope("$everything".into()))
        } else {
            Ok(())
        }
    }

    /// A `Patient` search that names no `_id`, by a patient or proxy: their own record.
    async fn own_patient_search(
        &self,
        access: &Access,
        resource_type: &str,
        pairs: &[(String, String)],
    ) -> Option<String> {
        let names_id = pairs.iter().any(|(k, _)| k.split(':').next() == Some("_id"));
        if resource_type == "Patient" && !names_id {
            self.own_id(access).await
        } else {
            None
        }
    }

    /// The gateway id of the record a patient's or proxy's access is for.
    /// (The store failing is logged and answered as not found.)
    async fn own_id(&self, access: &Access) -> Option<String> {
        match &access.patients {
            PatientScope::Person { source, source_patient_id } => {
                match self.aggregator.index().gateway_id_of(source, source_patient_id).await {
                    Ok(found) => found,
                    Err(e) => {
                        tracing::warn!(error = %e, "patient index not readable");
                        None
                    }
                }
            }
            PatientScope::Any => None,
        }
    }

    /// The part of a patient's record the caller may see now.
    async fn visible(&self, access: &Access, patient_id: &str) -> Result<Visible, ReadError> {
        self.visible_with(access, patient_id, None, At::Now).await
    }

    /// [`Reader::visible`], to read one resource of it ([`Released::one`], never all of them).
    async fn visible_for_one(&self, access: &Access, patient_id: &str) -> Result<Visible, ReadError> {
        self.visible_with(access, patient_id, None, At::NowForOne).await
    }

    async fn visible_with(
        &self,
        access: &Access,
        patient_id: &str,
        spilled: Spilled<'_>,
        at: At,
    ) -> Result<Visible, ReadError> {
        let Decision { released, explanations, missing, kept } =
            self.decide_with(access, &access.viewer, patient_id, at, spilled).await?;
        // Emergency Part 2 disclosures are in the access log with their purpose; they are
        // also flagged in the service log (ids only). Only real disclosures, not explanations.
        let emergency = explanations.iter().filter(|e| e.rules.iter().any(|r| r == "part2:released:emergency")).count();
        if emergency > 0 {
            tracing::warn!(actor = %access.viewer.actor, patient = %released.patient_id(), resources = emergency, "emergency disclosure of 42 CFR Part 2 records");
        }
        let missing = self.nameable(&access.viewer, missing);
        match &kept {
            // Every decision kept over one record shares it: where its attachments live (all
            // of them, released to this viewer or not) is noted once per record.
            Some(d) => {
                d.note_record_once(|record| {
                    self.remember_attachments(&record.patient_id, record.resources.iter().collect())
                })
                .await;
            }
            None => self.remember_attachments(released.patient_id(), released.unfinished()).await,
        }
        Ok(Visible { released, missing, decided: kept })
    }

    async fn whole(&self, access: &Access, patient_id: &str) -> Result<WholeRecord, ReadError> {
        self.whole_with(access, patient_id, None, At::Now).await
    }

    async fn whole_with(
        &self,
        access: &Access,
        patient_id: &str,
        spilled: Spilled<'_>,
        at: At,
    ) -> Result<WholeRecord, ReadError> {
        let v = self.visible_with(access, patient_id, spilled, at).await?;
        let (patient_id, notices) = (v.released.patient_id().to_string(), v.released.notices().to_vec());
        // A release no one else holds (a one-off's) gives its resources up; of a kept one, each
        // resource listed is finished as a copy of its own (listing reads only its type).
        let resources: Vec<Value> = match Arc::try_unwrap(v.released) {
            Ok(own) => own.into_resources().into_iter().filter(|r| searchable(access, r)).collect(),
            Err(shared) => {
                let unfinished = shared.unfinished();
                let listed = unfinished.iter().enumerate().filter(|(_, r)| searchable(access, r));
                listed.filter_map(|(n, _)| shared.one(n)).collect()
            }
        };
        Ok(WholeRecord {
            patient_id,
            documents: self.documents_of(&resources),
            resources: resources.into_iter().map(|r| self.outward(r)).collect(),
            missing: v.missing,
            notices,
        })
    }

    /// A page of matches as it goes out (attachment URLs made the gateway's).
    fn outward_matches(&self, mut m: Matches) -> Matches {
        for out in m.resources.iter_mut().chain(m.included.iter_mut()) {
            if let Some(r) = out.value_mut() {
                *r = self.outward(std::mem::take(r));
            }
        }
        m
    }

    /// The released resources of `v` as they go out, rendered once for its decision (none
    /// for a decision that is not kept).
    fn rendered(&self, v: &Visible) -> Option<Arc<released::Rendered>> {
        v.decided.as_ref().map(|d| d.rendered(|r| self.outward(r)))
    }

    /// The missing sources as `viewer` may be told of them: a system the policy does not let
    /// this viewer know of becomes one unnamed "hospital system" (listed once).
    fn nameable(&self, viewer: &Viewer, missing: Vec<MissingSource>) -> Vec<MissingSource> {
        let mut out: Vec<MissingSource> = Vec::new();
        for m in missing {
            if self.policy.may_name_missing_source(viewer, &m.source) {
                out.push(m);
            } else if !out.iter().any(|o| o.source.is_empty()) {
                out.push(MissingSource {
                    source: String::new(),
                    display: "one of the hospital's systems".into(),
                    reason: "is not answering right now".into(),
                });
            }
        }
        out
    }

    /// Gathers the record and has the policy decide for `viewer`. A patient outside the
    /// caller's reach, or one the viewer may not see at all, is answered exactly like one
    /// that does not exist.
    async fn decide(&self, access: &Access, viewer: &Viewer, patient_id: &str, at: At) -> Result<Decision, ReadError> {
        self.decide_with(access, viewer, patient_id, at, None).await
    }

    /// [`Reader::decide`], with some sources' parts from a spilled export.
    async fn decide_with(
        &self,
        access: &Access,
        viewer: &Viewer,
        patient_id: &str,
        at: At,
        spilled: Spilled<'_>,
    ) -> Result<Decision, ReadError> {
        // The link and the ledger in one statement, before the record is gathered.
        let (link, ledger) = self.ledger.with_link(patient_id).await?.ok_or(ReadError::NotFound)?;
        if let PatientScope::Person { source, source_patient_id } = &access.patients {
            if !link.members.iter().any(|m| &m.source == source && &m.source_patient_id == source_patient_id) {
                return Err(ReadError::NotFound);
            }
        }
        // A one-off read (an export's) is kept by no one, so its resources can be moved
        // into the release instead of copied.
        let reuse = if at == At::NowOnce { Reuse::Once } else { Reuse::Cached };
        let mut record = self.aggregator.record_of(link, spilled, reuse).await.map_err(|e| match e {
            AggregateError::UnknownPatient => ReadError::NotFound,
            AggregateError::Store(e) => ReadError::Store(e),
        })?;
        let now = match at {
            At::Now | At::NowForOne | At::NowOnce => self.clock.now(),
            At::Then(t) => t,
        };
        // Only a decision for "now" is kept and reused: not one "as of" another time, nor
        // one for a single use.
        let wanted = match at {
            At::Now => Some(Wanted::Whole),
            At::NowForOne => Some(Wanted::One),
            At::NowOnce | At::Then(_) => None,
        };
        if let Some(wanted) = wanted {
            let inputs = Inputs { record: &record, viewer, ledger: &ledger, now, zone: self.zone };
            if let Some(decided) = self.decisions.get(&inputs, wanted).await {
                return Ok(Decision::kept(decided, record.missing.clone()));
            }
        }
        let ctx = PolicyContext { now, ledger: ledger.clone() };
        let decided = match at {
            At::NowOnce => self.policy.decide_taking(&mut record, viewer, &ctx),
            At::Now | At::NowForOne | At::Then(_) => self.policy.decide(&record, viewer, &ctx),
        };
        let (released, mut explanations) = decided.map_err(|d| match d {
            Denied::NoAccess(_) => ReadError::NotFound,
            Denied::Purpose(p) => ReadError::Forbidden(format!("purpose of use `{p}` is not permitted")),
        })?;
        // Only a decision "as of" a time is one staff asked to have explained.
        if let At::Then(_) = at {
            Policy::explain_labels(&record, &mut explanations);
        }
        // A decision over a record the cache does not hold (a partial one, or any on a
        // gateway that caches none) could never be found again: it is not kept.
        Ok(match wanted {
            Some(wanted) if self.aggregator.holds(&record).await => {
                let inputs = Inputs { record: &record, viewer, ledger: &ledger, now, zone: self.zone };
                let kept = self.decisions.keep(&inputs, released, explanations, wanted).await;
                if wanted == Wanted::One && !self.aggregator.holds(&record).await {
                    // The cache let the record go meanwhile, before the decision was kept.
                    self.decisions.forget(&record.patient_id).await;
                }
                Decision::kept(kept, record.missing.clone())
            }
            _ => Decision {
                released: Arc::new(released),
                explanations: Arc::new(explanations),
                missing: record.missing.clone(),
                kept: None,
            },
        })
    }

    /// The resource `resource_type/id` if released to the caller, with the record it was
    /// found in (for the access log; none for a resource that belongs to no one record).
    async fn find(&self, access: &Access, resource_type: &str, id: &str) -> (Option<String>, Result<Out, ReadError>) {
        if !fhir::is_served_type(resource_type) {
            return (None, Err(ReadError::UnsupportedType(resource_type.into())));
        }
        if !fhir::is_valid_id(id) {
            return (None, Err(ReadError::NotFound));
        }
        if let (true, PatientScope::Person { .. }) = (fhir::SUPPORTING_TYPES.contains(&resource_type), &access.patients)
        {
            // A patient's or proxy's clinicians and clinics are the ones in their own record,
            // whichever other record happens to hold them too.
            let Some(own) = self.own_id(access).await else { return (None, Err(ReadError::NotFound)) };
            let found = match self.visible_for_one(access, &own).await {
                Ok(v) => self.one_of(&v, v.released.position(resource_type, id)),
                Err(e) => Err(e),
            };
            return (found.is_ok().then_some(own), found);
        }
        let patient_id = if resource_type == "Patient" {
            id.to_string()
        } else {
            match self.aggregator.locate(resource_type, id).await {
                Some(p) => p,
                // Practitioners, Organizations … belong to no one record.
                None => {
                    let found = self.aggregator.standalone(resource_type, id).await.map(Out::value);
                    return (None, found.ok_or(ReadError::NotFound));
                }
            }
        };
        let found = match self.visible_for_one(access, &patient_id).await {
            Ok(v) => {
                let at = if resource_type == "Patient" {
                    v.released.patient_position()
                } else {
                    v.released.position(resource_type, id)
                };
                self.one_of(&v, at)
            }
            Err(e) => Err(e),
        };
        (found.is_ok().then_some(patient_id), found)
    }

    /// The resource at `at` of what is visible: with a kept decision, as rendered with it
    /// (the whole record's rendering, or this resource's alone: written once, sent as it is),
    /// else the released resource.
    fn one_of(&self, v: &Visible, at: Option<usize>) -> Result<Out, ReadError> {
        let at = at.ok_or(ReadError::NotFound)?;
        let Some(decided) = &v.decided else { return Ok(Out::value(v.released.one(at).ok_or(ReadError::NotFound)?)) };
        Ok(match decided.rendered_for_one(|r| self.outward(r)) {
            Some(rendered) => Out::rendered(&rendered, at),
            None => Out::rendered_one(decided.rendered_one(at, |r| self.outward(r)).ok_or(ReadError::NotFound)?),
        })
    }

    /// The matches of a search, before logging.
    async fn select(
        &self,
        access: &Access,
        resource_type: &str,
        pairs: &[(String, String)],
        lenient: bool,
    ) -> Result<Matches, ReadError> {
        if !fhir::is_served_type(resource_type) {
            return Err(ReadError::UnsupportedType(resource_type.into()));
        }
        let query = search::parse(
            resource_type,
            pairs,
            &["_cursor", "_total", "_summary", "_elements", "_include", "_revinclude"],
            lenient,
            self.paging.max_count,
            self.zone,
        )?;
        let subset = query::result_controls(resource_type, &query)?;
        let patient_id = match self.own_patient_search(access, resource_type, pairs).await {
            Some(own) => own,
            None => patient_of_search(resource_type, &query)?,
        };
        let v = match self.visible(access, &patient_id).await {
            Ok(v) => v,
            Err(ReadError::NotFound) => {
                let mut warnings = ignored(&query);
                if access.viewer.is_patient_facing() {
                    warnings.push(Issue::information(
                        IssueType::Informational,
                        self.policy.config().withheld_notice.clone(),
                    ));
                }
                return Ok(Matches { resources: vec![], included: vec![], total: 0, next_cursor: None, warnings });
            }
            Err(e) => return Err(e),
        };
        let filters: Vec<_> = query.filters.iter().filter(|f| f.def.kind != search::ParamKind::Reference).collect();
        let selected: Vec<(usize, &Value)> = v
            .released
            .resources()
            .iter()
            .enumerate()
            .filter(|(_, r)| fhir::resource_type(r) == Some(resource_type))
            .filter(|(_, r)| filters.iter().all(|f| search::matches(r, f, self.zone)))
            .collect();
        // Whole resources go out as rendered for the decision; a subset is cut from a copy.
        let rendered = if subset == Subset::Whole { self.rendered(&v) } else { None };
        let mut matches = page(&v, selected, &query, self.paging, rendered.as_ref())?;
        if subset == Subset::Count {
            matches.resources.clear();
            matches.next_cursor = None;
            return Ok(matches);
        }
        // Included only from what was released to this viewer and what it may list (as a
        // whole record lists), so an include can never reach past the released record.
        let pool: Vec<&Value> = v.released.resources().iter().filter(|r| searchable(access, r)).collect();
        let on_page: Vec<&Value> = matches.resources.iter().filter_map(Out::released).collect();
        let mut included: Vec<Value> =
            include::resolve(&on_page, &pool, &query.includes).into_iter().cloned().collect();
        matches.resources.iter_mut().filter_map(Out::value_mut).for_each(|r| subset.apply(r));
        // `_elements` names elements of the searched type; included resources come whole.
        if !matches!(subset, Subset::Elements(_)) {
            included.iter_mut().for_each(|r| subset.apply(r));
        }
        matches.included = included.into_iter().map(Out::value).collect();
        Ok(matches)
    }

    async fn everything_unlogged(
        &self,
        access: &Access,
        patient_id: &str,
        pairs: &[(String, String)],
        lenient: bool,
    ) -> Result<Matches, ReadError> {
        // `_include`/`_revinclude` are not parameters of `$everything` (its Bundle holds the
        // whole released record, every referenced resource included): ignored with a
        // warning in the Bundle, as a server ignores a parameter it does not apply.
        let is_include = |k: &str| matches!(k.split(':').next(), Some("_include" | "_revinclude"));
        let includes: Vec<&(String, String)> = pairs.iter().filter(|(k, _)| is_include(k)).collect();
        let pairs: Vec<(String, String)> = pairs.iter().filter(|(k, _)| !is_include(k)).cloned().collect();
        let query = search::parse(
            "Patient",
            &pairs,
            &["_cursor", "_type", "_since"],
            lenient,
            self.paging.max_count,
            self.zone,
        )?;
        if let Some(f) = query.filters.first() {
            return Err(ReadError::BadRequest(format!(
                "`{}` is not a parameter of $everything (use _type, _since, _count)",
                f.def.name
            )));
        }
        let types: Option<Vec<&str>> = query.control("_type").map(|t| t.split(',').map(str::trim).collect());
        if let Some(bad) = types.iter().flatten().find(|t| !fhir::is_served_type(t)) {
            return Err(ReadError::BadRequest(format!("_type: `{bad}` is not a supported resource type")));
        }
        // A type the scopes let the app read by id only (`.r`) is not listed: asking for it
        // is refused, as a search of it would be.
        if let Some(bad) = types.iter().flatten().find(|t| !access.viewer.permits(t, Interaction::Search)) {
            return Err(ReadError::InsufficientScope((*bad).to_string()));
        }
        let since = match query.control("_since") {
            Some(s) if s.len() > 10 => Some(
                parse_range(s, self.zone)
                    .ok_or_else(|| ReadError::BadRequest(format!("_since: `{s}` is not an instant")))?
                    .start,
            ),
            Some(s) => {
                return Err(ReadError::BadRequest(format!("_since: `{s}` must be an instant with a time and zone")))
            }
            None => None,
        };
        let v = self.visible(access, patient_id).await?;
        // Chosen among the resources as the record holds them (finishing changes neither a
        // resource's type nor its `meta.lastUpdated`): only the page's are finished.
        let selected: Vec<(usize, &Value)> = v
            .released
            .unfinished()
            .into_iter()
            .enumerate()
            .filter(|(_, r)| searchable(access, r))
            .filter(|(_, r)| types.as_ref().is_none_or(|ts| fhir::resource_type(r).is_some_and(|t| ts.contains(&t))))
            .filter(|(_, r)| {
                // Looked at only when asked for (this runs for every resource of the record).
                let Some(since) = since else { return true };
                match r.get("meta").and_then(|m| m.get("lastUpdated")).and_then(Value::as_str) {
                    Some(updated) => parse_range(updated, self.zone).is_none_or(|u| u.start >= since),
                    // Without meta.lastUpdated a resource cannot be shown to be older: include it.
                    None => true,
                }
            })
            .collect();
        let rendered = self.rendered(&v);
        let mut matches = page(&v, selected, &query, self.paging, rendered.as_ref())?;
        matches.warnings.extend(includes.iter().map(|(k, v)| {
            Issue::warning(
                IssueType::NotSupported,
                format!(
                    "`{k}={v}` was ignored: $everything already returns the whole record, every resource it \
                     references included"
                ),
            )
        }));
        Ok(matches)
    }
}

/// Whether a whole record (`$everything`, an export, a download) lists `r` for this caller:
/// listing is searching, so an app needs a search scope (`.s`, or v1 `.read`) for its type;
/// a type granted read by id only (`.r`) stays readable with `GET [type]/[id]` but is left
/// out. Without app scopes nothing is narrowed.
fn searchable(access: &Access, r: &Value) -> bool {
    access.viewer.app_scopes.is_none()
        || fhir::resource_type(r).is_some_and(|t| access.viewer.permits(t, Interaction::Search))
}
