//! Compiled label rules and where they look. Each rule is a set of code matchers (ICD-10-CM
//! prefixes and ranges minus exclusions, SNOMED CT, LOINC, RxNorm, CPT, HCPCS, other
//! `system|code` pairs, DiagnosticReport categories) and of words (terms matched at word
//! boundaries in coding displays and `CodeableConcept.text`, ingredient names matched in
//! medication texts), and the labels it adds. It never edits a resource and never decides
//! who sees what.
//!
//! *Where it looks.* One walk over the resource's JSON reads every Coding (any object with
//! a string `code`) and every CodeableConcept `text`, wherever it sits and whatever the
//! resource type: values, components, reasons, Claim and ExplanationOfBenefit diagnoses and
//! items (`productOrService`, `detail`, `subDetail`), `medication[x]`, ServiceRequest and
//! ImagingStudy codes, QuestionnaireResponse answers, Specimen types, contained resources
//! (read as their own type, so a contained Questionnaire's `code`) … Since the items of a
//! QuestionnaireResponse carry no codes of their own, it also reads as LOINC codes its form
//! canonical (`questionnaire` = `http://loinc.org/q/44249-1`, the PHQ-9) and item `linkId`s
//! (`/44250-9`) when their last segment is a LOINC code with a right check digit; question
//! texts are prose and are not read.
//!
//! *Where it never looks* (skipped wherever the key sits), because what is there is not a
//! fact about the patient's care, and a word in it would be a false positive:
//! - the resource's own bookkeeping: `meta` (labels and tags), the narrative (`text` as an
//!   object, `div`), `identifier` (and so `identifier.type`), `reference`;
//! - free text: `note`, `processNote` (the rules read codes and short labels, never prose);
//! - the person, not the care: `language`, `communication` (languages spoken),
//!   `maritalStatus`, `relationship` (Coverage's "self"/"child", a related claim's kind);
//! - the money and the plan, not the service: `adjudication`, `total`, `payment`, `payee`,
//!   `benefitBalance` (a plan's benefit categories, e.g. "Mental health" on every EOB of a
//!   plan), `costToBeneficiary`, `insurance`;
//! - units: a Quantity's UCUM `code` (`mg`, `/min`) is not a coding of a finding.
//!
//! Patient and directory resources (`NOT_READ`) are not read at all.

use super::codes::{self, IcdPattern};
use super::vocab;
use super::LabelRuleConfig;
use crate::fhir;
use regex::Regex;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    /// The v3-ActCode sensitivity code it adds.
    pub sensitivity: &'static str,
    /// The v3-Confidentiality code it adds when the resource has nothing as high.
    pub confidentiality: Option<&'static str>,
    icd: Vec<IcdPattern>,
    icd_exclude: Vec<IcdPattern>,
    /// Codes by system, as [`codes::checked_code`] returns them (looked up without building
    /// a key: a resource's every coding is asked of every rule).
    codes: HashMap<String, HashSet<String>>,
    report_categories: HashSet<String>,
    /// Terms, matched in any text.
    terms: Option<Regex>,
    /// Ingredient names, matched in medication texts only.
    ingredients: Option<Regex>,
    /// A text containing one of these is not matched by the rule's words.
    terms_exclude: Option<Regex>,
}

/// How a rule matched a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// A listed code.
    Code,
    /// Only words: a term in a display or text, or an ingredient name in a medication.
    Words,
}

/// Resource types the rules never read: the person and the directory (who, where), whose
/// codes are not facts about the patient's care.
const NOT_READ: &[&str] =
    &["Patient", "Practitioner", "PractitionerRole", "Organization", "Location", "RelatedPerson", "Person", "Group"];

/// Keys never read wherever they sit (see the module head for why each is there).
const NOT_CARE: &[&str] = &[
    "meta",
    "div",
    "identifier",
    "reference",
    "note",
    "processNote",
    "language",
    "communication",
    "maritalStatus",
    "relationship",
    "adjudication",
    "total",
    "payment",
    "payee",
    "benefitBalance",
    "costToBeneficiary",
    "insurance",
];

