//! Mails to account holders: the security mails (the e-mail verification link, "your record
//! was connected to an account", "someone tried to connect to your record", "new sign-in")
//! and the notices about records and proxy access ([`RecordNotice`]).
//! It owns the outgoing queue and the transports (SMTP through `lettre`, or a folder of
//! `.eml` files); callers hand it a recipient and a [`Notice`] and go on at once.
//!
//! It must never block or fail the request that caused a mail: mails wait in a bounded
//! queue for one sending task; a full queue drops the mail, and a failed send is logged at
//! WARN — in both cases without the address or the text. And no mail ever carries PHI:
//! a [`Notice`] holds no patient data at all (no name, birth date, record number or record
//! content), only the account's own link, the gateway's address and the time.

mod messages;
mod record_messages;
mod transport;

pub use messages::Notice;
pub use record_messages::{Audience, Ending, RecordNotice};

use crate::config::MailConfig;
use chrono::{DateTime, Utc};
use std::path::Path;
use tokio::sync::mpsc;
use transport::Transport;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The `[mail]` section names a server or sender that cannot be used.
    #[error("mail: {0}")]
    Setup(String),
}

/// One mail waiting in the queue.
struct Outgoing {
    to: String,
    notice: Notice,
    lang: crate::i18n::Lang,
    at: DateTime<Utc>,
}

/// The handle every part of the gateway sends mail through; cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    queue: Option<mpsc::Sender<Outgoing>>,
    /// The gateway's public origin (`https://portal.example.org`), for the links in mails.
    origin: String,
    /// The time a mail's text gives (the app's clock, [`crate::clock`]).
    clock: crate::clock::Clock,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mailer(sending={}, origin={})", self.queue.is_some(), self.origin)
    }
}

impl Mailer {
    /// A mailer that sends nothing: each mail is logged as not sent (no `[mail]` section).
    pub fn off(origin: &str) -> Mailer {
        Mailer { queue: None, origin: origin.trim_end_matches('/').to_string(), clock: crate::clock::Clock::system() }
    }

    /// Starts the sending task for `config` (a `[mail]` section), or [`Mailer::off`] without
    /// one. Must run inside a Tokio runtime.
    pub fn start(config: Option<&MailConfig>, base_dir: &Path, origin: &str) -> Result<Mailer, MailError> {
        let Some(config) = config else {
            tracing::info!("no [mail] section: security mails are not sent (each is logged as not sent)");
            return Ok(Mailer::off(origin));
        };
        let transport = Transport::from_config(config, base_dir)?;
        let from: lettre::message::Mailbox =
            config.from.parse().map_err(|_| MailError::Setup("mail.from is not `Name <address>`".into()))?;
        let (tx, mut rx) = mpsc::channel::<Outgoing>(config.queue);
        let mailer = Mailer {
            queue: Some(tx),
            origin: origin.trim_end_matches('/').to_string(),
            clock: crate::clock::Clock::system(),
        };
        let origin = mailer.origin.clone();
        tokio::spawn(async move {
            while let Some(mail) = rx.recv().await {
                let kind = mail.notice.kind();
                let message = match messages::build(&from, &mail.to, &mail.notice, &origin, mail.at, mail.lang) {
                    Ok(m) => m,
                    Err(why) => {
                        tracing::warn!(kind, why, "security mail not sent");
                        continue;
                    }
                };
                match transport.send(message).await {
                    Ok(()) => tracing::info!(kind, "security mail sent"),
                    Err(why) => tracing::warn!(kind, why = %why, "security mail not sent"),
                }
            }
        });
        Ok(mailer)
    }

    /// Dates its mails' texts by `clock` (the app's).
    pub fn with_clock(self, clock: crate::clock::Clock) -> Mailer {
        Mailer { clock, ..self }
    }

    /// The gateway's public origin, as links in mails start.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Queues `notice` for `to`, in `lang`, and returns at once; never fails (see the module notes).
    pub fn send(&self, to: &str, lang: crate::i18n::Lang, notice: Notice) {
        let kind = notice.kind();
        let Some(queue) = &self.queue else {
            tracing::info!(kind, "security mail not sent: no [mail] section");
            return;
        };
        if let Err(e) = queue.try_send(Outgoing { to: to.to_string(), notice, lang, at: self.clock.now() }) {
            let why = match e {
                mpsc::error::TrySendError::Full(_) => "the mail queue is full",
                mpsc::error::TrySendError::Closed(_) => "the mail task has stopped",
            };
            tracing::warn!(kind, why, "security mail dropped");
        }
    }
}
