//! The OAuth 2.0 side of Portico's SMART authorization server: registered apps
//! ([`Clients`]), client authentication, authorization codes, access and refresh tokens,
//! id_tokens, SMART Backend Services (`client_credentials` for HIE partners), introspection
//! and revocation ([`Tokens`]), and the gateway's signing key.
//! Access tokens are opaque; a check is reused only while the store's revocation generation
//! (read on every use) is unchanged, so revocation and termination of access are immediate. It knows no HTTP framework (the api layer parses forms and renders
//! [`OAuthError`]s) and must never log or store a secret, code, token or assertion in the
//! clear.

mod backend;
mod bearer_check;
pub mod cli;
mod client_auth;
mod client_keys;
mod clients;
mod crypto;
mod error;
mod form;
mod introspection;
mod signing;
mod tokens;

pub use backend::{grant_system_scopes, PartnerProfile, SystemBearer};
pub use client_auth::{Method, JWT_BEARER};
pub use client_keys::{parse_jwks, JwksError};
pub use clients::{
    check_config_clients, check_redirect_uri, parse_scopes, Client, ClientKeys, ClientKind, ClientSummary, Clients,
    ConfiguredClient, RegistrationError,
};
pub use crypto::HashError;
pub use error::{ClientError, ErrorCode, OAuthError};
pub use form::Form;
pub use signing::{KeyInfo, Signer};
pub use tokens::{Bearer, Caller, CodeRequest, TokenResponse, Tokens};

use crate::config::Config;
use crate::identity::PatientIndex;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;

/// Paths of the endpoints this module serves (relative to the gateway's origin).
pub const TOKEN_PATH: &str = "/token";
pub const INTROSPECT_PATH: &str = "/introspect";
pub const REVOKE_PATH: &str = "/revoke";
pub const JWKS_PATH: &str = "/jwks";
pub const WELL_KNOWN_JWKS_PATH: &str = "/.well-known/jwks.json";

/// Where the authorization server lives and how long what it issues lasts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSettings {
    /// The gateway's public origin (the FHIR base URL without `/fhir`): the id_token `iss`.
    pub issuer: String,
    /// The FHIR base URL (for `fhirUser`).
    pub fhir_base: String,
    /// `{issuer}/token`: the audience client assertions must name.
    pub token_url: String,
    pub access_token_ttl: Duration,
    /// Lifetime of a `client_credentials` (backend services) access token.
    pub backend_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub code_ttl: Duration,
}

impl OAuthSettings {
    pub fn from_config(config: &Config) -> OAuthSettings {
        let fhir_base = config.fhir_base_url();
        let issuer = fhir_base.strip_suffix("/fhir").unwrap_or(&fhir_base).to_string();
        OAuthSettings {
            token_url: format!("{issuer}{TOKEN_PATH}"),
            issuer,
            fhir_base,
            access_token_ttl: config.auth.access_token_ttl.std(),
            backend_token_ttl: config.auth.backend_token_ttl.std(),
            refresh_token_ttl: config.auth.refresh_token_ttl.std(),
            code_ttl: config.auth.code_ttl.std(),
        }
    }

    /// Absolute URLs of the endpoints (for discovery documents).
    pub fn introspect_url(&self) -> String {
        format!("{}{INTROSPECT_PATH}", self.issuer)
    }
    pub fn revoke_url(&self) -> String {
        format!("{}{REVOKE_PATH}", self.issuer)
    }
    pub fn jwks_url(&self) -> String {
        format!("{}{WELL_KNOWN_JWKS_PATH}", self.issuer)
    }
}

/// The authorization server's token side, ready to serve.
#[derive(Clone)]
pub struct OAuth {
    pub clients: Clients,
    pub tokens: Tokens,
}

impl OAuth {
    /// Loads the checked `[[auth.clients]]` ([`check_config_clients`]) into the store and
    /// checks the signing keys open with `kek` (sealing any stored in clear). Client secrets
    /// are checked on `hasher`.
    pub async fn start(
        config: &Config,
        configured: &[ConfiguredClient],
        store: Store,
        index: Arc<PatientIndex>,
        kek: Arc<crate::auth::keyring::KeyEncryptionKey>,
        hasher: crate::auth::hashing::Hasher,
    ) -> Result<OAuth, ClientError> {
        let clients = Clients::new(store.clone()).with_hasher(hasher);
        clients.sync_checked(configured).await?;
        let tokens = Tokens::new(store, clients.clone(), index, OAuthSettings::from_config(config), kek).await?;
        Ok(OAuth { clients, tokens })
    }
}
