//! The released record: what one viewer may see of one patient's record, and nothing else.
//! Only the policy module can build one (DESIGN.md promise 1); every renderer takes it. On
//! the way out, references to withheld resources are removed so nothing dangles and no
//! display text leaks, and sensitivity labels are stripped for viewers who must not learn
//! the fact a label names.

use crate::aggregate::Record;
use crate::fhir::{self, outcome::Issue, reference};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

#[derive(Debug)]
pub struct Released {
    patient_id: String,
    resources: Vec<Value>,
    positions: HashMap<String, usize>,
    notices: Vec<Issue>,
    /// The first moment the same inputs could be decided differently (a hold ending).
    changes_at: Option<DateTime<Utc>>,
}

/// How the released copies are finished.
pub(super) struct Finish {
    /// Indexes (into the record) of the resources released.
    pub keep: Vec<usize>,
    /// Keys of everything withheld, for reference pruning.
    pub withheld: HashSet<String>,
    pub strip_sensitivity: bool,
    /// Indexes that get the Part 2 labels (R, 42CFRPart2, NORDSCLCD).
    pub part2_stamp: HashSet<usize>,
    pub notices: Vec<Issue>,
}

impl Released {
    /// The release of a record others share (a cached one): its resources are copied.
    pub(super) fn build(record: &Record, finish: Finish) -> Released {
        Released::assemble(record, finish, |i| record.resources[i].clone())
    }

    /// The release of a record no one else holds (read once): its resources are moved out,
    /// not copied, and the record is left without them.
    pub(super) fn build_taking(record: &mut Record, finish: Finish) -> Released {
        let mut taken = std::mem::take(&mut record.resources);
        Released::assemble(record, finish, |i| std::mem::take(&mut taken[i]))
    }

    fn assemble(record: &Record, finish: Finish, mut copy: impl FnMut(usize) -> Value) -> Released {
        let mut new_index = HashMap::new();
        let mut resources: Vec<Value> = finish
            .keep
            .iter()
            .enumerate()
            .map(|(n, &i)| {
                new_index.insert(i, n);
                let mut r = copy(i);
                if !finish.withheld.is_empty() {
                    prune(&mut r, &finish.withheld);
                }
                if finish.strip_sensitivity {
                    strip_sensitivity(&mut r);
                }
                if finish.part2_stamp.contains(&i) {
                    stamp_part2(&mut r);
                }
                r
            })
            .collect();
        if !finish.withheld.is_empty() {
            hide_unseen_sources(&mut resources);
        }
        let positions = record.keys().filter_map(|(k, i)| Some((k.to_string(), *new_index.get(&i)?))).collect();
        Released {
            patient_id: record.patient_id.clone(),
            resources,
            positions,
            notices: finish.notices,
            changes_at: None,
        }
    }

    /// Marks when this release stops being the answer for the same record, viewer and ledger.
    pub(super) fn changing_at(mut self, at: Option<DateTime<Utc>>) -> Released {
        self.changes_at = at;
        self
    }

    /// The first moment the same record, viewer and ledger could be decided differently
    /// (a hold in it ending); `None` when only a change of those could.
    pub fn changes_at(&self) -> Option<DateTime<Utc>> {
        self.changes_at
    }

    pub fn patient_id(&self) -> &str {
        &self.patient_id
    }

    /// Patient first, then by type and id.
    pub fn resources(&self) -> &[Value] {
        &self.resources
    }

    /// The resources, given up (see [`Released::resources`]).
    pub fn into_resources(self) -> Vec<Value> {
        self.resources
    }

    pub fn get(&self, resource_type: &str, id: &str) -> Option<&Value> {
        self.position(resource_type, id).map(|i| &self.resources[i])
    }

    /// Where `resource_type/id` is in [`Released::resources`], if it was released.
    pub fn position(&self, resource_type: &str, id: &str) -> Option<usize> {
        self.positions.get(&format!("{resource_type}/{id}")).copied()
    }

    pub fn patient(&self) -> Option<&Value> {
        self.resources.first().filter(|r| fhir::resource_type(r) == Some("Patient"))
    }

    /// Notices the answer must carry (the withheld-notice, the Part 2 redisclosure notice).
    pub fn notices(&self) -> &[Issue] {
        &self.notices
    }
}

fn points_to_withheld(v: &Value, withheld: &HashSet<String>) -> bool {
    v.get("reference")
        .and_then(Value::as_str)
        .and_then(reference::parse)
        .is_some_and(|(t, id)| withheld.contains(&format!("{t}/{id}")))
}

