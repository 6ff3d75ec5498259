//! The per-client-IP rate limit in front of `/login`, `/register`, `/enroll`, `/token` and
//! `/authorize` (see [`crate::auth::throttle`]): over the limit, 429 with `Retry-After` — an
//! OAuth error JSON at `/token`, an HTML page elsewhere — before the handler runs. Limits
//! per account and per app are checked by the handlers, which know those names.

use super::pages::PageError;
use super::ApiState;
use crate::auth::oauth::OAuthError;
use crate::auth::throttle::{Endpoint, Limited};
use axum::extract::{ConnectInfo, Request};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

/// The 429 answer of a limited endpoint.
pub fn refusal(endpoint: Endpoint, limited: Limited) -> Response {
    match endpoint {
        Endpoint::Token => OAuthError::too_many(limited.retry_after).into_response(),
        _ => PageError::too_many(limited.retry_after).into_response(),
    }
}

pub fn per_ip(state: &ApiState, request: &Request) -> Option<Response> {
    let endpoint = Endpoint::of(request.method().as_str(), request.uri().path())?;
    let ConnectInfo(peer) = request.extensions().get::<ConnectInfo<SocketAddr>>()?;
    let forwarded = request.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let ip = state.throttle.client_ip(peer.ip(), forwarded);
    let limited = state.throttle.check_ip(endpoint, ip).err()?;
    tracing::warn!(endpoint = ?endpoint, "rate limit per client address reached");
    Some(refusal(endpoint, limited))
}
