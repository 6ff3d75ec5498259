//! `/fhir`: metadata, read, search and `$everything`. Everything but metadata needs a
//! bearer token; writes are refused with 405; only JSON is spoken (406 otherwise), except
//! that `$everything` also answers as a zip download (see `download_routes`).

use super::download_routes::{self, FormatKind};
use super::error::ApiError;
use super::{capability, fhir_json, ApiState};
use crate::auth::{Access, AuthError};
use crate::fhir::bundle::searchset;
use crate::fhir::outcome::operation_outcome;
use crate::policy::Interaction;
use crate::policy::Role;
use crate::read::Matches;
use crate::read::ReadError;
use axum::extract::{ConnectInfo, Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/metadata", get(metadata).fallback(read_only))
        .route("/Patient/{id}/$everything", get(everything).fallback(read_only))
        .route("/AuditEvent", get(audit_events).fallback(read_only))
        .route("/{resource_type}", get(search).fallback(read_only))
        .route("/{resource_type}/{id}", get(read).fallback(read_only))
        .fallback(|| async { ApiError::NoRoute })
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Checks what every FHIR request must satisfy before a handler runs: query size and a
/// JSON format.
async fn guard(State(state): State<Arc<ApiState>>, request: Request, next: Next) -> Response {
    let query = request.uri().query().unwrap_or("");
    if query.len() > state.max_query_bytes {
        return ApiError::QueryTooLong(state.max_query_bytes).into_response();
    }
    let format =
        url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "_format").map(|(_, v)| v.into_owned());
    // `$everything` also answers as a zip (`_format=zip`, `Accept: application/zip`).
    let everything = request.uri().path().ends_with("/$everything");
    if let Some(f) = format {
        match download_routes::format_kind(&f) {
            FormatKind::Json => {}
            FormatKind::Zip if everything => {}
            // Not a format at all: a bad parameter value. A real format we do not produce: 406.
            FormatKind::Malformed => {
                return ApiError::BadInput(format!(
                    "_format `{f}` is not a format (use json or application/fhir+json, or zip for $everything)"
                ))
                .into_response()
            }
            FormatKind::Zip | FormatKind::Unsupported => {
                return ApiError::NotAcceptable(format!(
                    "_format `{f}` is not supported here; this server speaks application/fhir+json"
                ))
                .into_response()
            }
        }
    } else if let Some(accept) = request.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()) {
        let ok = accept.split(',').map(|m| m.split(';').next().unwrap_or("").trim()).any(|m| {
            m.is_empty()
                || m == "*/*"
                || m == "application/*"
                || m == "application/json"
                || m == "application/fhir+json"
                || (everything && m.eq_ignore_ascii_case("application/zip"))
        });
        if !ok {
            return ApiError::NotAcceptable(format!(
                "cannot answer in `{accept}`; this server speaks application/fhir+json"
            ))
            .into_response();
        }
    }
    next.run(request).await
}

async fn read_only(method: Method) -> ApiError {
    ApiError::MethodNotAllowed(method.to_string())
}

/// Who is calling: a SMART access token (looked up on every request, so revocation and
/// termination take effect at once) or, from a loopback `peer` on a loopback public URL, a
/// configured demo token.
pub(super) async fn access(state: &ApiState, headers: &HeaderMap, peer: IpAddr) -> Result<Access, ApiError> {
    let header = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match state.tokens.authenticate(header, peer) {
        Ok(a) => return Ok(a),
        Err(AuthError::Missing) => return Err(AuthError::Missing.into()),
        Err(AuthError::Invalid) => {}
    }
    let token = header
        .and_then(|h| h.trim().split_once(' '))
        .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    let Some(token) = token else { return Err(AuthError::Invalid.into()) };
    let access = crate::auth::access_from_token(&state.oauth.tokens, token)
        .await
        .map_err(|e| ApiError::Read(ReadError::Store(e)))?;
    access.ok_or(ApiError::Auth(AuthError::Invalid))
}

