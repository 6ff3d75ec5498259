//! The `[auth]` section: SMART App Launch and Backend Services token lifetimes, lockout,
//! sessions, registered clients and OpenID Connect sign-in. Types and defaults only;
//! validation lives with [`super::Config`].

use super::{Duration, Secret};
use serde::Deserialize;
use std::path::PathBuf;

/// SMART App Launch authorization server, login and sessions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Access token lifetime (opaque tokens, checked against the store on every request,
    /// so revocation is immediate).
    #[serde(default = "default_access_ttl")]
    pub access_token_ttl: Duration,
    /// Lifetime of a backend services (`client_credentials`) access token; SMART suggests
    /// at most five minutes.
    #[serde(default = "default_backend_ttl")]
    pub backend_token_ttl: Duration,
    #[serde(default = "default_refresh_ttl")]
    pub refresh_token_ttl: Duration,
    /// Authorization code lifetime.
    #[serde(default = "default_code_ttl")]
    pub code_ttl: Duration,
    /// Failed sign-ins before an account is locked, and for how long.
    #[serde(default = "default_lockout_attempts")]
    pub lockout_attempts: u32,
    #[serde(default = "default_lockout")]
    pub lockout_duration: Duration,
    #[serde(default = "default_password_min")]
    pub password_min_length: usize,
    /// Patients may enroll with medical record number + birth date + last name (besides
    /// a one-time activation code from HIM).
    #[serde(default = "default_true")]
    pub enroll_by_demographics: bool,
    /// Attempts by demographics against one record (whatever the account) within
    /// `enroll_throttle_window` after which that record can't be enrolled by demographics …
    #[serde(default = "default_enroll_record_attempts")]
    pub enroll_record_attempts: u32,
    /// … and failed attempts in all, within the same window, after which nobody can.
    #[serde(default = "default_enroll_global_attempts")]
    pub enroll_global_attempts: u32,
    #[serde(default = "default_enroll_window")]
    pub enroll_throttle_window: Duration,
    /// How long an activation code is valid when issued without `--valid-days`.
    #[serde(default = "default_activation_days")]
    pub activation_code_days: u32,
    /// A browser session ends after this long without a request, and after this long in all.
    #[serde(default = "default_session_idle")]
    pub session_idle: Duration,
    #[serde(default = "default_session_absolute")]
    pub session_absolute: Duration,
    /// The key-encryption key's file (base64 of 32 bytes; relative to the working directory,
    /// like the SQLite file), used when `PORTICO_KEY_ENCRYPTION_KEY` is not set. It seals the
    /// signing keys in the store and keys activation-code hashes; the gateway refuses to start
    /// without one of the two.
    pub key_file: Option<PathBuf>,
    /// Create `key_file` with a fresh random key (mode 0600) when it does not exist: the
    /// embedded demo's no-setup start. Off by default, so a mistyped path in a deployment
    /// is an error, not a new key.
    #[serde(default)]
    pub create_key_file: bool,
    /// How long a new signing key (`portico keys rotate`) is published in the JWKS before
    /// `portico keys rotate --activate` may start signing with it (apps cache JWKS).
    #[serde(default = "default_key_publish_delay")]
    pub key_publish_delay: Duration,
    /// How often expired sessions, authorization codes, client-assertion ids and old
    /// enrollment attempts are deleted from the store.
    #[serde(default = "default_sweep_every")]
    pub sweep_every: Duration,
    /// Password and client-secret hashing (argon2) runs on at most this many threads at
    /// once (0: one per CPU core) …
    #[serde(default)]
    pub hash_workers: usize,
    /// … with at most this many more waiting; beyond that the request answers 429.
    #[serde(default = "default_hash_queue")]
    pub hash_queue: usize,
    /// Request rates allowed at the sign-in, registration, enrollment, token and
    /// authorization endpoints (`[auth.rate_limits]`).
    #[serde(default)]
    pub rate_limits: RateLimitConfig,
    /// Apps registered in config (synchronised into the store at start-up).
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    /// The hospital's OpenID Connect provider for patient sign-in, if any.
    pub oidc: Option<OidcConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            access_token_ttl: default_access_ttl(),
            backend_token_ttl: default_backend_ttl(),
            refresh_token_ttl: default_refresh_ttl(),
            code_ttl: default_code_ttl(),
            lockout_attempts: default_lockout_attempts(),
            lockout_duration: default_lockout(),
            password_min_length: default_password_min(),
            enroll_by_demographics: true,
            enroll_record_attempts: default_enroll_record_attempts(),
            enroll_global_attempts: default_enroll_global_attempts(),
            enroll_throttle_window: default_enroll_window(),
            activation_code_days: default_activation_days(),
            session_idle: default_session_idle(),
            session_absolute: default_session_absolute(),
            key_file: None,
            create_key_file: false,
            key_publish_delay: default_key_publish_delay(),
            sweep_every: default_sweep_every(),
            hash_workers: 0,
            hash_queue: default_hash_queue(),
            rate_limits: RateLimitConfig::default(),
            clients: Vec::new(),
            oidc: None,
        }
    }
}

