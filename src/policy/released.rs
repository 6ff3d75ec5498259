//! The released record: what one viewer may see of one patient's record, and nothing else.
//! Only the policy module can build one (DESIGN.md promise 1); every renderer takes it. On
//! the way out, references to withheld resources are removed so nothing dangles and no
//! display text leaks, and sensitivity labels are stripped for viewers who must not learn
//! the fact a label names.

use crate::aggregate::Record;
use crate::fhir::{self, outcome::Issue, reference};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

/// A decision's release. The released copies are finished from the record when first asked
/// for — all of them for a whole answer, or only the one a single read needs — so a decision
/// that answers one read costs one copy, not one per resource of the record.
#[derive(Debug)]
pub struct Released {
    record: Arc<Record>,
    finish: Finish,
    /// Record index → index among the released resources (`NOT_RELEASED`, or past the end,
    /// if withheld).
    released_at: Vec<u32>,
    /// Every released resource, finished (set at once when they were moved out of the record).
    resources: OnceLock<Vec<Value>>,
    /// The first moment the same inputs could be decided differently (a hold ending).
    changes_at: Option<DateTime<Utc>>,
}

const NOT_RELEASED: u32 = u32::MAX;

/// How the released copies are finished.
#[derive(Debug)]
pub(super) struct Finish {
    /// Indexes (into the record) of the resources released, ascending.
    pub keep: Vec<usize>,
    /// Keys of everything withheld, for reference pruning.
    pub withheld: HashSet<String>,
    pub strip_sensitivity: bool,
    /// Indexes that get the Part 2 labels (R, 42CFRPart2, NORDSCLCD).
    pub part2_stamp: HashSet<usize>,
    pub notices: Vec<Issue>,
}

impl Finish {
    /// The released copy of the record's resource `i`, finished: references to withheld
    /// resources pruned, sensitivity labels stripped, Part 2 labels stamped.
    fn finished(&self, i: usize, mut r: Value) -> Value {
        if !self.withheld.is_empty() {
            prune(&mut r, &self.withheld);
        }
        if self.strip_sensitivity {
            strip_sensitivity(&mut r);
        }
        if self.part2_stamp.contains(&i) {
            stamp_part2(&mut r);
        }
        r
    }

    /// Every released copy, finished (`resource(i)`: the record's resource `i`), and the
    /// Patient's provenance tags hidden where something was withheld.
    fn all(&self, mut resource: impl FnMut(usize) -> Value) -> Vec<Value> {
        let mut all: Vec<Value> = self.keep.iter().map(|&i| self.finished(i, resource(i))).collect();
        if !self.withheld.is_empty() {
            hide_unseen_sources(&mut all);
        }
        all
    }
}

impl Released {
    /// The release of a record others share (a cached one): its resources are copied when
    /// asked for.
    pub(super) fn build(record: &Arc<Record>, finish: Finish) -> Released {
        // `keep` is in record order: its last index is the highest released.
        let mut released_at = vec![NOT_RELEASED; finish.keep.last().map_or(0, |&i| i + 1)];
        for (n, &i) in finish.keep.iter().enumerate() {
            released_at[i] = u32::try_from(n).unwrap_or(NOT_RELEASED);
        }
        Released { record: record.clone(), finish, released_at, resources: OnceLock::new(), changes_at: None }
    }

    /// The release of a record no one else holds (read once): its resources are moved out,
    /// not copied, and the record is left without them. A record shared after all is
    /// released as [`Released::build`] does.
    pub(super) fn build_taking(record: &mut Arc<Record>, finish: Finish) -> Released {
        let Some(own) = Arc::get_mut(record) else { return Released::build(record, finish) };
        let mut taken = std::mem::take(&mut own.resources);
        let resources = finish.all(|i| std::mem::take(&mut taken[i]));
        let done = Released::build(record, finish);
        let _ = done.resources.set(resources);
        done
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
        &self.record.patient_id
    }

