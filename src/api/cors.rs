//! CORS for browser apps (SMART App Launch from a web page): the FHIR API, the token endpoint,
//! the discovery documents and the JWKS answer cross-origin requests, preflights included,
//! from the origins of registered, enabled clients' redirect URIs only
//! ([`crate::auth::oauth::Clients::is_app_origin`]). Never with credentials: a browser app
//! sends its bearer token itself, and cookies (sessions) stay same-origin.

use crate::auth::oauth::Clients;
use axum::http::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LOCATION, CONTENT_TYPE, EXPIRES, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE,
};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The layer for the routes browser apps call.
pub fn layer(clients: Clients) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::async_predicate(move |origin: HeaderValue, _: &Parts| {
            let clients = clients.clone();
            async move {
                match origin.to_str() {
                    Ok(o) => clients.is_app_origin(o).await,
                    Err(_) => false,
                }
            }
        }))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([AUTHORIZATION, ACCEPT, CONTENT_TYPE, HeaderName::from_static("prefer")])
        .expose_headers([
            CONTENT_LOCATION,
            LOCATION,
            RETRY_AFTER,
            EXPIRES,
            WWW_AUTHENTICATE,
            HeaderName::from_static("x-progress"),
        ])
        .max_age(std::time::Duration::from_secs(600))
}
