//! Exports: Bulk Data `$export` for HIE partners and staff, and a patient's own record as
//! an export job. Jobs, their work units and progress live in the store, so jobs survive
//! restarts and every gateway replica's workers share one queue; each unit streams its
//! patients' released records (one at a time, through `read::Reader` — never from sources
//! directly) into NDJSON part files on disk; files are served only to the client that
//! started the job and removed after their lifetime. It must never write a resource the
//! policy did not release, never hold a whole export in memory, and never log patient data.

pub mod bulk;
pub mod groups;
pub mod jobs;
pub mod ndjson;
pub mod params;
pub mod worker;

pub use bulk::{Accepted, ExportError, Exports, JobStatus, KickOff, Level};