    /// How many resources are released.
    pub fn len(&self) -> usize {
        self.finish.keep.len()
    }

    pub fn is_empty(&self) -> bool {
        self.finish.keep.is_empty()
    }

    /// Patient first, then by type and id (all of them finished on the first call).
    pub fn resources(&self) -> &[Value] {
        self.resources.get_or_init(|| self.finish.all(|i| self.record.resources[i].clone()))
    }

    /// The `n`th released resource, as [`Released::resources`] has it, without finishing the
    /// others when they were not asked for yet.
    pub fn one(&self, n: usize) -> Option<Value> {
        if let Some(all) = self.resources.get() {
            return all.get(n).cloned();
        }
        let &i = self.finish.keep.get(n)?;
        let mut r = self.finish.finished(i, self.record.resources[i].clone());
        if !self.finish.withheld.is_empty() && fhir::resource_type(&r) == Some("Patient") {
            let others = self.finish.keep.iter().map(|&j| &self.record.resources[j]);
            hide_unseen_sources_of(&mut r, others);
        }
        Some(r)
    }

    /// The resources released, as they were before finishing (what their attachments are).
    pub fn unfinished(&self) -> Vec<&Value> {
        match self.resources.get() {
            Some(all) => all.iter().collect(),
            None => self.finish.keep.iter().map(|&i| &self.record.resources[i]).collect(),
        }
    }

    /// The `n`th released resource as it was before finishing (finishing changes neither its
    /// type nor its id), without finishing any.
    pub fn unfinished_one(&self, n: usize) -> Option<&Value> {
        match self.resources.get() {
            Some(all) => all.get(n),
            None => self.finish.keep.get(n).map(|&i| &self.record.resources[i]),
        }
    }

    /// The resources, given up (see [`Released::resources`]).
    pub fn into_resources(self) -> Vec<Value> {
        self.resources();
        self.resources.into_inner().unwrap_or_default()
    }

    pub fn get(&self, resource_type: &str, id: &str) -> Option<&Value> {
        self.position(resource_type, id).map(|i| &self.resources()[i])
    }

    /// Where `resource_type/id` is in [`Released::resources`], if it was released.
    pub fn position(&self, resource_type: &str, id: &str) -> Option<usize> {
        let i = self.record.index_of(resource_type, id)?;
        self.released_at.get(i).filter(|&&n| n != NOT_RELEASED).map(|&n| n as usize)
    }

    /// Where the Patient resource is in [`Released::resources`] (first), if it was released.
    pub fn patient_position(&self) -> Option<usize> {
        let first = match self.resources.get() {
            Some(all) => all.first(),
            None => self.finish.keep.first().map(|&i| &self.record.resources[i]),
        };
        first.filter(|r| fhir::resource_type(r) == Some("Patient")).map(|_| 0)
    }

    /// The Patient resource as released, if it was.
    pub fn patient(&self) -> Option<Value> {
        self.one(self.patient_position()?)
    }

    /// Notices the answer must carry (the withheld-notice, the Part 2 redisclosure notice).
    pub fn notices(&self) -> &[Issue] {
        &self.finish.notices
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
    let Some(at) = resources.iter().position(|r| fhir::resource_type(r) == Some("Patient")) else { return };
    let mut patient = std::mem::take(&mut resources[at]);
    hide_unseen_sources_of(&mut patient, resources.iter());
    resources[at] = patient;
}

/// [`hide_unseen_sources`] for `patient` beside the other resources released with it.
fn hide_unseen_sources_of<'a>(patient: &mut Value, others: impl Iterator<Item = &'a Value>) {
    use crate::aggregate::provenance::{holders, meta_source, SOURCE_TAG_SYSTEM};
    let seen: HashSet<String> =
        others.filter(|r| fhir::resource_type(r) != Some("Patient")).flat_map(holders).collect();
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
