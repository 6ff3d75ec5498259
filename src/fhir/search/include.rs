//! `_include` and `_revinclude`: parsing `Type:param[:target]` (with `:iterate`) against
//! R4's reference search parameters ([`super::r4`]), and resolving them among a given set
//! of resources — the caller's pool, which is all that may ever be included. A reference
//! that points outside the pool includes nothing and says nothing. `*` is refused.

use super::r4::{self, ReferenceParam};
use super::SearchError;
use crate::fhir::{path_values, reference, resource_id, resource_type};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// One `_include` or `_revinclude`.
#[derive(Debug, Clone)]
pub struct Include {
    /// `_revinclude`: resources of `source_type` that point at the results.
    pub reverse: bool,
    /// `:iterate` (or R3's `:recurse`): also applies to included resources.
    pub iterate: bool,
    pub source_type: &'static str,
    pub param: &'static ReferenceParam,
    /// The third part, `Type:param:target`.
    pub target: Option<String>,
}

impl Include {
    /// The parameter as the caller wrote it, for messages.
    pub fn describe(&self) -> String {
        let name = if self.reverse { "_revinclude" } else { "_include" };
        let target = self.target.as_deref().map(|t| format!(":{t}")).unwrap_or_default();
        format!("{name}={}:{}{target}", self.source_type, self.param.name)
    }

    /// Parses one occurrence (`name` is `_include` or `_revinclude`, `modifier` what
    /// followed a colon in the parameter name) of a search of `searched`.
    pub fn parse(name: &str, modifier: Option<&str>, value: &str, searched: &str) -> Result<Include, SearchError> {
        let reverse = name == "_revinclude";
        let iterate = match modifier {
            None => false,
            Some("iterate" | "recurse") => true,
            Some(m) => return Err(SearchError::UnsupportedModifier { param: name.into(), modifier: m.into() }),
        };
        let bad = |message: String| SearchError::BadValue { param: name.into(), message };
        if value.trim() == "*" || value.ends_with(":*") {
            return Err(bad("`*` is not supported; name each reference as Type:parameter".into()));
        }
        let parts: Vec<&str> = value.split(':').collect();
        let (source, param, target) = match parts.as_slice() {
            [s, p] => (*s, *p, None),
            [s, p, t] => (*s, *p, Some(*t)),
            _ => return Err(bad(format!("`{value}` is not Type:parameter or Type:parameter:TargetType"))),
        };
        let facts = r4::facts(source)
            .filter(|_| crate::fhir::is_served_type(source))
            .ok_or_else(|| bad(format!("`{source}` is not a resource type this server serves")))?;
        let param = r4::reference_param(source, param)
            .ok_or_else(|| bad(format!("`{param}` is not a reference search parameter of {source}")))?;
        if let Some(t) = target {
            if !param.may_target(t) || !crate::fhir::is_served_type(t) {
                return Err(bad(format!("{source}:{} does not point at {t} here", param.name)));
            }
        }
        if !iterate {
            if !reverse && source != searched {
                return Err(bad(format!(
                    "`{value}` names {source} but this search is of {searched} (use _include:iterate to include from included resources)"
                )));
            }
            if reverse && !param.may_target(searched) {
                return Err(bad(format!("{source}:{} never points at {searched}", param.name)));
            }
        }
        Ok(Include { reverse, iterate, source_type: facts.resource_type, param, target: target.map(str::to_string) })
    }

    /// The `Type/id` keys `r` points at through this parameter (when `r` is of its type).
    fn pointed_at(&self, r: &Value) -> Vec<String> {
        if resource_type(r) != Some(self.source_type) {
            return Vec::new();
        }
        self.param
            .paths
            .iter()
            .flat_map(|p| path_values(r, p))
            .filter_map(|v| v.get("reference").and_then(Value::as_str))
            .filter_map(reference::parse)
            .filter(|(t, _)| self.param.may_target(t) && self.target.as_deref().is_none_or(|want| want == *t))
            .map(|(t, id)| format!("{t}/{id}"))
            .collect()
    }
}

fn key(r: &Value) -> String {
    format!("{}/{}", resource_type(r).unwrap_or(""), resource_id(r).unwrap_or(""))
}