/// Refuses (403) an interaction the caller's scopes do not grant at all.
fn permit(access: &Access, resource_type: &str, interaction: Interaction) -> Result<(), ApiError> {
    if access.viewer.permits(resource_type, interaction) {
        Ok(())
    } else {
        Err(ApiError::InsufficientScope(resource_type.to_string()))
    }
}

fn pairs(query: &Option<String>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()).into_owned().collect()
}

pub(super) fn lenient(headers: &HeaderMap) -> bool {
    crate::fhir::search::prefers_lenient(headers.get_all("prefer").iter().filter_map(|v| v.to_str().ok()))
}

async fn metadata(State(state): State<Arc<ApiState>>) -> Response {
    fhir_json(StatusCode::OK, &capability::capability_statement(&state.base_url, &state.started_at))
}

/// Writes the access to the audit log before the answer goes out; if the log cannot be
/// written, the answer is an error (no unaudited data access).
async fn audited<T>(
    state: &ApiState,
    access: &Access,
    from: SocketAddr,
    action: &str,
    what: String,
    patient_id: Option<String>,
    result: Result<T, ApiError>,
) -> Result<T, ApiError> {
    let outcome = match &result {
        Ok(_) => "success",
        Err(ApiError::Read(ReadError::NotFound)) => "not-found",
        Err(ApiError::Read(ReadError::Forbidden(_)) | ApiError::InsufficientScope(_)) => "denied",
        Err(_) => "error",
    };
    let entry = crate::audit::AuditEntry::of(access, action, what, patient_id, outcome, Some(from.ip()));
    if let Err(e) = state.audit.record(&entry).await {
        tracing::error!(error = %e, "audit log write failed; refusing the answer");
        return Err(ApiError::Read(ReadError::Store(e)));
    }
    result
}

/// The patient a search names (`patient`, `subject`, or a Patient `_id`).
fn searched_patient(resource_type: &str, pairs: &[(String, String)]) -> Option<String> {
    let wanted: &[&str] = if resource_type == "Patient" { &["_id"] } else { &["patient", "subject"] };
    pairs
        .iter()
        .find(|(k, _)| wanted.contains(&k.split(':').next().unwrap_or("")))
        .map(|(_, v)| v.trim_start_matches("Patient/").to_string())
}

