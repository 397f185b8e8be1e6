//! The bank's records on the wire: the prost types compiled from `proto/bank.proto`, and
//! how a record becomes stored bytes (protobuf, then zstd) and back.

use bytes::Bytes;
use prost::Message;

/// The prost types of `proto/bank.proto`.
#[allow(missing_docs, clippy::doc_markdown, clippy::all)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/podbank.bank.v1.rs"));
}

/// Format version written in the bank's config.
pub const FORMAT_VERSION: u32 = 1;

/// zstd level for packs and records: level 1 compresses small protobuf pods about as well
/// as level 3 (a few % bigger) at a much lower cost per object.
pub const ZSTD_LEVEL: i32 = 1;

/// Largest plain record we accept to decompress (a manifest of 1M resources is ~40 MiB
/// of table ids at most; this bounds memory on a corrupt length field).
const MAX_RECORD: usize = 1 << 30;

/// Encodes a record: protobuf, zstd-compressed.
pub fn encode<M: Message>(msg: &M) -> Bytes {
    let plain = msg.encode_to_vec();
    // Compressing an in-memory buffer into a Vec cannot fail for valid levels.
    Bytes::from(zstd::bulk::compress(&plain, ZSTD_LEVEL).unwrap_or_default())
}

/// Decodes what [`encode`] wrote; the error says what was wrong.
pub fn decode<M: Message + Default>(data: &[u8]) -> Result<M, String> {
    let plain = zstd::stream::decode_all(std::io::Cursor::new(data))
        .map_err(|e| format!("not a zstd frame: {e}"))?;
    if plain.len() > MAX_RECORD {
        return Err(format!("record of {} bytes is too large", plain.len()));
    }
    M::decode(plain.as_slice()).map_err(|e| format!("not a valid record: {e}"))
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
