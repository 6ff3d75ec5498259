//! Bundle writing: searchset pages with `self` and `next` links, and the keyset cursor that
//! keeps paging stable while the underlying set changes (a page starts after the sort key
//! of the last entry already served, so nothing is skipped or repeated). The Bundle itself is
//! built with the typed model; the resources in it are put in as they came, or written as bytes
//! already serialized (`searchset_bytes`). It never decides what goes in.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::model::codes::{BundleType, SearchEntryMode};
use super::model::resources::{Bundle, BundleEntry, BundleEntrySearch, BundleLink};
use super::model::{finish, instant, BuilderError};

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

/// What a `searchset` Bundle says of itself, besides its entries.
#[derive(Debug, Default, Clone)]
pub struct Searchset<'a> {
    pub id: Option<String>,
    pub timestamp: Option<DateTime<Utc>>,
    pub self_url: &'a str,
    pub next_url: Option<&'a str>,
    pub total: Option<usize>,
    /// `meta.lastUpdated` (a simulated server's answers carry it).
    pub last_updated: Option<DateTime<Utc>>,
}

/// One entry: `fullUrl`, the resource (exactly as given) and its `search.mode`.
pub type Entry = (String, Value, SearchEntryMode);

/// A `searchset` Bundle. The shell — links, total, each entry's `fullUrl` and `search` — is
/// built with the typed model; the entries' resources are then put in as they are (source
/// JSON stays pass-through, never parsed into a typed model).
pub fn searchset(shell: &Searchset<'_>, entries: Vec<Entry>) -> Value {
    let (entry_shells, resources): (Vec<_>, Vec<_>) =
        entries.into_iter().map(|(full_url, resource, mode)| ((full_url, mode), resource)).unzip();
    let mut bundle = finish(typed_shell(shell, entry_shells));
    match bundle.get_mut("entry").and_then(Value::as_array_mut) {
        Some(list) => {
            for (entry, resource) in list.iter_mut().zip(resources) {
                put_resource(entry, resource);
            }
        }
        // The gateway has always answered `"entry": []` for no match; clients and tests read it.
        None => {
            if let Value::Object(map) = &mut bundle {
                map.insert("entry".into(), Value::Array(Vec::new()));
            }
        }
    }
    bundle
}

/// A resource that writes itself as compact JSON: a `Value`, or bytes already serialized
/// (a released resource rendered once for its decision).
pub trait WriteJson {
    fn write_json(&self, out: &mut Vec<u8>);
}

impl WriteJson for Value {
    fn write_json(&self, out: &mut Vec<u8>) {
        // Writing a `Value` into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, self);
    }
}

/// A borrowed resource writes itself (nothing is copied first).
impl<T: WriteJson + ?Sized> WriteJson for &T {
    fn write_json(&self, out: &mut Vec<u8>) {
        (**self).write_json(out);
    }
}

/// [`searchset`] written straight to bytes: the same bytes as `searchset(..).to_string()`,
/// with each resource written by itself (already serialized ones are copied, not parsed).
pub fn searchset_bytes<R: WriteJson>(shell: &Searchset<'_>, entries: Vec<(String, R, SearchEntryMode)>) -> Vec<u8> {
    let pieces = searchset_pieces(shell, None, entries);
    let mut out = Vec::with_capacity(pieces.iter().map(Bytes::len).sum());
    for p in &pieces {
        out.extend_from_slice(p);
    }
    out
}

/// [`searchset_bytes`] in pieces to be sent one after the other: `kept` — entries already
/// written by [`entries_bytes`] — go first in the `entry` list as they are (shared, not
/// copied), then `entries`. The pieces joined are the bytes `searchset_bytes` writes for the
/// same entries.
pub fn searchset_pieces<R: WriteJson>(
    shell: &Searchset<'_>,
    kept: Option<Bytes>,
    entries: Vec<(String, R, SearchEntryMode)>,
) -> Vec<Bytes> {
    let kept = kept.filter(|k| !k.is_empty());
    let (mut entry_shells, resources): (Vec<_>, Vec<_>) =
        entries.into_iter().map(|(full_url, resource, mode)| ((full_url, mode), resource)).unzip();
    // Kept entries alone still need one shell for the model to put `entry` where it goes;
    // that shell is not written.
    let only_kept = kept.is_some() && entry_shells.is_empty();
    if only_kept {
        entry_shells.push(("urn:kept".to_string(), SearchEntryMode::Match));
    }
    let bundle = finish(typed_shell(shell, entry_shells));
    let mut done: Vec<Bytes> = Vec::new();
    let mut out = Vec::with_capacity(1024);
    let Value::Object(map) = &bundle else {
        bundle.write_json(&mut out);
        return vec![out.into()];
    };
    let mut first = true;
    let mut key = |out: &mut Vec<u8>, k: &str| {
        out.push(if std::mem::take(&mut first) { b'{' } else { b',' });
        Value::from(k).write_json(out);
        out.push(b':');
    };
    let mut wrote_entries = false;
    for (k, v) in map {
        key(&mut out, k);
        match (k.as_str(), v) {
            ("entry", Value::Array(list)) => {
                out.push(b'[');
                if let Some(kept) = &kept {
                    done.push(std::mem::take(&mut out).into());
                    done.push(kept.clone());
                    if !only_kept {
                        out.push(b',');
                    }
                }
                if !only_kept {
                    write_entries(&mut out, list, &resources);
                }
                out.push(b']');
                wrote_entries = true;
            }
            _ => v.write_json(&mut out),
        }
    }
    // The gateway has always answered `"entry": []` for no match.
    if !wrote_entries {
        key(&mut out, "entry");
        out.extend_from_slice(b"[]");
    }
    if first {
        out.push(b'{');
    }
    out.push(b'}');
    done.push(out.into());
    done
}

