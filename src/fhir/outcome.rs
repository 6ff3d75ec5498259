//! OperationOutcome writing: the one shape every FHIR error and warning takes.

use serde_json::{json, Value};

/// One issue of an OperationOutcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub severity: &'static str,
    pub code: &'static str,
    pub diagnostics: String,
}

impl Issue {
    pub fn error(code: &'static str, diagnostics: impl Into<String>) -> Self {
        Issue { severity: "error", code, diagnostics: diagnostics.into() }
    }
    pub fn information(code: &'static str, diagnostics: impl Into<String>) -> Self {
        Issue { severity: "information", code, diagnostics: diagnostics.into() }
    }
    pub fn warning(code: &'static str, diagnostics: impl Into<String>) -> Self {
        Issue { severity: "warning", code, diagnostics: diagnostics.into() }
    }
    pub fn to_json(&self) -> Value {
        json!({"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics})
    }
}

/// An OperationOutcome resource holding `issues`.
pub fn operation_outcome(issues: &[Issue]) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": issues.iter().map(Issue::to_json).collect::<Vec<_>>()
    })
}
