//! The one place errors become HTTP for the FHIR API (`/fhir`, its `$export` routes and the
//! staff `/admin` endpoints): every failure is an OperationOutcome with the right status,
//! and its text never reveals patient data. The OAuth endpoints answer RFC 6749 JSON
//! (`impl IntoResponse for OAuthError` in `oauth.rs`), pages the HTML error page
//! (`pages.rs`).

use crate::auth::AuthError;
use crate::auth::oauth::ClientError;
use crate::causes::causes;
use crate::export::ExportError;
use crate::fhir::model::codes::IssueType;
use crate::fhir::outcome::{Issue, operation_outcome};
use crate::read::ReadError;
use axum::http::{HeaderValue, StatusCode, header};
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
    /// A viewer spec or scopes given by staff that do not parse.
    #[error(transparent)]
    Viewer(#[from] crate::policy::ViewerError),
    #[error("the access token's scopes do not allow this ({0})")]
    InsufficientScope(String),
    #[error("the download could not be written")]
    Download(#[source] crate::export::download::DownloadError),
    /// An AuditEvent search that does not parse.
    #[error(transparent)]
    AuditQuery(#[from] crate::audit::AuditQueryError),
    /// A Bulk Data `$export` route's error; `retry_after` (seconds) goes out as
    /// `Retry-After` when the gateway is busy (429) or unavailable (503).
    #[error("{error}")]
    Export { error: ExportError, retry_after: u64 },
    /// The staff client registry (`/admin/clients`).
    #[error(transparent)]
    Clients(#[from] ClientError),
    #[error("an access log entry could not be written as an AuditEvent")]
    AuditEntry(#[source] crate::audit::AuditEventError),
    /// A correction request or decision refused (`/admin/corrections`).
    #[error(transparent)]
    Rights(#[from] crate::rights::RightsError),
}

/// What a request whose text the database refused is told (never the text, nor the database's words).
pub const BAD_TEXT: &str = "the request holds a character that cannot be stored (a NUL or another control character)";

impl ApiError {
    /// The store's error under this one, if it is one.
    fn store_error(&self) -> Option<&crate::store::StoreError> {
        match self {
            ApiError::Read(ReadError::Store(e))
            | ApiError::Him(crate::him::HimError::Store(e))
            | ApiError::Rights(crate::rights::RightsError::Store(e))
            | ApiError::Clients(ClientError::Store(e))
            | ApiError::Export { error: ExportError::Store(e), .. } => Some(e),
            _ => None,
        }
    }

    fn status_and_issue(&self) -> (StatusCode, Issue) {
        if self.store_error().is_some_and(crate::store::StoreError::is_bad_text) {
            // Text the database refused (a backstop of the checks at the door, `text`):
            // bad input, not a failure of the gateway.
            return (StatusCode::BAD_REQUEST, Issue::error(IssueType::Invalid, BAD_TEXT.to_string()));
        }
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
            ApiError::Read(ReadError::SourceUnavailable) => {
                (StatusCode::BAD_GATEWAY, Issue::error(IssueType::Transient, text))
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
            ApiError::Him(crate::him::HimError::Invalid(_))
            | ApiError::BadInput(_)
            | ApiError::Viewer(_)
            | ApiError::AuditQuery(_) => (StatusCode::BAD_REQUEST, Issue::error(IssueType::Invalid, text)),
            ApiError::Him(crate::him::HimError::Store(_)) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Issue::error(IssueType::Exception, "the gateway's store is unavailable".to_string()),
            ),
            ApiError::InsufficientScope(_) | ApiError::Read(ReadError::InsufficientScope(_)) => {
                (StatusCode::FORBIDDEN, Issue::error(IssueType::Forbidden, text))
            }
            ApiError::QueryTooLong(_) => (StatusCode::URI_TOO_LONG, Issue::error(IssueType::TooLong, text)),
            ApiError::Download(_) | ApiError::AuditEntry(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, Issue::error(IssueType::Exception, text))
            }
            ApiError::Export { error, .. } => match error {
                ExportError::BadRequest(_) => (StatusCode::BAD_REQUEST, Issue::error(IssueType::Invalid, text)),
                ExportError::Forbidden(_) => (StatusCode::FORBIDDEN, Issue::error(IssueType::Forbidden, text)),
                ExportError::NotFound(_) => (StatusCode::NOT_FOUND, Issue::error(IssueType::NotFound, text)),
                ExportError::TooMany(_) => (StatusCode::TOO_MANY_REQUESTS, Issue::error(IssueType::Throttled, text)),
                ExportError::Unavailable(_) => {
                    (StatusCode::SERVICE_UNAVAILABLE, Issue::error(IssueType::Transient, text))
                }
                ExportError::Store(_) | ExportError::Files(_) => {
                    (StatusCode::INTERNAL_SERVER_ERROR, Issue::error(IssueType::Exception, text))
                }
            },
            ApiError::Clients(
                ClientError::Invalid { .. }
                | ClientError::Registration { .. }
                | ClientError::Jwks { .. }
                | ClientError::Secret { .. },
            ) => (StatusCode::BAD_REQUEST, Issue::error(IssueType::Invalid, text)),
            ApiError::Rights(e) => {
                use crate::rights::RightsError as R;
                match e {
                    R::NotFound | R::UnknownItem => (StatusCode::NOT_FOUND, Issue::error(IssueType::NotFound, text)),
                    R::Invalid(_) => (StatusCode::BAD_REQUEST, Issue::error(IssueType::Invalid, text)),
                    R::Conflict(_) => (StatusCode::CONFLICT, Issue::error(IssueType::BusinessRule, text)),
                    R::TooMany => (StatusCode::TOO_MANY_REQUESTS, Issue::error(IssueType::Throttled, text)),
                    R::NotStaff => (StatusCode::FORBIDDEN, Issue::error(IssueType::Forbidden, text)),
                    R::Store(_) => {
                        tracing::error!(error = %text, "correction requests");
                        (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            Issue::error(IssueType::Exception, "the gateway's store is unavailable".to_string()),
                        )
                    }
                }
            }
            ApiError::Clients(ClientError::Unknown(_)) => {
                (StatusCode::NOT_FOUND, Issue::error(IssueType::NotFound, text))
            }
            ApiError::Clients(ClientError::Rotation(_)) => {
                (StatusCode::CONFLICT, Issue::error(IssueType::Invalid, text))
            }
            ApiError::Clients(
                ClientError::Store(_)
                | ClientError::Signing(_)
                | ClientError::Keys(_)
                | ClientError::Hash(_)
                | ClientError::HashTask(_),
            ) => {
                tracing::error!(error = %text, "client registry");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Issue::error(IssueType::Exception, "the gateway's store is unavailable".to_string()),
                )
            }
        }
    }
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
        if let ApiError::Export { error: ExportError::TooMany(_) | ExportError::Unavailable(_), retry_after } = self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        response
    }
}
