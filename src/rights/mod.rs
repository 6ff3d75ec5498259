//! Patients' rights beyond reading the record: requests to amend it (45 CFR 164.526,
//! `corrections`, written as FHIR Task and Communication in `correction_fhir`) and the
//! accounting of disclosures (45 CFR 164.528, `disclosures`, read from the access log).
//! It owns the `correction_requests` table and the rules of the amendment deadline; it
//! never edits source data (an accepted correction is recorded and shown beside its item),
//! never reads a record itself (callers hand it what the reader released to the viewer) and
//! never decides who may see a record.

pub mod correction_fhir;
pub mod corrections;
pub mod disclosures;

pub use corrections::{Correction, Corrections, NewRequest};

/// Why a correction request or decision is refused; the texts carry no patient data.
#[derive(Debug, thiserror::Error)]
pub enum RightsError {
    /// No such request, or one the caller may not see (the same answer either way).
    #[error("no such correction request")]
    NotFound,
    /// The item named is not one the viewer can see (the same answer as a made-up one).
    #[error("no such item in this record")]
    UnknownItem,
    #[error("{0}")]
    Invalid(String),
    /// The request is not in a state that allows this (already decided, extended …).
    #[error("{0}")]
    Conflict(String),
    /// The requester already has as many requests waiting as are accepted at once.
    #[error("{} requests are already waiting for an answer", corrections::MAX_WAITING)]
    TooMany,
    #[error("this is for staff")]
    NotStaff,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl From<sqlx::Error> for RightsError {
    fn from(e: sqlx::Error) -> RightsError {
        RightsError::Store(crate::store::StoreError::from(e))
    }
}
