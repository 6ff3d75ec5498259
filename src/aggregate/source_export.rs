//! A source's own Bulk Data export, for a gateway export job: kick-off (the types the
//! gateway gathers from that source, `_since` passed through), polls honouring
//! `Retry-After` (at least 1 s, at most 60 s apart) until the deadline, then each output file
//! streamed a resource at a time into the [`Spill`], grouped by the source's patient — the
//! compartment reference (`subject`, `patient` … from the R4 compartment table, as the
//! per-person searches use), a Provenance under the patients its targets belong to (so its
//! file is read last). Memory holds one batch of rows. It changes no resource but making the
//! source's own absolute references relative, and never logs one.

use super::locality::localize;
use super::spill::{Spill, SpillRow, NO_PATIENT};
use crate::fhir::{self, reference};
use crate::sources::bulk::{BulkAsk, BulkPoll};
use crate::sources::{SharedSource, SourceError};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::time::Instant;

/// Rows written per transaction.
const BATCH: usize = 500;
const MIN_POLL: Duration = Duration::from_secs(1);
const MAX_POLL: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum SourceExportError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// How long to wait before the next poll: what the source asked, within bounds.
fn poll_wait(asked: Option<Duration>) -> Duration {
    asked.unwrap_or(MIN_POLL).clamp(MIN_POLL, MAX_POLL)
}

/// The source patients a resource of `resource_type` belongs to (none: no one patient's).
fn patients(r: &Value, resource_type: &str) -> Vec<String> {
    let mut found: Vec<String> = match resource_type {
        "Patient" => fhir::resource_id(r).map(str::to_string).into_iter().collect(),
        _ => fhir::compartment::patients_of(r, resource_type).into_iter().map(str::to_string).collect(),
    };
    found.sort_unstable();
    found.dedup();
    found
}

/// The local `Type/id`s a Provenance targets.
fn targets(r: &Value) -> Vec<(String, String)> {
    fhir::path_values(r, "target")
        .iter()
        .filter_map(|t| t.get("reference").and_then(Value::as_str))
        .filter_map(|s| reference::parse_local(s, None))
        .map(|(t, id)| (t.to_string(), id.to_string()))
        .collect()
}

/// Runs `source`'s export for job `job_id` into the spill (what an earlier attempt left is
/// cleared first); how many resources were spilled.
pub async fn run(
    source: &SharedSource,
    spill: &Spill,
    job_id: &str,
    ask: &BulkAsk,
    deadline: Instant,
) -> Result<u64, SourceExportError> {
    let name = source.name().to_string();
    spill.clear(job_id, &name).await?;
    let status_url = source.bulk_kick_off(ask, deadline).await?;
    let manifest = loop {
        match source.bulk_poll(&status_url, deadline).await? {
            BulkPoll::Done(m) => break m,
            BulkPoll::Running { retry_after } => {
                let wait = poll_wait(retry_after);
                if Instant::now() + wait >= deadline {
                    let _ = source.bulk_cancel(&status_url, Instant::now() + Duration::from_secs(5)).await;
                    return Err(SourceError::DeadlineExceeded { source_name: name }.into());
                }
                tokio::time::sleep(wait).await;
            }
        }
    };
    if !manifest.error.is_empty() {
        // The source's own OperationOutcomes about its export: it is incomplete.
        let _ = source.bulk_cancel(&status_url, Instant::now() + Duration::from_secs(5)).await;
        return Err(SourceError::BadResponse {
            source_name: name,
            message: format!("its export reported {} error file(s)", manifest.error.len()),
        }
        .into());
    }
    let mut outputs = manifest.output.clone();
    // Provenances last: they belong to whoever their targets belong to.
    outputs.sort_by_key(|o| o.resource_type == "Provenance");
    let mut total = 0u64;
    let mut batch: Vec<SpillRow> = Vec::with_capacity(BATCH);
    for output in &outputs {
        let mut lines = source.bulk_file(&output.url, manifest.requires_access_token, deadline).await?;
        while let Some(resource) = lines.next().await? {
            let mut one = [resource];
            localize(source, &mut one);
            let [resource] = one;
            let Some(t) = fhir::resource_type(&resource).map(str::to_string) else { continue };
            let Some(id) = fhir::resource_id(&resource).map(str::to_string) else { continue };
            let owners: Vec<String> = if t == "Provenance" {
                spill.put(job_id, &name, &std::mem::take(&mut batch)).await?;
                let mut owners = BTreeSet::new();
                for (tt, tid) in targets(&resource) {
                    if tt == "Patient" {
                        owners.insert(tid);
                    } else {
                        owners.extend(spill.owners(job_id, &name, &tt, &tid).await?);
                    }
                }
                owners.into_iter().collect()
            } else {
                patients(&resource, &t)
            };
            let body = resource.to_string();
            let owners = if owners.is_empty() { vec![NO_PATIENT.to_string()] } else { owners };
            for patient in owners {
                batch.push(SpillRow { patient, resource_type: t.clone(), resource_id: id.clone(), body: body.clone() });
            }
            total += 1;
            if batch.len() >= BATCH {
                spill.put(job_id, &name, &std::mem::take(&mut batch)).await?;
            }
        }
    }
    spill.put(job_id, &name, &batch).await?;
    // Done with its files: the source may drop them.
    let _ = source.bulk_cancel(&status_url, Instant::now() + Duration::from_secs(5)).await;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resources_are_grouped_by_their_compartment_patient() {
        let obs = json!({"resourceType": "Observation", "id": "o", "subject": {"reference": "Patient/p1"}});
        assert_eq!(patients(&obs, "Observation"), ["p1"]);
        let patient = json!({"resourceType": "Patient", "id": "p2"});
        assert_eq!(patients(&patient, "Patient"), ["p2"]);
        let dr = json!({"resourceType": "Practitioner", "id": "dr"});
        assert!(patients(&dr, "Practitioner").is_empty(), "no one patient's");
        let prov = json!({"resourceType": "Provenance", "id": "pv",
                          "target": [{"reference": "Observation/o"}, {"reference": "http://x/fhir/Patient/9"}]});
        assert_eq!(targets(&prov), [("Observation".to_string(), "o".to_string())], "local targets only");
        assert_eq!(poll_wait(None), MIN_POLL);
        assert_eq!(poll_wait(Some(Duration::from_secs(3600))), MAX_POLL);
        assert_eq!(poll_wait(Some(Duration::from_secs(3))), Duration::from_secs(3));
    }
}
