//! Record downloads prepared as jobs, over HTTP: `POST /records/{link}/downloads` starts
//! one (a form with the CSRF token, never a GET), `GET /records/{link}/downloads/{job}`
//! shows its progress (plain HTML that refreshes itself while the job runs) and
//! `GET /records/{link}/downloads/{job}/file` sends the prepared file once the access log
//! has it. Only the signed-in account that started a job finds it; another account's job
//! and a made-up one get the same "not found" page. Thin: check the session and the
//! account's record link, call `export::download_jobs`, render. Nothing here is cached.

use super::ApiState;
use super::extract::SignedIn;
use super::pages::{csrf_form, field, page, see_other};
use super::record_pages::{RecordPageError, choices, failure, message, own_link};
use crate::auth::accounts::PatientLink;
use crate::auth::sessions::Session;
use crate::export::download::Format;
use crate::export::download_jobs::{DownloadJobError, Prepared, Progress, ReadyFile, STEPS};
use crate::export::files::Piece;
use crate::i18n::{t, tr};
use crate::portal::fhir_text;
use crate::read::Trail;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;

/// Seconds between the progress page's own reloads while the job runs.
const REFRESH_SECONDS: u64 = 3;

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/records/{link}/downloads", post(start))
        .route("/records/{link}/downloads/{job}", get(progress))
        .route("/records/{link}/downloads/{job}/file", get(file))
        .with_state(state)
}

/// The account's job `job_id` on its record link `link_id`.
async fn own_job(
    state: &ApiState,
    account: &str,
    link_id: &str,
    job_id: &str,
) -> Result<(PatientLink, Prepared), RecordPageError> {
    let link = own_link(state, account, link_id).await?;
    let access = crate::auth::access_for_link(account, &link);
    let job = state.exports.downloads().find(&access, link_id, job_id).await.map_err(|e| match e {
        DownloadJobError::NotFound => RecordPageError::NotFound,
        other => {
            tracing::error!(error = %other, job = %job_id, "download job unavailable");
            RecordPageError::Unavailable
        }
    })?;
    Ok((link, job))
}

/// `POST /records/{link}/downloads` (`csrf`, `format` = `zip` | `json`): starts preparing
/// the record and sends the browser to the progress page.
async fn start(
    State(state): State<Arc<ApiState>>,
    visitor: SignedIn,
    Path(link_id): Path<String>,
    body: Bytes,
) -> Response {
    let SignedIn { jar, session: s, account } = visitor;
    let form = match csrf_form(&s, &body) {
        Ok(form) => form,
        Err(e) => return (jar, e).into_response(),
    };
    let format = match field(&form, "format").as_deref() {
        None | Some("zip") => Format::Zip,
        Some("json") => Format::Bundle,
        Some(_) => {
            let text = t("job-unknown-format");
            return (jar, message(StatusCode::BAD_REQUEST, &s, &t("error-bad-request-title"), &text)).into_response();
        }
    };
    let link = match own_link(&state, &account, &link_id).await {
        Ok(l) => l,
        Err(e) => return (jar, failure(e, &s)).into_response(),
    };
    let access = crate::auth::access_for_link(&account, &link);
    let Some(patient_id) = state.reader.whose(&access).await else {
        return (jar, failure(RecordPageError::NotFound, &s)).into_response();
    };
    let response = match state.exports.downloads().start(&access, &link_id, &patient_id, format).await {
        Ok(job) => see_other(&format!("/records/{link_id}/downloads/{job}")),
        Err(DownloadJobError::TooMany(n)) => message(
            StatusCode::TOO_MANY_REQUESTS,
            &s,
            &t("job-too-many-title"),
            &tr("job-too-many", &[("count", n.into())]),
        ),
        Err(e) => {
            tracing::error!(error = %e, link = %link_id, "download job not started");
            failure(RecordPageError::Unavailable, &s)
        }
    };
    (jar, response).into_response()
}

/// A file size in words.
fn size_words(bytes: u64) -> String {
    match bytes {
        b if b >= 1024 * 1024 => tr("size-mb", &[("size", format!("{:.1}", b as f64 / (1024.0 * 1024.0)).into())]),
        b if b >= 1024 => tr("size-kb", &[("size", b.div_ceil(1024).into())]),
        b => tr("size-bytes", &[("size", b.into())]),
    }
}

/// What a running job is doing, after `done` steps.
fn step_words(done: i64) -> String {
    t(match done {
        0 => "job-step-gathering",
        1 => "job-step-writing",
        _ => "job-step-storing",
    })
}

