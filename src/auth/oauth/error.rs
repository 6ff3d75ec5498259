//! What can go wrong at the OAuth endpoints, as RFC 6749 §5.2 error codes with a plain
//! description, and what can go wrong setting the service up. It owns no HTTP: the api
//! layer turns an [`OAuthError`] into a status and JSON. A description must never carry a
//! token, a secret, an assertion or a database message.

use crate::store::StoreError;

/// RFC 6749 §5.2 (and RFC 7009 / 7662) error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    UnsupportedTokenType,
    ServerError,
    /// Too many requests (a rate limit or the hashing pool): 429 with `Retry-After`.
    TemporarilyUnavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

/// An error answer of the token, introspection or revocation endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
    /// The client tried HTTP Basic authentication: an `invalid_client` answer is then a 401
    /// with `WWW-Authenticate: Basic`.
    pub basic_attempted: bool,
    /// Seconds the client should wait before trying again (`Retry-After`, with a 429).
    pub retry_after: Option<u64>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> OAuthError {
        OAuthError { code, description: description.into(), basic_attempted: false, retry_after: None }
    }
    pub fn invalid_request(d: impl Into<String>) -> OAuthError {
        Self::new(ErrorCode::InvalidRequest, d)
    }
    pub fn invalid_client(d: impl Into<String>) -> OAuthError {
        Self::new(ErrorCode::InvalidClient, d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> OAuthError {
        Self::new(ErrorCode::InvalidGrant, d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> OAuthError {
        Self::new(ErrorCode::InvalidScope, d)
    }
    pub fn unauthorized_client(d: impl Into<String>) -> OAuthError {
        Self::new(ErrorCode::UnauthorizedClient, d)
    }
    /// Too many requests: answered 429 with `Retry-After: seconds`.
    pub fn too_many(seconds: u64) -> OAuthError {
        OAuthError {
            retry_after: Some(seconds.max(1)),
            ..Self::new(ErrorCode::TemporarilyUnavailable, "too many requests; try again later")
        }
    }
    /// A failure of the gateway itself; the cause is logged, never returned.
    pub fn server(cause: &dyn std::fmt::Display) -> OAuthError {
        tracing::error!(error = %cause, "oauth: internal error");
        Self::new(ErrorCode::ServerError, "the authorization server could not complete the request")
    }

    /// The HTTP status RFC 6749 §5.2 calls for.
    pub fn status(&self) -> u16 {
        match self.code {
            ErrorCode::InvalidClient if self.basic_attempted => 401,
            ErrorCode::ServerError => 500,
            ErrorCode::TemporarilyUnavailable => 429,
            _ => 400,
        }
    }
}

impl From<crate::auth::hashing::Busy> for OAuthError {
    fn from(_: crate::auth::hashing::Busy) -> Self {
        OAuthError::too_many(crate::auth::hashing::Busy::RETRY_AFTER_SECS)
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        if e.is_bad_text() {
            // Text the database refused (a backstop of `Form::parse`): the request's fault.
            return OAuthError::invalid_request("a parameter holds a character that cannot be stored (such as NUL)");
        }
        OAuthError::server(&e)
    }
}

impl From<sqlx::Error> for OAuthError {
    fn from(e: sqlx::Error) -> Self {
        OAuthError::from(StoreError::Query(e))
    }
}

/// Why the clients or tokens service could not be set up or changed (config sync, the
/// admin API and CLI). Messages name the config key or field at fault.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
    /// A kind, redirect URI or scope list that is refused, under its key.
    #[error("{key}: {problem}")]
    Registration { key: String, problem: super::RegistrationError },
    /// A JWKS that is refused, under its key.
    #[error("{key}: {problem}")]
    Jwks { key: String, problem: super::client_keys::JwksError },
    /// A configured client secret that cannot be read.
    #[error("{key}: {problem}")]
    Secret { key: String, problem: crate::config::SecretError },
    /// Hashing a client secret failed.
    #[error("secret: {0}")]
    Hash(#[from] super::crypto::HashError),
    #[error("secret: {0}")]
    HashTask(#[from] tokio::task::JoinError),
    #[error("no client {0}")]
    Unknown(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing key: {0}")]
    Signing(String),
    /// The key-encryption key is missing or does not open a stored key.
    #[error(transparent)]
    Keys(#[from] crate::auth::keyring::KeyringError),
    /// A rotation step that is refused now, and why.
    #[error("key rotation: {0}")]
    Rotation(String),
}

impl ClientError {
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> ClientError {
        ClientError::Invalid { key: key.into(), message: message.into() }
    }
    pub fn registration(key: impl Into<String>, problem: super::RegistrationError) -> ClientError {
        ClientError::Registration { key: key.into(), problem }
    }
}

impl From<sqlx::Error> for ClientError {
    fn from(e: sqlx::Error) -> Self {
        ClientError::Store(StoreError::Query(e))
    }
}
