//! The Kubernetes kinds podbank reads, and one table of what each is: its etcd resource
//! name, its `apiVersion`, whether it is namespaced, its Karbor type, ... As kube-rs keeps
//! one `ApiResource` value per kind, every fact of a kind is in its row of
//! [`ResourceKind::api`]: adding a kind is a variant, an entry of [`ResourceKind::ALL`] and
//! a row.

use std::fmt;

use super::{Relation, ResourceType};

/// What a Kubernetes kind is, in one value (kube-rs's `ApiResource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiResource {
    /// The object kind (`Pod`), as in `TypeMeta.kind`.
    pub kind: &'static str,
    /// The resource name of API paths (`pods`, `replicationcontrollers`).
    pub plural: &'static str,
    /// The resource name in etcd keys: the plural, but for replication controllers, which
    /// kube-apiserver stores under `controllers`.
    pub etcd_resource: &'static str,
    /// The API group (`""` for the core group).
    pub group: &'static str,
    /// The API version objects are stored with (`v1`, `apps/v1`, `batch/v1`).
    pub api_version: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Whether objects have a top-level `status` (field 3 of the protobuf message);
    /// ConfigMaps, Secrets and ServiceAccounts have none (their field 3 is data).
    pub has_status: bool,
    /// Its Karbor type (`OS::Kubernetes::Pod`).
    pub karbor: &'static str,
    /// How a restore names an object of the kind: `<short>:<ns>/<name>` (`pvc`, `pod`).
    pub short: &'static str,
    /// How a pod's closure refers to an object of the kind.
    pub relation: Relation,
    /// The fields compared to tell whether a live object holds a stored one's content
    /// (empty: content is not compared).
    pub content: &'static [&'static str],
}

/// The resource types podbank reads from etcd: a pod, the claims and volumes it mounts,
/// and its closure (owners, the objects it references, its namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    /// `pods` (namespaced).
    Pod,
    /// `persistentvolumeclaims` (namespaced).
    PersistentVolumeClaim,
    /// `persistentvolumes` (cluster-scoped).
    PersistentVolume,
    /// `namespaces` (cluster-scoped).
    Namespace,
    /// `configmaps`.
    ConfigMap,
    /// `secrets`.
    Secret,
    /// `serviceaccounts`.
    ServiceAccount,
    /// `apps/v1` `replicasets`.
    ReplicaSet,
    /// `apps/v1` `deployments`.
    Deployment,
    /// `apps/v1` `statefulsets`.
    StatefulSet,
    /// `apps/v1` `daemonsets`.
    DaemonSet,
    /// `replicationcontrollers` (`controllers` in etcd).
    ReplicationController,
    /// `batch/v1` `jobs`.
    Job,
    /// `batch/v1` `cronjobs`.
    CronJob,
}

/// A row of the table: a kind of the core group, namespaced, with a status, a controller
/// a pod can belong to unless changed.
const fn row(kind: &'static str, plural: &'static str, karbor: &'static str) -> ApiResource {
    ApiResource {
        kind,
        plural,
        etcd_resource: plural,
        group: "",
        api_version: "v1",
        namespaced: true,
        has_status: true,
        karbor,
        short: "",
        relation: Relation::Owner,
        content: &[],
    }
}

impl ApiResource {
    const fn apps(self) -> Self {
        Self {
            group: "apps",
            api_version: "apps/v1",
            ..self
        }
    }

    const fn batch(self) -> Self {
        Self {
            group: "batch",
            api_version: "batch/v1",
            ..self
        }
    }

    const fn cluster(self) -> Self {
        Self {
            namespaced: false,
            ..self
        }
    }

    const fn short(self, short: &'static str) -> Self {
        Self { short, ..self }
    }

    const fn referenced(self, relation: Relation, content: &'static [&'static str]) -> Self {
        Self {
            relation,
            content,
            ..self
        }
    }

    const fn no_status(self) -> Self {
        Self {
            has_status: false,
            ..self
        }
    }

    const fn etcd(self, etcd_resource: &'static str) -> Self {
        Self {
            etcd_resource,
            ..self
        }
    }
}

