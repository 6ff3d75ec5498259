//! What the serving bench runs in its own process: the four demo fixture systems — or a
//! generated population's four sources — as simulators (`$everything` on, one page of up to
//! 1,000 resources), gateways built from the
//! library (`App::build`, the same code `portico serve` runs) on port 0 over a throwaway SQLite
//! file, and a static handler serving fixed bytes from memory (the yardstick for `$everything`).

use portico::config::Config;
use portico::identity::PatientIndex;
use portico::simulator::{self, RunningSimulator, SimulatorOptions};
use portico::sources::files::ResourceStore;
use portico::App;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The staff dev token (loopback only) and a patient's (Bob Martinez, `ehr/pt-10001`).
pub const STAFF_TOKEN: &str = "portico-bench-staff-token-0123456789";
pub const PATIENT_TOKEN: &str = "portico-bench-patient-token-0123456789";
pub const PATIENT: (&str, &str) = ("ehr", "pt-10001");

/// The day the fixtures' dates are written relative to.
const FIXTURE_ANCHOR: &str = "2026-01-01";
/// A throwaway key-encryption key for the bench's throwaway databases.
pub const BENCH_KEK: &str = "YmVuY2gtb25seS1rZXktZW5jcnlwdGlvbi1rZXkhISE=";
pub const SOURCES: [&str; 4] = ["ehr", "lab", "imaging", "behavioral"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// How many days the fixtures' dates are moved (to keep them relative to today).
pub fn shift_days() -> Result<i64, String> {
    let anchor = chrono::NaiveDate::parse_from_str(FIXTURE_ANCHOR, "%Y-%m-%d").map_err(|e| e.to_string())?;
    let utc = chrono::FixedOffset::east_opt(0).ok_or("UTC")?;
    Ok(portico::fhir::time::days_since(anchor, chrono::Utc::now(), utc))
}

/// The sources a set of phases runs against, and the person whose record they fetch.
pub struct Population {
    pub title: String,
    pub sims: Vec<(&'static str, RunningSimulator)>,
    /// The person's record at one source: whom the patient dev token is for.
    pub patient: (String, String),
}

async fn simulator(name: &'static str, folder: &Path, shift: i64) -> Result<(&'static str, RunningSimulator), String> {
    let store = ResourceStore::load(folder, shift).map_err(|e| format!("{}: {e}", folder.display()))?;
    let options = SimulatorOptions { name: name.into(), everything: true, page_size: 1000, ..Default::default() };
    let addr = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
    Ok((name, simulator::start(store, options, addr).await.map_err(|e| e.to_string())?))
}

/// Starts one simulator per demo fixture system; the person is Bob Martinez.
pub async fn demo() -> Result<Population, String> {
    let shift = shift_days()?;
    let mut sims = Vec::new();
    for name in SOURCES {
        sims.push(simulator(name, &root().join("fixtures").join(name), shift).await?);
    }
    let patient = (PATIENT.0.to_string(), PATIENT.1.to_string());
    Ok(Population { title: "demo fixtures (16 people)".into(), sims, patient })
}

/// Starts one simulator per source of a generated population of `patients` people (four
/// sources, seed 1; written to target/bench-serve once and reused). The person is the first
/// of the population whose records are at three sources or more.
pub async fn generated(patients: usize) -> Result<Population, String> {
    use portico::generate::{self, GenerateOptions, Manifest};
    let out = root().join(format!("target/bench-serve/population-n{patients}-k4-s1"));
    let manifest = match Manifest::read(&out) {
        Ok(m) => m,
        Err(_) => {
            let _ = std::fs::remove_dir_all(&out);
            let options = GenerateOptions { patients, sources: SOURCES.len(), seed: 1, out: out.clone() };
            generate::generate(&options).map_err(|e| format!("generating {patients} patients: {e}"))?
        }
    };
    let anchor = chrono::NaiveDate::parse_from_str(&manifest.anchor, "%Y-%m-%d").map_err(|e| e.to_string())?;
    let utc = chrono::FixedOffset::east_opt(0).ok_or("UTC")?;
    let shift = portico::fhir::time::days_since(anchor, chrono::Utc::now(), utc);
    let mut sims = Vec::new();
    for s in &manifest.sources {
        let name = SOURCES.into_iter().find(|n| *n == s.name).ok_or_else(|| format!("source {} unknown", s.name))?;
        sims.push(simulator(name, &out.join(&s.folder), shift).await?);
    }
    let people = std::fs::read_to_string(out.join("people.ndjson")).map_err(|e| e.to_string())?;
    let patient = people
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find_map(|person| {
            let records = person["records"].as_array()?;
            let anchor = records.iter().find(|r| r["link"] == "anchor")?;
            let record = (anchor["source"].as_str()?.to_string(), anchor["id"].as_str()?.to_string());
            (records.len() >= 3).then_some(record)
        })
        .ok_or("no generated person with records at three sources")?;
    Ok(Population { title: format!("generated population ({patients} people, seed 1)"), sims, patient })
}

/// A gateway serving in this process.
pub struct Gateway {
    /// `http://127.0.0.1:PORT/fhir`
    pub fhir: String,
    pub index: Arc<PatientIndex>,
    patient: (String, String),
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// Builds and starts a gateway over the population's simulators with `aggregate` as its
    /// `[aggregate]` lines and `source` as extra lines of every `[[sources]]` table.
    pub async fn start(population: &Population, aggregate: &str, source: &str) -> Result<Gateway, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let patient = (population.patient.0.as_str(), population.patient.1.as_str());
        let text = config_text(dir.path(), &addr.to_string(), &population.sims, patient, aggregate, source, "");
        let vars = [(portico::auth::keyring::KEK_ENV.to_string(), BENCH_KEK.to_string())];
        let config =
            Config::from_toml(&text, "bench.toml", &root().join("config"), &vars).map_err(|e| e.to_string())?;
        let app = App::build(config).await.map_err(|e| e.to_string())?;
        let index = app.index.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let served = app
                .serve(listener, async {
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = served {
                eprintln!("[bench] gateway stopped: {e}");
            }
        });
        let patient = population.patient.clone();
        Ok(Gateway { fhir: format!("http://{addr}/fhir"), index, patient, shutdown: Some(tx), _dir: dir })
    }

    /// The access log entries this gateway has written and the commits that wrote them
    /// (from its `/metrics`).
    pub async fn audit_appends(&self, http: &reqwest::Client) -> Result<(u64, u64), String> {
        let origin = self.fhir.trim_end_matches("/fhir");
        let text = http.get(format!("{origin}/metrics")).send().await.map_err(|e| e.to_string())?;
        let text = text.text().await.map_err(|e| e.to_string())?;
        let value = |measure: &str| {
            let prefix = format!("portico_audit_appends{{measure=\"{measure}\"}} ");
            text.lines().find_map(|l| l.strip_prefix(prefix.as_str())?.trim().parse::<u64>().ok())
        };
        match (value("entries"), value("commits")) {
            (Some(entries), Some(commits)) => Ok((entries, commits)),
            _ => Err(format!("{origin}/metrics has no portico_audit_appends")),
        }
    }

    /// The gateway id of the bench's patient.
    pub async fn patient_id(&self) -> Result<String, String> {
        let (source, id) = &self.patient;
        let found = self.index.gateway_id_of(source, id).await.map_err(|e| e.to_string())?;
        found.ok_or_else(|| format!("{source}/{id} is not indexed"))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A gateway's configuration: the sources at `sims` (`source` added to each), the patient
/// dev token for `patient`'s record, `aggregate` as its `[aggregate]` lines and `extra` at
/// the end (more tables).
pub fn config_text(
    dir: &Path,
    listen: &str,
    sims: &[(&str, RunningSimulator)],
    patient: (&str, &str),
    aggregate: &str,
    source: &str,
    extra: &str,
) -> String {
    let sources: String = sims
        .iter()
        .map(|(name, sim)| {
            format!(
                "[[sources]]\nname = \"{name}\"\ndisplay = \"{name}\"\nkind = \"fhir\"\nurl = \"{}\"\npage_size = 1000\nretry_backoff = \"20ms\"\n{source}\n\n",
                sim.base_url()
            )
        })
        .collect();
    format!(
        "[server]\nlisten = \"{listen}\"\nutc_offset = \"UTC\"\ndev_token = \"{STAFF_TOKEN}\"\nmax_page_size = 1000\n\n\
         [[server.dev_tokens]]\ntoken = \"{PATIENT_TOKEN}\"\nviewer = \"patient\"\npatient = \"{}/{}\"\n\n\
         [database]\nurl = \"sqlite://{}\"\n\n[mail]\nfolder = {:?}\n\n[export]\ndirectory = {:?}\n\n\
         [aggregate]\n{aggregate}\n\n{sources}{extra}",
        patient.0,
        patient.1,
        dir.join("portico.db").display(),
        dir.join("mail").display().to_string(),
        dir.join("exports").display().to_string(),
    )
}

/// Serves `body` as `application/fhir+json` at `/everything` from memory; returns its URL.
pub async fn static_server(body: axum::body::Bytes) -> Result<String, String> {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/everything",
        get(move || {
            let body = body.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "application/fhir+json")], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}/everything"))
}