/// Entries written as [`searchset_bytes`] writes them in the `entry` list, comma-separated
/// without the brackets: what [`searchset_pieces`] takes as `kept`.
pub fn entries_bytes<R: WriteJson>(entries: Vec<(String, R, SearchEntryMode)>) -> Vec<u8> {
    let mut shells = Vec::with_capacity(entries.len());
    let mut resources = Vec::with_capacity(entries.len());
    for (full_url, resource, mode) in entries {
        shells.push(finish(typed_entry(full_url, mode)));
        resources.push(resource);
    }
    let mut out = Vec::with_capacity(1024);
    write_entries(&mut out, &shells, &resources);
    out
}

/// The entries, each resource where [`put_resource`] puts it, comma-separated (the caller
/// writes the list's brackets).
fn write_entries<R: WriteJson>(out: &mut Vec<u8>, shells: &[Value], resources: &[R]) {
    for (i, (shell, resource)) in shells.iter().zip(resources).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let Value::Object(shell) = shell else {
            out.extend_from_slice(b"null");
            continue;
        };
        let mut first = true;
        let mut key = |out: &mut Vec<u8>, k: &str| {
            out.push(if std::mem::take(&mut first) { b'{' } else { b',' });
            Value::from(k).write_json(out);
            out.push(b':');
        };
        let mut pending = Some(resource);
        for (k, v) in shell {
            if matches!(k.as_str(), "search" | "request" | "response") {
                if let Some(r) = pending.take() {
                    key(out, "resource");
                    r.write_json(out);
                }
            }
            key(out, k);
            v.write_json(out);
        }
        if let Some(r) = pending {
            key(out, "resource");
            r.write_json(out);
        }
        if first {
            out.push(b'{');
        }
        out.push(b'}');
    }
}

fn typed_entry(full_url: String, mode: SearchEntryMode) -> Result<BundleEntry, BuilderError> {
    let search = BundleEntrySearch::builder().mode(mode).build()?;
    BundleEntry::builder().full_url(full_url).search(search).build()
}

fn typed_shell(shell: &Searchset<'_>, entries: Vec<(String, SearchEntryMode)>) -> Result<Bundle, BuilderError> {
    let link = |relation: &str, url: &str| {
        BundleLink::builder().relation(relation.to_string()).url(url.to_string()).build().map(Some)
    };
    let mut links = vec![link("self", shell.self_url)?];
    if let Some(next) = shell.next_url {
        links.push(link("next", next)?);
    }
    let entry = entries
        .into_iter()
        .map(|(full_url, mode)| typed_entry(full_url, mode).map(Some))
        .collect::<Result<Vec<_>, BuilderError>>()?;
    let mut bundle = Bundle::builder().r#type(BundleType::Searchset).link(links).entry(entry);
    if let Some(id) = &shell.id {
        bundle = bundle.id(id.clone());
    }
    if let Some(t) = shell.timestamp {
        bundle = bundle.timestamp(instant(t));
    }
    if let Some(total) = shell.total {
        bundle = bundle.total(u32::try_from(total).unwrap_or(u32::MAX));
    }
    if let Some(t) = shell.last_updated {
        bundle = bundle.meta(super::model::types::Meta::builder().last_updated(instant(t)).build()?);
    }
    bundle.build()
}

