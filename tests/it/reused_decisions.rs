//! Decisions are reused between requests (`read::decisions`), and reuse never shows anyone
//! more, or longer, than a fresh decision would: a hold ends on the second it ends (not when
//! a kept decision expires), a parent and her teen reading the same record one after the
//! other each get their own view.

use crate::common::*;
use chrono::{SecondsFormat, Utc};
use portico::simulator::SimulatorOptions;
use portico::sources::files::ResourceStore;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// How long the test's hold rule keeps a critical value back.
const HOLD_SECS: i64 = 6;

fn patient(id: &str, birth: &str) -> Value {
    json!({"resourceType": "Patient", "id": id, "birthDate": birth, "gender": "female",
           "identifier": [{"system": "urn:test:mrn", "value": format!("MRN-{id}")}],
           "name": [{"family": "Decided", "given": [id]}]})
}

fn critical_value(id: &str, patient: &str, issued: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final",
           "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
           "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3", "display": "Potassium"}]},
           "subject": {"reference": format!("Patient/{patient}")},
           "effectiveDateTime": issued, "issued": issued,
           "valueQuantity": {"value": 6.9, "unit": "mmol/L"},
           "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "HH"}]}]})
}

/// The shipped policy with one hold rule: critical values wait `HOLD_SECS` seconds.
fn policy_with_short_hold(dir: &std::path::Path) -> std::path::PathBuf {
    let config = root().join("config");
    let mut text = std::fs::read_to_string(config.join("policy.toml")).unwrap();
    let labels = format!("labels = {:?}", config.join("labels.toml").display().to_string());
    text = text.replacen("labels = \"labels.toml\"", &labels, 1);
    assert_eq!(text.matches("\nrules = []").count(), 1);
    let rule = format!(
        "\nrules = [{{ id = \"critical-values\", description = \"test\", interpretations = [\"HH\"], max = \"{HOLD_SECS}s\" }}]"
    );
    text = text.replacen("\nrules = []", &rule, 1);
    let path = dir.join("policy.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_ends_on_time_although_the_decision_was_kept() {
    let dir = tempfile::tempdir().unwrap();
    // Whole seconds: the value says when it was issued to the second.
    let issued = chrono::DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    let store = ResourceStore::from_resources([
        patient("p1", "1980-05-05"),
        critical_value("k1", "p1", &issued.to_rfc3339_opts(SecondsFormat::Secs, true)),
    ]);
    let sim = simulate_store(store, SimulatorOptions { name: "lab".into(), ..Default::default() }).await;
    let mut body = rest_source("lab", "Test lab", sim.base_url(), "");
    body += &format!("[policy]\nfile = {:?}\n", policy_with_short_hold(dir.path()).display().to_string());
    body += "[[server.dev_tokens]]\ntoken = \"decided-patient-token\"\nviewer = \"patient\"\npatient = \"lab/p1\"\n";
    let gw = Gateway::start(&body).await;
    let me = "decided-patient-token";
    let id = gw.patient_id("lab", "p1");
    let read = "Observation/lab.k1".to_string();
    let everything = format!("Patient/{id}/$everything");
    let shown = |bundle: &Value| bundle["entry"].as_array().unwrap().iter().any(|e| e["resource"]["id"] == "lab.k1");

    // Held: staff see it, the patient does not — asked several times, so the decision is kept.
    assert_eq!(gw.get_with(&read, Some(TOKEN), &[]).await.0, 200, "staff see the held value");
    for _ in 0..3 {
        assert_eq!(gw.get_with(&read, Some(me), &[]).await.0, 404, "held from the patient");
        assert!(!shown(&gw.get_with(&everything, Some(me), &[]).await.1), "held from the patient's $everything");
    }
    // The same request, again and again until the hold ends: the first answer after the end
    // shows it (no kept decision outlives the hold).
    let ends = issued + chrono::Duration::seconds(HOLD_SECS);
    let started = Instant::now();
    loop {
        let before = Utc::now();
        let (status, _) = gw.get_with(&read, Some(me), &[]).await;
        if status == 200 {
            assert!(Utc::now() >= ends, "shown before the hold ended");
            break;
        }
        assert_eq!(status, 404);
        assert!(before < ends + chrono::Duration::seconds(2), "still held two seconds after the hold ended");
        assert!(started.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(shown(&gw.get_with(&everything, Some(me), &[]).await.1), "and in $everything");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_viewer_gets_their_own_decision() {
    let gw = Gateway::start(&format!(
        "{}[[server.dev_tokens]]\ntoken = \"maya-mother-token\"\nviewer = \"proxy:MTH\"\npatient = \"ehr/pt-10007\"\n\
         [[server.dev_tokens]]\ntoken = \"maya-self-token-0\"\nviewer = \"patient\"\npatient = \"ehr/pt-10007\"\n",
        fixture_file_sources()
    ))
    .await;
    let maya = gw.patient_id("ehr", "pt-10007");
    let ids = |bundle: &Value| -> Vec<String> {
        bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["resource"]["id"].as_str().map(String::from))
            .collect()
    };
    let path = format!("Patient/{maya}/$everything?_count=500");
    let teen_first = ids(&gw.get_with(&path, Some("maya-self-token-0"), &[]).await.1);
    let mother = ids(&gw.get_with(&path, Some("maya-mother-token"), &[]).await.1);
    let teen_again = ids(&gw.get_with(&path, Some("maya-self-token-0"), &[]).await.1);
    let mother_again = ids(&gw.get_with(&path, Some("maya-mother-token"), &[]).await.1);
    assert_eq!(teen_first, teen_again, "the teen's view, decided once or reused");
    assert_eq!(mother, mother_again, "the mother's view, decided once or reused");
    let confidential: Vec<&String> = teen_first.iter().filter(|id| !mother.contains(id)).collect();
    assert!(confidential.len() > 5, "the teen sees her confidential items, her mother does not: {confidential:?}");
    assert!(mother.iter().all(|id| teen_first.contains(id)), "the mother sees nothing the teen does not");
    // A confidential read by id, right after the teen's own: still 404 for the mother.
    for id in confidential.iter().filter(|id| id.starts_with("ehr.cond") || id.starts_with("ehr.doc")).take(3) {
        let t = if id.starts_with("ehr.cond") { "Condition" } else { "DocumentReference" };
        assert_eq!(gw.get_with(&format!("{t}/{id}"), Some("maya-self-token-0"), &[]).await.0, 200);
        assert_eq!(gw.get_with(&format!("{t}/{id}"), Some("maya-mother-token"), &[]).await.0, 404, "{t}/{id}");
    }
    gw.stop().await;
}

/// The body exactly as it went out (a warm page is sent in pieces: with its length all the
/// same, not chunked).
async fn raw(gw: &Gateway, path: &str, token: &str) -> String {
    let resp = gw.http.get(format!("{}/{path}", gw.fhir)).bearer_auth(token).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{path}");
    let length = resp.headers().get("content-length").map(|v| v.to_str().unwrap().parse::<usize>().unwrap());
    assert!(resp.headers().get("transfer-encoding").is_none(), "{path}");
    let body = resp.text().await.unwrap();
    assert_eq!(length, Some(body.len()), "{path}: Content-Length");
    body
}

/// A page as a value, its outcome entry's `fullUrl` (a new `urn:uuid` each time) left out.
fn page_of(body: &str) -> Value {
    let mut page: Value = serde_json::from_str(body).unwrap();
    for e in page["entry"].as_array_mut().unwrap() {
        if e["search"]["mode"] == "outcome" {
            e.as_object_mut().unwrap().remove("fullUrl");
        }
    }
    page
}

fn entry_ids(page: &Value) -> Vec<String> {
    page["entry"].as_array().unwrap().iter().filter_map(|e| e["resource"]["id"].as_str().map(String::from)).collect()
}

/// Warm pages (assembled from what was rendered for a kept decision) are each viewer's own:
/// the teen Maya and her mother ask for the same pages over and over, interleaved; each
/// warm page is the page a fresh decision gave, and no byte of the mother's holds an item
/// withheld from her. A release is seen by the very next request of both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_pages_are_each_viewers_own_and_a_release_is_seen_at_once() {
    let dir = tempfile::tempdir().unwrap();
    // Maya's EHR, served by a simulator, with one critical value issued now (held an hour).
    let ehr = fixture_store("ehr");
    let mut resources: Vec<Value> = ehr.types().flat_map(|t| ehr.of_type(t).to_vec()).collect();
    let issued = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    resources.push(critical_value("k-maya", "pt-10007", &issued));
    let sim = simulate_store(
        ResourceStore::from_resources(resources),
        SimulatorOptions { name: "ehr".into(), ..Default::default() },
    )
    .await;
    let policy = policy_with_short_hold(dir.path());
    let text = std::fs::read_to_string(&policy).unwrap().replace(&format!("max = \"{HOLD_SECS}s\""), "max = \"1h\"");
    std::fs::write(&policy, text).unwrap();
    let mut body = rest_source("ehr", &display_of("ehr"), sim.base_url(), "");
    for s in ["lab", "imaging", "behavioral"] {
        let anchor = fixture_anchor();
        body += &format!(
            "[[sources]]\nname = {s:?}\ndisplay = {:?}\nkind = \"files\"\npath = {:?}\nshift_dates_from = \"{anchor}\"\n",
            display_of(s),
            fixtures(s).display().to_string()
        );
    }
    body += &format!("[policy]\nfile = {:?}\n", policy.display().to_string());
    body +=
        "[[server.dev_tokens]]\ntoken = \"warm-mother-token\"\nviewer = \"proxy:MTH\"\npatient = \"ehr/pt-10007\"\n\
             [[server.dev_tokens]]\ntoken = \"warm-teen-token-0\"\nviewer = \"patient\"\npatient = \"ehr/pt-10007\"\n";
    let gw = Gateway::start(&body).await;
    let maya = gw.patient_id("ehr", "pt-10007");
    let paths = [
        format!("Patient/{maya}/$everything?_count=500"),
        format!("Patient/{maya}/$everything?_count=4"),
        format!("Patient/{maya}/$everything?_count=4&_type=Condition,Observation"),
        format!("Condition?patient={maya}"),
        format!("Observation?patient={maya}&_count=3"),
        format!("Condition?patient={maya}&_summary=true"),
    ];
    let (teen, mother) = ("warm-teen-token-0", "warm-mother-token");
    let mut first: Vec<(String, Value)> = Vec::new();
    let mut second: Vec<String> = Vec::new();
    for round in 0..3 {
        for (i, path) in paths.iter().enumerate() {
            for who in [teen, mother] {
                let body = raw(&gw, path, who).await;
                let page = page_of(&body);
                let at = i * 2 + usize::from(who == mother);
                if round == 0 {
                    first.push((who.to_string(), page));
                } else {
                    assert_eq!(page, first[at].1, "{who} {path}: a warm page is the page a fresh decision gave");
                }
                match round {
                    1 => second.push(body),
                    // A warm `$everything` page of matches is the answer kept with the
                    // decision's page, sent again byte for byte (its outcome's urn:uuid too).
                    2 if path.contains("$everything") && first[at].1["total"] != 0 => {
                        assert_eq!(body, second[at], "{who} {path}");
                    }
                    _ => {}
                }
            }
        }
    }
    assert!(second.iter().all(|b| b.contains("\"mode\":\"outcome\"")), "every page carries its warnings");
    let everything = |who: &str| entry_ids(&first.iter().find(|(w, _)| w == who).unwrap().1);
    let (teen_ids, mother_ids) = (everything(teen), everything(mother));
    let withheld: Vec<&String> = teen_ids.iter().filter(|id| !mother_ids.contains(id)).collect();
    assert!(withheld.len() > 5, "the teen's confidential items are withheld from her mother: {withheld:?}");
    assert!(!teen_ids.contains(&"ehr.k-maya".to_string()), "the critical value is held");
    // Warm, and byte by byte: nothing withheld from the mother is in any page of hers.
    for path in &paths {
        let (mine, hers) = (raw(&gw, path, teen).await, raw(&gw, path, mother).await);
        for id in &withheld {
            assert!(!hers.contains(&format!("\"id\":\"{id}\"")), "{path}: {id} in the mother's page");
        }
        assert_ne!(page_of(&mine), page_of(&hers), "{path}: the teen's page is not her mother's");
    }
    // Reads by id, warm (sent as written for the reader's kept decision): each is the
    // resource her own `$everything` carries, byte for byte the same JSON; what is withheld
    // from the mother stays 404 for her right after the teen's read of it, and `_elements`
    // still narrows a warm read.
    let teen_page = &first.iter().find(|(w, _)| w == teen).unwrap().1;
    let resource_of = |id: &str| {
        teen_page["entry"].as_array().unwrap().iter().find(|e| e["resource"]["id"] == id).unwrap()["resource"].clone()
    };
    for id in withheld.iter().take(4) {
        let t = resource_of(id)["resourceType"].as_str().unwrap().to_string();
        for _ in 0..2 {
            let body = raw(&gw, &format!("{t}/{id}"), teen).await;
            assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), resource_of(id), "{t}/{id}");
            assert_eq!(gw.get_with(&format!("{t}/{id}"), Some(mother), &[]).await.0, 404, "{t}/{id}");
        }
        let (status, narrowed) = gw.get_with(&format!("{t}/{id}?_elements=id"), Some(teen), &[]).await;
        assert_eq!(status, 200);
        assert!(narrowed["meta"]["tag"].to_string().contains("SUBSETTED"), "{narrowed}");
        assert_eq!(narrowed["id"], id.as_str());
    }
    let held = "Observation/ehr.k-maya";
    assert_eq!(gw.get_with(held, Some(teen), &[]).await.0, 404, "held: not readable by id either");

    // HIM releases the held value: the teen's very next page shows it; her mother's (a
    // parent of an adolescent sees no results) is the page she had, decided anew.
    let released = gw
        .http
        .post(format!("{}/admin/holds/release", gw.origin))
        .bearer_auth(TOKEN)
        .json(&json!({"patient": maya, "resource": "Observation/ehr.k-maya", "by": "Dr. Test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(released.status().as_u16(), 200);
    let teen_now = page_of(&raw(&gw, &paths[0], teen).await);
    assert!(entry_ids(&teen_now).contains(&"ehr.k-maya".to_string()), "the teen sees the released value");
    assert_eq!(gw.get_with(held, Some(teen), &[]).await.0, 200, "and reads it by id at once");
    assert_eq!(gw.get_with(held, Some(mother), &[]).await.0, 404);
    assert_eq!(entry_ids(&teen_now).len(), teen_ids.len() + 1);
    let hers = raw(&gw, &paths[0], mother).await;
    assert_eq!(page_of(&hers), first[1].1, "the mother's page after the release");
    assert!(!hers.contains("ehr.k-maya") && withheld.iter().all(|id| !hers.contains(&format!("\"id\":\"{id}\""))));
    gw.stop().await;
}

/// A decision kept for reads by id renders only the resource read, and sends it again as
/// written while it is the last one read: the same bytes either way (the attachment's URL
/// made the gateway's), another resource read in between or not, and the resource
/// `$everything` (whose decision renders the whole record) carries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_read_by_id_sends_the_bytes_later_reads_send() {
    let note = json!({"resourceType": "DocumentReference", "id": "d1", "status": "current",
        "subject": {"reference": "Patient/p1"},
        "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}]},
        "content": [{"attachment": {"contentType": "text/plain", "url": "Binary/b1", "title": "Visit note"}}]});
    let binary = json!({"resourceType": "Binary", "id": "b1", "contentType": "text/plain", "data": "aGVsbG8="});
    let store = ResourceStore::from_resources([patient("p1", "1980-05-05"), note, binary]);
    let sim = simulate_store(store, SimulatorOptions { name: "ehr".into(), ..Default::default() }).await;
    let mut body = rest_source("ehr", "Test EHR", sim.base_url(), "");
    body += "[[server.dev_tokens]]\ntoken = \"decided-patient-token\"\nviewer = \"patient\"\npatient = \"ehr/p1\"\n";
    let gw = Gateway::start(&body).await;
    let me = "decided-patient-token";
    let read = "DocumentReference/ehr.d1";
    // Nothing rendered yet for this decision: the first read, then the ones sent as written,
    // another resource read in between.
    let id = gw.patient_id("ehr", "p1");
    let mut reads = vec![raw(&gw, read, me).await, raw(&gw, read, me).await];
    let patient = raw(&gw, &format!("Patient/{id}"), me).await;
    assert_eq!(serde_json::from_str::<Value>(&patient).unwrap()["resourceType"], "Patient", "{patient}");
    reads.push(raw(&gw, read, me).await);
    assert_eq!(reads[0], reads[1], "the first read and the second, byte for byte");
    assert_eq!(reads[1], reads[2], "and after another resource was read");
    assert_eq!(raw(&gw, &format!("Patient/{id}"), me).await, patient);
    let sent: Value = serde_json::from_str(&reads[0]).unwrap();
    let url = sent["content"][0]["attachment"]["url"].as_str().unwrap();
    assert_ne!(url, "Binary/b1", "the attachment is the gateway's to serve: {url}");
    let page = page_of(&raw(&gw, &format!("Patient/{id}/$everything"), me).await);
    let carried = page["entry"].as_array().unwrap().iter().find(|e| e["resource"]["id"] == "ehr.d1").unwrap();
    assert_eq!(carried["resource"], sent, "as $everything carries it");
    gw.stop().await;
}

/// `/metrics`' kept decisions: (all, resources of those kept for whole answers, those kept to
/// read one resource), and the records the record cache holds.
async fn kept(gw: &Gateway) -> (u64, u64, u64, u64) {
    let [all, resources, for_one, records] = gw
        .metric_values([
            "portico_kept_decisions{measure=\"decisions\"}",
            "portico_kept_decisions{measure=\"resources\"}",
            "portico_kept_decisions{measure=\"for_one_read\"}",
            "portico_cached_records",
        ])
        .await;
    (all, resources, for_one, records)
}

/// A read of one resource by id keeps its decision apart — one per person, holding no
/// resources of its own, only while the record cache holds the record: staff reading people
/// one by one find each person's decision again; a teen, her mother and staff taking turns on
/// one record each get their own view every time; a whole answer moves staff's decision to
/// the ones weighed by what they hold; and when the record cache lets the records go, what
/// was kept for single reads goes with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_for_reads_by_id_are_kept_per_person_only_while_the_record_is_cached() {
    const TEEN: &str = "decided-teen-token-0123";
    const MOTHER: &str = "decided-mother-token-0123";
    let tokens: String = [(TEEN, "patient"), (MOTHER, "proxy:MTH")]
        .iter()
        .map(|(t, v)| format!("[[server.dev_tokens]]\ntoken = {t:?}\nviewer = {v:?}\npatient = \"ehr/pt-10007\"\n"))
        .collect();
    let ttl = Duration::from_secs(6);
    let gw =
        Gateway::start(&format!("[aggregate]\ncache_ttl = \"{}s\"\n{tokens}{}", ttl.as_secs(), fixture_file_sources()))
            .await;
    let started = Instant::now();
    let people: Vec<String> = ["pt-10001", "pt-10002", "pt-10007"].iter().map(|p| gw.patient_id("ehr", p)).collect();
    let mut first = Vec::new();
    for p in &people {
        first.push(raw(&gw, &format!("Patient/{p}"), TOKEN).await);
    }
    assert_eq!(kept(&gw).await, (3, 0, 3, 3), "one decision per person, for one read, holding no resources");
    for (p, before) in people.iter().zip(&first) {
        assert_eq!(&raw(&gw, &format!("Patient/{p}"), TOKEN).await, before, "found again: the same bytes");
    }
    assert_eq!(kept(&gw).await, (3, 0, 3, 3), "nothing new kept");
    let note = "DocumentReference/ehr.doc-10018";
    for turn in 0..2 {
        let teen = gw.get_with(note, Some(TEEN), &[]).await;
        assert_eq!(teen.0, 200, "turn {turn}: the teen reads her confidential note");
        let mother = gw.get_with(note, Some(MOTHER), &[]).await;
        assert_eq!(mother.0, 404, "turn {turn}: her mother never gets it from a kept decision: {}", mother.1);
        let staff = gw.get_with(note, Some(TOKEN), &[]).await;
        assert_eq!((staff.0, &staff.1), (200, &teen.1), "turn {turn}: staff read the same note");
    }
    assert_eq!(kept(&gw).await, (3, 0, 3, 3), "still one per person");
    let (status, _) = gw.get_with(&format!("Patient/{}/$everything", people[0]), Some(TOKEN), &[]).await;
    assert_eq!(status, 200);
    let (decisions, resources, for_one, records) = kept(&gw).await;
    assert_eq!((decisions, for_one, records), (3, 2, 3), "staff's decision over the first moved");
    assert!(resources > 1, "a whole answer's decision is weighed by what it holds: {resources}");
    // The record cache lets the records go after its time to live.
    let (decisions, after, for_one) = loop {
        let (decisions, after, for_one, records) = kept(&gw).await;
        if records == 0 {
            break (decisions, after, for_one);
        }
        assert!(started.elapsed() < ttl * 5, "the records were never let go");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(for_one, 0, "what was kept for single reads went with the records");
    assert_eq!((decisions, after), (1, resources), "the whole answer's decision is bounded by what it holds");
    gw.stop().await;
}
