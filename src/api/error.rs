//! The one place errors become HTTP for the FHIR API: every failure is an
//! OperationOutcome with the right status, and its text never reveals patient data.

use crate::auth::AuthError;
use crate::fhir::model::codes::IssueType;
use crate::fhir::outcome::{operation_outcome, Issue};
use crate::read::ReadError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{0}")]
    NotAcceptable(String),
    #[error("this server is read-only: {0} is not allowed")]
    MethodNotAllowed(String),
    #[error("no such endpoint")]
    NoRoute,
    #[error("the query string is longer than {0} bytes")]
    QueryTooLong(usize),
    #[error(transparent)]
    Him(#[from] crate::him::HimError),
    #[error("{0}")]
    BadInput(String),
    #[error("the access token's scopes do not allow this ({0})")]
    InsufficientScope(String),
    #[error("the download could not be written")]
    Download(#[source] crate::export::download::DownloadError),
    #[error("an access log entry could not be written as an AuditEvent")]
    AuditEntry(#[source] crate::audit::AuditEventError),
}

impl ApiError {
    fn status_and_issue(&self) -> (StatusCode, Issue) {
        let text = self.to_string();
        match self {
            ApiError::Auth(_) => (StatusCode::UNAUTHORIZED, Issue::error(IssueType::Login, text)),
            ApiError::Read(ReadError::NotFound) => (StatusCode::NOT_FOUND, Issue::error(IssueType::NotFound, text)),
            ApiError::Read(ReadError::UnsupportedType(_)) => {
                (StatusCode::NOT_FOUND, Issue::error(IssueType::NotSupported, text))
            }
            ApiError::Read(ReadError::Search(_) | ReadError::BadRequest(_)) => {
                (StatusCode::BAD_REQUEST, Issue::error(IssueType::Invalid, text))
            }
            ApiError::Read(ReadError::Forbidden(_)) => {
                (StatusCode::FORBIDDEN, Issue::error(IssueType::Forbidden, text))
            }
            ApiError::Read(ReadError::Store(_)) => {
                (StatusCode::INTERNAL_SERVER_ERROR, Issue::error(IssueType::Exception, text))
            }
            ApiError::NotAcceptable(_) => (StatusCode::NOT_ACCEPTABLE, Issue::error(IssueType::NotSupported, text)),
            ApiError::MethodNotAllowed(_) => {
                (StatusCode::METHOD_NOT_ALLOWED, Issue::error(IssueType::NotSupported, text))
            }
            ApiError::NoRoute => (StatusCode::NOT_FOUND, Issue::error(IssueType::NotFound, text)),
            ApiError::Him(crate::him::HimError::NotStaff) => {
                (StatusCode::FORBIDDEN, Issue::error(IssueType::Forbidden, text))
            }
            ApiError::Him(crate::him::HimError::UnknownPatient(_) | crate::him::HimError::UnknownResource(_)) => {
                (StatusCode::NOT_FOUND, Issue::error(IssueType::NotFound, text))
            }
            ApiError::Him(crate::him::HimError::Invalid(_)) | ApiError::BadInput(_) => {
                (StatusCode::BAD_REQUEST, Issue::error(IssueType::Invalid, text))
            }
            ApiError::Him(crate::him::HimError::Store(_)) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Issue::error(IssueType::Exception, "the gateway's store is unavailable".to_string()),
            ),
            ApiError::InsufficientScope(_) => (StatusCode::FORBIDDEN, Issue::error(IssueType::Forbidden, text)),
            ApiError::QueryTooLong(_) => (StatusCode::URI_TOO_LONG, Issue::error(IssueType::TooLong, text)),
            ApiError::Download(_) | ApiError::AuditEntry(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, Issue::error(IssueType::Exception, text))
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, issue) = self.status_and_issue();
        let mut response = super::fhir_json(status, &operation_outcome(&[issue]));
        if matches!(self, ApiError::Auth(_)) {
            let challenge = match self {
                ApiError::Auth(AuthError::Invalid) => "Bearer realm=\"portico\", error=\"invalid_token\"",
                _ => "Bearer realm=\"portico\"",
            };
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        if matches!(self, ApiError::MethodNotAllowed(_)) {
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET"));
        }
        response
    }
}
