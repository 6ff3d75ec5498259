//! The encrypted files of a share link: JWE compact serialization (RFC 7516 §7.1) with
//! direct encryption (`"alg": "dir"`) under the link's 256-bit key and AES-256-GCM
//! (`"enc": "A256GCM"`, RFC 7518 §5.3), as the SMART Health Links specification asks. The
//! cipher is the `aes-gcm` crate's; this file only lays out the five parts (header,
//! empty encrypted key, IV, ciphertext, tag) with the header as associated data. It never
//! keeps or logs a key, and it does not compress (`zip` is optional in the specification).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde_json::{json, Value};

const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JweError {
    #[error("not a compact JWE")]
    Malformed,
    #[error("the JWE uses algorithms other than dir + A256GCM")]
    Unsupported,
    #[error("the file does not open with this key")]
    WrongKey,
    #[error("cannot encrypt")]
    Encrypt,
}

/// Encrypts `plaintext` for `key`, naming its media type in `cty`.
pub fn encrypt(key: &[u8; 32], content_type: &str, plaintext: &[u8]) -> Result<String, JweError> {
    let header = json!({"alg": "dir", "enc": "A256GCM", "cty": content_type});
    let protected = URL_SAFE_NO_PAD.encode(header.to_string());
    let mut iv = [0u8; IV_LEN];
    rand::rngs::OsRng.fill_bytes(&mut iv);
    let cipher = Aes256Gcm::new(key.into());
    let sealed = cipher
        .encrypt(Nonce::from_slice(&iv), Payload { msg: plaintext, aad: protected.as_bytes() })
        .map_err(|_| JweError::Encrypt)?;
    let (ciphertext, tag) = sealed.split_at(sealed.len() - TAG_LEN);
    Ok(format!(
        "{protected}..{}.{}.{}",
        URL_SAFE_NO_PAD.encode(iv),
        URL_SAFE_NO_PAD.encode(ciphertext),
        URL_SAFE_NO_PAD.encode(tag)
    ))
}

/// Opens a compact JWE made by [`encrypt`] (or any `dir` + `A256GCM` JWE without `zip`):
/// its header and plaintext.
pub fn decrypt(key: &[u8; 32], jwe: &str) -> Result<(Value, Vec<u8>), JweError> {
    let parts: Vec<&str> = jwe.trim().split('.').collect();
    let [protected, encrypted_key, iv, ciphertext, tag] = parts.as_slice() else { return Err(JweError::Malformed) };
    let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).map_err(|_| JweError::Malformed);
    let header: Value = serde_json::from_slice(&decode(protected)?).map_err(|_| JweError::Malformed)?;
    if header["alg"] != "dir" || header["enc"] != "A256GCM" || header.get("zip").is_some() || !encrypted_key.is_empty()
    {
        return Err(JweError::Unsupported);
    }
    let iv = decode(iv)?;
    let tag = decode(tag)?;
    if iv.len() != IV_LEN || tag.len() != TAG_LEN {
        return Err(JweError::Malformed);
    }
    let mut sealed = decode(ciphertext)?;
    sealed.extend_from_slice(&tag);
    let cipher = Aes256Gcm::new(key.into());
    let plain = cipher
        .decrypt(Nonce::from_slice(&iv), Payload { msg: &sealed, aad: protected.as_bytes() })
        .map_err(|_| JweError::WrongKey)?;
    Ok((header, plain))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_opens_with_its_key_only() {
        let key = [7u8; 32];
        let jwe = encrypt(&key, "application/fhir+json", br#"{"resourceType":"Bundle"}"#).unwrap();
        let parts: Vec<&str> = jwe.split('.').collect();
        assert_eq!(parts.len(), 5);
        assert!(parts[1].is_empty(), "dir: no encrypted key");
        let (header, plain) = decrypt(&key, &jwe).unwrap();
        assert_eq!(header["cty"], "application/fhir+json");
        assert_eq!(plain, br#"{"resourceType":"Bundle"}"#);
        assert_eq!(decrypt(&[8u8; 32], &jwe), Err(JweError::WrongKey));
        assert_ne!(encrypt(&key, "a/b", b"x").unwrap(), encrypt(&key, "a/b", b"x").unwrap(), "a fresh IV each time");
    }

    #[test]
    fn a_changed_header_or_body_does_not_open() {
        let key = [1u8; 32];
        let jwe = encrypt(&key, "application/fhir+json", b"hello").unwrap();
        let parts: Vec<&str> = jwe.split('.').collect();
        let other_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"dir","enc":"A256GCM","cty":"text/plain"}"#);
        let swapped = format!("{other_header}..{}.{}.{}", parts[2], parts[3], parts[4]);
        assert_eq!(decrypt(&key, &swapped), Err(JweError::WrongKey));
        assert_eq!(decrypt(&key, "a.b.c"), Err(JweError::Malformed));
        let rsa = URL_SAFE_NO_PAD.encode(r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#);
        assert_eq!(
            decrypt(&key, &format!("{rsa}..{}.{}.{}", parts[2], parts[3], parts[4])),
            Err(JweError::Unsupported)
        );
    }
}
