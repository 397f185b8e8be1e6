//! Summaries of pods, claims and volumes, built from protobuf or JSON storage values.

use std::collections::BTreeMap;

use k8s_pb::api::core::v1 as core;
use serde::{Deserialize, Serialize};

use super::closure::{self, PodRefs};
use super::{slim, ResourceError};
use crate::codec::{Encoding, StoredObject};

/// What a pod volume is backed by, as far as podbank cares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "kind"
)]
pub enum VolumeSourceKind {
    /// `persistentVolumeClaim.claimName`.
    PersistentVolumeClaim {
        /// The claim, in the pod's namespace.
        claim_name: String,
    },
    /// A generic ephemeral volume: its claim is `<pod>-<volume>`.
    Ephemeral,
    /// An inline in-tree Cinder volume.
    Cinder {
        /// The Cinder volume id.
        volume_id: String,
    },
    /// Any other source (emptyDir, configMap, secret, projected, hostPath, ...), by its
    /// field name.
    Other {
        /// The field name of the source, e.g. `emptyDir`.
        source: String,
    },
}

/// One entry of `spec.volumes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodVolume {
    /// The volume's name in the pod.
    pub name: String,
    /// Its source.
    pub source: VolumeSourceKind,
}

impl PodVolume {
    /// The claim this volume uses, if any: `persistentVolumeClaim.claimName`, or
    /// `<pod>-<volume>` for a generic ephemeral volume.
    pub fn claim(&self, pod_name: &str) -> Option<String> {
        match &self.source {
            VolumeSourceKind::PersistentVolumeClaim { claim_name } => Some(claim_name.clone()),
            VolumeSourceKind::Ephemeral => Some(format!("{pod_name}-{}", self.name)),
            VolumeSourceKind::Cinder { .. } | VolumeSourceKind::Other { .. } => None,
        }
    }
}

/// What `pods list` and `pods show` need to know of a pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodInfo {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `metadata.uid`.
    pub uid: String,
    /// `spec.nodeName`, if scheduled.
    pub node: Option<String>,
    /// `status.phase`.
    pub phase: Option<String>,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `metadata.creationTimestamp`, seconds since the epoch.
    pub created: Option<i64>,
    /// `spec.volumes`.
    pub volumes: Vec<PodVolume>,
    /// Its annotations that declare exec hooks (`pre.hook.backup.velero.io/*`,
    /// `post.hook.backup.velero.io/*`); the others are not kept. Not shown: protect's alone.
    #[serde(skip)]
    pub hook_annotations: BTreeMap<String, String>,
    /// The names of `spec.containers`, in order (a hook runs in the first by default). Not
    /// shown: protect's alone.
    #[serde(skip)]
    pub containers: Vec<String>,
    /// Its owners and the objects it references by name (its closure).
    #[serde(flatten)]
    pub refs: PodRefs,
}

/// What the volume graph needs of a claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimInfo {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `metadata.uid`.
    pub uid: String,
    /// `spec.volumeName`: the bound volume.
    pub volume_name: Option<String>,
    /// `status.phase`.
    pub phase: Option<String>,
}

/// Where a persistent volume's data lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "kind"
)]
pub enum PvSource {
    /// A CSI volume.
    Csi {
        /// The CSI driver.
        driver: String,
        /// `volumeHandle`.
        volume_handle: String,
    },
    /// In-tree `spec.cinder.volumeID`.
    Cinder {
        /// The Cinder volume id.
        volume_id: String,
    },
    /// Any other source, by its field name.
    Other {
        /// The field name of the source, e.g. `nfs`.
        source: String,
    },
}

/// What the volume graph needs of a persistent volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeInfo {
    /// Name (cluster-scoped).
    pub name: String,
    /// `metadata.uid`.
    pub uid: String,
    /// The volume source.
    pub source: PvSource,
    /// `spec.capacity.storage`, as written.
    pub capacity: Option<String>,
    /// `spec.claimRef` namespace and name.
    pub claim: Option<(String, String)>,
}

