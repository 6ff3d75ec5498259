//! The mixed phase's gateway as its own process: the release `portico serve` binary with a
//! configuration file the bench writes (the simulators of this process as its sources), so
//! its memory is its own — read from `/proc/PID/status` (VmRSS now, VmHWM the peak) — and not
//! the simulators' or the load client's. Its files live under target/bench-serve/gateway.

use crate::processes::{self, wait_for, Children};
use crate::setup::{self, PATIENT};
use portico::simulator::RunningSimulator;
use sqlx::Row;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The release binary cargo built for this bench.
const PORTICO: &str = env!("CARGO_BIN_EXE_portico");

/// A partner's dev token (system-level Bulk `$export`).
pub const PARTNER_TOKEN: &str = "portico-bench-partner-token-0123456789";
/// The app the bench's patient allows (standalone launch; refresh tokens).
pub const APP_CLIENT: &str = "bench-app";
pub const APP_REDIRECT: &str = "http://127.0.0.1:9/callback";

pub struct ChildGateway {
    /// `http://127.0.0.1:PORT`
    pub origin: String,
    /// `{origin}/fhir`
    pub fhir: String,
    pub pid: u32,
    pub dir: PathBuf,
    children: Children,
}

impl ChildGateway {
    /// Writes the configuration (`aggregate` as its `[aggregate]` lines, `source` as extra
    /// lines of every `[[sources]]` table), starts the binary and waits until it is ready.
    pub async fn start(
        sims: &[(&str, RunningSimulator)],
        aggregate: &str,
        source: &str,
    ) -> Result<ChildGateway, String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-serve/gateway");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let port = processes::free_port();
        let listen = format!("127.0.0.1:{port}");
        // All load comes from one loopback address (in production: many people's devices),
        // so the per-address limits of /token and /authorize are raised; the app's own limit
        // likewise. Rate limiting is not what this bench measures.
        let extra = format!(
            "[[server.dev_tokens]]\ntoken = \"{PARTNER_TOKEN}\"\nviewer = \"partner:hie-north:TREAT\"\n\n\
             [auth]\n[auth.rate_limits]\nper_ip_per_minute = 1000000\nper_ip_burst = 100000\n\
             per_account_per_minute = 1000000\nper_account_burst = 100000\n\
             per_client_per_minute = 1000000\nper_client_burst = 100000\n\n\
             [[auth.clients]]\nclient_id = \"{APP_CLIENT}\"\nname = \"Bench App\"\nkind = \"public\"\n\
             redirect_uris = [\"{APP_REDIRECT}\"]\n\
             allowed_scopes = \"launch/patient openid fhirUser offline_access patient/*.rs\"\n"
        );
        let text = setup::config_text(&dir, &listen, sims, PATIENT, aggregate, source, &extra);
        let config = dir.join("portico.toml");
        std::fs::write(&config, text).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(PORTICO);
        cmd.args(["serve", "--config"])
            .arg(&config)
            .env("PORTICO_LOG", "warn")
            .env(portico::auth::keyring::KEK_ENV, setup::BENCH_KEK);
        let mut children = Children::default();
        let pid = children.spawn("gateway", cmd, &dir.join("gateway.log"))?;
        let origin = format!("http://{listen}");
        wait_for(&format!("{origin}/health/ready"), &mut children, Duration::from_secs(120)).await?;
        Ok(ChildGateway { fhir: format!("{origin}/fhir"), origin, pid, dir, children })
    }

    /// The gateway's resident memory now and its peak, in kB (VmRSS, VmHWM).
    pub fn memory_kb(&self) -> (u64, u64) {
        let pid = self.pid.to_string();
        (processes::status_kb(&pid, "VmRSS").unwrap_or(0), processes::status_kb(&pid, "VmHWM").unwrap_or(0))
    }

    /// Every gateway patient id and the bench patient's, read from the gateway's database
    /// (read-only; the index is stored before `/health/ready` answers 200).
    pub async fn patient_ids(&self) -> Result<(Vec<String>, String), String> {
        let url = format!("sqlite://{}?mode=ro", self.dir.join("portico.db").display());
        let pool = sqlx::SqlitePool::connect(&url).await.map_err(|e| format!("{url}: {e}"))?;
        let mut people: Vec<String> = sqlx::query("SELECT DISTINCT gateway_id FROM patient_links")
            .fetch_all(&pool)
            .await
            .map_err(|e| e.to_string())?
            .iter()
            .map(|r| r.get(0))
            .collect();
        people.sort();
        let me: Option<String> =
            sqlx::query("SELECT gateway_id FROM patient_links WHERE source = $1 AND source_patient_id = $2")
                .bind(PATIENT.0)
                .bind(PATIENT.1)
                .fetch_optional(&pool)
                .await
                .map_err(|e| e.to_string())?
                .map(|r| r.get(0));
        pool.close().await;
        Ok((people, me.ok_or_else(|| format!("{PATIENT:?} is not indexed"))?))
    }

    /// Fails when the gateway has exited.
    pub fn check_alive(&mut self) -> Result<(), String> {
        self.children.check_alive()
    }
}
