//! Karbor's operation logs: one per checkpoint create (protect), restore, checkpoint
//! delete, verification and scheduled run, written when the operation starts and again when
//! it ends, with its state and error. The bank stores them; the engine writes them.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::model::{CheckpointId, RestoreId};

/// What an operation log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationType {
    /// A checkpoint create.
    Protect,
    /// A restore.
    Restore,
    /// A checkpoint delete.
    Delete,
    /// A verification.
    Verify,
    /// A run of a scheduled operation.
    ScheduledRun,
}

impl OperationType {
    /// The label Karbor shows (`operation_type`).
    pub fn label(self) -> &'static str {
        match self {
            OperationType::Protect => "protect",
            OperationType::Restore => "restore",
            OperationType::Delete => "delete",
            OperationType::Verify => "verify",
            OperationType::ScheduledRun => "scheduled_run",
        }
    }

    /// The type a label names.
    pub fn from_label(label: &str) -> Option<OperationType> {
        [
            OperationType::Protect,
            OperationType::Restore,
            OperationType::Delete,
            OperationType::Verify,
            OperationType::ScheduledRun,
        ]
        .into_iter()
        .find(|t| t.label() == label)
    }
}

/// Where an operation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Started, not ended.
    Running,
    /// Ended well.
    Succeeded,
    /// Ended with an error.
    Failed,
}

impl Phase {
    /// Its name in a record.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Running => "running",
            Phase::Succeeded => "succeeded",
            Phase::Failed => "failed",
        }
    }

    /// The phase a record names.
    pub fn from_label(label: &str) -> Option<Phase> {
        [Phase::Running, Phase::Succeeded, Phase::Failed]
            .into_iter()
            .find(|p| p.label() == label)
    }
}

/// One operation log.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationLog {
    /// Its UUID.
    pub id: String,
    /// The project that started the operation; empty for one started from the agent's
    /// own API (which has no projects).
    pub project_id: String,
    /// What ran.
    pub operation_type: OperationType,
    /// The checkpoint made, restored, deleted or verified.
    pub checkpoint_id: Option<CheckpointId>,
    /// The plan, as checkpoints record it (a configured plan's name, a stored plan's id).
    pub plan: Option<String>,
    /// The restore.
    pub restore_id: Option<RestoreId>,
    /// The scheduled operation that ran.
    pub scheduled_operation_id: Option<String>,
    /// The verification.
    pub verification_id: Option<String>,
    /// Where it stands.
    pub phase: Phase,
    /// Why it failed; empty otherwise.
    pub error_info: String,
    /// Anything else worth keeping (a JSON object).
    pub extra_info: Map<String, Value>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
}

impl OperationLog {
    /// A log of an operation starting now, in `project_id`.
    pub fn start(operation_type: OperationType, project_id: &str) -> OperationLog {
        OperationLog {
            id: uuid::Uuid::new_v4().to_string(),
            project_id: project_id.to_string(),
            operation_type,
            checkpoint_id: None,
            plan: None,
            restore_id: None,
            scheduled_operation_id: None,
            verification_id: None,
            phase: Phase::Running,
            error_info: String::new(),
            extra_info: Map::new(),
            started_at: Utc::now(),
            ended_at: None,
        }
    }

    /// The log of a run of scheduled operation `scheduled_operation_id` of `plan`, for a
    /// scheduler to pass to [`logged`].
    pub fn scheduled_run(
        project_id: &str,
        scheduled_operation_id: &str,
        plan: Option<String>,
    ) -> OperationLog {
        OperationLog {
            scheduled_operation_id: Some(scheduled_operation_id.to_string()),
            plan,
            ..OperationLog::start(OperationType::ScheduledRun, project_id)
        }
    }

    /// Karbor's `status`: the words Karbor uses for each type of operation.
    pub fn status(&self) -> &'static str {
        use OperationType as T;
        match (self.operation_type, self.phase) {
            (T::Protect, Phase::Running) => "protecting",
            (T::Protect, Phase::Succeeded) => "available",
            (T::Restore, Phase::Running) => "in_progress",
            (T::Restore, Phase::Succeeded) => "success",
            (T::Restore, Phase::Failed) => "fail",
            (T::Delete, Phase::Running) => "deleting",
            (T::Delete, Phase::Succeeded) => "deleted",
            (T::Verify, Phase::Running) => "verifying",
            (T::Verify, Phase::Succeeded) => "success",
            (T::Verify, Phase::Failed) => "failed",
            (T::ScheduledRun, Phase::Running) => "running",
            (T::ScheduledRun, Phase::Succeeded) => "success",
            (T::Protect | T::Delete | T::ScheduledRun, Phase::Failed) => "error",
        }
    }

    /// Marks the log ended now, with `error` if it failed.
    pub fn end(&mut self, error: Option<String>) {
        self.ended_at = Some(Utc::now());
        match error {
            None => self.phase = Phase::Succeeded,
            Some(e) => {
                self.phase = Phase::Failed;
                self.error_info = e;
            }
        }
    }
}

/// A stored operation log that does not read back.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("operation log {id}: {why}")]
pub struct BadOperationLog {
    /// Its id.
    pub id: String,
    /// What is wrong.
    pub why: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scheduled_run_names_its_operation() {
        let mut log = OperationLog::scheduled_run("p", "so-1", Some("plan".into()));
        assert_eq!(log.operation_type.label(), "scheduled_run");
        assert_eq!(log.scheduled_operation_id.as_deref(), Some("so-1"));
        assert_eq!(log.status(), "running");
        log.end(None);
        assert_eq!(log.status(), "success");
    }
}
