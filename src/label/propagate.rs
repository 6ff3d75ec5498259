//! Label propagation inside one record: a fact labelled on one resource is the same fact on
//! the resources that carry it, and a visit for a sensitive reason makes what happened in it
//! sensitive. Sensitivity and confidentiality labels (never 42CFRPart2, handling or
//! integrity labels) flow along two kinds of links.
//!
//! *Same fact* (copied until nothing changes): DiagnosticReport ↔ its `result`s and its
//! `imagingStudy`; a panel Observation → its `hasMember`s; an Observation ↔ the
//! QuestionnaireResponse it is `derivedFrom` (a PHQ-9 score and its answers); Condition → the
//! Encounter that lists it in `diagnosis` or that its `encounter` names; a `reasonReference`
//! target, a Condition a CarePlan or Goal `addresses`, and a `medicationReference`
//! Medication → the resource naming it; a ServiceRequest ↔ what is `basedOn` it (an order for
//! an HIV test is the HIV test); a result → the Specimen it was made on, and an order → the
//! Specimen collected for it (`request`); a prescription → its dispenses, administrations,
//! statements and claims; a CarePlan → its CareTeams; an Encounter → its notes
//! (DocumentReference, Composition), claims and explanations of benefit (they describe and
//! bill the whole visit, through `item.encounter` or `encounter`); a Claim ↔ its
//! ExplanationOfBenefit (`claim`: one bill); a Condition, Procedure, prescription, referral
//! or supporting resource → the Claim or EOB that lists it (`diagnosis.diagnosisReference`,
//! `procedure.procedureReference`, `prescription`, `originalPrescription`, `referral`,
//! `supportingInfo.valueReference`).
//!
//! *Billing.* A bill is a leak channel as wide as the visit: a minor's confidential visit
//! must not reach a parent through its Claim or EOB, so they take every label of what they
//! bill. Coverage inherits nothing: no element of a Coverage points at care (it is pointed
//! at by claims), it is usually the family's own policy with the parent as subscriber, and
//! labelling it from one sensitive claim would hide the family's insurance without
//! protecting the visit. Its own codes are still read (a "family planning only" plan type is
//! labelled by the rules).
//!
//! *Visit* (once the same-fact links have settled): an Encounter's *reason* labels — those
//! from its own codes (type, reasonCode …) and from its `reasonReference` targets — go to
//! everything whose `encounter` (or `context`) names it. A visit whose every clinical
//! resource is by its own codes a confidential service is a confidential visit: it takes
//! their labels (and so do its notes and claims, not its other contents). Then the
//! same-fact links run again. Labels an Encounter has only because a diagnosis was
//! addressed in it do not spread to its vitals and vaccines.
//!
//! It only ever adds labels; it never removes or rewrites one and never decides who sees what.

use super::vocab::{self, LabelKind};
use crate::fhir::{self, reference};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// `Type/id` of a resource.
pub fn key_of(r: &Value) -> Option<String> {
    Some(format!("{}/{}", fhir::resource_type(r)?, fhir::resource_id(r)?))
}

/// The clinical resources whose labels, when all of a visit's are labelled, make the visit
/// itself confidential.
const CLINICAL: &[&str] = &[
    "Observation",
    "Procedure",
    "Condition",
    "MedicationRequest",
    "MedicationAdministration",
    "MedicationDispense",
    "MedicationStatement",
    "DiagnosticReport",
    "Immunization",
    "ServiceRequest",
    "ImagingStudy",
    "QuestionnaireResponse",
];

/// Resources that describe or bill a whole visit: they carry every label of their Encounter.
const OF_THE_WHOLE_VISIT: &[&str] = &["DocumentReference", "Composition", "Claim", "ExplanationOfBenefit"];

struct Index<'a> {
    resources: &'a [Value],
    by_key: HashMap<String, usize>,
}

