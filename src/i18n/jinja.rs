//! The catalogue inside minijinja templates: `t("key", name=value)` gives the text in the
//! language of the render (the context's `lang`, which the renderers set), `lang_code()`
//! its code for `<html lang>`, `language_switch()` the link to the other language, and the
//! filter `|day` a stored date in the language's format.
//! Templates hard-code no sentence of their own; the catalogue tests check every key used.

use super::{text_in, Lang};
use fluent_bundle::FluentValue;
use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, State};

/// The context variable holding the render's language code.
pub const LANG_VAR: &str = "lang";

/// The context variable naming where the switch comes back to, instead of this page.
pub const HERE_VAR: &str = "switch_back";

/// Adds the functions to `env`.
pub fn install(env: &mut Environment<'static>) {
    env.add_function("t", t);
    env.add_function("lang_code", |state: &State| lang_of(state).code());
    env.add_function("language_switch", language_switch);
    env.add_filter("day", day);
}

/// `value|day`: a stored date or instant (`YYYY-MM-DD`, RFC 3339) as the render's language
/// writes a day ("Dec 3, 2026" / "3 dic 2026"); anything else as it is.
fn day(state: &State, value: &str) -> String {
    let lang = lang_of(state);
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|d| d.date_naive())
        .or_else(|_| chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d"))
        .map_or_else(|_| value.to_string(), |d| super::day(lang, d))
}

fn lang_of(state: &State) -> Lang {
    state.lookup(LANG_VAR).and_then(|v| v.as_str().and_then(Lang::from_code)).unwrap_or_default()
}

fn t(state: &State, key: &str, kwargs: Kwargs) -> Result<String, minijinja::Error> {
    let mut args: Vec<(&str, FluentValue)> = Vec::new();
    for name in kwargs.args() {
        let v: Value = kwargs.get(name)?;
        let value = match v.kind() {
            ValueKind::Number => match i64::try_from(v.clone()) {
                Ok(i) => FluentValue::from(i),
                Err(_) => FluentValue::from(f64::try_from(v).unwrap_or_default()),
            },
            ValueKind::Undefined | ValueKind::None => FluentValue::from(""),
            _ => FluentValue::from(v.to_string()),
        };
        args.push((name, value));
    }
    kwargs.assert_all_used()?;
    Ok(text_in(lang_of(state), key, &args))
}

/// The other languages, each as `{code, name, href}`; `href` sets the choice and comes
/// back to the context's `switch_back` when it has one (an error page, which must not echo
/// the address asked for), else to this page (when it was fetched with GET), else to the
/// account page.
fn language_switch(state: &State) -> Value {
    let current = lang_of(state);
    let here = state
        .lookup(HERE_VAR)
        .and_then(|v| v.as_str().map(str::to_string))
        .or_else(super::here)
        .unwrap_or_else(|| "/account".to_string());
    let next: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
    Lang::ALL
        .into_iter()
        .filter(|l| *l != current)
        .map(|l| {
            minijinja::context! {
                code => l.code(),
                name => l.own_name(),
                href => format!("/language/{}?next={next}", l.code()),
            }
        })
        .collect()
}
