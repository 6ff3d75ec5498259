//! Typed configuration: the TOML file, `PORTICO_…` environment overrides, and validation of
//! what the file says on its own. Owns every knob the gateway reads at start-up. It must
//! never start anything or touch the network, and it imports nothing further down the road:
//! the policy file it names, the zone and the dev tokens' viewers are checked by
//! [`crate::settings`]. A config either loads into a [`Config`] or is refused with a
//! [`ConfigError`] that names the file, the key and what is wrong.

mod auth;
mod duration;
mod env;
mod export;
mod mail;
mod proxies;
mod upstream;

pub use auth::{AuthConfig, ClientConfig, OidcConfig, RateLimitConfig};
pub use duration::Duration;
pub use export::{ByteSize, ExportConfig, ExportGroup};
pub use mail::{
    default_resend as default_resend_per_hour, default_verify_valid as default_verify_link_valid, MailConfig,
};
pub use proxies::{NoticesConfig, ProxiesConfig};
pub use upstream::{SimulatorProfile, SourceTls, UpstreamAuth};

use serde::Deserialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// What is wrong with a configuration, always with the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {message}")]
    Unreadable { file: String, message: String },
    #[error("{file}: {key}: {message}")]
    Invalid { file: String, key: String, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub aggregate: AggregateConfig,
    #[serde(default)]
    pub identity: IdentityConfig,
    #[serde(default, rename = "sources")]
    pub sources: Vec<SourceConfig>,
    #[serde(default)]
    pub policy: PolicySection,
    #[serde(default)]
    pub auth: AuthConfig,
    /// Bulk Data `$export`: where files go, how long they live, the job queue's tuning and
    /// the partner rosters (Groups).
    #[serde(default)]
    pub export: ExportConfig,
    /// The key-encryption key from `PORTICO_KEY_ENCRYPTION_KEY`, when set (see
    /// [`crate::auth::keyring`]); else `auth.key_file` names it.
    #[serde(skip)]
    pub key_encryption_key: Option<EnvSecret>,
    /// Security mails (see [`MailConfig`]); `None`: none are sent, each is logged as not sent.
    #[serde(default)]
    pub mail: Option<MailConfig>,
    /// Proxy invitations and their lifecycle (see [`ProxiesConfig`]).
    #[serde(default)]
    pub proxies: ProxiesConfig,
    /// Notices without PHI (see [`NoticesConfig`]).
    #[serde(default)]
    pub notices: NoticesConfig,
    /// The file the config was read from (as errors name it).
    #[serde(skip)]
    pub file: String,
    /// The folder the config file lives in; relative paths in the config resolve against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The externally visible base URL of the FHIR API (e.g. `https://portal.example/fhir`).
    /// Defaults to `http://{listen}/fhir`.
    pub public_base_url: Option<String>,
    /// Demo convenience until SMART authorization lands: a static bearer token accepted for
    /// data endpoints. Refused unless the server listens on loopback.
    pub dev_token: Option<String>,
    /// More demo tokens, each standing for a viewer (patient, proxy, partner, staff).
    #[serde(default)]
    pub dev_tokens: Vec<DevToken>,
    #[serde(default = "default_body_limit")]
    pub max_body_bytes: usize,
    #[serde(default = "default_query_limit")]
    pub max_query_bytes: usize,
    #[serde(default = "default_page_size")]
    pub default_page_size: usize,
    #[serde(default = "default_max_page_size")]
    pub max_page_size: usize,
    /// Time zone for ages and "today" (IANA name is not parsed; a fixed UTC offset like
    /// `-08:00` or `UTC`).
    #[serde(default = "default_tz")]
    pub utc_offset: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            public_base_url: None,
            dev_token: None,
            dev_tokens: Vec::new(),
            max_body_bytes: default_body_limit(),
            max_query_bytes: default_query_limit(),
            default_page_size: default_page_size(),
            max_page_size: default_max_page_size(),
            utc_offset: default_tz(),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_body_limit() -> usize {
    1024 * 1024
}
fn default_query_limit() -> usize {
    8 * 1024
}
fn default_page_size() -> usize {
    50
}
fn default_max_page_size() -> usize {
    500
}
fn default_tz() -> String {
    "UTC".into()
}

/// Where the privacy policy lives.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    /// The policy file, relative to this config file. Without one, the policy shipped with
    /// Portico (config/policy.toml, built in) applies.
    pub file: Option<PathBuf>,
}