/// What a resource says, as the rules read it: every Coding and every readable text,
/// borrowed from the resource, in the form the rules compare (read once for all rules).
#[derive(Debug, Default)]
pub struct Facts<'a> {
    /// (canonical system, code); CPT, HCPCS and v2-0074 codes in capitals.
    codings: Vec<(&'a str, Cow<'a, str>)>,
    /// The ICD-10-CM codes as [`codes::icd_key`]s.
    icd_keys: Vec<String>,
    /// (text, is it about a medication).
    pub(super) texts: Vec<(&'a str, bool)>,
}

impl<'a> Facts<'a> {
    /// Reads `resource` (and what it contains) in one walk. Skips the keys of [`NOT_CARE`]
    /// wherever they sit; Patient and directory resources yield nothing.
    pub fn of(resource: &'a Value) -> Facts<'a> {
        let mut facts = Facts::default();
        if fhir::resource_type(resource).is_some_and(|t| !NOT_READ.contains(&t)) {
            facts.read_form(resource);
            let medication = fhir::resource_type(resource) == Some("Medication");
            facts.walk(resource, medication);
        }
        facts
    }

    /// A QuestionnaireResponse reads as the LOINC code of its form when its `questionnaire`
    /// canonical ends in one (`http://loinc.org/q/44249-1`, `…/Questionnaire/44249-1|2.0`).
    fn read_form(&mut self, resource: &'a Value) {
        if fhir::resource_type(resource) != Some("QuestionnaireResponse") {
            return;
        }
        let Some(canonical) = resource.get("questionnaire").and_then(Value::as_str) else { return };
        let url = canonical.split('|').next().unwrap_or_default();
        self.push_loinc_tail(url);
    }

    /// The last `/` segment of `text`, when it is a LOINC code with a right check digit (a
    /// form canonical, an item `linkId` such as `/44249-1/44250-9`).
    fn push_loinc_tail(&mut self, text: &'a str) {
        let tail = text.trim().rsplit('/').next().unwrap_or_default();
        if tail.bytes().next().is_some_and(|b| b.is_ascii_digit()) && codes::checked_code(codes::LOINC, tail).is_ok() {
            self.codings.push((codes::LOINC, Cow::Borrowed(tail)));
        }
    }

    /// A coding as the rules compare it.
    fn push_coding(&mut self, system: &'a str, code: &'a str) {
        let code = code.trim();
        if system == codes::ICD10CM {
            self.icd_keys.push(codes::icd_key(code));
            return;
        }
        let capitals = matches!(system, codes::CPT | codes::HCPCS | codes::DIAGNOSTIC_SERVICE);
        let code = if capitals && code.bytes().any(|b| b.is_ascii_lowercase()) {
            Cow::Owned(code.to_ascii_uppercase())
        } else {
            Cow::Borrowed(code)
        };
        self.codings.push((system, code));
    }

    fn walk(&mut self, v: &'a Value, medication: bool) {
        match v {
            Value::Array(items) => items.iter().for_each(|x| self.walk(x, medication)),
            Value::Object(map) => {
                // A questionnaire item: LOINC-coded forms use the item's LOINC code as linkId.
                if let Some(link) = map.get("linkId").and_then(Value::as_str) {
                    self.push_loinc_tail(link);
                }
                if let Some(code) = map.get("code").and_then(Value::as_str) {
                    let system = map.get("system").and_then(Value::as_str).unwrap_or("");
                    let system = codes::canonical_system(system);
                    if system == codes::UCUM {
                        // A Quantity (or a unit answer): its unit, not a finding.
                        return;
                    }
                    let med = medication || system == codes::RXNORM || system == codes::NDC;
                    self.push_coding(system, code);
                    if let Some(display) = map.get("display").and_then(Value::as_str) {
                        self.texts.push((display, med));
                    }
                }
                // A CodeableConcept (with or without codings): its text.
                if map.keys().all(|k| matches!(k.as_str(), "coding" | "text" | "id" | "extension")) {
                    if let Some(text) = map.get("text").and_then(Value::as_str) {
                        self.texts.push((text, medication));
                    }
                }
                for (key, child) in map {
                    match key.as_str() {
                        k if NOT_CARE.contains(&k) => continue,
                        "text" if child.is_object() => continue,
                        _ => {}
                    }
                    if fhir::resource_type(child).is_some() {
                        // A contained resource: read as its own type.
                        if fhir::resource_type(child).is_some_and(|t| !NOT_READ.contains(&t)) {
                            self.walk(child, fhir::resource_type(child) == Some("Medication"));
                        }
                        continue;
                    }
                    self.walk(child, medication || key.starts_with("medication"));
                }
            }
            _ => {}
        }
    }
}

/// Why a word list (`terms`, `ingredients`, `review_terms` …) does not compile.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WordsError {
    #[error("{key}: `{word}` is too short to be a term")]
    TooShort { key: String, word: String },
    #[error("{key}: {problem}")]
    Regex { key: String, problem: regex::Error },
}