fn default_access_ttl() -> Duration {
    Duration::from_secs(3600)
}
fn default_backend_ttl() -> Duration {
    Duration::from_secs(300)
}
fn default_refresh_ttl() -> Duration {
    Duration::from_secs(90 * 24 * 3600)
}
fn default_code_ttl() -> Duration {
    Duration::from_secs(60)
}
fn default_lockout_attempts() -> u32 {
    5
}
fn default_lockout() -> Duration {
    Duration::from_secs(15 * 60)
}
fn default_password_min() -> usize {
    12
}
fn default_true() -> bool {
    true
}
fn default_enroll_record_attempts() -> u32 {
    5
}
fn default_enroll_global_attempts() -> u32 {
    200
}
fn default_enroll_window() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_activation_days() -> u32 {
    30
}
fn default_key_publish_delay() -> Duration {
    Duration::from_secs(3600)
}
fn default_session_idle() -> Duration {
    Duration::from_secs(15 * 60)
}
fn default_session_absolute() -> Duration {
    Duration::from_secs(8 * 3600)
}

fn default_sweep_every() -> Duration {
    Duration::from_secs(5 * 60)
}
fn default_hash_queue() -> usize {
    64
}

/// `[auth.rate_limits]`: token buckets (a steady rate per minute and a burst) kept for each
/// of `/login`, `/register`, `/enroll`, `/token` and `/authorize` separately — per client IP
/// address, per account (the user name signing in, the signed-in account enrolling) and per
/// app (`client_id` at `/token` and `/authorize`). Over the limit the answer is 429 with
/// `Retry-After`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    #[serde(default = "default_ip_per_minute")]
    pub per_ip_per_minute: u32,
    #[serde(default = "default_ip_burst")]
    pub per_ip_burst: u32,
    #[serde(default = "default_account_per_minute")]
    pub per_account_per_minute: u32,
    #[serde(default = "default_account_burst")]
    pub per_account_burst: u32,
    /// An app's own limit is shared by all its users: keep it high.
    #[serde(default = "default_client_per_minute")]
    pub per_client_per_minute: u32,
    #[serde(default = "default_client_burst")]
    pub per_client_burst: u32,
    /// Reverse proxies (exact IP addresses) whose `X-Forwarded-For` is believed: from one of
    /// them, the client is the right-most address in that header that is not itself a
    /// trusted proxy. From anyone else the header is ignored and the client is the socket's peer.
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            per_ip_per_minute: default_ip_per_minute(),
            per_ip_burst: default_ip_burst(),
            per_account_per_minute: default_account_per_minute(),
            per_account_burst: default_account_burst(),
            per_client_per_minute: default_client_per_minute(),
            per_client_burst: default_client_burst(),
            trusted_proxies: Vec::new(),
        }
    }
}

fn default_ip_per_minute() -> u32 {
    60
}
fn default_ip_burst() -> u32 {
    30
}
fn default_account_per_minute() -> u32 {
    30
}
fn default_account_burst() -> u32 {
    20
}
fn default_client_per_minute() -> u32 {
    1200
}
fn default_client_burst() -> u32 {
    300
}

/// An app registered in config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub client_id: String,
    pub name: String,
    /// `public`, `confidential-symmetric`, `confidential-asymmetric` or `backend`.
    pub kind: String,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Scopes the app may ask for at most (space-separated).
    pub allowed_scopes: String,
    /// confidential-symmetric: the client secret.
    pub secret: Option<Secret>,
    /// confidential-asymmetric and backend: a JWKS file (relative to the config) or a jwks_uri.
    pub jwks_file: Option<PathBuf>,
    pub jwks_uri: Option<String>,
    /// backend (an HIE partner): its purpose of use (TREAT, ETREAT, HPAYMT …) …
    pub purpose: Option<String>,
    /// … and the Group ids it may export.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// The hospital's OpenID Connect provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// What the sign-in button says ("Sign in with Harbor Health ID").
    #[serde(default = "default_oidc_label")]
    pub label: String,
}

fn default_oidc_label() -> String {
    "Sign in with your hospital account".into()
}
