//! Serializable views of checkpoints and restores, shared by the CLI and the agent's API.

use serde::{Deserialize, Serialize};

use prost::Message;

use crate::bank::{pb, CheckpointBrief, ObjectId};

fn time(ms: u64) -> Option<String> {
    if ms == 0 {
        return None;
    }
    chrono::DateTime::from_timestamp_millis(i64::try_from(ms).ok()?)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// A checkpoint, Karbor-style.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointView {
    /// Id.
    pub id: String,
    /// protecting | available | error | deleting | deleted | error-deleting.
    pub status: String,
    /// Karbor's backup_name.
    pub backup_name: String,
    /// Karbor's description.
    pub description: String,
    /// RFC 3339.
    pub created_at: Option<String>,
    /// RFC 3339.
    pub finished_at: Option<String>,
    /// The etcd revision read.
    pub etcd_revision: i64,
    /// Pods protected.
    pub pods: u32,
    /// Resources (pods, claims, volumes) stored.
    pub resource_count: u64,
    /// Why it is `error`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// The plan that made it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub plan: String,
    /// The selection asked for.
    pub selection: SelectionView,
    /// Volume records (not in listings: see `volume_counts`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeView>,
    /// How many volume records are Cinder volumes, and how many of those are backed up.
    #[serde(default)]
    pub volume_counts: VolumeCounts,
    /// Resource records (only in `show`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceView>,
    /// Write statistics.
    pub stats: StatsView,
}

/// The selection recorded.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SelectionView {
    /// Namespaces (empty: all).
    pub namespaces: Vec<String>,
    /// Label selector.
    pub label_selector: String,
    /// Field selector.
    pub field_selector: String,
    /// Explicit pods.
    pub pods: Vec<String>,
}

/// Counts of a checkpoint's volume records.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeCounts {
    /// Records of Cinder volumes.
    pub cinder: u64,
    /// Of which have an available backup in this checkpoint.
    pub backed_up: u64,
}

/// A volume record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeView {
    /// The Cinder volume (empty for a pod volume that is not a Cinder volume).
    pub volume_id: String,
    /// Its backup in this checkpoint.
    pub backup_id: String,
    /// pending | backing-up | available | error | not-protected | deleted.
    pub status: String,
    /// Why it is not protected or failed.
    pub reason: String,
    /// Incremental backup.
    pub incremental: bool,
    /// The backup it builds on.
    pub parent_backup_id: String,
    /// Size of the volume.
    pub size_gib: u64,
    /// Pods mounting it.
    pub pods: Vec<String>,
    /// The volume's name in the pod spec.
    pub pod_volume: String,
    /// The claim.
    pub claim: String,
    /// The persistent volume.
    pub persistent_volume: String,
    /// cinder-csi | cinder-in-tree | inline-cinder.
    pub driver: String,
}

/// A resource record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceView {
    /// Karbor-style type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// uid.
    pub uid: String,
    /// resourceVersion (= mod revision).
    pub resource_version: String,
    /// The etcd key.
    pub key: String,
    /// Object id in the bank.
    pub object_id: String,
    /// Plain size.
    pub size: u64,
    /// protobuf | json.
    pub encoding: String,
    /// protected | not-protected | error.
    pub status: String,
    /// Why.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// Statistics of the write.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct StatsView {
    /// Resources stored.
    pub objects: u64,
    /// Of which new to the bank.
    pub objects_new: u64,
    /// Plain bytes of all resources.
    pub bytes_plain: u64,
    /// Compressed bytes written.
    pub bytes_new: u64,
    /// Packs written.
    pub packs_new: u64,
    /// Seconds taken.
    pub seconds: f64,
}

