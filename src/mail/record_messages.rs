//! The texts of the mails about records (issue 16 parts 4 and 5): new results, a download
//! ready, a share link opened, a proxy added, an invitation to be a proxy, and changes of
//! proxy access (a birthday ahead, access ended, an adult's proxy running out). Like the
//! security mails they are made from a value that holds no patient data by construction:
//! no name, birth date (not even the day a birthday falls on), record number, test name,
//! code or content — only links to the portal, where the person signs in to see more.

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

    pub fn subject(&self) -> &'static str {
        match self {
            RecordNotice::NewResults => "You have new results in your record",
            RecordNotice::DownloadReady => "Your download is ready",
            RecordNotice::ShareLinkOpened => "A link you shared was opened",
            RecordNotice::ProxyAdded => "Someone can now see your health record",
            RecordNotice::ProxyInvitation { .. } => "You are invited to see a health record in the patient portal",
            RecordNotice::AccessChangesSoon { .. } => "Access to a health record changes soon",
            RecordNotice::AccessEnded { to: Audience::Proxy, .. } => "Your access to a health record has ended",
            RecordNotice::AccessEnded { to: Audience::Patient, .. } => "Access to your health record has changed",
            RecordNotice::ProxyExpiresSoon { .. } => "Someone's access to your record ends soon",
        }
    }

    /// The plain-text body (ASCII, lines under 76 characters except a link's).
    pub fn body(&self, origin: &str, when: &str) -> String {
        let records = format!("{origin}/records");
        let proxies = format!("{origin}/account/proxies");
        let choose = format!("You can choose which of these mails you get:\n{origin}/account/notices");
        match self {
            RecordNotice::NewResults => format!(
                "Hello,\n\nyou have new results in your record: something new can be seen\n\
                 in a health record you open in the patient portal. Sign in to\nsee it:\n{records}\n\n{choose}\n"
            ),
            RecordNotice::DownloadReady => format!(
                "Hello,\n\nthe download you asked for at the patient portal is ready\n\
                 ({when}).\nSign in to get it; it is kept for a limited time:\n{records}\n\n{choose}\n"
            ),
            RecordNotice::ShareLinkOpened => format!(
                "Hello,\n\na link you made to share a health record was opened at\n{when}.\n\
                 Sign in to see when it was used, or to end the link:\n{records}\n\n{choose}\n"
            ),
            RecordNotice::ProxyAdded => format!(
                "Hello,\n\nat {when} someone was given access to your health\n\
                 record in the patient portal, as your proxy. You can see and\n\
                 end their access here:\n{proxies}\n\n\
                 If you did not expect this, end it there and call the medical\nrecords (HIM) desk.\n\n{choose}\n"
            ),
            RecordNotice::ProxyInvitation { link, valid_days } => format!(
                "Hello,\n\nsomeone invited you to see their health record in the patient\n\
                 portal, as their proxy. To accept, create an account with this\n\
                 e-mail address (or sign in), then open this link within\n{valid_days} days:\n\n{link}\n\n\
                 You will be asked for their date of birth. If you did not expect\n\
                 this mail, ignore it: nothing happens without you.\n"
            ),
            RecordNotice::AccessChangesSoon { to: Audience::Proxy, within_days } => format!(
                "Hello,\n\nwithin the next {within_days} days, your access to a health record\n\
                 you open for a child changes: at 12 the law gives a young person\n\
                 privacy for some of their care, so you will see less of the\n\
                 record, and at 18 your access ends. Sign in to see on which day\nand what changes:\n{proxies}\n"
            ),
            RecordNotice::AccessChangesSoon { to: Audience::Patient, within_days } => format!(
                "Hello,\n\nwithin the next {within_days} days, what your parents or guardians\n\
                 can see of your health record changes: some of your care becomes\n\
                 private to you, and when you are an adult their access ends.\n\
                 Sign in to see on which day and what changes:\n{proxies}\n"
            ),
            RecordNotice::AccessEnded { to: Audience::Proxy, why: Ending::Adult } => format!(
                "Hello,\n\nyour access to a health record you opened as a parent or\n\
                 guardian ended at {when},\nbecause the person is now an adult.\n\
                 They can invite you again from their own account.\n\nYour account:\n{origin}/account\n"
            ),
            RecordNotice::AccessEnded { to: Audience::Proxy, why: Ending::ByPatient } => format!(
                "Hello,\n\nyour access to a health record you opened for someone ended at\n\
                 {when}: the person ended it.\nAsk them if you think this is wrong.\n\nYour account:\n{origin}/account\n"
            ),
            RecordNotice::AccessEnded { to: Audience::Patient, .. } => format!(
                "Hello,\n\nnow that you are an adult, the access your parents or guardians\n\
                 had to your health record ended at {when}. You can invite\n\
                 someone to see your record here:\n{proxies}\n"
            ),
            RecordNotice::ProxyExpiresSoon { within_days } => format!(
                "Hello,\n\nwithin the next {within_days} days, the access of someone you allowed\n\
                 to see your health record ends. To keep it, renew it here:\n{proxies}\n"
            ),
        }
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
