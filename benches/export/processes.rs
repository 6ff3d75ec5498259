//! The benchmark's child processes: hospital simulators and the gateway (the release
//! `portico` binary), each logging to a file, waited for over HTTP, measured through
//! `/proc/PID/status` (VmHWM: peak resident memory), and stopped (by their own handles)
//! when the run ends or fails.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Children that are killed when this goes out of scope.
#[derive(Default)]
pub struct Children {
    children: Vec<(String, Child)>,
}

impl Children {
    pub fn spawn(&mut self, name: &str, mut command: Command, log: &Path) -> Result<u32, String> {
        let file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = file.try_clone().map_err(|e| e.to_string())?;
        // The gateway reads PORTICO_… variables as config overrides: the children get only
        // the configuration the benchmark wrote (and PORTICO_LOG).
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PORTICO_") && key != "PORTICO_LOG" {
                command.env_remove(key);
            }
        }
        let child = command
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err))
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        let pid = child.id();
        self.children.push((name.to_string(), child));
        Ok(pid)
    }

    /// Fails when a child has already exited (naming it).
    pub fn check_alive(&mut self) -> Result<(), String> {
        for (name, child) in &mut self.children {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("{name} exited early ({status}); see its log"));
            }
        }
        Ok(())
    }

    pub fn stop_all(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// A free loopback port (bound and released; the child binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Waits until `url` answers 200, while every child is alive.
pub async fn wait_for(url: &str, children: &mut Children, limit: Duration) -> Result<(), String> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
    let started = Instant::now();
    loop {
        children.check_alive()?;
        if let Ok(resp) = http.get(url).send().await {
            if resp.status().as_u16() == 200 {
                return Ok(());
            }
        }
        if started.elapsed() > limit {
            return Err(format!("{url} did not answer within {limit:?}"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A `/proc/PID/status` field in kB (VmHWM, VmRSS …).
pub fn status_kb(pid: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// This machine, for the report: CPU model and count, memory.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU".to_string(), |m| m.trim().to_string());
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mem_gb = status_mem_total().map_or(0.0, |kb| kb as f64 / 1024.0 / 1024.0);
    format!("{cores} cores ({model}), {mem_gb:.0} GB RAM")
}

fn status_mem_total() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}
