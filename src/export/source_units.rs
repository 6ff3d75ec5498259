//! A job's source units, as a worker runs them: one source's own Bulk Data export (through
//! the aggregator, into the spill), with the unit's lease renewed while it runs — a worker
//! that loses the lease stops, and whoever takes the unit over starts the source's export
//! afresh. A source export that fails (refused, broken, past `source_export_timeout`) is not
//! the job's failure: it is recorded as failed and that source is searched person by person
//! by the job's person units, as if it offered no Bulk Data. Only a store that cannot be
//! written fails the unit (retried like any unit). It writes no export file and reads no
//! record itself.

use super::jobs::Unit;
use super::params::ExportParams;
use super::worker::{WorkContext, WorkError};
use crate::aggregate::source_export::SourceExportError;
use crate::aggregate::spill::{FAILED, SPILLED, SPILLED_COMPARTMENTS};
use std::sync::atomic::Ordering;
use tokio::time::Instant;

/// Runs a source unit; `Ok(false)` when it is no longer this worker's.
pub(super) async fn run(ctx: &WorkContext, me: &str, unit: &Unit, job: &super::jobs::Job) -> Result<bool, WorkError> {
    let Some(su) = &unit.source else { return Ok(false) };
    let params: ExportParams = serde_json::from_str(&job.params)?;
    let deadline = Instant::now() + ctx.source_export_timeout;
    let export =
        ctx.aggregator.export_source(&su.source, &ctx.spill, &job.id, su.group.clone(), params.since.clone(), deadline);
    tokio::pin!(export);
    let renew_every = (ctx.lease / 3).max(std::time::Duration::from_millis(50));
    let result = loop {
        tokio::select! {
            r = &mut export => break r,
            _ = tokio::time::sleep(renew_every) => {
                if !ctx.jobs.renew(&unit.id, me, ctx.lease).await? {
                    // Taken over (or cancelled): whoever has it now starts afresh.
                    return Ok(false);
                }
            }
        }
    };
    let outcome = match result {
        Ok(n) => {
            tracing::info!(job = %job.id, source = %su.source, resources = n, "source export spilled");
            (if su.group.is_some() { SPILLED_COMPARTMENTS } else { SPILLED }, n)
        }
        Err(SourceExportError::Store(e)) => return Err(e.into()),
        Err(SourceExportError::Source(e)) => {
            tracing::warn!(job = %job.id, source = %su.source, error = %e, "source export failed; the source is searched person by person");
            ctx.spill.clear(&job.id, &su.source).await?;
            (FAILED, 0)
        }
    };
    if !ctx.jobs.exists(&job.id).await? {
        ctx.spill.drop_job(&job.id).await?;
        return Ok(false);
    }
    ctx.spill.record_run(&job.id, &su.source, outcome.0, outcome.1).await?;
    if !ctx.jobs.complete_unit(&unit.id, me, &[]).await? {
        return Ok(false);
    }
    if ctx.jobs.finish_if_done(&job.id, ctx.lifetime).await? {
        ctx.stats.jobs_completed.fetch_add(1, Ordering::Relaxed);
        ctx.spill.drop_job(&job.id).await?;
    }
    // The job's person units may be claimed now.
    ctx.wake.notify_waiters();
    Ok(true)
}
