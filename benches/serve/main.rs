//! `cargo bench --bench serve`: how fast the release gateway serves patients' apps (issue 15).
//! The four demo fixture systems run as simulators in this process, with gateways built
//! from the library on port 0 (SQLite, audit on), a static handler, and a load client
//! (tokio + reqwest, keep-alive) sending for a fixed time per phase at each concurrency:
//!
//! - `GET /fhir/metadata` (no token), an authenticated `GET /fhir/Patient/{id}` (a
//!   patient's dev token), and every indexed person's `Patient` in turn (staff token);
//! - warm `$everything` (cached record) next to a static handler serving the same bytes;
//! - cold `$everything` (a gateway whose record cache holds nothing), one request at a time,
//!   next to each source's own `$everything` for the same person, interleaved — once with
//!   the simulators answering at once, once with each adding a hospital API's latency;
//! - mixed traffic against a gateway in its own process (the release `portico serve`, so its
//!   memory is its own): reads, searches, `$everything` of every demo person (staff token, a
//!   record cache of a few seconds), a patient's browser viewing their record pages, an
//!   app's refresh-token chains and a partner's Bulk `$export`, while the lab turns slow,
//!   then down, then recovers — after a warm-up that runs the same mix and the same lab
//!   cycle once, so that the memory measured is that of a second cycle;
//! - the steady and cold phases again over a generated population (1,000 people, four
//!   sources).
//!
//! It prints every phase and each of the targets with its measured ratio (also written
//! to target/bench-serve/results.txt), the mixed gateway's memory (VmRSS after the warm-up,
//! during the run and at the end) and the bench process's own.
//!
//! Knobs (not PORTICO_…, which the gateway reads as overrides): BENCH_SERVE_CONCURRENCY
//! ("8,64,256"), BENCH_SERVE_SECONDS (3 per phase and concurrency), BENCH_SERVE_COLD (30
//! sequential cold requests), BENCH_SERVE_MIXED_SECONDS (24, in four equal windows),
//! BENCH_SERVE_MIXED_WARMUP (24), BENCH_SERVE_MIXED_CONCURRENCY (64),
//! BENCH_SERVE_PAGE_VIEWERS (2 browser tasks), BENCH_SERVE_REFRESH_CHAINS (2),
//! BENCH_SERVE_REFRESH_EVERY (pause between one chain's refreshes, "50ms"),
//! BENCH_SERVE_SLOW (lab latency while slow, "1s"),
//! BENCH_SERVE_SOURCE_LATENCY (every source's latency in the second cold run, "40ms"),
//! BENCH_SERVE_BREAKER_COOLDOWN (the mixed gateway's sources' `breaker_cooldown`, "1s"),
//! BENCH_SERVE_PHASES (which to run, "steady,cold,mixed,generated"), BENCH_SERVE_GENERATED
//! (people in the generated population, 1000).
// A bench may unwrap and expect like a test (Cargo.toml's [lints] deny them elsewhere).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod actors;
mod child;
mod load;
mod report;
mod setup;
// `/proc/self/status` and the machine line, shared with the export bench.
#[allow(dead_code)]
#[path = "../export/processes.rs"]
mod processes;

use child::ChildGateway;
use load::{Sample, Summary, Target};
use report::Report;
use setup::{Gateway, PATIENT_TOKEN, STAFF_TOKEN};
use std::time::{Duration, Instant};

