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