/// Compiles a word list into one case-insensitive regex matching any entry at word
/// boundaries; a trailing `*` makes an entry a stem ("pregnan*").
pub(super) fn word_regex(key: &str, words: &[String]) -> Result<Option<Regex>, WordsError> {
    let mut parts = Vec::new();
    for w in words {
        let w = w.trim();
        let (stem, open) = match w.strip_suffix('*') {
            Some(s) => (s.trim(), true),
            None => (w, false),
        };
        if stem.chars().filter(|c| c.is_alphanumeric()).count() < 2 {
            return Err(WordsError::TooShort { key: key.to_string(), word: w.to_string() });
        }
        let body = regex::escape(stem).replace("\\ ", "[\\s\\-]+").replace(' ', "[\\s\\-]+");
        let start = if stem.starts_with(|c: char| c.is_alphanumeric()) { "\\b" } else { "" };
        let end = if open || !stem.ends_with(|c: char| c.is_alphanumeric()) { "" } else { "\\b" };
        parts.push(format!("{start}{body}{end}"));
    }
    if parts.is_empty() {
        return Ok(None);
    }
    Regex::new(&format!("(?i)(?:{})", parts.join("|")))
        .map(Some)
        .map_err(|problem| WordsError::Regex { key: key.to_string(), problem })
}

