//! Shared integration-test harness: starts simulators over the fixture folders and the
//! real gateway on port 0 with a temporary database, and speaks HTTP to it.
#![allow(dead_code)]

mod browser;
mod mail;
pub mod process;
pub mod s3;
mod smtp;
mod venv;
#[allow(unused_imports)]
pub use browser::{csrf, unescape, value_of, Browser, RECORD_PAGES};
#[allow(unused_imports)]
pub use mail::{folder_mails, verify_email, wait_for_mail, Mail};
#[allow(unused_imports)]
pub use smtp::SmtpSink;
pub use venv::python_with;

use portico::config::Config;
use portico::simulator::{self, RunningSimulator, SimulatorOptions};
use portico::sources::files::ResourceStore;
use portico::App;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The demo's dev token (also accepted by test gateways).
pub const TOKEN: &str = "portico-test-token-0123456789";

/// The day fixture dates are written relative to.
pub const FIXTURE_ANCHOR: &str = "2026-01-01";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixtures(source: &str) -> PathBuf {
    root().join("fixtures").join(source)
}

/// The day this test run calls today (UTC), fixed at its first use: a run that crosses
/// midnight keeps one date shift for the fixtures it loads itself and the dates it expects.
static RUN_DAY: std::sync::LazyLock<chrono::NaiveDate> = std::sync::LazyLock::new(|| chrono::Utc::now().date_naive());

fn anchor_day() -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(FIXTURE_ANCHOR, "%Y-%m-%d").unwrap()
}

/// Whole days from the fixture anchor to the run's day (UTC).
pub fn shift_days() -> i64 {
    (*RUN_DAY - anchor_day()).num_days()
}

/// The anchor to write as a source's `shift_dates_from` (or a simulator's
/// `--shift-dates-from`): the gateway or simulator counts its shift from its own clock when it
/// starts, so the anchor moves on by the days since the run's day and the shift it counts is
/// [`shift_days`] even after midnight.
pub fn fixture_anchor() -> String {
    let since_run_day = chrono::Utc::now().date_naive() - *RUN_DAY;
    (anchor_day() + since_run_day).format("%Y-%m-%d").to_string()
}

/// Loads a fixture source as the simulator and file sources see it.
pub fn fixture_store(source: &str) -> ResourceStore {
    ResourceStore::load(&fixtures(source), shift_days()).expect("fixtures load")
}

