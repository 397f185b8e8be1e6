//! Karbor's operation logs: one per checkpoint create (protect), restore, checkpoint
//! delete, verification and scheduled run, kept in the bank (so that every agent replica
//! sees them), written when the operation starts and again when it ends, with its state
//! and error.
//!
//! [`logged`] runs an operation between the two writes; the agent's service wraps each of
//! its protects, restores and deletes in it, a verification writes its own, and a
//! scheduler calls it with [`OperationLog::scheduled_run`]. A log that cannot be written
//! is a warning: the operation runs all the same.

use std::future::Future;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};

use super::{Engine, EngineError};
use crate::api::OperationResult;
use crate::bank::format::pb;
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
    fn label(self) -> &'static str {
        match self {
            Phase::Running => "running",
            Phase::Succeeded => "succeeded",
            Phase::Failed => "failed",
        }
    }

    fn from_label(label: &str) -> Option<Phase> {
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

    /// Takes the ids an operation's result names that the log lacks.
    pub fn note_result(&mut self, result: &OperationResult) {
        match result {
            OperationResult::Protect { checkpoint_id, .. }
            | OperationResult::PlanRun { checkpoint_id, .. }
            | OperationResult::Delete { checkpoint_id, .. } => {
                self.checkpoint_id
                    .get_or_insert_with(|| checkpoint_id.clone());
            }
            OperationResult::Restore {
                id, checkpoint_id, ..
            } => {
                self.restore_id.get_or_insert_with(|| id.clone());
                self.checkpoint_id
                    .get_or_insert_with(|| checkpoint_id.clone());
            }
        }
    }
}

/// Writes `log`, runs `work`, then writes `log` again with how `work` ended (and the
/// checkpoint or restore its result names). A log that cannot be written is logged as a
/// warning; `work`'s result is returned as it is.
pub async fn logged<F>(
    engine: &dyn Engine,
    mut log: OperationLog,
    work: F,
) -> Result<OperationResult, EngineError>
where
    F: Future<Output = Result<OperationResult, EngineError>>,
{
    save(engine, &log).await;
    let outcome = work.await;
    match &outcome {
        Ok(r) => {
            log.note_result(r);
            log.end(None);
        }
        Err(e) => log.end(Some(e.to_string())),
    }
    save(engine, &log).await;
    outcome
}

/// Writes `log`, or warns that it could not.
pub async fn save(engine: &dyn Engine, log: &OperationLog) {
    if let Err(e) = engine.save_operation_log(log).await {
        tracing::warn!(
            "operation log {} ({}) not written: {e}",
            log.id,
            log.operation_type.label()
        );
    }
}

fn ms(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp_millis()).unwrap_or(0)
}

fn time_of(ms: u64) -> Option<DateTime<Utc>> {
    i64::try_from(ms)
        .ok()
        .and_then(|m| Utc.timestamp_millis_opt(m).single())
}

fn some(s: String) -> Option<String> {
    Some(s).filter(|s| !s.is_empty())
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

impl From<&OperationLog> for pb::OperationLog {
    fn from(l: &OperationLog) -> Self {
        pb::OperationLog {
            id: l.id.clone(),
            project_id: l.project_id.clone(),
            operation_type: l.operation_type.label().into(),
            checkpoint_id: l
                .checkpoint_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            plan: l.plan.clone().unwrap_or_default(),
            restore_id: l
                .restore_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            scheduled_operation_id: l.scheduled_operation_id.clone().unwrap_or_default(),
            verification_id: l.verification_id.clone().unwrap_or_default(),
            phase: l.phase.label().into(),
            error_info: l.error_info.clone(),
            extra_info_json: if l.extra_info.is_empty() {
                String::new()
            } else {
                Value::Object(l.extra_info.clone()).to_string()
            },
            started_unix_ms: ms(l.started_at),
            ended_unix_ms: l.ended_at.map(ms).unwrap_or(0),
        }
    }
}

impl TryFrom<pb::OperationLog> for OperationLog {
    type Error = BadOperationLog;
    fn try_from(l: pb::OperationLog) -> Result<Self, BadOperationLog> {
        let bad = |why: String| BadOperationLog {
            id: l.id.clone(),
            why,
        };
        let operation_type = OperationType::from_label(&l.operation_type)
            .ok_or_else(|| bad(format!("unknown operation type {:?}", l.operation_type)))?;
        let phase = Phase::from_label(&l.phase)
            .ok_or_else(|| bad(format!("unknown phase {:?}", l.phase)))?;
        let checkpoint_id = some(l.checkpoint_id.clone())
            .map(|c| c.parse::<CheckpointId>())
            .transpose()
            .map_err(|e| bad(format!("checkpoint id: {e}")))?;
        let restore_id = some(l.restore_id.clone())
            .map(|r| r.parse::<RestoreId>())
            .transpose()
            .map_err(|e| bad(format!("restore id: {e}")))?;
        let extra_info = match some(l.extra_info_json.clone()) {
            None => Map::new(),
            Some(j) => match serde_json::from_str(&j) {
                Ok(Value::Object(m)) => m,
                _ => return Err(bad("extra_info is no JSON object".into())),
            },
        };
        let started_at =
            time_of(l.started_unix_ms).ok_or_else(|| bad("no start time".to_string()))?;
        Ok(OperationLog {
            id: l.id,
            project_id: l.project_id,
            operation_type,
            checkpoint_id,
            plan: some(l.plan),
            restore_id,
            scheduled_operation_id: some(l.scheduled_operation_id),
            verification_id: some(l.verification_id),
            phase,
            error_info: l.error_info,
            extra_info,
            started_at,
            ended_at: Some(l.ended_unix_ms).filter(|m| *m > 0).and_then(time_of),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_survives_its_record_and_ends_with_karbors_words() {
        let mut log = OperationLog::start(OperationType::Restore, "p1");
        log.checkpoint_id = Some(CheckpointId::generate());
        log.restore_id = Some(RestoreId::generate());
        log.extra_info.insert("k".into(), Value::from("v"));
        assert_eq!(log.status(), "in_progress");
        log.end(Some("it broke".into()));
        assert_eq!(log.status(), "fail");
        let back = OperationLog::try_from(pb::OperationLog::from(&log)).unwrap();
        assert_eq!(back.id, log.id);
        assert_eq!(back.checkpoint_id, log.checkpoint_id);
        assert_eq!(back.restore_id, log.restore_id);
        assert_eq!(back.error_info, "it broke");
        assert_eq!(back.phase, Phase::Failed);
        assert_eq!(back.extra_info, log.extra_info);
        assert_eq!(
            back.started_at.timestamp_millis(),
            log.started_at.timestamp_millis()
        );
        assert!(back.ended_at.is_some());
        let mut bad = pb::OperationLog::from(&log);
        bad.operation_type = "dance".into();
        assert!(OperationLog::try_from(bad).is_err());
    }

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
