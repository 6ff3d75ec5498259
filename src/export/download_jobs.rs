//! Whole-record downloads prepared as jobs, for records too large to zip while the browser
//! waits: a record page starts one for the signed-in account, under exactly the Access the
//! pages use for that record; it is queued in the export job tables (kind `download`, one
//! unit, one patient) so it survives restarts and any replica's worker may do it; the
//! worker reads the released record through `Reader::record`, writes the zip or the Bundle
//! with [`super::download`] to a scratch file and stores it with the job's files
//! ([`super::files`]: the local folder or object storage); the account
//! follows its progress and fetches the file. Only the account that started a job ever
//! finds it (another's or a made-up one is "not found" alike). It never audits (the route
//! serving the file does, before it goes out), never writes anything but what the policy
//! released, never knows HTTP and never logs patient data (ids only).

use super::download::{self, DownloadError, Format};
use super::files::{Files, FilesError};
use super::jobs::{parse_stamp, Created, Job, JobStore, NewJob, StoredAccess, Unit, UnitOutput};
use super::worker::{ExportStats, WorkContext, WorkError};
use crate::auth::Access;
use crate::read::{ReadError, Trail, Use, WholeRecord};
use crate::store::StoreError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The job kind in the export job tables.
pub const KIND: &str = "download";
/// Steps a download job goes through: read the record, write the file, store it.
pub const STEPS: i64 = 3;
/// The stored error of a job whose record the account may not (or no longer) open.
const NOT_AVAILABLE: &str = "the record is not available to this account";

#[derive(Debug, thiserror::Error)]
pub enum DownloadJobError {
    /// No such job, or not this account's, or not for this record (answered alike).
    #[error("no such download")]
    NotFound,
    #[error("this account already has {0} downloads or exports being prepared")]
    TooMany(usize),
    #[error("the gateway's store is unavailable")]
    Store(#[from] StoreError),
    #[error("the prepared file is unavailable: {0}")]
    Files(#[from] std::io::Error),
    #[error("the prepared file is unavailable: {0}")]
    Storage(#[from] FilesError),
}

/// What a download job is for, as stored in the job's `params`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct DownloadParams {
    /// The account's record link (the page the job belongs to).
    link: String,
    /// `zip` or `json`.
    format: String,
    /// The language of the zip's summary: the page's when the job was started (`en` for
    /// jobs started before it was kept).
    #[serde(default)]
    lang: String,
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Zip => "zip",
        Format::Bundle => "json",
    }
}

fn format_of(name: &str) -> Format {
    if name == "json" {
        Format::Bundle
    } else {
        Format::Zip
    }
}

fn content_type(format: Format) -> &'static str {
    match format {
        Format::Zip => "application/zip",
        Format::Bundle => "application/fhir+json; charset=utf-8",
    }
}

/// What the worker learned of the record, kept with the job for the progress page.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Notes {
    /// The policy's notices, word for word (the withheld-notice).
    notices: Vec<String>,
    /// Display names of source systems that did not answer.
    missing: Vec<String>,
}

/// A prepared file, ready to send.
#[derive(Debug, Clone)]
pub struct ReadyFile {
    /// The gateway id of the record (for the access log).
    pub patient_id: String,
    /// Its key in the job files' storage.
    pub key: String,
    /// `health-record-{gateway id}.zip|json`.
    pub file_name: String,
    pub content_type: &'static str,
    pub bytes: u64,
    /// Resources in it.
    pub resources: u64,
}

/// Where a job is.
#[derive(Debug, Clone)]
pub enum Progress {
    /// Queued behind other work.
    Waiting,
    /// A worker has it: `done` of [`STEPS`] steps done.
    Working {
        done: i64,
    },
    Ready {
        file: ReadyFile,
        expires: Option<DateTime<Utc>>,
    },
    /// It could not be done; `not_available` when the account may not open the record now.
    Failed {
        not_available: bool,
    },
}

/// One of the account's download jobs.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub job_id: String,
    pub format: Format,
    pub progress: Progress,
    /// The policy's notices for the file, once the record was read.
    pub notices: Vec<String>,
    /// Source systems missing from the file.
    pub missing: Vec<String>,
    /// The view of the record the file was written under.
    pub access: Access,
}

/// Download jobs as the pages see them.
pub struct DownloadJobs {
    pub(super) jobs: JobStore,
    pub(super) files: Files,
    pub(super) threshold: usize,
    pub(super) max_active: usize,
    pub(super) lifetime: Duration,
    pub(super) stats: Arc<ExportStats>,
    pub(super) wake: Arc<Notify>,
}

impl DownloadJobs {
    /// Whether a record with this many released resources is downloaded through a job.
    pub fn is_large(&self, resources: usize) -> bool {
        resources > self.threshold
    }

