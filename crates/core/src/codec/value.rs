//! Stored values: format detection, the `k8s\0` + `runtime.Unknown` envelope, JSON, and
//! the hand-off to decryption.
//!
//! Format rules (decided by the first bytes, nothing is guessed):
//!
//! * `k8s\0` at offset 0: protobuf envelope (`runtime.Unknown` with `typeMeta`, `raw`,
//!   `contentEncoding`, `contentType`).
//! * `{` at offset 0: a JSON document. kube-apiserver's JSON serializer writes `{` as the
//!   very first byte, so leading whitespace is *not* accepted: such a value was not
//!   written by kube-apiserver and is reported as an unknown format (the message says
//!   that it looks like JSON after whitespace).
//! * `k8s:enc:`: encrypted at rest; decrypted with the [`EncryptionConfig`] and then read
//!   by the two rules above.
//! * Anything else: [`CodecError::UnknownFormat`], or [`CodecError::MagicAtWrongOffset`]
//!   when `k8s\0` occurs later in the value.

use std::ops::Range;

use bytes::Bytes;
use serde::Deserialize;

use super::encryption::EncryptionConfig;
use super::wire::{self, put_len_field};
use super::{CodecError, ProtobufPart};

/// The 4 bytes in front of every protobuf value kube-apiserver writes.
pub const PROTOBUF_MAGIC: &[u8; 4] = b"k8s\0";

/// The prefix of every value encrypted at rest.
pub const ENCRYPTED_PREFIX: &[u8] = b"k8s:enc:";

pub use crate::model::Encoding;

/// A storage value with encryption at rest removed, its encoding detected and its
/// envelope checked.
///
/// Invariant: [`StoredObject::plain`] is exactly what kube-apiserver would have written
/// without encryption, and [`StoredObject::object_bytes`] is a slice of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    key: String,
    encoding: Encoding,
    plain: Bytes,
    api_version: String,
    kind: String,
    object: Range<usize>,
}

impl StoredObject {
    /// The etcd key the value was read from (or the name given to [`parse_plain`]).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Protobuf or JSON.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The whole plaintext value (`k8s\0` + envelope, or the JSON document). This is
    /// what the bank stores.
    pub fn plain(&self) -> &[u8] {
        &self.plain
    }

    /// The plaintext value, shared (no copy).
    pub fn plain_bytes(&self) -> Bytes {
        self.plain.clone()
    }

    /// The plaintext value, by value.
    pub fn into_plain(self) -> Vec<u8> {
        self.plain.into()
    }

    /// `apiVersion` from the envelope's `typeMeta` (or the JSON document); may be empty
    /// if the writer left it out.
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// `kind` from the envelope's `typeMeta` (or the JSON document); may be empty if the
    /// writer left it out.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// Protobuf: the object message (`raw` inside the envelope). JSON: the whole document.
    pub fn object_bytes(&self) -> &[u8] {
        &self.plain[self.object.clone()]
    }

    /// Decode the object message with a prost type (e.g. `k8s_pb::api::core::v1::Pod`).
    ///
    /// Fields the type does not know are dropped by prost; use [`super::edit_object`] to
    /// write an object back without losing them.
    pub fn decode_protobuf<M: prost::Message + Default>(&self) -> Result<M, CodecError> {
        if self.encoding != Encoding::Protobuf {
            return Err(CodecError::WrongEncoding {
                key: self.key.clone(),
                expected: Encoding::Protobuf,
                actual: self.encoding,
            });
        }
        M::decode(self.object_bytes()).map_err(|source| CodecError::ObjectDecode {
            key: self.key.clone(),
            type_name: std::any::type_name::<M>(),
            source,
        })
    }

    /// Deserialize the JSON document (e.g. into `serde_json::Value` or a k8s-openapi type).
    pub fn decode_json<T: serde::de::DeserializeOwned>(&self) -> Result<T, CodecError> {
        if self.encoding != Encoding::Json {
            return Err(CodecError::WrongEncoding {
                key: self.key.clone(),
                expected: Encoding::Json,
                actual: self.encoding,
            });
        }
        serde_json::from_slice(&self.plain).map_err(|source| CodecError::ObjectJson {
            key: self.key.clone(),
            type_name: std::any::type_name::<T>(),
            source,
        })
    }
}

/// Turns etcd values into [`StoredObject`]s, decrypting with an optional
/// EncryptionConfiguration. Holds no state besides the configuration; cheap to share.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    encryption: Option<EncryptionConfig>,
}

impl Decoder {
    /// A decoder; `encryption` is the cluster's `--encryption-provider-config`, if any.
    pub fn new(encryption: Option<EncryptionConfig>) -> Self {
        Decoder { encryption }
    }

    /// The encryption configuration, if one was given.
    pub fn encryption(&self) -> Option<&EncryptionConfig> {
        self.encryption.as_ref()
    }

