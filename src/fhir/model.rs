//! The typed FHIR models the gateway writes its own resources with: fhir-sdk's R4B models and
//! builders (R4B is wire-compatible with R4 for the resources written here: the
//! CapabilityStatement, OperationOutcomes, Bundle shells and AuditEvents). Only what the
//! gateway authors goes through them; source resources stay `serde_json::Value` and are never
//! parsed into a typed model (it would drop elements it does not know).

use serde::Serialize;
use serde_json::Value;

pub use fhir_sdk::r4b::{codes, resources, types};
pub use fhir_sdk::{BuilderError, DateTime, Instant};

/// A built resource (or element) as JSON.
///
/// A builder fails only when a required element was left unset, which a call site does
/// always or never (the unit tests build every one); serializing fails only for a date
/// outside the years 1000–9999, which the gateway never writes. So neither can fail at run
/// time, and an answer is not held back for it.
#[allow(clippy::expect_used)]
pub fn finish<T: Serialize>(built: Result<T, BuilderError>) -> Value {
    let typed = built.expect("every required element is set");
    serde_json::to_value(typed).expect("the gateway's own resources serialize")
}

/// A point in time as a FHIR `instant`.
pub fn instant(t: chrono::DateTime<chrono::Utc>) -> Instant {
    let nanos = i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0);
    Instant(fhir_sdk::time::OffsetDateTime::UNIX_EPOCH + fhir_sdk::time::Duration::new(t.timestamp(), nanos))
}
