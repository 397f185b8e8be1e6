//! podbank's HTTP API as data: the request and response bodies that the agent's server
//! ([`crate::agent::http`]) sends and its client ([`client::RemoteEngine`]) reads, in one
//! place, so that the two cannot disagree on a field. Requests are the bodies the agent has
//! always taken ([`ProtectBody`], [`RestoreBody`]), which carry a part of the engine's
//! requests: what the agent decides itself (whether volumes are backed up, how restores
//! reach the API server) is not the caller's to say. Answers are the engine's views, the
//! records of long operations ([`OperationRecord`]) and errors ([`ErrorBody`]).
//!
//! Owns: wire shapes, the mapping of [`EngineError`]s to HTTP statuses and error codes.
//! Must not touch: the engine's work, the agent's state.

pub mod client;

use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use serde_json::Value;

use crate::engine::plans::RetentionReport;
use crate::engine::{
    CheckpointView, EngineError, PlanView, ProtectRequest, ReadinessCheck, RestoreMode,
    RestoreRequest, RestoreView, SelectionSpec,
};
use crate::model::{BackupId, CheckpointId, CheckpointStatus, ObjectRef, RestoreId, RestoreStatus};
use crate::protection::DeleteOutcome;

/// The body of an error answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable code: `unauthorized`, `not_found`, `invalid`, `conflict`, `busy`,
    /// `shutting_down`, `unavailable`, `unsupported`, `failed`, `no_route`.
    pub code: String,
    /// What to do about it.
    pub message: String,
}

/// The HTTP status and error code of an engine error.
pub fn status_of(e: &EngineError) -> (StatusCode, &'static str) {
    match e {
        EngineError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        EngineError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
        EngineError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        EngineError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        EngineError::Unsupported(_) => (StatusCode::NOT_IMPLEMENTED, "unsupported"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "failed"),
    }
}

/// The engine error an error code stands for (the client's side of [`status_of`]).
pub fn error_of(code: &str, message: String) -> EngineError {
    match code {
        "not_found" | "no_route" => EngineError::NotFound(message),
        "invalid" => EngineError::Invalid(message),
        "conflict" | "busy" => EngineError::Conflict(message),
        "unavailable" | "shutting_down" => EngineError::Unavailable(message),
        "unsupported" => EngineError::Unsupported(message),
        _ => EngineError::Failed(message),
    }
}

/// The pods of `POST /v1/checkpoints`. All given criteria must hold; an empty selection
/// means every pod of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct SelectionBody {
    /// Namespaces; empty means all.
    pub namespaces: Vec<String>,
    /// Label selector over pod labels, kubectl syntax (`app=web,tier in (a,b),!canary`).
    #[serde(alias = "label_selector")]
    pub label_selector: Option<String>,
    /// Explicit pods as `<namespace>/<name>`; empty means no restriction.
    #[schema(value_type = Vec<String>)]
    pub pods: Vec<ObjectRef>,
}

/// `POST /v1/checkpoints`: take a checkpoint now. Whether volumes are backed up is the
/// agent's setting (`podbank agent --no-volume-backups`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProtectBody {
    /// The plan this checkpoint belongs to (recorded in the checkpoint, used by retention);
    /// `None` for an on-demand checkpoint outside any plan.
    #[serde(default)]
    pub plan: Option<String>,
    /// The pods to protect.
    #[serde(default)]
    pub selection: SelectionBody,
    /// Protect parameters, Karbor's OPTIONS_SCHEMA (`backup_name`, `description`, and
    /// podbank's `incremental`, `force`, ...); see `podbank schema protect`.
    #[schema(value_type = Object)]
    pub parameters: Value,
}

impl From<ProtectBody> for ProtectRequest {
    fn from(b: ProtectBody) -> Self {
        ProtectRequest {
            plan: b.plan,
            selection: SelectionSpec {
                namespaces: b.selection.namespaces,
                label_selector: b.selection.label_selector,
                pods: b.selection.pods,
                ..SelectionSpec::default()
            },
            parameters: b.parameters,
            volume_backups: true,
            secrets_in_plain_bank: false,
            checkpoint_id: None,
        }
    }
}

