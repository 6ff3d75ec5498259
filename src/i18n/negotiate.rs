//! Choosing the language of a response: the visitor's `lang` cookie (set by the language
//! switch) wins; otherwise the `Accept-Language` header, read with its q-values; otherwise
//! English. It only chooses among the languages the catalogue has and never fails: a
//! header it cannot read counts as no header.

use super::Lang;
use unic_langid::LanguageIdentifier;

/// The cookie the language switch sets (and sign-in sets from the account's choice).
pub const COOKIE: &str = "portico_lang";

/// The language for a request with this cookie value and `Accept-Language` header.
pub fn choose(cookie: Option<&str>, accept_language: Option<&str>) -> Lang {
    cookie.and_then(Lang::from_code).or_else(|| accept_language.and_then(from_header)).unwrap_or_default()
}

/// The first supported language in the header's order of preference: higher q first, the
/// header's order among equal q, `q=0` meaning "not this one". `*` takes the default.
pub fn from_header(header: &str) -> Option<Lang> {
    let mut ranges: Vec<(&str, u16, usize)> = header
        .split(',')
        .enumerate()
        .filter_map(|(position, part)| {
            let mut pieces = part.split(';').map(str::trim);
            let range = pieces.next().filter(|r| !r.is_empty())?;
            let mut q = 1000;
            for p in pieces {
                if let Some(v) = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) {
                    q = quality(v)?;
                }
            }
            Some((range, q, position))
        })
        .filter(|(_, q, _)| *q > 0)
        .collect();
    ranges.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
    ranges.into_iter().find_map(|(range, _, _)| {
        if range == "*" {
            return Some(Lang::default());
        }
        let id: LanguageIdentifier = range.parse().ok()?;
        Lang::from_code(id.language.as_str())
    })
}

/// An RFC 9110 qvalue (`0`, `0.5`, `1.000`) in thousandths; anything else is unreadable.
fn quality(v: &str) -> Option<u16> {
    let (whole, fraction) = v.split_once('.').unwrap_or((v, ""));
    if fraction.len() > 3 || !fraction.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let thousandths: u16 = format!("{fraction:0<3}").parse().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_values_order_the_header() {
        assert_eq!(from_header("es-MX,es;q=0.9,en;q=0.8"), Some(Lang::Es));
        assert_eq!(from_header("en-GB,en;q=0.9"), Some(Lang::En));
        assert_eq!(from_header("en;q=0.5, es;q=0.8"), Some(Lang::Es), "higher q wins, not the first listed");
        assert_eq!(from_header("fr-CA, es;q=0.3, en;q=0.2"), Some(Lang::Es), "unsupported ones are skipped");
        assert_eq!(from_header("es;q=0, en"), Some(Lang::En), "q=0 means not this one");
        assert_eq!(from_header("es;q=0"), None);
        assert_eq!(from_header("de, fr"), None);
        assert_eq!(from_header("es;q=2, en;q=0.1"), Some(Lang::En), "an unreadable q drops its range");
        assert_eq!(from_header("*;q=0.5, es;q=0.4"), Some(Lang::En));
        assert_eq!(from_header(""), None);
        assert_eq!(from_header("ES-us"), Some(Lang::Es));
    }

    #[test]
    fn the_cookie_wins_then_the_header_then_english() {
        assert_eq!(choose(Some("es"), Some("en-US")), Lang::Es);
        assert_eq!(choose(Some("en"), Some("es-MX")), Lang::En);
        assert_eq!(choose(Some("klingon"), Some("es-MX")), Lang::Es, "an unknown cookie is ignored");
        assert_eq!(choose(None, Some("pt-BR")), Lang::En);
        assert_eq!(choose(None, None), Lang::En);
    }
}
