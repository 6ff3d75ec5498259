//! Bulk Data `$export` routes under `/fhir` (thin: extract, call [`Exports`], render):
//! kick-off at `$export`, `Group/{id}/$export` and `Patient/$export` (GET or POST, `Prefer:
//! respond-async`), polling and cancelling at `$export-status/{job}`, and the NDJSON files
//! at `$export-file/{job}/{file}`, streamed from disk. Every one needs a bearer token.

use super::error::ApiError;
use super::fhir_routes::{access, lenient};
use super::{fhir_json, ApiState};
use crate::export::{ExportError, Exports, JobStatus, KickOff, Level};
use crate::fhir::outcome::{operation_outcome, Issue};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
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

/// A failure of an export route, as an OperationOutcome.
enum Failure {
    Api(ApiError),
    Export(ExportError, u64),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::Api(e)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let (e, retry) = match self {
            Failure::Api(e) => return e.into_response(),
            Failure::Export(e, retry) => (e, retry),
        };
        let text = e.to_string();
        let (status, issue) = match &e {
            ExportError::BadRequest(_) => (StatusCode::BAD_REQUEST, Issue::error("invalid", text)),
            ExportError::Forbidden(_) => (StatusCode::FORBIDDEN, Issue::error("forbidden", text)),
            ExportError::NotFound(_) => (StatusCode::NOT_FOUND, Issue::error("not-found", text)),
            ExportError::TooMany(_) => (StatusCode::TOO_MANY_REQUESTS, Issue::error("throttled", text)),
            ExportError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, Issue::error("transient", text)),
            ExportError::Store(_) | ExportError::Files(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, Issue::error("exception", text))
            }
        };
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %super::error::causes(&e), "export request failed");
        }
        let mut response = fhir_json(status, &operation_outcome(&[issue]));
        if matches!(e, ExportError::TooMany(_) | ExportError::Unavailable(_)) {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry));
        }
        response
    }
}

fn failed(exports: &Exports) -> impl Fn(ExportError) -> Failure + '_ {
    move |e| Failure::Export(e, exports.poll_seconds().max(10))
}

/// A header value of text the gateway wrote (a progress line, an HTTP date, the status URL
/// under the configured base URL). Only a base URL with control characters can fail here.
fn header_value(text: &str) -> Result<HeaderValue, Failure> {
    HeaderValue::from_str(text)
        .map_err(|_| Failure::Export(ExportError::Unavailable(format!("`{text}` cannot be sent as a header")), 0))
}

fn bad(text: impl Into<String>) -> Failure {
    Failure::Export(ExportError::BadRequest(text.into()), 0)
}

async fn system(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, Failure> {
    kick_off(&state, from, Level::System, "$export", method, headers, query, body).await
}

async fn group(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, Failure> {
    let path = format!("Group/{id}/$export");
    kick_off(&state, from, Level::Group(id), &path, method, headers, query, body).await
}

async fn patient(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, Failure> {
    kick_off(&state, from, Level::Patient, "Patient/$export", method, headers, query, body).await
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
    from: SocketAddr,
    level: Level,
    path: &str,
    method: Method,
    headers: HeaderMap,
    query: Option<String>,
    body: Bytes,
) -> Result<Response, Failure> {
    let access = access(state, &headers, from.ip()).await?;
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
    let request_url = match &query {
        Some(q) if !q.is_empty() => format!("{}/{path}?{q}", state.base_url),
        _ => format!("{}/{path}", state.base_url),
    };
    let k = KickOff { level, request_url, pairs, body, lenient: lenient(&headers) };
    let accepted = state.exports.kick_off(&access, k).await.map_err(failed(&state.exports))?;
    let mut issues = vec![Issue::information("informational", format!("export job {} accepted", accepted.job_id))];
    issues.extend(accepted.warnings.into_iter().map(|w| Issue::warning("not-supported", w)));
    let mut response = fhir_json(StatusCode::ACCEPTED, &operation_outcome(&issues));
    let location = header_value(&accepted.status_url)?;
    response.headers_mut().insert(header::CONTENT_LOCATION, location);
    Ok(response)
}

async fn status(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(job): Path<String>,
) -> Result<Response, Failure> {
    let access = access(&state, &headers, from.ip()).await?;
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
            fhir_json(StatusCode::INTERNAL_SERVER_ERROR, &operation_outcome(&[Issue::error("exception", message)]))
        }
    })
}

async fn cancel(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(job): Path<String>,
) -> Result<Response, Failure> {
    let access = access(&state, &headers, from.ip()).await?;
    state.exports.cancel(&access, &job).await.map_err(failed(&state.exports))?;
    let done = Issue::information("informational", format!("export job {job} cancelled; its files are removed"));
    Ok(fhir_json(StatusCode::ACCEPTED, &operation_outcome(&[done])))
}

async fn file(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((job, name)): Path<(String, String)>,
) -> Result<Response, Failure> {
    let access = access(&state, &headers, from.ip()).await?;
    let path = state.exports.file(&access, &job, &name).await.map_err(failed(&state.exports))?;
    let file = tokio::fs::File::open(&path).await.map_err(|e| failed(&state.exports)(ExportError::Files(e)))?;
    let mut r = Body::from_stream(tokio_util::io::ReaderStream::new(file)).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/fhir+ndjson"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}
