//! Encryption at rest: a decorator that seals every object (but the bank's `config`) with
//! AES-256-GCM before it reaches the inner backend, and opens it on the way back.
//!
//! * **Packs** (bank format 4) are sealed in chunks of [`PACK_CHUNK`] plain bytes, each
//!   opened on its own, so that a ranged read (one object's frame) reads and opens only the
//!   chunks it touches. Stored form: a 16-byte header (`PBS4`, the chunk size and the pack's
//!   plain length, u32 and u64 little-endian), then each chunk as a 12-byte random nonce, its
//!   ciphertext and its 16-byte tag. A chunk's authenticated data is `pack/<name>`, a zero
//!   byte, the header and the chunk's number (u64 LE): a flipped byte, a chunk moved to
//!   another position or from another pack, and a damaged header (which says where the
//!   chunks lie) all fail to open. Recently opened chunks are kept (a few, see
//!   [`CHUNK_CACHE`]): objects read one after another out of one frame open it once.
//! * **Every other object**, and packs of format 3 and older (read whole, as they were
//!   written): a 12-byte random nonce, then the ciphertext with its 16-byte tag, the
//!   authenticated data `<kind>/<name>`. Locks are sealed too: they carry a checkpoint in
//!   progress.
//!
//! The authenticated data names the object, so that an object moved or renamed in the store
//! fails to open instead of being read as another one. `list` gives the sizes objects were
//! put with (the plain bytes), as every backend does (for a pack sealed whole by format 3 it
//! is a few bytes off: the listing cannot tell the two sealings apart, and nothing reads
//! pack sizes from it).
//!
//! A stored pack is told to be chunked by its first 8 bytes (`PBS4` and the chunk size);
//! a whole-sealed pack starts with its random nonce, which matches them once in 2^64.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

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

/// Plain bytes per sealed chunk of a pack: a frame of small objects (64 KiB plain) compresses
/// to a few KiB, so reading one object opens one or two chunks.
pub const PACK_CHUNK: u64 = 16 << 10;
/// The first bytes of a pack sealed in chunks.
const CHUNK_MAGIC: &[u8; 4] = b"PBS4";
/// The length of a chunked pack's header: magic, chunk size (u32), plain length (u64).
const HEADER_LEN: u64 = 16;
/// How many opened chunks a [`CryptBackend`] keeps (1 MiB of plain bytes).
pub const CHUNK_CACHE: usize = 64;
/// How many pack headers a [`CryptBackend`] keeps before it forgets them all.
const HEADER_CACHE: usize = 1 << 16;

/// How a stored pack is sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sealing {
    /// As one unit (format 3 and older).
    Whole,
    /// In chunks (format 4): the header, and the plain length it holds.
    Chunked {
        header: [u8; HEADER_LEN as usize],
        plain_length: u64,
    },
}

impl Sealing {
    /// The header of a pack of `plain_length` plain bytes, sealed in chunks.
    fn chunked(plain_length: u64) -> Self {
        let mut header = [0u8; HEADER_LEN as usize];
        header[..4].copy_from_slice(CHUNK_MAGIC);
        header[4..8].copy_from_slice(&(PACK_CHUNK as u32).to_le_bytes());
        header[8..].copy_from_slice(&plain_length.to_le_bytes());
        Self::Chunked {
            header,
            plain_length,
        }
    }

    /// How the stored pack that starts with `start` is sealed.
    fn of(start: &[u8]) -> Self {
        let Some(header) = start.get(..HEADER_LEN as usize) else {
            return Self::Whole;
        };
        if &header[..4] != CHUNK_MAGIC || header[4..8] != (PACK_CHUNK as u32).to_le_bytes() {
            return Self::Whole;
        }
        let mut length = [0u8; 8];
        length.copy_from_slice(&header[8..]);
        Self::chunked(u64::from_le_bytes(length))
    }
}

/// How many chunks a pack of `plain_length` bytes is sealed in (an empty pack: one empty
/// chunk, so that its header is authenticated too).
fn chunk_count(plain_length: u64) -> u64 {
    plain_length.div_ceil(PACK_CHUNK).max(1)
}

/// Where sealed chunk `index` starts in the stored pack.
fn chunk_offset(index: u64) -> u64 {
    HEADER_LEN + index * (PACK_CHUNK + SEALING_OVERHEAD)
}

/// The plain length of chunk `index` of a pack of `plain_length` bytes.
fn chunk_length(plain_length: u64, index: u64) -> u64 {
    plain_length
        .saturating_sub(index * PACK_CHUNK)
        .min(PACK_CHUNK)
}

