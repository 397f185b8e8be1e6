//! The bank's records on the wire: the prost types compiled from `proto/bank.proto`, and
//! how a record becomes stored bytes (protobuf, then zstd) and back.

use bytes::Bytes;
use prost::Message;

/// The prost types of `proto/bank.proto`.
#[allow(missing_docs, clippy::doc_markdown, clippy::all)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/podbank.bank.v1.rs"));
}

/// Format version written in the bank's config. Version 2 packs small objects several to a
/// zstd frame (`IndexEntry.offset_in_frame`).
pub const FORMAT_VERSION: u32 = 2;

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

/// Decompresses one frame of a pack and returns the object at `offset_in_frame`, of
/// `plain_length` bytes. The error says what is wrong with the frame.
pub fn open_frame(frame: &[u8], offset_in_frame: u32, plain_length: u32) -> Result<Bytes, String> {
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
) -> Result<Bytes, String> {
    let start = usize::try_from(offset_in_frame).unwrap_or(usize::MAX);
    let end = start.saturating_add(usize::try_from(plain_length).unwrap_or(usize::MAX));
    if end > plain.len() {
        return Err(format!(
            "the object ({plain_length} bytes at {offset_in_frame}) lies past the end of its \
             frame ({} bytes): the index or the pack is damaged",
            plain.len()
        ));
    }
    Ok(plain.slice(start..end))
}

/// Decompresses a whole frame (of at least `at_least` plain bytes).
pub fn decompress_frame(frame: &[u8], at_least: usize) -> Result<Bytes, String> {
    let size = match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(n)) => n,
        // Frames written without their size: the object's end bounds what is needed.
        Ok(None) => at_least as u64,
        Err(_) => return Err("not a zstd frame: the data is damaged".into()),
    };
    if size > MAX_FRAME {
        return Err(format!(
            "frame of {size} bytes is too large: the data is damaged"
        ));
    }
    let capacity = usize::try_from(size).unwrap_or(0).max(at_least).max(1);
    zstd::bulk::decompress(frame, capacity)
        .map(Bytes::from)
        .map_err(|e| format!("cannot decompress ({e}): the data is damaged"))
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
