//! Privacy on data nobody on this project wrote: the shared Synthea sample
//! (`../shared/data/synthea-r4`, 60 patients) served by two simulated systems (an EHR and a
//! lab), each patient's dates shifted so that the patient is a child or a teenager today.
//! For every minor, the parent's token reaches none of the items the independent case list
//! (`tests/data/synthea-sensitive/cases.tsv`) marks as a minor-consented service — not
//! through `$everything`, search, read, the zip download (its NDJSON and summary) or the
//! record pages of a parent's signed-in account — while
//! staff see every one of them (so the withheld side is really there) and the parent still
//! sees the child's unlabelled immunizations. Staff's `$everything` of each person holds every
//! resource of that person's bundle exactly once, every type, and each of its references
//! resolves within it.

use crate::common::*;
use chrono::{Datelike, NaiveDate, Utc};
use futures::StreamExt;
use portico::simulator::SimulatorOptions;
use portico::sources::files::ResourceStore;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

/// Ages the patients are made, in turn: teens (the limited band) and children (the parent
/// sees all but the services a minor may consent to at that age).
const AGES: &[i32] = &[13, 15, 8, 17, 16, 10, 14];
/// Resource types that go to the lab system; everything else is the EHR's.
const LAB_TYPES: &[&str] = &["Observation", "DiagnosticReport"];

struct Person {
    file: String,
    patient_id: String,
    age: i32,
    /// `Type/id` of every resource of the person's bundle but the shared supporting ones
    /// (organizations, practitioners …, fetched only when pointed at).
    own: BTreeSet<String>,
}

fn synthea_dir() -> PathBuf {
    root().join("../shared/data/synthea-r4")
}

/// (file, Type/id) → categories, from the independent case list.
fn cases() -> HashMap<(String, String), BTreeSet<String>> {
    let text = std::fs::read_to_string(root().join("tests/data/synthea-sensitive/cases.tsv")).unwrap();
    let mut out: HashMap<(String, String), BTreeSet<String>> = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let c: Vec<&str> = line.split('\t').collect();
        out.entry((c[0].to_string(), format!("{}/{}", c[1], c[2]))).or_default().insert(c[3].to_string());
    }
    out
}

/// (category, display) of the case list's codes (to look for in readable downloads).
fn sensitive_displays() -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(root().join("tests/data/synthea-sensitive/codes.tsv")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("category"))
        .filter_map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            Some((c.first()?.to_string(), c.get(3)?.to_string()))
        })
        .filter(|(_, d)| d.len() > 6)
        .collect()
}

