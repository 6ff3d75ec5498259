//! The read path: read, search and `$everything` over one patient's record. Given who is
//! asking ([`Access`]) and what, it gathers the record, has the policy decide what this
//! viewer may see, then selects, filters and pages only what was released. Every output
//! that carries patient data is meant to come through here (DESIGN.md "one way through the
//! house"); today the callers still write the audit entry themselves, and the record
//! picker's patient names (`api::authorize_routes::records_of`) read the aggregator directly
//! (issue 11 part 2 closes both). It knows nothing of HTTP.

use crate::aggregate::merge::sort_key;
use crate::aggregate::{AggregateError, Aggregator, MissingSource};
use crate::auth::{Access, PatientScope};
use crate::fhir::bundle::{decode_cursor, page_after};
use crate::fhir::model::codes::IssueType;
use crate::fhir::outcome::Issue;
use crate::fhir::search::{self, SearchError, SearchQuery};
use crate::fhir::{self, time::parse_range};
use crate::policy::holds::PolicyLedger;
use crate::policy::{Denied, Explanation, Policy, PolicyContext, Released, Viewer};
use chrono::{DateTime, FixedOffset, Utc};
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
    #[error("the gateway's store is unavailable")]
    Store(#[from] crate::store::StoreError),
}

/// One page of matches, with what the caller should be told (warnings about missing
/// sources, ignored parameters, and the policy's notices).
#[derive(Debug)]
pub struct Matches {
    pub resources: Vec<Value>,
    pub total: usize,
    pub next_cursor: Option<String>,
    pub warnings: Vec<Issue>,
}

/// A patient's whole released record at once (portal pages, downloads, exports): the
/// resources in record order, the sources missing from it, and the notices it carries.
#[derive(Debug)]
pub struct WholeRecord {
    pub patient_id: String,
    pub resources: Vec<Value>,
    pub missing: Vec<MissingSource>,
    /// The policy's notices (the withheld-notice for patient-facing viewers).
    pub notices: Vec<Issue>,
}

/// Page sizes.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    pub default_count: usize,
    pub max_count: usize,
}

pub struct Reader {
    aggregator: Arc<Aggregator>,
    policy: Arc<Policy>,
    ledger: PolicyLedger,
    zone: FixedOffset,
    paging: Paging,
}

/// A released record with the sources missing from it.
struct Visible {
    released: Released,
    missing: Vec<MissingSource>,
}

impl Reader {
    pub fn new(
        aggregator: Arc<Aggregator>,
        policy: Arc<Policy>,
        ledger: PolicyLedger,
        zone: FixedOffset,
        paging: Paging,
    ) -> Reader {
        Reader { aggregator, policy, ledger, zone, paging }
    }

    /// The zone dates without one are read in.
    pub fn zone(&self) -> FixedOffset {
        self.zone
    }

