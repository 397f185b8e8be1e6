//! Ids and references: each a newtype that says what it names and checks its syntax once,
//! where it enters (a flag, a URL, a record).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// Text that is not a valid id or reference of its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {text:?} is invalid: {expected}")]
pub struct IdError {
    /// What was parsed: "checkpoint id", "pod", ...
    pub what: &'static str,
    /// The text given.
    pub text: String,
    /// What is expected instead.
    pub expected: &'static str,
}

fn invalid(what: &'static str, text: &str, expected: &'static str) -> IdError {
    IdError {
        what,
        text: text.to_string(),
        expected,
    }
}

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

    /// The id of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self(Sha256::digest(data).into())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// From raw bytes as stored in the bank's records; `None` unless 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    /// The raw bytes, as the bank's records hold them.
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
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        hex::decode(s)
            .ok()
            .and_then(|b| Self::from_slice(&b))
            .ok_or_else(|| invalid("object id", s, "64 hex digits"))
    }
}

impl Serialize for ObjectId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ObjectId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Whether `s` is a safe name for a bank record: letters, digits, `-`, `_`, `.` (1-128),
/// not starting with `.` (so that it can never escape a folder).
fn safe_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

macro_rules! record_id {
    ($(#[$doc:meta])* $t:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
        pub struct $t(String);

        impl $t {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $t {
            type Err = IdError;
            /// Accepts letters, digits, `-`, `_` and `.` (1-128 chars, not starting with
            /// `.`), so that ids of other tools' banks stay readable; rejects anything that
            /// could escape a folder.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                if safe_name(s) {
                    Ok(Self(s.to_string()))
                } else {
                    Err(invalid(
                        $what,
                        s,
                        "letters, digits, '-', '_' and '.' (up to 128, not starting with '.')",
                    ))
                }
            }
        }

        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d)?
                    .parse()
                    .map_err(serde::de::Error::custom)
            }
        }
    };
}

record_id!(
    /// A checkpoint's id: `<UTC time>-<8 hex>`, so that ids sort by creation time.
    CheckpointId,
    "checkpoint id"
);

record_id!(
    /// A restore's id: `r-<UTC time>-<8 hex>`.
    RestoreId,
    "restore id"
);

fn stamped(prefix: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        "{prefix}{}-{:08x}",
        at.format("%Y%m%dT%H%M%SZ"),
        rand::random::<u32>()
    )
}

impl CheckpointId {
    /// A new, unique id for a checkpoint started now.
    pub fn generate() -> Self {
        Self::generate_at(chrono::Utc::now())
    }

    /// A new id for a checkpoint started at `at`.
    pub fn generate_at(at: chrono::DateTime<chrono::Utc>) -> Self {
        Self(stamped("", at))
    }
}

impl RestoreId {
    /// A new, unique id for a restore started now.
    pub fn generate() -> Self {
        Self(stamped("r-", chrono::Utc::now()))
    }

    /// The random part (the last 8 hex digits), for names of renamed objects.
    pub fn suffix(&self) -> &str {
        self.0.rsplit('-').next().unwrap_or("restored")
    }
}

/// An etcd revision: the point in etcd's history a checkpoint was read at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Revision(i64);

impl Revision {
    /// The revision etcd numbered `n`.
    pub const fn new(n: i64) -> Self {
        Self(n)
    }

    /// Its number, as etcd takes it in a range request.
    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Revision {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.0)
    }
}

impl<'de> Deserialize<'de> for Revision {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        i64::deserialize(d).map(Self)
    }
}

/// A key in etcd, e.g. `/registry/pods/shop/web-0`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EtcdKey(String);

impl EtcdKey {
    /// The key as read from etcd.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Display for EtcdKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Kubernetes object's `metadata.uid` (an owner reference names its owner by it), kept as
/// the API server wrote it. Empty where none is known (an object podbank made up, a
/// reference without a uid).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Uid(String);

impl Uid {
    /// Wrap a uid.
    pub fn new(uid: impl Into<String>) -> Self {
        Self(uid.into())
    }

    /// The uid as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Uid {
    type Err = std::convert::Infallible;
    /// Any text: a uid is kept as written.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(s))
    }
}

impl From<String> for Uid {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Uid {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<Uid> for String {
    fn from(u: Uid) -> Self {
        u.0
    }
}

/// A namespace name, as Kubernetes accepts one: an RFC 1123 label (1-63 lower-case letters,
/// digits or `-`, starting and ending with a letter or digit). Checked where it enters: a
/// flag, a request body, a config file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Namespace(String);

impl Namespace {
    /// What a namespace name must be, as the errors say it.
    pub const EXPECTED: &'static str =
        "1-63 lower-case letters, digits or '-', starting and ending with a letter or digit";

    /// `name`, if it is a namespace name.
    pub fn parse(name: &str) -> Result<Self, IdError> {
        let b = name.as_bytes();
        let valid = !b.is_empty()
            && b.len() <= 63
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-';
        if valid {
            Ok(Self(name.to_string()))
        } else {
            Err(invalid("namespace", name, Self::EXPECTED))
        }
    }