fn check_kind(obj: &StoredObject, key: &str, expected: &'static str) -> Result<(), ResourceError> {
    if obj.kind() == expected || obj.kind().is_empty() {
        Ok(())
    } else {
        Err(ResourceError::WrongKind {
            key: key.to_string(),
            expected,
            found: obj.kind().to_string(),
        })
    }
}

fn other_source(field: &str) -> VolumeSourceKind {
    VolumeSourceKind::Other {
        source: field.to_string(),
    }
}

fn proto_volume_source(v: Option<&slim::VolumeSource>) -> VolumeSourceKind {
    let Some(v) = v else {
        // An unset source is an emptyDir by the API's defaulting rules.
        return other_source("emptyDir");
    };
    if let Some(c) = &v.persistent_volume_claim {
        return VolumeSourceKind::PersistentVolumeClaim {
            claim_name: c.claim_name.clone().unwrap_or_default(),
        };
    }
    if v.ephemeral.is_some() {
        return VolumeSourceKind::Ephemeral;
    }
    if let Some(c) = &v.cinder {
        return VolumeSourceKind::Cinder {
            volume_id: c.volume_id.clone().unwrap_or_default(),
        };
    }
    v.named()
        .iter()
        .find(|(_, set)| *set)
        .map(|(n, _)| other_source(n))
        .unwrap_or_else(|| other_source("unknown"))
}

fn proto_pv_source(s: Option<&core::PersistentVolumeSource>) -> PvSource {
    let other = |f: &str| PvSource::Other {
        source: f.to_string(),
    };
    let Some(s) = s else { return other("none") };
    if let Some(c) = &s.csi {
        return PvSource::Csi {
            driver: c.driver.clone().unwrap_or_default(),
            volume_handle: c.volume_handle.clone().unwrap_or_default(),
        };
    }
    if let Some(c) = &s.cinder {
        return PvSource::Cinder {
            volume_id: c.volume_id.clone().unwrap_or_default(),
        };
    }
    let named: [(&str, bool); 8] = [
        ("hostPath", s.host_path.is_some()),
        ("local", s.local.is_some()),
        ("nfs", s.nfs.is_some()),
        ("awsElasticBlockStore", s.aws_elastic_block_store.is_some()),
        ("gcePersistentDisk", s.gce_persistent_disk.is_some()),
        ("rbd", s.rbd.is_some()),
        ("iscsi", s.iscsi.is_some()),
        ("cephfs", s.cephfs.is_some()),
    ];
    named
        .iter()
        .find(|(_, set)| *set)
        .map(|(n, _)| other(n))
        .unwrap_or_else(|| other("unknown"))
}

