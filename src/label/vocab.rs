//! The security-label vocabulary: which `meta.security` codings are sensitivity codes
//! (v3-ActCode information sensitivity policy), confidentiality (v3-Confidentiality, ranked
//! U < L < M < N < R < V), privacy law (42CFRPart2 …), handling caveats (NORDSCLCD …) or
//! integrity (v3-ObservationValue, e.g. REDACTED), with the displays the labeler writes.
//! It only classifies and builds codings; it never edits a resource and never decides who
//! sees what.

use super::{ACT_CODE, CONFIDENTIALITY};
use serde_json::{json, Value};

/// The HL7 code system of US privacy laws (the fixtures label Part 2 data with it).
pub const US_PRIVACY_LAW: &str = "http://terminology.hl7.org/CodeSystem/v3-ActUSPrivacyLaw";
/// The HL7 code system of integrity and other security observation values (REDACTED …).
pub const OBSERVATION_VALUE: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";
/// The label of data from a federally assisted substance-use program (42 CFR Part 2).
pub const PART2: &str = "42CFRPart2";

/// Older spellings of the HL7 code systems (FHIR STU3 URLs, OIDs) that sources may still send.
const ACT_CODE_ALIASES: &[&str] = &[ACT_CODE, "http://hl7.org/fhir/v3/ActCode", "urn:oid:2.16.840.1.113883.5.4"];
const CONFIDENTIALITY_ALIASES: &[&str] =
    &[CONFIDENTIALITY, "http://hl7.org/fhir/v3/Confidentiality", "urn:oid:2.16.840.1.113883.5.25"];
const US_PRIVACY_LAW_ALIASES: &[&str] = &[US_PRIVACY_LAW, "http://hl7.org/fhir/v3/ActUSPrivacyLaw"];
const OBSERVATION_VALUE_ALIASES: &[&str] =
    &[OBSERVATION_VALUE, "http://hl7.org/fhir/v3/ObservationValue", "urn:oid:2.16.840.1.113883.5.83"];

/// v3-ActCode information sensitivity codes (`_InformationSensitivityPolicy`: act, entity
/// and role sensitivity), with their HL7 displays. A label with one of these names a fact.
const SENSITIVITY: &[(&str, &str)] = &[
    ("ETH", "substance abuse information sensitivity"),
    ("ETHUD", "alcohol use disorder information sensitivity"),
    ("OPIOIDUD", "opioid use disorder information sensitivity"),
    ("SUD", "substance use disorder information sensitivity"),
    ("GDIS", "genetic disease information sensitivity"),
    ("HIV", "HIV/AIDS information sensitivity"),
    ("MST", "military sexual trauma information sensitivity"),
    ("SCA", "sickle cell anemia information sensitivity"),
    ("SICKLE", "sickle cell"),
    ("SDV", "sexual assault, abuse, or domestic violence information sensitivity"),
    ("SEX", "sexuality and reproductive health information sensitivity"),
    ("SPI", "specially protected information sensitivity"),
    ("BH", "behavioral health information sensitivity"),
    ("COGN", "cognitive disability information sensitivity"),
    ("DVD", "developmental disability information sensitivity"),
    ("EMOTDIS", "emotional disturbance information sensitivity"),
    ("MH", "mental health information sensitivity"),
    ("PSY", "psychiatry disorder information sensitivity"),
    ("PSYTHPN", "psychotherapy note information sensitivity"),
    ("PREGNANT", "pregnancy information sensitivity"),
    ("STD", "sexually transmitted disease information sensitivity"),
    ("TBOO", "taboo"),
    ("VIO", "violence information sensitivity"),
    ("DEMO", "all demographic information sensitivity"),
    ("DOB", "date of birth information sensitivity"),
    ("GENDER", "gender and sexual orientation information sensitivity"),
    ("LIVARG", "living arrangement information sensitivity"),
    ("MARST", "marital status information sensitivity"),
    ("PATLOC", "patient location"),
    ("RACE", "race information sensitivity"),
    ("REL", "religion information sensitivity"),
    ("B", "business information sensitivity"),
    ("EMPL", "employer information sensitivity"),
    ("LOCIS", "location information sensitivity"),
    ("SSP", "sensitive service provider information sensitivity"),
    ("ADOL", "adolescent information sensitivity"),
    ("CEL", "celebrity information sensitivity"),
    ("VIP", "celebrity information sensitivity"),
    ("DIA", "diagnosis information sensitivity"),
    ("DRGIS", "drug information sensitivity"),
    ("EMP", "employee information sensitivity"),
    ("PDS", "patient default information sensitivity"),
    ("PHY", "physician requested information sensitivity"),
    ("PRS", "patient requested information sensitivity"),
];

