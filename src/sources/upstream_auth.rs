//! How the gateway authenticates to a source: nothing, a static bearer token, HTTP Basic,
//! OAuth2 client credentials with a client secret (through the `oauth2` crate), or SMART
//! Backend Services — client credentials with a signed `private_key_jwt` assertion, a new
//! one (fresh `jti`) per token request ([`assertion`]). Without a configured `token_url`,
//! the token endpoint is discovered from the source's `.well-known/smart-configuration`
//! (an `https` URL, or one on the source's own origin). Tokens are cached and fetched again
//! shortly before they expire or when the source answers 401. Also the TLS the source is
//! reached with (its CA, the gateway's client certificate: [`tls`]). Secrets and keys are
//! read once at start-up and never logged; only public keys leave ([`source_jwks`]).

pub mod assertion;
pub mod tls;

use crate::config::{SecretError, SourceConfig, UpstreamAuth};
use assertion::AssertionKey;
use oauth2::basic::BasicClient;
use oauth2::{AuthUrl, ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Refresh a cached token this long before it expires (or a fifth of its life if shorter).
const REFRESH_MARGIN: Duration = Duration::from_secs(30);
/// Token lifetime assumed when the token endpoint does not say.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
/// Largest token response read.
const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Why the gateway could not authenticate to a source (never carries a secret).
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("{0}")]
    HttpClient(reqwest::Error),
    #[error("{0}")]
    TokenUrl(oauth2::url::ParseError),
    #[error("token endpoint refused: {0}")]
    Refused(oauth2::basic::BasicErrorResponseType),
    /// The token endpoint refused a Backend Services request (its RFC 6749 error code).
    #[error("token endpoint refused the client assertion: HTTP {status} {error}")]
    AssertionRefused { status: u16, error: String },
    #[error("token endpoint unreachable: {0}")]
    Unreachable(String),
    #[error("token endpoint answered something that is not a token response")]
    NotATokenResponse,
    /// The Backend Services private key is unusable, or signing failed.
    #[error("private key: {0}")]
    Key(String),
    /// The token endpoint could not be discovered from the source's SMART configuration.
    #[error("token endpoint discovery: {0}")]
    Discovery(String),
    /// The CA file or the client certificate and key are unusable.
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    Other(String),
}

pub enum SourceCredentials {
    None,
    Bearer(String),
    Basic {
        username: String,
        password: String,
    },
    /// Client credentials, by secret or by assertion (SMART Backend Services).
    ClientCredentials(Box<TokenClient>),
}

/// How the gateway proves who it is at a token endpoint.
enum ClientAuth {
    Secret(String),
    Assertion(AssertionKey),
}

pub struct TokenClient {
    client_id: String,
    auth: ClientAuth,
    /// Configured, or discovered once from `discovery`.
    token_url: tokio::sync::OnceCell<String>,
    /// The source's FHIR base (with a trailing slash), for discovery.
    discovery: Option<url::Url>,
    scope: Option<String>,
    http: reqwest::Client,
    cached: Mutex<Option<(String, Instant)>>,
}

/// The Backend Services key of a source's config, if it has one. A `simulated` source
/// without a `token_url` gets `token_url` (its simulator's).
pub fn assertion_key(config: &SourceConfig, base_dir: &Path) -> Result<Option<AssertionKey>, CredentialError> {
    match &config.auth {
        UpstreamAuth::BackendServices { private_key, kid, .. } => {
            Ok(Some(AssertionKey::from_pem(&private_key.reveal(base_dir)?, kid)?))
        }
        _ => Ok(None),
    }
}

/// The JWKS of every Backend Services key the sources use: public halves only, one entry
/// per `kid`, served at `/jwks/sources.json` for sources to register (and printed by
/// `portico source-jwks`).
pub fn source_jwks(sources: &[SourceConfig], base_dir: &Path) -> Result<Value, (String, CredentialError)> {
    let mut keys = Vec::new();
    for s in sources {
        if let Some(k) = assertion_key(s, base_dir).map_err(|e| (s.name.clone(), e))? {
            keys.push(k);
        }
    }
    assertion::jwks(&keys).map_err(|e| ("(sources)".to_string(), e))
}

