//! The codec layer's one error type.
//!
//! Every variant that comes from reading a stored value names the etcd key it was read
//! from, says what was wrong, and where it can, what to do about it. Variants are
//! distinct per cause so that a listing can report "garbage", "truncated", "encrypted
//! without a key" and "KMS" differently.

use std::fmt;

/// Which protobuf message of a stored value was malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtobufPart {
    /// The `runtime.Unknown` envelope that follows the `k8s\0` magic.
    Envelope,
    /// The object message (`raw`) inside the envelope, e.g. a `v1.Pod`.
    Object,
}

impl fmt::Display for ProtobufPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProtobufPart::Envelope => "runtime.Unknown envelope",
            ProtobufPart::Object => "object message inside the envelope",
        })
    }
}

/// Errors of the storage codec (format detection, decryption, decoding, wire edits).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The value starts with none of the byte sequences kube-apiserver writes.
    #[error(
        "etcd key {key}: not a Kubernetes storage value ({detail}); kube-apiserver writes \
         `k8s\\0` (protobuf), `{{` (JSON) or `k8s:enc:` (encrypted) at offset 0"
    )]
    UnknownFormat {
        /// The etcd key of the value.
        key: String,
        /// What the value starts with instead.
        detail: String,
    },

    /// The protobuf magic `k8s\0` is in the value, but not at offset 0.
    #[error(
        "etcd key {key}: the protobuf magic `k8s\\0` is at byte offset {offset}, not at offset 0 \
         where kube-apiserver writes it: the value has {offset} extra leading bytes (corrupt, or \
         written by another tool)"
    )]
    MagicAtWrongOffset {
        /// The etcd key of the value.
        key: String,
        /// Byte offset where the magic was found.
        offset: usize,
    },

    /// The protobuf envelope or the object in it is truncated or malformed.
    #[error("etcd key {key}: invalid protobuf in the {part}: {reason} (the value is truncated or corrupt)")]
    InvalidProtobuf {
        /// The etcd key of the value.
        key: String,
        /// Envelope or object.
        part: ProtobufPart,
        /// What the wire reader found.
        reason: String,
    },

    /// A value that starts with `{` is not valid JSON.
    #[error("etcd key {key}: invalid JSON value: {source}")]
    InvalidJson {
        /// The etcd key of the value.
        key: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },

    /// The value is encrypted at rest, and no encryption configuration was given.
    #[error(
        "etcd key {key}: the value is encrypted at rest ({provider}, key {key_name:?}); pass the \
         cluster's EncryptionConfiguration file with --encryption-provider-config (the file \
         kube-apiserver reads)"
    )]
    EncryptionConfigNeeded {
        /// The etcd key of the value.
        key: String,
        /// Provider named in the value's prefix (`aescbc`, `aesgcm`, `secretbox`).
        provider: String,
        /// Key name in the value's prefix.
        key_name: String,
    },

    /// The value is encrypted with a provider/key name the configuration does not have.
    #[error(
        "etcd key {key}: the value is encrypted with {provider} key {key_name:?}, which the \
         encryption configuration does not contain; use the EncryptionConfiguration file that \
         kube-apiserver currently runs with (old keys must stay listed until storage is migrated)"
    )]
    UnknownEncryptionKey {
        /// The etcd key of the value.
        key: String,
        /// Provider named in the value's prefix.
        provider: String,
        /// Key name in the value's prefix.
        key_name: String,
    },

    /// Decryption or authentication of an encrypted value failed.
    #[error(
        "etcd key {key}: decryption with {provider} key {key_name:?} failed: {reason} (wrong key \
         secret, a value copied from another etcd key, or corrupt data)"
    )]
    DecryptionFailed {
        /// The etcd key of the value.
        key: String,
        /// Provider named in the value's prefix.
        provider: String,
        /// Key name in the value's prefix.
        key_name: String,
        /// What failed.
        reason: String,
    },

    /// The value is encrypted by a KMS plugin, which podbank cannot call.
    #[error(
        "etcd key {key}: the value is encrypted by KMS {version} provider {provider_name:?}; \
         podbank cannot read KMS-encrypted values (the data key is only available through the \
         KMS plugin): read such objects through the API server instead"
    )]
    KmsEncrypted {
        /// The etcd key of the value.
        key: String,
        /// `v1` or `v2`.
        version: String,
        /// The KMS provider name from the value's prefix.
        provider_name: String,
    },

    /// The caller asked for one encoding, the value is stored in the other.
    #[error("etcd key {key}: the value is stored as {actual}, not {expected}")]
    WrongEncoding {
        /// The etcd key of the value.
        key: String,
        /// What the caller asked for.
        expected: super::Encoding,
        /// What the value is.
        actual: super::Encoding,
    },

    /// The object bytes do not decode as the requested protobuf message type.
    #[error("etcd key {key}: cannot decode the object as {type_name}: {source}")]
    ObjectDecode {
        /// The etcd key of the value.
        key: String,
        /// The Rust type asked for.
        type_name: &'static str,
        /// prost's error.
        #[source]
        source: prost::DecodeError,
    },

    /// The JSON document does not deserialize into the requested type.
    #[error("etcd key {key}: cannot decode the JSON object as {type_name}: {source}")]
    ObjectJson {
        /// The etcd key of the value.
        key: String,
        /// The Rust type asked for.
        type_name: &'static str,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },

    /// An etcd key is not of the form `<prefix>/<resource>[/<namespace>]/<name>`.
    #[error("etcd key {key:?} is not a storage key under prefix {prefix:?}: {reason}")]
    InvalidKey {
        /// The key (lossily decoded as UTF-8).
        key: String,
        /// The prefix it was parsed against (`--etcd-prefix`).
        prefix: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The encryption configuration file is unreadable or invalid.
    #[error("encryption configuration {source_name}: {reason}")]
    EncryptionConfig {
        /// The file path, or `<inline>` for text.
        source_name: String,
        /// What is wrong.
        reason: String,
    },

    /// A value could not be encrypted for writing.
    #[error("cannot encrypt the value for etcd key {key}: {reason}")]
    Encrypt {
        /// The etcd key the value is for.
        key: String,
        /// What is wrong.
        reason: String,
    },

    /// A wire-level (or JSON) edit could not be applied to a stored object.
    #[error("cannot edit the stored {kind}: {reason}")]
    Edit {
        /// The object kind (`Pod`, `PersistentVolume`, ...).
        kind: &'static str,
        /// What is wrong.
        reason: String,
    },
}
