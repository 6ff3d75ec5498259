//! Compiled label rules and where they look: each rule is a set of code matchers (ICD-10-CM
//! prefixes and ranges minus exclusions, SNOMED CT, LOINC, RxNorm, CPT, other `system|code`
//! pairs, DiagnosticReport categories) and the labels it adds. Matching reads only the coded
//! elements listed in [`coded_elements`] (and of contained resources); it never edits a resource and never decides who
//! sees what.

use super::codes::{self, IcdPattern};
use super::vocab;
use super::LabelRuleConfig;
use crate::fhir;
use serde_json::Value;
use std::collections::HashSet;

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
    /// (system, code) pairs, codes as [`codes::checked_code`] returns them.
    codes: HashSet<(String, String)>,
    report_categories: HashSet<String>,
}

/// The coded elements a rule looks at, per resource type (paths for [`fhir::path_values`]
/// that reach CodeableConcepts). Observation values and components, Goal descriptions and
/// free text are deliberately not read.
pub fn coded_elements(resource_type: &str) -> &'static [&'static str] {
    match resource_type {
        "Condition" | "AllergyIntolerance" | "Observation" => &["code"],
        "DiagnosticReport" => &["code", "category", "conclusionCode"],
        "MedicationRequest" | "MedicationStatement" | "MedicationDispense" | "MedicationAdministration" => {
            &["medicationCodeableConcept", "reasonCode"]
        }
        "Procedure" | "ServiceRequest" => &["code", "reasonCode"],
        "Encounter" => &["reasonCode", "type"],
        "DocumentReference" => &["type"],
        "Immunization" => &["vaccineCode"],
        "Medication" => &["code"],
        "CarePlan" => &["category"],
        _ => &[],
    }
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
        let mut codes = HashSet::new();
        for (key, system, list) in [
            ("snomed", codes::SNOMED, &config.snomed),
            ("loinc", codes::LOINC, &config.loinc),
            ("rxnorm", codes::RXNORM, &config.rxnorm),
            ("cpt", codes::CPT, &config.cpt),
        ] {
            for code in list {
                let code = codes::checked_code(system, code).map_err(|e| format!("{key}: {e}"))?;
                codes.insert((system.to_string(), code));
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
            codes.insert((system.to_string(), code));
        }
        let mut report_categories = HashSet::new();
        for c in &config.report_category {
            let c = c.trim();
            if c.is_empty() || !c.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(format!("report_category: `{c}` is not a v2-0074 code (LAB, GE, …)"));
            }
            report_categories.insert(c.to_ascii_uppercase());
        }
        if icd.is_empty() && codes.is_empty() && report_categories.is_empty() {
            return Err("matches nothing: give icd10cm, snomed, loinc, rxnorm, cpt, codings or report_category".into());
        }
        Ok(Rule { id: config.id.clone(), sensitivity, confidentiality, icd, icd_exclude, codes, report_categories })
    }

    /// True when one of the resource's coded elements, or of a resource it contains (a
    /// contained Medication …), has a code the rule matches.
    pub fn matches(&self, resource: &Value) -> bool {
        let Some(t) = fhir::resource_type(resource) else { return false };
        coded_elements(t).iter().any(|element| {
            fhir::path_values(resource, &format!("{element}.coding"))
                .into_iter()
                .any(|coding| self.matches_coding(coding, t == "DiagnosticReport" && *element == "category"))
        }) || fhir::path_values(resource, "contained").into_iter().any(|c| self.matches(c))
    }

    fn matches_coding(&self, coding: &Value, is_report_category: bool) -> bool {
        let (Some(system), Some(code)) =
            (coding.get("system").and_then(Value::as_str), coding.get("code").and_then(Value::as_str))
        else {
            return false;
        };
        let system = codes::canonical_system(system);
        if system == codes::ICD10CM {
            let key = codes::icd_key(code);
            return self.icd.iter().any(|p| p.matches(&key)) && !self.icd_exclude.iter().any(|p| p.matches(&key));
        }
        if is_report_category && system == codes::DIAGNOSTIC_SERVICE {
            return self.report_categories.contains(&code.trim().to_ascii_uppercase());
        }
        let code = if system == codes::CPT { code.trim().to_ascii_uppercase() } else { code.trim().to_string() };
        self.codes.contains(&(system.to_string(), code))
    }
}
