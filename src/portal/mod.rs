//! HTML for people: the sign-in, registration, enrollment, record picker and consent pages,
//! the per-patient record pages (server-rendered with minijinja, escaped by default, no
//! JavaScript) and their stylesheet, plus the record pages' view models built from a
//! released record. Every page is rendered in the request's language, its words taken from
//! the catalogue (`t("key")` in the templates, see [`crate::i18n`]). It renders what it is
//! given and never fetches patient data itself.

pub mod access_log;
pub mod documents_view;
pub mod fhir_text;
mod other_records;
pub mod record_view;
pub mod results_view;
pub mod trend_chart;

use minijinja::Environment;
use serde::Serialize;
use std::sync::LazyLock;

/// The page templates, by name (the catalogue tests read every key they use).
pub const TEMPLATE_FILES: [(&str, &str); 33] = [
    ("base.html", include_str!("templates/base.html")),
    ("home.html", include_str!("templates/home.html")),
    ("login.html", include_str!("templates/login.html")),
    ("register.html", include_str!("templates/register.html")),
    ("enroll.html", include_str!("templates/enroll.html")),
    ("verify_email.html", include_str!("templates/verify_email.html")),
    ("pick.html", include_str!("templates/pick.html")),
    ("consent.html", include_str!("templates/consent.html")),
    ("account.html", include_str!("templates/account.html")),
    ("error.html", include_str!("templates/error.html")),
    ("records.html", include_str!("templates/records.html")),
    ("record_layout.html", include_str!("templates/record_layout.html")),
    ("withheld_notice.html", include_str!("templates/withheld_notice.html")),
    ("record_message.html", include_str!("templates/record_message.html")),
    ("record_document.html", include_str!("templates/record_document.html")),
    ("item_list.html", include_str!("templates/item_list.html")),
    ("record_list.html", include_str!("templates/record_list.html")),
    ("record_home.html", include_str!("templates/record_home.html")),
    ("record_results.html", include_str!("templates/record_results.html")),
    ("record_care_team.html", include_str!("templates/record_care_team.html")),
    ("record_access_log.html", include_str!("templates/record_access_log.html")),
    ("record_apps.html", include_str!("templates/record_apps.html")),
    ("download_job.html", include_str!("templates/download_job.html")),
    ("record_corrections.html", include_str!("templates/record_corrections.html")),
    ("record_disclosures.html", include_str!("templates/record_disclosures.html")),
    ("disclosures_table.html", include_str!("templates/disclosures_table.html")),
    ("disclosures_print.html", include_str!("templates/disclosures_print.html")),
    ("record_share.html", include_str!("templates/record_share.html")),
    ("share_made.html", include_str!("templates/share_made.html")),
    ("share_viewer.html", include_str!("templates/share_viewer.html")),
    ("proxies.html", include_str!("templates/proxies.html")),
    ("proxy_accept.html", include_str!("templates/proxy_accept.html")),
    ("notices.html", include_str!("templates/notices.html")),
];

// Cannot fail at run time: the templates are built in, and the page tests render each of them.
#[allow(clippy::expect_used)]
static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    crate::i18n::jinja::install(&mut env);
    for (name, text) in TEMPLATE_FILES {
        env.add_template(name, text).expect("templates parse");
    }
    env
});

/// The stylesheet served at `/static/portal.css`.
pub const STYLESHEET: &str = include_str!("static/portal.css");

/// Renders a page in the language of the request being served (see [`crate::i18n`]); a
/// template error is a bug, reported as a plain message.
pub fn render<C: Serialize>(template: &str, context: C) -> String {
    render_in(crate::i18n::current(), template, context)
}

/// Renders a page in `lang`.
pub fn render_in<C: Serialize>(lang: crate::i18n::Lang, template: &str, context: C) -> String {
    let context = minijinja::context! { lang => lang.code(), ..template_context(&context) };
    TEMPLATES.get_template(template).and_then(|t| t.render(context)).unwrap_or_else(|e| {
        tracing::error!(template, error = %e, "template failed");
        "<!doctype html><title>Error</title><p>Something went wrong. Please try again.</p>".into()
    })
}

/// The name serde_json (built with `arbitrary_precision`, so source decimals keep every
/// digit) gives a number when it serializes one to anything but itself: a one-key map.
const JSON_NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// The context as template values. A JSON number from the record serializes, with
/// `arbitrary_precision`, as serde_json's private one-key map, which a template would show as
/// a map; here it becomes a plain integer or float again.
fn template_context<C: Serialize>(context: &C) -> minijinja::Value {
    match serde_json::to_value(context) {
        Ok(v) => plain(v),
        Err(_) => minijinja::Value::from_serialize(context),
    }
}

fn plain(v: serde_json::Value) -> minijinja::Value {
    use serde_json::Value as J;
    match v {
        J::Null => minijinja::Value::from(()),
        J::Bool(b) => minijinja::Value::from(b),
        J::Number(n) => number(&n),
        J::String(s) => minijinja::Value::from(s),
        J::Array(items) => items.into_iter().map(plain).collect(),
        J::Object(map) => {
            if let (1, Some(J::String(n))) = (map.len(), map.get(JSON_NUMBER_TOKEN)) {
                if let Ok(n) = n.parse::<serde_json::Number>() {
                    return number(&n);
                }
            }
            map.into_iter().map(|(k, v)| (k, plain(v))).collect()
        }
    }
}

fn number(n: &serde_json::Number) -> minijinja::Value {
    if let Some(u) = n.as_u64() {
        minijinja::Value::from(u)
    } else if let Some(i) = n.as_i64() {
        minijinja::Value::from(i)
    } else if let Some(f) = n.as_f64() {
        minijinja::Value::from(f)
    } else {
        minijinja::Value::from(n.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn record_numbers_reach_templates_as_numbers() {
        let source: serde_json::Value = serde_json::from_str(r#"{"v": 0.10, "n": 7, "big": 1e400}"#).unwrap();
        for ctx in [template_context(&source), template_context(&context! { v => source["v"], n => source["n"] })] {
            let env = Environment::new();
            let out = env.render_str("{{ v }} {{ v + 1 }} {{ n * 2 }}", ctx).unwrap();
            assert_eq!(out, "0.1 1.1 14");
        }
        assert_eq!(
            template_context(&source).get_attr("big").unwrap().to_string(),
            "1e+400",
            "too big for a float: kept as text"
        );
    }

    #[test]
    fn pages_escape_what_they_are_given() {
        let html = render(
            "login.html",
            context! { title => "Sign in", csrf => "t0k", app_name => "<script>x</script>", message => "", username => "", signed_in => false },
        );
        assert!(html.contains("&lt;script&gt;x") && !html.contains("<script>"), "{html}");
        assert!(html.contains("name=\"csrf\" value=\"t0k\""));
        assert!(html.contains("call 911"));
    }
}
