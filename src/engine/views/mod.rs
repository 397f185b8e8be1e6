//! What the application API returns: typed views of pods, checkpoints, restores and
//! outcomes. They serialize as the CLI's `-o json|yaml` and the HTTP API show them, and
//! deserialize again on the client side, so a view printed through `--agent` is the view
//! printed locally.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{
    BackupId, BackupLink, Checkpoint, CheckpointId, CheckpointStatus, CheckpointSummary, Edge,
    Encoding, HookOnError, HookOutcome, HookPhase, HookRecord, ObjectId, ObjectRef, Outcome,
    ResourceRecord, ResourceStatus, ResourceType, RestoreId, RestoreRecord, RestoreStatus,
    Revision, SelectionRecord, TakenBy, VolumeDriver, VolumeId, VolumeRecord, VolumeStatus,
    WriteStats,
};
use crate::protection::retention::Candidate;

mod pods;

pub use pods::{ClosureView, DependentView, DependentsView, PodDetail, PodList, PodPage, PodView};

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn opt_time(t: Option<DateTime<Utc>>) -> Option<String> {
    t.filter(|t| t.timestamp_millis() != 0).map(rfc3339)
}

/// The selection a checkpoint was asked for.
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
    pub pods: Vec<ObjectRef>,
}

impl From<&SelectionRecord> for SelectionView {
    fn from(s: &SelectionRecord) -> Self {
        Self {
            namespaces: s.namespaces.clone(),
            label_selector: s.label_selector.clone(),
            field_selector: s.field_selector.clone(),
            pods: s.pods.clone(),
        }
    }
}

/// Counts of a checkpoint's volume records.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeCounts {
    /// Records of Cinder volumes.
    pub cinder: u64,
    /// Of which have an available backup in this checkpoint.
    pub backed_up: u64,
    /// Of which were not backed up on purpose (`not-protected`: `--no-volume-backups`).
    #[serde(default)]
    pub skipped: u64,
}

/// A volume record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeView {
    /// The Cinder volume (empty for a pod volume that is not a Cinder volume).
    pub volume_id: VolumeId,
    /// Its backup in this checkpoint (empty: none).
    pub backup_id: BackupId,
    /// Its state.
    pub status: VolumeStatus,
    /// Why it is not protected or failed.
    pub reason: String,
    /// Incremental backup.
    pub incremental: bool,
    /// The backup it builds on (empty: none).
    pub parent_backup_id: BackupId,
    /// The checkpoint that holds that parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_checkpoint: Option<CheckpointId>,
    /// Size of the volume.
    pub size_gib: u64,
    /// Pods mounting it.
    pub pods: Vec<ObjectRef>,
    /// The volume's name in the pod spec.
    pub pod_volume: String,
    /// The claim (empty: none).
    pub claim: String,
    /// The persistent volume (empty: none).
    pub persistent_volume: String,
    /// How it is attached.
    pub driver: Option<VolumeDriver>,
    /// How the backup was taken: `snapshot` or `direct` (`""`: not recorded).
    #[serde(default)]
    pub taken_by: TakenBy,
    /// Why it was taken directly (Cinder's message).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub taken_reason: String,
    /// The snapshot its backup was made from (empty: none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub snapshot_id: String,
    /// When the snapshot was requested (Unix ms; 0: none).
    #[serde(default)]
    pub snapshot_sent_unix_ms: u64,
    /// When the snapshot was `available` (Unix ms; 0: never).
    #[serde(default)]
    pub snapshot_available_unix_ms: u64,
    /// At most how long after the revision was read the volume's data was frozen (ms).
    #[serde(default)]
    pub skew_ms: u64,
    /// Depth of the backup in its incremental chain (0: full).
    #[serde(default)]
    pub chain_depth: u32,
}

impl From<&VolumeRecord> for VolumeView {
    fn from(v: &VolumeRecord) -> Self {
        Self {
            volume_id: v.volume_id.clone(),
            backup_id: v.backup_id.clone().unwrap_or_default(),
            status: v.status,
            reason: v.reason.clone(),
            incremental: v.incremental,
            parent_backup_id: v.parent_backup_id.clone().unwrap_or_default(),
            parent_checkpoint: v.parent_checkpoint.clone(),
            size_gib: v.size_gib,
            pods: v.pods.clone(),
            pod_volume: v.pod_volume.clone(),
            claim: v
                .claim
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            persistent_volume: v.persistent_volume.clone().unwrap_or_default(),
            driver: v.driver,
            taken_by: v.taken_by,
            taken_reason: v.taken_reason.clone(),
            snapshot_id: v
                .snapshot_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            snapshot_sent_unix_ms: v.snapshot_sent_unix_ms,
            snapshot_available_unix_ms: v.snapshot_available_unix_ms,
            skew_ms: v.skew_ms,
            chain_depth: v.chain_depth,
        }
    }
}