/// Starts a simulator serving one fixture source.
pub async fn simulate(source: &str, options: SimulatorOptions) -> RunningSimulator {
    simulator::start(
        fixture_store(source),
        SimulatorOptions { name: source.into(), ..options },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .expect("simulator starts")
}

/// Starts a simulator serving resources made by the test.
pub async fn simulate_store(store: ResourceStore, options: SimulatorOptions) -> RunningSimulator {
    simulator::start(store, options, "127.0.0.1:0".parse().unwrap()).await.expect("simulator starts")
}

/// A `[[sources]]` block for a REST source; `extra` is more TOML lines.
pub fn rest_source(name: &str, display: &str, url: &str, extra: &str) -> String {
    format!("[[sources]]\nname = \"{name}\"\ndisplay = \"{display}\"\nkind = \"fhir\"\nurl = \"{url}\"\n{extra}\n")
}

/// The four fixture systems as REST sources served by `sims` (ehr, lab, imaging, behavioral).
pub fn fixture_sources(sims: &[(&str, &RunningSimulator)]) -> String {
    sims.iter()
        .map(|(name, sim)| rest_source(name, &display_of(name), sim.base_url(), "retry_backoff = \"20ms\""))
        .collect()
}

/// The four fixture systems as `files` sources (fast: no HTTP), dates shifted to today.
pub fn fixture_file_sources() -> String {
    ["ehr", "lab", "imaging", "behavioral"]
        .iter()
        .map(|s| {
            let anchor = fixture_anchor();
            format!(
                "[[sources]]\nname = {s:?}\ndisplay = {:?}\nkind = \"files\"\npath = {:?}\nshift_dates_from = \"{anchor}\"\n",
                display_of(s),
                fixtures(s).display().to_string()
            )
        })
        .collect()
}

pub fn display_of(source: &str) -> String {
    match source {
        "ehr" => "Harbor General Hospital",
        "lab" => "Bayview Regional Reference Lab",
        "imaging" => "Harbor Imaging Center",
        "behavioral" => "Harbor Behavioral Health Clinic",
        other => other,
    }
    .to_string()
}

/// The key-encryption key every test gateway (and every `portico` the tests run) is given
/// (base64 of 32 bytes; a test value, never a deployment's).
pub const TEST_KEK: &str = "cG9ydGljby10ZXN0LWtleS1lbmNyeXB0aW9uLWtleSE=";
/// Its environment variable.
pub const KEK_ENV: &str = portico::auth::keyring::KEK_ENV;

/// The test KEK, for services a test builds itself over a gateway's store.
pub fn test_kek() -> std::sync::Arc<portico::auth::keyring::KeyEncryptionKey> {
    std::sync::Arc::new(portico::auth::keyring::KeyEncryptionKey::from_base64(TEST_KEK, KEK_ENV).unwrap())
}

/// A running gateway.
pub struct Gateway {
    /// `http://127.0.0.1:PORT`
    pub origin: String,
    /// `http://127.0.0.1:PORT/fhir`
    pub fhir: String,
    pub http: reqwest::Client,
    pub index: std::sync::Arc<portico::identity::PatientIndex>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Holds the temporary database folder while the gateway runs.
    pub dir: std::sync::Arc<tempfile::TempDir>,
    /// The gateway's database (an SQLite file in `dir`, or a PostgreSQL schema).
    pub database_url: String,
    /// A PostgreSQL schema this gateway created and drops when it goes.
    schema: Option<String>,
    /// Where the gateway writes its mail (`{dir}/mail`) unless the test gave its own `[mail]`.
    pub mail_dir: PathBuf,
}

impl Gateway {
    /// Starts the gateway with `body` (TOML: sections and sources) on a fresh SQLite file.
    pub async fn start(body: &str) -> Gateway {
        Self::start_in(std::sync::Arc::new(tempfile::tempdir().unwrap()), body, None).await
    }

    /// Starts on `dir` (reuse it to restart over the same database), optionally with an
    /// explicit database URL.
    pub async fn start_in(dir: std::sync::Arc<tempfile::TempDir>, body: &str, database_url: Option<&str>) -> Gateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(listener, dir, "", body, database_url).await
    }

    /// Starts serving on `listener` (any local address; the config says it listens on
    /// 127.0.0.1 at the same port, so dev tokens are allowed), with `server` as extra
    /// `[server]` lines (e.g. `public_base_url = "…"`).
    pub async fn start_on(
        listener: tokio::net::TcpListener,
        dir: std::sync::Arc<tempfile::TempDir>,
        server: &str,
        body: &str,
        database_url: Option<&str>,
    ) -> Gateway {
        Self::start_on_clock(listener, dir, server, body, database_url, portico::Clock::system()).await
    }

    /// [`Gateway::start`] with the app on `clock` (a [`portico::Clock::set_at`] clock the
    /// test moves: the proxy lifecycle, a proxy's age band and the pages' ages follow it;
    /// sessions, tokens and mail dates stay on the system clock).
    pub async fn start_with_clock(body: &str, clock: portico::Clock) -> Gateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
        Self::start_on_clock(listener, dir, "", body, None, clock).await
    }

    async fn start_on_clock(
        listener: tokio::net::TcpListener,
        dir: std::sync::Arc<tempfile::TempDir>,
        server: &str,
        body: &str,
        database_url: Option<&str>,
        clock: portico::Clock,
    ) -> Gateway {
        let addr = listener.local_addr().unwrap();
        let listen = std::net::SocketAddr::from(([127, 0, 0, 1], addr.port()));
        // TEST_ON_POSTGRES=1 runs every gateway of the suite on PostgreSQL, each
        // in a fresh schema (CI runs the suite both ways).
        // The schema follows the folder, so a gateway restarted on the same folder finds
        // its database again.
        let schema = (database_url.is_none() && std::env::var("TEST_ON_POSTGRES").as_deref() == Ok("1")).then(|| {
            use sha2::Digest;
            let digest = hex::encode(sha2::Sha256::digest(dir.path().to_string_lossy().as_bytes()));
            let schema = format!("portico_g_{}", &digest[..16]);
            psql(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"));
            schema
        });
        let db = match (&schema, database_url) {
            (Some(schema), _) => url_for(schema),
            (None, Some(url)) => url.to_string(),
            (None, None) => format!("sqlite://{}/portico.db", dir.path().display()),
        };
        let mail_dir = dir.path().join("mail");
        // Test gateways write their mail to a folder, so registrations can be verified.
        let mail = if body.contains("[mail]") {
            String::new()
        } else {
            format!("\n[mail]\nfolder = {:?}\n", mail_dir.display().to_string())
        };
        let text = format!(
            "[server]\nlisten = \"{listen}\"\ndev_token = \"{TOKEN}\"\n{server}\n[database]\nurl = \"{db}\"\n{body}{mail}"
        );
        let vars = [(KEK_ENV.to_string(), TEST_KEK.to_string())];
        let config =
            Config::from_toml(&text, "test.toml", &root().join("config"), &vars).unwrap_or_else(|e| panic!("{e}"));
        let app = App::build_with_clock(config, clock).await.expect("gateway builds");
        let index = app.index.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            app.serve(listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Gateway {
            origin: format!("http://{addr}"),
            fhir: format!("http://{addr}/fhir"),
            http: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap(),
            index,
            shutdown: Some(tx),
            task: Some(task),
            dir,
            database_url: db,
            schema,
            mail_dir,
        }
    }

    /// Stops serving and waits for in-flight requests.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    /// GET `path` (relative to `/fhir/`, or an absolute URL) with the dev token.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.get_with(path, Some(TOKEN), &[]).await
    }

    pub async fn get_with(&self, path: &str, token: Option<&str>, headers: &[(&str, &str)]) -> (u16, Value) {
        let url = if path.starts_with("http") { path.to_string() } else { format!("{}/{}", self.fhir, path) };
        let mut req = self.http.get(url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("gateway answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Follows `next` links from `path`, returning every entry resource (outcomes excluded)
    /// and the outcome entries seen.
    pub async fn all_pages(&self, path: &str) -> (Vec<Value>, Vec<Value>) {
        self.all_pages_with(path, TOKEN).await
    }

    /// [`Gateway::all_pages`] with another token.
    pub async fn all_pages_with(&self, path: &str, token: &str) -> (Vec<Value>, Vec<Value>) {
        let (mut resources, mut outcomes) = (Vec::new(), Vec::new());
        let mut next = Some(path.to_string());
        let mut pages = 0;
        while let Some(p) = next.take() {
            pages += 1;
            assert!(pages < 500, "paging does not end");
            let (status, bundle) = self.get_with(&p, Some(token), &[]).await;
            assert_eq!(status, 200, "{bundle}");
            for e in bundle["entry"].as_array().into_iter().flatten() {
                if e["search"]["mode"] == "outcome" {
                    outcomes.push(e["resource"].clone());
                } else {
                    resources.push(e["resource"].clone());
                }
            }
            next = link(&bundle, "next");
        }
        (resources, outcomes)
    }

    /// Runs `read` on the gateway's patient index from synchronous test code: on a thread
    /// of its own with its own runtime and connection (the index lives in the database),
    /// so the test's runtime may keep serving meanwhile.
    pub fn read_index<T: Send + 'static>(
        &self,
        read: impl FnOnce(portico::identity::PatientIndex) -> futures::future::BoxFuture<'static, T> + Send + 'static,
    ) -> T {
        let url = self.database_url.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let store = portico::store::Store::open(&url, 1).await.unwrap_or_else(|e| panic!("{e}"));
                let index = portico::identity::PatientIndex::open(store.clone()).await.unwrap();
                let out = read(index).await;
                store.pool.close().await;
                out
            })
        })
        .join()
        .unwrap()
    }

    /// The values of `names` (each a metric with its labels as `/metrics` prints them, e.g.
    /// `portico_kept_decisions{measure="resources"}`) in `/metrics` now.
    pub async fn metric_values<const N: usize>(&self, names: [&str; N]) -> [u64; N] {
        let text = reqwest::get(format!("{}/metrics", self.origin)).await.unwrap().text().await.unwrap();
        names.map(|name| {
            let name = format!("{name} ");
            text.lines().find_map(|l| l.strip_prefix(name.as_str())).expect(&text).parse().unwrap()
        })
    }

    /// The gateway id of a source's patient record.
    pub fn patient_id(&self, source: &str, source_id: &str) -> String {
        let (source, source_id) = (source.to_string(), source_id.to_string());
        self.read_index(move |index| {
            Box::pin(async move {
                let found = index.gateway_id_of(&source, &source_id).await.unwrap();
                found.unwrap_or_else(|| panic!("{source}/{source_id} not indexed"))
            })
        })
    }

    /// Every link of the patient index.
    pub fn links(&self) -> Vec<portico::identity::PatientLink> {
        self.read_index(|index| Box::pin(async move { index.links().await.unwrap() }))
    }

    /// Source records holding an identifier with this value (no on-demand lookups).
    pub fn records_with_identifier(
        &self,
        value: &str,
    ) -> Vec<(String, String, portico::identity::matching::Demographics)> {
        let value = value.to_string();
        self.read_index(move |index| {
            Box::pin(async move { index.records_with_identifier(&value, soon()).await.unwrap() })
        })
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // The last gateway on a folder drops its schema (a test still holding the folder
        // may restart on it; scripts/test clears what is left before a PostgreSQL run).
        if let Some(schema) = self.schema.take().filter(|_| std::sync::Arc::strong_count(&self.dir) == 1) {
            drop_schema(&schema);
        }
    }
}