    /// Decode one etcd value.
    ///
    /// # Arguments
    ///
    /// * `key` - the etcd key (used as authenticated data by `aesgcm`, and in errors).
    /// * `value` - the etcd value as stored.
    pub fn decode(&self, key: &[u8], value: &[u8]) -> Result<StoredObject, CodecError> {
        if value.starts_with(ENCRYPTED_PREFIX) {
            return self.decode_encrypted(key, value);
        }
        parse_plain(&String::from_utf8_lossy(key), value.to_vec())
    }

    /// [`Decoder::decode`] for a value the caller owns: a plain value is not copied.
    pub fn decode_owned(&self, key: &[u8], value: Vec<u8>) -> Result<StoredObject, CodecError> {
        if value.starts_with(ENCRYPTED_PREFIX) {
            return self.decode_encrypted(key, &value);
        }
        parse_plain(&String::from_utf8_lossy(key), value)
    }

    fn decode_encrypted(&self, key: &[u8], value: &[u8]) -> Result<StoredObject, CodecError> {
        let key_text = String::from_utf8_lossy(key).into_owned();
        let Some(config) = &self.encryption else {
            return Err(super::encryption::needs_config(&key_text, value));
        };
        let plain = config.decrypt(key, value)?;
        parse_plain(&key_text, plain).map_err(|e| match e {
            // Decrypted to something that is no storage value: almost surely a wrong
            // aescbc key (unauthenticated, so only the padding was checked).
            CodecError::UnknownFormat { .. } | CodecError::MagicAtWrongOffset { .. } => {
                let (provider, key_name) = super::encryption::prefix_names(value);
                CodecError::DecryptionFailed {
                    key: key_text.clone(),
                    provider,
                    key_name,
                    reason: format!("the decrypted value is not a Kubernetes object ({e})"),
                }
            }
            other => other,
        })
    }
}

/// Parse an already-plain value: `k8s\0` + envelope, or a JSON document. An encrypted
/// value is an error here (bank contents are stored decrypted).
///
/// # Arguments
///
/// * `key_for_errors` - the etcd key (or another name) to put in error messages.
/// * `plain` - the value.
pub fn parse_plain(key_for_errors: &str, plain: Vec<u8>) -> Result<StoredObject, CodecError> {
    let key = key_for_errors.to_string();
    if plain.starts_with(PROTOBUF_MAGIC) {
        let env = parse_envelope(&key, &plain)?;
        return Ok(StoredObject {
            key,
            encoding: Encoding::Protobuf,
            api_version: env.api_version,
            kind: env.kind,
            object: env.raw,
            plain: Bytes::from(plain),
        });
    }
    if plain.first() == Some(&b'{') {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct JsonTypeMeta {
            #[serde(default)]
            api_version: Option<String>,
            #[serde(default)]
            kind: Option<String>,
        }
        let meta: JsonTypeMeta =
            serde_json::from_slice(&plain).map_err(|source| CodecError::InvalidJson {
                key: key.clone(),
                source,
            })?;
        let len = plain.len();
        return Ok(StoredObject {
            key,
            encoding: Encoding::Json,
            api_version: meta.api_version.unwrap_or_default(),
            kind: meta.kind.unwrap_or_default(),
            object: 0..len,
            plain: Bytes::from(plain),
        });
    }
    Err(unknown_format(&key, &plain))
}

/// The error for a value that matches no known format.
fn unknown_format(key: &str, value: &[u8]) -> CodecError {
    if let Some(offset) = find(value, PROTOBUF_MAGIC) {
        return CodecError::MagicAtWrongOffset {
            key: key.to_string(),
            offset,
        };
    }
    let detail = if value.is_empty() {
        "the value is empty".to_string()
    } else if value.starts_with(ENCRYPTED_PREFIX) {
        "an encrypted value where a decrypted one was expected".to_string()
    } else if value
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .is_some_and(|i| i > 0 && value[i] == b'{')
    {
        "it looks like JSON after leading whitespace, which kube-apiserver never writes".to_string()
    } else {
        format!("it starts with {}", describe_bytes(value, 16))
    };
    CodecError::UnknownFormat {
        key: key.to_string(),
        detail,
    }
}

