//! The plans kept in the bank (Karbor's plans), one record each under `plans/<uuid>`.
//! Unreadable records are returned as problems, not hidden.

use futures::StreamExt;

use super::backend::{self, Kind};
use super::format::{self, pb};
use super::{Bank, BankError, BankFile, Problem};
use crate::model::{PlanId, StoredPlan};

impl Bank {
    /// Writes a plan whole (a new one, or a change of one).
    pub async fn put_plan(&self, plan: &StoredPlan) -> Result<(), BankError> {
        let record = pb::Plan::from(plan);
        self.backend
            .put(Kind::Plan, &record.id, format::encode(&record)?)
            .await?;
        Ok(())
    }

    /// Removes a plan; `false` if there was none. Its checkpoints stay.
    pub async fn remove_plan(&self, id: &PlanId) -> Result<bool, BankError> {
        let name = id.to_string();
        match self.backend.get(Kind::Plan, &name).await {
            Ok(_) => {}
            Err(backend::BackendError::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        self.backend.delete(Kind::Plan, &name).await?;
        Ok(true)
    }

    /// Every plan, oldest first, and the files under `plans/` that cannot be read.
    pub async fn plans(&self) -> Result<(Vec<StoredPlan>, Vec<Problem>), BankError> {
        let names = self.backend.list(Kind::Plan).await?;
        let backend = self.backend.clone();
        let read = futures::stream::iter(names)
            .map(|info| {
                let backend = backend.clone();
                async move {
                    let plan = match backend.get(Kind::Plan, &info.name).await {
                        Ok(d) => format::decode::<pb::Plan>(&d)
                            .map_err(|e| e.to_string())
                            .and_then(|p| StoredPlan::try_from(p).map_err(|e| e.to_string()))
                            .map(Some),
                        Err(backend::BackendError::NotFound { .. }) => Ok(None),
                        Err(e) => return Err(BankError::from(e)),
                    };
                    Ok((info.name, plan))
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
        let mut plans = Vec::new();
        let mut problems = Vec::new();
        for r in read {
            let (name, plan) = r?;
            match plan {
                Ok(Some(p)) if p.id.to_string() == name => plans.push(p),
                Ok(Some(p)) => problems.push(Problem::file(
                    BankFile::new(Kind::Plan, name.clone()),
                    format!("holds plan {}, not {name}", p.id),
                    Vec::new(),
                )),
                Ok(None) => {}
                Err(reason) => problems.push(Problem::file(
                    BankFile::new(Kind::Plan, name),
                    reason,
                    Vec::new(),
                )),
            }
        }
        plans.sort_by_key(|p| (p.created, p.id));
        Ok((plans, problems))
    }
}
