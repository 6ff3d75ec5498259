//! Free text at the door: every surface refuses a NUL or another control character (but tab
//! and line breaks) in what it is sent, once, where it parses the body, before anything is
//! looked up or written — page forms in [`super::pages::form_fields`], JSON bodies through
//! [`TextJson`] (or [`check_json`] where a handler reads a `Value`), `$export` kick-off
//! parameters, and the OAuth forms in `auth::oauth::Form` — and in the path of any address
//! ([`refuse_control_paths`], as no id holds one). Which characters are refused is
//! `store::text`'s rule. The refusal names the field, never its value (it may be PHI), and
//! each surface answers it 400 in its own error form.

use crate::store::text::storable;
use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TextError {
    /// A field holds a refused character.
    #[error(
        "{field} holds a control character (such as NUL); text may hold only tab and line breaks besides printable characters"
    )]
    Control { field: String },
    /// A JSON body that is not JSON, not sent as JSON, or not of the expected shape.
    #[error("{0}")]
    Body(String),
}

impl TextError {
    /// The message for the caller (like axum's `JsonRejection::body_text`).
    pub fn body_text(&self) -> String {
        self.to_string()
    }
}

/// Handlers take `Result<TextJson<T>, TextError>` and answer in their surface's own error
/// form; unwrapped, a refusal is a plain 400.
impl axum::response::IntoResponse for TextError {
    fn into_response(self) -> axum::response::Response {
        (axum::http::StatusCode::BAD_REQUEST, self.body_text()).into_response()
    }
}

/// How a field is named in a refusal: its name when that is plain and short.
fn named(name: &str) -> String {
    if storable(name) && name.chars().count() <= 64 { format!("`{name}`") } else { "a field name".into() }
}

/// Refuses a form's fields (names and values) when one holds a refused character.
pub fn check_pairs(pairs: &[(String, String)]) -> Result<(), TextError> {
    match pairs.iter().find(|(k, v)| !storable(k) || !storable(v)) {
        Some((k, _)) => Err(TextError::Control { field: named(k) }),
        None => Ok(()),
    }
}

/// Refuses a JSON value when a string in it (or a member name) holds a refused character;
/// the field named is the path to it (`groups[1]`, `jwks.keys[0].kid`).
pub fn check_json(value: &Value) -> Result<(), TextError> {
    fn walk(v: &Value, path: &mut String) -> Result<(), TextError> {
        let field = |p: &str| if p.is_empty() { "the body".to_string() } else { named(p) };
        match v {
            Value::String(s) if !storable(s) => Err(TextError::Control { field: field(path) }),
            Value::Array(items) => items.iter().enumerate().try_for_each(|(i, item)| {
                let at = path.len();
                path.push_str(&format!("[{i}]"));
                let r = walk(item, path);
                path.truncate(at);
                r
            }),
            Value::Object(members) => members.iter().try_for_each(|(k, item)| {
                if !storable(k) {
                    return Err(TextError::Control { field: "a member name".into() });
                }
                let at = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                let r = walk(item, path);
                path.truncate(at);
                r
            }),
            _ => Ok(()),
        }
    }
    walk(value, &mut String::new())
}

/// A JSON body of type `T` whose text has been checked ([`check_json`]): what `Json<T>` is,
/// but refusing a NUL or other control character with [`TextError::Control`].
pub struct TextJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for TextJson<T> {
    type Rejection = TextError;

    async fn from_request(req: Request, state: &S) -> Result<Self, TextError> {
        let Json(value) = Json::<Value>::from_request(req, state).await.map_err(|e| TextError::Body(e.body_text()))?;
        check_json(&value)?;
        T::deserialize(value)
            .map(TextJson)
            .map_err(|e| TextError::Body(format!("Failed to deserialize the JSON body into the target type: {e}")))
    }
}

/// A query string of type `T` whose text has been checked ([`check_pairs`]): what
/// `Query<T>` is, but refusing a NUL or other control character with [`TextError::Control`].
pub struct TextQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for TextQuery<T> {
    type Rejection = TextError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, TextError> {
        let query = parts.uri.query().unwrap_or_default();
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        check_pairs(&pairs)?;
        serde_urlencoded::from_str(query)
            .map(TextQuery)
            .map_err(|e| TextError::Body(format!("Failed to deserialize query string: {e}")))
    }
}

/// The answer to an address whose path holds a NUL or another control character
/// (percent-encoded: `/records/%00`): no id holds one, so the request names nothing and is
/// answered 400 before any handler looks it up, in its surface's error form — an
/// OperationOutcome under `/fhir` and `/admin`, JSON for the apps' and share-link APIs, the
/// error page for the portal. The query string is each handler's to check.
pub fn refuse_control_paths(request: &Request) -> Option<axum::response::Response> {
    use axum::response::IntoResponse;
    let path = request.uri().path();
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    if storable(&decoded) {
        return None;
    }
    let message = "the address holds a control character (such as NUL): it names nothing";
    let api = |p: &str| path == p || path.starts_with(&format!("{p}/"));
    Some(if api("/fhir") || api("/admin") {
        super::error::ApiError::BadInput(message.into()).into_response()
    } else if api("/api") || api("/shl") || api("/share-links") {
        let body = serde_json::json!({"error": "invalid", "message": message});
        (axum::http::StatusCode::BAD_REQUEST, Json(body)).into_response()
    } else {
        super::pages::PageError::bad_request(crate::i18n::t("error-control-character")).into_response()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_refusal_names_the_field_and_never_the_value() {
        let e = check_json(&json!({"name": "ok", "groups": ["a", "secret\u{0}value"]})).unwrap_err();
        assert_eq!(e, TextError::Control { field: "`groups[1]`".into() });
        assert!(!e.to_string().contains("secret"));
        let e = check_pairs(&[("csrf".into(), "x".into()), ("display_name".into(), "A\u{1}".into())]).unwrap_err();
        assert_eq!(e, TextError::Control { field: "`display_name`".into() });
        assert!(check_json(&json!({"note": "two\nlines\tand a tab", "n": 1, "b": null})).is_ok());
        assert!(check_json(&json!({"a\u{0}": 1})).is_err());
        assert!(check_json(&json!("\u{0}")).is_err());
    }
}
