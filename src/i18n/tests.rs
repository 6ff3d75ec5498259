//! The catalogue's own checks: both languages have the same messages with the same
//! arguments, every key a template or the code asks for exists, and dates read as the
//! language writes them.

use super::*;
use fluent_bundle::FluentResource;
use fluent_syntax::ast;
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};

/// Message id → the `$variables` its pattern uses, for one language.
fn messages(lang: Lang) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for (file, text) in FILES.iter().zip(sources(lang)) {
        let resource = FluentResource::try_new(text.to_string())
            .unwrap_or_else(|(_, e)| panic!("{}/{file} does not parse: {e:?}", lang.code()));
        for entry in resource.entries() {
            if let ast::Entry::Message(m) = entry {
                let vars = m.value.as_ref().map(variables).unwrap_or_default();
                let id = m.id.name.to_string();
                assert!(out.insert(id.clone(), vars).is_none(), "{}: `{id}` is defined twice", lang.code());
            }
        }
    }
    out
}

fn variables(pattern: &ast::Pattern<&str>) -> BTreeSet<String> {
    let mut vars = BTreeSet::new();
    for element in &pattern.elements {
        if let ast::PatternElement::Placeable {
            expression: ast::Expression::Inline(ast::InlineExpression::VariableReference { id }),
        } = element
        {
            vars.insert(id.name.to_string());
        }
    }
    vars
}

#[test]
fn every_message_is_in_both_languages_with_the_same_arguments() {
    let (en, es) = (messages(Lang::En), messages(Lang::Es));
    let only_en: Vec<_> = en.keys().filter(|k| !es.contains_key(*k)).collect();
    let only_es: Vec<_> = es.keys().filter(|k| !en.contains_key(*k)).collect();
    assert!(only_en.is_empty(), "missing in Spanish: {only_en:?}");
    assert!(only_es.is_empty(), "missing in English: {only_es:?}");
    for (key, vars) in &en {
        // A translation may leave an argument out (the Spanish "missing source" line does not
        // repeat the English reason), never use one English does not give.
        assert!(es[key].is_subset(vars), "`{key}`: Spanish uses {:?}, English gives {vars:?}", es[key]);
    }
}

/// Every `t("key"…)` of the templates, and every literal key the code passes to the
/// catalogue (`t(`, `tr(`, `text_in(lang, `, and the keys the view models keep in tables).
fn keys_used() -> BTreeMap<String, String> {
    let mut used = BTreeMap::new();
    let template_call = Regex::new(r#"\bt\(\s*"([a-z0-9-]+)""#).unwrap();
    let mut templates: Vec<(String, &str)> =
        crate::portal::TEMPLATE_FILES.iter().map(|(n, t)| (n.to_string(), *t)).collect();
    templates.push(("summary.html".into(), crate::export::summary::TEMPLATE));
    for (name, text) in templates {
        for c in template_call.captures_iter(text) {
            used.insert(c[1].to_string(), name.clone());
        }
    }
    let code_call = Regex::new(r#"\b(?:t|tr|text_in\(\s*[a-z_]+,)\(?\s*"([a-z][a-z0-9-]*)""#).unwrap();
    let table_key = Regex::new(
        r#""((?:detail|item|status|section|value|file|log|summary|scope|job|mail|relation|kind|disclosure|readme|proxies-rel)-[a-z0-9-]+)""#,
    )
    .unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("i18n/tests.rs") {
                let text: String = std::fs::read_to_string(&path)
                    .unwrap()
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("//"))
                    .collect::<Vec<_>>()
                    .join("\n");
                for c in code_call.captures_iter(&text).chain(table_key.captures_iter(&text)) {
                    used.insert(c[1].to_string(), path.display().to_string());
                }
            }
        }
    }
    used
}

#[test]
fn every_key_the_templates_and_the_code_use_is_in_the_catalogue() {
    let en = messages(Lang::En);
    let used = keys_used();
    assert!(used.len() > 300, "the scan found only {} keys: is it still looking?", used.len());
    let missing: Vec<_> = used.iter().filter(|(k, _)| !en.contains_key(*k)).collect();
    assert!(missing.is_empty(), "keys used but not in the catalogue: {missing:?}");
    let unused: Vec<_> = en.keys().filter(|k| !used.contains_key(*k)).collect();
    assert!(unused.is_empty(), "catalogue keys nothing uses (remove them or use them): {unused:?}");
}

#[test]
fn a_missing_key_shows_the_key_and_arguments_fill_in() {
    assert_eq!(text_in(Lang::Es, "no-such-key", &[]), "no-such-key");
    assert_eq!(text_in(Lang::Es, "account-hello", &[("name", "Ana".into())]), "Hola, Ana");
    assert_eq!(text_in(Lang::En, "and-joiner", &[]), " and ", "spaces kept, no isolation marks");
    assert_eq!(t("sign-in"), "Sign in", "outside a request: English");
}

#[tokio::test]
async fn a_request_renders_in_its_language() {
    let scope = Scope { lang: Lang::Es, here: Some("/records".into()) };
    let (text, here) = within(scope, async { (t("sign-in"), here()) }).await;
    assert_eq!((text.as_str(), here.as_deref()), ("Iniciar sesión", Some("/records")));
}

#[test]
fn dates_read_as_each_language_writes_them() {
    let d = NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
    assert_eq!(long_day(Lang::Es, d), "3 de diciembre de 2026");
    assert_eq!(long_day(Lang::En, d), "December 3, 2026");
    assert_eq!(day(Lang::En, d), "Dec 3, 2026");
    assert!(day(Lang::Es, d).starts_with("3 dic"), "{}", day(Lang::Es, d));
    assert_eq!(month(Lang::Es, d), "diciembre de 2026");
    let at = DateTime::parse_from_rfc3339("2026-12-03T14:05:00Z").unwrap().with_timezone(&Utc);
    assert_eq!(long_utc(Lang::Es, at), "3 de diciembre de 2026, 14:05 UTC");
    assert_eq!(long_utc(Lang::En, at), "December 3, 2026, 2:05 PM UTC");
}

#[test]
fn templates_get_the_language_and_the_switch() {
    let mut env = minijinja::Environment::new();
    jinja::install(&mut env);
    let html = env
        .render_str(
            r#"{{ lang_code() }}|{{ t("account-hello", name=who) }}|{% for l in language_switch() %}{{ l.href }} {{ l.name }}{% endfor %}"#,
            minijinja::context! { lang => "es", who => "<b>" },
        )
        .unwrap();
    assert_eq!(html, "es|Hola, <b>|/language/en?next=%2Faccount English");
    let error = env
        .render_str(
            r#"{% for l in language_switch() %}{{ l.href }}{% endfor %}"#,
            minijinja::context! { lang => "en", switch_back => "/records" },
        )
        .unwrap();
    assert_eq!(error, "/language/es?next=%2Frecords", "an error page names no address of its own");
}

#[test]
fn the_day_filter_writes_a_stored_date_the_language_s_way() {
    let mut env = minijinja::Environment::new();
    jinja::install(&mut env);
    let render = |lang: &str| {
        env.render_str(
            "{{ a|day }}|{{ b|day }}|{{ c|day }}",
            minijinja::context! { lang => lang, a => "2026-12-03", b => "2026-12-03T14:05:00+00:00", c => "soon" },
        )
        .unwrap()
    };
    assert_eq!(render("en"), "Dec 3, 2026|Dec 3, 2026|soon");
    let es = render("es");
    assert!(es.starts_with("3 dic") && es.ends_with("|soon") && !es.contains("2026-12"), "{es}");
}