/// Loads every bundle, shifting each patient's dates so the patient is `AGES[i]` today; returns the
/// EHR and lab stores and the people.
fn load() -> (ResourceStore, ResourceStore, Vec<Person>) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(synthea_dir())
        .expect("the shared Synthea sample at ../shared/data/synthea-r4")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let today = Utc::now().date_naive();
    let (mut ehr, mut lab, mut people) = (Vec::new(), Vec::new(), Vec::new());
    let mut seen = HashSet::new();
    for (i, path) in files.iter().enumerate() {
        let mut resources = portico::sources::files::read_json_file(path).unwrap();
        let patient = resources.iter().find(|r| r["resourceType"] == "Patient").unwrap().clone();
        let birth = NaiveDate::parse_from_str(patient["birthDate"].as_str().unwrap(), "%Y-%m-%d").unwrap();
        let age = AGES[i % AGES.len()];
        // Born `age` years and a month ago (never on today's date, so no birthday edge).
        let target = today.with_year(today.year() - age).unwrap_or(today) - chrono::Duration::days(40);
        let shift = (target - birth).num_days();
        for r in &mut resources {
            portico::fhir::time::shift_dates(r, shift);
        }
        let own = resources
            .iter()
            .filter(|r| !portico::fhir::SUPPORTING_TYPES.contains(&r["resourceType"].as_str().unwrap()))
            .map(|r| format!("{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap()))
            .collect();
        for r in resources {
            let t = r["resourceType"].as_str().unwrap().to_string();
            if !seen.insert(format!("{t}/{}", r["id"].as_str().unwrap())) && t != "Patient" {
                continue;
            }
            if t == "Patient" {
                lab.push(r.clone());
                ehr.push(r);
            } else if LAB_TYPES.contains(&t.as_str()) {
                lab.push(r);
            } else {
                ehr.push(r);
            }
        }
        people.push(Person {
            file: path.file_name().unwrap().to_string_lossy().to_string(),
            patient_id: patient["id"].as_str().unwrap().to_string(),
            age,
            own,
        });
    }
    (ResourceStore::from_resources(ehr), ResourceStore::from_resources(lab), people)
}

/// Staff's `$everything` holds every resource of the person's bundle once — every type, the
/// Patient once (merged, under the gateway id) although both systems hold it — and every
/// reference in it points at a resource it holds (or at one of its contained resources).
fn whole_and_resolving(person: &Person, gateway_id: &str, staff_view: &[serde_json::Value]) {
    let mut served = BTreeSet::new();
    let mut twice = Vec::new();
    for r in staff_view {
        let t = r["resourceType"].as_str().unwrap();
        if portico::fhir::SUPPORTING_TYPES.contains(&t) {
            continue;
        }
        let id = r["id"].as_str().unwrap();
        let key = if t == "Patient" && id == gateway_id {
            format!("Patient/{}", person.patient_id)
        } else {
            format!("{t}/{}", source_id(id))
        };
        if !served.insert(key.clone()) {
            twice.push(key);
        }
    }
    assert!(twice.is_empty(), "{}: served more than once: {twice:?}", person.file);
    let missing: Vec<&String> = person.own.difference(&served).collect();
    let extra: Vec<&String> = served.difference(&person.own).collect();
    assert!(missing.is_empty() && extra.is_empty(), "{}: missing {missing:?}, not its own {extra:?}", person.file);
    let held: HashSet<String> = staff_view
        .iter()
        .map(|r| format!("{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap()))
        .collect();
    let mut dangling = Vec::new();
    for r in staff_view {
        references(r, &mut |reference| {
            if !reference.starts_with('#') && !held.contains(reference) {
                dangling.push(format!("{}/{} → {reference}", r["resourceType"], r["id"]));
            }
        });
    }
    assert!(dangling.is_empty(), "{}: references that do not resolve: {dangling:?}", person.file);
}

/// Calls `f` with every `reference` string anywhere in `v`.
fn references(v: &serde_json::Value, f: &mut dyn FnMut(&str)) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("reference", serde_json::Value::String(s)) => f(s),
                    ("contained", _) => {}
                    _ => references(x, f),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| references(x, f)),
        _ => {}
    }
}

