//! Who is calling, as axum extractors: a handler that takes [`Access`] (a bearer token),
//! [`Staff`] (a staff token) or [`SignedIn`] (a portal session with an account) cannot run
//! without the caller being authenticated — forgetting the check does not compile. They
//! only authenticate; what the caller may see is the reader's and the policy's decision.

use super::error::ApiError;
use super::pages::{see_other, session_cookie, PageError};
use super::ApiState;
use crate::auth::sessions::{Session, COOKIE};
use crate::auth::{Access, AuthError};
use crate::read::ReadError;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The network address the request came from (dev tokens are for loopback peers only); an
/// unknown peer is never loopback.
fn peer(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |ConnectInfo(a)| a.ip())
}

/// A SMART access token (checked on every request against the store's revocation
/// generation — a cached check is used only while it is unchanged — so revocation and
/// termination take effect at once) or, on loopback, a configured demo token.
impl FromRequestParts<Arc<ApiState>> for Access {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<ApiState>) -> Result<Access, ApiError> {
        let header = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        match state.tokens.authenticate(header, peer(parts)) {
            Ok(a) => return Ok(a),
            Err(AuthError::Missing) => return Err(AuthError::Missing.into()),
            Err(AuthError::Invalid) => {}
        }
        let token = header
            .and_then(|h| h.trim().split_once(' '))
            .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        let Some(token) = token else { return Err(AuthError::Invalid.into()) };
        let access = crate::auth::access_from_token(&state.oauth.tokens, token)
            .await
            .map_err(|e| ApiError::Read(ReadError::Store(e)))?;
        access.ok_or(ApiError::Auth(AuthError::Invalid))
    }
}

/// A staff member's configured token (the HIM endpoints).
pub struct Staff(pub Access);

impl FromRequestParts<Arc<ApiState>> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<ApiState>) -> Result<Staff, ApiError> {
        let header = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let access = state.tokens.authenticate(header, peer(parts))?;
        if !access.is_staff() {
            return Err(ApiError::Him(crate::him::HimError::NotStaff));
        }
        Ok(Staff(access))
    }
}

/// A portal visitor signed in to an account. Without one the page answers with the sign-in
/// page (and a stale cookie is removed).
pub struct SignedIn {
    pub jar: CookieJar,
    pub session: Session,
    pub account: String,
}

impl FromRequestParts<Arc<ApiState>> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<ApiState>) -> Result<SignedIn, Response> {
        let jar = match CookieJar::from_request_parts(parts, state).await {
            Ok(jar) => jar,
            Err(never) => match never {},
        };
        let Some(cookie) = jar.get(COOKIE).map(|c| c.value().to_string()) else {
            return Err(see_other("/login"));
        };
        match state.sessions.load(&cookie).await {
            Ok(Some(session)) => match session.account_id.clone() {
                Some(account) => Ok(SignedIn { jar, session, account }),
                None => Err((jar, see_other("/login")).into_response()),
            },
            // An anonymous visitor's cookie has no row: plain sign-in.
            Ok(None) if crate::auth::sessions::is_anonymous(&cookie) => Err((jar, see_other("/login")).into_response()),
            Ok(None) => {
                Err((jar.remove(session_cookie(state, String::new())), see_other("/login?signed_out=1"))
                    .into_response())
            }
            Err(e) => {
                tracing::error!(error = %e, "session store failed on a signed-in page");
                Err(PageError::unavailable().into_response())
            }
        }
    }
}
