//! Registered apps (`oauth_clients`): loading `[[auth.clients]]` at start-up, registering,
//! listing and disabling them for the CLI and the admin API, and looking one up for
//! `/authorize` and client authentication. Secrets are stored only as argon2id hashes and
//! a generated secret is returned once, to the caller that registered it; this module must
//! never store, log or return a secret otherwise. Registration is validated whole before
//! anything is written. The origins of enabled clients' redirect URIs are the browser apps
//! the api layer's CORS lets in ([`Clients::is_app_origin`]).

use super::backend::{check_partner, PartnerProfile};
use super::client_keys::{parse_jwks, KeyCache};
use super::crypto;
use super::error::ClientError;
use crate::config::ClientConfig;
use crate::store::Store;
use chrono::Utc;
use serde::Serialize;
use sqlx::Row;
use std::net::IpAddr;
use std::path::Path;

/// Why a registration's kind, redirect URI or scopes are refused (the caller names the
/// key or field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    #[error("`{0}` is not a client kind (public, confidential-symmetric, confidential-asymmetric, backend)")]
    UnknownKind(String),
    #[error("`{uri}` is not an absolute URL: {problem}")]
    NotAbsolute { uri: String, problem: url::ParseError },
    #[error("`{0}` must not carry user information")]
    UserInfo(String),
    #[error("`{0}` must be https (http only for a loopback host)")]
    HttpNotLoopback(String),
    #[error("`{0}` must be an https URL (or http on a loopback host)")]
    NotHttps(String),
    #[error("`{0}` must not have a fragment")]
    Fragment(String),
    #[error("`{0}` has characters a scope may not contain")]
    ScopeCharacters(String),
    #[error("at least one scope is required")]
    NoScope,
}

/// The kinds of SMART client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientKind {
    /// Redirect URIs only; authenticates with its `client_id` alone (PKCE protects the code).
    Public,
    /// A client secret (HTTP Basic or `client_secret_post`).
    ConfidentialSymmetric,
    /// `private_key_jwt` with RS384 or ES384, keys from a JWKS or a `jwks_uri`.
    ConfidentialAsymmetric,
    /// SMART Backend Services (an HIE partner): `client_credentials` only, authenticated by
    /// `private_key_jwt` like a confidential-asymmetric client, with a purpose of use and
    /// the Groups it may export; no redirect URIs, no patient in the loop.
    Backend,
}

impl ClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Public => "public",
            ClientKind::ConfidentialSymmetric => "confidential-symmetric",
            ClientKind::ConfidentialAsymmetric => "confidential-asymmetric",
            ClientKind::Backend => "backend",
        }
    }

    pub fn parse(s: &str) -> Result<ClientKind, RegistrationError> {
        match s {
            "public" => Ok(ClientKind::Public),
            "confidential-symmetric" => Ok(ClientKind::ConfidentialSymmetric),
            "confidential-asymmetric" => Ok(ClientKind::ConfidentialAsymmetric),
            "backend" => Ok(ClientKind::Backend),
            other => Err(RegistrationError::UnknownKind(other.to_string())),
        }
    }

    pub fn is_confidential(self) -> bool {
        self != ClientKind::Public
    }

    /// Authenticates with a signed client assertion (`private_key_jwt`), keys from a JWKS.
    pub fn uses_assertions(self) -> bool {
        matches!(self, ClientKind::ConfidentialAsymmetric | ClientKind::Backend)
    }
}

/// An enabled, registered app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    pub kind: ClientKind,
    pub redirect_uris: Vec<String>,
    pub allowed_scopes: Vec<String>,
    /// A backend client's purpose of use and Groups (None for every other kind).
    pub partner: Option<PartnerProfile>,
}

impl Client {
    /// Exact, character-for-character redirect URI matching (no prefix, no normalisation).
    pub fn accepts_redirect(&self, redirect_uri: &str) -> bool {
        self.redirect_uris.iter().any(|u| u == redirect_uri)
    }
}