async fn read(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((resource_type, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let access = access(&state, &headers, from.ip()).await?;
    let result = match permit(&access, &resource_type, Interaction::Read) {
        Ok(()) => state.reader.read(&access, &resource_type, &id).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let patient = match (&result, resource_type.as_str()) {
        (_, "Patient") => Some(id.clone()),
        (Ok(_), t) => state.aggregator.locate(t, &id).await,
        _ => None,
    };
    let resource =
        audited(&state, &access, from, "read", format!("/fhir/{resource_type}/{id}"), patient, result).await?;
    Ok(fhir_json(StatusCode::OK, &resource))
}

async fn search(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(resource_type): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let access = access(&state, &headers, from.ip()).await?;
    let pairs = pairs(&query);
    let result = match permit(&access, &resource_type, Interaction::Search) {
        Ok(()) => state.reader.search(&access, &resource_type, &pairs, lenient(&headers)).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let patient = searched_patient(&resource_type, &pairs);
    let matches = audited(&state, &access, from, "search", format!("/fhir/{resource_type}"), patient, result).await?;
    Ok(render_bundle(&state, &resource_type, &pairs, matches))
}

async fn everything(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let access = access(&state, &headers, from.ip()).await?;
    let pairs = pairs(&query);
    // $everything returns what the scopes grant (types without a scope are left out by the
    // policy); an app with no search scope at all may not run it.
    let scoped = if access.viewer.app_scopes.as_ref().is_some_and(|scopes| !scopes.iter().any(|s| s.search)) {
        Err(ApiError::InsufficientScope("$everything".into()))
    } else {
        Ok(())
    };
    let what = format!("/fhir/Patient/{id}/$everything");
    if download_routes::wants_zip(&pairs, &headers) {
        let result = match scoped {
            Ok(()) => download_routes::everything_zip(&state, &access, &id, &pairs).await,
            Err(e) => Err(e),
        };
        // The log tells a download from a paged read.
        let what = format!("{what}?_format=zip");
        let download = audited(&state, &access, from, "download", what, Some(id.clone()), result).await?;
        return Ok(download_routes::attachment(download));
    }
    let result = match scoped {
        Ok(()) => state.reader.everything(&access, &id, &pairs, lenient(&headers)).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let matches = audited(&state, &access, from, "everything", what, Some(id.clone()), result).await?;
    Ok(render_bundle(&state, &format!("Patient/{id}/$everything"), &pairs, matches))
}

/// A searchset page: matches, then an OperationOutcome entry carrying the warnings.
fn render_bundle(state: &ApiState, path: &str, pairs: &[(String, String)], matches: Matches) -> Response {
    let url_with = |cursor: Option<&str>| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs.iter().filter(|(k, _)| k != "_cursor") {
            q.append_pair(k, v);
        }
        if let Some(c) = cursor {
            q.append_pair("_cursor", c);
        }
        let q = q.finish();
        if q.is_empty() {
            format!("{}/{path}", state.base_url)
        } else {
            format!("{}/{path}?{q}", state.base_url)
        }
    };
    let self_url = {
        let cursor = pairs.iter().find(|(k, _)| k == "_cursor").map(|(_, v)| v.as_str());
        url_with(cursor)
    };
    let next_url = matches.next_cursor.as_deref().map(|c| url_with(Some(c)));
    let mut entries: Vec<(String, serde_json::Value, &str)> = matches
        .resources
        .into_iter()
        .map(|r| {
            let full = format!(
                "{}/{}/{}",
                state.base_url,
                r["resourceType"].as_str().unwrap_or(""),
                r["id"].as_str().unwrap_or("")
            );
            (full, r, "match")
        })
        .collect();
    if !matches.warnings.is_empty() {
        let mut outcome = operation_outcome(&matches.warnings);
        outcome["id"] = json!("warnings");
        entries.push((format!("urn:uuid:{}", uuid::Uuid::new_v4()), outcome, "outcome"));
    }
    fhir_json(StatusCode::OK, &searchset(&self_url, next_url.as_deref(), Some(matches.total), entries))
}

/// "Who accessed my record": `GET /fhir/AuditEvent?patient=ID`, newest first, for the
/// patient themself (not an app acting for them); staff search by patient, agent and date.
/// Reading the log is itself logged.
async fn audit_events(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let access = access(&state, &headers, from.ip()).await?;
    let pairs = pairs(&query);
    let parsed = crate::audit::AuditQuery::parse(&pairs, state.reader.zone());
    let patient = parsed.as_ref().ok().and_then(|q| q.patient.clone());
    let result = async {
        let q = parsed.map_err(|e| ApiError::Read(ReadError::BadRequest(e)))?;
        if !access.is_staff() {
            // A patient reads the log of their own record only (not through an app).
            let patient = q
                .patient
                .clone()
                .ok_or_else(|| ApiError::Read(ReadError::BadRequest("name the patient (patient=[id])".into())))?;
            let own = match &access.patients {
                crate::auth::PatientScope::Person { source, source_patient_id } => {
                    state.aggregator.index().gateway_id_of(source, source_patient_id).is_some_and(|g| g == patient)
                }
                crate::auth::PatientScope::Any => false,
            };
            if !(own && access.viewer.role == Role::Patient && access.viewer.app_scopes.is_none()) {
                return Err(ApiError::Read(ReadError::NotFound));
            }
        }
        state.audit.search(&q).await.map_err(|e| ApiError::Read(ReadError::Store(e)))
    }
    .await;
    let records = audited(&state, &access, from, "search", "/fhir/AuditEvent".into(), patient.clone(), result).await?;
    let entries = records
        .iter()
        .map(|r| {
            let e = crate::audit::as_audit_event(r);
            (format!("{}/AuditEvent/{}", state.base_url, e["id"].as_str().unwrap_or("")), e, "match")
        })
        .collect::<Vec<_>>();
    let total = entries.len();
    let self_url = format!("{}/AuditEvent?{}", state.base_url, query.unwrap_or_default());
    Ok(fhir_json(StatusCode::OK, &searchset(&self_url, None, Some(total), entries)))
}
