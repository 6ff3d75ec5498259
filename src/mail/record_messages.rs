//! The texts of the mails about records (issue 16 parts 4 and 5): new results, a download
//! ready, a share link opened, a proxy added, an invitation to be a proxy, and changes of
//! proxy access (a birthday ahead, access ended, an adult's proxy running out). Like the
//! security mails they are made from a value that holds no patient data by construction:
//! no name, birth date (not even the day a birthday falls on), record number, test name,
//! code or content — only links to the portal, where the person signs in to see more. The
//! words are the catalogue's (`locales/*/mail.ftl`), in the account's language.

use crate::i18n::{text_in, Lang};
use chrono::{DateTime, Utc};
use fluent_bundle::FluentValue;

/// Who a mail about proxy access goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The proxy (a parent, guardian or someone the patient invited).
    Proxy,
    /// The person whose record it is.
    Patient,
}

/// Why proxy access ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The person became an adult (the jurisdiction's age of majority).
    Adult,
    /// The patient ended it.
    ByPatient,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordNotice {
    /// Something new is released in a record the account can open.
    NewResults,
    /// A download the account asked for is ready.
    DownloadReady,
    /// A share link the account made was opened.
    ShareLinkOpened,
    /// Someone became a proxy for the account's record.
    ProxyAdded,
    /// An invitation to become a proxy: the single-use link and how long it works.
    ProxyInvitation { link: String, valid_days: u64 },
    /// Proxy access to a record changes within `within_days` days (a birthday; the day
    /// itself is on the account page only).
    AccessChangesSoon { to: Audience, within_days: u64 },
    /// Proxy access ended.
    AccessEnded { to: Audience, why: Ending },
    /// A proxy the patient allowed stops having access within `within_days` days unless
    /// renewed.
    ProxyExpiresSoon { within_days: u64 },
}

impl RecordNotice {
    pub fn kind(&self) -> &'static str {
        match self {
            RecordNotice::NewResults => "new-results",
            RecordNotice::DownloadReady => "download-ready",
            RecordNotice::ShareLinkOpened => "share-link-opened",
            RecordNotice::ProxyAdded => "proxy-added",
            RecordNotice::ProxyInvitation { .. } => "proxy-invitation",
            RecordNotice::AccessChangesSoon { .. } => "proxy-access-changes",
            RecordNotice::AccessEnded { .. } => "proxy-access-ended",
            RecordNotice::ProxyExpiresSoon { .. } => "proxy-expires",
        }
    }

    /// The subject line in `lang`.
    pub fn subject(&self, lang: Lang) -> String {
        let key = match self {
            RecordNotice::NewResults => "mail-new-results-subject",
            RecordNotice::DownloadReady => "mail-download-ready-subject",
            RecordNotice::ShareLinkOpened => "mail-share-opened-subject",
            RecordNotice::ProxyAdded => "mail-proxy-added-subject",
            RecordNotice::ProxyInvitation { .. } => "mail-proxy-invitation-subject",
            RecordNotice::AccessChangesSoon { .. } => "mail-access-changes-subject",
            RecordNotice::AccessEnded { to: Audience::Proxy, .. } => "mail-access-ended-proxy-subject",
            RecordNotice::AccessEnded { to: Audience::Patient, .. } => "mail-access-ended-patient-subject",
            RecordNotice::ProxyExpiresSoon { .. } => "mail-proxy-expires-subject",
        };
        text_in(lang, key, &[])
    }

    /// The plain-text body in `lang` (lines under 76 characters except a link's; English is
    /// ASCII), from the catalogue (`locales/*/mail.ftl`).
    pub fn body(&self, origin: &str, at: DateTime<Utc>, lang: Lang) -> String {
        let when = || FluentValue::from(crate::i18n::long_utc(lang, at));
        let records = || FluentValue::from(format!("{origin}/records"));
        let proxies = || FluentValue::from(format!("{origin}/account/proxies"));
        let account = || FluentValue::from(format!("{origin}/account"));
        let days = |n: u64| FluentValue::from(n);
        let (text, choosable) = match self {
            RecordNotice::NewResults => (text_in(lang, "mail-new-results-body", &[("records", records())]), true),
            RecordNotice::DownloadReady => {
                (text_in(lang, "mail-download-ready-body", &[("when", when()), ("records", records())]), true)
            }
            RecordNotice::ShareLinkOpened => {
                (text_in(lang, "mail-share-opened-body", &[("when", when()), ("records", records())]), true)
            }
            RecordNotice::ProxyAdded => {
                (text_in(lang, "mail-proxy-added-body", &[("when", when()), ("proxies", proxies())]), true)
            }
            RecordNotice::ProxyInvitation { link, valid_days } => (
                text_in(
                    lang,
                    "mail-proxy-invitation-body",
                    &[("days", days(*valid_days)), ("link", link.as_str().into())],
                ),
                false,
            ),
            RecordNotice::AccessChangesSoon { to: Audience::Proxy, within_days } => (
                text_in(
                    lang,
                    "mail-access-changes-proxy-body",
                    &[("days", days(*within_days)), ("proxies", proxies())],
                ),
                false,
            ),
            RecordNotice::AccessChangesSoon { to: Audience::Patient, within_days } => (
                text_in(
                    lang,
                    "mail-access-changes-patient-body",
                    &[("days", days(*within_days)), ("proxies", proxies())],
                ),
                false,
            ),
            // Not the day: it is the birthday (a birth date given away).
            RecordNotice::AccessEnded { to: Audience::Proxy, why: Ending::Adult } => {
                (text_in(lang, "mail-access-ended-adult-body", &[("account", account())]), false)
            }
            RecordNotice::AccessEnded { to: Audience::Proxy, why: Ending::ByPatient } => {
                (text_in(lang, "mail-access-ended-by-patient-body", &[("when", when()), ("account", account())]), false)
            }
            RecordNotice::AccessEnded { to: Audience::Patient, .. } => {
                (text_in(lang, "mail-access-ended-patient-body", &[("proxies", proxies())]), false)
            }
            RecordNotice::ProxyExpiresSoon { within_days } => (
                text_in(lang, "mail-proxy-expires-body", &[("days", days(*within_days)), ("proxies", proxies())]),
                false,
            ),
        };
        if !choosable {
            return text;
        }
        let notices = FluentValue::from(format!("{origin}/account/notices"));
        format!("{text}\n\n{}", text_in(lang, "mail-choose-notices", &[("notices", notices)]))
    }

    /// Every variant, for the text checks.
    #[cfg(test)]
    pub fn examples() -> Vec<RecordNotice> {
        let mut all = vec![
            RecordNotice::NewResults,
            RecordNotice::DownloadReady,
            RecordNotice::ShareLinkOpened,
            RecordNotice::ProxyAdded,
            RecordNotice::ProxyInvitation {
                link: format!("https://p.example/proxy-invitations/accept?token={}", "ab".repeat(32)),
                valid_days: 14,
            },
            RecordNotice::ProxyExpiresSoon { within_days: 30 },
        ];
        for to in [Audience::Proxy, Audience::Patient] {
            all.push(RecordNotice::AccessChangesSoon { to, within_days: 30 });
            all.push(RecordNotice::AccessEnded { to, why: Ending::Adult });
            all.push(RecordNotice::AccessEnded { to, why: Ending::ByPatient });
        }
        all
    }
}
