//! The notices a patient (or proxy) can turn on or off, each with its stable name in the
//! store and the API, and the mail it sends. Every one is on until the account turns it off.

use crate::mail::RecordNotice;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoticeKind {
    /// New results were released in a record the account can open (after any hold).
    NewResults,
    /// A download the account asked for is ready.
    DownloadReady,
    /// A share link the account made was opened.
    ShareLinkOpened,
    /// Someone became a proxy for the account's own record.
    ProxyAdded,
}

impl NoticeKind {
    pub const ALL: [NoticeKind; 4] =
        [NoticeKind::NewResults, NoticeKind::DownloadReady, NoticeKind::ShareLinkOpened, NoticeKind::ProxyAdded];

    /// The name in the store, the API and the preferences form.
    pub fn slug(self) -> &'static str {
        match self {
            NoticeKind::NewResults => "new-results",
            NoticeKind::DownloadReady => "download-ready",
            NoticeKind::ShareLinkOpened => "share-link-opened",
            NoticeKind::ProxyAdded => "proxy-added",
        }
    }

    pub fn from_slug(slug: &str) -> Option<NoticeKind> {
        NoticeKind::ALL.into_iter().find(|k| k.slug() == slug)
    }

    /// The mail this notice sends (the same words to everyone: never what is in a record).
    pub fn mail(self) -> RecordNotice {
        match self {
            NoticeKind::NewResults => RecordNotice::NewResults,
            NoticeKind::DownloadReady => RecordNotice::DownloadReady,
            NoticeKind::ShareLinkOpened => RecordNotice::ShareLinkOpened,
            NoticeKind::ProxyAdded => RecordNotice::ProxyAdded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_by_its_name_and_mails_its_own_notice() {
        for k in NoticeKind::ALL {
            assert_eq!(NoticeKind::from_slug(k.slug()), Some(k));
            assert_eq!(k.mail().kind(), k.slug());
        }
        assert_eq!(NoticeKind::from_slug("everything"), None);
    }
}
