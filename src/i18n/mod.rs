//! The gateway's own words in English and Spanish: the Fluent catalogue
//! (`locales/{en,es}/*.ftl`, built into the binary), the language of the request being
//! served, and dates in that language's format. Pages, mails, the download's summary and
//! README.txt take every sentence from here by a stable key, and so do the refusals the
//! share, correction and proxy modules give a person (in the language of the request they
//! serve; English outside one, as the CLI and the unit tests see them). It translates only
//! what the gateway writes: clinical text from a source (display names, notes, values),
//! names an organization registered and the policy's notices never pass through it.

pub mod jinja;
pub mod negotiate;

use chrono::{DateTime, NaiveDate, Utc};
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use std::future::Future;
use std::sync::LazyLock;

/// A language the catalogue has. English is the default and the fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    #[default]
    En,
    Es,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Es];

    /// The BCP 47 code, as `<html lang>`, `Content-Language`, the cookie and the account keep it.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
        }
    }

    /// A primary language subtag (any case) this catalogue has.
    pub fn from_code(code: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.code().eq_ignore_ascii_case(code))
    }

    /// The language's own name (what the switch offers).
    pub fn own_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Es => "Español",
        }
    }

    fn chrono_locale(self) -> chrono::Locale {
        match self {
            Lang::En => chrono::Locale::en_US,
            Lang::Es => chrono::Locale::es_US,
        }
    }
}

/// The catalogue files of one language: (file name, text). Both languages have the same files.
pub const FILES: [&str; 5] = ["common.ftl", "account.ftl", "record.ftl", "mail.ftl", "summary.ftl"];

fn sources(lang: Lang) -> [&'static str; 5] {
    match lang {
        Lang::En => [
            include_str!("../../locales/en/common.ftl"),
            include_str!("../../locales/en/account.ftl"),
            include_str!("../../locales/en/record.ftl"),
            include_str!("../../locales/en/mail.ftl"),
            include_str!("../../locales/en/summary.ftl"),
        ],
        Lang::Es => [
            include_str!("../../locales/es/common.ftl"),
            include_str!("../../locales/es/account.ftl"),
            include_str!("../../locales/es/record.ftl"),
            include_str!("../../locales/es/mail.ftl"),
            include_str!("../../locales/es/summary.ftl"),
        ],
    }
}

/// The parsed resources of one language (the catalogue tests read their message ids).
pub fn resources(lang: Lang) -> Vec<FluentResource> {
    sources(lang)
        .into_iter()
        .map(|text| {
            FluentResource::try_new(text.to_string()).unwrap_or_else(|(resource, errors)| {
                tracing::error!(lang = lang.code(), ?errors, "catalogue file has errors");
                resource
            })
        })
        .collect()
}

fn bundle(lang: Lang) -> FluentBundle<FluentResource> {
    // The locale of plural rules (English and Spanish as written in the United States).
    let id: unic_langid::LanguageIdentifier = match lang {
        Lang::En => "en-US",
        Lang::Es => "es-US",
    }
    .parse()
    .unwrap_or_default();
    let mut bundle = FluentBundle::new_concurrent(vec![id]);
    // The text goes into HTML (escaped there) and plain-text mail: no bidi isolation marks.
    bundle.set_use_isolating(false);
    for resource in resources(lang) {
        if let Err(errors) = bundle.add_resource(resource) {
            tracing::error!(lang = lang.code(), ?errors, "catalogue message defined twice");
        }
    }
    bundle
}

static BUNDLES: LazyLock<[FluentBundle<FluentResource>; 2]> = LazyLock::new(|| [bundle(Lang::En), bundle(Lang::Es)]);

