//! Bulk Data `$export` (IG 2.0) as the simulated hospital answers it, when offered: kick-off
//! at system (`$export`), all-patients (`Patient/$export`) and Group (`Group/{id}/$export`)
//! level with `Prefer: respond-async` (202 + `Content-Location`), a status URL that answers
//! 202 with `Retry-After` and `X-Progress` at least once, then 200 with the manifest
//! (`transactionTime`, `request`, `requiresAccessToken`, `output[{type, url, count}]`,
//! `error`), one NDJSON file per type streamed from the store, and DELETE to cancel.
//! `_type` and `_since` (by `meta.lastUpdated`) are honoured. Which resources a job holds is
//! worked out once in a blocking task (positions only, never copies of resources), for the
//! in-memory and the disk store alike. Jobs live in memory and go when the simulator stops.
//! The source's auth applies to status and files (they sit under `/fhir`). It never writes
//! to the store and never logs patient data.

use super::guard::outcome;
use super::search::{bad, decode_pairs};
use super::Shared;
use crate::fhir;
use crate::fhir::model::codes::IssueType;
use crate::fhir::outcome::Issue;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// The canonical OperationDefinitions of the three kick-offs.
pub(super) const SYSTEM_EXPORT: &str = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export";
pub(super) const PATIENT_EXPORT: &str = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export";
pub(super) const GROUP_EXPORT: &str = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export";

/// Which kick-off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Level {
    System,
    Patient,
    Group(String),
}

/// Positions per type (in `store.of_type(t)` or the disk store's file order).
type Selected = BTreeMap<String, Vec<usize>>;

struct Job {
    request: String,
    transaction_time: String,
    /// Filled by the blocking task: the positions, or why the export failed.
    result: Mutex<Option<Result<Selected, String>>>,
    polls: AtomicU32,
}

/// The simulator's export jobs, by id.
#[derive(Default)]
pub(super) struct BulkJobs {
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

impl BulkJobs {
    fn get(&self, id: &str) -> Option<Arc<Job>> {
        self.jobs.lock().ok()?.get(id).cloned()
    }
}

/// What a kick-off asked for.
struct Ask {
    types: Option<BTreeSet<String>>,
    since: Option<chrono::DateTime<chrono::Utc>>,
}

fn parse_ask(raw_query: &str) -> Result<Ask, (StatusCode, Issue)> {
    let mut ask = Ask { types: None, since: None };
    for (name, value) in decode_pairs(raw_query).map_err(bad)? {
        match name.as_str() {
            "_type" => {
                let types = ask.types.get_or_insert_with(BTreeSet::new);
                types.extend(value.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string));
            }
            "_since" => {
                let t = chrono::DateTime::parse_from_rfc3339(&value)
                    .map_err(|_| bad("`_since` must be an instant (e.g. 2026-01-01T00:00:00Z)"))?;
                ask.since = Some(t.with_timezone(&chrono::Utc));
            }
            "_outputFormat" => {
                if !matches!(value.as_str(), "application/fhir+ndjson" | "application/ndjson" | "ndjson") {
                    return Err(bad(format!("`_outputFormat` {value} is not supported")));
                }
            }
            other => return Err(bad(format!("`{other}` is not supported on $export here"))),
        }
    }
    Ok(ask)
}