/// Up to `n` leading bytes, printable ASCII as text and the rest as `\xNN`.
pub(crate) fn describe_bytes(value: &[u8], n: usize) -> String {
    let mut s = String::from("\"");
    for &b in value.iter().take(n) {
        if b.is_ascii_graphic() || b == b' ' {
            s.push(b as char);
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s.push('"');
    if value.len() > n {
        s.push_str("...");
    }
    s
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

struct Envelope {
    api_version: String,
    kind: String,
    raw: Range<usize>,
}

/// Walk the `runtime.Unknown` envelope after the magic; check the object message walks
/// cleanly at its top level.
fn parse_envelope(key: &str, plain: &[u8]) -> Result<Envelope, CodecError> {
    let bad = |part: ProtobufPart, e: wire::WireError| CodecError::InvalidProtobuf {
        key: key.to_string(),
        part,
        reason: e.to_string(),
    };
    let body = &plain[PROTOBUF_MAGIC.len()..];
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: Option<Range<usize>> = None;
    for field in wire::fields(body) {
        let field = field.map_err(|e| bad(ProtobufPart::Envelope, e))?;
        match (field.number, field.is_len()) {
            (1, true) => {
                for tm in wire::fields(field.value) {
                    let tm = tm.map_err(|e| bad(ProtobufPart::Envelope, e))?;
                    match (tm.number, tm.is_len()) {
                        (1, true) => {
                            api_version = tm
                                .as_str()
                                .map_err(|e| bad(ProtobufPart::Envelope, e))?
                                .to_string()
                        }
                        (2, true) => {
                            kind = tm
                                .as_str()
                                .map_err(|e| bad(ProtobufPart::Envelope, e))?
                                .to_string()
                        }
                        _ => {}
                    }
                }
            }
            (2, true) => {
                let start =
                    PROTOBUF_MAGIC.len() + field.offset + (field.raw.len() - field.value.len());
                raw = Some(start..start + field.value.len());
            }
            (1 | 2, false) => {
                return Err(bad(
                    ProtobufPart::Envelope,
                    wire::WireError {
                        offset: field.offset,
                        reason: format!("field {} is not length-delimited", field.number),
                    },
                ))
            }
            _ => {}
        }
    }
    let raw = raw.ok_or_else(|| CodecError::InvalidProtobuf {
        key: key.to_string(),
        part: ProtobufPart::Envelope,
        reason: "the envelope has no `raw` object (field 2)".to_string(),
    })?;
    for field in wire::fields(&plain[raw.clone()]) {
        field.map_err(|e| bad(ProtobufPart::Object, e))?;
    }
    Ok(Envelope {
        api_version,
        kind,
        raw,
    })
}

/// Build a protobuf storage value exactly as kube-apiserver writes it: `k8s\0` +
/// `runtime.Unknown{typeMeta{apiVersion, kind}, raw, contentEncoding: "", contentType: ""}`
/// (gogo-protobuf writes the empty strings too).
///
/// # Arguments
///
/// * `api_version` - e.g. `v1`.
/// * `kind` - e.g. `Pod`.
/// * `raw_object` - the encoded object message (e.g. a `v1.Pod`).
pub fn encode_envelope(api_version: &str, kind: &str, raw_object: &[u8]) -> Vec<u8> {
    let mut type_meta = Vec::with_capacity(api_version.len() + kind.len() + 4);
    put_len_field(&mut type_meta, 1, api_version.as_bytes());
    put_len_field(&mut type_meta, 2, kind.as_bytes());
    let mut out = Vec::with_capacity(raw_object.len() + type_meta.len() + 16);
    out.extend_from_slice(PROTOBUF_MAGIC);
    put_len_field(&mut out, 1, &type_meta);
    put_len_field(&mut out, 2, raw_object);
    put_len_field(&mut out, 3, b"");
    put_len_field(&mut out, 4, b"");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trip() {
        let v = encode_envelope("v1", "Pod", &wire::len_field(1, b"meta"));
        let o = parse_plain("/registry/pods/a/b", v.clone()).unwrap();
        assert_eq!(o.encoding(), Encoding::Protobuf);
        assert_eq!((o.api_version(), o.kind()), ("v1", "Pod"));
        assert_eq!(o.object_bytes(), wire::len_field(1, b"meta"));
        assert_eq!(o.plain(), v);
    }

    #[test]
    fn json_values() {
        let o = parse_plain(
            "k",
            br#"{"apiVersion":"v1","kind":"Pod","metadata":{}}"#.to_vec(),
        )
        .unwrap();
        assert_eq!(o.encoding(), Encoding::Json);
        assert_eq!(o.kind(), "Pod");
        assert!(o.decode_protobuf::<k8s_pb::api::core::v1::Pod>().is_err());
        let err = parse_plain("k", b"  {\"a\":1}".to_vec()).unwrap_err();
        assert!(err.to_string().contains("leading whitespace"), "{err}");
        assert!(matches!(
            parse_plain("k", b"{not json".to_vec()),
            Err(CodecError::InvalidJson { .. })
        ));
    }

    #[test]
    fn unknown_formats() {
        let err = parse_plain("/registry/pods/x/y", b"\x01\x02garbage".to_vec()).unwrap_err();
        assert!(matches!(err, CodecError::UnknownFormat { .. }));
        assert!(err.to_string().contains("/registry/pods/x/y"));
        let err = parse_plain("k", b"xxk8s\0yy".to_vec()).unwrap_err();
        assert!(
            matches!(err, CodecError::MagicAtWrongOffset { offset: 2, .. }),
            "{err}"
        );
        assert!(matches!(
            parse_plain("k", Vec::new()),
            Err(CodecError::UnknownFormat { .. })
        ));
    }
}
