//! The patient's rights pages under `/records/{link}`: ask for a correction (of an item the
//! account can see, or in free text), follow its status and file a statement of
//! disagreement after a denial (`corrections`); the accounting of disclosures as a page, a
//! printable copy and a FHIR Bundle (`disclosures`, the patient themself only). Thin: the
//! record is opened through the reader as the account's view (the page view logged first),
//! an item is looked up only among what was released to it, `rights` does the rest, and
//! each request, statement and accounting is in the access log before the answer.

use super::extract::SignedIn;
use super::pages::{PageError, csrf_form, field, page, see_other};
use super::record_pages::{Opened, RecordPageError, failure, frame, message, open_page, own_link, render};
use super::{ApiState, fhir_json};
use crate::auth::sessions::Session;
use crate::i18n::{t, tr};
use crate::portal::fhir_text;
use crate::portal::record_view::RecordView;
use crate::rights::{Correction, NewRequest, RightsError, disclosures};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/records/{link}/corrections", get(corrections_page).post(request_correction))
        .route("/records/{link}/corrections/{id}/disagreement", post(disagree))
        .route("/records/{link}/corrections/{id}/fhir", get(correction_fhir))
        .route("/records/{link}/disclosures", get(disclosures_page))
        .route("/records/{link}/disclosures/print", get(disclosures_print))
        .route("/records/{link}/disclosures/fhir", get(disclosures_fhir))
        .with_state(state)
}

/// Accepted corrections of the record's items, by item `Type/id`, that this account may
/// see and whose item is still the version they were made about.
pub(super) async fn beside_items(state: &ApiState, opened: &Opened) -> Value {
    let all = match state.corrections.of_patient(opened.record.patient_id()).await {
        Ok(all) => all,
        Err(e) => {
            // The page still shows the record; the notes beside items are missing this time.
            tracing::error!(error = %e, "correction requests unavailable for a record page");
            return json!({});
        }
    };
    let current: HashMap<String, String> = opened
        .record
        .resources()
        .iter()
        .map(|r| {
            let key = format!("{}/{}", r["resourceType"].as_str().unwrap_or(""), r["id"].as_str().unwrap_or(""));
            (key, crate::rights::corrections::fingerprint(r))
        })
        .collect();
    let mut by_item: HashMap<String, Vec<Value>> = HashMap::new();
    for c in all.iter().filter(|c| c.status == "accepted" && visible(c, opened)) {
        let (Some(item), Some(print)) = (&c.item, &c.item_fingerprint) else { continue };
        if current.get(item) == Some(print) {
            let decided = c.decided_at.as_deref().map(fhir_text::date).unwrap_or_default();
            by_item.entry(item.clone()).or_default().push(json!({"text": c.requested_change, "decided": decided}));
        }
    }
    json!(by_item)
}

fn visible(c: &Correction, opened: &Opened) -> bool {
    c.visible_to(&opened.access.viewer.actor, &opened.link.relationship)
}

/// The page's view of a request.
fn row(c: &Correction, opened: &Opened, now: chrono::DateTime<chrono::Utc>) -> Value {
    let item = c.item.as_ref().map(|key| {
        let title = opened.record.resources().iter().find(|r| {
            format!("{}/{}", r["resourceType"].as_str().unwrap_or(""), r["id"].as_str().unwrap_or("")) == *key
        });
        title.map_or_else(|| t("corrections-an-item"), |r| item_title(r).unwrap_or_else(|| key.clone()))
    });
    json!({
        "id": c.id,
        "item": item,
        "text": c.requested_change,
        "status": c.status,
        "received": fhir_text::date(&c.received_at),
        "due": fhir_text::date(&c.due_at),
        "extended": c.extension_reason,
        "overdue": c.overdue(now),
        "reason": c.decision_reason,
        "decided": c.decided_at.as_deref().map(fhir_text::date),
        "disagreement": c.disagreement,
        "may_disagree": c.status == "denied" && c.disagreement.is_none(),
    })
}

