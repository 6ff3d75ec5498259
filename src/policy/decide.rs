//! The decision: for one viewer and one labelled record, each resource is shown or
//! withheld, with the rule ids and labels behind it. Staff see everything; partners see all
//! but 42 CFR Part 2 data without a consent (or emergency); patient-facing viewers lose
//! excluded document types and held results, proxies lose what the minor's age band keeps
//! from them and the services the minor consents to alone at that age, and apps lose what their scopes do not grant — scopes never widen.
//! Fail-closed over types: a resource type the policy has no rules for (not in
//! `[types] configured`) is withheld from proxies, apps and partners (`types:not-configured`)
//! and shown only to the patient themself and staff.

use super::config::{Jurisdiction, PolicyConfig, PolicyError, ProxyAccess};
use super::holds::{self, PatientLedger};
use super::minors;
use super::released::{Finish, Released};
use super::viewer::{Role, Viewer};
use crate::aggregate::{Facts, Record};
use crate::fhir::model::codes::IssueType;
use crate::fhir::{self, outcome::Issue, reference};
use crate::label::Labeler;
use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Shown,
    Withheld,
}

/// Why one resource was shown or withheld.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// Gateway `Type/id`.
    pub resource: String,
    pub decision: Decision,
    /// Rule ids, e.g. `minors:minor-consented:HIV`, `hold:pathology-review`.
    pub rules: Vec<String>,
    /// Security label codes on the resource: filled where an explanation is asked for
    /// ([`Policy::explain_labels`]), empty in a decision made to answer.
    pub labels: Vec<String>,
}

/// Why a viewer gets nothing of this patient at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The viewer may not see this patient (proxy of an adult, no assent …). Answered as if
    /// the patient did not exist.
    #[error("no access to this patient ({0})")]
    NoAccess(String),
    /// The stated purpose of use is not one this gateway serves.
    #[error("purpose of use `{0}` is not permitted")]
    Purpose(String),
}

/// Everything a decision needs besides the record and the viewer.
pub struct PolicyContext {
    pub now: DateTime<Utc>,
    pub ledger: PatientLedger,
}

pub struct Policy {
    config: PolicyConfig,
    /// `config`'s jurisdiction in force.
    jurisdiction: Jurisdiction,
    labeler: std::sync::Arc<Labeler>,
    zone: FixedOffset,
}

/// A decision before its release is built: how to finish it, until when it holds, and why.
type Finished = (Finish, Option<DateTime<Utc>>, Vec<Explanation>);

impl Policy {
    pub fn new(config: PolicyConfig, zone: FixedOffset) -> Result<Policy, PolicyError> {
        let labeler = Labeler::new(&config.label_rules)?.with_part2_sources(config.part2_sources.iter().cloned());
        let jurisdiction = config
            .jurisdiction()
            .cloned()
            .ok_or_else(|| PolicyError::UnknownJurisdiction(config.minors.jurisdiction.clone()))?;
        Ok(Policy { config, jurisdiction, labeler: std::sync::Arc::new(labeler), zone })
    }

    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// Whether `viewer` may be told that the system `source` is missing from a record. Naming
    /// a 42 CFR Part 2 program to anyone but the patient and staff would disclose that the
    /// patient is its client (even when its records would be withheld), so others are told
    /// only that some system is not answering.
    pub fn may_name_missing_source(&self, viewer: &Viewer, source: &str) -> bool {
        matches!(viewer.role, Role::Patient | Role::Staff) || !self.labeler.is_part2_source(source)
    }

    /// The labeling service these rules configure (aggregation labels each record with it).
    pub fn labeler(&self) -> std::sync::Arc<Labeler> {
        self.labeler.clone()
    }