    /// Starts preparing `patient_id`'s record (the account's record link `link_id`) as
    /// `format` for `access`; the job id. The same request while one is still being
    /// prepared gets that one.
    pub async fn start(
        &self,
        access: &Access,
        link_id: &str,
        patient_id: &str,
        format: Format,
    ) -> Result<String, DownloadJobError> {
        let params = DownloadParams {
            link: link_id.to_string(),
            format: format_name(format).to_string(),
            lang: crate::i18n::current().code().to_string(),
        };
        let params = crate::json::text(&params);
        let client = &access.viewer.actor;
        if let Some(id) = self.jobs.active_like(client, KIND, &params).await? {
            return Ok(id);
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let job = NewJob {
            id: id.clone(),
            kind: KIND,
            client: client.clone(),
            access: StoredAccess::of(access),
            request: format!("/records/{link_id}/downloads"),
            params,
            level: "patient",
            group_id: None,
            transaction_time: Utc::now(),
            units: vec![vec![patient_id.to_string()]],
            limits: super::ndjson::Limits { resources: u64::MAX, bytes: u64::MAX },
            source_units: Vec::new(),
        };
        match self.jobs.create(&job, self.max_active, self.lifetime).await? {
            Created::TooMany(n) => return Err(DownloadJobError::TooMany(n)),
            Created::Yes => {}
        }
        self.stats.jobs_started.fetch_add(1, Ordering::Relaxed);
        self.wake.notify_waiters();
        tracing::info!(job = %id, link = %link_id, actor = %client, "download job queued");
        Ok(id)
    }

    /// The account's job `job_id` for its record link `link_id`, with its progress. A job
    /// of another account, of another record, made under a view of the record the account
    /// no longer has, or made up: not found.
    pub async fn find(&self, access: &Access, link_id: &str, job_id: &str) -> Result<Prepared, DownloadJobError> {
        if job_id.len() != 32 || !job_id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(DownloadJobError::NotFound);
        }
        let Some(job) = self.jobs.get(job_id).await? else { return Err(DownloadJobError::NotFound) };
        let params: Option<DownloadParams> = serde_json::from_str(&job.params).ok();
        let Some(params) = params.filter(|p| p.link == link_id) else { return Err(DownloadJobError::NotFound) };
        if job.kind != KIND || job.client != access.viewer.actor || job.access != StoredAccess::of(access) {
            return Err(DownloadJobError::NotFound);
        }
        let format = format_of(&params.format);
        let notes: Notes = job.notices.as_deref().and_then(|n| serde_json::from_str(n).ok()).unwrap_or_default();
        let progress = match job.state.as_str() {
            "queued" => Progress::Waiting,
            "running" => Progress::Working { done: job.step.clamp(0, STEPS - 1) },
            "completed" => {
                let units = self.jobs.done_units(&job.id).await?;
                let unit = units.first().ok_or(DownloadJobError::NotFound)?;
                let (Some(patient_id), Some(output)) = (unit.patients.first(), unit.outputs.first()) else {
                    return Err(DownloadJobError::NotFound);
                };
                let file_name = download::file_name(patient_id, format_name(format));
                if output.file != file_name {
                    return Err(DownloadJobError::NotFound);
                }
                let key = format!("{}/{file_name}", job.id);
                let bytes = match output.bytes {
                    0 => self.files.size(&key).await?.ok_or(DownloadJobError::NotFound)?,
                    n => n,
                };
                let file = ReadyFile {
                    patient_id: patient_id.clone(),
                    key,
                    file_name,
                    content_type: content_type(format),
                    bytes,
                    resources: output.count,
                };
                Progress::Ready { file, expires: job.expires_at.as_deref().and_then(parse_stamp) }
            }
            _ => Progress::Failed { not_available: job.error.as_deref() == Some(NOT_AVAILABLE) },
        };
        Ok(Prepared {
            job_id: job.id.clone(),
            format,
            progress,
            notices: notes.notices,
            missing: notes.missing,
            access: job.access.access(),
        })
    }
}

