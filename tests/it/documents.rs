//! Documents, images and attachments (issue 13 part 3) over real HTTP: a PDF note and a C-CDA
//! document pass byte for byte from their source (a FHIR REST source the simulator serves,
//! and a folder of files) through `GET /fhir/Binary/{id}`, the record page's link and the
//! whole-record zip, with their content type; `attachment.url` goes out as the gateway's
//! Binary URL; a withheld note's content answers exactly like a made-up id and is in no
//! download; a large attachment streams through without the gateway holding it.

use crate::common::*;
use portico::simulator::SimulatorOptions;
use portico::sources::attachments::{generated_byte, StoredBinary};
use portico::sources::files::ResourceStore;
use serde_json::json;
use std::collections::BTreeMap;

const BOB: &str = "documents-test-bob-self-0123";
const MAYA: &str = "documents-test-maya-self-0123";
const MOTHER: &str = "documents-test-maya-mother-0123";

fn tokens() -> String {
    [(BOB, "patient", "ehr/pt-10001"), (MAYA, "patient", "ehr/pt-10007"), (MOTHER, "proxy:MTH", "ehr/pt-10007")]
        .iter()
        .map(|(t, v, p)| format!("[[server.dev_tokens]]\ntoken = {t:?}\nviewer = {v:?}\npatient = {p:?}\n"))
        .collect()
}

/// The fixture file of a Binary of the EHR.
fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixtures("ehr").join("Binary").join(name)).unwrap()
}

/// GET with a bearer token and headers: (status, headers, body).
async fn fetch(
    gw: &Gateway,
    url: &str,
    token: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = gw.http.get(url).bearer_auth(token);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let (status, h) = (r.status().as_u16(), r.headers().clone());
    (status, h, r.bytes().await.unwrap().to_vec())
}

/// Everything of a response but its date.
fn answer(r: (u16, reqwest::header::HeaderMap, Vec<u8>)) -> (u16, BTreeMap<String, String>, Vec<u8>) {
    let h = r.1.iter().filter(|(k, _)| *k != "date").map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()));
    (r.0, h.collect(), r.2)
}

/// The raw files of a zip, by name.
fn zip_files(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a valid zip");
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).unwrap();
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut out).unwrap();
            (f.name().unwrap().into_owned(), out)
        })
        .collect()
}

/// The fixture sources, the EHR served over HTTP by the simulator (`rest`) or as files.
async fn gateway(rest: bool) -> (Gateway, Option<portico::simulator::RunningSimulator>) {
    if !rest {
        return (Gateway::start(&format!("{}{}", tokens(), fixture_file_sources())).await, None);
    }
    let sim = simulate("ehr", SimulatorOptions::default()).await;
    (Gateway::start(&rest_body(&sim)).await, Some(sim))
}

/// The gateway's config with the EHR served by `sim`.
fn rest_body(sim: &portico::simulator::RunningSimulator) -> String {
    let files: String = fixture_file_sources()
        .split("[[sources]]")
        .filter(|s| !s.contains("\"ehr\""))
        .map(|s| if s.trim().is_empty() { String::new() } else { format!("[[sources]]{s}") })
        .collect();
    let ehr = rest_source("ehr", &display_of("ehr"), sim.base_url(), "");
    format!("{}{ehr}{files}", tokens())
}

/// Staff and partners read content by its Binary id alone. Which record to decide on is
/// kept in the database once the record that holds the content is read, so a gateway started
/// later on the same database (or a replica) serves it — under that record's decision now:
/// the mother still gets what a made-up id gets. Content no released record has named yet,
/// on any gateway, is not found by id alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_started_later_on_the_same_database_serves_content_by_its_binary_id() {
    let sim = simulate("ehr", SimulatorOptions::default()).await;
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let pdf = fixture_bytes("bin-10003.pdf");
    let first = Gateway::start_in(dir.clone(), &rest_body(&sim), None).await;
    let url = |gw: &Gateway, id: &str| format!("{}/Binary/{id}", gw.fhir);
    assert_eq!(fetch(&first, &url(&first, "ehr.bin-10003"), TOKEN, &[]).await.0, 404, "named by nothing yet");
    let (status, doc) = first.get_with("DocumentReference/ehr.doc-10018", Some(MAYA), &[]).await;
    assert_eq!(status, 200, "{doc}");
    first.stop().await;

    let cold = Gateway::start_in(dir.clone(), &rest_body(&sim), None).await;
    let (status, h, body) = fetch(&cold, &url(&cold, "ehr.bin-10003"), TOKEN, &[]).await;
    assert_eq!((status, h["content-type"].to_str().unwrap()), (200, "application/pdf"));
    assert!(body == pdf, "byte for byte");
    let made_up = answer(fetch(&cold, &url(&cold, "ehr.bin-99999"), MOTHER, &[]).await);
    assert_eq!(made_up.0, 404);
    assert_eq!(answer(fetch(&cold, &url(&cold, "ehr.bin-10003"), MOTHER, &[]).await), made_up);
    assert_eq!(fetch(&cold, &url(&cold, "ehr.bin-99999"), TOKEN, &[]).await.0, 404);
    cold.stop().await;
}

