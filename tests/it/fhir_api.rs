//! The FHIR API end to end: a gateway over the four fixture systems (each a simulator on a
//! loopback port), spoken to over HTTP. Search expectations are computed by the test from
//! the patient's `$everything`, never hard-coded; every refusal is checked as closely as
//! the answer it refuses.

use crate::common::*;
use portico::simulator::RunningSimulator;
use reqwest::Method;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const SOURCES: [&str; 4] = ["ehr", "lab", "imaging", "behavioral"];

#[tokio::test]
async fn metadata_and_health_are_public_and_describe_the_gateway() {
    let h = harness().await;
    let r = send(&h.gw, Method::GET, "metadata", None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.header("content-type").starts_with("application/fhir+json"), "{}", r.header("content-type"));
    let cs = r.json();
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    let patient = capability(&cs, "Patient");
    assert!(names(&patient["operation"], "name").contains(&"everything"), "{patient}");
    assert!(names(&patient["operation"], "name").contains(&"export"), "{patient}");
    assert!(names(&capability(&cs, "Group")["operation"], "name").contains(&"export"), "{cs}");
    assert!(names(&cs["rest"][0]["operation"], "name").contains(&"export"), "system-level $export");
    let observation = capability(&cs, "Observation");
    let params = names(&observation["searchParam"], "name");
    for p in ["code", "category", "date", "status", "patient"] {
        assert!(params.contains(&p), "Observation lacks searchParam {p}: {params:?}");
    }

    let r = h.gw.http.get(format!("{}/health/live", h.gw.origin)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = h.gw.http.get(format!("{}/health/ready", h.gw.origin)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ready: Value = r.json().await.unwrap();
    assert_eq!(names(&ready["sources"], "name"), SOURCES, "{ready}");
    assert_eq!(names(&ready["sources"], "state"), ["up"; 4], "{ready}");
    assert_eq!(ready["patients_indexed"].as_u64(), Some(h.gw.index.links().await.unwrap().len() as u64));
}

#[tokio::test]
async fn data_endpoints_need_the_token_and_reveal_nothing_without_it() {
    let h = harness().await;
    let recs = records(&h.gw).await;
    let (pid, rs) = richest(&recs);
    let patient = rs.iter().find(|r| r["resourceType"] == "Patient").unwrap().clone();
    let obs = rs.iter().find(|r| r["resourceType"] == "Observation").unwrap()["id"].as_str().unwrap().to_string();
    let secrets = [&patient["name"][0]["family"], &patient["birthDate"]].map(|v| v.as_str().unwrap().to_string());
    let paths = [
        format!("Patient/{pid}"),
        format!("Observation/{obs}"),
        format!("Observation?patient={pid}"),
        format!("Patient/{pid}/$everything"),
    ];
    for path in &paths {
        assert_eq!(call(&h.gw, path, &[]).await.status, 200, "{path} with the token");
        let bad = format!("{TOKEN}x");
        for (token, auth) in [(None, None), (Some(bad.as_str()), None), (None, Some(format!("Basic {TOKEN}")))] {
            let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
            let r = send(&h.gw, Method::GET, path, token, &headers).await;
            assert_outcome(&r, 401, "login");
            let challenge = r.header("www-authenticate");
            assert!(challenge.starts_with("Bearer"), "{path}: {challenge}");
            let presented = token.is_some() || auth.is_some();
            assert_eq!(challenge.contains("error=\"invalid_token\""), presented, "{path}: {challenge}");
            for s in &secrets {
                assert!(!r.text.contains(s.as_str()), "{path}: 401 body leaks patient data: {}", r.text);
            }
            assert_eq!(r.json().as_object().unwrap().len(), 2, "only resourceType and issue: {}", r.text);
        }
    }
    // An unknown patient is not told apart from a known one without a token.
    assert_eq!(send(&h.gw, Method::GET, "Patient/pt-nobody", None, &[]).await.status, 401);
}

#[tokio::test]
async fn reads_by_gateway_id_and_refuses_unknown_ids_and_types() {
    let h = harness().await;
    let gw = &h.gw;
    let pid = busiest(gw);
    let (status, p) = gw.get(&format!("Patient/{pid}")).await;
    assert_eq!(status, 200, "{p}");
    assert_eq!((p["resourceType"].as_str(), p["id"].as_str()), (Some("Patient"), Some(pid.as_str())));
    assert_outcome(&call(gw, "Patient/pt-doesnotexist", &[]).await, 404, "not-found");
    for path in ["Observation/ehr.no-such-obs", "Observation/nosource.x", "Observation/plain", "Patient/bad%24id"] {
        assert_outcome(&call(gw, path, &[]).await, 404, "not-found");
    }
    for path in ["Spaceship/1".to_string(), format!("Spaceship?patient={pid}")] {
        assert_outcome(&call(gw, &path, &[]).await, 404, "not-supported");
    }
}

#[tokio::test]
async fn observation_searches_match_filters_computed_over_everything() {
    let h = harness().await;
    let recs = records(&h.gw).await;
    let is_lab = |r: &Value| has_coding(&r["category"], None, "laboratory");
    let (pid, all, lab) = split(&recs, "Observation", is_lab);
    check(&h.gw, &format!("Observation?patient={pid}&category=laboratory"), &lab).await;
    let either = only(&all, |r| is_lab(r) || has_coding(&r["category"], None, "vital-signs"));
    check(&h.gw, &format!("Observation?patient={pid}&category=laboratory,vital-signs"), &either).await;

    // code=system|code: a coding found on some but not all of this patient's Observations.
    let codings = all.iter().flat_map(|r| r["code"]["coding"].as_array().into_iter().flatten());
    let (want, system, code) = codings
        .filter_map(|c| Some((c["system"].as_str()?, c["code"].as_str()?)))
        .map(|(s, c)| (only(&all, |r| has_coding(&r["code"], Some(s), c)), s, c))
        .find(|(want, _, _)| want.len() < all.len())
        .expect("an Observation code that not all Observations share");
    check(&h.gw, &format!("Observation?patient={pid}&code={}", enc(&format!("{system}|{code}"))), &want).await;
    check(&h.gw, &format!("Observation?patient={pid}&code={}", enc(&format!("http://wrong.example|{code}"))), &[])
        .await;

    // date=geX&date=leY, with X and Y taken from the data (days in UTC, the gateway's zone).
    let (pid, obs) = recs.iter().map(|(p, rs)| (p, of_type(rs, "Observation"))).max_by_key(|(_, o)| o.len()).unwrap();
    let days: BTreeSet<String> = obs.iter().filter_map(|r| effective(r)).map(|(s, _)| utc_day(s)).collect();
    let days: Vec<String> = days.into_iter().collect();
    assert!(days.len() >= 3, "need three distinct observation days, have {days:?}");
    let (x, y) = (&days[1], &days[days.len() - 2]);
    let (x0, y1) = (day_start(x), day_start(y) + 86_400);
    let want = only(&obs, |r| effective(r).is_some_and(|(s, e)| e > x0 && s < y1));
    assert!(!want.is_empty() && want.len() < obs.len(), "the range {x}..{y} must split the data");
    check(&h.gw, &format!("Observation?patient={pid}&date=ge{x}&date=le{y}"), &want).await;

    let statuses: BTreeSet<&str> =
        obs.iter().filter_map(|r| r["status"].as_str()).chain(["amended", "cancelled"]).collect();
    for s in statuses {
        let want = only(&obs, |r| r["status"] == s);
        check(&h.gw, &format!("Observation?patient={pid}&status={s}"), &want).await;
    }
}

#[tokio::test]
async fn condition_medication_and_subject_searches_match_computed_filters() {
    let h = harness().await;
    let recs = records(&h.gw).await;
    let (pid, _, active) = split(&recs, "Condition", |r| has_coding(&r["clinicalStatus"], None, "active"));
    check(&h.gw, &format!("Condition?patient={pid}&clinical-status=active"), &active).await;

    let (pid, mrs) =
        recs.iter().map(|(p, rs)| (p, of_type(rs, "MedicationRequest"))).max_by_key(|(_, m)| m.len()).unwrap();
    let days: BTreeSet<String> =
        mrs.iter().filter_map(|r| r["authoredOn"].as_str()).filter_map(text_range).map(|(s, _)| utc_day(s)).collect();
    assert!(days.len() >= 2, "need two distinct authoredOn days: {days:?}");
    for d in &days {
        let from = day_start(d);
        let want = only(&mrs, |r| r["authoredOn"].as_str().and_then(text_range).is_some_and(|(_, e)| e > from));
        check(&h.gw, &format!("MedicationRequest?patient={pid}&authoredon=ge{d}"), &want).await;
    }

    let (pid, rs) = richest(&recs);
    let obs = of_type(rs, "Observation");
    check(&h.gw, &format!("Observation?subject=Patient/{pid}"), &obs).await;
    check(&h.gw, &format!("Observation?patient=Patient/{pid}"), &obs).await;
    let allergies = of_type(rs, "AllergyIntolerance");
    check(&h.gw, &format!("AllergyIntolerance?patient={pid}"), &allergies).await;
}

#[tokio::test]
async fn count_pages_cover_the_result_exactly_once_with_a_steady_total() {
    let h = harness().await;
    let recs = records(&h.gw).await;
    let (pid, rs) = richest(&recs);
    let obs = of_type(rs, "Observation");
    for (path, size, want) in [
        (format!("Observation?patient={pid}&_count=4"), 4, keyset(obs.iter().copied())),
        (format!("Patient/{pid}/$everything?_count=7"), 7, keyset(rs)),
    ] {
        let mut next = Some(path.clone());
        let (mut seen, mut pages, mut totals) = (Vec::new(), 0, BTreeSet::new());
        while let Some(p) = next.take() {
            let (status, b) = h.gw.get(&p).await;
            assert_eq!(status, 200, "{b}");
            pages += 1;
            assert!(pages <= want.len(), "{path}: paging does not end");
            let entries = b["entry"].as_array().cloned().unwrap_or_default();
            assert!(entries.len() <= size, "{path}: page too big");
            totals.insert(b["total"].as_u64().expect("total on every page"));
            seen.extend(entries.iter().map(|e| tid(&e["resource"])));
            next = link(&b, "next");
        }
        let distinct: BTreeSet<&String> = seen.iter().collect();
        assert_eq!(distinct.len(), seen.len(), "{path}: an entry was served twice: {seen:?}");
        assert_eq!(sorted(seen), want, "{path}: pages do not add up to the whole result");
        assert_eq!(
            totals.into_iter().collect::<Vec<_>>(),
            vec![want.len() as u64],
            "{path}: total differs between pages"
        );
        assert!(pages > 1, "{path}: expected several pages");
    }
}

#[tokio::test]
async fn bad_searches_get_operation_outcomes() {
    let h = harness().await;
    let gw = &h.gw;
    let pid = busiest(gw);
    let unknown = call(gw, &format!("Observation?patient={pid}&bogus=1"), &[]).await;
    assert_outcome(&unknown, 400, "invalid");
    assert!(unknown.text.contains("bogus"), "{}", unknown.text);
    let lenient = [("prefer", "handling=lenient")];
    let r = call(gw, &format!("Observation?patient={pid}&bogus=1&_count=500"), &lenient).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let entries = r.json()["entry"].as_array().cloned().unwrap();
    let outcomes: Vec<&Value> =
        entries.iter().filter(|e| e["search"]["mode"] == "outcome").map(|e| &e["resource"]).collect();
    assert_eq!(outcomes.len(), 1, "{}", r.text);
    assert_eq!(outcomes[0]["resourceType"], "OperationOutcome");
    assert!(outcomes[0]["issue"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["severity"] == "warning" && i["diagnostics"].as_str().unwrap().contains("bogus")));
    let (strict, _) = gw.all_pages(&format!("Observation?patient={pid}&_count=500")).await;
    let matched: Vec<Value> =
        entries.iter().filter(|e| e["search"]["mode"] == "match").map(|e| e["resource"].clone()).collect();
    assert!(!strict.is_empty());
    assert_eq!(keyset(&matched), keyset(&strict), "the ignored parameter must not filter");

    for (path, mention) in [
        (format!("Observation?patient={pid}&date=yesterday"), "date"),
        ("Observation?category=laboratory".to_string(), "patient"),
        (format!("Observation?patient={pid}&patient=pt-other"), "one patient"),
        (format!("Observation?patient={pid}&_cursor=%%%"), "_cursor"),
        (format!("Observation?patient={pid}&_count=many"), "_count"),
    ] {
        let r = call(gw, &path, &[]).await;
        assert_outcome(&r, 400, "invalid");
        assert!(r.text.contains(mention), "{path}: {}", r.text);
    }
}

#[tokio::test]
async fn only_json_only_get_and_bounded_query_strings() {
    let h = harness().await;
    let gw = &h.gw;
    let pid = busiest(gw);
    let read = format!("Patient/{pid}");
    for (path, accept, ok) in [
        (format!("{read}?_format=xml"), None, false),
        (read.clone(), Some("application/fhir+xml"), false),
        ("metadata?_format=xml".into(), None, false),
        (format!("{read}?_format=json"), None, true),
        (read.clone(), Some("application/fhir+json"), true),
        (read.clone(), Some("*/*"), true),
    ] {
        let headers: Vec<(&str, &str)> = accept.iter().map(|a| ("accept", *a)).collect();
        let r = call(gw, &path, &headers).await;
        if ok {
            assert_eq!((r.status, r.json()["id"].as_str()), (200, Some(pid.as_str())), "{path}: {}", r.text);
        } else {
            assert_outcome(&r, 406, "not-supported");
        }
    }

    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        let everything = format!("{read}/$everything");
        for path in ["metadata", "Patient", "Patient/x", read.as_str(), everything.as_str()] {
            let r = send(gw, method.clone(), path, Some(TOKEN), &[("content-type", "application/fhir+json")]).await;
            assert_outcome(&r, 405, "not-supported");
            assert_eq!(r.header("allow"), "GET", "{method} {path}");
        }
    }

    // server.max_query_bytes defaults to 8 KiB: exactly that much is answered, one more byte is not.
    let prefix = format!("patient={pid}&code=");
    let at_limit = format!("{prefix}{}", "a".repeat(8192 - prefix.len()));
    let r = call(gw, &format!("Observation?{at_limit}"), &[]).await;
    assert_eq!((r.status, r.json()["total"].as_u64()), (200, Some(0)), "{}", r.text);
    let r = call(gw, &format!("Observation?{at_limit}a"), &[]).await;
    assert_outcome(&r, 414, "too-long");
}

#[tokio::test]
async fn everything_honours_type_and_since() {
    let h = harness().await;
    let gw = &h.gw;
    let recs = records(gw).await;
    let (pid, rs) = recs
        .iter()
        .find(|(_, rs)| rs.iter().any(has_last_updated) && rs.iter().any(|r| !has_last_updated(r)))
        .expect("a patient with resources both with and without meta.lastUpdated");
    let (got, _) = gw.all_pages(&format!("Patient/{pid}/$everything?_type=Observation,Condition")).await;
    let want = keyset(rs.iter().filter(|r| r["resourceType"] == "Observation" || r["resourceType"] == "Condition"));
    assert!(want.len() < rs.len());
    assert_eq!(keyset(&got), want);

    // A future _since: nothing can be shown to be newer, so only undated resources remain.
    let (got, _) = gw.all_pages(&format!("Patient/{pid}/$everything?_since={}", enc("2100-01-01T00:00:00Z"))).await;
    assert_eq!(keyset(&got), keyset(rs.iter().filter(|r| !has_last_updated(r))));
    let (got, _) = gw.all_pages(&format!("Patient/{pid}/$everything?_since={}", enc("2000-01-01T00:00:00Z"))).await;
    assert_eq!(keyset(&got), keyset(rs));

    for q in
        ["_type=Nonsense", "_type=Observation,Nonsense", "_since=yesterday", "_since=2024-01-01", "category=laboratory"]
    {
        let r = call(gw, &format!("Patient/{pid}/$everything?{q}"), &[]).await;
        assert_outcome(&r, 400, "invalid");
    }
    assert_outcome(&call(gw, "Patient/pt-nobody/$everything", &[]).await, 404, "not-found");
}

#[tokio::test]
async fn resources_read_by_gateway_id_also_after_a_restart() {
    let h = harness().await;
    let recs = records(&h.gw).await;
    // A patient with Observations from two systems (each found only in one).
    let from = |rs: &[Value], source: &str| {
        rs.iter().find(|r| r["resourceType"] == "Observation" && source_tags(r) == [source]).cloned()
    };
    let (pid, picked) = recs
        .iter()
        .find_map(|(p, rs)| Some((p.clone(), vec![from(rs, "ehr")?, from(rs, "lab")?])))
        .expect("a patient with Observations from ehr and from lab");
    for obs in &picked {
        let (status, got) = h.gw.get(&tid(obs)).await;
        assert_eq!((status, &got), (200, obs));
    }
    let links = h.gw.index.links().await.unwrap();
    let fresh = restart(h).await;
    assert_eq!(fresh.gw.index.links().await.unwrap(), links, "the patient index survives a restart");
    // Nothing of this patient is cached yet: the gateway must ask the source where it lives.
    for obs in picked.iter().rev() {
        let (status, got) = fresh.gw.get(&tid(obs)).await;
        assert_eq!((status, &got), (200, obs), "{}", obs["id"]);
    }
    let (status, p) = fresh.gw.get(&format!("Patient/{pid}")).await;
    assert_eq!((status, p["id"].as_str()), (200, Some(pid.as_str())));
}

#[tokio::test]
async fn supporting_and_provenance_reads_survive_a_restart() {
    let h = harness().await;
    let recs = records(&h.gw).await;
    let (_, rs) = richest(&recs);
    let picked: Vec<Value> = ["Practitioner", "Organization", "Provenance"]
        .iter()
        .map(|t| rs.iter().find(|r| r["resourceType"] == *t).cloned().unwrap_or_else(|| panic!("a {t} in the record")))
        .collect();
    for r in &picked {
        assert_eq!(h.gw.get(&tid(r)).await.0, 200, "{}", tid(r));
    }
    let fresh = restart(h).await;
    for r in &picked {
        let (status, got) = fresh.gw.get(&tid(r)).await;
        assert_eq!(status, 200, "{}: answered 200 before the restart", tid(r));
        // A Practitioner or Organization read outside any record carries the provenance of
        // the copy it was read from; the record's copy may also name other systems that
        // hold the same one. Everything else is identical.
        let source = r["id"].as_str().unwrap().split('.').next().unwrap().to_string();
        let tags = source_tags(&got);
        assert!(tags.contains(&source), "{tags:?}");
        assert!(tags.iter().all(|t| source_tags(r).contains(t)), "{tags:?} ⊄ {:?}", source_tags(r));
        let without_tags = |v: &Value| {
            let mut v = v.clone();
            v["meta"].as_object_mut().unwrap().remove("tag");
            v
        };
        assert_eq!(without_tags(&got), without_tags(r), "{}", tid(r));
    }
}

#[tokio::test]
async fn provenance_search_by_patient_works_as_advertised() {
    let h = harness().await;
    let (status, cs) = h.gw.get("metadata").await;
    assert_eq!(status, 200);
    assert!(names(&capability(&cs, "Provenance")["interaction"], "code").contains(&"search-type"));
    let recs = records(&h.gw).await;
    let (pid, rs) = richest(&recs);
    let want = of_type(rs, "Provenance");
    assert!(!want.is_empty());
    check(&h.gw, &format!("Provenance?patient={pid}"), &want).await;
}

#[tokio::test]
async fn prefer_lenient_allows_whitespace_around_the_equals_sign() {
    let h = harness().await;
    let pid = busiest(&h.gw);
    let r = call(&h.gw, &format!("Observation?patient={pid}&bogus=1"), &[("prefer", "handling = lenient")]).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

// ---- helpers ----

struct Harness {
    gw: Gateway,
    body: String,
    _sims: Vec<RunningSimulator>,
}

async fn harness() -> Harness {
    let mut sims = Vec::new();
    for s in SOURCES {
        sims.push(simulate(s, Default::default()).await);
    }
    let pairs: Vec<(&str, &RunningSimulator)> = SOURCES.iter().copied().zip(sims.iter()).collect();
    let body = fixture_sources(&pairs);
    Harness { gw: Gateway::start(&body).await, body, _sims: sims }
}

/// Stops the gateway and starts a fresh one on the same database and simulators.
async fn restart(h: Harness) -> Harness {
    let Harness { gw, body, _sims } = h;
    let dir = gw.dir.clone();
    gw.stop().await;
    Harness { gw: Gateway::start_in(dir, &body, None).await, body, _sims }
}

/// GET with the dev token.
async fn call(gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> Reply {
    send(gw, Method::GET, path, Some(TOKEN), headers).await
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
    fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
    }
}

async fn send(gw: &Gateway, method: Method, path: &str, token: Option<&str>, headers: &[(&str, &str)]) -> Reply {
    let mut req = gw.http.request(method, format!("{}/{path}", gw.fhir));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("gateway answers");
    Reply { status: resp.status().as_u16(), headers: resp.headers().clone(), text: resp.text().await.unwrap() }
}

fn assert_outcome(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert!(r.header("content-type").starts_with("application/fhir+json"), "{}", r.header("content-type"));
    let v = r.json();
    assert_eq!(v["resourceType"], "OperationOutcome", "{}", r.text);
    let ok = v["issue"].as_array().is_some_and(|is| is.iter().any(|i| i["severity"] == "error" && i["code"] == code));
    assert!(ok, "expected an error issue with code {code}: {}", r.text);
}

/// Every patient's whole record, by gateway id (all sources up: no warnings).
async fn records(gw: &Gateway) -> BTreeMap<String, Vec<Value>> {
    let mut out = BTreeMap::new();
    for l in gw.index.links().await.unwrap() {
        let (rs, outcomes) = gw.all_pages(&format!("Patient/{}/$everything", l.gateway_id)).await;
        assert!(outcomes.is_empty(), "{outcomes:?}");
        out.insert(l.gateway_id, rs);
    }
    out
}

/// Searches (every page) and compares the matches with `want`.
async fn check(gw: &Gateway, path: &str, want: &[&Value]) {
    let (got, outcomes) = gw.all_pages(path).await;
    assert!(outcomes.is_empty(), "{path}: {outcomes:?}");
    assert_eq!(keyset(&got), keyset(want.iter().copied()), "{path}");
    for r in &got {
        let original = want.iter().find(|w| w["id"] == r["id"]).unwrap();
        assert_eq!(r, *original, "{path}: search and $everything disagree on the resource");
    }
}

fn richest(recs: &BTreeMap<String, Vec<Value>>) -> (&str, &Vec<Value>) {
    recs.iter().max_by_key(|(_, rs)| of_type(rs, "Observation").len()).map(|(p, rs)| (p.as_str(), rs)).unwrap()
}

/// The gateway id linking the most source records.
fn busiest(gw: &Gateway) -> String {
    gw.links().into_iter().max_by_key(|l| l.members.len()).unwrap().gateway_id
}

fn capability(cs: &Value, t: &str) -> Value {
    let found = cs["rest"][0]["resource"].as_array().unwrap().iter().find(|r| r["type"] == t);
    found.cloned().unwrap_or_else(|| panic!("{t} missing from {cs}"))
}

/// The `field` of each item of a JSON list.
fn names<'a>(list: &'a Value, field: &str) -> Vec<&'a str> {
    list.as_array().into_iter().flatten().filter_map(|i| i[field].as_str()).collect()
}

