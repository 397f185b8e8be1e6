//! Karbor's resource types over decoded Kubernetes objects, and the pod -> claim ->
//! volume graph.
//!
//! `OS::Kubernetes::Pod` (parent: the cluster) and `OS::Cinder::Volume` (parent: a pod).
//! This module does no I/O: it takes [`crate::codec::StoredObject`]s and builds small
//! summaries ([`PodInfo`], [`ClaimInfo`], [`VolumeInfo`]) from either encoding, protobuf or
//! JSON, and resolves which Cinder volumes a pod depends on ([`Catalog::dependents`]).

mod closure;
mod graph;
mod objects;
pub mod selector;
mod slim;

pub use closure::{owner_edges, relation_of, ClosureWants, ObjectInfo, OwnerRef, PodRefs};
pub use graph::{Catalog, ClaimStep, Dependent, DependentStatus, PodAlone, VolumeDriver};
pub use objects::{
    ClaimInfo, PodInfo, PodVolume, PvSource, VolumeInfo, VolumeSourceKind, HOOK_ANNOTATION_PREFIXES,
};
pub use selector::{FieldSelector, LabelSelector};

/// Karbor's resource type of a pod.
pub const POD_TYPE: &str = "OS::Kubernetes::Pod";
/// Karbor's resource type of a Cinder volume.
pub const VOLUME_TYPE: &str = "OS::Cinder::Volume";
/// The Cinder CSI driver's name.
pub const CINDER_CSI_DRIVER: &str = "cinder.csi.openstack.org";

/// Errors building resource summaries.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceError {
    /// The object could not be decoded.
    #[error(transparent)]
    Codec(#[from] crate::codec::CodecError),
    /// A required field is missing.
    #[error("{key}: {kind} has no {field}")]
    Missing {
        /// The etcd key.
        key: String,
        /// The object's kind.
        kind: &'static str,
        /// The missing field.
        field: &'static str,
    },
    /// The object is not of the kind its key says.
    #[error("{key}: expected a {expected}, found kind {found:?}")]
    WrongKind {
        /// The etcd key.
        key: String,
        /// What the key's resource implies.
        expected: &'static str,
        /// What the envelope says.
        found: String,
    },
    /// A label or field selector that does not parse.
    #[error("invalid {what} {input:?}: {reason}")]
    Selector {
        /// "label selector" or "field selector".
        what: &'static str,
        /// The text given.
        input: String,
        /// What is wrong.
        reason: String,
    },
}
