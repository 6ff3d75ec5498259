//! The key-encryption key (KEK): the one secret that never lives in the database. It seals
//! the gateway's private signing keys at rest (AES-256-GCM, the key id as associated data,
//! so a sealed key moved to another row does not open) and keys the hashes of activation
//! codes (HMAC-SHA-256 with a subkey derived by HKDF), so a dump of the database alone holds
//! no usable private key and allows no offline guessing of codes. It comes from the
//! environment (`PORTICO_KEY_ENCRYPTION_KEY`, base64 of 32 bytes) or from `[auth] key_file`
//! (created on first start only when `create_key_file = true`, as the demo does, mode 0600).
//! Without either the gateway refuses to start. It must never log, print or store the key.

use crate::config::Config;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The environment variable holding the KEK (base64 of 32 bytes).
pub const KEK_ENV: &str = "PORTICO_KEY_ENCRYPTION_KEY";
/// Prefix of a sealed value: version 1 is AES-256-GCM, base64(nonce ‖ ciphertext ‖ tag).
const SEALED_V1: &str = "kek1:";
const NONCE_LEN: usize = 12;
/// HKDF `info` of the subkeys derived from the KEK (one per use).
const SEALING_INFO: &[u8] = b"portico key sealing v1";
const CODES_INFO: &[u8] = b"portico activation codes v1";

/// Why the KEK or a sealed value is unusable; every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error(
        "no key-encryption key: set {KEK_ENV} to base64 of 32 random bytes (e.g. `openssl rand -base64 32`) \
         or name a file with [auth] key_file; the gateway will not keep its signing keys in the database alone"
    )]
    Missing,
    #[error("{origin}: the key-encryption key must be base64 of exactly 32 bytes")]
    Malformed { origin: String },
    #[error("cannot read the key-encryption key file {path}: {problem}")]
    Unreadable { path: String, problem: std::io::Error },
    #[error("cannot create the key-encryption key file {path}: {problem}")]
    Create { path: String, problem: std::io::Error },
    #[error("the key-encryption key file {path} may be read by other users (mode {mode:o}); `chmod 600` it")]
    Exposed { path: String, mode: u32 },
    #[error(
        "signing key {kid} in the database does not open with the key-encryption key from {origin}: \
         start the gateway with the key it was sealed with"
    )]
    WrongKey { kid: String, origin: String },
    #[error("signing key {kid} in the database is neither sealed nor a PEM key")]
    NotSealed { kid: String },
    #[error("cannot seal signing key {kid}")]
    Seal { kid: String },
}

/// The KEK and the subkeys derived from it.
pub struct KeyEncryptionKey {
    sealing: Zeroizing<[u8; 32]>,
    codes: Zeroizing<[u8; 32]>,
    /// Where it came from (an environment variable or a file), for error messages.
    origin: String,
}

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyEncryptionKey(from {})", self.origin)
    }
}

impl KeyEncryptionKey {
    /// The KEK the config names: the environment variable first, else `auth.key_file`
    /// (created with a fresh random key when missing and `auth.create_key_file` is set).
    pub fn load(config: &Config) -> Result<KeyEncryptionKey, KeyringError> {
        if let Some(value) = &config.key_encryption_key {
            return Self::from_base64(value.reveal(), KEK_ENV);
        }
        let Some(file) = &config.auth.key_file else { return Err(KeyringError::Missing) };
        let path = PathBuf::from(file);
        if !path.exists() && config.auth.create_key_file {
            create_key_file(&path)?;
        }
        let shown = path.display().to_string();
        check_private(&path)?;
        let text = Zeroizing::new(
            std::fs::read_to_string(&path)
                .map_err(|problem| KeyringError::Unreadable { path: shown.clone(), problem })?,
        );
        Self::from_base64(text.trim(), &shown)
    }

    /// Whether [`Self::load`] would find a key, without creating a file (`check-config`).
    pub fn check(config: &Config) -> Result<(), KeyringError> {
        match &config.auth.key_file {
            _ if config.key_encryption_key.is_some() => Self::load(config).map(|_| ()),
            Some(file) if !Path::new(file).exists() && config.auth.create_key_file => Ok(()),
            Some(_) => Self::load(config).map(|_| ()),
            None => Err(KeyringError::Missing),
        }
    }

