//! The agent's core: what a plan run, an on-demand protect, a delete and a restore do,
//! around the [`Engine`]. HTTP handlers and the scheduler both call in here; neither
//! talks to the engine for long operations directly.
//!
//! A plan run is: protect (recording metrics), then retention for that plan (list every
//! checkpoint, [`plan_retention`], delete in the order given, stopping at the first
//! failure so that a parent is never tried while its child is still there).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::watch;

use super::engine::{
    CheckpointFilter, CheckpointId, CheckpointStatus, Engine, ProtectRequest, RestoreRequest,
};
use super::metrics::Metrics;
use super::operations::{OperationKind, OperationRecord, Operations, Refused};
use super::retention::{plan_retention, RetentionPlan};
use super::schedule::{Plan, PlanView};
use crate::protection::schema::{ProtectParams, RestoreParams};

/// Who started a plan run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The scheduler, on the plan's schedule.
    Schedule,
    /// A person or script, through `POST /v1/plans/{name}/trigger`.
    Manual,
}

/// Why a request could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// No plan of that name is configured.
    #[error("no plan named {0:?}: see GET /v1/plans")]
    UnknownPlan(String),
    /// The request's parameters are invalid.
    #[error("{0}")]
    Invalid(String),
    /// The plan already runs.
    #[error("{0}")]
    Busy(Refused),
    /// The agent is shutting down.
    #[error("{0}")]
    ShuttingDown(Refused),
}

impl From<Refused> for ServiceError {
    fn from(r: Refused) -> Self {
        match r {
            Refused::ShuttingDown => ServiceError::ShuttingDown(r),
            other => ServiceError::Busy(other),
        }
    }
}

/// What retention did in a plan run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RetentionReport {
    /// Checkpoints deleted, in order.
    pub deleted: Vec<CheckpointId>,
    /// Checkpoints the policy would delete but that were not reached (after an error).
    pub pending: Vec<CheckpointId>,
    /// Why retention stopped, if it did.
    pub error: Option<String>,
}

/// The agent's core, shared by the scheduler and the HTTP API.
pub struct Service {
    engine: Arc<dyn Engine>,
    plans: Vec<Plan>,
    ops: Operations,
    metrics: Metrics,
    leading: watch::Receiver<bool>,
    next_runs: Mutex<Vec<Option<DateTime<Utc>>>>,
    last_ops: Mutex<HashMap<String, String>>,
}

