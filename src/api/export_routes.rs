//! Bulk Data `$export` routes under `/fhir` (thin: extract, call [`Exports`], render):
//! kick-off at `$export`, `Group/{id}/$export` and `Patient/$export` (GET or POST, `Prefer:
//! respond-async`), polling and cancelling at `$export-status/{job}`, and the NDJSON files
//! at `$export-file/{job}/{file}`, streamed from storage (byte ranges, gzip). Every one
//! needs a bearer token.

use super::error::ApiError;
use super::fhir_routes::lenient;
use super::{ApiState, fhir_json};
use crate::auth::Access;
use crate::export::{ExportError, Exports, JobStatus, KickOff, Level};
use crate::fhir::model::codes::IssueType;
use crate::fhir::outcome::{Issue, operation_outcome};
use crate::read::Trail;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/$export", get(system).post(system))
        .route("/Group/{id}/$export", get(group).post(group))
        .route("/Patient/$export", get(patient).post(patient))
        .route("/$export-status/{job}", get(status).delete(cancel))
        .route("/$export-file/{job}/{file}", get(file))
        .with_state(state)
}

/// An export error, answered with the `Retry-After` the exports advise when it is busy.
fn failed(exports: &Exports) -> impl Fn(ExportError) -> ApiError + '_ {
    move |error| ApiError::Export { error, retry_after: exports.poll_seconds().max(10) }
}

/// A header value of text the gateway wrote (a progress line, an HTTP date, the status URL
/// under the configured base URL). Only a base URL with control characters can fail here.
fn header_value(text: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(text).map_err(|_| ApiError::Export {
        error: ExportError::Unavailable(format!("`{text}` cannot be sent as a header")),
        retry_after: 0,
    })
}

fn bad(text: impl Into<String>) -> ApiError {
    ApiError::Export { error: ExportError::BadRequest(text.into()), retry_after: 0 }
}

async fn system(
    State(state): State<Arc<ApiState>>,
    access: Access,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    kick_off(&state, access, Level::System, "$export", method, headers, query, body).await
}

async fn group(
    State(state): State<Arc<ApiState>>,
    access: Access,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let path = format!("Group/{id}/$export");
    kick_off(&state, access, Level::Group(id), &path, method, headers, query, body).await
}

async fn patient(
    State(state): State<Arc<ApiState>>,
    access: Access,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    kick_off(&state, access, Level::Patient, "Patient/$export", method, headers, query, body).await
}

/// `Prefer: respond-async` among the request's preferences.
fn prefers_async(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .any(|p| p.trim().eq_ignore_ascii_case("respond-async"))
}

/// The kick-off answers in FHIR JSON (errors) only: `Accept` must allow it.
fn accepts_fhir_json(headers: &HeaderMap) -> bool {
    match headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(accept) => accept
            .split(',')
            .map(|m| m.split(';').next().unwrap_or("").trim())
            .any(|m| m == "application/fhir+json" || m == "application/json" || m == "*/*"),
    }
}

#[allow(clippy::too_many_arguments)]
async fn kick_off(
    state: &ApiState,
    access: Access,
    level: Level,
    path: &str,
    method: Method,
    headers: HeaderMap,
    query: Option<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !prefers_async(&headers) {
        return Err(bad("$export runs asynchronously: send `Prefer: respond-async`"));
    }
    if !accepts_fhir_json(&headers) {
        return Err(bad("$export answers in application/fhir+json: send `Accept: application/fhir+json`"));
    }
    let body = if method == Method::POST && !body.is_empty() {
        Some(serde_json::from_slice(&body).map_err(|e| bad(format!("the POST body is not JSON: {e}")))?)
    } else {
        None
    };
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()).into_owned().collect();
    // The parameters are kept with the job: no NUL or other control character (`text`).
    super::text::check_pairs(&pairs).map_err(|e| bad(e.to_string()))?;
    if let Some(body) = &body {
        super::text::check_json(body).map_err(|e| bad(e.to_string()))?;
    }
    let request_url = match &query {
        Some(q) if !q.is_empty() => format!("{}/{path}?{q}", state.base_url),
        _ => format!("{}/{path}", state.base_url),
    };
    let k = KickOff { level, request_url, pairs, body, lenient: lenient(&headers) };
    let accepted = state.exports.kick_off(&access, k).await.map_err(failed(&state.exports))?;
    let mut issues =
        vec![Issue::information(IssueType::Informational, format!("export job {} accepted", accepted.job_id))];
    issues.extend(accepted.warnings.into_iter().map(|w| Issue::warning(IssueType::NotSupported, w)));
    let mut response = fhir_json(StatusCode::ACCEPTED, &operation_outcome(&issues));
    let location = header_value(&accepted.status_url)?;
    response.headers_mut().insert(header::CONTENT_LOCATION, location);
    Ok(response)
}

async fn status(
    State(state): State<Arc<ApiState>>,
    access: Access,
    Path(job): Path<String>,
) -> Result<Response, ApiError> {
    let found = state.exports.status(&access, &job).await.map_err(failed(&state.exports))?;
    Ok(match found {
        JobStatus::InProgress { done, total } => {
            let pct = if total == 0 { 100 } else { done * 100 / total };
            let mut r = StatusCode::ACCEPTED.into_response();
            let h = r.headers_mut();
            let progress = format!("{pct}% ({done}/{total} patients)");
            h.insert("x-progress", header_value(&progress)?);
            h.insert(header::RETRY_AFTER, HeaderValue::from(state.exports.poll_seconds()));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        JobStatus::Complete { manifest, expires } => {
            let mut r = (StatusCode::OK, manifest.to_string()).into_response();
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            if let Some(at) = expires {
                let date = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
                h.insert(header::EXPIRES, header_value(&date)?);
            }
            r
        }
        JobStatus::Failed(message) => {
            tracing::error!(%job, error = %message, "export status: the job failed");
            fhir_json(
                StatusCode::INTERNAL_SERVER_ERROR,
                &operation_outcome(&[Issue::error(IssueType::Exception, message)]),
            )
        }
    })
}

async fn cancel(
    State(state): State<Arc<ApiState>>,
    access: Access,
    Path(job): Path<String>,
) -> Result<Response, ApiError> {
    state.exports.cancel(&access, &job).await.map_err(failed(&state.exports))?;
    let done =
        Issue::information(IssueType::Informational, format!("export job {job} cancelled; its files are removed"));
    Ok(fhir_json(StatusCode::ACCEPTED, &operation_outcome(&[done])))
}

/// An export file, logged (`download`, for each patient in it) before it goes out; no
/// entry, no file.
async fn file(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    access: Access,
    Path((job, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let found = state.exports.file(&access, &job, &name).await.map_err(failed(&state.exports))?;
    let trail = Trail::new(format!("/fhir/$export-file/{job}/{name}"), Some(from.ip()));
    state.reader.hand_over_export(&access, &trail, &found.patients).await?;
    let file = super::stored_file::StoredFile {
        files: state.exports.files(),
        pieces: found.pieces,
        bytes: found.bytes,
        content_type: "application/fhir+ndjson",
        compressible: true,
    };
    Ok(file.respond(&headers))
}