/// A resource record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceView {
    /// Karbor-style type.
    #[serde(rename = "type")]
    pub kind: ResourceType,
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
    pub object_id: Option<ObjectId>,
    /// Plain size.
    pub size: u64,
    /// How it is stored.
    pub encoding: Encoding,
    /// Its state.
    pub status: ResourceStatus,
    /// Why.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// What it refers to: owners, referenced objects, its namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edges: Vec<Edge>,
}

impl From<&ResourceRecord> for ResourceView {
    fn from(r: &ResourceRecord) -> Self {
        Self {
            kind: r.kind.clone(),
            namespace: r.object.namespace().to_string(),
            name: r.object.name().to_string(),
            uid: r.uid.to_string(),
            resource_version: r.resource_version.clone(),
            key: r.key.to_string(),
            object_id: r.object_id,
            size: r.size,
            encoding: r.encoding,
            status: r.status,
            reason: r.reason.clone(),
            edges: r.edges.clone(),
        }
    }
}

/// Statistics of the write.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default)]
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

impl From<WriteStats> for StatsView {
    fn from(s: WriteStats) -> Self {
        Self {
            objects: s.objects,
            objects_new: s.objects_new,
            bytes_plain: s.bytes_plain,
            bytes_new: s.bytes_new,
            packs_new: s.packs_new,
            seconds: s.seconds,
        }
    }
}

/// A checkpoint, Karbor-style: in listings without volume and resource records (their
/// counts only), in `show` with them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointView {
    /// The Karbor project it belongs to (empty: none, the cluster admin's).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub project_id: String,
    /// Id.
    pub id: CheckpointId,
    /// Its state.
    pub status: CheckpointStatus,
    /// Karbor's backup_name.
    pub backup_name: String,
    /// Karbor's description.
    pub description: String,
    /// RFC 3339.
    pub created_at: Option<String>,
    /// RFC 3339.
    pub finished_at: Option<String>,
    /// The etcd revision read.
    pub etcd_revision: Revision,
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
    /// The exec hooks run around the snapshot burst (only in `show`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<HookView>,
    /// Pods whose declared hooks were not run (`--skip-hooks`), `<namespace>/<name>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks_skipped: Vec<String>,
}

/// One exec hook as it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookView {
    /// `<namespace>/<name>`.
    pub pod: String,
    /// The container it ran in.
    pub container: String,
    /// The command.
    pub command: Vec<String>,
    /// `pre` (before the snapshot burst) or `post` (after it).
    pub phase: HookPhase,
    /// `Continue` or `Fail`.
    pub on_error: HookOnError,
    /// `succeeded`, `failed` or `timed-out`.
    pub outcome: HookOutcome,
    /// Its exit code, when it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// RFC 3339, milliseconds.
    pub started_at: String,
    /// RFC 3339, milliseconds.
    pub finished_at: String,
    /// How long it took.
    pub duration_ms: u64,
    /// The first few KiB of its stdout.
    pub stdout: String,
    /// The first few KiB of its stderr.
    pub stderr: String,
    /// Whether its output was longer than what is kept.
    #[serde(default)]
    pub output_truncated: bool,
}

impl From<&HookRecord> for HookView {
    fn from(h: &HookRecord) -> Self {
        let rfc3339 = |t: chrono::DateTime<chrono::Utc>| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        Self {
            pod: h.pod.to_string(),
            container: h.container.clone(),
            command: h.command.clone(),
            phase: h.phase,
            on_error: h.on_error,
            outcome: h.outcome,
            exit_code: h.exit_code,
            reason: h.reason.clone(),
            started_at: rfc3339(h.started),
            finished_at: rfc3339(h.finished()),
            duration_ms: h.duration_ms,
            stdout: h.stdout.clone(),
            stderr: h.stderr.clone(),
            output_truncated: h.output_truncated,
        }
    }
}

