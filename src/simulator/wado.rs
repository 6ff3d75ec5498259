//! The simulator's WADO-RS series retrieval, as a PACS serves it (DICOMweb, PS3.18):
//! `GET /fhir/wado-rs/studies/{study}/series/{series}` answers the instances of a series
//! that one of its ImagingStudy resources lists, as `multipart/related;
//! type="application/dicom"` — one part per instance, each a small DICOM Part 10 file (the
//! preamble, `DICM`, and the instance's SOP Instance UID) — after content negotiation: an
//! `Accept` that allows no DICOM instances is answered 406. An Endpoint of the fixtures
//! with `address` `wado-rs` (relative to the FHIR base) names it. It only reads, behind the
//! guard like every simulator handler, and streams the parts as it makes them.

use super::guard::outcome;
use super::Shared;
use crate::fhir::model::codes::IssueType;
use crate::fhir::outcome::Issue;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, StreamExt};
use serde_json::Value;
use std::sync::Arc;
use tokio_util::bytes::Bytes;

/// The boundary between parts (never inside a part: the parts are made here).
const BOUNDARY: &str = "portico-simulated-pacs-boundary";

/// A DICOM Part 10 file naming `sop_instance_uid`: a 128-byte preamble, `DICM`, and the
/// Media Storage SOP Instance UID element (0002,0003), explicit VR little endian.
pub fn dicom_file(sop_instance_uid: &str) -> Vec<u8> {
    let mut value = sop_instance_uid.as_bytes().to_vec();
    if value.len() % 2 == 1 {
        value.push(0);
    }
    let mut file = vec![0u8; 128];
    file.extend_from_slice(b"DICM");
    file.extend_from_slice(&[0x02, 0x00, 0x03, 0x00, b'U', b'I']);
    file.extend_from_slice(&(value.len() as u16).to_le_bytes());
    file.extend_from_slice(&value);
    file
}

/// The SOP Instance UIDs of series `series` of study `study`, when an ImagingStudy lists it.
fn instances(shared: &Shared, study: &str, series: &str) -> Option<Vec<String>> {
    let is_study = |s: &Value| {
        s["identifier"].as_array().into_iter().flatten().any(|i| {
            i["system"] == "urn:dicom:uid"
                && i["value"].as_str().map(|v| v.trim_start_matches("urn:oid:")) == Some(study)
        })
    };
    let found = shared
        .store
        .of_type("ImagingStudy")
        .iter()
        .filter(|s| is_study(s))
        .find_map(|s| s["series"].as_array()?.iter().find(|x| x["uid"] == series).cloned())?;
    Some(
        found["instance"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["uid"].as_str().map(str::to_string))
            .collect(),
    )
}

pub(super) async fn series(
    State(shared): State<Arc<Shared>>,
    Path((study, series)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if !crate::sources::attachments::accepts_dicom_instances(accept) {
        return outcome(
            StatusCode::NOT_ACCEPTABLE,
            Issue::error(
                IssueType::NotSupported,
                "this series is retrieved as multipart/related; type=\"application/dicom\"",
            ),
        );
    }
    let Some(uids) = instances(&shared, &study, &series) else {
        return outcome(StatusCode::NOT_FOUND, Issue::error(IssueType::NotFound, "no such series"));
    };
    let parts = stream::iter(uids).map(|uid| {
        let mut part = format!("--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n").into_bytes();
        part.extend_from_slice(&dicom_file(&uid));
        part.extend_from_slice(b"\r\n");
        Ok::<_, std::io::Error>(Bytes::from(part))
    });
    let end = stream::once(async { Ok(Bytes::from(format!("--{BOUNDARY}--\r\n"))) });
    let mut response = Body::from_stream(parts.chain(end)).into_response();
    let content_type = format!("multipart/related; type=\"application/dicom\"; boundary={BOUNDARY}");
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    response
}
