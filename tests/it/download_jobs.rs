//! Large records' downloads prepared as jobs, over real HTTP with a browser's cookies: the
//! home page offers a "Prepare my download" form instead of links, starting one needs the
//! CSRF token (no job otherwise), the progress page says where it is and then offers the
//! file, which holds what the inline download gives the same viewer, is in the access log,
//! holds none of a teenager's confidential items for her parent, is found only by the
//! account that started it, and survives restarts of the gateway; a failed job says so and
//! offers to try again.

use crate::common::*;
use portico::simulator::{RunningSimulator, SimulatorOptions};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BOB: &str = "dljob-test-bob-self-0123";
const MOTHER: &str = "dljob-test-maya-mother-0123";

/// Maya's items a parent may not see (as the downloads tests).
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
const MAYA_CONFIDENTIAL_WORDS: &[&str] =
    &["pregnan", "chlamydia", "gonorrh", "contracept", "choriogonadotropin", "phq"];

/// The gateway's config: dev tokens for the same viewers as the accounts, export files in
/// `exports`, `extra` lines in `[export]`, then the sources.
fn body(exports: &Path, extra: &str, sources: &str) -> String {
    format!(
        "[[server.dev_tokens]]\ntoken = \"{BOB}\"\nviewer = \"patient\"\npatient = \"ehr/pt-10001\"\n\
         [[server.dev_tokens]]\ntoken = \"{MOTHER}\"\nviewer = \"proxy:MTH\"\npatient = \"ehr/pt-10007\"\n\
         [export]\ndirectory = {:?}\npoll_interval = \"100ms\"\n{extra}\n{sources}",
        exports.display().to_string()
    )
}

/// Every record counts as large.
const LARGE: &str = "download_job_threshold = 1";

async fn start(extra: &str) -> Gateway {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let exports = dir.path().join("exports");
    Gateway::start_in(dir, &body(&exports, extra, &fixture_file_sources()), None).await
}

/// Bob Martinez's own account, connected to his record; (browser, link id).
async fn bob_account(gw: &Gateway) -> (Browser, String) {
    let b = register(gw, "Robert Martinez", "bob@example.org").await;
    let (token, _) = b.form_page("/enroll").await;
    let birth = shifted("1967-06-18");
    let (status, html, _) = b
        .post("/enroll", &[("csrf", &token), ("mrn", "HG100142"), ("birth_date", &birth), ("family", "Martinez")])
        .await;
    assert_eq!(status, 303, "{html}");
    let (status, _, location) = b.get("/records").await;
    assert_eq!(status, 303);
    let link = location.unwrap().strip_prefix("/records/").unwrap().to_string();
    (b, link)
}

/// Staff grant `username` access to Maya as her mother; the link id.
async fn grant_maya(gw: &Gateway, username: &str) -> String {
    grant_proxy(gw, username, "ehr/pt-10007", "MTH", "ehr/rp-10001").await
}

/// The same browser (its cookies) speaking to another gateway process.
fn moved(b: &Browser, gw: &Gateway) -> Browser {
    Browser { http: b.http.clone(), origin: gw.origin.clone() }
}