/// Runs one statement on the test PostgreSQL server with psql (usable where no runtime is).
/// Drops a stopped gateway's schema. The gateway's background tasks (export workers, the
/// index refresher) may still hold a transaction on it — and on a current-thread test
/// runtime they cannot finish while this blocks — so their sessions are ended first, and
/// the drop waits for locks only briefly (retried; a schema left behind is cleared by
/// `scripts/test` before the next PostgreSQL run).
fn drop_schema(schema: &str) {
    for _ in 0..5 {
        let sql = format!(
            "SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '{schema}' AND l.pid <> pg_backend_pid(); \
             SET lock_timeout = '2s'; DROP SCHEMA IF EXISTS {schema} CASCADE"
        );
        if try_psql(&sql).is_ok() {
            return;
        }
    }
    eprintln!("schema {schema} left behind: its locks were not released");
}

fn try_psql(sql: &str) -> Result<(), String> {
    let out = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-q", "-c", sql])
        .output()
        .unwrap_or_else(|e| panic!("psql is needed for PostgreSQL test runs: {e}"));
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn psql(sql: &str) {
    if let Err(e) = try_psql(sql) {
        panic!("psql {sql}: {e}");
    }
}

pub fn link(bundle: &Value, relation: &str) -> Option<String> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == relation)
        .and_then(|l| l["url"].as_str())
        .map(str::to_string)
}

