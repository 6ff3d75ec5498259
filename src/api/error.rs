//! The one place errors become HTTP for the FHIR API: every failure is an
//! OperationOutcome with the right status, and its text never reveals patient data.

use crate::auth::AuthError;
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
}

impl ApiError {
    fn status_and_issue(&self) -> (StatusCode, Issue) {
        let text = self.to_string();
        match self {
            ApiError::Auth(_) => (StatusCode::UNAUTHORIZED, Issue::error("login", text)),
            ApiError::Read(ReadError::NotFound) => (StatusCode::NOT_FOUND, Issue::error("not-found", text)),
            ApiError::Read(ReadError::UnsupportedType(_)) => {
                (StatusCode::NOT_FOUND, Issue::error("not-supported", text))
            }
            ApiError::Read(ReadError::Search(_) | ReadError::BadRequest(_)) => {
                (StatusCode::BAD_REQUEST, Issue::error("invalid", text))
            }
            ApiError::Read(ReadError::Forbidden(_)) => (StatusCode::FORBIDDEN, Issue::error("forbidden", text)),
            ApiError::Read(ReadError::Store(_)) => (StatusCode::INTERNAL_SERVER_ERROR, Issue::error("exception", text)),
            ApiError::NotAcceptable(_) => (StatusCode::NOT_ACCEPTABLE, Issue::error("not-supported", text)),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, Issue::error("not-supported", text)),
            ApiError::NoRoute => (StatusCode::NOT_FOUND, Issue::error("not-found", text)),
            ApiError::Him(crate::him::HimError::NotStaff) => (StatusCode::FORBIDDEN, Issue::error("forbidden", text)),
            ApiError::Him(crate::him::HimError::UnknownPatient(_) | crate::him::HimError::UnknownResource(_)) => {
                (StatusCode::NOT_FOUND, Issue::error("not-found", text))
            }
            ApiError::Him(crate::him::HimError::Invalid(_)) | ApiError::BadInput(_) => {
                (StatusCode::BAD_REQUEST, Issue::error("invalid", text))
            }
            ApiError::Him(crate::him::HimError::Store(_)) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Issue::error("exception", "the gateway's store is unavailable".to_string()),
            ),
            ApiError::InsufficientScope(_) => (StatusCode::FORBIDDEN, Issue::error("forbidden", text)),
            ApiError::QueryTooLong(_) => (StatusCode::URI_TOO_LONG, Issue::error("too-long", text)),
            ApiError::Download(_) => (StatusCode::INTERNAL_SERVER_ERROR, Issue::error("exception", text)),
        }
    }
}

/// `e` and every error below it, for the log.
pub fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, issue) = self.status_and_issue();
        if status.is_server_error() {
            // The answer says only "unavailable"; the log says why.
            tracing::error!(status = status.as_u16(), error = %causes(&self), "request failed");
        }
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
