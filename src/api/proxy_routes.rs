//! Proxies a patient chooses: the "who can see your record" page (invite by e-mail, end,
//! renew, cancel an invitation; changes ahead), its JSON twin under `/api/account/proxies`,
//! the invitee's accept page (`/proxy-invitations/accept`, rate limited) and the staff's
//! "run the proxy lifecycle sweep now" (`POST /admin/proxies/sweep`). Thin: each checks
//! the session (and the CSRF token: a form field, or the `X-CSRF-Token` header for JSON)
//! and calls one function of `crate::proxies`.

use super::ApiState;
use super::extract::{SignedIn, Staff};
use super::pages::{PageError, check_csrf, field, form_fields, page, see_other};
use crate::auth::throttle::Endpoint;
use crate::i18n::t;
use crate::proxies::{ProxyError, Upcoming};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use minijinja::context;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/account/proxies", get(proxies_page))
        .route("/account/proxies/invite", post(invite))
        .route("/account/proxies/end", post(end))
        .route("/account/proxies/renew", post(renew))
        .route("/account/proxies/cancel", post(cancel))
        .route("/proxy-invitations/accept", get(accept_page).post(accept))
        .route("/api/account/proxies", get(list_json))
        .route("/api/account/proxies/invitations", post(invite_json))
        .route("/api/account/proxies/{link}/end", post(end_json))
        .route("/api/account/proxies/{link}/renew", post(renew_json))
        .route("/admin/proxies/sweep", post(sweep))
        .with_state(state)
}

