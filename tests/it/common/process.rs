//! A real `portico serve` process for the tests that need one (two replicas on one
//! database, a replica SIGKILLed mid-job): started on a free port with JSON logs in a file,
//! ready once it serves and its export workers run; killed when dropped.

use super::{KEK_ENV, TEST_KEK};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A running `portico serve`, killed when dropped; JSON logs to a file.
pub struct Process {
    pub child: std::process::Child,
    log: PathBuf,
    pub origin: String,
    /// Its export replica's name (the lease owner prefix in `export_units`).
    pub replica: String,
}

impl Process {
    /// Starts `portico serve --config config` on a free port, with `env` added to its
    /// environment, and waits until it serves and its workers run.
    pub async fn start(config: &Path, name: &str, env: &[(String, String)]) -> Process {
        let log = config.with_file_name(format!("{name}.log"));
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_portico"))
            .args(["serve", "--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .env("PORTICO_LOG_FORMAT", "json")
            .env(KEK_ENV, TEST_KEK)
            .env("PORTICO_LOG", "info")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("portico starts");
        let mut p = Process { child, log, origin: String::new(), replica: String::new() };
        let started = Instant::now();
        loop {
            let fields = |message: &str| -> Option<Value> {
                p.log_text()
                    .lines()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .find(|l| l["fields"]["message"] == message)
                    .map(|l| l["fields"].clone())
            };
            if let (Some(serving), Some(workers)) = (fields("Portico is serving"), fields("export workers started")) {
                let base = serving["base"].as_str().unwrap();
                p.origin = base.trim_end_matches("/fhir").to_string();
                p.replica = workers["replica"].as_str().unwrap().to_string();
                return p;
            }
            assert!(p.child.try_wait().unwrap().is_none(), "{name} exited; log:\n{}", p.log_text());
            assert!(started.elapsed() < Duration::from_secs(60), "{name} did not start; log:\n{}", p.log_text());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn fhir(&self) -> String {
        format!("{}/fhir", self.origin)
    }
}

/// A memory field of `/proc/{pid}/status` in bytes (`VmRSS:`, `VmHWM:`).
pub fn memory_of(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
