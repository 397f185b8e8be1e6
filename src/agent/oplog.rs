//! An operation between the two writes of its Karbor operation log: [`logged`].

use std::future::Future;

use crate::api::OperationResult;
use crate::engine::operation_logs::{save, OperationLog};
use crate::engine::{Engine, EngineError};

/// Takes the ids an operation's result names that the log lacks.
fn note_result(log: &mut OperationLog, result: &OperationResult) {
    match result {
        OperationResult::Protect { checkpoint_id, .. }
        | OperationResult::PlanRun { checkpoint_id, .. }
        | OperationResult::Delete { checkpoint_id, .. } => {
            log.checkpoint_id
                .get_or_insert_with(|| checkpoint_id.clone());
        }
        OperationResult::Restore {
            id, checkpoint_id, ..
        } => {
            log.restore_id.get_or_insert_with(|| id.clone());
            log.checkpoint_id
                .get_or_insert_with(|| checkpoint_id.clone());
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
            note_result(&mut log, r);
            log.end(None);
        }
        Err(e) => log.end(Some(e.to_string())),
    }
    save(engine, &log).await;
    outcome
}