/// The status a proxy error is answered with.
fn status_of(e: &ProxyError) -> StatusCode {
    match e {
        ProxyError::NotOwner | ProxyError::OtherAddress => StatusCode::FORBIDDEN,
        ProxyError::NotFound => StatusCode::NOT_FOUND,
        ProxyError::Invalid(_) | ProxyError::WrongBirthDate { left: 1.. } => StatusCode::BAD_REQUEST,
        ProxyError::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
        ProxyError::Dead | ProxyError::WrongBirthDate { .. } => StatusCode::GONE,
        // Text the database refused (a backstop of the checks at the door): bad input.
        ProxyError::Store(e) if e.is_bad_text() => StatusCode::BAD_REQUEST,
        ProxyError::Account(_) | ProxyError::Notice(_) | ProxyError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// A failure of the store or mail behind a page: logged, "try again".
fn unavailable(e: &ProxyError) -> bool {
    if status_of(e) == StatusCode::SERVICE_UNAVAILABLE {
        tracing::error!(error = %e, "proxies: store failed");
        true
    } else {
        false
    }
}

/// The changes ahead, each with the record's name as the account may see it.
async fn named(state: &ApiState, account: &str, upcoming: Vec<Upcoming>) -> Result<Vec<Value>, PageError> {
    let choices = super::record_pages::choices(state, account).await?;
    Ok(upcoming
        .into_iter()
        .map(|u| {
            let mut v = crate::json::value(&u);
            v["name"] = choices.iter().find(|c| c.id == u.link_id).map(|c| c.name.clone()).unwrap_or_default().into();
            v
        })
        .collect())
}

/// A proxy's relationship to the patient (an HL7 RoleCode), in the page's language.
fn relationship_words(code: &str) -> String {
    let key = match code {
        "SPS" => "proxies-rel-spouse",
        "PRN" => "proxies-rel-parent",
        "MTH" => "proxies-rel-mother",
        "FTH" => "proxies-rel-father",
        "FAMMEMB" => "proxies-rel-family",
        "NOK" => "proxies-rel-next-of-kin",
        "CAREGIVER" => "proxies-rel-caregiver",
        "GUARD" => "proxies-rel-guardian",
        other => return other.to_string(),
    };
    t(key)
}

async fn render_page(
    state: &ApiState,
    visitor: &SignedIn,
    status: StatusCode,
    error: Option<&ProxyError>,
    done: &str,
) -> Result<Response, PageError> {
    let now = state.clock.now();
    let account = &visitor.account;
    let (owner, proxies) = match state.proxies.proxies_of(account, now).await {
        Ok(p) => (true, p),
        Err(ProxyError::NotOwner) => (false, Vec::new()),
        Err(e) => return Err(PageError::because(e)),
    };
    let invitations =
        if owner { state.proxies.invitations(account, now).await.map_err(PageError::because)? } else { Vec::new() };
    let upcoming = state.proxies.upcoming(account, now).await.map_err(PageError::because)?;
    let upcoming = named(state, account, upcoming).await?;
    let proxies: Vec<Value> = proxies
        .iter()
        .map(|p| {
            let mut v = crate::json::value(p);
            v["relationship"] = relationship_words(&p.relationship).into();
            v
        })
        .collect();
    let invitations: Vec<Value> = invitations
        .iter()
        .map(|i| {
            let mut v = crate::json::value(i);
            v["relationship"] = relationship_words(&i.relationship).into();
            v
        })
        .collect();
    let html = crate::portal::render(
        "proxies.html",
        context! { title => t("proxies-title"), csrf => visitor.session.csrf_token, signed_in => true, owner,
        proxies, invitations, upcoming, done, adult_days => state.proxies.adult_days(),
        error => error.map(ProxyError::code), message => error.map(ToString::to_string) },
    );
    Ok(page(status, html, None))
}

async fn proxies_page(
    State(state): State<Arc<ApiState>>,
    visitor: SignedIn,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let done = form_fields(query.unwrap_or_default().as_bytes())?
        .into_iter()
        .find_map(|(k, v)| (k == "done").then_some(v))
        .filter(|d| ["invited", "ended", "renewed", "cancelled"].contains(&d.as_str()))
        .unwrap_or_default();
    let response = render_page(&state, &visitor, StatusCode::OK, None, &done).await?;
    Ok((visitor.jar, response).into_response())
}

/// Runs a form's action; on success back to the page with `done`, else the page with the error.
async fn form_action<F, Fut>(
    state: &ApiState,
    visitor: SignedIn,
    body: &Bytes,
    done: &str,
    act: F,
) -> Result<Response, PageError>
where
    F: FnOnce(Vec<(String, String)>, String) -> Fut,
    Fut: std::future::Future<Output = Result<(), ProxyError>>,
{
    let form = form_fields(body)?;
    check_csrf(&visitor.session, &form)?;
    match act(form, visitor.account.clone()).await {
        Ok(()) => Ok((visitor.jar, see_other(&format!("/account/proxies?done={done}"))).into_response()),
        Err(e) if unavailable(&e) => Err(PageError::unavailable()),
        Err(ProxyError::TooMany { retry_after }) => Err(PageError::too_many(retry_after)),
        Err(e) => {
            let response = render_page(state, &visitor, status_of(&e), Some(&e), "").await?;
            Ok((visitor.jar, response).into_response())
        }
    }
}

async fn invite(State(state): State<Arc<ApiState>>, visitor: SignedIn, body: Bytes) -> Result<Response, PageError> {
    state
        .throttle
        .check_account(Endpoint::ProxyInvite, &visitor.account)
        .map_err(|l| PageError::too_many(l.retry_after))?;
    let s = state.clone();
    form_action(&state, visitor, &body, "invited", |form, account| async move {
        let (email, relationship) =
            (field(&form, "email").unwrap_or_default(), field(&form, "relationship").unwrap_or_default());
        s.proxies.invite(&account, &email, &relationship, s.clock.now()).await.map(|_| ())
    })
    .await
}

async fn end(State(state): State<Arc<ApiState>>, visitor: SignedIn, body: Bytes) -> Result<Response, PageError> {
    let s = state.clone();
    form_action(&state, visitor, &body, "ended", |form, account| async move {
        s.proxies.end(&account, &field(&form, "link_id").unwrap_or_default(), s.clock.now()).await
    })
    .await
}

async fn renew(State(state): State<Arc<ApiState>>, visitor: SignedIn, body: Bytes) -> Result<Response, PageError> {
    let s = state.clone();
    form_action(&state, visitor, &body, "renewed", |form, account| async move {
        s.proxies.renew(&account, &field(&form, "link_id").unwrap_or_default(), s.clock.now()).await.map(|_| ())
    })
    .await
}

async fn cancel(State(state): State<Arc<ApiState>>, visitor: SignedIn, body: Bytes) -> Result<Response, PageError> {
    let s = state.clone();
    form_action(&state, visitor, &body, "cancelled", |form, account| async move {
        s.proxies.cancel(&account, &field(&form, "invitation_id").unwrap_or_default(), s.clock.now()).await
    })
    .await
}

fn accept_html(visitor: Option<&SignedIn>, token: &str, error: Option<&ProxyError>) -> String {
    let left = match error {
        Some(ProxyError::WrongBirthDate { left }) => *left,
        _ => 0,
    };
    crate::portal::render(
        "proxy_accept.html",
        context! { title => t("proxy-accept-title"), signed_in => visitor.is_some(),
        csrf => visitor.map(|v| v.session.csrf_token.clone()), token,
        error => error.map(ProxyError::code), message => error.map(ToString::to_string), left },
    )
}

/// The link from the invitation mail. Not signed in: how to sign in first.
async fn accept_page(
    State(state): State<Arc<ApiState>>,
    visitor: Result<SignedIn, Response>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let token = form_fields(query.unwrap_or_default().as_bytes())?
        .into_iter()
        .find_map(|(k, v)| (k == "token").then_some(v))
        .unwrap_or_default();
    let Ok(visitor) = visitor else {
        return Ok(page(StatusCode::OK, accept_html(None, "", None), None));
    };
    let open = state.proxies.is_open(&token, state.clock.now()).await.map_err(PageError::because)?;
    let (status, error) = if open { (StatusCode::OK, None) } else { (StatusCode::GONE, Some(ProxyError::Dead)) };
    let html = accept_html(Some(&visitor), &token, error.as_ref());
    Ok((visitor.jar, page(status, html, None)).into_response())
}

async fn accept(State(state): State<Arc<ApiState>>, visitor: SignedIn, body: Bytes) -> Result<Response, PageError> {
    let form = form_fields(&body)?;
    check_csrf(&visitor.session, &form)?;
    state
        .throttle
        .check_account(Endpoint::ProxyAccept, &visitor.account)
        .map_err(|l| PageError::too_many(l.retry_after))?;
    let token = field(&form, "token").unwrap_or_default();
    let birth = field(&form, "birth_date").unwrap_or_default();
    match state.proxies.accept(&visitor.account, &token, &birth, state.clock.now()).await {
        Ok(link) => Ok((visitor.jar, see_other(&format!("/records/{}", link.id))).into_response()),
        Err(e) if unavailable(&e) => Err(PageError::unavailable()),
        Err(e) => {
            let html = accept_html(Some(&visitor), &token, Some(&e));
            Ok((visitor.jar, page(status_of(&e), html, None)).into_response())
        }
    }
}

/// JSON answers: an error as `{"error": code, "message": …}`.
fn json_error(e: &ProxyError) -> Response {
    unavailable(e);
    let mut body = json!({"error": e.code(), "message": e.to_string()});
    if let ProxyError::WrongBirthDate { left } = e {
        body["tries_left"] = json!(left);
    }
    let mut response = (status_of(e), Json(body)).into_response();
    if let ProxyError::TooMany { retry_after } = e {
        response.headers_mut().insert(axum::http::header::RETRY_AFTER, (*retry_after).into());
    }
    response
}

/// Why the JSON API refuses a request before looking at it.
enum Refused {
    /// No signed-in session (401).
    SignedOut,
    /// A change without the session's `X-CSRF-Token` (403).
    Csrf,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            Refused::SignedOut => {
                (StatusCode::UNAUTHORIZED, json!({"error": "signed-out", "message": "sign in first"}))
            }
            Refused::Csrf => {
                (StatusCode::FORBIDDEN, json!({"error": "csrf", "message": "send the session's X-CSRF-Token"}))
            }
        };
        (status, Json(body)).into_response()
    }
}

