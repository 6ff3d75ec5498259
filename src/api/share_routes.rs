//! Share links over HTTP, outside the portal pages: the SMART Health Links manifest
//! (`POST /shl/{token}`) and file address (`GET /shl/file/{ticket}`), open to any origin
//! (CORS, no credentials) so that SHL viewers can open a link; the JSON API with which a
//! patient's app makes, lists and revokes links (`/share-links`, bearer token); and the
//! plain web view for a person without an app (`/share`, the viewer URL of every link).
//! Thin: parse, call `share::Shares`, answer. A link that does not exist, expired or was
//! revoked is answered 404 with nothing about it.

use super::ApiState;
use super::pages::{PageError, page};
use crate::auth::Access;
use crate::i18n::{t, tr};
use crate::portal::record_view::RecordView;
use crate::read::{ReadError, Trail};
use crate::share::{CONTENT_TYPE, ShareError, ShareRequest, jwe, payload::Payload, snapshot};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;

pub fn router(state: Arc<ApiState>) -> Router {
    let open_to_viewers = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE]);
    let shl = Router::new()
        .route("/shl/{token}", post(manifest))
        .route("/shl/file/{ticket}", get(file))
        .layer(open_to_viewers)
        .with_state(state.clone());
    Router::new()
        .route("/share-links", post(create).get(list))
        .route("/share-links/{id}", delete(revoke))
        .route("/share", get(viewer_page))
        .route("/share/view", post(view))
        .route("/static/share.js", get(script))
        .with_state(state)
        .merge(shl)
}

/// A JSON answer, never cached.
fn json_answer(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, Json(body.clone())).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The JSON answer of a share error (manifest and app API).
fn refusal(e: &ShareError) -> Response {
    let (status, body) = match e {
        ShareError::Invalid(_) | ShareError::Sections(_) => (StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
        ShareError::NotSharer => (StatusCode::FORBIDDEN, json!({"error": e.to_string()})),
        ShareError::Gone | ShareError::Read(ReadError::NotFound) => {
            (StatusCode::NOT_FOUND, json!({"error": "not found"}))
        }
        ShareError::Passcode { remaining } => {
            (StatusCode::UNAUTHORIZED, json!({"error": e.to_string(), "remainingAttempts": remaining}))
        }
        ShareError::TooMany { retry_after } => {
            let mut r = json_answer(StatusCode::TOO_MANY_REQUESTS, &json!({"error": e.to_string()}));
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            return r;
        }
        ShareError::Read(ReadError::Forbidden(_) | ReadError::InsufficientScope(_)) => {
            (StatusCode::FORBIDDEN, json!({"error": e.to_string()}))
        }
        ShareError::Store(e) if e.is_bad_text() => (StatusCode::BAD_REQUEST, json!({"error": super::error::BAD_TEXT})),
        ShareError::Read(_) | ShareError::Store(_) | ShareError::Seal | ShareError::Accounts => {
            tracing::error!(error = %e, "share link request failed");
            (StatusCode::SERVICE_UNAVAILABLE, json!({"error": "please try again in a moment"}))
        }
    };
    json_answer(status, &body)
}

/// `POST /shl/{token}` with `{"recipient": …, "passcode"?: …, "embeddedLengthMax"?: n}`.
async fn manifest(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return refusal(&ShareError::Invalid("the body must be JSON with `recipient`".into()));
    };
    if let Err(e) = super::text::check_json(&request) {
        return refusal(&ShareError::Invalid(e.to_string()));
    }
    let recipient = request["recipient"].as_str().unwrap_or("");
    let passcode = request["passcode"].as_str();
    let max = request["embeddedLengthMax"].as_u64();
    let now = chrono::Utc::now();
    let opened = match state.shares.open(&token, recipient, passcode, from.ip(), now).await {
        Ok(o) => o,
        Err(e) => return refusal(&e),
    };
    let file = match max {
        Some(max) if usize::try_from(max).is_ok_and(|m| opened.link.jwe.len() > m) => {
            match state.shares.file_location(&opened.link, now).await {
                Ok(location) => json!({"contentType": CONTENT_TYPE, "location": location}),
                Err(e) => return refusal(&e),
            }
        }
        _ => json!({"contentType": CONTENT_TYPE, "embedded": opened.link.jwe}),
    };
    json_answer(StatusCode::OK, &json!({"files": [file]}))
}

