//! The load client: `concurrency` tokio tasks sending requests over one reqwest client (keep-
//! alive connections, like an app or a portal) for a fixed time, each reading the whole body,
//! and the summary of what they saw per route: requests/s, p50/p99 latency, MB/s, errors
//! (transport failures and non-2xx answers) and 2xx answers that carry an OperationOutcome
//! (a documented partial warning — or any outcome entry, e.g. a note about withheld data:
//! the bench only looks for the resource type, so this count is an upper bound).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One request the client may send.
#[derive(Clone)]
pub struct Target {
    pub route: &'static str,
    pub url: String,
    pub token: Option<String>,
}

impl Target {
    pub fn new(route: &'static str, url: String, token: Option<&str>) -> Target {
        Target { route, url, token: token.map(str::to_string) }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// 2xx with an OperationOutcome in it (partial warnings, notes; see the module doc).
    Partial,
    Error,
}

/// One answered (or failed) request.
pub struct Sample {
    pub route: &'static str,
    /// When it was sent, from the start of the phase.
    pub sent: Duration,
    pub latency: Duration,
    pub bytes: usize,
    pub outcome: Outcome,
}

/// A client for the bench: enough idle connections for the highest concurrency.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// One request, timed; the body is read to the end.
pub async fn send(http: &reqwest::Client, target: &Target, phase_start: Instant) -> Sample {
    let started = Instant::now();
    let mut req = http.get(&target.url).header("Accept", "application/fhir+json");
    if let Some(t) = &target.token {
        req = req.bearer_auth(t);
    }
    let (bytes, outcome) = match req.send().await {
        Ok(resp) => {
            let ok = resp.status().is_success();
            match resp.bytes().await {
                Ok(body) if ok => {
                    let partial = memchr_outcome(&body);
                    (body.len(), if partial { Outcome::Partial } else { Outcome::Ok })
                }
                Ok(body) => (body.len(), Outcome::Error),
                Err(_) => (0, Outcome::Error),
            }
        }
        Err(_) => (0, Outcome::Error),
    };
    Sample {
        route: target.route,
        sent: started.duration_since(phase_start),
        latency: started.elapsed(),
        bytes,
        outcome,
    }
}

/// Whether the body holds `"OperationOutcome"` (memchr's SIMD search: a comparison at every
/// byte cost the client about a quarter of the process's CPU on 89 KB answers, and one at
/// every quote mark still a tenth — time the gateway and the static handler then did not get).
fn memchr_outcome(body: &[u8]) -> bool {
    memchr::memmem::find(body, b"\"OperationOutcome\"").is_some()
}

/// Sends the targets round-robin from `concurrency` tasks for `duration`.
pub async fn run(
    http: &reqwest::Client,
    targets: &[Target],
    concurrency: usize,
    duration: Duration,
) -> (Vec<Sample>, Duration) {
    run_from(http, targets, concurrency, Instant::now(), duration).await
}

/// [`run`] for a phase that started at `start` (samples are timed from it) and lasts
/// `duration` from there.
pub async fn run_from(
    http: &reqwest::Client,
    targets: &[Target],
    concurrency: usize,
    start: Instant,
    duration: Duration,
) -> (Vec<Sample>, Duration) {
    let targets = Arc::new(targets.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (http, targets, next) = (http.clone(), targets.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed) % targets.len();
                samples.push(send(&http, &targets[i], start).await);
            }
            samples
        }));
    }
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await.expect("load task"));
    }
    (samples, start.elapsed())
}

/// What a set of samples adds up to.
#[derive(Clone, Copy, Default)]
pub struct Summary {
    pub requests: usize,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub mb_s: f64,
    pub errors: usize,
    pub partial: usize,
}

/// Summarises the samples `keep` selects, over `seconds` of wall time.
pub fn summarize<'a>(samples: impl Iterator<Item = &'a Sample>, seconds: f64) -> Summary {
    let mut latencies = Vec::new();
    let (mut bytes, mut errors, mut partial) = (0usize, 0, 0);
    for s in samples {
        latencies.push(s.latency.as_secs_f64() * 1000.0);
        bytes += s.bytes;
        match s.outcome {
            Outcome::Ok => {}
            Outcome::Partial => partial += 1,
            Outcome::Error => errors += 1,
        }
    }
    latencies.sort_by(f64::total_cmp);
    let seconds = seconds.max(1e-9);
    Summary {
        requests: latencies.len(),
        rps: latencies.len() as f64 / seconds,
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
        mb_s: bytes as f64 / 1e6 / seconds,
        errors,
        partial,
    }
}

/// Nearest-rank percentile of sorted values (0 when empty).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
