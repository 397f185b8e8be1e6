//! [`RemoteEngine`]: the application API over the agent's HTTP API, each engine call as
//! the requests the agent answers (long operations started, then followed to their end).

use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde::Serialize;
use serde_json::Value;

use super::{Client, ClientError, ClientSettings};
use crate::api::{OperationRecord, OperationResult, PlanList, Readiness, PROVIDER_ID};
use crate::bank::{GcReport, RepairReport, Stats, VerifyReport};
use crate::engine::{
    CheckpointFilter, CheckpointList, CheckpointView, Engine, EngineError, PlanRun, PlanView,
    PodDetail, PodList, PodSpecifier, ProtectRequest, ReadinessCheck, RestoreList, RestoreRequest,
    RestoreView, SelectionSpec,
};
use crate::model::{CheckpointId, RestoreId};
use crate::protection::DeleteOutcome;

fn body<T: Serialize>(request: &T) -> Result<Value, ClientError> {
    serde_json::to_value(request)
        .map_err(|e| ClientError::Settings(format!("cannot encode the request: {e}")))
}

/// The project the requests name when the settings name none.
pub const DEFAULT_PROJECT: &str = "podbank";

/// The application API of a running agent, over its HTTP API: Karbor's routes, in
/// podbank's own representation ([`crate::api::PODBANK_JSON`]).
#[derive(Debug, Clone)]
pub struct RemoteEngine {
    client: Client,
    project: String,
}

impl RemoteEngine {
    /// An engine that sends every call to the agent `settings` name.
    pub fn new(settings: &ClientSettings) -> Result<RemoteEngine, ClientError> {
        Ok(RemoteEngine {
            client: Client::new(settings)?,
            project: settings
                .project
                .clone()
                .unwrap_or_else(|| DEFAULT_PROJECT.to_string()),
        })
    }