    /// A partner's purpose of use must be one HIM allows (`partners.allowed_purposes`);
    /// every other viewer has none to check. The one place this rule lives.
    pub fn check_purpose(&self, viewer: &Viewer) -> Result<(), Denied> {
        match &viewer.role {
            Role::Partner { purpose, .. } if !self.config.partners.allowed_purposes.contains(purpose) => {
                Err(Denied::Purpose(purpose.clone()))
            }
            _ => Ok(()),
        }
    }

    /// Decides what `viewer` may see of `record`.
    pub fn decide(
        &self,
        record: &Arc<Record>,
        viewer: &Viewer,
        ctx: &PolicyContext,
    ) -> Result<(Released, Vec<Explanation>), Denied> {
        let (finish, changes_at, explanations) = self.finish(record, viewer, ctx)?;
        Ok((Released::build(record, finish).changing_at(changes_at), explanations))
    }

    /// [`Policy::decide`] for a record no one else holds (read once): the same decision,
    /// with the released resources moved out of `record` instead of copied.
    pub fn decide_taking(
        &self,
        record: &mut Arc<Record>,
        viewer: &Viewer,
        ctx: &PolicyContext,
    ) -> Result<(Released, Vec<Explanation>), Denied> {
        let (finish, changes_at, explanations) = self.finish(record, viewer, ctx)?;
        Ok((Released::build_taking(record, finish).changing_at(changes_at), explanations))
    }

    /// The decision itself: what is released and how it is finished, until when it holds,
    /// and why.
    fn finish(&self, record: &Record, viewer: &Viewer, ctx: &PolicyContext) -> Result<Finished, Denied> {
        let minor = self.minor_proxy(record, viewer, ctx.now)?;
        self.check_purpose(viewer)?;
        let mut explanations = Vec::with_capacity(record.resources.len());
        let mut part2_stamp = HashSet::new();
        for (i, (r, facts)) in record.resources.iter().zip(record.facts()).enumerate() {
            let (key, labels) = (&facts.key, &facts.labels);
            let mut rules = self.rules_for(r, facts, viewer, minor.as_ref(), ctx);
            let decision = if rules.is_empty() { Decision::Shown } else { Decision::Withheld };
            if let (Decision::Shown, Role::Partner { purpose, .. }) = (decision, &viewer.role) {
                if is_part2(labels) {
                    part2_stamp.insert(i);
                    let why =
                        if self.config.partners.emergency_purposes.contains(purpose) { "emergency" } else { "consent" };
                    rules.push(format!("part2:released:{why}"));
                }
            }
            explanations.push(Explanation { resource: key.clone(), decision, rules, labels: Vec::new() });
        }
        self.hold_families(record, &mut explanations, viewer);
        supporting_follow_what_is_shown(record, &mut explanations);
        // The patient resource is never withheld from someone who may see the patient —
        // except from an app not granted it (the app still knows the patient's id, so
        // references to the patient stay).
        let patient_key =
            explanations.first().filter(|e| e.resource.starts_with("Patient/")).map(|e| e.resource.clone());
        if let Some(first) = explanations.first_mut().filter(|e| e.resource.starts_with("Patient/")) {
            if !first.rules.iter().any(|r| r == "scope:not-granted") {
                first.rules.clear();
                first.decision = Decision::Shown;
            }
        }
        provenance_follows_its_targets(record, &mut explanations);
        let mut withheld: HashSet<String> =
            explanations.iter().filter(|e| e.decision == Decision::Withheld).map(|e| e.resource.clone()).collect();
        if let Some(p) = &patient_key {
            withheld.remove(p);
        }
        let keep: Vec<usize> =
            explanations.iter().enumerate().filter(|(_, e)| e.decision == Decision::Shown).map(|(i, _)| i).collect();
        let mut notices = Vec::new();
        if viewer.is_patient_facing() {
            notices.push(Issue::information(IssueType::Informational, self.config.withheld_notice.clone()));
        }
        if keep.iter().any(|i| part2_stamp.contains(i)) {
            notices.push(Issue::information(IssueType::Informational, self.config.redisclosure_notice.clone()));
        }
        let changes_at = self.holds_end(record, &explanations, ctx);
        let finish =
            Finish { keep, withheld, strip_sensitivity: viewer.strips_sensitivity_labels(), part2_stamp, notices };
        Ok((finish, changes_at, explanations))
    }

