//! Ages and age bands: a patient's age in whole years from the birth date against the
//! request time in the configured zone (birthdays exactly right), the band of the
//! jurisdiction in force, and which services a minor of that age consents to alone there.
//! Bands and consent ages are data (policy.toml), never code.

use super::config::{AgeBand, Jurisdiction, MinorsConfig};
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde_json::Value;
use std::collections::BTreeSet;

/// The patient's age on the day `now` falls on in `zone`; `None` without a full birth date.
pub fn age_of(patient: &Value, now: DateTime<Utc>, zone: FixedOffset) -> Option<i32> {
    let birth = NaiveDate::parse_from_str(patient.get("birthDate")?.as_str()?, "%Y-%m-%d").ok()?;
    Some(crate::fhir::time::age_on(birth, now.with_timezone(&zone).date_naive()))
}

/// The band an age falls in; `None` for adults (past the last band).
pub fn band(jurisdiction: &Jurisdiction, age: i32) -> Option<&AgeBand> {
    let age = u32::try_from(age).unwrap_or(0);
    jurisdiction.bands.iter().find(|b| age >= b.from && age < b.to)
}

/// The labels of the services a minor of `age` consents to alone in `jurisdiction` (those
/// whose `from_age` the minor has reached): confidential from a parent or guardian.
pub fn minor_consented_labels<'a>(
    minors: &'a MinorsConfig,
    jurisdiction: &Jurisdiction,
    age: i32,
) -> BTreeSet<&'a str> {
    let age = u32::try_from(age).unwrap_or(0);
    jurisdiction
        .consent
        .iter()
        .filter(|rule| age >= rule.from_age)
        .filter_map(|rule| minors.services.get(&rule.service))
        .flatten()
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::config::{ConsentRule, ProxyAccess};
    use serde_json::json;

    fn j() -> Jurisdiction {
        Jurisdiction {
            name: "t".into(),
            description: String::new(),
            bands: vec![
                AgeBand { from: 0, to: 12, proxy: ProxyAccess::AllButConfidential, assent_required: false },
                AgeBand { from: 12, to: 18, proxy: ProxyAccess::Limited, assent_required: false },
            ],
            consent: vec![
                ConsentRule { service: "pregnancy".into(), from_age: 0, citation: "t".into() },
                ConsentRule { service: "mental-health".into(), from_age: 12, citation: "t".into() },
                ConsentRule { service: "hiv".into(), from_age: 18, citation: "t".into() },
            ],
        }
    }

    #[test]
    fn the_eighteenth_birthday_ends_the_last_band_in_the_configured_zone() {
        let p = json!({"birthDate": "2008-03-10"});
        let zone = FixedOffset::west_opt(8 * 3600).unwrap();
        // 07:59 UTC on the birthday is still the day before in UTC-8.
        let before: DateTime<Utc> = "2026-03-10T07:59:00Z".parse().unwrap();
        let after: DateTime<Utc> = "2026-03-10T08:00:00Z".parse().unwrap();
        assert_eq!(age_of(&p, before, zone), Some(17));
        assert_eq!(band(&j(), 17).unwrap().proxy, ProxyAccess::Limited);
        assert_eq!(age_of(&p, after, zone), Some(18));
        assert!(band(&j(), 18).is_none());
        assert_eq!(band(&j(), 11).unwrap().proxy, ProxyAccess::AllButConfidential);
        assert_eq!(age_of(&json!({"birthDate": "2008"}), after, zone), None);
    }

    #[test]
    fn a_service_is_the_minors_own_from_its_age_on() {
        let minors = MinorsConfig {
            jurisdiction: "t".into(),
            proxy_limited_types: vec![],
            services: [("pregnancy", vec!["PREGNANT"]), ("mental-health", vec!["MH", "BH"]), ("hiv", vec!["HIV"])]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
                .collect(),
            jurisdictions: vec![j()],
            legacy_minor_consented_labels: None,
        };
        let at = |age| minor_consented_labels(&minors, &j(), age).into_iter().collect::<Vec<_>>();
        assert_eq!(at(0), vec!["PREGNANT"]);
        assert_eq!(at(11), vec!["PREGNANT"], "a parent consents to (and sees) an 11-year-old's mental health care");
        assert_eq!(at(12), vec!["BH", "MH", "PREGNANT"]);
        assert_eq!(at(17), vec!["BH", "MH", "PREGNANT"], "from_age = majority: never the minor's alone");
    }
}
