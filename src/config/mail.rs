//! The `[mail]` section: where the gateway's security mails go (an SMTP server, or a folder
//! of `.eml` files for the demo and tests), who they are from, and the verification link's
//! lifetime. Types, defaults and their checks only; sending lives in `crate::mail`.
//!
//! Without a `[mail]` section the gateway still starts and sends nothing: each mail is
//! logged as "not sent" (its kind only, never the address or the text). Staff can then
//! confirm an address with `portico account verify-email`.

use super::{Duration, Secret};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// The SMTP server: `smtp://host:587` (STARTTLS required), `smtps://host:465` (TLS from
    /// the start) or `smtp://host:25?tls=none` / `?tls=opportunistic` (a relay on the
    /// same machine or a test server). The password never goes here: see `password`.
    pub smtp_url: Option<String>,
    /// Instead of SMTP: a folder where each mail is written as an `.eml` file (relative to
    /// the working directory, like the SQLite file).
    pub folder: Option<PathBuf>,
    /// The sender, `Name <address>`.
    #[serde(default = "default_from")]
    pub from: String,
    /// SMTP user name, when the server wants one.
    pub username: Option<String>,
    /// SMTP password, read from the environment or a file (`{ env = "SMTP_PASSWORD" }`).
    pub password: Option<Secret>,
    /// Mails waiting to be sent at most (more are dropped with a warning, never blocking a
    /// request).
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// How long an e-mail verification link works.
    #[serde(default = "default_verify_valid")]
    pub verify_link_valid: Duration,
    /// Verification mails one account may ask for in an hour (more: 429).
    #[serde(default = "default_resend")]
    pub resend_per_hour: u32,
}

fn default_from() -> String {
    "Harbor Health patient portal <no-reply@localhost>".into()
}
fn default_queue() -> usize {
    256
}
pub fn default_verify_valid() -> Duration {
    Duration::from_secs(24 * 3600)
}
pub fn default_resend() -> u32 {
    3
}

impl MailConfig {
    /// Checks what the section says on its own; errors name the key under `mail.`.
    pub fn validate(&self, base_dir: &Path) -> Result<(), (String, String)> {
        let err = |k: &str, m: String| Err((format!("mail.{k}"), m));
        match (&self.smtp_url, &self.folder) {
            (Some(_), Some(_)) => return err("folder", "give smtp_url or folder, not both".into()),
            (None, None) => return err("smtp_url", "give smtp_url (an SMTP server) or folder".into()),
            (Some(u), None) => {
                let url = url::Url::parse(u).map_err(|e| ("mail.smtp_url".to_string(), format!("not a URL: {e}")))?;
                if !matches!(url.scheme(), "smtp" | "smtps") || url.host_str().is_none() {
                    return err("smtp_url", format!("`{}` is not smtp://host:port or smtps://host:port", url.scheme()));
                }
                if !url.password().unwrap_or_default().is_empty() {
                    return err("smtp_url", "holds a password: put it in the environment (mail.password)".into());
                }
            }
            (None, Some(_)) => {}
        }
        if self.from.parse::<lettre::message::Mailbox>().is_err() {
            return err("from", format!("`{}` is not `Name <address>`", self.from));
        }
        if let Some(p) = &self.password {
            p.reveal(base_dir).map_err(|e| ("mail.password".to_string(), e.to_string()))?;
        }
        if self.queue == 0 {
            return err("queue", "must be at least 1".into());
        }
        if self.verify_link_valid.is_zero() {
            return err("verify_link_valid", "must be greater than zero".into());
        }
        if self.resend_per_hour == 0 {
            return err("resend_per_hour", "must be at least 1".into());
        }
        Ok(())
    }
}