/// The source id of a gateway id `{source}.{id}`.
fn source_id(gateway_id: &str) -> &str {
    gateway_id.split_once('.').map_or(gateway_id, |(_, id)| id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_minor_consented_service_reaches_a_parent_on_any_path() {
    let (ehr, lab, people) = load();
    let ehr_sim =
        simulate_store(ehr, SimulatorOptions { name: "ehr".into(), page_size: 500, ..Default::default() }).await;
    let lab_sim =
        simulate_store(lab, SimulatorOptions { name: "lab".into(), page_size: 500, ..Default::default() }).await;
    let mut body = rest_source("ehr", "Synthea EHR", ehr_sim.base_url(), "");
    body.push_str(&rest_source("lab", "Synthea lab", lab_sim.base_url(), ""));
    for (i, p) in people.iter().enumerate() {
        body.push_str(&format!(
            "[[server.dev_tokens]]\ntoken = \"synthea-parent-token-{i:03}\"\nviewer = \"proxy:MTH\"\npatient = \"ehr/{}\"\n",
            p.patient_id
        ));
    }
    // Each person is gathered once for the whole check, however slow the machine.
    body.push_str("[aggregate]\ndeadline = \"60s\"\ncache_ttl = \"30m\"\n");
    let gw = Gateway::start(&body).await;
    // One parent account, granted by HIM to every child, for the record pages.
    let parent = register(&gw, "Pat Synthea", "synthea-parent@example.org").await;
    let cases = cases();
    // The labels a parent may not see at each age, from the policy in force (the shipped one).
    let policy = portico::policy::PolicyConfig::load(&root().join("config/policy.toml")).unwrap();
    let consented_at = |age: i32| -> BTreeSet<String> {
        let j = policy.jurisdiction().expect("the shipped policy names its jurisdiction");
        j.consent
            .iter()
            .filter(|c| i64::from(c.from_age) <= i64::from(age))
            .flat_map(|c| policy.minors.services[&c.service].iter().cloned())
            .collect()
    };
    let displays = sensitive_displays();
    // Claims and explanations of benefit are gathered too (issue 13): billing names the
    // services, so they are checked like the clinical items.
    let served: BTreeSet<&str> = [
        "Encounter",
        "Condition",
        "Procedure",
        "MedicationRequest",
        "Observation",
        "DiagnosticReport",
        "CarePlan",
        "CareTeam",
        "Immunization",
        "AllergyIntolerance",
        "Claim",
        "ExplanationOfBenefit",
    ]
    .into();
    // People are checked a few at a time: the gateway serves them concurrently, as it would.
    let ctx = Shared {
        gw: &gw,
        parent: &parent,
        cases: &cases,
        displays: &displays,
        served: &served,
        consented_at: &consented_at,
    };
    let seen: Vec<Seen> = futures::stream::iter(people.iter().enumerate())
        .map(|(i, person)| check_person(&ctx, i, person))
        .buffer_unordered(3)
        .collect()
        .await;
    let checked_withheld: usize = seen.iter().map(|s| s.checked_withheld).sum();
    let children_visits_shown: usize = seen.iter().map(|s| s.children_visits_shown).sum();
    let parents_saw_immunizations: usize = seen.iter().map(|s| s.parents_saw_immunizations).sum();
    assert!(checked_withheld > 300, "the sample's sensitive items were really tried: {checked_withheld}");
    assert!(children_visits_shown > 10, "a child's parent sees the child's visits: {children_visits_shown}");
    assert!(parents_saw_immunizations > 20, "parents still see the unlabelled record: {parents_saw_immunizations}");
    gw.stop().await;
}

/// What the test shares with each person's check.
struct Shared<'a> {
    gw: &'a Gateway,
    parent: &'a Browser,
    cases: &'a HashMap<(String, String), BTreeSet<String>>,
    displays: &'a BTreeSet<(String, String)>,
    served: &'a BTreeSet<&'static str>,
    consented_at: &'a dyn Fn(i32) -> BTreeSet<String>,
}

/// What one person's check saw, summed over the sample at the end.
#[derive(Default)]
struct Seen {
    checked_withheld: usize,
    parents_saw_immunizations: usize,
    children_visits_shown: usize,
}

/// Every path for one person: staff see each case item; the parent's token and pages show none
/// of the ones a parent may not see.
async fn check_person(ctx: &Shared<'_>, i: usize, person: &Person) -> Seen {
    let Shared { gw, parent, cases, displays, served, consented_at } = *ctx;
    let mut seen = Seen::default();
    let token = format!("synthea-parent-token-{i:03}");
    let id = gw.patient_id("ehr", &person.patient_id);
    // Every case item of this person, as the gateway serves it to staff.
    let (staff_view, _) = gw.all_pages(&format!("Patient/{id}/$everything?_count=500")).await;
    whole_and_resolving(person, &id, &staff_view);
    let all_sensitive: Vec<(String, String, &BTreeSet<String>)> = staff_view
        .iter()
        .filter_map(|r| {
            let t = r["resourceType"].as_str()?;
            let key = format!("{t}/{}", source_id(r["id"].as_str()?));
            let categories = cases.get(&(person.file.clone(), key))?;
            Some((t.to_string(), r["id"].as_str().unwrap().to_string(), categories))
        })
        .collect();
    let expected_here =
        cases.keys().filter(|(f, k)| f == &person.file && served.contains(k.split('/').next().unwrap())).count();
    assert_eq!(all_sensitive.len(), expected_here, "{}: staff see every sensitive item", person.file);
    // What this parent may not see: under 12, only the services consented to at that age.
    let consented = consented_at(person.age);
    let sensitive: Vec<(String, String)> = all_sensitive
        .iter()
        .filter(|(_, _, categories)| person.age >= 12 || categories.iter().any(|c| consented.contains(c)))
        .map(|(t, id, _)| (t.clone(), id.clone()))
        .collect();
    let withheld: HashSet<String> = sensitive.iter().map(|(t, id)| format!("{t}/{id}")).collect();

    // $everything.
    let (parent_view, outcomes) = gw.all_pages_with(&format!("Patient/{id}/$everything?_count=500"), &token).await;
    assert!(!outcomes.is_empty(), "the withheld-notice is there");
    let shown = keys(&parent_view);
    let leaked: Vec<&String> = shown.iter().filter(|k| withheld.contains(*k)).collect();
    assert!(leaked.is_empty(), "{} (age {}): $everything shows {leaked:?}", person.file, person.age);
    seen.parents_saw_immunizations += usize::from(shown.iter().any(|k| k.starts_with("Immunization/")));
    if person.age >= 12 {
        assert!(shown.iter().all(|k| !k.starts_with("Encounter/")), "a parent of a teen sees a limited record");
    } else {
        seen.children_visits_shown += usize::from(shown.iter().any(|k| k.starts_with("Encounter/")));
    }

    // Search, per type.
    let types: BTreeSet<&String> = sensitive.iter().map(|(t, _)| t).collect();
    for t in types {
        let (found, _) = gw.all_pages_with(&format!("{t}?patient={id}&_count=500"), &token).await;
        let leaked: Vec<String> = keys(&found).into_iter().filter(|k| withheld.contains(k)).collect();
        assert!(leaked.is_empty(), "{}: search shows {leaked:?}", person.file);
    }
    // Read: every withheld item answers 404 as a made-up id does.
    let (status_unknown, body_unknown) = gw.get_with("Condition/ehr.no-such-id", Some(&token), &[]).await;
    for (t, rid) in &sensitive {
        let (status, body) = gw.get_with(&format!("{t}/{rid}"), Some(&token), &[]).await;
        assert_eq!(status, 404, "{}: read {t}/{rid} answered {status}", person.file);
        assert_eq!(status, status_unknown);
        assert_eq!(body["resourceType"], body_unknown["resourceType"]);
        seen.checked_withheld += 1;
    }
    // The zip download: NDJSON and the readable summary.
    let resp = gw
        .http
        .get(format!("{}/Patient/{id}/$everything?_format=zip", gw.fhir))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut texts = unzip(&resp.bytes().await.unwrap());
    // The record pages, as the parent signed in sees them.
    let link = grant_proxy(gw, "synthea-parent@example.org", &format!("ehr/{}", person.patient_id), "MTH", "").await;
    let pages = parent.every_page(&link).await;
    let given = staff_view[0]["name"][0]["given"][0].as_str().unwrap();
    assert!(pages.contains(given), "{}: the pages are {given}'s record", person.file);
    texts.insert("record pages".to_string(), pages);
    for (name, text) in &texts {
        for (_, rid) in &sensitive {
            assert!(!text.contains(rid.as_str()), "{}: {name} names withheld {rid}", person.file);
        }
        for (category, d) in displays {
            if person.age < 12 && !consented.contains(category) {
                continue;
            }
            assert!(!text.contains(d.as_str()), "{}: {name} says \"{d}\"", person.file);
        }
    }
    seen
}
