//! Proxies a patient chooses, and the lifecycle of every proxy's access: an adult patient
//! invites someone by e-mail ([`invitations`]: the invitee signs in with that address and
//! confirms the patient's birth date, three tries); the patient sees, ends and renews their
//! proxies; an adult's proxy lasts `proxies.adult_proxy_for` and then needs renewing; and
//! the sweep ([`lifecycle`]) tells parents and the young person ahead of a birthday that
//! changes what a parent sees (the jurisdiction's age bands) and ends a parent's access at
//! the age of majority, with notice.
//!
//! It owns the invitations and the lifecycle's record of what was told; links themselves
//! stay `auth::accounts`' (created, terminated there). It never creates a link without the
//! right birth date on a live invitation, never lets anyone but the record's owner end or
//! renew its proxies, never compares a birth date in a way whose time depends on it, and
//! never mails anything of a record (see [`crate::mail::RecordNotice`]). "Today" is the
//! app's [`crate::clock::Clock`] (the system's in a deployment), never `Utc::now()` here.

pub mod invitations;
pub mod lifecycle;

pub use invitations::Invitation;
pub use lifecycle::{AgeRules, LifecycleSwept, ProxyView, Upcoming};

use crate::auth::accounts::{AccountError, Accounts, PatientLink};
use crate::clock::Clock;
use crate::config::ProxiesConfig;
use crate::identity::PatientIndex;
use crate::notices::{NoticeError, Notices};
use crate::store::{Store, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Only the account whose own record it is may do this.
    #[error("only the person whose record it is can do this, from their own account")]
    NotOwner,
    /// No such proxy or invitation of this patient (another's is answered alike).
    #[error("no such proxy or invitation")]
    NotFound,
    #[error("{0}")]
    Invalid(String),
    /// The invitation was used, cancelled, expired, or had three wrong birth dates.
    #[error("this invitation can no longer be used; ask for a new one")]
    Dead,
    /// The birth date did not match; `left` tries remain (0: the invitation is now dead).
    #[error("that date of birth does not match ({left} tries left)")]
    WrongBirthDate { left: i64 },
    /// Too many invitations sent today: try again in `retry_after` seconds.
    #[error("you have sent many invitations today; try again tomorrow")]
    TooMany { retry_after: u64 },
    /// Signed in with another address than the one invited.
    #[error("this invitation was sent to another e-mail address; sign in with that address")]
    OtherAddress,
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Notice(#[from] NoticeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ProxyError {
    fn from(e: sqlx::Error) -> Self {
        ProxyError::Store(StoreError::Query(e))
    }
}

impl ProxyError {
    /// A short stable name (the API's `error`, the pages' choice of words).
    pub fn code(&self) -> &'static str {
        match self {
            ProxyError::NotOwner => "not-owner",
            ProxyError::NotFound => "not-found",
            ProxyError::Invalid(_) => "invalid",
            ProxyError::Dead => "dead",
            ProxyError::WrongBirthDate { left: 0 } => "dead",
            ProxyError::WrongBirthDate { .. } => "wrong-birth-date",
            ProxyError::OtherAddress => "other-address",
            ProxyError::TooMany { .. } => "too-many",
            ProxyError::Account(_) | ProxyError::Notice(_) | ProxyError::Store(_) => "unavailable",
        }
    }
}

/// Invitations, the patient's view of their proxies, and the lifecycle sweep.
pub struct Proxies {
    store: Store,
    index: Arc<PatientIndex>,
    accounts: Arc<Accounts>,
    notices: Notices,
    /// Jobs started under a link end with it (`Exports::end_basis`).
    exports: Arc<crate::export::Exports>,
    config: ProxiesConfig,
    ages: AgeRules,
    /// What "now" is for the periodic sweep and the API's calls ([`crate::clock`]).
    clock: Clock,
}

impl Proxies {
    pub fn new(
        store: Store,
        index: Arc<PatientIndex>,
        accounts: Arc<Accounts>,
        notices: Notices,
        exports: Arc<crate::export::Exports>,
        config: ProxiesConfig,
        ages: AgeRules,
    ) -> Proxies {
        Proxies { store, index, accounts, notices, exports, config, ages, clock: Clock::system() }
    }

    /// Sweeps (every `proxies.sweep_every`) as of `clock`'s now (the app's; [`crate::clock`]).
    pub fn with_clock(self, clock: Clock) -> Proxies {
        Proxies { clock, ..self }
    }

    /// Ends the link and every job started under it; the number of links ended (0 or 1).
    async fn terminate(&self, link_id: &str, reason: &str, by: &str) -> Result<u64, ProxyError> {
        let ended = self.accounts.terminate(link_id, reason, by).await?;
        if let Err(e) = self.exports.end_basis(Some(link_id), None).await {
            tracing::warn!(link = %link_id, error = %e, "jobs of an ended proxy link not cancelled");
        }
        Ok(ended)
    }

    /// The account's own record (its live `SELF` link).
    async fn own_record(&self, account_id: &str) -> Result<PatientLink, ProxyError> {
        self.accounts
            .links(account_id)
            .await?
            .into_iter()
            .find(|l| l.relationship == "SELF")
            .ok_or(ProxyError::NotOwner)
    }

    /// The birth date of a source record, from the patient index.
    async fn birth_date(&self, source: &str, source_patient_id: &str) -> Result<Option<NaiveDate>, ProxyError> {
        let demographics = self.index.demographics_of(source, source_patient_id).await?;
        Ok(demographics.and_then(|d| d.birth_date).and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok()))
    }

    /// The source records of the person `source/source_patient_id` is one record of.
    async fn members(&self, source: &str, source_patient_id: &str) -> Result<Vec<(String, String)>, ProxyError> {
        let link = match self.index.gateway_id_of(source, source_patient_id).await? {
            Some(g) => self.index.resolve(&g).await?,
            None => None,
        };
        Ok(match link {
            Some(link) => link.members.into_iter().map(|m| (m.source, m.source_patient_id)).collect(),
            None => vec![(source.to_string(), source_patient_id.to_string())],
        })
    }

    /// Whole days an adult's proxy lasts (`proxies.adult_proxy_for`).
    pub fn adult_days(&self) -> u64 {
        self.config.adult_proxy_for.std().as_secs() / 86_400
    }

    /// Whole days of `proxies.notice_ahead`.
    fn lead_days(&self) -> u64 {
        self.config.notice_ahead.std().as_secs() / 86_400
    }

    /// When an adult's proxy invited or renewed at `now` ends.
    fn adult_until(&self, now: DateTime<Utc>) -> String {
        (now + chrono::Duration::from_std(self.config.adult_proxy_for.std()).unwrap_or_default()).to_rfc3339()
    }
}
