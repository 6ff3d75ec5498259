//! `/authorize` and its pages: check the request, then sign-in, the record picker and the
//! consent page, and back to the app with a code (or an RFC 6749 error, but only once the
//! client and redirect URI are verified). Thin: the checking is `auth::authorize`, codes are
//! `auth::oauth`, grants `auth::grants`.

use super::ApiState;
use super::pages::{PageError, check_csrf, field, form_fields, page, see_other, session};
use crate::auth::authorize::{self, AppView, AuthorizeParams, PendingAuthorization, Refusal};
use crate::auth::throttle::Endpoint;
use crate::i18n::t;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum_extra::extract::cookie::CookieJar;
use minijinja::context;
use serde::Serialize;
use std::sync::Arc;

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/authorize", get(authorize_get).post(authorize_post))
        .route("/authorize/pick", get(pick_page).post(pick))
        .route("/authorize/consent", get(consent_page).post(consent))
        .with_state(state)
}

fn redirect_with(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return PageError::bad_request(t("authorize-bad-redirect")).into_response();
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    see_other(url.as_str())
}

fn refusal(r: Refusal) -> Response {
    match r {
        Refusal::Page(message) => PageError::bad_request(message).into_response(),
        Refusal::Redirect { redirect_uri, error, description, state } => {
            let mut pairs = vec![("error", error), ("error_description", description.as_str())];
            if let Some(s) = state.as_deref() {
                pairs.push(("state", s));
            }
            redirect_with(&redirect_uri, &pairs)
        }
    }
}

async fn start(state: Arc<ApiState>, jar: CookieJar, params: AuthorizeParams) -> Result<Response, PageError> {
    if let Err(r) = authorize::check_lengths(&params) {
        return Ok(refusal(r));
    }
    if let Some(id) = params.client_id.as_deref() {
        state.throttle.check_client(Endpoint::Authorize, id).map_err(|l| PageError::too_many(l.retry_after))?;
    }
    let app = match params.client_id.as_deref() {
        Some(id) => state.oauth.clients.client(id).await.map_err(PageError::because)?.map(|c| AppView {
            client_id: c.client_id.clone(),
            name: c.name.clone(),
            redirect_uris: c.redirect_uris.clone(),
            allowed_scopes: c.allowed_scopes.clone(),
        }),
        None => None,
    };
    let pending = match authorize::check(&params, app.as_ref(), &state.base_url) {
        Ok(p) => p,
        Err(r) => return Ok(refusal(r)),
    };
    let (jar, mut s) = session(&state, jar).await?;
    s.data["authorize"] = crate::json::value(&pending);
    state.sessions.save(&s).await?;
    let next = if s.account_id.is_some() { "/authorize/pick" } else { "/login" };
    Ok((jar, see_other(next)).into_response())
}

async fn authorize_get(
    State(state): State<Arc<ApiState>>,
    jar: CookieJar,
    RawQuery(query): RawQuery,
    Query(params): Query<AuthorizeParams>,
) -> Result<Response, PageError> {
    form_fields(query.unwrap_or_default().as_bytes())?;
    start(state, jar, params).await
}

async fn authorize_post(
    State(state): State<Arc<ApiState>>,
    jar: CookieJar,
    body: Bytes,
) -> Result<Response, PageError> {
    form_fields(&body)?;
    let params: AuthorizeParams =
        serde_urlencoded::from_bytes(&body).map_err(|_| PageError::bad_request(t("authorize-malformed")))?;
    start(state, jar, params).await
}

/// The signed-in account and its pending request, or where to send the browser instead.
fn pending(s: &crate::auth::sessions::Session) -> Result<(String, PendingAuthorization), Box<Response>> {
    let Some(account) = s.account_id.clone() else { return Err(Box::new(see_other("/login"))) };
    match s.data.get("authorize").cloned().map(serde_json::from_value::<PendingAuthorization>) {
        Some(Ok(p)) => Ok((account, p)),
        _ => Err(Box::new(PageError::bad_request(t("authorize-nothing-pending")).into_response())),
    }
}

async fn pick_page(State(state): State<Arc<ApiState>>, jar: CookieJar) -> Result<Response, PageError> {
    let (jar, s) = session(&state, jar).await?;
    let (account, p) = match pending(&s) {
        Ok(x) => x,
        Err(r) => return Ok((jar, *r).into_response()),
    };
    let patients = super::record_pages::choices(&state, &account).await?;
    if patients.is_empty() {
        return Ok((jar, see_other("/enroll")).into_response());
    }
    let html = crate::portal::render(
        "pick.html",
        context! { title => t("pick-heading"), app_name => p.app_name, patients, csrf => s.csrf_token, signed_in => true },
    );
    Ok((jar, page(StatusCode::OK, html, None)).into_response())
}

