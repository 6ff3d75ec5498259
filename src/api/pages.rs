//! What every HTML page shares: the session cookie (load or start one), CSRF checking,
//! security headers (strict Content-Security-Policy, no caching, no framing) and the error
//! page. Handlers for the individual pages live beside this.

use super::ApiState;
use crate::auth::sessions::{COOKIE, Session};
use crate::i18n::{t, tr};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use minijinja::context;

/// An error shown as a page (never a redirect to an unverified address): the one error
/// form of every HTML page. Outside an account it is the plain error page; for a signed-in
/// visitor ([`PageError::signed_in`]) it keeps the account's frame (sign-out, a way back to
/// the records).
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub title: String,
    pub message: String,
    /// The signed-in visitor's CSRF token (for the sign-out form), when in the frame.
    frame: Option<String>,
    /// Seconds for `Retry-After` (a 429).
    retry_after: Option<u64>,
}

impl PageError {
    pub fn new(status: StatusCode, title: impl Into<String>, message: impl Into<String>) -> PageError {
        PageError { status, title: title.into(), message: message.into(), frame: None, retry_after: None }
    }
    /// 429: too many attempts, try again in `seconds` (sent as `Retry-After`).
    pub fn too_many(seconds: u64) -> PageError {
        let seconds = seconds.max(1);
        PageError {
            retry_after: Some(seconds),
            ..PageError::new(
                StatusCode::TOO_MANY_REQUESTS,
                t("error-too-many-title"),
                tr("error-too-many", &[("seconds", seconds.into())]),
            )
        }
    }
    pub fn bad_request(message: impl Into<String>) -> PageError {
        PageError::new(StatusCode::BAD_REQUEST, t("error-bad-request-title"), message)
    }
    pub fn forbidden(message: impl Into<String>) -> PageError {
        PageError::new(StatusCode::FORBIDDEN, t("error-forbidden-title"), message)
    }
    /// [`PageError::unavailable`], logging its cause at ERROR (the page says only "try again").
    pub fn because(cause: impl std::fmt::Display) -> PageError {
        tracing::error!(error = %cause, "page failed");
        PageError::unavailable()
    }
    pub fn unavailable() -> PageError {
        PageError::new(StatusCode::SERVICE_UNAVAILABLE, t("error-unavailable-title"), t("error-unavailable"))
    }
    /// The same error inside the signed-in visitor's frame.
    pub fn signed_in(mut self, session: &Session) -> PageError {
        self.frame = Some(session.csrf_token.clone());
        self
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        if e.is_bad_text() {
            // Text the database refused (a backstop of `form_fields`): bad input, not an outage.
            return PageError::bad_request(t("error-control-character"));
        }
        tracing::error!(error = %e, "store error on a page");
        PageError::unavailable()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let html = match &self.frame {
            // The language switch goes back to a fixed page: an error page is the same
            // whatever address was asked for (another account's record and a made-up one).
            None => crate::portal::render(
                "error.html",
                context! { title => self.title, message => self.message, signed_in => false, switch_back => "/" },
            ),
            Some(csrf) => crate::portal::render(
                "record_message.html",
                context! { title => self.title, message => self.message, signed_in => true, csrf => csrf, switch_back => "/records" },
            ),
        };
        let mut response = page(self.status, html, None);
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// An HTML response with the page security headers. `form_target` adds an origin a form
/// on this page may end up at (the consent page redirects to the app).
pub fn page(status: StatusCode, html: String, form_target: Option<&str>) -> Response {
    let mut response = (status, Html(html)).into_response();
    let form_action = match form_target {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".into(),
    };
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    response
}

/// A 303 redirect.
pub fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The session cookie, hardened.
pub fn session_cookie(state: &ApiState, value: String) -> Cookie<'static> {
    Cookie::build((COOKIE, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.secure_cookies)
        .build()
}

/// The request's live session, or an anonymous one without a stored row (a new cookie set
/// on `jar` when the browser had none we could use).
pub async fn session(state: &ApiState, jar: CookieJar) -> Result<(CookieJar, Session), PageError> {
    let sent = jar.get(COOKIE).map(|c| c.value().to_string());
    if let Some(c) = &sent {
        if let Some(s) = state.sessions.load(c).await? {
            return Ok((jar, s));
        }
    }
    let (cookie, s, new) = state.sessions.anonymous(sent.as_deref());
    let jar = if new { jar.add(session_cookie(state, cookie)) } else { jar };
    Ok((jar, s))
}

/// Refuses a form whose CSRF token is not the session's.
pub fn check_csrf(session: &Session, form: &[(String, String)]) -> Result<(), PageError> {
    let presented = field(form, "csrf").unwrap_or_default();
    if session.csrf_ok(&presented) { Ok(()) } else { Err(PageError::forbidden(t("error-csrf"))) }
}

/// A form body's fields (repeated names kept); a form with a NUL or another control
/// character (but tab and line breaks) in a field is refused here, for every page
/// ([`super::text`]).
pub fn form_fields(body: &[u8]) -> Result<Vec<(String, String)>, PageError> {
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    super::text::check_pairs(&fields).map_err(|_| PageError::bad_request(t("error-control-character")))?;
    Ok(fields)
}

/// A page form's fields ([`form_fields`]) once its CSRF token is the session's ([`check_csrf`]).
pub fn csrf_form(session: &Session, body: &[u8]) -> Result<Vec<(String, String)>, PageError> {
    let form = form_fields(body)?;
    check_csrf(session, &form)?;
    Ok(form)
}

pub fn field(form: &[(String, String)], name: &str) -> Option<String> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}
