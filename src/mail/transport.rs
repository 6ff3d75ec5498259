//! Where mails go: an SMTP server (`lettre`, Tokio and rustls) or a folder of `.eml` files.
//! Errors are described by their kind only — an SMTP server's reply may quote the address.

use super::MailError;
use crate::config::MailConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::Path;
use std::time::Duration;

/// How long one SMTP exchange may take before the mail is given up.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Folder(AsyncFileTransport<Tokio1Executor>),
}

impl Transport {
    pub fn from_config(config: &MailConfig, base_dir: &Path) -> Result<Transport, MailError> {
        if let Some(folder) = &config.folder {
            std::fs::create_dir_all(folder)
                .map_err(|e| MailError::Setup(format!("cannot create mail.folder {}: {e}", folder.display())))?;
            return Ok(Transport::Folder(AsyncFileTransport::new(folder)));
        }
        let Some(raw) = &config.smtp_url else {
            return Err(MailError::Setup("give mail.smtp_url or mail.folder".into()));
        };
        let url = url::Url::parse(raw).map_err(|e| MailError::Setup(format!("mail.smtp_url: {e}")))?;
        let host = url.host_str().ok_or_else(|| MailError::Setup("mail.smtp_url names no host".into()))?.to_string();
        let tls_mode = url.query_pairs().find(|(k, _)| k == "tls").map(|(_, v)| v.into_owned());
        let setup = |e: lettre::transport::smtp::Error| MailError::Setup(format!("mail.smtp_url: {e}"));
        let mut builder = match (url.scheme(), tls_mode.as_deref()) {
            ("smtps", _) => AsyncSmtpTransport::<Tokio1Executor>::relay(&host).map_err(setup)?,
            ("smtp", None | Some("required")) => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host).map_err(setup)?
            }
            ("smtp", Some("opportunistic")) => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host)
                .port(25)
                .tls(Tls::Opportunistic(TlsParameters::new(host.clone()).map_err(setup)?)),
            ("smtp", Some("none")) => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host).port(25),
            (_, Some(other)) => {
                return Err(MailError::Setup(format!(
                    "mail.smtp_url: tls={other}: use required, opportunistic or none"
                )))
            }
            (scheme, None) => return Err(MailError::Setup(format!("mail.smtp_url: `{scheme}` is not smtp or smtps"))),
        };
        if let Some(port) = url.port() {
            builder = builder.port(port);
        }
        let user = config.username.clone().or_else(|| Some(url.username().to_string()).filter(|u| !u.is_empty()));
        if let Some(user) = user {
            let password = match &config.password {
                Some(secret) => secret.reveal(base_dir).map_err(|e| MailError::Setup(format!("mail.password: {e}")))?,
                None => return Err(MailError::Setup("mail.username is set but mail.password is not".into())),
            };
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(Transport::Smtp(builder.timeout(Some(SMTP_TIMEOUT)).build()))
    }

    /// Sends one mail; the error says what kind of failure it was, never the server's words.
    pub async fn send(&self, message: Message) -> Result<(), String> {
        match self {
            Transport::Smtp(t) => t.send(message).await.map(|_| ()).map_err(|e| {
                let kind = if e.is_timeout() {
                    "timed out"
                } else if e.is_tls() {
                    "TLS failed"
                } else if e.is_permanent() {
                    "refused by the server (permanent)"
                } else if e.is_transient() {
                    "refused by the server (transient)"
                } else {
                    "connection or protocol error"
                };
                match e.status() {
                    Some(code) => format!("SMTP {kind}, code {code}"),
                    None => format!("SMTP {kind}"),
                }
            }),
            Transport::Folder(t) => t.send(message).await.map(|_| ()).map_err(|e| {
                if e.is_io() {
                    "cannot write to mail.folder".to_string()
                } else {
                    "cannot write the mail file".to_string()
                }
            }),
        }
    }
}