/// `GET /records/{link}/corrections[?item=Type/id]`: the account's requests and the form.
async fn corrections_page(
    State(state): State<Arc<ApiState>>,
    visitor: SignedIn,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Path(link): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (jar, s, _, opened) =
        match open_page(&state, visitor, &link, format!("/records/{link}/corrections"), from).await {
            Ok(v) => v,
            Err(r) => return r,
        };
    let response = corrections_view(&state, &s, &opened, q.get("item").map(String::as_str), None).await;
    (jar, response).into_response()
}

async fn corrections_view(
    state: &ApiState,
    s: &Session,
    opened: &Opened,
    item: Option<&str>,
    problem: Option<(StatusCode, String)>,
) -> Response {
    let chosen = match item.filter(|i| !i.is_empty()) {
        Some(key) => match find_item(opened, key) {
            Some(r) => Some(json!({"key": key, "title": item_title(r).unwrap_or_else(|| key.to_string())})),
            None => return failure(RecordPageError::NotFound, s),
        },
        None => None,
    };
    let requests = match state.corrections.of_patient(opened.record.patient_id()).await {
        Ok(all) => all,
        Err(e) => return PageError::because(e).signed_in(s).into_response(),
    };
    let now = chrono::Utc::now();
    let rows: Vec<Value> = requests.iter().filter(|c| visible(c, opened)).map(|c| row(c, opened, now)).collect();
    let view = RecordView::of(&opened.record, now);
    let context = frame(s, opened, &view, "corrections", &t("section-corrections"));
    let (status, problem) = problem.map_or((StatusCode::OK, None), |(st, p)| (st, Some(p)));
    let mut response = render(
        "record_corrections.html",
        context,
        json!({"requests": rows, "item": chosen, "problem": problem, "max": crate::rights::corrections::MAX_TEXT}),
    );
    *response.status_mut() = status;
    response
}

/// An item's name in words (its code, vaccine, medication or type).
fn item_title(r: &Value) -> Option<String> {
    ["code", "vaccineCode", "medicationCodeableConcept", "type"]
        .iter()
        .find_map(|k| fhir_text::concept(r.get(*k)).or_else(|| fhir_text::first_concept(r.get(*k))))
}

/// An item of the released record by `Type/id` (what the viewer cannot see is not found).
fn find_item<'a>(opened: &'a Opened, key: &str) -> Option<&'a Value> {
    let (t, id) = key.split_once('/')?;
    opened.record.resources().iter().find(|r| r["resourceType"] == t && r["id"] == id)
}

/// Writes a rights action to the access log; false when it could not be written.
async fn logged(state: &ApiState, opened: &Opened, action: &str, what: String, from: SocketAddr) -> bool {
    let entry = crate::audit::AuditEntry::of(
        &opened.access,
        action,
        what,
        Some(opened.record.patient_id().to_string()),
        "success",
        Some(from.ip()),
    );
    match state.audit.record(&entry).await {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(error = %e, "audit log write failed on a rights action");
            false
        }
    }
}