async fn pick(State(state): State<Arc<ApiState>>, jar: CookieJar, body: Bytes) -> Result<Response, PageError> {
    let (jar, mut s) = session(&state, jar).await?;
    let form = form_fields(&body)?;
    check_csrf(&s, &form)?;
    let (account, mut p) = match pending(&s) {
        Ok(x) => x,
        Err(r) => return Ok((jar, *r).into_response()),
    };
    let chosen = field(&form, "link_id").unwrap_or_default();
    let links = state.accounts.links(&account).await.map_err(PageError::because)?;
    if !links.iter().any(|l| l.id == chosen) {
        return Err(PageError::bad_request(t("pick-choose-listed")));
    }
    p.link_id = Some(chosen);
    s.data["authorize"] = crate::json::value(&p);
    state.sessions.save(&s).await?;
    Ok((jar, see_other("/authorize/consent")).into_response())
}

#[derive(Serialize)]
struct ScopeChoice {
    scope: String,
    text: String,
}

async fn consent_page(State(state): State<Arc<ApiState>>, jar: CookieJar) -> Result<Response, PageError> {
    let (jar, s) = session(&state, jar).await?;
    let (account, p) = match pending(&s) {
        Ok(x) => x,
        Err(r) => return Ok((jar, *r).into_response()),
    };
    let Some(link_id) = p.link_id.clone() else { return Ok((jar, see_other("/authorize/pick")).into_response()) };
    let patient_name = super::record_pages::choices(&state, &account)
        .await?
        .into_iter()
        .find(|r| r.id == link_id)
        .map(|r| r.name)
        .unwrap_or_default();
    let scopes: Vec<ScopeChoice> = p
        .scopes
        .iter()
        .filter(|s| *s != "launch/patient" && *s != "fhirUser")
        .map(|sc| ScopeChoice { scope: sc.clone(), text: authorize::describe(sc) })
        .collect();
    let html = crate::portal::render(
        "consent.html",
        context! { title => t("consent-title"), app_name => p.app_name, patient_name, scopes, csrf => s.csrf_token, signed_in => true },
    );
    let origin = url::Url::parse(&p.redirect_uri).map(|u| u.origin().ascii_serialization()).ok();
    Ok((jar, page(StatusCode::OK, html, origin.as_deref())).into_response())
}

async fn consent(State(state): State<Arc<ApiState>>, jar: CookieJar, body: Bytes) -> Result<Response, PageError> {
    let (jar, mut s) = session(&state, jar).await?;
    let form = form_fields(&body)?;
    check_csrf(&s, &form)?;
    let (account, p) = match pending(&s) {
        Ok(x) => x,
        Err(r) => return Ok((jar, *r).into_response()),
    };
    let Some(link_id) = p.link_id.clone() else { return Ok((jar, see_other("/authorize/pick")).into_response()) };
    // The request is answered either way: it cannot be replayed from this session.
    s.data.as_object_mut().map(|o| o.remove("authorize"));
    state.sessions.save(&s).await?;
    if field(&form, "decision").as_deref() != Some("allow") {
        return Ok((
            jar,
            redirect_with(
                &p.redirect_uri,
                &[
                    ("error", "access_denied"),
                    ("error_description", "the patient did not allow access"),
                    ("state", &p.state),
                ],
            ),
        )
            .into_response());
    }
    let ticked: Vec<String> = form.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.clone()).collect();
    // Only what was offered can be granted; launch/patient and fhirUser come with the choice.
    let granted: Vec<String> = p
        .scopes
        .iter()
        .filter(|sc| {
            ticked.contains(sc)
                || *sc == "launch/patient"
                || (*sc == "fhirUser" && ticked.iter().any(|t| t == "openid"))
        })
        .cloned()
        .collect();
    let scopes = granted.join(" ");
    let grant_id = state.grants.give(&account, &link_id, &p.client_id, &scopes).await?;
    let code = state
        .oauth
        .tokens
        .issue_code(crate::auth::oauth::CodeRequest {
            grant_id,
            client_id: p.client_id.clone(),
            redirect_uri: p.redirect_uri.clone(),
            code_challenge: p.code_challenge.clone(),
            scopes,
            nonce: p.nonce.clone(),
        })
        .await
        .map_err(PageError::because)?;
    Ok((jar, redirect_with(&p.redirect_uri, &[("code", &code), ("state", &p.state)])).into_response())
}
