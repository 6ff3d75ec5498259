//! `GET /jwks/sources.json`: the public keys the gateway signs its SMART Backend Services
//! client assertions to sources with, for a source to register as the gateway's JWKS URL.
//! Public halves only (built by `sources::upstream_auth`); an empty set when no source
//! uses Backend Services. Never holds or serves anything private.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::Value;
use std::sync::Arc;

/// Where the JWKS is served.
pub const PATH: &str = "/jwks/sources.json";

pub fn router(jwks: Arc<Value>) -> Router {
    Router::new().route(PATH, get(serve)).with_state(jwks)
}

async fn serve(State(jwks): State<Arc<Value>>) -> Response {
    ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "public, max-age=300")], jwks.to_string())
        .into_response()
}
