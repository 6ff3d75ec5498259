//! A source's own Bulk Data export, for a gateway export job: kick-off (the types the
//! gateway gathers from that source, `_since` passed through), polls honouring
//! `Retry-After` (at least 1 s, at most 60 s apart) until the deadline, then each output file
//! streamed a resource at a time into the [`Spill`], grouped by the source's patient — the
//! compartment reference (`subject`, `patient` … from the R4 compartment table, as the
//! per-person searches use), a Provenance under the patients its targets belong to (so its
//! file is read last). Memory holds two batches of rows: one being written while the next is
//! read and parsed, so the store's work overlaps the source's and the parsing. It changes no
//! resource but making the
//! source's own absolute references relative, and never logs one.

use super::locality::localize;
use super::spill::{NO_PATIENT, Spill, SpillRow};
use crate::fhir::{self, reference};
use crate::sources::bulk::{BulkAsk, BulkPoll};
use crate::sources::{SharedSource, SourceError};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
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

/// Writes batches to the spill one behind the reading: a batch is handed over and written
/// in a task of its own while the next is read; the next hand-over (or [`Writer::wait`])
/// waits for it and returns its error. Dropped with a batch still being written (the unit
/// lost its lease, or the export failed), that write is abandoned and rolled back: a worker
/// that took the unit over never finds a stale batch in the table it started afresh.
struct Writer {
    spill: Spill,
    job_id: String,
    source: String,
    writing: Option<tokio::task::JoinHandle<Result<(), crate::store::StoreError>>>,
}

impl Writer {
    fn new(spill: &Spill, job_id: &str, source: &str) -> Writer {
        Writer { spill: spill.clone(), job_id: job_id.to_string(), source: source.to_string(), writing: None }
    }

    /// Waits for the batch being written, then starts writing `rows`.
    async fn put(&mut self, rows: Vec<SpillRow>) -> Result<(), SourceExportError> {
        self.wait().await?;
        if !rows.is_empty() {
            let (spill, job_id, source) = (self.spill.clone(), self.job_id.clone(), self.source.clone());
            self.writing = Some(tokio::spawn(async move { spill.put(&job_id, &source, &rows).await }));
        }
        Ok(())
    }

