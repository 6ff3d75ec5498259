//! Bulk jobs and downloads: writing a patient's released record out as files — the whole
//! record as one FHIR Bundle, a zip of NDJSON with a readable summary, and (later) Bulk
//! Data `$export` jobs. It only writes what `read::Reader` hands it (the policy's released
//! record); it never fetches data itself, never decides who may see what, and knows
//! nothing of HTTP.

pub mod download;
pub mod readable;
pub mod summary;
