//! HTTP routers (axum), merged into one by [`router`]: the front door (`/`), the FHIR API and
//! Bulk Data `$export` at `/fhir`, the authorization server (`/authorize`, `/token`,
//! `/introspect`, `/revoke`, `/jwks`, `/.well-known/…`), sign-in and accounts (local and OIDC),
//! the record pages and downloads at `/records`, `/admin` for HIM staff, `/health` and
//! `/metrics`. Handlers are thin: extract, call one domain function, render. Each surface has
//! its own error form: FHIR endpoints answer OperationOutcomes ([`error`], and `export_routes`
//! for `$export`), OAuth endpoints RFC 6749 error JSON (`oauth`), pages an HTML error page
//! (`pages`). CORS (`cors`) opens the FHIR API, `/token`, discovery and the JWKS to the
//! origins of registered apps' redirect URIs.

mod account_routes;
mod admin;
mod authorize_routes;
mod binary_routes;
pub(crate) mod capability;
mod cors;
mod download_job_routes;
mod download_routes;
pub mod error;
mod export_routes;
mod extract;
mod fhir_routes;
mod front;
mod health;
mod home;
mod language;
mod metrics;
mod notice_routes;
mod oauth;
mod oidc_routes;
pub mod pages;
mod pieces;
mod proxy_routes;
mod rate_limit;
mod record_pages;
mod rights_admin;
mod rights_pages;
mod share_pages;
mod share_routes;
pub mod source_jwks;
mod source_metrics;
mod stored_file;
pub mod text;
mod well_known;

pub use well_known::issuer as public_origin;

use crate::read::Reader;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;
use std::sync::Arc;

/// What handlers share.
pub struct ApiState {
    pub reader: Reader,
    pub metrics: metrics::Metrics,
    pub audit: crate::audit::AuditLog,
    pub oauth: crate::auth::oauth::OAuth,
    pub accounts: Arc<crate::auth::accounts::Accounts>,
    pub sessions: crate::auth::sessions::Sessions,
    pub grants: crate::auth::grants::Grants,
    /// Session cookies carry `Secure` unless the gateway is served over plain HTTP on loopback.
    pub secure_cookies: bool,
    /// The OIDC sign-in button's label, when a provider is configured.
    pub oidc_label: Option<String>,
    /// Sign-in through that provider (`/login/oidc`), when configured.
    pub oidc: Option<Arc<crate::auth::oidc::OidcLogin>>,
    pub min_password_length: usize,
    pub him: crate::him::Him,
    /// Counters of sources, index and cache for health and metrics (no patient data).
    pub gauges: crate::aggregate::Gauges,
    pub base_url: String,
    pub tokens: crate::auth::DevTokens,
    pub max_query_bytes: usize,
    /// The CapabilityStatement, serialized once at start (its `date` is the start time);
    /// every client fetches it first, and it is 70 KB.
    pub capability: axum::body::Bytes,
    pub exports: Arc<crate::export::Exports>,
    /// Rate limits of the sign-in, registration, enrollment, token and authorization endpoints.
    pub throttle: Arc<crate::auth::throttle::Throttle>,
    /// Requests to amend records (the HIM queue and the patients' pages).
    pub corrections: crate::rights::Corrections,
    /// Share links (SMART Health Links) of records.
    pub shares: Arc<crate::share::Shares>,
    /// Proxy invitations, the patient's proxies and the lifecycle sweep.
    pub proxies: Arc<crate::proxies::Proxies>,
    /// Notices without PHI and the accounts' choice of them.
    pub notices: crate::notices::Notices,
    /// The new-results sweep (staff may run it now).
    pub results_sweep: Arc<crate::notices::ResultsSweep>,
    /// What "now" is for proxies' dates and the pages' ages ([`crate::clock`]).
    pub clock: crate::clock::Clock,
}

pub fn router(state: Arc<ApiState>, max_body_bytes: usize) -> Router {
    // Browser apps of registered origins reach the FHIR API, token, discovery and JWKS.
    let cors = cors::layer(state.oauth.clients.clone());
    Router::new()
        .nest(
            "/fhir",
            fhir_routes::router(state.clone())
                .merge(export_routes::router(state.clone()))
                .merge(binary_routes::router(state.clone()))
                .layer(cors.clone()),
        )
        .merge(health::router(state.clone()))
        .merge(home::router(state.clone()))
        .merge(admin::router(state.clone()))
        .merge(well_known::router(state.clone()).layer(cors.clone()))
        .merge(account_routes::router(state.clone()))
        .merge(download_routes::router(state.clone()))
        .merge(download_job_routes::router(state.clone()))
        .merge(oidc_routes::router(state.clone()))
        .merge(oauth::router(state.oauth.clone(), state.tokens.clone(), state.throttle.clone(), cors))
        .merge(authorize_routes::router(state.clone()))
        .merge(record_pages::router(state.clone()))
        .merge(language::router(state.clone()))
        .merge(rights_pages::router(state.clone()))
        .merge(rights_admin::router(state.clone()))
        .merge(share_pages::router(state.clone()))
        .merge(share_routes::router(state.clone()))
        .merge(proxy_routes::router(state.clone()))
        .merge(notice_routes::router(state.clone()))
        .route("/metrics", axum::routing::get(metrics::render).with_state(state.clone()))
        .layer(axum::middleware::from_fn_with_state(state, front::front))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(max_body_bytes))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

/// A FHIR JSON response (`application/fhir+json`), never cached by intermediaries.
pub fn fhir_json(status: StatusCode, body: &Value) -> Response {
    fhir_json_bytes(status, body.to_string().into())
}

/// [`fhir_json`] of bytes already serialized.
pub fn fhir_json_bytes(status: StatusCode, body: axum::body::Bytes) -> Response {
    fhir_json_headers((status, body).into_response())
}

/// [`fhir_json`] of bytes in pieces, sent one after the other as they are (a page's entries
/// kept with a decision are shared, not copied into one buffer); its length is known, so it
/// goes out with a `Content-Length` like any other answer.
pub fn fhir_json_pieces(status: StatusCode, mut pieces: Vec<axum::body::Bytes>) -> Response {
    if pieces.len() == 1 {
        return fhir_json_bytes(status, pieces.remove(0));
    }
    fhir_json_headers((status, axum::body::Body::new(pieces::Pieces::new(pieces))).into_response())
}

fn fhir_json_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/fhir+json; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