/// v3-Confidentiality codes from lowest to highest, with their HL7 displays.
const CONFIDENTIALITY_RANKS: &[(&str, &str)] = &[
    ("U", "unrestricted"),
    ("L", "low"),
    ("M", "moderate"),
    ("N", "normal"),
    ("R", "restricted"),
    ("V", "very restricted"),
];

/// US privacy-law codes (v3-ActCode `_ActUSPrivacyLaw`, also sent under v3-ActUSPrivacyLaw).
const PRIVACY_LAW: &[&str] = &[PART2, "CommonRule", "HIPAANOPP", "HIPAAPsyNotes", "HIPAASelfPay", "Title38Section7332"];

/// Handling caveats: v3-ActCode obligation and refrain policies (`NORDSLCD` is the legacy
/// spelling of `NORDSCLCD`, rewritten when labeling).
const HANDLING: &[&str] = &[
    "NORDSCLCD",
    "NORDSLCD",
    "NORDSCLCDS",
    "NORDSCLW",
    "NODSCLCD",
    "NODSCLCDS",
    "NOAUTH",
    "NOCOLLECT",
    "NOINTEGRATE",
    "NOLIST",
    "NOMOU",
    "NOORGPOL",
    "NOPAT",
    "NOPERSISTP",
    "NORELINK",
    "NOREUSE",
    "NOVIP",
    "ORCON",
    "DELAU",
    "ENCRYPT",
    "ENCRYPTR",
    "ENCRYPTT",
    "ENCRYPTU",
    "AUDIT",
    "AUDTR",
    "CPLYCC",
    "CPLYCD",
    "CPLYJPP",
    "CPLYOPP",
    "CPLYOSP",
    "CPLYPOL",
    "DECLASSIFYLABEL",
    "DEID",
    "HUAPRV",
    "LABEL",
    "MASK",
    "MINEC",
    "PERSISTLABEL",
    "PRIVMARK",
    "PSEUD",
    "REDACT",
    "UPGRDLABEL",
];

/// What a `meta.security` coding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelKind {
    /// A v3-ActCode information sensitivity code (HIV, ETH, MH, …): the label names a fact.
    Sensitivity,
    /// v3-Confidentiality U/L/M/N/R/V.
    Confidentiality,
    /// A privacy law (42CFRPart2 …), under v3-ActCode or v3-ActUSPrivacyLaw.
    PrivacyLaw,
    /// A handling caveat (NORDSCLCD …).
    Handling,
    /// v3-ObservationValue (REDACTED, …).
    Integrity,
    /// Anything else (local systems, purposes of use, unknown codes).
    Other,
}

fn in_system(coding: &Value, aliases: &[&str]) -> bool {
    coding.get("system").and_then(Value::as_str).is_some_and(|s| aliases.contains(&s))
}

fn code_of(coding: &Value) -> &str {
    coding.get("code").and_then(Value::as_str).unwrap_or("")
}