impl TryFrom<&ProtectRequest> for ProtectBody {
    type Error = EngineError;
    /// The body of a request, or what of it the agent's API does not take.
    fn try_from(r: &ProtectRequest) -> Result<Self, EngineError> {
        let s = &r.selection;
        let refused = [
            (
                s.field_selector.is_some(),
                "a field selector: the agent selects pods by namespace, label selector and name",
            ),
            (
                !s.uids.is_empty(),
                "pod uids: the agent selects pods by namespace, label selector and name",
            ),
            (
                !r.volume_backups,
                "skipping volume backups: whether volumes are backed up is the agent's setting",
            ),
            (
                r.secrets_in_plain_bank,
                "--secrets-in-plain-bank: whether Secrets go into a plain bank is the agent's \
                 setting (bank.secrets_in_plain_bank)",
            ),
        ];
        if let Some((_, what)) = refused.iter().find(|(set, _)| *set) {
            return Err(EngineError::Unsupported(format!(
                "the agent's protect takes no {what}"
            )));
        }
        Ok(ProtectBody {
            plan: r.plan.clone(),
            selection: SelectionBody {
                namespaces: s.namespaces.clone(),
                label_selector: s.label_selector.clone(),
                pods: s.pods.clone(),
            },
            parameters: r.parameters.clone(),
        })
    }
}

/// `POST /v1/restores`: restore (some pods of) a checkpoint into the agent's cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreBody {
    /// The checkpoint to restore from.
    #[schema(value_type = String)]
    #[serde(alias = "checkpoint_id")]
    pub checkpoint_id: CheckpointId,
    /// Pods to restore as `<namespace>/<name>`; empty means every pod of the checkpoint.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub pods: Vec<ObjectRef>,
    /// Restore parameters, Karbor's RESTORE_SCHEMA (`restore_name`,
    /// `restore_description`); see `podbank schema restore`.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub parameters: Value,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

impl From<RestoreBody> for RestoreRequest {
    fn from(b: RestoreBody) -> Self {
        RestoreRequest {
            checkpoint_id: b.checkpoint_id,
            pods: b.pods,
            parameters: b.parameters,
            namespace_map: Default::default(),
            conflict: Default::default(),
            keep_node: false,
            pods_only: false,
            original_volumes: false,
            settle: None,
            concurrency: None,
            volume_concurrency: None,
            mode: RestoreMode::Apply,
            restore_id: None,
        }
    }
}

impl TryFrom<&RestoreRequest> for RestoreBody {
    type Error = EngineError;
    /// The body of a request, or what of it the agent's API does not take.
    fn try_from(r: &RestoreRequest) -> Result<Self, EngineError> {
        let refused = [
            (!r.namespace_map.is_empty(), "namespace map"),
            (r.conflict != Default::default(), "conflict policy"),
            (r.keep_node, "kept node names"),
            (r.pods_only, "--pods-only"),
            (r.original_volumes, "--original-volumes"),
            (
                r.settle.is_some(),
                "settle period (the agent settles for 10 s)",
            ),
            (r.concurrency.is_some(), "concurrency (the agent's is 32)"),
            (
                r.volume_concurrency.is_some(),
                "volume concurrency (the agent's is 8)",
            ),
            (
                r.mode != RestoreMode::Apply,
                "export (it would write on the agent's disk)",
            ),
        ];
        if let Some((_, what)) = refused.iter().find(|(set, _)| *set) {
            return Err(EngineError::Unsupported(format!(
                "the agent's restores take the pods and the restore parameters only, no {what}"
            )));
        }
        Ok(RestoreBody {
            checkpoint_id: r.checkpoint_id.clone(),
            pods: r.pods.clone(),
            parameters: r.parameters.clone(),
        })
    }
}

/// A list wrapper, so that lists can grow fields later.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Items<T> {
    /// The items.
    pub items: Vec<T>,
}

/// `GET /v1/plans`.
#[derive(Debug, Serialize, ToSchema, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanList {
    /// Whether this replica leads (runs the schedules).
    pub leader: bool,
    /// The plans.
    pub items: Vec<PlanView>,
}

/// `GET /readyz`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    /// Whether every check passed.
    pub ready: bool,
    /// Each check.
    #[schema(value_type = Vec<Object>)]
    pub checks: Vec<ReadinessCheck>,
}

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    /// An on-demand protect (`POST /v1/checkpoints`).
    Protect,
    /// A plan run: protect, then retention (scheduled or triggered).
    PlanRun,
    /// A checkpoint delete.
    DeleteCheckpoint,
    /// A restore.
    Restore,
}

/// Where an operation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationState {
    /// Running.
    Running,
    /// Done; `result` holds what it produced.
    Succeeded,
    /// Failed; `error` says why.
    Failed,
    /// Stopped by shutdown after the grace period; `error` says so.
    Cancelled,
}