// ---- JSON views: only the fields podbank reads; serde ignores the rest. ----

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JsonMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    creation_timestamp: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JsonPod {
    metadata: JsonMeta,
    spec: JsonPodSpec,
    status: JsonStatus,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JsonPodSpec {
    node_name: Option<String>,
    containers: Vec<JsonContainer>,
    volumes: Vec<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JsonContainer {
    name: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JsonStatus {
    phase: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JsonClaim {
    metadata: JsonMeta,
    spec: JsonClaimSpec,
    status: JsonStatus,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JsonClaimSpec {
    volume_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JsonPv {
    metadata: JsonMeta,
    spec: serde_json::Map<String, serde_json::Value>,
}

fn json_str(v: &serde_json::Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str().map(str::to_string)
}

fn json_volume_source(v: &serde_json::Map<String, serde_json::Value>) -> VolumeSourceKind {
    if let Some(c) = v.get("persistentVolumeClaim") {
        return VolumeSourceKind::PersistentVolumeClaim {
            claim_name: json_str(c, &["claimName"]).unwrap_or_default(),
        };
    }
    if v.contains_key("ephemeral") {
        return VolumeSourceKind::Ephemeral;
    }
    if let Some(c) = v.get("cinder") {
        return VolumeSourceKind::Cinder {
            volume_id: json_str(c, &["volumeID"]).unwrap_or_default(),
        };
    }
    v.keys()
        .find(|k| k.as_str() != "name")
        .map(|k| other_source(k))
        .unwrap_or_else(|| other_source("emptyDir"))
}

/// The prefixes of the annotations that declare exec hooks (Velero's).
pub const HOOK_ANNOTATION_PREFIXES: [&str; 2] =
    ["pre.hook.backup.velero.io/", "post.hook.backup.velero.io/"];

/// Of a pod's annotations, those that declare exec hooks: the rest (often large, such as
/// `kubectl.kubernetes.io/last-applied-configuration`) are not kept for every pod read.
fn hook_annotations(all: BTreeMap<String, String>) -> BTreeMap<String, String> {
    all.into_iter()
        .filter(|(k, _)| HOOK_ANNOTATION_PREFIXES.iter().any(|p| k.starts_with(p)))
        .collect()
}

fn parse_time(text: Option<&str>) -> Option<i64> {
    text.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp())
}

fn required(
    value: Option<String>,
    key: &str,
    kind: &'static str,
    field: &'static str,
) -> Result<String, ResourceError> {
    match value {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(ResourceError::Missing {
            key: key.to_string(),
            kind,
            field,
        }),
    }
}

impl PodInfo {
    /// Summarize a stored pod.
    ///
    /// # Arguments
    ///
    /// * `key` - the etcd key, for error messages.
    /// * `obj` - the decoded storage value.
    pub fn from_object(key: &str, obj: &StoredObject) -> Result<PodInfo, ResourceError> {
        check_kind(obj, key, "Pod")?;
        match obj.encoding() {
            Encoding::Protobuf => {
                let pod: slim::Pod = obj.decode_protobuf()?;
                let mut meta = pod.metadata.unwrap_or_default();
                let spec = pod.spec.unwrap_or_default();
                let refs = closure::proto_refs(&mut meta, &spec);
                Ok(PodInfo {
                    refs,
                    hook_annotations: hook_annotations(std::mem::take(&mut meta.annotations)),
                    containers: spec
                        .containers
                        .iter()
                        .map(|c| c.name.clone().unwrap_or_default())
                        .collect(),
                    namespace: meta.namespace.unwrap_or_default(),
                    name: required(meta.name, key, "Pod", "metadata.name")?,
                    uid: meta.uid.unwrap_or_default(),
                    node: spec.node_name.filter(|n| !n.is_empty()),
                    phase: pod.status.and_then(|s| s.phase),
                    labels: meta.labels,
                    created: meta.creation_timestamp.and_then(|t| t.seconds),
                    volumes: spec
                        .volumes
                        .into_iter()
                        .map(|v| PodVolume {
                            source: proto_volume_source(v.volume_source.as_ref()),
                            name: v.name.unwrap_or_default(),
                        })
                        .collect(),
                })
            }
            Encoding::Json => {
                let value: serde_json::Value = obj.decode_json()?;
                let refs = closure::json_refs(
                    value.get("metadata").unwrap_or(&serde_json::Value::Null),
                    value.get("spec").unwrap_or(&serde_json::Value::Null),
                );
                let pod: JsonPod = obj.decode_json()?;
                Ok(PodInfo {
                    refs,
                    hook_annotations: hook_annotations(pod.metadata.annotations),
                    containers: pod.spec.containers.into_iter().map(|c| c.name).collect(),
                    namespace: pod.metadata.namespace.unwrap_or_default(),
                    name: required(pod.metadata.name, key, "Pod", "metadata.name")?,
                    uid: pod.metadata.uid.unwrap_or_default(),
                    node: pod.spec.node_name.filter(|n| !n.is_empty()),
                    phase: pod.status.phase,
                    labels: pod.metadata.labels,
                    created: parse_time(pod.metadata.creation_timestamp.as_deref()),
                    volumes: pod
                        .spec
                        .volumes
                        .iter()
                        .map(|v| PodVolume {
                            name: v
                                .get("name")
                                .and_then(|n| n.as_str())
                                .unwrap_or_default()
                                .to_string(),
                            source: json_volume_source(v),
                        })
                        .collect(),
                })
            }
        }
    }

    /// `<namespace>/<name>`.
    pub fn qualified_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

impl ClaimInfo {
    /// Summarize a stored claim.
    pub fn from_object(key: &str, obj: &StoredObject) -> Result<ClaimInfo, ResourceError> {
        check_kind(obj, key, "PersistentVolumeClaim")?;
        let kind = "PersistentVolumeClaim";
        match obj.encoding() {
            Encoding::Protobuf => {
                let c: slim::Claim = obj.decode_protobuf()?;
                let meta = c.metadata.unwrap_or_default();
                Ok(ClaimInfo {
                    namespace: meta.namespace.unwrap_or_default(),
                    name: required(meta.name, key, kind, "metadata.name")?,
                    uid: meta.uid.unwrap_or_default(),
                    volume_name: c.spec.and_then(|s| s.volume_name).filter(|v| !v.is_empty()),
                    phase: c.status.and_then(|s| s.phase),
                })
            }
            Encoding::Json => {
                let c: JsonClaim = obj.decode_json()?;
                Ok(ClaimInfo {
                    namespace: c.metadata.namespace.unwrap_or_default(),
                    name: required(c.metadata.name, key, kind, "metadata.name")?,
                    uid: c.metadata.uid.unwrap_or_default(),
                    volume_name: c.spec.volume_name.filter(|v| !v.is_empty()),
                    phase: c.status.phase,
                })
            }
        }
    }
}

impl VolumeInfo {
    /// Summarize a stored persistent volume.
    pub fn from_object(key: &str, obj: &StoredObject) -> Result<VolumeInfo, ResourceError> {
        check_kind(obj, key, "PersistentVolume")?;
        let kind = "PersistentVolume";
        match obj.encoding() {
            Encoding::Protobuf => {
                let pv: core::PersistentVolume = obj.decode_protobuf()?;
                let meta = pv.metadata.unwrap_or_default();
                let spec = pv.spec.unwrap_or_default();
                Ok(VolumeInfo {
                    name: required(meta.name, key, kind, "metadata.name")?,
                    uid: meta.uid.unwrap_or_default(),
                    source: proto_pv_source(spec.persistent_volume_source.as_ref()),
                    capacity: spec.capacity.get("storage").and_then(|q| q.string.clone()),
                    claim: spec
                        .claim_ref
                        .map(|r| (r.namespace.unwrap_or_default(), r.name.unwrap_or_default())),
                })
            }
            Encoding::Json => {
                let pv: JsonPv = obj.decode_json()?;
                let spec = serde_json::Value::Object(pv.spec.clone());
                let source = if let Some(csi) = pv.spec.get("csi") {
                    PvSource::Csi {
                        driver: json_str(csi, &["driver"]).unwrap_or_default(),
                        volume_handle: json_str(csi, &["volumeHandle"]).unwrap_or_default(),
                    }
                } else if let Some(c) = pv.spec.get("cinder") {
                    PvSource::Cinder {
                        volume_id: json_str(c, &["volumeID"]).unwrap_or_default(),
                    }
                } else {
                    const NOT_SOURCES: [&str; 9] = [
                        "capacity",
                        "accessModes",
                        "claimRef",
                        "persistentVolumeReclaimPolicy",
                        "storageClassName",
                        "mountOptions",
                        "volumeMode",
                        "nodeAffinity",
                        "volumeAttributesClassName",
                    ];
                    PvSource::Other {
                        source: pv
                            .spec
                            .keys()
                            .find(|k| !NOT_SOURCES.contains(&k.as_str()))
                            .cloned()
                            .unwrap_or_else(|| "none".into()),
                    }
                };
                Ok(VolumeInfo {
                    name: required(pv.metadata.name, key, kind, "metadata.name")?,
                    uid: pv.metadata.uid.unwrap_or_default(),
                    source,
                    capacity: json_str(&spec, &["capacity", "storage"]),
                    claim: spec.get("claimRef").map(|r| {
                        (
                            json_str(r, &["namespace"]).unwrap_or_default(),
                            json_str(r, &["name"]).unwrap_or_default(),
                        )
                    }),
                })
            }
        }
    }
}