/// Where an asymmetric client's public keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientKeys {
    /// A JWKS document (JSON text) kept in the store.
    Jwks(String),
    /// A URL the JWKS is fetched from (and cached).
    JwksUri(String),
}

/// A registered app as the CLI and admin API list it (no secret, ever).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientSummary {
    #[serde(flatten)]
    pub client: Client,
    pub jwks_uri: Option<String>,
    pub has_inline_jwks: bool,
    pub created_at: String,
    pub disabled_at: Option<String>,
    /// `staff` or `config` (taken out of the config file).
    pub disabled_by: Option<String>,
    /// Defined in the config file (`[[auth.clients]]`) rather than registered by staff.
    pub from_config: bool,
}

/// What client authentication needs to know of a client (enabled or not).
#[derive(Debug, Clone)]
pub(super) struct ClientRecord {
    pub client: Client,
    pub secret_hash: Option<String>,
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    pub created_at: String,
    pub disabled_at: Option<String>,
    pub disabled_by: Option<String>,
    pub from_config: bool,
}

/// The registered apps.
#[derive(Clone)]
pub struct Clients {
    pub(super) store: Store,
    pub(super) keys: KeyCache,
    /// When spent assertion ids were last cleaned out (unix seconds).
    pub(super) last_cleanup: std::sync::Arc<std::sync::atomic::AtomicI64>,
    /// Where client secrets are checked (bounded; a flood is answered 429).
    pub(super) hasher: crate::auth::hashing::Hasher,
    /// The origins of enabled clients' redirect URIs, read at most every
    /// [`ORIGINS_TTL`] (forgotten at once when this process registers or disables one).
    origins: moka::future::Cache<(), std::sync::Arc<std::collections::HashSet<String>>>,
}

/// How long another replica's registration may take to open CORS to its origin here.
const ORIGINS_TTL: std::time::Duration = std::time::Duration::from_secs(30);

const COLUMNS: &str = "client_id, name, kind, redirect_uris, allowed_scopes, secret_hash, jwks, jwks_uri, created_at, \
     disabled_at, from_config, disabled_by, purpose_of_use, export_groups";

impl Clients {
    pub fn new(store: Store) -> Clients {
        Clients {
            store,
            keys: KeyCache::new(),
            last_cleanup: Default::default(),
            hasher: Default::default(),
            origins: moka::future::Cache::builder().max_capacity(1).time_to_live(ORIGINS_TTL).build(),
        }
    }

    /// The same registry checking client secrets on `hasher` (shared with sign-in).
    pub fn with_hasher(mut self, hasher: crate::auth::hashing::Hasher) -> Clients {
        self.hasher = hasher;
        self
    }

    /// The enabled client `client_id` (None when unknown or disabled).
    pub async fn client(&self, client_id: &str) -> Result<Option<Client>, ClientError> {
        Ok(self.record(client_id).await?.filter(|r| r.disabled_at.is_none()).map(|r| r.client))
    }

    /// The registered name of a client, disabled or not (the accounting of disclosures
    /// names past recipients too).
    pub async fn name_of(&self, client_id: &str) -> Result<Option<String>, ClientError> {
        Ok(self.record(client_id).await?.map(|r| r.client.name))
    }

