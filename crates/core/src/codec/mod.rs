//! The Kubernetes storage format, with no I/O: etcd keys, the `k8s\0` + `runtime.Unknown`
//! protobuf envelope, JSON values, encryption at rest (kube-apiserver's
//! EncryptionConfiguration), and lossless wire-level edits for restore.
//!
//! Everything here is a pure function on bytes; the one exception is
//! [`EncryptionConfig::from_file`], which reads the configuration file in a constructor.
//! This module must not talk to etcd, the API server or the bank: [`crate::etcd`] hands
//! it values, [`crate::resources`] and [`crate::protection`] use what it returns.
//!
//! * [`key`]: [`ResourceKind`], [`StorageKey`], [`resource_prefix`].
//! * [`value`]: [`Decoder`], [`StoredObject`], [`parse_plain`], [`encode_envelope`].
//! * [`encryption`]: [`EncryptionConfig`] (aescbc, aesgcm, secretbox; KMS refused).
//! * [`wire`]: protobuf wire reader/writer; [`edit_object`] and [`ObjectEdits`].

pub mod content;
pub mod edit;
pub mod encryption;
mod error;
pub mod key;
pub mod value;
pub mod wire;

pub use content::same_content;
pub use edit::{edit_object, ObjectEdits, OwnerEdit};
pub use encryption::{CipherProvider, EncryptionConfig};
pub use error::{CodecError, ProtobufPart};
pub use key::{resource_prefix, ResourceKind, StorageKey};
pub use value::{
    encode_envelope, parse_plain, Decoder, Encoding, StoredObject, ENCRYPTED_PREFIX, PROTOBUF_MAGIC,
};
