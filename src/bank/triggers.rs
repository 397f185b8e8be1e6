//! The triggers kept in the bank (Karbor's triggers), one record each under
//! `triggers/<uuid>`. Unreadable records are returned as problems, not hidden.

use futures::StreamExt;

use super::backend::{self, Kind};
use super::format::{self, pb};
use super::{Bank, BankError, BankFile, Problem};
use crate::model::{StoredTrigger, TriggerId};

impl Bank {
    /// Writes a trigger whole (a new one, or a change of one).
    pub async fn put_trigger(&self, trigger: &StoredTrigger) -> Result<(), BankError> {
        let record = pb::Trigger::from(trigger);
        self.backend
            .put(Kind::Trigger, &record.id, format::encode(&record)?)
            .await?;
        Ok(())
    }

    /// Removes a trigger; `false` if there was none.
    pub async fn remove_trigger(&self, id: &TriggerId) -> Result<bool, BankError> {
        let name = id.to_string();
        match self.backend.get(Kind::Trigger, &name).await {
            Ok(_) => {}
            Err(backend::BackendError::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        self.backend.delete(Kind::Trigger, &name).await?;
        Ok(true)
    }

    /// Every trigger, oldest first, and the files under `triggers/` that cannot be read.
    pub async fn triggers(&self) -> Result<(Vec<StoredTrigger>, Vec<Problem>), BankError> {
        let names = self.backend.list(Kind::Trigger).await?;
        let backend = self.backend.clone();
        let read = futures::stream::iter(names)
            .map(|info| {
                let backend = backend.clone();
                async move {
                    let trigger = match backend.get(Kind::Trigger, &info.name).await {
                        Ok(d) => format::decode::<pb::Trigger>(&d)
                            .map_err(|e| e.to_string())
                            .and_then(|t| StoredTrigger::try_from(t).map_err(|e| e.to_string()))
                            .map(Some),
                        Err(backend::BackendError::NotFound { .. }) => Ok(None),
                        Err(e) => return Err(BankError::from(e)),
                    };
                    Ok((info.name, trigger))
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
        let mut triggers = Vec::new();
        let mut problems = Vec::new();
        for r in read {
            let (name, trigger) = r?;
            match trigger {
                Ok(Some(t)) if t.id.to_string() == name => triggers.push(t),
                Ok(Some(t)) => problems.push(Problem::file(
                    BankFile::new(Kind::Trigger, name.clone()),
                    format!("holds trigger {}, not {name}", t.id),
                    Vec::new(),
                )),
                Ok(None) => {}
                Err(reason) => problems.push(Problem::file(
                    BankFile::new(Kind::Trigger, name),
                    reason,
                    Vec::new(),
                )),
            }
        }
        triggers.sort_by_key(|t| (t.created, t.id));
        Ok((triggers, problems))
    }
}
