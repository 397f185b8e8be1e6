//! The bank's records on the wire: the prost types compiled from `proto/bank.proto`, how a
//! record becomes stored bytes and back, and how a pack names what it holds.
//!
//! * A **record** (manifest, index file, restore record, lock) is stored as `PBR3` + the
//!   sha256 of what follows + its protobuf bytes zstd-compressed, with zstd's checksum of
//!   the plain bytes. Every read checks both: a flipped byte anywhere is reported as damage
//!   of that file, never read as a different record. Records of formats 1 and 2 (a bare zstd
//!   frame, no checksum) are still read.
//! * The **config** is plain protobuf (an older podbank must still read its version and
//!   refuse the bank by name); since format 3 it carries the sha256 of itself with that field
//!   empty.
//! * A **pack** is zstd frames back to back, then (since format 3) a trailer that says what
//!   the pack holds: a record of its index entries, its length (u32, little-endian) and the
//!   magic `PBPK`. A lost or damaged index file can so be rebuilt from the packs alone.

use bytes::Bytes;
use prost::Message;
use sha2::{Digest, Sha256};

/// The prost types of `proto/bank.proto`.
#[allow(missing_docs, clippy::doc_markdown, clippy::all)]
pub(crate) mod pb {
    include!(concat!(env!("OUT_DIR"), "/podbank.bank.v1.rs"));
}

/// Format version written in the bank's config. Version 2 packs small objects several to a
/// zstd frame (`IndexEntry.offset_in_frame`); version 3 checksums every record, ends every
/// pack with a trailer naming its objects, and names index files by a random id; version 4
/// seals the packs of an encrypted bank in chunks that open on their own, so that an object
/// is read without its whole pack (`backend/crypt.rs`; plain banks are written as in 3).
pub const FORMAT_VERSION: u32 = 4;

/// The oldest format this podbank reads (and upgrades when it writes).
pub const OLDEST_FORMAT_VERSION: u32 = 1;

/// Plain bytes of small objects that share one zstd frame: one set of entropy tables per
/// ~40 pods instead of one per pod (most of the cost of compressing a small object), and
/// what they have in common compressed once. An object this large or larger gets a frame
/// of its own; reading an object decompresses at most its frame.
pub const FRAME_TARGET: usize = 64 << 10;

/// Largest frame we accept to decompress (a corrupt header must not ask for more).
const MAX_FRAME: u64 = 1 << 30;

/// zstd level for packs and records: level 1 compresses small protobuf pods about as well
/// as level 3 (a few % bigger) at a much lower cost per object.
pub const ZSTD_LEVEL: i32 = 1;

/// Largest plain record we accept to decompress (a manifest of 1M resources is ~40 MiB
/// of table ids at most; this bounds memory on a corrupt length field).
const MAX_RECORD: usize = 1 << 30;

/// The first bytes of a checksummed record (format 3).
const RECORD_MAGIC: &[u8; 4] = b"PBR3";

/// The first bytes of a zstd frame (a record of formats 1 and 2).
const ZSTD_MAGIC: &[u8; 4] = &[0x28, 0xb5, 0x2f, 0xfd];

/// The last bytes of a pack with a trailer.
const PACK_MAGIC: &[u8; 4] = b"PBPK";

/// Bytes after a pack's trailer record: its length and the magic.
pub const PACK_TAIL: usize = 8;

/// What is wrong with stored bytes. Each message says what was found, so that the caller
/// can name the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// Neither a podbank record nor a record of an older format.
    #[error("not a podbank record (it starts with {0:02x?}): a foreign or damaged file")]
    NotARecord(Vec<u8>),
    /// Shorter than its own header says.
    #[error("truncated: {0}")]
    Truncated(String),
    /// The compressed bytes do not decompress.
    #[error("cannot decompress ({0}): the data is damaged")]
    Damaged(String),
    /// The plain bytes do not hash to the checksum stored with them.
    #[error("checksum mismatch (content hashes to {actual}, the record says {expected}): the data is damaged")]
    Checksum {
        /// The first hex digits of the stored checksum.
        expected: String,
        /// The first hex digits of the content's hash.
        actual: String,
    },
    /// Larger than podbank ever writes.
    #[error("{0} bytes is too large: the data is damaged")]
    TooLarge(u64),
    /// The plain bytes are not the protobuf record expected.
    #[error("not a valid record: {0}")]
    Invalid(String),
    /// An object does not lie where its index entry says.
    #[error("{0}: the index or the pack is damaged")]
    Misplaced(String),
    /// zstd could not compress (a bug, or no memory).
    #[error("cannot compress: {0}")]
    Compress(String),
}

