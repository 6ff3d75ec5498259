//! Bulk Data `$export` as the API sees it: kick-off (who may export what, the parameters,
//! the patients, the job and its units in the store), status and manifest, cancel, and
//! which file a client may download. A system-, all-patients or Group-level job of a
//! partner or staff starts with one source unit per source that offers Bulk Data `$export`
//! (a Group: only the Group's own source, when it offers `Group/{id}/$export` — a roster of a
//! few people is cheaper to gather person by person than a whole source's export). The data
//! itself is written by the workers ([`super::worker`]) from released records only. It
//! knows nothing of HTTP.

use super::files::{Files, FilesError, Piece};
use super::groups::{GroupError, Groups};
use super::jobs::{parse_stamp, Created, JobStore, NewJob, SourceUnit, StoredAccess};
use super::ndjson::Limits;
use super::params::{self, ParamError};
use super::worker::{self, ExportStats, WorkContext, Workers};
use crate::auth::{Access, PatientScope};
use crate::config::{Config, ExportConfig};
use crate::identity::PatientIndex;
use crate::policy::{Interaction, Policy, Role};
use crate::read::Reader;
use crate::sources::SharedSource;
use crate::store::{Store, StoreError};
use chrono::{DateTime, FixedOffset, Utc};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::Notify;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    /// An unknown job or Group, or one that is not the caller's (answered alike).
    #[error("{0}")]
    NotFound(&'static str),
    #[error("this client already has {0} export jobs queued or running; wait for one to finish or delete one")]
    TooMany(usize),
    #[error("{0}")]
    Unavailable(String),
    #[error("the gateway's store is unavailable")]
    Store(#[from] StoreError),
    #[error("the export files are unavailable")]
    Files(#[from] FilesError),
}

impl From<ParamError> for ExportError {
    fn from(e: ParamError) -> Self {
        ExportError::BadRequest(e.0)
    }
}

const NO_JOB: &str = "no such export job";

/// The three kick-off endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Level {
    /// `[base]/$export`
    System,
    /// `[base]/Group/{id}/$export`
    Group(String),
    /// `[base]/Patient/$export`
    Patient,
}

/// A kick-off request, as the route extracted it.
#[derive(Debug, Clone)]
pub struct KickOff {
    pub level: Level,
    /// The full kick-off URL (the manifest's `request`).
    pub request_url: String,
    pub pairs: Vec<(String, String)>,
    /// A POSTed Parameters resource.
    pub body: Option<Value>,
    pub lenient: bool,
}

/// An accepted kick-off.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub job_id: String,
    /// Where to poll (`Content-Location`).
    pub status_url: String,
    /// Parameters ignored under lenient handling.
    pub warnings: Vec<String>,
}

/// What polling a job finds.
#[derive(Debug, Clone)]
pub enum JobStatus {
    InProgress { done: i64, total: i64 },
    Complete { manifest: Value, expires: Option<DateTime<Utc>> },
    Failed(String),
}

/// An export file a client may download.
#[derive(Debug, Clone)]
pub struct ExportFile {
    /// Its stored pieces, end to end.
    pub pieces: Vec<Piece>,
    /// Its length.
    pub bytes: u64,
    /// The gateway ids of the patients of the units whose pieces it holds.
    pub patients: Vec<String>,
}

pub struct Exports {
    jobs: JobStore,
    /// Which sources offer Bulk Data, and the workers' way to their exports.
    aggregator: Arc<crate::aggregate::Aggregator>,
    spill: crate::aggregate::spill::Spill,
    groups: Groups,
    index: Arc<PatientIndex>,
    policy: Arc<Policy>,
    config: ExportConfig,
    files: Files,
    zone: FixedOffset,
    base_url: String,
    stats: Arc<ExportStats>,
    wake: Arc<Notify>,
    /// This replica's name in unit leases.
    replica: String,
}

