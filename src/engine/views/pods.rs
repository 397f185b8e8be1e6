//! The views of pods: protectable pods, their dependents (Cinder volumes) and their
//! closure (owners and referenced objects), as listings and `show` return them.

use serde::{Deserialize, Serialize};

use crate::model::{ObjectRef, Relation, ResourceStatus, ResourceType, Revision};
use crate::protection::{PodEntry, Problem};
use crate::resources::Dependent;

/// A pod as Karbor shows a protectable instance (`OS::Kubernetes::Pod`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodView {
    /// `OS::Kubernetes::Pod`.
    #[serde(rename = "type")]
    pub resource_type: ResourceType,
    /// Its uid (Karbor's instance id).
    pub id: String,
    /// The pod.
    #[serde(flatten)]
    pub pod: PodEntry,
    /// How many of its volumes are Cinder volumes.
    pub cinder_volumes: usize,
}

/// Protectable pods, read at one etcd revision.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodList {
    /// The revision everything was read at.
    pub revision: Revision,
    /// The pods, in key order.
    pub items: Vec<PodView>,
    /// Values that could not be read.
    pub problems: Vec<Problem>,
    /// A page of a paged listing: the marker of the next page (the last pod's uid), if
    /// pods follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

impl From<PodDetail> for PodView {
    fn from(d: PodDetail) -> Self {
        PodView {
            resource_type: d.resource_type,
            id: d.id,
            pod: d.pod,
            cinder_volumes: d.cinder_volumes,
        }
    }
}

impl From<PodPage> for PodList {
    fn from(p: PodPage) -> Self {
        let next = if p.more {
            p.items.last().map(|d| d.id.clone())
        } else {
            None
        };
        PodList {
            revision: p.revision,
            items: p.items.into_iter().map(PodView::from).collect(),
            problems: p.problems,
            next,
        }
    }
}

/// A dependent of a pod as Karbor shows one (`OS::Cinder::Volume`, parent the pod), or a
/// volume that is not protectable and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DependentView {
    /// `OS::Cinder::Volume` when protectable.
    #[serde(rename = "type")]
    pub resource_type: Option<ResourceType>,
    /// The Cinder volume id (Karbor's instance id).
    pub id: Option<String>,
    /// The volume.
    #[serde(flatten)]
    pub dependent: Dependent,
}

impl From<Dependent> for DependentView {
    fn from(d: Dependent) -> Self {
        Self {
            resource_type: d.is_protectable().then_some(ResourceType::CinderVolume),
            id: d.volume_id.clone(),
            dependent: d,
        }
    }
}

/// One pod and what it depends on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodDetail {
    /// The revision it was read at.
    pub revision: Revision,
    /// `OS::Kubernetes::Pod`.
    #[serde(rename = "type")]
    pub resource_type: ResourceType,
    /// Its uid (Karbor's instance id).
    pub id: String,
    /// The pod.
    #[serde(flatten)]
    pub pod: PodEntry,
    /// How many of its volumes are Cinder volumes.
    pub cinder_volumes: usize,
    /// Its volumes, resolved.
    pub dependents: Vec<DependentView>,
    /// What else it needs to run, as protect captures it: its owners (and theirs), the
    /// ConfigMaps, Secrets and ServiceAccount it references, its Namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub closure: Vec<ClosureView>,
}

/// One object of a pod's closure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClosureView {
    /// `OS::Kubernetes::ReplicaSet`, `OS::Kubernetes::ConfigMap`, ...
    #[serde(rename = "type")]
    pub kind: ResourceType,
    /// How the pod (or one of its owners) refers to it.
    pub relation: Relation,
    /// `<namespace>/<name>` (the name alone for the Namespace).
    pub name: ObjectRef,
    /// Its uid, when found.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// `protected` when etcd holds it (`skipped` for a Secret a plain bank would not
    /// store is decided at protect), `missing` when it does not.
    pub status: ResourceStatus,
    /// Why it is missing.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// A pod's dependents, as `pods dependents` shows them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DependentsView {
    /// The revision it was read at.
    pub revision: Revision,
    /// The pod, `namespace/name`.
    pub pod: ObjectRef,
    /// Its uid.
    pub pod_uid: String,
    /// Its volumes.
    pub dependents: Vec<DependentView>,
    /// Its closure: owners, referenced objects, namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub closure: Vec<ClosureView>,
}

impl From<PodDetail> for DependentsView {
    fn from(d: PodDetail) -> Self {
        Self {
            revision: d.revision,
            pod: ObjectRef::new(d.pod.info.namespace.clone(), d.pod.info.name.clone()),
            pod_uid: d.pod.info.uid.clone(),
            dependents: d.dependents,
            closure: d.closure,
        }
    }
}

/// One page of protectable pods with their dependents and closure, read at one etcd
/// revision.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodPage {
    /// The revision the page was read at.
    pub revision: Revision,
    /// The pods, in key order (namespace, then name).
    pub items: Vec<PodDetail>,
    /// Whether pods follow the last one.
    pub more: bool,
    /// Values that could not be read.
    pub problems: Vec<Problem>,
}
