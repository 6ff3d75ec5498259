//! Privacy policy: viewers, minors and proxies, holds, exclusions, partners and 42 CFR
//! Part 2 — one decision for every output path, over the labels the labeling service
//! (`crate::label`) put on the record, and its explanation for HIM staff. Only this module can build a [`Released`] record, and every
//! renderer accepts nothing else (DESIGN.md promise 1). It knows nothing of HTTP.

pub mod config;
mod decide;
pub mod holds;
pub mod minors;
mod released;
pub mod viewer;

pub use config::{PolicyConfig, PolicyError};
pub use decide::{label_codes, Decision, Denied, Explanation, Policy, PolicyContext, TYPE_NOT_CONFIGURED};
pub use released::Released;
pub use viewer::{Interaction, Role, Viewer, ViewerError};