    /// The part of a patient's record the caller may see now.
    async fn visible(&self, access: &Access, patient_id: &str) -> Result<Visible, ReadError> {
        let (released, explanations, missing) = self.decide(access, &access.viewer, patient_id, Utc::now()).await?;
        // Emergency Part 2 disclosures are in the access log with their purpose; they are
        // also flagged in the service log (ids only). Only real disclosures, not explanations.
        let emergency = explanations.iter().filter(|e| e.rules.iter().any(|r| r == "part2:released:emergency")).count();
        if emergency > 0 {
            tracing::warn!(actor = %access.viewer.actor, patient = %released.patient_id(), resources = emergency, "emergency disclosure of 42 CFR Part 2 records");
        }
        let missing = self.nameable(&access.viewer, missing);
        Ok(Visible { released, missing })
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
    async fn decide(
        &self,
        access: &Access,
        viewer: &Viewer,
        patient_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(Released, Vec<Explanation>, Vec<MissingSource>), ReadError> {
        let link = self.aggregator.index().resolve(patient_id).ok_or(ReadError::NotFound)?;
        if let PatientScope::Person { source, source_patient_id } = &access.patients {
            if !link.members.iter().any(|m| &m.source == source && &m.source_patient_id == source_patient_id) {
                return Err(ReadError::NotFound);
            }
        }
        let record = self.aggregator.record(&link.gateway_id).await.map_err(|e| match e {
            AggregateError::UnknownPatient => ReadError::NotFound,
        })?;
        let ledger = self.ledger.for_patient(&record.patient_id).await?;
        let ctx = PolicyContext { now, ledger };
        let (released, mut explanations) = self.policy.decide(&record, viewer, &ctx).map_err(|d| match d {
            Denied::NoAccess(_) => ReadError::NotFound,
            Denied::Purpose(p) => ReadError::Forbidden(format!("purpose of use `{p}` is not permitted")),
        })?;
        for e in &mut explanations {
            if let Some(rules) = record.label_rules.get(&e.resource) {
                e.rules.extend(rules.iter().map(|r| format!("label:{r}")));
            }
        }
        Ok((released, explanations, record.missing.clone()))
    }

    /// For HIM: every resource of the record with the decision for `viewer` at `at`, the
    /// rules and the labels behind it. Staff only.
    pub async fn explain(
        &self,
        access: &Access,
        patient_id: &str,
        viewer: &Viewer,
        at: DateTime<Utc>,
    ) -> Result<Vec<Explanation>, ReadError> {
        if !access.is_staff() {
            return Err(ReadError::Forbidden("explaining decisions is for staff".into()));
        }
        let (_, explanations, _) = self.decide(access, viewer, patient_id, at).await?;
        Ok(explanations)
    }

    /// Everything of `patient_id`'s record the caller may see now, unpaged. Only for
    /// renderers that take the whole record (pages, downloads, exports).
    pub async fn record(&self, access: &Access, patient_id: &str) -> Result<WholeRecord, ReadError> {
        let v = self.visible(access, patient_id).await?;
        Ok(WholeRecord {
            patient_id: v.released.patient_id().to_string(),
            resources: v.released.resources().to_vec(),
            missing: v.missing,
            notices: v.released.notices().to_vec(),
        })
    }

    /// `GET [type]/[id]`. A withheld resource is answered exactly like a missing one.
    pub async fn read(&self, access: &Access, resource_type: &str, id: &str) -> Result<Value, ReadError> {
        if !fhir::is_served_type(resource_type) {
            return Err(ReadError::UnsupportedType(resource_type.into()));
        }
        if !fhir::is_valid_id(id) {
            return Err(ReadError::NotFound);
        }
        if let (true, PatientScope::Person { source, source_patient_id }) =
            (fhir::SUPPORTING_TYPES.contains(&resource_type), &access.patients)
        {
            // A patient's or proxy's clinicians and clinics are the ones in their own record,
            // whichever other record happens to hold them too.
            let own = self.aggregator.index().gateway_id_of(source, source_patient_id).ok_or(ReadError::NotFound)?;
            let v = self.visible(access, &own).await?;
            return v.released.get(resource_type, id).cloned().ok_or(ReadError::NotFound);
        }
        let patient_id = if resource_type == "Patient" {
            id.to_string()
        } else {
            match self.aggregator.locate(resource_type, id).await {
                Some(p) => p,
                // Practitioners, Organizations … belong to no one record.
                None => return self.aggregator.standalone(resource_type, id).await.ok_or(ReadError::NotFound),
            }
        };
        let v = self.visible(access, &patient_id).await?;
        let found = if resource_type == "Patient" { v.released.patient() } else { v.released.get(resource_type, id) };
        found.cloned().ok_or(ReadError::NotFound)
    }

    /// `GET [type]?patient=…&…`. `total` counts only what the viewer may see.
    pub async fn search(
        &self,
        access: &Access,
        resource_type: &str,
        pairs: &[(String, String)],
        lenient: bool,
    ) -> Result<Matches, ReadError> {
        if !fhir::is_served_type(resource_type) {
            return Err(ReadError::UnsupportedType(resource_type.into()));
        }
        let query = search::parse(resource_type, pairs, &["_cursor"], lenient, self.paging.max_count, self.zone)?;
        let patient_id = patient_of_search(resource_type, &query)?;
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
                return Ok(Matches { resources: vec![], total: 0, next_cursor: None, warnings });
            }
            Err(e) => return Err(e),
        };
        let filters: Vec<_> = query.filters.iter().filter(|f| f.def.kind != search::ParamKind::Reference).collect();
        let selected: Vec<&Value> = v
            .released
            .resources()
            .iter()
            .filter(|r| fhir::resource_type(r) == Some(resource_type))
            .filter(|r| filters.iter().all(|f| search::matches(r, f, self.zone)))
            .collect();
        page(&v, selected, &query, self.paging)
    }

