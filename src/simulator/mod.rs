//! The hospital simulator: a FHIR R4 server over real HTTP (axum) that serves one fixture
//! [`ResourceStore`] the way a hospital system would, quirks included — paging with absolute
//! or relative next links, OAuth2 client-credentials tokens that really expire (by secret,
//! or by a verified SMART Backend Services assertion: `backend.rs`), vendor profiles
//! ([`SimulatorProfile`]: Epic-like, Oracle-Health-like), HTTPS with required client
//! certificates (`tls.rs`), throttling (429 + Retry-After), outages (503) and added
//! latency, all switchable while it runs — and, when asked, `Patient/{id}/$everything` and
//! `_revinclude=Provenance:target`, Bulk Data `$export` (`bulk.rs`), and a PACS's WADO-RS
//! series retrieval (`wado.rs`), with
//! calls counted per route so tests can see how a
//! client used it. This file owns the public API (options, live controls, stats,
//! start/stop/run) and the router.
//! It is a stand-in for hospital systems in tests and the demo: it must never be used by
//! the gateway to serve real patients, never write to its store, and never log patient data.

mod api;
mod backend;
mod binary;
mod bulk;
mod capability;
pub mod disk;
mod everything;
mod guard;
mod search;
mod tls;
mod token;
mod wado;

pub use crate::config::SimulatorProfile;
pub use backend::{BackendClient, ClientKeys};
pub use tls::SimulatorTls;

#[cfg(test)]
mod tests;

use crate::sources::files::ResourceStore;
use axum::routing::{any, get, post};
use axum::Router;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How the simulated hospital system behaves.
#[derive(Clone)]
pub struct SimulatorOptions {
    /// Shown in CapabilityStatement.software / implementation.
    pub name: String,
    /// Added before every response.
    pub latency: Duration,
    /// Probability (0..=1) that a FHIR request answers 429 + Retry-After.
    pub fail_rate: f64,
    /// Value of Retry-After on those 429s.
    pub retry_after_secs: u64,
    /// When set, `POST /token` (client_credentials) is required and bearer tokens are checked.
    pub client_credentials: Option<(String, String)>,
    /// Lifetime of issued tokens.
    pub token_ttl: Duration,
    /// Default and maximum `_count`.
    pub page_size: usize,
    /// Quirk: emit next links relative to the FHIR base instead of absolute.
    pub relative_next_links: bool,
    /// Answer `Patient/{id}/$everything` (paged) and say so in the CapabilityStatement.
    pub everything: bool,
    /// Answer `_revinclude=Provenance:target` on every search and say so in the
    /// CapabilityStatement (`searchRevInclude`).
    pub revinclude_provenance: bool,
    /// Answer Bulk Data `$export` (system, `Patient/` and `Group/{id}/` level, IG 2.0) and
    /// say so in the CapabilityStatement.
    pub bulk: bool,
    /// When set, `POST /token` requires a SMART Backend Services assertion from this
    /// client (instead of a client secret) and bearer tokens are checked.
    pub backend_services: Option<BackendClient>,
    /// Which vendor's habits to copy (see [`SimulatorProfile`]).
    pub profile: SimulatorProfile,
    /// When set, the simulator serves HTTPS (and, with a client CA, requires mutual TLS).
    pub tls: Option<SimulatorTls>,
}

impl Default for SimulatorOptions {
    fn default() -> Self {
        SimulatorOptions {
            name: "Portico hospital simulator".into(),
            latency: Duration::ZERO,
            fail_rate: 0.0,
            retry_after_secs: 1,
            client_credentials: None,
            token_ttl: Duration::from_secs(3600),
            page_size: 50,
            relative_next_links: false,
            everything: false,
            revinclude_provenance: false,
            bulk: false,
            backend_services: None,
            profile: SimulatorProfile::Standard,
            tls: None,
        }
    }
}

/// Oracle-Health-like: the largest `_count` answered.
const ORACLE_MAX_COUNT: usize = 100;

impl SimulatorOptions {
    /// Whether `POST /token` is served and bearer tokens are required.
    fn issues_tokens(&self) -> bool {
        self.client_credentials.is_some() || self.backend_services.is_some()
    }

    /// The query parameter the next links carry the paging cursor in.
    fn cursor_param(&self) -> &'static str {
        match self.profile {
            SimulatorProfile::OracleHealth => "-pageContext",
            _ => search::CURSOR,
        }
    }
}

