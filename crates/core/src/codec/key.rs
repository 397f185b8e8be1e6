//! etcd keys of Kubernetes objects: `<prefix>/<resource>/<namespace>/<name>` for
//! namespaced objects, `<prefix>/<resource>/<name>` for cluster-scoped ones.
//!
//! The prefix is kube-apiserver's `--etcd-prefix` (`/registry` by default). A trailing
//! `/` on the prefix is ignored, as Go's `path.Join` does.

use std::fmt;

use super::CodecError;
use crate::model::ResourceType;

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

    /// The resource name of API paths (`pods`, `replicationcontrollers`, ...).
    pub fn resource(self) -> &'static str {
        match self {
            ResourceKind::Pod => "pods",
            ResourceKind::PersistentVolumeClaim => "persistentvolumeclaims",
            ResourceKind::PersistentVolume => "persistentvolumes",
            ResourceKind::Namespace => "namespaces",
            ResourceKind::ConfigMap => "configmaps",
            ResourceKind::Secret => "secrets",
            ResourceKind::ServiceAccount => "serviceaccounts",
            ResourceKind::ReplicaSet => "replicasets",
            ResourceKind::Deployment => "deployments",
            ResourceKind::StatefulSet => "statefulsets",
            ResourceKind::DaemonSet => "daemonsets",
            ResourceKind::ReplicationController => "replicationcontrollers",
            ResourceKind::Job => "jobs",
            ResourceKind::CronJob => "cronjobs",
        }
    }

    /// The resource name in etcd keys: as in API paths, but for replication controllers,
    /// which kube-apiserver stores under `controllers`.
    pub fn etcd_resource(self) -> &'static str {
        match self {
            ResourceKind::ReplicationController => "controllers",
            other => other.resource(),
        }
    }

    /// The object kind (`Pod`, ...), as in `TypeMeta.kind`.
    pub fn kind(self) -> &'static str {
        match self {
            ResourceKind::Pod => "Pod",
            ResourceKind::PersistentVolumeClaim => "PersistentVolumeClaim",
            ResourceKind::PersistentVolume => "PersistentVolume",
            ResourceKind::Namespace => "Namespace",
            ResourceKind::ConfigMap => "ConfigMap",
            ResourceKind::Secret => "Secret",
            ResourceKind::ServiceAccount => "ServiceAccount",
            ResourceKind::ReplicaSet => "ReplicaSet",
            ResourceKind::Deployment => "Deployment",
            ResourceKind::StatefulSet => "StatefulSet",
            ResourceKind::DaemonSet => "DaemonSet",
            ResourceKind::ReplicationController => "ReplicationController",
            ResourceKind::Job => "Job",
            ResourceKind::CronJob => "CronJob",
        }
    }

    /// The API group (`""` for the core group).
    pub fn group(self) -> &'static str {
        match self {
            ResourceKind::ReplicaSet
            | ResourceKind::Deployment
            | ResourceKind::StatefulSet
            | ResourceKind::DaemonSet => "apps",
            ResourceKind::Job | ResourceKind::CronJob => "batch",
            _ => "",
        }
    }

    /// The API version objects of this kind are stored with (`v1`, `apps/v1`, `batch/v1`).
    pub fn api_version(self) -> &'static str {
        match self.group() {
            "apps" => "apps/v1",
            "batch" => "batch/v1",
            _ => "v1",
        }
    }

    /// Whether objects of this kind live in a namespace.
    pub fn namespaced(self) -> bool {
        !matches!(
            self,
            ResourceKind::PersistentVolume | ResourceKind::Namespace
        )
    }

    /// Whether objects of this kind have a top-level `status` (field 3 of the protobuf
    /// message); ConfigMaps, Secrets and ServiceAccounts have none (their field 3 is data).
    pub fn has_status(self) -> bool {
        !matches!(
            self,
            ResourceKind::ConfigMap | ResourceKind::Secret | ResourceKind::ServiceAccount
        )
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

    /// Its Karbor type (`OS::Kubernetes::<Kind>`).
    pub fn resource_type(self) -> ResourceType {
        match self {
            ResourceKind::Pod => ResourceType::Pod,
            ResourceKind::PersistentVolumeClaim => ResourceType::PersistentVolumeClaim,
            ResourceKind::PersistentVolume => ResourceType::PersistentVolume,
            ResourceKind::Namespace => ResourceType::Namespace,
            ResourceKind::ConfigMap => ResourceType::ConfigMap,
            ResourceKind::Secret => ResourceType::Secret,
            ResourceKind::ServiceAccount => ResourceType::ServiceAccount,
            ResourceKind::ReplicaSet => ResourceType::ReplicaSet,
            ResourceKind::Deployment => ResourceType::Deployment,
            ResourceKind::StatefulSet => ResourceType::StatefulSet,
            ResourceKind::DaemonSet => ResourceType::DaemonSet,
            ResourceKind::ReplicationController => ResourceType::ReplicationController,
            ResourceKind::Job => ResourceType::Job,
            ResourceKind::CronJob => ResourceType::CronJob,
        }
    }

    /// The kind of a Karbor type (`None` for Cinder volumes and unknown types).
    pub fn of_type(t: &ResourceType) -> Option<Self> {
        Self::ALL.into_iter().find(|k| &k.resource_type() == t)
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())
    }
}

fn clean_prefix(prefix: &str) -> &str {
    prefix.trim_end_matches('/')
}