/// Checks what a source's config names the way the gateway will use it — its Backend
/// Services key parses, its CA and client certificate load — for `check-config` and start-up.
/// `Err` names the key at fault under the source (`auth.private_key`, `tls`).
pub fn check(config: &SourceConfig, base_dir: &Path) -> Result<(), (&'static str, CredentialError)> {
    assertion_key(config, base_dir).map_err(|e| ("auth.private_key", e))?;
    tls::client_builder(&config.tls, base_dir)
        .and_then(|b| b.build().map_err(CredentialError::HttpClient))
        .map_err(|e| ("tls", e))?;
    Ok(())
}

impl SourceCredentials {
    /// The credentials of a source's config; `http` (with the source's TLS) also reaches
    /// its token endpoint.
    pub fn from_config(
        config: &SourceConfig,
        base_dir: &Path,
        http: reqwest::ClientBuilder,
    ) -> Result<SourceCredentials, CredentialError> {
        let discovery = config.url.as_deref().and_then(|u| url::Url::parse(u).ok()).map(|mut u| {
            if !u.path().ends_with('/') {
                u.set_path(&format!("{}/", u.path()));
            }
            u
        });
        let token_client = |token_url: &Option<String>, client_id: &str, scope: &Option<String>, auth: ClientAuth| {
            let http = http
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(CredentialError::HttpClient)?;
            Ok::<_, CredentialError>(SourceCredentials::ClientCredentials(Box::new(TokenClient {
                client_id: client_id.to_string(),
                auth,
                token_url: tokio::sync::OnceCell::new_with(token_url.clone()),
                discovery,
                scope: scope.clone(),
                http,
                cached: Mutex::new(None),
            })))
        };
        Ok(match &config.auth {
            UpstreamAuth::None => SourceCredentials::None,
            UpstreamAuth::Bearer { token } => SourceCredentials::Bearer(token.reveal(base_dir)?),
            UpstreamAuth::Basic { username, password } => {
                SourceCredentials::Basic { username: username.clone(), password: password.reveal(base_dir)? }
            }
            UpstreamAuth::ClientCredentials { token_url, client_id, client_secret, scope } => {
                token_client(token_url, client_id, scope, ClientAuth::Secret(client_secret.reveal(base_dir)?))?
            }
            UpstreamAuth::BackendServices { token_url, client_id, scope, .. } => {
                let key = assertion_key(config, base_dir)?
                    .ok_or_else(|| CredentialError::Other("no Backend Services key".into()))?;
                token_client(token_url, client_id, scope, ClientAuth::Assertion(key))?
            }
        })
    }

