//! The states things are in, as enums that serialize as Karbor and podbank spell them.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ResourceKind;

macro_rules! labelled {
    ($(#[$doc:meta])* $t:ident { $($(#[$vdoc:meta])* $v:ident => $label:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $t {
            $($(#[$vdoc])* #[serde(rename = $label)] $v),+
        }

        impl $t {
            /// How it is spelled in tables, JSON and the API.
            pub fn label(self) -> &'static str {
                match self {
                    $($t::$v => $label),+
                }
            }

            /// The value spelled `label`, if any.
            pub fn from_label(label: &str) -> Option<Self> {
                match label {
                    $($label => Some($t::$v),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.label())
            }
        }
    };
}

labelled!(
    /// A checkpoint's life cycle (Karbor's states).
    CheckpointStatus {
        /// Being written.
        Protecting => "protecting",
        /// Complete and restorable.
        Available => "available",
        /// Protect failed (partly), or the bank lost some of it; the reason says what.
        Error => "error",
        /// Being deleted.
        Deleting => "deleting",
        /// Deleted; kept as a tombstone while a newer incremental backup needs its backups.
        Deleted => "deleted",
        /// Delete failed; deleting again finishes it.
        ErrorDeleting => "error-deleting",
    }
);

labelled!(
    /// A volume record's state in a checkpoint.
    VolumeStatus {
        /// Found, not backed up yet.
        Pending => "pending",
        /// Its backup is being made.
        BackingUp => "backing-up",
        /// Its backup is available.
        Available => "available",
        /// Its backup failed; the reason says why.
        Error => "error",
        /// Not a Cinder volume, or backups were skipped; the reason says why.
        NotProtected => "not-protected",
        /// Its backup was deleted (with its checkpoint).
        Deleted => "deleted",
    }
);

labelled!(
    /// A resource record's state in a checkpoint.
    ResourceStatus {
        /// Stored.
        Protected => "protected",
        /// Recorded, not stored (a non-Cinder volume, a skipped Secret).
        NotProtected => "not-protected",
        /// Could not be stored.
        Error => "error",
        /// Left out on purpose: a Secret in an unencrypted bank (the reason says so).
        Skipped => "skipped",
        /// Referenced by a pod, not found in etcd at the revision read.
        Missing => "missing",
    }
);

labelled!(
    /// How a resource refers to another.
    Relation {
        /// Its owner (`metadata.ownerReferences`).
        Owner => "owner",
        /// A ConfigMap it references.
        ConfigMap => "configmap",
        /// A Secret it references.
        Secret => "secret",
        /// Its ServiceAccount.
        ServiceAccount => "serviceaccount",
        /// Its Namespace.
        Namespace => "namespace",
    }
);

labelled!(
    /// A restore's state (Karbor's states).
    RestoreStatus {
        /// Running (or stopped before the end: running it again resumes it).
        InProgress => "in_progress",
        /// Everything restored.
        Success => "success",
        /// Something failed; the per-resource outcomes say what.
        Fail => "fail",
    }
);

labelled!(
    /// What became of one resource in a restore.
    Outcome {
        /// In a dry run: what would be done.
        Planned => "planned",
        /// Not done yet.
        Pending => "pending",
        /// A volume being restored from its backup.
        Restoring => "restoring",
        /// Created.
        Restored => "restored",
        /// Made by an earlier run of the same restore, and kept.
        Reused => "reused",
        /// Made by its controller from a restored owner (a Deployment's pods, ...).
        ByController => "by-controller",
        /// Left alone (conflict policy, or nothing to restore); the reason says why.
        Skipped => "skipped",
        /// Failed; the reason says why.
        Error => "error",
    }
);

labelled!(
    /// How a Cinder volume is attached to the cluster.
    VolumeDriver {
        /// Through a PV of the Cinder CSI driver (`csi.volumeHandle`).
        CinderCsi => "cinder-csi",
        /// Through a PV of the in-tree plugin (`cinder.volumeID`).
        CinderInTree => "cinder-in-tree",
        /// Inline in the pod spec (`volumes[].cinder.volumeID`).
        InlineCinder => "inline-cinder",
    }
);

labelled!(
    /// How a (plain) storage value is encoded.
    Encoding {
        /// `k8s\0` + `runtime.Unknown` (`--storage-media-type=application/vnd.kubernetes.protobuf`,
        /// the default).
        Protobuf => "protobuf",
        /// A JSON document (`--storage-media-type=application/json`, custom resources).
        Json => "json",
    }
);

// The enum comes out of `labelled!`, which derives for every enum alike.
#[allow(clippy::derivable_impls)]
impl Default for Encoding {
    fn default() -> Self {
        Encoding::Protobuf
    }
}

// The enum comes out of `labelled!`, which derives for every enum alike.
#[allow(clippy::derivable_impls)]
impl Default for ResourceStatus {
    fn default() -> Self {
        ResourceStatus::Protected
    }
}

impl Encoding {
    /// The media type kube-apiserver uses for this encoding, also the right
    /// `Content-Type` for writing the object back.
    pub fn media_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/vnd.kubernetes.protobuf",
            Encoding::Json => "application/json",
        }
    }
}