impl Exports {
    pub fn new(
        config: &Config,
        store: Store,
        index: Arc<PatientIndex>,
        sources: Vec<SharedSource>,
        aggregator: Arc<crate::aggregate::Aggregator>,
        policy: Arc<Policy>,
        zone: FixedOffset,
    ) -> Result<Exports, FilesError> {
        let deadline = config.aggregate.deadline.std();
        let files = Files::open(&config.export.directory, config.export.store.as_deref())?;
        tracing::info!(place = files.place(), "export files stored in {}", files.place());
        Ok(Exports {
            spill: crate::aggregate::spill::Spill::new(store.clone()),
            aggregator,
            jobs: JobStore::new(store),
            groups: Groups::new(config.export.groups.clone(), sources, index.clone(), deadline),
            index,
            policy,
            config: config.export.clone(),
            files,
            zone,
            base_url: config.fhir_base_url(),
            stats: Default::default(),
            wake: Default::default(),
            replica: format!("gw-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
        })
    }

    /// Where export and download-job files are stored.
    pub fn files(&self) -> &Files {
        &self.files
    }

    /// The file limits new jobs get.
    fn limits(&self) -> Limits {
        Limits { resources: self.config.file_max_resources, bytes: self.config.file_max_bytes.0 }
    }

    pub fn stats(&self) -> &ExportStats {
        &self.stats
    }

    /// Seconds a client should wait between polls.
    pub fn poll_seconds(&self) -> u64 {
        self.config.poll_interval.std().as_secs_f64().ceil().max(1.0) as u64
    }

    /// Whole-record downloads prepared as jobs (the record pages'), on this queue.
    pub fn downloads(&self) -> super::download_jobs::DownloadJobs {
        super::download_jobs::DownloadJobs {
            jobs: self.jobs.clone(),
            files: self.files.clone(),
            threshold: self.config.download_job_threshold,
            max_active: self.config.max_jobs_per_client,
            lifetime: self.config.file_lifetime.std(),
            stats: self.stats.clone(),
            wake: self.wake.clone(),
        }
    }

    /// Starts this replica's workers (none when `export.workers` is 0).
    /// `notices` tells an account its download is ready.
    pub fn start_workers(&self, reader: Reader, notices: Option<crate::notices::Notices>) -> Workers {
        let ctx = Arc::new(WorkContext {
            jobs: self.jobs.clone(),
            reader,
            aggregator: self.aggregator.clone(),
            spill: self.spill.clone(),
            source_export_timeout: self.config.source_export_timeout.std(),
            files: self.files.clone(),
            limits: self.limits(),
            lease: self.config.lease.std(),
            poll: self.config.poll_interval.std(),
            lifetime: self.config.file_lifetime.std(),
            zone: self.zone,
            base_url: self.base_url.clone(),
            stats: self.stats.clone(),
            wake: self.wake.clone(),
            notices,
        });
        worker::start(ctx, self.config.workers, &self.replica)
    }

    /// Accepts an export: checks who may export what, parses the parameters, fixes the
    /// patients and the transaction time, and queues the job's units.
    pub async fn kick_off(&self, access: &Access, k: KickOff) -> Result<Accepted, ExportError> {
        let patient_facing = access.viewer.is_patient_facing();
        if patient_facing && k.level != Level::Patient {
            return Err(ExportError::Forbidden(
                "patients and their proxies export their own record with Patient/$export".into(),
            ));
        }
        if !matches!(access.viewer.role, Role::Staff | Role::Partner { .. }) && !patient_facing {
            return Err(ExportError::Forbidden("this caller may not export".into()));
        }
        if access.viewer.app_scopes.as_ref().is_some_and(|scopes| !scopes.iter().any(|s| s.search)) {
            return Err(ExportError::Forbidden("the access token's scopes do not allow an export".into()));
        }
        if let Err(crate::policy::Denied::Purpose(purpose)) = self.policy.check_purpose(&access.viewer) {
            return Err(ExportError::Forbidden(format!("purpose of use `{purpose}` is not permitted")));
        }
        // A caller that names its Groups (a partner's roster) exports only those: a system or
        // all-patients export would reach past them (Bulk Data IG: the server limits the
        // data to what the client is authorized for; refused here rather than cut silently).
        if let (Some(allowed), false) = (&access.groups, patient_facing) {
            if !matches!(k.level, Level::Group(_)) {
                let named = if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") };
                return Err(ExportError::Forbidden(format!(
                    "this client may export only its Groups, with Group/[id]/$export (its Groups: {named})"
                )));
            }
        }
        let parsed = params::parse(&k.pairs, k.body.as_ref(), k.lenient, self.zone)?;
        // A type the token's scopes do not grant is refused, as a search of it would be.
        let asked = parsed.params.types.iter().flatten().chain(parsed.params.type_filters.iter().map(|(t, _)| t));
        if let Some(t) = asked.into_iter().find(|t| !access.viewer.permits(t, Interaction::Search)) {
            return Err(ExportError::Forbidden(format!("the access token's scopes do not grant {t}")));
        }
        let mut all = self.patients(access, &k.level).await?;
        if let Some(named) = &parsed.params.patients {
            let mut chosen = BTreeSet::new();
            for id in named {
                let resolved = self.index.resolve(id).await?.map(|l| l.gateway_id);
                match resolved.filter(|g| all.contains(g)) {
                    Some(g) => {
                        chosen.insert(g);
                    }
                    None if patient_facing => {
                        return Err(ExportError::BadRequest(
                            "`patient` may name only the record this token is for".into(),
                        ))
                    }
                    None if matches!(k.level, Level::Group(_)) => {
                        return Err(ExportError::BadRequest(format!("Patient/{id} is not a member of this Group")))
                    }
                    None => return Err(ExportError::BadRequest(format!("Patient/{id} is not known to this server"))),
                }
            }
            all = chosen.into_iter().collect();
        }
        let mut stored_params = parsed.params.clone();
        stored_params.patients = None;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (level, group_id) = match &k.level {
            Level::System => ("system", None),
            Level::Group(g) => ("group", Some(g.clone())),
            Level::Patient => ("patient", None),
        };
        let job = NewJob {
            id: id.clone(),
            kind: "bulk",
            client: access.viewer.actor.clone(),
            access: StoredAccess::of(access),
            request: k.request_url,
            params: crate::json::text(&stored_params),
            level,
            group_id,
            transaction_time: Utc::now(),
            units: all.chunks(self.config.patients_per_unit).map(<[String]>::to_vec).collect(),
            limits: self.limits(),
            source_units: if patient_facing { Vec::new() } else { self.source_units(&k.level) },
        };
        match self.jobs.create(&job, self.config.max_jobs_per_client, self.config.file_lifetime.std()).await? {
            Created::TooMany(n) => return Err(ExportError::TooMany(n)),
            Created::Yes => {}
        }
        self.stats.jobs_started.fetch_add(1, Ordering::Relaxed);
        if all.is_empty() {
            self.stats.jobs_completed.fetch_add(1, Ordering::Relaxed);
        }
        self.wake.notify_waiters();
        tracing::info!(job = %id, level, patients = all.len(), actor = %access.viewer.actor, "export job queued");
        Ok(Accepted {
            status_url: format!("{}/$export-status/{id}", self.base_url),
            job_id: id,
            warnings: parsed.warnings,
        })
    }

    /// The sources asked for their own Bulk Data export first: at system and all-patients
    /// level every source that offers `$export`; at Group level the Group's own source
    /// (`{source}.{id}`) when it offers `Group/{id}/$export`.
    fn source_units(&self, level: &Level) -> Vec<SourceUnit> {
        match level {
            Level::System | Level::Patient => self
                .aggregator
                .bulk_sources(false)
                .into_iter()
                .map(|source| SourceUnit { source, group: None })
                .collect(),
            Level::Group(id) => match id.split_once('.') {
                Some((source, group)) if self.aggregator.bulk_sources(true).iter().any(|s| s == source) => {
                    vec![SourceUnit { source: source.to_string(), group: Some(group.to_string()) }]
                }
                _ => Vec::new(),
            },
        }
    }

    /// The gateway patients a kick-off at `level` covers for this caller, sorted.
    async fn patients(&self, access: &Access, level: &Level) -> Result<Vec<String>, ExportError> {
        if let PatientScope::Person { source, source_patient_id } = &access.patients {
            let own = self
                .index
                .gateway_id_of(source, source_patient_id)
                .await?
                .ok_or(ExportError::NotFound("the record this token is for is not available"))?;
            return Ok(vec![own]);
        }
        match level {
            Level::System | Level::Patient => Ok(self.index.gateway_ids().await?),
            Level::Group(id) => {
                if access.groups.as_ref().is_some_and(|allowed| !allowed.contains(id)) {
                    return Err(ExportError::NotFound("no such Group"));
                }
                let members = self.groups.members(id).await.map_err(|e| match e {
                    GroupError::Unknown => ExportError::NotFound("no such Group"),
                    GroupError::Source(m) => ExportError::Unavailable(m),
                    GroupError::Store(e) => ExportError::Store(e),
                })?;
                if members.unknown > 0 {
                    tracing::warn!(group = %id, unknown = members.unknown, "group members not in the patient index");
                }
                Ok(members.patients)
            }
        }
    }

    /// The caller's job, or not found (also when it is another client's).
    async fn own_job(&self, access: &Access, job_id: &str) -> Result<super::jobs::Job, ExportError> {
        if job_id.len() != 32 || !job_id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ExportError::NotFound(NO_JOB));
        }
        match self.jobs.get(job_id).await? {
            // A record page's download job is the account's, seen only through the pages.
            // An app's job is its grant's: under a later grant (the first one revoked, or
            // its link terminated) it is not found, as one that never existed.
            Some(job)
                if job.client == access.viewer.actor && job.kind == "bulk" && job.access.basis == access.basis =>
            {
                Ok(job)
            }
            _ => Err(ExportError::NotFound(NO_JOB)),
        }
    }

    /// Progress, or the manifest once complete.
    pub async fn status(&self, access: &Access, job_id: &str) -> Result<JobStatus, ExportError> {
        let job = self.own_job(access, job_id).await?;
        match job.state.as_str() {
            "completed" => {}
            "failed" => return Ok(JobStatus::Failed(job.error.unwrap_or_else(|| "the export failed".into()))),
            _ => {
                return Ok(JobStatus::InProgress { done: self.jobs.progress(job_id).await?, total: job.total_patients })
            }
        }
        let units = self.jobs.done_units(job_id).await?;
        let files = super::sizing::pack(&units, job.limits.unwrap_or_else(|| self.limits()));
        let entry = |f: &super::sizing::ServedFile| json!({"type": f.resource_type, "url": format!("{}/$export-file/{job_id}/{}", self.base_url, f.name), "count": f.count});
        let (errors, outputs): (Vec<_>, Vec<_>) = files.iter().partition(|f| f.resource_type == "OperationOutcome");
        let manifest = json!({
            "transactionTime": job.transaction_time,
            "request": job.request,
            "requiresAccessToken": true,
            "output": outputs.into_iter().map(entry).collect::<Vec<_>>(),
            "error": errors.into_iter().map(entry).collect::<Vec<_>>(),
        });
        Ok(JobStatus::Complete { manifest, expires: job.expires_at.as_deref().and_then(parse_stamp) })
    }

    /// Cancels a job (running or finished) and removes its files.
    pub async fn cancel(&self, access: &Access, job_id: &str) -> Result<(), ExportError> {
        let job = self.own_job(access, job_id).await?;
        self.remove(&job.id).await?;
        tracing::info!(job = %job.id, "export job cancelled");
        Ok(())
    }

    /// Ends every job started under an account's link or an app's grant — the link was
    /// terminated or the grant revoked: Bulk exports and prepared downloads, queued, running
    /// or finished, are cancelled and their files removed, so their status and files are
    /// not found. Returns how many there were.
    pub async fn end_basis(&self, link: Option<&str>, grant: Option<&str>) -> Result<usize, ExportError> {
        let ids = self.jobs.of_basis(link, grant).await?;
        for id in &ids {
            self.remove(id).await?;
        }
        if !ids.is_empty() {
            tracing::info!(jobs = ids.len(), link, grant, "jobs of ended access cancelled");
        }
        Ok(ids.len())
    }

    /// Deletes a job and its folder.
    async fn remove(&self, job_id: &str) -> Result<(), ExportError> {
        self.jobs.delete(job_id).await?;
        // A worker may still be writing a unit of it: its files go when it notices (at the
        // next patient), and the cleanup sweeps any files no job owns.
        if let Err(e) = self.files.remove_job(job_id).await {
            tracing::info!(job = %job_id, error = %e, "cancelled job's files are removed by the cleanup");
        }
        Ok(())
    }

    /// A finished job's file, for its client only: where it is and the patients whose
    /// records went into it (for the access log, written before it goes out).
    pub async fn file(&self, access: &Access, job_id: &str, name: &str) -> Result<ExportFile, ExportError> {
        let job = self.own_job(access, job_id).await?;
        if job.state != "completed" || !super::ndjson::is_part_name(name) {
            return Err(ExportError::NotFound("no such export file"));
        }
        let units = self.jobs.done_units(job_id).await?;
        let files = super::sizing::pack(&units, job.limits.unwrap_or_else(|| self.limits()));
        let Some(file) = files.into_iter().find(|f| f.name == name) else {
            return Err(ExportError::NotFound("no such export file"));
        };
        let mut sizes = Vec::with_capacity(file.pieces.len());
        for (key, bytes) in &file.pieces {
            let size = match bytes {
                Some(b) => *b,
                None => self.files.size(&format!("{}/{key}", job.id)).await?.unwrap_or(0),
            };
            sizes.push(size);
        }
        let patients = units.into_iter().filter(|u| file.units.contains(&u.seq)).flat_map(|u| u.patients).collect();
        Ok(ExportFile { pieces: file.located(&job.id, &sizes), bytes: sizes.iter().sum(), patients })
    }
}
