//! Discovery: `/.well-known/smart-configuration` (SMART App Launch 2.x) and
//! `/.well-known/openid-configuration`, true to what is built. Public, no patient data.

use super::ApiState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use std::sync::Arc;

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/.well-known/smart-configuration", get(smart))
        .route("/fhir/.well-known/smart-configuration", get(smart))
        .route("/.well-known/openid-configuration", get(openid))
        .with_state(state)
}

/// The gateway's public origin (the FHIR base without `/fhir`).
pub fn issuer(base_url: &str) -> String {
    base_url.trim_end_matches('/').trim_end_matches("/fhir").to_string()
}

/// The OAuth endpoints, also named in the CapabilityStatement.
pub fn endpoints(base_url: &str) -> Value {
    let i = issuer(base_url);
    json!({
        "authorize": format!("{i}/authorize"),
        "token": format!("{i}/token"),
        "revoke": format!("{i}/revoke"),
        "introspect": format!("{i}/introspect"),
        "jwks": format!("{i}/.well-known/jwks.json"),
    })
}

fn json_response(v: Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "public, max-age=300")], v.to_string())
        .into_response()
}

async fn smart(State(state): State<Arc<ApiState>>) -> Response {
    let e = endpoints(&state.base_url);
    json_response(json!({
        "issuer": issuer(&state.base_url),
        "jwks_uri": e["jwks"],
        "authorization_endpoint": e["authorize"],
        "token_endpoint": e["token"],
        "revocation_endpoint": e["revoke"],
        "introspection_endpoint": e["introspect"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "response_types_supported": ["code"],
        "scopes_supported": ["openid", "fhirUser", "launch/patient", "offline_access", "online_access", "patient/*.rs", "patient/*.read", "system/*.rs", "system/*.read"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": [
            "launch-standalone", "client-public", "client-confidential-symmetric", "client-confidential-asymmetric",
            "context-standalone-patient", "permission-patient", "permission-v1", "permission-v2", "permission-offline",
            "sso-openid-connect", "authorize-post"
        ]
    }))
}

async fn openid(State(state): State<Arc<ApiState>>) -> Response {
    let e = endpoints(&state.base_url);
    json_response(json!({
        "issuer": issuer(&state.base_url),
        "authorization_endpoint": e["authorize"],
        "token_endpoint": e["token"],
        "jwks_uri": e["jwks"],
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "fhirUser"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "fhirUser"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post", "private_key_jwt"]
    }))
}