/// A kick-off: 202 with the status URL in `Content-Location`.
pub(super) fn kick_off(shared: &Arc<Shared>, level: Level, headers: &HeaderMap, raw_query: &str) -> Response {
    shared.counters.call("$export".into());
    if let Ok(mut asked) = shared.counters.export_requests.lock() {
        let path = match &level {
            Level::System => "$export".to_string(),
            Level::Patient => "Patient/$export".to_string(),
            Level::Group(g) => format!("Group/{g}/$export"),
        };
        asked.push(if raw_query.is_empty() { path } else { format!("{path}?{raw_query}") });
    }
    let async_asked =
        headers.get_all("prefer").iter().filter_map(|v| v.to_str().ok()).any(|v| v.contains("respond-async"));
    if !async_asked {
        return outcome(
            StatusCode::BAD_REQUEST,
            Issue::error(IssueType::Invalid, "`Prefer: respond-async` is required"),
        );
    }
    let ask = match parse_ask(raw_query) {
        Ok(a) => a,
        Err((status, issue)) => return outcome(status, issue),
    };
    let members = match &level {
        Level::Group(id) => match group_members(shared, id) {
            Some(m) => Some(m),
            None => return outcome(StatusCode::NOT_FOUND, Issue::error(IssueType::NotFound, "no such Group")),
        },
        Level::Patient => None,
        Level::System => None,
    };
    let id = uuid::Uuid::new_v4().simple().to_string();
    let path = match &level {
        Level::System => "$export".to_string(),
        Level::Patient => "Patient/$export".to_string(),
        Level::Group(g) => format!("Group/{g}/$export"),
    };
    let query = if raw_query.is_empty() { String::new() } else { format!("?{raw_query}") };
    let job = Arc::new(Job {
        request: format!("{}/{path}{query}", shared.base_url),
        transaction_time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        result: Mutex::new(None),
        polls: AtomicU32::new(0),
    });
    if let Ok(mut jobs) = shared.bulk.jobs.lock() {
        jobs.insert(id.clone(), job.clone());
    }
    let compartment_only = level != Level::System;
    let shared_for_task = shared.clone();
    tokio::task::spawn_blocking(move || {
        let selected = select(&shared_for_task, &ask, compartment_only, members.as_ref());
        if let Ok(mut result) = job.result.lock() {
            *result = Some(selected);
        }
    });
    let location = format!("{}/_bulk/{id}", shared.base_url);
    let mut resp = StatusCode::ACCEPTED.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::CONTENT_LOCATION, v);
    }
    resp
}

/// The patients a Group of the store names (`member.entity` references to Patients).
fn group_members(shared: &Shared, id: &str) -> Option<BTreeSet<String>> {
    let group = match &shared.disk {
        Some(disk) => disk.get("Group", id).ok().flatten()?,
        None => shared.store.get("Group", id)?.clone(),
    };
    Some(
        fhir::path_values(&group, "member.entity")
            .iter()
            .filter_map(|e| e.get("reference").and_then(Value::as_str))
            .filter_map(|r| fhir::reference::parse_local(r, None))
            .filter(|(t, _)| *t == "Patient")
            .map(|(_, id)| id.to_string())
            .collect(),
    )
}

fn types_of(shared: &Shared) -> Vec<String> {
    match &shared.disk {
        Some(disk) => disk.types().map(str::to_string).collect(),
        None => shared.store.types().map(str::to_string).collect(),
    }
}

/// Whether `r` changed after `since` (a resource without `meta.lastUpdated` is kept: the
/// server cannot tell).
fn changed_after(r: &Value, since: Option<chrono::DateTime<chrono::Utc>>) -> bool {
    let Some(since) = since else { return true };
    match r.pointer("/meta/lastUpdated").and_then(Value::as_str).map(chrono::DateTime::parse_from_rfc3339) {
        Some(Ok(t)) => t > since,
        _ => true,
    }
}

/// The resource at `position` of its type.
fn at(shared: &Shared, resource_type: &str, position: usize) -> Result<Option<Value>, String> {
    match &shared.disk {
        Some(disk) => disk.at(resource_type, position).map_err(|e| e.to_string()),
        None => Ok(shared.store.of_type(resource_type).get(position).cloned()),
    }
}

/// The positions a job holds: per type asked (all the store holds, or only the patient
/// compartment for Patient and Group level, within `members` for a Group), changed after
/// `_since`.
fn select(
    shared: &Shared,
    ask: &Ask,
    compartment_only: bool,
    members: Option<&BTreeSet<String>>,
) -> Result<Selected, String> {
    let mut selected = Selected::new();
    for t in types_of(shared) {
        if ask.types.as_ref().is_some_and(|asked| !asked.contains(&t)) {
            continue;
        }
        let in_compartment = t == "Patient" || fhir::compartment::get(&t).is_some();
        if compartment_only && !in_compartment {
            continue;
        }
        let candidates: Vec<usize> = match (members, t.as_str()) {
            (Some(members), "Patient") => {
                let mut found = Vec::new();
                for id in members {
                    let position = match &shared.disk {
                        Some(disk) => disk.position("Patient", id),
                        None => shared.store.of_type("Patient").iter().position(|r| r["id"] == id.as_str()),
                    };
                    found.extend(position);
                }
                found
            }
            (Some(members), _) => {
                let mut found: BTreeSet<usize> = BTreeSet::new();
                for id in members {
                    match &shared.disk {
                        Some(disk) => found.extend(disk.compartment(&t, id).iter().map(|p| *p as usize)),
                        None => found.extend(shared.index.positions(&t, id)),
                    }
                }
                found.into_iter().collect()
            }
            (None, _) => {
                let n = match &shared.disk {
                    Some(disk) => disk.count(&t),
                    None => shared.store.of_type(&t).len(),
                };
                (0..n).collect()
            }
        };
        let mut kept = Vec::new();
        for p in candidates {
            if ask.since.is_none() {
                kept.push(p);
                continue;
            }
            if let Some(r) = at(shared, &t, p)? {
                if changed_after(&r, ask.since) {
                    kept.push(p);
                }
            }
        }
        if !kept.is_empty() {
            selected.insert(t, kept);
        }
    }
    Ok(selected)
}

