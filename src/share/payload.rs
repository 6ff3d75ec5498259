//! The `shlink:/` a person is given: base64url of a JSON payload naming the manifest URL,
//! the link's key (32 random bytes, base64url), its expiry, flags (`P` passcode, `L`
//! long-term) and label, version 1 — as the SMART Health Links specification writes it,
//! also in its viewer form `https://…/share#shlink:/…` — and the QR code of that viewer
//! form (SVG). It reads links back (the plain web view). It never stores a key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// The payload of a `shlink:/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub url: String,
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v: Option<u32>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PayloadError {
    #[error("this is not a share link (it should contain `shlink:/`)")]
    NotALink,
    #[error("the share link is damaged (it may have been cut short when copied)")]
    Damaged,
}

const PREFIX: &str = "shlink:/";

impl Payload {
    /// `shlink:/…`.
    pub fn link(&self) -> String {
        // A struct of strings and numbers always serializes.
        let json = serde_json::to_string(self).unwrap_or_default();
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(json))
    }

    /// The viewer form: `{viewer}#shlink:/…`.
    pub fn viewer_link(&self, viewer: &str) -> String {
        format!("{viewer}#{}", self.link())
    }

    /// Reads a link in either form (surrounding spaces ignored).
    pub fn parse(text: &str) -> Result<Payload, PayloadError> {
        let text = text.trim();
        let at = text.find(PREFIX).ok_or(PayloadError::NotALink)?;
        let encoded = &text[at + PREFIX.len()..];
        let json = URL_SAFE_NO_PAD.decode(encoded.trim_end_matches('=')).map_err(|_| PayloadError::Damaged)?;
        serde_json::from_slice(&json).map_err(|_| PayloadError::Damaged)
    }

    /// The key as bytes, when it is 32 bytes of base64url.
    pub fn key_bytes(&self) -> Result<[u8; 32], PayloadError> {
        let bytes = URL_SAFE_NO_PAD.decode(&self.key).map_err(|_| PayloadError::Damaged)?;
        bytes.try_into().map_err(|_| PayloadError::Damaged)
    }

    pub fn has_flag(&self, f: char) -> bool {
        self.flag.as_deref().is_some_and(|flags| flags.contains(f))
    }
}

/// The QR code of `text` as an SVG element (no XML declaration, no inline style), or none
/// when it is too long for a QR code.
pub fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).ok()?;
    let svg = code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(240, 240).quiet_zone(true).build();
    let start = svg.find("<svg")?;
    Some(svg[start..].replacen("<svg ", "<svg role=\"img\" aria-label=\"QR code of the share link\" ", 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> Payload {
        Payload {
            url: "https://gw.example/shl/abc".into(),
            key: URL_SAFE_NO_PAD.encode([3u8; 32]),
            exp: Some(1_900_000_000),
            flag: Some("LP".into()),
            label: Some("For school".into()),
            v: Some(1),
        }
    }

    #[test]
    fn a_link_reads_back_in_both_forms() {
        let p = payload();
        let link = p.link();
        assert!(link.starts_with("shlink:/ey"), "{link}");
        assert_eq!(Payload::parse(&link).unwrap(), p);
        assert_eq!(Payload::parse(&format!("  {}\n", p.viewer_link("https://gw.example/share"))).unwrap(), p);
        assert_eq!(p.key_bytes().unwrap(), [3u8; 32]);
        assert!(p.has_flag('P') && !p.has_flag('U'));
        assert_eq!(Payload::parse("https://gw.example/share"), Err(PayloadError::NotALink));
        assert_eq!(Payload::parse("shlink:/eyJ1cmwi"), Err(PayloadError::Damaged));
    }

    #[test]
    fn the_qr_code_is_plain_svg() {
        let svg = qr_svg(&payload().viewer_link("https://gw.example/share")).unwrap();
        assert!(svg.starts_with("<svg role=\"img\"") && svg.ends_with("</svg>"), "{svg}");
        assert!(!svg.contains("style=") && !svg.contains("<script"));
    }
}
