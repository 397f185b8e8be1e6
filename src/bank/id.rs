//! Names of things in the bank: [`ObjectId`] (sha256 of plain bytes) and [`CheckpointId`].

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// The sha256 of an object's plain bytes: its name in the bank. Ordered as its bytes are.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjectId([u8; 32]);

impl ObjectId {
    /// The id as four big-endian words: ordering these orders the bytes.
    fn words(&self) -> [u64; 4] {
        let mut w = [0u64; 4];
        for (word, chunk) in w.iter_mut().zip(self.0.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            *word = u64::from_be_bytes(b);
        }
        w
    }
}

/// Byte order, compared a word at a time (the index sorts and searches ids by the million;
/// the derived order called `memcmp` for each comparison).
impl Ord for ObjectId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.words().cmp(&other.words())
    }
}

impl PartialOrd for ObjectId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl ObjectId {
    /// The id of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self(Sha256::digest(data).into())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// From raw bytes as stored in the bank's protobuf records; `None` unless 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    /// The raw bytes, as the bank's protobuf records hold them.
    pub fn to_bytes(&self) -> bytes::Bytes {
        bytes::Bytes::copy_from_slice(&self.0)
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 8 hex digits, for tables.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.short())
    }
}

impl FromStr for ObjectId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = hex::decode(s).map_err(|e| format!("{s:?} is not a hex object id: {e}"))?;
        Self::from_slice(&bytes).ok_or_else(|| format!("{s:?} is not 64 hex digits"))
    }
}

/// A checkpoint's id: `<UTC time>-<8 hex>`, so that ids sort by creation time.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, serde::Serialize)]
#[serde(transparent)]
pub struct CheckpointId(String);

impl CheckpointId {
    /// A new, unique id for a checkpoint started now.
    pub fn generate() -> Self {
        Self::generate_at(chrono::Utc::now())
    }

    /// A new id for a checkpoint started at `at`.
    pub fn generate_at(at: chrono::DateTime<chrono::Utc>) -> Self {
        Self(format!(
            "{}-{:08x}",
            at.format("%Y%m%dT%H%M%SZ"),
            rand::random::<u32>()
        ))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CheckpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for CheckpointId {
    type Err = String;
    /// Accepts any id made of letters, digits, `-`, `_` and `.` (1-128 chars), so that ids
    /// of other tools' banks stay readable; rejects anything that could escape a folder.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= 128
            && !s.starts_with('.')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(format!(
                "{s:?} is not a checkpoint id (letters, digits, '-', '_', '.'; up to 128)"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_id_round_trips_through_hex() {
        let id = ObjectId::of(b"pod");
        assert_eq!(id.to_hex().len(), 64);
        assert_eq!(id.to_hex().parse::<ObjectId>(), Ok(id));
        assert!("zz".parse::<ObjectId>().is_err());
    }

    #[test]
    fn object_ids_order_as_their_bytes() {
        let mut raw: Vec<[u8; 32]> = (0..200u32)
            .map(|i| *ObjectId::of(&i.to_le_bytes()).as_bytes())
            .collect();
        let mut last_byte = [0u8; 32];
        last_byte[31] = 1;
        raw.extend([[0u8; 32], [0xff; 32], last_byte]);
        let ids: Vec<ObjectId> = raw.iter().filter_map(|b| ObjectId::from_slice(b)).collect();
        assert_eq!(ids.len(), raw.len());
        for a in &ids {
            for b in &ids {
                assert_eq!(a.cmp(b), a.as_bytes().cmp(b.as_bytes()), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn checkpoint_ids_sort_by_time_and_reject_paths() {
        let a =
            CheckpointId::generate_at(chrono::DateTime::from_timestamp(1, 0).unwrap_or_default());
        let b =
            CheckpointId::generate_at(chrono::DateTime::from_timestamp(2, 0).unwrap_or_default());
        assert!(a < b);
        assert!("../x".parse::<CheckpointId>().is_err());
        assert!("".parse::<CheckpointId>().is_err());
        assert!("20261125T000000Z-0a0b0c0d".parse::<CheckpointId>().is_ok());
    }
}