/// The resources of `pool` that `includes` add to `matches`, in pool order: each once, and
/// none that is already a match. Non-iterating includes apply to the matches; iterating
/// ones also to what was included, until nothing new is found.
pub fn resolve<'a>(matches: &[&Value], pool: &[&'a Value], includes: &[Include]) -> Vec<&'a Value> {
    if includes.is_empty() {
        return Vec::new();
    }
    let by_key: HashMap<String, usize> = pool.iter().enumerate().map(|(i, r)| (key(r), i)).collect();
    let mut seen: HashSet<String> = matches.iter().map(|r| key(r)).collect();
    let mut included: Vec<usize> = Vec::new();
    let mut frontier: Vec<&Value> = matches.to_vec();
    let mut first = true;
    while !frontier.is_empty() {
        let applying: Vec<&Include> = includes.iter().filter(|i| first || i.iterate).collect();
        let frontier_keys: HashSet<String> = frontier.iter().map(|r| key(r)).collect();
        let mut found: Vec<usize> = Vec::new();
        for inc in applying {
            if inc.reverse {
                for (i, r) in pool.iter().enumerate() {
                    if inc.pointed_at(r).iter().any(|k| frontier_keys.contains(k)) {
                        found.push(i);
                    }
                }
            } else {
                for r in &frontier {
                    found.extend(inc.pointed_at(r).iter().filter_map(|k| by_key.get(k).copied()));
                }
            }
        }
        let mut next = Vec::new();
        for i in found {
            if seen.insert(key(pool[i])) {
                included.push(i);
                next.push(pool[i]);
            }
        }
        frontier = next;
        first = false;
    }
    included.sort_unstable();
    included.into_iter().map(|i| pool[i]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(name: &str, value: &str, searched: &str) -> Result<Include, SearchError> {
        let (name, modifier) = match name.split_once(':') {
            Some((n, m)) => (n, Some(m)),
            None => (name, None),
        };
        Include::parse(name, modifier, value, searched)
    }

    #[test]
    fn parameters_are_checked_against_r4() {
        assert!(parse("_include", "Observation:performer", "Observation").is_ok());
        assert!(parse("_include", "Observation:performer:Practitioner", "Observation").is_ok());
        assert!(parse("_include", "MedicationRequest:medication", "MedicationRequest").is_ok());
        assert!(parse("_revinclude", "Observation:subject", "Patient").is_ok());
        assert!(parse("_include:iterate", "Encounter:service-provider", "Observation").is_ok());
        for (name, value, searched) in [
            ("_include", "*", "Observation"),
            ("_include", "Observation:*", "Observation"),
            ("_include", "Observation:code", "Observation"),
            ("_include", "Observation", "Observation"),
            ("_include", "Nonsense:subject", "Observation"),
            ("_include", "Encounter:subject", "Observation"),
            ("_include", "Observation:performer:Encounter", "Observation"),
            ("_revinclude", "Observation:performer", "Encounter"),
            ("_include:deep", "Observation:performer", "Observation"),
        ] {
            assert!(parse(name, value, searched).is_err(), "{name}={value} on {searched}");
        }
    }

    #[test]
    fn includes_follow_references_within_the_pool_only() {
        let patient = json!({"resourceType": "Patient", "id": "p"});
        let doc = json!({"resourceType": "Practitioner", "id": "d"});
        let org = json!({"resourceType": "Organization", "id": "org"});
        let enc = json!({"resourceType": "Encounter", "id": "e", "serviceProvider": {"reference": "Organization/org"}});
        let o1 = json!({"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/p"},
            "performer": [{"reference": "Practitioner/d"}, {"reference": "Practitioner/gone"}],
            "encounter": {"reference": "Encounter/e"}});
        let o2 = json!({"resourceType": "Observation", "id": "o2", "subject": {"reference": "Patient/p"},
            "performer": [{"reference": "Practitioner/d"}]});
        let pool: Vec<&Value> = vec![&patient, &doc, &enc, &o1, &o2, &org];
        let ids = |v: Vec<&Value>| v.iter().map(|r| key(r)).collect::<Vec<_>>();
        let inc = |n: &str, v: &str, s: &str| parse(n, v, s).unwrap();

        let performer = [inc("_include", "Observation:performer", "Observation")];
        assert_eq!(
            ids(resolve(&[&o1, &o2], &pool, &performer)),
            ["Practitioner/d"],
            "once, and the missing one says nothing"
        );
        let rev = [inc("_revinclude", "Observation:subject", "Patient")];
        assert_eq!(ids(resolve(&[&patient], &pool, &rev)), ["Observation/o1", "Observation/o2"]);
        assert!(resolve(&[&o2], &pool, &[inc("_include", "Observation:encounter", "Observation")]).is_empty());

        let encounter = [inc("_include", "Observation:encounter", "Observation")];
        assert_eq!(ids(resolve(&[&o1], &pool, &encounter)), ["Encounter/e"]);
        assert!(parse("_include", "Encounter:service-provider", "Observation").is_err(), "only with :iterate");
        let chain = [
            inc("_include", "Observation:encounter", "Observation"),
            inc("_include:iterate", "Encounter:service-provider", "Observation"),
        ];
        assert_eq!(ids(resolve(&[&o1], &pool, &chain)), ["Encounter/e", "Organization/org"]);
        let without_org: Vec<&Value> = pool.iter().copied().filter(|r| r["id"] != "org").collect();
        assert_eq!(ids(resolve(&[&o1], &without_org, &chain)), ["Encounter/e"]);
        let typed = [inc("_include", "Observation:performer:Organization", "Observation")];
        assert!(resolve(&[&o1], &pool, &typed).is_empty());
    }
}