/// A signed-in visitor for the JSON API (401 without one), with the CSRF header checked
/// on changes.
fn api_visitor(visitor: Result<SignedIn, Response>, headers: Option<&HeaderMap>) -> Result<SignedIn, Refused> {
    let visitor = visitor.map_err(|_| Refused::SignedOut)?;
    if let Some(h) = headers {
        let presented = h.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
        if !visitor.session.csrf_ok(presented) {
            return Err(Refused::Csrf);
        }
    }
    Ok(visitor)
}

async fn list_json(State(state): State<Arc<ApiState>>, visitor: Result<SignedIn, Response>) -> Response {
    let visitor = match api_visitor(visitor, None) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let now = state.clock.now();
    let (proxies, invitations) = match state.proxies.proxies_of(&visitor.account, now).await {
        Ok(p) => match state.proxies.invitations(&visitor.account, now).await {
            Ok(i) => (p, i),
            Err(e) => return json_error(&e),
        },
        Err(ProxyError::NotOwner) => (Vec::new(), Vec::new()),
        Err(e) => return json_error(&e),
    };
    match state.proxies.upcoming(&visitor.account, now).await {
        Ok(upcoming) => {
            Json(json!({"proxies": proxies, "invitations": invitations, "upcoming": upcoming})).into_response()
        }
        Err(e) => json_error(&e),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteBody {
    email: String,
    #[serde(default = "caregiver")]
    relationship: String,
}

fn caregiver() -> String {
    "CAREGIVER".into()
}

async fn invite_json(
    State(state): State<Arc<ApiState>>,
    visitor: Result<SignedIn, Response>,
    headers: HeaderMap,
    body: Result<super::text::TextJson<InviteBody>, super::text::TextError>,
) -> Response {
    let visitor = match api_visitor(visitor, Some(&headers)) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    if let Err(l) = state.throttle.check_account(Endpoint::ProxyInvite, &visitor.account) {
        return json_error(&ProxyError::TooMany { retry_after: l.retry_after });
    }
    let body = match body {
        Ok(super::text::TextJson(body)) => body,
        Err(e @ super::text::TextError::Control { .. }) => return json_error(&ProxyError::Invalid(e.to_string())),
        Err(_) => {
            return json_error(&ProxyError::Invalid("send {\"email\": …, \"relationship\": …} as JSON".into()));
        }
    };
    match state.proxies.invite(&visitor.account, &body.email, &body.relationship, state.clock.now()).await {
        Ok(invitation) => (StatusCode::CREATED, Json(json!(invitation))).into_response(),
        Err(e) => json_error(&e),
    }
}

async fn end_json(
    State(state): State<Arc<ApiState>>,
    visitor: Result<SignedIn, Response>,
    headers: HeaderMap,
    Path(link): Path<String>,
) -> Response {
    let visitor = match api_visitor(visitor, Some(&headers)) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    match state.proxies.end(&visitor.account, &link, state.clock.now()).await {
        Ok(()) => Json(json!({"ended": link})).into_response(),
        Err(e) => json_error(&e),
    }
}

async fn renew_json(
    State(state): State<Arc<ApiState>>,
    visitor: Result<SignedIn, Response>,
    headers: HeaderMap,
    Path(link): Path<String>,
) -> Response {
    let visitor = match api_visitor(visitor, Some(&headers)) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    match state.proxies.renew(&visitor.account, &link, state.clock.now()).await {
        Ok(until) => Json(json!({"renewed": link, "valid_until": until})).into_response(),
        Err(e) => json_error(&e),
    }
}

/// Staff: run the lifecycle sweep now (it also runs every `proxies.sweep_every`).
async fn sweep(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Staff(access): Staff,
) -> Result<Response, super::error::ApiError> {
    let result = state.proxies.sweep(state.clock.now()).await;
    let outcome = if result.is_ok() { "success" } else { "error" };
    let entry = crate::audit::AuditEntry::of(
        &access,
        "proxy-sweep",
        "/admin/proxies/sweep".into(),
        None,
        outcome,
        Some(from.ip()),
    );
    state.audit.record(&entry).await.map_err(|e| super::error::ApiError::Read(crate::read::ReadError::Store(e)))?;
    match result {
        Ok(s) => Ok(Json(json!({"told_ahead": s.told_ahead, "ended_at_majority": s.ended_at_majority,
                                "expiry_warnings": s.expiry_warnings}))
        .into_response()),
        Err(e) => Ok(json_error(&e)),
    }
}