impl Service {
    /// A service over `engine` with `plans`; `leading` tells whether this replica leads.
    pub fn new(
        engine: Arc<dyn Engine>,
        plans: Vec<Plan>,
        leading: watch::Receiver<bool>,
    ) -> Arc<Service> {
        let n = plans.len();
        Arc::new(Service {
            engine,
            plans,
            ops: Operations::new(),
            metrics: Metrics::new(),
            leading,
            next_runs: Mutex::new(vec![None; n]),
            last_ops: Mutex::default(),
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    /// The configured plans.
    pub fn plans(&self) -> &[Plan] {
        &self.plans
    }

    /// The operations table.
    pub fn operations(&self) -> &Operations {
        &self.ops
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The metrics as OpenMetrics text, with the gauges of the moment (leader, running
    /// operations) brought up to date.
    pub fn render_metrics(&self) -> String {
        self.metrics.set_leader(self.is_leader());
        self.metrics.set_operations_running(self.ops.running());
        self.metrics.render()
    }

    /// Whether this replica leads now.
    pub fn is_leader(&self) -> bool {
        *self.leading.borrow()
    }

    /// Record the scheduler's next fire times (index = plan index).
    pub fn set_next_runs(&self, next: &[Option<DateTime<Utc>>]) {
        let mut guard = self.next_runs.lock().unwrap_or_else(|p| p.into_inner());
        *guard = next.to_vec();
    }

    /// The plans as the API lists them.
    pub fn plan_views(&self) -> Vec<PlanView> {
        let next = self
            .next_runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let last = self
            .last_ops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        self.plans
            .iter()
            .enumerate()
            .map(|(i, p)| PlanView {
                name: p.name.clone(),
                schedule: p.schedule.as_str().to_string(),
                next_run: next.get(i).copied().flatten(),
                selection: p.selection.clone(),
                parameters: p.parameters.clone(),
                retention: p.retention.clone(),
                last_operation: last.get(&p.name).cloned(),
                running: self.ops.running_for_plan(&p.name).is_some(),
            })
            .collect()
    }

    /// Start a run of plan `name`: protect, then retention.
    pub fn trigger_plan(
        self: &Arc<Self>,
        name: &str,
        trigger: Trigger,
    ) -> Result<OperationRecord, ServiceError> {
        let plan = self
            .plans
            .iter()
            .find(|p| p.name == name)
            .cloned()
            .ok_or_else(|| ServiceError::UnknownPlan(name.to_string()))?;
        let me = Arc::clone(self);
        let request = ProtectRequest {
            plan: Some(plan.name.clone()),
            selection: plan.selection.clone(),
            parameters: plan.parameters.clone(),
        };
        let record = self.start(
            OperationKind::PlanRun,
            Some(plan.name.clone()),
            None,
            true,
            async move {
                let mut result = me.run_protect(request).await?;
                let report = me.apply_retention(&plan).await;
                result["retention"] = json!(report);
                result["trigger"] = json!(match trigger {
                    Trigger::Schedule => "schedule",
                    Trigger::Manual => "manual",
                });
                Ok(result)
            },
        )?;
        self.last_ops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), record.id.clone());
        Ok(record)
    }

    /// Start an on-demand protect (no retention).
    pub fn protect(
        self: &Arc<Self>,
        request: ProtectRequest,
    ) -> Result<OperationRecord, ServiceError> {
        ProtectParams::from_json(&request.parameters)
            .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        if let Some(plan) = &request.plan {
            if !self.plans.iter().any(|p| &p.name == plan) {
                return Err(ServiceError::UnknownPlan(plan.clone()));
            }
        }
        let me = Arc::clone(self);
        let plan = request.plan.clone();
        self.start(OperationKind::Protect, plan, None, false, async move {
            me.run_protect(request).await
        })
    }

    /// Start deleting a checkpoint.
    pub fn delete_checkpoint(
        self: &Arc<Self>,
        id: CheckpointId,
    ) -> Result<OperationRecord, ServiceError> {
        let me = Arc::clone(self);
        let target = Some(id.0.clone());
        self.start(
            OperationKind::DeleteCheckpoint,
            None,
            target,
            false,
            async move {
                me.engine
                    .delete_checkpoint(&id)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(json!({ "checkpoint_id": id, "status": CheckpointStatus::Deleted }))
            },
        )
    }

    /// Start a restore.
    pub fn restore(
        self: &Arc<Self>,
        request: RestoreRequest,
    ) -> Result<OperationRecord, ServiceError> {
        RestoreParams::from_json(&request.parameters)
            .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        let me = Arc::clone(self);
        let target = Some(request.checkpoint_id.0.clone());
        self.start(OperationKind::Restore, None, target, false, async move {
            let restore = me
                .engine
                .create_restore(request)
                .await
                .map_err(|e| e.to_string())?;
            serde_json::to_value(restore).map_err(|e| e.to_string())
        })
    }

    fn start<F>(
        self: &Arc<Self>,
        kind: OperationKind,
        plan: Option<String>,
        target: Option<String>,
        exclusive: bool,
        work: F,
    ) -> Result<OperationRecord, ServiceError>
    where
        F: std::future::Future<Output = Result<Value, String>> + Send + 'static,
    {
        let record = self.ops.spawn(kind, plan, target, exclusive, work)?;
        Ok(record)
    }

    /// Protect, recording metrics; the result names the checkpoint.
    async fn run_protect(&self, request: ProtectRequest) -> Result<Value, String> {
        let plan = request.plan.clone();
        let started = Instant::now();
        match self.engine.protect(request).await {
            Ok(outcome) => {
                let available = outcome.status == CheckpointStatus::Available;
                self.metrics.protect_done(
                    plan.as_deref(),
                    started.elapsed(),
                    available,
                    &outcome.stats,
                );
                if !available {
                    return Err(format!(
                        "checkpoint {} ended {:?}; see GET /v1/checkpoints/{}",
                        outcome.checkpoint_id, outcome.status, outcome.checkpoint_id
                    ));
                }
                serde_json::to_value(&outcome).map_err(|e| e.to_string())
            }
            Err(e) => {
                self.metrics
                    .protect_failed(plan.as_deref(), started.elapsed());
                Err(e.to_string())
            }
        }
    }

    /// Apply `plan`'s retention now.
    pub async fn apply_retention(&self, plan: &Plan) -> RetentionReport {
        let mut report = RetentionReport::default();
        if plan.retention.is_unbounded() {
            return report;
        }
        let all = match self
            .engine
            .list_checkpoints(CheckpointFilter::default())
            .await
        {
            Ok(all) => all,
            Err(e) => {
                self.metrics.retention_failed(&plan.name);
                report.error = Some(format!("listing checkpoints: {e}"));
                return report;
            }
        };
        let RetentionPlan { delete, keep } =
            plan_retention(&all, &plan.name, &plan.retention, Utc::now());
        tracing::debug!(plan = %plan.name, delete = delete.len(), keep = keep.len(), "retention");
        let mut todo = delete.into_iter();
        for id in todo.by_ref() {
            match self.engine.delete_checkpoint(&id).await {
                Ok(()) => {
                    self.metrics.checkpoint_deleted(&plan.name);
                    tracing::info!(plan = %plan.name, checkpoint = %id, "retention: checkpoint deleted");
                    report.deleted.push(id);
                }
                Err(e) => {
                    self.metrics.retention_failed(&plan.name);
                    tracing::warn!(plan = %plan.name, checkpoint = %id, error = %e, "retention: delete failed; the rest waits for the next run");
                    report.error = Some(format!("deleting checkpoint {id}: {e}"));
                    report.pending.push(id);
                    break;
                }
            }
        }
        report.pending.extend(todo);
        report
    }
}
