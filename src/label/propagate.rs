//! Label propagation inside one record: a fact labelled on one resource is the same fact on
//! the resources that carry it. Sensitivity and confidentiality labels (never 42CFRPart2,
//! handling or integrity labels) flow along these links, repeated until nothing changes:
//! DiagnosticReport ↔ its `result` Observations (both ways); Condition → the Encounter that
//! lists it in `diagnosis` or that its `encounter` names; `reasonReference` target and
//! `medicationReference` Medication → MedicationRequest; Encounter → DocumentReference whose
//! `context.encounter` names it.
//! It only ever adds labels; it never removes or rewrites one and never decides who sees what.

use super::vocab::{self, LabelKind};
use crate::fhir::{self, reference};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// `Type/id` of a resource.
pub fn key_of(r: &Value) -> Option<String> {
    Some(format!("{}/{}", fhir::resource_type(r)?, fhir::resource_id(r)?))
}

/// The (from, to) index pairs along which labels flow.
fn links(resources: &[Value]) -> Vec<(usize, usize)> {
    let index: HashMap<String, usize> =
        resources.iter().enumerate().filter_map(|(i, r)| Some((key_of(r)?, i))).collect();
    let targets = |r: &Value, path: &str, want: &[&str]| -> Vec<usize> {
        fhir::path_values(r, path)
            .into_iter()
            .filter_map(|v| v.get("reference").and_then(Value::as_str))
            .filter_map(reference::parse)
            .filter(|(t, _)| want.is_empty() || want.contains(t))
            .filter_map(|(t, id)| index.get(&format!("{t}/{id}")).copied())
            .collect()
    };
    let mut out = Vec::new();
    for (i, r) in resources.iter().enumerate() {
        match fhir::resource_type(r) {
            Some("DiagnosticReport") => {
                for o in targets(r, "result", &["Observation"]) {
                    out.extend([(i, o), (o, i)]);
                }
            }
            Some("Encounter") => {
                out.extend(targets(r, "diagnosis.condition", &["Condition"]).into_iter().map(|c| (c, i)))
            }
            Some("Condition") => out.extend(targets(r, "encounter", &["Encounter"]).into_iter().map(|e| (i, e))),
            Some("MedicationRequest") => {
                let sources = targets(r, "reasonReference", &[]).into_iter().chain(targets(
                    r,
                    "medicationReference",
                    &["Medication"],
                ));
                out.extend(sources.map(|x| (x, i)))
            }
            Some("DocumentReference") => {
                out.extend(targets(r, "context.encounter", &["Encounter"]).into_iter().map(|e| (e, i)))
            }
            _ => {}
        }
    }
    out.retain(|(a, b)| a != b);
    out.sort_unstable();
    out.dedup();
    out
}

/// The labels of `r` that propagate: its sensitivity codings and its highest
/// confidentiality, as the codings the labeler writes.
fn propagating(r: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    let mut highest: Option<(usize, &str)> = None;
    for coding in fhir::path_values(r, "meta.security") {
        let code = coding.get("code").and_then(Value::as_str).unwrap_or("");
        match vocab::label_kind(coding) {
            LabelKind::Sensitivity => out.extend(vocab::sensitivity_coding(code)),
            LabelKind::Confidentiality => {
                let rank = vocab::confidentiality_rank(code);
                if let Some(rank) = rank.filter(|r| highest.is_none_or(|(h, _)| *r > h)) {
                    highest = Some((rank, code));
                }
            }
            _ => {}
        }
    }
    if let Some((_, code)) = highest.filter(|(rank, _)| Some(*rank) > vocab::confidentiality_rank("N")) {
        out.extend(vocab::confidentiality_coding(code));
    }
    out
}

/// Copies labels along the record's links until nothing changes, noting
/// `propagated:<Type/id>` (the resource copied from) in `added` for each resource changed.
pub fn run(resources: &mut [Value], added: &mut BTreeMap<String, Vec<String>>) {
    let links = links(resources);
    // Each pass that changes something adds at least one label; labels are finitely many.
    for _ in 0..=resources.len().saturating_mul(64) {
        let mut changed = false;
        for &(from, to) in &links {
            let labels = propagating(&resources[from]);
            let mut any = false;
            for coding in labels {
                any |= super::add_label(&mut resources[to], coding);
            }
            if any {
                changed = true;
                if let (Some(from_key), Some(to_key)) = (key_of(&resources[from]), key_of(&resources[to])) {
                    let why = format!("propagated:{from_key}");
                    let list = added.entry(to_key).or_default();
                    if !list.contains(&why) {
                        list.push(why);
                    }
                }
            }
        }
        if !changed {
            return;
        }
    }
}
