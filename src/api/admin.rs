//! `/admin`: staff-only endpoints for HIM — explain a decision, release a held result.
//! Answers are JSON; errors are OperationOutcomes like the FHIR API's.

use super::error::ApiError;
use super::{fhir_json, ApiState};
use crate::auth::Access;
use crate::policy::Viewer;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/admin/policy/explain", get(explain))
        .route("/admin/holds/release", post(release))
        .with_state(state)
}

fn access(state: &ApiState, headers: &HeaderMap) -> Result<Access, ApiError> {
    let header = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let access = state.tokens.authenticate(header)?;
    if !access.is_staff() {
        return Err(ApiError::Him(crate::him::HimError::NotStaff));
    }
    Ok(access)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExplainQuery {
    patient: String,
    viewer: String,
    scopes: Option<String>,
    /// RFC 3339 instant; now when absent.
    at: Option<String>,
}

async fn explain(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    q: Result<Query<ExplainQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let access = access(&state, &headers)?;
    let Query(q) = q.map_err(|e| ApiError::BadInput(e.body_text()))?;
    let viewer = Viewer::from_spec(&q.viewer, q.scopes.as_deref()).map_err(ApiError::BadInput)?;
    let at = match &q.at {
        Some(t) => chrono::DateTime::parse_from_rfc3339(t)
            .map_err(|e| ApiError::BadInput(format!("at: {e}")))?
            .with_timezone(&chrono::Utc),
        None => chrono::Utc::now(),
    };
    let patient = state.him.patient_id(&q.patient)?;
    let explanations = state.reader.explain(&access, &patient, &viewer, at).await?;
    Ok(fhir_json(
        StatusCode::OK,
        &json!({"patient": patient, "viewer": viewer, "at": at.to_rfc3339(), "resources": explanations}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseBody {
    patient: String,
    resource: String,
    by: String,
}

async fn release(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Result<Json<ReleaseBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let access = access(&state, &headers)?;
    let Json(body) = body.map_err(|e| ApiError::BadInput(e.body_text()))?;
    let newly = state.him.release(&access, &body.patient, &body.resource, &body.by).await?;
    Ok(fhir_json(StatusCode::OK, &json!({"released": body.resource, "newly_released": newly})))
}
