//! `/admin` for patients' rights: HIM's queue of correction requests (soonest due first,
//! overdue ones flagged), a request as FHIR, accepting or denying one with a reason, the
//! one 30-day extension, and the accounting of disclosures of a patient (JSON, printable
//! HTML or a Bundle of AuditEvents). Staff only; every action, done or refused, is in the
//! access log before the answer.

use super::admin::logged;
use super::error::ApiError;
use super::extract::Staff;
use super::text::{TextError, TextJson, TextQuery};
use super::{ApiState, fhir_json};
use crate::rights::corrections::queue_row;
use crate::rights::{RightsError, disclosures};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/admin/corrections", get(queue))
        .route("/admin/corrections/{id}", get(one))
        .route("/admin/corrections/{id}/decision", post(decide))
        .route("/admin/corrections/{id}/extension", post(extend))
        .route("/admin/disclosures", get(accounting))
        .with_state(state)
}

fn instant(name: &str, value: Option<&str>) -> Result<DateTime<Utc>, ApiError> {
    match value {
        Some(t) => Ok(DateTime::parse_from_rfc3339(t)
            .map_err(|e| ApiError::BadInput(format!("{name}: {e}")))?
            .with_timezone(&Utc)),
        None => Ok(Utc::now()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueQuery {
    /// `waiting` (the default) or `all`.
    show: Option<String>,
    /// RFC 3339: flag what is overdue at this moment (now when absent).
    as_of: Option<String>,
}

/// `GET /admin/corrections`: the queue, soonest due first.
async fn queue(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Staff(access): Staff,
    q: Result<TextQuery<QueueQuery>, TextError>,
) -> Result<Response, ApiError> {
    let TextQuery(q) = q.map_err(|e| ApiError::BadInput(e.body_text()))?;
    let as_of = instant("as_of", q.as_of.as_deref())?;
    let waiting = match q.show.as_deref() {
        None | Some("waiting") => true,
        Some("all") => false,
        Some(other) => return Err(ApiError::BadInput(format!("show: `{other}` is not `waiting` or `all`"))),
    };
    let list = state.corrections.queue(waiting).await.map_err(ApiError::from);
    let list = logged(&state, &access, from, "correction-queue", None, list).await?;
    let rows: Vec<Value> = list.iter().map(|c| queue_row(c, as_of)).collect();
    let overdue = rows.iter().filter(|r| r["overdue"] == true).count();
    Ok(fhir_json(StatusCode::OK, &json!({"as_of": as_of.to_rfc3339(), "overdue": overdue, "requests": rows})))
}

/// `GET /admin/corrections/{id}`: the request as a Task and Communications.
async fn one(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Staff(access): Staff,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let found = match state.corrections.get(&id).await {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(RightsError::NotFound.into()),
        Err(e) => Err(e.into()),
    };
    let patient = found.as_ref().ok().map(|c| c.patient_id.clone());
    let c = logged(&state, &access, from, "correction-read", patient, found).await?;
    let self_url = format!("{}/admin/corrections/{id}", state.base_url.trim_end_matches("/fhir"));
    Ok(fhir_json(StatusCode::OK, &crate::rights::correction_fhir::bundle(&c, &self_url)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    /// `accept` or `deny`.
    decision: String,
    reason: String,
    by: String,
}

/// `POST /admin/corrections/{id}/decision`.
async fn decide(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Staff(access): Staff,
    Path(id): Path<String>,
    body: Result<TextJson<DecisionBody>, TextError>,
) -> Result<Response, ApiError> {
    let TextJson(b) = body.map_err(|e| ApiError::BadInput(e.body_text()))?;
    let accept = match b.decision.as_str() {
        "accept" => Ok(true),
        "deny" => Ok(false),
        other => Err(ApiError::BadInput(format!("decision: `{other}` is not `accept` or `deny`"))),
    };
    let patient = state.corrections.get(&id).await.ok().flatten().map(|c| c.patient_id);
    let decided = match accept {
        Ok(accept) => state.corrections.decide(&id, accept, &b.reason, &b.by, Utc::now()).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let action = if b.decision == "accept" { "correction-accept" } else { "correction-deny" };
    let c = logged(&state, &access, from, action, patient, decided).await?;
    Ok(fhir_json(StatusCode::OK, &queue_row(&c, Utc::now())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtensionBody {
    reason: String,
}

/// `POST /admin/corrections/{id}/extension`: the one 30-day extension, with its reason.
async fn extend(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Staff(access): Staff,
    Path(id): Path<String>,
    body: Result<TextJson<ExtensionBody>, TextError>,
) -> Result<Response, ApiError> {
    let TextJson(b) = body.map_err(|e| ApiError::BadInput(e.body_text()))?;
    let patient = state.corrections.get(&id).await.ok().flatten().map(|c| c.patient_id);
    let extended = state.corrections.extend(&id, &b.reason, Utc::now()).await.map_err(ApiError::from);
    let c = logged(&state, &access, from, "correction-extend", patient, extended).await?;
    Ok(fhir_json(StatusCode::OK, &queue_row(&c, Utc::now())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountingQuery {
    /// Gateway id or `source/source-id`.
    patient: String,
    /// `json` (the default), `html` (printable) or `fhir` (a Bundle of AuditEvents).
    format: Option<String>,
}

/// `GET /admin/disclosures?patient=…`: the accounting of disclosures, for a patient's request.
async fn accounting(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Staff(access): Staff,
    q: Result<TextQuery<AccountingQuery>, TextError>,
) -> Result<Response, ApiError> {
    let TextQuery(q) = q.map_err(|e| ApiError::BadInput(e.body_text()))?;
    let format = q.format.as_deref().unwrap_or("json");
    let found = state.him.patient_id(&q.patient).await;
    let known = found.as_ref().ok().cloned();
    let checked = match format {
        "json" | "html" | "fhir" => found.map_err(ApiError::from),
        other => Err(ApiError::BadInput(format!("format: `{other}` is not json, html or fhir"))),
    };
    let patient = logged(&state, &access, from, "accounting", known, checked).await?;
    let now = Utc::now();
    let since = disclosures::since(now);
    let records = state.reader.disclosures_of(&access, &patient, None, &since).await?;
    let names = super::rights_pages::client_names(&state, &records).await?;
    let rows = disclosures::rows(&records, &names, "");
    Ok(match format {
        "fhir" => {
            let self_url =
                format!("{}/admin/disclosures?patient={patient}&format=fhir", state.base_url.trim_end_matches("/fhir"));
            fhir_json(
                StatusCode::OK,
                &disclosures::bundle(&records, &state.base_url, &self_url).map_err(ApiError::AuditEntry)?,
            )
        }
        "html" => {
            let today = crate::rights::corrections::stamp(now);
            let context = json!({"rows": rows, "patient": patient, "whose": {}, "since": crate::portal::fhir_text::date(&since),
                                 "today": crate::portal::fhir_text::date(&today)});
            super::pages::page(StatusCode::OK, crate::portal::render("disclosures_print.html", context), None)
        }
        _ => (StatusCode::OK, Json(json!({"patient": patient, "since": since, "disclosures": rows}))).into_response(),
    })
}
