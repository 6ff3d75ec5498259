//! Who is in the population: each person's demographics, what they live with (the traits
//! that decide their clinical content), which source systems hold a record of them and how
//! each record differs (nickname, maiden name, old address, no phone) while still linking,
//! and the look-alikes the patient index must keep apart: namesakes (same name, another
//! birth date), possible matches (same name and birth date, nothing else in common: listed
//! for a human, never linked) and siblings (same family, home phone and address). Unwanted
//! coincidences are ruled out by construction: phones and addresses come from the person's
//! household number, and no two people (other than an intended possible match) share a name
//! and a birth date.

use super::codes::{self, CITIES, FAMILIES, FEMALE_GIVEN, MALE_GIVEN, MIDDLE, NICKNAMES, STREETS};
use super::output::IdBook;
use super::shape::{self, pick};
use super::{SourceKind, SourcePlan};
use chrono::{Duration, NaiveDate};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::collections::HashSet;

/// How a record joins the person's other records in the patient index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LinkBy {
    /// The person's first record; the others link to it.
    Anchor,
    /// It carries the anchor record's identifier.
    Identifier,
    /// Birth date, a compatible name and a phone or address agree with the anchor.
    Demographics,
}

/// One source's record of a person.
#[derive(Debug, Clone)]
pub(super) struct Record {
    pub source: usize,
    pub source_name: String,
    pub id: String,
    /// The source's own identifier value for this person.
    pub identifier: String,
    pub link: LinkBy,
    pub nickname: bool,
    pub maiden_name: bool,
    pub no_middle: bool,
    pub old_address: bool,
    pub no_phone: bool,
}

/// What a person lives with; decides their clinical content.
#[derive(Debug, Clone, Default)]
pub(super) struct Traits {
    pub hypertension: bool,
    pub diabetes: bool,
    pub hyperlipidemia: bool,
    pub asthma: bool,
    pub hypothyroid: bool,
    pub back_pain: bool,
    pub osteoporosis: bool,
    pub hiv: bool,
    pub depression: bool,
    pub anxiety: bool,
    pub opioid_use: bool,
    pub alcohol_use: bool,
    pub brca: bool,
    pub violence: bool,
    pub pregnant: bool,
    pub contraception: bool,
    pub sti: bool,
    pub pathology: bool,
    pub critical_potassium: bool,
    pub internal_note: bool,
    /// An adolescent's confidential visit (contraception, STI or mood), noted as R.
    pub confidential_visit: bool,
    pub peanut_allergy: bool,
}

impl Traits {
    fn names(&self) -> Vec<&'static str> {
        let all = [
            (self.hypertension, "hypertension"),
            (self.diabetes, "diabetes"),
            (self.hyperlipidemia, "hyperlipidemia"),
            (self.asthma, "asthma"),
            (self.hypothyroid, "hypothyroidism"),
            (self.back_pain, "back-pain"),
            (self.osteoporosis, "osteoporosis"),
            (self.hiv, "hiv"),
            (self.depression, "depression"),
            (self.anxiety, "anxiety"),
            (self.opioid_use, "opioid-use"),
            (self.alcohol_use, "alcohol-use"),
            (self.brca, "brca"),
            (self.violence, "violence"),
            (self.pregnant, "pregnancy"),
            (self.contraception, "contraception"),
            (self.sti, "sti"),
            (self.pathology, "pathology"),
            (self.critical_potassium, "critical-potassium"),
            (self.internal_note, "internal-note"),
            (self.confidential_visit, "confidential-visit"),
            (self.peanut_allergy, "peanut-allergy"),
        ];
        all.iter().filter(|(on, _)| *on).map(|(_, n)| *n).collect()
    }
}

/// How a person relates to an earlier one (by key).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)] // each variant names whom the person is related to: "…Of"
pub(super) enum Relation {
    NamesakeOf(String),
    PossibleMatchOf(String),
    SiblingOf(String),
}

#[derive(Debug, Clone)]
pub(super) struct Person {
    pub key: String,
    pub female: bool,
    pub birth: NaiveDate,
    pub age: i32,
    pub given: &'static str,
    pub middle: Option<&'static str>,
    pub family: &'static str,
    /// A birth family name some records still use.
    pub maiden: Option<&'static str>,
    household: usize,
    pub records: Vec<Record>,
    pub traits: Traits,
    /// Relationship codes of the parents on record (minors).
    pub guardians: Vec<(&'static str, &'static str)>,
    pub relation: Option<Relation>,
}

