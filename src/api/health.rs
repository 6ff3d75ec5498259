//! `/health/live` (the process answers) and `/health/ready` (the patient index is loaded;
//! per-source status as the circuit breakers see it, and per source what it holds that the
//! gateway does not serve, by type and count). No patient data.

use super::ApiState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::Arc;

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new().route("/health/live", get(live)).route("/health/ready", get(ready)).with_state(state)
}

async fn live() -> Json<Value> {
    Json(json!({"status": "live"}))
}

async fn ready(State(state): State<Arc<ApiState>>) -> (StatusCode, Json<Value>) {
    let sources = state.gauges.sources();
    // The index lives in the database: without it the gateway is not ready either.
    let patients = state.gauges.patients_indexed().await.ok();
    let all_down = (!sources.is_empty() && sources.iter().all(|s| s.state == "down")) || patients.is_none();
    let status = if all_down { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    let not_served: serde_json::Map<String, Value> = state
        .gauges
        .source_report()
        .into_iter()
        .filter(|r| !r.not_served.is_empty())
        .map(|r| (r.name, json!(r.not_served)))
        .collect();
    (
        status,
        Json(
            json!({"status": if all_down { "unavailable" } else { "ready" }, "patients_indexed": patients, "sources": sources, "not_served": not_served}),
        ),
    )
}