/// `POST /records/{link}/corrections`: a new request (fields `item`, optional, and `text`).
async fn request_correction(
    State(state): State<Arc<ApiState>>,
    visitor: SignedIn,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Path(link): Path<String>,
    body: Bytes,
) -> Response {
    let form = match csrf_form(&visitor.session, &body) {
        Ok(form) => form,
        Err(e) => return (visitor.jar, e.signed_in(&visitor.session)).into_response(),
    };
    let (jar, s, _, opened) =
        match open_page(&state, visitor, &link, format!("/records/{link}/corrections"), from).await {
            Ok(v) => v,
            Err(r) => return r,
        };
    let item_key = field(&form, "item").filter(|i| !i.is_empty());
    let item = match item_key.as_deref() {
        Some(key) => match find_item(&opened, key) {
            Some(r) => Some((key.to_string(), crate::rights::corrections::fingerprint(r))),
            None => return (jar, failure(RecordPageError::NotFound, &s)).into_response(),
        },
        None => None,
    };
    let text = field(&form, "text").unwrap_or_default();
    let new = NewRequest {
        patient_id: opened.record.patient_id(),
        requester: &opened.access.viewer.actor,
        relationship: &opened.link.relationship,
        item,
        text: &text,
    };
    let response = match state.corrections.request(&new, chrono::Utc::now()).await {
        Ok(c) => {
            if logged(&state, &opened, "correction-request", format!("/records/{link}/corrections/{}", c.id), from)
                .await
            {
                see_other(&format!("/records/{link}/corrections"))
            } else {
                failure(RecordPageError::Unavailable, &s)
            }
        }
        Err(RightsError::Invalid(problem)) => {
            corrections_view(&state, &s, &opened, item_key.as_deref(), Some((StatusCode::BAD_REQUEST, problem))).await
        }
        Err(RightsError::TooMany) => {
            let problem =
                tr("corrections-problem-too-many", &[("count", crate::rights::corrections::MAX_WAITING.into())]);
            corrections_view(&state, &s, &opened, None, Some((StatusCode::TOO_MANY_REQUESTS, problem))).await
        }
        Err(e) => PageError::because(e).signed_in(&s).into_response(),
    };
    (jar, response).into_response()
}

/// A request of the record `link` that this account may see; else the page-not-found.
async fn visible_request(state: &ApiState, opened: &Opened, id: &str, s: &Session) -> Result<Correction, Response> {
    match state.corrections.get(id).await {
        Ok(Some(c)) if c.patient_id == opened.record.patient_id() && visible(&c, opened) => Ok(c),
        Ok(_) => Err(failure(RecordPageError::NotFound, s)),
        Err(e) => Err(PageError::because(e).signed_in(s).into_response()),
    }
}

