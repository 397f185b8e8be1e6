//! Encryption at rest: a decorator that seals every object (but the bank's `config`) with
//! AES-256-GCM before it reaches the inner backend, and opens it on the way back.
//!
//! Stored form: a 12-byte random nonce, then the ciphertext with its 16-byte tag. The
//! authenticated data is `<kind>/<name>`, so an object moved or renamed in the store fails
//! to open instead of being read as another one. Locks are sealed too: they carry a
//! checkpoint in progress. `list` gives the sizes objects were put with (the plain bytes),
//! as every backend does.

use std::path::Path;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;

use super::{Backend, BackendError, Kind, ObjectInfo};

const NONCE_LEN: usize = 12;
/// The length of AES-GCM's authentication tag.
const TAG_LEN: usize = 16;
/// How much longer a sealed object is than its plain bytes: the nonce and the tag.
const SEALING_OVERHEAD: u64 = (NONCE_LEN + TAG_LEN) as u64;

/// A 256-bit bank key.
#[derive(Clone)]
pub struct BankKey([u8; 32]);

impl std::fmt::Debug for BankKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BankKey(..)")
    }
}

/// A bank key file that cannot be read or is not a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bank key file {path}: {reason}")]
pub struct KeyFileError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

/// Key material that is not a bank key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyMaterialError {
    /// Not 32 bytes, and not text either.
    #[error("{length} bytes that are neither 32 raw bytes nor text")]
    NotText {
        /// How many bytes there are.
        length: usize,
    },
    /// 64 characters that look like hex digits and do not decode.
    #[error("{0}")]
    Hex(hex::FromHexError),
    /// Text in none of the accepted forms.
    #[error("not 32 raw bytes, 64 hex digits or base64 of 32 bytes")]
    Unrecognised,
    /// Decodes, but not to 32 bytes.
    #[error("the key is {length} bytes long; it must be 32")]
    Length {
        /// How many bytes it decodes to.
        length: usize,
    },
}

impl BankKey {
    /// Reads a key file: 32 raw bytes, or 64 hex digits, or the base64 of 32 bytes
    /// (surrounding white space ignored).
    pub fn from_file(path: &Path) -> Result<Self, KeyFileError> {
        let error = |reason: String| KeyFileError {
            path: path.display().to_string(),
            reason,
        };
        let data = std::fs::read(path).map_err(|e| error(format!("cannot be read: {e}")))?;
        Self::from_bytes(&data).map_err(|e| error(e.to_string()))
    }

    /// Parses key material as [`BankKey::from_file`] does; the error says what it is
    /// instead.
    pub fn from_bytes(data: &[u8]) -> Result<Self, KeyMaterialError> {
        if let Ok(raw) = <[u8; 32]>::try_from(data) {
            return Ok(Self(raw));
        }
        let text = std::str::from_utf8(data)
            .map_err(|_| KeyMaterialError::NotText { length: data.len() })?
            .trim();
        let decoded = if text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()) {
            hex::decode(text).map_err(KeyMaterialError::Hex)?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| KeyMaterialError::Unrecognised)?
        };
        <[u8; 32]>::try_from(decoded.as_slice())
            .map(Self)
            .map_err(|_| KeyMaterialError::Length {
                length: decoded.len(),
            })
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        Self(rand::random())
    }

    /// The key as 64 hex digits (for writing a new key file).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new((&self.0).into())
    }

    /// Seals `plain` with `aad`.
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut out = nonce.to_vec();
        // Encryption with a 256-bit key and a 12-byte nonce cannot fail for inputs below
        // 64 GiB; an empty result would be refused by `open` anyway.
        if let Ok(sealed) = self
            .cipher()
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
        {
            out.extend_from_slice(&sealed);
        }
        out
    }

    /// Opens what [`BankKey::seal`] produced; `None` if the key or the data is wrong.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        self.cipher()
            .decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad })
            .ok()
    }
}

/// The encrypting decorator.
#[derive(Debug)]
pub struct CryptBackend {
    inner: Arc<dyn Backend>,
    key: BankKey,
}

impl CryptBackend {
    /// Wraps `inner` so that everything but `config` is sealed with `key`.
    pub fn new(inner: Arc<dyn Backend>, key: BankKey) -> Self {
        Self { inner, key }
    }

    fn aad(kind: Kind, name: &str) -> Vec<u8> {
        format!("{kind}/{name}").into_bytes()
    }
}

#[async_trait]
impl Backend for CryptBackend {
    fn location(&self) -> String {
        self.inner.location()
    }

    async fn put(&self, kind: Kind, name: &str, data: Bytes) -> Result<(), BackendError> {
        if kind == Kind::Config {
            return self.inner.put(kind, name, data).await;
        }
        let sealed = self.key.seal(&Self::aad(kind, name), &data);
        self.inner.put(kind, name, Bytes::from(sealed)).await
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<Bytes, BackendError> {
        let data = self.inner.get(kind, name).await?;
        if kind == Kind::Config {
            return Ok(data);
        }
        self.key
            .open(&Self::aad(kind, name), &data)
            .map(Bytes::from)
            .ok_or_else(|| BackendError::Io {
                location: self.location(),
                op: "decrypt",
                kind,
                name: name.to_string(),
                source: "authentication failed: the object was altered or sealed with another key"
                    .into(),
                transient: false,
            })
    }

    /// The objects and the sizes they were put with: a sealed object is 28 bytes (nonce and
    /// tag) longer in the inner backend (an inner object shorter
    /// than that, which cannot open, is listed as empty).
    async fn list(&self, kind: Kind) -> Result<Vec<ObjectInfo>, BackendError> {
        let mut objects = self.inner.list(kind).await?;
        if kind != Kind::Config {
            for object in &mut objects {
                object.size = object.size.saturating_sub(SEALING_OVERHEAD);
            }
        }
        Ok(objects)
    }

    async fn delete(&self, kind: Kind, name: &str) -> Result<(), BackendError> {
        self.inner.delete(kind, name).await
    }

    async fn remove_leftovers(
        &self,
        older_than: std::time::Duration,
    ) -> Result<usize, BackendError> {
        self.inner.remove_leftovers(older_than).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_from_raw_hex_and_base64() {
        let raw = [7u8; 32];
        let hex_key = BankKey::from_bytes(hex::encode(raw).as_bytes()).map(|k| k.0);
        assert_eq!(hex_key, Ok(raw));
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw) + "\n";
        assert_eq!(BankKey::from_bytes(b64.as_bytes()).map(|k| k.0), Ok(raw));
        assert_eq!(BankKey::from_bytes(&raw).map(|k| k.0), Ok(raw));
        let error = |data: &[u8]| BankKey::from_bytes(data).err().map(|e| e.to_string());
        assert_eq!(
            error(b"short").as_deref(),
            Some("not 32 raw bytes, 64 hex digits or base64 of 32 bytes")
        );
        assert_eq!(
            error(b"AAAA").as_deref(),
            Some("the key is 3 bytes long; it must be 32")
        );
        assert_eq!(
            error(&[0xff; 5]).as_deref(),
            Some("5 bytes that are neither 32 raw bytes nor text")
        );
    }

    #[test]
    fn sealed_data_opens_only_with_its_key_and_name() {
        let key = BankKey::generate();
        let sealed = key.seal(b"pack/a", b"hello");
        assert_eq!(key.open(b"pack/a", &sealed).as_deref(), Some(&b"hello"[..]));
        assert_eq!(key.open(b"pack/b", &sealed), None);
        assert_eq!(BankKey::generate().open(b"pack/a", &sealed), None);
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert_eq!(key.open(b"pack/a", &flipped), None);
    }
}
