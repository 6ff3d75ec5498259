//! Bundle writing: searchset pages with `self` and `next` links, and the keyset cursor that
//! keeps paging stable while the underlying set changes (a page starts after the sort key
//! of the last entry already served, so nothing is skipped or repeated).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

/// One page cut from a sorted list.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Cursor for the next page, when there is one.
    pub next: Option<String>,
}

/// Encodes a sort key as an opaque cursor.
pub fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

/// Decodes a cursor; `None` when it was not made by [`encode_cursor`].
pub fn decode_cursor(cursor: &str) -> Option<String> {
    URL_SAFE_NO_PAD.decode(cursor).ok().and_then(|b| String::from_utf8(b).ok())
}

/// Cuts the page that follows `after` (a sort key) from `items`, which must be sorted by
/// `key` ascending with unique keys.
pub fn page_after<T>(items: Vec<T>, key: impl Fn(&T) -> String, after: Option<&str>, count: usize) -> Page<T> {
    let mut rest: Vec<T> = match after {
        Some(a) => items.into_iter().filter(|i| key(i).as_str() > a).collect(),
        None => items,
    };
    let has_more = rest.len() > count;
    rest.truncate(count);
    let next = if has_more { rest.last().map(|last| encode_cursor(&key(last))) } else { None };
    Page { items: rest, next }
}

/// A `searchset` Bundle. `entries` are `(fullUrl, resource, mode)`.
pub fn searchset(
    self_url: &str,
    next_url: Option<&str>,
    total: Option<usize>,
    entries: Vec<(String, Value, &str)>,
) -> Value {
    let mut links = vec![json!({"relation": "self", "url": self_url})];
    if let Some(n) = next_url {
        links.push(json!({"relation": "next", "url": n}));
    }
    let mut bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": entries.into_iter().map(|(full_url, resource, mode)| json!({
            "fullUrl": full_url,
            "resource": resource,
            "search": {"mode": mode}
        })).collect::<Vec<_>>()
    });
    if let Some(t) = total {
        bundle["total"] = json!(t);
    }
    bundle
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyset_pages_do_not_skip_or_repeat_when_items_are_added() {
        let keys = |v: &[&str]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        let first = page_after(keys(&["a", "c", "e", "g"]), Clone::clone, None, 2);
        assert_eq!(first.items, vec!["a", "c"]);
        let cursor = decode_cursor(first.next.as_deref().unwrap()).unwrap();
        // "b" arrived before "c" was served and "d" after it: the next page starts after "c".
        let second = page_after(keys(&["a", "b", "c", "d", "e", "g"]), Clone::clone, Some(&cursor), 2);
        assert_eq!(second.items, vec!["d", "e"]);
        let third = page_after(
            keys(&["a", "b", "c", "d", "e", "g"]),
            Clone::clone,
            Some(&decode_cursor(second.next.as_deref().unwrap()).unwrap()),
            2,
        );
        assert_eq!(third.items, vec!["g"]);
        assert!(third.next.is_none());
        assert!(decode_cursor("%%%").is_none());
    }
}