impl ResourceKind {
    /// Every kind, pods first, then what pods mount, then the closure.
    pub const ALL: [ResourceKind; 14] = [
        ResourceKind::Pod,
        ResourceKind::PersistentVolumeClaim,
        ResourceKind::PersistentVolume,
        ResourceKind::Namespace,
        ResourceKind::ConfigMap,
        ResourceKind::Secret,
        ResourceKind::ServiceAccount,
        ResourceKind::ReplicaSet,
        ResourceKind::Deployment,
        ResourceKind::StatefulSet,
        ResourceKind::DaemonSet,
        ResourceKind::ReplicationController,
        ResourceKind::Job,
        ResourceKind::CronJob,
    ];

    /// The controllers a pod can belong to (through `ownerReferences`).
    pub const OWNERS: [ResourceKind; 7] = [
        ResourceKind::ReplicaSet,
        ResourceKind::Deployment,
        ResourceKind::StatefulSet,
        ResourceKind::DaemonSet,
        ResourceKind::ReplicationController,
        ResourceKind::Job,
        ResourceKind::CronJob,
    ];

    /// Everything about the kind: the table, a row per kind.
    pub const fn api(self) -> &'static ApiResource {
        use Relation as R;
        use ResourceKind as K;
        match self {
            K::Pod => &const { row("Pod", "pods", "OS::Kubernetes::Pod").short("pod") },
            K::PersistentVolumeClaim => {
                &const {
                    row(
                        "PersistentVolumeClaim",
                        "persistentvolumeclaims",
                        "OS::Kubernetes::PersistentVolumeClaim",
                    )
                    .short("pvc")
                }
            }
            K::PersistentVolume => {
                &const {
                    row(
                        "PersistentVolume",
                        "persistentvolumes",
                        "OS::Kubernetes::PersistentVolume",
                    )
                    .short("pv")
                    .cluster()
                }
            }
            K::Namespace => {
                &const {
                    row("Namespace", "namespaces", "OS::Kubernetes::Namespace")
                        .short("namespace")
                        .cluster()
                        .referenced(R::Namespace, &[])
                }
            }
            K::ConfigMap => {
                &const {
                    row("ConfigMap", "configmaps", "OS::Kubernetes::ConfigMap")
                        .short("configmap")
                        .no_status()
                        .referenced(R::ConfigMap, &["data", "binaryData"])
                }
            }
            K::Secret => {
                &const {
                    row("Secret", "secrets", "OS::Kubernetes::Secret")
                        .short("secret")
                        .no_status()
                        .referenced(R::Secret, &["type", "data"])
                }
            }
            K::ServiceAccount => {
                &const {
                    row(
                        "ServiceAccount",
                        "serviceaccounts",
                        "OS::Kubernetes::ServiceAccount",
                    )
                    .short("serviceaccount")
                    .no_status()
                    .referenced(
                        R::ServiceAccount,
                        &[
                            "secrets",
                            "imagePullSecrets",
                            "automountServiceAccountToken",
                        ],
                    )
                }
            }
            K::ReplicaSet => {
                &const {
                    row("ReplicaSet", "replicasets", "OS::Kubernetes::ReplicaSet")
                        .short("replicaset")
                        .apps()
                }
            }
            K::Deployment => {
                &const {
                    row("Deployment", "deployments", "OS::Kubernetes::Deployment")
                        .short("deployment")
                        .apps()
                }
            }
            K::StatefulSet => {
                &const {
                    row("StatefulSet", "statefulsets", "OS::Kubernetes::StatefulSet")
                        .short("statefulset")
                        .apps()
                }
            }
            K::DaemonSet => {
                &const {
                    row("DaemonSet", "daemonsets", "OS::Kubernetes::DaemonSet")
                        .short("daemonset")
                        .apps()
                }
            }
            K::ReplicationController => {
                &const {
                    row(
                        "ReplicationController",
                        "replicationcontrollers",
                        "OS::Kubernetes::ReplicationController",
                    )
                    .short("replicationcontroller")
                    .etcd("controllers")
                }
            }
            K::Job => {
                &const {
                    row("Job", "jobs", "OS::Kubernetes::Job")
                        .short("job")
                        .batch()
                }
            }
            K::CronJob => {
                &const {
                    row("CronJob", "cronjobs", "OS::Kubernetes::CronJob")
                        .short("cronjob")
                        .batch()
                }
            }
        }
    }
    /// The resource name of API paths (`pods`, `replicationcontrollers`, ...).
    pub const fn resource(self) -> &'static str {
        self.api().plural
    }

    /// The resource name in etcd keys: as in API paths, but for replication controllers,
    /// which kube-apiserver stores under `controllers`.
    pub const fn etcd_resource(self) -> &'static str {
        self.api().etcd_resource
    }

    /// The object kind (`Pod`, ...), as in `TypeMeta.kind`.
    pub const fn kind(self) -> &'static str {
        self.api().kind
    }

    /// The API group (`""` for the core group).
    pub const fn group(self) -> &'static str {
        self.api().group
    }

    /// The API version objects of this kind are stored with (`v1`, `apps/v1`, `batch/v1`).
    pub const fn api_version(self) -> &'static str {
        self.api().api_version
    }

    /// Whether objects of this kind live in a namespace.
    pub const fn namespaced(self) -> bool {
        self.api().namespaced
    }

    /// Whether objects of this kind have a top-level `status` (field 3 of the protobuf
    /// message); ConfigMaps, Secrets and ServiceAccounts have none (their field 3 is data).
    pub const fn has_status(self) -> bool {
        self.api().has_status
    }

    /// Its Karbor type's name (`OS::Kubernetes::<Kind>`).
    pub const fn karbor(self) -> &'static str {
        self.api().karbor
    }

    /// How a closure object of this kind is referred to ([`Relation::Owner`] for a
    /// controller, and for pods, claims and volumes, which are no closure objects).
    pub const fn relation(self) -> Relation {
        self.api().relation
    }

    /// Whether it is a controller a pod can belong to.
    pub fn is_owner(self) -> bool {
        Self::OWNERS.contains(&self)
    }

    /// The kind for an etcd resource name (`pods` -> `Pod`, `controllers` ->
    /// `ReplicationController`), if podbank knows it.
    pub fn from_resource(resource: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.etcd_resource() == resource || k.resource() == resource)
    }

    /// The kind for an object kind (`Pod` -> `Pod`), if podbank knows it.
    pub fn from_kind(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.kind() == kind)
    }

    /// The kind of Karbor type `name` (`OS::Kubernetes::Pod` -> `Pod`), if podbank knows it.
    pub fn from_karbor(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.karbor() == name)
    }

    /// Its Karbor type.
    pub fn resource_type(self) -> ResourceType {
        ResourceType::Kube(self)
    }

    /// The kind of a Karbor type (`None` for Cinder volumes and unknown types).
    pub fn of_type(t: &ResourceType) -> Option<Self> {
        match t {
            ResourceType::Kube(k) => Some(*k),
            _ => None,
        }
    }

    /// The kind a restore names `short` (`pvc` -> `PersistentVolumeClaim`).
    pub fn from_short(short: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.api().short == short)
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_consistent() {
        for (i, k) in ResourceKind::ALL.into_iter().enumerate() {
            let api = k.api();
            assert_eq!(k as usize, i, "ALL lists the kinds in order");
            assert_eq!(api.karbor, format!("OS::Kubernetes::{}", api.kind));
            assert_eq!(
                api.short,
                api.kind
                    .to_lowercase()
                    .replace("persistentvolumeclaim", "pvc")
                    .replace("persistentvolume", "pv")
            );
            assert_eq!(ResourceKind::from_kind(api.kind), Some(k));
            assert_eq!(ResourceKind::from_resource(api.etcd_resource), Some(k));
            assert_eq!(ResourceKind::from_resource(api.plural), Some(k));
            assert_eq!(ResourceKind::from_karbor(api.karbor), Some(k));
            assert_eq!(ResourceKind::from_short(api.short), Some(k));
            let version = match api.group {
                "" => "v1".to_string(),
                g => format!("{g}/v1"),
            };
            assert_eq!(api.api_version, version);
        }
        assert_eq!(
            ResourceKind::ReplicationController.etcd_resource(),
            "controllers"
        );
        assert!(!ResourceKind::Namespace.namespaced());
        assert!(!ResourceKind::Secret.has_status());
        assert!(ResourceKind::Namespace.has_status());
    }
}
