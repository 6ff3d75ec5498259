//! The authorization server's token-side endpoints: `POST /token`, `/introspect` and
//! `/revoke` (form bodies only, answers and errors as RFC 6749 JSON, never cached), the
//! public signing keys at `/jwks` and `/.well-known/jwks.json`, and the staff-only client
//! registry at `/admin/clients`. Handlers parse and render; every decision is in
//! [`crate::auth::oauth`]. Nothing here logs a request body.

use super::error::ApiError;
use super::text::{TextError, TextJson};
use crate::auth::DevTokens;
use crate::auth::oauth::{self, ClientError, ClientKeys, ClientKind, Form, OAuth, OAuthError};
use crate::auth::throttle::{Endpoint, Throttle};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;

/// Largest OAuth request body accepted (assertions included).
const MAX_FORM_BYTES: usize = 64 * 1024;

struct OAuthState {
    oauth: OAuth,
    staff: DevTokens,
    throttle: Arc<Throttle>,
}

/// The routes; `staff` authenticates callers of the `/admin/clients` endpoints; `throttle`
/// limits `/token` per app; `cors` opens `/token` and the JWKS to browser apps.
pub fn router(oauth: OAuth, staff: DevTokens, throttle: Arc<Throttle>, cors: tower_http::cors::CorsLayer) -> Router {
    let state = Arc::new(OAuthState { oauth, staff, throttle });
    let forms = Router::new()
        .route(oauth::TOKEN_PATH, post(token).layer(cors.clone()))
        .route(oauth::INTROSPECT_PATH, post(introspect))
        .route(oauth::REVOKE_PATH, post(revoke))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES));
    Router::new()
        .merge(forms)
        .route(oauth::JWKS_PATH, get(jwks).layer(cors.clone()))
        .route(oauth::WELL_KNOWN_JWKS_PATH, get(jwks).layer(cors))
        .route("/admin/clients", get(list_clients).post(register_client))
        .route("/admin/clients/{client_id}/disable", post(disable_client))
        .with_state(state)
}

/// A JSON answer that no cache keeps.
fn no_store(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// The one form of an OAuth endpoint's error: RFC 6749 §5.2 JSON, never cached, with
/// `WWW-Authenticate: Basic` when a client that tried HTTP Basic is refused.
impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let mut r = no_store(status, &json!({ "error": self.code.as_str(), "error_description": self.description }));
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"portico\""));
        }
        if let Some(seconds) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        r
    }
}

/// The form body and `Authorization` header of an OAuth request.
fn form_of(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Form, OAuthError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request("the body must be application/x-www-form-urlencoded"));
    }
    let body = body.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(_) => {
            OAuthError::invalid_request(format!("the body is larger than {MAX_FORM_BYTES} bytes or unreadable"))
        }
        _ => OAuthError::invalid_request("the body could not be read"),
    })?;
    Form::parse(&body)
}

fn authorization(headers: &HeaderMap) -> Result<Option<&str>, OAuthError> {
    match headers.get(header::AUTHORIZATION) {
        None => Ok(None),
        Some(v) => {
            v.to_str().map(Some).map_err(|_| OAuthError::invalid_request("the Authorization header is not ASCII"))
        }
    }
}

async fn token(
    State(state): State<Arc<OAuthState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let form = form_of(&headers, body)?;
    if let Some(client_id) = claimed_client(&form, authorization(&headers)?) {
        state.throttle.check_client(Endpoint::Token, &client_id).map_err(|l| OAuthError::too_many(l.retry_after))?;
    }
    let answer = state.oauth.tokens.token(authorization(&headers)?, &form).await?;
    Ok(no_store(StatusCode::OK, &crate::json::value(&answer)))
}

