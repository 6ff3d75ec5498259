//! The front door, `GET /`: what this service is, sign in and register for people, and the
//! FHIR base URL and SMART discovery document for app developers. Public, no patient data,
//! no session.

use super::pages::page;
use super::well_known::issuer;
use super::ApiState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use minijinja::context;
use std::sync::Arc;

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new().route("/", get(home)).with_state(state)
}

async fn home(State(state): State<Arc<ApiState>>) -> Response {
    let fhir_base = state.base_url.trim_end_matches('/');
    let html = crate::portal::render(
        "home.html",
        context! { title => crate::i18n::t("home-title"), signed_in => false, fhir_base, origin => issuer(&state.base_url) },
    );
    page(StatusCode::OK, html, None)
}