impl std::fmt::Debug for SimulatorOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatorOptions")
            .field("name", &self.name)
            .field("latency", &self.latency)
            .field("fail_rate", &self.fail_rate)
            .field("retry_after_secs", &self.retry_after_secs)
            .field("client_id", &self.client_credentials.as_ref().map(|(id, _)| id))
            .field("token_ttl", &self.token_ttl)
            .field("page_size", &self.page_size)
            .field("relative_next_links", &self.relative_next_links)
            .field("everything", &self.everything)
            .field("revinclude_provenance", &self.revinclude_provenance)
            .field("bulk", &self.bulk)
            .field("backend_client_id", &self.backend_services.as_ref().map(|b| &b.client_id))
            .field("profile", &self.profile)
            .field("tls", &self.tls)
            .finish()
    }
}

/// Live knobs tests flip while the server runs.
#[derive(Debug, Default)]
pub struct SimulatorControls {
    latency_nanos: AtomicU64,
    fail_next: AtomicU32,
    down: AtomicBool,
    /// Tokens issued under an older epoch are invalid.
    token_epoch: AtomicU64,
    /// While set, `Patient/{id}/$everything` answers 500 (the rest works).
    everything_broken: AtomicBool,
    /// While set, a Bulk Data export's status answers 500 (the export failed).
    bulk_broken: AtomicBool,
}

impl SimulatorControls {
    pub fn set_latency(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.latency_nanos.store(nanos, Ordering::Relaxed);
    }
    /// The next `n` FHIR requests (not metadata, not /token) answer 429 with Retry-After.
    pub fn fail_next(&self, n: u32) {
        self.fail_next.store(n, Ordering::SeqCst);
    }
    /// While down, every request answers 503 with an OperationOutcome.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
    /// While broken, `Patient/{id}/$everything` answers 500 with an OperationOutcome.
    pub fn set_everything_broken(&self, broken: bool) {
        self.everything_broken.store(broken, Ordering::SeqCst);
    }
    /// While broken, every Bulk Data export's status answers 500 with an OperationOutcome.
    pub fn set_bulk_broken(&self, broken: bool) {
        self.bulk_broken.store(broken, Ordering::SeqCst);
    }
    /// Every token issued so far becomes invalid (401).
    pub fn expire_tokens(&self) {
        self.token_epoch.fetch_add(1, Ordering::SeqCst);
    }

    fn latency(&self) -> Duration {
        Duration::from_nanos(self.latency_nanos.load(Ordering::Relaxed))
    }
    fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }
    /// Consumes one forced failure, if any are pending.
    fn take_forced_failure(&self) -> bool {
        self.fail_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
    }
    fn everything_broken(&self) -> bool {
        self.everything_broken.load(Ordering::SeqCst)
    }
    fn bulk_broken(&self) -> bool {
        self.bulk_broken.load(Ordering::SeqCst)
    }
    fn epoch(&self) -> u64 {
        self.token_epoch.load(Ordering::SeqCst)
    }
}

/// What the simulator has answered so far.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SimulatorStats {
    pub fhir_requests: u64,
    pub token_requests: u64,
    pub rejected_401: u64,
    pub answered_429: u64,
    /// Requests that reached a FHIR handler, per route: `metadata`, `search {Type}`,
    /// `read {Type}`, `Patient/$everything` (every page counts), `$export` (kick-offs),
    /// `$export status`, `$export file`, `$export cancel`.
    pub calls: BTreeMap<String, u64>,
    /// Every Bulk Data kick-off, as its path under the FHIR base with its query string
    /// (`$export?_type=…`, `Group/g1/$export`), in order.
    pub export_requests: Vec<String>,
}

impl SimulatorStats {
    /// How many requests reached `route` (see [`SimulatorStats::calls`]).
    pub fn calls_to(&self, route: &str) -> u64 {
        self.calls.get(route).copied().unwrap_or(0)
    }
}

