//! How the gateway reaches one source: its upstream authentication (`[[sources]] auth`),
//! mutual TLS and a custom CA (`[[sources]] tls`), and, for `simulated` sources, which
//! vendor the in-process simulator behaves like (`simulator_profile`). Only names of
//! secrets and files live here; values are read with [`Secret::reveal`] and checked for
//! readability at load. Key material is parsed where it is used (`crate::sources`).

use super::Secret;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// How the gateway authenticates to an upstream source. Secrets come from the environment
/// (`*_env`) or a file (`*_file`), never from the config itself.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum UpstreamAuth {
    #[default]
    None,
    Bearer {
        token: Secret,
    },
    Basic {
        username: String,
        password: Secret,
    },
    /// OAuth2 client credentials with a client secret. Without `token_url`, a `fhir`
    /// source's is discovered from its `.well-known/smart-configuration`; a `simulated`
    /// source's is its simulator's, which then requires this secret.
    ClientCredentials {
        #[serde(default)]
        token_url: Option<String>,
        client_id: String,
        client_secret: Secret,
        #[serde(default)]
        scope: Option<String>,
    },
    /// SMART Backend Services: `client_credentials` with a `private_key_jwt` client
    /// assertion (RFC 7523) signed with `private_key` — RS384 for an RSA key, ES384 for an
    /// EC P-384 key (PEM, PKCS#8; PKCS#1 for RSA too) — whose public half the gateway
    /// publishes at `/jwks/sources.json` under `kid`.
    BackendServices {
        /// As for `client_credentials`: discovered, or the simulator's.
        #[serde(default)]
        token_url: Option<String>,
        client_id: String,
        private_key: Secret,
        kid: String,
        #[serde(default)]
        scope: Option<String>,
    },
}

/// TLS towards one source. Every file is PEM, relative to the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceTls {
    /// The CA certificate(s) the source's server certificate must chain to. When set, only
    /// these are trusted for this source (not the public web roots).
    pub ca_file: Option<PathBuf>,
    /// The gateway's client certificate (chain) for mutual TLS; needs `client_key`.
    pub client_cert: Option<PathBuf>,
    /// The private key of `client_cert` (PKCS#8, PKCS#1 or SEC1 PEM), a secret.
    pub client_key: Option<Secret>,
}

impl SourceTls {
    pub fn is_default(&self) -> bool {
        self.ca_file.is_none() && self.client_cert.is_none() && self.client_key.is_none()
    }
}

/// Which vendor's habits an in-process simulator (`kind = "simulated"`) copies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SimulatorProfile {
    /// Answers any search, including `GET /Patient` with no parameters.
    #[default]
    Standard,
    /// Epic-like: refuses a `Patient` search without search parameters (403).
    Epic,
    /// Oracle-Health-like: `_count` at most 100, its own paging links (`-pageContext`).
    OracleHealth,
}

/// Checks what `auth` and `tls` name: token URLs parse, secrets and files are readable.
/// Errors are `(key under the source, message)`.
pub(super) fn check(auth: &UpstreamAuth, tls: &SourceTls, base: &Path) -> Result<(), (String, String)> {
    let secret = |k: &str, s: &Secret| s.reveal(base).map(|_| ()).map_err(|e| (k.to_string(), e.to_string()));
    let url =
        |u: &str| url::Url::parse(u).map(|_| ()).map_err(|e| ("auth.token_url".to_string(), format!("not a URL: {e}")));
    // Without one, a `fhir` source's is discovered from its SMART configuration, a
    // `simulated` source's is its simulator's.
    let token_url_given = |token_url: Option<&str>| token_url.map_or(Ok(()), url);
    match auth {
        UpstreamAuth::None => {}
        UpstreamAuth::Bearer { token } => secret("auth.token", token)?,
        UpstreamAuth::Basic { password, .. } => secret("auth.password", password)?,
        UpstreamAuth::ClientCredentials { token_url, client_secret, .. } => {
            token_url_given(token_url.as_deref())?;
            secret("auth.client_secret", client_secret)?;
        }
        UpstreamAuth::BackendServices { token_url, client_id, private_key, kid, .. } => {
            token_url_given(token_url.as_deref())?;
            if client_id.is_empty() {
                return Err(("auth.client_id".into(), "must not be empty".into()));
            }
            if kid.is_empty() || kid.len() > 128 {
                return Err(("auth.kid".into(), "must be 1-128 characters".into()));
            }
            secret("auth.private_key", private_key)?;
        }
    }
    let file = |k: &str, p: &Path| {
        let full = base.join(p);
        std::fs::metadata(&full)
            .map(|_| ())
            .map_err(|e| (format!("tls.{k}"), format!("cannot read {}: {e}", full.display())))
    };
    if let Some(ca) = &tls.ca_file {
        file("ca_file", ca)?;
    }
    match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => {
            file("client_cert", cert)?;
            secret("tls.client_key", key)?;
        }
        (None, None) => {}
        (Some(_), None) => return Err(("tls.client_key".into(), "is required with tls.client_cert".into())),
        (None, Some(_)) => return Err(("tls.client_cert".into(), "is required with tls.client_key".into())),
    }
    Ok(())
}
