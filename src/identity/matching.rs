//! Deciding whether two source Patient records are one person, from their demographics
//! alone. Pure functions; no storage, no sources. The rule: a shared identifier (system and
//! value) links; otherwise birth date must agree together with at least one more
//! independent attribute (phone, address, or another identifier), with compatible names and
//! no conflicting gender. Name and birth date alone are only a possible match.

use serde_json::Value;
use std::collections::BTreeSet;

/// The parts of a Patient that matching compares, normalized (stored as JSON in the index).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Demographics {
    pub identifiers: BTreeSet<(String, String)>,
    pub birth_date: Option<String>,
    pub gender: Option<String>,
    pub families: BTreeSet<String>,
    pub givens: BTreeSet<String>,
    pub phones: BTreeSet<String>,
    pub addresses: BTreeSet<String>,
    /// Family names as the record writes them: what an on-demand lookup searches a source
    /// by. Never compared.
    #[serde(default)]
    pub written_families: BTreeSet<String>,
}

/// How two records relate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// One person; the reason says which attributes agreed (never their values).
    Same(String),
    /// Perhaps one person; listed for a human, never linked automatically.
    Possible(String),
    Different,
}

/// Common nicknames, each mapped to a canonical given name.
const NICKNAMES: &[(&str, &str)] = &[
    ("bob", "robert"),
    ("rob", "robert"),
    ("bobby", "robert"),
    ("liz", "elizabeth"),
    ("beth", "elizabeth"),
    ("betty", "elizabeth"),
    ("eliza", "elizabeth"),
    ("bill", "william"),
    ("will", "william"),
    ("billy", "william"),
    ("jim", "james"),
    ("jimmy", "james"),
    ("jamie", "james"),
    ("kate", "katherine"),
    ("katie", "katherine"),
    ("kathy", "katherine"),
    ("mike", "michael"),
    ("mick", "michael"),
    ("tom", "thomas"),
    ("tommy", "thomas"),
    ("dick", "richard"),
    ("rick", "richard"),
    ("rich", "richard"),
    ("peggy", "margaret"),
    ("maggie", "margaret"),
    ("meg", "margaret"),
    ("tony", "anthony"),
    ("dan", "daniel"),
    ("danny", "daniel"),
    ("joe", "joseph"),
    ("joey", "joseph"),
    ("sam", "samuel"),
    ("alex", "alexander"),
    ("chris", "christopher"),
    ("matt", "matthew"),
    ("nick", "nicholas"),
    ("steve", "stephen"),
    ("sue", "susan"),
    ("jen", "jennifer"),
    ("jenny", "jennifer"),
    ("ed", "edward"),
    ("ted", "edward"),
    ("andy", "andrew"),
    ("pat", "patricia"),
    ("trish", "patricia"),
    ("abby", "abigail"),
    ("becky", "rebecca"),
    ("manny", "manuel"),
    ("lupe", "guadalupe"),
    ("pepe", "jose"),
];

fn canonical_given(name: &str) -> String {
    let n = fold(name);
    NICKNAMES.iter().find(|(nick, _)| *nick == n).map_or(n, |(_, full)| full.to_string())
}

/// Lowercase, accents stripped for the common Latin letters, non-letters dropped.
pub fn fold(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ñ' => 'n',
            'ç' => 'c',
            other => other,
        })
        .filter(|c| c.is_alphanumeric())
        .collect()
}

fn strs(v: Option<&Value>) -> impl Iterator<Item = &Value> {
    v.and_then(Value::as_array).into_iter().flatten()
}

impl Demographics {
    pub fn of(patient: &Value) -> Demographics {
        let mut d = Demographics {
            birth_date: patient.get("birthDate").and_then(Value::as_str).map(str::to_string),
            gender: patient.get("gender").and_then(Value::as_str).filter(|g| *g != "unknown").map(str::to_string),
            ..Default::default()
        };
        for id in strs(patient.get("identifier")) {
            if let (Some(s), Some(v)) =
                (id.get("system").and_then(Value::as_str), id.get("value").and_then(Value::as_str))
            {
                d.identifiers.insert((s.to_string(), v.trim().to_string()));
            }
        }
        for name in strs(patient.get("name")) {
            if let Some(f) = name.get("family").and_then(Value::as_str) {
                d.families.insert(fold(f));
                d.written_families.insert(f.trim().to_string());
            }
            for g in strs(name.get("given")).filter_map(Value::as_str) {
                d.givens.insert(canonical_given(g));
            }
        }
        for t in strs(patient.get("telecom")) {
            if t.get("system").and_then(Value::as_str) == Some("phone") {
                let digits: String =
                    t.get("value").and_then(Value::as_str).unwrap_or("").chars().filter(char::is_ascii_digit).collect();
                if digits.len() >= 7 {
                    d.phones.insert(digits[digits.len().saturating_sub(10)..].to_string());
                }
            }
        }
        for a in strs(patient.get("address")) {
            let line = strs(a.get("line")).find_map(Value::as_str).map(normalize_street);
            let zip = a.get("postalCode").and_then(Value::as_str).map(|z| z.chars().take(5).collect::<String>());
            if let (Some(line), Some(zip)) = (line, zip) {
                d.addresses.insert(format!("{line}|{zip}"));
            }
        }
        d
    }
}