/// The source codes in a resource's provenance tags.
pub fn source_tags(r: &Value) -> Vec<String> {
    r["meta"]["tag"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["system"] == portico::aggregate::merge::SOURCE_TAG_SYSTEM)
        .filter_map(|t| t["code"].as_str().map(str::to_string))
        .collect()
}

/// The password test accounts are registered with.
pub const PASSWORD: &str = "harbor-lights-at-dusk";

/// Whether `text` mentions `stem` (any case) as the start of a word: "PHQ-9" and
/// "Pregnancy" mention "phq" and "pregnan"; a random token that happens to hold the letters
/// (a CSRF token, a nonce: "…xPhQ…") does not. Privacy checks on pages look for withheld
/// words this way, so that a page's random strings cannot fail them by chance.
pub fn mentions(text: &str, stem: &str) -> bool {
    let (text, stem) = (text.to_lowercase(), stem.to_lowercase());
    text.match_indices(&stem).any(|(at, _)| word_edge(text[..at].chars().next_back()))
}

/// Whether `text` holds `word` (any letter case) as a word of its own: not inside a longer
/// run of letters and digits, as "f32" sits inside a random urn:uuid:…-7f32-….
pub fn holds_word(text: &str, word: &str) -> bool {
    let (text, word) = (text.to_lowercase(), word.to_lowercase());
    text.match_indices(&word)
        .any(|(at, _)| word_edge(text[..at].chars().next_back()) && word_edge(text[at + word.len()..].chars().next()))
}