impl VolumeDriver {
    /// Short text for tables (the label).
    pub fn as_str(self) -> &'static str {
        self.label()
    }
}

/// What a resource record is, Karbor style: a Kubernetes object (a pod, what it mounts, its
/// closure: owners, referenced objects, namespace), or a Cinder volume.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    /// `OS::Kubernetes::<Kind>`, its facts in the kind table.
    Kube(ResourceKind),
    /// `OS::Cinder::Volume`.
    CinderVolume,
    /// A type this podbank does not know (a newer bank's).
    Other(String),
}

impl Default for ResourceType {
    fn default() -> Self {
        ResourceType::Kube(ResourceKind::Pod)
    }
}

impl From<ResourceKind> for ResourceType {
    fn from(kind: ResourceKind) -> Self {
        ResourceType::Kube(kind)
    }
}

impl ResourceType {
    /// The Kubernetes kind (`ReplicaSet`), or Karbor's name for a type of no kind.
    pub fn kind_name(&self) -> &str {
        let karbor = self.karbor();
        karbor.strip_prefix("OS::Kubernetes::").unwrap_or(karbor)
    }

    /// Karbor's name of the type.
    pub fn karbor(&self) -> &str {
        match self {
            ResourceType::Kube(kind) => kind.karbor(),
            ResourceType::CinderVolume => "OS::Cinder::Volume",
            ResourceType::Other(s) => s,
        }
    }

    /// The type Karbor calls `name`.
    pub fn from_karbor(name: &str) -> Self {
        match ResourceKind::from_karbor(name) {
            Some(kind) => ResourceType::Kube(kind),
            None if name == "OS::Cinder::Volume" => ResourceType::CinderVolume,
            None => ResourceType::Other(name.to_string()),
        }
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.karbor())
    }
}

impl Serialize for ResourceType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.karbor())
    }
}

impl<'de> Deserialize<'de> for ResourceType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::from_karbor(&String::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_spelled_as_karbor_does() {
        assert_eq!(CheckpointStatus::ErrorDeleting.label(), "error-deleting");
        assert_eq!(
            serde_json::to_string(&RestoreStatus::InProgress).ok(),
            Some("\"in_progress\"".to_string())
        );
        assert_eq!(
            CheckpointStatus::from_label("available"),
            Some(CheckpointStatus::Available)
        );
        assert_eq!(
            ResourceType::from_karbor("OS::Kubernetes::Pod"),
            ResourceType::Kube(ResourceKind::Pod)
        );
        assert_eq!(
            ResourceType::from_karbor("OS::Kubernetes::Deployment").karbor(),
            "OS::Kubernetes::Deployment"
        );
    }
}
