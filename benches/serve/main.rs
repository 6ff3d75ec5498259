//! `cargo bench --bench serve`: how fast the release gateway serves patients' apps (issue 15).
//! Everything runs in this process: the four demo fixture systems as simulators, gateways
//! built from the library on port 0 (SQLite, audit on), a static handler, and a load client
//! (tokio + reqwest, keep-alive) sending for a fixed time per phase at each concurrency:
//!
//! - `GET /fhir/metadata` (no token) and an authenticated `GET /fhir/Patient/{id}` (a
//!   patient's dev token);
//! - warm `$everything` (cached record) next to a static handler serving the same bytes;
//! - cold `$everything` (a gateway whose record cache holds nothing), one request at a time,
//!   next to each source's own `$everything` for the same person, interleaved — once with
//!   the simulators answering at once, once with each adding a hospital API's latency;
//! - mixed traffic (reads, searches, `$everything` of every demo person, staff token, a record
//!   cache of a few seconds) while the lab turns slow, then down, then recovers.
//!
//! It prints every phase and each of the targets with its measured ratio (also written
//! to target/bench-serve/results.txt), and the process's memory (VmRSS) at start and end.
//!
//! Knobs (not PORTICO_…, which the gateway reads as overrides): BENCH_SERVE_CONCURRENCY
//! ("8,64,256"), BENCH_SERVE_SECONDS (3 per phase and concurrency), BENCH_SERVE_COLD (30
//! sequential cold requests), BENCH_SERVE_MIXED_SECONDS (24, in four equal windows),
//! BENCH_SERVE_MIXED_CONCURRENCY (64), BENCH_SERVE_SLOW (lab latency while slow, "1s"),
//! BENCH_SERVE_SOURCE_LATENCY (every source's latency in the second cold run, "40ms"),
//! BENCH_SERVE_BREAKER_COOLDOWN (the mixed gateway's sources' `breaker_cooldown`, "1s"),
//! BENCH_SERVE_PHASES (which to run, "steady,cold,mixed").
// A bench may unwrap and expect like a test (Cargo.toml's [lints] deny them elsewhere).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod load;
mod report;
mod setup;
// `/proc/self/status` and the machine line, shared with the export bench.
#[allow(dead_code)]
#[path = "../export/processes.rs"]
mod processes;

