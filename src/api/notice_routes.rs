//! The account's choice of notices: the page `/account/notices` (a form of checkboxes) and
//! its JSON twin `/api/account/notices` (GET; PUT `{"on": [kinds]}` with the session's
//! `X-CSRF-Token`), and the staff's "run the new-results sweep now"
//! (`POST /admin/notices/sweep`). Thin: session, CSRF, one call to `crate::notices`.

use super::ApiState;
use super::extract::{SignedIn, Staff};
use super::pages::{PageError, check_csrf, form_fields, page};
use crate::i18n::{t, tr};
use crate::notices::NoticeError;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use minijinja::context;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/account/notices", get(notices_page).post(save))
        .route("/api/account/notices", get(list_json).put(save_json))
        .route("/admin/notices/sweep", post(sweep))
        .with_state(state)
}

fn render(visitor: &SignedIn, notices: &[crate::notices::Preference], saved: bool, message: &str) -> String {
    crate::portal::render(
        "notices.html",
        context! { title => t("notices-title"), csrf => visitor.session.csrf_token, signed_in => true, notices, saved, message },
    )
}

async fn notices_page(State(state): State<Arc<ApiState>>, visitor: SignedIn) -> Result<Response, PageError> {
    let notices = state.notices.preferences(&visitor.account).await.map_err(PageError::because)?;
    let html = render(&visitor, &notices, false, "");
    Ok((visitor.jar, page(StatusCode::OK, html, None)).into_response())
}

async fn save(State(state): State<Arc<ApiState>>, visitor: SignedIn, body: Bytes) -> Result<Response, PageError> {
    let form = form_fields(&body)?;
    check_csrf(&visitor.session, &form)?;
    let on: Vec<String> = form.into_iter().filter(|(k, _)| k == "on").map(|(_, v)| v).collect();
    match state.notices.choose(&visitor.account, &on).await {
        Ok(notices) => {
            let html = render(&visitor, &notices, true, "");
            Ok((visitor.jar, page(StatusCode::OK, html, None)).into_response())
        }
        Err(NoticeError::UnknownKind(kind)) => {
            let notices = state.notices.preferences(&visitor.account).await.map_err(PageError::because)?;
            let html = render(&visitor, &notices, false, &tr("notices-unknown", &[("kind", kind.into())]));
            Ok((visitor.jar, page(StatusCode::BAD_REQUEST, html, None)).into_response())
        }
        Err(e) => Err(PageError::because(e)),
    }
}

fn signed_out() -> Response {
    (StatusCode::UNAUTHORIZED, Json(json!({"error": "signed-out", "message": "sign in first"}))).into_response()
}

fn failed(e: &NoticeError) -> Response {
    match e {
        NoticeError::UnknownKind(_) => {
            (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid", "message": e.to_string()}))).into_response()
        }
        NoticeError::Store(_) => {
            tracing::error!(error = %e, "notice preferences: store failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": "unavailable", "message": "try again later"})))
                .into_response()
        }
    }
}

async fn list_json(State(state): State<Arc<ApiState>>, visitor: Result<SignedIn, Response>) -> Response {
    let Ok(visitor) = visitor else { return signed_out() };
    match state.notices.preferences(&visitor.account).await {
        Ok(notices) => Json(json!({"notices": notices})).into_response(),
        Err(e) => failed(&e),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Choice {
    on: Vec<String>,
}

async fn save_json(
    State(state): State<Arc<ApiState>>,
    visitor: Result<SignedIn, Response>,
    headers: HeaderMap,
    body: Result<super::text::TextJson<Choice>, super::text::TextError>,
) -> Response {
    let Ok(visitor) = visitor else { return signed_out() };
    let presented = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !visitor.session.csrf_ok(presented) {
        return (StatusCode::FORBIDDEN, Json(json!({"error": "csrf", "message": "send the session's X-CSRF-Token"})))
            .into_response();
    }
    let choice = match body {
        Ok(super::text::TextJson(choice)) => choice,
        Err(e) => {
            let message = match e {
                super::text::TextError::Control { .. } => e.to_string(),
                super::text::TextError::Body(_) => "send {\"on\": [kinds]} as JSON".into(),
            };
            return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid", "message": message}))).into_response();
        }
    };
    match state.notices.choose(&visitor.account, &choice.on).await {
        Ok(notices) => Json(json!({"notices": notices})).into_response(),
        Err(e) => failed(&e),
    }
}

/// Staff: run the new-results sweep now (it also runs every `notices.results_sweep_every`).
async fn sweep(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Staff(access): Staff,
) -> Result<Response, super::error::ApiError> {
    let result = state.results_sweep.sweep(chrono::Utc::now()).await;
    let outcome = if result.is_ok() { "success" } else { "error" };
    let entry = crate::audit::AuditEntry::of(
        &access,
        "notice-sweep",
        "/admin/notices/sweep".into(),
        None,
        outcome,
        Some(from.ip()),
    );
    state.audit.record(&entry).await.map_err(|e| super::error::ApiError::Read(crate::read::ReadError::Store(e)))?;
    match result {
        Ok(s) => Ok(Json(json!({"links": s.links, "baselines": s.baselines, "mailed": s.mailed})).into_response()),
        Err(e) => Ok(failed(&e)),
    }
}
