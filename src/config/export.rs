//! The `[export]` section: Bulk Data jobs (files, lifetimes, limits, workers, leases) and
//! partner rosters (`[[export.groups]]`). Types and defaults only; validation lives with
//! [`super::Config`].

use super::Duration;
use serde::Deserialize;
use std::path::PathBuf;

/// Bulk Data `$export` (see `crate::export`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportConfig {
    /// Folder for export files (relative to the working directory, like the SQLite file).
    /// Replicas sharing a queue must share this folder.
    #[serde(default = "default_export_dir")]
    pub directory: PathBuf,
    /// How long a finished job's files stay available (then job and files are removed).
    #[serde(default = "default_export_lifetime")]
    pub file_lifetime: Duration,
    /// Jobs one client may have queued or running at once (more: 429).
    #[serde(default = "default_export_max_jobs")]
    pub max_jobs_per_client: usize,
    /// Patients per work unit (what one worker claims at a time).
    #[serde(default = "default_export_unit")]
    pub patients_per_unit: usize,
    /// Worker tasks in this process (0: this replica only accepts jobs, others do them).
    #[serde(default = "default_export_workers")]
    pub workers: usize,
    /// How often an idle worker looks for work, and how often expired jobs are cleaned up.
    #[serde(default = "default_export_poll")]
    pub poll_interval: Duration,
    /// How long a claimed unit is a worker's before another may take it over (renewed
    /// after every patient, so only a worker that died loses it).
    #[serde(default = "default_export_lease")]
    pub lease: Duration,
    /// A record page's download of a record with more released resources than this is not
    /// built while the browser waits: the page offers to prepare it as a job with progress.
    #[serde(default = "default_download_job_threshold")]
    pub download_job_threshold: usize,
    /// Partner rosters: Groups defined here (a Group can also come from a source, named
    /// `{source}.{group id}`).
    #[serde(default)]
    pub groups: Vec<ExportGroup>,
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            directory: default_export_dir(),
            file_lifetime: default_export_lifetime(),
            max_jobs_per_client: default_export_max_jobs(),
            patients_per_unit: default_export_unit(),
            workers: default_export_workers(),
            poll_interval: default_export_poll(),
            lease: default_export_lease(),
            download_job_threshold: default_download_job_threshold(),
            groups: Vec::new(),
        }
    }
}

fn default_export_dir() -> PathBuf {
    PathBuf::from("data/exports")
}
fn default_export_lifetime() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_export_max_jobs() -> usize {
    2
}
fn default_export_unit() -> usize {
    25
}
fn default_export_workers() -> usize {
    2
}
fn default_export_poll() -> Duration {
    Duration::from_secs(1)
}
fn default_export_lease() -> Duration {
    Duration::from_secs(120)
}
fn default_download_job_threshold() -> usize {
    5000
}

/// A partner roster: a Group of patients named by their source records.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportGroup {
    /// The Group's id in `Group/{id}/$export`.
    pub id: String,
    pub name: String,
    /// Members as `source/source-patient-id`.
    #[serde(default)]
    pub members: Vec<String>,
}