/// `GET /shl/file/{ticket}`: the JWE of a manifest's `location`.
async fn file(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Path(ticket): Path<String>,
) -> Response {
    match state.shares.file(&ticket, from.ip(), chrono::Utc::now()).await {
        Ok(jwe) => {
            let mut r = jwe.into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/jose"));
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => refusal(&e),
    }
}

/// `POST /share-links` (an app, for its patient): `{"sections": [...], "label": …,
/// "passcode"?: …, "expires": RFC 3339}` → 201 with the `shlink:/` (shown this once).
async fn create(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    access: Access,
    body: Bytes,
) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return refusal(&ShareError::Invalid("the body must be JSON".into()));
    };
    if let Err(e) = super::text::check_json(&v) {
        return refusal(&ShareError::Invalid(e.to_string()));
    }
    let sections: Vec<String> =
        v["sections"].as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_string)).collect();
    let Some(expires_at) = v["expires"]
        .as_str()
        .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
        .map(|e| e.with_timezone(&chrono::Utc))
    else {
        return refusal(&ShareError::Invalid("`expires` (an RFC 3339 instant) is required".into()));
    };
    let req = ShareRequest {
        sections,
        label: v["label"].as_str().unwrap_or("").to_string(),
        passcode: v["passcode"].as_str().map(str::to_string),
        expires_at,
    };
    let trail = Trail::new("/share-links", Some(from.ip()));
    match state.shares.create(&state.reader, &access, &trail, &req, chrono::Utc::now()).await {
        Ok(created) => {
            let mut body = serde_json::to_value(&created).unwrap_or_default();
            body["qrSvg"] = created.qr_svg.clone().map_or(Value::Null, Value::String);
            json_answer(StatusCode::CREATED, &body)
        }
        Err(e) => refusal(&e),
    }
}

/// A link as its maker sees it (never its `shlink:/`, which is not kept).
pub(super) fn described(l: &crate::share::links::LinkRow, now: chrono::DateTime<chrono::Utc>) -> Value {
    let status = if l.revoked_at.is_some() {
        "revoked"
    } else if l.expires_at <= crate::share::links::at(now) {
        "expired"
    } else if l.failed_attempts >= crate::share::PASSCODE_ATTEMPTS {
        "locked"
    } else {
        "active"
    };
    json!({
        "id": l.id, "label": l.label, "sections": l.sections,
        "sectionWords": l.sections.iter().map(|s| snapshot::words(s)).collect::<Vec<_>>(),
        "items": l.items, "passcode": l.passcode_hash.is_some(), "created": l.created_at, "expires": l.expires_at,
        "status": status, "views": l.views, "lastViewed": l.last_viewed_at,
    })
}

/// `GET /share-links`: the links made through the app's record link.
async fn list(State(state): State<Arc<ApiState>>, access: Access) -> Response {
    let Some(link) = access.basis.link.clone() else { return refusal(&ShareError::NotSharer) };
    match state.shares.list(&link).await {
        Ok(links) => {
            let now = chrono::Utc::now();
            json_answer(StatusCode::OK, &json!({"links": links.iter().map(|l| described(l, now)).collect::<Vec<_>>()}))
        }
        Err(e) => refusal(&e),
    }
}