/// The stored length of a pack of `plain_length` bytes sealed in chunks.
fn chunked_length(plain_length: u64) -> u64 {
    HEADER_LEN + plain_length + chunk_count(plain_length) * SEALING_OVERHEAD
}

/// The plain length of a chunked pack stored in `stored` bytes (the inverse of
/// [`chunked_length`]).
fn chunked_plain_length(stored: u64) -> u64 {
    let sealed = stored.saturating_sub(HEADER_LEN);
    let chunks = sealed.div_ceil(PACK_CHUNK + SEALING_OVERHEAD).max(1);
    sealed.saturating_sub(chunks * SEALING_OVERHEAD)
}

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
pub struct CryptBackend {
    inner: Arc<dyn Backend>,
    key: BankKey,
    cipher: Aes256Gcm,
    /// How each pack read so far is sealed (packs are named by their plain hash: a name
    /// always has the same header).
    sealings: Mutex<HashMap<String, Sealing>>,
    /// The chunks opened last, newest at the back: (pack, chunk number) and plain bytes.
    chunks: Mutex<VecDeque<((String, u64), Bytes)>>,
}

impl std::fmt::Debug for CryptBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CryptBackend")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl CryptBackend {
    /// Wraps `inner` so that everything but `config` is sealed with `key`.
    pub fn new(inner: Arc<dyn Backend>, key: BankKey) -> Self {
        let cipher = key.cipher();
        Self {
            inner,
            key,
            cipher,
            sealings: Mutex::new(HashMap::new()),
            chunks: Mutex::new(VecDeque::with_capacity(CHUNK_CACHE)),
        }
    }

    fn aad(kind: Kind, name: &str) -> Vec<u8> {
        format!("{kind}/{name}").into_bytes()
    }

    /// The authenticated data of chunk `index` of pack `name` with `header`.
    fn chunk_aad(name: &str, header: &[u8], index: u64) -> Vec<u8> {
        let mut aad = Self::aad(Kind::Pack, name);
        aad.push(0);
        aad.extend_from_slice(header);
        aad.extend_from_slice(&index.to_le_bytes());
        aad
    }

    /// An object that does not open: altered, moved, or sealed with another key.
    fn sealing_error(&self, kind: Kind, name: &str, what: String) -> BackendError {
        BackendError::Io {
            location: self.location(),
            op: "decrypt",
            kind,
            name: name.to_string(),
            source: what.into(),
            transient: false,
        }
    }

    /// Seals a pack in chunks (see the module's doc).
    fn seal_pack(&self, name: &str, plain: &[u8]) -> Vec<u8> {
        let sealing = Sealing::chunked(plain.len() as u64);
        let Sealing::Chunked { header, .. } = sealing else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(
            usize::try_from(chunked_length(plain.len() as u64)).unwrap_or(plain.len()),
        );
        out.extend_from_slice(&header);
        let chunks: Vec<&[u8]> = if plain.is_empty() {
            vec![&[]]
        } else {
            plain.chunks(PACK_CHUNK as usize).collect()
        };
        for (index, chunk) in chunks.into_iter().enumerate() {
            let aad = Self::chunk_aad(name, &header, index as u64);
            let nonce: [u8; NONCE_LEN] = rand::random();
            out.extend_from_slice(&nonce);
            // Cannot fail below 64 GiB; a chunk left short fails to open.
            if let Ok(sealed) = self.cipher.encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: chunk,
                    aad: &aad,
                },
            ) {
                out.extend_from_slice(&sealed);
            }
        }
        out
    }

    /// Opens chunk `index` of pack `name` from its sealed bytes.
    fn open_chunk(
        &self,
        name: &str,
        header: &[u8],
        plain_length: u64,
        index: u64,
        sealed: &[u8],
    ) -> Result<Bytes, BackendError> {
        let aad = Self::chunk_aad(name, header, index);
        let opened = sealed
            .split_at_checked(NONCE_LEN)
            .and_then(|(nonce, body)| {
                self.cipher
                    .decrypt(
                        Nonce::from_slice(nonce),
                        Payload {
                            msg: body,
                            aad: &aad,
                        },
                    )
                    .ok()
            });
        opened.map(Bytes::from).ok_or_else(|| {
            self.sealing_error(
                Kind::Pack,
                name,
                format!(
                    "sealed chunk {index} of {} does not open (authentication failed): the \
                     pack was altered, the chunk moved from another position or pack, or it \
                     was sealed with another key",
                    chunk_count(plain_length)
                ),
            )
        })
    }

    /// Opens a whole pack sealed in chunks.
    fn open_pack(
        &self,
        name: &str,
        data: &[u8],
        header: &[u8],
        plain_length: u64,
    ) -> Result<Bytes, BackendError> {
        let expected = chunked_length(plain_length);
        if data.len() as u64 != expected {
            return Err(self.sealing_error(
                Kind::Pack,
                name,
                format!(
                    "{} bytes stored where its header says {expected}: truncated, extended or \
                     a damaged header",
                    data.len()
                ),
            ));
        }
        let mut plain = Vec::with_capacity(usize::try_from(plain_length).unwrap_or(0));
        for index in 0..chunk_count(plain_length) {
            let start = chunk_offset(index) as usize;
            let end = start + (chunk_length(plain_length, index) + SEALING_OVERHEAD) as usize;
            let chunk = self.open_chunk(name, header, plain_length, index, &data[start..end])?;
            plain.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(plain))
    }

    /// How pack `name` is sealed: from the cache, or from its first bytes.
    async fn sealing(&self, name: &str) -> Result<Sealing, BackendError> {
        if let Some(known) = self.sealings.lock().ok().and_then(|m| m.get(name).copied()) {
            return Ok(known);
        }
        let start = self
            .inner
            .get_range(Kind::Pack, name, 0, HEADER_LEN)
            .await?;
        let sealing = Sealing::of(&start);
        if let Ok(mut known) = self.sealings.lock() {
            if known.len() >= HEADER_CACHE {
                known.clear();
            }
            known.insert(name.to_string(), sealing);
        }
        Ok(sealing)
    }

    /// Forgets what is cached of pack `name` (written again or deleted).
    fn forget(&self, name: &str) {
        if let Ok(mut known) = self.sealings.lock() {
            known.remove(name);
        }
        if let Ok(mut chunks) = self.chunks.lock() {
            chunks.retain(|((pack, _), _)| pack != name);
        }
    }

    fn cached_chunk(&self, name: &str, index: u64) -> Option<Bytes> {
        let chunks = self.chunks.lock().ok()?;
        chunks
            .iter()
            .rev()
            .find(|((pack, at), _)| *at == index && pack == name)
            .map(|(_, plain)| plain.clone())
    }

    fn cache_chunk(&self, name: &str, index: u64, plain: Bytes) {
        if let Ok(mut chunks) = self.chunks.lock() {
            if chunks.len() >= CHUNK_CACHE {
                chunks.pop_front();
            }
            chunks.push_back(((name.to_string(), index), plain));
        }
    }

    /// A range of a pack sealed in chunks: reads and opens only the chunks it touches (none
    /// that were opened lately).
    async fn chunked_range(
        &self,
        name: &str,
        header: &[u8],
        plain_length: u64,
        offset: u64,
        length: u64,
    ) -> Result<Bytes, BackendError> {
        if offset
            .checked_add(length)
            .is_none_or(|end| end > plain_length)
        {
            return Err(BackendError::Io {
                location: self.location(),
                op: "get_range",
                kind: Kind::Pack,
                name: name.to_string(),
                source: format!(
                    "range {offset}+{length} is past the end of the object ({plain_length} bytes)"
                )
                .into(),
                transient: false,
            });
        }
        if length == 0 {
            return Ok(Bytes::new());
        }
        let (first, last) = (offset / PACK_CHUNK, (offset + length - 1) / PACK_CHUNK);
        let mut opened: Vec<Option<Bytes>> = (first..=last)
            .map(|index| self.cached_chunk(name, index))
            .collect();
        if opened.iter().any(Option::is_none) {
            let start = chunk_offset(first);
            let end = chunk_offset(last) + chunk_length(plain_length, last) + SEALING_OVERHEAD;
            let sealed = self
                .inner
                .get_range(Kind::Pack, name, start, end - start)
                .await?;
            for (slot, index) in opened.iter_mut().zip(first..=last) {
                if slot.is_some() {
                    continue;
                }
                let at = (chunk_offset(index) - start) as usize;
                let len = (chunk_length(plain_length, index) + SEALING_OVERHEAD) as usize;
                let Some(bytes) = sealed.get(at..at + len) else {
                    return Err(self.sealing_error(
                        Kind::Pack,
                        name,
                        format!("sealed chunk {index} is cut short"),
                    ));
                };
                let plain = self.open_chunk(name, header, plain_length, index, bytes)?;
                self.cache_chunk(name, index, plain.clone());
                *slot = Some(plain);
            }
        }
        let skip = (offset - first * PACK_CHUNK) as usize;
        let take = length as usize;
        if let [Some(only)] = opened.as_slice() {
            return Ok(only.slice(skip..skip + take));
        }
        let mut out = Vec::with_capacity(take);
        for plain in opened.into_iter().flatten() {
            out.extend_from_slice(&plain);
        }
        Ok(Bytes::from(out).slice(skip..skip + take))
    }

    /// A range of an object sealed whole: the whole object is read and opened.
    async fn whole_range(
        &self,
        kind: Kind,
        name: &str,
        offset: u64,
        length: u64,
    ) -> Result<Bytes, BackendError> {
        let all = self.get(kind, name).await?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let end = start.saturating_add(usize::try_from(length).unwrap_or(usize::MAX));
        if end > all.len() {
            return Err(BackendError::Io {
                location: self.location(),
                op: "get_range",
                kind,
                name: name.to_string(),
                source: format!(
                    "range {offset}+{length} is past the end of the object ({} bytes)",
                    all.len()
                )
                .into(),
                transient: false,
            });
        }
        Ok(all.slice(start..end))
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
        let sealed = if kind == Kind::Pack {
            self.forget(name);
            self.seal_pack(name, &data)
        } else {
            self.key.seal(&Self::aad(kind, name), &data)
        };
        self.inner.put(kind, name, Bytes::from(sealed)).await
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<Bytes, BackendError> {
        let data = self.inner.get(kind, name).await?;
        if kind == Kind::Config {
            return Ok(data);
        }
        if kind == Kind::Pack {
            if let Sealing::Chunked {
                header,
                plain_length,
            } = Sealing::of(&data)
            {
                return self.open_pack(name, &data, &header, plain_length);
            }
        }
        self.key
            .open(&Self::aad(kind, name), &data)
            .map(Bytes::from)
            .ok_or_else(|| {
                self.sealing_error(
                    kind,
                    name,
                    "authentication failed: the object was altered or sealed with another key"
                        .into(),
                )
            })
    }

    /// A pack sealed in chunks: its header (once per pack), then the chunks the range
    /// touches. Anything else: the whole object, read and opened.
    async fn get_range(
        &self,
        kind: Kind,
        name: &str,
        offset: u64,
        length: u64,
    ) -> Result<Bytes, BackendError> {
        if kind == Kind::Pack {
            if let Sealing::Chunked {
                header,
                plain_length,
            } = self.sealing(name).await?
            {
                return self
                    .chunked_range(name, &header, plain_length, offset, length)
                    .await;
            }
        }
        self.whole_range(kind, name, offset, length).await
    }

    /// The objects and the sizes they were put with: a sealed object is 28 bytes (nonce and
    /// tag) longer in the inner backend, a pack 16 bytes (header) and 28 bytes per chunk
    /// (an inner object shorter than that, which cannot open, is listed as empty).
    async fn list(&self, kind: Kind) -> Result<Vec<ObjectInfo>, BackendError> {
        let mut objects = self.inner.list(kind).await?;
        for object in &mut objects {
            object.size = match kind {
                Kind::Config => object.size,
                Kind::Pack => chunked_plain_length(object.size),
                _ => object.size.saturating_sub(SEALING_OVERHEAD),
            };
        }
        Ok(objects)
    }

    async fn delete(&self, kind: Kind, name: &str) -> Result<(), BackendError> {
        if kind == Kind::Pack {
            self.forget(name);
        }
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
    fn chunked_lengths_invert() {
        for plain in [
            0,
            1,
            100,
            PACK_CHUNK - 1,
            PACK_CHUNK,
            PACK_CHUNK + 1,
            5 * PACK_CHUNK,
            4 << 20,
        ] {
            assert_eq!(
                chunked_plain_length(chunked_length(plain)),
                plain,
                "{plain}"
            );
        }
        assert_eq!(chunk_count(0), 1);
        assert_eq!(chunk_count(PACK_CHUNK + 1), 2);
        assert_eq!(chunk_length(PACK_CHUNK + 5, 1), 5);
        let Sealing::Chunked { header, .. } = Sealing::chunked(77) else {
            panic!("not chunked");
        };
        assert_eq!(Sealing::of(&header), Sealing::chunked(77));
        let mut foreign = header;
        foreign[5] ^= 1;
        assert_eq!(Sealing::of(&foreign), Sealing::Whole);
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