/// The allocator the `portico` binary uses, for the gateways this process runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    let phases = std::env::var("BENCH_SERVE_PHASES").unwrap_or_else(|_| "steady,cold,mixed,generated".into());
    let runs = |phase: &str| phases.split(',').any(|p| p.trim() == phase);

    let demo = setup::demo().await?;
    // The mixed phase's gateway runs in its own process (see `child`), with a short-lived
    // cache, so a failing source is felt, and the sources' circuit breakers probing again
    // after BENCH_SERVE_BREAKER_COOLDOWN (the default 30 s is longer than the bench's
    // window: a recovered source would not be asked again inside it).
    let cooldown = std::env::var("BENCH_SERVE_BREAKER_COOLDOWN").unwrap_or_else(|_| "1s".into());
    humantime::parse_duration(&cooldown).map_err(|e| format!("BENCH_SERVE_BREAKER_COOLDOWN: {e}"))?;
    report.rss_start_kb = processes::status_kb("self", "VmRSS").unwrap_or(0);
    let steady = if runs("steady") { levels.as_slice() } else { &[] };
    let rounds = if runs("cold") { env_or("BENCH_SERVE_COLD", 30) } else { 0 };
    report.populations.push(population_phases(&http, &demo, "", steady, phase, rounds).await?);
    report.rss_by_phase.push(("demo's steady and cold phases", processes::status_kb("self", "VmRSS").unwrap_or(0)));
    if runs("mixed") {
        report.mixed = mixed_phase(&http, &demo.sims, &cooldown).await?;
    }
    drop(demo);
    if runs("generated") {
        // The same steady and cold phases over a generated population's four sources.
        let generated = setup::generated(env_or("BENCH_SERVE_GENERATED", 1000)).await?;
        report.populations.push(population_phases(&http, &generated, "generated: ", steady, phase, rounds).await?);
        report.rss_by_phase.push(("generated population's phases", processes::status_kb("self", "VmRSS").unwrap_or(0)));
    }
    report.rss_end_kb = processes::status_kb("self", "VmRSS").unwrap_or(0);

    let text = report.render();
    println!("\n{text}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-serve");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("results.txt"), &text).map_err(|e| e.to_string())?;
    println!("(also written to {})", dir.join("results.txt").display());
    Ok(())
}

