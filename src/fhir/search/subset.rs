//! `_summary` and `_elements`: which parts of a resource an answer carries. Parsing refuses
//! unknown summaries, unknown elements and the two together; applying keeps the chosen
//! top-level elements (always `resourceType`, `id`, `meta` and the type's mandatory
//! elements) and tags the resource SUBSETTED, as R4 asks. Summary elements are those R4
//! marks `isSummary` in the type's base definition ([`super::r4`]).

use super::r4;
use super::SearchError;
use serde_json::{json, Map, Value};

/// The code system and code of the SUBSETTED tag.
pub const SUBSETTED_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";
pub const SUBSETTED: &str = "SUBSETTED";

/// What an answer carries of each resource.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Subset {
    /// The whole resource (`_summary=false`, or nothing asked).
    #[default]
    Whole,
    /// No resources, only the total (`_summary=count`; searches only).
    Count,
    /// `_summary=true`: the elements R4 marks summary, plus the mandatory ones.
    Summary,
    /// `_summary=text`: `text`, `id`, `meta` and the mandatory elements.
    Text,
    /// `_summary=data`: everything but `text`.
    Data,
    /// `_elements=a,b`: those top-level elements, plus `id`, `meta` and the mandatory ones.
    Elements(Vec<String>),
}

/// Elements every subset keeps.
const ALWAYS: &[&str] = &["resourceType", "id", "meta"];

impl Subset {
    /// The subset asked for by the values of `_summary` and `_elements` (each given as
    /// often as the query repeats it), for resources of `resource_type`.
    pub fn parse(resource_type: &str, summary: &[&str], elements: &[&str]) -> Result<Subset, SearchError> {
        let bad = |param: &str, message: String| SearchError::BadValue { param: param.into(), message };
        let summary = match summary {
            [] => None,
            [one] => Some(*one),
            _ => return Err(bad("_summary", "give it once".into())),
        };
        let by_summary = match summary {
            None | Some("false") => Subset::Whole,
            Some("count") => Subset::Count,
            Some("true") => Subset::Summary,
            Some("text") => Subset::Text,
            Some("data") => Subset::Data,
            Some(other) => {
                return Err(bad("_summary", format!("`{other}` is not one of true, text, data, count, false")))
            }
        };
        if elements.is_empty() {
            return Ok(by_summary);
        }
        match by_summary {
            Subset::Count => return Ok(Subset::Count),
            Subset::Whole if summary.is_none() => {}
            _ => return Err(bad("_elements", "use either _summary or _elements, not both".into())),
        }
        let known = r4::facts(resource_type).map(|f| f.elements.as_slice()).unwrap_or_default();
        let mut names = Vec::new();
        for name in elements.iter().flat_map(|v| v.split(',')).map(str::trim) {
            if name.is_empty() {
                return Err(bad("_elements", "empty element name".into()));
            }
            // A choice element is asked for by its stem (`value`, kept as `value[x]`) or by
            // one of its typed names (`valueQuantity`).
            let element = if ALWAYS.contains(&name) || known.contains(&name) {
                Some(name.to_string())
            } else if known.iter().any(|e| e.strip_suffix("[x]") == Some(name)) {
                Some(format!("{name}[x]"))
            } else {
                known.iter().any(|e| e.ends_with("[x]") && r4::key_is_element(name, e)).then(|| name.to_string())
            };
            let element = element
                .filter(|_| !name.starts_with('_'))
                .ok_or_else(|| bad("_elements", format!("`{name}` is not a top-level element of {resource_type}")))?;
            if !names.contains(&element) {
                names.push(element);
            }
        }
        Ok(Subset::Elements(names))
    }

    /// True when resources are cut down (and tagged SUBSETTED).
    pub fn trims(&self) -> bool {
        !matches!(self, Subset::Whole | Subset::Count)
    }

    /// Cuts `resource` down to this subset and tags it SUBSETTED; the whole resource and
    /// `Count` leave it as it is.
    pub fn apply(&self, resource: &mut Value) {
        if !self.trims() {
            return;
        }
        let Value::Object(map) = resource else { return };
        let facts = map.get("resourceType").and_then(Value::as_str).and_then(r4::facts);
        let mandatory = facts.map(|f| f.mandatory.as_slice()).unwrap_or_default();
        let keep = |key: &str, wanted: &[&str]| {
            ALWAYS.contains(&key)
                || mandatory.iter().any(|e| r4::key_is_element(key, e))
                || wanted.iter().any(|e| r4::key_is_element(key, e))
        };
        match self {
            Subset::Data => {
                map.remove("text");
            }
            Subset::Text => map.retain(|k, _| keep(k, &["text"])),
            Subset::Summary => {
                let summary = facts.map(|f| f.summary.as_slice()).unwrap_or_default();
                map.retain(|k, _| keep(k, summary));
            }
            Subset::Elements(names) => {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                map.retain(|k, _| keep(k, &names));
            }
            Subset::Whole | Subset::Count => {}
        }
        tag_subsetted(map);
    }
}