/// Does a download job's one unit: reads the released record under the job's Access,
/// writes the file in scratch space, stores it with the job's files and completes the job.
/// `Ok(false)`: the unit is no longer this worker's, and nothing of this attempt was kept.
pub(super) async fn run_unit(ctx: &WorkContext, me: &str, unit: &Unit, job: &Job) -> Result<bool, WorkError> {
    let params: DownloadParams = serde_json::from_str(&job.params)?;
    let format = format_of(&params.format);
    let lang = crate::i18n::Lang::from_code(&params.lang).unwrap_or_default();
    let Some(patient_id) = unit.patients.first() else {
        ctx.jobs.fail(&job.id, "the download names no record", ctx.lifetime).await?;
        return Ok(true);
    };
    ctx.jobs.mark_running(&job.id).await?;
    ctx.jobs.set_step(&job.id, 0, None).await?;
    let access = job.access.access();
    // Preparing is not yet an access: the file going out is (logged when it is handed over).
    let trail = Trail::internal(format!("/records/{}/downloads/{}", params.link, job.id));
    let record = match ctx.reader.record(&access, &trail, Use::Prepare, patient_id).await {
        Ok(r) => r,
        Err(ReadError::NotFound | ReadError::Forbidden(_)) => {
            if ctx.jobs.fail(&job.id, NOT_AVAILABLE, ctx.lifetime).await? {
                ctx.stats.jobs_failed.fetch_add(1, Ordering::Relaxed);
            }
            tracing::info!(job = %job.id, "download job failed: the record is not available to its account");
            return Ok(true);
        }
        Err(e) => return Err(DownloadError::from(e).into()),
    };
    if !ctx.jobs.renew(&unit.id, me, ctx.lease).await? {
        return Ok(false);
    }
    let notes = Notes {
        notices: record.notices().iter().map(|n| n.diagnostics.clone()).collect(),
        missing: record.missing().iter().map(|m| m.display.clone()).collect(),
    };
    ctx.jobs.set_step(&job.id, 1, Some(&serde_json::to_string(&notes)?)).await?;

    // Cancelled while the record was read (its link ended): nothing is written.
    if !ctx.jobs.exists(&job.id).await? {
        return Ok(false);
    }
    let name = download::file_name(record.patient_id(), format_name(format));
    let attempt: String =
        format!("{me}-{}", unit.attempts).chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let scratch = ctx.files.scratch(&format!("{}-{attempt}", job.id)).await?;
    let stored = build_and_store(ctx, record, format, lang, &scratch, &format!("{}/{name}", job.id)).await;
    ctx.files.drop_scratch(&scratch).await;
    let (resources, bytes) = stored?;
    ctx.jobs.set_step(&job.id, 2, None).await?;
    let output = UnitOutput { resource_type: format_name(format).to_string(), file: name, count: resources, bytes };
    if !ctx.jobs.complete_unit(&unit.id, me, &[output]).await? {
        // Taken over (the other worker stores the same file over this one), or cancelled
        // while the file was written: then what this attempt stored goes too.
        if !ctx.jobs.exists(&job.id).await? {
            ctx.files.remove_job(&job.id).await?;
        }
        return Ok(false);
    }
    ctx.stats.resources_written.fetch_add(resources, Ordering::Relaxed);
    if ctx.jobs.finish_if_done(&job.id, ctx.lifetime).await? {
        ctx.jobs.set_step(&job.id, STEPS, None).await?;
        ctx.stats.jobs_completed.fetch_add(1, Ordering::Relaxed);
        tracing::info!(job = %job.id, resources, "download job completed");
        if let (Some(notices), Some(link)) = (&ctx.notices, &job.access.basis.link) {
            if let Err(e) = notices.download_ready(link).await {
                tracing::warn!(job = %job.id, error = %e, "download-ready notice not sent");
            }
        }
    }
    Ok(true)
}

/// Writes the record as `format` to `path` and makes it durable.
fn write_file(
    record: &WholeRecord,
    documents: &super::download_documents::Documents,
    format: Format,
    lang: crate::i18n::Lang,
    base_url: &str,
    path: &Path,
) -> Result<(), DownloadError> {
    let produced = Utc::now();
    let out = BufWriter::new(std::fs::File::create(path)?);
    let mut out = match format {
        Format::Zip => download::write_zip(record, documents, produced, lang, out)?,
        Format::Bundle => {
            let mut out = out;
            serde_json::to_writer(&mut out, &download::bundle(record, base_url, produced))?;
            out
        }
    };
    out.flush()?;
    let file = out.into_inner().map_err(std::io::IntoInnerError::into_error)?;
    file.sync_all()?;
    Ok(())
}

/// Writes the record as `format` in `scratch` (with the documents a zip carries), then
/// stores it as `key`; (resources, bytes).
async fn build_and_store(
    ctx: &WorkContext,
    record: WholeRecord,
    format: Format,
    lang: crate::i18n::Lang,
    scratch: &Path,
    key: &str,
) -> Result<(u64, u64), WorkError> {
    let resources = record.resources().len() as u64;
    let documents = match format {
        Format::Zip => super::download_documents::fetch(&ctx.reader, &record, scratch).await?,
        Format::Bundle => super::download_documents::Documents::default(),
    };
    let (base_url, to) = (ctx.base_url.clone(), scratch.join("file"));
    let path = to.clone();
    // Compressing and writing is blocking work: off the async workers.
    tokio::task::spawn_blocking(move || write_file(&record, &documents, format, lang, &base_url, &to))
        .await
        .map_err(|e| DownloadError::Task(e.to_string()))??;
    let bytes = ctx.files.upload(&path, key).await?;
    Ok((resources, bytes))
}
