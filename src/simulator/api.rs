//! The simulator's FHIR handlers, kept thin: metadata, SMART discovery, read, search,
//! `Patient/{id}/$everything` and Bulk Data `$export` (when offered), refusals (405 for writes, 404 for unknown
//! endpoints and types) and the stats panel; each counts its call per route. Access
//! control, throttling and latency happen before these run (`guard`). They only read the
//! store; they never write to it and never log patient data.

use super::guard::{fhir_bytes, fhir_json, outcome};
use super::{bulk, capability, everything, search, Shared};
use crate::fhir::model::codes::IssueType;
use crate::fhir::outcome::Issue;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;

type Sim = State<Arc<Shared>>;

pub(super) async fn metadata(State(shared): Sim) -> Response {
    shared.counters.call("metadata".into());
    fhir_json(StatusCode::OK, &shared.capability)
}

pub(super) async fn smart_configuration(State(shared): Sim) -> Response {
    if !shared.options.issues_tokens() {
        return outcome(
            StatusCode::NOT_FOUND,
            Issue::error(IssueType::NotFound, "this server does not use SMART authorization"),
        );
    }
    let mut document = capability::smart_configuration(&shared.token_url);
    if shared.options.backend_services.is_some() {
        document["token_endpoint_auth_methods_supported"] = serde_json::json!(["private_key_jwt"]);
        document["token_endpoint_auth_signing_alg_values_supported"] = serde_json::json!(["RS384", "ES384"]);
        document["capabilities"] = serde_json::json!(["client-confidential-asymmetric"]);
    }
    ([(header::CONTENT_TYPE, "application/json")], document.to_string()).into_response()
}

fn unsupported_type(resource_type: &str) -> Response {
    outcome(
        StatusCode::NOT_FOUND,
        Issue::error(
            IssueType::NotSupported,
            format!("resource type `{resource_type}` is not supported by this server"),
        ),
    )
}

pub(super) async fn read(
    State(shared): Sim,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if resource_type == "Patient" && id == "$export" && shared.options.bulk {
        return bulk::kick_off(&shared, bulk::Level::Patient, &headers, uri.query().unwrap_or(""));
    }
    shared.counters.call(format!("read {resource_type}"));
    if !shared.supported.contains(&resource_type) {
        return unsupported_type(&resource_type);
    }
    if !crate::fhir::is_valid_id(&id) {
        return outcome(StatusCode::BAD_REQUEST, Issue::error(IssueType::Invalid, "not a valid FHIR logical id"));
    }
    if let Some(disk) = &shared.disk {
        return match disk.get(&resource_type, &id) {
            Ok(Some(resource)) => fhir_json(StatusCode::OK, &resource),
            Ok(None) => outcome(
                StatusCode::NOT_FOUND,
                Issue::error(IssueType::NotFound, format!("{resource_type}/{id} is not known")),
            ),
            Err(e) => {
                tracing::error!(error = %e, "simulator disk store read failed");
                outcome(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Issue::error(IssueType::Exception, "the store could not be read"),
                )
            }
        };
    }
    match shared.store.get(&resource_type, &id) {
        Some(resource) => fhir_json(StatusCode::OK, resource),
        None => outcome(
            StatusCode::NOT_FOUND,
            Issue::error(IssueType::NotFound, format!("{resource_type}/{id} is not known")),
        ),
    }
}

pub(super) async fn search(
    State(shared): Sim,
    Path(resource_type): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if resource_type == "$export" && shared.options.bulk {
        return bulk::kick_off(&shared, bulk::Level::System, &headers, uri.query().unwrap_or(""));
    }
    shared.counters.call(format!("search {resource_type}"));
    if !shared.supported.contains(&resource_type) {
        return unsupported_type(&resource_type);
    }
    let lenient =
        crate::fhir::search::prefers_lenient(headers.get_all("prefer").iter().filter_map(|v| v.to_str().ok()));
    match search::run(&shared, &resource_type, uri.query().unwrap_or(""), lenient) {
        Ok(bundle) => fhir_bytes(StatusCode::OK, bundle),
        Err((status, issue)) => outcome(status, issue),
    }
}

/// `GET /fhir/{type}/{id}/{operation}`: only `Patient/{id}/$everything`, and only when
/// the simulator offers it (else 404, as on a server without it).
pub(super) async fn instance_operation(
    State(shared): Sim,
    Path((resource_type, id, operation)): Path<(String, String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if resource_type == "Group" && operation == "$export" && shared.options.bulk {
        if !crate::fhir::is_valid_id(&id) {
            return outcome(StatusCode::BAD_REQUEST, Issue::error(IssueType::Invalid, "not a valid FHIR logical id"));
        }
        return bulk::kick_off(&shared, bulk::Level::Group(id), &headers, uri.query().unwrap_or(""));
    }
    if resource_type != "Patient" || operation != "$everything" || !shared.options.everything {
        return outcome(StatusCode::NOT_FOUND, Issue::error(IssueType::NotFound, "no such endpoint"));
    }
    shared.counters.call("Patient/$everything".into());
    if shared.controls.everything_broken() {
        return outcome(
            StatusCode::INTERNAL_SERVER_ERROR,
            Issue::error(IssueType::Exception, "$everything failed on this server"),
        );
    }
    if !crate::fhir::is_valid_id(&id) {
        return outcome(StatusCode::BAD_REQUEST, Issue::error(IssueType::Invalid, "not a valid FHIR logical id"));
    }
    match everything::run(&shared, &id, uri.query().unwrap_or("")) {
        Ok(bundle) => fhir_bytes(StatusCode::OK, bundle),
        Err((status, issue)) => outcome(status, issue),
    }
}

/// A Bulk Data export's status (202 while running, then the manifest).
pub(super) async fn bulk_status(State(shared): Sim, Path(job): Path<String>) -> Response {
    if !shared.options.bulk {
        return outcome(StatusCode::NOT_FOUND, Issue::error(IssueType::NotFound, "no such endpoint"));
    }
    bulk::status(&shared, &job)
}

/// Cancels a Bulk Data export.
pub(super) async fn bulk_cancel(State(shared): Sim, Path(job): Path<String>) -> Response {
    if !shared.options.bulk {
        return outcome(StatusCode::NOT_FOUND, Issue::error(IssueType::NotFound, "no such endpoint"));
    }
    bulk::cancel(&shared, &job)
}

/// One NDJSON file of a finished Bulk Data export.
pub(super) async fn bulk_file(State(shared): Sim, Path((job, file)): Path<(String, String)>) -> Response {
    if !shared.options.bulk {
        return outcome(StatusCode::NOT_FOUND, Issue::error(IssueType::NotFound, "no such endpoint"));
    }
    bulk::file(&shared, &job, &file)
}

/// 405 for anything but reading.
pub(super) async fn write_refused() -> Response {
    let mut resp =
        outcome(StatusCode::METHOD_NOT_ALLOWED, Issue::error(IssueType::NotSupported, "this server is read-only"));
    resp.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
    resp
}

/// Anything no route matched: writes under /fhir are 405, the rest 404.
pub(super) async fn fhir_fallback(req: Request) -> Response {
    let under_fhir = req.uri().path() == "/fhir" || req.uri().path().starts_with("/fhir/");
    if under_fhir && req.method() != Method::GET && req.method() != Method::HEAD {
        return write_refused().await;
    }
    outcome(StatusCode::NOT_FOUND, Issue::error(IssueType::NotFound, "no such endpoint"))
}

pub(super) async fn stats(State(shared): Sim) -> Json<super::SimulatorStats> {
    Json(shared.counters.snapshot())
}