    /// `/v1/{project}/<rest>`.
    fn at<'a>(&'a self, rest: &[&'a str]) -> Vec<&'a str> {
        let mut path = vec!["v1", self.project.as_str()];
        path.extend_from_slice(rest);
        path
    }

    /// `/v1/{project}/providers/{provider}/checkpoints/<rest>`.
    fn checkpoints_at<'a>(&'a self, rest: &[&'a str]) -> Vec<&'a str> {
        let mut path = self.at(&["providers", PROVIDER_ID, "checkpoints"]);
        path.extend_from_slice(rest);
        path
    }

    /// The client it speaks through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Starts a protect on the agent; its operation, running.
    pub async fn start_protect(
        &self,
        request: &ProtectRequest,
    ) -> Result<OperationRecord, EngineError> {
        if let Some(refusal) = request.agent_refusal() {
            return Err(refusal.error("protect"));
        }
        let body = body(request)?;
        Ok(self
            .client
            .start(Method::POST, &self.checkpoints_at(&[]), &[], Some(body))
            .await?)
    }

    /// Starts deleting a checkpoint on the agent; its operation, running.
    pub async fn start_delete(&self, id: &CheckpointId) -> Result<OperationRecord, EngineError> {
        Ok(self
            .client
            .start(
                Method::DELETE,
                &self.checkpoints_at(&[id.as_str()]),
                &[],
                None,
            )
            .await?)
    }

    /// Starts a restore on the agent; its operation, running.
    pub async fn start_restore(
        &self,
        request: &RestoreRequest,
    ) -> Result<OperationRecord, EngineError> {
        if let Some(refusal) = request.agent_refusal() {
            return Err(refusal.error("restore"));
        }
        let body = body(request)?;
        Ok(self
            .client
            .start(Method::POST, &self.at(&["restores"]), &[], Some(body))
            .await?)
    }

    /// Starts a run of the agent's plan `name`; its operation, running.
    pub async fn start_plan(&self, name: &str) -> Result<OperationRecord, EngineError> {
        let body = serde_json::json!({ "run_plan": name });
        Ok(self
            .client
            .start(Method::POST, &self.checkpoints_at(&[]), &[], Some(body))
            .await?)
    }

    /// Follows an operation to its end; `Ok` only when it succeeded.
    pub async fn finish(&self, op: OperationRecord) -> Result<OperationRecord, EngineError> {
        Ok(self.client.wait(op, |_| {}).await?)
    }

    /// Follows an operation to its end; its result.
    async fn result(&self, op: OperationRecord) -> Result<OperationResult, EngineError> {
        let op = self.finish(op).await?;
        op.result.ok_or_else(|| {
            EngineError::Failed(format!("operation {} succeeded without a result", op.id))
        })
    }

    fn unexpected(what: &str, got: &OperationResult) -> EngineError {
        EngineError::Failed(format!("the agent answered a {what} with {got:?}"))
    }

    fn bank_only(what: &str) -> EngineError {
        EngineError::Unsupported(format!(
            "{what} works on the bank directly, not through the agent's API: run it where \
             the bank is reachable, without --agent"
        ))
    }
}

const POD: &str = "OS::Kubernetes::Pod";

#[async_trait]
impl Engine for RemoteEngine {
    async fn pods(&self, selection: &SelectionSpec) -> Result<PodList, EngineError> {
        // Karbor's `parameters` filter, a dict.
        let mut parameters = serde_json::Map::new();
        let namespaces = selection.namespaces.join(",");
        if !namespaces.is_empty() {
            parameters.insert("namespace".into(), namespaces.into());
        }
        if let Some(l) = &selection.label_selector {
            parameters.insert("label_selector".into(), l.as_str().into());
        }
        if let Some(f) = &selection.field_selector {
            parameters.insert("field_selector".into(), f.as_str().into());
        }
        let parameters = Value::Object(parameters).to_string();
        let mut q = Vec::new();
        if parameters != "{}" {
            q.push(("parameters", parameters.as_str()));
        }
        let instances = self.at(&["protectables", POD, "instances"]);
        // The agent answers a page at a time: follow the pages.
        let mut all: PodList = self.client.get(&instances, &q).await?;
        while let Some(marker) = all.next.take() {
            let mut q = q.clone();
            q.push(("marker", marker.as_str()));
            let page: PodList = self.client.get(&instances, &q).await?;
            all.items.extend(page.items);
            all.problems.extend(page.problems);
            all.next = page.next;
        }
        Ok(all)
    }

    async fn pod(&self, pod: &PodSpecifier) -> Result<PodDetail, EngineError> {
        let id = pod.to_string();
        Ok(self
            .client
            .get(&self.at(&["protectables", POD, "instances", &id]), &[])
            .await?)
    }

    async fn protect(&self, request: ProtectRequest) -> Result<CheckpointView, EngineError> {
        let result = self.result(self.start_protect(&request).await?).await?;
        let OperationResult::Protect { checkpoint_id, .. } = &result else {
            return Err(Self::unexpected("protect", &result));
        };
        // As protect returns it here: without the resource records.
        let mut view = self.checkpoint(checkpoint_id).await?;
        view.resources.clear();
        view.volumes.retain(|v| !v.volume_id.is_empty());
        Ok(view)
    }

    async fn checkpoints(&self, filter: &CheckpointFilter) -> Result<CheckpointList, EngineError> {
        let mut q: Vec<(&str, &str)> = filter
            .plan
            .as_deref()
            .map(|p| ("plan", p))
            .into_iter()
            .collect();
        if filter.all {
            q.push(("all", "true"));
        }
        Ok(self.client.get(&self.checkpoints_at(&[]), &q).await?)
    }

    async fn checkpoint(&self, id: &CheckpointId) -> Result<CheckpointView, EngineError> {
        Ok(self
            .client
            .get(&self.checkpoints_at(&[id.as_str()]), &[])
            .await?)
    }

    async fn verify(&self, id: Option<&CheckpointId>) -> Result<VerifyReport, EngineError> {
        let _ = id;
        Err(Self::bank_only("verify"))
    }

    async fn delete_checkpoint(&self, id: &CheckpointId) -> Result<DeleteOutcome, EngineError> {
        match self.result(self.start_delete(id).await?).await? {
            OperationResult::Delete {
                checkpoint_id,
                status,
                backups_deleted,
                backups_kept,
            } => Ok(DeleteOutcome {
                id: checkpoint_id,
                status,
                backups_deleted,
                backups_kept,
            }),
            other => Err(Self::unexpected("delete", &other)),
        }
    }

    async fn restore(&self, request: RestoreRequest) -> Result<RestoreView, EngineError> {
        let result = self.result(self.start_restore(&request).await?).await?;
        let OperationResult::Restore { id, .. } = &result else {
            return Err(Self::unexpected("restore", &result));
        };
        self.restore_record(id).await
    }

    async fn restores(&self) -> Result<RestoreList, EngineError> {
        Ok(self.client.get(&self.at(&["restores"]), &[]).await?)
    }

    async fn restore_record(&self, id: &RestoreId) -> Result<RestoreView, EngineError> {
        Ok(self
            .client
            .get(&self.at(&["restores", id.as_str()]), &[])
            .await?)
    }

    async fn plans(&self) -> Result<Vec<PlanView>, EngineError> {
        let list: PlanList = self.client.get(&self.at(&["plans"]), &[]).await?;
        Ok(list.items)
    }

    async fn run_plan(&self, name: &str) -> Result<PlanRun, EngineError> {
        match self.result(self.start_plan(name).await?).await? {
            OperationResult::PlanRun {
                checkpoint_id,
                retention,
                ..
            } => Ok(PlanRun {
                plan: name.to_string(),
                checkpoint: self.checkpoint(&checkpoint_id).await?,
                retention,
            }),
            other => Err(Self::unexpected("plan run", &other)),
        }
    }

    async fn gc(&self, _wait: Duration) -> Result<GcReport, EngineError> {
        Err(Self::bank_only("gc"))
    }

    async fn repair(&self, _wait: Duration) -> Result<RepairReport, EngineError> {
        Err(Self::bank_only("repair"))
    }

    async fn bank_stats(&self) -> Result<Stats, EngineError> {
        Err(Self::bank_only("bank stats"))
    }

    async fn readiness(&self) -> Vec<ReadinessCheck> {
        match self.client.get_status::<Readiness>(&["readyz"]).await {
            Ok(r) => r.checks,
            Err(e) => vec![ReadinessCheck {
                name: "agent".into(),
                ok: false,
                message: Some(e.to_string()),
            }],
        }
    }
}
