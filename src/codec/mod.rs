//! (temporary: replaced by the codec branch at merge)
use prost::Message;

/// Kinds podbank reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    /// pods
    Pod,
    /// persistentvolumeclaims
    PersistentVolumeClaim,
    /// persistentvolumes
    PersistentVolume,
}
impl ResourceKind {
    /// resource
    pub fn resource(self) -> &'static str {
        match self {
            ResourceKind::Pod => "pods",
            ResourceKind::PersistentVolumeClaim => "persistentvolumeclaims",
            ResourceKind::PersistentVolume => "persistentvolumes",
        }
    }
    /// namespaced
    pub fn namespaced(self) -> bool {
        self != ResourceKind::PersistentVolume
    }
    /// kind
    pub fn kind(self) -> &'static str {
        match self {
            ResourceKind::Pod => "Pod",
            ResourceKind::PersistentVolumeClaim => "PersistentVolumeClaim",
            ResourceKind::PersistentVolume => "PersistentVolume",
        }
    }
}
/// envelope
pub fn encode_envelope(api_version: &str, kind: &str, raw_object: &[u8]) -> Vec<u8> {
    let u = k8s_pb::apimachinery::pkg::runtime::Unknown {
        type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(raw_object.to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = b"k8s\0".to_vec();
    u.encode(&mut out).ok();
    out
}
/// tmp
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(String);
/// tmp
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// pb
    Protobuf,
    /// json
    Json,
}
/// tmp
pub fn resource_prefix(prefix: &str, kind: ResourceKind, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("{prefix}/{}/{ns}/", kind.resource()),
        None => format!("{prefix}/{}/", kind.resource()),
    }
}
/// tmp
#[derive(Debug)]
pub struct StoredObject {
    enc: Encoding,
    plain: Vec<u8>,
    kind: String,
    raw: Vec<u8>,
}
impl StoredObject {
    /// tmp
    pub fn encoding(&self) -> Encoding {
        self.enc
    }
    /// tmp
    pub fn plain(&self) -> &[u8] {
        &self.plain
    }
    /// tmp
    pub fn kind(&self) -> &str {
        &self.kind
    }
    /// tmp
    pub fn decode_protobuf<M: Message + Default>(&self) -> Result<M, CodecError> {
        M::decode(&self.raw[..]).map_err(|e| CodecError(e.to_string()))
    }
    /// tmp
    pub fn decode_json<T: serde::de::DeserializeOwned>(&self) -> Result<T, CodecError> {
        serde_json::from_slice(&self.plain).map_err(|e| CodecError(e.to_string()))
    }
}
/// tmp
#[derive(Debug)]
pub struct EncryptionConfig;
impl EncryptionConfig {
    /// tmp
    pub fn from_file(_p: &std::path::Path) -> Result<Self, CodecError> {
        Err(CodecError("tmp".into()))
    }
}
/// tmp
#[derive(Debug)]
pub struct Decoder;
impl Decoder {
    /// tmp
    pub fn new(_e: Option<EncryptionConfig>) -> Self {
        Decoder
    }
    /// tmp
    pub fn decode(&self, key: &[u8], value: &[u8]) -> Result<StoredObject, CodecError> {
        if let Some(rest) = value.strip_prefix(b"k8s\0") {
            let u = k8s_pb::apimachinery::pkg::runtime::Unknown::decode(rest)
                .map_err(|e| CodecError(format!("{}: {e}", String::from_utf8_lossy(key))))?;
            Ok(StoredObject {
                enc: Encoding::Protobuf,
                plain: value.to_vec(),
                kind: u.type_meta.and_then(|t| t.kind).unwrap_or_default(),
                raw: u.raw.unwrap_or_default(),
            })
        } else if value.starts_with(b"{") {
            Ok(StoredObject {
                enc: Encoding::Json,
                plain: value.to_vec(),
                kind: String::new(),
                raw: vec![],
            })
        } else {
            Err(CodecError(format!("{}: bad", String::from_utf8_lossy(key))))
        }
    }
}