/// The app a token request says it is from (`client_id`, or the HTTP Basic user name), not
/// yet authenticated: the key of its rate limit.
fn claimed_client(form: &Form, authorization: Option<&str>) -> Option<String> {
    use base64::Engine;
    if let Some(id) = form.get("client_id") {
        return Some(id.to_string());
    }
    let basic = authorization?.trim().split_once(' ').filter(|(s, _)| s.eq_ignore_ascii_case("basic"))?.1;
    let decoded = base64::engine::general_purpose::STANDARD.decode(basic.trim()).ok()?;
    let user = String::from_utf8(decoded).ok()?.split_once(':')?.0.to_string();
    let user = percent_encoding::percent_decode_str(&user).decode_utf8().ok()?.into_owned();
    Some(user)
}

async fn introspect(
    State(state): State<Arc<OAuthState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let form = form_of(&headers, body)?;
    let answer = state.oauth.tokens.introspect(authorization(&headers)?, &form).await?;
    Ok(no_store(StatusCode::OK, &answer))
}

async fn revoke(
    State(state): State<Arc<OAuthState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let form = form_of(&headers, body)?;
    state.oauth.tokens.revoke(authorization(&headers)?, &form).await?;
    let mut r = StatusCode::OK.into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

async fn jwks(State(state): State<Arc<OAuthState>>) -> Response {
    let jwks = match state.oauth.tokens.jwks().await {
        Ok(j) => j,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let mut r = (StatusCode::OK, jwks.to_string()).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    r
}

fn staff_only(state: &OAuthState, headers: &HeaderMap, from: SocketAddr) -> Result<(), ApiError> {
    let header = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let access = state.staff.authenticate(header, from.ip())?;
    if !access.is_staff() {
        return Err(ApiError::Him(crate::him::HimError::NotStaff));
    }
    Ok(())
}

async fn list_clients(
    State(state): State<Arc<OAuthState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    staff_only(&state, &headers, from)?;
    let list = state.oauth.clients.list().await?;
    Ok(no_store(StatusCode::OK, &json!({ "clients": list })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Registration {
    name: String,
    kind: String,
    #[serde(default)]
    redirect_uris: Vec<String>,
    allowed_scopes: String,
    /// A JWKS (object) for confidential-asymmetric clients …
    jwks: Option<Value>,
    /// … or where to fetch it.
    jwks_uri: Option<String>,
    /// backend: the partner's purpose of use and the Groups it may export.
    purpose: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
}

async fn register_client(
    State(state): State<Arc<OAuthState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<TextJson<Registration>, TextError>,
) -> Result<Response, ApiError> {
    staff_only(&state, &headers, from)?;
    let TextJson(reg) = body.map_err(|e| ApiError::BadInput(e.body_text()))?;
    let kind = ClientKind::parse(&reg.kind).map_err(|problem| ClientError::registration("kind", problem))?;
    let keys = match (reg.jwks, reg.jwks_uri) {
        (Some(_), Some(_)) => return Err(ApiError::BadInput("give jwks or jwks_uri, not both".into())),
        (Some(j), None) => Some(ClientKeys::Jwks(j.to_string())),
        (None, Some(u)) => Some(ClientKeys::JwksUri(u)),
        (None, None) => None,
    };
    let partner = oauth::PartnerProfile::given(reg.purpose.as_deref(), &reg.groups);
    let (client_id, secret) = state
        .oauth
        .clients
        .register_client(&reg.name, kind, &reg.redirect_uris, &reg.allowed_scopes, keys, partner)
        .await?;
    let mut body = json!({ "client_id": client_id, "kind": kind.as_str() });
    if let Some(s) = secret {
        body["client_secret"] = json!(s);
    }
    Ok(no_store(StatusCode::CREATED, &body))
}

async fn disable_client(
    State(state): State<Arc<OAuthState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Result<Response, ApiError> {
    staff_only(&state, &headers, from)?;
    state.oauth.clients.disable(&client_id).await?;
    Ok(no_store(StatusCode::OK, &json!({ "client_id": client_id, "disabled": true })))
}