impl CheckpointView {
    /// The view of a checkpoint with its records (`show`).
    pub fn new(cp: &Checkpoint, resources: &[ResourceRecord], volumes: &[VolumeRecord]) -> Self {
        let mut view = Self::from(&CheckpointSummary::from(cp));
        view.volume_counts = VolumeCounts {
            cinder: volumes.iter().filter(|v| v.is_cinder()).count() as u64,
            backed_up: volumes
                .iter()
                .filter(|v| v.status == VolumeStatus::Available)
                .count() as u64,
            skipped: volumes
                .iter()
                .filter(|v| v.is_cinder() && v.status == VolumeStatus::NotProtected)
                .count() as u64,
        };
        view.volumes = volumes.iter().map(VolumeView::from).collect();
        view.resources = resources.iter().map(ResourceView::from).collect();
        view.hooks = cp.hooks.iter().map(HookView::from).collect();
        view.hooks_skipped = cp.hooks_skipped.iter().map(ToString::to_string).collect();
        view
    }
}

impl From<&CheckpointSummary> for CheckpointView {
    fn from(c: &CheckpointSummary) -> Self {
        Self {
            project_id: c.project_id.clone(),
            id: c.id.clone(),
            status: c.status,
            backup_name: c.backup_name.clone(),
            description: c.description.clone(),
            created_at: opt_time(Some(c.created)),
            finished_at: opt_time(c.finished),
            etcd_revision: c.revision,
            pods: c.pods,
            resource_count: c.resource_count,
            reason: c.reason.clone(),
            plan: c.plan.clone(),
            selection: SelectionView::from(&c.selection),
            volumes: Vec::new(),
            volume_counts: VolumeCounts {
                cinder: c.cinder_volumes,
                backed_up: c.backed_up,
                skipped: c.skipped,
            },
            resources: Vec::new(),
            stats: c.stats.into(),
            hooks: Vec::new(),
            hooks_skipped: Vec::new(),
        }
    }
}

/// A checkpoint as listings show it: what it is and the Cinder backups it holds, with
/// what each depends on (what retention decides on). Without resource and volume records:
/// `show` has those.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointItem {
    /// The Karbor project it belongs to (empty: none, the cluster admin's).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub project_id: String,
    /// Its id.
    pub id: CheckpointId,
    /// The plan it belongs to, if any.
    #[serde(default)]
    pub plan: Option<String>,
    /// Its status.
    pub status: CheckpointStatus,
    /// When it was taken.
    pub created_at: DateTime<Utc>,
    /// Its Cinder volume backups (left out when there are none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<BackupLink>,
    /// Karbor's backup_name.
    #[serde(default)]
    pub backup_name: String,
    /// Karbor's description.
    #[serde(default)]
    pub description: String,
    /// When it was finished.
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    /// The etcd revision read.
    #[serde(default)]
    pub etcd_revision: Revision,
    /// Pods protected.
    #[serde(default)]
    pub pods: u32,
    /// Resources (pods, claims, volumes, ...) stored.
    #[serde(default)]
    pub resource_count: u64,
    /// How many volume records are Cinder volumes, and how many of those are backed up.
    #[serde(default)]
    pub volume_counts: VolumeCounts,
    /// Compressed bytes it added to the bank.
    #[serde(default)]
    pub bytes_new: u64,
    /// Why it is `error`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

impl From<&CheckpointSummary> for CheckpointItem {
    fn from(c: &CheckpointSummary) -> Self {
        Self {
            project_id: c.project_id.clone(),
            id: c.id.clone(),
            plan: (!c.plan.is_empty()).then(|| c.plan.clone()),
            status: c.status,
            created_at: c.created,
            volumes: c.backups.clone(),
            backup_name: c.backup_name.clone(),
            description: c.description.clone(),
            finished_at: c.finished.filter(|t| t.timestamp_millis() != 0),
            etcd_revision: c.revision,
            pods: c.pods,
            resource_count: c.resource_count,
            volume_counts: VolumeCounts {
                cinder: c.cinder_volumes,
                backed_up: c.backed_up,
                skipped: c.skipped,
            },
            bytes_new: c.stats.bytes_new,
            reason: c.reason.clone(),
        }
    }
}

impl From<&CheckpointItem> for Candidate {
    fn from(c: &CheckpointItem) -> Self {
        Candidate {
            id: c.id.clone(),
            plan: c.plan.clone(),
            status: c.status,
            created_at: c.created_at,
            volumes: c.volumes.clone(),
        }
    }
}

/// Checkpoints, oldest first, and the manifests that could not be read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointList {
    /// The checkpoints.
    pub items: Vec<CheckpointItem>,
    /// What could not be read (named, not hidden).
    pub problems: Vec<crate::bank::Problem>,
}