fn short_hex(bytes: &[u8]) -> String {
    hex::encode(&bytes[..bytes.len().min(6)])
}

/// Encodes a record: `PBR3`, the sha256 of the compressed bytes that follow, and the
/// record's protobuf bytes zstd-compressed with zstd's own checksum of the plain bytes.
pub fn encode<M: Message>(msg: &M) -> Result<Bytes, FormatError> {
    seal(&msg.encode_to_vec())
}

/// Seals plain record bytes (see [`encode`]). Every stored byte is covered: the header's
/// sha256 covers the compressed bytes (so that any flipped byte is found before anything
/// is decompressed), and zstd's checksum the plain bytes they decompress to.
pub fn seal(plain: &[u8]) -> Result<Bytes, FormatError> {
    let compress = || -> std::io::Result<Vec<u8>> {
        let mut c = zstd::bulk::Compressor::new(ZSTD_LEVEL)?;
        c.include_checksum(true)?;
        c.compress(plain)
    };
    let compressed = compress().map_err(|e| FormatError::Compress(e.to_string()))?;
    let mut out = Vec::with_capacity(4 + 32 + compressed.len());
    out.extend_from_slice(RECORD_MAGIC);
    out.extend_from_slice(&Sha256::digest(&compressed));
    out.extend_from_slice(&compressed);
    Ok(Bytes::from(out))
}

/// The plain bytes of a record that [`seal`] (or a podbank of format 1 or 2) wrote,
/// checked against its checksums.
pub fn open(data: &[u8]) -> Result<Vec<u8>, FormatError> {
    if let Some(rest) = data.strip_prefix(RECORD_MAGIC) {
        if rest.len() < 32 {
            return Err(FormatError::Truncated(format!(
                "{} bytes, shorter than a record header",
                data.len()
            )));
        }
        let (sum, compressed) = rest.split_at(32);
        let actual = Sha256::digest(compressed);
        if actual.as_slice() != sum {
            return Err(FormatError::Checksum {
                expected: short_hex(sum),
                actual: short_hex(&actual),
            });
        }
        return decompress_record(compressed);
    }
    if data.starts_with(ZSTD_MAGIC) {
        return decompress_record(data);
    }
    Err(FormatError::NotARecord(data[..data.len().min(4)].to_vec()))
}

fn decompress_record(compressed: &[u8]) -> Result<Vec<u8>, FormatError> {
    let mut plain = Vec::new();
    let decoder = zstd::stream::read::Decoder::new(compressed)
        .map_err(|e| FormatError::Damaged(e.to_string()))?;
    // Bounded: a damaged size field must not make us allocate without end.
    let mut limited = std::io::Read::take(decoder, MAX_RECORD as u64 + 1);
    std::io::Read::read_to_end(&mut limited, &mut plain)
        .map_err(|e| FormatError::Damaged(e.to_string()))?;
    if plain.len() > MAX_RECORD {
        return Err(FormatError::TooLarge(plain.len() as u64));
    }
    Ok(plain)
}

/// Decodes what [`encode`] wrote.
pub fn decode<M: Message + Default>(data: &[u8]) -> Result<M, FormatError> {
    let plain = open(data)?;
    M::decode(plain.as_slice()).map_err(|e| FormatError::Invalid(e.to_string()))
}

/// The config as stored: plain protobuf with its own checksum (field `checksum`).
pub fn encode_config(config: &pb::BankConfig) -> Bytes {
    let mut c = config.clone();
    c.checksum = Bytes::new();
    let sum = Sha256::digest(c.encode_to_vec());
    c.checksum = Bytes::copy_from_slice(&sum);
    Bytes::from(c.encode_to_vec())
}

