//! Who is calling: turns the request's credentials into an [`Access`]. Until SMART
//! authorization lands the only credential is the demo's static dev token
//! (`server.dev_token`, loopback only); without a valid one there is no data access at all.
//! It never reads patient data.

use subtle::ConstantTimeEq;

/// What a caller may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// The loopback-only demo token: every patient, no policy narrowing yet.
    DevToken,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("this endpoint needs a bearer token")]
    Missing,
    #[error("the bearer token is not valid")]
    Invalid,
}

/// Checks an `Authorization` header value against what the gateway accepts.
pub fn authenticate(authorization: Option<&str>, dev_token: Option<&str>) -> Result<Access, AuthError> {
    let header = authorization.ok_or(AuthError::Missing)?;
    let (scheme, token) = header.trim().split_once(' ').ok_or(AuthError::Invalid)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Invalid);
    }
    match dev_token {
        Some(expected) if bool::from(token.trim().as_bytes().ct_eq(expected.as_bytes())) => Ok(Access::DevToken),
        _ => Err(AuthError::Invalid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_dev_token_passes() {
        let t = Some("0123456789abcdef-demo");
        assert_eq!(authenticate(Some("Bearer 0123456789abcdef-demo"), t), Ok(Access::DevToken));
        assert_eq!(authenticate(Some("bearer 0123456789abcdef-demo"), t), Ok(Access::DevToken));
        assert_eq!(authenticate(None, t), Err(AuthError::Missing));
        assert_eq!(authenticate(Some("Bearer 0123456789abcdef-dem"), t), Err(AuthError::Invalid));
        assert_eq!(authenticate(Some("Basic 0123456789abcdef-demo"), t), Err(AuthError::Invalid));
        assert_eq!(
            authenticate(Some("Bearer 0123456789abcdef-demo"), None),
            Err(AuthError::Invalid),
            "no token configured: nothing passes"
        );
    }
}
