//! Notices that carry no PHI: mails telling an account that new results were released in a
//! record it can open, that a download is ready, that a share link it made was opened, or
//! that someone became a proxy for its record — and the account's choice of which of these
//! it gets ([`NoticeKind`], all on until turned off). It owns the preferences and the
//! record of which results each record link was told about ([`sweep`]).
//!
//! It must never put anything of a record in a mail (the texts are fixed, see
//! [`crate::mail::RecordNotice`]), never tell a proxy about an item the proxy cannot see
//! (what a link was told about is what the reader released to that link's viewer), and
//! never mail an address that is not confirmed.

mod kinds;
pub mod sweep;

pub use kinds::NoticeKind;
pub use sweep::ResultsSweep;

use crate::i18n::Lang;
use crate::mail::{Mailer, Notice, RecordNotice};
use crate::store::{Store, StoreError};
use serde::Serialize;
use sqlx::Row;

#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A preference that names no notice.
    #[error("`{0}` is not a notice (new-results, download-ready, share-link-opened, proxy-added)")]
    UnknownKind(String),
}

impl From<sqlx::Error> for NoticeError {
    fn from(e: sqlx::Error) -> Self {
        NoticeError::Store(StoreError::Query(e))
    }
}

/// One notice and whether the account gets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Preference {
    pub kind: NoticeKind,
    pub enabled: bool,
}

/// Sends notices and keeps the accounts' choices; cheap to clone.
#[derive(Clone)]
pub struct Notices {
    store: Store,
    mail: Mailer,
}

impl Notices {
    pub fn new(store: Store, mail: Mailer) -> Notices {
        Notices { store, mail }
    }

    /// The gateway's public origin (links in mails start with it).
    pub fn origin(&self) -> &str {
        self.mail.origin()
    }

    /// Every notice with the account's choice (on unless turned off).
    pub async fn preferences(&self, account_id: &str) -> Result<Vec<Preference>, NoticeError> {
        let rows = sqlx::query("SELECT kind, enabled FROM notice_preferences WHERE account_id = $1")
            .bind(account_id)
            .fetch_all(&self.store.pool)
            .await?;
        let off: Vec<String> =
            rows.into_iter().filter(|r| r.get::<i32, _>(1) == 0).map(|r| r.get::<String, _>(0)).collect();
        Ok(NoticeKind::ALL
            .into_iter()
            .map(|kind| Preference { kind, enabled: !off.iter().any(|o| o == kind.slug()) })
            .collect())
    }

    /// Sets the account's choices: the notices named in `on` are on, every other is off.
    /// Names that are not notices are refused and nothing changes.
    pub async fn choose(&self, account_id: &str, on: &[String]) -> Result<Vec<Preference>, NoticeError> {
        let chosen: Vec<NoticeKind> = on
            .iter()
            .map(|s| {
                NoticeKind::from_slug(s.trim()).ok_or_else(|| NoticeError::UnknownKind(s.chars().take(40).collect()))
            })
            .collect::<Result<_, _>>()?;
        let mut tx = self.store.begin_write().await?;
        for kind in NoticeKind::ALL {
            sqlx::query(
                "INSERT INTO notice_preferences (account_id, kind, enabled) VALUES ($1, $2, $3)
                 ON CONFLICT (account_id, kind) DO UPDATE SET enabled = excluded.enabled",
            )
            .bind(account_id)
            .bind(kind.slug())
            .bind(i32::from(chosen.contains(&kind)))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.preferences(account_id).await
    }

    /// Whether the account gets `kind`.
    pub async fn wants(&self, account_id: &str, kind: NoticeKind) -> Result<bool, NoticeError> {
        Ok(self.preferences(account_id).await?.into_iter().any(|p| p.kind == kind && p.enabled))
    }

    /// The account's confirmed e-mail address (its user name), if it has one, and the
    /// language its mails go in (the one it chose, else English).
    async fn address(&self, account_id: &str) -> Result<Option<(String, Lang)>, NoticeError> {
        let row =
            sqlx::query("SELECT username, language FROM accounts WHERE id = $1 AND email_verified_at IS NOT NULL")
                .bind(account_id)
                .fetch_optional(&self.store.pool)
                .await?;
        Ok(row.and_then(|r| {
            let lang = r.get::<Option<String>, _>(1).and_then(|c| Lang::from_code(&c)).unwrap_or_default();
            r.get::<Option<String>, _>(0).map(|to| (to, lang))
        }))
    }

    /// The language an account with user name `address` chose, if there is one.
    async fn language_of_address(&self, address: &str) -> Result<Option<Lang>, NoticeError> {
        let row = sqlx::query("SELECT language FROM accounts WHERE username = $1")
            .bind(address)
            .fetch_optional(&self.store.pool)
            .await?;
        Ok(row.and_then(|r| r.get::<Option<String>, _>(0)).and_then(|c| Lang::from_code(&c)))
    }

    /// Sends `kind` to the account unless it turned that notice off; true when queued.
    pub async fn notify(&self, account_id: &str, kind: NoticeKind) -> Result<bool, NoticeError> {
        if !self.wants(account_id, kind).await? {
            return Ok(false);
        }
        self.tell(account_id, kind.mail()).await
    }

    /// Sends a notice the account cannot turn off (changes of proxy access); true when queued.
    pub async fn tell(&self, account_id: &str, notice: RecordNotice) -> Result<bool, NoticeError> {
        let Some((to, lang)) = self.address(account_id).await? else {
            tracing::info!(kind = notice.kind(), "notice not sent: the account has no confirmed address");
            return Ok(false);
        };
        self.mail.send(&to, lang, Notice::Record(notice));
        Ok(true)
    }

    /// Sends a notice to an address that need not be an account's (an invitation): in the
    /// language of the account with that address if there is one and it chose one, else in
    /// `otherwise` (the language of the page the invitation was made on).
    pub async fn send_to_address(&self, to: &str, otherwise: Lang, notice: RecordNotice) -> Result<(), NoticeError> {
        let lang = self.language_of_address(to).await?.unwrap_or(otherwise);
        self.mail.send(to, lang, Notice::Record(notice));
        Ok(())
    }

    /// A share link made by `sharer_account_id` was opened: the sharer is told (unless they
    /// turned it off). For the share links' opening route to call.
    pub async fn share_link_opened(&self, sharer_account_id: &str) -> Result<bool, NoticeError> {
        self.notify(sharer_account_id, NoticeKind::ShareLinkOpened).await
    }

    /// The download prepared for the account behind record link `link_id` is ready.
    pub async fn download_ready(&self, link_id: &str) -> Result<bool, NoticeError> {
        let account: Option<String> = sqlx::query("SELECT account_id FROM account_patients WHERE id = $1")
            .bind(link_id)
            .fetch_optional(&self.store.pool)
            .await?
            .map(|r| r.get(0));
        match account {
            Some(a) => self.notify(&a, NoticeKind::DownloadReady).await,
            None => Ok(false),
        }
    }
}
