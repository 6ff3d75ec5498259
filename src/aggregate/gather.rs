//! Gathering one person's part from one source, within the record's deadline, with as few
//! calls as the source allows: one `Patient/{id}/$everything` (every page) when its
//! CapabilityStatement offers that, else one search per type it holds (Provenance brought
//! along by `_revinclude=Provenance:target` where offered), then the referenced supporting
//! resources still missing. Every failure is handed back as a problem, so the record says
//! which source is partial; nothing here is ever silent, changes a resource or hangs. For a
//! job whose source's own Bulk Data export was spilled ([`super::spill`]), the same part is
//! built from the spill instead, with no call to the source ([`from_spill`]).

use super::locality::{localize, names_only_foreign_patients};
use super::merge::Fetched;
use crate::fhir::{self, reference};
use crate::sources::{SharedSource, SourceError};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::time::Instant;

/// Rounds of fetching referenced Practitioners, Organizations … (a PractitionerRole
/// points at an Organization, which points at another).
const SUPPORTING_ROUNDS: usize = 2;

/// What to ask one source for, per person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Plan {
    /// Ask `Patient/{id}/$everything` instead of searching type by type.
    pub everything: bool,
    /// The compartment types gathered: searched one by one, or kept from `$everything`.
    pub types: Vec<String>,
    /// Types read by id when a gathered resource points at them (and kept from
    /// `$everything`).
    pub referenced: Vec<&'static str>,
    /// Provenance comes with the other searches (`_revinclude=Provenance:target` on the
    /// Patient and every type), so it is not searched on its own.
    pub provenance_by_revinclude: bool,
}

impl Plan {
    /// The types searched one by one.
    fn searched(&self) -> impl Iterator<Item = &str> {
        self.types.iter().map(String::as_str).filter(|t| !(self.provenance_by_revinclude && *t == "Provenance"))
    }

    /// Whether a resource of a `$everything` answer belongs in the record: the person's own
    /// Patient resources, the gathered compartment types, and the types gathered when
    /// referenced (whether or not the source offers reading them on their own).
    fn keeps(&self, resource: &Value, patient_ids: &[String]) -> bool {
        match fhir::resource_type(resource) {
            Some("Patient") => fhir::resource_id(resource).is_some_and(|id| patient_ids.iter().any(|p| p == id)),
            Some(t) => {
                self.types.iter().any(|x| x == t)
                    || fhir::REFERENCED_TYPES.contains(&t)
                    || fhir::SUPPORTING_TYPES.contains(&t)
            }
            None => false,
        }
    }
}

impl Plan {
    /// Whether the searches of this plan would find a resource of the person's: their own
    /// Patient resources and the gathered compartment types (what they point at comes by id).
    fn searches_hold(&self, resource: &Value, patient_ids: &[String]) -> bool {
        match fhir::resource_type(resource) {
            Some("Patient") => fhir::resource_id(resource).is_some_and(|id| patient_ids.iter().any(|p| p == id)),
            Some(t) => self.types.iter().any(|x| x == t),
            None => false,
        }
    }

    /// The types a source's own export is asked for (`_type`): the Patient, the gathered
    /// types and those read when referenced, as far as the source offers them.
    pub(super) fn exported_types(&self, offered: &crate::sources::Offer) -> Vec<String> {
        let mut types: BTreeSet<String> = BTreeSet::from(["Patient".to_string()]);
        types.extend(self.types.iter().cloned());
        types.extend(self.referenced.iter().map(ToString::to_string));
        types.retain(|t| offered.types.is_empty() || offered.types.contains_key(t));
        types.into_iter().collect()
    }
}

/// One source's part of a record being gathered in a task of its own (with what the label
/// rules found in it): the task is ended when this is dropped, so a record no longer wanted
/// (the request went away) does not keep asking the source.
pub(super) struct Task(pub tokio::task::JoinHandle<(Fetched, Vec<SourceError>, Vec<super::Findings>)>);