/// Whether a word may end or start beside `c` (none, or anything but an ASCII letter or digit).
fn word_edge(c: Option<char>) -> bool {
    !c.is_some_and(|c| c.is_ascii_alphanumeric())
}

#[test]
fn a_word_is_found_on_its_own_not_inside_an_id() {
    assert!(holds_word("<td>F32.9</td>", "F32"));
    assert!(holds_word("\"code\":\"f32\"", "F32"));
    assert!(holds_word("Mental health", "mental"));
    assert!(!holds_word("urn:uuid:fe85fb2f-7f32-4723", "F32"));
    assert!(!holds_word("supplemental", "mental"));
}

#[test]
fn a_stem_is_mentioned_at_the_start_of_a_word_only() {
    for (text, stem) in
        [("PHQ-9 score", "phq"), ("<td>Pregnancy</td>", "pregnan"), ("(phq9)", "phq"), ("depresión", "depresión")]
    {
        assert!(mentions(text, stem), "{text} mentions {stem}");
    }
    for (text, stem) in [("csrf=aZphQ3x", "phq"), ("nonce=\"k9PHQ\"", "phq"), ("nonpregnant", "pregnan")] {
        assert!(!mentions(text, stem), "{text} does not mention {stem}");
    }
}

/// A fixture date as the gateway holds it (dates move with today).
pub fn shifted(date: &str) -> String {
    let d = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap() + chrono::Duration::days(shift_days());
    d.format("%Y-%m-%d").to_string()
}

/// Registers an account through the registration page and confirms its e-mail address
/// with the link the gateway mailed, as a person would; the returned browser is signed in.
pub async fn register(gw: &Gateway, name: &str, username: &str) -> Browser {
    let b = register_unverified(gw, name, username).await;
    verify_email(gw, &b, username).await;
    b
}

/// Registers an account without following the verification link (it cannot enroll yet).
pub async fn register_unverified(gw: &Gateway, name: &str, username: &str) -> Browser {
    let b = Browser::new(gw);
    let (token, _) = b.form_page("/register").await;
    let (status, html, _) = b
        .post("/register", &[("csrf", &token), ("display_name", name), ("username", username), ("password", PASSWORD)])
        .await;
    assert_eq!(status, 303, "{html}");
    b
}

/// Staff grant `username` proxy access to `patient` (`source/id`) through the admin API
/// (`related_person` "" for none); returns the new link's id.
pub async fn grant_proxy(gw: &Gateway, username: &str, patient: &str, relationship: &str, related_person: &str) -> String {
    let mut grant = serde_json::json!({"username": username, "patient": patient, "relationship": relationship,
                                       "by": "HIM desk"});
    if !related_person.is_empty() {
        grant["related_person"] = related_person.into();
    }
    let r = gw
        .http
        .post(format!("{}/admin/proxies", gw.origin))
        .bearer_auth(TOKEN)
        .json(&grant)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body["link"]["id"].as_str().unwrap().to_string()
}

