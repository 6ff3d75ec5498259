//! `GET /fhir/Binary/{id}`: the content of an attachment a resource released to the caller
//! points at (the reader decides and logs; anything not released is the same 404 as a
//! made-up id). Raw — the source's Content-Type, Content-Length when known, streamed as it
//! arrives — unless the client asks for FHIR JSON (`_format=json`, or `Accept:
//! application/fhir+json` first and not the content's own type), when the content comes
//! base64 in a `Binary` resource, for contents up to a bound (406 above it: ask for the raw
//! content). Raw content never runs as the gateway's page: `nosniff`, a sandboxing CSP,
//! and only PDFs, images and plain text shown inline.

use super::error::ApiError;
use super::{fhir_json, ApiState};
use crate::auth::Access;
use crate::read::{BinaryContent, Trail};
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use futures::StreamExt;
use std::net::SocketAddr;
use std::sync::Arc;

/// The largest content answered inside a FHIR `Binary` resource (base64 in memory).
const MAX_JSON_CONTENT: usize = 16 * 1024 * 1024;

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/Binary/{id}", get(read).fallback(read_only))
        .route("/wado-rs/{endpoint}/studies/{study}/series/{series}", get(series).fallback(read_only))
        .with_state(state)
}

async fn read_only(method: Method) -> ApiError {
    ApiError::MethodNotAllowed(method.to_string())
}

/// How the client wants the content.
#[derive(Debug, PartialEq, Eq)]
enum Form {
    Raw,
    Resource,
}

fn form(query: Option<&str>, headers: &HeaderMap) -> Result<Form, ApiError> {
    let format = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "_format")
        .map(|(_, v)| v.into_owned());
    if let Some(f) = format {
        return match super::download_routes::format_kind(&f) {
            super::download_routes::FormatKind::Json => Ok(Form::Resource),
            super::download_routes::FormatKind::Malformed => Err(ApiError::BadInput(format!(
                "_format `{f}` is not a format (use json, or leave it out for the content)"
            ))),
            _ => Err(ApiError::NotAcceptable(format!("_format `{f}` is not supported for Binary"))),
        };
    }
    let first = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split(',').next())
        .map(|m| m.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    Ok(match first.as_deref() {
        Some("application/fhir+json" | "application/json+fhir") => Form::Resource,
        _ => Form::Raw,
    })
}

async fn read(
    State(state): State<Arc<ApiState>>,
    access: Access,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let form = form(query.as_deref(), &headers)?;
    let trail = Trail::new(format!("/fhir/Binary/{id}"), Some(from.ip()));
    let content = state.reader.binary(&access, &trail, &id).await?;
    match form {
        Form::Raw => Ok(raw(content)),
        Form::Resource => resource(&id, content).await,
    }
}

/// `GET /fhir/wado-rs/{endpoint}/studies/{study}/series/{series}`: an imaging series, as
/// its source's WADO-RS answered it (the gateway's Endpoint address names this base).
async fn series(
    State(state): State<Arc<ApiState>>,
    access: Access,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Path((endpoint, study, series)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if !crate::sources::attachments::accepts_dicom_instances(accept) {
        return Err(ApiError::NotAcceptable(format!(
            "a series is answered as {} only",
            crate::read::SERIES_CONTENT_TYPE
        )));
    }
    let trail = Trail::new(format!("/fhir/wado-rs/{endpoint}/studies/{study}/series/{series}"), Some(from.ip()));
    let content = state.reader.series(&access, &trail, &endpoint, &study, &series).await?;
    Ok(raw(content))
}

/// The content as a FHIR `Binary` resource (bounded).
async fn resource(id: &str, content: BinaryContent) -> Result<Response, ApiError> {
    let too_large = || {
        ApiError::NotAcceptable(format!(
            "this content is larger than {} MiB: ask for it as itself (Accept: */*), not as a Binary resource",
            MAX_JSON_CONTENT / (1024 * 1024)
        ))
    };
    if content.length().is_some_and(|n| n > MAX_JSON_CONTENT as u64) {
        return Err(too_large());
    }
    let content_type = content.content_type().to_string();
    let mut stream = content.into_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| ApiError::Read(crate::read::ReadError::SourceUnavailable))?;
        if bytes.len() + chunk.len() > MAX_JSON_CONTENT {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    let binary = serde_json::json!({
        "resourceType": "Binary",
        "id": id,
        "contentType": content_type,
        "data": base64::engine::general_purpose::STANDARD.encode(&bytes),
    });
    Ok(fhir_json(StatusCode::OK, &binary))
}

/// The content as itself, streamed, with headers that keep it from acting as a page of
/// the gateway.
pub(super) fn raw(content: BinaryContent) -> Response {
    let content_type = content.content_type().to_string();
    let length = content.length();
    let mut response = Body::from_stream(content.into_stream()).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Some(n) = length {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let inline = essence == "application/pdf" || essence == "text/plain" || essence.starts_with("image/");
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static(if inline { "inline" } else { "attachment" }));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if essence != "application/pdf" {
        // Browsers' PDF viewers do not run in a sandbox; nothing else needs more than this.
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox; default-src 'none'"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_unless_fhir_json_is_asked_for_first() {
        let with = |accept: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
            form(None, &h).unwrap()
        };
        assert_eq!(with("application/pdf"), Form::Raw);
        assert_eq!(with("*/*"), Form::Raw);
        assert_eq!(with("application/fhir+json"), Form::Resource);
        assert_eq!(with("application/pdf, application/fhir+json;q=0.5"), Form::Raw);
        assert_eq!(form(Some("_format=json"), &HeaderMap::new()).unwrap(), Form::Resource);
        assert_eq!(form(None, &HeaderMap::new()).unwrap(), Form::Raw);
    }
}