impl Person {
    pub fn is_minor(&self) -> bool {
        self.age < 18
    }

    pub fn phone(&self) -> String {
        format!("{:03}-555-{:04}", 201 + (self.household / 10_000) % 700, self.household % 10_000)
    }

    fn city(&self) -> (&'static str, &'static str) {
        CITIES[self.household % CITIES.len()]
    }

    pub fn address_line(&self, old: bool) -> String {
        let street = STREETS[self.household % STREETS.len()];
        if old {
            // "Apt" lines are nobody's current address, and the household number keeps
            // them unique.
            let previous = STREETS[(self.household / STREETS.len() + 7) % STREETS.len()];
            format!("{} {previous} Apt {}", 10 + self.household, 1 + self.household % 9)
        } else {
            format!("{} {street}", 10 + self.household)
        }
    }

    /// The Patient resource a source holds for this person.
    pub fn patient_resource(&self, record: &Record, identifier_system: &str, anchor: Option<(&str, &str)>) -> Value {
        let given = if record.nickname {
            NICKNAMES.iter().find(|(g, _)| *g == self.given).map_or(self.given, |(_, n)| *n)
        } else {
            self.given
        };
        let mut givens = vec![given];
        if let (Some(m), false) = (self.middle, record.no_middle) {
            givens.push(m);
        }
        let family = match (record.maiden_name, self.maiden) {
            (true, Some(m)) => m,
            _ => self.family,
        };
        let mut identifiers = vec![json!({
            "use": "usual",
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
            "system": identifier_system, "value": record.identifier
        })];
        if let Some((system, value)) = anchor {
            identifiers.push(json!({
                "use": "secondary",
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
                "system": system, "value": value
            }));
        }
        let (city, zip) = self.city();
        let mut patient = json!({
            "resourceType": "Patient", "id": record.id,
            "identifier": identifiers,
            "active": true,
            "name": [{"use": "official", "family": family, "given": givens}],
            "gender": if self.female { "female" } else { "male" },
            "birthDate": self.birth.format("%Y-%m-%d").to_string(),
            "address": [{"use": "home", "line": [self.address_line(record.old_address)], "city": city, "state": "WA", "postalCode": zip}]
        });
        if !record.no_phone {
            patient["telecom"] = json!([{"system": "phone", "value": self.phone(), "use": "home"}]);
        }
        patient
    }

    /// One line of `people.ndjson`.
    pub fn manifest_line(&self) -> Value {
        let records: Vec<Value> = self
            .records
            .iter()
            .map(|r| {
                let variations: Vec<&str> = [
                    (r.nickname, "nickname"),
                    (r.maiden_name, "maiden-name"),
                    (r.no_middle, "no-middle-name"),
                    (r.old_address, "old-address"),
                    (r.no_phone, "no-phone"),
                ]
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, n)| *n)
                .collect();
                let link = match r.link {
                    LinkBy::Anchor => "anchor",
                    LinkBy::Identifier => "identifier",
                    LinkBy::Demographics => "demographics",
                };
                json!({"source": r.source_name, "id": r.id, "link": link, "variations": variations})
            })
            .collect();
        let mut line = json!({
            "person": self.key, "age": self.age, "gender": if self.female { "female" } else { "male" },
            "records": records, "traits": self.traits.names(),
            "guardians": self.guardians.iter().map(|(code, _)| *code).collect::<Vec<_>>(),
        });
        match &self.relation {
            Some(Relation::NamesakeOf(k)) => line["namesake_of"] = json!(k),
            Some(Relation::PossibleMatchOf(k)) => line["possible_match_of"] = json!(k),
            Some(Relation::SiblingOf(k)) => line["sibling_of"] = json!(k),
            None => {}
        }
        line
    }
}

/// Days before the anchor a birth may fall on and still be counted in the bitmap of
/// [`Taken`] (about 190 years; earlier births, never drawn in practice, go to a set).
const TAKEN_DAYS: usize = 70_000;

/// Which (family name, birth date) pairs are taken: one bit per family name and day, so its
/// size is fixed (60 names × 70,000 days ≈ 0.5 MB) whatever the population.
pub(super) struct Taken {
    bits: Vec<u64>,
    beyond: HashSet<(&'static str, NaiveDate)>,
}

impl Taken {
    pub fn new() -> Taken {
        Taken { bits: vec![0; (FAMILIES.len() * TAKEN_DAYS).div_ceil(64)], beyond: HashSet::new() }
    }