/// A static bearer token standing for one viewer: a demo and test convenience until SMART
/// authorization is configured, refused unless the gateway listens on loopback.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevToken {
    pub token: String,
    /// `staff`, `patient`, `proxy:REL[:assent][:adult-granted]`, `partner:NAME:PURPOSE`.
    pub viewer: String,
    /// The patient (`source/source-id`) a `patient` or `proxy` viewer acts for.
    pub patient: Option<String>,
    /// SMART scopes of an app acting for the viewer (narrowing only).
    pub scopes: Option<String>,
    /// Staff and partner viewers: the Groups this token may export (Bulk Data); without
    /// it, any Group.
    #[serde(default)]
    pub groups: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path/to/file.db` (created if missing) or `postgres://…`.
    #[serde(default = "default_db_url")]
    pub url: String,
    #[serde(default = "default_db_pool")]
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig { url: default_db_url(), max_connections: default_db_pool() }
    }
}
fn default_db_url() -> String {
    "sqlite://data/portico.db".into()
}
fn default_db_pool() -> u32 {
    5
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateConfig {
    /// Overall deadline for gathering one patient's record from every source.
    #[serde(default = "default_deadline")]
    pub deadline: Duration,
    /// How long an aggregated record stays cached.
    #[serde(default = "default_cache_ttl")]
    pub cache_ttl: Duration,
    /// How many aggregated records the cache holds at most.
    #[serde(default = "default_cache_records")]
    pub cache_max_records: u64,
    /// Resource types fetched for a patient's record: when set, only these (any type of
    /// the R4 Patient compartment, `crate::fhir::compartment`), intersected with what each
    /// source's CapabilityStatement declares. When unset, every compartment type a source
    /// declares; the US Core set (`default_types`) while a source's statement is unknown.
    #[serde(default)]
    pub resource_types: Option<Vec<String>>,
}

impl Default for AggregateConfig {
    fn default() -> Self {
        AggregateConfig {
            deadline: default_deadline(),
            cache_ttl: default_cache_ttl(),
            cache_max_records: default_cache_records(),
            resource_types: None,
        }
    }
}
fn default_deadline() -> Duration {
    Duration::from_secs(10)
}
fn default_cache_ttl() -> Duration {
    Duration::from_secs(60)
}
fn default_cache_records() -> u64 {
    1000
}
pub fn default_types() -> Vec<String> {
    crate::fhir::PATIENT_COMPARTMENT_TYPES.iter().map(std::string::ToString::to_string).collect()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// How often the patient index re-reads every source's Patient list.
    #[serde(default = "default_refresh")]
    pub refresh_every: Duration,
}
impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig { refresh_every: default_refresh() }
    }
}
fn default_refresh() -> Duration {
    Duration::from_secs(300)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Short name, used in gateway ids, tags and logs: `[a-z0-9-]{1,20}`.
    pub name: String,
    /// Human-readable name of the system ("Bayview Regional Reference Lab").
    pub display: Option<String>,
    /// `fhir` (a FHIR R4 REST server at `url`), `files` (a folder of Bundles or NDJSON at
    /// `path`) or `simulated` (a fixture folder at `path` served by an in-process simulator
    /// on a loopback port and read over HTTP like any REST source).
    pub kind: SourceKindName,
    pub url: Option<String>,
    pub path: Option<PathBuf>,
    /// Shift every full date in the folder's data by the whole days from this anchor to
    /// today (fixtures keep ages and hold periods meaningful whenever they are read).
    pub shift_dates_from: Option<chrono::NaiveDate>,
    #[serde(default)]
    pub auth: UpstreamAuth,
    /// A custom CA and a client certificate for mutual TLS (see [`SourceTls`]).
    #[serde(default)]
    pub tls: SourceTls,
    #[serde(default = "default_request_timeout")]
    pub request_timeout: Duration,
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    #[serde(default = "default_backoff")]
    pub retry_backoff: Duration,
    /// Longest Retry-After the adapter will wait; longer ones count as failures.
    #[serde(default = "default_max_retry_after")]
    pub max_retry_after: Duration,
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    /// `_count` asked of the source per page.
    #[serde(default = "default_page_count")]
    pub page_size: usize,
    /// Pages followed at most for one search.
    #[serde(default = "default_max_pages")]
    pub max_pages: usize,
    /// Consecutive failures after which the source is not called until `breaker_cooldown`.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    #[serde(default = "default_breaker_cooldown")]
    pub breaker_cooldown: Duration,
    /// Simulated sources only: added latency per request.
    #[serde(default)]
    pub latency: Duration,
    /// Simulated sources only: the simulator's own page size.
    pub simulator_page_size: Option<usize>,
    /// Simulated sources only: which vendor the simulator behaves like.
    #[serde(default)]
    pub simulator_profile: SimulatorProfile,
    /// Simulated sources only: the simulator offers `Patient/{id}/$everything` (and says so
    /// in its CapabilityStatement), as some vendors' systems do.
    #[serde(default)]
    pub simulator_everything: bool,
    /// Simulated sources only: the simulator offers Bulk Data `$export` (and says so in its
    /// CapabilityStatement); the gateway then asks it for its own export for system- and
    /// Group-level exports instead of searching it person by person.
    #[serde(default)]
    pub simulator_bulk: bool,
    /// Simulated sources only: the simulator serves the folder's NDJSON files from disk (an
    /// offset index in memory, resources read when asked for; no `$everything` or
    /// `_revinclude`), as `portico simulate --from-disk` does, for large populations.
    #[serde(default)]
    pub simulator_from_disk: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKindName {
    Fhir,
    Files,
    Simulated,
}

impl SourceConfig {
    /// A REST source at `url` with default tuning (used by tests and by simulated sources).
    pub fn rest(name: &str, url: &str) -> SourceConfig {
        SourceConfig {
            name: name.into(),
            display: None,
            kind: SourceKindName::Fhir,
            url: Some(url.into()),
            path: None,
            shift_dates_from: None,
            auth: UpstreamAuth::None,
            tls: SourceTls::default(),
            request_timeout: default_request_timeout(),
            max_retries: default_retries(),
            retry_backoff: default_backoff(),
            max_retry_after: default_max_retry_after(),
            max_concurrency: default_concurrency(),
            page_size: default_page_count(),
            max_pages: default_max_pages(),
            breaker_failures: default_breaker_failures(),
            breaker_cooldown: default_breaker_cooldown(),
            latency: Duration::default(),
            simulator_page_size: None,
            simulator_profile: SimulatorProfile::Standard,
            simulator_everything: false,
            simulator_bulk: false,
            simulator_from_disk: false,
        }
    }

    /// A file source reading `path`.
    pub fn files(name: &str, path: &Path) -> SourceConfig {
        SourceConfig { kind: SourceKindName::Files, url: None, path: Some(path.to_path_buf()), ..Self::rest(name, "") }
    }

    /// The human-readable name, falling back to the short name.
    pub fn display_name(&self) -> &str {
        self.display.as_deref().unwrap_or(&self.name)
    }
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_retries() -> u32 {
    2
}
fn default_backoff() -> Duration {
    Duration::from_millis(200)
}
fn default_max_retry_after() -> Duration {
    Duration::from_secs(5)
}
fn default_concurrency() -> usize {
    4
}
fn default_page_count() -> usize {
    100
}
fn default_max_pages() -> usize {
    100
}
fn default_breaker_failures() -> u32 {
    5
}
fn default_breaker_cooldown() -> Duration {
    Duration::from_secs(30)
}

/// A secret named by where it lives, never its value.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secret {
    pub env: Option<String>,
    pub file: Option<PathBuf>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret(env={:?}, file={:?})", self.env, self.file)
    }
}

