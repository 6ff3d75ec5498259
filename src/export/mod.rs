//! Exports: writing patients' released records out as files. Bulk Data `$export` for HIE
//! partners and staff, and a patient's own record as an export job: jobs, their work units
//! and progress live in the store, so jobs survive restarts and every gateway replica's
//! workers share one queue; each unit streams its patients' released records (one at a
//! time) into NDJSON pieces in the job files' storage (a local folder or S3-compatible
//! object storage, [`files`]), served as files sized by content ([`sizing`]) only to the
//! client that started the job and removed after their lifetime. Whole-record downloads: one FHIR Bundle, or a zip of
//! NDJSON with a readable summary, built at once or, for a large record, prepared as a job
//! with progress. It only writes what `read::Reader` hands it (the
//! policy's released record) — never from sources directly — never holds a whole export in
//! memory, never decides who may see what, and never logs patient data.

pub mod bulk;
pub mod download;
pub mod download_documents;
pub mod download_jobs;
pub mod files;
pub mod groups;
pub mod jobs;
pub mod ndjson;
pub mod params;
pub mod readable;
pub mod sizing;
pub mod source_units;
pub mod summary;
pub mod worker;

pub use bulk::{Accepted, ExportError, ExportFile, Exports, JobStatus, KickOff, Level};