/// `DELETE /share-links/{id}`: 204, or 404 for a link that is not one of the record link's
/// live links.
async fn revoke(State(state): State<Arc<ApiState>>, access: Access, Path(id): Path<String>) -> Response {
    let Some(link) = access.basis.link.clone() else { return refusal(&ShareError::NotSharer) };
    match state.shares.revoke(&link, &id, chrono::Utc::now()).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => refusal(&e),
    }
}

/// The viewer page's one script: copies the link from the address's fragment (which never
/// reaches the server) into the form. Without it the person pastes the link.
const SCRIPT: &str = "document.addEventListener('DOMContentLoaded',function(){var h=location.hash.slice(1);\
var f=document.getElementById('shlink');if(f&&h.indexOf('shlink:/')===0&&!f.value){f.value=h;}});\n";

async fn script() -> Response {
    let mut r = SCRIPT.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A viewer page, allowed its one script.
fn viewer(status: StatusCode, context: Value) -> Response {
    let mut r = page(status, crate::portal::render("share_viewer.html", context), None);
    let csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
    r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    r
}

fn form(message: Option<&str>, recipient: &str) -> Value {
    json!({"title": t("share-viewer-open"), "message": message, "recipient": recipient, "signed_in": false})
}

/// `GET /share` (`#shlink:/…`): the form to open a link.
async fn viewer_page() -> Response {
    viewer(StatusCode::OK, form(None, ""))
}

/// `POST /share/view`: opens the link (like a manifest request, logged and counted) and
/// shows what it holds as a page.
async fn view(State(state): State<Arc<ApiState>>, ConnectInfo(from): ConnectInfo<SocketAddr>, body: Bytes) -> Response {
    let fields = match super::pages::form_fields(&body) {
        Ok(fields) => fields,
        Err(e) => return e.into_response(),
    };
    let field = |n: &str| super::pages::field(&fields, n).unwrap_or_default();
    let recipient = field("recipient");
    let again = |status: StatusCode, text: &str| viewer(status, form(Some(text), &recipient));
    let Ok(payload) = Payload::parse(&field("shlink")) else {
        return again(StatusCode::BAD_REQUEST, &t("share-viewer-not-a-link"));
    };
    let (Some(token), Ok(key)) = (state.shares.token_of(&payload.url), payload.key_bytes()) else {
        return again(StatusCode::BAD_REQUEST, &t("share-viewer-not-ours"));
    };
    let passcode = field("passcode");
    let passcode = (!passcode.is_empty()).then_some(passcode.as_str());
    let opened = match state.shares.open(&token, &recipient, passcode, from.ip(), chrono::Utc::now()).await {
        Ok(o) => o,
        Err(ShareError::Invalid(m)) => return again(StatusCode::BAD_REQUEST, &m),
        Err(ShareError::Passcode { remaining }) => {
            return again(StatusCode::UNAUTHORIZED, &tr("share-viewer-wrong-passcode", &[("left", remaining.into())]));
        }
        Err(ShareError::Gone) => {
            return again(StatusCode::NOT_FOUND, &t("share-viewer-gone"));
        }
        Err(ShareError::TooMany { retry_after }) => return PageError::too_many(retry_after).into_response(),
        Err(e) => return PageError::because(e).into_response(),
    };
    let bundle: Option<Value> =
        jwe::decrypt(&key, &opened.link.jwe).ok().and_then(|(_, plain)| serde_json::from_slice(&plain).ok());
    let Some(bundle) = bundle else {
        return again(StatusCode::BAD_REQUEST, &t("share-viewer-damaged"));
    };
    let record = state.reader.reopen_shared(&opened.link.patient_id, snapshot::resources_of(&bundle));
    let view = RecordView::of(&record, chrono::Utc::now());
    let context = json!({
        "title": opened.link.label, "shown": true, "label": opened.link.label, "view": view,
        "sections": opened.link.sections, "created": crate::portal::fhir_text::date(&opened.link.created_at),
        "signed_in": false,
    });
    viewer(StatusCode::OK, context)
}