/// Adds the SUBSETTED tag to `meta.tag` (once).
fn tag_subsetted(map: &mut Map<String, Value>) {
    let meta = map.entry("meta").or_insert_with(|| json!({}));
    let Value::Object(meta) = meta else { return };
    let tags = meta.entry("tag").or_insert_with(|| json!([]));
    let Value::Array(tags) = tags else { return };
    let tagged = tags.iter().any(|t| t["system"] == SUBSETTED_SYSTEM && t["code"] == SUBSETTED);
    if !tagged {
        tags.push(json!({"system": SUBSETTED_SYSTEM, "code": SUBSETTED, "display": "subsetted"}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs() -> Value {
        json!({"resourceType": "Observation", "id": "o1", "meta": {"source": "#lab"},
            "text": {"status": "generated", "div": "<div>K 4.5</div>"},
            "status": "final", "_status": {"extension": []}, "category": [{"text": "lab"}],
            "code": {"text": "K"}, "subject": {"reference": "Patient/p"},
            "valueQuantity": {"value": 4.5}, "note": [{"text": "fine"}]})
    }

    fn keys(v: &Value) -> Vec<&str> {
        v.as_object().unwrap().keys().map(String::as_str).collect()
    }

    fn subsetted(v: &Value) -> bool {
        v["meta"]["tag"].as_array().is_some_and(|t| t.iter().any(|t| t["code"] == SUBSETTED))
    }

    #[test]
    fn each_summary_keeps_what_r4_says_and_tags_the_resource() {
        let parse = |s: &[&str], e: &[&str]| Subset::parse("Observation", s, e);
        let mut data = obs();
        parse(&["data"], &[]).unwrap().apply(&mut data);
        assert!(data.get("text").is_none() && data["note"].is_array() && subsetted(&data));
        let mut text = obs();
        parse(&["text"], &[]).unwrap().apply(&mut text);
        assert_eq!(keys(&text), ["resourceType", "id", "meta", "text", "status", "_status", "code"]);
        let mut summary = obs();
        parse(&["true"], &[]).unwrap().apply(&mut summary);
        assert_eq!(
            keys(&summary),
            ["resourceType", "id", "meta", "status", "_status", "code", "subject", "valueQuantity"]
        );
        assert_eq!(summary["meta"]["source"], "#lab", "meta kept as it was, plus the tag");
        let mut elements = obs();
        parse(&[], &["value,note", "note"]).unwrap().apply(&mut elements);
        assert_eq!(
            keys(&elements),
            ["resourceType", "id", "meta", "status", "_status", "code", "valueQuantity", "note"]
        );
        assert_eq!(elements["meta"]["tag"].as_array().unwrap().len(), 1);
        for whole in [parse(&[], &[]).unwrap(), parse(&["false"], &[]).unwrap(), parse(&["count"], &[]).unwrap()] {
            let mut r = obs();
            whole.apply(&mut r);
            assert_eq!(r, obs());
        }
        let mut bare = json!({"resourceType": "Observation", "status": "final", "code": {}, "note": []});
        parse(&[], &["status"]).unwrap().apply(&mut bare);
        assert_eq!(bare["meta"]["tag"][0]["system"], SUBSETTED_SYSTEM);
        assert!(bare.get("note").is_none());
    }

    #[test]
    fn unknown_values_and_elements_are_refused() {
        let parse = |s: &[&str], e: &[&str]| Subset::parse("Observation", s, e);
        assert!(parse(&["yes"], &[]).is_err());
        assert!(parse(&["true", "data"], &[]).is_err());
        assert!(parse(&[], &["colour"]).is_err());
        assert!(parse(&[], &["code,"]).is_err());
        assert!(parse(&[], &["_status"]).is_err());
        assert!(parse(&["data"], &["code"]).is_err());
        assert_eq!(parse(&["count"], &["code"]).unwrap(), Subset::Count);
        assert_eq!(
            parse(&[], &["valueQuantity", "code,effective"]).unwrap(),
            Subset::Elements(vec!["valueQuantity".into(), "code".into(), "effective[x]".into()])
        );
    }
}
