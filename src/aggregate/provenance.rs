//! The gateway's names for where data came from, in one place: the id scheme of gateway
//! resource ids (`{source}.{source id}`, a digest when too long) and its inverse, the
//! `meta.source` value of a source, and the provenance `meta.tag` system whose codes name the
//! systems that hold a resource. Everything that writes or reads these goes through here;
//! it knows nothing of viewers or policy.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The code system of the provenance tag naming a source system that holds a resource.
pub const SOURCE_TAG_SYSTEM: &str = "http://portico.example/fhir/CodeSystem/source-system";

/// The prefix of `meta.source` values: `urn:portico:source:{source}`.
const META_SOURCE_PREFIX: &str = "urn:portico:source:";

/// The gateway id of a source resource: `{source}.{id}`, or a digest when that would not
/// fit FHIR's 64 characters. Stable across restarts and caches.
pub fn gateway_resource_id(source: &str, source_id: &str) -> String {
    if source.len() + 1 + source_id.len() <= 64 {
        format!("{source}.{source_id}")
    } else {
        let digest = hex::encode(Sha256::digest(source_id.as_bytes()));
        format!("{source}.h{}", &digest[..40])
    }
}

/// The source and the source's id named by a gateway id (`{source}.{id}`); for a digest
/// id, the id part is the digest (`h…`), which no source knows.
pub fn split_gateway_id(id: &str) -> Option<(&str, &str)> {
    id.split_once('.')
}

/// The `meta.source` value for a source.
pub fn meta_source(source: &str) -> String {
    format!("{META_SOURCE_PREFIX}{source}")
}

/// The source a `meta.source` value names, if it is one of the gateway's.
pub fn source_of_meta(r: &Value) -> Option<&str> {
    r.pointer("/meta/source").and_then(Value::as_str).and_then(|s| s.strip_prefix(META_SOURCE_PREFIX))
}

/// The provenance tags of a resource: the codings of `meta.tag` in [`SOURCE_TAG_SYSTEM`].
fn source_tags(r: &Value) -> impl Iterator<Item = &Value> {
    r.pointer("/meta/tag")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| t.get("system").and_then(Value::as_str) == Some(SOURCE_TAG_SYSTEM))
}

/// The sources that hold a resource (the codes of its provenance tags), in tag order.
pub fn holders(r: &Value) -> Vec<String> {
    source_tags(r).filter_map(|t| t.get("code").and_then(Value::as_str).map(str::to_string)).collect()
}

/// The names of the systems that hold a resource, for people: each provenance tag's display
/// (its code when it has none), else the source named in `meta.source`.
pub fn holder_names(r: &Value) -> Vec<String> {
    let mut out: Vec<String> = source_tags(r)
        .filter_map(|t| t.get("display").or_else(|| t.get("code")).and_then(Value::as_str).map(str::to_string))
        .collect();
    if out.is_empty() {
        out.extend(source_of_meta(r).map(str::to_string));
    }
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_tags_and_meta_source_read_back() {
        assert_eq!(gateway_resource_id("lab", "L-1"), "lab.L-1");
        assert_eq!(split_gateway_id("lab.L-1.x"), Some(("lab", "L-1.x")));
        let long = "x".repeat(70);
        assert!(gateway_resource_id("lab", &long).len() <= 64);
        let r = json!({"meta": {"source": meta_source("ehr"), "tag": [
            {"system": SOURCE_TAG_SYSTEM, "code": "ehr", "display": "Harbor General"},
            {"system": "http://other.example", "code": "x"},
            {"system": SOURCE_TAG_SYSTEM, "code": "lab"}]}});
        assert_eq!(source_of_meta(&r), Some("ehr"));
        assert_eq!(holders(&r), ["ehr", "lab"]);
        assert_eq!(holder_names(&r), ["Harbor General", "lab"]);
        let untagged = json!({"meta": {"source": meta_source("imaging")}});
        assert_eq!(holder_names(&untagged), ["imaging"]);
        assert!(holders(&untagged).is_empty());
        assert_eq!(source_of_meta(&json!({"meta": {"source": "http://elsewhere"}})), None);
    }
}