use load::{Sample, Summary, Target};
use report::Report;
use setup::{Gateway, PATIENT_TOKEN, STAFF_TOKEN};
use std::time::{Duration, Instant};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    if let Err(e) = runtime.block_on(run()) {
        eprintln!("serve benchmark failed: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let levels: Vec<usize> = std::env::var("BENCH_SERVE_CONCURRENCY")
        .unwrap_or_else(|_| "8,64,256".into())
        .split(',')
        .map(|s| s.trim().parse().map_err(|e| format!("BENCH_SERVE_CONCURRENCY: {s}: {e}")))
        .collect::<Result<_, _>>()?;
    let phase = Duration::from_secs_f64(env_or("BENCH_SERVE_SECONDS", 3.0));
    let http = load::client();
    let mut report = Report::new(processes::machine());

    let sims = setup::simulators().await?;
    // Warm: records stay cached for the whole run.
    let warm = Gateway::start(&sims, "cache_ttl = \"600s\"", "").await?;
    // Cold: the record cache holds nothing, every $everything asks every source.
    let cold = Gateway::start(&sims, "cache_ttl = \"1ms\"\ncache_max_records = 0", "").await?;
    // Mixed: a short-lived cache, so a failing source is felt, and the sources' circuit
    // breakers probing again after BENCH_SERVE_BREAKER_COOLDOWN (the default 30 s is longer
    // than the bench's window: a recovered source would not be asked again inside it).
    let cooldown = std::env::var("BENCH_SERVE_BREAKER_COOLDOWN").unwrap_or_else(|_| "1s".into());
    humantime::parse_duration(&cooldown).map_err(|e| format!("BENCH_SERVE_BREAKER_COOLDOWN: {e}"))?;
    let breaker = format!("breaker_cooldown = \"{cooldown}\"");
    let mixed = Gateway::start(&sims, "cache_ttl = \"3s\"\ndeadline = \"5s\"", &breaker).await?;
    let me = warm.patient_id().await?;
    report.rss_start_kb = processes::status_kb("self", "VmRSS").unwrap_or(0);

    let everything_url = format!("{}/Patient/{me}/$everything?_count=1000", warm.fhir);
    let warm_target = Target::new("$everything (warm)", everything_url.clone(), Some(PATIENT_TOKEN));
    // The first request fills the cache; its bytes are what the static handler serves.
    let body = http.get(&everything_url).bearer_auth(PATIENT_TOKEN).send().await.map_err(|e| e.to_string())?;
    if !body.status().is_success() {
        return Err(format!("{everything_url} answered {}", body.status()));
    }
    let body = body.bytes().await.map_err(|e| e.to_string())?;
    report.everything_bytes = body.len();
    let static_url = setup::static_server(body).await?;

    let steady: [(&str, Target); 4] = [
        ("metadata", Target::new("metadata", format!("{}/metadata", warm.fhir), None)),
        ("read", Target::new("Patient read", format!("{}/Patient/{me}", warm.fhir), Some(PATIENT_TOKEN))),
        ("warm", warm_target),
        ("static", Target::new("static bytes", static_url, None)),
    ];
    let phases = std::env::var("BENCH_SERVE_PHASES").unwrap_or_else(|_| "steady,cold,mixed".into());
    let runs = |phase: &str| phases.split(',').any(|p| p.trim() == phase);
    for &c in levels.iter().filter(|_| runs("steady")) {
        for (key, target) in &steady {
            let (samples, took) = load::run(&http, std::slice::from_ref(target), c, phase).await;
            let s = load::summarize(samples.iter(), took.as_secs_f64());
            eprintln!("[bench] {:<18} c={c:<4} {:>8.0} req/s p50 {:.1} ms", target.route, s.rps, s.p50_ms);
            report.steady.push((key.to_string(), target.route, c, s));
        }
    }

    report.rss_by_phase.push(("steady phases", processes::status_kb("self", "VmRSS").unwrap_or(0)));
    let rounds = if runs("cold") { env_or("BENCH_SERVE_COLD", 30) } else { 0 };
    report.cold = cold_phase(&http, &cold, &sims, rounds).await?;
    // The same with every source answering after a hospital API's latency: what a patient
    // waits for, where the sources' own time is not zero.
    let latency =
        humantime::parse_duration(&std::env::var("BENCH_SERVE_SOURCE_LATENCY").unwrap_or_else(|_| "40ms".into()))
            .map_err(|e| format!("BENCH_SERVE_SOURCE_LATENCY: {e}"))?;
    for (_, sim) in &sims {
        sim.controls().set_latency(latency);
    }
    report.cold_with_latency = (latency, cold_phase(&http, &cold, &sims, rounds).await?);
    for (_, sim) in &sims {
        sim.controls().set_latency(Duration::ZERO);
    }
    report.rss_by_phase.push(("cold phases", processes::status_kb("self", "VmRSS").unwrap_or(0)));
    if runs("mixed") {
        report.mixed = mixed_phase(&http, &mixed, &sims).await?;
    }
    report.rss_end_kb = processes::status_kb("self", "VmRSS").unwrap_or(0);

    let text = report.render();
    println!("\n{text}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-serve");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("results.txt"), &text).map_err(|e| e.to_string())?;
    println!("(also written to {})", dir.join("results.txt").display());
    drop((warm, cold, mixed));
    Ok(())
}

/// The cold `$everything` of the bench's patient, one request at a time, interleaved with
/// each of their source records' own `$everything` at its simulator.
async fn cold_phase(
    http: &reqwest::Client,
    gateway: &Gateway,
    sims: &[(&str, portico::simulator::RunningSimulator)],
    rounds: usize,
) -> Result<report::Cold, String> {
    let me = gateway.patient_id().await?;
    let link = gateway.index.resolve(&me).await.map_err(|e| e.to_string())?.ok_or("the patient has no link")?;
    let gateway_target = Target::new(
        "$everything (cold)",
        format!("{}/Patient/{me}/$everything?_count=1000", gateway.fhir),
        Some(PATIENT_TOKEN),
    );
    let direct: Vec<Target> = link
        .members
        .iter()
        .filter_map(|m| {
            let (_, sim) = sims.iter().find(|(name, _)| *name == m.source)?;
            let url = format!("{}/Patient/{}/$everything?_count=1000", sim.base_url(), m.source_patient_id);
            Some(Target::new(source_route(&m.source), url, None))
        })
        .collect();
    let start = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    for _ in 0..rounds {
        for t in &direct {
            samples.push(load::send(http, t, start).await);
        }
        samples.push(load::send(http, &gateway_target, start).await);
    }
    let took = start.elapsed().as_secs_f64();
    let of = |route: &str| load::summarize(samples.iter().filter(|s| s.route == route), took);
    let sources = direct.iter().map(|t| (t.route, of(t.route))).collect();
    Ok(report::Cold { gateway: of(gateway_target.route), sources })
}