    pub(super) async fn record(&self, client_id: &str) -> Result<Option<ClientRecord>, ClientError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM oauth_clients WHERE client_id = $1"))
            .bind(client_id)
            .fetch_optional(&self.store.pool)
            .await?;
        row.map(|r| record_of(&r)).transpose()
    }

    /// Registers an app; returns its new `client_id` and, for a confidential-symmetric
    /// client, the generated secret — shown this once, stored only as a hash.
    pub async fn register(
        &self,
        name: &str,
        kind: ClientKind,
        redirect_uris: &[String],
        allowed_scopes: &str,
        keys: Option<ClientKeys>,
    ) -> Result<(String, Option<String>), ClientError> {
        self.register_client(name, kind, redirect_uris, allowed_scopes, keys, None).await
    }

    /// [`Clients::register`] with a backend client's partner profile (purpose of use and
    /// Groups; required for `backend`, refused for every other kind).
    pub async fn register_client(
        &self,
        name: &str,
        kind: ClientKind,
        redirect_uris: &[String],
        allowed_scopes: &str,
        keys: Option<ClientKeys>,
        partner: Option<PartnerProfile>,
    ) -> Result<(String, Option<String>), ClientError> {
        let spec = Spec::validate(name, kind, redirect_uris, allowed_scopes, keys, partner, "")?;
        let client_id = uuid::Uuid::new_v4().to_string();
        let secret = (kind == ClientKind::ConfidentialSymmetric).then(|| crypto::random_token(32));
        let secret_hash = match &secret {
            Some(s) => Some(hash_blocking(s.clone()).await?),
            None => None,
        };
        sqlx::query(
            "INSERT INTO oauth_clients (client_id, name, kind, secret_hash, jwks, jwks_uri, redirect_uris, allowed_scopes, created_at,
               purpose_of_use, export_groups)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&client_id)
        .bind(&spec.name)
        .bind(kind.as_str())
        .bind(secret_hash)
        .bind(spec.jwks)
        .bind(spec.jwks_uri)
        .bind(crate::json::text(&spec.redirect_uris))
        .bind(spec.scopes.join(" "))
        .bind(crypto::ts(Utc::now()))
        .bind(spec.partner.as_ref().map(|p| p.purpose.clone()))
        .bind(spec.partner.as_ref().map(|p| crate::json::text(&p.groups)))
        .execute(&self.store.pool)
        .await?;
        self.origins.invalidate_all();
        tracing::info!(%client_id, kind = kind.as_str(), "oauth client registered");
        Ok((client_id, secret))
    }

    /// Every registered app, enabled or not, oldest first.
    pub async fn list(&self) -> Result<Vec<ClientSummary>, ClientError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM oauth_clients ORDER BY created_at, client_id"))
            .fetch_all(&self.store.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let rec = record_of(r)?;
                Ok(ClientSummary {
                    has_inline_jwks: rec.jwks.is_some(),
                    jwks_uri: rec.jwks_uri,
                    created_at: rec.created_at,
                    disabled_at: rec.disabled_at,
                    disabled_by: rec.disabled_by,
                    from_config: rec.from_config,
                    client: rec.client,
                })
            })
            .collect()
    }

    /// Disables an app (staff) and revokes every token issued to it; its grants stay on
    /// record. Disabling a disabled app changes nothing; a restart does not enable it again.
    pub async fn disable(&self, client_id: &str) -> Result<(), ClientError> {
        let now = crypto::ts(Utc::now());
        let mut tx = self.store.begin_write().await?;
        let exists = sqlx::query("SELECT client_id FROM oauth_clients WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            return Err(ClientError::Unknown(client_id.to_string()));
        }
        disable_in(&mut tx, client_id, "staff", &now).await?;
        tx.commit().await?;
        self.keys.forget(client_id).await;
        self.origins.invalidate_all();
        tracing::info!(%client_id, "oauth client disabled");
        Ok(())
    }

    /// Loads `[[auth.clients]]` into the store (insert or update; a client disabled by staff
    /// stays disabled). A client that came from the config and is no longer in it is
    /// disabled (its tokens revoked); one put back is enabled again. Every entry is
    /// validated — secrets revealed, JWKS files read — before anything is written; errors
    /// name `auth.clients[i].key`.
    pub async fn sync_config(&self, clients: &[ClientConfig], base_dir: &Path) -> Result<(), ClientError> {
        self.sync_checked(&check_config_clients(clients, base_dir)?).await
    }

    /// [`Clients::sync_config`] for entries already checked by [`check_config_clients`]
    /// (the settings did it at start-up).
    pub async fn sync_checked(&self, clients: &[ConfiguredClient]) -> Result<(), ClientError> {
        // Hash secrets that changed (argon2 is slow: keep a hash that still matches).
        let mut rows = Vec::new();
        for ConfiguredClient { client_id, kind, spec, secret } in clients.iter().cloned() {
            let existing = self.record(&client_id).await?;
            let secret_hash = match secret {
                None => None,
                Some(s) => match existing.as_ref().and_then(|r| r.secret_hash.clone()) {
                    Some(h) if verify_blocking(s.clone(), h.clone()).await => Some(h),
                    _ => Some(hash_blocking(s).await?),
                },
            };
            rows.push((client_id, kind, spec, secret_hash));
        }
        let now = crypto::ts(Utc::now());
        let mut tx = self.store.begin_write().await?;
        for (client_id, kind, spec, secret_hash) in &rows {
            sqlx::query(
                "INSERT INTO oauth_clients (client_id, name, kind, secret_hash, jwks, jwks_uri, redirect_uris, allowed_scopes, created_at, from_config,
                   purpose_of_use, export_groups)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $11)
                 ON CONFLICT (client_id) DO UPDATE SET name = excluded.name, kind = excluded.kind,
                   secret_hash = excluded.secret_hash, jwks = excluded.jwks, jwks_uri = excluded.jwks_uri,
                   redirect_uris = excluded.redirect_uris, allowed_scopes = excluded.allowed_scopes, from_config = 1,
                   purpose_of_use = excluded.purpose_of_use, export_groups = excluded.export_groups,
                   disabled_at = CASE WHEN oauth_clients.disabled_by = 'config' THEN NULL ELSE oauth_clients.disabled_at END,
                   disabled_by = CASE WHEN oauth_clients.disabled_by = 'config' THEN NULL ELSE oauth_clients.disabled_by END",
            )
            .bind(client_id)
            .bind(&spec.name)
            .bind(kind.as_str())
            .bind(secret_hash)
            .bind(&spec.jwks)
            .bind(&spec.jwks_uri)
            .bind(crate::json::text(&spec.redirect_uris))
            .bind(spec.scopes.join(" "))
            .bind(&now)
            .bind(spec.partner.as_ref().map(|p| p.purpose.clone()))
            .bind(spec.partner.as_ref().map(|p| crate::json::text(&p.groups)))
            .execute(&mut *tx)
            .await?;
        }
        let configured: Vec<String> =
            sqlx::query("SELECT client_id FROM oauth_clients WHERE from_config = 1 AND disabled_at IS NULL")
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
        for gone in configured.iter().filter(|id| !rows.iter().any(|(c, ..)| c == *id)) {
            disable_in(&mut tx, gone, "config", &now).await?;
            tracing::info!(client_id = %gone, "oauth client no longer in the config: disabled");
        }
        // A client's kind or partner profile may have changed: cached token checks end.
        crate::auth::revocation::bump(&mut tx).await?;
        tx.commit().await?;
        for (client_id, ..) in &rows {
            self.keys.forget(client_id).await;
        }
        self.origins.invalidate_all();
        Ok(())
    }

    /// Whether `origin` (a browser's `Origin` header, `scheme://host[:port]`) is the origin
    /// of a redirect URI of an enabled client: a browser app CORS may let in. A store that
    /// cannot be read lets nobody in.
    pub async fn is_app_origin(&self, origin: &str) -> bool {
        let store = self.store.clone();
        let loaded =
            self.origins.try_get_with((), async move { app_origins(&store).await.map(std::sync::Arc::new) }).await;
        match loaded {
            Ok(origins) => origins.contains(origin),
            Err(e) => {
                tracing::error!(error = %e, "client origins could not be read; CORS lets no origin in");
                false
            }
        }
    }
}