#[derive(Debug, Default)]
struct Counters {
    fhir_requests: AtomicU64,
    token_requests: AtomicU64,
    rejected_401: AtomicU64,
    answered_429: AtomicU64,
    /// Per route; see [`SimulatorStats::calls`].
    calls: std::sync::Mutex<BTreeMap<String, u64>>,
    export_requests: std::sync::Mutex<Vec<String>>,
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    /// Counts one request to `route`.
    fn call(&self, route: String) {
        if let Ok(mut calls) = self.calls.lock() {
            *calls.entry(route).or_default() += 1;
        }
    }
    fn snapshot(&self) -> SimulatorStats {
        SimulatorStats {
            calls: self.calls.lock().map(|c| c.clone()).unwrap_or_default(),
            export_requests: self.export_requests.lock().map(|c| c.clone()).unwrap_or_default(),
            fhir_requests: self.fhir_requests.load(Ordering::Relaxed),
            token_requests: self.token_requests.load(Ordering::Relaxed),
            rejected_401: self.rejected_401.load(Ordering::Relaxed),
            answered_429: self.answered_429.load(Ordering::Relaxed),
        }
    }
}

/// Everything the handlers share.
struct Shared {
    store: ResourceStore,
    /// Set when the simulator serves a folder from disk (`store` is then empty).
    disk: Option<disk::DiskStore>,
    /// Each patient's resources in `store`, for patient searches.
    index: search::CompartmentIndex,
    options: SimulatorOptions,
    /// `http://host:port/fhir`, no trailing slash.
    base_url: String,
    token_url: String,
    /// Types answered: those in the store plus every type the gateway serves (a hospital
    /// supports a type even when this fixture holds none of it).
    supported: BTreeSet<String>,
    capability: Value,
    controls: Arc<SimulatorControls>,
    counters: Counters,
    tokens: token::TokenBook,
    /// Backend Services assertions already presented.
    spent_assertions: backend::SpentAssertions,
    /// Bulk Data export jobs (when offered).
    bulk: bulk::BulkJobs,
}

impl Shared {
    fn new(
        store: ResourceStore,
        disk: Option<disk::DiskStore>,
        mut options: SimulatorOptions,
        addr: SocketAddr,
    ) -> Shared {
        options.page_size = options.page_size.max(1);
        if disk.is_some() {
            // The disk store answers reads and searches only; the statement says so.
            options.everything = false;
            options.revinclude_provenance = false;
        }
        if options.profile == SimulatorProfile::OracleHealth {
            options.page_size = options.page_size.min(ORACLE_MAX_COUNT);
        }
        let scheme = if options.tls.is_some() { "https" } else { "http" };
        let origin = format!("{scheme}://{}", public_addr(addr));
        let base_url = format!("{origin}/fhir");
        let token_url = format!("{origin}/token");
        let mut supported: BTreeSet<String> = store.types().map(str::to_string).collect();
        supported.extend(disk.iter().flat_map(disk::DiskStore::types).map(str::to_string));
        supported.extend(
            std::iter::once("Patient")
                .chain(crate::fhir::PATIENT_COMPARTMENT_TYPES.iter().copied())
                .chain(crate::fhir::SUPPORTING_TYPES.iter().copied())
                .map(str::to_string),
        );
        let token_for_capability = options.issues_tokens().then_some(token_url.as_str());
        let features = capability::Features {
            everything: options.everything,
            revinclude_provenance: options.revinclude_provenance,
            bulk: options.bulk,
        };
        let capability = capability::statement(&options.name, &base_url, &supported, token_for_capability, features);
        let controls = Arc::new(SimulatorControls::default());
        controls.set_latency(options.latency);
        Shared {
            index: search::CompartmentIndex::build(&store),
            store,
            disk,
            options,
            base_url,
            token_url,
            supported,
            capability,
            controls,
            counters: Counters::default(),
            tokens: token::TokenBook::default(),
            spent_assertions: backend::SpentAssertions::default(),
            bulk: bulk::BulkJobs::default(),
        }
    }
}