    /// A comma-separated list (`a, b,c`; blanks skipped), as query parameters and Karbor
    /// parameters give namespaces.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, IdError> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Self::parse)
            .collect()
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Namespace {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Namespace {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Namespace> for String {
    fn from(n: Namespace) -> Self {
        n.0
    }
}

impl AsRef<str> for Namespace {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Namespace {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Namespace {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Namespace {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// A namespaced object by name, written `namespace/name` (a pod, a claim). A cluster-scoped
/// object (a persistent volume) has an empty namespace and is written as its name alone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ObjectRef {
    namespace: String,
    name: String,
}

impl ObjectRef {
    /// `name` in `namespace` (empty for a cluster-scoped object).
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// A cluster-scoped object.
    pub fn cluster(name: impl Into<String>) -> Self {
        Self::new("", name)
    }

    /// Its namespace (empty for a cluster-scoped object).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same name in another namespace.
    pub fn in_namespace(&self, namespace: &str) -> Self {
        Self::new(namespace, self.name.clone())
    }

    /// Another object, `name`, in this one's namespace (a pod's claim).
    pub fn in_namespace_named(&self, name: &str) -> Self {
        Self::new(self.namespace.clone(), name)
    }

    /// Reads `namespace/name`, or a bare name as a cluster-scoped reference (how records
    /// of volumes and of checkpoints written before `namespace/name` hold them).
    pub fn parse_lenient(text: &str) -> Self {
        match text.split_once('/') {
            Some((ns, name)) => Self::new(ns, name),
            None => Self::cluster(text),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

impl FromStr for ObjectRef {
    type Err = IdError;
    /// `namespace/name`, both non-empty, one `/`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(Self::new(ns, name))
            }
            _ => Err(invalid("object", s, "<namespace>/<name>")),
        }
    }
}

impl Serialize for ObjectRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ObjectRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::parse_lenient(&String::deserialize(d)?))
    }
}

macro_rules! cinder_id {
    ($(#[$doc:meta])* $t:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $t(String);

        impl $t {
            /// Wrap an id.
            pub fn new(id: impl Into<String>) -> Self {
                $t(id.into())
            }
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// Whether there is none (a record without this id).
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
            /// The first 8 characters, for names.
            pub fn short(&self) -> &str {
                self.0.get(..8).unwrap_or(&self.0)
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl From<String> for $t {
            fn from(s: String) -> Self {
                $t(s)
            }
        }
        impl From<&str> for $t {
            fn from(s: &str) -> Self {
                $t(s.to_string())
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

cinder_id!(
    /// A Cinder volume id (a UUID, kept as Cinder wrote it).
    VolumeId
);
cinder_id!(
    /// A Cinder backup id (a UUID, kept as Cinder wrote it).
    BackupId
);
cinder_id!(
    /// A Cinder snapshot id (a UUID, kept as Cinder wrote it).
    SnapshotId
);
cinder_id!(
    /// A Cinder group id (a UUID, kept as Cinder wrote it).
    GroupId
);
cinder_id!(
    /// A Cinder group snapshot id (a UUID, kept as Cinder wrote it).
    GroupSnapshotId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_rfc_1123_labels() {
        for good in ["a", "shop", "ns-0", "0ns", &"a".repeat(63)] {
            assert_eq!(
                Namespace::parse(good).map(String::from),
                Ok(good.to_string())
            );
        }
        for bad in ["", "-a", "a-", "Shop", "a_b", "a.b", "a/b", &"a".repeat(64)] {
            let e = Namespace::parse(bad).expect_err(bad);
            assert_eq!(e.what, "namespace");
            assert_eq!(e.text, bad);
        }
        assert_eq!(
            Namespace::parse_list(" a, b,,c ").map(|l| l.len()),
            Ok(3),
            "blanks are skipped"
        );
        assert!(Namespace::parse_list("a,B").is_err());
        let json: Result<Namespace, _> = serde_json::from_str("\"Bad\"");
        assert!(json.is_err(), "deserializing checks too");
    }

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
        for bad in ["../x", "", "..%2Fconfig", ".hidden", "a/b"] {
            assert!(bad.parse::<CheckpointId>().is_err(), "{bad}");
            assert!(bad.parse::<RestoreId>().is_err(), "{bad}");
        }
        assert!("20261125T000000Z-0a0b0c0d".parse::<CheckpointId>().is_ok());
        let r = RestoreId::generate();
        assert!(r.as_str().starts_with("r-"));
        assert_eq!(r.suffix().len(), 8);
        // Deserializing checks the syntax too.
        assert!(serde_json::from_str::<CheckpointId>("\"../config\"").is_err());
    }

    #[test]
    fn uids_are_kept_as_written_and_serialize_as_strings() {
        let u: Uid = "0b6c-11".parse().unwrap_or_default();
        assert_eq!(u.to_string(), "0b6c-11");
        assert_eq!(
            serde_json::to_string(&u).ok().as_deref(),
            Some("\"0b6c-11\"")
        );
        assert_eq!(serde_json::from_str::<Uid>("\"0b6c-11\"").ok(), Some(u));
        assert!(Uid::default().is_empty());
    }

    #[test]
    fn object_refs_read_and_write_namespace_slash_name() {
        let r: ObjectRef = "shop/web-0".parse().expect("valid");
        assert_eq!((r.namespace(), r.name()), ("shop", "web-0"));
        assert_eq!(r.to_string(), "shop/web-0");
        for bad in ["web-0", "/web", "shop/", "a/b/c", ""] {
            assert!(bad.parse::<ObjectRef>().is_err(), "{bad}");
        }
        assert_eq!(ObjectRef::parse_lenient("pv-1").to_string(), "pv-1");
        assert_eq!(ObjectRef::parse_lenient("pv-1").namespace(), "");
    }
}