/// One restored resource.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoredView {
    /// Type.
    #[serde(rename = "type")]
    pub kind: ResourceType,
    /// Source.
    pub source: String,
    /// Target.
    pub target: String,
    /// New id.
    pub new_id: String,
    /// What happened.
    pub status: Outcome,
    /// Why.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// A restore record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreView {
    /// The Karbor project it belongs to (empty: none, the cluster admin's).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub project_id: String,
    /// Id.
    pub id: RestoreId,
    /// The checkpoint restored.
    pub checkpoint_id: CheckpointId,
    /// Its state.
    pub status: RestoreStatus,
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
    pub new_resources: BTreeMap<String, String>,
    /// How it went, in numbers.
    #[serde(default)]
    pub stats: RestoreStatsView,
}

/// How a restore went, in numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RestoreStatsView {
    /// The (last) run's wall time.
    pub run_seconds: f64,
    /// Writes of the restore record and its journal.
    pub record_writes: u64,
    /// The time spent in them.
    pub record_write_seconds: f64,
    /// API-server answers "retry later" (429) honoured.
    pub throttled: u64,
    /// The time waited as they asked.
    pub throttle_wait_seconds: f64,
    /// Whole-object reads (GETs) the bank made during the run.
    pub bank_gets: u64,
    /// Ranged reads the bank made during the run.
    pub bank_range_gets: u64,
    /// Of those reads, the ones of packs.
    pub bank_pack_gets: u64,
    /// The bytes they read, as stored.
    pub bank_bytes_read: u64,
}

impl From<&crate::model::RestoreStats> for RestoreStatsView {
    fn from(s: &crate::model::RestoreStats) -> Self {
        Self {
            run_seconds: s.run_time.as_secs_f64(),
            record_writes: s.record_writes,
            record_write_seconds: s.record_write_time.as_secs_f64(),
            throttled: s.throttled,
            throttle_wait_seconds: s.throttle_wait.as_secs_f64(),
            bank_gets: s.bank_gets,
            bank_range_gets: s.bank_range_gets,
            bank_pack_gets: s.bank_pack_gets,
            bank_bytes_read: s.bank_bytes_read,
        }
    }
}

impl From<&RestoreRecord> for RestoreView {
    fn from(r: &RestoreRecord) -> Self {
        Self {
            project_id: r.project_id.clone(),
            id: r.id.clone(),
            checkpoint_id: r.checkpoint.clone(),
            status: r.status,
            restore_name: r.restore_name.clone(),
            restore_description: r.restore_description.clone(),
            created_at: opt_time(Some(r.created)),
            finished_at: opt_time(r.finished),
            reason: r.reason.clone(),
            resources: r
                .resources
                .iter()
                .map(|x| RestoredView {
                    kind: x.kind.clone(),
                    source: x.source.to_string(),
                    target: x.target.clone(),
                    new_id: x.new_id.clone(),
                    status: x.outcome,
                    reason: x.reason.clone(),
                })
                .collect(),
            new_resources: r.new_resources.clone(),
            stats: (&r.stats).into(),
        }
    }
}

/// A restore as listings show it; `show` has the per-resource outcomes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreItem {
    /// The Karbor project it belongs to (empty: none, the cluster admin's).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub project_id: String,
    /// The restore's id.
    pub id: RestoreId,
    /// The checkpoint restored from.
    pub checkpoint_id: CheckpointId,
    /// Its status.
    pub status: RestoreStatus,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// When it ended.
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    /// Karbor's restore_name.
    #[serde(default)]
    pub restore_name: String,
    /// Karbor's restore_description.
    #[serde(default)]
    pub restore_description: String,
    /// Resources it covered.
    #[serde(default)]
    pub resources: usize,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

impl From<&RestoreRecord> for RestoreItem {
    fn from(r: &RestoreRecord) -> Self {
        Self {
            project_id: r.project_id.clone(),
            id: r.id.clone(),
            checkpoint_id: r.checkpoint.clone(),
            status: r.status,
            created_at: r.created,
            finished_at: r.finished.filter(|t| t.timestamp_millis() != 0),
            restore_name: r.restore_name.clone(),
            restore_description: r.restore_description.clone(),
            resources: r.resources.len(),
            reason: r.reason.clone(),
        }
    }
}

/// Restore records, oldest first, and the files that could not be read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreList {
    /// The restores.
    pub items: Vec<RestoreItem>,
    /// What could not be read.
    pub problems: Vec<crate::bank::Problem>,
}

/// One dependency check of readiness (etcd, bank, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessCheck {
    /// What was checked.
    pub name: String,
    /// Whether it answered.
    pub ok: bool,
    /// Why not, or a detail (endpoint, revision, ...).
    #[serde(default)]
    pub message: Option<String>,
}
