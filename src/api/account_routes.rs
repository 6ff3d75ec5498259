//! Sign-in, registration, e-mail verification, enrollment, sign-out and the account page.
//! Thin: each checks the session and CSRF token, calls one function of `auth::accounts`,
//! renders or redirects. Sign-in and registration also set the long-lived device cookie
//! by which a sign-in from a new browser is told apart (see `auth::email`).

use super::ApiState;
use super::extract::SignedIn;
use super::pages::{PageError, check_csrf, field, form_fields, page, see_other, session, session_cookie};
use crate::auth::accounts::AccountError;
use crate::auth::hashing::Busy;
use crate::auth::throttle::Endpoint;
use crate::i18n::t;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use minijinja::context;
use std::net::SocketAddr;
use std::sync::Arc;

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/register", get(register_page).post(register))
        .route("/enroll", get(enroll_page).post(enroll))
        .route("/verify-email", get(verify_email))
        .route("/verify-email/resend", axum::routing::post(resend_verification))
        .route("/logout", axum::routing::post(logout))
        .route("/account", get(account))
        .route("/account/apps/revoke", axum::routing::post(revoke_app))
        .route("/static/portal.css", get(stylesheet))
        .with_state(state)
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        crate::portal::STYLESHEET,
    )
        .into_response()
}

/// Where to go once signed in (or enrolled): back into a pending authorization, else home.
pub(super) fn next_step(session: &crate::auth::sessions::Session) -> &'static str {
    if session.data.get("authorize").is_some() { "/authorize/pick" } else { "/account" }
}

fn app_name(session: &crate::auth::sessions::Session) -> String {
    session.data.pointer("/authorize/app_name").and_then(|v| v.as_str()).unwrap_or_default().to_string()
}

fn login_html(state: &ApiState, s: &crate::auth::sessions::Session, message: &str, username: &str) -> String {
    login_html_with(state, s, message, username, "")
}

fn login_html_with(
    state: &ApiState,
    s: &crate::auth::sessions::Session,
    message: &str,
    username: &str,
    notice: &str,
) -> String {
    crate::portal::render(
        "login.html",
        context! { title => t("sign-in"), csrf => s.csrf_token, app_name => app_name(s), message, notice, username, oidc_label => state.oidc_label, signed_in => s.account_id.is_some() },
    )
}

