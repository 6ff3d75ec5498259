//! The texts of the security mails. Each is made from a [`Notice`] (which holds no patient
//! data by construction), the gateway's origin and the time: nothing else can get in.

use chrono::{DateTime, Utc};
use lettre::message::header::ContentType;
use lettre::message::{Body, Mailbox};
use lettre::Message;

/// What a mail tells its account holder. None of these carries patient data; the one
/// value is a verification link for the account itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Confirm the address: a single-use link (`{origin}/verify-email?token=…`).
    VerifyEmail { link: String, valid_hours: u64 },
    /// This account was connected to a health record (enrollment succeeded).
    RecordConnected,
    /// Someone tried to connect another account to the record this account owns.
    EnrollmentAttempt,
    /// This account signed in from a browser or device not seen before.
    NewSignIn,
    /// About a record the account can open, or about proxy access (no patient data either).
    Record(super::RecordNotice),
}

impl Notice {
    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Notice::VerifyEmail { .. } => "verify-email",
            Notice::RecordConnected => "record-connected",
            Notice::EnrollmentAttempt => "enrollment-attempt",
            Notice::NewSignIn => "new-sign-in",
            Notice::Record(r) => r.kind(),
        }
    }

    /// The subject line.
    pub fn subject(&self) -> &'static str {
        match self {
            Notice::VerifyEmail { .. } => "Confirm your e-mail address for the patient portal",
            Notice::RecordConnected => "Your patient portal account was connected to a health record",
            Notice::EnrollmentAttempt => "Someone tried to connect to your health record",
            Notice::NewSignIn => "New sign-in to your patient portal account",
            Notice::Record(r) => r.subject(),
        }
    }

    /// The plain-text body (ASCII; lines under 76 characters except a link's, so it goes
    /// as 7-bit text, or quoted-printable when a link is longer).
    pub fn body(&self, origin: &str, at: DateTime<Utc>) -> String {
        let when = at.format("%Y-%m-%d %H:%M UTC");
        let account = format!("{origin}/account");
        let unexpected = "If this was not you, sign in and change your password, and call\n\
                          the medical records (HIM) desk.";
        match self {
            Notice::VerifyEmail { link, valid_hours } => format!(
                "Hello,\n\nsomeone (we hope you) created a patient portal account with this\n\
                 e-mail address at {when}. To confirm the address, open this\n\
                 link within {valid_hours} hours:\n\n{link}\n\n\
                 You need a confirmed address before you can connect your health record.\n\
                 If you did not create this account, ignore this mail.\n"
            ),
            Notice::RecordConnected => format!(
                "Hello,\n\nyour patient portal account was connected to a health record\n\
                 at {when}. You can see it after signing in:\n{account}\n\n{unexpected}\n"
            ),
            Notice::EnrollmentAttempt => format!(
                "Hello,\n\nat {when} someone tried to connect another account to the\n\
                 health record that your patient portal account is connected to.\n\
                 It was not connected; the medical records (HIM) desk will review\n\
                 the attempt.\n\n\
                 If that was you or someone you asked, nothing needs to be done.\n\
                 Otherwise call the HIM desk. Your account:\n{account}\n"
            ),
            Notice::NewSignIn => format!(
                "Hello,\n\nyour patient portal account was signed in to at {when}\n\
                 from a browser or device it had not been used from before.\n\n\
                 {unexpected} Your account:\n{account}\n"
            ),
            Notice::Record(r) => r.body(origin, &when.to_string()),
        }
    }
}

/// The whole mail, or why it cannot be made (the reason never holds the address).
pub fn build(
    from: &Mailbox,
    to: &str,
    notice: &Notice,
    origin: &str,
    at: DateTime<Utc>,
) -> Result<Message, &'static str> {
    let to: Mailbox = to.parse().map_err(|_| "the account's user name is not an e-mail address")?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(notice.subject())
        .header(ContentType::TEXT_PLAIN)
        .body(Body::new(notice.body(origin, at)))
        .map_err(|_| "the mail could not be built")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_body_is_ascii_with_short_lines_and_only_a_long_link_is_encoded() {
        let at = Utc::now();
        for n in [
            Notice::VerifyEmail { link: "https://p.example/verify-email?token=abc".into(), valid_hours: 24 },
            Notice::VerifyEmail {
                link: format!("https://portal.example.org/verify-email?token={}", "ab".repeat(32)),
                valid_hours: 24,
            },
            Notice::RecordConnected,
            Notice::EnrollmentAttempt,
            Notice::NewSignIn,
        ]
        .into_iter()
        .chain(super::super::RecordNotice::examples().into_iter().map(Notice::Record))
        {
            let body = n.body("https://p.example", at);
            assert!(body.is_ascii(), "{}", n.kind());
            assert!(body.lines().filter(|l| !l.starts_with("http")).all(|l| l.len() < 76), "{}: {body}", n.kind());
            let from: Mailbox = "Portal <no-reply@p.example>".parse().unwrap();
            let raw =
                String::from_utf8(build(&from, "bob@example.org", &n, "https://p.example", at).unwrap().formatted())
                    .unwrap();
            let encoding = if body.lines().any(|l| l.len() >= 76) { "quoted-printable" } else { "7bit" };
            assert!(raw.contains(&format!("Content-Transfer-Encoding: {encoding}")), "{raw}");
            assert!(raw.contains(n.subject()), "{raw}");
        }
        let from: Mailbox = "Portal <no-reply@p.example>".parse().unwrap();
        assert!(build(&from, "not an address", &Notice::NewSignIn, "https://p.example", at).is_err());
    }
}
