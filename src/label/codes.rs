//! Clinical code systems as the label rules use them: their URLs, ICD-10-CM prefixes and
//! ranges ("F10-F16" covers F10.x … F16.x; compared case-insensitively, dots ignored), and
//! validation of configured codes (LOINC and SNOMED CT check digits, RxNorm and CPT shapes)
//! so that a typo in `labels.toml` is an error at start-up rather than a silent gap.
//! It reads codes only; it never touches a resource.

pub const ICD10CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";
pub const SNOMED: &str = "http://snomed.info/sct";
pub const LOINC: &str = "http://loinc.org";
pub const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
pub const CPT: &str = "http://www.ama-assn.org/go/cpt";
/// HCPCS Level II (the letter codes: H0020, J7300 …).
pub const HCPCS: &str = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets";
/// National Drug Codes (pharmacy claims and dispenses).
pub const NDC: &str = "http://hl7.org/fhir/sid/ndc";
/// UCUM units (a Quantity's `code`).
pub const UCUM: &str = "http://unitsofmeasure.org";
/// HL7 v2 table 0074, diagnostic service section (DiagnosticReport.category: LAB, GE, …).
pub const DIAGNOSTIC_SERVICE: &str = "http://terminology.hl7.org/CodeSystem/v2-0074";

/// The URL a coding's system is compared as: the OIDs and old spellings of the systems
/// above (and a trailing slash) read as their current URL; anything else as written.
pub fn canonical_system(system: &str) -> &str {
    match system.trim().trim_end_matches('/') {
        "urn:oid:2.16.840.1.113883.6.90" => ICD10CM,
        "urn:oid:2.16.840.1.113883.6.96" => SNOMED,
        "urn:oid:2.16.840.1.113883.6.1" => LOINC,
        "urn:oid:2.16.840.1.113883.6.88" => RXNORM,
        "urn:oid:2.16.840.1.113883.6.12" => CPT,
        "urn:oid:2.16.840.1.113883.6.285" | "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets" => HCPCS,
        "urn:oid:2.16.840.1.113883.6.69" => NDC,
        "urn:oid:2.16.840.1.113883.6.8" => UCUM,
        "http://hl7.org/fhir/v2/0074" | "urn:oid:2.16.840.1.113883.12.74" => DIAGNOSTIC_SERVICE,
        other => other,
    }
}

/// An ICD-10-CM code without its dot, upper case: "f11.20" → "F1120".
pub fn icd_key(code: &str) -> String {
    code.trim().chars().filter(|c| *c != '.').flat_map(char::to_uppercase).collect()
}

/// A configured ICD-10-CM pattern: a code prefix ("B20", "Z20.6") or an inclusive range of
/// prefixes ("F10-F16", "O00-O9A").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcdPattern {
    low: String,
    high: String,
}

impl IcdPattern {
    /// Parses "B20", "Z20.6", "F10-F16". Errors say what is wrong with the text.
    pub fn parse(text: &str) -> Result<IcdPattern, String> {
        let (low, high) = match text.split_once('-') {
            Some((a, b)) => (checked_icd(a, text)?, checked_icd(b, text)?),
            None => {
                let one = checked_icd(text, text)?;
                (one.clone(), one)
            }
        };
        let n = low.len().min(high.len());
        if low[..n] > high[..n] {
            return Err(format!("ICD-10-CM range `{text}` runs backwards ({low} comes after {high})"));
        }
        Ok(IcdPattern { low, high })
    }

    /// True when `key` (see [`icd_key`]) falls in the pattern: its leading characters are at
    /// or after the low end and at or before the high end.
    pub fn matches(&self, key: &str) -> bool {
        let head = |n: usize| key.get(..n.min(key.len())).unwrap_or("");
        key.len() >= self.low.len().min(self.high.len())
            && head(self.low.len()) >= self.low.as_str()
            && head(self.high.len()) <= self.high.as_str()
    }
}

/// An ICD-10-CM code or prefix of at least a whole category: letter, digit, digit or
/// letter (O9A, Z3A), then up to four more letters or digits after an optional dot.
fn checked_icd(part: &str, whole: &str) -> Result<String, String> {
    let trimmed = part.trim();
    let bad = |why: &str| Err(format!("`{whole}` is not an ICD-10-CM code, prefix or range: {why}"));
    if trimmed.is_empty() {
        return bad("empty");
    }
    if let Some(dot) = trimmed.find('.') {
        if dot != 3 || trimmed[dot + 1..].contains('.') {
            return bad("a dot may only follow the three-character category");
        }
    }
    let key = icd_key(trimmed);
    let b = key.as_bytes();
    if b.len() < 3 {
        return bad("shorter than a three-character category such as F10");
    }
    if b.len() > 7 {
        return bad("longer than seven characters");
    }
    if !b[0].is_ascii_uppercase() || !b[1].is_ascii_digit() || !b[2].is_ascii_alphanumeric() {
        return bad("a category is a letter, a digit and a digit or letter (F10, O9A)");
    }
    if !b.iter().all(u8::is_ascii_alphanumeric) {
        return bad("only letters and digits after the category");
    }
    Ok(key)
}

