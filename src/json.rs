//! JSON text of values the gateway itself holds, for columns and session data.
//!
//! `serde_json` fails to serialize only a map whose keys are not strings or a `Serialize`
//! impl that returns an error. The values passed here are `serde_json::Value`s, strings and
//! lists of them, and structs with derived `Serialize` over such fields, so neither can happen
//! and the one `expect` each below cannot fire: there is nothing a caller could do with an error.

use serde::Serialize;

/// `serde_json::to_string` of a value that always serializes (see the module head).
#[allow(clippy::expect_used)] // cannot fail: see the module head
pub fn text<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("a value with string keys and derived Serialize serializes")
}

/// `serde_json::to_value` of a value that always serializes (see the module head).
#[allow(clippy::expect_used)] // cannot fail: see the module head
pub fn value<T: Serialize + ?Sized>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("a value with string keys and derived Serialize serializes")
}
