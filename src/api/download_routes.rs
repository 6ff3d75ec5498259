//! Whole-record downloads over HTTP: `/records/{link}/download.json` and `.zip` for a
//! signed-in account's own records (the links the pages offer), and the zip form of
//! `Patient/[id]/$everything` (`_format=zip` or `Accept: application/zip`) for the FHIR
//! API, plus the `_format`/`Accept` reading that decides between them. Thin: find the
//! caller's access, have the reader release the record (it writes the access log, failing
//! closed), write it with `export::download` (a page download of a record larger than
//! `export.download_job_threshold` goes back to the record's home page instead, which
//! offers to prepare it as a job), send the file as an attachment that is never cached.

use super::error::ApiError;
use super::extract::SignedIn;
use super::pages::{see_other, PageError};
use super::ApiState;
use crate::auth::Access;
use crate::export::download::{self, Download, DownloadError, Format};
use crate::read::{OwnDownload, ReadError, Trail, Use};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/records/{link}/download.json", get(bundle_for_link))
        .route("/records/{link}/download.zip", get(zip_for_link))
        .with_state(state)
}

/// What a `_format` value names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FormatKind {
    Json,
    Zip,
    /// A real format this server does not produce (406).
    Unsupported,
    /// Not a format at all (400).
    Malformed,
}

/// Reads a `_format` value: FHIR's shorthands (`json`, `xml`, `ttl`, …), the zip names
/// (`zip`, `application/zip`), or a media type.
pub(super) fn format_kind(value: &str) -> FormatKind {
    let v = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match v.as_str() {
        "json" | "application/json" | "application/fhir+json" => FormatKind::Json,
        "zip" | "application/zip" => FormatKind::Zip,
        "xml" | "ttl" | "turtle" | "html" | "ndjson" => FormatKind::Unsupported,
        _ => {
            let token =
                |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b));
            match v.split_once('/') {
                Some((t, s)) if token(t) && token(s) => FormatKind::Unsupported,
                _ => FormatKind::Malformed,
            }
        }
    }
}

/// Whether a `$everything` request asks for the zip: `_format=zip|application/zip`, or,
/// without `_format`, an `Accept` header whose most preferred type this server speaks is
/// `application/zip` (by `q`, then by order).
pub(super) fn wants_zip(pairs: &[(String, String)], headers: &HeaderMap) -> bool {
    if let Some((_, f)) = pairs.iter().find(|(k, _)| k == "_format") {
        return format_kind(f) == FormatKind::Zip;
    }
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else { return false };
    let mut best: Option<(f32, bool)> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q =
            parts.find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok())).unwrap_or(1.0);
        let zip = match media.as_str() {
            "application/zip" => true,
            "application/fhir+json" | "application/json" | "*/*" | "application/*" => false,
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, zip));
        }
    }
    best.is_some_and(|(_, zip)| zip)
}

/// `$everything` as the zip, for an API caller. The zip is always the whole record, so
/// `_type`, `_since`, `_count` and paging are refused rather than silently ignored.
pub(super) async fn everything_zip(
    state: &ApiState,
    access: &Access,
    trail: &Trail,
    patient_id: &str,
    pairs: &[(String, String)],
) -> Result<Download, ApiError> {
    if let Some((k, _)) = pairs.iter().find(|(k, _)| k != "_format") {
        let refused = ReadError::BadRequest(format!(
            "`{k}` does not apply to the zip download, which is always the whole record (leave out _format=zip for the paged Bundle)"
        ));
        return Err(state.reader.refuse(access, trail, Use::Download, patient_id, refused).await.into());
    }
    download::prepare(&state.reader, access, trail, patient_id, Format::Zip, &state.base_url).await.map_err(api_error)
}

fn api_error(e: DownloadError) -> ApiError {
    match e {
        DownloadError::Read(r) => ApiError::Read(r),
        other => {
            tracing::error!(error = %other, "writing a download failed");
            ApiError::Download(other)
        }
    }
}

