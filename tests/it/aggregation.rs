//! One person's record gathered from several REST sources: everything each source holds
//! arrives once, duplicates across systems collapse with both provenances, every reference
//! resolves inside the record or to the gateway, and source JSON passes through untouched.

use crate::common::*;
use portico::simulator::{RunningSimulator, SimulatorOptions};
use portico::sources::files::ResourceStore;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashSet};

struct Demo {
    _sims: Vec<RunningSimulator>,
    gw: Gateway,
}

async fn demo() -> Demo {
    let names = ["ehr", "lab", "imaging", "behavioral"];
    let mut sims = Vec::new();
    for n in names {
        // The lab pages small and relative, as some lab systems do.
        let options = if n == "lab" {
            SimulatorOptions { page_size: 3, relative_next_links: true, ..Default::default() }
        } else {
            SimulatorOptions::default()
        };
        sims.push(simulate(n, options).await);
    }
    let pairs: Vec<(&str, &RunningSimulator)> = names.iter().copied().zip(sims.iter()).collect();
    let gw = Gateway::start(&fixture_sources(&pairs)).await;
    Demo { _sims: sims, gw }
}

async fn everything(gw: &Gateway, patient: &str) -> Vec<Value> {
    let (resources, outcomes) = gw.all_pages(&format!("Patient/{patient}/$everything?_count=500")).await;
    assert!(outcomes.is_empty(), "complete record expected: {outcomes:?}");
    resources
}

#[tokio::test]
async fn a_person_in_three_systems_gets_everything_each_system_holds_exactly_once() {
    let d = demo().await;
    let link =
        d.gw.index
            .links()
            .await
            .unwrap()
            .into_iter()
            .find(|l| l.members.iter().map(|m| &m.source).collect::<BTreeSet<_>>().len() >= 3)
            .expect("someone is in three systems");
    let record = everything(&d.gw, &link.gateway_id).await;
    let tags: BTreeSet<String> = record.iter().flat_map(source_tags).collect();
    let sources: BTreeSet<String> = link.members.iter().map(|m| m.source.clone()).collect();
    assert!(sources.is_subset(&tags), "{sources:?} ⊄ {tags:?}");
    assert_eq!(record.iter().filter(|r| r["resourceType"] == "Patient").count(), 1, "one Patient for the person");
    assert_eq!(record[0]["id"], link.gateway_id.as_str());

    // Everything each member source holds in the patient's compartment is there, once.
    for m in &link.members {
        let store = fixture_store(&m.source);
        for t in portico::fhir::PATIENT_COMPARTMENT_TYPES {
            let expected = store.compartment(&m.source_patient_id, t).len();
            let got = record.iter().filter(|r| r["resourceType"] == *t && source_tags(r).contains(&m.source)).count();
            assert_eq!(got, expected, "{}/{} {t}", m.source, m.source_patient_id);
        }
    }
    let keys = keys(&record);
    assert_eq!(keys.len(), keys.iter().collect::<HashSet<_>>().len(), "no resource twice");
}

#[tokio::test]
async fn results_held_by_two_systems_appear_once_with_both_provenances() {
    let d = demo().await;
    let mut merged = Vec::new();
    for link in d.gw.index.links().await.unwrap() {
        for r in everything(&d.gw, &link.gateway_id).await {
            // Shared Organizations and Practitioners merge too, but live in many records;
            // the clinical facts are what this test follows.
            let clinical = portico::fhir::PATIENT_COMPARTMENT_TYPES.contains(&r["resourceType"].as_str().unwrap());
            if clinical && source_tags(&r).len() > 1 {
                merged.push(r);
            }
        }
    }
    assert!(merged.len() >= 2, "the fixtures hold results in both the lab and the EHR: {}", merged.len());
    let ehr = fixture_store("ehr");
    let mut by_identifier = 0;
    let mut by_content = 0;
    for r in &merged {
        let tags = source_tags(r);
        assert_eq!(tags.len(), 2, "{tags:?}");
        assert_eq!(tags[0], "ehr", "the EHR (listed first) wins and the other provenance is kept");
        let other = fixture_store(&tags[1]);
        let ehr_id = r["id"].as_str().unwrap().strip_prefix("ehr.").expect("the EHR copy is kept");
        let t = r["resourceType"].as_str().unwrap();
        let original = ehr.get(t, ehr_id).unwrap();
        let identifiers = |x: &Value| -> Vec<(Value, Value)> {
            x["identifier"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| (i["system"].clone(), i["value"].clone()))
                .collect()
        };
        let ours = identifiers(original);
        let copy = other.of_type(t).iter().find(|o| identifiers(o).iter().any(|i| ours.contains(i)));
        let copy = match copy {
            Some(c) => {
                by_identifier += 1;
                c
            }
            None => {
                by_content += 1;
                other
                    .of_type(t)
                    .iter()
                    .find(|o| same_fact(o, original))
                    .unwrap_or_else(|| panic!("no copy with the same code, time and value for {r}"))
            }
        };
        // The other copy's gateway id still resolves, to the kept resource.
        let (status, read) = d.gw.get(&format!("{t}/{}.{}", tags[1], copy["id"].as_str().unwrap())).await;
        assert_eq!(status, 200);
        assert_eq!(read["id"], r["id"]);
    }
    assert!(by_identifier >= 1 && by_content >= 1, "identifier: {by_identifier}, content: {by_content}");
}