fn only<'a>(rs: &[&'a Value], pred: impl Fn(&Value) -> bool) -> Vec<&'a Value> {
    rs.iter().copied().filter(|r| pred(r)).collect()
}

fn of_type<'a>(rs: &'a [Value], t: &str) -> Vec<&'a Value> {
    rs.iter().filter(|r| r["resourceType"] == t).collect()
}

/// The patient whose resources of type `t` `pred` splits best (some match, some do not).
fn split<'a>(
    recs: &'a BTreeMap<String, Vec<Value>>,
    t: &str,
    pred: impl Fn(&Value) -> bool,
) -> (&'a str, Vec<&'a Value>, Vec<&'a Value>) {
    let (pid, all, want) = recs
        .iter()
        .map(|(p, rs)| {
            let all = of_type(rs, t);
            let want = only(&all, |r| pred(r));
            (p.as_str(), all, want)
        })
        .max_by_key(|(_, all, want)| want.len().min(all.len() - want.len()))
        .unwrap();
    assert!(!want.is_empty() && want.len() < all.len(), "no patient's {t}s are split by the filter");
    (pid, all, want)
}

/// True when a CodeableConcept (or a list of them) has `code`, in `system` when given.
fn has_coding(cc: &Value, system: Option<&str>, code: &str) -> bool {
    let ccs: Vec<&Value> = match cc {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    ccs.iter()
        .flat_map(|c| c["coding"].as_array().into_iter().flatten())
        .any(|c| c["code"] == code && system.is_none_or(|s| c["system"] == s))
}

fn has_last_updated(r: &Value) -> bool {
    r["meta"]["lastUpdated"].is_string()
}

/// `[start, end)` UTC seconds of a date (whole day, UTC) or an instant (one second).
fn text_range(s: &str) -> Option<(i64, i64)> {
    if s.len() == 10 {
        let start = day_start(s);
        return Some((start, start + 86_400));
    }
    chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| (t.timestamp(), t.timestamp() + 1))
}

fn effective(r: &Value) -> Option<(i64, i64)> {
    if let Some(s) = r["effectiveDateTime"].as_str().or(r["effectiveInstant"].as_str()) {
        return text_range(s);
    }
    let p = &r["effectivePeriod"];
    let start = p["start"].as_str().and_then(text_range).map(|r| r.0);
    let end = p["end"].as_str().and_then(text_range).map(|r| r.1);
    (start.is_some() || end.is_some()).then(|| (start.unwrap_or(i64::MIN), end.unwrap_or(i64::MAX)))
}

fn day_start(day: &str) -> i64 {
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp()
}

fn utc_day(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0).unwrap().format("%Y-%m-%d").to_string()
}

fn keyset<'a>(rs: impl IntoIterator<Item = &'a Value>) -> Vec<String> {
    sorted(rs.into_iter().map(tid).collect())
}

fn tid(r: &Value) -> String {
    format!("{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap())
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
