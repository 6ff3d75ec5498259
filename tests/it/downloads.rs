//! Whole-record downloads over real HTTP: the zip of `$everything` (`_format=zip`, `Accept:
//! application/zip`) and the signed-in account's `/records/{link}/download.zip|json`. What
//! a download holds is exactly what `$everything` gives the same viewer; a parent's download
//! of a teenager's record holds none of her confidential items, in any file; the notice is
//! the same whether or not anything was withheld; every download is in the access log.

use crate::common::*;
use serde_json::Value;
use std::collections::BTreeMap;

const BOB: &str = "download-test-bob-self-0123";
const MOTHER: &str = "download-test-maya-mother-0123";

fn body() -> String {
    format!(
        "[[server.dev_tokens]]\ntoken = \"{BOB}\"\nviewer = \"patient\"\npatient = \"ehr/pt-10001\"\n\
         [[server.dev_tokens]]\ntoken = \"{MOTHER}\"\nviewer = \"proxy:MTH\"\npatient = \"ehr/pt-10007\"\n{}",
        fixture_file_sources()
    )
}

/// Maya's items a parent may not see (fixtures/README.md, conformance/policy/cases.toml):
/// pregnancy, contraception, STI tests, depression screening and the confidential note.
const MAYA_CONFIDENTIAL_IDS: &[&str] = &[
    "obs-10045",
    "9e989c92-5860-5b3f-9e05-510d900b67e2",
    "cond-10013",
    "enc-10015",
    "mrx-10007",
    "cond-10011",
    "enc-10014",
    "a1239056-10d1-5528-bdef-518ea6ea16c7",
    "3e04b8c2-03f7-5a97-a0e1-79b596b418af",
    "ac5325b0-0f30-5b04-9b7f-5c69697bfe2d",
    "cond-10014",
    "e90ee328-382e-5f6d-b1a8-80acf744fbb3",
    "doc-10009",
    "cond-10012",
    "obs-10043",
    "obs-10044",
];
/// Words of those items' display text (lower case).
const MAYA_CONFIDENTIAL_WORDS: &[&str] =
    &["pregnan", "chlamydia", "gonorrh", "contracept", "choriogonadotropin", "phq"];

