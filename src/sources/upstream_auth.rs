//! How the gateway authenticates to a source: nothing, a static bearer token, HTTP Basic,
//! or OAuth2 client credentials (through the `oauth2` crate) with the token cached and
//! refreshed before it expires or when the source answers 401. Secrets are read once at
//! start-up and never logged.

use crate::config::{SecretError, UpstreamAuth};
use oauth2::basic::BasicClient;
use oauth2::{AuthUrl, ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Refresh a cached token this long before it expires (or a fifth of its life if shorter).
const REFRESH_MARGIN: Duration = Duration::from_secs(30);

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
    #[error("token endpoint unreachable: {0}")]
    Unreachable(String),
    #[error("token endpoint answered something that is not a token response")]
    NotATokenResponse,
    #[error("{0}")]
    Other(String),
}

pub enum SourceCredentials {
    None,
    Bearer(String),
    Basic { username: String, password: String },
    ClientCredentials(Box<TokenClient>),
}

pub struct TokenClient {
    client_id: String,
    client_secret: String,
    token_url: String,
    scope: Option<String>,
    http: reqwest::Client,
    cached: Mutex<Option<(String, Instant)>>,
}

impl SourceCredentials {
    pub fn from_config(auth: &UpstreamAuth, base_dir: &Path) -> Result<SourceCredentials, CredentialError> {
        Ok(match auth {
            UpstreamAuth::None => SourceCredentials::None,
            UpstreamAuth::Bearer { token } => SourceCredentials::Bearer(token.reveal(base_dir)?),
            UpstreamAuth::Basic { username, password } => {
                SourceCredentials::Basic { username: username.clone(), password: password.reveal(base_dir)? }
            }
            UpstreamAuth::ClientCredentials { token_url, client_id, client_secret, scope } => {
                let http = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .timeout(Duration::from_secs(10))
                    .build()
                    .map_err(CredentialError::HttpClient)?;
                SourceCredentials::ClientCredentials(Box::new(TokenClient {
                    client_id: client_id.clone(),
                    client_secret: client_secret.reveal(base_dir)?,
                    token_url: token_url.clone(),
                    scope: scope.clone(),
                    http,
                    cached: Mutex::new(None),
                }))
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
        let client = BasicClient::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(ClientSecret::new(self.client_secret.clone()))
            // The client-credentials grant never visits an authorization URL; oauth2 wants one.
            .set_auth_uri(AuthUrl::new(self.token_url.clone()).map_err(CredentialError::TokenUrl)?)
            .set_token_uri(TokenUrl::new(self.token_url.clone()).map_err(CredentialError::TokenUrl)?);
        let mut request = client.exchange_client_credentials();
        if let Some(scope) = &self.scope {
            for s in scope.split_whitespace() {
                request = request.add_scope(Scope::new(s.to_string()));
            }
        }
        let response = request.request_async(&self.http).await.map_err(describe_token_error)?;
        let lifetime = response.expires_in().unwrap_or(Duration::from_secs(300));
        let token = response.access_token().secret().clone();
        let refresh_at = Instant::now() + lifetime - REFRESH_MARGIN.min(lifetime / 5);
        *cached = Some((token.clone(), refresh_at));
        Ok(token)
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
