//! The `[export]` section: Bulk Data jobs (where files are stored, how large they grow,
//! lifetimes, limits, workers, leases) and partner rosters (`[[export.groups]]`). Types and
//! defaults only; validation lives with [`super::Config`].

use super::Duration;
use serde::Deserialize;
use std::path::PathBuf;

/// Bulk Data `$export` (see `crate::export`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportConfig {
    /// Folder for export files (relative to the working directory, like the SQLite file)
    /// when `store` is not set; with `store` set, only this process's scratch space.
    /// Replicas sharing a queue without `store` must share this folder.
    #[serde(default = "default_export_dir")]
    pub directory: PathBuf,
    /// Object storage for export and download-job files: `s3://bucket/prefix` (any
    /// S3-compatible service; credentials, endpoint and region from the environment:
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL`, `AWS_REGION`,
    /// `AWS_ALLOW_HTTP`). Unset: the local folder `directory`.
    #[serde(default)]
    pub store: Option<String>,
    /// A Bulk Data output file holds at most this many resources …
    #[serde(default = "default_file_max_resources")]
    pub file_max_resources: u64,
    /// … and at most this many bytes (`256MB`, `1GiB`, or a number of bytes).
    #[serde(default = "default_file_max_bytes")]
    pub file_max_bytes: ByteSize,
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
    /// How long a source's own Bulk Data export (asked for by system- and Group-level jobs
    /// when its CapabilityStatement offers `$export`) may take, kick-off to last file; past
    /// it, or when it fails, that source is searched person by person instead.
    #[serde(default = "default_source_export_timeout")]
    pub source_export_timeout: Duration,
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
            store: None,
            file_max_resources: default_file_max_resources(),
            file_max_bytes: default_file_max_bytes(),
            file_lifetime: default_export_lifetime(),
            max_jobs_per_client: default_export_max_jobs(),
            patients_per_unit: default_export_unit(),
            workers: default_export_workers(),
            poll_interval: default_export_poll(),
            lease: default_export_lease(),
            source_export_timeout: default_source_export_timeout(),
            download_job_threshold: default_download_job_threshold(),
            groups: Vec::new(),
        }
    }
}

fn default_export_dir() -> PathBuf {
    PathBuf::from("data/exports")
}
fn default_file_max_resources() -> u64 {
    100_000
}
fn default_file_max_bytes() -> ByteSize {
    ByteSize(256 * 1000 * 1000)
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
fn default_source_export_timeout() -> Duration {
    Duration::from_secs(3600)
}
fn default_export_lease() -> Duration {
    Duration::from_secs(120)
}
fn default_download_job_threshold() -> usize {
    5000
}

/// A size in bytes written as text (`256MB`, `1GiB`, `64KB`) or as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl std::str::FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse::<bytesize::ByteSize>()
            .map(|b| ByteSize(b.as_u64()))
            .map_err(|e| format!("`{s}` is not a size like 256MB or 1GiB ({e})"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Number(u64),
            Text(String),
        }
        match Written::deserialize(d)? {
            Written::Number(n) => Ok(ByteSize(n)),
            Written::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
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
