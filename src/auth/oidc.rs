//! Sign-in through the hospital's OpenID Connect provider (the relying-party half, with the
//! `openidconnect` crate): the authorization code flow with PKCE (S256), `state` and
//! `nonce`, the code exchanged with `client_secret_basic`, the ID token's signature (the
//! provider's JWKS), issuer, audience, nonce and expiry verified, and the person's name
//! taken from the ID token or else the userinfo endpoint. The provider's metadata is
//! discovered on first use (the gateway starts while the provider is down), with a timeout,
//! and cached for [`METADATA_TTL`]. It returns who signed in (issuer + subject + name);
//! accounts and sessions are the caller's. Tokens and codes are never logged, and never
//! appear in an error's text.

// Transport errors carry no secrets: their causes go into the error text.
use crate::causes::causes;
use crate::config::{OidcConfig, SecretError};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use tokio::sync::Mutex;

/// How long one call to the provider (discovery, JWKS, token, userinfo) may take.
pub const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long discovered metadata (with the provider's signing keys) is reused.
pub const METADATA_TTL: Duration = Duration::from_secs(3600);
/// How long a person may take at the provider before the pending sign-in lapses.
pub const PENDING_TTL: Duration = Duration::from_secs(600);
/// Metadata younger than this is not fetched again after a signature failure.
const REDISCOVER_AFTER: Duration = Duration::from_secs(30);

type Client =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("auth.oidc.issuer: `{issuer}` is not a URL: {problem}")]
    Issuer { issuer: String, problem: openidconnect::url::ParseError },
    #[error("auth.oidc.client_secret: {0}")]
    Secret(SecretError),
    #[error("OpenID Connect HTTP client: {0}")]
    HttpClient(reqwest::Error),
    #[error("OpenID Connect redirect URI `{uri}`: {problem}")]
    RedirectUri { uri: String, problem: openidconnect::url::ParseError },
    /// The provider could not be reached or its metadata is unusable.
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
    #[error("the sign-in response does not belong to the sign-in this browser started")]
    StateMismatch,
    #[error("the sign-in took too long")]
    Expired,
    /// The provider refused the code (already used, expired, wrong verifier …).
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
    #[error("the identity provider's answer is not valid: {0}")]
    InvalidResponse(String),
    #[error("the identity provider's ID token is not valid: {0}")]
    InvalidIdToken(String),
}

/// Who signed in at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedIdentity {
    pub issuer: String,
    pub subject: String,
    /// Empty when the provider gave no name.
    pub display_name: String,
}

/// A sign-in started in one browser: kept in its session until the provider sends it back.
/// Holds one-time secrets (PKCE verifier, nonce); drop it once used.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingSignIn {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub redirect_uri: String,
    /// Unix seconds.
    pub started_at: i64,
}

impl std::fmt::Debug for PendingSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PendingSignIn(started_at={})", self.started_at)
    }
}

impl PendingSignIn {
    /// True when `state` is this sign-in's (constant time).
    pub fn state_matches(&self, state: &str) -> bool {
        !state.is_empty() && bool::from(state.as_bytes().ct_eq(self.state.as_bytes()))
    }

    pub fn expired(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        now.timestamp() - self.started_at > PENDING_TTL.as_secs() as i64 || now.timestamp() < self.started_at - 60
    }
}

struct Discovered {
    metadata: CoreProviderMetadata,
    fetched: Instant,
}

/// `[auth.oidc]`, checked: the issuer is a URL and the client secret could be read.
#[derive(Clone)]
pub struct OidcSettings {
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: ClientSecret,
    label: String,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OidcSettings(issuer={}, client_id={})", self.issuer.as_str(), self.client_id.as_str())
    }
}

impl OidcSettings {
    /// Checks the section without going to the provider (its metadata is discovered on
    /// first use).
    pub fn check(config: &OidcConfig, base_dir: &Path) -> Result<OidcSettings, OidcError> {
        let issuer = IssuerUrl::new(config.issuer.clone())
            .map_err(|problem| OidcError::Issuer { issuer: config.issuer.clone(), problem })?;
        let secret = config.client_secret.reveal(base_dir).map_err(OidcError::Secret)?;
        Ok(OidcSettings {
            issuer,
            client_id: ClientId::new(config.client_id.clone()),
            client_secret: ClientSecret::new(secret),
            label: config.label.clone(),
        })
    }
}