/// A loopback address clients can reach when the server was bound to "any".
fn public_addr(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => SocketAddr::from(([127, 0, 0, 1], a.port())),
        SocketAddr::V6(a) if a.ip().is_unspecified() => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port())),
        other => other,
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/fhir", any(api::fhir_fallback))
        .route("/fhir/metadata", get(api::metadata).fallback(api::write_refused))
        .route("/fhir/.well-known/smart-configuration", get(api::smart_configuration).fallback(api::write_refused))
        .route("/fhir/{type}", get(api::search).fallback(api::write_refused))
        .route("/fhir/Binary/{id}", get(binary::read).fallback(api::write_refused))
        .route("/fhir/_bulk/{job}", get(api::bulk_status).delete(api::bulk_cancel).fallback(api::write_refused))
        .route("/fhir/_bulk/{job}/{file}", get(api::bulk_file).fallback(api::write_refused))
        .route("/fhir/wado-rs/studies/{study}/series/{series}", get(wado::series).fallback(api::write_refused))
        .route("/fhir/{type}/{id}", get(api::read).fallback(api::write_refused))
        .route("/fhir/{type}/{id}/{operation}", get(api::instance_operation).fallback(api::write_refused))
        .route("/token", post(token::token).fallback(token::method_not_allowed))
        .route("/_simulator/stats", get(api::stats))
        .fallback(api::fhir_fallback)
        .layer(axum::middleware::from_fn_with_state(shared.clone(), guard::guard))
        .with_state(shared)
}

/// A simulator serving in a background task. Dropping it shuts the server down too; call
/// [`RunningSimulator::stop`] to wait until the port is free.
#[must_use = "dropping the RunningSimulator shuts the server down"]
pub struct RunningSimulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl RunningSimulator {
    /// `http://127.0.0.1:PORT/fhir`
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }
    /// `http://127.0.0.1:PORT/token`
    pub fn token_url(&self) -> String {
        self.shared.token_url.clone()
    }
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    pub fn controls(&self) -> Arc<SimulatorControls> {
        self.shared.controls.clone()
    }
    pub fn stats(&self) -> SimulatorStats {
        self.shared.counters.snapshot()
    }
    /// Graceful shutdown: stops accepting, lets in-flight requests finish (at most 5 s),
    /// and returns once the port is free.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut task).await.is_err() {
                task.abort();
                let _ = task.await;
            }
        }
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Binds `addr` (port 0 allowed) and serves in a background tokio task.
pub async fn start(
    store: ResourceStore,
    options: SimulatorOptions,
    addr: SocketAddr,
) -> std::io::Result<RunningSimulator> {
    start_with(store, None, options, addr).await
}

/// Like [`start`], serving a folder of NDJSON from disk (reads, searches; no
/// `$everything`, no `_revinclude`).
pub async fn start_disk(
    disk: disk::DiskStore,
    options: SimulatorOptions,
    addr: SocketAddr,
) -> std::io::Result<RunningSimulator> {
    start_with(ResourceStore::default(), Some(disk), options, addr).await
}

async fn start_with(
    store: ResourceStore,
    disk: Option<disk::DiskStore>,
    options: SimulatorOptions,
    addr: SocketAddr,
) -> std::io::Result<RunningSimulator> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let acceptor = options.tls.as_ref().map(SimulatorTls::acceptor).transpose()?;
    let shared = Arc::new(Shared::new(store, disk, options, addr));
    let app = router(shared.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let stopped = async move {
        let _ = rx.await;
    };
    let task = match acceptor {
        Some(acceptor) => tokio::spawn(async move {
            axum::serve(tls::TlsListener { tcp: listener, acceptor }, app).with_graceful_shutdown(stopped).await
        }),
        None => tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(stopped).await }),
    };
    Ok(RunningSimulator { addr, shared, shutdown: Some(tx), task: Some(task) })
}

/// Serves until ctrl-c (for the `portico simulate` CLI command).
pub async fn run(store: ResourceStore, options: SimulatorOptions, addr: SocketAddr) -> std::io::Result<()> {
    run_with(store, None, options, addr).await
}

/// Like [`run`], serving a folder of NDJSON from disk (`portico simulate --from-disk`).
pub async fn run_disk(disk: disk::DiskStore, options: SimulatorOptions, addr: SocketAddr) -> std::io::Result<()> {
    run_with(ResourceStore::default(), Some(disk), options, addr).await
}

async fn run_with(
    store: ResourceStore,
    disk: Option<disk::DiskStore>,
    options: SimulatorOptions,
    addr: SocketAddr,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared::new(store, disk, options, addr));
    tracing::info!(
        base_url = %shared.base_url,
        token_url = shared.options.issues_tokens().then_some(shared.token_url.as_str()),
        name = %shared.options.name,
        "hospital simulator serving"
    );
    let app = router(shared);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("hospital simulator stopping");
        })
        .await
}