/// `POST /records/{link}/corrections/{id}/disagreement`: a statement after a denial.
async fn disagree(
    State(state): State<Arc<ApiState>>,
    visitor: SignedIn,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Path((link, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = match csrf_form(&visitor.session, &body) {
        Ok(form) => form,
        Err(e) => return (visitor.jar, e.signed_in(&visitor.session)).into_response(),
    };
    let (jar, s, _, opened) =
        match open_page(&state, visitor, &link, format!("/records/{link}/corrections"), from).await {
            Ok(v) => v,
            Err(r) => return r,
        };
    if let Err(r) = visible_request(&state, &opened, &id, &s).await {
        return (jar, r).into_response();
    }
    let text = field(&form, "text").unwrap_or_default();
    let response = match state.corrections.disagree(&id, &text, chrono::Utc::now()).await {
        Ok(_) => {
            if logged(&state, &opened, "correction-disagreement", format!("/records/{link}/corrections/{id}"), from)
                .await
            {
                see_other(&format!("/records/{link}/corrections"))
            } else {
                failure(RecordPageError::Unavailable, &s)
            }
        }
        Err(RightsError::Invalid(problem) | RightsError::Conflict(problem)) => {
            corrections_view(&state, &s, &opened, None, Some((StatusCode::BAD_REQUEST, problem))).await
        }
        Err(e) => PageError::because(e).signed_in(&s).into_response(),
    };
    (jar, response).into_response()
}

/// `GET /records/{link}/corrections/{id}/fhir`: the request as a Task and Communications.
async fn correction_fhir(
    State(state): State<Arc<ApiState>>,
    visitor: SignedIn,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Path((link, id)): Path<(String, String)>,
) -> Response {
    let what = format!("/records/{link}/corrections/{id}/fhir");
    let (jar, s, _, opened) = match open_page(&state, visitor, &link, what.clone(), from).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let response = match visible_request(&state, &opened, &id, &s).await {
        Ok(c) => {
            fhir_json(StatusCode::OK, &crate::rights::correction_fhir::bundle(&c, &format!("{}{what}", origin(&state))))
        }
        Err(r) => r,
    };
    (jar, response).into_response()
}

/// The gateway's public origin (the FHIR base without `/fhir`).
fn origin(state: &ApiState) -> String {
    state.base_url.strip_suffix("/fhir").unwrap_or(&state.base_url).to_string()
}

/// How the accounting is handed out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Page,
    Print,
    Fhir,
}

async fn disclosures_page(
    State(state): State<Arc<ApiState>>,
    visitor: SignedIn,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Path(link): Path<String>,
) -> Response {
    accounting(state, visitor, from, link, Form::Page).await
}

async fn disclosures_print(
    State(state): State<Arc<ApiState>>,
    visitor: SignedIn,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Path(link): Path<String>,
) -> Response {
    accounting(state, visitor, from, link, Form::Print).await
}

async fn disclosures_fhir(
    State(state): State<Arc<ApiState>>,
    visitor: SignedIn,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Path(link): Path<String>,
) -> Response {
    accounting(state, visitor, from, link, Form::Fhir).await
}

/// The accounting of disclosures, for the patient themself only: a proxy is told to ask
/// HIM (a parent's view of a teenager's disclosures could reveal confidential care).
async fn accounting(state: Arc<ApiState>, visitor: SignedIn, from: SocketAddr, link: String, form: Form) -> Response {
    match own_link(&state, &visitor.account, &link).await {
        Ok(l) if l.relationship == "SELF" => {}
        Ok(_) => {
            let (title, text) = (t("disclosures-only-patient-title"), t("disclosures-only-patient"));
            return (visitor.jar.clone(), message(StatusCode::FORBIDDEN, &visitor.session, &title, &text))
                .into_response();
        }
        Err(e) => return (visitor.jar.clone(), failure(e, &visitor.session)).into_response(),
    }
    let path = match form {
        Form::Page => format!("/records/{link}/disclosures"),
        Form::Print => format!("/records/{link}/disclosures/print"),
        Form::Fhir => format!("/records/{link}/disclosures/fhir"),
    };
    let (jar, s, _, opened) = match open_page(&state, visitor, &link, path.clone(), from).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let now = chrono::Utc::now();
    let since = disclosures::since(now);
    let patient = opened.record.patient_id().to_string();
    let records = match state.reader.disclosures_of(&opened.access, &patient, Some(&opened.record), &since).await {
        Ok(r) => r,
        Err(e) => return (jar, PageError::because(e).signed_in(&s).into_response()).into_response(),
    };
    let response = match form {
        Form::Fhir => match disclosures::bundle(&records, &state.base_url, &format!("{}{path}", origin(&state))) {
            Ok(b) => fhir_json(StatusCode::OK, &b),
            Err(e) => PageError::because(e).signed_in(&s).into_response(),
        },
        _ => {
            let names = match client_names(&state, &records).await {
                Ok(n) => n,
                Err(e) => return (jar, PageError::because(e).signed_in(&s).into_response()).into_response(),
            };
            let rows = disclosures::rows(&records, &names, &opened.access.viewer.actor);
            let view = RecordView::of(&opened.record, now);
            let extra = json!({"rows": rows, "since": fhir_text::date(&since), "today": fhir_text::date(&crate::rights::corrections::stamp(now))});
            if form == Form::Print {
                let mut context = frame(&s, &opened, &view, "disclosures", &t("disclosures-accounting"));
                if let (Some(c), Value::Object(e)) = (context.as_object_mut(), extra) {
                    c.extend(e);
                }
                page(StatusCode::OK, crate::portal::render("disclosures_print.html", context), None)
            } else {
                render(
                    "record_disclosures.html",
                    frame(&s, &opened, &view, "disclosures", &t("section-disclosures")),
                    extra,
                )
            }
        }
    };
    (jar, response).into_response()
}

/// The registered names of the apps and partners in `records`.
pub(super) async fn client_names(
    state: &ApiState,
    records: &[crate::audit::AuditRecord],
) -> Result<disclosures::ClientNames, crate::auth::oauth::ClientError> {
    let mut names = disclosures::ClientNames::new();
    for id in disclosures::clients(records) {
        if let Some(name) = state.oauth.clients.name_of(&id).await? {
            names.insert(id, name);
        }
    }
    Ok(names)
}
