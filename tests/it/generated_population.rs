//! A generated population served by the real gateway (files sources): the patient index
//! links exactly the people the generator meant (records varied by nickname, maiden name,
//! old address or missing phone still link; namesakes and same-name-same-birth-date
//! strangers do not), the labeller labels every sensitive item the manifest names and
//! leaves ordinary items unlabelled, and an adolescent's parent sees none of the
//! adolescent's sensitive items but does see an ordinary immunization.

use crate::common::{link, Gateway};
use portico::generate::{generate, GenerateOptions};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const PROXY_TOKEN: &str = "test-generated-adolescent-parent";

/// Sensitivity labels (v3 ActCode) and the confidentiality codes that reveal a fact.
const REVEALING: &[&str] = &[
    "HIV",
    "ETH",
    "MH",
    "PREGNANT",
    "SEX",
    "STD",
    "SDV",
    "GDIS",
    "42CFRPart2",
    "GENDER",
    "PSY",
    "SUD",
    "BH",
    "R",
    "V",
];

fn ndjson(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn records(person: &Value) -> BTreeSet<(String, String)> {
    person["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["source"].as_str().unwrap().to_string(), r["id"].as_str().unwrap().to_string()))
        .collect()
}

fn security_codes(r: &Value) -> Vec<String> {
    r["meta"]["security"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["code"].as_str().map(String::from))
        .collect()
}

#[tokio::test]
async fn the_gateway_links_and_labels_a_generated_population_as_its_manifest_says() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("population");
    let manifest = generate(&GenerateOptions { patients: 80, sources: 5, seed: 11, out: dir.clone() }).unwrap();
    portico::config::Config::load(&dir.join(&manifest.config_file)).expect("the generated portico.toml loads");
    let people = ndjson(&dir.join(&manifest.people_file));
    let expectations = ndjson(&dir.join(&manifest.expected_labels_file));
    let part2: BTreeSet<&str> = manifest.sources.iter().filter(|s| s.part2).map(|s| s.name.as_str()).collect();

    // An adolescent with a parent on record and sensitive items outside the Part 2 program.
    let labelled_of = |key: &str| -> Vec<&Value> {
        expectations
            .iter()
            .filter(|e| e["person"] == key && e["label"].is_string() && !part2.contains(e["source"].as_str().unwrap()))
            .collect()
    };
    let teen = people
        .iter()
        .find(|p| {
            let age = p["age"].as_i64().unwrap();
            (12..18).contains(&age)
                && !p["guardians"].as_array().unwrap().is_empty()
                && !labelled_of(p["person"].as_str().unwrap()).is_empty()
        })
        .expect("seed 11 draws an adolescent with confidential content");
    let teen_key = teen["person"].as_str().unwrap();
    let teen_record = &teen["records"][0];
    let proxy = format!(
        "[[server.dev_tokens]]\ntoken = \"{PROXY_TOKEN}\"\nviewer = \"proxy:{}\"\npatient = \"{}/{}\"\n\n",
        teen["guardians"][0].as_str().unwrap(),
        teen_record["source"].as_str().unwrap(),
        teen_record["id"].as_str().unwrap()
    );
    let gw = Gateway::start(&format!("{proxy}{}", manifest.file_sources_toml(&dir))).await;

    // 1. Exactly the intended people, each record in exactly one link.
    let want: BTreeSet<BTreeSet<(String, String)>> = people.iter().map(records).collect();
    let got: BTreeSet<BTreeSet<(String, String)>> = gw
        .index
        .links()
        .await
        .unwrap()
        .iter()
        .map(|l| l.members.iter().map(|m| (m.source.clone(), m.source_patient_id.clone())).collect())
        .collect();
    assert_eq!(want.len(), 80);
    let missing: Vec<_> = want.difference(&got).collect();
    let extra: Vec<_> = got.difference(&want).collect();
    assert!(missing.is_empty() && extra.is_empty(), "not linked as generated: missing {missing:?}, extra {extra:?}");
    assert!(people.iter().any(|p| p["records"].as_array().unwrap().len() >= 3), "some people are in three sources");
    for variation in ["nickname", "old-address", "no-phone"] {
        assert!(
            people
                .iter()
                .flat_map(|p| p["records"].as_array().unwrap())
                .any(|r| r["link"] == "demographics"
                    && r["variations"].as_array().unwrap().iter().any(|v| v == variation)),
            "a record linked by demographics despite {variation}"
        );
    }

    // 2. Look-alikes: namesakes are separate people; same name and birth date strangers are
    // listed as possible matches (only they), never linked.
    let by_key: BTreeMap<&str, &Value> = people.iter().map(|p| (p["person"].as_str().unwrap(), p)).collect();
    let gid = |source: &str, id: &str| gw.patient_id(source, id);
    let namesakes: Vec<_> = people.iter().filter(|p| p["namesake_of"].is_string()).collect();
    assert!(!namesakes.is_empty());
    for p in &namesakes {
        let other = by_key[p["namesake_of"].as_str().unwrap()];
        let (a, b) = (&p["records"][0], &other["records"][0]);
        assert_ne!(
            gid(a["source"].as_str().unwrap(), a["id"].as_str().unwrap()),
            gid(b["source"].as_str().unwrap(), b["id"].as_str().unwrap())
        );
    }
    let intended: Vec<(BTreeSet<(String, String)>, BTreeSet<(String, String)>)> = people
        .iter()
        .filter(|p| p["possible_match_of"].is_string())
        .map(|p| (records(p), records(by_key[p["possible_match_of"].as_str().unwrap()])))
        .collect();
    assert!(!intended.is_empty());
    let possible = gw.index.possible_matches().await.unwrap();
    for m in &possible {
        let ok = intended
            .iter()
            .any(|(x, y)| (x.contains(&m.a) && y.contains(&m.b)) || (x.contains(&m.b) && y.contains(&m.a)));
        assert!(ok, "an unintended possible match: {m:?}");
    }
    for (x, y) in &intended {
        assert!(
            possible.iter().any(|m| (x.contains(&m.a) && y.contains(&m.b)) || (x.contains(&m.b) && y.contains(&m.a))),
            "an intended possible match is not listed: {x:?} ~ {y:?}"
        );
    }

    // 3. The labeller: every marked item carries its label (staff see labels); ordinary
    // items carry none that reveals a fact.
    let (mut labelled, mut ordinary) = (0, 0);
    for e in &expectations {
        let (t, id) = e["resource"].as_str().unwrap().split_once('/').unwrap();
        let path = format!("{t}/{}.{id}", e["source"].as_str().unwrap());
        let (status, r) = gw.get(&path).await;
        assert_eq!(status, 200, "{path}: {r}");
        let codes = security_codes(&r);
        match e["label"].as_str() {
            Some(label) => {
                labelled += 1;
                assert!(codes.iter().any(|c| c == label), "{path} ({}) must carry {label}: {codes:?}", e["what"]);
            }
            None => {
                ordinary += 1;
                assert!(
                    codes.iter().all(|c| !REVEALING.contains(&c.as_str())),
                    "{path} ({}) is ordinary but carries {codes:?}",
                    e["what"]
                );
            }
        }
    }
    assert_eq!(labelled, manifest.expected.labelled.values().sum::<u64>());
    assert_eq!(ordinary, manifest.expected.unlabelled);

    // 4. The withheld side: the adolescent's parent gets none of the sensitive items, but
    // does get an ordinary immunization.
    let teen_gid = gid(teen_record["source"].as_str().unwrap(), teen_record["id"].as_str().unwrap());
    let mut shown = BTreeSet::new();
    let mut next = Some(format!("Patient/{teen_gid}/$everything?_count=100"));
    while let Some(page) = next.take() {
        let (status, bundle) = gw.get_with(&page, Some(PROXY_TOKEN), &[]).await;
        assert_eq!(status, 200, "{bundle}");
        for e in bundle["entry"].as_array().into_iter().flatten() {
            let r = &e["resource"];
            shown.insert(format!("{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap()));
            let revealing = security_codes(r).into_iter().filter(|c| REVEALING.contains(&c.as_str()) && c != "R");
            assert_eq!(revealing.count(), 0, "a proxy never receives a label that reveals a fact: {r}");
        }
        next = link(&bundle, "next");
    }
    assert!(shown.contains(&format!("Patient/{teen_gid}")), "the parent sees the record: {shown:?}");
    let gateway_key = |e: &Value| {
        let (t, id) = e["resource"].as_str().unwrap().split_once('/').unwrap();
        format!("{t}/{}.{id}", e["source"].as_str().unwrap())
    };
    for e in labelled_of(teen_key) {
        assert!(!shown.contains(&gateway_key(e)), "the parent sees {} ({})", gateway_key(e), e["what"]);
    }
    let immunization = expectations
        .iter()
        .find(|e| {
            e["person"] == teen_key
                && e["label"].is_null()
                && e["resource"].as_str().unwrap().starts_with("Immunization/")
        })
        .expect("the adolescent has an ordinary immunization");
    assert!(shown.contains(&gateway_key(immunization)), "the parent sees {}: {shown:?}", gateway_key(immunization));
}