/// Reads a config that [`encode_config`] (or an older podbank) wrote: a config with a
/// checksum must match it; one without is of format 1 or 2.
pub fn decode_config(data: &[u8]) -> Result<pb::BankConfig, FormatError> {
    let config = pb::BankConfig::decode(data).map_err(|e| FormatError::Invalid(e.to_string()))?;
    if config.checksum.is_empty() {
        // A newer format than ours is refused by its version, after this.
        if (3..=FORMAT_VERSION).contains(&config.version) {
            return Err(FormatError::Invalid(format!(
                "a format {} config without its checksum",
                config.version
            )));
        }
        return Ok(config);
    }
    let mut plain = config.clone();
    plain.checksum = Bytes::new();
    let actual = Sha256::digest(plain.encode_to_vec());
    if actual.as_slice() != config.checksum.as_ref() {
        return Err(FormatError::Checksum {
            expected: short_hex(&config.checksum),
            actual: short_hex(&actual),
        });
    }
    Ok(config)
}

/// The trailer that ends a pack: what it holds, so that its index can be rebuilt.
pub fn pack_trailer(entries: &[pb::IndexEntry]) -> Result<Vec<u8>, FormatError> {
    let record = encode(&pb::PackTrailer {
        entries: entries.to_vec(),
    })?;
    let length =
        u32::try_from(record.len()).map_err(|_| FormatError::TooLarge(record.len() as u64))?;
    let mut out = Vec::with_capacity(record.len() + PACK_TAIL);
    out.extend_from_slice(&record);
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(PACK_MAGIC);
    Ok(out)
}

/// The length of the trailer record of a pack whose last [`PACK_TAIL`] bytes are `tail`;
/// `None` for a pack without a trailer (formats 1 and 2).
pub fn pack_trailer_length(tail: &[u8]) -> Option<u32> {
    let (length, magic) = tail.split_at_checked(4)?;
    (magic == PACK_MAGIC).then(|| u32::from_le_bytes(length.try_into().unwrap_or_default()))
}

/// The index entries of a pack's trailer record.
pub fn read_pack_trailer(record: &[u8]) -> Result<Vec<pb::IndexEntry>, FormatError> {
    decode::<pb::PackTrailer>(record).map(|t| t.entries)
}

/// Decompresses one frame of a pack and returns the object at `offset_in_frame`, of
/// `plain_length` bytes. The error says what is wrong with the frame.
pub fn open_frame(
    frame: &[u8],
    offset_in_frame: u32,
    plain_length: u32,
) -> Result<Bytes, FormatError> {
    let end = usize::try_from(offset_in_frame)
        .unwrap_or(usize::MAX)
        .saturating_add(usize::try_from(plain_length).unwrap_or(usize::MAX));
    let plain = decompress_frame(frame, end)?;
    object_in_frame(&plain, offset_in_frame, plain_length)
}

/// The object at `offset_in_frame`, of `plain_length` bytes, in a decompressed frame.
pub fn object_in_frame(
    plain: &Bytes,
    offset_in_frame: u32,
    plain_length: u32,
) -> Result<Bytes, FormatError> {
    let start = usize::try_from(offset_in_frame).unwrap_or(usize::MAX);
    let end = start.saturating_add(usize::try_from(plain_length).unwrap_or(usize::MAX));
    if end > plain.len() {
        return Err(FormatError::Misplaced(format!(
            "the object ({plain_length} bytes at {offset_in_frame}) lies past the end of its \
             frame ({} bytes)",
            plain.len()
        )));
    }
    Ok(plain.slice(start..end))
}

/// Decompresses a whole frame (of at least `at_least` plain bytes).
pub fn decompress_frame(frame: &[u8], at_least: usize) -> Result<Bytes, FormatError> {
    let size = match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(n)) => n,
        // Frames written without their size: the object's end bounds what is needed.
        Ok(None) => at_least as u64,
        Err(_) => return Err(FormatError::Damaged("not a zstd frame".into())),
    };
    if size > MAX_FRAME {
        return Err(FormatError::TooLarge(size));
    }
    let capacity = usize::try_from(size).unwrap_or(0).max(at_least).max(1);
    zstd::bulk::decompress(frame, capacity)
        .map(Bytes::from)
        .map_err(|e| FormatError::Damaged(e.to_string()))
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