    /// Bit position of the pair, when it falls in the bitmap.
    fn slot(family: &str, birth: NaiveDate) -> Option<usize> {
        let name = FAMILIES.iter().position(|f| *f == family)?;
        let days = usize::try_from((shape::anchor() - birth).num_days()).ok().filter(|d| *d < TAKEN_DAYS)?;
        Some(name * TAKEN_DAYS + days)
    }

    pub fn contains(&self, family: &'static str, birth: NaiveDate) -> bool {
        match Self::slot(family, birth) {
            Some(i) => self.bits[i / 64] & (1 << (i % 64)) != 0,
            None => self.beyond.contains(&(family, birth)),
        }
    }

    pub fn insert(&mut self, family: &'static str, birth: NaiveDate) {
        match Self::slot(family, birth) {
            Some(i) => self.bits[i / 64] |= 1 << (i % 64),
            None => {
                self.beyond.insert((family, birth));
            }
        }
    }

    /// Bytes held (for the bounded-memory test).
    #[cfg(test)]
    pub fn heap_bytes(&self) -> usize {
        self.bits.len() * 8 + self.beyond.capacity() * std::mem::size_of::<(&str, NaiveDate)>()
    }
}

/// Draws people one at a time.
pub(super) struct Population {
    kinds: Vec<SourceKind>,
    names: Vec<String>,
    /// (family name, birth date) of everyone so far, maiden names included.
    taken: Taken,
    previous: Option<Person>,
}

impl Population {
    pub fn new(plans: &[SourcePlan]) -> Population {
        Population {
            kinds: plans.iter().map(|p| p.kind).collect(),
            names: plans.iter().map(|p| p.name.clone()).collect(),
            taken: Taken::new(),
            previous: None,
        }
    }

    #[cfg(test)]
    pub fn taken_bytes(&self) -> usize {
        self.taken.heap_bytes()
    }

    pub fn draw(&mut self, number: usize, rng: &mut ChaCha8Rng, ids: &mut IdBook) -> Person {
        let person = match self.previous.take() {
            Some(prev) if number.is_multiple_of(37) && self.kinds.len() > 1 && prev.relation.is_none() => {
                self.possible_match(number, &prev, rng, ids)
            }
            Some(prev) if number.is_multiple_of(23) && !prev.is_minor() && prev.relation.is_none() => {
                self.ordinary(number, rng, ids, Some(&prev), false)
            }
            Some(prev) if number.is_multiple_of(5) && prev.is_minor() && prev.relation.is_none() => {
                self.ordinary(number, rng, ids, Some(&prev), true)
            }
            _ => self.ordinary(number, rng, ids, None, false),
        };
        self.previous = Some(person.clone());
        person
    }

    fn birth_for(&self, age: i32, rng: &mut ChaCha8Rng) -> NaiveDate {
        let days = i64::from(age) * 365 + i64::from(age / 4) + rng.gen_range(1..=364);
        shape::anchor() - Duration::days(days)
    }