impl CheckpointView {
    /// The view of a manifest; `resources` and `volumes` as read from the bank
    /// ([`crate::bank::Bank::resources`], [`crate::bank::Bank::volume_records`]), or fewer.
    pub fn new(cp: &pb::Checkpoint, resources: &[pb::Resource], volumes: &[pb::Volume]) -> Self {
        let sel = cp.selection.clone().unwrap_or_default();
        let stats = cp.stats.unwrap_or_default();
        Self {
            id: cp.id.clone(),
            status: cp.status().label().to_string(),
            backup_name: cp.backup_name.clone(),
            description: cp.description.clone(),
            created_at: time(cp.created_unix_ms),
            finished_at: time(cp.finished_unix_ms),
            etcd_revision: cp.etcd_revision,
            pods: cp.pods,
            resource_count: cp.resource_count,
            reason: cp.reason.clone(),
            plan: cp.plan.clone(),
            selection: SelectionView {
                namespaces: sel.namespaces,
                label_selector: sel.label_selector,
                field_selector: sel.field_selector,
                pods: sel.pods,
            },
            volume_counts: VolumeCounts::of(volumes),
            volumes: volumes
                .iter()
                .map(|v| VolumeView {
                    volume_id: v.volume_id.clone(),
                    backup_id: v.backup_id.clone(),
                    status: v.status().label().to_string(),
                    reason: v.reason.clone(),
                    incremental: v.incremental,
                    parent_backup_id: v.parent_backup_id.clone(),
                    size_gib: v.size_gib,
                    pods: v.pods.clone(),
                    pod_volume: v.pod_volume.clone(),
                    claim: v.claim.clone(),
                    persistent_volume: v.persistent_volume.clone(),
                    driver: v.driver.clone(),
                })
                .collect(),
            resources: resources
                .iter()
                .map(|r| ResourceView {
                    kind: r.r#type.clone(),
                    namespace: r.namespace.clone(),
                    name: r.name.clone(),
                    uid: r.uid.clone(),
                    resource_version: r.resource_version.clone(),
                    key: r.key.clone(),
                    object_id: ObjectId::from_slice(&r.object_id)
                        .map(|i| i.to_hex())
                        .unwrap_or_default(),
                    size: r.size,
                    encoding: r.encoding.clone(),
                    status: r.status().label().to_string(),
                    reason: r.reason.clone(),
                })
                .collect(),
            stats: StatsView {
                objects: stats.objects,
                objects_new: stats.objects_new,
                bytes_plain: stats.bytes_plain,
                bytes_new: stats.bytes_new,
                packs_new: stats.packs_new,
                seconds: stats.seconds,
            },
        }
    }
}

impl CheckpointView {
    /// The view of a manifest read as a brief (listings): no volume records, their counts.
    pub fn brief(b: &CheckpointBrief) -> Self {
        // Same field numbers: the brief's bytes read as a manifest with reduced volumes.
        let mut cp = pb::Checkpoint::decode(b.encode_to_vec().as_slice()).unwrap_or_default();
        let volumes = std::mem::take(&mut cp.volumes);
        let mut view = Self::new(&cp, &[], &[]);
        view.volume_counts = VolumeCounts::of(&volumes);
        view
    }
}

impl VolumeCounts {
    /// The counts of these volume records.
    fn of(volumes: &[pb::Volume]) -> Self {
        Self {
            cinder: volumes.iter().filter(|v| !v.volume_id.is_empty()).count() as u64,
            backed_up: volumes
                .iter()
                .filter(|v| v.status() == pb::VolumeStatus::VolumeAvailable)
                .count() as u64,
        }
    }
}

/// A restore record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreView {
    /// Id.
    pub id: String,
    /// The checkpoint restored.
    pub checkpoint_id: String,
    /// in_progress | success | fail.
    pub status: String,
    /// Karbor's restore_name.
    pub restore_name: String,
    /// Karbor's restore_description.
    pub restore_description: String,
    /// RFC 3339.
    pub created_at: Option<String>,
    /// RFC 3339.
    pub finished_at: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Per-resource outcome.
    pub resources: Vec<RestoredView>,
    /// Old id -> new id (Karbor's new_resources).
    pub new_resources: std::collections::BTreeMap<String, String>,
}

/// One restored resource.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoredView {
    /// Type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Source.
    pub source: String,
    /// Target.
    pub target: String,
    /// New id.
    pub new_id: String,
    /// Status.
    pub status: String,
    /// Why.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

impl RestoreView {
    /// The view of a restore record.
    pub fn new(r: &pb::Restore) -> Self {
        Self {
            id: r.id.clone(),
            checkpoint_id: r.checkpoint_id.clone(),
            status: r.status().label().to_string(),
            restore_name: r.restore_name.clone(),
            restore_description: r.restore_description.clone(),
            created_at: time(r.created_unix_ms),
            finished_at: time(r.finished_unix_ms),
            reason: r.reason.clone(),
            resources: r
                .resources
                .iter()
                .map(|x| RestoredView {
                    kind: x.r#type.clone(),
                    source: x.source.clone(),
                    target: x.target.clone(),
                    new_id: x.new_id.clone(),
                    status: x.status.clone(),
                    reason: x.reason.clone(),
                })
                .collect(),
            new_resources: r.new_resources.clone().into_iter().collect(),
        }
    }
}