/// The origins (RFC 6454 serialisation, as browsers send them) of every enabled client's
/// redirect URIs.
async fn app_origins(store: &Store) -> Result<std::collections::HashSet<String>, crate::store::StoreError> {
    let rows =
        sqlx::query("SELECT redirect_uris FROM oauth_clients WHERE disabled_at IS NULL").fetch_all(&store.pool).await?;
    let mut origins = std::collections::HashSet::new();
    for r in &rows {
        let uris: Vec<String> = serde_json::from_str(&r.get::<String, _>(0)).unwrap_or_default();
        for uri in uris {
            let origin = url::Url::parse(&uri).ok().map(|u| u.origin()).filter(url::Origin::is_tuple);
            if let Some(o) = origin {
                origins.insert(o.ascii_serialization());
            }
        }
    }
    Ok(origins)
}

/// A `[[auth.clients]]` entry, checked: its kind, redirect URIs, scopes and partner profile
/// valid, its secret read, its JWKS file read and parsed. Debug never shows the secret.
#[derive(Clone)]
pub struct ConfiguredClient {
    client_id: String,
    kind: ClientKind,
    spec: Spec,
    secret: Option<String>,
}

impl std::fmt::Debug for ConfiguredClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConfiguredClient(client_id={}, kind={})", self.client_id, self.kind.as_str())
    }
}