    /// Waits until everything handed over is written.
    async fn wait(&mut self) -> Result<(), SourceExportError> {
        if let Some(writing) = self.writing.take() {
            writing.await.map_err(|e| crate::store::StoreError::Query(sqlx::Error::Protocol(e.to_string())))??;
        }
        Ok(())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(writing) = self.writing.take() {
            writing.abort();
        }
    }
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

/// A Provenance read but not yet spilled: its id, local targets and JSON.
struct Pending {
    id: String,
    targets: Vec<(String, String)>,
    body: String,
}

/// The spill rows of a batch of Provenances, in order: each under the patients its targets
/// belong to — named Patients, spilled resources (looked up a type at a time, not one
/// query per target), and Provenances earlier in the batch — or under no one's.
async fn owned(
    spill: &Spill,
    job_id: &str,
    source: &str,
    batch: Vec<Pending>,
) -> Result<Vec<SpillRow>, SourceExportError> {
    let mut wanted: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for p in &batch {
        for (t, id) in &p.targets {
            if t != "Patient" {
                wanted.entry(t.as_str()).or_default().insert(id.as_str());
            }
        }
    }
    let mut known: HashMap<(String, String), Vec<String>> = HashMap::new();
    for (t, ids) in wanted {
        let ids: Vec<String> = ids.into_iter().map(str::to_string).collect();
        for (id, owners) in spill.owners_of(job_id, source, t, &ids).await? {
            known.insert((t.to_string(), id), owners);
        }
    }
    let mut rows = Vec::with_capacity(batch.len());
    for p in batch {
        let mut owners = BTreeSet::new();
        for (t, id) in &p.targets {
            if t == "Patient" {
                owners.insert(id.clone());
            } else if let Some(found) = known.get(&(t.clone(), id.clone())) {
                owners.extend(found.iter().cloned());
            }
        }
        let owners: Vec<String> = owners.into_iter().collect();
        // A later Provenance of the batch may target this one.
        known.insert(("Provenance".to_string(), p.id.clone()), owners.clone());
        let owners = if owners.is_empty() { vec![NO_PATIENT.to_string()] } else { owners };
        for patient in owners {
            rows.push(SpillRow {
                patient,
                resource_type: "Provenance".to_string(),
                resource_id: p.id.clone(),
                body: p.body.clone(),
            });
        }
    }
    Ok(rows)
}

/// Runs `source`'s export for job `job_id` into the spill (a table of its own; what an
/// earlier attempt left is dropped first), indexed once everything but the Provenances is
/// in; how many resources were spilled.
pub async fn run(
    source: &SharedSource,
    spill: &Spill,
    job_id: &str,
    ask: &BulkAsk,
    deadline: Instant,
) -> Result<u64, SourceExportError> {
    let name = source.name().to_string();
    spill.begin(job_id, &name).await?;
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
    let mut provenances: Vec<Pending> = Vec::with_capacity(BATCH);
    let mut writer = Writer::new(spill, job_id, &name);
    let mut sealed = false;
    for output in &outputs {
        if output.resource_type == "Provenance" && !sealed {
            // Their owners are looked up by resource: index what came before first.
            writer.put(std::mem::take(&mut batch)).await?;
            writer.wait().await?;
            spill.seal(job_id, &name).await?;
            sealed = true;
        }
        let mut lines = source.bulk_file(&output.url, manifest.requires_access_token, deadline).await?;
        while let Some(resource) = lines.next().await? {
            let mut one = [resource];
            localize(source, &mut one);
            let [resource] = one;
            let Some(t) = fhir::resource_type(&resource).map(str::to_string) else { continue };
            let Some(id) = fhir::resource_id(&resource).map(str::to_string) else { continue };
            total += 1;
            if t == "Provenance" {
                // Owned by its targets' patients: resolved a batch at a time, once what
                // came before is spilled.
                provenances.push(Pending { id, targets: targets(&resource), body: resource.to_string() });
                if provenances.len() >= BATCH {
                    writer.put(std::mem::take(&mut batch)).await?;
                    writer.wait().await?;
                    let rows = owned(spill, job_id, &name, std::mem::take(&mut provenances)).await?;
                    writer.put(rows).await?;
                }
                continue;
            }
            let body = resource.to_string();
            let owners = patients(&resource, &t);
            let owners = if owners.is_empty() { vec![NO_PATIENT.to_string()] } else { owners };
            for patient in owners {
                batch.push(SpillRow { patient, resource_type: t.clone(), resource_id: id.clone(), body: body.clone() });
            }
            if batch.len() >= BATCH {
                writer.put(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))).await?;
            }
        }
    }
    writer.put(batch).await?;
    writer.wait().await?;
    if !sealed {
        spill.seal(job_id, &name).await?;
    }
    let rows = owned(spill, job_id, &name, provenances).await?;
    writer.put(rows).await?;
    writer.wait().await?;
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

    #[tokio::test]
    async fn a_batch_of_provenances_goes_to_its_targets_patients() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&format!("sqlite://{}/s.db", dir.path().display()), 2).await.unwrap();
        let spill = Spill::new(store);
        spill.begin("j", "lab").await.unwrap();
        spill.begin("j", "ehr").await.unwrap();
        let row = |patient: &str, t: &str, id: &str| SpillRow {
            patient: patient.into(),
            resource_type: t.into(),
            resource_id: id.into(),
            body: json!({"resourceType": t, "id": id}).to_string(),
        };
        spill
            .put(
                "j",
                "lab",
                &[row("p1", "Observation", "o1"), row("p2", "Observation", "o2"), row("", "Practitioner", "dr")],
            )
            .await
            .unwrap();
        spill.put("j", "ehr", &[row("p9", "Observation", "o3")]).await.unwrap();
        let pending = |id: &str, targets: &[(&str, &str)]| Pending {
            id: id.into(),
            targets: targets.iter().map(|(t, i)| (t.to_string(), i.to_string())).collect(),
            body: json!({"resourceType": "Provenance", "id": id}).to_string(),
        };
        let batch = vec![
            pending("pv1", &[("Observation", "o1"), ("Observation", "o2"), ("Patient", "p3")]),
            pending("pv2", &[("Provenance", "pv1")]),
            pending("pv3", &[("Practitioner", "dr"), ("Observation", "o3")]),
        ];
        let rows = owned(&spill, "j", "lab", batch).await.unwrap();
        let got: Vec<(&str, &str)> = rows.iter().map(|r| (r.resource_id.as_str(), r.patient.as_str())).collect();
        assert_eq!(
            got,
            [("pv1", "p1"), ("pv1", "p2"), ("pv1", "p3"), ("pv2", "p1"), ("pv2", "p2"), ("pv2", "p3"), ("pv3", "")],
            "another source's Observation and a Practitioner are no one's here"
        );
    }
}
