//! The security labeling service: labels one patient's merged record in place, after
//! aggregation and before any decision. It keeps every label a source put in `meta.security`
//! in its place and order (the only rewrite is the legacy code `NORDSLCD` → `NORDSCLCD`),
//! infers v3-ActCode sensitivity and v3-Confidentiality labels from the codes and words of
//! every Coding in a resource with the rules of `labels.toml` (public value sets, a curated
//! term list, ingredient names), adds `42CFRPart2` to what a Part 2 program holds, and
//! propagates labels to the resources that carry the same fact or happened in a sensitive
//! visit. It only ever appends labels (DESIGN.md promise 3: "added `meta.security`
//! labels"); it never removes, reorders or rewrites any other part of a source resource, and
//! it never decides who sees what — that is the policy's job.

mod codes;
mod propagate;
pub mod report;
mod rules;
pub mod terminology;
mod vocab;

#[cfg(test)]
mod every_type_tests;
#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod synthea_tests;
#[cfg(test)]
mod tests;

use crate::aggregate::provenance;
pub use crate::aggregate::Findings;
use crate::fhir;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashSet};

pub use rules::{texts_of, WordsError};

pub use vocab::{
    confidentiality_rank, is_sensitivity, label_kind, sensitivity_codes, LabelKind, OBSERVATION_VALUE, PART2,
    US_PRIVACY_LAW,
};

pub const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
pub const CONFIDENTIALITY: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";

/// Pseudo-rule id for labels the source sent.
pub const FROM_SOURCE: &str = "source";
/// Pseudo-rule id for the `42CFRPart2` label of data a Part 2 program holds.
pub const FROM_PART2_PROGRAM: &str = "part2-program";

/// One rule of `labels.toml` (`[[label_rules]]`): codes to look for and the labels to add
/// when one of the resource's coded elements (see the rules module) has one of them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelRuleConfig {
    /// Unique id, named in explanations.
    pub id: String,
    /// What the rule is for (free text).
    #[serde(default)]
    pub description: Option<String>,
    /// Where the codes come from (code system release, value set), for reviewers.
    #[serde(default)]
    pub source: Option<String>,
    /// The v3-ActCode sensitivity code to add (HIV, ETH, MH, …; see [`sensitivity_codes`]).
    pub sensitivity: String,
    /// `R` or `V`: added unless the resource already has this confidentiality or higher.
    #[serde(default)]
    pub confidentiality: Option<String>,
    /// ICD-10-CM prefixes ("B20", "Z20.6") and inclusive ranges ("F10-F16"), on the code
    /// without its dot, case-insensitive.
    #[serde(default)]
    pub icd10cm: Vec<String>,
    /// ICD-10-CM prefixes and ranges never matched by this rule (F17 for substance use).
    #[serde(default)]
    pub icd10cm_exclude: Vec<String>,
    /// SNOMED CT concept ids (check digit verified).
    #[serde(default)]
    pub snomed: Vec<String>,
    /// LOINC codes (check digit verified).
    #[serde(default)]
    pub loinc: Vec<String>,
    /// RxNorm RxCUIs (ingredients or clinical drugs, as the sources send them).
    #[serde(default)]
    pub rxnorm: Vec<String>,
    /// CPT codes.
    #[serde(default)]
    pub cpt: Vec<String>,
    /// HCPCS Level II codes (H0020, J7300 …).
    #[serde(default)]
    pub hcpcs: Vec<String>,
    /// Other codings as `system|code` (local note types, CVX …).
    #[serde(default)]
    pub codings: Vec<String>,
    /// DiagnosticReport.category codes of HL7 v2 table 0074 (GE = genetics).
    #[serde(default)]
    pub report_category: Vec<String>,
    /// Words matched case-insensitively at word boundaries in every coding `display` and
    /// `CodeableConcept.text` (never narrative or notes); a trailing `*` makes a stem
    /// ("pregnan*"). So an unknown code with a telling display is labelled.
    #[serde(default)]
    pub terms: Vec<String>,
    /// Phrases that keep a text from matching this rule's words ("alcohol-free").
    #[serde(default)]
    pub terms_exclude: Vec<String>,
    /// Medication ingredient names, matched like terms in the displays and text of
    /// medication codings (any RxNorm coding, `medication[x]`, Medication.code): every
    /// product containing the ingredient, whatever its RxCUI.
    #[serde(default)]
    pub ingredients: Vec<String>,
}