/// `?signed_out=1`: a record page found the session ended (idle or absolute timeout).
async fn login_page(
    State(state): State<Arc<ApiState>>,
    jar: CookieJar,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Response, PageError> {
    let (jar, s) = session(&state, jar).await?;
    let signed_out = query.as_deref().is_some_and(|q| q.split('&').any(|p| p == "signed_out=1"));
    let notice = if signed_out { t("login-signed-out") } else { String::new() };
    Ok((jar, page(StatusCode::OK, login_html_with(&state, &s, "", "", &notice), None)).into_response())
}

/// The device cookie: a random value per browser, kept as long as the browser allows (400 days).
const DEVICE_COOKIE: &str = "portico_device";

/// The browser's device cookie value, a new one added to `jar` when it has none.
fn device(state: &ApiState, jar: CookieJar) -> (CookieJar, String) {
    if let Some(v) = jar.get(DEVICE_COOKIE).map(|c| c.value().to_string()).filter(|v| v.len() == 64) {
        return (jar, v);
    }
    let value = crate::auth::email::new_secret();
    let cookie = Cookie::build((DEVICE_COOKIE, value.clone()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.secure_cookies)
        .permanent()
        .build();
    (jar.add(cookie), value)
}

async fn login(State(state): State<Arc<ApiState>>, jar: CookieJar, body: Bytes) -> Result<Response, PageError> {
    let (jar, s) = session(&state, jar).await?;
    let form = form_fields(&body)?;
    check_csrf(&s, &form)?;
    let username = field(&form, "username").unwrap_or_default();
    let password = field(&form, "password").unwrap_or_default();
    state.throttle.check_account(Endpoint::Login, &username).map_err(|l| PageError::too_many(l.retry_after))?;
    match state.accounts.sign_in(&username, &password, chrono::Utc::now()).await {
        Ok(account_id) => {
            let (jar, device) = device(&state, jar);
            state
                .accounts
                .signed_in_from(&account_id, &device, chrono::Utc::now())
                .await
                .map_err(PageError::because)?;
            let (cookie, signed_in) = state.sessions.sign_in(&s, &account_id).await?;
            let jar = remember_language(&state, jar, &account_id).await?;
            Ok((jar.add(session_cookie(&state, cookie)), see_other(next_step(&signed_in))).into_response())
        }
        Err(AccountError::Store(e)) => Err(e.into()),
        Err(AccountError::Busy(_)) => Err(PageError::too_many(Busy::RETRY_AFTER_SECS)),
        Err(e) => {
            Ok((jar, page(StatusCode::UNAUTHORIZED, login_html(&state, &s, &said(&e), &username), None))
                .into_response())
        }
    }
}

fn register_html(
    state: &ApiState,
    s: &crate::auth::sessions::Session,
    message: &str,
    username: &str,
    display_name: &str,
) -> String {
    crate::portal::render(
        "register.html",
        context! { title => t("register-heading"), csrf => s.csrf_token, message, username, display_name, min_length => state.min_password_length, signed_in => s.account_id.is_some() },
    )
}

async fn register_page(State(state): State<Arc<ApiState>>, jar: CookieJar) -> Result<Response, PageError> {
    let (jar, s) = session(&state, jar).await?;
    Ok((jar, page(StatusCode::OK, register_html(&state, &s, "", "", ""), None)).into_response())
}

async fn register(State(state): State<Arc<ApiState>>, jar: CookieJar, body: Bytes) -> Result<Response, PageError> {
    let (jar, s) = session(&state, jar).await?;
    let form = form_fields(&body)?;
    check_csrf(&s, &form)?;
    let (username, password, name) = (
        field(&form, "username").unwrap_or_default(),
        field(&form, "password").unwrap_or_default(),
        field(&form, "display_name").unwrap_or_default(),
    );
    state.throttle.check_account(Endpoint::Register, &username).map_err(|l| PageError::too_many(l.retry_after))?;
    match state.accounts.create_local(&username, &password, &name).await {
        Ok(account_id) => {
            let now = chrono::Utc::now();
            // The account keeps the language it registered in: its mails are in it.
            state.accounts.set_language(&account_id, crate::i18n::current()).await.map_err(PageError::because)?;
            state.accounts.send_verification(&account_id, now).await.map_err(PageError::because)?;
            let (jar, device) = device(&state, jar);
            state.accounts.note_device(&account_id, &device, now).await.map_err(PageError::because)?;
            let (cookie, _) = state.sessions.sign_in(&s, &account_id).await?;
            Ok((jar.add(session_cookie(&state, cookie)), see_other("/enroll")).into_response())
        }
        Err(AccountError::Store(e)) => Err(e.into()),
        Err(AccountError::Busy(_)) => Err(PageError::too_many(Busy::RETRY_AFTER_SECS)),
        // A taken name gets the same answer as any other refusal to avoid telling who has an account.
        Err(AccountError::NameTaken) => Ok((
            jar,
            page(StatusCode::BAD_REQUEST, register_html(&state, &s, &t("register-refused"), &username, &name), None),
        )
            .into_response()),
        Err(e) => {
            Ok((jar, page(StatusCode::BAD_REQUEST, register_html(&state, &s, &said(&e), &username, &name), None))
                .into_response())
        }
    }
}

async fn enroll_html(
    state: &ApiState,
    s: &crate::auth::sessions::Session,
    account_id: &str,
    message: &str,
    notice: &str,
) -> Result<String, PageError> {
    let email_verified = state.accounts.email_verified(account_id).await.map_err(PageError::because)?;
    Ok(crate::portal::render(
        "enroll.html",
        context! { title => t("connect-record"), csrf => s.csrf_token, message, notice, signed_in => true,
        email_verified, by_demographics => state.accounts.enroll_by_demographics() },
    ))
}

async fn enroll_page(State(state): State<Arc<ApiState>>, visitor: SignedIn) -> Result<Response, PageError> {
    let SignedIn { jar, session: s, account } = visitor;
    Ok((jar, page(StatusCode::OK, enroll_html(&state, &s, &account, "", "").await?, None)).into_response())
}

/// The link from the verification mail (`?token=…`): confirms the address whoever follows
/// it (the token is the proof), once.
async fn verify_email(
    State(state): State<Arc<ApiState>>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Response, PageError> {
    let token = form_fields(query.unwrap_or_default().as_bytes())?
        .into_iter()
        .find_map(|(k, v)| (k == "token").then_some(v))
        .unwrap_or_default();
    let confirmed = state.accounts.verify_email(&token, chrono::Utc::now()).await.map_err(PageError::because)?;
    let (status, title) = if confirmed {
        (StatusCode::OK, t("verify-confirmed-title"))
    } else {
        (StatusCode::BAD_REQUEST, t("verify-link-broken-title"))
    };
    let html = crate::portal::render("verify_email.html", context! { title, confirmed, signed_in => false });
    Ok(page(status, html, None))
}

/// "Send the mail again" on the enroll page; a few an hour, then 429 with Retry-After.
async fn resend_verification(
    State(state): State<Arc<ApiState>>,
    visitor: SignedIn,
    body: Bytes,
) -> Result<Response, PageError> {
    let SignedIn { jar, session: s, account } = visitor;
    check_csrf(&s, &form_fields(&body)?)?;
    match state.accounts.resend_verification(&account, chrono::Utc::now()).await {
        Ok(()) => {
            let html = enroll_html(&state, &s, &account, "", &t("enroll-resent")).await?;
            Ok((jar, page(StatusCode::OK, html, None)).into_response())
        }
        Err(e @ AccountError::TooManyMails { retry_after_secs }) => {
            let html = enroll_html(&state, &s, &account, &said(&e), "").await?;
            let mut response = page(StatusCode::TOO_MANY_REQUESTS, html, None);
            response.headers_mut().insert(header::RETRY_AFTER, retry_after_secs.into());
            Ok((jar, response).into_response())
        }
        Err(AccountError::Store(e)) => Err(e.into()),
        Err(e) => Err(PageError::because(e)),
    }
}

/// With a `code`: an activation code and the birth date; else medical record number,
/// birth date and last name. An attempt on a record that already has an owner is answered
/// like a mismatch and written to that patient's access log.
async fn enroll(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    visitor: SignedIn,
    body: Bytes,
) -> Result<Response, PageError> {
    let SignedIn { jar, session: s, account: account_id } = visitor;
    let form = form_fields(&body)?;
    check_csrf(&s, &form)?;
    state.throttle.check_account(Endpoint::Enroll, &account_id).map_err(|l| PageError::too_many(l.retry_after))?;
    let birth = field(&form, "birth_date").unwrap_or_default();
    let now = chrono::Utc::now();
    let result = match field(&form, "code").filter(|c| !c.trim().is_empty()) {
        Some(code) => state.accounts.enroll_with_code(&account_id, &code, &birth, now).await,
        None => {
            let (mrn, family) = (field(&form, "mrn").unwrap_or_default(), field(&form, "family").unwrap_or_default());
            state.accounts.enroll(&account_id, &mrn, &birth, &family, now).await
        }
    };
    match result {
        Ok(_) => Ok((jar, see_other(next_step(&s))).into_response()),
        Err(AccountError::Store(e)) => Err(e.into()),
        Err(e) => {
            if let AccountError::RecordHasOwner { patient_id } = &e {
                let entry = crate::audit::AuditEntry {
                    actor: format!("account:{account_id}"),
                    role: "patient".into(),
                    patient_id: Some(patient_id.clone()),
                    action: "enroll".into(),
                    what: "/enroll".into(),
                    purpose: None,
                    outcome: "denied".into(),
                    source_ip: Some(from.ip().to_string()),
                };
                state.audit.record(&entry).await?;
            }
            let status = if matches!(e, AccountError::EmailNotVerified) {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::BAD_REQUEST
            };
            let html = enroll_html(&state, &s, &account_id, &said(&e), "").await?;
            Ok((jar, page(status, html, None)).into_response())
        }
    }
}

async fn logout(State(state): State<Arc<ApiState>>, jar: CookieJar, body: Bytes) -> Result<Response, PageError> {
    let (jar, s) = session(&state, jar).await?;
    check_csrf(&s, &form_fields(&body)?)?;
    state.sessions.end(&s).await?;
    Ok((jar.remove(session_cookie(&state, String::new())), see_other("/login")).into_response())
}

async fn account(State(state): State<Arc<ApiState>>, visitor: SignedIn) -> Result<Response, PageError> {
    let SignedIn { jar, session: s, account: account_id } = visitor;
    let name = state.accounts.display_name(&account_id).await.map_err(PageError::because)?.unwrap_or_default();
    let patients = super::record_pages::choices(&state, &account_id).await?;
    let apps: Vec<serde_json::Value> = state
        .grants
        .of_account(&account_id)
        .await?
        .into_iter()
        .map(|a| {
            let texts: Vec<String> = a
                .scopes
                .split_whitespace()
                .filter(|s| *s != "launch/patient" && *s != "fhirUser")
                .map(crate::auth::authorize::describe)
                .collect();
            let mut v = crate::json::value(&a);
            v["scope_texts"] = serde_json::json!(texts);
            v["granted"] = serde_json::json!(crate::portal::fhir_text::date(&a.granted_at));
            v["last_used"] = serde_json::json!(a.last_used.as_deref().map(crate::portal::fhir_text::date));
            v
        })
        .collect();
    let html = crate::portal::render(
        "account.html",
        context! { title => t("your-account"), name, patients, apps, csrf => s.csrf_token, signed_in => true },
    );
    Ok((jar, page(StatusCode::OK, html, None)).into_response())
}

/// The patient's "revoke" button: the app's tokens stop working at once.
async fn revoke_app(State(state): State<Arc<ApiState>>, visitor: SignedIn, body: Bytes) -> Result<Response, PageError> {
    let SignedIn { jar, session: s, account: account_id } = visitor;
    let form = form_fields(&body)?;
    check_csrf(&s, &form)?;
    let grant_id = field(&form, "grant_id").unwrap_or_default();
    if !state.grants.belongs_to(&grant_id, &account_id).await? {
        return Err(PageError::bad_request(t("app-not-yours")));
    }
    state.oauth.tokens.revoke_grant(&grant_id).await?;
    // The app's export jobs end with its grant.
    state.exports.end_basis(None, Some(&grant_id)).await.map_err(PageError::because)?;
    Ok((jar, see_other("/account")).into_response())
}

/// What a refused sign-in, registration or enrollment tells the visitor, in their language.
fn said(e: &AccountError) -> String {
    match e {
        AccountError::SignInFailed => t("account-error-sign-in"),
        AccountError::VerificationFailed | AccountError::RecordHasOwner { .. } => t("account-error-verification"),
        AccountError::DemographicsOff => t("account-error-code-only"),
        AccountError::EmailNotVerified => t("account-error-email-not-verified"),
        AccountError::TooManyMails { .. } => t("account-error-too-many-mails"),
        AccountError::NameTaken => t("register-refused"),
        // Made in this request, already in its language (see `Accounts::create_local`).
        AccountError::WeakPassword(m) | AccountError::Invalid(m) => m.clone(),
        AccountError::Busy(_) | AccountError::Store(_) => t("error-unavailable"),
    }
}

/// At sign-in: the account's language becomes this browser's (the switch's cookie); an
/// account that never chose one keeps the language it signed in with.
pub(super) async fn remember_language(
    state: &ApiState,
    jar: CookieJar,
    account_id: &str,
) -> Result<CookieJar, PageError> {
    match state.accounts.language(account_id).await.map_err(PageError::because)? {
        Some(lang) => Ok(jar.add(super::language::cookie(state, lang))),
        None => {
            state.accounts.set_language(account_id, crate::i18n::current()).await.map_err(PageError::because)?;
            Ok(jar)
        }
    }
}