/// The catalogue's text for `key` in `lang` with `args`. A key the catalogue lacks is a bug
/// (the catalogue tests look for every key used); it is logged and the key itself shown.
pub fn text_in(lang: Lang, key: &str, args: &[(&str, FluentValue<'_>)]) -> String {
    let bundle = &BUNDLES[lang as usize];
    let Some(pattern) = bundle.get_message(key).and_then(|m| m.value()) else {
        tracing::error!(lang = lang.code(), key, "no such message in the catalogue");
        return key.to_string();
    };
    let args: Option<FluentArgs> =
        (!args.is_empty()).then(|| args.iter().map(|(k, v)| (*k, v.clone())).collect::<FluentArgs>());
    let mut errors = Vec::new();
    let out = bundle.format_pattern(pattern, args.as_ref(), &mut errors);
    if !errors.is_empty() {
        tracing::error!(lang = lang.code(), key, ?errors, "catalogue message failed");
    }
    out.into_owned()
}

/// [`text_in`] in the language of the request being served.
pub fn t(key: &str) -> String {
    text_in(current(), key, &[])
}

/// [`t`] with arguments (`{ $name }` in the message).
pub fn tr(key: &str, args: &[(&str, FluentValue<'_>)]) -> String {
    text_in(current(), key, args)
}

/// What the request being served is in: its language and, for a page fetched with GET,
/// its own address (where the language switch comes back to).
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub lang: Lang,
    pub here: Option<String>,
}

tokio::task_local! {
    static CURRENT: Scope;
}

/// Runs `f` (a request's handler) in `scope`: what it renders is in `scope.lang`.
pub async fn within<F: Future>(scope: Scope, f: F) -> F::Output {
    CURRENT.scope(scope, f).await
}

/// The language of the request being served; English outside one (background work passes
/// its language explicitly).
pub fn current() -> Lang {
    CURRENT.try_with(|s| s.lang).unwrap_or_default()
}

/// The address of the page being served, when it was fetched with GET.
pub fn here() -> Option<String> {
    CURRENT.try_with(|s| s.here.clone()).ok().flatten()
}

/// A day, short: "Dec 3, 2026" / "3 dic 2026".
pub fn day(lang: Lang, d: NaiveDate) -> String {
    match lang {
        Lang::En => d.format_localized("%b %-d, %Y", lang.chrono_locale()).to_string(),
        Lang::Es => d.format_localized("%-d %b %Y", lang.chrono_locale()).to_string(),
    }
}

/// A day, in full words: "December 3, 2026" / "3 de diciembre de 2026".
pub fn long_day(lang: Lang, d: NaiveDate) -> String {
    match lang {
        Lang::En => d.format_localized("%B %-d, %Y", lang.chrono_locale()).to_string(),
        Lang::Es => d.format_localized("%-d de %B de %Y", lang.chrono_locale()).to_string(),
    }
}

/// A month: "December 2026" / "diciembre de 2026".
pub fn month(lang: Lang, d: NaiveDate) -> String {
    match lang {
        Lang::En => d.format_localized("%B %Y", lang.chrono_locale()).to_string(),
        Lang::Es => d.format_localized("%B de %Y", lang.chrono_locale()).to_string(),
    }
}

/// A month, short (chart axes): "Dec 2026" / "dic 2026".
pub fn short_month(lang: Lang, d: NaiveDate) -> String {
    d.format_localized("%b %Y", lang.chrono_locale()).to_string()
}

/// A moment with its time of day as the source or the gateway wrote it (no zone change):
/// "Dec 3, 2026, 2:05 PM" / "3 dic 2026, 14:05".
pub fn day_time<Tz: chrono::TimeZone>(lang: Lang, at: &DateTime<Tz>) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let d = at.date_naive();
    match lang {
        Lang::En => format!("{}, {}", day(lang, d), at.format("%-I:%M %p")),
        Lang::Es => format!("{}, {}", day(lang, d), at.format("%H:%M")),
    }
}

/// A UTC moment in full words with its zone: "December 3, 2026, 2:05 PM UTC" /
/// "3 de diciembre de 2026, 14:05 UTC" (mails, the summary, expiry times).
pub fn long_utc(lang: Lang, at: DateTime<Utc>) -> String {
    let d = at.date_naive();
    match lang {
        Lang::En => format!("{}, {} UTC", long_day(lang, d), at.format("%-I:%M %p")),
        Lang::Es => format!("{}, {} UTC", long_day(lang, d), at.format("%H:%M")),
    }
}

#[cfg(test)]
mod tests;