    /// What an explanation shows beside each decision of `record` (`explanations` as
    /// [`Policy::decide`] made them): the resource's labels, and the label rules that put them
    /// there as `label:{rule}`. Answers need neither, so decisions made to answer skip this.
    pub fn explain_labels(record: &Record, explanations: &mut [Explanation]) {
        for (e, facts) in explanations.iter_mut().zip(record.facts()) {
            e.labels = facts.labels.iter().cloned().collect();
            if let Some(rules) = record.label_rules.get(&e.resource) {
                e.rules.extend(rules.iter().map(|r| format!("label:{r}")));
            }
        }
    }

    /// The earliest moment a hold in this decision ends by itself (its maximum period).
    fn holds_end(&self, record: &Record, explanations: &[Explanation], ctx: &PolicyContext) -> Option<DateTime<Utc>> {
        record
            .resources
            .iter()
            .zip(explanations)
            .filter(|(_, e)| e.rules.iter().any(|r| r.starts_with("hold:")))
            .filter_map(|(r, e)| {
                holds::hold_ends(&self.config.holds, &ctx.ledger, r, &e.resource, &label_codes(r), ctx.now, self.zone)
            })
            .min()
            .and_then(|secs| DateTime::from_timestamp(secs, 0))
    }

    /// For a proxy of a minor: the band of the minor's age and the labels of the services
    /// the minor consents to alone at that age (`None` = not a proxy, or an adult who
    /// granted access). Errors when the proxy may not see the patient at all.
    fn minor_proxy(
        &self,
        record: &Record,
        viewer: &Viewer,
        now: DateTime<Utc>,
    ) -> Result<Option<MinorProxy<'_>>, Denied> {
        // Patient-facing access ends when the source records say the patient has died.
        let deceased = record.patient().is_some_and(|p| {
            p.get("deceasedBoolean").and_then(Value::as_bool) == Some(true) || p.get("deceasedDateTime").is_some()
        });
        if deceased && viewer.is_patient_facing() {
            return Err(Denied::NoAccess("the patient has died".into()));
        }
        let Role::Proxy { adult_granted, teen_assent, .. } = &viewer.role else { return Ok(None) };
        let age = record
            .patient()
            .and_then(|p| minors::age_of(p, now, self.zone))
            .ok_or_else(|| Denied::NoAccess("birth date unknown".into()))?;
        match minors::band(&self.jurisdiction, age) {
            None if *adult_granted => Ok(None),
            None => Err(Denied::NoAccess("the patient is an adult and has not granted access".into())),
            Some(band) if band.assent_required && !teen_assent => {
                Err(Denied::NoAccess("the minor has not assented".into()))
            }
            Some(band) if band.proxy == ProxyAccess::None => {
                Err(Denied::NoAccess("no proxy access at this age".into()))
            }
            Some(band) => Ok(Some(MinorProxy {
                access: band.proxy,
                minor_consented: minors::minor_consented_labels(&self.config.minors, &self.jurisdiction, age),
            })),
        }
    }

    /// The rule ids that withhold `r` from `viewer` (empty: shown).
    fn rules_for(
        &self,
        r: &Value,
        facts: &Facts,
        viewer: &Viewer,
        minor: Option<&MinorProxy>,
        ctx: &PolicyContext,
    ) -> Vec<String> {
        let (t, key, labels) = (facts.resource_type(), facts.key.as_str(), &facts.labels);
        let mut rules = Vec::new();
        if !matches!(viewer.role, Role::Staff) {
            rules.extend(self.type_rule(viewer, t));
        }
        match &viewer.role {
            Role::Staff => return rules,
            Role::Partner { partner, purpose } => {
                if is_part2(labels) {
                    let emergency = self.config.partners.emergency_purposes.contains(purpose);
                    let consented = ctx
                        .ledger
                        .consents
                        .iter()
                        .any(|c| c.part2 && &c.partner == partner && c.purposes.contains(purpose));
                    if !emergency && !consented {
                        rules.push("part2:no-consent".into());
                    }
                }
                // A partner's client is narrowed by its system scopes as an app is.
                rules.extend(scope_rule(viewer, r, t));
                return rules;
            }
            Role::Patient | Role::Proxy { .. } => {}
        }
        if t == "DocumentReference" && self.is_excluded_document(r) {
            rules.push("exclusion:document-type".into());
        }
        if let Some(MinorProxy { access, minor_consented }) = minor {
            for l in labels.iter().filter(|l| minor_consented.contains(l.as_str())) {
                rules.push(format!("minors:minor-consented:{l}"));
            }
            if *access == ProxyAccess::Limited && t != "Patient" && !fhir::SUPPORTING_TYPES.contains(&t) {
                if !self.config.minors.proxy_limited_types.iter().any(|x| x == t) {
                    rules.push("minors:proxy-limited-type".into());
                } else if labels.iter().any(|l| l != "N") {
                    rules.push("minors:proxy-limited-labelled".into());
                }
            }
        }
        if let Some(hold) = holds::active_hold(&self.config.holds, &ctx.ledger, r, key, labels, ctx.now, self.zone) {
            rules.push(hold);
        }
        rules.extend(scope_rule(viewer, r, t));
        rules
    }

    /// `types:not-configured` when the policy has no rules for type `t` and the viewer is
    /// not the patient themself (a proxy, an app, a partner). Staff never reach here.
    fn type_rule(&self, viewer: &Viewer, t: &str) -> Option<String> {
        let own_eyes = viewer.role == Role::Patient && viewer.app_scopes.is_none();
        (!own_eyes && !self.config.types.is_configured(t)).then(|| TYPE_NOT_CONFIGURED.to_string())
    }

    fn is_excluded_document(&self, r: &Value) -> bool {
        fhir::path_values(r, "type.coding").iter().any(|c| {
            let pair = format!(
                "{}|{}",
                c.get("system").and_then(Value::as_str).unwrap_or(""),
                c.get("code").and_then(Value::as_str).unwrap_or("")
            );
            self.config.exclusions.document_types.contains(&pair)
        })
    }

    /// A held report holds its results, and a held result holds its report (a critical
    /// value is not shown through the panel it belongs to).
    fn hold_families(&self, record: &Record, explanations: &mut [Explanation], viewer: &Viewer) {
        if !viewer.is_patient_facing() {
            return;
        }
        let held: HashSet<String> = explanations
            .iter()
            .filter(|e| e.rules.iter().any(|r| r.starts_with("hold:")))
            .map(|e| e.resource.clone())
            .collect();
        if held.is_empty() {
            return;
        }
        for (i, r) in record.resources.iter().enumerate() {
            if fhir::resource_type(r) != Some("DiagnosticReport") {
                continue;
            }
            let results: Vec<String> = fhir::path_values(r, "result")
                .iter()
                .filter_map(|x| {
                    x.get("reference")
                        .and_then(Value::as_str)
                        .and_then(reference::parse)
                        .map(|(t, id)| format!("{t}/{id}"))
                })
                .collect();
            let report_key = explanations[i].resource.clone();
            let family_held = held.contains(&report_key) || results.iter().any(|k| held.contains(k));
            if !family_held {
                continue;
            }
            for e in explanations.iter_mut().filter(|e| e.resource == report_key || results.contains(&e.resource)) {
                if !e.rules.iter().any(|r| r.starts_with("hold:")) {
                    e.rules.push("hold:with-its-report".into());
                    e.decision = Decision::Withheld;
                }
            }
        }
    }
}