/// Checks every `[[auth.clients]]` entry — secrets revealed, JWKS files read — without a
/// database; errors name `auth.clients[i].key`.
pub fn check_config_clients(clients: &[ClientConfig], base_dir: &Path) -> Result<Vec<ConfiguredClient>, ClientError> {
    let mut specs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, c) in clients.iter().enumerate() {
        let key = |k: &str| format!("auth.clients[{i}].{k}");
        if c.client_id.is_empty()
            || c.client_id.len() > 128
            || !c.client_id.chars().all(|ch| ch.is_ascii_graphic() && ch != ':')
        {
            return Err(ClientError::invalid(key("client_id"), "must be 1-128 visible ASCII characters without `:`"));
        }
        if !seen.insert(c.client_id.as_str()) {
            return Err(ClientError::invalid(key("client_id"), format!("`{}` is used twice", c.client_id)));
        }
        let kind = ClientKind::parse(&c.kind).map_err(|p| ClientError::registration(key("kind"), p))?;
        let secret = match (&c.secret, kind) {
            (Some(s), ClientKind::ConfidentialSymmetric) => {
                let value =
                    s.reveal(base_dir).map_err(|problem| ClientError::Secret { key: key("secret"), problem })?;
                if value.len() < 16 {
                    return Err(ClientError::invalid(key("secret"), "must be at least 16 characters"));
                }
                Some(value)
            }
            (None, ClientKind::ConfidentialSymmetric) => {
                return Err(ClientError::invalid(key("secret"), "is required for a confidential-symmetric client"))
            }
            (Some(_), _) => {
                return Err(ClientError::invalid(key("secret"), "is only for confidential-symmetric clients"))
            }
            (None, _) => None,
        };
        let keys = match (&c.jwks_file, &c.jwks_uri) {
            (Some(_), Some(_)) => {
                return Err(ClientError::invalid(key("jwks_file"), "give jwks_file or jwks_uri, not both"))
            }
            (Some(f), None) => {
                let path = base_dir.join(f);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    ClientError::invalid(key("jwks_file"), format!("cannot read {}: {e}", path.display()))
                })?;
                Some(ClientKeys::Jwks(text))
            }
            (None, Some(u)) => Some(ClientKeys::JwksUri(u.clone())),
            (None, None) => None,
        };
        let prefix = format!("auth.clients[{i}].");
        let partner = PartnerProfile::given(c.purpose.as_deref(), &c.groups);
        let spec = Spec::validate(&c.name, kind, &c.redirect_uris, &c.allowed_scopes, keys, partner, &prefix)?;
        specs.push(ConfiguredClient { client_id: c.client_id.clone(), kind, spec, secret });
    }
    Ok(specs)
}

/// Disables a client and revokes its tokens, inside `tx`.
async fn disable_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    client_id: &str,
    by: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE oauth_clients SET disabled_at = $1, disabled_by = $2 WHERE client_id = $3 AND disabled_at IS NULL",
    )
    .bind(now)
    .bind(by)
    .bind(client_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE client_id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(client_id)
        .execute(&mut **tx)
        .await?;
    crate::auth::revocation::bump(tx).await?;
    Ok(())
}