/// GET a staff endpoint with the dev token: (status, JSON answer).
pub async fn admin_get(gw: &Gateway, path: &str) -> (u16, Value) {
    let r = gw.http.get(format!("{}{path}", gw.origin)).bearer_auth(TOKEN).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// POST JSON to a staff endpoint with the dev token: (status, JSON answer).
pub async fn admin_post(gw: &Gateway, path: &str, body: Value) -> (u16, Value) {
    let r = gw.http.post(format!("{}{path}", gw.origin)).bearer_auth(TOKEN).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// POST to a staff endpoint with the dev token; the JSON answer (200 expected).
pub async fn staff_post(gw: &Gateway, path: &str) -> Value {
    let r = gw.http.post(format!("{}{path}", gw.origin)).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Staff issue an activation code for `patient` (`source/id`); the account in `b` enrolls
/// with it and the birth date.
pub async fn enroll_with_code(gw: &Gateway, b: &Browser, patient: &str, birth: chrono::NaiveDate) {
    let r = gw
        .http
        .post(format!("{}/admin/activation-codes", gw.origin))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"patient": patient}))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    let code = body["code"].as_str().unwrap_or_else(|| panic!("{body}"));
    let (token, _) = b.form_page("/enroll").await;
    let birth = birth.format("%Y-%m-%d").to_string();
    let (status, html, _) = b.post("/enroll", &[("csrf", &token), ("code", code), ("birth_date", &birth)]).await;
    assert_eq!(status, 303, "{html}");
}

/// The files of a zip download, by name, as text (each must be deflated; a document that is
/// not UTF-8 is read lossily).
pub fn unzip(bytes: &[u8]) -> std::collections::BTreeMap<String, String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a valid zip");
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).unwrap();
            let name = f.name().unwrap().into_owned();
            assert_eq!(f.compression(), zip::CompressionMethod::Deflated, "{name}");
            // Documents (PDFs …) are not text: read lossily, so text checks still see them.
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut bytes).unwrap();
            let text = String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            (name, text)
        })
        .collect()
}