/// The rule that withholds a type the policy has no rules for.
pub const TYPE_NOT_CONFIGURED: &str = "types:not-configured";

/// What a proxy of a minor may see: the band's access, less the services (by label) the
/// minor consents to alone at this age in the jurisdiction in force.
struct MinorProxy<'a> {
    access: ProxyAccess,
    minor_consented: BTreeSet<&'a str>,
}

/// A Provenance is about its targets: when every target it names in the record is withheld,
/// it is withheld too (it would tell that something was recorded, and be left with no
/// target).
fn provenance_follows_its_targets(record: &Record, explanations: &mut [Explanation]) {
    let facts = record.facts();
    let shown: Vec<usize> = (0..explanations.len())
        .filter(|&i| facts[i].resource_type() == "Provenance" && explanations[i].decision == Decision::Shown)
        .collect();
    if shown.is_empty() {
        return;
    }
    let mut withhold_provenance = Vec::new();
    for i in shown {
        let targets: Vec<Decision> = fhir::path_values(&record.resources[i], "target")
            .iter()
            .filter_map(|t| t.get("reference").and_then(Value::as_str).and_then(reference::parse))
            .filter_map(|(t, id)| record.index_of(t, id).map(|j| explanations[j].decision))
            .collect();
        if !targets.is_empty() && targets.iter().all(|d| *d == Decision::Withheld) {
            withhold_provenance.push(i);
        }
    }
    for i in withhold_provenance {
        explanations[i].decision = Decision::Withheld;
        explanations[i].rules.push("provenance:targets-withheld".into());
    }
}

