//! The texts of the security mails. Each is made from a [`Notice`] (which holds no patient
//! data by construction), the gateway's origin, the time and the account's language, with
//! the words from the catalogue (`locales/*/mail.ftl`): nothing else can get in.

use crate::i18n::{text_in, Lang};
use chrono::{DateTime, Utc};
use fluent_bundle::FluentValue;
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

    /// The subject line in `lang`.
    pub fn subject(&self, lang: Lang) -> String {
        text_in(
            lang,
            match self {
                Notice::VerifyEmail { .. } => "mail-verify-subject",
                Notice::RecordConnected => "mail-connected-subject",
                Notice::EnrollmentAttempt => "mail-attempt-subject",
                Notice::NewSignIn => "mail-sign-in-subject",
                Notice::Record(r) => return r.subject(lang),
            },
            &[],
        )
    }

    /// The plain-text body in `lang` (lines under 76 characters except a link's; English is
    /// ASCII, so it goes as 7-bit text, or quoted-printable when a link is longer).
    pub fn body(&self, origin: &str, at: DateTime<Utc>, lang: Lang) -> String {
        let when = FluentValue::from(crate::i18n::long_utc(lang, at));
        let account = FluentValue::from(format!("{origin}/account"));
        let mut body = match self {
            Notice::VerifyEmail { link, valid_hours } => text_in(
                lang,
                "mail-verify-body",
                &[("when", when), ("link", link.as_str().into()), ("hours", (*valid_hours).into())],
            ),
            Notice::RecordConnected => text_in(lang, "mail-connected-body", &[("when", when), ("account", account)]),
            Notice::EnrollmentAttempt => text_in(lang, "mail-attempt-body", &[("when", when), ("account", account)]),
            Notice::NewSignIn => text_in(lang, "mail-sign-in-body", &[("when", when), ("account", account)]),
            Notice::Record(r) => r.body(origin, at, lang),
        };
        body.push('\n');
        body
    }
}

/// The whole mail in `lang`, or why it cannot be made (the reason never holds the address).
pub fn build(
    from: &Mailbox,
    to: &str,
    notice: &Notice,
    origin: &str,
    at: DateTime<Utc>,
    lang: Lang,
) -> Result<Message, &'static str> {
    let to: Mailbox = to.parse().map_err(|_| "the account's user name is not an e-mail address")?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(notice.subject(lang))
        .header(ContentType::TEXT_PLAIN)
        .body(Body::new(notice.body(origin, at, lang)))
        .map_err(|_| "the mail could not be built")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_body_has_short_lines_english_is_ascii_and_only_a_long_link_is_encoded() {
        let at = Utc::now();
        for lang in Lang::ALL {
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
                let body = n.body("https://p.example", at, lang);
                assert!(body.is_ascii() || lang != Lang::En, "{}", n.kind());
                assert!(
                    body.lines().filter(|l| !l.starts_with("http")).all(|l| l.chars().count() < 76),
                    "{}: {body}",
                    n.kind()
                );
                assert!(body.contains("https://p.example") || matches!(n, Notice::VerifyEmail { .. }), "{body}");
                let from: Mailbox = "Portal <no-reply@p.example>".parse().unwrap();
                let raw = String::from_utf8(
                    build(&from, "bob@example.org", &n, "https://p.example", at, lang).unwrap().formatted(),
                )
                .unwrap();
                if lang == Lang::En {
                    let encoding = if body.lines().any(|l| l.len() >= 76) { "quoted-printable" } else { "7bit" };
                    assert!(raw.contains(&format!("Content-Transfer-Encoding: {encoding}")), "{raw}");
                    assert!(raw.contains(&n.subject(lang)), "{raw}");
                }
            }
        }
        let from: Mailbox = "Portal <no-reply@p.example>".parse().unwrap();
        assert!(build(&from, "not an address", &Notice::NewSignIn, "https://p.example", at, Lang::En).is_err());
    }

    #[test]
    fn spanish_mails_are_in_spanish_with_the_date_in_words() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-03T14:05:00Z").unwrap().with_timezone(&Utc);
        let body = Notice::NewSignIn.body("https://p.example", at, Lang::Es);
        assert!(body.starts_with("Hola:"), "{body}");
        assert!(body.contains("3 de diciembre de 2026"), "{body}");
        assert!(Notice::NewSignIn.subject(Lang::Es).contains("inicio de sesión"));
    }

    #[test]
    fn a_mail_sent_on_an_eighteenth_birthday_does_not_give_the_day() {
        use super::super::{Audience, Ending, RecordNotice};
        let at = chrono::DateTime::parse_from_rfc3339("2032-06-15T00:00:01Z").unwrap().with_timezone(&Utc);
        for lang in Lang::ALL {
            for to in [Audience::Proxy, Audience::Patient] {
                let body = RecordNotice::AccessEnded { to, why: Ending::Adult }.body("https://p.example", at, lang);
                assert!(!body.contains("15") && !body.contains("2032"), "{body}");
            }
        }
    }
}