fn record_of(r: &sqlx::any::AnyRow) -> Result<ClientRecord, ClientError> {
    let client_id: String = r.get(0);
    let kind: String = r.get(2);
    let kind =
        ClientKind::parse(&kind).map_err(|p| ClientError::registration(format!("oauth_clients {client_id}"), p))?;
    let redirect_uris: String = r.get(3);
    let redirect_uris: Vec<String> = serde_json::from_str(&redirect_uris).map_err(|e| {
        ClientError::invalid(format!("oauth_clients {client_id}"), format!("redirect_uris is not a JSON array: {e}"))
    })?;
    let scopes: String = r.get(4);
    let purpose: Option<String> = r.get(12);
    let groups: Option<String> = r.get(13);
    let partner = match purpose {
        None => None,
        Some(purpose) => {
            let groups: Vec<String> = serde_json::from_str(groups.as_deref().unwrap_or("[]")).map_err(|e| {
                ClientError::invalid(
                    format!("oauth_clients {client_id}"),
                    format!("export_groups is not a JSON array: {e}"),
                )
            })?;
            Some(PartnerProfile { purpose, groups })
        }
    };
    Ok(ClientRecord {
        client: Client {
            client_id,
            name: r.get(1),
            kind,
            redirect_uris,
            allowed_scopes: scopes.split_whitespace().map(str::to_string).collect(),
            partner,
        },
        secret_hash: r.get(5),
        jwks: r.get(6),
        jwks_uri: r.get(7),
        created_at: r.get(8),
        disabled_at: r.get(9),
        from_config: r.get::<i32, _>(10) != 0,
        disabled_by: r.get(11),
    })
}

async fn hash_blocking(secret: String) -> Result<String, ClientError> {
    Ok(tokio::task::spawn_blocking(move || crypto::hash_secret(&secret)).await??)
}

async fn verify_blocking(secret: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || crypto::verify_secret(&secret, &hash)).await.unwrap_or(false)
}

/// A validated registration.
#[derive(Clone)]
struct Spec {
    name: String,
    redirect_uris: Vec<String>,
    scopes: Vec<String>,
    jwks: Option<String>,
    jwks_uri: Option<String>,
    partner: Option<PartnerProfile>,
}

impl Spec {
    fn validate(
        name: &str,
        kind: ClientKind,
        redirect_uris: &[String],
        allowed_scopes: &str,
        keys: Option<ClientKeys>,
        partner: Option<PartnerProfile>,
        prefix: &str,
    ) -> Result<Spec, ClientError> {
        let key = |k: &str| format!("{prefix}{k}");
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(ClientError::invalid(key("name"), "must be 1-200 characters without control characters"));
        }
        if kind == ClientKind::Backend && !redirect_uris.is_empty() {
            return Err(ClientError::invalid(key("redirect_uris"), "a backend client has no redirect URIs"));
        }
        if redirect_uris.is_empty() && !kind.uses_assertions() {
            return Err(ClientError::invalid(key("redirect_uris"), "at least one redirect URI is required"));
        }
        for (j, uri) in redirect_uris.iter().enumerate() {
            check_redirect_uri(uri).map_err(|p| ClientError::registration(key(&format!("redirect_uris[{j}]")), p))?;
        }
        let scopes = parse_scopes(allowed_scopes).map_err(|p| ClientError::registration(key("allowed_scopes"), p))?;
        let partner = check_partner(kind, partner, &scopes, prefix)?;
        let (jwks, jwks_uri) = match (kind.uses_assertions(), keys) {
            (true, None) => {
                return Err(ClientError::invalid(
                    key("jwks"),
                    format!("a {} client needs a JWKS or a jwks_uri", kind.as_str()),
                ))
            }
            (true, Some(ClientKeys::Jwks(text))) => {
                let set = parse_jwks(&text).map_err(|problem| ClientError::Jwks { key: key("jwks"), problem })?;
                (Some(crate::json::text(&set)), None)
            }
            (true, Some(ClientKeys::JwksUri(uri))) => {
                check_https_or_loopback(&uri).map_err(|p| ClientError::registration(key("jwks_uri"), p))?;
                (None, Some(uri))
            }
            (false, Some(_)) => {
                return Err(ClientError::invalid(
                    key("jwks"),
                    "keys are only for confidential-asymmetric and backend clients",
                ))
            }
            (false, None) => (None, None),
        };
        Ok(Spec { name: name.to_string(), redirect_uris: redirect_uris.to_vec(), scopes, jwks, jwks_uri, partner })
    }
}