/// Practitioners, Organizations, Locations … are shown only when something shown refers to
/// them (directly or through another shown one): a clinic or clinician that only withheld
/// data points at would otherwise disclose it.
fn supporting_follow_what_is_shown(record: &Record, explanations: &mut [Explanation]) {
    let is_supporting: Vec<bool> =
        record.facts().iter().map(|f| fhir::SUPPORTING_TYPES.contains(&f.resource_type())).collect();
    let shown = |i: usize| explanations[i].decision == Decision::Shown;
    let references = record.references();
    let mut reached = vec![false; explanations.len()];
    let mut frontier: Vec<usize> = (0..explanations.len()).filter(|&i| !is_supporting[i] && shown(i)).collect();
    while let Some(i) = frontier.pop() {
        for &j in &references[i] {
            let j = j as usize;
            if !reached[j] {
                reached[j] = true;
                if is_supporting[j] && shown(j) {
                    frontier.push(j);
                }
            }
        }
    }
    for (i, e) in explanations.iter_mut().enumerate() {
        if is_supporting[i] && e.decision == Decision::Shown && !reached[i] {
            e.decision = Decision::Withheld;
            e.rules.push("supporting:not-referenced".into());
        }
    }
}

/// `scope:not-granted` when an app's (or a partner client's) scopes do not grant `r`: its
/// type, and its category where the scope is granular.
fn scope_rule(viewer: &Viewer, r: &Value, t: &str) -> Option<String> {
    let scopes = viewer.app_scopes.as_ref()?;
    let granted = scopes.iter().any(|s| {
        (s.resource_type == "*" || s.resource_type == t)
            && s.category.as_ref().is_none_or(|(system, code)| {
                fhir::path_values(r, "category").iter().flat_map(|c| fhir::path_values(c, "coding")).any(|c| {
                    c.get("code").and_then(Value::as_str) == Some(code.as_str())
                        && system.as_deref().is_none_or(|s| c.get("system").and_then(Value::as_str) == Some(s))
                })
            })
    });
    (!granted).then(|| "scope:not-granted".to_string())
}

/// The codes in `meta.security` (legacy NORDSLCD read as NORDSCLCD): the labeling service's
/// own reading.
pub use crate::label::labels_of as label_codes;

fn is_part2(labels: &BTreeSet<String>) -> bool {
    labels.contains("42CFRPart2")
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod types_tests;
