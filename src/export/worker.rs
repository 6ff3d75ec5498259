//! The export workers: a pool of tokio tasks in every gateway replica that claim work units
//! from the shared queue ([`JobStore`]), export each unit's patients one released record at
//! a time (through [`Reader::record`], under the job's stored Access — the one door for
//! data, which logs every patient exported) into the unit's NDJSON pieces in the job's
//! storage ([`Files`]), and mark the unit done with the pieces it wrote — a job's source
//! units (sources' own Bulk Data exports, [`super::source_units`]) first, after which a
//! spilled source's part of each record is built from its export instead of searching it,
//! and, for an incremental export (`_since`), a person none of whose sources changed since
//! (all of them spilled and holding nothing of theirs) is skipped; plus the cleanup
//! that removes expired jobs and their files. A unit cut off by a restart is redone from
//! scratch under a new attempt's name; nothing a manifest lists is ever half-written. It never
//! reads sources directly and never logs patient data (ids only).

use super::files::{Files, FilesError};
use super::jobs::{JobStore, Unit, UnitOutput};
use super::ndjson::{Limits, UnitFiles};
use super::params::{ExportParams, ParamError, Selection};
use crate::auth::Access;
use crate::fhir::model::codes::IssueType;
use crate::fhir::outcome::{Issue, operation_outcome_with_id};
use crate::read::{ReadError, Reader, Trail, Use};
use crate::store::StoreError;
use chrono::{FixedOffset, Utc};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// A unit is given up (and its job failed) after this many attempts that ended in error.
const MAX_ATTEMPTS: i64 = 3;

