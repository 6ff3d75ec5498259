//! `/fhir`: metadata, read, search and `$everything`. Everything but metadata needs a
//! bearer token; writes are refused with 405; only JSON is spoken (406 otherwise), except
//! that `$everything` also answers as a zip download (see `download_routes`).

use super::download_routes::{self, FormatKind};
use super::error::ApiError;
use super::{fhir_json, fhir_json_bytes, ApiState};
use crate::auth::Access;
use crate::fhir::bundle::{searchset, searchset_pieces, Entry, Searchset};
use crate::fhir::model::codes::SearchEntryMode;
use crate::fhir::outcome::operation_outcome_with_id;
use crate::fhir::search::subset::Subset;
use crate::read::{Matches, Out, Trail};
use axum::extract::{ConnectInfo, Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::net::SocketAddr;
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
                .into_response();
            }
            FormatKind::Zip | FormatKind::Unsupported => {
                return ApiError::NotAcceptable(format!(
                    "_format `{f}` is not supported here; this server speaks application/fhir+json"
                ))
                .into_response();
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

fn pairs(query: &Option<String>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()).into_owned().collect()
}

pub(super) fn lenient(headers: &HeaderMap) -> bool {
    crate::fhir::search::prefers_lenient(headers.get_all("prefer").iter().filter_map(|v| v.to_str().ok()))
}

async fn metadata(State(state): State<Arc<ApiState>>) -> Response {
    super::fhir_json_bytes(StatusCode::OK, state.capability.clone())
}

/// `GET [type]/[id]`, with `_summary` (not `count`) or `_elements` as R4 allows on a read;
/// a bad value of either is refused before anything is read.
async fn read(
    State(state): State<Arc<ApiState>>,
    access: Access,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Path((resource_type, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let subset = read_subset(&resource_type, &pairs(&query))?;
    let trail = Trail::new(format!("/fhir/{resource_type}/{id}"), Some(from.ip()));
    let resource = state.reader.read(&access, &trail, &resource_type, &id).await?;
    if subset == Subset::Whole {
        // As it was written for its decision, when it was: sent without building it again.
        return Ok(fhir_json_bytes(StatusCode::OK, resource.to_json().into()));
    }
    let mut resource = resource.into_value();
    subset.apply(&mut resource);
    Ok(fhir_json(StatusCode::OK, &resource))
}

/// The `_summary`/`_elements` of a read (other parameters are ignored, as they always were).
fn read_subset(resource_type: &str, pairs: &[(String, String)]) -> Result<Subset, ApiError> {
    let values = |name: &str| pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
    match Subset::parse(resource_type, &values("_summary"), &values("_elements")) {
        Ok(Subset::Count) => Err(ApiError::BadInput("_summary=count applies to searches, not to a read".into())),
        Ok(subset) => Ok(subset),
        Err(e) => Err(ApiError::BadInput(e.to_string())),
    }
}

async fn search(
    State(state): State<Arc<ApiState>>,
    access: Access,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(resource_type): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let pairs = pairs(&query);
    let trail = Trail::new(format!("/fhir/{resource_type}"), Some(from.ip()));
    let matches = state.reader.search(&access, &trail, &resource_type, &pairs, lenient(&headers)).await?;
    Ok(render_bundle(&state, &resource_type, &pairs, matches))
}

async fn everything(
    State(state): State<Arc<ApiState>>,
    access: Access,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let pairs = pairs(&query);
    let what = format!("/fhir/Patient/{id}/$everything");
    if download_routes::wants_zip(&pairs, &headers) {
        // The log tells a download from a paged read.
        let trail = Trail::new(format!("{what}?_format=zip"), Some(from.ip()));
        let download = download_routes::everything_zip(&state, &access, &trail, &id, &pairs).await?;
        return Ok(download_routes::attachment(download));
    }
    let trail = Trail::new(what, Some(from.ip()));
    let matches = state.reader.everything(&access, &trail, &id, &pairs, lenient(&headers)).await?;
    Ok(render_bundle(&state, &format!("Patient/{id}/$everything"), &pairs, matches))
}

/// A searchset page: matches, then what `_include`/`_revinclude` added (`search.mode`
/// `include`; `total` counts matches only), then an OperationOutcome entry carrying the
/// warnings.
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
    let next_url = matches.next_cursor().map(|c| url_with(Some(c)));
    let (total, warnings) = (matches.total(), matches.warnings().to_vec());
    let outcome = |warnings: &[crate::fhir::outcome::Issue]| {
        (!warnings.is_empty()).then(|| {
            let outcome = operation_outcome_with_id("warnings", warnings);
            (format!("urn:uuid:{}", uuid::Uuid::new_v4()), Out::outcome(outcome), SearchEntryMode::Outcome)
        })
    };
    let shell =
        Searchset { self_url: &self_url, next_url: next_url.as_deref(), total: Some(total), ..Searchset::default() };
    // A page of resources rendered for a kept decision: its entries were written once and
    // are sent as they are, and so is the whole answer around them when this page was
    // answered before with the same links, total and warnings (the warnings' entry keeps
    // its urn:uuid with it).
    let key = format!("{self_url}\n{next_url:?}\n{total}\n{warnings:?}");
    let kept = matches.kept_answer(&state.base_url, key, |kept| {
        searchset_pieces(&shell, Some(kept), outcome(&warnings).into_iter().collect())
    });
    if let Some(pieces) = kept {
        return super::fhir_json_pieces(StatusCode::OK, pieces);
    }
    let entry = |r: Out, mode: SearchEntryMode| {
        let full = format!("{}/{}/{}", state.base_url, r.resource_type(), r.id());
        (full, r, mode)
    };
    let (found, included) = matches.into_parts();
    let mut entries: Vec<(String, Out, SearchEntryMode)> =
        found.into_iter().map(|r| entry(r, SearchEntryMode::Match)).collect();
    entries.extend(included.into_iter().map(|r| entry(r, SearchEntryMode::Include)));
    entries.extend(outcome(&warnings));
    super::fhir_json_pieces(StatusCode::OK, searchset_pieces(&shell, None, entries))
}

/// "Who accessed my record": `GET /fhir/AuditEvent?patient=ID`, newest first, for the
/// patient themself (not an app acting for them); staff search by patient, agent and date.
/// Reading the log is itself logged.
async fn audit_events(
    State(state): State<Arc<ApiState>>,
    access: Access,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let pairs = pairs(&query);
    let trail = Trail::new("/fhir/AuditEvent", Some(from.ip()));
    let records = state.reader.access_log(&access, &trail, &pairs).await?;
    let entries = records
        .iter()
        .map(|r| {
            let e = crate::audit::as_audit_event(r).map_err(ApiError::AuditEntry)?;
            Ok((format!("{}/AuditEvent/{}", state.base_url, e["id"].as_str().unwrap_or("")), e, SearchEntryMode::Match))
        })
        .collect::<Result<Vec<Entry>, ApiError>>()?;
    let total = entries.len();
    let self_url = format!("{}/AuditEvent?{}", state.base_url, query.unwrap_or_default());
    let shell = Searchset { self_url: &self_url, total: Some(total), ..Searchset::default() };
    Ok(fhir_json(StatusCode::OK, &searchset(&shell, entries)))
}
