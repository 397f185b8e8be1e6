//! A checkpoint: one consistent cut of the selected pods at one etcd revision, the records
//! of what it holds, and the Cinder backups of their volumes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    BackupId, CheckpointId, CheckpointStatus, Encoding, EtcdKey, GroupSnapshotId, HookRecord,
    ObjectId, ObjectRef, Relation, ResourceStatus, ResourceType, Revision, SnapshotId, Uid,
    VolumeDriver, VolumeId, VolumeStatus,
};

/// Which cluster a checkpoint was read from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterRecord {
    /// The etcd endpoints.
    pub etcd_endpoints: Vec<String>,
    /// kube-apiserver's `--etcd-prefix`.
    pub etcd_prefix: String,
    /// etcd's cluster id, if known.
    pub etcd_cluster_id: u64,
    /// A name for the cluster, if configured.
    pub name: String,
}

/// The selection a checkpoint was asked for, as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectionRecord {
    /// Namespaces (empty: all).
    pub namespaces: Vec<String>,
    /// Label selector, as written.
    pub label_selector: String,
    /// Field selector, as written.
    pub field_selector: String,
    /// Explicit pods.
    pub pods: Vec<ObjectRef>,
    /// Explicit pod uids.
    pub uids: Vec<String>,
}

/// Where a checkpoint's records are: the bank's business (resource and volume tables are
/// objects of the bank). Above the bank this is opaque: [`crate::bank::Bank::resources`]
/// and [`crate::bank::Bank::volume_records`] read them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableRefs {
    /// The resource tables, in order.
    pub resources: Vec<ObjectId>,
    /// The tables of pod volumes that are no Cinder volume.
    pub volumes: Vec<ObjectId>,
    /// Tables `bank repair` found lost.
    pub lost: Vec<ObjectId>,
    /// Table ids in the manifest that are no object id (a damaged manifest).
    pub malformed: usize,
}

impl TableRefs {
    /// Whether the checkpoint has no tables (a tombstone, or a recovered partial one).
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty() && self.volumes.is_empty()
    }
}

/// What writing a checkpoint cost.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WriteStats {
    /// Resources stored.
    pub objects: u64,
    /// Of which were not in the bank yet.
    pub objects_new: u64,
    /// Plain bytes of all stored resources.
    pub bytes_plain: u64,
    /// Compressed bytes written for new objects.
    pub bytes_new: u64,
    /// Packs written.
    pub packs_new: u64,
    /// Seconds the write took.
    pub seconds: f64,
    /// etcd range requests made.
    pub etcd_requests: u64,
    /// Times the scan started over after a compaction.
    pub etcd_restarts: u64,
    /// Resource tables not in the bank yet.
    pub tables_new: u64,
}

/// One volume of a checkpoint's pods: a Cinder volume with its backup, or a pod volume that
/// is not protected and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeRecord {
    /// The Cinder volume (empty for a pod volume that is not a Cinder volume).
    pub volume_id: VolumeId,
    /// Its backup in this checkpoint.
    pub backup_id: Option<BackupId>,
    /// Size of the backup.
    pub size_gib: u64,
    /// Whether the backup is incremental.
    pub incremental: bool,
    /// The backup an incremental backup builds on.
    pub parent_backup_id: Option<BackupId>,
    /// The checkpoint holding that parent.
    pub parent_checkpoint: Option<CheckpointId>,
    /// Its state.
    pub status: VolumeStatus,
    /// Why it is not protected, or failed.
    pub reason: String,
    /// The pods that mount it.
    pub pods: Vec<ObjectRef>,
    /// The claim, if any.
    pub claim: Option<ObjectRef>,
    /// The persistent volume, if any.
    pub persistent_volume: Option<String>,
    /// How it is attached.
    pub driver: Option<VolumeDriver>,
    /// The volume's name in the first pod's spec.
    pub pod_volume: String,
    /// How long its backup took.
    pub backup_seconds: u64,
    /// A generic ephemeral volume's claim.
    pub ephemeral: bool,
    /// How the backup was taken: from a snapshot of the burst, or directly from the volume.
    pub taken_by: TakenBy,
    /// Why it was taken directly (Cinder's message when it refused the snapshot).
    pub taken_reason: String,
    /// The snapshot the backup was made from (deleted once the backup is done).
    pub snapshot_id: Option<SnapshotId>,
    /// The group snapshot `snapshot_id` is a member of, when the volume's Cinder group
    /// was snapshotted as one (Cinder deletes a member only with its group snapshot).
    pub group_snapshot_id: Option<GroupSnapshotId>,
    /// When the snapshot's create request was sent (Unix ms; 0: none).
    pub snapshot_sent_unix_ms: u64,
    /// When the snapshot was seen `available` (Unix ms; 0: never).
    pub snapshot_available_unix_ms: u64,
    /// How long after etcd revision R was read the volume's data was frozen, at most (ms): to
    /// the snapshot being `available`, or, taken directly, to the backup's create request.
    pub skew_ms: u64,
    /// The backup's depth in its incremental chain: 0 for a full backup, the parent's + 1
    /// for an incremental one (0 in an incremental record written before this was recorded).
    pub chain_depth: u32,
}