/// The configured provider and what was learned about it.
pub struct OidcLogin {
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: ClientSecret,
    label: String,
    http: reqwest::Client,
    discovered: Mutex<Option<Discovered>>,
}

impl std::fmt::Debug for OidcLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OidcLogin(issuer={}, client_id={})", self.issuer.as_str(), self.client_id.as_str())
    }
}

fn first_name(parts: &[Option<&str>]) -> Option<String> {
    parts.iter().flatten().map(|s| s.trim()).find(|s| !s.is_empty()).map(str::to_string)
}

fn joined(given: Option<&str>, family: Option<&str>) -> Option<String> {
    let s = format!("{} {}", given.unwrap_or("").trim(), family.unwrap_or("").trim()).trim().to_string();
    (!s.is_empty()).then_some(s)
}

impl OidcLogin {
    /// From the config (the client secret is read now; nothing is fetched yet).
    pub fn new(config: &OidcConfig, base_dir: &Path) -> Result<OidcLogin, OidcError> {
        OidcLogin::from_settings(OidcSettings::check(config, base_dir)?)
    }

    /// The login for checked settings (see [`OidcSettings::check`]).
    pub fn from_settings(settings: OidcSettings) -> Result<OidcLogin, OidcError> {
        let OidcSettings { issuer, client_id, client_secret, label } = settings;
        let http = reqwest::Client::builder()
            // Following redirects would let the provider's answers point the gateway anywhere.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(PROVIDER_TIMEOUT)
            .timeout(PROVIDER_TIMEOUT)
            .build()
            .map_err(OidcError::HttpClient)?;
        Ok(OidcLogin { issuer, client_id, client_secret, label, http, discovered: Mutex::new(None) })
    }

    /// The configured issuer, as written in the config.
    pub fn issuer(&self) -> &str {
        self.issuer.as_str()
    }