fn normalize_street(line: &str) -> String {
    line.split_whitespace()
        .map(|w| {
            let w = fold(w);
            match w.as_str() {
                "street" => "st".to_string(),
                "avenue" => "ave".to_string(),
                "road" => "rd".to_string(),
                "drive" => "dr".to_string(),
                "lane" => "ln".to_string(),
                "boulevard" => "blvd".to_string(),
                "court" => "ct".to_string(),
                "apartment" | "apt" | "unit" => "#".to_string(),
                _ => w,
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn intersects<T: Ord>(a: &BTreeSet<T>, b: &BTreeSet<T>) -> bool {
    a.intersection(b).next().is_some()
}

/// Compares two records from different sources.
pub fn compare(a: &Demographics, b: &Demographics) -> Verdict {
    if let Some((system, _)) = a.identifiers.intersection(&b.identifiers).next() {
        return Verdict::Same(format!("shared identifier ({system})"));
    }
    let same_birth = a.birth_date.is_some() && a.birth_date == b.birth_date;
    let gender_conflict = matches!((&a.gender, &b.gender), (Some(x), Some(y)) if x != y);
    if !same_birth || gender_conflict {
        return Verdict::Different;
    }
    let family = intersects(&a.families, &b.families);
    let given = intersects(&a.givens, &b.givens);
    let mut agreeing = Vec::new();
    if intersects(&a.phones, &b.phones) {
        agreeing.push("phone");
    }
    if intersects(&a.addresses, &b.addresses) {
        agreeing.push("address");
    }
    let names = match (family, given) {
        (true, true) => "same name",
        (true, false) => "same family name",
        (false, true) => "same given name, different family name",
        (false, false) => "",
    };
    if names.is_empty() {
        return if agreeing.is_empty() {
            Verdict::Different
        } else {
            Verdict::Possible(format!("birth date and {} agree but names differ", agreeing.join(" and ")))
        };
    }
    if agreeing.is_empty() {
        return if family && given {
            Verdict::Possible("same name and birth date, nothing else agrees".into())
        } else {
            Verdict::Different
        };
    }
    Verdict::Same(format!("birth date and {} agree; {names}", agreeing.join(" and ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(family: &str, given: &str, birth: &str, phone: &str, line: &str, zip: &str) -> Demographics {
        Demographics::of(&json!({
            "resourceType": "Patient", "gender": "female", "birthDate": birth,
            "name": [{"family": family, "given": [given]}],
            "telecom": [{"system": "phone", "value": phone}],
            "address": [{"line": [line], "postalCode": zip}]
        }))
    }

    #[test]
    fn shared_identifier_links() {
        let a = Demographics::of(&json!({"identifier": [{"system": "urn:mrn", "value": "1"}]}));
        let b =
            Demographics::of(&json!({"identifier": [{"system": "urn:mrn", "value": "1 "}], "birthDate": "1990-01-01"}));
        assert_eq!(compare(&a, &b), Verdict::Same("shared identifier (urn:mrn)".into()));
    }

    #[test]
    fn nickname_and_moved_address_link_on_phone() {
        let a = p("Nguyen", "Elizabeth", "1980-04-02", "(555) 010-1234", "12 Harbor Street", "98001");
        let b = p("nguyen", "Liz", "1980-04-02", "555-010-1234", "9 Elm Road", "98002");
        assert!(matches!(compare(&a, &b), Verdict::Same(r) if r.contains("phone") && !r.contains("address")));
    }

    #[test]
    fn married_name_and_transposed_phone_link_on_address() {
        let a = p("Smith", "Ana", "1975-09-09", "555-010-1234", "12 Harbor St", "98001-1234");
        let b = p("Lopez", "Ana", "1975-09-09", "555-010-1243", "12 harbor street", "98001");
        assert_eq!(
            compare(&a, &b),
            Verdict::Same("birth date and address agree; same given name, different family name".into())
        );
    }

    #[test]
    fn look_alikes_and_weak_agreement() {
        let a = p("Smith", "James", "1970-01-01", "555-010-1111", "1 A St", "98001");
        let b = p("Smith", "James", "1971-01-01", "555-010-1111", "1 A St", "98001");
        assert_eq!(compare(&a, &b), Verdict::Different, "different birth dates never link");
        let c = p("Smith", "James", "1970-01-01", "555-010-9999", "7 B St", "98005");
        assert!(matches!(compare(&a, &c), Verdict::Possible(_)));
        let mut d = c.clone();
        d.gender = Some("male".into());
        assert_eq!(compare(&a, &d), Verdict::Different, "conflicting gender");
    }
}