/// The etcd key prefix that holds every object of `kind` (in `namespace`, if given),
/// with a trailing `/`: `/registry/pods/` or `/registry/pods/demo/`.
///
/// # Arguments
///
/// * `prefix` - kube-apiserver's `--etcd-prefix`, e.g. `/registry`.
/// * `kind` - the resource type.
/// * `namespace` - restrict to one namespace (ignored for cluster-scoped kinds).
pub fn resource_prefix(prefix: &str, kind: ResourceKind, namespace: Option<&str>) -> String {
    let mut out = format!("{}/{}/", clean_prefix(prefix), kind.etcd_resource());
    if let (true, Some(ns)) = (kind.namespaced(), namespace) {
        out.push_str(ns);
        out.push('/');
    }
    out
}

/// A parsed etcd key of a Kubernetes object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StorageKey {
    /// The resource (`pods`, ...).
    pub resource: String,
    /// The namespace, for namespaced objects.
    pub namespace: Option<String>,
    /// The object name.
    pub name: String,
}

impl StorageKey {
    /// The key of an object of a known kind.
    pub fn new(kind: ResourceKind, namespace: Option<&str>, name: &str) -> Self {
        StorageKey {
            resource: kind.etcd_resource().to_string(),
            namespace: if kind.namespaced() {
                namespace.map(str::to_string)
            } else {
                None
            },
            name: name.to_string(),
        }
    }

    /// Parse an etcd key read under `prefix`.
    ///
    /// For the kinds podbank knows, the namespace part must be present exactly when the
    /// kind is namespaced; for other resources, three parts mean namespaced and two mean
    /// cluster-scoped.
    pub fn parse(prefix: &str, key: &[u8]) -> Result<StorageKey, CodecError> {
        let invalid = |reason: &str| CodecError::InvalidKey {
            key: String::from_utf8_lossy(key).into_owned(),
            prefix: prefix.to_string(),
            reason: reason.to_string(),
        };
        let text = std::str::from_utf8(key).map_err(|_| invalid("not valid UTF-8"))?;
        let base = clean_prefix(prefix);
        let rest = text
            .strip_prefix(base)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(|| invalid("does not start with the prefix followed by '/'"))?;
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(invalid("has an empty path segment"));
        }
        let known = ResourceKind::from_resource(parts[0]);
        let (namespace, name) =
            match (parts.len(), known.map(ResourceKind::namespaced)) {
                (3, None | Some(true)) => (Some(parts[1].to_string()), parts[2].to_string()),
                (2, None | Some(false)) => (None, parts[1].to_string()),
                (3, Some(false)) => {
                    return Err(invalid(&format!(
                        "{} are cluster-scoped: expected <prefix>/{}/<name>",
                        parts[0], parts[0]
                    )))
                }
                (2, Some(true)) => {
                    return Err(invalid(&format!(
                        "{} are namespaced: expected <prefix>/{}/<namespace>/<name>",
                        parts[0], parts[0]
                    )))
                }
                _ => return Err(invalid(
                    "expected <prefix>/<resource>/<namespace>/<name> or <prefix>/<resource>/<name>",
                )),
            };
        Ok(StorageKey {
            resource: parts[0].to_string(),
            namespace,
            name,
        })
    }

    /// The kind, if podbank knows the resource.
    pub fn kind(&self) -> Option<ResourceKind> {
        ResourceKind::from_resource(&self.resource)
    }

    /// The full etcd key under `prefix`.
    pub fn to_key(&self, prefix: &str) -> String {
        match &self.namespace {
            Some(ns) => format!(
                "{}/{}/{}/{}",
                clean_prefix(prefix),
                self.resource,
                ns,
                self.name
            ),
            None => format!("{}/{}/{}", clean_prefix(prefix), self.resource, self.name),
        }
    }
}

impl fmt::Display for StorageKey {
    /// `resource/namespace/name` or `resource/name`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.resource, ns, self.name),
            None => write!(f, "{}/{}", self.resource, self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format_keys() {
        let k = StorageKey::parse("/registry", b"/registry/pods/demo/web").unwrap();
        assert_eq!(k, StorageKey::new(ResourceKind::Pod, Some("demo"), "web"));
        assert_eq!(k.to_key("/registry/"), "/registry/pods/demo/web");
        assert_eq!(k.kind(), Some(ResourceKind::Pod));
        let pv = StorageKey::parse("/registry/", b"/registry/persistentvolumes/pv-1").unwrap();
        assert_eq!(pv.namespace, None);
        assert_eq!(pv.to_key("/registry"), "/registry/persistentvolumes/pv-1");
        let other = StorageKey::parse("/k", b"/k/widgets.example.com/ns/w").unwrap();
        assert_eq!(other.namespace.as_deref(), Some("ns"));
        assert_eq!(other.kind(), None);
    }

    #[test]
    fn bad_keys_say_why() {
        for (key, why) in [
            (&b"/other/pods/a/b"[..], "prefix"),
            (b"/registry/pods/onlyname", "namespaced"),
            (b"/registry/persistentvolumes/ns/pv", "cluster-scoped"),
            (b"/registry/pods//x", "empty"),
            (b"/registry/pods/a/b/c", "expected"),
            (b"/registry/pods/\xff/x", "UTF-8"),
        ] {
            let err = StorageKey::parse("/registry", key).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn prefixes() {
        assert_eq!(
            resource_prefix("/registry", ResourceKind::Pod, None),
            "/registry/pods/"
        );
        assert_eq!(
            resource_prefix(
                "/registry/",
                ResourceKind::PersistentVolumeClaim,
                Some("ns")
            ),
            "/registry/persistentvolumeclaims/ns/"
        );
        assert_eq!(
            resource_prefix("/registry", ResourceKind::PersistentVolume, Some("ns")),
            "/registry/persistentvolumes/"
        );
        assert_eq!(ResourceKind::from_resource("pods"), Some(ResourceKind::Pod));
        assert!(!ResourceKind::PersistentVolume.namespaced());
    }
}