    /// What the sign-in button says.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The provider's metadata: cached, or discovered now (bounded by the timeout).
    async fn metadata(&self, refresh: bool) -> Result<(CoreProviderMetadata, Instant), OidcError> {
        let mut cached = self.discovered.lock().await;
        if let Some(d) = cached.as_ref() {
            if !refresh && d.fetched.elapsed() < METADATA_TTL {
                return Ok((d.metadata.clone(), d.fetched));
            }
        }
        let found = tokio::time::timeout(
            PROVIDER_TIMEOUT * 2,
            CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http),
        )
        .await;
        let metadata = match found {
            Err(_) => return Err(OidcError::Unavailable("discovery timed out".into())),
            Ok(Err(openidconnect::DiscoveryError::Request(e))) => return Err(OidcError::Unavailable(causes(&e))),
            Ok(Err(openidconnect::DiscoveryError::Parse(_))) => {
                return Err(OidcError::Unavailable("the discovery document or JWKS could not be parsed".into()))
            }
            Ok(Err(e)) => return Err(OidcError::Unavailable(e.to_string())),
            Ok(Ok(m)) => m,
        };
        tracing::info!(issuer = %self.issuer.as_str(), "OpenID provider metadata discovered");
        let fetched = Instant::now();
        *cached = Some(Discovered { metadata: metadata.clone(), fetched });
        Ok((metadata, fetched))
    }

    fn client(&self, metadata: CoreProviderMetadata, redirect_uri: &str) -> Result<Client, OidcError> {
        let redirect = RedirectUrl::new(redirect_uri.to_string())
            .map_err(|problem| OidcError::RedirectUri { uri: redirect_uri.to_string(), problem })?;
        Ok(CoreClient::from_provider_metadata(metadata, self.client_id.clone(), Some(self.client_secret.clone()))
            .set_redirect_uri(redirect))
    }

    /// Starts a sign-in: the provider's authorization URL to send the browser to, and what
    /// the browser's session must keep until it comes back.
    pub async fn start(&self, redirect_uri: &str) -> Result<(String, PendingSignIn), OidcError> {
        let (metadata, _) = self.metadata(false).await?;
        let client = self.client(metadata, redirect_uri)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge)
            .url();
        let pending = PendingSignIn {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            redirect_uri: redirect_uri.to_string(),
            started_at: chrono::Utc::now().timestamp(),
        };
        Ok((url.to_string(), pending))
    }

    /// Finishes a sign-in the provider sent back with `code` and `state`: exchanges the code
    /// and verifies the ID token against `pending`.
    pub async fn finish(
        &self,
        pending: &PendingSignIn,
        code: &str,
        state: &str,
    ) -> Result<FederatedIdentity, OidcError> {
        if !pending.state_matches(state) {
            return Err(OidcError::StateMismatch);
        }
        if pending.expired(chrono::Utc::now()) {
            return Err(OidcError::Expired);
        }
        if code.is_empty() {
            return Err(OidcError::InvalidResponse("no authorization code".into()));
        }
        let (metadata, fetched) = self.metadata(false).await?;
        let client = self.client(metadata, &pending.redirect_uri)?;
        let request = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| OidcError::Unavailable(format!("the provider names no token endpoint ({e})")))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()));
        let tokens = match tokio::time::timeout(PROVIDER_TIMEOUT * 2, request.request_async(&self.http)).await {
            Err(_) => return Err(OidcError::Unavailable("the token request timed out".into())),
            Ok(Err(RequestTokenError::ServerResponse(r))) => {
                return Err(OidcError::Refused(r.error().as_ref().to_string()));
            }
            Ok(Err(RequestTokenError::Request(e))) => return Err(OidcError::Unavailable(causes(&e))),
            // The body may hold tokens: never quoted.
            Ok(Err(RequestTokenError::Parse(..))) => {
                return Err(OidcError::InvalidResponse("the token response could not be parsed".into()))
            }
            Ok(Err(RequestTokenError::Other(m))) => return Err(OidcError::InvalidResponse(m)),
            Ok(Ok(t)) => t,
        };
        let id_token = tokens.id_token().ok_or_else(|| OidcError::InvalidResponse("no ID token".into()))?;
        let nonce = Nonce::new(pending.nonce.clone());

        // Verify with the cached keys; a signature failure on old metadata fetches the keys
        // again once (the provider may have rotated them).
        let first = id_token.claims(&client.id_token_verifier(), &nonce).cloned();
        let (client, claims) = match first {
            Ok(c) => (client, c),
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(_))
                if fetched.elapsed() > REDISCOVER_AFTER =>
            {
                let (metadata, _) = self.metadata(true).await?;
                let client = self.client(metadata, &pending.redirect_uri)?;
                let claims = id_token
                    .claims(&client.id_token_verifier(), &nonce)
                    .map_err(|e| OidcError::InvalidIdToken(e.to_string()))?
                    .clone();
                (client, claims)
            }
            Err(e) => return Err(OidcError::InvalidIdToken(e.to_string())),
        };
        let verifier = client.id_token_verifier();
        if let Some(expected) = claims.access_token_hash() {
            let alg = id_token.signing_alg().map_err(|e| OidcError::InvalidIdToken(e.to_string()))?;
            let key = id_token.signing_key(&verifier).map_err(|e| OidcError::InvalidIdToken(e.to_string()))?;
            let actual = AccessTokenHash::from_token(tokens.access_token(), alg, key)
                .map_err(|e| OidcError::InvalidIdToken(e.to_string()))?;
            if actual != *expected {
                return Err(OidcError::InvalidIdToken("at_hash does not match the access token".into()));
            }
        }

        let subject = claims.subject().as_str().to_string();
        let mut display_name = first_name(&[
            claims.name().and_then(|n| n.get(None)).map(|n| n.as_str()),
            joined(
                claims.given_name().and_then(|n| n.get(None)).map(|n| n.as_str()),
                claims.family_name().and_then(|n| n.get(None)).map(|n| n.as_str()),
            )
            .as_deref(),
        ]);
        if display_name.is_none() {
            display_name = self.name_from_userinfo(&client, tokens.access_token().clone(), &claims).await;
        }
        let display_name =
            display_name.or_else(|| first_name(&[claims.preferred_username().map(|u| u.as_str())])).unwrap_or_default();
        Ok(FederatedIdentity { issuer: claims.issuer().as_str().to_string(), subject, display_name })
    }

    /// The person's name from the userinfo endpoint, when the ID token had none. A failure
    /// here does not fail the sign-in (the account just has no name yet).
    async fn name_from_userinfo(
        &self,
        client: &Client,
        access_token: openidconnect::AccessToken,
        claims: &openidconnect::core::CoreIdTokenClaims,
    ) -> Option<String> {
        let request = client.user_info(access_token, Some(claims.subject().clone())).ok()?;
        let info: CoreUserInfoClaims =
            match tokio::time::timeout(PROVIDER_TIMEOUT * 2, request.request_async(&self.http)).await {
                Ok(Ok(info)) => info,
                Ok(Err(e)) => {
                    tracing::warn!(issuer = %self.issuer.as_str(), error = %e, "OpenID userinfo request failed");
                    return None;
                }
                Err(_) => {
                    tracing::warn!(issuer = %self.issuer.as_str(), "OpenID userinfo request timed out");
                    return None;
                }
            };
        first_name(&[
            info.name().and_then(|n| n.get(None)).map(|n| n.as_str()),
            joined(
                info.given_name().and_then(|n| n.get(None)).map(|n| n.as_str()),
                info.family_name().and_then(|n| n.get(None)).map(|n| n.as_str()),
            )
            .as_deref(),
            info.preferred_username().map(|u| u.as_str()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn config(issuer: &str) -> OidcConfig {
        OidcConfig {
            issuer: issuer.into(),
            client_id: "portico".into(),
            client_secret: Secret { env: Some("PORTICO_TEST_OIDC_SECRET_UNIT".into()), file: None },
            label: "Sign in".into(),
        }
    }

    #[test]
    fn pending_state_is_checked_and_lapses() {
        let p = PendingSignIn {
            state: "abc".into(),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            redirect_uri: "http://127.0.0.1/login/oidc/callback".into(),
            started_at: 1_000_000,
        };
        assert!(p.state_matches("abc"));
        assert!(!p.state_matches("abd") && !p.state_matches(""));
        let at = |s: i64| chrono::DateTime::from_timestamp(s, 0).unwrap();
        assert!(!p.expired(at(1_000_000 + 60)));
        assert!(p.expired(at(1_000_000 + PENDING_TTL.as_secs() as i64 + 1)));
        assert!(!format!("{p:?}").contains("abc"), "no secrets in Debug");
    }

    #[tokio::test]
    async fn a_provider_that_is_down_is_an_error_not_a_hang() {
        std::env::set_var("PORTICO_TEST_OIDC_SECRET_UNIT", "s3cret");
        // Port 9 (discard) on loopback: nothing listens.
        let login = OidcLogin::new(&config("http://127.0.0.1:9"), Path::new(".")).unwrap();
        let started = Instant::now();
        let err = login.start("http://127.0.0.1:1/login/oidc/callback").await.unwrap_err();
        assert!(matches!(err, OidcError::Unavailable(_)), "{err}");
        assert!(started.elapsed() < PROVIDER_TIMEOUT * 3);
    }

    #[test]
    fn a_bad_issuer_or_missing_secret_is_a_config_error() {
        let err = OidcLogin::new(&config("not a url"), Path::new(".")).unwrap_err();
        assert!(err.to_string().contains("auth.oidc.issuer"), "{err}");
        let mut c = config("https://id.example.org");
        c.client_secret = Secret { env: None, file: Some("no-such-secret-file".into()) };
        let err = OidcLogin::new(&c, Path::new("/nonexistent")).unwrap_err();
        assert!(err.to_string().contains("auth.oidc.client_secret"), "{err}");
    }
}