/// A GET: (status, headers, body bytes).
async fn fetch(b: &Browser, path: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let r = b.http.get(b.url(path)).send().await.unwrap();
    let (status, h) = (r.status().as_u16(), r.headers().clone());
    (status, h, r.bytes().await.unwrap().to_vec())
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

/// The number of download jobs in the gateway's store.
async fn download_jobs(database_url: &str) -> i64 {
    let store = portico::store::Store::open(database_url, 1).await.unwrap();
    let n = sqlx::query_scalar("SELECT COUNT(*) FROM export_jobs WHERE kind = 'download'")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    store.pool.close().await;
    n
}

/// (state, attempts) of a job's unit, if it still has one.
async fn unit_of(database_url: &str, job: &str) -> Option<(String, i64)> {
    let store = portico::store::Store::open(database_url, 1).await.unwrap();
    let row: Option<(String, i64)> = sqlx::query_as("SELECT state, attempts FROM export_units WHERE job_id = $1")
        .bind(job)
        .fetch_optional(&store.pool)
        .await
        .unwrap();
    store.pool.close().await;
    row
}

/// Starts a download job from the record's home page; the progress page's path.
async fn prepare(b: &Browser, link: &str, format: &str) -> String {
    let (token, home) = b.form_page(&format!("/records/{link}")).await;
    assert!(home.contains(&format!("data-testid=\"prepare-{format}\"")), "the home page offers to prepare it");
    assert!(!home.contains("/download.zip") && !home.contains("/download.json"), "no inline download links");
    let (status, html, location) =
        b.post(&format!("/records/{link}/downloads"), &[("csrf", &token), ("format", format)]).await;
    assert_eq!(status, 303, "{html}");
    let location = location.unwrap();
    let job = location.strip_prefix(&format!("/records/{link}/downloads/")).expect("to the progress page");
    assert!(job.len() == 32 && job.chars().all(|c| c.is_ascii_hexdigit()), "{location}");
    location
}

/// The `data-state` of a progress page.
fn state_of(html: &str) -> &str {
    let marker = "data-testid=\"download-progress\" data-state=\"";
    let start = html.find(marker).expect("a progress section") + marker.len();
    &html[start..start + html[start..].find('"').unwrap()]
}

/// A progress page, with the page headers checked.
async fn progress(b: &Browser, path: &str) -> String {
    let (status, h, bytes) = fetch(b, path).await;
    let html = String::from_utf8(bytes).unwrap();
    assert_eq!(status, 200, "{path}: {html}");
    assert_eq!(header(&h, "cache-control"), "no-store");
    let csp = header(&h, "content-security-policy");
    assert!(csp.contains("default-src 'none'") && csp.contains("form-action 'self'"), "{csp}");
    assert!(!html.contains("<script"), "no script");
    let refreshes = html.contains("<meta http-equiv=\"refresh\" content=\"3\">");
    match state_of(&html) {
        "waiting" | "working" => {
            assert!(refreshes, "a running job's page reloads itself");
            assert!(html.contains("Preparing your download…") && html.contains(" of 3 steps done"), "{html}");
        }
        "ready" | "failed" => assert!(!refreshes, "a finished job's page stays put"),
        other => panic!("unknown state {other}"),
    }
    html
}

/// Polls a progress page until the job is no longer running; its last page.
async fn finished(b: &Browser, path: &str) -> String {
    let started = Instant::now();
    loop {
        let html = progress(b, path).await;
        if matches!(state_of(&html), "ready" | "failed") {
            return html;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "the job did not finish: {html}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn sorted(mut resources: Vec<Value>) -> Vec<Value> {
    resources.sort_by_key(|r| format!("{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap()));
    resources
}

/// The resources of a zip's NDJSON files, each in its type's file.
fn ndjson_resources(files: &BTreeMap<String, String>) -> Vec<Value> {
    let mut out = Vec::new();
    for (name, text) in files.iter().filter(|(n, _)| n.ends_with(".ndjson")) {
        for line in text.lines() {
            let r: Value = serde_json::from_str(line).unwrap();
            assert_eq!(format!("{}.ndjson", r["resourceType"].as_str().unwrap()), *name);
            out.push(r);
        }
    }
    sorted(out)
}

/// `$everything` for `token`, sorted.
async fn everything(gw: &Gateway, patient: &str, token: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut next = Some(format!("{}/Patient/{patient}/$everything?_count=500", gw.fhir));
    while let Some(url) = next.take() {
        let (status, page) = gw.get_with(&url, Some(token), &[]).await;
        assert_eq!(status, 200, "{page}");
        all.extend(
            page["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["search"]["mode"] != "outcome")
                .map(|e| e["resource"].clone()),
        );
        next = link(&page, "next");
    }
    sorted(all)
}

/// The record's access log as staff read it: (what, outcome, role) per entry.
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

/// The prepared file of a ready job's page.
async fn download(b: &Browser, page: &str, html: &str) -> (reqwest::header::HeaderMap, Vec<u8>) {
    let file = format!("{page}/file");
    assert!(html.contains(&format!("href=\"{file}\"")), "{html}");
    let (status, h, bytes) = fetch(b, &file).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(header(&h, "cache-control"), "no-store");
    assert_eq!(header(&h, "x-content-type-options"), "nosniff");
    (h, bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_record_is_prepared_as_a_job_and_holds_what_the_inline_download_gives() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let exports = dir.path().join("exports");
    let gw = Gateway::start_in(dir.clone(), &body(&exports, LARGE, &fixture_file_sources()), None).await;
    let bob = gw.patient_id("ehr", "pt-10001");
    let (b, link) = bob_account(&gw).await;

    // The old links lead back to the home page, with nothing of the record in the answer.
    for file in ["zip", "json"] {
        let (status, h, bytes) = fetch(&b, &format!("/records/{link}/download.{file}")).await;
        assert_eq!((status, header(&h, "location")), (303, format!("/records/{link}#download-heading").as_str()));
        assert!(bytes.is_empty() && header(&h, "content-disposition").is_empty());
    }
    // Starting a job is a form with the CSRF token, never a GET.
    let (token, _) = b.form_page(&format!("/records/{link}")).await;
    let starts = format!("/records/{link}/downloads");
    for form in [vec![("format", "zip")], vec![("csrf", "not-the-token"), ("format", "zip")]] {
        let (status, html, _) = b.post(&starts, &form).await;
        assert_eq!(status, 403, "{html}");
        assert!(html.contains("did not come from this site"));
    }
    assert_eq!(fetch(&b, &starts).await.0, 405, "no GET starts a job");
    let (status, _, _) = b.post(&starts, &[("csrf", &token), ("format", "pdf")]).await;
    assert_eq!(status, 400, "a format we do not offer");
    assert_eq!(download_jobs(&gw.database_url).await, 0, "nothing refused made a job");
    assert!(!access_log(&gw, &bob).await.iter().any(|(w, _, _)| w.contains("download")));

    // The zip: started, followed, downloaded.
    let page = prepare(&b, &link, "zip").await;
    assert_eq!(download_jobs(&gw.database_url).await, 1);
    let html = finished(&b, &page).await;
    assert_eq!(state_of(&html), "ready", "{html}");
    assert!(html.contains("your own record") && html.contains("Your download is ready"), "{html}");
    assert!(html.contains("data-testid=\"withheld-notice\"") && html.contains("complete record"), "{html}");
    let (h, zip_bytes) = download(&b, &page, &html).await;
    assert_eq!(header(&h, "content-type"), "application/zip");
    assert_eq!(header(&h, "content-disposition"), format!("attachment; filename=\"health-record-{bob}.zip\""));
    let job_zip = unzip(&zip_bytes);
    let expected = everything(&gw, &bob, BOB).await;
    assert!(expected.len() > 40, "Bob's record is a real one");
    assert_eq!(ndjson_resources(&job_zip), expected, "what $everything gives the same viewer");
    assert!(job_zip["summary.html"].contains("Health record summary: Robert James Martinez"));
    assert!(job_zip["withheld-notice.txt"].contains("complete record"));

    // The JSON Bundle, the same way.
    let page_json = prepare(&b, &link, "json").await;
    let html = finished(&b, &page_json).await;
    assert_eq!(state_of(&html), "ready", "{html}");
    let (h, bytes) = download(&b, &page_json, &html).await;
    assert_eq!(header(&h, "content-type"), "application/fhir+json; charset=utf-8");
    assert_eq!(header(&h, "content-disposition"), format!("attachment; filename=\"health-record-{bob}.json\""));
    let bundle: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!((bundle["resourceType"].as_str(), bundle["type"].as_str()), (Some("Bundle"), Some("searchset")));
    let entries = bundle["entry"].as_array().unwrap();
    let matches: Vec<Value> =
        entries.iter().filter(|e| e["search"]["mode"] == "match").map(|e| e["resource"].clone()).collect();
    assert_eq!(sorted(matches), expected);
    assert_eq!(bundle["total"], expected.len());

    // Each file that went out is in the access log, as Bob's download.
    let log = access_log(&gw, &bob).await;
    for p in [&page, &page_json] {
        let what = format!("{p}/file");
        let n = log.iter().filter(|(w, o, role)| w == &what && o == "0" && role == "patient").count();
        assert_eq!(n, 1, "{what}: {log:?}");
    }

    // The same gateway with the default threshold builds the zip inline: the same contents.
    let database_url = gw.database_url.clone();
    let old_fhir = gw.fhir.clone();
    gw.stop().await;
    let gw = Gateway::start_in(dir.clone(), &body(&exports, "", &fixture_file_sources()), None).await;
    assert_eq!(gw.database_url, database_url);
    // Attachment URLs name the gateway's Binary URL, and the restarted gateway has another port.
    let job_zip: BTreeMap<String, String> =
        job_zip.into_iter().map(|(name, text)| (name, text.replace(&old_fhir, &gw.fhir))).collect();
    let b = moved(&b, &gw);
    let home = b.form_page(&format!("/records/{link}")).await.1;
    assert!(home.contains("data-testid=\"download-zip\"") && !home.contains("prepare-zip"), "small again");
    let (status, h, bytes) = fetch(&b, &format!("/records/{link}/download.zip")).await;
    assert_eq!((status, header(&h, "content-type")), (200, "application/zip"));
    let inline = unzip(&bytes);
    assert_eq!(inline.keys().collect::<Vec<_>>(), job_zip.keys().collect::<Vec<_>>(), "the same files");
    assert_eq!(ndjson_resources(&inline), ndjson_resources(&job_zip), "the same NDJSON contents");
    for name in inline.keys().filter(|n| n.ends_with(".ndjson")) {
        assert_eq!(inline[name], job_zip[name], "{name} is byte for byte the same");
    }
    assert_eq!(inline["withheld-notice.txt"], job_zip["withheld-notice.txt"]);
    // The prepared file outlives the restart.
    let (_, again) = download(&b, &page, &progress(&b, &page).await).await;
    assert_eq!(again, zip_bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_job_for_a_teenager_holds_nothing_confidential_and_only_her_account_finds_it() {
    let gw = start(LARGE).await;
    let maya = gw.patient_id("ehr", "pt-10007");
    let ana = register(&gw, "Ana Rodriguez", "ana@example.org").await;
    let link = grant_maya(&gw, "ana@example.org").await;

    let page = prepare(&ana, &link, "zip").await;
    let html = finished(&ana, &page).await;
    assert_eq!(state_of(&html), "ready", "{html}");
    // The catalogue's text is escaped like any other: the apostrophe arrives as `&#x27;`.
    assert!(html.contains("You are viewing <strong>Maya Rodriguez&#x27;s record</strong>"), "whose: {html}");
    assert!(html.contains("complete record"), "the withheld-notice");
    let (_, bytes) = download(&ana, &page, &html).await;
    let files = unzip(&bytes);
    // The withheld side, in every file …
    for (name, text) in &files {
        let text = text.to_lowercase();
        for id in MAYA_CONFIDENTIAL_IDS {
            assert!(!text.contains(id), "{name} must not hold {id}");
        }
        for word in MAYA_CONFIDENTIAL_WORDS {
            assert!(!text.contains(word), "{name} must not say `{word}`");
        }
    }
    // … which staff's copy of the same record does hold, so the checks can find them.
    let full = everything(&gw, &maya, TOKEN).await;
    let full_text = serde_json::to_string(&full).unwrap().to_lowercase();
    assert!(MAYA_CONFIDENTIAL_IDS.iter().all(|id| full_text.contains(id)));
    // The shown side: all a mother may see.
    let expected = everything(&gw, &maya, MOTHER).await;
    assert_eq!(ndjson_resources(&files), expected);
    let ids: Vec<&str> = expected.iter().map(|r| r["id"].as_str().unwrap()).collect();
    for shown in ["ehr.imm-10006", "ehr.imm-10008", "ehr.imm-10009"] {
        assert!(ids.contains(&shown), "{shown}");
    }
    assert!(files["summary.html"].contains("Health record summary: Maya"));

    // Not signed in: to sign-in.
    let stranger = Browser::new(&gw);
    for path in [page.clone(), format!("{page}/file")] {
        let (status, _, location) = stranger.get(&path).await;
        assert_eq!((status, location.as_deref()), (303, Some("/login")), "{path}");
    }
    let (status, _, location) = stranger.post(&format!("/records/{link}/downloads"), &[("format", "zip")]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/login")));
    // Another account: Ana's job is "not found", exactly like a made-up one — under Ana's
    // link and under his own record's link.
    let (carl, carl_link) = bob_account(&gw).await;
    let job = page.rsplit('/').next().unwrap();
    let made_up = "0123456789abcdef0123456789abcdef";
    for l in [&link, &carl_link] {
        for suffix in ["", "/file"] {
            let theirs = carl.get(&format!("/records/{l}/downloads/{job}{suffix}")).await;
            let invented = carl.get(&format!("/records/{l}/downloads/{made_up}{suffix}")).await;
            let nonsense = carl.get(&format!("/records/{l}/downloads/..%2F{job}{suffix}")).await;
            assert_eq!(theirs.0, 404, "{}", theirs.1);
            assert_eq!(theirs, invented);
            assert_eq!(theirs, nonsense);
        }
    }
    // Nor can he start one on her link.
    let (token, _) = carl.form_page(&format!("/records/{carl_link}")).await;
    let (status, _, _) = carl.post(&format!("/records/{link}/downloads"), &[("csrf", &token), ("format", "zip")]).await;
    assert_eq!(status, 404);
    assert_eq!(download_jobs(&gw.database_url).await, 1, "only Ana's job");

    // Only Ana's one download is in Maya's access log.
    let downloads: Vec<_> =
        access_log(&gw, &maya).await.into_iter().filter(|(w, _, _)| w.contains("/downloads/")).collect();
    assert_eq!(downloads, vec![(format!("{page}/file"), "0".to_string(), "MTH".to_string())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_cut_off_by_restarts_completes_afterwards() {
    let lab: RunningSimulator = simulate("lab", SimulatorOptions::default()).await;
    let files: String = fixture_file_sources()
        .split("[[sources]]")
        .filter(|b| !b.trim().is_empty() && !b.contains("name = \"lab\""))
        .map(|b| format!("[[sources]]{b}"))
        .collect();
    let sources =
        format!("{files}{}", rest_source("lab", &display_of("lab"), lab.base_url(), "retry_backoff = \"20ms\""));
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let exports = dir.path().join("exports");
    let config = |workers: usize| body(&exports, &format!("{LARGE}\nworkers = {workers}"), &sources);

    // Queued on a gateway without workers, then that gateway stops.
    let first = Gateway::start_in(dir.clone(), &config(0), None).await;
    let database_url = first.database_url.clone();
    let first_bob = first.patient_id("ehr", "pt-10001");
    let (b, link) = bob_account(&first).await;
    let page = prepare(&b, &link, "zip").await;
    let job = page.rsplit('/').next().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(state_of(&progress(&b, &page).await), "waiting");
    first.stop().await;

    // The next one starts it while the lab is slow, and stops in the middle of it (its
    // worker has claimed the unit and is gathering the record).
    lab.controls().set_latency(Duration::from_secs(3));
    let second = Gateway::start_in(dir.clone(), &config(1), None).await;
    // The worker claims the unit, then marks the job running: wait for both.
    let started = Instant::now();
    let store = portico::store::Store::open(&database_url, 1).await.unwrap();
    let (state, step) = loop {
        let claimed = unit_of(&database_url, &job).await.map(|u| u.0).as_deref() == Some("claimed");
        let (state, step): (String, i64) = sqlx::query_as("SELECT state, step FROM export_jobs WHERE id = $1")
            .bind(&job)
            .fetch_one(&store.pool)
            .await
            .unwrap();
        if claimed && state != "queued" {
            break (state, step);
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    store.pool.close().await;
    assert_eq!((state.as_str(), step), ("running", 0), "gathering the record");
    second.stop().await;
    let (unit_state, attempts) = unit_of(&database_url, &job).await.expect("the unit is still queued");
    assert_eq!((unit_state.as_str(), attempts), ("ready", 1), "given back to the queue, tried once");
    assert!(!exports.join(&job).join(format!("health-record-{}.zip", first_bob)).exists(), "no file yet");

    // The third completes it, with the whole record (the lab included).
    lab.controls().set_latency(Duration::ZERO);
    let third = Gateway::start_in(dir.clone(), &config(1), None).await;
    let b = moved(&b, &third);
    let html = finished(&b, &page).await;
    assert_eq!(state_of(&html), "ready", "{html}");
    assert!(!html.contains("data-testid=\"source-banner\""), "nothing missing: {html}");
    let (_, bytes) = download(&b, &page, &html).await;
    let files = unzip(&bytes);
    let bob = third.patient_id("ehr", "pt-10001");
    let expected = everything(&third, &bob, BOB).await;
    assert!(expected.iter().any(|r| source_tags(r).contains(&"lab".to_string())), "the lab's results are there");
    assert_eq!(ndjson_resources(&files), expected);
    assert!(!files["README.txt"].contains("may be missing"));
    let (unit_state, attempts) = unit_of(&database_url, &job).await.unwrap();
    assert_eq!((unit_state.as_str(), attempts), ("done", 2));
    let log = access_log(&third, &bob).await;
    assert_eq!(log.iter().filter(|(w, _, _)| w == &format!("{page}/file")).count(), 1, "{log:?}");
    third.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_says_so_and_offers_to_try_again() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    // The export folder cannot be made: a file stands where it should be.
    let blocked = dir.path().join("exports");
    std::fs::write(&blocked, "not a folder").unwrap();
    let gw = Gateway::start_in(dir.clone(), &body(&blocked, LARGE, &fixture_file_sources()), None).await;
    let (b, link) = bob_account(&gw).await;
    let page = prepare(&b, &link, "zip").await;
    let html = finished(&b, &page).await;
    assert_eq!(state_of(&html), "failed", "{html}");
    assert!(html.contains("We could not prepare your download"), "{html}");
    assert!(!html.contains("/file\""), "no file to offer");
    assert_eq!(b.get(&format!("{page}/file")).await.0, 404);
    // Try again: the page's own form starts a new job.
    let token = csrf(&html);
    assert_eq!(value_of(&html, "format"), vec!["zip".to_string()]);
    let (status, _, location) =
        b.post(&format!("/records/{link}/downloads"), &[("csrf", &token), ("format", "zip")]).await;
    assert_eq!(status, 303);
    let again = location.unwrap();
    assert!(again.starts_with(&format!("/records/{link}/downloads/")) && again != page, "{again}");
    assert_eq!(download_jobs(&gw.database_url).await, 2);
    let bob = gw.patient_id("ehr", "pt-10001");
    assert!(!access_log(&gw, &bob).await.iter().any(|(w, _, _)| w.contains("/downloads/")), "nothing went out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_file_that_cannot_be_logged_does_not_go_out_and_files_expire() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let exports = dir.path().join("exports");
    // Long enough that the steps before the download fit on a loaded CI machine (5 s did not).
    let extra = format!("{LARGE}\nfile_lifetime = \"15s\"");
    let gw = Gateway::start_in(dir.clone(), &body(&exports, &extra, &fixture_file_sources()), None).await;
    let ana = register(&gw, "Ana Rodriguez", "ana@example.org").await;
    let link = grant_maya(&gw, "ana@example.org").await;
    let page = prepare(&ana, &link, "zip").await;
    let html = finished(&ana, &page).await;
    assert_eq!(state_of(&html), "ready", "{html}");
    let job = page.rsplit('/').next().unwrap().to_string();
    assert!(exports.join(&job).is_dir());

    // The access log's table goes away: the file does not go out, and nothing of it shows.
    let store = portico::store::Store::open(&gw.database_url, 1).await.unwrap();
    sqlx::query("ALTER TABLE audit_events RENAME TO audit_events_gone").execute(&store.pool).await.unwrap();
    let (status, h, bytes) = fetch(&ana, &format!("{page}/file")).await;
    assert_eq!(status, 503);
    assert!(header(&h, "content-type").starts_with("text/html") && header(&h, "content-disposition").is_empty());
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("imm-1000") && !text.contains("PK"), "{text}");
    sqlx::query("ALTER TABLE audit_events_gone RENAME TO audit_events").execute(&store.pool).await.unwrap();
    store.pool.close().await;
    download(&ana, &page, &html).await;

    // After its lifetime the job and its file are gone: the page is "not found".
    let started = Instant::now();
    while ana.get(&page).await.0 != 404 {
        assert!(started.elapsed() < Duration::from_secs(40), "the job did not expire");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!exports.join(&job).exists(), "its file is removed");
    assert_eq!(ana.get(&format!("{page}/file")).await.0, 404);
    assert_eq!(download_jobs(&gw.database_url).await, 0);
}