/// Checks a configured code of `system` and returns it as compared (trimmed; CPT upper
/// case). LOINC and SNOMED CT codes must have the right check digit.
pub fn checked_code(system: &str, code: &str) -> Result<String, String> {
    let code = code.trim();
    if code.is_empty() {
        return Err("an empty code".into());
    }
    match system {
        LOINC => check_loinc(code).map(|()| code.to_string()),
        SNOMED => check_snomed(code).map(|()| code.to_string()),
        RXNORM if code.bytes().all(|b| b.is_ascii_digit()) && code.len() <= 9 => Ok(code.to_string()),
        RXNORM => Err(format!("RxNorm code `{code}` is not an RxCUI (digits only)")),
        CPT => {
            let upper = code.to_ascii_uppercase();
            let b = upper.as_bytes();
            let ok = b.len() == 5
                && b[..4].iter().all(u8::is_ascii_digit)
                && (b[4].is_ascii_digit() || matches!(b[4], b'F' | b'T' | b'U' | b'M'));
            if ok {
                Ok(upper)
            } else {
                Err(format!("CPT code `{code}` is not five digits (or four digits and F, T, U or M)"))
            }
        }
        HCPCS => {
            let upper = code.to_ascii_uppercase();
            let b = upper.as_bytes();
            if b.len() == 5 && b[0].is_ascii_uppercase() && b[1..].iter().all(u8::is_ascii_digit) {
                Ok(upper)
            } else {
                Err(format!("HCPCS code `{code}` is not a letter and four digits (H0020)"))
            }
        }
        _ => Ok(code.to_string()),
    }
}

/// A LOINC code: digits, a dash and a mod-10 check digit (parts `LP…`, answers `LA…` are
/// accepted with a dash and a digit, unchecked).
fn check_loinc(code: &str) -> Result<(), String> {
    let Some((num, check)) = code.split_once('-') else {
        return Err(format!("LOINC code `{code}` has no check digit (expected NNNN-N)"));
    };
    let single_digit = check.len() == 1 && check.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = num.strip_prefix("LP").or_else(|| num.strip_prefix("LA")).or_else(|| num.strip_prefix("LG")) {
        return if single_digit && !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
            Ok(())
        } else {
            Err(format!("LOINC code `{code}` is malformed"))
        };
    }
    if !single_digit || num.is_empty() || num.len() > 7 || !num.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("LOINC code `{code}` is malformed (expected NNNN-N)"));
    }
    let sum: u32 = num
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let twice = d * 2;
                twice / 10 + twice % 10
            } else {
                d
            }
        })
        .sum();
    let expected = (10 - sum % 10) % 10;
    if check.bytes().next().map(|b| u32::from(b - b'0')) == Some(expected) {
        Ok(())
    } else {
        Err(format!("LOINC code `{code}` has a wrong check digit (expected {num}-{expected})"))
    }
}

/// A SNOMED CT concept id: 6 to 18 digits ending in a Verhoeff check digit.
fn check_snomed(code: &str) -> Result<(), String> {
    const D: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const P: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    if !(6..=18).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_digit()) || code.starts_with('0') {
        return Err(format!("SNOMED CT code `{code}` is not a concept id (6 to 18 digits)"));
    }
    let c = code.bytes().rev().enumerate().fold(0u8, |c, (i, b)| D[c as usize][P[i % 8][(b - b'0') as usize] as usize]);
    if c == 0 {
        Ok(())
    } else {
        Err(format!("SNOMED CT code `{code}` has a wrong (Verhoeff) check digit"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icd_patterns_parse_and_match() {
        let sud = IcdPattern::parse("F10-F16").unwrap();
        assert!(sud.matches(&icd_key("F10.20")) && sud.matches(&icd_key("f11.20")) && sud.matches("F16"));
        assert!(!sud.matches(&icd_key("F17.210")) && !sud.matches("F09") && !sud.matches("F1"));
        let preg = IcdPattern::parse("O00-O9A").unwrap();
        assert!(preg.matches(&icd_key("O99.89")) && preg.matches(&icd_key("O9A.11")) && !preg.matches("P00"));
        let z206 = IcdPattern::parse("Z20.6").unwrap();
        assert!(z206.matches("Z206") && z206.matches("Z2061") && !z206.matches("Z205") && !z206.matches("Z20"));
        let sub = IcdPattern::parse("T74.0-T74.9").unwrap();
        assert!(sub.matches(&icd_key("T74.11XA")) && !sub.matches(&icd_key("T75.1")));
        for bad in ["F16-F10", "X", "", "F1", "F10-", "-F10", "10F", "F10..1", "F1.01", "F10-F1#"] {
            assert!(IcdPattern::parse(bad).is_err(), "{bad} should be refused");
        }
        assert!(IcdPattern::parse("f10.1-F10.9").is_ok());
    }

    #[test]
    fn check_digits() {
        for ok in ["2106-3", "44261-6", "56888-1", "20447-9", "75626-2", "LP29684-5"] {
            assert_eq!(checked_code(LOINC, ok), Ok(ok.to_string()));
        }
        assert!(checked_code(LOINC, "2106-4").unwrap_err().contains("expected 2106-3"));
        assert!(checked_code(LOINC, "2106").is_err());
        for ok in ["86406008", "75544000", "35489007", "428211000124100", "866148006"] {
            assert!(checked_code(SNOMED, ok).is_ok(), "{ok}");
        }
        assert!(checked_code(SNOMED, "86406009").is_err());
        assert_eq!(checked_code(CPT, "0001u"), Ok("0001U".into()));
        assert!(checked_code(CPT, "5830").is_err() && checked_code(RXNORM, "10106x").is_err());
        assert_eq!(checked_code(HCPCS, "h0020"), Ok("H0020".into()));
        assert!(checked_code(HCPCS, "90832").is_err() && checked_code(HCPCS, "J730").is_err());
        assert_eq!(canonical_system("urn:oid:2.16.840.1.113883.6.285"), HCPCS);
    }
}
