//! `/admin`: staff-only endpoints for HIM — explain a decision, release a held result,
//! grant or end proxy access, issue a patient's activation code. Answers are JSON; errors
//! are OperationOutcomes like the FHIR API's. Every action, done or refused, is in the
//! access log before the answer goes out.

use super::error::ApiError;
use super::extract::Staff;
use super::text::{TextError, TextJson, TextQuery};
use super::{ApiState, fhir_json};
use crate::auth::Access;
use crate::policy::Viewer;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/admin/policy/explain", get(explain))
        .route("/admin/holds/release", post(release))
        .route("/admin/proxies", post(grant_proxy))
        .route("/admin/access/terminate", post(terminate))
        .route("/admin/activation-codes", post(activation_code))
        .with_state(state)
}

/// Writes the staff action to the access log (failing closed), then passes `result` on.
/// Every staff route of the admin API logs through this one.
pub(super) async fn logged<T>(
    state: &ApiState,
    access: &Access,
    from: SocketAddr,
    action: &str,
    patient: Option<String>,
    result: Result<T, ApiError>,
) -> Result<T, ApiError> {
    let outcome = match &result {
        Ok(_) => "success",
        Err(ApiError::Rights(crate::rights::RightsError::NotFound)) => "not-found",
        Err(_) => "error",
    };
    let entry =
        crate::audit::AuditEntry::of(access, action, format!("/admin/{action}"), patient, outcome, Some(from.ip()));
    if let Err(e) = state.audit.record(&entry).await {
        tracing::error!(error = %e, "audit log write failed; refusing the answer");
        return Err(ApiError::Read(crate::read::ReadError::Store(e)));
    }
    result
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
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Staff(access): Staff,
    q: Result<TextQuery<ExplainQuery>, TextError>,
) -> Result<Response, ApiError> {
    let TextQuery(q) = q.map_err(|e| ApiError::BadInput(e.body_text()))?;
    let viewer = Viewer::from_spec(&q.viewer, q.scopes.as_deref())?;
    let at = match &q.at {
        Some(t) => chrono::DateTime::parse_from_rfc3339(t)
            .map_err(|e| ApiError::BadInput(format!("at: {e}")))?
            .with_timezone(&chrono::Utc),
        None => state.clock.now(),
    };
    let patient = state.him.patient_id(&q.patient).await?;
    let trail = crate::read::Trail::new("/admin/explain", Some(from.ip()));
    let explanations = state.reader.explain(&access, &trail, &patient, &viewer, at).await?;
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
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Staff(access): Staff,
    body: Result<TextJson<ReleaseBody>, TextError>,
) -> Result<Response, ApiError> {
    let TextJson(body) = body.map_err(|e| ApiError::BadInput(e.body_text()))?;
    let patient = state.him.patient_id(&body.patient).await.ok();
    let released = state.him.release(&access, &body.patient, &body.resource, &body.by).await.map_err(ApiError::from);
    let newly = logged(&state, &access, from, "release", patient, released).await?;
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
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Staff(access): Staff,
    body: Result<TextJson<ProxyBody>, TextError>,
) -> Result<Response, ApiError> {
    let TextJson(b) = body.map_err(|e| ApiError::BadInput(e.body_text()))?;
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
    .map_err(|e| ApiError::BadInput(e.to_string()));
    let patient = state.him.patient_id(&b.patient).await.ok();
    let link = logged(&state, &access, from, "grant-proxy", patient, link).await?;
    // The record's owner (if they have an account) is told someone can now see it.
    if let Err(e) = state.proxies.tell_proxy_added(&link.source, &link.source_patient_id).await {
        tracing::warn!(error = %e, "proxy-added notice not sent");
    }
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
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Staff(access): Staff,
    body: Result<TextJson<TerminateBody>, TextError>,
) -> Result<Response, ApiError> {
    let TextJson(b) = body.map_err(|e| ApiError::BadInput(e.body_text()))?;
    let done = match state.accounts.terminate(&b.link_id, &b.reason, &b.by).await {
        Ok(0) => Err(ApiError::Him(crate::him::HimError::UnknownResource(format!("access link {}", b.link_id)))),
        // The jobs started under the link (the account's downloads, its apps' exports)
        // end with it.
        Ok(_) => state
            .exports
            .end_basis(Some(&b.link_id), None)
            .await
            .map(|_| ())
            .map_err(|error| ApiError::Export { error, retry_after: 0 }),
        Err(e) => Err(ApiError::BadInput(e.to_string())),
    };
    logged(&state, &access, from, "terminate-access", None, done).await?;
    Ok(fhir_json(StatusCode::OK, &json!({"terminated": b.link_id})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivationCodeBody {
    /// The patient record, `source/source-id`.
    patient: String,
    /// Days the code is valid; the config's `activation_code_days` when absent.
    valid_days: Option<u32>,
}

/// Staff issue a one-time activation code for a patient to connect their account (HIM
/// desk, after-visit summary). The code is in the answer only; the access log has the
/// action, not the code.
async fn activation_code(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Staff(access): Staff,
    body: Result<TextJson<ActivationCodeBody>, TextError>,
) -> Result<Response, ApiError> {
    let TextJson(b) = body.map_err(|e| ApiError::BadInput(e.body_text()))?;
    let code = state
        .accounts
        .issue_activation_code(&b.patient, b.valid_days, &access.viewer.actor, chrono::Utc::now())
        .await
        .map_err(|e| match e {
            crate::auth::accounts::AccountError::Store(e) => ApiError::Read(crate::read::ReadError::Store(e)),
            e => ApiError::BadInput(e.to_string()),
        });
    let patient = state.him.patient_id(&b.patient).await.ok();
    let code = logged(&state, &access, from, "activation-code", patient, code).await?;
    Ok(fhir_json(StatusCode::CREATED, &json!(code)))
}
