//! `cargo bench --bench index`: the patient index at hospital scale. A Patient-only
//! population (`portico fixtures generate --patients-only`: the same people, overlaps and
//! look-alikes as the full generator) is served by one `portico simulate --from-disk`
//! process per source; the release gateway runs as a process of its own on SQLite. For each
//! population size it measures, in this order:
//!
//! 1. the first start over an empty database: time to build the index (until the gateway
//!    answers) and the gateway's peak memory (VmHWM from `/proc/PID/status`);
//! 2. a restart over the stored index: time to `/health/ready` and peak memory, then the
//!    refresh the gateway runs at once in the background (nothing changed at the sources);
//! 3. an incremental refresh after the sources changed: the simulators are stopped, a copy
//!    of each source's `Patient.ndjson` is written with every 100th record changed (a new
//!    mobile phone and a `meta.lastUpdated` of now, as a registration desk's edit would
//!    leave it), the simulators are started on the copies, and the gateway is restarted on
//!    its stored index: its background refresh asks each source `_lastUpdated=gt…` and
//!    must read and write only the changed records.
//!
//! Refresh times are the gateway's own (its `patient index built` / `patient index
//! refreshed` log lines, JSON); ready and build times are also measured from outside.
//! Knobs (environment): BENCH_INDEX_PATIENTS (comma-separated sizes, default
//! "100000,1000000"), BENCH_INDEX_SOURCES (4), BENCH_INDEX_SEED (1), BENCH_INDEX_CHANGED
//! (one record in N changed, 100), BENCH_INDEX_DIR (target/bench-index),
//! BENCH_INDEX_REUSE_BUILD (1: where an earlier run's built index is still stored, skip step
//! 1 and report that run's build figures, marked as such — a million-person build takes
//! over half an hour). Populations are generated once and reused; the changed copies are
//! removed after each run, and each run's changes are new (the new phone numbers depend
//! on the time of the run), so a reused index still has every change to read.
// A bench may unwrap and expect like a test (Cargo.toml's [lints] deny them elsewhere).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../export/processes.rs"]
mod processes;

use portico::generate::{generate_patients_only, GenerateOptions, Manifest};
use processes::{free_port, status_kb, wait_for, Children};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const PORTICO: &str = env!("CARGO_BIN_EXE_portico");
/// Longest wait for a build or a refresh (a million patients on a loaded machine).
const PATIENCE: Duration = Duration::from_secs(4 * 3600);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    if let Err(e) = runtime.block_on(run()) {
        eprintln!("index benchmark failed: {e}");
        std::process::exit(1);
    }
}

/// One population size's figures.
struct Row {
    patients: usize,
    records: u64,
    build: Refresh,
    build_wall: f64,
    build_peak_kb: u64,
    ready_seconds: f64,
    ready_peak_kb: u64,
    unchanged: Refresh,
    unchanged_peak_kb: u64,
    records_changed: u64,
    changed: Refresh,
    changed_ready_seconds: f64,
    changed_peak_kb: u64,
    /// When the build figures were measured, if an earlier run's (BENCH_INDEX_REUSE_BUILD).
    build_reused_from: Option<String>,
}

/// Step 1's figures, kept next to the stored index for BENCH_INDEX_REUSE_BUILD.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredBuild {
    measured: String,
    build: Refresh,
    build_wall: f64,
    build_peak_kb: u64,
}

/// A `patient index built` / `patient index refreshed` log line's fields.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
struct Refresh {
    seconds: f64,
    read: u64,
    changed: u64,
    links: u64,
}

