//! The agent's view of the protection engine: the [`Engine`] trait and the request and
//! response types it speaks.
//!
//! The agent is a shell (schedule, retention, HTTP, election) around *some* engine that
//! does the work; it must not reach into `protection` or `bank` itself. Keeping the seam
//! this narrow lets the real engine (an adapter over [`crate::protection`] and
//! [`crate::bank`]) and the test engines in `tests/` be swapped freely.
//!
//! Types here are the agent's own and serialize as the HTTP API shows them. Details that
//! only pass through the agent (a checkpoint's full manifest, a restore's per-resource
//! outcomes, protectable listings) travel as [`serde_json::Value`], so that their shape is
//! owned by the engine.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A checkpoint's id, as the bank names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String)]
pub struct CheckpointId(pub String);

impl fmt::Display for CheckpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for CheckpointId {
    fn from(s: &str) -> Self {
        CheckpointId(s.to_string())
    }
}

/// Which pods a protect covers. All given criteria must hold; an empty selection means
/// every pod of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SelectionSpec {
    /// Namespaces; empty means all.
    pub namespaces: Vec<String>,
    /// Label selector over pod labels, kubectl syntax (`app=web,tier in (a,b),!canary`).
    pub label_selector: Option<String>,
    /// Explicit pods as `<namespace>/<name>`; empty means no restriction.
    pub pods: Vec<String>,
}

/// A protect: one checkpoint of the selected pods and their Cinder volumes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProtectRequest {
    /// The plan this checkpoint belongs to (recorded in the checkpoint, used by retention);
    /// `None` for an on-demand checkpoint outside any plan.
    #[serde(default)]
    pub plan: Option<String>,
    /// The pods to protect.
    #[serde(default)]
    pub selection: SelectionSpec,
    /// Protect parameters, Karbor's OPTIONS_SCHEMA (`backup_name`, `description`, and
    /// podbank's `incremental`, `force`, ...); see `podbank schema protect`.
    #[schema(value_type = Object)]
    pub parameters: Value,
}

/// Counters of one protect, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct ProtectStats {
    /// Pods in the checkpoint.
    pub pods: u64,
    /// Objects newly written to the bank.
    pub objects_written: u64,
    /// Objects the bank already held (deduplicated).
    pub objects_reused: u64,
    /// Bytes newly written to the bank (after compression).
    pub bytes_written: u64,
    /// Cinder backups created.
    pub volume_backups: u64,
    /// Cinder backups that failed.
    pub volume_backup_failures: u64,
}

impl ProtectStats {
    /// Share of objects that were already in the bank, 0.0..=1.0 (0 when nothing was read).
    pub fn dedup_ratio(&self) -> f64 {
        let total = self.objects_written + self.objects_reused;
        if total == 0 {
            0.0
        } else {
            self.objects_reused as f64 / total as f64
        }
    }
}

/// What a finished protect produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProtectOutcome {
    /// The new checkpoint.
    pub checkpoint_id: CheckpointId,
    /// Its status: `available`, or `error` when some volume backups failed.
    pub status: CheckpointStatus,
    /// Counters.
    pub stats: ProtectStats,
}

/// A checkpoint's life cycle (Karbor's states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointStatus {
    /// Being written.
    Protecting,
    /// Complete and restorable.
    Available,
    /// Protect failed (partly); the reason is in the checkpoint's detail.
    Error,
    /// Being deleted.
    Deleting,
    /// Deleted (kept as a record by some banks).
    Deleted,
    /// Delete failed; deleting again may succeed.
    ErrorDeleting,
}

/// One Cinder volume backup of a checkpoint, with what it depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VolumeBackupRef {
    /// The Cinder volume backed up.
    pub volume_id: String,
    /// The Cinder backup.
    pub backup_id: String,
    /// Whether the backup is incremental (it then depends on a parent backup).
    #[serde(default)]
    pub incremental: bool,
    /// The parent backup of an incremental backup, if known.
    #[serde(default)]
    pub parent_backup_id: Option<String>,
    /// The checkpoint holding the parent backup, if known.
    #[serde(default)]
    pub parent_checkpoint_id: Option<CheckpointId>,
}

/// A checkpoint as listings show it: enough for retention to decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointSummary {
    /// Its id.
    pub id: CheckpointId,
    /// The plan it belongs to, if any.
    #[serde(default)]
    pub plan: Option<String>,
    /// Its status.
    pub status: CheckpointStatus,
    /// When it was taken.
    pub created_at: DateTime<Utc>,
    /// Its Cinder volume backups.
    #[serde(default)]
    pub volumes: Vec<VolumeBackupRef>,
}

/// Which checkpoints to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct CheckpointFilter {
    /// Only this plan's checkpoints.
    pub plan: Option<String>,
}

