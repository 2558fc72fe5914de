//! The master key: encrypts private keys at rest and derives the keys of keyed hashes.

use std::path::Path;

use base64::{engine::general_purpose::STANDARD, Engine};
use chacha20poly1305::{
    aead::{Aead, KeyInit, Payload},
    XChaCha20Poly1305, XNonce,
};
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::ExposeSecret;
use sha2::Sha256;

use crate::config::MasterKeySource;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("master key: {0}")]
    Master(String),
    #[error("a stored key cannot be decrypted with this master key")]
    Decrypt,
    #[error("a stored key is malformed: {0}")]
    Malformed(String),
    #[error("key generation failed: {0}")]
    Generate(String),
}

/// 32 secret bytes. Never printed, never logged.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

impl MasterKey {
    /// Reads the key from the configuration or its file; a missing file is created with a
    /// fresh key, readable by its owner only.
    pub fn load(source: &MasterKeySource) -> Result<MasterKey, KeyError> {
        match source {
            MasterKeySource::Inline(b64) => Self::from_base64(b64.expose_secret()),
            MasterKeySource::File(path) if path.exists() => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| KeyError::Master(format!("{}: {e}", path.display())))?;
                Self::from_base64(text.trim())
            }
            MasterKeySource::File(path) => Self::create_file(path),
        }
    }

    fn from_base64(text: &str) -> Result<MasterKey, KeyError> {
        let bytes = STANDARD
            .decode(text)
            .map_err(|_| KeyError::Master("must be base64 of 32 bytes".into()))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| KeyError::Master("must be base64 of exactly 32 bytes".into()))?;
        Ok(MasterKey(key))
    }

    fn create_file(path: &Path) -> Result<MasterKey, KeyError> {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| KeyError::Master(format!("{}: {e}", dir.display())))?;
        }
        write_private(path, STANDARD.encode(key).as_bytes())
            .map_err(|e| KeyError::Master(format!("{}: {e}", path.display())))?;
        Ok(MasterKey(key))
    }

    /// A fresh random key, for tests and tools.
    pub fn generate() -> MasterKey {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        MasterKey(key)
    }

    /// XChaCha20-Poly1305 with a random 192-bit nonce in front; `aad` binds the blob to
    /// its row so it cannot be moved to another.
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .unwrap_or_default();
        [nonce.as_slice(), &sealed].concat()
    }

    pub fn decrypt(&self, blob: &[u8], aad: &[u8]) -> Result<Vec<u8>, KeyError> {
        if blob.len() < 24 + 16 {
            return Err(KeyError::Decrypt);
        }
        let (nonce, sealed) = blob.split_at(24);
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad })
            .map_err(|_| KeyError::Decrypt)
    }

    /// A key for one purpose, so that no two uses share key material.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"connect/");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// Keyed hash (HMAC-SHA256) of codes and tokens: what storage keeps instead of the secret.
/// Without the master key, a leaked table gives nothing to try offline.
#[derive(Clone)]
pub struct SecretHasher([u8; 32]);

impl SecretHasher {
    pub fn new(master: &MasterKey) -> Self {
        Self(master.derive("secret-hash"))
    }

    pub fn hash(&self, secret: &str) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(secret.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_blobs_open_only_with_the_same_key_and_row() {
        let key = MasterKey::generate();
        let blob = key.encrypt(b"private", b"kid-1");
        assert_eq!(key.decrypt(&blob, b"kid-1").unwrap(), b"private");
        assert!(key.decrypt(&blob, b"kid-2").is_err());
        assert!(MasterKey::generate().decrypt(&blob, b"kid-1").is_err());
        let mut tampered = blob.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(key.decrypt(&tampered, b"kid-1").is_err());
    }

    #[test]
    fn a_missing_key_file_is_created_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/master.key");
        let first = MasterKey::load(&MasterKeySource::File(path.clone())).unwrap();
        let again = MasterKey::load(&MasterKeySource::File(path)).unwrap();
        assert_eq!(first.0, again.0);
        let bad = MasterKey::load(&MasterKeySource::Inline("c2hvcnQ=".to_owned().into()));
        assert!(bad.is_err());
    }

    #[test]
    fn keyed_hashes_depend_on_the_master_key() {
        let a = SecretHasher::new(&MasterKey::generate());
        let b = SecretHasher::new(&MasterKey::generate());
        assert_eq!(a.hash("code"), a.hash("code"));
        assert_ne!(a.hash("code"), b.hash("code"));
        assert_ne!(a.hash("code"), a.hash("codf"));
    }
}
