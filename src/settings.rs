//! Raw configuration → validated settings, once. [`crate::config`] reads the TOML file and
//! its `PORTICO_*` overrides and checks what it can on its own; this step adds everything
//! that needs the modules that consume it: it loads and validates the privacy policy the
//! config names (or the built-in one), parses `server.utc_offset` into a zone, turns each
//! dev token's viewer into a checked [`Viewer`], checks every `[[auth.clients]]` entry
//! (secret read, JWKS file parsed) and `[auth.oidc]` (issuer URL, client secret read). What
//! comes out is what `App::build` uses — nothing is parsed twice, and `portico check-config`
//! refuses exactly what `serve` would, without opening a database. It starts nothing and
//! touches no network (a `jwks_uri` and the OpenID provider are only visited when used).

use crate::auth::oauth::{check_config_clients, ClientError, ConfiguredClient};
use crate::auth::oidc::{OidcError, OidcSettings};
use crate::config::{Config, ConfigError};
use crate::policy::{PolicyConfig, PolicyError, Viewer, ViewerError};
use chrono::FixedOffset;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The policy file the config names is broken (the message names its file and key).
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("{file}: {key}: {message}")]
    Invalid { file: String, key: String, message: String },
    /// A `[[auth.clients]]` entry that is refused (the message names its key).
    #[error("{file}: {problem}")]
    Clients { file: String, problem: ClientError },
    /// `[auth.oidc]` is refused.
    #[error("{file}: {problem}")]
    Oidc { file: String, problem: OidcError },
    /// A dev token's viewer (or its scopes) that does not parse.
    #[error("{file}: {key}: {problem}")]
    Viewer { file: String, key: String, problem: ViewerError },
}

pub use crate::auth::DevViewer;

/// Everything the gateway is started with, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config: Config,
    /// The privacy policy in force.
    pub policy: PolicyConfig,
    /// `server.utc_offset`.
    pub zone: FixedOffset,
    /// `server.dev_tokens`, each with its viewer.
    pub dev_viewers: Vec<DevViewer>,
    /// `[[auth.clients]]`, each checked (secret read, JWKS file parsed).
    pub clients: Vec<ConfiguredClient>,
    /// `[auth.oidc]`, checked (issuer URL, client secret read).
    pub oidc: Option<OidcSettings>,
}

impl Settings {
    /// Loads a config file with the process environment's overrides, then validates the
    /// rest (see the module head).
    pub fn load(path: &Path) -> Result<Settings, SettingsError> {
        Settings::from_config(Config::load(path)?)
    }