async fn run() -> Result<(), String> {
    let sizes: Vec<usize> = std::env::var("BENCH_INDEX_PATIENTS")
        .unwrap_or_else(|_| "100000,1000000".into())
        .split(',')
        .map(|s| s.trim().parse().map_err(|e| format!("BENCH_INDEX_PATIENTS: {s}: {e}")))
        .collect::<Result<_, _>>()?;
    let sources: usize = env_or("BENCH_INDEX_SOURCES", 4);
    let seed: u64 = env_or("BENCH_INDEX_SEED", 1);
    let every: usize = env_or("BENCH_INDEX_CHANGED", 100).max(1);
    let dir = std::env::var("BENCH_INDEX_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-index"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut rows = Vec::new();
    for n in sizes {
        rows.push(measure(&dir, n, sources, seed, every).await?);
    }
    let report = report(&rows, every);
    println!("\n{report}");
    std::fs::write(dir.join("results.txt"), &report).map_err(|e| e.to_string())?;
    println!("(also written to {})", dir.join("results.txt").display());
    Ok(())
}

fn population(dir: &Path, patients: usize, sources: usize, seed: u64) -> Result<(PathBuf, Manifest), String> {
    let out = dir.join(format!("patients-n{patients}-k{sources}-s{seed}"));
    if let Ok(m) = Manifest::read(&out) {
        eprintln!("[bench] reusing {} ({} Patient records)", out.display(), m.resources);
        return Ok((out, m));
    }
    let _ = std::fs::remove_dir_all(&out);
    let started = Instant::now();
    let m = generate_patients_only(&GenerateOptions { patients, sources, seed, out: out.clone() })
        .map_err(|e| e.to_string())?;
    eprintln!(
        "[bench] generated {patients} people, {} Patient records, {:.0} MB in {:.1} s",
        m.resources,
        m.bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok((out, m))
}

/// Starts one `portico simulate --from-disk` per source folder under `root`; their base URLs.
async fn start_simulators(
    root: &Path,
    manifest: &Manifest,
    run: &Path,
    label: &str,
) -> Result<(Children, Vec<String>), String> {
    let mut children = Children::default();
    let mut urls = Vec::new();
    for s in &manifest.sources {
        let port = free_port();
        let mut cmd = Command::new(PORTICO);
        cmd.args(["simulate", "--from-disk", "--source"])
            .arg(root.join(&s.folder))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--page-size", "1000", "--name", &s.display])
            .env("PORTICO_LOG", "warn");
        children.spawn(
            &format!("simulator {}", s.name),
            cmd,
            &run.join(format!("simulator-{}-{label}.log", s.name)),
        )?;
        urls.push(format!("http://127.0.0.1:{port}/fhir"));
    }
    let started = Instant::now();
    for url in &urls {
        wait_for(&format!("{url}/metadata"), &mut children, PATIENCE).await?;
    }
    eprintln!(
        "[bench]   {} simulators ({label}) indexed their files in {:.1} s",
        urls.len(),
        started.elapsed().as_secs_f64()
    );
    Ok((children, urls))
}

/// The gateway's config: the sources at `urls`, SQLite in `run`, no scheduled refresh
/// during the run (a restart over a stored index refreshes at once).
fn gateway_config(run: &Path, manifest: &Manifest, urls: &[String], port: u16) -> Result<PathBuf, String> {
    let mut config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nutc_offset = \"UTC\"\n\n\
         [database]\nurl = \"sqlite://{}\"\n\n\
         [export]\ndirectory = \"{}\"\n\n\
         [identity]\nrefresh_every = \"24h\"\n\n",
        run.join("portico.db").display(),
        run.join("exports").display(),
    );
    for (s, url) in manifest.sources.iter().zip(urls) {
        config.push_str(&format!(
            "[[sources]]\nname = {:?}\ndisplay = {:?}\nkind = \"fhir\"\nurl = \"{url}\"\npage_size = 1000\nrequest_timeout = \"120s\"\n\n",
            s.name, s.display
        ));
    }
    let path = run.join("portico.toml");
    std::fs::write(&path, config).map_err(|e| e.to_string())?;
    Ok(path)
}

fn gateway_command(config: &Path) -> Command {
    let mut cmd = Command::new(PORTICO);
    cmd.args(["serve", "--config"])
        .arg(config)
        .env("PORTICO_LOG", "warn,portico::app=info")
        .env("PORTICO_LOG_FORMAT", "json")
        // A throwaway key-encryption key for the bench's throwaway database.
        .env(portico::auth::keyring::KEK_ENV, "YmVuY2gtb25seS1rZXktZW5jcnlwdGlvbi1rZXkhISE=");
    cmd
}

/// Polls `url` every 20 ms until it answers 200; seconds since `since`.
async fn ready_after(url: &str, children: &mut Children, since: Instant) -> Result<f64, String> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().map_err(|e| e.to_string())?;
    loop {
        children.check_alive()?;
        if let Ok(resp) = http.get(url).send().await {
            if resp.status().as_u16() == 200 {
                return Ok(since.elapsed().as_secs_f64());
            }
        }
        if since.elapsed() > PATIENCE {
            return Err(format!("{url} not ready within {PATIENCE:?}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for the gateway's log line with `message` and returns its fields.
async fn log_line(log: &Path, message: &str, children: &mut Children) -> Result<Refresh, String> {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else { continue };
            let fields = &v["fields"];
            if fields["message"] == message {
                let n = |k: &str| fields[k].as_u64().unwrap_or(0);
                return Ok(Refresh {
                    seconds: fields["seconds"].as_f64().unwrap_or(0.0),
                    read: n("patients"),
                    changed: n("changed"),
                    links: n("links"),
                });
            }
        }
        children.check_alive()?;
        if started.elapsed() > PATIENCE {
            return Err(format!("no `{message}` in {} within {PATIENCE:?}", log.display()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Copies each source's folder under `to`, every `every`-th Patient changed as a
/// registration desk's edit would: a new mobile phone and `meta.lastUpdated` of now.
/// How many records were changed.
fn write_changed_copy(from: &Path, to: &Path, manifest: &Manifest, every: usize) -> Result<u64, String> {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    // Numbers of this run's own: an index that read an earlier run's changes still changes.
    let salt = usize::try_from(chrono::Utc::now().timestamp() / 60 % 997).unwrap_or(0);
    let mut changed = 0u64;
    for s in &manifest.sources {
        let (src, dst) = (from.join(&s.folder), to.join(&s.folder));
        std::fs::create_dir_all(&dst).map_err(|e| format!("{}: {e}", dst.display()))?;
        for entry in std::fs::read_dir(&src).map_err(|e| format!("{}: {e}", src.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            let Some(name) = path.file_name() else { continue };
            if name != "Patient.ndjson" {
                if path.is_file() {
                    std::fs::copy(&path, dst.join(name)).map_err(|e| format!("{}: {e}", path.display()))?;
                }
                continue;
            }
            let input = BufReader::new(std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?);
            let out_path = dst.join(name);
            let mut out =
                BufWriter::new(std::fs::File::create(&out_path).map_err(|e| format!("{}: {e}", out_path.display()))?);
            for (i, line) in input.lines().enumerate() {
                let line = line.map_err(|e| e.to_string())?;
                if i % every == every - 1 && !line.trim().is_empty() {
                    let mut p: Value = serde_json::from_str(&line).map_err(|e| format!("{}: {e}", path.display()))?;
                    p["meta"]["lastUpdated"] = json!(now);
                    let phone = json!({"system": "phone", "value": format!("555-7{:03}-{:04}", (i / 10_000 + salt) % 1000, i % 10_000), "use": "mobile"});
                    match p.get_mut("telecom").and_then(Value::as_array_mut) {
                        Some(t) => t.push(phone),
                        None => p["telecom"] = json!([phone]),
                    }
                    serde_json::to_writer(&mut out, &p).map_err(|e| e.to_string())?;
                    out.write_all(b"\n").map_err(|e| e.to_string())?;
                    changed += 1;
                } else {
                    out.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
                    out.write_all(b"\n").map_err(|e| e.to_string())?;
                }
            }
            out.flush().map_err(|e| e.to_string())?;
        }
    }
    Ok(changed)
}

async fn measure(dir: &Path, patients: usize, sources: usize, seed: u64, every: usize) -> Result<Row, String> {
    let (pop, manifest) = population(dir, patients, sources, seed)?;
    let run = dir.join(format!("run-n{patients}"));
    let reuse = std::env::var("BENCH_INDEX_REUSE_BUILD").is_ok_and(|v| v == "1");
    let stored: Option<StoredBuild> = reuse
        .then(|| std::fs::read(run.join("build.json")).ok())
        .flatten()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(|_| run.join("portico.db").is_file());
    if stored.is_none() {
        let _ = std::fs::remove_dir_all(&run);
    }
    let _ = std::fs::remove_dir_all(run.join("changed"));
    std::fs::create_dir_all(&run).map_err(|e| e.to_string())?;
    let port = free_port();
    let ready_url = format!("http://127.0.0.1:{port}/health/ready");

    eprintln!("[bench] {patients} people ({} records): simulators", manifest.resources);
    let (mut simulators, urls) = start_simulators(&pop, &manifest, &run, "original").await?;
    let config = gateway_config(&run, &manifest, &urls, port)?;
    let mut gateway = Children::default();

    // 1. First start: the index is built before the gateway answers.
    let (build, build_wall, build_peak_kb, build_reused_from) = match stored {
        Some(s) => {
            eprintln!("[bench] {patients} people: reusing the index built on {}", s.measured);
            (s.build, s.build_wall, s.build_peak_kb, Some(s.measured))
        }
        None => {
            eprintln!("[bench] {patients} people: first start, building the index");
            let log1 = run.join("gateway-1-build.log");
            let started = Instant::now();
            let pid = gateway.spawn("gateway", gateway_command(&config), &log1)?.to_string();
            let build_wall = ready_after(&ready_url, &mut gateway, started).await?;
            let build = log_line(&log1, "patient index built", &mut gateway).await?;
            let build_peak_kb = status_kb(&pid, "VmHWM").unwrap_or(0);
            gateway.stop_all();
            eprintln!(
                "[bench]   built in {:.1} s ({} records read, {} people), ready after {build_wall:.1} s, peak {:.0} MB",
                build.seconds,
                build.read,
                build.links,
                build_peak_kb as f64 / 1024.0
            );
            let measured = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
            let keep = StoredBuild { measured, build: build.clone(), build_wall, build_peak_kb };
            let _ = std::fs::write(run.join("build.json"), serde_json::to_vec(&keep).unwrap_or_default());
            (build, build_wall, build_peak_kb, None)
        }
    };

    // 2. Restart over the stored index: ready at once, then a refresh with nothing changed.
    eprintln!("[bench] {patients} people: restart over the stored index");
    let log2 = run.join("gateway-2-restart.log");
    let started = Instant::now();
    let pid = gateway.spawn("gateway", gateway_command(&config), &log2)?.to_string();
    let ready_seconds = ready_after(&ready_url, &mut gateway, started).await?;
    let ready_peak_kb = status_kb(&pid, "VmHWM").unwrap_or(0);
    let unchanged = log_line(&log2, "patient index refreshed", &mut gateway).await?;
    let unchanged_peak_kb = status_kb(&pid, "VmHWM").unwrap_or(0);
    gateway.stop_all();
    eprintln!(
        "[bench]   ready after {ready_seconds:.2} s (peak {:.0} MB); refresh with nothing changed {:.2} s ({} read)",
        ready_peak_kb as f64 / 1024.0,
        unchanged.seconds,
        unchanged.read
    );

    // 3. One record in `every` changes at the sources; the gateway refreshes what changed.
    simulators.stop_all();
    let copy = run.join("changed");
    let records_changed = write_changed_copy(&pop, &copy, &manifest, every)?;
    eprintln!("[bench] {patients} people: {records_changed} records changed at the sources");
    let (mut simulators, urls2) = start_simulators(&copy, &manifest, &run, "changed").await?;
    let config = gateway_config(&run, &manifest, &urls2, port)?;
    let log3 = run.join("gateway-3-changed.log");
    let started = Instant::now();
    let pid = gateway.spawn("gateway", gateway_command(&config), &log3)?.to_string();
    let changed_ready_seconds = ready_after(&ready_url, &mut gateway, started).await?;
    let changed = log_line(&log3, "patient index refreshed", &mut gateway).await?;
    let changed_peak_kb = status_kb(&pid, "VmHWM").unwrap_or(0);
    gateway.stop_all();
    simulators.stop_all();
    eprintln!(
        "[bench]   refresh {:.2} s: {} read, {} changed, peak {:.0} MB",
        changed.seconds,
        changed.read,
        changed.changed,
        changed_peak_kb as f64 / 1024.0
    );
    let _ = std::fs::remove_dir_all(&copy);
    Ok(Row {
        patients,
        records: manifest.resources,
        build,
        build_wall,
        build_peak_kb,
        ready_seconds,
        ready_peak_kb,
        unchanged,
        unchanged_peak_kb,
        records_changed,
        changed,
        changed_ready_seconds,
        changed_peak_kb,
        build_reused_from,
    })
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn yes(met: bool) -> &'static str {
    if met {
        "yes"
    } else {
        "no"
    }
}

fn report(rows: &[Row], every: usize) -> String {
    let mut out = format!(
        "Portico patient index benchmark, {} UTC, {}, portico {}\n\
         Gateway: release build, own process, SQLite; {} sources, each a `portico simulate --from-disk` process\n\
         (page size 1000); Patient-only populations (`fixtures generate --patients-only`); one record in {every} changed.\n\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M"),
        processes::machine(),
        env!("CARGO_PKG_VERSION"),
        rows.first().map_or(0, |_| env_or("BENCH_INDEX_SOURCES", 4usize)),
    );
    out.push_str(&format!(
        "{:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
        "people",
        "records",
        "linked",
        "build s",
        "build MB",
        "ready s",
        "ready MB",
        "same s",
        "changed",
        "refresh s",
        "refr. MB"
    ));
    for r in rows {
        out.push_str(&format!(
            "{:>9} {:>9} {:>9} {:>9.1} {:>9.1} {:>9.2} {:>9.1} {:>9.2} {:>9} {:>9.2} {:>9.1}\n",
            r.patients,
            r.records,
            r.build.links,
            r.build.seconds,
            mb(r.build_peak_kb),
            r.ready_seconds,
            mb(r.ready_peak_kb),
            r.unchanged.seconds,
            r.changed.changed,
            r.changed.seconds,
            mb(r.changed_peak_kb)
        ));
    }
    out.push_str(
        "\n(build: first start over an empty database, the gateway's own time; ready: restart over the stored\n\
         index until /health/ready answers 200; same: the refresh at restart with nothing changed; refresh: the\n\
         refresh after the sources changed; MB: the gateway's peak resident memory, VmHWM, in that process)\n\n",
    );
    for r in rows {
        out.push_str(&format!(
            "{} people: build {:.1} s ({} records read; {:.1} s until it answered), restart ready {:.2} s \
             (after the change {:.2} s), refresh with nothing changed {:.2} s ({} read), refresh after {} of {} \
             records changed {:.2} s ({} read, {} changed); peaks {:.1} / {:.1} / {:.1} / {:.1} MB\n",
            r.patients,
            r.build.seconds,
            r.build.read,
            r.build_wall,
            r.ready_seconds,
            r.changed_ready_seconds,
            r.unchanged.seconds,
            r.unchanged.read,
            r.records_changed,
            r.records,
            r.changed.seconds,
            r.changed.read,
            r.changed.changed,
            mb(r.build_peak_kb),
            mb(r.ready_peak_kb),
            mb(r.unchanged_peak_kb),
            mb(r.changed_peak_kb),
        ));
    }
    for r in rows.iter().filter(|r| r.build_reused_from.is_some()) {
        out.push_str(&format!(
            "{} people: the build figures (time, peak memory) are from the run of {}, whose stored index this \
             run reused (BENCH_INDEX_REUSE_BUILD=1); everything else is this run's\n",
            r.patients,
            r.build_reused_from.as_deref().unwrap_or("")
        ));
    }
    out.push_str("\nTargets (issue 14):\n");
    out.push_str(&format!("{:<64} {:>22} {:>9} {:>9} {:>4}\n", "target", "measured", "ratio", "goal", "met"));
    let peak = |r: &Row| r.build_peak_kb.max(r.ready_peak_kb).max(r.unchanged_peak_kb).max(r.changed_peak_kb);
    let mut sorted: Vec<&Row> = rows.iter().collect();
    sorted.sort_by_key(|r| r.patients);
    if let (Some(small), Some(big)) = (sorted.first(), sorted.last()) {
        if small.patients != big.patients {
            let ratio = peak(big) as f64 / peak(small).max(1) as f64;
            out.push_str(&format!(
                "{:<64} {:>22} {:>9.2} {:>9} {:>4}\n",
                format!("peak memory at {} / at {} people", big.patients, small.patients),
                format!("{:.0} / {:.0} MB", mb(peak(big)), mb(peak(small))),
                ratio,
                "<= 1.2",
                yes(ratio <= 1.2)
            ));
        }
    }
    for r in &sorted {
        out.push_str(&format!(
            "{:<64} {:>22} {:>9.2} {:>9} {:>4}\n",
            format!("peak memory at {} people / 300 MB", r.patients),
            format!("{:.0} MB", mb(peak(r))),
            mb(peak(r)) / 300.0,
            "<= 1",
            yes(mb(peak(r)) <= 300.0)
        ));
    }
    for r in &sorted {
        let worst = r.ready_seconds.max(r.changed_ready_seconds);
        out.push_str(&format!(
            "{:<64} {:>22} {:>9.2} {:>9} {:>4}\n",
            format!("ready over a stored index at {} people / 5 s", r.patients),
            format!("{worst:.2} s"),
            worst / 5.0,
            "<= 1",
            yes(worst <= 5.0)
        ));
    }
    for r in &sorted {
        let share = r.records_changed as f64 / r.records.max(1) as f64;
        let ratio = r.changed.seconds / r.build.seconds.max(1e-9);
        out.push_str(&format!(
            "{:<64} {:>22} {:>9.4} {:>9} {:>4}\n",
            format!("refresh time / build time at {} people ({:.1} % changed)", r.patients, share * 100.0),
            format!("{:.2} / {:.1} s", r.changed.seconds, r.build.seconds),
            ratio,
            format!("~{share:.2}"),
            yes(ratio <= share * 2.0)
        ));
        let read_ratio = r.changed.read as f64 / r.records_changed.max(1) as f64;
        out.push_str(&format!(
            "{:<64} {:>22} {:>9.2} {:>9} {:>4}\n",
            format!("records the refresh read / records changed at {} people", r.patients),
            format!("{} / {}", r.changed.read, r.records_changed),
            read_ratio,
            "1",
            yes(r.changed.read == r.records_changed)
        ));
    }
    out
}
