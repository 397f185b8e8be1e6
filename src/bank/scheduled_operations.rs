//! The scheduled operations kept in the bank (Karbor's scheduled operations), one record
//! each under `scheduled_operations/<uuid>`. Unreadable records are returned as problems, not hidden.

use futures::StreamExt;

use super::backend::{self, Kind};
use super::format::{self, pb};
use super::{Bank, BankError, BankFile, Problem};
use crate::model::{ScheduledOperationId, StoredOperation};

impl Bank {
    /// Writes a scheduled operation whole.
    pub async fn put_operation(&self, operation: &StoredOperation) -> Result<(), BankError> {
        let record = pb::ScheduledOperation::from(operation);
        self.backend
            .put(
                Kind::ScheduledOperation,
                &record.id,
                format::encode(&record)?,
            )
            .await?;
        Ok(())
    }

    /// Removes a scheduled operation; `false` if there was none.
    pub async fn remove_operation(&self, id: &ScheduledOperationId) -> Result<bool, BankError> {
        let name = id.to_string();
        match self.backend.get(Kind::ScheduledOperation, &name).await {
            Ok(_) => {}
            Err(backend::BackendError::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        self.backend.delete(Kind::ScheduledOperation, &name).await?;
        Ok(true)
    }

    /// Every scheduled operation, oldest first, and the files under `scheduled_operations/`
    /// that cannot be read.
    pub async fn operations(&self) -> Result<(Vec<StoredOperation>, Vec<Problem>), BankError> {
        let names = self.backend.list(Kind::ScheduledOperation).await?;
        let backend = self.backend.clone();
        let read = futures::stream::iter(names)
            .map(|info| {
                let backend = backend.clone();
                async move {
                    let operation = match backend.get(Kind::ScheduledOperation, &info.name).await {
                        Ok(d) => format::decode::<pb::ScheduledOperation>(&d)
                            .map_err(|e| e.to_string())
                            .and_then(|t| StoredOperation::try_from(t).map_err(|e| e.to_string()))
                            .map(Some),
                        Err(backend::BackendError::NotFound { .. }) => Ok(None),
                        Err(e) => return Err(BankError::from(e)),
                    };
                    Ok((info.name, operation))
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
        let mut operations = Vec::new();
        let mut problems = Vec::new();
        for r in read {
            let (name, operation) = r?;
            match operation {
                Ok(Some(t)) if t.id.to_string() == name => operations.push(t),
                Ok(Some(t)) => problems.push(Problem::file(
                    BankFile::new(Kind::ScheduledOperation, name.clone()),
                    format!("holds scheduled operation {}, not {name}", t.id),
                    Vec::new(),
                )),
                Ok(None) => {}
                Err(reason) => problems.push(Problem::file(
                    BankFile::new(Kind::ScheduledOperation, name),
                    reason,
                    Vec::new(),
                )),
            }
        }
        operations.sort_by_key(|t| (t.created, t.id));
        Ok((operations, problems))
    }
}