/// `GET` on a status URL: 202 while the job is worked out (and at the first poll), then the
/// manifest; 500 with an OperationOutcome when the export failed.
pub(super) fn status(shared: &Shared, id: &str) -> Response {
    shared.counters.call("$export status".into());
    let Some(job) = shared.bulk.get(id) else {
        return outcome(StatusCode::NOT_FOUND, Issue::error(IssueType::NotFound, "no such export job"));
    };
    if shared.controls.bulk_broken() {
        return outcome(StatusCode::INTERNAL_SERVER_ERROR, Issue::error(IssueType::Exception, "the export failed"));
    }
    let first = job.polls.fetch_add(1, Ordering::SeqCst) == 0;
    let result = job.result.lock().ok().and_then(|r| r.clone());
    let selected = match result {
        Some(Ok(s)) if !first => s,
        Some(Err(e)) => {
            tracing::error!(error = %e, "simulator export failed");
            return outcome(StatusCode::INTERNAL_SERVER_ERROR, Issue::error(IssueType::Exception, "the export failed"));
        }
        _ => {
            let mut resp = StatusCode::ACCEPTED.into_response();
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(1));
            resp.headers_mut().insert("x-progress", HeaderValue::from_static("in progress"));
            return resp;
        }
    };
    let output: Vec<Value> = selected
        .iter()
        .map(|(t, positions)| {
            json!({"type": t, "url": format!("{}/_bulk/{id}/{t}.ndjson", shared.base_url), "count": positions.len()})
        })
        .collect();
    let manifest = json!({
        "transactionTime": job.transaction_time,
        "request": job.request,
        "requiresAccessToken": shared.options.issues_tokens(),
        "output": output,
        "error": [],
    });
    let mut resp = (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], manifest.to_string()).into_response();
    resp.headers_mut().insert(header::EXPIRES, HeaderValue::from_static("Thu, 01 Jan 2099 00:00:00 GMT"));
    resp
}

/// `DELETE` on a status URL: the job goes.
pub(super) fn cancel(shared: &Shared, id: &str) -> Response {
    shared.counters.call("$export cancel".into());
    let removed = shared.bulk.jobs.lock().ok().and_then(|mut jobs| jobs.remove(id));
    match removed {
        Some(_) => StatusCode::ACCEPTED.into_response(),
        None => outcome(StatusCode::NOT_FOUND, Issue::error(IssueType::NotFound, "no such export job")),
    }
}

/// Resources per chunk of a streamed file.
const CHUNK: usize = 256;

/// One output file, `{Type}.ndjson`, streamed a chunk of resources at a time.
pub(super) fn file(shared: &Arc<Shared>, id: &str, name: &str) -> Response {
    shared.counters.call("$export file".into());
    let not_found = || outcome(StatusCode::NOT_FOUND, Issue::error(IssueType::NotFound, "no such export file"));
    let Some(job) = shared.bulk.get(id) else { return not_found() };
    let Some(resource_type) = name.strip_suffix(".ndjson") else { return not_found() };
    let positions = match job.result.lock().ok().and_then(|r| r.clone()) {
        Some(Ok(selected)) => match selected.get(resource_type) {
            Some(p) => p.clone(),
            None => return not_found(),
        },
        _ => return not_found(),
    };
    let chunks: Vec<Vec<usize>> = positions.chunks(CHUNK).map(<[usize]>::to_vec).collect();
    let (shared, resource_type) = (shared.clone(), resource_type.to_string());
    let stream = futures::stream::iter(chunks).map(move |chunk| {
        let mut buf = Vec::new();
        for p in chunk {
            match at(&shared, &resource_type, p) {
                Ok(Some(r)) => {
                    buf.extend_from_slice(r.to_string().as_bytes());
                    buf.push(b'\n');
                }
                Ok(None) => {}
                Err(e) => return Err(std::io::Error::other(e)),
            }
        }
        Ok(Bytes::from(buf))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/fhir+ndjson"));
    resp
}
