//! The resources the stand-in serves: their group, version, kind and scope. No I/O, no state.

/// One REST resource, as kube-apiserver's discovery describes it.
#[derive(Debug, PartialEq, Eq)]
pub struct Resource {
    /// The plural lower-case name in URLs: `pods`, `deployments`.
    pub name: &'static str,
    /// The API group; empty for the core group.
    pub group: &'static str,
    /// The version: `v1`.
    pub version: &'static str,
    /// The kind of its objects: `Pod`.
    pub kind: &'static str,
    /// Whether its objects live in a namespace.
    pub namespaced: bool,
}

impl Resource {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The group-qualified name kube-apiserver puts in messages: `pods`, `deployments.apps`.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.name.to_string()
        } else {
            format!("{}.{}", self.name, self.group)
        }
    }
}

const fn core(name: &'static str, kind: &'static str, namespaced: bool) -> Resource {
    Resource {
        name,
        group: "",
        version: "v1",
        kind,
        namespaced,
    }
}

const fn grouped(group: &'static str, name: &'static str, kind: &'static str) -> Resource {
    Resource {
        name,
        group,
        version: "v1",
        kind,
        namespaced: true,
    }
}

/// Every resource the stand-in serves.
pub const RESOURCES: &[Resource] = &[
    core("pods", "Pod", true),
    core("persistentvolumeclaims", "PersistentVolumeClaim", true),
    core("configmaps", "ConfigMap", true),
    core("secrets", "Secret", true),
    core("serviceaccounts", "ServiceAccount", true),
    core("replicationcontrollers", "ReplicationController", true),
    core("events", "Event", true),
    core("persistentvolumes", "PersistentVolume", false),
    core("namespaces", "Namespace", false),
    grouped("apps", "deployments", "Deployment"),
    grouped("apps", "replicasets", "ReplicaSet"),
    grouped("apps", "statefulsets", "StatefulSet"),
    grouped("apps", "daemonsets", "DaemonSet"),
    grouped("batch", "jobs", "Job"),
    grouped("batch", "cronjobs", "CronJob"),
];

/// The resource called `name` (any group).
pub fn by_name(name: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.name == name)
}

/// The resource called `name` in `group`/`version`, as a URL names it.
pub fn in_group(group: &str, version: &str, name: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.name == name && r.group == group && r.version == version)
}

/// The resource whose objects are `kind` in `api_version` (an ownerReference's coordinates).
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.kind == kind && r.api_version() == api_version)
}
