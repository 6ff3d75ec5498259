//! The per-client-IP rate limit in front of `/login`, `/register`, `/enroll`, `/token` and
//! `/authorize` (see [`crate::auth::throttle`]): over the limit, 429 with `Retry-After` — an
//! OAuth error JSON at `/token`, an HTML page elsewhere — before the handler runs. Limits
//! per account and per app are checked by the handlers, which know those names.

use super::pages::PageError;
use super::ApiState;
use crate::auth::oauth::OAuthError;
use crate::auth::throttle::{Endpoint, Limited};
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// The 429 answer of a limited endpoint.
pub fn refusal(endpoint: Endpoint, limited: Limited) -> Response {
    match endpoint {
        Endpoint::Token => OAuthError::too_many(limited.retry_after).into_response(),
        _ => PageError::too_many(limited.retry_after).into_response(),
    }
}

pub async fn per_ip(State(state): State<Arc<ApiState>>, request: Request, next: Next) -> Response {
    if let Some(endpoint) = Endpoint::of(request.method().as_str(), request.uri().path()) {
        if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
            let forwarded = request.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
            let ip = state.throttle.client_ip(peer.ip(), forwarded);
            if let Err(limited) = state.throttle.check_ip(endpoint, ip) {
                tracing::warn!(endpoint = ?endpoint, "rate limit per client address reached");
                return refusal(endpoint, limited);
            }
        }
    }
    next.run(request).await
}