/// Types and ids of resources, as `Type/id`.
pub fn keys(resources: &[Value]) -> Vec<String> {
    resources.iter().map(|r| format!("{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap())).collect()
}

pub fn write_file(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// Whether a test that needs more than the Rust toolchain runs. `cargo test` alone runs
/// none of them: each prints one line naming what it needs and how to run it, and passes.
/// The variable of its group turns it on — and then a missing prerequisite is a failure,
/// never a skip (`scripts/test` sets them all and installs or starts what they need):
///
/// - `"postgres"` — `TEST_ON_POSTGRES=1`: a PostgreSQL server at 127.0.0.1:5432 (trust auth,
///   database `test`), and `psql`;
/// - `"browser"` — `TEST_WITH_BROWSER=1`: Chromium (`/usr/bin/chromium`, or
///   `PORTICO_CHROMIUM`), Node.js and npm;
/// - `"node"` — `TEST_WITH_NODE=1`: Node.js and npm;
/// - `"python"` — `TEST_WITH_PYTHON=1`: python3 with venv and pip, and network to PyPI on
///   first use.
///
/// `TEST_FULL=1` turns on browser, node and python (PostgreSQL stays its own run).
/// (Not `PORTICO_…` names: the gateway reads every `PORTICO_` variable as a config override.)
pub fn require(group: &str) -> bool {
    let (variable, needs) = match group {
        "postgres" => ("TEST_ON_POSTGRES", "PostgreSQL at 127.0.0.1:5432 (database test) and psql"),
        "browser" => ("TEST_WITH_BROWSER", "Chromium (/usr/bin/chromium), Node.js and npm"),
        "node" => ("TEST_WITH_NODE", "Node.js and npm"),
        "python" => ("TEST_WITH_PYTHON", "python3 (venv, pip) and PyPI"),
        other => panic!("unknown test prerequisite group {other:?}"),
    };
    let on = |v: &str| std::env::var(v).as_deref() == Ok("1");
    let enabled = on(variable) || (group != "postgres" && on("TEST_FULL"));
    if !enabled {
        // Straight to stderr, past the test harness's capture, so the skip is seen.
        use std::io::Write;
        let test = std::thread::current().name().unwrap_or("this test").to_string();
        let _ =
            writeln!(std::io::stderr(), "skipped {test}: needs {needs}; scripts/test runs it (or set {variable}=1)");
        return false;
    }
    let missing = missing_prerequisites(group);
    assert!(
        missing.is_empty(),
        "{variable}=1 but this test's prerequisites are missing: {} (scripts/test installs or starts them)",
        missing.join("; ")
    );
    true
}

fn missing_prerequisites(group: &str) -> Vec<String> {
    let on_path = |program: &str| {
        std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
            .unwrap_or(false)
    };
    let mut missing = Vec::new();
    let mut need = |program: &str, what: &str| {
        if !on_path(program) {
            missing.push(format!("`{program}` is not on PATH ({what})"));
        }
    };
    match group {
        "postgres" => need("psql", "PostgreSQL's client, Debian package postgresql-client"),
        "browser" | "node" => {
            need("node", "Node.js 20");
            need("npm", "Node.js's package manager");
        }
        "python" => {
            need("python3", "Python 3 with venv and pip");
            need("bash", "runs the client scripts");
        }
        _ => {}
    }
    if group == "browser" {
        let chromium = std::env::var("PORTICO_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        if !Path::new(&chromium).exists() {
            missing.push(format!("{chromium} is missing (Debian package chromium)"));
        }
    }
    if group == "postgres" {
        let addr: std::net::SocketAddr = "127.0.0.1:5432".parse().unwrap();
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_err() {
            missing.push("no PostgreSQL server answers at 127.0.0.1:5432".into());
        }
    }
    missing
}

/// The PostgreSQL server the tests use (`TEST_ON_POSTGRES=1`; `scripts/test` starts it).
pub const PG_SERVER: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Runs `test` with a fresh schema and a pool on the server, then drops the schema, also
/// when the test panics.
pub async fn with_schema<F, Fut>(test: F)
where
    F: FnOnce(String, sqlx::PgPool) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use futures::FutureExt;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .connect(PG_SERVER)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL is not reachable at {PG_SERVER}: {e}. These tests need it running (scripts/test starts it).")
        });
    let schema = format!("portico_t_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&pool).await.unwrap();
    let outcome = std::panic::AssertUnwindSafe(test(schema.clone(), pool.clone())).catch_unwind().await;
    let dropped = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&pool).await;
    pool.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    dropped.unwrap_or_else(|e| panic!("cannot drop schema {schema}: {e}"));
}

/// The gateway's database URL for `schema`.
pub fn url_for(schema: &str) -> String {
    format!("{PG_SERVER}?options=-c%20search_path%3D{schema}")
}

/// The diagnostics of the partial-answer warnings (`incomplete`) among a Bundle's outcomes.
pub fn warnings(outcomes: &[Value]) -> Vec<String> {
    outcomes
        .iter()
        .flat_map(|o| o["issue"].as_array().cloned().unwrap_or_default())
        .filter(|i| i["code"] == "incomplete" && i["severity"] == "warning")
        .map(|i| i["diagnostics"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// How many of `resources` carry `source`'s tag.
pub fn count_from_source(resources: &[Value], source: &str) -> usize {
    resources.iter().filter(|r| source_tags(r).iter().any(|t| t == source)).count()
}

/// A deadline a few seconds away, for index calls that may ask a source.
pub fn soon() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(10)
}