fn source_route(source: &str) -> &'static str {
    match source {
        "ehr" => "ehr $everything (direct)",
        "lab" => "lab $everything (direct)",
        "imaging" => "imaging $everything (direct)",
        "behavioral" => "behavioral $everything (direct)",
        _ => "other source (direct)",
    }
}

/// Mixed traffic for every demo person while the lab turns slow, then down, then recovers.
async fn mixed_phase(
    http: &reqwest::Client,
    gateway: &Gateway,
    sims: &[(&str, portico::simulator::RunningSimulator)],
) -> Result<report::Mixed, String> {
    let total = Duration::from_secs_f64(env_or("BENCH_SERVE_MIXED_SECONDS", 24.0));
    let concurrency = env_or("BENCH_SERVE_MIXED_CONCURRENCY", 64);
    let slow = humantime::parse_duration(&std::env::var("BENCH_SERVE_SLOW").unwrap_or_else(|_| "1s".into()))
        .map_err(|e| format!("BENCH_SERVE_SLOW: {e}"))?;
    let f = &gateway.fhir;
    let mut targets = Vec::new();
    let people: Vec<String> = gateway.index.gateway_ids().await.map_err(|e| e.to_string())?;
    for p in &people {
        let token = Some(STAFF_TOKEN);
        targets.push(Target::new("read Patient", format!("{f}/Patient/{p}"), token));
        targets.push(Target::new("search Observation", format!("{f}/Observation?patient={p}"), token));
        targets.push(Target::new("read Patient", format!("{f}/Patient/{p}"), token));
        targets.push(Target::new("search Condition", format!("{f}/Condition?patient={p}"), token));
        targets.push(Target::new("$everything", format!("{f}/Patient/{p}/$everything"), token));
    }
    let lab = sims.iter().find(|(n, _)| *n == "lab").map(|(_, s)| s.controls()).ok_or("no lab simulator")?;
    let quarter = total / 4;
    let controller = tokio::spawn(async move {
        tokio::time::sleep(quarter).await;
        lab.set_latency(slow);
        tokio::time::sleep(quarter).await;
        lab.set_latency(Duration::ZERO);
        lab.set_down(true);
        tokio::time::sleep(quarter).await;
        lab.set_down(false);
    });
    let (samples, took) = load::run(http, &targets, concurrency, total).await;
    controller.await.map_err(|e| e.to_string())?;
    let windows = ["steady", "lab slow", "lab down", "recovered"];
    let q = quarter.as_secs_f64();
    let window = |i: usize| -> Summary {
        let (from, to) = (quarter * u32::try_from(i).unwrap_or(0), quarter * u32::try_from(i + 1).unwrap_or(0));
        let last = i == windows.len() - 1;
        load::summarize(samples.iter().filter(|s| s.sent >= from && (s.sent < to || last)), q)
    };
    let by_window = windows.iter().enumerate().map(|(i, w)| (*w, window(i))).collect();
    let mut routes: Vec<&'static str> = targets.iter().map(|t| t.route).collect();
    routes.sort_unstable();
    routes.dedup();
    let by_route = routes
        .iter()
        .map(|r| (*r, load::summarize(samples.iter().filter(|s| s.route == *r), took.as_secs_f64())))
        .collect();
    let all = load::summarize(samples.iter(), took.as_secs_f64());
    Ok(report::Mixed { concurrency, seconds: total.as_secs_f64(), people: people.len(), all, by_window, by_route })
}
