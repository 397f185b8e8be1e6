//! podbank's HTTP API as data: the request and response bodies that the agent's server
//! ([`crate::agent::http`]) sends and its client ([`client::RemoteEngine`]) reads, in one
//! place, so that the two cannot disagree on a field. Requests are the engine's own request
//! types ([`crate::engine::ProtectRequest`], [`crate::engine::RestoreRequest`]), sent as they are; what of them an agent
//! does not take from a caller is said once, by the engine
//! ([`crate::engine::AgentRefusal`]). Answers are the engine's views, the
//! records of long operations ([`OperationRecord`]) and errors ([`ErrorBody`]).
//!
//! Owns: wire shapes, the mapping of [`EngineError`]s to HTTP statuses and error codes.
//! Must not touch: the engine's work, the agent's state.

pub mod client;

use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::engine::plans::RetentionReport;
use crate::engine::{CheckpointView, EngineError, PlanView, ReadinessCheck, RestoreView};
use crate::model::{BackupId, CheckpointId, CheckpointStatus, RestoreId, RestoreStatus};
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

/// The media type of podbank's own representation of the resources the agent's
/// Karbor routes serve: what the CLI's `--agent` mode asks for in `Accept`.
pub const PODBANK_JSON: &str = "application/vnd.podbank+json";

/// The one Karbor provider podbank is: its id never changes.
pub const PROVIDER_ID: &str = "b6a1c0de-7f3e-4c55-9a2d-0d0b0a4b0d01";

/// The error code an HTTP status stands for, when the body says none (Karbor's fault
/// bodies): the client's side of [`status_of`].
pub fn code_of_status(status: u16) -> &'static str {
    match status {
        400 => "invalid",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        501 => "unsupported",
        503 => "unavailable",
        _ => "failed",
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