    fn ordinary(
        &mut self,
        number: usize,
        rng: &mut ChaCha8Rng,
        ids: &mut IdBook,
        like: Option<&Person>,
        sibling: bool,
    ) -> Person {
        let mut age = match rng.gen_range(0..100) {
            0..=9 => rng.gen_range(0..12),
            10..=18 => rng.gen_range(12..18),
            19..=79 => rng.gen_range(18..65),
            _ => rng.gen_range(65..96),
        };
        let (mut female, mut given, mut family) = draw_name(rng);
        let mut household = number;
        let mut relation = None;
        match (like, sibling) {
            (Some(prev), false) => {
                // A namesake: the same name, another birth date, nothing else in common.
                (female, given, family) = (prev.female, prev.given, prev.family);
                age = if prev.age > 30 { prev.age - rng.gen_range(3..12) } else { prev.age + rng.gen_range(3..12) };
                relation = Some(Relation::NamesakeOf(prev.key.clone()));
            }
            (Some(prev), true) => {
                family = prev.family;
                household = prev.household;
                age = if prev.age >= 9 { prev.age - rng.gen_range(2..6) } else { prev.age + rng.gen_range(2..6) };
                relation = Some(Relation::SiblingOf(prev.key.clone()));
            }
            _ => {}
        }
        let middle = if rng.gen_bool(0.6) { MIDDLE.choose(rng).copied() } else { None };
        let maiden = (female && age >= 25 && rng.gen_bool(0.35) && relation.is_none())
            .then(|| *pick(rng, FAMILIES))
            .filter(|m| *m != family);
        let mut birth = self.birth_for(age, rng);
        // No two people share a family name (birth name included) and a birth date, so
        // only intended possible matches can look alike to the index (even a shared middle
        // initial counts as a shared given name there).
        while self.taken.contains(family, birth) || maiden.is_some_and(|m| self.taken.contains(m, birth)) {
            birth -= Duration::days(rng.gen_range(1..30));
        }
        let age = crate::fhir::time::age_on(birth, shape::anchor());
        self.taken.insert(family, birth);
        if let Some(m) = maiden {
            self.taken.insert(m, birth);
        }
        let traits = draw_traits(age, female, rng);
        let guardians = if age < 18 {
            let mut g = Vec::new();
            if rng.gen_bool(0.9) {
                g.push(("MTH", *pick(rng, FEMALE_GIVEN)));
            }
            if g.is_empty() || rng.gen_bool(0.55) {
                g.push(("FTH", *pick(rng, MALE_GIVEN)));
            }
            g
        } else {
            Vec::new()
        };
        let mut person = Person {
            key: format!("G{number:07}"),
            female,
            birth,
            age,
            given,
            middle,
            family,
            maiden,
            household,
            records: Vec::new(),
            traits,
            guardians,
            relation,
        };
        let sources = self.memberships(&person, rng);
        person.records = self.records(&person, &sources, rng, ids);
        person
    }

    /// Someone else with the same name and birth date as `prev`, in a source where `prev`'s
    /// first record is not: the index may list them as a possible match, never link them.
    fn possible_match(&mut self, number: usize, prev: &Person, rng: &mut ChaCha8Rng, ids: &mut IdBook) -> Person {
        let anchor_source = prev.records[0].source;
        let source = (0..self.kinds.len())
            .filter(|s| *s != anchor_source && self.kinds[*s] != SourceKind::Part2Program)
            .max_by_key(|s| usize::from(self.kinds[*s] == SourceKind::Imaging))
            .unwrap_or(if anchor_source == 0 { 1 } else { 0 });
        let mut person = Person {
            key: format!("G{number:07}"),
            female: prev.female,
            birth: prev.birth,
            age: prev.age,
            given: prev.given,
            middle: None,
            family: prev.family,
            maiden: None,
            household: number,
            records: Vec::new(),
            traits: Traits::default(),
            guardians: Vec::new(),
            relation: Some(Relation::PossibleMatchOf(prev.key.clone())),
        };
        if person.is_minor() {
            person.guardians.push(("MTH", *pick(rng, FEMALE_GIVEN)));
        }
        person.traits.back_pain = rng.gen_bool(0.5);
        person.records = self.records(&person, &[source], rng, ids);
        person
    }

    /// Which sources hold a record of this person, in source order.
    fn memberships(&self, p: &Person, rng: &mut ChaCha8Rng) -> Vec<usize> {
        let t = &p.traits;
        let mut sources = Vec::new();
        for (i, kind) in self.kinds.iter().enumerate() {
            let chance = match kind {
                SourceKind::Hospital => 0.94,
                SourceKind::Lab => {
                    if t.hiv || t.sti || t.brca || t.pathology || t.diabetes || t.pregnant || t.critical_potassium {
                        1.0
                    } else if p.age < 12 {
                        0.25
                    } else {
                        0.6
                    }
                }
                SourceKind::Imaging => {
                    if t.osteoporosis || t.back_pain || t.brca {
                        0.9
                    } else if p.age >= 40 {
                        0.3
                    } else {
                        0.12
                    }
                }
                SourceKind::Part2Program => {
                    if (t.opioid_use || t.alcohol_use) && p.age >= 18 {
                        0.85
                    } else {
                        0.0
                    }
                }
                SourceKind::Clinic => 0.2,
            };
            if rng.gen_bool(chance) {
                sources.push(i);
            }
        }
        if sources.is_empty() {
            sources.push(0);
        }
        sources
    }

