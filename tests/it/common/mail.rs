//! Mails the gateway wrote: read from a test gateway's mail folder (every test gateway
//! without its own `[mail]` section writes its mail there) or from the SMTP test server's
//! folder, and the e-mail verification a registration needs before it can enroll.

use super::{Browser, Gateway};
use std::path::Path;
use std::time::Duration;

/// One mail as it travelled: the raw text (headers and body) and the SMTP envelope's
/// recipients (empty for the folder, which has no envelope).
#[derive(Debug, Clone)]
pub struct Mail {
    pub raw: String,
    pub envelope_to: Vec<String>,
}

impl Mail {
    /// A header's value (first occurrence, unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.raw.split("\r\n\r\n").next().unwrap_or_default();
        let mut lines = head.split("\r\n").peekable();
        while let Some(line) = lines.next() {
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case(name) {
                    let mut value = v.trim().to_string();
                    while lines.peek().is_some_and(|l| l.starts_with([' ', '\t'])) {
                        value.push(' ');
                        value.push_str(lines.next().unwrap().trim());
                    }
                    return Some(value);
                }
            }
        }
        None
    }

    /// The subject, with RFC 2047 encoded words (a Spanish subject) decoded.
    pub fn subject(&self) -> String {
        decode_words(&self.header("Subject").unwrap_or_default())
    }

    /// The address in the `To` header.
    pub fn to(&self) -> String {
        let to = self.header("To").unwrap_or_default();
        match (to.find('<'), to.find('>')) {
            (Some(a), Some(b)) => to[a + 1..b].to_string(),
            _ => to,
        }
    }

    /// The body, decoded (the gateway sends 7-bit text, or quoted-printable when a link
    /// makes a line too long or the text is not ASCII, or base64; anything else is a failure).
    pub fn body(&self) -> String {
        let body = self.raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        match self.header("Content-Transfer-Encoding").as_deref() {
            Some("7bit") => body,
            Some("quoted-printable") => decode_quoted_printable(&body),
            Some("base64") => {
                use base64::Engine;
                let compact: String = body.split_whitespace().collect();
                String::from_utf8(base64::engine::general_purpose::STANDARD.decode(compact).unwrap()).unwrap()
            }
            other => panic!("a mail encoded as {other:?}: {}", self.raw),
        }
    }

    /// The subject and decoded body with each link's random `token=` value cut out (a hex
    /// token may spell anything short, such as `a1c`): what a PHI check reads.
    pub fn words(&self) -> String {
        let text = format!("{} {}", self.subject(), self.body());
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(at) = rest.find("token=") {
            out.push_str(&rest[..at + 6]);
            rest = rest[at + 6..].trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        }
        out.push_str(rest);
        out
    }

    /// Headers and decoded body: everything a reader of the mail sees.
    pub fn text(&self) -> String {
        format!("{}\r\n\r\n{}", self.raw.split("\r\n\r\n").next().unwrap_or_default(), self.body())
    }

    /// The e-mail verification link, if this mail holds one (complete).
    pub fn verification_link(&self) -> Option<String> {
        let body = self.body();
        let at = body.find("http")?;
        let link: String = body[at..].chars().take_while(|c| !c.is_whitespace()).collect();
        let token = link.split_once("/verify-email?token=")?.1;
        (token.len() == 64 && token.chars().all(|c| c.is_ascii_hexdigit())).then_some(link)
    }
}

/// Every complete mail in a gateway's mail folder (`.eml` files, as `lettre` writes them).
pub fn folder_mails(dir: &Path) -> Vec<Mail> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "eml") {
            if let Ok(raw) = std::fs::read_to_string(&path) {
                // A file still being written has no body end yet.
                if raw.contains("\r\n\r\n") && raw.ends_with('\n') {
                    found.push(Mail { raw, envelope_to: Vec::new() });
                }
            }
        }
    }
    found
}

/// Waits (polling, up to a generous limit) until `mails()` has one that `matches`.
pub async fn wait_for_mail(mut mails: impl FnMut() -> Vec<Mail>, matches: impl Fn(&Mail) -> bool) -> Mail {
    for _ in 0..1500 {
        if let Some(m) = mails().into_iter().find(&matches) {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the expected mail did not arrive; mails: {:#?}", mails());
}

/// Follows the verification link the gateway mailed to `username` in `b` (whose
/// account it confirms); the link's path is taken on this gateway's origin.
pub async fn verify_email(gw: &Gateway, b: &Browser, username: &str) {
    let dir = gw.mail_dir.clone();
    let mail = wait_for_mail(|| folder_mails(&dir), |m| m.to() == username && m.verification_link().is_some()).await;
    let link = mail.verification_link().unwrap();
    let path = &link[link.find("/verify-email").unwrap()..];
    let (status, html, _) = b.get(path).await;
    assert_eq!(status, 200, "{html}");
}

/// RFC 2045 quoted-printable: soft line breaks go, `=XX` is the byte XX.
fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("bad quoted-printable =`{hex}`")));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`) decoded; the space between two
/// of them goes, as the RFC says; other text stays.
fn decode_words(value: &str) -> String {
    use base64::Engine;
    let mut out = String::new();
    let mut previous_was_word = false;
    for (i, part) in value.split(' ').enumerate() {
        let word = part
            .strip_prefix("=?")
            .and_then(|p| p.strip_suffix("?="))
            .and_then(|p| <[&str; 3]>::try_from(p.splitn(3, '?').collect::<Vec<_>>()).ok())
            .map(|[_, encoding, text]| match encoding.to_ascii_lowercase().as_str() {
                "b" => String::from_utf8(base64::engine::general_purpose::STANDARD.decode(text).unwrap()).unwrap(),
                _ => decode_quoted_printable(&text.replace('_', " ")),
            });
        if i > 0 && !(previous_was_word && word.is_some()) {
            out.push(' ');
        }
        previous_was_word = word.is_some();
        out.push_str(word.as_deref().unwrap_or(part));
    }
    out
}