/// Where content lives is noted once per record read, whoever read it and whatever they were
/// shown: a partner whose scopes leave Maya's notes out reads her Patient, then asks for her
/// note's content by its id — and gets exactly what a made-up id gets; staff, who read
/// nothing of hers before, then get the content by its id alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_withheld_from_the_viewer_who_read_its_record_answers_like_a_made_up_id() {
    const NARROW: &str = "documents-test-partner-patients-only";
    let sim = simulate("ehr", SimulatorOptions::default()).await;
    let partner = format!(
        "[[server.dev_tokens]]\ntoken = {NARROW:?}\nviewer = \"partner:hie-north:TREAT\"\nscopes = \"system/Patient.rs\"\n"
    );
    let gw = Gateway::start(&format!("{partner}{}", rest_body(&sim))).await;
    let url = |id: &str| format!("{}/Binary/{id}", gw.fhir);
    let maya = gw.patient_id("ehr", "pt-10007");
    assert_eq!(gw.get_with(&format!("Patient/{maya}"), Some(NARROW), &[]).await.0, 200);
    let (status, body) = gw.get_with("DocumentReference/ehr.doc-10018", Some(NARROW), &[]).await;
    assert_eq!(status, 403, "the note is outside the partner's scopes: {body}");
    let made_up = answer(fetch(&gw, &url("ehr.bin-99999"), NARROW, &[]).await);
    assert_eq!(made_up.0, 404);
    assert_eq!(answer(fetch(&gw, &url("ehr.bin-10003"), NARROW, &[]).await), made_up, "the withheld note's content");
    let (status, h, body) = fetch(&gw, &url("ehr.bin-10003"), TOKEN, &[]).await;
    assert_eq!((status, h["content-type"].to_str().unwrap()), (200, "application/pdf"));
    assert!(body == fixture_bytes("bin-10003.pdf"), "byte for byte");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pdf_and_a_ccda_pass_byte_identical_through_binary_the_record_page_and_the_zip() {
    let pdf = fixture_bytes("bin-10001.pdf");
    let ccda = fixture_bytes("bin-10002.xml");
    assert!(pdf.starts_with(b"%PDF-") && std::str::from_utf8(&pdf).is_err(), "a real, binary PDF");
    assert!(String::from_utf8(ccda.clone()).unwrap().contains("<ClinicalDocument"));
    for rest in [true, false] {
        let (gw, _sim) = gateway(rest).await;
        let bob = gw.patient_id("ehr", "pt-10001");
        let (status, doc) = gw.get_with("DocumentReference/ehr.doc-10016", Some(BOB), &[]).await;
        assert_eq!(status, 200, "{doc}");
        let attachment = &doc["content"][0]["attachment"];
        let url = format!("{}/Binary/ehr.bin-10001", gw.fhir);
        assert_eq!(attachment["url"], url.as_str(), "attachment.url is the gateway's Binary URL");
        assert_eq!(attachment["size"], pdf.len(), "the rest of the attachment as the source wrote it");
        assert_eq!(attachment["contentType"], "application/pdf");
        // An inline note keeps its data and has no URL.
        let (_, inline) = gw.get_with("DocumentReference/ehr.doc-10002", Some(BOB), &[]).await;
        assert!(inline["content"][0]["attachment"]["data"].is_string());
        assert!(inline["content"][0]["attachment"].get("url").is_none());

        // Raw, whatever the client accepts but FHIR JSON.
        for accept in ["application/pdf", "*/*", ""] {
            let headers: &[(&str, &str)] = if accept.is_empty() { &[] } else { &[("accept", accept)] };
            let (status, h, body) = fetch(&gw, &url, BOB, headers).await;
            assert_eq!(status, 200, "rest={rest} {}", String::from_utf8_lossy(&body));
            assert_eq!(h["content-type"], "application/pdf");
            assert_eq!(h["content-length"], pdf.len().to_string().as_str());
            assert_eq!(h["x-content-type-options"], "nosniff");
            assert!(body == pdf, "rest={rest}: the PDF byte for byte");
        }
        let (_, ccda_doc) = gw.get_with("DocumentReference/ehr.doc-10017", Some(BOB), &[]).await;
        let ccda_url = ccda_doc["content"][0]["attachment"]["url"].as_str().unwrap().to_string();
        assert_eq!(ccda_url, format!("{}/Binary/ehr.bin-10002", gw.fhir));
        let (status, h, body) = fetch(&gw, &ccda_url, BOB, &[]).await;
        assert_eq!((status, h["content-type"].to_str().unwrap()), (200, "application/xml"));
        assert_eq!(h["content-disposition"], "attachment", "XML is saved, never shown as the gateway's page");
        assert!(body == ccda, "the C-CDA byte for byte");
        // As a FHIR Binary resource when asked for one.
        let (status, binary) = gw.get_with(&url, Some(BOB), &[("accept", "application/fhir+json")]).await;
        assert_eq!(status, 200);
        assert_eq!(
            (binary["resourceType"].as_str(), binary["contentType"].as_str()),
            (Some("Binary"), Some("application/pdf"))
        );
        use base64::Engine;
        let data = base64::engine::general_purpose::STANDARD.decode(binary["data"].as_str().unwrap()).unwrap();
        assert!(data == pdf);

        // The zip holds both documents beside the NDJSON, byte for byte, with the rewritten URLs.
        let (status, _, zip) =
            fetch(&gw, &format!("{}/Patient/{bob}/$everything?_format=zip", gw.fhir), BOB, &[]).await;
        assert_eq!(status, 200);
        let files = zip_files(&zip);
        assert!(files["documents/ehr.bin-10001.pdf"] == pdf, "rest={rest}: the zip's PDF");
        assert!(files["documents/ehr.bin-10002.xml"] == ccda);
        assert_eq!(files.keys().filter(|n| n.starts_with("documents/")).count(), 2, "{:?}", files.keys());
        let docs = String::from_utf8(files["DocumentReference.ndjson"].clone()).unwrap();
        assert!(docs.contains(&format!("\"url\":\"{url}\"")), "the NDJSON names the gateway URL");
        let readme = String::from_utf8(files["README.txt"].clone()).unwrap();
        assert!(readme.contains("2 documents"), "{readme}");

        // Every read of the content is in the access log.
        let log = gw.get_with(&format!("AuditEvent?patient={bob}"), Some(TOKEN), &[]).await.1;
        let reads = log["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e.to_string().contains("/fhir/Binary/ehr.bin-10001"))
            .count();
        assert!(reads >= 4, "{reads} logged reads of the PDF");
        gw.stop().await;
    }
}

/// Connects the signed-in account to its own record (the enrollment page).
async fn enroll(b: &Browser, mrn: &str, birth: &str, family: &str) {
    let (token, _) = b.form_page("/enroll").await;
    let birth = shifted(birth);
    let (status, html, _) =
        b.post("/enroll", &[("csrf", &token), ("mrn", mrn), ("birth_date", &birth), ("family", family)]).await;
    assert_eq!(status, 303, "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_record_pages_show_plain_notes_as_text_and_link_the_pdf_and_ccda() {
    let (gw, _) = gateway(false).await;
    let b = register(&gw, "Robert Martinez", "bob@example.org").await;
    enroll(&b, "HG100142", "1967-06-18", "Martinez").await;
    let (status, _, location) = b.get("/records").await;
    assert_eq!(status, 303);
    let link = location.unwrap().strip_prefix("/records/").unwrap().to_string();
    let html = b.view(&format!("/records/{link}/documents")).await;
    assert!(html.contains("Called in by primary care after reference lab reported potassium 6.8 mmol/L"), "{html}");
    assert!(html.contains("data-testid=\"note-text\""));
    for (id, label, bytes) in [
        ("ehr.bin-10001", "Open the PDF", fixture_bytes("bin-10001.pdf")),
        ("ehr.bin-10002", "Save the document (C-CDA, XML)", fixture_bytes("bin-10002.xml")),
    ] {
        let href = format!("/records/{link}/documents/{id}");
        assert!(html.contains(&format!("<a href=\"{href}\" data-testid=\"document-link\">{label}</a>")), "{html}");
        let r = b.http.get(b.url(&href)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(r.bytes().await.unwrap().to_vec() == bytes, "{href}: byte for byte ({ct})");
    }
    // The C-CDA can be read on a page: its title, sections and narrative, as text.
    let href = format!("/records/{link}/documents/ehr.bin-10002/readable");
    assert!(html.contains(&format!("<a href=\"{href}\" data-testid=\"document-readable\">Read it here</a>")));
    let readable = b.view(&href).await;
    for words in [
        "<h1>Diabetes follow-up</h1>",
        "<h2>Assessment and plan</h2>",
        "Type 2 diabetes improving: HbA1c 7.2 % from 7.6 %.",
        "recheck HbA1c in three months – sooner if symptoms.",
    ] {
        assert!(readable.contains(words), "{words}: {readable}");
    }
    assert!(!readable.contains("ClinicalDocument") && !readable.contains("paragraph"), "no markup: {readable}");
    // A PDF is not read onto a page: it opens.
    let (status, _, location) = b.get(&format!("/records/{link}/documents/ehr.bin-10001/readable")).await;
    assert_eq!((status, location.as_deref()), (303, Some(format!("/records/{link}/documents/ehr.bin-10001").as_str())));
    // Another person's document, through this account's record link: not found, like a made-up one.
    let (other, _, _) = b.get(&format!("/records/{link}/documents/ehr.bin-10003")).await;
    let (made_up, _, _) = b.get(&format!("/records/{link}/documents/ehr.bin-99999")).await;
    assert_eq!((other, made_up), (404, 404));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withheld_notes_content_answers_like_a_made_up_id_and_is_in_no_download() {
    let (gw, _sim) = gateway(true).await;
    let maya = gw.patient_id("ehr", "pt-10007");
    let pdf = fixture_bytes("bin-10003.pdf");
    let url = |id: &str| format!("{}/Binary/{id}", gw.fhir);

    // The shown side: Maya herself reads her confidential visit summary.
    let (status, doc) = gw.get_with("DocumentReference/ehr.doc-10018", Some(MAYA), &[]).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["content"][0]["attachment"]["url"], url("ehr.bin-10003").as_str());
    let (status, h, body) = fetch(&gw, &url("ehr.bin-10003"), MAYA, &[]).await;
    assert_eq!((status, h["content-type"].to_str().unwrap()), (200, "application/pdf"));
    assert!(body == pdf);
    let (_, _, zip) = fetch(&gw, &format!("{}/Patient/{maya}/$everything?_format=zip", gw.fhir), MAYA, &[]).await;
    assert!(zip_files(&zip)["documents/ehr.bin-10003.pdf"] == pdf, "her own download holds it");

    // The withheld side: her mother. The note itself is withheld …
    assert_eq!(gw.get_with("DocumentReference/ehr.doc-10018", Some(MOTHER), &[]).await.0, 404);
    // … and its content answers exactly like a made-up id, and like another person's document,
    // whatever form is asked for.
    for accept in ["", "application/fhir+json", "application/pdf"] {
        let headers: &[(&str, &str)] = if accept.is_empty() { &[] } else { &[("accept", accept)] };
        let withheld = answer(fetch(&gw, &url("ehr.bin-10003"), MOTHER, headers).await);
        assert_eq!(withheld.0, 404, "{}", String::from_utf8_lossy(&withheld.2));
        for other in ["ehr.bin-99999", "ehr.bin-10001", "lab.bin-10003", "nothing"] {
            assert_eq!(
                answer(fetch(&gw, &url(other), MOTHER, headers).await),
                withheld,
                "{other} vs the withheld note"
            );
        }
    }
    // Staff, who may reach any record, read it once a released resource names it.
    let (status, _) = gw.get_with(&format!("Patient/{maya}/$everything"), Some(TOKEN), &[]).await;
    assert_eq!(status, 200);
    assert!(fetch(&gw, &url("ehr.bin-10003"), TOKEN, &[]).await.2 == pdf);

    // The mother's zip, and her record pages, hold nothing of it.
    let (status, _, zip) =
        fetch(&gw, &format!("{}/Patient/{maya}/$everything?_format=zip", gw.fhir), MOTHER, &[]).await;
    assert_eq!(status, 200);
    let files = zip_files(&zip);
    assert!(files.keys().all(|n| !n.starts_with("documents/")), "{:?}", files.keys());
    for (name, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        assert!(!text.contains("bin-10003") && !text.contains("doc-10018"), "{name} names the withheld note");
        assert!(!bytes.windows(pdf.len().min(64)).any(|w| w == &pdf[..pdf.len().min(64)]), "{name}");
    }
    let ana = register(&gw, "Ana Rodriguez", "ana@example.org").await;
    let link = grant_proxy(&gw, "ana@example.org", "ehr/pt-10007", "MTH", "ehr/rp-10001").await;
    let pages = ana.every_page(&link).await;
    assert!(!pages.contains("bin-10003") && !pages.to_lowercase().contains("confidential visit summary"));
    let (withheld, withheld_html, _) = ana.get(&format!("/records/{link}/documents/ehr.bin-10003")).await;
    let (made_up, made_up_html, _) = ana.get(&format!("/records/{link}/documents/ehr.bin-99999")).await;
    assert_eq!((withheld, &withheld_html), (404, &made_up_html));
    assert_eq!(made_up, 404);
    let (withheld, withheld_html, _) = ana.get(&format!("/records/{link}/documents/ehr.bin-10003/readable")).await;
    let (made_up, made_up_html, _) = ana.get(&format!("/records/{link}/documents/ehr.bin-99999/readable")).await;
    assert_eq!((withheld, &withheld_html), (made_up, &made_up_html));
    assert_eq!(made_up, 404);
}

/// A 200 MiB attachment goes through a `portico serve` process of its own (so that what other
/// tests hold in this process does not count) without the gateway's memory growing by more
/// than a quarter of it: its peak (VmHWM) after the download against its size before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_attachment_streams_through_without_the_gateway_holding_it() {
    const SIZE: u64 = 200 * 1024 * 1024;
    let store = ResourceStore::from_resources(vec![
        json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Large", "given": ["Lee"]}],
               "birthDate": "1970-01-01", "gender": "female"}),
        json!({"resourceType": "DocumentReference", "id": "scan-1", "status": "current",
               "subject": {"reference": "Patient/p1"},
               "content": [{"attachment": {"contentType": "application/pdf", "url": "Binary/big-scan"}}]}),
    ])
    .with_binary("big-scan", StoredBinary::Generated { length: SIZE, content_type: "application/pdf".into() });
    let sim = simulate_store(store, SimulatorOptions { name: "scanner".into(), ..Default::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("large.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:8080\"\n[[server.dev_tokens]]\ntoken = \"documents-test-large-self-0123\"\n\
             viewer = \"patient\"\npatient = \"scanner/p1\"\n[database]\nurl = \"sqlite://{}/portico.db\"\n\
             [export]\ndirectory = {:?}\n{}",
            dir.path().display(),
            dir.path().join("exports").display().to_string(),
            rest_source("scanner", "Scanner", sim.base_url(), "")
        ),
    )
    .unwrap();
    let gateway = process::Process::start(&config, "large", &[]).await;
    let http = reqwest::Client::new();
    let doc: serde_json::Value = http
        .get(format!("{}/DocumentReference/scanner.scan-1", gateway.fhir()))
        .bearer_auth("documents-test-large-self-0123")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = doc["content"][0]["attachment"]["url"].as_str().unwrap().to_string();
    assert_eq!(url, format!("{}/Binary/scanner.big-scan", gateway.fhir()), "{doc}");

    let pid = gateway.child.id();
    let before = process::memory_of(pid, "VmRSS:");
    let mut resp = http.get(&url).bearer_auth("documents-test-large-self-0123").send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-length"], SIZE.to_string().as_str());
    assert_eq!(resp.headers()["content-type"], "application/pdf");
    let (mut at, mut wrong) = (0u64, 0u64);
    while let Some(chunk) = resp.chunk().await.unwrap() {
        for (i, b) in chunk.iter().enumerate() {
            if *b != generated_byte(at + i as u64) {
                wrong += 1;
            }
        }
        at += chunk.len() as u64;
    }
    assert_eq!((at, wrong), (SIZE, 0), "every byte, in order");
    let grown = process::memory_of(pid, "VmHWM:").saturating_sub(before);
    assert!(grown < SIZE / 4, "the gateway grew by {} MiB while {} MiB went through", grown >> 20, SIZE >> 20);
    // A FHIR Binary resource of it would have to be held whole: refused, clearly.
    let resp = http
        .get(&url)
        .bearer_auth("documents-test-large-self-0123")
        .header("accept", "application/fhir+json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 406);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_is_read_only_and_needs_a_token() {
    let (gw, _) = gateway(false).await;
    let r =
        gw.http.post(format!("{}/Binary/ehr.bin-10001", gw.fhir)).bearer_auth(TOKEN).body("x").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let r = gw.http.get(format!("{}/Binary/ehr.bin-10001", gw.fhir)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401, "a token is needed");
    let (status, outcome) = gw.get_with("Binary/ehr.bin-10001?_format=xml", Some(BOB), &[]).await;
    assert_eq!(status, 406, "{outcome}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teens_dispense_and_the_bill_of_her_confidential_visit_stay_from_her_mother() {
    let (gw, _) = gateway(false).await;
    let maya = gw.patient_id("ehr", "pt-10007");
    let keys_of = |resources: &[serde_json::Value]| keys(resources);
    let (own, _) = gw.all_pages_with(&format!("Patient/{maya}/$everything"), MAYA).await;
    let own = keys_of(&own);
    for k in ["Claim/ehr.clm-10001", "MedicationDispense/ehr.md-10001", "Coverage/ehr.cov-10001"] {
        assert!(own.contains(&k.to_string()), "Maya sees {k}");
    }
    let (mother, _) = gw.all_pages_with(&format!("Patient/{maya}/$everything"), MOTHER).await;
    let text = serde_json::to_string(&mother).unwrap().to_lowercase();
    assert!(!text.contains("clm-10001") && !text.contains("md-10001"), "the bill and the dispense are withheld");
    assert!(!text.contains("pregnancy") && !text.contains("camila"), "and nothing they say");
    // Withheld as what they are, not only as types without a rule: they carry the visit's and
    // the prescription's sensitivity labels (Maya herself sees the labels).
    for k in ["Claim/ehr.clm-10001", "MedicationDispense/ehr.md-10001"] {
        let (status, r) = gw.get_with(k, Some(MAYA), &[]).await;
        assert_eq!(status, 200);
        let labels = r["meta"]["security"].as_array().map_or(0, Vec::len);
        assert!(labels > 0, "{k} is labelled: {}", r["meta"]);
    }
    for (withheld, made_up) in [
        ("Claim/ehr.clm-10001", "Claim/ehr.clm-99999"),
        ("MedicationDispense/ehr.md-10001", "MedicationDispense/ehr.md-99999"),
    ] {
        let a = fetch(&gw, &format!("{}/{withheld}", gw.fhir), MOTHER, &[]).await;
        let b = fetch(&gw, &format!("{}/{made_up}", gw.fhir), MOTHER, &[]).await;
        assert_eq!(a.0, 404);
        assert_eq!(answer(a), answer(b), "{withheld}");
    }
    // Bob's renal ultrasound study reaches him.
    let (status, study) = gw.get_with("ImagingStudy/imaging.IMG.IS.00001", Some(BOB), &[]).await;
    assert_eq!((status, study["series"][0]["numberOfInstances"].as_u64()), (200, Some(3)), "{study}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_export_names_documents_by_gateway_urls_its_client_can_read() {
    const NORTH: &str = "documents-test-hie-north-token";
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let body = format!(
        "[[server.dev_tokens]]\ntoken = \"{NORTH}\"\nviewer = \"partner:hie-north:TREAT\"\ngroups = [\"north-roster\"]\n\
         [export]\ndirectory = {:?}\npoll_interval = \"100ms\"\n\
         [[export.groups]]\nid = \"north-roster\"\nname = \"HIE North\"\nmembers = [\"ehr/pt-10001\"]\n{}",
        dir.path().join("exports").display().to_string(),
        fixture_file_sources()
    );
    let gw = Gateway::start_in(dir, &body, None).await;
    // Nothing but the export has read Bob's record: the Bulk Data IG's attachment URLs must
    // still open for the client that ran it (requiresAccessToken: its own token).
    let done = crate::bulk::client::export(&gw, "Group/north-roster/$export?_type=DocumentReference", NORTH).await;
    let pdf = done.resources.iter().find(|r| r["id"] == "ehr.doc-10016").expect("Bob's PDF note is exported");
    let url = pdf["content"][0]["attachment"]["url"].as_str().unwrap();
    assert_eq!(url, format!("{}/Binary/ehr.bin-10001", gw.fhir));
    let (status, h, bytes) = fetch(&gw, url, NORTH, &[]).await;
    assert_eq!((status, h["content-type"].to_str().unwrap()), (200, "application/pdf"));
    assert!(bytes == fixture_bytes("bin-10001.pdf"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_and_media_name_their_content_by_gateway_urls_and_other_origins_are_left_alone() {
    let elsewhere = "https://elsewhere.example/reports/rep-1.pdf";
    let store = ResourceStore::from_resources(vec![
        json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Form", "given": ["Pat"]}],
               "birthDate": "1970-01-01", "gender": "female"}),
        json!({"resourceType": "DiagnosticReport", "id": "rep-1", "status": "final", "code": {"text": "Echo"},
               "subject": {"reference": "Patient/p1"},
               "presentedForm": [{"contentType": "application/pdf", "url": "Binary/rep-1-pdf", "title": "Echo report"},
                                 {"contentType": "application/pdf", "url": elsewhere}]}),
        json!({"resourceType": "Media", "id": "photo-1", "status": "completed", "subject": {"reference": "Patient/p1"},
               "content": {"contentType": "image/png", "url": "Binary/photo-1-png"}}),
    ])
    .with_binary("rep-1-pdf", StoredBinary::Generated { length: 70_001, content_type: "application/pdf".into() })
    .with_binary("photo-1-png", StoredBinary::Generated { length: 999, content_type: "image/png".into() });
    let sim = simulate_store(store, SimulatorOptions { name: "cardio".into(), ..Default::default() }).await;
    const PAT: &str = "documents-test-pat-form-self-0123";
    let body = format!(
        "[[server.dev_tokens]]\ntoken = \"{PAT}\"\nviewer = \"patient\"\npatient = \"cardio/p1\"\n{}",
        rest_source("cardio", "Cardiology", sim.base_url(), "")
    );
    let gw = Gateway::start(&body).await;
    let (status, report) = gw.get_with("DiagnosticReport/cardio.rep-1", Some(PAT), &[]).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["presentedForm"][0]["url"], format!("{}/Binary/cardio.rep-1-pdf", gw.fhir).as_str());
    assert_eq!(report["presentedForm"][0]["title"], "Echo report");
    assert_eq!(report["presentedForm"][1]["url"], elsewhere, "another origin's URL is not the source's to fetch");
    let (status, media) = gw.get_with("Media/cardio.photo-1", Some(PAT), &[]).await;
    assert_eq!(status, 200, "{media}");
    let photo = media["content"]["url"].as_str().unwrap().to_string();
    assert_eq!(photo, format!("{}/Binary/cardio.photo-1-png", gw.fhir));
    for (url, length, content_type) in
        [(format!("{}/Binary/cardio.rep-1-pdf", gw.fhir), 70_001u64, "application/pdf"), (photo, 999, "image/png")]
    {
        let (status, h, bytes) = fetch(&gw, &url, PAT, &[]).await;
        assert_eq!((status, h["content-type"].to_str().unwrap()), (200, content_type));
        assert_eq!(h["content-disposition"], "inline");
        assert_eq!(bytes.len() as u64, length);
        assert!(bytes.iter().enumerate().all(|(i, b)| *b == generated_byte(i as u64)), "{url}");
    }
}