    /// `GET Patient/[id]/$everything` with `_type`, `_since`, `_count`.
    pub async fn everything(
        &self,
        access: &Access,
        patient_id: &str,
        pairs: &[(String, String)],
        lenient: bool,
    ) -> Result<Matches, ReadError> {
        let query = search::parse(
            "Patient",
            pairs,
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
        let selected: Vec<&Value> = v
            .released
            .resources()
            .iter()
            .filter(|r| types.as_ref().is_none_or(|ts| fhir::resource_type(r).is_some_and(|t| ts.contains(&t))))
            .filter(|r| match (since, r.pointer("/meta/lastUpdated").and_then(Value::as_str)) {
                (Some(since), Some(updated)) => parse_range(updated, self.zone).is_none_or(|u| u.start >= since),
                // Without meta.lastUpdated a resource cannot be shown to be older: include it.
                _ => true,
            })
            .collect();
        page(&v, selected, &query, self.paging)
    }
}

/// The one patient a search is about.
fn patient_of_search(resource_type: &str, query: &SearchQuery) -> Result<String, ReadError> {
    if resource_type == "Patient" {
        let ids: Vec<&str> = query.filters_named("_id").flat_map(|f| f.values.iter().map(String::as_str)).collect();
        return match ids.as_slice() {
            [one] => Ok(one.to_string()),
            _ => Err(ReadError::BadRequest("Patient search needs exactly one _id".into())),
        };
    }
    if fhir::patient_element(resource_type).is_none() && resource_type != "Provenance" {
        return Err(ReadError::BadRequest(format!(
            "{resource_type} is read by id (GET {resource_type}/[id]), not searched"
        )));
    }
    let values: Vec<&str> = query
        .filters
        .iter()
        .filter(|f| f.def.kind == search::ParamKind::Reference)
        .flat_map(|f| f.values.iter().map(String::as_str))
        .collect();
    match values.as_slice() {
        [one] => Ok(one.strip_prefix("Patient/").unwrap_or(one).to_string()),
        [] => Err(ReadError::BadRequest(format!("a {resource_type} search must name one patient (patient=[id])"))),
        _ => Err(ReadError::BadRequest("a search names exactly one patient".into())),
    }
}

/// One page of `selected` (in record order) after the query's cursor, with the warnings
/// and notices the answer carries.
fn page(v: &Visible, selected: Vec<&Value>, query: &SearchQuery, paging: Paging) -> Result<Matches, ReadError> {
    let after = match query.control("_cursor") {
        Some(c) => Some(
            decode_cursor(c).ok_or_else(|| ReadError::BadRequest("_cursor is not one this server issued".into()))?,
        ),
        None => None,
    };
    let total = selected.len();
    let count = query.count.unwrap_or(paging.default_count);
    let page = page_after(selected, |r| sort_key(r), after.as_deref(), count);
    let mut warnings = ignored(query);
    warnings.extend(v.missing.iter().map(missing_warning));
    warnings.extend(v.released.notices().iter().cloned());
    Ok(Matches { resources: page.items.into_iter().cloned().collect(), total, next_cursor: page.next, warnings })
}

/// The warning an answer carries for a source missing from the record.
pub fn missing_warning(m: &MissingSource) -> Issue {
    Issue::warning(
        IssueType::Incomplete,
        format!("Results from {} may be missing: the system {}.", m.display, m.reason),
    )
}

fn ignored(query: &SearchQuery) -> Vec<Issue> {
    query
        .ignored
        .iter()
        .map(|p| {
            Issue::warning(IssueType::NotSupported, format!("search parameter `{p}` is not supported and was ignored"))
        })
        .collect()
}