    /// Validates what a loaded [`Config`] names: the policy, the zone, the dev tokens' viewers.
    pub fn from_config(config: Config) -> Result<Settings, SettingsError> {
        let invalid = |key: String, message: String| SettingsError::Invalid { file: config.file.clone(), key, message };
        let zone = crate::fhir::time::parse_utc_offset(&config.server.utc_offset).ok_or_else(|| {
            invalid("server.utc_offset".into(), format!("`{}` is not UTC or ±HH:MM", config.server.utc_offset))
        })?;
        let policy = match &config.policy.file {
            Some(f) => PolicyConfig::load(&config.base_dir.join(f))?,
            None => PolicyConfig::embedded(),
        };
        let mut dev_viewers = Vec::with_capacity(config.server.dev_tokens.len());
        for (i, t) in config.server.dev_tokens.iter().enumerate() {
            let key = |k: &str| format!("server.dev_tokens[{i}].{k}");
            let mut viewer = Viewer::from_spec(&t.viewer, t.scopes.as_deref())
                .map_err(|problem| SettingsError::Viewer { file: config.file.clone(), key: key("viewer"), problem })?;
            viewer.actor = format!("dev-token:{i}:{}", t.viewer);
            let patient = match (&t.patient, viewer.is_patient_facing()) {
                (None, true) => {
                    return Err(invalid(
                        key("patient"),
                        "is required for a patient or proxy viewer (source/source-id)".into(),
                    ))
                }
                (Some(_), false) => {
                    return Err(invalid(key("patient"), "is only for patient and proxy viewers".into()))
                }
                (Some(p), true) => {
                    let (source, id) = p
                        .split_once('/')
                        .ok_or_else(|| invalid(key("patient"), format!("`{p}` is not source/source-id")))?;
                    Some((source.to_string(), id.to_string()))
                }
                (None, false) => None,
            };
            if t.groups.is_some() && viewer.is_patient_facing() {
                return Err(invalid(key("groups"), "is only for staff and partner viewers".into()));
            }
            dev_viewers.push(DevViewer { token: t.token.clone(), viewer, patient, groups: t.groups.clone() });
        }
        let auth = &config.auth;
        if auth.enroll_record_attempts == 0 {
            return Err(invalid("auth.enroll_record_attempts".into(), "must be at least 1".into()));
        }
        if auth.enroll_global_attempts < auth.enroll_record_attempts {
            return Err(invalid(
                "auth.enroll_global_attempts".into(),
                "must be at least auth.enroll_record_attempts".into(),
            ));
        }
        if auth.enroll_throttle_window.std().is_zero() {
            return Err(invalid("auth.enroll_throttle_window".into(), "must be longer than zero".into()));
        }
        if !(1..=365).contains(&auth.activation_code_days) {
            return Err(invalid("auth.activation_code_days".into(), "must be 1 to 365".into()));
        }
        // Each source's Backend Services key and TLS files, as the gateway will use them.
        for (i, s) in config.sources.iter().enumerate() {
            crate::sources::upstream_auth::check(s, &config.base_dir)
                .map_err(|(key, problem)| invalid(format!("sources[{i}].{key}"), problem.to_string()))?;
        }
        crate::sources::upstream_auth::source_jwks(&config.sources, &config.base_dir)
            .map_err(|(_, problem)| invalid("sources".into(), problem.to_string()))?;
        let clients = check_config_clients(&config.auth.clients, &config.base_dir)
            .map_err(|problem| SettingsError::Clients { file: config.file.clone(), problem })?;
        let oidc = match &config.auth.oidc {
            Some(c) => Some(
                OidcSettings::check(c, &config.base_dir)
                    .map_err(|problem| SettingsError::Oidc { file: config.file.clone(), problem })?,
            ),
            None => None,
        };
        Ok(Settings { config, policy, zone, dev_viewers, clients, oidc })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(extra: &str) -> Result<Settings, String> {
        let source = "[[sources]]\nname = \"ehr\"\nkind = \"files\"\npath = \"../fixtures/ehr\"\n";
        let text = format!("[server]\nlisten = \"127.0.0.1:8080\"\n{extra}\n{source}");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let config = Config::from_toml(&text, "t.toml", &dir, &[]).map_err(|e| e.to_string())?;
        Settings::from_config(config).map_err(|e| e.to_string())
    }

    #[test]
    fn the_demo_config_validates_with_its_policy_zone_and_dev_viewers() {
        // Not Settings::load: other tests change PORTICO_* variables of this process.
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/portico.toml");
        let s = Settings::from_config(Config::load_with_env(&path, &[]).unwrap()).unwrap();
        assert_eq!(s.dev_viewers.len(), s.config.server.dev_tokens.len());
        assert!(s.dev_viewers.iter().all(|d| d.viewer.actor.starts_with("dev-token:")));
        let maya_mother = s.dev_viewers.iter().find(|d| d.token == "demo-maya-mother-proxy").unwrap();
        assert_eq!(maya_mother.patient, Some(("ehr".to_string(), "pt-10007".to_string())));
        assert!(!s.policy.label_rules.is_empty(), "the policy is loaded");
    }

    #[test]
    fn what_serve_would_refuse_is_refused_here_naming_file_and_key() {
        // Registered clients and the OpenID provider are checked here too, without a database.
        let token = |body: &str| format!("[[server.dev_tokens]]\ntoken = \"0123456789abcdef-x\"\n{body}\n");
        for (extra, expected) in [
            ("utc_offset = \"America/Chicago\"\n", "t.toml: server.utc_offset: `America/Chicago` is not UTC or ±HH:MM"),
            (&token("viewer = \"nobody\""), "t.toml: server.dev_tokens[0].viewer:"),
            (&token("viewer = \"patient\""), "t.toml: server.dev_tokens[0].patient: is required"),
            (&token("viewer = \"staff\"\npatient = \"ehr/p1\""), "t.toml: server.dev_tokens[0].patient: is only for"),
            (&token("viewer = \"patient\"\npatient = \"p1\""), "t.toml: server.dev_tokens[0].patient: `p1` is not source/source-id"),
            (&token("viewer = \"patient\"\npatient = \"ehr/p1\"\ngroups = [\"g\"]"), "t.toml: server.dev_tokens[0].groups:"),
            ("[policy]\nfile = \"nope.toml\"\n", "nope.toml: cannot read"),
            (
                "[[auth.clients]]\nclient_id = \"a\"\nname = \"A\"\nkind = \"partner\"\nallowed_scopes = \"openid\"\n",
                "t.toml: auth.clients[0].kind: `partner` is not a client kind",
            ),
            (
                "[[auth.clients]]\nclient_id = \"a\"\nname = \"A\"\nkind = \"public\"\nredirect_uris = [\"http://app.example/cb\"]\nallowed_scopes = \"openid\"\n",
                "t.toml: auth.clients[0].redirect_uris[0]: `http://app.example/cb` must be https",
            ),
            (
                "[auth.oidc]\nissuer = \"not a url\"\nclient_id = \"p\"\nclient_secret = { env = \"PORTICO_TEST_UNSET_OIDC_SECRET\" }\n",
                "t.toml: auth.oidc.issuer: `not a url` is not a URL",
            ),
            (
                "[auth.oidc]\nissuer = \"https://id.example.org\"\nclient_id = \"p\"\nclient_secret = { env = \"PORTICO_TEST_UNSET_OIDC_SECRET\" }\n",
                "t.toml: auth.oidc.client_secret: environment variable PORTICO_TEST_UNSET_OIDC_SECRET is not set",
            ),
        ] {
            let e = from(extra).unwrap_err();
            assert!(e.contains(expected), "{extra}: {e}");
        }
        assert!(from("").is_ok());
    }
}
