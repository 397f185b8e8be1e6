//! Karbor's operation logs ([`OperationLog`], in the model), written through the engine:
//! [`save`] writes one or warns. The agent's service wraps each of its protects, restores
//! and deletes between two writes; a verification writes its own, and the scheduler its
//! runs. A log that cannot be written is a warning: the operation runs all the same.

use super::Engine;
pub use crate::model::{BadOperationLog, LoggedOperation as OperationType, OperationLog, Phase};

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