/// A redirect URI must be absolute, https (http only on a loopback host) and without a
/// fragment.
pub fn check_redirect_uri(uri: &str) -> Result<(), RegistrationError> {
    check_https_or_loopback(uri)?;
    if uri.contains('#') {
        return Err(RegistrationError::Fragment(uri.to_string()));
    }
    Ok(())
}

fn check_https_or_loopback(uri: &str) -> Result<(), RegistrationError> {
    let url =
        url::Url::parse(uri).map_err(|problem| RegistrationError::NotAbsolute { uri: uri.to_string(), problem })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(RegistrationError::UserInfo(uri.to_string()));
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        "http" => Err(RegistrationError::HttpNotLoopback(uri.to_string())),
        _ => Err(RegistrationError::NotHttps(uri.to_string())),
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Space-separated scope tokens (RFC 6749 §3.3 characters), at least one, no duplicates.
pub fn parse_scopes(s: &str) -> Result<Vec<String>, RegistrationError> {
    let mut out: Vec<String> = Vec::new();
    for scope in s.split(' ').filter(|t| !t.is_empty()) {
        if !scope
            .chars()
            .all(|c| c == '\u{21}' || ('\u{23}'..='\u{5b}').contains(&c) || ('\u{5d}'..='\u{7e}').contains(&c))
        {
            return Err(RegistrationError::ScopeCharacters(scope.to_string()));
        }
        if !out.iter().any(|o| o == scope) {
            out.push(scope.to_string());
        }
    }
    if out.is_empty() {
        return Err(RegistrationError::NoScope);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_https_or_loopback_http_without_fragments() {
        assert!(check_redirect_uri("https://app.example/cb").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:9000/cb").is_ok());
        assert!(check_redirect_uri("http://localhost/cb").is_ok());
        assert!(check_redirect_uri("http://[::1]:8/cb").is_ok());
        assert!(check_redirect_uri("http://app.example/cb").is_err());
        assert!(check_redirect_uri("https://app.example/cb#x").is_err());
        assert!(check_redirect_uri("/cb").is_err());
        assert!(check_redirect_uri("https://u:p@app.example/cb").is_err());
        assert!(check_redirect_uri("javascript:alert(1)").is_err());
    }

    #[test]
    fn scopes_are_tokens() {
        assert_eq!(parse_scopes("openid  fhirUser openid").unwrap(), vec!["openid", "fhirUser"]);
        assert!(parse_scopes("  ").is_err());
        assert!(parse_scopes("a\"b").is_err());
        assert!(parse_scopes("patient/Observation.rs?category=http://loinc.org|laboratory").is_ok());
    }

    #[test]
    fn a_client_accepts_only_its_exact_redirect_uris() {
        let c = Client {
            client_id: "c".into(),
            name: "n".into(),
            kind: ClientKind::Public,
            redirect_uris: vec!["https://app.example/cb".into()],
            allowed_scopes: vec![],
            partner: None,
        };
        assert!(c.accepts_redirect("https://app.example/cb"));
        assert!(!c.accepts_redirect("https://app.example/cb/"));
        assert!(!c.accepts_redirect("https://app.example/cb?x=1"));
        assert!(!c.accepts_redirect("HTTPS://app.example/cb"));
    }
}