/// A download as a file to save: never cached, never sniffed, named by the gateway id.
pub(super) fn attachment(d: Download) -> Response {
    let mut response = (StatusCode::OK, d.body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(d.content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", d.file_name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

async fn bundle_for_link(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    visitor: SignedIn,
    Path(link): Path<String>,
) -> Result<Response, PageError> {
    for_link(&state, from, visitor, link, Format::Bundle).await
}

async fn zip_for_link(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    visitor: SignedIn,
    Path(link): Path<String>,
) -> Result<Response, PageError> {
    for_link(&state, from, visitor, link, Format::Zip).await
}

/// The same answer for a link of another account, a made-up one and a record this
/// account may no longer open.
fn no_such_record() -> PageError {
    PageError::new(StatusCode::NOT_FOUND, crate::i18n::t("error-not-found-title"), crate::i18n::t("download-no-record"))
}

/// One of the signed-in account's records, downloaded as `format`.
async fn for_link(
    state: &ApiState,
    from: SocketAddr,
    visitor: SignedIn,
    link_id: String,
    format: Format,
) -> Result<Response, PageError> {
    let SignedIn { jar, account, .. } = visitor;
    let links = state.accounts.links(&account).await.map_err(PageError::because)?;
    let Some(link) = links.into_iter().find(|l| l.id == link_id) else { return Err(no_such_record()) };
    let access = crate::auth::access_for_link(&account, &link);
    let extension = if format == Format::Zip { "zip" } else { "json" };
    let trail = Trail::new(format!("/records/{link_id}/download.{extension}"), Some(from.ip()));
    let downloads = state.exports.downloads();
    let result = match state.reader.own_download(&access, &trail, |n| downloads.is_large(n)).await {
        // A large record is prepared as a job, which the record's home page offers to
        // start: nothing of the record goes out here.
        Ok(OwnDownload::Later) => {
            return Ok((jar, see_other(&format!("/records/{link_id}#download-heading"))).into_response())
        }
        Ok(OwnDownload::Now(r)) => download::build(&state.reader, r, format, &state.base_url).await,
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(d) => Ok((jar, attachment(d)).into_response()),
        Err(DownloadError::Read(ReadError::NotFound | ReadError::Forbidden(_) | ReadError::InsufficientScope(_))) => {
            Err(no_such_record())
        }
        Err(e) => {
            tracing::error!(error = %e, link = %link_id, "a record download failed");
            Err(PageError::unavailable())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_apart() {
        assert_eq!(format_kind("json"), FormatKind::Json);
        assert_eq!(format_kind("application/fhir+json; fhirVersion=4.0"), FormatKind::Json);
        assert_eq!(format_kind("ZIP"), FormatKind::Zip);
        assert_eq!(format_kind("application/zip"), FormatKind::Zip);
        assert_eq!(format_kind("xml"), FormatKind::Unsupported);
        assert_eq!(format_kind("application/pdf"), FormatKind::Unsupported);
        assert_eq!(format_kind("banana"), FormatKind::Malformed);
        assert_eq!(format_kind("a/b/c"), FormatKind::Malformed);
        assert_eq!(format_kind(""), FormatKind::Malformed);
    }

    #[test]
    fn accept_picks_the_most_preferred_type_spoken() {
        let with = |accept: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
            wants_zip(&[], &h)
        };
        assert!(with("application/zip"));
        assert!(with("application/zip, application/fhir+json"));
        assert!(!with("application/fhir+json, application/zip"));
        assert!(with("application/fhir+json;q=0.5, application/zip"));
        assert!(!with("*/*"));
        assert!(!with("application/zip;q=0, */*"));
        assert!(!wants_zip(&[], &HeaderMap::new()));
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static("application/zip"));
        assert!(!wants_zip(&[("_format".into(), "json".into())], &h), "_format overrides Accept");
        assert!(wants_zip(&[("_format".into(), "zip".into())], &HeaderMap::new()));
    }
}