fn progress_page(s: &Session, link_id: &str, whose: serde_json::Value, job: &Prepared) -> Response {
    let format = if job.format == Format::Zip { "zip" } else { "json" };
    let mut context = json!({
        "title": t("job-title"),
        "signed_in": true,
        "csrf": s.csrf_token,
        "link": link_id,
        "job": job.job_id,
        "whose": whose,
        "format": format,
        "steps": STEPS,
        "notices": job.notices,
        "missing": job.missing,
    });
    let extra = match &job.progress {
        Progress::Waiting => json!({"state": "waiting", "done": 0, "refresh": REFRESH_SECONDS}),
        Progress::Working { done } => {
            json!({"state": "working", "done": done, "now": step_words(*done), "refresh": REFRESH_SECONDS})
        }
        Progress::Ready { file, expires } => {
            let (what, kind) = if job.format == Format::Zip {
                (t("job-what-zip"), ".zip")
            } else {
                (t("job-what-json"), "FHIR .json")
            };
            let expires = expires.map(|t| fhir_text::date_time(&t.to_rfc3339())).unwrap_or_default();
            json!({
                "state": "ready",
                "file": {"what": what, "kind": kind, "size": size_words(file.bytes), "resources": file.resources},
                "expires": expires,
            })
        }
        Progress::Failed { not_available } => json!({"state": "failed", "not_available": not_available}),
    };
    if let (Some(c), serde_json::Value::Object(e)) = (context.as_object_mut(), extra) {
        c.extend(e);
    }
    page(StatusCode::OK, crate::portal::render("download_job.html", context), None)
}

/// `GET /records/{link}/downloads/{job}`: where the job is, then the download link.
async fn progress(
    State(state): State<Arc<ApiState>>,
    visitor: SignedIn,
    Path((link_id, job_id)): Path<(String, String)>,
) -> Response {
    let SignedIn { jar, session: s, account } = visitor;
    let (link, job) = match own_job(&state, &account, &link_id, &job_id).await {
        Ok(j) => j,
        Err(e) => return (jar, failure(e, &s)).into_response(),
    };
    let Ok(records) = choices(&state, &account).await else {
        return (jar, failure(RecordPageError::Unavailable, &s)).into_response();
    };
    let Some(choice) = records.into_iter().find(|r| r.id == link_id) else {
        return (jar, failure(RecordPageError::NotFound, &s)).into_response();
    };
    let whose = json!({"name": choice.name, "relation": choice.relation, "is_self": link.relationship == "SELF"});
    (jar, progress_page(&s, &link_id, whose, &job)).into_response()
}

/// `GET /records/{link}/downloads/{job}/file`: the prepared file, written to the access log
/// (action `download`) before it goes out; nothing goes out when the log cannot be written.
async fn file(
    State(state): State<Arc<ApiState>>,
    visitor: SignedIn,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Path((link_id, job_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let SignedIn { jar, session: s, account } = visitor;
    let (_, job) = match own_job(&state, &account, &link_id, &job_id).await {
        Ok(j) => j,
        Err(e) => return (jar, failure(e, &s)).into_response(),
    };
    let Progress::Ready { file, .. } = &job.progress else {
        return (jar, failure(RecordPageError::NotFound, &s)).into_response();
    };
    let trail = Trail::new(format!("/records/{link_id}/downloads/{job_id}/file"), Some(from.ip()));
    if state.reader.hand_over(&job.access, &trail, &file.patient_id).await.is_err() {
        return (jar, failure(RecordPageError::Unavailable, &s)).into_response();
    }
    (jar, attachment(&state, file, &headers)).into_response()
}

/// The file as an attachment, streamed from storage (byte ranges; gzip for a Bundle):
/// never cached, never sniffed.
fn attachment(state: &ApiState, file: &ReadyFile, headers: &HeaderMap) -> Response {
    let stored = super::stored_file::StoredFile {
        files: state.exports.files(),
        pieces: vec![Piece { key: file.key.clone(), bytes: file.bytes }],
        bytes: file.bytes,
        content_type: file.content_type,
        compressible: file.content_type != "application/zip",
    };
    let mut response = stored.respond(headers);
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", file.file_name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_steps_are_in_words() {
        assert_eq!(size_words(512), "512 bytes");
        assert_eq!(size_words(1025), "2 KB");
        assert_eq!(size_words(3 * 1024 * 1024 + 100_000), "3.1 MB");
        assert_eq!(step_words(0), "gathering the record from Harbor Health's systems");
        assert_eq!(step_words(2), "storing your download");
    }
}