    /// Adds authentication to a request, fetching a token first when needed.
    pub async fn apply(&self, req: reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder, CredentialError> {
        Ok(match self {
            SourceCredentials::None => req,
            SourceCredentials::Bearer(t) => req.bearer_auth(t),
            SourceCredentials::Basic { username, password } => req.basic_auth(username, Some(password)),
            SourceCredentials::ClientCredentials(cc) => req.bearer_auth(cc.token().await?),
        })
    }

    /// Forgets a cached token (the source said 401). True when a retry can help.
    pub async fn invalidate(&self) -> bool {
        match self {
            SourceCredentials::ClientCredentials(cc) => {
                *cc.cached.lock().await = None;
                true
            }
            _ => false,
        }
    }
}

impl TokenClient {
    async fn token(&self) -> Result<String, CredentialError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, refresh_at)) = cached.as_ref() {
            if Instant::now() < *refresh_at {
                return Ok(token.clone());
            }
        }
        let token_url = self.token_url.get_or_try_init(|| self.discover()).await?;
        let (token, lifetime) = match &self.auth {
            ClientAuth::Secret(secret) => self.by_secret(token_url, secret).await?,
            ClientAuth::Assertion(key) => self.by_assertion(token_url, key).await?,
        };
        let refresh_at = Instant::now() + lifetime - REFRESH_MARGIN.min(lifetime / 5);
        *cached = Some((token.clone(), refresh_at));
        Ok(token)
    }

    /// The token endpoint of the source's `.well-known/smart-configuration`: an `https`
    /// URL, or one on the source's own origin (never a plain-HTTP URL elsewhere, which
    /// would carry the gateway's credentials in the clear to another host).
    async fn discover(&self) -> Result<String, CredentialError> {
        let failed = |m: &str| CredentialError::Discovery(m.to_string());
        let base = self.discovery.as_ref().ok_or_else(|| failed("no token_url and no source URL"))?;
        let url = base.join(".well-known/smart-configuration").map_err(|_| failed("bad source URL"))?;
        let resp = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| CredentialError::Discovery(without_url(&e)))?;
        if !resp.status().is_success() {
            return Err(CredentialError::Discovery(format!("HTTP {}", resp.status().as_u16())));
        }
        let document: Value = resp.json().await.map_err(|_| failed("not a JSON document"))?;
        let endpoint = document
            .get("token_endpoint")
            .and_then(Value::as_str)
            .and_then(|t| url::Url::parse(t).ok())
            .ok_or_else(|| failed("no token_endpoint"))?;
        if endpoint.scheme() != "https" && endpoint.origin() != base.origin() {
            return Err(failed("the token_endpoint is neither https nor on the source's origin"));
        }
        Ok(endpoint.to_string())
    }

    async fn by_secret(&self, token_url: &str, secret: &str) -> Result<(String, Duration), CredentialError> {
        let client = BasicClient::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(ClientSecret::new(secret.to_string()))
            // The client-credentials grant never visits an authorization URL; oauth2 wants one.
            .set_auth_uri(AuthUrl::new(token_url.to_string()).map_err(CredentialError::TokenUrl)?)
            .set_token_uri(TokenUrl::new(token_url.to_string()).map_err(CredentialError::TokenUrl)?);
        let mut request = client.exchange_client_credentials();
        if let Some(scope) = &self.scope {
            for s in scope.split_whitespace() {
                request = request.add_scope(Scope::new(s.to_string()));
            }
        }
        let response = request.request_async(&self.http).await.map_err(describe_token_error)?;
        let lifetime = response.expires_in().unwrap_or(DEFAULT_LIFETIME);
        Ok((response.access_token().secret().clone(), lifetime))
    }

    /// SMART Backend Services: one fresh assertion per request, sent as
    /// `client_assertion` with the `client_credentials` grant.
    async fn by_assertion(&self, token_url: &str, key: &AssertionKey) -> Result<(String, Duration), CredentialError> {
        let assertion = key.sign(&self.client_id, token_url)?;
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion.as_str()),
        ];
        if let Some(scope) = &self.scope {
            form.push(("scope", scope.as_str()));
        }
        let mut resp = self
            .http
            .post(token_url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| CredentialError::Unreachable(without_url(&e)))?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| CredentialError::Unreachable(without_url(&e)))? {
            if body.len() + chunk.len() > MAX_TOKEN_RESPONSE_BYTES {
                return Err(CredentialError::NotATokenResponse);
            }
            body.extend_from_slice(&chunk);
        }
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        if !status.is_success() {
            let error = json
                .as_ref()
                .and_then(|j| j.get("error").and_then(Value::as_str))
                .filter(|e| e.len() <= 64 && e.chars().all(|c| c.is_ascii_graphic()))
                .unwrap_or("(no error code)")
                .to_string();
            return Err(CredentialError::AssertionRefused { status: status.as_u16(), error });
        }
        let json = json.ok_or(CredentialError::NotATokenResponse)?;
        let token = json
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or(CredentialError::NotATokenResponse)?;
        let bearer = json.get("token_type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("bearer"));
        if !bearer {
            return Err(CredentialError::NotATokenResponse);
        }
        let lifetime = json.get("expires_in").and_then(Value::as_u64).map_or(DEFAULT_LIFETIME, Duration::from_secs);
        Ok((token.to_string(), lifetime))
    }
}

/// A transport error without the URL (it may carry a query the source gave).
fn without_url(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection refused or unreachable".into()
    } else {
        "transport error".into()
    }
}

fn describe_token_error<RE: std::error::Error + 'static>(
    e: oauth2::RequestTokenError<RE, oauth2::basic::BasicErrorResponse>,
) -> CredentialError {
    match e {
        oauth2::RequestTokenError::ServerResponse(r) => CredentialError::Refused(r.error().clone()),
        oauth2::RequestTokenError::Request(r) => CredentialError::Unreachable(r.to_string()),
        oauth2::RequestTokenError::Parse(_, _) => CredentialError::NotATokenResponse,
        oauth2::RequestTokenError::Other(m) => CredentialError::Other(m),
    }
}
