//! Sign-in through the hospital's OpenID Connect provider: `/login/oidc` sends the browser
//! to the provider (the pending sign-in — state, nonce, PKCE verifier — kept in its
//! session), `/login/oidc/callback` takes it back, checks that it is the sign-in this
//! browser started, and signs the federated account in. Thin: the protocol is
//! `auth::oidc`, accounts `auth::accounts`. Both answer 404 when no provider is configured.

use super::pages::{see_other, session, session_cookie, PageError};
use super::ApiState;
use crate::auth::oidc::{OidcError, PendingSignIn};
use crate::i18n::{t, tr};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use std::sync::Arc;

/// Where the session keeps a sign-in in progress.
const PENDING_KEY: &str = "oidc";

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new().route("/login/oidc", get(start)).route("/login/oidc/callback", get(callback)).with_state(state)
}

fn not_configured() -> Response {
    PageError::new(StatusCode::NOT_FOUND, t("error-not-found-title"), t("error-not-found")).into_response()
}

fn sign_in_failed(status: StatusCode, message: impl Into<String>) -> PageError {
    PageError::new(status, t("oidc-failed-title"), message)
}

/// The provider sends the browser back here.
fn redirect_uri(state: &ApiState) -> String {
    format!("{}/login/oidc/callback", super::well_known::issuer(&state.base_url))
}

async fn start(State(state): State<Arc<ApiState>>, jar: CookieJar) -> Result<Response, PageError> {
    let Some(oidc) = state.oidc.clone() else { return Ok(not_configured()) };
    let (jar, mut s) = session(&state, jar).await?;
    let (url, pending) = match oidc.start(&redirect_uri(&state)).await {
        Ok(started) => started,
        Err(e) => {
            tracing::warn!(issuer = %oidc.issuer(), error = %e, "OpenID sign-in could not start");
            let message = tr("oidc-unreachable-named", &[("service", oidc.label().to_string().into())]);
            return Ok((jar, sign_in_failed(StatusCode::SERVICE_UNAVAILABLE, message)).into_response());
        }
    };
    let pending = serde_json::to_value(&pending).map_err(PageError::because)?;
    match s.data.as_object_mut() {
        Some(data) => {
            data.insert(PENDING_KEY.into(), pending);
        }
        None => s.data = serde_json::json!({ PENDING_KEY: pending }),
    }
    state.sessions.save(&s).await?;
    Ok((jar, see_other(&url)).into_response())
}

#[derive(Debug, Deserialize)]
struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

async fn callback(
    State(state): State<Arc<ApiState>>,
    jar: CookieJar,
    Query(q): Query<CallbackParams>,
) -> Result<Response, PageError> {
    let Some(oidc) = state.oidc.clone() else { return Ok(not_configured()) };
    let (jar, mut s) = session(&state, jar).await?;
    let pending: Option<PendingSignIn> = s.data.get(PENDING_KEY).and_then(|v| serde_json::from_value(v.clone()).ok());
    let presented = q.state.as_deref().unwrap_or_default();
    // Only the browser that started this sign-in may finish it, and only once.
    let Some(pending) = pending.filter(|p| p.state_matches(presented)) else {
        tracing::warn!("OpenID callback without a matching sign-in in this session");
        let message = t("oidc-state-mismatch");
        return Ok((jar, sign_in_failed(StatusCode::BAD_REQUEST, message)).into_response());
    };
    if let Some(data) = s.data.as_object_mut() {
        data.remove(PENDING_KEY);
    }
    state.sessions.save(&s).await?;

    if let Some(error) = &q.error {
        tracing::info!(issuer = %oidc.issuer(), %error, "the OpenID provider answered with an error");
        let message = if error == "access_denied" { t("oidc-cancelled") } else { t("oidc-provider-error") };
        return Ok((jar, sign_in_failed(StatusCode::FORBIDDEN, message)).into_response());
    }
    // RFC 9207: an answer naming another issuer is not from our provider.
    if q.iss.as_deref().is_some_and(|iss| iss != oidc.issuer()) {
        tracing::warn!(issuer = %oidc.issuer(), "OpenID callback names another issuer");
        let message = t("oidc-wrong-issuer");
        return Ok((jar, sign_in_failed(StatusCode::BAD_REQUEST, message)).into_response());
    }
    let code = q.code.as_deref().unwrap_or_default();
    let who = match oidc.finish(&pending, code, presented).await {
        Ok(who) => who,
        Err(e) => {
            tracing::warn!(issuer = %oidc.issuer(), error = %e, "OpenID sign-in failed");
            let (status, message) = match e {
                OidcError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, t("oidc-unreachable")),
                OidcError::Expired => (StatusCode::BAD_REQUEST, t("oidc-expired")),
                _ => (StatusCode::BAD_REQUEST, t("oidc-not-confirmed")),
            };
            return Ok((jar, sign_in_failed(status, message)).into_response());
        }
    };
    let account_id = match state.accounts.federated(&who.issuer, &who.subject, &who.display_name).await {
        Ok(id) => id,
        Err(crate::auth::accounts::AccountError::Store(e)) => return Err(e.into()),
        Err(e) => {
            tracing::error!(error = %e, "federated account could not be created");
            return Err(PageError::unavailable());
        }
    };
    tracing::info!(issuer = %who.issuer, account = %account_id, "signed in through the OpenID provider");
    let (cookie, signed_in) = state.sessions.sign_in(&s, &account_id).await?;
    let jar = super::account_routes::remember_language(&state, jar, &account_id).await?;
    Ok((jar.add(session_cookie(&state, cookie)), see_other(super::account_routes::next_step(&signed_in)))
        .into_response())
}
