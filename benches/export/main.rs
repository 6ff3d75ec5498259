//! `cargo bench --bench export`: a full system-level Bulk Data `$export` of a generated
//! population through the real gateway (release build, its own process, reading four
//! simulated source systems that run as separate `portico simulate` processes so the source
//! data does not count in the gateway's memory), next to a baseline measured in the same
//! run: reading and writing the same NDJSON with serde_json alone, in a child process of its
//! own. Reports resources/s, MB/s and peak memory (VmHWM) of both and their ratios, at two
//! population sizes (peak memory must not grow with the export).
//!
//! Each size runs with fan-out-only sources (one search per type per source per person)
//! and, with BENCH_EXPORT_BULK=1, again with bulk-capable sources (`portico simulate
//! --bulk`: the sources offer Bulk Data `$export`, which the gateway then asks for); a
//! `portico` whose simulator has no `--bulk` skips that run and says so. The report ends
//! with issue 14's targets as measured ratios.
//!
//! Knobs (environment; not PORTICO_…, which the gateway's config loader reads as
//! overrides, and which are kept from the children): BENCH_EXPORT_PATIENTS (comma-separated sizes, default
//! "10000,1000"), BENCH_EXPORT_SOURCES (4), BENCH_EXPORT_SEED (1), BENCH_EXPORT_DIR
//! (target/bench-export), BENCH_EXPORT_BULK (1: also the bulk-capable run),
//! BENCH_EXPORT_GATEWAY_TOML (extra TOML appended to the gateway's config), BENCH_EXPORT_WORKERS
//! (the gateway's `export.workers`; its default when unset). Generated
//! populations are kept and reused (generation is deterministic).
// A bench may unwrap and expect like a test (Cargo.toml's [lints] deny them elsewhere).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod baseline;
mod bulk_client;
mod processes;

use baseline::BaselineResult;
use bulk_client::{BulkClient, ExportResult};
use portico::generate::{generate, GenerateOptions, Manifest};
use processes::{free_port, status_kb, wait_for, Children};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const PORTICO: &str = env!("CARGO_BIN_EXE_portico");
const PARTNER_TOKEN: &str = "portico-bench-partner-token";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    if let Ok(spec) = std::env::var(baseline::CHILD_ENV) {
        let (input, output) = spec.split_once('|').expect("IN|OUT");
        match baseline::run_child(Path::new(input), Path::new(output)) {
            Ok(r) => println!("{}", serde_json::to_string(&r).expect("json")),
            Err(e) => {
                eprintln!("baseline: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    if let Err(e) = runtime.block_on(run()) {
        eprintln!("export benchmark failed: {e}");
        std::process::exit(1);
    }
}

/// How the simulated sources serve an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sources {
    /// Searches only: the gateway asks one search per type per source per person.
    FanOut,
    /// The sources offer Bulk Data `$export` (`portico simulate --bulk`).
    Bulk,
}

impl Sources {
    fn label(self) -> &'static str {
        match self {
            Sources::FanOut => "fan-out",
            Sources::Bulk => "bulk",
        }
    }
}

struct Row {
    patients: usize,
    sources: Sources,
    manifest: Manifest,
    baseline: BaselineResult,
    export: ExportResult,
    gateway_ready_kb: u64,
    gateway_peak_kb: u64,
}