#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("export files: {0}")]
    Files(#[from] std::io::Error),
    #[error(transparent)]
    Storage(#[from] FilesError),
    #[error("stored parameters: {0}")]
    Params(#[from] ParamError),
    #[error("stored parameters: {0}")]
    Decode(#[from] serde_json::Error),
    #[error(transparent)]
    Download(#[from] super::download::DownloadError),
}

/// Counters since this process started, for `/metrics`.
#[derive(Debug, Default)]
pub struct ExportStats {
    pub jobs_started: AtomicU64,
    pub jobs_completed: AtomicU64,
    pub jobs_failed: AtomicU64,
    pub units_in_flight: AtomicI64,
    pub resources_written: AtomicU64,
}

/// What every worker of a replica shares.
pub struct WorkContext {
    pub jobs: JobStore,
    pub reader: Reader,
    /// Runs sources' own Bulk Data exports (source units).
    pub aggregator: Arc<crate::aggregate::Aggregator>,
    /// Where they are spilled.
    pub spill: crate::aggregate::spill::Spill,
    pub source_export_timeout: Duration,
    pub files: Files,
    /// File limits for jobs that stored none.
    pub limits: Limits,
    pub lease: Duration,
    pub poll: Duration,
    pub lifetime: Duration,
    pub zone: FixedOffset,
    /// The FHIR base URL (a downloaded Bundle's `fullUrl`s).
    pub base_url: String,
    pub stats: Arc<ExportStats>,
    /// Rung at kick-off so an idle worker starts at once.
    pub wake: Arc<Notify>,
    /// Tells an account its download job is done (no notices when `None`).
    pub notices: Option<crate::notices::Notices>,
}

/// The running workers of this replica.
pub struct Workers {
    owner: String,
    jobs: JobStore,
    handles: Vec<JoinHandle<()>>,
}

/// Starts `count` workers named `{owner}/w{n}`, and the cleanup task.
pub fn start(ctx: Arc<WorkContext>, count: usize, owner: &str) -> Workers {
    let mut handles: Vec<JoinHandle<()>> = (0..count)
        .map(|n| {
            let (ctx, me) = (ctx.clone(), format!("{owner}/w{n}"));
            tokio::spawn(async move { work(ctx, me).await })
        })
        .collect();
    handles.push(tokio::spawn(cleanup(ctx.clone())));
    // The replica's name is the lease owner in `export_units`: logged so an operator can
    // tell which process holds (or held) a unit.
    tracing::info!(replica = owner, workers = count, "export workers started");
    Workers { owner: owner.to_string(), jobs: ctx.jobs.clone(), handles }
}

impl Workers {
    /// Stops the workers and gives their units back to the queue, so another replica (or
    /// this one after a restart) redoes them at once.
    pub async fn stop(mut self) {
        for h in &self.handles {
            h.abort();
        }
        for h in std::mem::take(&mut self.handles) {
            let _ = h.await;
        }
        match self.jobs.release_all(&format!("{}/", self.owner)).await {
            Ok(n) if n > 0 => tracing::info!(units = n, "export units given back to the queue"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "export units not given back; their leases will expire"),
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for h in &self.handles {
            h.abort();
        }
    }
}

async fn work(ctx: Arc<WorkContext>, me: String) {
    loop {
        match ctx.jobs.claim(&me, ctx.lease).await {
            Ok(Some(unit)) => {
                ctx.stats.units_in_flight.fetch_add(1, Ordering::Relaxed);
                let result = run_unit(&ctx, &me, &unit).await;
                ctx.stats.units_in_flight.fetch_sub(1, Ordering::Relaxed);
                if let Err(e) = result {
                    tracing::warn!(job = %unit.job_id, unit = unit.seq, attempt = unit.attempts, error = %e, "export unit failed");
                    let gave_up = unit.attempts >= MAX_ATTEMPTS;
                    let handled = if gave_up {
                        match ctx
                            .jobs
                            .fail(&unit.job_id, "the export could not be completed; start a new one", ctx.lifetime)
                            .await
                        {
                            Ok(true) => {
                                ctx.stats.jobs_failed.fetch_add(1, Ordering::Relaxed);
                                // What its sources' exports spilled is of no more use.
                                ctx.spill.drop_job(&unit.job_id).await
                            }
                            other => other.map(|_| ()),
                        }
                    } else {
                        ctx.jobs.release(&unit.id, &me).await
                    };
                    if let Err(e) = handled {
                        tracing::warn!(job = %unit.job_id, error = %e, "export unit not given back; its lease will expire");
                    }
                    tokio::time::sleep(ctx.poll).await;
                }
            }
            Ok(None) => {
                tokio::select! {
                    _ = ctx.wake.notified() => {}
                    _ = tokio::time::sleep(ctx.poll) => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "export queue unavailable");
                tokio::time::sleep(ctx.poll).await;
            }
        }
    }
}

/// One OperationOutcome line about one patient (ids only).
fn outcome_line(patient_id: &str, issue: Issue) -> Value {
    operation_outcome_with_id(&uuid::Uuid::new_v4().to_string(), &[issue.at(format!("Patient/{patient_id}"))])
}

/// Exports one unit. `Ok(false)`: the unit is no longer this worker's (its lease was taken
/// over, or its job was cancelled), and nothing of it was kept.
async fn run_unit(ctx: &WorkContext, me: &str, unit: &Unit) -> Result<bool, WorkError> {
    let Some(job) = ctx.jobs.get(&unit.job_id).await? else { return Ok(false) };
    if !matches!(job.state.as_str(), "queued" | "running") {
        return Ok(false);
    }
    if job.kind == super::download_jobs::KIND {
        return super::download_jobs::run_unit(ctx, me, unit, &job).await;
    }
    ctx.jobs.mark_running(&job.id).await?;
    if unit.source.is_some() {
        return super::source_units::run(ctx, me, unit, &job).await;
    }
    let params: ExportParams = serde_json::from_str(&job.params)?;
    let selection = Selection::new(&params, ctx.zone)?;
    let access = job.access.access();
    let limits = job.limits.unwrap_or(ctx.limits);
    let mut files = UnitFiles::start(&ctx.files, &job.id, unit.seq, &format!("{me}-{}", unit.attempts), limits);
    let spilled = ctx.spill.spilled(&job.id).await?;
    let view = JobView {
        id: &job.id,
        access: &access,
        selection: &selection,
        spilled: &spilled,
        incremental: params.since.is_some(),
    };
    match fill(ctx, me, unit, view, &mut files).await {
        Ok(true) => {}
        Ok(false) => {
            files.abandon().await;
            if !ctx.jobs.exists(&job.id).await? {
                ctx.files.remove_job(&job.id).await?;
            }
            return Ok(false);
        }
        Err(e) => {
            files.abandon().await;
            return Err(e);
        }
    }
    let written = files.finish().await?;
    let outputs: Vec<UnitOutput> = written
        .iter()
        .map(|w| UnitOutput {
            resource_type: w.resource_type.clone(),
            file: w.file.clone(),
            count: w.count,
            bytes: w.bytes,
        })
        .collect();
    if !ctx.jobs.complete_unit(&unit.id, me, &outputs).await? {
        // Taken over after all (the other worker's attempt counts), or cancelled: this
        // attempt's pieces go.
        if ctx.jobs.exists(&job.id).await? {
            let keys: Vec<String> = written.iter().map(|w| format!("{}/{}", job.id, w.file)).collect();
            ctx.files.remove(&keys).await?;
        } else {
            ctx.files.remove_job(&job.id).await?;
        }
        return Ok(false);
    }
    let resources: u64 = written.iter().filter(|w| w.resource_type != "OperationOutcome").map(|w| w.count).sum();
    ctx.stats.resources_written.fetch_add(resources, Ordering::Relaxed);
    if ctx.jobs.finish_if_done(&job.id, ctx.lifetime).await? {
        ctx.stats.jobs_completed.fetch_add(1, Ordering::Relaxed);
        ctx.spill.drop_job(&job.id).await?;
        tracing::info!(job = %job.id, patients = job.total_patients, "export job completed");
    }
    Ok(true)
}

/// What a unit's patients are exported under: the job, the caller's stored Access, what
/// is selected, the job's spilled source exports (what records are built from besides the
/// sources), and whether the export is incremental (`_since`).
#[derive(Clone, Copy)]
struct JobView<'a> {
    id: &'a str,
    access: &'a Access,
    selection: &'a Selection,
    spilled: &'a crate::aggregate::spill::Spilled,
    incremental: bool,
}

/// Whether a person is skipped in an incremental export: every source holding them was
/// spilled (its export, `_since` passed through, held only what changed) and none holds
/// anything of theirs — nothing of their record changed at any source. A person with any
/// change is read whole, every source searched, so labels and policy see the whole record.
async fn unchanged(ctx: &WorkContext, basis: JobView<'_>, patient_id: &str) -> Result<bool, WorkError> {
    if !basis.incremental || basis.spilled.sources.is_empty() {
        return Ok(false);
    }
    let Some(link) = ctx.aggregator.index().resolve(patient_id).await? else { return Ok(false) };
    if link.members.iter().any(|m| !basis.spilled.sources.contains(&m.source)) {
        return Ok(false);
    }
    for m in &link.members {
        if ctx.spill.holds_any(&basis.spilled.job_id, &m.source, std::slice::from_ref(&m.source_patient_id)).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Writes every patient of the unit; false when the lease was lost on the way.
async fn fill(
    ctx: &WorkContext,
    me: &str,
    unit: &Unit,
    job: JobView<'_>,
    files: &mut UnitFiles,
) -> Result<bool, WorkError> {
    let (job_id, access, selection, basis) = (job.id, job.access, job.selection, job);
    let what = format!("/fhir/$export-status/{job_id}");
    let mut shared_seen: HashSet<String> = HashSet::new();
    for patient_id in &unit.patients {
        if unchanged(ctx, basis, patient_id).await? {
            if !ctx.jobs.renew(&unit.id, me, ctx.lease).await? {
                return Ok(false);
            }
            continue;
        }
        // The reader logs the export before anything of the record is written; a redone unit
        // does not log the same patient of the same job twice.
        let trail = Trail::internal(what.clone());
        let result = if basis.spilled.sources.is_empty() || basis.incremental {
            ctx.reader.record(access, &trail, Use::Export, patient_id).await
        } else {
            ctx.reader.record_spilled(access, &trail, Use::Export, patient_id, (&ctx.spill, basis.spilled)).await
        };
        if let Err(ReadError::Store(e)) = result {
            return Err(e.into());
        }
        match result {
            Ok(record) => {
                for r in record.resources() {
                    if !selection.selects(r) {
                        continue;
                    }
                    let t = crate::fhir::resource_type(r).unwrap_or("");
                    if crate::fhir::SUPPORTING_TYPES.contains(&t) {
                        // A Practitioner seen by many records is written once per job.
                        let key = format!("{t}/{}", crate::fhir::resource_id(r).unwrap_or(""));
                        if !shared_seen.insert(key.clone()) || !ctx.jobs.claim_shared(job_id, &key, unit.seq).await? {
                            continue;
                        }
                    }
                    files.write(t, r).await?;
                }
                for m in record.missing() {
                    let text = format!(
                        "Patient/{patient_id}: the record is incomplete; results from {} may be missing (the system {}).",
                        m.display, m.reason
                    );
                    files
                        .write(
                            "OperationOutcome",
                            &outcome_line(patient_id, Issue::warning(IssueType::Incomplete, text)),
                        )
                        .await?;
                }
                for n in record.notices() {
                    files.write("OperationOutcome", &outcome_line(patient_id, n.clone())).await?;
                }
            }
            Err(e) => {
                let issue = match e {
                    ReadError::NotFound => Issue::error(
                        IssueType::NotFound,
                        format!("Patient/{patient_id}: no record available to this client"),
                    ),
                    ReadError::Forbidden(m) => Issue::error(IssueType::Forbidden, format!("Patient/{patient_id}: {m}")),
                    other => Issue::error(IssueType::Exception, format!("Patient/{patient_id}: {other}")),
                };
                files.write("OperationOutcome", &outcome_line(patient_id, issue)).await?;
            }
        }
        if !ctx.jobs.renew(&unit.id, me, ctx.lease).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Removes expired jobs with their files, and folders whose job is gone.
async fn cleanup(ctx: Arc<WorkContext>) {
    for round in 0u64.. {
        tokio::time::sleep(ctx.poll).await;
        // Orphans (files of a job cancelled while a worker still wrote) are looked for every
        // tenth round: a listing of object storage is a billed request.
        if let Err(e) = sweep(&ctx, round % 10 == 0).await {
            tracing::warn!(error = %e, "export cleanup failed; retrying");
        }
    }
}

async fn sweep(ctx: &WorkContext, orphans: bool) -> Result<(), WorkError> {
    for id in ctx.jobs.expired(Utc::now()).await? {
        ctx.files.remove_job(&id).await?;
        ctx.jobs.delete(&id).await?;
        tracing::info!(job = %id, "expired export job removed");
    }
    if !orphans {
        return Ok(());
    }
    for id in ctx.files.job_ids().await? {
        if !ctx.jobs.exists(&id).await? {
            ctx.files.remove_job(&id).await?;
        }
    }
    // What a source unit spilled after its job was cancelled.
    ctx.spill.drop_orphans().await?;
    Ok(())
}
