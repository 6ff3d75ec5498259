//! The language of every response and the language switch. A middleware chooses the
//! request's language (`i18n::negotiate`: the switch's cookie, else `Accept-Language`) and
//! runs the handler in it, so pages render in it; `GET /language/{code}?next=…` is the
//! switch on every page: it sets the cookie, keeps the choice on the signed-in account (its
//! mails follow it) and goes back to the page. It never redirects off this site.

use super::pages::{see_other, session, PageError};
use super::ApiState;
use crate::i18n::negotiate::{self, COOKIE};
use crate::i18n::{self, Lang, Scope};
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use std::sync::Arc;

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new().route("/language/{code}", get(switch)).with_state(state)
}

/// Runs the request (`run`) in its language; HTML answers say which (`Content-Language`).
pub async fn choose<F: std::future::Future<Output = Response>>(
    request: Request,
    run: impl FnOnce(Request) -> F,
) -> Response {
    let jar = CookieJar::from_headers(request.headers());
    let accept = request.headers().get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    let lang = negotiate::choose(jar.get(COOKIE).map(Cookie::value), accept);
    let here = if request.method() == Method::GET {
        here(request.uri())
    } else {
        // A form's answer (a refused sign-in …): back to that form's page.
        FORM_PAGES.contains(&request.uri().path()).then(|| request.uri().path().to_string())
    };
    let mut response = i18n::within(Scope { lang, here }, run(request)).await;
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"));
    if html {
        let h = response.headers_mut();
        h.insert(header::CONTENT_LANGUAGE, HeaderValue::from_static(lang.code()));
        h.append(header::VARY, HeaderValue::from_static("Accept-Language, Cookie"));
    }
    response
}

/// Pages whose form posts to their own address: the switch on the answer comes back to them.
const FORM_PAGES: [&str; 3] = ["/login", "/register", "/enroll"];

/// Where the switch comes back to: this page, without a query that carries a single-use
/// token or a sign-in answer (coming back would spend or replay it).
fn here(uri: &axum::http::Uri) -> Option<String> {
    let path = uri.path();
    let one_time = ["token=", "code=", "state="];
    match uri.query() {
        Some(q) if !one_time.iter().any(|k| q.contains(k)) => Some(format!("{path}?{q}")),
        _ => Some(path.to_string()),
    }
}

/// A path on this site (not `//host` or `/\host`, which browsers take as another site).
fn local(next: &str) -> bool {
    next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\")
}

/// The cookie that remembers the choice in this browser (400 days).
pub fn cookie(state: &ApiState, lang: Lang) -> Cookie<'static> {
    Cookie::build((COOKIE, lang.code()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.secure_cookies)
        .permanent()
        .build()
}

async fn switch(
    State(state): State<Arc<ApiState>>,
    jar: CookieJar,
    Path(code): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let Some(lang) = Lang::from_code(&code) else {
        return Err(PageError::bad_request(i18n::t("language-unknown")));
    };
    let next = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find_map(|(k, v)| (k == "next").then(|| v.into_owned()))
        .filter(|n| local(n))
        .unwrap_or_else(|| "/".to_string());
    let (jar, s) = session(&state, jar).await?;
    if let Some(account) = &s.account_id {
        state.accounts.set_language(account, lang).await.map_err(PageError::because)?;
    }
    Ok((jar.add(cookie(&state, lang)), see_other(&next)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_switch_comes_back_only_to_this_site_and_never_replays_a_token() {
        assert!(local("/records/abc?x=1"));
        for bad in ["//evil.example/", "/\\evil.example", "https://evil.example/", "evil", ""] {
            assert!(!local(bad), "{bad}");
        }
        let uri: axum::http::Uri = "/verify-email?token=secret".parse().unwrap();
        assert_eq!(here(&uri).as_deref(), Some("/verify-email"));
        let uri: axum::http::Uri = "/login?signed_out=1".parse().unwrap();
        assert_eq!(here(&uri).as_deref(), Some("/login?signed_out=1"));
    }
}