/// Removes every reference to a withheld resource: a reference in a list goes, a backbone
/// element in a list that holds one goes, a reference field goes; lists emptied by this go.
fn prune(v: &mut Value, withheld: &HashSet<String>) {
    match v {
        Value::Array(items) => {
            items.retain(|it| {
                !points_to_withheld(it, withheld)
                    && !it.as_object().is_some_and(|o| o.values().any(|x| points_to_withheld(x, withheld)))
            });
            items.iter_mut().for_each(|it| prune(it, withheld));
        }
        Value::Object(map) => {
            map.retain(|_, x| !points_to_withheld(x, withheld));
            let mut emptied = Vec::new();
            for (k, x) in map.iter_mut() {
                let before = x.as_array().map(Vec::len);
                prune(x, withheld);
                if before.is_some_and(|n| n > 0) && x.as_array().is_some_and(Vec::is_empty) {
                    emptied.push(k.clone());
                }
            }
            for k in emptied {
                map.remove(&k);
            }
        }
        _ => {}
    }
}

/// The Patient resource is tagged with every system that holds the person. When something
/// was withheld, a tag naming a system none of whose other data is shown would disclose what
/// was withheld (a parent learning that the teen is known to a behavioral health clinic), so
/// the Patient keeps only the tags of systems whose data the viewer receives.
fn hide_unseen_sources(resources: &mut [Value]) {
    use crate::aggregate::provenance::{holders, meta_source, SOURCE_TAG_SYSTEM};
    let seen: HashSet<String> =
        resources.iter().filter(|r| fhir::resource_type(r) != Some("Patient")).flat_map(holders).collect();
    let Some(patient) = resources.iter_mut().find(|r| fhir::resource_type(r) == Some("Patient")) else { return };
    let primary = patient.pointer("/meta/source").and_then(Value::as_str).map(str::to_string);
    if let Some(tags) = patient.pointer_mut("/meta/tag").and_then(Value::as_array_mut) {
        tags.retain(|t| {
            let code = t.get("code").and_then(Value::as_str).unwrap_or("");
            t.get("system").and_then(Value::as_str) != Some(SOURCE_TAG_SYSTEM)
                || seen.contains(code)
                || primary.as_deref() == Some(meta_source(code).as_str())
        });
    }
}

/// Removes every label that would single out a sensitive item: sensitivity codes, and the
/// confidentiality (R, V), privacy-law (42CFRPart2 …) and handling (NORDSCLCD …) codes that
/// travel with them. Integrity and other labels stay.
fn strip_sensitivity(r: &mut Value) {
    use crate::label::{label_kind, LabelKind};
    let Some(security) = r.pointer_mut("/meta/security").and_then(Value::as_array_mut) else { return };
    security.retain(|c| match label_kind(c) {
        LabelKind::Sensitivity | LabelKind::PrivacyLaw | LabelKind::Handling => false,
        LabelKind::Confidentiality => {
            c.get("code").and_then(Value::as_str).and_then(crate::label::confidentiality_rank)
                <= crate::label::confidentiality_rank("N")
        }
        _ => true,
    });
    if security.is_empty() {
        if let Some(meta) = r.get_mut("meta").and_then(Value::as_object_mut) {
            meta.remove("security");
        }
    }
}

fn stamp_part2(r: &mut Value) {
    use crate::label::{ACT_CODE, CONFIDENTIALITY};
    let wanted = [
        (CONFIDENTIALITY, "R", "restricted"),
        (ACT_CODE, "42CFRPart2", "42 CFR Part2"),
        (ACT_CODE, "NORDSCLCD", "no redisclosure without consent directive"),
    ];
    let Some(obj) = r.as_object_mut() else { return };
    let meta = obj.entry("meta").or_insert_with(|| json!({}));
    let Some(meta) = meta.as_object_mut() else { return };
    let security = meta.entry("security").or_insert_with(|| json!([]));
    let Some(list) = security.as_array_mut() else { return };
    for (system, code, display) in wanted {
        if !list.iter().any(|c| c.get("code").and_then(Value::as_str) == Some(code)) {
            list.push(json!({"system": system, "code": code, "display": display}));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_removes_references_backbones_and_emptied_lists_only() {
        let withheld: HashSet<String> = ["Condition/x".to_string(), "Observation/o2".to_string()].into();
        let mut enc = json!({
            "resourceType": "Encounter",
            "diagnosis": [{"condition": {"reference": "Condition/x", "display": "Opioid dependence"}, "rank": 1},
                          {"condition": {"reference": "Condition/y"}, "rank": 2}],
            "reasonReference": [{"reference": "Condition/x"}],
            "partOf": {"reference": "Encounter/e0"},
            "note": []
        });
        prune(&mut enc, &withheld);
        assert_eq!(
            enc,
            json!({
                "resourceType": "Encounter",
                "diagnosis": [{"condition": {"reference": "Condition/y"}, "rank": 2}],
                "partOf": {"reference": "Encounter/e0"},
                "note": []
            })
        );
        let mut obs = json!({"hasMember": [{"reference": "Observation/o2"}], "derivedFrom": [{"reference": "Observation/o1"}], "focus": {"reference": "Condition/x"}});
        prune(&mut obs, &withheld);
        assert_eq!(obs, json!({"derivedFrom": [{"reference": "Observation/o1"}]}));
    }
}