    fn records(&self, p: &Person, sources: &[usize], rng: &mut ChaCha8Rng, ids: &mut IdBook) -> Vec<Record> {
        let mut records = Vec::new();
        for (n, &source) in sources.iter().enumerate() {
            let mut r = Record {
                source,
                source_name: self.names[source].clone(),
                id: ids.next(source, "Patient"),
                identifier: ids.next_identifier(source),
                link: LinkBy::Anchor,
                nickname: false,
                maiden_name: false,
                no_middle: false,
                old_address: false,
                no_phone: false,
            };
            if n > 0 {
                let by_identifier = rng.gen_bool(0.4);
                r.link = if by_identifier { LinkBy::Identifier } else { LinkBy::Demographics };
                let has_nickname = NICKNAMES.iter().any(|(g, _)| *g == p.given);
                match rng.gen_range(0..10) {
                    0..=2 if has_nickname => r.nickname = true,
                    3..=4 if p.maiden.is_some() => r.maiden_name = true,
                    5..=6 if p.middle.is_some() => r.no_middle = true,
                    _ => {}
                }
                // A record linked by demographics differs from the anchor in phone or
                // address, never both, so one of them still agrees.
                match rng.gen_range(0..10) {
                    0..=2 => r.old_address = true,
                    3..=4 => r.no_phone = true,
                    5 if by_identifier => {
                        r.old_address = true;
                        r.no_phone = true;
                    }
                    _ => {}
                }
            }
            records.push(r);
        }
        records
    }
}

fn draw_name(rng: &mut ChaCha8Rng) -> (bool, &'static str, &'static str) {
    let female = rng.gen_bool(0.52);
    let given = *pick(rng, if female { FEMALE_GIVEN } else { MALE_GIVEN });
    (female, given, *pick(rng, FAMILIES))
}

fn draw_traits(age: i32, female: bool, rng: &mut ChaCha8Rng) -> Traits {
    let mut t = Traits::default();
    let adult = age >= 18;
    let older = age >= 40;
    t.asthma = rng.gen_bool(0.09);
    t.peanut_allergy = age < 18 && rng.gen_bool(0.06);
    if adult {
        t.hypertension = rng.gen_bool(if older { 0.35 } else { 0.08 });
        t.diabetes = rng.gen_bool(if older { 0.18 } else { 0.04 });
        t.hyperlipidemia = rng.gen_bool(if older { 0.3 } else { 0.06 });
        t.hypothyroid = rng.gen_bool(if female { 0.09 } else { 0.02 });
        t.back_pain = rng.gen_bool(0.1);
        t.osteoporosis = female && age >= 60 && rng.gen_bool(0.3);
        t.hiv = rng.gen_bool(0.025);
        t.depression = rng.gen_bool(0.12);
        t.anxiety = rng.gen_bool(0.08);
        t.opioid_use = rng.gen_bool(0.03);
        t.alcohol_use = !t.opioid_use && rng.gen_bool(0.03);
        t.brca = female && rng.gen_bool(0.025);
        t.violence = rng.gen_bool(0.025);
        t.pregnant = female && age <= 44 && rng.gen_bool(0.06);
        t.contraception = female && age <= 44 && !t.pregnant && rng.gen_bool(0.12);
        t.sti = age <= 40 && rng.gen_bool(0.04);
        t.pathology = older && rng.gen_bool(0.03);
        t.critical_potassium = older && rng.gen_bool(0.02);
        t.internal_note = rng.gen_bool(0.04);
    } else if age >= 12 {
        t.confidential_visit = rng.gen_bool(0.35);
        if t.confidential_visit {
            match rng.gen_range(0..3) {
                0 if female && age >= 14 => t.contraception = true,
                1 if age >= 14 => t.sti = true,
                _ => t.depression = true,
            }
            t.pregnant = female && age >= 15 && t.contraception && rng.gen_bool(0.2);
        }
        t.anxiety = rng.gen_bool(0.06);
    }
    t
}

impl Traits {
    /// The chronic problems this person has, with their codes.
    pub fn problems(&self) -> Vec<&'static codes::Problem> {
        let mut list = Vec::new();
        for (on, p) in [
            (self.hypertension, &codes::HYPERTENSION),
            (self.diabetes, &codes::DIABETES),
            (self.hyperlipidemia, &codes::HYPERLIPIDEMIA),
            (self.asthma, &codes::ASTHMA),
            (self.hypothyroid, &codes::HYPOTHYROIDISM),
            (self.back_pain, &codes::BACK_PAIN),
            (self.osteoporosis, &codes::OSTEOPOROSIS),
        ] {
            if on {
                list.push(p);
            }
        }
        list
    }
}