/// The label rules file (`labels.toml`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelsFile {
    /// Expansion files written by `portico terminology import`, relative to labels.toml;
    /// loading merges their codes into the rules (see [`terminology::merge_imports`]).
    #[serde(default)]
    pub imports: Vec<std::path::PathBuf>,
    pub label_rules: Vec<LabelRuleConfig>,
    /// A wide net of words for the labels report's gap review (`portico labels report`):
    /// never used to label.
    #[serde(default)]
    pub review_terms: Vec<String>,
}

/// Compiled label rules, and the sources whose data is 42 CFR Part 2 data.
#[derive(Debug, Clone, Default)]
pub struct Labeler {
    rules: Vec<rules::Rule>,
    /// Every rule's terms and ingredient names as one regex: a text it does not match is
    /// matched by no rule's words, so the rules look only at texts it matches (most texts
    /// name nothing sensitive; one pass over them instead of two per rule). None when no rule
    /// has words, or when the union does not compile (it is only larger than each list,
    /// which did): every text then goes to every rule.
    any_words: Option<regex::Regex>,
    part2_sources: HashSet<String>,
}

/// Why label rules do not compile: each names the rule and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error("label rule #{0} has an empty id")]
    EmptyId(usize),
    #[error("label rule `{0}`: the id must not contain spaces")]
    SpaceInId(String),
    #[error("label rule `{0}`: the id is reserved for labels not made by a rule")]
    ReservedId(String),
    #[error("label rule `{0}`: the id must not contain `:`")]
    ColonInId(String),
    #[error("label rule `{0}`: duplicate id")]
    DuplicateId(String),
    /// A matcher of the rule is wrong (unknown label code, malformed range, bad check digit …).
    #[error("label rule `{id}`: {message}")]
    Rule { id: String, message: String },
}

/// The suffix of a rule id in the explanation when the rule matched by words only (a term
/// or an ingredient name), not by a listed code: `pregnancy:words`.
pub const BY_WORDS: &str = ":words";

impl Labeler {
    /// Compiles rules; errors name the rule id and what is wrong (unknown label code,
    /// malformed ICD-10-CM range such as "F16-F10" or "X", a LOINC or SNOMED CT code with a
    /// wrong check digit, empty matcher, duplicate id …).
    pub fn new(rules: &[LabelRuleConfig]) -> Result<Labeler, LabelError> {
        let mut seen = HashSet::new();
        let mut compiled = Vec::with_capacity(rules.len());
        for (n, config) in rules.iter().enumerate() {
            let id = config.id.trim();
            if id.is_empty() {
                return Err(LabelError::EmptyId(n + 1));
            }
            if id != config.id || id.chars().any(char::is_whitespace) {
                return Err(LabelError::SpaceInId(config.id.clone()));
            }
            if id == FROM_SOURCE || id == FROM_PART2_PROGRAM || id.starts_with("propagated:") {
                return Err(LabelError::ReservedId(id.to_string()));
            }
            if id.contains(':') {
                return Err(LabelError::ColonInId(id.to_string()));
            }
            if !seen.insert(id) {
                return Err(LabelError::DuplicateId(id.to_string()));
            }
            compiled.push(
                rules::Rule::compile(config).map_err(|message| LabelError::Rule { id: id.to_string(), message })?,
            );
        }
        let words: Vec<String> = rules.iter().flat_map(|r| r.terms.iter().chain(&r.ingredients)).cloned().collect();
        let any_words = rules::word_regex("terms", &words).ok().flatten();
        Ok(Labeler { rules: compiled, any_words, part2_sources: HashSet::new() })
    }

