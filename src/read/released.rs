//! What the reader hands to renderers: one page of matches, or a patient's whole released
//! record. Their fields are private and only the reader makes them (from what the policy
//! released), so a renderer cannot be handed a record that did not go through the policy.
//! Tests build them with the `#[cfg(test)]` constructors.

use crate::aggregate::MissingSource;
use crate::fhir::outcome::Issue;
use serde_json::Value;

/// One page of matches, the resources `_include`/`_revinclude` added to it (released ones
/// only), and what the caller should be told (warnings about missing sources, ignored
/// parameters, and the policy's notices).
#[derive(Debug)]
pub struct Matches {
    pub(super) resources: Vec<Value>,
    pub(super) included: Vec<Value>,
    pub(super) total: usize,
    pub(super) next_cursor: Option<String>,
    pub(super) warnings: Vec<Issue>,
}

impl Matches {
    /// The page's resources, in record order.
    pub fn resources(&self) -> &[Value] {
        &self.resources
    }

    /// The resources included with this page (`_include`, `_revinclude`), in record order.
    pub fn included(&self) -> &[Value] {
        &self.included
    }

    /// How many resources match in all (what the viewer may see, not what the sources hold).
    pub fn total(&self) -> usize {
        self.total
    }

    /// The cursor of the next page, if there is one.
    pub fn next_cursor(&self) -> Option<&str> {
        self.next_cursor.as_deref()
    }

    pub fn warnings(&self) -> &[Issue] {
        &self.warnings
    }

    /// The page's resources, taken out.
    pub fn into_resources(self) -> Vec<Value> {
        self.resources
    }

    /// The page's resources and the included ones, taken out.
    pub fn into_parts(self) -> (Vec<Value>, Vec<Value>) {
        (self.resources, self.included)
    }
}

/// A patient's whole released record at once (portal pages, downloads, exports): the
/// resources in record order, the sources missing from it, and the notices it carries.
#[derive(Debug, Clone)]
pub struct WholeRecord {
    pub(super) patient_id: String,
    pub(super) resources: Vec<Value>,
    pub(super) missing: Vec<MissingSource>,
    /// The policy's notices (the withheld-notice for patient-facing viewers).
    pub(super) notices: Vec<Issue>,
    /// The attachments of `resources` the gateway serves (see `binary`).
    pub(super) documents: Vec<super::ReleasedAttachment>,
}

impl WholeRecord {
    /// The record's gateway patient id.
    pub fn patient_id(&self) -> &str {
        &self.patient_id
    }

    /// Every released resource, in record order.
    pub fn resources(&self) -> &[Value] {
        &self.resources
    }

    /// The sources that did not answer, as this viewer may be told of them.
    pub fn missing(&self) -> &[MissingSource] {
        &self.missing
    }

    /// The policy's notices (the withheld-notice for patient-facing viewers).
    pub fn notices(&self) -> &[Issue] {
        &self.notices
    }

    /// A record as if released, for renderers' unit tests.
    #[cfg(test)]
    pub fn for_test(
        patient_id: &str,
        resources: Vec<Value>,
        missing: Vec<MissingSource>,
        notices: Vec<Issue>,
    ) -> WholeRecord {
        WholeRecord { patient_id: patient_id.to_string(), resources, missing, notices, documents: Vec::new() }
    }

    /// The same record with `documents` released, for renderers' unit tests.
    #[cfg(test)]
    pub fn with_documents(mut self, documents: Vec<super::ReleasedAttachment>) -> WholeRecord {
        self.documents = documents;
        self
    }

    /// Drops the missing sources, for renderers' unit tests.
    #[cfg(test)]
    pub fn without_missing(mut self) -> WholeRecord {
        self.missing.clear();
        self
    }
}
