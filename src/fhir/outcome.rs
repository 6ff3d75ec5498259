//! OperationOutcome writing: the one shape every FHIR error and warning takes, built with the
//! typed model (`fhir::model`), so a severity or issue code outside FHIR's value sets does not
//! compile.

use super::model::codes::{IssueSeverity, IssueType};
use super::model::resources::{OperationOutcome, OperationOutcomeIssue};
use super::model::{finish, BuilderError};
use serde_json::Value;

/// One issue of an OperationOutcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub severity: IssueSeverity,
    pub code: IssueType,
    pub diagnostics: String,
    /// Where the issue is (`issue.expression`), when it is about one place.
    pub expression: Option<String>,
}

impl Issue {
    pub fn error(code: IssueType, diagnostics: impl Into<String>) -> Self {
        Issue { severity: IssueSeverity::Error, code, diagnostics: diagnostics.into(), expression: None }
    }
    pub fn information(code: IssueType, diagnostics: impl Into<String>) -> Self {
        Issue { severity: IssueSeverity::Information, code, diagnostics: diagnostics.into(), expression: None }
    }
    pub fn warning(code: IssueType, diagnostics: impl Into<String>) -> Self {
        Issue { severity: IssueSeverity::Warning, code, diagnostics: diagnostics.into(), expression: None }
    }
    /// The same issue, about `expression`.
    #[must_use]
    pub fn at(mut self, expression: impl Into<String>) -> Self {
        self.expression = Some(expression.into());
        self
    }
    fn typed(&self) -> Result<OperationOutcomeIssue, BuilderError> {
        let issue = OperationOutcomeIssue::builder()
            .severity(self.severity)
            .code(self.code)
            .diagnostics(self.diagnostics.clone());
        match &self.expression {
            Some(e) => issue.expression(vec![Some(e.clone())]).build(),
            None => issue.build(),
        }
    }
}

fn typed(id: Option<&str>, issues: &[Issue]) -> Result<OperationOutcome, BuilderError> {
    let issue = issues.iter().map(|i| i.typed().map(Some)).collect::<Result<Vec<_>, _>>()?;
    let outcome = OperationOutcome::builder().issue(issue);
    match id {
        Some(id) => outcome.id(id.to_string()).build(),
        None => outcome.build(),
    }
}

/// An OperationOutcome resource holding `issues`.
pub fn operation_outcome(issues: &[Issue]) -> Value {
    finish(typed(None, issues))
}

/// An OperationOutcome resource with an id (one carried in a Bundle or an NDJSON file).
pub fn operation_outcome_with_id(id: &str, issues: &[Issue]) -> Value {
    finish(typed(Some(id), issues))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outcomes_are_what_the_gateway_wrote_as_json_before_and_read_back_typed() {
        let issues = [
            Issue::warning(IssueType::Incomplete, "Results from Lab may be missing: the system timed out."),
            Issue::information(IssueType::Informational, "Some information may not be shown."),
        ];
        let served = operation_outcome(&issues);
        // The json! the gateway wrote before the typed model.
        let before = json!({
            "resourceType": "OperationOutcome",
            "issue": [
                {"severity": "warning", "code": "incomplete", "diagnostics": "Results from Lab may be missing: the system timed out."},
                {"severity": "information", "code": "informational", "diagnostics": "Some information may not be shown."}
            ]
        });
        assert_eq!(served, before);
        assert_eq!(serde_json::to_string(&served).unwrap(), serde_json::to_string(&before).unwrap(), "same order too");
        let mut with_id = before.clone();
        with_id["id"] = json!("warnings");
        assert_eq!(operation_outcome_with_id("warnings", &issues), with_id);

        let line = operation_outcome_with_id("x", &[Issue::error(IssueType::NotFound, "gone").at("Patient/pt-1")]);
        assert_eq!(
            line,
            json!({"resourceType": "OperationOutcome", "id": "x", "issue": [
                {"severity": "error", "code": "not-found", "diagnostics": "gone", "expression": ["Patient/pt-1"]}
            ]})
        );
        for v in [served, line] {
            let back: OperationOutcome = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(serde_json::to_value(back).unwrap(), v, "round-trips through the R4B model");
        }
    }
}