impl Task {
    /// The part, or — should the task have failed — an empty part with a problem that makes
    /// the record name `source` as missing.
    pub async fn join(mut self, source: &SharedSource) -> (Fetched, Vec<SourceError>, Vec<super::Findings>) {
        match (&mut self.0).await {
            Ok(part) => part,
            Err(e) => {
                tracing::error!(source = source.name(), error = %e, "gathering a source's part failed");
                let problem =
                    SourceError::Unavailable { source_name: source.name().to_string(), message: "failed".into() };
                (nothing_yet(source, &[]), vec![problem], Vec::new())
            }
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A source's part for one person before anything was found.
fn nothing_yet(source: &SharedSource, patient_ids: &[String]) -> Fetched {
    Fetched {
        source: source.name().to_string(),
        display: source.display().to_string(),
        patient_ids: patient_ids.to_vec(),
        resources: Vec::new(),
    }
}

/// Everything one source holds for one person: Patient, compartment types, then referenced
/// supporting resources. Never outlives the deadline.
pub(super) async fn gather(
    source: SharedSource,
    patient_ids: Vec<String>,
    plan: Plan,
    deadline: Instant,
) -> (Fetched, Vec<SourceError>) {
    let name = source.name().to_string();
    let mut fetched = nothing_yet(&source, &patient_ids);
    let work = async {
        let mut problems = Vec::new();
        let mut resources = Vec::new();
        if plan.everything {
            let calls = patient_ids.iter().map(|pid| source.everything(pid, deadline));
            for r in futures::future::join_all(calls).await {
                match r {
                    Ok(found) => resources.extend(found.into_iter().filter(|r| plan.keeps(r, &patient_ids))),
                    Err(e) => problems.push(e),
                }
            }
        } else {
            match source.patients(&patient_ids, deadline).await {
                Ok(p) => resources.extend(p),
                Err(e) => problems.push(e),
            }
            let calls = patient_ids.iter().flat_map(|pid| plan.searched().map(move |t| (pid, t)));
            let results =
                futures::future::join_all(calls.map(|(pid, t)| source.patient_resources(pid, t, deadline))).await;
            for r in results {
                match r {
                    Ok(found) => resources.extend(found),
                    Err(e) => problems.push(e),
                }
            }
        }
        // From here on only relative references are the source's own (see `merge`).
        localize(&source, &mut resources);
        resources.retain(|r| !names_only_foreign_patients(r));
        let mut have: BTreeSet<(String, String)> = resources.iter().filter_map(type_and_id).collect();
        for _ in 0..SUPPORTING_ROUNDS {
            let wanted = referenced_supporting(&resources, &have, &plan.referenced);
            if wanted.is_empty() {
                break;
            }
            for (t, ids) in wanted {
                match source.read_many(&t, &ids, deadline).await {
                    Ok(mut found) => {
                        localize(&source, &mut found);
                        // Asked for once, found or not: never asked again this record.
                        have.extend(ids.into_iter().map(|id| (t.clone(), id)));
                        resources.extend(found);
                    }
                    Err(e) => problems.push(e),
                }
            }
        }
        // A source may answer the same resource under two searches (or a Provenance
        // targeting two of them).
        let mut seen = BTreeSet::new();
        resources.retain(|r| type_and_id(r).is_some_and(|k| seen.insert(k)));
        (resources, problems)
    };
    // The adapters honour the deadline themselves; this is the backstop that makes a hang
    // impossible whatever an adapter does.
    match tokio::time::timeout_at(deadline + Duration::from_millis(50), work).await {
        Ok((resources, problems)) => {
            fetched.resources = resources;
            (fetched, problems)
        }
        Err(_) => (fetched, vec![SourceError::DeadlineExceeded { source_name: name }]),
    }
}

/// One person's part of `source` built from its spilled Bulk Data export (job `job_id`):
/// what the per-type searches would find among the person's rows, then the referenced supporting
/// resources from the spill — the same part [`gather`] would find, without a call to the
/// source. A spill that cannot be read is handed back as a problem (the part is missing).
pub(super) async fn from_spill(
    source: SharedSource,
    patient_ids: Vec<String>,
    plan: Plan,
    spill: &super::spill::Spill,
    job_id: &str,
    read_missing: Option<Instant>,
) -> (Fetched, Vec<SourceError>) {
    let name = source.name().to_string();
    let mut fetched = nothing_yet(&source, &patient_ids);
    let unreadable = |e: crate::store::StoreError| {
        tracing::warn!(source = %name, error = %e, "spilled source export not readable");
        vec![SourceError::Unavailable {
            source_name: name.clone(),
            message: "its export could not be read back".into(),
        }]
    };
    let mut resources: Vec<Value> = match spill.part(job_id, &name, &patient_ids).await {
        Ok(found) => found.into_iter().filter(|r| plan.searches_hold(r, &patient_ids)).collect(),
        Err(e) => return (fetched, unreadable(e)),
    };
    localize(&source, &mut resources);
    resources.retain(|r| !names_only_foreign_patients(r));
    let mut have: BTreeSet<(String, String)> = resources.iter().filter_map(type_and_id).collect();
    let mut problems = Vec::new();
    for _ in 0..SUPPORTING_ROUNDS {
        let wanted = referenced_supporting(&resources, &have, &plan.referenced);
        if wanted.is_empty() {
            break;
        }
        for (t, ids) in wanted {
            let mut found = match spill.by_id(job_id, &name, &t, &ids).await {
                Ok(found) => found,
                Err(e) => return (fetched, unreadable(e)),
            };
            // A Group's export holds the compartments only: what they point at and it
            // lacks is read from the source, as a search would.
            if let Some(deadline) = read_missing {
                let got: BTreeSet<&str> = found.iter().filter_map(fhir::resource_id).collect();
                let missing: Vec<String> = ids.iter().filter(|id| !got.contains(id.as_str())).cloned().collect();
                if !missing.is_empty() {
                    match source.read_many(&t, &missing, deadline).await {
                        Ok(more) => found.extend(more),
                        Err(e) => problems.push(e),
                    }
                }
            }
            localize(&source, &mut found);
            have.extend(ids.into_iter().map(|id| (t.clone(), id)));
            resources.extend(found);
        }
    }
    let mut seen = BTreeSet::new();
    resources.retain(|r| type_and_id(r).is_some_and(|k| seen.insert(k)));
    fetched.resources = resources;
    (fetched, problems)
}

fn type_and_id(r: &Value) -> Option<(String, String)> {
    Some((fhir::resource_type(r)?.to_string(), fhir::resource_id(r)?.to_string()))
}

/// Resources of the `referenced` types pointed at but not yet fetched, by type.
fn referenced_supporting(
    resources: &[Value],
    have: &BTreeSet<(String, String)>,
    referenced: &[&str],
) -> Vec<(String, Vec<String>)> {
    let mut wanted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in resources {
        reference::for_each(r, &mut |s| {
            if let Some((t, id)) = reference::parse_local(s, None) {
                if referenced.contains(&t) && !have.contains(&(t.to_string(), id.to_string())) {
                    wanted.entry(t.to_string()).or_default().insert(id.to_string());
                }
            }
        });
    }
    wanted.into_iter().map(|(t, ids)| (t, ids.into_iter().collect())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_everything_answer_keeps_the_person_the_gathered_types_and_what_they_point_at() {
        let plan = Plan {
            everything: true,
            types: vec!["Observation".into(), "Provenance".into()],
            referenced: vec![],
            provenance_by_revinclude: false,
        };
        let ids = vec!["p1".to_string()];
        let keeps = |r: Value| plan.keeps(&r, &ids);
        assert!(keeps(json!({"resourceType": "Patient", "id": "p1"})));
        assert!(!keeps(json!({"resourceType": "Patient", "id": "p2"})), "a linked other patient is not hers");
        assert!(keeps(json!({"resourceType": "Observation", "id": "o1"})));
        assert!(keeps(json!({"resourceType": "Practitioner", "id": "dr"})), "referenced types come along");
        assert!(keeps(json!({"resourceType": "Device", "id": "d"})));
        assert!(!keeps(json!({"resourceType": "Condition", "id": "c"})), "not gathered here (configured out)");
        assert!(!keeps(json!({"resourceType": "Questionnaire", "id": "q"})), "not served");
        assert!(!keeps(json!({"id": "x"})));
        let by_revinclude = Plan { provenance_by_revinclude: true, ..plan.clone() };
        let searched: Vec<&str> = by_revinclude.searched().collect();
        assert_eq!(searched, ["Observation"], "Provenance comes with the searches");
    }

    #[test]
    fn the_references_read_are_the_ones_the_merge_rewrites() {
        let r = json!({"resourceType": "DiagnosticReport", "id": "d",
                       "subject": {"reference": "Patient/p1"},
                       "performer": [{"reference": "Organization/o1"}, {"display": "no reference"}],
                       "result": [{"reference": "Observation/a", "extension": [{"valueReference": {"reference": "Practitioner/x"}}]}],
                       "contained": [{"resourceType": "Practitioner", "id": "c", "reference": 7}],
                       "note": [{"text": "reference"}]});
        let mut walked = Vec::new();
        reference::for_each(&r, &mut |s| walked.push(s.to_string()));
        let mut rewritten = Vec::new();
        reference::for_each_mut(&mut r.clone(), &mut |s| rewritten.push(s.clone()));
        assert_eq!(walked, rewritten);
        assert_eq!(walked, ["Patient/p1", "Organization/o1", "Observation/a", "Practitioner/x"]);
        let have = BTreeSet::from([("Organization".to_string(), "o1".to_string())]);
        let wanted = referenced_supporting(&[r], &have, &["Organization", "Practitioner"]);
        assert_eq!(wanted, vec![("Practitioner".to_string(), vec!["x".to_string()])]);
    }
}