/// A GET with optional bearer token and headers: (status, headers, body bytes).
async fn fetch(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = http.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let (status, h) = (r.status().as_u16(), r.headers().clone());
    (status, h, r.bytes().await.unwrap().to_vec())
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

/// The resources of a zip's NDJSON files: every line parses, and sits in its type's file.
fn ndjson_resources(files: &BTreeMap<String, String>) -> Vec<Value> {
    let mut out = Vec::new();
    for (name, text) in files.iter().filter(|(n, _)| n.ends_with(".ndjson")) {
        let stem = name.trim_end_matches(".ndjson");
        assert!(text.ends_with('\n') && !text.contains("\n\n"), "{name}: one resource per line");
        for line in text.lines() {
            let r: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{name}: {e}: {line}"));
            assert_eq!(r["resourceType"], stem, "{name} holds only its own type");
            out.push(r);
        }
    }
    sorted(out)
}

fn sorted(mut resources: Vec<Value>) -> Vec<Value> {
    resources.sort_by_key(|r| format!("{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap()));
    resources
}

/// `$everything` for `token`: its resources (sorted) and its outcome entries.
async fn everything(gw: &Gateway, patient: &str, token: &str) -> (Vec<Value>, Vec<Value>) {
    let (resources, outcomes) = {
        let mut all = (Vec::new(), Vec::new());
        let mut next = Some(format!("{}/Patient/{patient}/$everything?_count=500", gw.fhir));
        while let Some(url) = next.take() {
            let (status, page) = gw.get_with(&url, Some(token), &[]).await;
            assert_eq!(status, 200, "{page}");
            for e in page["entry"].as_array().into_iter().flatten() {
                if e["search"]["mode"] == "outcome" {
                    all.1.push(e["resource"].clone());
                } else {
                    all.0.push(e["resource"].clone());
                }
            }
            next = link(&page, "next");
        }
        all
    };
    (sorted(resources), outcomes)
}

/// The withheld-notice an answer's outcome carries.
fn notice_of(outcomes: &[Value]) -> String {
    outcomes
        .iter()
        .flat_map(|o| o["issue"].as_array().unwrap().iter())
        .find(|i| i["severity"] == "information")
        .and_then(|i| i["diagnostics"].as_str())
        .expect("the withheld-notice")
        .to_string()
}

/// Text as the summary's template escapes it.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

/// A CodeableConcept as the summary words it.
fn words(cc: &Value) -> String {
    cc["text"].as_str().or_else(|| cc["coding"][0]["display"].as_str()).unwrap_or_default().to_string()
}

/// The source systems' names a resource carries.
fn source_names(r: &Value) -> Vec<String> {
    r["meta"]["tag"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["system"] == portico::aggregate::merge::SOURCE_TAG_SYSTEM)
        .map(|t| t["display"].as_str().unwrap().to_string())
        .collect()
}

/// The summary's "About this record" section.
fn about_section(summary: &str) -> String {
    let start = summary.find("<section class=\"notice\"").expect("the notice section");
    let end = start + summary[start..].find("</section>").unwrap();
    summary[start..end].to_string()
}

/// The access log of a patient's record as staff read it: (what, outcome, role) per entry.
async fn access_log(gw: &Gateway, patient: &str) -> Vec<(String, String, String)> {
    let (status, bundle) = gw.get(&format!("AuditEvent?patient={patient}&_count=500")).await;
    assert_eq!(status, 200, "{bundle}");
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let ev = &e["resource"];
            (
                ev["entity"][0]["what"]["display"].as_str().unwrap().to_string(),
                ev["outcome"].as_str().unwrap().to_string(),
                ev["agent"][0]["type"]["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_zip_holds_what_everything_gives_with_a_readable_summary() {
    let gw = Gateway::start(&body()).await;
    let bob = gw.patient_id("ehr", "pt-10001");
    let url = format!("{}/Patient/{bob}/$everything?_format=zip", gw.fhir);
    let (status, h, bytes) = fetch(&gw.http, &url, Some(BOB), &[]).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(header(&h, "content-type"), "application/zip");
    assert_eq!(header(&h, "content-disposition"), format!("attachment; filename=\"health-record-{bob}.zip\""));
    assert_eq!(header(&h, "cache-control"), "no-store");
    let files = unzip(&bytes);

    let (expected, outcomes) = everything(&gw, &bob, BOB).await;
    assert!(expected.len() > 40, "Bob's record is a real one: {}", expected.len());
    let mut names: Vec<String> =
        expected.iter().map(|r| format!("{}.ndjson", r["resourceType"].as_str().unwrap())).collect();
    names.extend(["README.txt", "summary.html", "withheld-notice.txt"].map(String::from));
    // Bob's PDF and C-CDA documents (fixtures/ehr/Binary), beside the NDJSON.
    names.extend(["documents/ehr.bin-10001.pdf", "documents/ehr.bin-10002.xml"].map(String::from));
    names.sort();
    names.dedup();
    assert_eq!(
        files.keys().cloned().collect::<Vec<_>>(),
        names,
        "one NDJSON file per type, the documents and the three texts"
    );
    assert_eq!(ndjson_resources(&files), expected, "exactly what $everything gives the same viewer");

    // Accept: application/zip asks for the same.
    let everything_url = format!("{}/Patient/{bob}/$everything", gw.fhir);
    let (status, h, bytes) = fetch(&gw.http, &everything_url, Some(BOB), &[("accept", "application/zip")]).await;
    assert_eq!((status, header(&h, "content-type")), (200, "application/zip"));
    let again = unzip(&bytes);
    assert_eq!(ndjson_resources(&again), expected);
    // … while JSON first in Accept keeps the paged Bundle.
    let (status, page) =
        gw.get_with(&everything_url, Some(BOB), &[("accept", "application/fhir+json, application/zip;q=0.5")]).await;
    assert_eq!((status, page["resourceType"].as_str()), (200, Some("Bundle")));

    // The summary: whose record, the shown items with the system each came from, the notice.
    let summary = &files["summary.html"];
    assert!(summary.contains("Health record summary: Robert James Martinez"), "{summary}");
    assert!(!summary.contains("<script") && !summary.contains("<link"), "self-contained, no scripts");
    let mut checked = 0;
    for r in &expected {
        let shown = match r["resourceType"].as_str().unwrap() {
            "Condition" | "AllergyIntolerance" | "Procedure" | "DiagnosticReport" => words(&r["code"]),
            "Immunization" => words(&r["vaccineCode"]),
            "MedicationRequest" => words(&r["medicationCodeableConcept"]),
            "DocumentReference" => words(&r["type"]),
            _ => continue,
        };
        assert!(summary.contains(&format!("<td>{}</td>", escaped(&shown))), "{shown} is in the summary");
        let from = source_names(r).join(", ");
        assert!(summary.contains(&format!("<td class=\"source\">{}</td>", escaped(&from))), "{from}");
        checked += 1;
    }
    assert!(checked > 15, "{checked}");
    for system in ["Harbor General Hospital", "Bayview Regional Reference Lab", "Harbor Imaging Center"] {
        assert!(summary.contains(system), "{system} is named");
    }
    // A lab result's row: test, value, unit, range, flag, date, source.
    let a1c = expected
        .iter()
        .find(|r| r["code"]["text"] == "Hemoglobin A1c" && r["valueQuantity"]["value"] == 8.1)
        .expect("the first HbA1c");
    let row = format!(
        "<td>Hemoglobin A1c</td><td>8.1</td><td>%</td><td>up to 5.6 %</td><td>High</td><td class=\"date\">{}</td><td class=\"source\">{}</td>",
        // The day in the summary's language (English here): "Feb 13, 2026".
        portico::i18n::day(
            portico::i18n::Lang::En,
            chrono::NaiveDate::parse_from_str(&a1c["effectiveDateTime"].as_str().unwrap()[..10], "%Y-%m-%d").unwrap()
        ),
        escaped(&source_names(a1c).join(", "))
    );
    assert!(summary.contains(&row), "{row}\n{summary}");

    let notice = notice_of(&outcomes);
    assert!(notice.contains("complete record"), "the notice says how to ask for everything");
    assert_eq!(files["withheld-notice.txt"], format!("{notice}\n"));
    assert!(about_section(summary).contains(&escaped(&notice)));
    assert!(files["README.txt"].contains(&notice) && files["README.txt"].contains(&bob));
    assert!(!files["README.txt"].contains("Martinez"), "the README names no one");

    // Both downloads are in the access log, as downloads.
    let log = access_log(&gw, &bob).await;
    let zip_entries = log
        .iter()
        .filter(|(what, outcome, role)| {
            what == &format!("/fhir/Patient/{bob}/$everything?_format=zip") && outcome == "0" && role == "patient"
        })
        .count();
    assert_eq!(zip_entries, 2, "{log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_download_of_a_teenager_record_holds_nothing_confidential() {
    let gw = Gateway::start(&body()).await;
    let maya = gw.patient_id("ehr", "pt-10007");
    let bob = gw.patient_id("ehr", "pt-10001");
    // Ana Rodriguez signs up; HIM grants her access to Maya (16) as her mother.
    let ana = register(&gw, "Ana Rodriguez", "ana@example.org").await;
    let link_id = grant_proxy(&gw, "ana@example.org", "ehr/pt-10007", "MTH", "ehr/rp-10001").await;

    // What the policy lets everyone see, to prove the checks below can find what they look for.
    let (status, _, bytes) =
        fetch(&gw.http, &format!("{}/Patient/{maya}/$everything?_format=zip", gw.fhir), Some(TOKEN), &[]).await;
    assert_eq!(status, 200);
    let full = unzip(&bytes);
    let full_text: String = full.values().map(|t| t.to_lowercase()).collect();
    for id in MAYA_CONFIDENTIAL_IDS {
        assert!(full_text.contains(id), "staff's download holds {id}");
    }
    for word in MAYA_CONFIDENTIAL_WORDS {
        assert!(full["summary.html"].to_lowercase().contains(word), "staff's summary shows `{word}`");
    }

    // The mother's zip, from the page link.
    let (status, h, bytes) =
        fetch(&ana.http, &format!("{}/records/{link_id}/download.zip", gw.origin), None, &[]).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(header(&h, "content-type"), "application/zip");
    assert_eq!(header(&h, "content-disposition"), format!("attachment; filename=\"health-record-{maya}.zip\""));
    assert_eq!(header(&h, "cache-control"), "no-store");
    let files = unzip(&bytes);
    for (name, text) in &files {
        let text = text.to_lowercase();
        for id in MAYA_CONFIDENTIAL_IDS {
            assert!(!text.contains(id), "{name} must not hold {id}");
        }
        for word in MAYA_CONFIDENTIAL_WORDS {
            assert!(!text.contains(word), "{name} must not say `{word}`");
        }
    }
    // The shown side: what a parent may see is all there.
    let (expected, outcomes) = everything(&gw, &maya, MOTHER).await;
    assert_eq!(ndjson_resources(&files), expected, "the same as $everything for a mother");
    let ids: Vec<&str> = expected.iter().map(|r| r["id"].as_str().unwrap()).collect();
    for shown in ["ehr.imm-10006", "ehr.imm-10008", "ehr.imm-10009", "ehr.rp-10001"] {
        assert!(ids.contains(&shown), "{shown} in {ids:?}");
    }
    let summary = &files["summary.html"];
    assert!(summary.contains("Health record summary: Maya"), "whose record");
    for r in expected.iter().filter(|r| r["resourceType"] == "Immunization") {
        assert!(summary.contains(&escaped(&words(&r["vaccineCode"]))), "{}", r["id"]);
    }

    // The notice is word for word the same whether or not anything was withheld: Bob sees
    // his whole record (the same items staff see), Maya's mother does not.
    let (bob_sees, _) = everything(&gw, &bob, BOB).await;
    let (staff_sees, _) = everything(&gw, &bob, TOKEN).await;
    assert_eq!(keys(&bob_sees), keys(&staff_sees), "nothing withheld from Bob");
    let (_, _, bytes) =
        fetch(&gw.http, &format!("{}/Patient/{bob}/$everything?_format=zip", gw.fhir), Some(BOB), &[]).await;
    let bobs = unzip(&bytes);
    assert_eq!(files["withheld-notice.txt"], bobs["withheld-notice.txt"]);
    assert_eq!(files["withheld-notice.txt"], format!("{}\n", notice_of(&outcomes)));
    assert_eq!(about_section(summary), about_section(&bobs["summary.html"]));

    // The Bundle download: the whole $everything result in one searchset, nothing withheld in it.
    let (status, h, bytes) =
        fetch(&ana.http, &format!("{}/records/{link_id}/download.json", gw.origin), None, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "content-type"), "application/fhir+json; charset=utf-8");
    assert_eq!(header(&h, "content-disposition"), format!("attachment; filename=\"health-record-{maya}.json\""));
    assert_eq!(header(&h, "cache-control"), "no-store");
    let text = String::from_utf8(bytes).unwrap();
    for id in MAYA_CONFIDENTIAL_IDS {
        assert!(!text.contains(id), "the Bundle must not hold {id}");
    }
    for word in MAYA_CONFIDENTIAL_WORDS {
        assert!(!text.to_lowercase().contains(word), "the Bundle must not say `{word}`");
    }
    let bundle: Value = serde_json::from_str(&text).unwrap();
    assert_eq!((bundle["resourceType"].as_str(), bundle["type"].as_str()), (Some("Bundle"), Some("searchset")));
    assert!(bundle.get("timestamp").is_some() && link(&bundle, "next").is_none(), "one piece");
    let entries = bundle["entry"].as_array().unwrap();
    let (matches, outcome): (Vec<&Value>, Vec<&Value>) = entries.iter().partition(|e| e["search"]["mode"] == "match");
    assert_eq!(sorted(matches.iter().map(|e| e["resource"].clone()).collect()), expected);
    assert_eq!(bundle["total"], expected.len());
    for e in &matches {
        let r = &e["resource"];
        assert_eq!(
            e["fullUrl"],
            format!("{}/{}/{}", gw.fhir, r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap())
        );
    }
    assert_eq!(outcome.len(), 1);
    assert_eq!(notice_of(&[outcome[0]["resource"].clone()]), notice_of(&outcomes));

    // Each download is in the access log, for Maya's record, as her mother's.
    let log = access_log(&gw, &maya).await;
    for file in ["zip", "json"] {
        let what = format!("/records/{link_id}/download.{file}");
        assert!(log.iter().any(|(w, o, role)| w == &what && o == "0" && role == "MTH"), "{what}: {log:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_links_open_only_for_their_own_signed_in_account() {
    let gw = Gateway::start(&body()).await;
    let _ana = register(&gw, "Ana Rodriguez", "ana@example.org").await;
    let link_id = grant_proxy(&gw, "ana@example.org", "ehr/pt-10008", "MTH", "ehr/rp-10002").await;
    let ethan = gw.patient_id("ehr", "pt-10008");
    let before = access_log(&gw, &ethan).await.len();

    // Not signed in: to the sign-in page.
    let stranger = Browser::new(&gw);
    for file in ["zip", "json"] {
        let (status, _, location) = stranger.get(&format!("/records/{link_id}/download.{file}")).await;
        assert_eq!((status, location.as_deref()), (303, Some("/login")));
    }
    // Another account: Ana's link answers exactly like one that never existed.
    let carl = register(&gw, "Carl Other", "carl@example.org").await;
    for file in ["zip", "json"] {
        let theirs = carl.get(&format!("/records/{link_id}/download.{file}")).await;
        let made_up = carl.get(&format!("/records/lnk-made-up-0000/download.{file}")).await;
        assert_eq!(theirs.0, 404);
        assert_eq!(theirs, made_up);
    }
    // Nothing of Ethan's record went out, so nothing was logged about it (but the log reads).
    let after = access_log(&gw, &ethan).await;
    assert!(!after.iter().any(|(w, _, _)| w.contains("/download.")), "{after:?}");
    assert_eq!(after.len(), before + 1, "only the first log read itself");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_formats_are_refused_and_nothing_goes_out() {
    let gw = Gateway::start(&body()).await;
    let bob = gw.patient_id("ehr", "pt-10001");
    let everything_url = format!("{}/Patient/{bob}/$everything", gw.fhir);
    let outcome = |status: u16, bytes: &[u8]| -> (u16, String) {
        let v: Value = serde_json::from_slice(bytes).expect("an OperationOutcome");
        assert_eq!(v["resourceType"], "OperationOutcome");
        (status, v["issue"][0]["code"].as_str().unwrap().to_string())
    };
    // (url, request headers, expected status and issue code)
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, (u16, &'a str));
    let cases: Vec<Case> = vec![
        (format!("{everything_url}?_format=banana"), vec![], (400, "invalid")),
        (format!("{everything_url}?_format=application%2Fpdf"), vec![], (406, "not-supported")),
        (format!("{}/Patient/{bob}?_format=zip", gw.fhir), vec![], (406, "not-supported")),
        (format!("{}/Observation?patient={bob}", gw.fhir), vec![("accept", "application/zip")], (406, "not-supported")),
        (everything_url.clone(), vec![("accept", "application/pdf")], (406, "not-supported")),
        (format!("{everything_url}?_format=zip&_type=Observation"), vec![], (400, "invalid")),
        (format!("{everything_url}?_format=zip&_count=5"), vec![], (400, "invalid")),
    ];
    for (url, headers, expected) in &cases {
        let (status, h, bytes) = fetch(&gw.http, url, Some(BOB), headers).await;
        assert_eq!(outcome(status, &bytes), (expected.0, expected.1.to_string()), "{url}");
        assert!(header(&h, "content-type").starts_with("application/fhir+json"), "{url}");
    }
    let (status, _, _) = fetch(&gw.http, &format!("{everything_url}?_format=zip"), None, &[]).await;
    assert_eq!(status, 401, "no token, no download");

    // None of these went out as a download; the refused zip requests are logged as errors.
    let log = access_log(&gw, &bob).await;
    assert!(!log.iter().any(|(w, o, _)| w.contains("$everything") && o == "0"), "{log:?}");
    let refused = log.iter().filter(|(w, o, _)| w.ends_with("$everything?_format=zip") && o == "8").count();
    assert_eq!(refused, 2, "{log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_that_cannot_be_logged_does_not_go_out() {
    let gw = Gateway::start(&body()).await;
    let ana = register(&gw, "Ana Rodriguez", "ana@example.org").await;
    let link_id = grant_proxy(&gw, "ana@example.org", "ehr/pt-10007", "MTH", "ehr/rp-10001").await;
    let maya = gw.patient_id("ehr", "pt-10007");
    let page_url = format!("{}/records/{link_id}/download.zip", gw.origin);
    let api_url = format!("{}/Patient/{maya}/$everything?_format=zip", gw.fhir);
    assert_eq!(fetch(&ana.http, &page_url, None, &[]).await.0, 200, "works while the log can be written");

    // The access log's table goes away: the same requests must fail, with no record in them.
    let store = portico::store::Store::open(&gw.database_url, 2).await.unwrap();
    sqlx::query("ALTER TABLE audit_events RENAME TO audit_events_gone").execute(&store.pool).await.unwrap();
    let (status, h, bytes) = fetch(&ana.http, &page_url, None, &[]).await;
    assert_eq!(status, 503);
    assert!(header(&h, "content-type").starts_with("text/html") && header(&h, "content-disposition").is_empty());
    let (status, h, bytes_api) = fetch(&gw.http, &api_url, Some(MOTHER), &[]).await;
    assert_eq!(status, 500);
    assert!(header(&h, "content-type").starts_with("application/fhir+json"));
    for body in [bytes, bytes_api] {
        let text = String::from_utf8_lossy(&body);
        assert!(!text.contains("Maya") && !text.contains("imm-1000"), "{text}");
    }
}
