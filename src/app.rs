//! Builds the running gateway from a [`Config`]: the store, the sources (starting
//! in-process simulators for `simulated` ones), the patient index (first build now, then
//! refreshed in the background), the aggregator and the HTTP router.

use crate::aggregate::Aggregator;
use crate::api::{self, ApiState};
use crate::clock::Clock;
use crate::config::{Config, SourceConfig, SourceKindName, UpstreamAuth};
use crate::fhir::time::days_since;
use crate::identity::PatientIndex;
use crate::policy::holds::PolicyLedger;
use crate::policy::Policy;
use crate::read::{Paging, Reader};
use crate::simulator::{self, RunningSimulator, SimulatorOptions};
use crate::sources::files::{FileSource, ResourceStore};
use crate::sources::rest::RestSource;
use crate::sources::SharedSource;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long the patient index may take to read every source's patient list.
const INDEX_DEADLINE: Duration = Duration::from_secs(30);
/// How soon the index is rebuilt when a source could not be read.
const UNREAD_RETRY: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    #[error(transparent)]
    Source(#[from] crate::sources::SourceError),
    #[error("authorization server: {0}")]
    Auth(#[from] crate::auth::oauth::ClientError),
    #[error("authorization server: {0}")]
    Oidc(#[from] crate::auth::oidc::OidcError),
    #[error(transparent)]
    Mail(#[from] crate::mail::MailError),
    #[error("policy: {0}")]
    Policy(#[from] crate::policy::PolicyError),
    /// What [`crate::settings`] refuses (a config built without it is validated here).
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    /// A `simulated` source's folder that does not load.
    #[error("source {source_name}: {problem}")]
    SimulatorData { source_name: String, problem: crate::sources::files::LoadError },
    /// A `simulated` source's in-process server that does not start.
    #[error("source {source_name}: {problem}")]
    SimulatorStart { source_name: String, problem: std::io::Error },
    /// A `simulated` source with `simulator_from_disk` whose folder cannot be indexed.
    #[error("source {source_name}: {problem}")]
    SimulatorDisk { source_name: String, problem: crate::simulator::disk::DiskError },
    /// No usable key-encryption key ([`crate::auth::keyring`]).
    #[error(transparent)]
    Keys(#[from] crate::auth::keyring::KeyringError),
    /// Export storage that does not open (an unusable folder or `store` URL).
    #[error(transparent)]
    ExportFiles(#[from] crate::export::files::FilesError),
    /// A config built without [`Config::load`] (which checks that these sources name a path).
    #[error("source {0}: a files or simulated source needs a path")]
    NoPath(String),
}

pub struct App {
    pub config: Config,
    pub store: Store,
    pub index: Arc<PatientIndex>,
    pub aggregator: Arc<Aggregator>,
    pub policy: Arc<Policy>,
    pub ledger: PolicyLedger,
    pub oauth: crate::auth::oauth::OAuth,
    pub accounts: Arc<crate::auth::accounts::Accounts>,
    /// Sign-in through the configured OpenID provider (metadata discovered on first use).
    pub oidc: Option<Arc<crate::auth::oidc::OidcLogin>>,
    /// Notices without PHI (new results, downloads ready, share links opened, proxies added).
    pub notices: crate::notices::Notices,
    /// Proxy invitations and the lifecycle of proxy access (its sweep starts with [`App::serve`]).
    pub proxies: Arc<crate::proxies::Proxies>,
    /// Bulk Data `$export`: kick-off, status, files; the workers start with [`App::serve`].
    pub exports: Arc<crate::export::Exports>,
    /// In-process stand-ins for `simulated` sources, by source name.
    pub simulators: Vec<(String, RunningSimulator)>,
    refresher: Option<tokio::task::JoinHandle<()>>,
    /// `config.server.utc_offset`, parsed.
    zone: chrono::FixedOffset,
    /// The dev tokens' credentials (from the validated settings).
    dev_tokens: crate::auth::DevTokens,
    /// The public keys the gateway signs Backend Services assertions to sources with
    /// (served at `/jwks/sources.json`).
    source_jwks: Arc<serde_json::Value>,
    /// Rate limits of the auth endpoints (shared by the router and the sweep).
    throttle: Arc<crate::auth::throttle::Throttle>,
    /// Released views already decided, shared by every reader of this app.
    decisions: crate::read::Decisions,
    /// The access log: one per app, so concurrent appends from the API and the export
    /// workers are committed together.
    audit: crate::audit::AuditLog,
    /// Attachment URLs and which record released each (shared by every reader: the API's
    /// and the export workers').
    attachments: crate::read::AttachmentIndex,
    /// What "now" is for the proxy lifecycle and the policy's decisions (the system clock
    /// unless a program building the app in-process gave another: [`crate::clock`]).
    pub clock: Clock,
}

impl App {
    /// Validates the settings a loaded config names (see [`crate::settings`]), then
    /// [`App::from_settings`].
    pub async fn build(config: Config) -> Result<App, AppError> {
        Self::build_with_clock(config, Clock::system()).await
    }

    /// [`App::build`] on another clock than the system's: for a program that builds the app
    /// in-process and moves time itself (the tests of birthdays). Deployments never get here.
    pub async fn build_with_clock(config: Config, clock: Clock) -> Result<App, AppError> {
        Self::from_settings_with_clock(crate::settings::Settings::from_config(config)?, clock).await
    }

    /// Opens everything the settings name and builds the patient index once.
    pub async fn from_settings(settings: crate::settings::Settings) -> Result<App, AppError> {
        Self::from_settings_with_clock(settings, Clock::system()).await
    }

    /// [`App::from_settings`] on `clock` (see [`crate::clock`]).
    pub async fn from_settings_with_clock(settings: crate::settings::Settings, clock: Clock) -> Result<App, AppError> {
        let crate::settings::Settings { config, policy: policy_config, zone, dev_viewers, clients, oidc } = settings;
        // Before anything is opened: without a key-encryption key the gateway does not start.
        let kek = Arc::new(crate::auth::keyring::KeyEncryptionKey::load(&config)?);
        let store = Store::open(&config.database.url, config.database.max_connections).await?;
        let source_jwks =
            Arc::new(crate::sources::upstream_auth::source_jwks(&config.sources, &config.base_dir).map_err(
                |(source_name, problem)| crate::sources::SourceError::Credentials {
                    source_name,
                    problem: problem.into(),
                },
            )?);
        let mut sources: Vec<SharedSource> = Vec::new();
        let mut simulators = Vec::new();
        for sc in &config.sources {
            let shift = sc.shift_dates_from.map_or(0, |anchor| days_since(anchor, chrono::Utc::now(), zone));
            let path = sc.path.as_ref().map(|p| config.base_dir.join(p));
            match sc.kind {
                SourceKindName::Fhir => sources.push(Arc::new(RestSource::new(sc, &config.base_dir)?)),
                SourceKindName::Files => {
                    let dir = path.ok_or_else(|| AppError::NoPath(sc.name.clone()))?;
                    sources.push(Arc::new(FileSource::open(&sc.name, sc.display_name(), &dir, shift)?));
                }
                SourceKindName::Simulated => {
                    let dir = path.ok_or_else(|| AppError::NoPath(sc.name.clone()))?;
                    // From disk (an offset index in memory, resources read when asked for), or
                    // the whole folder loaded into memory.
                    let (data, disk) = if sc.simulator_from_disk {
                        let disk = simulator::disk::DiskStore::open(&dir, shift)
                            .map_err(|problem| AppError::SimulatorDisk { source_name: sc.name.clone(), problem })?;
                        (ResourceStore::default(), Some(disk))
                    } else {
                        let data = ResourceStore::load(&dir, shift)
                            .map_err(|problem| AppError::SimulatorData { source_name: sc.name.clone(), problem })?;
                        (data, None)
                    };
                    let options = SimulatorOptions {
                        name: sc.display_name().to_string(),
                        latency: sc.latency.std(),
                        page_size: sc.simulator_page_size.unwrap_or(SimulatorOptions::default().page_size),
                        profile: sc.simulator_profile,
                        everything: sc.simulator_everything,
                        bulk: sc.simulator_bulk,
                        backend_services: simulated_backend_client(sc, &config.base_dir)?,
                        client_credentials: simulated_client_secret(sc, &config.base_dir)?,
                        ..SimulatorOptions::default()
                    };
                    let at = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
                    let running = match disk {
                        Some(disk) => simulator::start_disk(disk, options, at).await,
                        None => simulator::start(data, options, at).await,
                    }
                    .map_err(|problem| AppError::SimulatorStart { source_name: sc.name.clone(), problem })?;
                    let mut rest = SourceConfig {
                        kind: SourceKindName::Fhir,
                        url: Some(running.base_url().to_string()),
                        path: None,
                        ..sc.clone()
                    };
                    if let UpstreamAuth::BackendServices { token_url, .. }
                    | UpstreamAuth::ClientCredentials { token_url, .. } = &mut rest.auth
                    {
                        token_url.get_or_insert_with(|| running.token_url());
                    }
                    sources.push(Arc::new(RestSource::new(&rest, &config.base_dir)?));
                    simulators.push((sc.name.clone(), running));
                }
            }
        }
        let index = Arc::new(
            PatientIndex::open_with(store.clone(), sources.clone(), config.identity.refresh_every.std()).await?,
        );
        // Over a stored index the gateway is ready at once and refreshes in the background;
        // only the very first start waits for the sources to be read.
        let stored = index.is_stored().await.map_err(crate::identity::IdentityError::from)?;
        if !stored {
            let started = Instant::now();
            let report = index.refresh(&sources, Instant::now() + INDEX_DEADLINE).await?;
            for (source, error) in &report.failed_sources {
                tracing::warn!(%source, %error, "patient index: source not read; earlier links kept");
            }
            tracing::info!(
                patients = report.patients_read,
                links = report.links,
                seconds = started.elapsed().as_secs_f64(),
                "patient index built"
            );
        }
        let policy = Arc::new(Policy::new(policy_config, zone)?);
        let decisions = crate::read::Decisions::default();
        let forget = decisions.clone();
        let aggregator = Arc::new(
            Aggregator::new(
                sources.clone(),
                policy.labeler(),
                index.clone(),
                config.aggregate.resource_types.clone(),
                config.aggregate.deadline.std(),
                config.aggregate.cache_ttl.std(),
                config.aggregate.cache_max_records,
            )
            .on_record_dropped(move |patient| {
                let forget = forget.clone();
                async move { forget.forget(&patient).await }
            }),
        );
        let exports = Arc::new(crate::export::Exports::new(
            &config,
            store.clone(),
            index.clone(),
            sources.clone(),
            aggregator.clone(),
            policy.clone(),
            zone,
        )?);
        // What each source offers (its CapabilityStatement); one that is down is retried
        // with the index refresh, its configured types gathered meanwhile.
        for (source, error) in aggregator.refresh_offers(Instant::now() + INDEX_DEADLINE).await {
            tracing::warn!(%source, %error, "capability statement not read; configured types gathered until it is");
        }
        let refresher = {
            let (index, every) = (index.clone(), config.identity.refresh_every.std());
            let aggregator = aggregator.clone();
            tokio::spawn(async move {
                let mut at_once = stored;
                loop {
                    if !at_once {
                        // A source missed by the last refresh is retried sooner.
                        let behind = !index.unread_sources().is_empty() || !aggregator.offers_unknown().is_empty();
                        let wait = if behind { every.min(UNREAD_RETRY) } else { every };
                        tokio::time::sleep(wait).await;
                        for (source, error) in aggregator.refresh_offers(Instant::now() + INDEX_DEADLINE).await {
                            tracing::warn!(%source, %error, "capability statement not read; configured types gathered until it is");
                        }
                    }
                    at_once = false;
                    let started = Instant::now();
                    match index.refresh(&sources, Instant::now() + INDEX_DEADLINE).await {
                        Ok(report) => {
                            for (source, error) in &report.failed_sources {
                                tracing::warn!(%source, %error, "patient index: source not read; earlier links kept");
                            }
                            tracing::info!(
                                patients = report.patients_read,
                                changed = report.changed,
                                links = report.links,
                                seconds = started.elapsed().as_secs_f64(),
                                "patient index refreshed"
                            );
                        }
                        Err(e) => tracing::warn!(error = %e, "patient index refresh failed"),
                    }
                }
            })
        };
        let ledger = PolicyLedger::new(store.clone());
        let mailer = crate::mail::Mailer::start(
            config.mail.as_ref(),
            &config.base_dir,
            &crate::api::public_origin(&config.fhir_base_url()),
        )?
        .with_clock(clock.clone());
        let notices = crate::notices::Notices::new(store.clone(), mailer.clone());
        let accounts = Arc::new(
            crate::auth::accounts::Accounts::new(store.clone(), index.clone(), config.auth.clone(), kek.clone())
                .with_mail(mailer, config.mail.as_ref())
                .with_clock(clock.clone()),
        );
        let proxies = Arc::new(
            crate::proxies::Proxies::new(
                store.clone(),
                index.clone(),
                accounts.clone(),
                notices.clone(),
                exports.clone(),
                config.proxies.clone(),
                crate::proxies::AgeRules::from_policy(policy.config(), zone),
            )
            .with_clock(clock.clone()),
        );
        let oauth = crate::auth::oauth::OAuth::start(
            &config,
            &clients,
            store.clone(),
            index.clone(),
            kek.clone(),
            accounts.hasher(),
        )
        .await?;
        let oidc = match oidc {
            Some(s) => Some(Arc::new(crate::auth::oidc::OidcLogin::from_settings(s)?)),
            None => None,
        };
        let config_rate_limits = config.auth.rate_limits.clone();
        let dev_tokens = crate::auth::DevTokens::from_settings(
            config.server.dev_token.as_deref(),
            &dev_viewers,
            &config.fhir_base_url(),
        );
        Ok(App {
            attachments: crate::read::AttachmentIndex::new(&config.fhir_base_url()).stored_in(store.clone()),
            exports,
            oauth,
            accounts,
            notices,
            proxies,
            oidc,
            config,
            audit: crate::audit::AuditLog::new(store.clone()),
            store,
            index,
            aggregator,
            policy,
            ledger,
            simulators,
            refresher: Some(refresher),
            zone,
            dev_tokens,
            source_jwks,
            throttle: Arc::new(crate::auth::throttle::Throttle::new(&config_rate_limits)),
            decisions,
            clock,
        })
    }

    /// The read path over this app's sources and policy.
    pub fn reader(&self) -> Reader {
        let zone = self.zone;
        let paging =
            Paging { default_count: self.config.server.default_page_size, max_count: self.config.server.max_page_size };
        Reader::new(
            self.aggregator.clone(),
            self.policy.clone(),
            self.ledger.clone(),
            self.audit.clone(),
            zone,
            paging,
            self.decisions.clone(),
        )
        .with_attachments(self.attachments.clone())
        .with_clock(self.clock.clone())
    }

    /// Browser sessions with this app's limits.
    fn sessions(&self) -> crate::auth::sessions::Sessions {
        crate::auth::sessions::Sessions::new(
            self.store.clone(),
            self.config.auth.session_idle.std(),
            self.config.auth.session_absolute.std(),
        )
    }

    /// The periodic clean-up of expired sessions, codes and the like.
    pub fn sweeper(&self) -> crate::auth::sweep::Sweeper {
        crate::auth::sweep::Sweeper {
            store: self.store.clone(),
            sessions: self.sessions(),
            throttle: self.throttle.clone(),
            enroll_window: self.config.auth.enroll_throttle_window.std(),
        }
    }

    /// The new-results sweep over this app's reader.
    pub fn results_sweep(&self) -> crate::notices::ResultsSweep {
        crate::notices::ResultsSweep { store: self.store.clone(), reader: self.reader(), notices: self.notices.clone() }
    }

    /// The HTTP router for this app.
    pub fn router(&self) -> axum::Router {
        let state = Arc::new(ApiState {
            him: crate::him::Him::new(self.aggregator.clone(), self.ledger.clone()),
            reader: self.reader(),
            metrics: Default::default(),
            audit: self.audit.clone(),
            oauth: self.oauth.clone(),
            accounts: self.accounts.clone(),
            sessions: self.sessions(),
            grants: crate::auth::grants::Grants::new(self.store.clone()),
            secure_cookies: self.config.secure_cookies(),
            oidc_label: self.config.auth.oidc.as_ref().map(|o| o.label.clone()),
            oidc: self.oidc.clone(),
            min_password_length: self.config.auth.password_min_length,
            gauges: crate::aggregate::Gauges::new(self.aggregator.clone()),
            base_url: self.config.fhir_base_url(),
            tokens: self.dev_tokens.clone(),
            max_query_bytes: self.config.server.max_query_bytes,
            capability: crate::api::capability::capability_statement(&self.config.fhir_base_url(), chrono::Utc::now())
                .to_string()
                .into(),
            exports: self.exports.clone(),
            throttle: self.throttle.clone(),
            corrections: crate::rights::Corrections::new(self.store.clone()),
            shares: Arc::new(crate::share::Shares::new(
                self.store.clone(),
                self.audit.clone(),
                self.accounts.clone(),
                &crate::api::public_origin(&self.config.fhir_base_url()),
                &self.config.fhir_base_url(),
                self.notices.clone(),
            )),
            proxies: self.proxies.clone(),
            notices: self.notices.clone(),
            results_sweep: Arc::new(self.results_sweep()),
            clock: self.clock.clone(),
        });
        api::router(state, self.config.server.max_body_bytes).merge(api::source_jwks::router(self.source_jwks.clone()))
    }

    /// Serves on `listener` until `shutdown` resolves, finishing in-flight requests.
    pub async fn serve(
        mut self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = self.router();
        let workers = self.exports.start_workers(self.reader(), Some(self.notices.clone()));
        let sweep = self.sweeper().start(self.config.auth.sweep_every.std());
        let lifecycle = self.proxies.clone().start();
        let results = Arc::new(self.results_sweep()).start(self.config.notices.results_sweep_every.std());
        let served = axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await;
        workers.stop().await;
        sweep.abort();
        lifecycle.abort();
        results.abort();
        served?;
        if let Some(r) = self.refresher.take() {
            r.abort();
        }
        for (_, sim) in std::mem::take(&mut self.simulators) {
            sim.stop().await;
        }
        Ok(())
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(r) = self.refresher.take() {
            r.abort();
        }
    }
}

/// The client id and secret a `simulated` source's simulator requires, when the source's
/// auth is `client_credentials`.
fn simulated_client_secret(
    sc: &SourceConfig,
    base_dir: &std::path::Path,
) -> Result<Option<(String, String)>, AppError> {
    let UpstreamAuth::ClientCredentials { client_id, client_secret, .. } = &sc.auth else { return Ok(None) };
    let secret = client_secret.reveal(base_dir).map_err(|e| crate::sources::SourceError::Credentials {
        source_name: sc.name.clone(),
        problem: std::sync::Arc::new(e.into()),
    })?;
    Ok(Some((client_id.clone(), secret)))
}

/// The Backend Services client a `simulated` source's simulator registers: the gateway's
/// client id and public key, when the source's auth is `backend_services`.
fn simulated_backend_client(
    sc: &SourceConfig,
    base_dir: &std::path::Path,
) -> Result<Option<simulator::BackendClient>, AppError> {
    let UpstreamAuth::BackendServices { client_id, .. } = &sc.auth else { return Ok(None) };
    let credentials = |problem| crate::sources::SourceError::Credentials {
        source_name: sc.name.clone(),
        problem: std::sync::Arc::new(problem),
    };
    let key = crate::sources::upstream_auth::assertion_key(sc, base_dir).map_err(credentials)?;
    let jwks = crate::sources::upstream_auth::assertion::jwks(key.iter()).map_err(credentials)?;
    Ok(Some(simulator::BackendClient { client_id: client_id.clone(), keys: simulator::ClientKeys::Jwks(jwks) }))
}