impl pb::CheckpointStatus {
    /// Karbor's spelling: `protecting`, `available`, `error`, `deleting`, `deleted`,
    /// `error-deleting`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Unspecified => "unknown",
            Self::Protecting => "protecting",
            Self::Available => "available",
            Self::Error => "error",
            Self::Deleting => "deleting",
            Self::Deleted => "deleted",
            Self::ErrorDeleting => "error-deleting",
        }
    }
}

impl pb::VolumeStatus {
    /// Lower-case label for tables and JSON.
    pub fn label(self) -> &'static str {
        match self {
            Self::Unspecified => "unknown",
            Self::VolumePending => "pending",
            Self::VolumeBackingUp => "backing-up",
            Self::VolumeAvailable => "available",
            Self::VolumeError => "error",
            Self::VolumeNotProtected => "not-protected",
            Self::VolumeDeleted => "deleted",
        }
    }
}

impl pb::ResourceStatus {
    /// Lower-case label for tables and JSON.
    pub fn label(self) -> &'static str {
        match self {
            Self::Unspecified => "unknown",
            Self::ResourceProtected => "protected",
            Self::ResourceNotProtected => "not-protected",
            Self::ResourceError => "error",
            Self::ResourceSkipped => "skipped",
            Self::ResourceMissing => "missing",
        }
    }
}

impl pb::RestoreStatus {
    /// Karbor's spelling: `in_progress`, `success`, `fail`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Unspecified => "unknown",
            Self::InProgress => "in_progress",
            Self::Success => "success",
            Self::Fail => "fail",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> pb::Checkpoint {
        pb::Checkpoint {
            id: "20260101T000000Z-00000001".into(),
            backup_name: "nightly".into(),
            volumes: vec![pb::Volume {
                volume_id: "81be0a64-4d10-4a82-87f1-0c5d7e8b1a24".into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn every_flipped_byte_of_a_record_is_found() {
        let sealed = encode(&record()).expect("encode");
        assert_eq!(decode::<pb::Checkpoint>(&sealed), Ok(record()));
        for at in 0..sealed.len() {
            for bit in [0x01u8, 0x10, 0x80] {
                let mut damaged = sealed.to_vec();
                damaged[at] ^= bit;
                assert!(
                    decode::<pb::Checkpoint>(&damaged).is_err(),
                    "flip {bit:#x} at {at} of {} went unnoticed",
                    sealed.len()
                );
            }
        }
        assert!(decode::<pb::Checkpoint>(&sealed[..sealed.len() - 1]).is_err());
        assert!(matches!(
            decode::<pb::Checkpoint>(b"remember the milk"),
            Err(FormatError::NotARecord(_))
        ));
    }

    #[test]
    fn records_of_older_formats_still_read() {
        let legacy = zstd::bulk::compress(&record().encode_to_vec(), 1).expect("zstd");
        assert_eq!(decode::<pb::Checkpoint>(&legacy), Ok(record()));
    }

    #[test]
    fn the_config_carries_its_own_checksum() {
        let config = pb::BankConfig {
            version: FORMAT_VERSION,
            bank_id: "b".into(),
            ..Default::default()
        };
        let stored = encode_config(&config);
        let read = decode_config(&stored).expect("reads");
        assert_eq!((read.version, read.bank_id.as_str()), (FORMAT_VERSION, "b"));
        let mut damaged = stored.to_vec();
        damaged[3] ^= 0x01;
        assert!(decode_config(&damaged).is_err());
        // A config of format 2 had no checksum; one of format 3 must have it.
        let old = pb::BankConfig {
            version: 2,
            ..config.clone()
        };
        assert!(decode_config(&old.encode_to_vec()).is_ok());
        assert!(decode_config(&config.encode_to_vec()).is_err());
    }
}