/// The steady phases (at each of `levels`, `phase` long) and `rounds` cold requests, twice
/// (sources answering at once, then after a hospital API's latency), over one population:
/// a warm gateway (records cached for the whole run) and a cold one (no record cache).
async fn population_phases(
    http: &reqwest::Client,
    population: &setup::Population,
    label: &'static str,
    levels: &[usize],
    phase: Duration,
    rounds: usize,
) -> Result<report::Population, String> {
    let warm = Gateway::start(population, "cache_ttl = \"600s\"", "").await?;
    let cold = Gateway::start(population, "cache_ttl = \"1ms\"\ncache_max_records = 0", "").await?;
    let me = warm.patient_id().await?;
    let everyone = warm.index.gateway_ids().await.map_err(|e| e.to_string())?;
    let mut out = report::Population {
        title: population.title.clone(),
        label,
        people: everyone.len(),
        ..Default::default()
    };
    let everything_url = format!("{}/Patient/{me}/$everything?_count=1000", warm.fhir);
    let warm_target = Target::new("$everything (warm)", everything_url.clone(), Some(PATIENT_TOKEN));
    // The first request fills the cache; its bytes are what the static handler serves.
    let body = http.get(&everything_url).bearer_auth(PATIENT_TOKEN).send().await.map_err(|e| e.to_string())?;
    if !body.status().is_success() {
        return Err(format!("{everything_url} answered {}", body.status()));
    }
    let body = body.bytes().await.map_err(|e| e.to_string())?;
    out.everything_bytes = body.len();
    let static_url = setup::static_server(body).await?;
    // Every person's Patient, round-robin, with the staff token: reads that no one person's
    // kept decision answers twice in a row.
    let read_any: Vec<Target> = everyone
        .iter()
        .map(|id| Target::new("Patient read, any person (staff)", format!("{}/Patient/{id}", warm.fhir), Some(STAFF_TOKEN)))
        .collect();
    if !levels.is_empty() {
        // Every person's record gathered once (a first read costs a cold aggregation: the
        // decision on one resource is taken over the whole record), eight at a time; then
        // the steady phases read records the cache holds, as an app's reads do.
        let start = Instant::now();
        let first: Vec<Sample> = futures::StreamExt::collect(futures::StreamExt::buffer_unordered(
            futures::stream::iter(read_any.iter().map(|t| load::send(http, t, start))),
            8,
        ))
        .await;
        let s = load::summarize(first.iter(), start.elapsed().as_secs_f64());
        eprintln!("[bench] {label}first read of each person: {:.0} req/s p50 {:.1} ms", s.rps, s.p50_ms);
        out.steady.push(("first-read".into(), "Patient read, first of each person", 8, s));
    }
    let steady: [(&str, Vec<Target>); 5] = [
        ("metadata", vec![Target::new("metadata", format!("{}/metadata", warm.fhir), None)]),
        ("read", vec![Target::new("Patient read", format!("{}/Patient/{me}", warm.fhir), Some(PATIENT_TOKEN))]),
        ("read-any", read_any),
        ("warm", vec![warm_target]),
        ("static", vec![Target::new("static bytes", static_url, None)]),
    ];
    for &c in levels {
        for (key, targets) in &steady {
            let before = warm.audit_appends(http).await?;
            let (samples, took) = load::run(http, targets, c, phase).await;
            let s = load::summarize(samples.iter(), took.as_secs_f64());
            let after = warm.audit_appends(http).await?;
            let route = targets[0].route;
            let per_commit = (after.0 - before.0) as f64 / (after.1 - before.1).max(1) as f64;
            eprintln!(
                "[bench] {label}{route:<18} c={c:<4} {:>8.0} req/s p50 {:.1} ms, access log entries per commit {per_commit:.1}",
                s.rps, s.p50_ms
            );
            out.steady.push((key.to_string(), route, c, s));
        }
    }
    out.cold = cold_phase(http, &cold, &population.sims, rounds).await?;
    // The same with every source answering after a hospital API's latency: what a patient
    // waits for, where the sources' own time is not zero.
    let latency =
        humantime::parse_duration(&std::env::var("BENCH_SERVE_SOURCE_LATENCY").unwrap_or_else(|_| "40ms".into()))
            .map_err(|e| format!("BENCH_SERVE_SOURCE_LATENCY: {e}"))?;
    for (_, sim) in &population.sims {
        sim.controls().set_latency(latency);
    }
    out.cold_with_latency = (latency, cold_phase(http, &cold, &population.sims, rounds).await?);
    for (_, sim) in &population.sims {
        sim.controls().set_latency(Duration::ZERO);
    }
    drop((warm, cold));
    Ok(out)
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

/// Mixed traffic for every demo person while the lab turns slow, then down, then recovers,
/// against a gateway in its own process (its memory is measured): FHIR reads and searches
/// with the staff token, a patient's browser viewing their record's pages, an app's refresh
/// token chains, and a partner's Bulk `$export` running again and again. The same mix runs
/// first for a warm-up, so the memory at the start is that of a gateway already serving.
async fn mixed_phase(
    http: &reqwest::Client,
    sims: &[(&str, portico::simulator::RunningSimulator)],
    cooldown: &str,
) -> Result<report::Mixed, String> {
    let total = Duration::from_secs_f64(env_or("BENCH_SERVE_MIXED_SECONDS", 24.0));
    let warmup = Duration::from_secs_f64(env_or("BENCH_SERVE_MIXED_WARMUP", 24.0));
    let concurrency = env_or("BENCH_SERVE_MIXED_CONCURRENCY", 64);
    let viewers = env_or("BENCH_SERVE_PAGE_VIEWERS", 2);
    let chains = env_or("BENCH_SERVE_REFRESH_CHAINS", 2);
    let every =
        humantime::parse_duration(&std::env::var("BENCH_SERVE_REFRESH_EVERY").unwrap_or_else(|_| "50ms".into()))
            .map_err(|e| format!("BENCH_SERVE_REFRESH_EVERY: {e}"))?;
    let slow = humantime::parse_duration(&std::env::var("BENCH_SERVE_SLOW").unwrap_or_else(|_| "1s".into()))
        .map_err(|e| format!("BENCH_SERVE_SLOW: {e}"))?;
    let breaker = format!("breaker_cooldown = \"{cooldown}\"");
    let mut gateway = ChildGateway::start(sims, "cache_ttl = \"3s\"\ndeadline = \"5s\"", &breaker).await?;
    let (people, me) = {
        let mut tries = 0;
        loop {
            match gateway.patient_ids().await {
                Ok(found) if found.0.len() > 1 => break found,
                _ if tries < 240 => tries += 1,
                Ok(_) => return Err("the mixed gateway indexed no one".into()),
                Err(e) => return Err(e),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    let browser = actors::Browser::bob(&gateway, setup::shift_days()?).await?;
    let mut launches = Vec::new();
    for _ in 0..chains {
        launches.push(browser.launch_app(&gateway.fhir).await?);
    }
    let (origin, fhir) = (gateway.origin.clone(), gateway.fhir.clone());
    let f = &fhir;
    let mut targets = Vec::new();
    for p in &people {
        let token = Some(STAFF_TOKEN);
        targets.push(Target::new("read Patient", format!("{f}/Patient/{p}"), token));
        targets.push(Target::new("search Observation", format!("{f}/Observation?patient={p}"), token));
        targets.push(Target::new("read Patient", format!("{f}/Patient/{p}"), token));
        targets.push(Target::new("search Condition", format!("{f}/Condition?patient={p}"), token));
        targets.push(Target::new("$everything", format!("{f}/Patient/{p}/$everything"), token));
    }
    // The whole mix for `length`: the FHIR load, page views, refresh chains, an export.
    let (targets, browser, me, origin, fhir) = (&targets, &browser, me.as_str(), origin.as_str(), fhir.as_str());
    let mix = move |length: Duration, launches: Vec<serde_json::Value>| async move {
        let start = Instant::now();
        let deadline = start + length;
        let pages = futures::future::join_all((0..viewers).map(|i| actors::page_views(browser, start, deadline, i)));
        let tokens = futures::future::join_all(
            launches.iter().map(|l| actors::refreshes(http, (origin, fhir), l, me, every, start, deadline)),
        );
        let export = actors::exports(http, fhir, start, deadline);
        let fhir_load = load::run_from(http, targets, concurrency, start, length);
        let (pages, tokens, (exported, exports), (mut samples, took)) = tokio::join!(pages, tokens, export, fhir_load);
        samples.extend(pages.into_iter().flatten());
        samples.extend(tokens.into_iter().flatten());
        samples.extend(exported);
        (samples, took, exports)
    };
    // Warm-up: the same mix and the same lab cycle (slow, down, back), without the refresh
    // chains (each is one token family, refreshed from where it is: they run in the measured
    // part only) — so the measured part starts from a gateway that has been through it once,
    // and its memory shows whether a second time adds to it.
    let lab = sims.iter().find(|(n, _)| *n == "lab").map(|(_, s)| s.controls()).ok_or("no lab simulator")?;
    let pid = gateway.pid.to_string();
    let warming = tokio::spawn(lab_cycle(lab.clone(), warmup, slow, pid.clone()));
    let (_, _, _) = mix(warmup, Vec::new()).await;
    let warm_curve = warming.await.map_err(|e| e.to_string())?;
    gateway.check_alive()?;
    let memory_start = gateway.memory_kb();
    let quarter = total / 4;
    let controller = tokio::spawn(lab_cycle(lab, total, slow, pid));
    let (samples, took, exports) = mix(total, launches).await;
    let curve = controller.await.map_err(|e| e.to_string())?;
    gateway.check_alive()?;
    let memory_end = gateway.memory_kb();
    let windows = ["steady", "lab slow", "lab down", "recovered"];
    let q = quarter.as_secs_f64();
    let window = |i: usize| -> Summary {
        let (from, to) = (quarter * u32::try_from(i).unwrap_or(0), quarter * u32::try_from(i + 1).unwrap_or(0));
        let last = i == windows.len() - 1;
        load::summarize(samples.iter().filter(|s| s.sent >= from && (s.sent < to || last)), q)
    };
    let by_window = windows.iter().enumerate().map(|(i, w)| (*w, window(i))).collect();
    let mut routes: Vec<&'static str> = samples.iter().map(|s| s.route).collect();
    routes.sort_unstable();
    routes.dedup();
    let by_route = routes
        .iter()
        .map(|r| (*r, load::summarize(samples.iter().filter(|s| s.route == *r), took.as_secs_f64())))
        .collect();
    let all = load::summarize(samples.iter(), took.as_secs_f64());
    Ok(report::Mixed {
        concurrency,
        seconds: total.as_secs_f64(),
        warmup_seconds: warmup.as_secs_f64(),
        people: people.len(),
        viewers,
        chains,
        exports,
        all,
        by_window,
        by_route,
        memory_start_kb: memory_start.0,
        memory_end_kb: memory_end.0,
        memory_peak_kb: memory_end.1,
        memory_curve: curve,
        warmup_curve: warm_curve,
    })
}

/// The lab's cycle over `length`, a quarter each: healthy, slow (`slow` per answer), down
/// (503), back. Samples the gateway's VmRSS (process `pid`) every half second meanwhile.
async fn lab_cycle(
    lab: std::sync::Arc<portico::simulator::SimulatorControls>,
    length: Duration,
    slow: Duration,
    pid: String,
) -> Vec<(f64, u64)> {
    let quarter = length / 4;
    let mut curve = Vec::new();
    let started = Instant::now();
    for step in 0..4 {
        match step {
            1 => lab.set_latency(slow),
            2 => {
                lab.set_latency(Duration::ZERO);
                lab.set_down(true);
            }
            3 => lab.set_down(false),
            _ => {}
        }
        let until = started + quarter * (step + 1);
        while Instant::now() < until {
            curve.push((started.elapsed().as_secs_f64(), processes::status_kb(&pid, "VmRSS").unwrap_or(0)));
            tokio::time::sleep(Duration::from_millis(500).min(quarter)).await;
        }
    }
    lab.set_down(false);
    lab.set_latency(Duration::ZERO);
    curve
}