/// Who started a plan run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The scheduler, on the plan's schedule.
    Schedule,
    /// A person or script, through `POST /v1/plans/{name}/trigger`.
    Manual,
}

/// Counters of one protect, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", default)]
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
    /// The counters of a checkpoint as protect returned it (with its Cinder volumes).
    pub fn of(cp: &CheckpointView) -> Self {
        let s = cp.stats;
        Self {
            pods: u64::from(cp.pods),
            objects_written: s.objects_new,
            objects_reused: s.objects.saturating_sub(s.objects_new),
            bytes_written: s.bytes_new,
            volume_backups: cp
                .volumes
                .iter()
                .filter(|v| !v.backup_id.is_empty())
                .count() as u64,
            volume_backup_failures: cp
                .volumes
                .iter()
                .filter(|v| v.status == crate::model::VolumeStatus::Error)
                .count() as u64,
        }
    }

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

/// What an operation produced, by kind (the field `type` says which).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum OperationResult {
    /// A checkpoint was taken.
    Protect {
        /// The new checkpoint.
        #[schema(value_type = String)]
        checkpoint_id: CheckpointId,
        /// Its status.
        #[schema(value_type = String)]
        status: CheckpointStatus,
        /// Counters.
        stats: ProtectStats,
    },
    /// A plan ran: a checkpoint, then retention.
    PlanRun {
        /// The new checkpoint.
        #[schema(value_type = String)]
        checkpoint_id: CheckpointId,
        /// Its status.
        #[schema(value_type = String)]
        status: CheckpointStatus,
        /// Counters.
        stats: ProtectStats,
        /// What retention did.
        #[schema(value_type = Object)]
        retention: RetentionReport,
        /// Who started it.
        trigger: Trigger,
    },
    /// A checkpoint was deleted.
    Delete {
        /// The checkpoint.
        #[schema(value_type = String)]
        checkpoint_id: CheckpointId,
        /// `deleted`.
        #[schema(value_type = String)]
        status: CheckpointStatus,
        /// Cinder backups removed.
        #[schema(value_type = Vec<String>)]
        backups_deleted: Vec<BackupId>,
        /// Backups kept for newer incremental ones.
        #[schema(value_type = Vec<String>)]
        backups_kept: Vec<BackupId>,
    },
    /// A restore ran.
    Restore {
        /// The restore.
        #[schema(value_type = String)]
        id: RestoreId,
        /// The checkpoint restored.
        #[schema(value_type = String)]
        checkpoint_id: CheckpointId,
        /// Its status.
        #[schema(value_type = String)]
        status: RestoreStatus,
        /// When it started.
        created_at: Option<String>,
    },
}

impl OperationResult {
    /// The result of a protect.
    pub fn protect(cp: &CheckpointView) -> Self {
        OperationResult::Protect {
            checkpoint_id: cp.id.clone(),
            status: cp.status,
            stats: ProtectStats::of(cp),
        }
    }

    /// The result of a delete.
    pub fn delete(d: DeleteOutcome) -> Self {
        OperationResult::Delete {
            checkpoint_id: d.id,
            status: d.status,
            backups_deleted: d.backups_deleted,
            backups_kept: d.backups_kept,
        }
    }

    /// The result of a restore.
    pub fn restore(r: &RestoreView) -> Self {
        OperationResult::Restore {
            id: r.id.clone(),
            checkpoint_id: r.checkpoint_id.clone(),
            status: r.status,
            created_at: r.created_at.clone(),
        }
    }
}

/// One operation, as `GET /v1/operations/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationRecord {
    /// Its id.
    pub id: String,
    /// What it does.
    pub kind: OperationKind,
    /// The plan it runs for, if any.
    pub plan: Option<String>,
    /// What it acts on (a checkpoint id for a delete or restore).
    pub target: Option<String>,
    /// Where it stands.
    pub state: OperationState,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// What it produced.
    pub result: Option<OperationResult>,
    /// Why it failed.
    pub error: Option<String>,
    /// The error's code (as in [`ErrorDetail`]), so that a client can tell a bad request
    /// from a failure.
    #[serde(default)]
    pub error_code: Option<String>,
}

/// The answer to a request that started a long operation.
#[derive(Debug, Serialize, ToSchema, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    /// The operation started.
    pub operation: OperationRecord,
    /// Where to follow it: `/v1/operations/{id}`.
    pub status_url: String,
}