    /// A KEK from its base64 text; `origin` names where it came from.
    pub fn from_base64(text: &str, origin: &str) -> Result<KeyEncryptionKey, KeyringError> {
        let malformed = || KeyringError::Malformed { origin: origin.to_string() };
        let bytes = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| malformed())?);
        let master: [u8; 32] = bytes.as_slice().try_into().map_err(|_| malformed())?;
        let master = Zeroizing::new(master);
        let hk = hkdf::Hkdf::<Sha256>::new(None, master.as_slice());
        let (mut sealing, mut codes) = (Zeroizing::new([0u8; 32]), Zeroizing::new([0u8; 32]));
        hk.expand(SEALING_INFO, sealing.as_mut_slice()).map_err(|_| malformed())?;
        hk.expand(CODES_INFO, codes.as_mut_slice()).map_err(|_| malformed())?;
        Ok(KeyEncryptionKey { sealing, codes, origin: origin.to_string() })
    }

    /// Where the key came from (for messages; never the key).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Seals a private key (PEM) under `kid`: `kek1:` + base64(nonce ‖ ciphertext).
    pub fn seal(&self, kid: &str, plaintext: &str) -> Result<String, KeyringError> {
        let cipher = Aes256Gcm::new_from_slice(self.sealing.as_slice())
            .map_err(|_| KeyringError::Seal { kid: kid.to_string() })?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext.as_bytes(), aad: kid.as_bytes() })
            .map_err(|_| KeyringError::Seal { kid: kid.to_string() })?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{SEALED_V1}{}", STANDARD.encode(out)))
    }

    /// Opens what [`Self::seal`] made for `kid`.
    pub fn open(&self, kid: &str, sealed: &str) -> Result<Zeroizing<String>, KeyringError> {
        let Some(body) = sealed.strip_prefix(SEALED_V1) else {
            return Err(KeyringError::NotSealed { kid: kid.to_string() });
        };
        let wrong = || KeyringError::WrongKey { kid: kid.to_string(), origin: self.origin.clone() };
        let bytes = STANDARD.decode(body).map_err(|_| KeyringError::NotSealed { kid: kid.to_string() })?;
        if bytes.len() <= NONCE_LEN {
            return Err(KeyringError::NotSealed { kid: kid.to_string() });
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let cipher = Aes256Gcm::new_from_slice(self.sealing.as_slice()).map_err(|_| wrong())?;
        let plain = Zeroizing::new(
            cipher
                .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: kid.as_bytes() })
                .map_err(|_| wrong())?,
        );
        String::from_utf8(plain.to_vec()).map(Zeroizing::new).map_err(|_| wrong())
    }

    /// Whether a stored value is sealed (rather than a PEM in clear from earlier versions).
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(SEALED_V1)
    }

    /// The keyed hash an activation code is stored and looked up by (hex HMAC-SHA-256).
    pub fn code_mac(&self, normalised_code: &str) -> String {
        // HMAC takes keys of any length; new_from_slice cannot fail for it.
        match <Hmac<Sha256> as Mac>::new_from_slice(self.codes.as_slice()) {
            Ok(mut mac) => {
                mac.update(normalised_code.as_bytes());
                hex::encode(mac.finalize().into_bytes())
            }
            Err(_) => String::new(),
        }
    }
}

/// A new key file with 32 random bytes (base64), readable by its owner only.
fn create_key_file(path: &Path) -> Result<(), KeyringError> {
    let shown = path.display().to_string();
    let create = |problem| KeyringError::Create { path: shown.clone(), problem };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(create)?;
    }
    let mut key = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(key.as_mut_slice());
    let text = Zeroizing::new(format!("{}\n", STANDARD.encode(key.as_slice())));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = match options.open(path) {
        Ok(f) => f,
        // Another process made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(create(e)),
    };
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(create)?;
    tracing::info!(path = %shown, "created a key-encryption key file (keep it with the database's backups, apart from them)");
    Ok(())
}

/// Refuses a key file that group or others may read.
fn check_private(path: &Path) -> Result<(), KeyringError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let shown = path.display().to_string();
        let meta =
            std::fs::metadata(path).map_err(|problem| KeyringError::Unreadable { path: shown.clone(), problem })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyringError::Exposed { path: shown, mode });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek(byte: u8) -> KeyEncryptionKey {
        KeyEncryptionKey::from_base64(&STANDARD.encode([byte; 32]), "test").unwrap()
    }

    #[test]
    fn sealed_keys_open_only_with_the_same_kek_and_kid() {
        let sealed = kek(1).seal("kid-a", "-----BEGIN PRIVATE KEY-----\nabc\n").unwrap();
        assert!(KeyEncryptionKey::is_sealed(&sealed));
        assert!(!sealed.contains("PRIVATE KEY"));
        assert_eq!(kek(1).open("kid-a", &sealed).unwrap().as_str(), "-----BEGIN PRIVATE KEY-----\nabc\n");
        assert!(matches!(kek(2).open("kid-a", &sealed), Err(KeyringError::WrongKey { .. })));
        assert!(matches!(kek(1).open("kid-b", &sealed), Err(KeyringError::WrongKey { .. })));
        assert!(matches!(kek(1).open("kid-a", "-----BEGIN"), Err(KeyringError::NotSealed { .. })));
    }

    #[test]
    fn code_macs_depend_on_the_kek() {
        assert_eq!(kek(1).code_mac("ABCDE12345"), kek(1).code_mac("ABCDE12345"));
        assert_ne!(kek(1).code_mac("ABCDE12345"), kek(2).code_mac("ABCDE12345"));
        assert_ne!(kek(1).code_mac("ABCDE12345"), kek(1).code_mac("ABCDE12346"));
        assert_eq!(kek(1).code_mac("X").len(), 64);
    }

    #[test]
    fn a_kek_must_be_32_bytes_of_base64() {
        for bad in ["", "not base64!", &STANDARD.encode([0u8; 16]), &STANDARD.encode([0u8; 33])] {
            assert!(matches!(KeyEncryptionKey::from_base64(bad, "X"), Err(KeyringError::Malformed { .. })), "{bad}");
        }
    }
}