    /// The same rules, with the sources (`part2_sources`) whose data is labelled `42CFRPart2`.
    pub fn with_part2_sources(mut self, sources: impl IntoIterator<Item = String>) -> Labeler {
        self.part2_sources = sources.into_iter().collect();
        self
    }

    /// Whether `source` is a 42 CFR Part 2 program.
    pub fn is_part2_source(&self, source: &str) -> bool {
        self.part2_sources.contains(source)
    }

    /// Labels one patient's merged record in place (see [`Labeler::label_record`]) with this
    /// labeler's Part 2 sources.
    pub fn label(&self, resources: &mut [Value]) -> BTreeMap<String, Vec<String>> {
        self.label_record(resources, &self.part2_sources)
    }

    /// The ids of the rules whose words (terms, ingredient names) find `text` sensitive,
    /// with their sensitivity codes (for the labels report's gap review).
    pub fn rules_matching_text(&self, text: &str, medication: bool) -> Vec<(&str, &'static str)> {
        self.rules.iter().filter(|r| r.matches_text(text, medication)).map(|r| (r.id.as_str(), r.sensitivity)).collect()
    }

    /// Labels one patient's merged record in place; returns, per `Type/id` (ids as they are
    /// in the resources), the ids of what added labels to it, in order: `source` when the
    /// source sent labels, the ids of the rules that added a label (a rule whose labels were
    /// all there already is not listed), `part2-program` for the `42CFRPart2` label of a
    /// resource other than the Patient held by a source in `part2_sources` (the codes of its
    /// provenance `meta.tag`s), and `propagated:<Type/id>` for labels copied from a related
    /// resource. Resources without any label are absent.
    pub fn label_record(
        &self,
        resources: &mut [Value],
        part2_sources: &HashSet<String>,
    ) -> BTreeMap<String, Vec<String>> {
        self.label_found(resources, &[], part2_sources)
    }

    /// Which rules match one resource (in rule order), from its codes and texts alone. What
    /// merging changes — `meta`, the resource's `id`, `reference` strings, and the `display`
    /// it gives a reference it makes display-only — is not a Coding or a CodeableConcept
    /// text the rules read (see the rules module), so this may run on a resource as its
    /// source sent it, before the merge, while slower sources are still answering.
    pub fn find(&self, resource: &Value) -> Findings {
        let mut facts = rules::Facts::of(resource);
        if let Some(any) = &self.any_words {
            facts.texts.retain(|(text, _)| any.is_match(text));
        }
        let matched = self
            .rules
            .iter()
            .enumerate()
            .filter_map(|(i, rule)| Some((i, rule.matches(&facts)? == rules::Match::Words)))
            .collect();
        Findings(matched)
    }

    /// [`Labeler::label_record`] with the rules' matches already found ([`Labeler::find`]):
    /// `findings[i]` for `resources[i]` (a resource without one is read now).
    pub fn label_found(
        &self,
        resources: &mut [Value],
        findings: &[Option<Findings>],
        part2_sources: &HashSet<String>,
    ) -> BTreeMap<String, Vec<String>> {
        let mut added: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (i, r) in resources.iter_mut().enumerate() {
            let mut why: Vec<String> = Vec::new();
            if normalize_source_labels(r) {
                why.push(FROM_SOURCE.into());
            }
            let found_now;
            let found = match findings.get(i).and_then(Option::as_ref) {
                Some(f) => f,
                None => {
                    found_now = self.find(r);
                    &found_now
                }
            };
            for &(rule, by_words) in &found.0 {
                let Some(rule) = self.rules.get(rule) else { continue };
                let how = if by_words { rules::Match::Words } else { rules::Match::Code };
                if apply_rule(r, rule.sensitivity, rule.confidentiality) {
                    why.push(match how {
                        rules::Match::Code => rule.id.clone(),
                        rules::Match::Words => format!("{}{BY_WORDS}", rule.id),
                    });
                }
            }
            if is_part2_data(r, part2_sources) && add_label(r, vocab::part2_coding()) {
                why.push(FROM_PART2_PROGRAM.into());
            }
            if let (false, Some(key)) = (why.is_empty(), propagate::key_of(r)) {
                added.insert(key, why);
            }
        }
        propagate::run(resources, &mut added);
        added
    }
}