/// A secret value read from the environment; never shown by `Debug`.
#[derive(Clone)]
pub struct EnvSecret(String);

impl EnvSecret {
    pub fn new(value: String) -> EnvSecret {
        EnvSecret(value)
    }
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for EnvSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnvSecret(…)")
    }
}

/// Why a secret's value could not be read; it names where it was looked for.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {0} is not set")]
    EnvNotSet(String),
    #[error("cannot read secret file {path}: {source}")]
    Unreadable { path: String, source: std::io::Error },
    #[error("secret needs `env` or `file`")]
    Unnamed,
}

impl Secret {
    /// Reads the secret's value; the error names where it was looked for.
    pub fn reveal(&self, base_dir: &Path) -> Result<String, SecretError> {
        if let Some(var) = &self.env {
            return std::env::var(var).map_err(|_| SecretError::EnvNotSet(var.clone()));
        }
        if let Some(file) = &self.file {
            let path = base_dir.join(file);
            return std::fs::read_to_string(&path)
                .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
                .map_err(|source| SecretError::Unreadable { path: path.display().to_string(), source });
        }
        Err(SecretError::Unnamed)
    }
}

impl Config {
    /// Loads a config file, applies `PORTICO_…` overrides from the process environment and
    /// validates it.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> = std::env::vars().collect();
        Self::load_with_env(path, &vars)
    }

    pub fn load_with_env(path: &Path, vars: &[(String, String)]) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Unreadable { file: file.clone(), message: e.to_string() })?;
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::from_toml(&text, &file, &base_dir, vars)
    }

    /// Parses TOML text (named `file` in errors), applies overrides and validates.
    pub fn from_toml(
        text: &str,
        file: &str,
        base_dir: &Path,
        vars: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let invalid = |key: String, message: String| ConfigError::Invalid { file: file.to_string(), key, message };
        let mut value: toml::Table = toml::from_str(text)
            .map_err(|e| invalid("(syntax)".into(), e.message().to_string() + &line_of(text, e.span())))?;
        env::apply_overrides(&mut value, vars).map_err(|(key, msg)| invalid(key, msg))?;
        let deserializer = toml::Value::Table(value);
        let mut config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let key = e.path().to_string();
            invalid(if key == "." { "(top level)".into() } else { key }, e.into_inner().message().to_string())
        })?;
        config.base_dir = base_dir.to_path_buf();
        config.file = file.to_string();
        config.key_encryption_key = vars
            .iter()
            .find(|(k, v)| k == crate::auth::keyring::KEK_ENV && !v.is_empty())
            .map(|(_, v)| EnvSecret::new(v.clone()));
        config.validate().map_err(|(key, msg)| invalid(key, msg))?;
        Ok(config)
    }

    /// Validates again after a programmatic change (e.g. `serve --listen`).
    pub fn revalidate(&self) -> Result<(), ConfigError> {
        self.validate().map_err(|(key, message)| ConfigError::Invalid { file: "(command line)".into(), key, message })
    }

    fn validate(&self) -> Result<(), (String, String)> {
        let listen = self.server.listen.parse::<std::net::SocketAddr>().map_err(|_| {
            ("server.listen".to_string(), format!("`{}` is not an address like 127.0.0.1:8080", self.server.listen))
        })?;
        if let Some(url) = &self.server.public_base_url {
            url::Url::parse(url).map_err(|e| ("server.public_base_url".into(), format!("not a URL: {e}")))?;
        }
        if let Some(token) = &self.server.dev_token {
            if token.len() < 16 {
                return Err(("server.dev_token".into(), "must be at least 16 characters".into()));
            }
            if !listen.ip().is_loopback() {
                return Err((
                    "server.dev_token".into(),
                    format!("is allowed only when listening on loopback, not {listen}"),
                ));
            }
        }
        for (i, t) in self.server.dev_tokens.iter().enumerate() {
            let key = |k: &str| format!("server.dev_tokens[{i}].{k}");
            if t.token.len() < 16 {
                return Err((key("token"), "must be at least 16 characters".into()));
            }
            if !listen.ip().is_loopback() {
                return Err((
                    key("token"),
                    format!("dev tokens are allowed only when listening on loopback, not {listen}"),
                ));
            }
        }
        if self.server.default_page_size == 0 || self.server.default_page_size > self.server.max_page_size {
            return Err(("server.default_page_size".into(), "must be between 1 and server.max_page_size".into()));
        }
        if !(self.database.url.starts_with("sqlite:")
            || self.database.url.starts_with("postgres://")
            || self.database.url.starts_with("postgresql://"))
        {
            return Err(("database.url".into(), "must start with sqlite: or postgres://".into()));
        }
        let r = &self.auth.rate_limits;
        for (k, v) in [
            ("per_ip_per_minute", r.per_ip_per_minute),
            ("per_ip_burst", r.per_ip_burst),
            ("per_account_per_minute", r.per_account_per_minute),
            ("per_account_burst", r.per_account_burst),
            ("per_client_per_minute", r.per_client_per_minute),
            ("per_client_burst", r.per_client_burst),
        ] {
            if v == 0 {
                return Err((format!("auth.rate_limits.{k}"), "must be at least 1".into()));
            }
        }
        if self.auth.hash_queue == 0 {
            return Err(("auth.hash_queue".into(), "must be at least 1".into()));
        }
        if self.auth.sweep_every.is_zero() {
            return Err(("auth.sweep_every".into(), "must be greater than zero".into()));
        }
        if self.aggregate.deadline.is_zero() {
            return Err(("aggregate.deadline".into(), "must be greater than zero".into()));
        }
        for (i, t) in self.aggregate.resource_types.iter().flatten().enumerate() {
            if crate::fhir::compartment::get(t).is_none() {
                return Err((
                    format!("aggregate.resource_types[{i}]"),
                    format!("`{t}` is not a type of the FHIR R4 Patient compartment the gateway gathers"),
                ));
            }
        }
        if self.sources.is_empty() {
            return Err(("sources".into(), "at least one source is required".into()));
        }
        let mut names = HashSet::new();
        for (i, s) in self.sources.iter().enumerate() {
            let key = |k: &str| format!("sources[{i}].{k}");
            let name_ok = !s.name.is_empty()
                && s.name.len() <= 20
                && s.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !name_ok {
                return Err((key("name"), format!("`{}` must be 1-20 characters of a-z, 0-9 and -", s.name)));
            }
            if !names.insert(&s.name) {
                return Err((key("name"), format!("`{}` is used by another source", s.name)));
            }
            match s.kind {
                SourceKindName::Fhir => {
                    let url =
                        s.url.as_deref().ok_or((key("url"), "is required for a source of kind fhir".to_string()))?;
                    let url = url::Url::parse(url).map_err(|e| (key("url"), format!("not a URL: {e}")))?;
                    if !matches!(url.scheme(), "http" | "https") {
                        return Err((key("url"), "must be http or https".into()));
                    }
                    if s.path.is_some() {
                        return Err((key("path"), "is only for sources of kind files or simulated".into()));
                    }
                    upstream::check(&s.auth, &s.tls, &self.base_dir).map_err(|(k, m)| (key(&k), m))?;
                }
                SourceKindName::Files | SourceKindName::Simulated => {
                    let path =
                        s.path.as_ref().ok_or((key("path"), "is required for a source of this kind".to_string()))?;
                    if s.url.is_some() {
                        return Err((key("url"), "is only for sources of kind fhir".into()));
                    }
                    let full = self.base_dir.join(path);
                    if !full.is_dir() {
                        return Err((key("path"), format!("{} is not a folder", full.display())));
                    }
                    if !s.tls.is_default() {
                        return Err((key("tls"), "is only for sources of kind fhir".into()));
                    }
                    if s.kind == SourceKindName::Simulated {
                        upstream::check(&s.auth, &s.tls, &self.base_dir).map_err(|(k, m)| (key(&k), m))?;
                    }
                }
            }
            if s.max_concurrency == 0 {
                return Err((key("max_concurrency"), "must be at least 1".into()));
            }
            if s.request_timeout.is_zero() {
                return Err((key("request_timeout"), "must be greater than zero".into()));
            }
            if s.page_size == 0 || s.max_pages == 0 {
                return Err((key("page_size"), "page_size and max_pages must be at least 1".into()));
            }
            if s.breaker_failures == 0 {
                return Err((key("breaker_failures"), "must be at least 1".into()));
            }
        }
        if let Some(mail) = &self.mail {
            mail.validate(&self.base_dir)?;
        }
        self.proxies.validate()?;
        self.notices.validate()?;
        self.validate_export()
    }

    fn validate_export(&self) -> Result<(), (String, String)> {
        let e = &self.export;
        if e.max_jobs_per_client == 0 {
            return Err(("export.max_jobs_per_client".into(), "must be at least 1".into()));
        }
        if e.patients_per_unit == 0 {
            return Err(("export.patients_per_unit".into(), "must be at least 1".into()));
        }
        if e.file_max_resources == 0 {
            return Err(("export.file_max_resources".into(), "must be at least 1".into()));
        }
        if e.file_max_bytes.0 < 1024 {
            return Err(("export.file_max_bytes".into(), "must be at least 1KB".into()));
        }
        if let Some(store) = &e.store {
            crate::export::files::check_url(store).map_err(|m| ("export.store".to_string(), m))?;
        }
        for (k, d) in [("poll_interval", e.poll_interval), ("lease", e.lease), ("file_lifetime", e.file_lifetime)] {
            if d.is_zero() {
                return Err((format!("export.{k}"), "must be greater than zero".into()));
            }
        }
        let mut ids = HashSet::new();
        for (i, g) in e.groups.iter().enumerate() {
            let key = |k: &str| format!("export.groups[{i}].{k}");
            if !crate::fhir::is_valid_id(&g.id) {
                return Err((key("id"), format!("`{}` is not a FHIR id (A-Z a-z 0-9 - ., at most 64)", g.id)));
            }
            if !ids.insert(&g.id) {
                return Err((key("id"), format!("`{}` is used by another group", g.id)));
            }
            for (j, m) in g.members.iter().enumerate() {
                let known =
                    m.split_once('/').is_some_and(|(s, id)| !id.is_empty() && self.sources.iter().any(|x| x.name == s));
                if !known {
                    return Err((
                        format!("export.groups[{i}].members[{j}]"),
                        format!("`{m}` is not source/source-id of a configured source"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Cookies are `Secure` unless the gateway is reached over plain HTTP on loopback.
    pub fn secure_cookies(&self) -> bool {
        let base = self.fhir_base_url();
        let loopback_http = base.starts_with("http://")
            && url::Url::parse(&base).ok().and_then(|u| u.host_str().map(str::to_string)).is_some_and(|h| {
                h == "localhost"
                    || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
                    || h.trim_matches(['[', ']']) == "::1"
            });
        !loopback_http
    }

    /// The FHIR base URL clients see.
    pub fn fhir_base_url(&self) -> String {
        match &self.server.public_base_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!("http://{}/fhir", self.server.listen),
        }
    }
}

fn line_of(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(r) => format!(" (line {})", text[..r.start.min(text.len())].matches('\n').count() + 1),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests;