/// Whether this build's simulator offers Bulk Data `$export` (`portico simulate --bulk`).
fn simulator_offers_bulk() -> bool {
    Command::new(PORTICO)
        .args(["simulate", "--help"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--bulk"))
}

async fn run() -> Result<(), String> {
    let sizes: Vec<usize> = std::env::var("BENCH_EXPORT_PATIENTS")
        .unwrap_or_else(|_| "10000,1000".into())
        .split(',')
        .map(|s| s.trim().parse().map_err(|e| format!("BENCH_EXPORT_PATIENTS: {s}: {e}")))
        .collect::<Result<_, _>>()?;
    let sources: usize = env_or("BENCH_EXPORT_SOURCES", 4);
    let seed: u64 = env_or("BENCH_EXPORT_SEED", 1);
    let dir = std::env::var("BENCH_EXPORT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-export"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut modes = vec![Sources::FanOut];
    let mut notes = Vec::new();
    if std::env::var("BENCH_EXPORT_BULK").is_ok_and(|v| v == "1") {
        if simulator_offers_bulk() {
            modes.push(Sources::Bulk);
        } else {
            let note = "bulk-capable sources: skipped, this build's `portico simulate` has no --bulk \
                        (simulator Bulk Data $export not in this build)"
                .to_string();
            eprintln!("[bench] {note}");
            notes.push(note);
        }
    }
    // BENCH_EXPORT_MODES=bulk (or fan-out) runs only those of the modes above.
    if let Ok(only) = std::env::var("BENCH_EXPORT_MODES") {
        let only: Vec<&str> = only.split(',').map(str::trim).collect();
        modes.retain(|m| only.contains(&m.label()));
    }
    let mut rows = Vec::new();
    for n in sizes {
        let (pop, manifest) = population(&dir, n, sources, seed)?;
        let run = dir.join(format!("run-n{n}"));
        let _ = std::fs::remove_dir_all(&run);
        std::fs::create_dir_all(&run).map_err(|e| e.to_string())?;
        eprintln!("[bench] {n} patients: baseline (serde_json read + write, own process)");
        let baseline = run_baseline(&pop, &run.join("baseline-out"))?;
        let _ = std::fs::remove_dir_all(run.join("baseline-out"));
        eprintln!(
            "[bench] {n} patients: baseline {} resources, {:.1} MB in {:.1} s, peak {:.1} MB",
            baseline.resources,
            mb(baseline.bytes_written),
            baseline.seconds,
            baseline.peak_kb as f64 / 1024.0
        );
        for &mode in &modes {
            rows.push(measure(&pop, &manifest, &run, n, mode, &baseline).await?);
        }
    }
    let report = report(&rows, &notes);
    println!("\n{report}");
    std::fs::write(dir.join("results.txt"), &report).map_err(|e| e.to_string())?;
    println!("(also written to {})", dir.join("results.txt").display());
    Ok(())
}

fn population(dir: &Path, patients: usize, sources: usize, seed: u64) -> Result<(PathBuf, Manifest), String> {
    let out = dir.join(format!("population-n{patients}-k{sources}-s{seed}"));
    if let Ok(m) = Manifest::read(&out) {
        eprintln!("[bench] reusing {} ({} resources)", out.display(), m.resources);
        return Ok((out, m));
    }
    let started = Instant::now();
    let m = generate(&GenerateOptions { patients, sources, seed, out: out.clone() }).map_err(|e| e.to_string())?;
    eprintln!(
        "[bench] generated {patients} patients, {} resources, {:.0} MB in {:.1} s",
        m.resources,
        m.bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok((out, m))
}

fn run_baseline(population: &Path, scratch: &Path) -> Result<BaselineResult, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let output = Command::new(exe)
        .env(baseline::CHILD_ENV, format!("{}|{}", population.display(), scratch.display()))
        .output()
        .map_err(|e| format!("baseline child: {e}"))?;
    if !output.status.success() {
        return Err(format!("baseline child failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(text.lines().last().unwrap_or("")).map_err(|e| format!("baseline output {text}: {e}"))
}

async fn measure(
    pop: &Path,
    manifest: &Manifest,
    run: &Path,
    patients: usize,
    mode: Sources,
    baseline: &BaselineResult,
) -> Result<Row, String> {
    let run = run.join(mode.label());
    std::fs::create_dir_all(&run).map_err(|e| e.to_string())?;
    let mut children = Children::default();
    let mut source_blocks = String::new();
    let mut waits = Vec::new();
    // Ports told apart: a port freed by one `free_port` call can come back from the next
    // before the first simulator has bound it (then one simulator exits on a port in use
    // and the other answers for both).
    let mut ports = std::collections::HashSet::new();
    for s in &manifest.sources {
        let port = std::iter::repeat_with(free_port).find(|p| ports.insert(*p)).unwrap_or_default();
        let mut cmd = Command::new(PORTICO);
        cmd.args(["simulate", "--source"])
            .arg(pop.join(&s.folder))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--page-size", "1000"])
            .args(["--shift-dates-from", &manifest.anchor, "--name", &s.display])
            .env("PORTICO_LOG", "warn");
        if mode == Sources::Bulk {
            cmd.arg("--bulk");
        }
        children.spawn(&format!("simulator {}", s.name), cmd, &run.join(format!("simulator-{}.log", s.name)))?;
        let url = format!("http://127.0.0.1:{port}/fhir");
        source_blocks.push_str(&format!(
            "[[sources]]\nname = {:?}\ndisplay = {:?}\nkind = \"fhir\"\nurl = \"{url}\"\npage_size = 1000\nmax_pages = 1000\nrequest_timeout = \"120s\"\nmax_concurrency = 8\n\n",
            s.name, s.display
        ));
        waits.push(format!("{url}/metadata"));
    }
    eprintln!("[bench] {patients} patients, {} sources: starting {} simulators", mode.label(), waits.len());
    for url in &waits {
        wait_for(url, &mut children, Duration::from_secs(1800)).await?;
    }
    children.check_alive()?;

    let port = free_port();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nutc_offset = \"UTC\"\n\n\
         [[server.dev_tokens]]\ntoken = \"{PARTNER_TOKEN}\"\nviewer = \"partner:hie-north:TREAT\"\n\n\
         [database]\nurl = \"sqlite://{}\"\n\n\
         [export]\ndirectory = \"{}\"\n{}\n\
         [aggregate]\ndeadline = \"120s\"\ncache_ttl = \"60s\"\ncache_max_records = 100\n\n\
         [identity]\nrefresh_every = \"24h\"\n\n{source_blocks}{}\n",
        run.join("portico.db").display(),
        run.join("exports").display(),
        std::env::var("BENCH_EXPORT_WORKERS").map(|n| format!("workers = {n}\n")).unwrap_or_default(),
        std::env::var("BENCH_EXPORT_GATEWAY_TOML").unwrap_or_default()
    );
    let config_path = run.join("portico.toml");
    std::fs::write(&config_path, config).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(PORTICO);
    // A throwaway key-encryption key for the bench's throwaway database.
    cmd.args(["serve", "--config"])
        .arg(&config_path)
        .env("PORTICO_LOG", "warn")
        .env(portico::auth::keyring::KEK_ENV, "YmVuY2gtb25seS1rZXktZW5jcnlwdGlvbi1rZXkhISE=");
    let gateway_pid = children.spawn("gateway", cmd, &run.join("gateway.log"))?.to_string();
    eprintln!("[bench] {patients} patients: gateway starting (builds the patient index)");
    wait_for(&format!("http://127.0.0.1:{port}/health/live"), &mut children, Duration::from_secs(1800)).await?;
    let gateway_ready_kb = status_kb(&gateway_pid, "VmHWM").unwrap_or(0);

    eprintln!("[bench] {patients} patients: $export");
    let client = BulkClient::new(&format!("http://127.0.0.1:{port}/fhir"), PARTNER_TOKEN);
    let export = client.export_all(|p| eprintln!("[bench]   progress: {p}")).await;
    let gateway_peak_kb = status_kb(&gateway_pid, "VmHWM").unwrap_or(0);
    children.stop_all();
    let export = export?;
    let _ = std::fs::remove_file(run.join("portico.db"));
    eprintln!(
        "[bench] {patients} patients, {} sources: exported {} resources in {} files, {:.1} s ({:.1} s downloading)",
        mode.label(),
        export.resources,
        export.files,
        export.total_seconds,
        export.download_seconds
    );
    for (kind, bytes, first_byte, seconds) in &export.file_times {
        eprintln!(
            "[bench]   {kind}: {:.1} MB, first byte after {:.3} s, {:.2} s in all ({:.0} MB/s)",
            mb(*bytes),
            first_byte,
            seconds,
            mb(*bytes) / seconds.max(1e-9)
        );
    }
    Ok(Row {
        patients,
        sources: mode,
        manifest: manifest.clone(),
        baseline: baseline.clone(),
        export,
        gateway_ready_kb,
        gateway_peak_kb,
    })
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn report(rows: &[Row], notes: &[String]) -> String {
    let mut out = format!(
        "Portico export benchmark, {} UTC, {}, portico {}\n\
         Gateway: release build, own process, 4 sources served by separate `portico simulate` processes,\n\
         system-level $export as partner hie-north (purpose TREAT), every output file downloaded.\n\
         Baseline: the same NDJSON read and written with serde_json alone, own process.\n\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M"),
        processes::machine(),
        env!("CARGO_PKG_VERSION")
    );
    out.push_str(&format!(
        "{:>9}  {:<18} {:>10} {:>9} {:>9} {:>12} {:>8} {:>9}\n",
        "patients", "run", "resources", "MB", "seconds", "resources/s", "MB/s", "peak MB"
    ));
    for r in rows {
        let g = &r.export;
        let b = &r.baseline;
        let g_rps = g.resources as f64 / g.total_seconds;
        let g_mbs = mb(g.bytes) / g.total_seconds;
        let b_rps = b.resources as f64 / b.seconds;
        let b_mbs = mb(b.bytes_written) / b.seconds;
        let g_peak = r.gateway_peak_kb as f64 / 1024.0;
        let b_peak = b.peak_kb as f64 / 1024.0;
        out.push_str(&format!(
            "{:>9}  {:<18} {:>10} {:>9.1} {:>9.1} {:>12.0} {:>8.2} {:>9.1}\n",
            r.patients,
            format!("gateway, {}", r.sources.label()),
            g.resources,
            mb(g.bytes),
            g.total_seconds,
            g_rps,
            g_mbs,
            g_peak
        ));
        out.push_str(&format!(
            "{:>9}  {:<18} {:>10} {:>9.1} {:>9.1} {:>12.0} {:>8.2} {:>9.1}\n",
            r.patients,
            "serde_json",
            b.resources,
            mb(b.bytes_written),
            b.seconds,
            b_rps,
            b_mbs,
            b_peak
        ));
        out.push_str(&format!(
            "{:>9}  {:<18} {:>10} {:>9} {:>9} {:>11.3}x {:>7.3}x {:>8.2}x\n",
            r.patients,
            "ratio",
            "",
            "",
            "",
            g_rps / b_rps,
            g_mbs / b_mbs,
            g_peak / b_peak
        ));
        out.push_str(&format!(
            "{:>9}  gateway: generated {} resources ({:.1}/patient), exported {} in {} files ({} withheld or merged), \
             manifest after {:.1} s, files downloaded in {:.1} s ({:.1} MB/s), peak before the export {:.1} MB, \
             {} error lines\n\n",
            "",
            r.manifest.resources,
            r.manifest.resources_per_patient,
            g.resources,
            g.files,
            r.manifest.resources.saturating_sub(g.resources),
            g.export_seconds,
            g.download_seconds,
            download_rate(g),
            r.gateway_ready_kb as f64 / 1024.0,
            g.errors
        ));
    }
    for note in notes {
        out.push_str(&format!("{note}\n"));
    }
    out.push_str(&targets(rows));
    out
}

/// The output files' download rate, MB/s.
fn download_rate(g: &ExportResult) -> f64 {
    mb(g.bytes) / g.download_seconds.max(1e-9)
}

/// Issue 14's export targets, each with its measured ratio.
fn targets(rows: &[Row]) -> String {
    let mut out = format!(
        "\nTargets (issue 14):\n{:<62} {:>26} {:>8} {:>7} {:>4}\n",
        "target", "measured", "ratio", "goal", "met"
    );
    let mut line = |target: String, measured: String, ratio: f64, goal: &str, met: bool| {
        out.push_str(&format!(
            "{target:<62} {measured:>26} {ratio:>8.3} {goal:>7} {:>4}\n",
            if met { "yes" } else { "no" }
        ));
    };
    for r in rows {
        let g_rps = r.export.resources as f64 / r.export.total_seconds;
        let b_rps = r.baseline.resources as f64 / r.baseline.seconds;
        let goal = if r.sources == Sources::Bulk { 0.5 } else { 0.15 };
        line(
            format!("{} patients, {} sources: resources/s / serde_json's", r.patients, r.sources.label()),
            format!("{g_rps:.0} / {b_rps:.0}"),
            g_rps / b_rps,
            &format!(">= {goal}"),
            g_rps / b_rps >= goal,
        );
    }
    for mode in [Sources::FanOut, Sources::Bulk] {
        let mut these: Vec<&Row> = rows.iter().filter(|r| r.sources == mode).collect();
        these.sort_by_key(|r| r.patients);
        if let (Some(small), Some(big)) = (these.first(), these.last()) {
            if small.patients != big.patients {
                let ratio = big.gateway_peak_kb as f64 / small.gateway_peak_kb.max(1) as f64;
                line(
                    format!(
                        "{} sources: peak memory at {} / at {} patients",
                        mode.label(),
                        big.patients,
                        small.patients
                    ),
                    format!(
                        "{:.0} / {:.0} MB",
                        big.gateway_peak_kb as f64 / 1024.0,
                        small.gateway_peak_kb as f64 / 1024.0
                    ),
                    ratio,
                    "<= 1.2",
                    ratio <= 1.2,
                );
            }
        }
    }
    for r in rows {
        let rate = download_rate(&r.export);
        line(
            format!("{} patients, {} sources: download MB/s / 100 MB/s", r.patients, r.sources.label()),
            format!("{:.0} MB in {:.1} s", mb(r.export.bytes), r.export.download_seconds),
            rate / 100.0,
            ">= 1",
            rate >= 100.0,
        );
    }
    out
}