impl Index<'_> {
    /// Indexes of the resources `r` references at `path` (of the `want` types, any if empty).
    fn targets(&self, r: &Value, path: &str, want: &[&str]) -> Vec<usize> {
        fhir::path_values(r, path)
            .into_iter()
            .filter_map(|v| v.get("reference").and_then(Value::as_str))
            .filter_map(reference::parse)
            .filter(|(t, _)| want.is_empty() || want.contains(t))
            .filter_map(|(t, id)| self.by_key.get(&format!("{t}/{id}")).copied())
            .collect()
    }

    /// The Encounters `r` happened in.
    fn visits_of(&self, r: &Value) -> Vec<usize> {
        let mut out = self.targets(r, "encounter", &["Encounter"]);
        out.extend(self.targets(r, "context", &["Encounter"]));
        out.extend(self.targets(r, "context.encounter", &["Encounter"]));
        out.extend(self.targets(r, "item.encounter", &["Encounter"]));
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// The (from, to) index pairs along which the same fact flows.
fn same_fact_links(ix: &Index) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (i, r) in ix.resources.iter().enumerate() {
        let t = fhir::resource_type(r).unwrap_or_default();
        let mut into_me = |from: Vec<usize>| out.extend(from.into_iter().map(|f| (f, i)));
        into_me(ix.targets(r, "reasonReference", &[]));
        into_me(ix.targets(r, "medicationReference", &["Medication"]));
        into_me(ix.targets(r, "addresses", &["Condition"]));
        match t {
            "DiagnosticReport" => {
                for o in ix.targets(r, "result", &["Observation"]) {
                    out.extend([(i, o), (o, i)]);
                }
                for s in ix.targets(r, "imagingStudy", &["ImagingStudy"]) {
                    out.extend([(i, s), (s, i)]);
                }
            }
            "Observation" => {
                out.extend(ix.targets(r, "hasMember", &["Observation"]).into_iter().map(|m| (i, m)));
                for q in ix.targets(r, "derivedFrom", &["QuestionnaireResponse"]) {
                    out.extend([(i, q), (q, i)]);
                }
            }
            "Specimen" => out.extend(ix.targets(r, "request", &["ServiceRequest"]).into_iter().map(|o| (o, i))),
            "Encounter" => out.extend(ix.targets(r, "diagnosis.condition", &["Condition"]).into_iter().map(|c| (c, i))),
            "Condition" => out.extend(ix.targets(r, "encounter", &["Encounter"]).into_iter().map(|e| (i, e))),
            "MedicationDispense" => {
                out.extend(ix.targets(r, "authorizingPrescription", &[]).into_iter().map(|m| (m, i)));
            }
            "MedicationAdministration" => out.extend(ix.targets(r, "request", &[]).into_iter().map(|m| (m, i))),
            "MedicationStatement" => out.extend(ix.targets(r, "basedOn", &[]).into_iter().map(|m| (m, i))),
            "CarePlan" => out.extend(ix.targets(r, "careTeam", &["CareTeam"]).into_iter().map(|c| (i, c))),
            "Claim" | "ExplanationOfBenefit" => {
                for path in [
                    "prescription",
                    "originalPrescription",
                    "referral",
                    "diagnosis.diagnosisReference",
                    "procedure.procedureReference",
                    "supportingInfo.valueReference",
                ] {
                    out.extend(ix.targets(r, path, &[]).into_iter().map(|x| (x, i)));
                }
                for c in ix.targets(r, "claim", &["Claim"]) {
                    out.extend([(c, i), (i, c)]);
                }
            }
            _ => {}
        }
        if matches!(t, "Observation" | "DiagnosticReport") {
            out.extend(ix.targets(r, "specimen", &["Specimen"]).into_iter().map(|s| (i, s)));
        }
        for o in ix.targets(r, "basedOn", &["ServiceRequest"]) {
            out.extend([(o, i), (i, o)]);
        }
        if OF_THE_WHOLE_VISIT.contains(&t) {
            out.extend(ix.visits_of(r).into_iter().map(|e| (e, i)));
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

/// Adds `labels` to `resources[to]`, noting `propagated:<from>` in `added`; true if any was new.
fn copy(
    resources: &mut [Value],
    from: usize,
    to: usize,
    labels: &[Value],
    added: &mut BTreeMap<String, Vec<String>>,
) -> bool {
    let mut any = false;
    for coding in labels {
        any |= super::add_label(&mut resources[to], coding.clone());
    }
    if any {
        if let (Some(from_key), Some(to_key)) = (key_of(&resources[from]), key_of(&resources[to])) {
            let why = format!("propagated:{from_key}");
            let list = added.entry(to_key).or_default();
            if !list.contains(&why) {
                list.push(why);
            }
        }
    }
    any
}

/// Copies labels along same-fact links until nothing changes.
fn settle(resources: &mut [Value], links: &[(usize, usize)], added: &mut BTreeMap<String, Vec<String>>) {
    // Each pass that changes something adds at least one label; labels are finitely many.
    for _ in 0..=resources.len().saturating_mul(64) {
        let mut changed = false;
        for &(from, to) in links {
            let labels = propagating(&resources[from]);
            changed |= copy(resources, from, to, &labels, added);
        }
        if !changed {
            return;
        }
    }
}

/// Propagates labels through the record (see the module head), noting
/// `propagated:<Type/id>` (the resource copied from) in `added` for each resource changed.
pub fn run(resources: &mut [Value], added: &mut BTreeMap<String, Vec<String>>) {
    let by_key = resources.iter().enumerate().filter_map(|(i, r)| Some((key_of(r)?, i))).collect();
    let ix = Index { resources, by_key };
    let links = same_fact_links(&ix);
    let encounters: Vec<usize> =
        (0..resources.len()).filter(|&i| fhir::resource_type(&resources[i]) == Some("Encounter")).collect();
    // Each resource's own labels (codes, words, source), before anything reaches it.
    let own: Vec<Vec<Value>> = resources.iter().map(propagating).collect();
    let reasons: HashMap<usize, Vec<usize>> =
        encounters.iter().map(|&e| (e, ix.targets(&resources[e], "reasonReference", &[]))).collect();
    let mut contents: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, r) in resources.iter().enumerate() {
        if fhir::resource_type(r) == Some("Encounter") {
            continue;
        }
        for e in ix.visits_of(r) {
            contents.entry(e).or_default().push(i);
        }
    }
    drop(ix);
    settle(resources, &links, added);
    let mut visit_links = Vec::new();
    let mut reason_labels: HashMap<usize, Vec<Value>> = HashMap::new();
    let is_sensitive = |labels: &[Value]| labels.iter().any(|c| vocab::label_kind(c) == LabelKind::Sensitivity);
    for &e in &encounters {
        let mut labels = own[e].clone();
        for &x in &reasons[&e] {
            labels.extend(propagating(&resources[x]));
        }
        if is_sensitive(&labels) {
            visit_links.extend(contents.get(&e).into_iter().flatten().map(|&i| (e, i)));
            reason_labels.insert(e, labels);
        }
        // A visit whose every clinical resource is itself a confidential service (by its own
        // codes) is a confidential visit.
        let clinical: Vec<usize> = contents
            .get(&e)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&i| fhir::resource_type(&resources[i]).is_some_and(|t| CLINICAL.contains(&t)))
            .collect();
        if !clinical.is_empty() && clinical.iter().all(|&i| is_sensitive(&own[i])) {
            for &i in &clinical {
                copy(resources, i, e, &own[i], added);
            }
        }
    }
    for (e, i) in visit_links {
        copy(resources, e, i, &reason_labels[&e], added);
    }
    settle(resources, &links, added);
}