impl Rule {
    /// Compiles one configured rule. Errors say what is wrong (the caller adds the rule id).
    pub fn compile(config: &LabelRuleConfig) -> Result<Rule, String> {
        let sensitivity =
            vocab::sensitivity_codes().iter().copied().find(|c| *c == config.sensitivity.trim()).ok_or_else(|| {
                format!(
                    "sensitivity `{}` is not a v3-ActCode sensitivity code (known: {})",
                    config.sensitivity,
                    vocab::sensitivity_codes().join(", ")
                )
            })?;
        let confidentiality = match config.confidentiality.as_deref().map(str::trim) {
            None => None,
            Some("R") => Some("R"),
            Some("V") => Some("V"),
            Some(other) => return Err(format!("confidentiality `{other}` must be R or V")),
        };
        let patterns = |key: &str, list: &[String]| {
            list.iter().map(|p| IcdPattern::parse(p).map_err(|e| format!("{key}: {e}"))).collect::<Result<Vec<_>, _>>()
        };
        let icd = patterns("icd10cm", &config.icd10cm)?;
        let icd_exclude = patterns("icd10cm_exclude", &config.icd10cm_exclude)?;
        if !icd_exclude.is_empty() && icd.is_empty() {
            return Err("icd10cm_exclude without icd10cm excludes from nothing".into());
        }
        let mut codes: HashMap<String, HashSet<String>> = HashMap::new();
        for (key, system, list) in [
            ("snomed", codes::SNOMED, &config.snomed),
            ("loinc", codes::LOINC, &config.loinc),
            ("rxnorm", codes::RXNORM, &config.rxnorm),
            ("cpt", codes::CPT, &config.cpt),
            ("hcpcs", codes::HCPCS, &config.hcpcs),
        ] {
            for code in list {
                let code = codes::checked_code(system, code).map_err(|e| format!("{key}: {e}"))?;
                codes.entry(system.to_string()).or_default().insert(code);
            }
        }
        for pair in &config.codings {
            let (system, code) = pair
                .rsplit_once('|')
                .filter(|(s, c)| !s.trim().is_empty() && !c.trim().is_empty())
                .ok_or_else(|| format!("codings: `{pair}` is not `system|code`"))?;
            let system = codes::canonical_system(system);
            if system == codes::ICD10CM {
                return Err(format!("codings: `{pair}`: put ICD-10-CM codes under icd10cm"));
            }
            let code = codes::checked_code(system, code).map_err(|e| format!("codings: {e}"))?;
            codes.entry(system.to_string()).or_default().insert(code);
        }
        let mut report_categories = HashSet::new();
        for c in &config.report_category {
            let c = c.trim();
            if c.is_empty() || !c.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(format!("report_category: `{c}` is not a v2-0074 code (LAB, GE, …)"));
            }
            report_categories.insert(c.to_ascii_uppercase());
        }
        let words = |key: &str, list: &[String]| word_regex(key, list).map_err(|e| e.to_string());
        let terms = words("terms", &config.terms)?;
        let ingredients = words("ingredients", &config.ingredients)?;
        let terms_exclude = words("terms_exclude", &config.terms_exclude)?;
        if terms_exclude.is_some() && terms.is_none() && ingredients.is_none() {
            return Err("terms_exclude without terms or ingredients excludes from nothing".into());
        }
        if icd.is_empty()
            && codes.is_empty()
            && report_categories.is_empty()
            && terms.is_none()
            && ingredients.is_none()
        {
            return Err(
                "matches nothing: give icd10cm, snomed, loinc, rxnorm, cpt, hcpcs, codings, report_category, terms or ingredients"
                    .into(),
            );
        }
        Ok(Rule {
            id: config.id.clone(),
            sensitivity,
            confidentiality,
            icd,
            icd_exclude,
            codes,
            report_categories,
            terms,
            ingredients,
            terms_exclude,
        })
    }

    /// How the rule matches what a resource says, if it does: a listed code first, else words.
    pub fn matches(&self, facts: &Facts) -> Option<Match> {
        if facts.icd_keys.iter().any(|key| self.matches_icd(key))
            || facts.codings.iter().any(|(system, code)| self.matches_coding(system, code))
        {
            return Some(Match::Code);
        }
        facts.texts.iter().any(|(text, medication)| self.matches_text(text, *medication)).then_some(Match::Words)
    }

    /// True when the rule's words find `text` sensitive (terms anywhere, ingredient names in
    /// medication texts), unless an excluded phrase is in it.
    pub fn matches_text(&self, text: &str, medication: bool) -> bool {
        let found = self.terms.as_ref().is_some_and(|r| r.is_match(text))
            || (medication && self.ingredients.as_ref().is_some_and(|r| r.is_match(text)));
        found && !self.terms_exclude.as_ref().is_some_and(|r| r.is_match(text))
    }

    /// An ICD-10-CM code ([`codes::icd_key`]) in the rule's ranges and not excluded.
    fn matches_icd(&self, key: &str) -> bool {
        self.icd.iter().any(|p| p.matches(key)) && !self.icd_exclude.iter().any(|p| p.matches(key))
    }

    /// A coding other than ICD-10-CM, as [`Facts`] holds it (CPT, HCPCS and report categories
    /// in capitals).
    fn matches_coding(&self, system: &str, code: &str) -> bool {
        if system == codes::DIAGNOSTIC_SERVICE {
            return self.report_categories.contains(code);
        }
        self.codes.get(system).is_some_and(|c| c.contains(code))
    }
}

/// The texts of a resource the words look at (for the labels report): coding displays and
/// `CodeableConcept.text`, with whether each is about a medication.
pub fn texts_of(resource: &Value) -> Vec<(String, bool)> {
    Facts::of(resource).texts.into_iter().map(|(t, m)| (t.to_string(), m)).collect()
}
