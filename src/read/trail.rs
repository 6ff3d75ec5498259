//! The access log's side of the read path: what a request is (the path asked for, where it
//! came from, what the data is for) and the one mapping from a read's result to the entry's
//! outcome. The reader writes the entry before its answer goes out; when the log cannot be
//! written there is no answer (no unaudited data access). It never decides access.

use super::ReadError;
use crate::audit::{AuditEntry, AuditLog};
use crate::auth::Access;
use std::net::IpAddr;

/// What a whole record is read for: the access log's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// A record page in the portal.
    Page,
    /// A whole-record download (zip or JSON, at once or prepared as a job).
    Download,
    /// One patient of a Bulk Data export; logged once per patient and job, however often
    /// a unit is redone.
    Export,
    /// A download prepared as a job: nothing goes out yet, so nothing is logged now; the
    /// file going out later is the logged access ([`super::Reader::hand_over`]).
    Prepare,
    /// A snapshot taken for a share link (its later openings are logged by `share`).
    Share,
}

impl Use {
    pub(super) fn action(self) -> &'static str {
        match self {
            Use::Page => "page",
            Use::Download => "download",
            Use::Export => "export",
            Use::Prepare => "prepare",
            Use::Share => "share",
        }
    }
}

/// A request as the access log records it besides the viewer: the path asked for (gateway
/// ids only) and the network address it came from.
#[derive(Debug, Clone)]
pub struct Trail {
    what: String,
    from: Option<IpAddr>,
}

impl Trail {
    pub fn new(what: impl Into<String>, from: Option<IpAddr>) -> Trail {
        Trail { what: what.into(), from }
    }

    /// A request made by the gateway itself (an export worker): no network address.
    pub fn internal(what: impl Into<String>) -> Trail {
        Trail { what: what.into(), from: None }
    }
}

/// The entry's outcome for a read's result: the one place read errors become outcomes.
pub(super) fn outcome<T>(result: &Result<T, ReadError>) -> &'static str {
    match result {
        Ok(_) => "success",
        Err(e) => refusal(e),
    }
}

/// The entry's outcome for a read that failed with `e`.
pub(super) fn refusal(e: &ReadError) -> &'static str {
    match e {
        ReadError::NotFound => "not-found",
        ReadError::Forbidden(_) | ReadError::InsufficientScope(_) => "denied",
        _ => "error",
    }
}

/// Writes the entry for `result`, then passes it on; a failed write is the answer instead.
/// `once`: skip the entry when the same patient, action and path are already logged.
pub(super) async fn logged<T>(
    log: &AuditLog,
    access: &Access,
    trail: &Trail,
    action: &str,
    patient_id: Option<String>,
    once: bool,
    result: Result<T, ReadError>,
) -> Result<T, ReadError> {
    if once {
        if let Some(p) = &patient_id {
            if log.has_entry(p, action, &trail.what).await? {
                return result;
            }
        }
    }
    write(log, access, trail, action, patient_id, outcome(&result)).await?;
    result
}

/// Writes one entry; a failed write is a store error (and the answer is refused).
pub(super) async fn write(
    log: &AuditLog,
    access: &Access,
    trail: &Trail,
    action: &str,
    patient_id: Option<String>,
    outcome: &str,
) -> Result<(), ReadError> {
    let entry = AuditEntry::of(access, action, trail.what.clone(), patient_id, outcome, trail.from);
    log.record(&entry).await.map(|_| ()).map_err(|e| unlogged(e, action, 1))
}

/// The answer to an access whose entries could not be written: a store error, logged.
fn unlogged(e: crate::store::StoreError, action: &str, entries: usize) -> ReadError {
    tracing::error!(error = %e, action, entries, "audit log write failed; refusing the answer");
    ReadError::Store(e)
}

/// Writes one entry per patient in `patients`, all queued together; any failed write is a
/// store error (and the answer is refused).
pub(super) async fn write_all(
    log: &AuditLog,
    access: &Access,
    trail: &Trail,
    action: &str,
    patients: &[String],
    outcome: &str,
) -> Result<(), ReadError> {
    let entries = patients
        .iter()
        .map(|p| AuditEntry::of(access, action, trail.what.clone(), Some(p.clone()), outcome, trail.from))
        .collect();
    log.record_all(entries).await.map(|_| ()).map_err(|e| unlogged(e, action, patients.len()))
}
