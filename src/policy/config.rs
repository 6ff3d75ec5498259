//! The policy file (`policy.toml`, with its label rules in `labels.toml`): what HIM staff
//! read and change. Loading validates everything — unknown keys and labels, overlapping or
//! gapped age bands, minor-consent rules that name no service or an age past majority, bad
//! code ranges, unknown purposes — and names the file, the key and what is wrong. It decides
//! nothing itself.

use crate::config::Duration;
use crate::label::{LabelRuleConfig, Labeler, LabelsFile};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{file}: cannot read: {message}")]
    Unreadable { file: String, message: String },
    #[error("{file}: {key}: {message}")]
    Invalid { file: String, key: String, message: String },
    #[error(transparent)]
    Labels(#[from] crate::label::LabelError),
    /// labels.toml's `review_terms` do not compile.
    #[error("{file}: review_terms: {problem}")]
    ReviewTerms { file: String, problem: crate::label::WordsError },
    #[error("minors.jurisdiction: `{0}` is not one of minors.jurisdictions")]
    UnknownJurisdiction(String),
}

/// The policy as written in `policy.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// The notice every patient-facing answer carries, whether or not anything was withheld.
    pub withheld_notice: String,
    /// The 42 CFR §2.32 notice that accompanies Part 2 data released to a partner.
    pub redisclosure_notice: String,
    /// The label rules file, relative to this file.
    pub labels: PathBuf,
    /// Sources that are federally assisted substance-use programs (42 CFR Part 2).
    #[serde(default)]
    pub part2_sources: Vec<String>,
    pub minors: MinorsConfig,
    #[serde(default)]
    pub holds: HoldsConfig,
    #[serde(default)]
    pub exclusions: ExclusionsConfig,
    pub partners: PartnersConfig,
    /// The resource types this policy has rules for; any other type is withheld from
    /// proxies, apps and partners (fail-closed).
    #[serde(default)]
    pub types: TypesConfig,
    /// Label rules, loaded from `labels`.
    #[serde(skip)]
    pub label_rules: Vec<LabelRuleConfig>,
    /// The labels report's wide net of review words, loaded from `labels`.
    #[serde(skip)]
    pub review_terms: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinorsConfig {
    /// Which of `jurisdictions` applies to this deployment.
    pub jurisdiction: String,
    /// What a proxy of an adolescent may see (resource types), when unlabeled; each one of
    /// `types.configured`.
    pub proxy_limited_types: Vec<String>,
    /// Services a minor may consent to alone, by name, and the security labels that mark
    /// them. From which age the minor's own consent keeps a service from a parent is each
    /// jurisdiction's `consent`.
    #[serde(default)]
    pub services: BTreeMap<String, Vec<String>>,
    /// The flat list of earlier policy files, read only to refuse it with what replaced it.
    #[serde(default, rename = "minor_consented_labels")]
    pub(crate) legacy_minor_consented_labels: Option<toml::Value>,
    pub jurisdictions: Vec<Jurisdiction>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jurisdiction {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Age bands from 0 up to the age of majority, contiguous, in order.
    pub bands: Vec<AgeBand>,
    /// For every one of `minors.services`: from which age a minor consents to it alone.
    pub consent: Vec<ConsentRule>,
}

impl Jurisdiction {
    /// The age of majority: the end of the last band.
    pub fn majority(&self) -> u32 {
        self.bands.last().map_or(0, |b| b.to)
    }
}

/// From `from_age` on, a minor consents to `service` alone, and so it is confidential from
/// a parent or guardian (under that age the parent consents, and sees it as the age band
/// allows).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentRule {
    /// One of `minors.services`.
    pub service: String,
    /// 0 = any age; the age of majority = never (a parent consents until then).
    pub from_age: u32,
    /// The statute (or why there is none) — for HIM, shown by `policy check`.
    pub citation: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgeBand {
    /// First age (years) of the band.
    pub from: u32,
    /// First age no longer in the band.
    pub to: u32,
    pub proxy: ProxyAccess,
    /// Proxy access in this band needs the minor's recorded assent.
    #[serde(default)]
    pub assent_required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProxyAccess {
    /// Everything except minor-consented services.
    AllButConfidential,
    /// Only `proxy_limited_types`, unlabeled, and never minor-consented services.
    Limited,
    /// Nothing.
    None,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldsConfig {
    /// Longest a patient's own "show me only after my clinician reviews" preference holds.
    #[serde(default = "default_preference_max")]
    pub preference_max: Duration,
    /// Rules that hold results from patient-facing viewers. None by default: a blanket
    /// delay of results would be information blocking.
    #[serde(default)]
    pub rules: Vec<HoldRule>,
}

fn default_preference_max() -> Duration {
    Duration::from_secs(14 * 24 * 3600)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldRule {
    pub id: String,
    #[serde(default)]
    pub description: String,
    /// Category codes (e.g. `SP`, `laboratory`) on `category`.
    #[serde(default)]
    pub categories: Vec<String>,
    /// `system|code` on `code`.
    #[serde(default)]
    pub codes: Vec<String>,
    /// Label codes in `meta.security`.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Interpretation codes (e.g. `HH`, `LL`, `AA`).
    #[serde(default)]
    pub interpretations: Vec<String>,
    /// The hold ends on its own this long after the result was issued.
    pub max: Duration,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExclusionsConfig {
    /// `system|code` of DocumentReference types never released to patient-facing viewers.
    #[serde(default)]
    pub document_types: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnersConfig {
    /// Purposes of use partners may state (v3-ActReason codes).
    pub allowed_purposes: Vec<String>,
    /// Of those, the emergencies (released Part 2 data is audited as such).
    pub emergency_purposes: Vec<String>,
}

/// `[types]`: the resource types HIM has looked at and that the rules (labels, minors,
/// holds, exclusions, scopes) cover. A type not listed — one a source newly sends, or one
/// the labeller has no way to read — is shown only to the patient themself (not through an
/// app) and to staff; proxies, apps and partners do not get it (rule
/// `types:not-configured`) until HIM adds it here.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypesConfig {
    /// Resource type names (`Claim`, `ExplanationOfBenefit` …). A policy file without
    /// `[types]` configures the types Portico has always served ([`served_types`]).
    pub configured: Vec<String>,
}

impl Default for TypesConfig {
    fn default() -> Self {
        TypesConfig { configured: served_types() }
    }
}

impl TypesConfig {
    /// Whether the policy has rules for `resource_type`.
    pub fn is_configured(&self, resource_type: &str) -> bool {
        self.configured.iter().any(|t| t == resource_type)
    }
}

/// The Patient and the types the gateway has served since its first release (the 14
/// compartment types and 5 supporting ones): the policy's types when a file says nothing.
pub fn served_types() -> Vec<String> {
    std::iter::once("Patient")
        .chain(crate::fhir::PATIENT_COMPARTMENT_TYPES.iter().copied())
        .chain(crate::fhir::SUPPORTING_TYPES.iter().copied())
        .map(str::to_string)
        .collect()
}

/// A resource type name as FHIR spells them: an upper-case ASCII letter, then letters and
/// digits.
fn is_type_name(t: &str) -> bool {
    t.starts_with(|c: char| c.is_ascii_uppercase()) && t.chars().all(|c| c.is_ascii_alphanumeric())
}

/// True for a label code a policy may name: a v3-ActCode sensitivity code, a
/// confidentiality code (N/R/V), the Part 2 privacy law or its no-redisclosure handling code.
pub fn is_known_label(code: &str) -> bool {
    crate::label::sensitivity_codes().contains(&code) || matches!(code, "N" | "R" | "V" | "42CFRPart2" | "NORDSCLCD")
}

const EMBEDDED_POLICY: &str = include_str!("../../config/policy.toml");
const EMBEDDED_LABELS: &str = include_str!("../../config/labels.toml");

/// Purposes of use the gateway knows (v3-ActReason).
pub const KNOWN_PURPOSES: &[&str] = &[
    "TREAT", "ETREAT", "BTG", "HPAYMT", "HOPERAT", "HRESCH", "PUBHLTH", "HMARKT", "HDIRECT", "PATRQT", "FAMRQT", "COC",
];

impl PolicyConfig {
    /// Loads `policy.toml` and the label rules it names, and validates both.
    pub fn load(path: &Path) -> Result<PolicyConfig, PolicyError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| PolicyError::Unreadable { file: file.clone(), message: e.to_string() })?;
        Self::from_toml(&text, &file, path.parent().unwrap_or(Path::new(".")))
    }

    pub fn from_toml(text: &str, file: &str, base_dir: &Path) -> Result<PolicyConfig, PolicyError> {
        let config: PolicyConfig = parse(text, file)?;
        let labels_path = base_dir.join(&config.labels);
        let labels_file = labels_path.display().to_string();
        let labels_text = std::fs::read_to_string(&labels_path).map_err(|e| PolicyError::Invalid {
            file: file.to_string(),
            key: "labels".into(),
            message: format!("cannot read {labels_file}: {e}"),
        })?;
        Self::finish(config, file, &labels_text, &labels_file)
    }

    /// The policy shipped with Portico (config/policy.toml and config/labels.toml, built
    /// in), used when the config names no policy file.
    // Cannot fail at run time: the files are built in, and the config tests load them.
    #[allow(clippy::expect_used)]
    pub fn embedded() -> PolicyConfig {
        let config: PolicyConfig =
            parse(EMBEDDED_POLICY, "(built-in policy.toml)").expect("the built-in policy parses");
        Self::finish(config, "(built-in policy.toml)", EMBEDDED_LABELS, "(built-in labels.toml)")
            .expect("the built-in policy is valid")
    }

    fn finish(
        mut config: PolicyConfig,
        file: &str,
        labels_text: &str,
        labels_file: &str,
    ) -> Result<PolicyConfig, PolicyError> {
        let invalid =
            |file: &str, key: String, message: String| PolicyError::Invalid { file: file.to_string(), key, message };
        let labels: LabelsFile = parse(labels_text, labels_file)?;
        config.label_rules = labels.label_rules;
        crate::label::report::ReviewTerms::new(&labels.review_terms)
            .map_err(|problem| PolicyError::ReviewTerms { file: labels_file.to_string(), problem })?;
        config.review_terms = labels.review_terms;
        crate::label::terminology::merge_imports(&mut config.label_rules, &labels.imports, Path::new(labels_file))
            .map_err(|e| {
                let (file, key, message) = e.located();
                PolicyError::Invalid { file, key, message }
            })?;
        Labeler::new(&config.label_rules).map_err(|e| invalid(labels_file, "label_rules".into(), e.to_string()))?;
        config.validate().map_err(|(k, m)| invalid(file, k, m))?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), (String, String)> {
        let check_labels = |key: &str, codes: &[String]| {
            codes
                .iter()
                .find(|c| !is_known_label(c))
                .map_or(Ok(()), |c| Err((key.to_string(), format!("`{c}` is not a known security label"))))
        };
        let mut listed = std::collections::HashSet::new();
        for t in &self.types.configured {
            if !is_type_name(t) {
                return Err(("types.configured".into(), format!("`{t}` is not a resource type name (e.g. Claim)")));
            }
            if !listed.insert(t) {
                return Err(("types.configured".into(), format!("`{t}` is listed twice")));
            }
        }
        for t in &self.minors.proxy_limited_types {
            if !self.types.is_configured(t) {
                return Err((
                    "minors.proxy_limited_types".into(),
                    format!("`{t}` is not in types.configured: a type the policy has no rules for is never shown to a proxy"),
                ));
            }
        }
        if self.minors.legacy_minor_consented_labels.is_some() {
            return Err((
                "minors.minor_consented_labels".into(),
                "replaced by [minors.services] (each service and its labels) and, in each jurisdiction, \
                 consent = [{ service, from_age, citation }] (from which age the minor's own consent keeps it \
                 from a parent); see config/policy.toml"
                    .into(),
            ));
        }
        if self.minors.services.is_empty() {
            return Err(("minors.services".into(), "names no service a minor may consent to alone".into()));
        }
        let mut service_of: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, labels) in &self.minors.services {
            let key = format!("minors.services.{name}");
            if labels.is_empty() {
                return Err((key, "names no label".into()));
            }
            check_labels(&key, labels)?;
            for l in labels {
                if let Some(other) = service_of.insert(l, name) {
                    return Err((key, format!("`{l}` already marks the service `{other}`")));
                }
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, j) in self.minors.jurisdictions.iter().enumerate() {
            let key = format!("minors.jurisdictions[{i}]");
            if !names.insert(&j.name) {
                return Err((format!("{key}.name"), format!("`{}` is defined twice", j.name)));
            }
            let mut expected_from = 0;
            for (b, band) in j.bands.iter().enumerate() {
                let bkey = format!("{key}.bands[{b}]");
                if band.to <= band.from {
                    return Err((bkey, format!("`to` ({}) must be greater than `from` ({})", band.to, band.from)));
                }
                if band.from < expected_from {
                    return Err((
                        bkey,
                        format!(
                            "overlaps the band before it (starts at {}, the previous ends at {expected_from})",
                            band.from
                        ),
                    ));
                }
                if band.from > expected_from {
                    return Err((bkey, format!("leaves ages {expected_from}–{} without a band", band.from)));
                }
                expected_from = band.to;
            }
            if expected_from == 0 || expected_from > 21 {
                return Err((
                    format!("{key}.bands"),
                    "bands must run from 0 to the age of majority (at most 21)".into(),
                ));
            }
            let mut given = std::collections::HashSet::new();
            for (c, rule) in j.consent.iter().enumerate() {
                let ckey = format!("{key}.consent[{c}]");
                if !self.minors.services.contains_key(&rule.service) {
                    let known: Vec<&str> = self.minors.services.keys().map(String::as_str).collect();
                    return Err((
                        format!("{ckey}.service"),
                        format!("`{}` is not one of minors.services ({})", rule.service, known.join(", ")),
                    ));
                }
                if !given.insert(&rule.service) {
                    return Err((format!("{ckey}.service"), format!("`{}` is given twice", rule.service)));
                }
                if rule.from_age > j.majority() {
                    return Err((
                        format!("{ckey}.from_age"),
                        format!(
                            "{} is past the age of majority of `{}` ({}); {} means a minor never consents to it alone",
                            rule.from_age,
                            j.name,
                            j.majority(),
                            j.majority()
                        ),
                    ));
                }
                if rule.citation.trim().is_empty() {
                    return Err((format!("{ckey}.citation"), "give the statute, or say why there is none".into()));
                }
            }
            if let Some(missing) = self.minors.services.keys().find(|s| !given.contains(s)) {
                return Err((
                    format!("{key}.consent"),
                    format!(
                        "says nothing of `{missing}`: give its from_age ({} if a minor never consents to it alone)",
                        j.majority()
                    ),
                ));
            }
        }
        if !names.contains(&self.minors.jurisdiction) {
            return Err((
                "minors.jurisdiction".into(),
                format!("`{}` is not one of minors.jurisdictions", self.minors.jurisdiction),
            ));
        }
        let mut ids = std::collections::HashSet::new();
        for (i, rule) in self.holds.rules.iter().enumerate() {
            let key = format!("holds.rules[{i}]");
            if !ids.insert(&rule.id) {
                return Err((format!("{key}.id"), format!("`{}` is used twice", rule.id)));
            }
            if rule.categories.is_empty()
                && rule.codes.is_empty()
                && rule.labels.is_empty()
                && rule.interpretations.is_empty()
            {
                return Err((key, "matches nothing: give categories, codes, labels or interpretations".into()));
            }
            check_labels(&format!("{key}.labels"), &rule.labels)?;
            if let Some(c) = rule.codes.iter().find(|c| !c.contains('|')) {
                return Err((format!("{key}.codes"), format!("`{c}` must be system|code")));
            }
            if rule.max.is_zero() {
                return Err((format!("{key}.max"), "must be greater than zero".into()));
            }
        }
        if let Some(c) = self.exclusions.document_types.iter().find(|c| !c.contains('|')) {
            return Err(("exclusions.document_types".into(), format!("`{c}` must be system|code")));
        }
        for (key, list) in [
            ("partners.allowed_purposes", &self.partners.allowed_purposes),
            ("partners.emergency_purposes", &self.partners.emergency_purposes),
        ] {
            if let Some(p) = list.iter().find(|p| !KNOWN_PURPOSES.contains(&p.as_str())) {
                return Err((key.into(), format!("`{p}` is not a known purpose of use")));
            }
        }
        if let Some(p) = self.partners.emergency_purposes.iter().find(|p| !self.partners.allowed_purposes.contains(p)) {
            return Err(("partners.emergency_purposes".into(), format!("`{p}` is not in partners.allowed_purposes")));
        }
        Ok(())
    }

    /// The jurisdiction in force (loading checks that there is one; [`crate::policy::Policy::new`]
    /// refuses a config without it).
    pub fn jurisdiction(&self) -> Option<&Jurisdiction> {
        self.minors.jurisdictions.iter().find(|j| j.name == self.minors.jurisdiction)
    }
}

fn parse<T: serde::de::DeserializeOwned>(text: &str, file: &str) -> Result<T, PolicyError> {
    let invalid = |key: String, message: String| PolicyError::Invalid { file: file.to_string(), key, message };
    let value: toml::Value = toml::from_str(text).map_err(|e| invalid("(syntax)".into(), e.message().to_string()))?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let key = e.path().to_string();
        invalid(if key == "." { "(top level)".into() } else { key }, e.into_inner().message().to_string())
    })
}

#[cfg(test)]
mod tests;