#[tokio::test]
async fn every_reference_resolves_within_the_record_or_to_the_gateway() {
    let d = demo().await;
    for link in d.gw.index.links().await.unwrap() {
        let record = everything(&d.gw, &link.gateway_id).await;
        let present: HashSet<String> = keys(&record).into_iter().collect();
        for r in &record {
            let mut refs = Vec::new();
            collect_references(r, &mut refs);
            for reference in refs {
                if reference.starts_with('#') {
                    continue;
                }
                let relative = reference.strip_prefix(&format!("{}/", d.gw.fhir)).unwrap_or(&reference);
                assert!(!relative.contains("://"), "{reference} points outside the gateway");
                assert!(
                    present.contains(relative),
                    "{reference} in {}/{} does not resolve",
                    r["resourceType"],
                    r["id"]
                );
            }
            assert_eq!(
                r["meta"]["source"].as_str().unwrap().split(':').take(3).collect::<Vec<_>>(),
                ["urn", "portico", "source"]
            );
        }
    }
}

#[tokio::test]
async fn gateway_paging_through_a_merged_record_is_complete_and_stable() {
    let d = demo().await;
    let biggest = {
        let mut best = (0, String::new());
        for l in d.gw.index.links().await.unwrap() {
            let n = everything(&d.gw, &l.gateway_id).await.len();
            if n > best.0 {
                best = (n, l.gateway_id);
            }
        }
        best.1
    };
    let whole = keys(&everything(&d.gw, &biggest).await);
    let (paged, _) = d.gw.all_pages(&format!("Patient/{biggest}/$everything?_count=7")).await;
    assert_eq!(keys(&paged), whole, "pages of 7 give the same resources in the same order");
    let (status, first) = d.gw.get(&format!("Patient/{biggest}/$everything?_count=7")).await;
    assert_eq!(status, 200);
    assert_eq!(first["total"], whole.len());
    assert_eq!(first["entry"].as_array().unwrap().len(), 7);
}

#[tokio::test]
async fn unknown_elements_and_extensions_pass_through_untouched() {
    let observation = json!({
        "resourceType": "Observation",
        "id": "quirky-1",
        "meta": {"versionId": "7", "lastUpdated": "2025-11-02T10:00:00Z"},
        "extension": [{"url": "https://vendor.example/fhir/StructureDefinition/never-heard-of-it", "valueCodeableConcept": {"text": "kept"}}],
        "modifierExtension": [{"url": "https://vendor.example/fhir/StructureDefinition/mod", "valueBoolean": false}],
        "vendorNonStandardElement": {"nested": [1, "two", {"three": null}], "flag": true},
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "Heart rate"},
        "subject": {"reference": "Patient/q1"},
        "effectiveDateTime": "2025-11-02T09:30:00-08:00",
        "valueQuantity": {"value": 72.0, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
        "_status": {"extension": [{"url": "https://vendor.example/primitive-ext", "valueString": "on a primitive"}]}
    });
    let patient = json!({"resourceType": "Patient", "id": "q1", "birthDate": "1966-06-06", "name": [{"family": "Quirk", "given": ["Quentin"]}]});
    let sim =
        simulate_store(ResourceStore::from_resources(vec![patient, observation.clone()]), SimulatorOptions::default())
            .await;
    let gw = Gateway::start(&rest_source("vendor", "Vendor System", sim.base_url(), "")).await;
    let pid = gw.patient_id("vendor", "q1");
    let (status, got) = gw.get("Observation/vendor.quirky-1").await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["subject"]["reference"], format!("Patient/{pid}"));
    assert_eq!(got["meta"]["versionId"], "7");
    assert_eq!(got["meta"]["lastUpdated"], "2025-11-02T10:00:00Z");
    assert_eq!(source_tags(&got), vec!["vendor"]);
    let strip = |v: &Value| {
        let mut v = v.clone();
        for k in ["id", "meta", "subject"] {
            v.as_object_mut().unwrap().remove(k);
        }
        serde_json::to_string(&v).unwrap()
    };
    assert_eq!(strip(&got), strip(&observation), "byte-for-byte apart from the documented rewrites");
}

/// Same code, same clinically relevant time and same value: the content rule of the merge.
fn same_fact(a: &Value, b: &Value) -> bool {
    let when = |x: &Value| {
        [
            "effectiveDateTime",
            "effectivePeriod",
            "effectiveInstant",
            "occurrenceDateTime",
            "performedDateTime",
            "performedPeriod",
        ]
        .iter()
        .map(|k| x[*k].clone())
        .find(|v| !v.is_null())
    };
    let value = |x: &Value| x.as_object().unwrap().iter().find(|(k, _)| k.starts_with("value")).map(|(_, v)| v.clone());
    let code = |x: &Value| {
        let c = if x["code"].is_null() { &x["vaccineCode"] } else { &x["code"] };
        c["coding"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|k| format!("{}|{}", k["system"], k["code"]))
            .collect::<BTreeSet<_>>()
    };
    !code(a).is_disjoint(&code(b)) && when(a).is_some() && when(a) == when(b) && value(a) == value(b)
}

fn collect_references(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match x {
                    Value::String(s) if k == "reference" => out.push(s.clone()),
                    _ => collect_references(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_references(x, out)),
        _ => {}
    }
}
