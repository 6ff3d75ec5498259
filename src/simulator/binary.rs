//! The simulator's `GET /fhir/Binary/{id}`: the attachments of its store
//! (`ResourceStore::binaries`, files beside the fixtures or generated content), raw with their
//! Content-Type and Content-Length unless the client asks for FHIR JSON (`Accept:
//! application/fhir+json` or `_format=json`), when it answers a `Binary` resource with the
//! content in base64. The raw answer is streamed, never read into memory whole. Like every
//! simulator handler it runs behind the guard (tokens, throttling, outages) and only reads.

use super::guard::{fhir_json, outcome};
use super::Shared;
use crate::fhir::model::codes::IssueType;
use crate::fhir::outcome::Issue;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures::TryStreamExt;
use std::sync::Arc;

/// The largest content answered inside a FHIR `Binary` resource.
const MAX_JSON_CONTENT: u64 = 32 * 1024 * 1024;

/// Whether the request asks for the FHIR `Binary` resource rather than the content.
fn wants_resource(headers: &HeaderMap, uri: &Uri) -> bool {
    let format = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "_format")
        .map(|(_, v)| v.into_owned());
    if let Some(f) = format {
        return f == "json" || f.contains("fhir+json");
    }
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|accept| {
        accept.split(',').next().map(|m| m.split(';').next().unwrap_or("").trim()).is_some_and(|first| {
            first.eq_ignore_ascii_case("application/fhir+json") || first.eq_ignore_ascii_case("application/json")
        })
    })
}

pub(super) async fn read(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if !crate::fhir::is_valid_id(&id) {
        return outcome(StatusCode::BAD_REQUEST, Issue::error(IssueType::Invalid, "not a valid FHIR logical id"));
    }
    let body = match shared.store.binaries().open(&id).await {
        Ok(Some(body)) => body,
        Ok(None) => {
            return outcome(
                StatusCode::NOT_FOUND,
                Issue::error(IssueType::NotFound, format!("Binary/{id} is not known")),
            )
        }
        Err(_) => {
            return outcome(StatusCode::INTERNAL_SERVER_ERROR, Issue::error(IssueType::Exception, "content unreadable"))
        }
    };
    let content_type = body.content_type.unwrap_or_else(|| "application/octet-stream".into());
    if wants_resource(&headers, &uri) {
        if body.length.is_none_or(|n| n > MAX_JSON_CONTENT) {
            return outcome(
                StatusCode::NOT_ACCEPTABLE,
                Issue::error(IssueType::TooLong, "too large for a Binary resource; ask for the content itself"),
            );
        }
        let Ok(chunks) = body.stream.try_collect::<Vec<_>>().await else {
            return outcome(
                StatusCode::INTERNAL_SERVER_ERROR,
                Issue::error(IssueType::Exception, "content unreadable"),
            );
        };
        let data = base64::engine::general_purpose::STANDARD.encode(chunks.concat());
        let binary = serde_json::json!({"resourceType": "Binary", "id": id, "contentType": content_type, "data": data});
        return fhir_json(StatusCode::OK, &binary);
    }
    let mut response = Body::from_stream(body.stream).into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Some(n) = body.length {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    response
}