/// Puts `resource` into an entry shell where FHIR orders it: after `fullUrl`, before `search`.
fn put_resource(entry: &mut Value, resource: Value) {
    let Value::Object(shell) = std::mem::take(entry) else { return };
    let mut out = serde_json::Map::with_capacity(shell.len() + 1);
    let mut resource = Some(resource);
    for (k, v) in shell {
        if matches!(k.as_str(), "search" | "request" | "response") {
            if let Some(r) = resource.take() {
                out.insert("resource".into(), r);
            }
        }
        out.insert(k, v);
    }
    if let Some(r) = resource {
        out.insert("resource".into(), r);
    }
    *entry = Value::Object(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhir::model::codes::IssueType;
    use serde_json::json;

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

    #[test]
    fn kept_entries_in_pieces_are_the_same_bytes_as_written_whole() {
        let r = |id: &str| json!({"resourceType": "Observation", "id": id, "status": "final"});
        let entry = |id: &str| (format!("http://gw/fhir/Observation/{id}"), r(id), SearchEntryMode::Match);
        let outcome = crate::fhir::outcome::operation_outcome_with_id(
            "warnings",
            &[crate::fhir::outcome::Issue::warning(IssueType::Incomplete, "Lab may be missing.")],
        );
        let note = ("urn:uuid:1".to_string(), outcome, SearchEntryMode::Outcome);
        let shell = Searchset {
            self_url: "http://gw/fhir/Patient/p/$everything",
            next_url: Some("http://gw/fhir/Patient/p/$everything?_cursor=YQ"),
            total: Some(3),
            ..Searchset::default()
        };
        let kept = Bytes::from(entries_bytes(vec![entry("a"), entry("b")]));
        let join = |pieces: Vec<Bytes>| pieces.concat();
        for rest in [vec![], vec![note.clone()], vec![entry("c"), note]] {
            let mut all = vec![entry("a"), entry("b")];
            all.extend(rest.iter().cloned());
            let pieces = searchset_pieces(&shell, Some(kept.clone()), rest);
            assert!(pieces.iter().any(|p| p.as_ptr() == kept.as_ptr()), "the kept entries are sent, not copied");
            assert_eq!(join(pieces), searchset_bytes(&shell, all.clone()));
            assert_eq!(searchset_bytes(&shell, all.clone()), searchset(&shell, all).to_string().into_bytes());
        }
        let none = searchset_pieces::<Value>(&shell, None, vec![]);
        assert_eq!(join(none), searchset_bytes::<Value>(&shell, vec![]));
    }

    /// The searchset as the gateway wrote it with json! before the typed model.
    fn searchset_before(self_url: &str, next_url: Option<&str>, total: usize, entries: &[Entry]) -> Value {
        let mut links = vec![json!({"relation": "self", "url": self_url})];
        if let Some(n) = next_url {
            links.push(json!({"relation": "next", "url": n}));
        }
        json!({
            "resourceType": "Bundle",
            "type": "searchset",
            "link": links,
            "entry": entries.iter().map(|(full_url, resource, mode)| json!({
                "fullUrl": full_url,
                "resource": resource,
                "search": {"mode": mode.to_string()}
            })).collect::<Vec<_>>(),
            "total": total
        })
    }

    #[test]
    fn searchsets_are_what_the_gateway_wrote_before_and_source_resources_pass_through() {
        // A source resource with elements no model knows, and a decimal with its trailing zero.
        let source = json!({"resourceType": "Observation", "id": "lab.o1", "status": "final",
            "code": {"text": "K"}, "valueQuantity": {"value": 4.5, "unit": "mmol/L"},
            "unknownElement": {"kept": [1, "two", null]}, "_status": {"extension": [{"url": "x", "valueString": "y"}]}});
        let outcome = crate::fhir::outcome::operation_outcome_with_id(
            "warnings",
            &[crate::fhir::outcome::Issue::warning(IssueType::Incomplete, "Lab may be missing.")],
        );
        let entries: Vec<Entry> = vec![
            ("http://gw/fhir/Observation/lab.o1".into(), source.clone(), SearchEntryMode::Match),
            ("urn:uuid:1".into(), outcome, SearchEntryMode::Outcome),
        ];
        let shell = Searchset {
            self_url: "http://gw/fhir/Observation?patient=p",
            next_url: Some("http://gw/fhir/Observation?patient=p&_cursor=YQ"),
            total: Some(1),
            ..Searchset::default()
        };
        let served = searchset(&shell, entries.clone());
        assert_eq!(served, searchset_before(shell.self_url, shell.next_url, 1, &entries));
        assert_eq!(searchset_bytes(&shell, entries.clone()), served.to_string().into_bytes(), "written straight");
        assert_eq!(served["entry"][0]["resource"], source, "the source resource exactly as given");
        let keys: Vec<&str> = served["entry"][0].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["fullUrl", "resource", "search"]);
        // The shell reads back into the R4B model unchanged.
        let mut shell_only = served.clone();
        for e in shell_only["entry"].as_array_mut().unwrap() {
            e.as_object_mut().unwrap().remove("resource");
        }
        let back: Bundle = serde_json::from_value(shell_only.clone()).unwrap();
        assert_eq!(serde_json::to_value(back).unwrap(), shell_only);

        let empty = searchset(
            &Searchset { self_url: "http://gw/fhir/AuditEvent?", total: Some(0), ..Searchset::default() },
            vec![],
        );
        assert_eq!(empty, searchset_before("http://gw/fhir/AuditEvent?", None, 0, &[]));
        let empty_bytes = searchset_bytes::<Value>(
            &Searchset { self_url: "http://gw/fhir/AuditEvent?", total: Some(0), ..Searchset::default() },
            vec![],
        );
        assert_eq!(empty_bytes, empty.to_string().into_bytes());

        let produced = DateTime::parse_from_rfc3339("2026-03-01T10:20:30Z").unwrap().with_timezone(&Utc);
        let download = searchset(
            &Searchset {
                id: Some("b1".into()),
                timestamp: Some(produced),
                self_url: "s",
                total: Some(0),
                ..Searchset::default()
            },
            vec![],
        );
        assert_eq!(
            (download["id"].as_str(), download["timestamp"].as_str()),
            (Some("b1"), Some("2026-03-01T10:20:30Z"))
        );
    }
}
