//! The simulator's `Patient/{id}/$everything` and `_revinclude=Provenance:target` (off by
//! default, advertised when on) and its per-route call counts, over real HTTP on 127.0.0.1:0
//! with the synthetic store of `super` plus a referenced Practitioner. Never real patient
//! data.

use super::{body, get, ids, next_link, store};
use crate::simulator::{start, RunningSimulator, SimulatorOptions};
use crate::sources::files::ResourceStore;
use serde_json::{json, Value};

/// `super::store()` with a Practitioner that p1's first Observation points at.
async fn sim(options: SimulatorOptions) -> RunningSimulator {
    let mut resources: Vec<Value> = store().types().flat_map(|t| store().of_type(t).to_vec()).collect::<Vec<_>>();
    for r in &mut resources {
        if r["id"] == "o01" {
            r["performer"] = json!([{"reference": "Practitioner/dr1"}]);
        }
    }
    resources.push(json!({"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "Osei"}]}));
    resources.push(json!({"resourceType": "Practitioner", "id": "dr2", "name": [{"family": "Unrelated"}]}));
    start(ResourceStore::from_resources(resources), options, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

fn patient_resource(cs: &Value) -> Value {
    cs["rest"][0]["resource"].as_array().unwrap().iter().find(|r| r["type"] == "Patient").unwrap().clone()
}

/// Every `Type/id` of `first` and the pages after it, and the number of pages.
async fn follow(base: &str, first: &str) -> (Vec<String>, usize) {
    let base_url = url::Url::parse(&format!("{base}/")).unwrap();
    let (mut seen, mut pages, mut url) = (Vec::new(), 0, first.to_string());
    loop {
        let b = body(get(&url).await).await;
        pages += 1;
        for e in b["entry"].as_array().into_iter().flatten() {
            seen.push(format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap(),
                e["resource"]["id"].as_str().unwrap()
            ));
        }
        match next_link(&b) {
            Some(next) => url = base_url.join(&next).unwrap().to_string(),
            None => return (seen, pages),
        }
        assert!(pages < 20, "paging does not end");
    }
}

#[tokio::test]
async fn everything_is_off_unless_offered_and_then_advertised_paged_and_counted() {
    let plain = sim(SimulatorOptions::default()).await;
    let cs = body(get(&format!("{}/metadata", plain.base_url())).await).await;
    assert!(patient_resource(&cs).get("operation").is_none());
    assert!(patient_resource(&cs).get("searchRevInclude").is_none());
    let resp = get(&format!("{}/Patient/p1/$everything", plain.base_url())).await;
    assert_eq!(resp.status(), 404, "a server without $everything");
    plain.stop().await;

    let s =
        sim(SimulatorOptions { everything: true, page_size: 4, relative_next_links: true, ..Default::default() }).await;
    let base = s.base_url();
    let cs = body(get(&format!("{base}/metadata")).await).await;
    let op = &patient_resource(&cs)["operation"][0];
    assert_eq!(op["definition"], "http://hl7.org/fhir/OperationDefinition/Patient-everything");
    assert_eq!(crate::sources::Offer::from_capability_statement(&cs).map(|o| o.everything), Some(true));

    let (seen, pages) = follow(base, &format!("{base}/Patient/p1/$everything")).await;
    let mut want: Vec<String> = ["Patient/p1", "AllergyIntolerance/a1", "Provenance/v1", "Practitioner/dr1"]
        .iter()
        .map(|s| (*s).to_string())
        .chain((1..=7).map(|n| format!("Observation/o{n:02}")))
        .collect();
    want.sort();
    assert_eq!(seen, want, "the patient, its compartment and what it points at, each once, in order");
    assert_eq!(pages, 3, "11 resources in pages of 4");
    let stats = s.stats();
    assert_eq!(stats.calls_to("Patient/$everything"), 3, "every page counts: {:?}", stats.calls);
    assert_eq!(stats.calls_to("metadata"), 1);
    assert!(stats.calls.keys().all(|k| !k.starts_with("search ")), "{:?}", stats.calls);

    // The other patient sees nothing of p1's; unknown patients and parameters are refused.
    let (seen, _) = follow(base, &format!("{base}/Patient/p2/$everything?_count=50")).await;
    assert_eq!(seen, ["AllergyIntolerance/a2", "Observation/o99", "Patient/p2"]);
    assert_eq!(get(&format!("{base}/Patient/nobody/$everything")).await.status(), 404);
    assert_eq!(get(&format!("{base}/Patient/p1/$everything?_since=2020")).await.status(), 400);
    assert_eq!(get(&format!("{base}/Observation/o01/$everything")).await.status(), 404);

    s.controls().set_everything_broken(true);
    let resp = get(&format!("{base}/Patient/p1/$everything")).await;
    assert_eq!(resp.status(), 500);
    assert_eq!(body(resp).await["resourceType"], "OperationOutcome");
    s.controls().set_everything_broken(false);
    assert_eq!(get(&format!("{base}/Patient/p1/$everything")).await.status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn revinclude_brings_provenances_of_each_page_when_offered() {
    let plain = sim(SimulatorOptions::default()).await;
    let resp = get(&format!("{}/Observation?patient=p1&_revinclude=Provenance:target", plain.base_url())).await;
    assert_eq!(resp.status(), 400, "not offered, so refused like any unknown parameter");
    plain.stop().await;

    let s = sim(SimulatorOptions { revinclude_provenance: true, page_size: 2, ..Default::default() }).await;
    let base = s.base_url();
    let cs = body(get(&format!("{base}/metadata")).await).await;
    let obs = cs["rest"][0]["resource"].as_array().unwrap().iter().find(|r| r["type"] == "Observation").unwrap();
    assert_eq!(obs["searchRevInclude"], json!(["Provenance:target"]));
    // o03 is on the second page: its Provenance comes with that page, as an include.
    let first = body(get(&format!("{base}/Observation?patient=p1&_revinclude=Provenance:target")).await).await;
    assert_eq!(ids(&first), ["o01", "o02"]);
    let second = body(get(&next_link(&first).unwrap()).await).await;
    assert_eq!(ids(&second), ["o03", "o04", "v1"]);
    assert_eq!(second["entry"][2]["search"]["mode"], "include");
    assert_eq!(second["total"], 7, "the total counts matches only");
    let without = body(get(&format!("{base}/Observation?_id=o03")).await).await;
    assert_eq!(ids(&without), ["o03"]);
    let bad = get(&format!("{base}/Observation?patient=p1&_revinclude=AuditEvent:entity")).await;
    assert_eq!(bad.status(), 400);
    let iterate = get(&format!("{base}/Observation?patient=p1&_revinclude:iterate=Provenance:target")).await;
    assert_eq!(iterate.status(), 400, "only the plain Provenance:target is answered");
    assert_eq!(s.stats().calls_to("search Observation"), 5, "two pages, the _id search, the refused two");
    s.stop().await;
}