/// Rewrites legacy `NORDSLCD` codes to `NORDSCLCD` in place; true when the source sent any
/// `meta.security` label.
fn normalize_source_labels(r: &mut Value) -> bool {
    let Some(list) = r.pointer_mut("/meta/security").and_then(Value::as_array_mut) else { return false };
    for coding in list.iter_mut().filter(|c| vocab::is_legacy_nordsclcd(c)) {
        coding["code"] = json!("NORDSCLCD");
    }
    !list.is_empty()
}

/// Adds a rule's labels; true when it added any.
fn apply_rule(r: &mut Value, sensitivity: &str, confidentiality: Option<&str>) -> bool {
    let mut any = vocab::sensitivity_coding(sensitivity).is_some_and(|c| add_label(r, c));
    if let Some(coding) = confidentiality.and_then(vocab::confidentiality_coding) {
        any |= add_label(r, coding);
    }
    any
}

/// Appends `coding` to `meta.security` unless the same label is there (a confidentiality
/// label unless one as high or higher is there). Creates `meta.security` when missing;
/// leaves a malformed (non-object `meta`, non-array `security`) resource alone.
fn add_label(r: &mut Value, coding: Value) -> bool {
    let identity = vocab::identity(&coding);
    let new_rank =
        (vocab::label_kind(&coding) == LabelKind::Confidentiality).then(|| confidentiality_rank(&identity.1)).flatten();
    let present = fhir::path_values(r, "meta.security").into_iter().any(|existing| {
        let same = vocab::identity(existing) == identity;
        let as_high = new_rank.is_some_and(|new| {
            vocab::label_kind(existing) == LabelKind::Confidentiality
                && existing
                    .get("code")
                    .and_then(Value::as_str)
                    .and_then(confidentiality_rank)
                    .is_some_and(|old| old >= new)
        });
        same || as_high
    });
    if present {
        return false;
    }
    let Some(obj) = r.as_object_mut() else { return false };
    let Some(meta) = obj.entry("meta").or_insert_with(|| json!({})).as_object_mut() else { return false };
    let Some(list) = meta.entry("security").or_insert_with(|| json!([])).as_array_mut() else { return false };
    list.push(coding);
    true
}

/// True when a Part 2 program holds `r` and it is not the Patient. The merged Patient is the
/// record's identity anchor, built from every source and always shown to whoever may see
/// the patient: a `42CFRPart2` label on it would protect nothing and, stamped with the
/// redisclosure notice, would tell every partner that the person is in a Part 2 program.
fn is_part2_data(r: &Value, part2_sources: &HashSet<String>) -> bool {
    fhir::resource_type(r) != Some("Patient") && provenance::holders(r).iter().any(|h| part2_sources.contains(h))
}

/// The label codes in a resource's `meta.security`, of every kind (e.g. {"HIV", "R"}); the
/// legacy `NORDSLCD` reads as `NORDSCLCD`.
pub fn labels_of(resource: &Value) -> BTreeSet<String> {
    fhir::path_values(resource, "meta.security")
        .into_iter()
        .filter_map(|c| c.get("code").and_then(Value::as_str))
        .map(|c| if c == "NORDSLCD" { "NORDSCLCD".to_string() } else { c.to_string() })
        .collect()
}

/// The sensitivity codes (see [`is_sensitivity`]) in a resource's `meta.security`.
pub fn sensitivity_labels_of(resource: &Value) -> BTreeSet<String> {
    fhir::path_values(resource, "meta.security")
        .into_iter()
        .filter(|c| is_sensitivity(c))
        .filter_map(|c| c.get("code").and_then(Value::as_str).map(str::to_string))
        .collect()
}

impl crate::aggregate::Labelling for Labeler {
    fn find(&self, resource: &Value) -> Findings {
        Labeler::find(self, resource)
    }
    fn label(&self, resources: &mut [Value], findings: &[Option<Findings>]) -> BTreeMap<String, Vec<String>> {
        self.label_found(resources, findings, &self.part2_sources)
    }
}