/// A restore of (part of) a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// The checkpoint to restore from.
    pub checkpoint_id: CheckpointId,
    /// Pods to restore as `<namespace>/<name>` or uid; empty means every pod of the
    /// checkpoint.
    #[serde(default)]
    pub pods: Vec<String>,
    /// Restore parameters, Karbor's RESTORE_SCHEMA (`restore_name`,
    /// `restore_description`); see `podbank schema restore`.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub parameters: Value,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// A restore's status (Karbor's states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RestoreStatus {
    /// Running.
    InProgress,
    /// Every resource restored.
    Success,
    /// Some resource failed; the per-resource outcomes say which.
    Fail,
}

/// A restore as listings show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RestoreSummary {
    /// The restore's id.
    pub id: String,
    /// The checkpoint restored from.
    pub checkpoint_id: CheckpointId,
    /// Its status.
    pub status: RestoreStatus,
    /// When it started.
    pub created_at: DateTime<Utc>,
}

/// Which protectable pods to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ProtectableQuery {
    /// Namespaces; empty means all.
    pub namespaces: Vec<String>,
    /// Label selector.
    pub label_selector: Option<String>,
    /// Field selector (`metadata.name`, `spec.nodeName`, `status.phase`, ...).
    pub field_selector: Option<String>,
}

/// One dependency check of readiness (etcd, bank, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReadinessCheck {
    /// What was checked.
    pub name: String,
    /// Whether it answered.
    pub ok: bool,
    /// Why not, or a detail (endpoint, revision, ...).
    #[serde(default)]
    pub message: Option<String>,
}

/// Errors the engine reports; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The thing asked for does not exist (HTTP 404).
    #[error("{what} {id} not found")]
    NotFound {
        /// What kind of thing (checkpoint, restore, pod).
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// The request is invalid: fix the parameters (HTTP 400).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The request conflicts with the current state, e.g. a checkpoint that other
    /// checkpoints' incremental backups depend on (HTTP 409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A dependency (etcd, the bank, Cinder, the API server) is unreachable; retry later
    /// (HTTP 503).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// This engine cannot do that (yet); the message says what is missing (HTTP 501).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The operation failed (HTTP 500); the message says where.
    #[error("{0}")]
    Failed(String),
}

/// The protection engine, as the agent drives it.
///
/// Who drives: the agent calls these methods from its scheduler (protect, then list and
/// delete for retention) and from HTTP handlers; calls may run concurrently, so
/// implementations must be safe to call from several tasks at once.
///
/// Long operations (`protect`, `delete_checkpoint`, `create_restore`) return when the work
/// is done; the agent runs them in the background and tracks them as operations.
///
/// Cancellation: on shutdown, after the grace period, the agent drops a future that is
/// still running. An implementation must then leave nothing half-visible: a checkpoint
/// appears only when complete (the bank writes its manifest last), or is recorded as
/// `error` with the reason.
#[async_trait]
pub trait Engine: Send + Sync + 'static {
    /// Take one checkpoint of `request.selection`, recorded under `request.plan`.
    async fn protect(&self, request: ProtectRequest) -> Result<ProtectOutcome, EngineError>;

    /// The checkpoints in the bank matching `filter`, in no particular order.
    async fn list_checkpoints(
        &self,
        filter: CheckpointFilter,
    ) -> Result<Vec<CheckpointSummary>, EngineError>;

    /// One checkpoint in full (manifest, pods, volume backups, status reason).
    async fn show_checkpoint(&self, id: &CheckpointId) -> Result<Value, EngineError>;

    /// Delete a checkpoint and its Cinder backups. Fails with
    /// [`EngineError::Conflict`] if another checkpoint's incremental backup depends on it.
    async fn delete_checkpoint(&self, id: &CheckpointId) -> Result<(), EngineError>;

    /// Restore from a checkpoint; returns the finished restore's record.
    async fn create_restore(&self, request: RestoreRequest) -> Result<RestoreSummary, EngineError>;

    /// Every restore record.
    async fn list_restores(&self) -> Result<Vec<RestoreSummary>, EngineError>;

    /// One restore in full, with its per-resource outcomes.
    async fn show_restore(&self, id: &str) -> Result<Value, EngineError>;

    /// Protectable pods (`OS::Kubernetes::Pod` instances) read from etcd.
    async fn list_protectables(&self, query: ProtectableQuery) -> Result<Value, EngineError>;

    /// One protectable pod, by uid or `<namespace>/<name>`.
    async fn show_protectable(&self, id: &str) -> Result<Value, EngineError>;

    /// The dependents of a pod: its Cinder volumes (`OS::Cinder::Volume`), and why its
    /// other volumes are not protectable.
    async fn protectable_dependents(&self, id: &str) -> Result<Value, EngineError>;

    /// Whether etcd and the bank answer. Every check is reported, failed or not.
    async fn readiness(&self) -> Vec<ReadinessCheck>;
}