/// How a volume's backup was taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TakenBy {
    /// Not recorded (no backup, or a checkpoint written before this was recorded).
    #[default]
    Unrecorded,
    /// From a snapshot taken in the burst right after the revision was read.
    Snapshot,
    /// Straight from the volume (`force` when in use), as Cinder refused a snapshot.
    Direct,
}

impl TakenBy {
    /// Its name in the bank and in output (`""` when not recorded).
    pub fn label(self) -> &'static str {
        match self {
            TakenBy::Unrecorded => "",
            TakenBy::Snapshot => "snapshot",
            TakenBy::Direct => "direct",
        }
    }

    /// The value named `label` (anything unknown is [`TakenBy::Unrecorded`]).
    pub fn from_label(label: &str) -> TakenBy {
        match label {
            "snapshot" => TakenBy::Snapshot,
            "direct" => TakenBy::Direct,
            _ => TakenBy::Unrecorded,
        }
    }
}

// The enum comes out of `labelled!`, which derives for every enum alike.
#[allow(clippy::derivable_impls)]
impl Default for VolumeStatus {
    fn default() -> Self {
        VolumeStatus::Pending
    }
}

impl VolumeRecord {
    /// Whether it is a Cinder volume (and so what delete, restore and retention work on).
    pub fn is_cinder(&self) -> bool {
        !self.volume_id.is_empty()
    }

    /// Whether its backup is there to restore from.
    pub fn is_backed_up(&self) -> bool {
        self.status == VolumeStatus::Available && self.backup_id.is_some()
    }
}

/// One object of a checkpoint: what it is, where it was in etcd, where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourceRecord {
    /// Karbor-style type.
    pub kind: ResourceType,
    /// Its etcd key.
    pub key: EtcdKey,
    /// Namespace (empty for cluster-scoped objects) and name.
    pub object: ObjectRef,
    /// `metadata.uid`.
    pub uid: Uid,
    /// `metadata.resourceVersion` (its mod revision).
    pub resource_version: String,
    /// The revision of its last change.
    pub mod_revision: Revision,
    /// Its stored value (decrypted) in the bank; `None` if it was not stored.
    pub object_id: Option<ObjectId>,
    /// The plain size of that value.
    pub size: u64,
    /// How the value is encoded.
    pub encoding: Encoding,
    /// Its state.
    pub status: ResourceStatus,
    /// Why it is not protected, or failed.
    pub reason: String,
    /// For claims and volumes: a pod using it (recorded by no version of podbank so far).
    pub parent: Option<ObjectRef>,
    /// What it refers to: its owners, the objects it references, its namespace.
    pub edges: Vec<Edge>,
}

/// A reference of one resource to another (`pod -> ReplicaSet`, `pod -> ConfigMap`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Edge {
    /// How it refers.
    pub relation: Relation,
    /// What it refers to.
    #[serde(rename = "type")]
    pub kind: ResourceType,
    /// `<namespace>/<name>` (the name alone for a namespace).
    pub target: ObjectRef,
    /// An owner's uid, as the ownerReference names it.
    #[serde(default, skip_serializing_if = "Uid::is_empty")]
    pub uid: Uid,
    /// The managing controller.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub controller: bool,
}

/// A checkpoint's manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Its id.
    pub id: CheckpointId,
    /// Its state.
    pub status: CheckpointStatus,
    /// Karbor's `backup_name`.
    pub backup_name: String,
    /// Karbor's `description`.
    pub description: String,
    /// When it started.
    pub created: DateTime<Utc>,
    /// When it ended.
    pub finished: Option<DateTime<Utc>>,
    /// The etcd revision every object was read at.
    pub revision: Revision,
    /// Which cluster.
    pub cluster: ClusterRecord,
    /// The selection asked for.
    pub selection: SelectionRecord,
    /// Where its records are (the bank's).
    pub tables: TableRefs,
    /// Resources recorded.
    pub resource_count: u64,
    /// The Cinder volumes (a record each, shared ones once).
    pub volumes: Vec<VolumeRecord>,
    /// Records of pod volumes that are no Cinder volume (in the volume tables).
    pub volume_table_count: u64,
    /// Why it is `error` (or what a delete kept).
    pub reason: String,
    /// The agent plan that made it (empty: on demand).
    pub plan: String,
    /// What writing it cost.
    pub stats: WriteStats,
    /// The protect parameters as given (JSON).
    pub options_json: String,
    /// Pods protected.
    pub pods: u32,
    /// The Karbor project that made it (empty: none, the cluster admin's).
    pub project_id: String,
    /// The exec hooks run around the snapshot burst, pre-hooks first, each in the order
    /// its pod was read.
    pub hooks: Vec<HookRecord>,
    /// Pods whose declared hooks were not run because protect was told so (`--skip-hooks`).
    pub hooks_skipped: Vec<ObjectRef>,
}

