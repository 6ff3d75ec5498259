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
        .route("/admin/proxies", post(grant_proxy))
        .route("/admin/access/terminate", post(terminate))
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProxyBody {
    /// The proxy's local account (user name).
    username: String,
    /// The patient record, `source/source-id`.
    patient: String,
    relationship: String,
    valid_until: Option<String>,
    related_person: Option<String>,
    #[serde(default)]
    adult_granted: bool,
    #[serde(default)]
    teen_assent: bool,
    by: String,
}

/// Staff grant a parent, guardian or caregiver access to a patient's record.
async fn grant_proxy(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Result<Json<ProxyBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    access(&state, &headers)?;
    let Json(b) = body.map_err(|e| ApiError::BadInput(e.body_text()))?;
    let link = crate::auth::accounts::grant_proxy(
        &state.accounts,
        &b.username,
        &b.patient,
        &b.relationship,
        b.valid_until.as_deref(),
        b.related_person.as_deref(),
        (b.adult_granted, b.teen_assent),
        &b.by,
    )
    .await
    .map_err(|e| ApiError::BadInput(e.to_string()))?;
    Ok(fhir_json(StatusCode::CREATED, &json!({"link": link})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TerminateBody {
    link_id: String,
    reason: String,
    by: String,
}

/// Staff end an account's access to a record; live tokens stop on their next request.
async fn terminate(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Result<Json<TerminateBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    access(&state, &headers)?;
    let Json(b) = body.map_err(|e| ApiError::BadInput(e.body_text()))?;
    let n =
        state.accounts.terminate(&b.link_id, &b.reason, &b.by).await.map_err(|e| ApiError::BadInput(e.to_string()))?;
    if n == 0 {
        return Err(ApiError::Him(crate::him::HimError::UnknownResource(format!("access link {}", b.link_id))));
    }
    Ok(fhir_json(StatusCode::OK, &json!({"terminated": b.link_id})))
}