/// Classifies a `meta.security` coding. Known code systems are recognised under their
/// current URL, their FHIR STU3 URL and their OID.
pub fn label_kind(coding: &Value) -> LabelKind {
    let code = code_of(coding);
    if in_system(coding, CONFIDENTIALITY_ALIASES) && confidentiality_rank(code).is_some() {
        LabelKind::Confidentiality
    } else if in_system(coding, ACT_CODE_ALIASES) {
        if SENSITIVITY.iter().any(|(c, _)| *c == code) {
            LabelKind::Sensitivity
        } else if PRIVACY_LAW.contains(&code) {
            LabelKind::PrivacyLaw
        } else if HANDLING.contains(&code) {
            LabelKind::Handling
        } else {
            LabelKind::Other
        }
    } else if in_system(coding, US_PRIVACY_LAW_ALIASES) && PRIVACY_LAW.contains(&code) {
        LabelKind::PrivacyLaw
    } else if in_system(coding, OBSERVATION_VALUE_ALIASES) {
        LabelKind::Integrity
    } else {
        LabelKind::Other
    }
}

/// True when a `meta.security` coding is a v3-ActCode *sensitivity* code (HIV, STD, ETH,
/// SUD, BH, MH, PSY, SEX, PREGNANT, SDV, GDIS, GENDER, … — see [`sensitivity_codes`]): the
/// label itself discloses the fact, so it is what to strip for proxies and apps.
/// Confidentiality (N/R/V), integrity (REDACTED), privacy law (42CFRPart2) and handling
/// (NORDSCLCD) codings are not sensitivity codes.
pub fn is_sensitivity(coding: &Value) -> bool {
    label_kind(coding) == LabelKind::Sensitivity
}

/// Every v3-ActCode sensitivity code [`is_sensitivity`] recognises (and a rule may add).
pub fn sensitivity_codes() -> &'static [&'static str] {
    const CODES: [&str; SENSITIVITY.len()] = {
        let mut out = [""; SENSITIVITY.len()];
        let mut i = 0;
        while i < SENSITIVITY.len() {
            out[i] = SENSITIVITY[i].0;
            i += 1;
        }
        out
    };
    &CODES
}

/// The rank of a v3-Confidentiality code (U=0 … N=3, R=4, V=5); `None` if not one.
pub fn confidentiality_rank(code: &str) -> Option<usize> {
    CONFIDENTIALITY_RANKS.iter().position(|(c, _)| *c == code)
}

/// The coding the labeler writes for a sensitivity code; `None` for an unknown code.
pub fn sensitivity_coding(code: &str) -> Option<Value> {
    let (code, display) = SENSITIVITY.iter().find(|(c, _)| *c == code)?;
    Some(json!({"system": ACT_CODE, "code": code, "display": display}))
}

/// The coding the labeler writes for a confidentiality code; `None` for an unknown code.
pub fn confidentiality_coding(code: &str) -> Option<Value> {
    let (code, display) = CONFIDENTIALITY_RANKS.iter().find(|(c, _)| *c == code)?;
    Some(json!({"system": CONFIDENTIALITY, "code": code, "display": display}))
}

/// The 42 CFR Part 2 coding the labeler writes.
pub fn part2_coding() -> Value {
    json!({"system": ACT_CODE, "code": PART2, "display": "42 CFR Part2"})
}

/// The canonical (system, code) of a label coding for "is it already there": known systems
/// under an old URL count as their current URL, and 42CFRPart2 is one label under either
/// v3-ActCode or v3-ActUSPrivacyLaw.
pub fn identity(coding: &Value) -> (String, String) {
    let code = code_of(coding).to_string();
    let system = match label_kind(coding) {
        LabelKind::Sensitivity | LabelKind::Handling => ACT_CODE,
        LabelKind::Confidentiality => CONFIDENTIALITY,
        LabelKind::PrivacyLaw => US_PRIVACY_LAW,
        LabelKind::Integrity => OBSERVATION_VALUE,
        LabelKind::Other => coding.get("system").and_then(Value::as_str).unwrap_or(""),
    };
    (system.to_string(), code)
}

/// True for the legacy `NORDSLCD` spelling (under v3-ActCode or with no system).
pub fn is_legacy_nordsclcd(coding: &Value) -> bool {
    code_of(coding) == "NORDSLCD" && (coding.get("system").is_none() || in_system(coding, ACT_CODE_ALIASES))
}