impl Checkpoint {
    /// A new checkpoint in progress.
    pub fn new(id: CheckpointId, created: DateTime<Utc>) -> Self {
        Self {
            id,
            status: CheckpointStatus::Protecting,
            backup_name: String::new(),
            description: String::new(),
            created,
            finished: None,
            revision: Revision::default(),
            cluster: ClusterRecord::default(),
            selection: SelectionRecord::default(),
            tables: TableRefs::default(),
            resource_count: 0,
            volumes: Vec::new(),
            volume_table_count: 0,
            reason: String::new(),
            plan: String::new(),
            stats: WriteStats::default(),
            options_json: String::new(),
            pods: 0,
            project_id: String::new(),
            hooks: Vec::new(),
            hooks_skipped: Vec::new(),
        }
    }

    /// Its Cinder backups.
    pub fn backups(&self) -> impl Iterator<Item = &BackupId> + '_ {
        self.volumes.iter().filter_map(|v| v.backup_id.as_ref())
    }

    /// The record of Cinder volume `id`, if it holds one.
    pub fn volume(&self, id: &VolumeId) -> Option<&VolumeRecord> {
        self.volumes.iter().find(|v| &v.volume_id == id)
    }
}

/// A checkpoint as listings show it: its manifest without the volume records' details.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointSummary {
    /// Its id.
    pub id: CheckpointId,
    /// Its state.
    pub status: CheckpointStatus,
    /// Karbor's `backup_name`.
    pub backup_name: String,
    /// Karbor's `description`.
    pub description: String,
    /// When it started.
    pub created: DateTime<Utc>,
    /// When it ended.
    pub finished: Option<DateTime<Utc>>,
    /// The etcd revision read.
    pub revision: Revision,
    /// The selection asked for.
    pub selection: SelectionRecord,
    /// Resources recorded.
    pub resource_count: u64,
    /// Records of Cinder volumes.
    pub cinder_volumes: u64,
    /// Of which have an available backup.
    pub backed_up: u64,
    /// Of which were not backed up on purpose (`not-protected`, e.g. `--no-volume-backups`).
    pub skipped: u64,
    /// Why it is `error`.
    pub reason: String,
    /// The plan that made it.
    pub plan: String,
    /// What writing it cost.
    pub stats: WriteStats,
    /// Pods protected.
    pub pods: u32,
    /// The Cinder backups it holds, with what each depends on.
    pub backups: Vec<BackupLink>,
    /// The Karbor project that made it (empty: none).
    pub project_id: String,
}

/// One Cinder backup of a checkpoint, with what it depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupLink {
    /// The Cinder volume backed up.
    pub volume_id: VolumeId,
    /// The Cinder backup.
    pub backup_id: BackupId,
    /// Whether the backup is incremental (it then depends on a parent backup).
    #[serde(default)]
    pub incremental: bool,
    /// The parent backup of an incremental backup, if known.
    #[serde(default)]
    pub parent_backup_id: Option<BackupId>,
    /// The checkpoint holding the parent backup, if known.
    #[serde(default)]
    pub parent_checkpoint_id: Option<CheckpointId>,
}

impl BackupLink {
    /// The backup of a volume record, if it has one.
    pub fn of(v: &VolumeRecord) -> Option<Self> {
        v.backup_id.clone().map(|backup_id| BackupLink {
            volume_id: v.volume_id.clone(),
            backup_id,
            incremental: v.incremental,
            parent_backup_id: v.parent_backup_id.clone(),
            parent_checkpoint_id: v.parent_checkpoint.clone(),
        })
    }
}

impl From<&Checkpoint> for CheckpointSummary {
    fn from(cp: &Checkpoint) -> Self {
        Self {
            id: cp.id.clone(),
            status: cp.status,
            backup_name: cp.backup_name.clone(),
            description: cp.description.clone(),
            created: cp.created,
            finished: cp.finished,
            revision: cp.revision,
            selection: cp.selection.clone(),
            resource_count: cp.resource_count,
            cinder_volumes: cp.volumes.iter().filter(|v| v.is_cinder()).count() as u64,
            backed_up: cp
                .volumes
                .iter()
                .filter(|v| v.status == VolumeStatus::Available)
                .count() as u64,
            skipped: cp
                .volumes
                .iter()
                .filter(|v| v.is_cinder() && v.status == VolumeStatus::NotProtected)
                .count() as u64,
            reason: cp.reason.clone(),
            plan: cp.plan.clone(),
            stats: cp.stats,
            pods: cp.pods,
            backups: cp.volumes.iter().filter_map(BackupLink::of).collect(),
            project_id: cp.project_id.clone(),
        }
    }
}
