//! The agent's core: long operations (protect, plan runs, deletes, restores) run in the background around the [`Engine`], tracked as operations, with
//! their metrics. HTTP handlers and the scheduler both call in here; neither runs a long
//! operation on the engine directly.
//!
//! Requests are checked before an operation is accepted: a request that can be known to
//! fail (bad parameters, an unknown checkpoint or plan) is refused at once with its error,
//! never accepted to fail later.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::limit::{ReadLimit, ReadLimits};
use super::metrics::Metrics;
use super::operations::{OperationKind, OperationRecord, OperationResult, Operations, Refused};
use super::oplog::logged;
use crate::api::{ProtectStats, Trigger};
use crate::engine::operation_logs::{OperationLog, OperationType as Logged};
use crate::engine::plans::{protect_and_retain, stored_plan_request};
use crate::engine::{Engine, EngineError, Plan, PlanRun, PlanView, ProtectRequest, RestoreRequest};
use crate::model::{CheckpointId, CheckpointStatus, OperationType, PlanId, StoredOperation};
use crate::protection::retention::RetentionPolicy;

/// Why a request could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// No plan of that name is configured.
    #[error("no plan named {0:?}: see GET /v1/plans")]
    UnknownPlan(String),
    /// The request cannot succeed: the engine's answer to it.
    #[error(transparent)]
    Engine(#[from] EngineError),
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

/// The agent's core, shared by the scheduler and the HTTP API.
pub struct Service {
    engine: Arc<dyn Engine>,
    plans: Vec<Plan>,
    ops: Operations,
    metrics: Metrics,
    leading: watch::Receiver<bool>,
    next_runs: Mutex<Vec<Option<DateTime<Utc>>>>,
    last_ops: Mutex<HashMap<String, String>>,
    reads: ReadLimit,
    schedule_changed: tokio::sync::Notify,
}

impl Service {
    /// A service over `engine` with `plans` (the engine's plans, with their schedules);
    /// `leading` tells whether this replica leads.
    pub fn new(
        engine: Arc<dyn Engine>,
        plans: Vec<Plan>,
        leading: watch::Receiver<bool>,
    ) -> Arc<Service> {
        Self::with_read_limits(engine, plans, leading, ReadLimits::default())
    }

    /// [`Service::new`], with reads of etcd and the bank bound by `limits`.
    pub fn with_read_limits(
        engine: Arc<dyn Engine>,
        plans: Vec<Plan>,
        leading: watch::Receiver<bool>,
        limits: ReadLimits,
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
            reads: ReadLimit::new(limits),
            schedule_changed: tokio::sync::Notify::new(),
        })
    }

    /// The gate of requests that read etcd or the bank.
    pub fn reads(&self) -> &ReadLimit {
        &self.reads
    }

    /// Tells the scheduler that the scheduled operations or triggers kept in the bank
    /// changed, so that it reads them again now rather than at its next periodic read.
    pub fn schedules_changed(&self) {
        self.schedule_changed.notify_one();
    }

    /// Wakes when [`Service::schedules_changed`] was called (once for any number of calls
    /// since the last wake).
    pub async fn schedule_change(&self) {
        self.schedule_changed.notified().await;
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
                next_run: next.get(i).copied().flatten(),
                last_operation: last.get(&p.name).cloned(),
                running: self.ops.running_for_plan(&p.name).is_some(),
                ..PlanView::from(p)
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
        let record = self.ops.spawn(
            OperationKind::PlanRun,
            Some(plan.name.clone()),
            None,
            true,
            async move {
                let started = Instant::now();
                let run = crate::engine::plans::run_plan(&*me.engine, &plan).await;
                me.record_plan_run(&plan, started.elapsed(), &run);
                let run = run?;
                Ok(OperationResult::PlanRun {
                    checkpoint_id: run.checkpoint.id.clone(),
                    status: run.checkpoint.status,
                    stats: ProtectStats::of(&run.checkpoint),
                    retention: run.retention,
                    trigger,
                })
            },
        )?;
        self.last_ops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), record.id.clone());
        Ok(record)
    }

    fn record_plan_run(&self, plan: &Plan, took: Duration, run: &Result<PlanRun, EngineError>) {
        self.record_run(&plan.name, took, run);
    }

    fn record_run(&self, plan: &str, took: Duration, run: &Result<PlanRun, EngineError>) {
        match run {
            Ok(run) => {
                let stats = ProtectStats::of(&run.checkpoint);
                let available = run.checkpoint.status == CheckpointStatus::Available;
                self.metrics
                    .protect_done(Some(plan), took, available, &stats);
                for _ in &run.retention.deleted {
                    self.metrics.checkpoint_deleted(plan);
                }
                if run.retention.error.is_some() {
                    self.metrics.retention_failed(plan);
                }
            }
            Err(_) => self.metrics.protect_failed(Some(plan), took),
        }
    }

    /// The protect a scheduled operation makes and the name its checkpoints record as
    /// their plan: its plan kept in the bank (of the operation's project), or the plan of
    /// the config file whose Karbor id it names.
    async fn scheduled_request(
        &self,
        op: &StoredOperation,
    ) -> Result<(ProtectRequest, String), ServiceError> {
        let stored = self.engine.stored_plans().await?;
        if let Some(p) = stored
            .iter()
            .find(|p| p.project_id == op.project_id && p.id.to_string() == op.plan_id)
        {
            return Ok((stored_plan_request(p)?, p.id.to_string()));
        }
        self.plans
            .iter()
            .find(|p| PlanId::of_configured(&p.name).to_string() == op.plan_id)
            .map(|p| (p.protect_request(), p.name.clone()))
            .ok_or_else(|| ServiceError::UnknownPlan(op.plan_id.clone()))
    }

    /// Start a run of a scheduled operation: a checkpoint of its plan, then, for
    /// `retention_protect`, the plan's retention (`max_backups`, `retention_days`). At
    /// most one run per plan at a time: [`ServiceError::Busy`] while one goes on.
    pub async fn start_scheduled_operation(
        self: &Arc<Self>,
        op: &StoredOperation,
    ) -> Result<OperationRecord, ServiceError> {
        self.ops.check_accepting()?;
        let (request, plan) = self.scheduled_request(op).await?;
        request.selection.resolve()?;
        let policy = match op.operation_type {
            OperationType::Protect => RetentionPolicy::default(),
            OperationType::RetentionProtect => RetentionPolicy {
                keep_last: op.max_backups,
                max_age: op
                    .retention_days
                    .map(|d| Duration::from_secs(u64::from(d) * 86_400)),
            },
        };
        let me = Arc::clone(self);
        let label = plan.clone();
        let mut log =
            OperationLog::scheduled_run(&op.project_id, &op.id.to_string(), Some(plan.clone()));
        log.checkpoint_id = request.checkpoint_id.clone();
        let record = self.ops.spawn(
            OperationKind::PlanRun,
            Some(plan),
            Some(op.id.to_string()),
            true,
            async move {
                let engine = Arc::clone(&me.engine);
                logged(&*engine, log, async move {
                    let started = Instant::now();
                    let run = protect_and_retain(&*me.engine, request, &policy).await;
                    me.record_run(&label, started.elapsed(), &run);
                    let run = run?;
                    Ok(OperationResult::PlanRun {
                        checkpoint_id: run.checkpoint.id.clone(),
                        status: run.checkpoint.status,
                        stats: ProtectStats::of(&run.checkpoint),
                        retention: run.retention,
                        trigger: Trigger::Schedule,
                    })
                })
                .await
            },
        )?;
        Ok(record)
    }

    /// Start an on-demand protect (no retention) for Karbor's `project` (empty: none), whose
    /// operation log names it; its plan, if any, the caller has looked up.
    pub fn start_protect_in(
        self: &Arc<Self>,
        project: &str,
        request: ProtectRequest,
    ) -> Result<OperationRecord, ServiceError> {
        self.ops.check_accepting()?;
        request.selection.resolve()?;
        let me = Arc::clone(self);
        let plan = request.plan.clone();
        let mut log = OperationLog::start(Logged::Protect, project);
        log.plan = plan.clone();
        log.checkpoint_id = request.checkpoint_id.clone();
        Ok(self.ops.spawn(
            OperationKind::Protect,
            plan.clone(),
            None,
            false,
            async move {
                let started = Instant::now();
                let engine = Arc::clone(&me.engine);
                logged(&*engine, log, async move {
                    match me.engine.protect(request).await {
                        Ok(cp) => {
                            let stats = ProtectStats::of(&cp);
                            let available = cp.status == CheckpointStatus::Available;
                            me.metrics.protect_done(
                                plan.as_deref(),
                                started.elapsed(),
                                available,
                                &stats,
                            );
                            if !available {
                                return Err(EngineError::Failed(format!(
                                    "checkpoint {} ended {}; see GET /v1/checkpoints/{}",
                                    cp.id, cp.status, cp.id
                                )));
                            }
                            Ok(OperationResult::protect(&cp))
                        }
                        Err(e) => {
                            me.metrics
                                .protect_failed(plan.as_deref(), started.elapsed());
                            Err(e)
                        }
                    }
                })
                .await
            },
        )?)
    }

    /// Start deleting a checkpoint (which must exist) for Karbor's `project`, whose
    /// operation log names it.
    pub async fn delete_checkpoint_in(
        self: &Arc<Self>,
        project: &str,
        id: CheckpointId,
    ) -> Result<OperationRecord, ServiceError> {
        self.ops.check_accepting()?;
        let cp = self.engine.checkpoint(&id).await?;
        let me = Arc::clone(self);
        let target = Some(id.to_string());
        let mut log = OperationLog::start(Logged::Delete, project);
        log.checkpoint_id = Some(id.clone());
        log.plan = Some(cp.plan).filter(|p| !p.is_empty());
        Ok(self.ops.spawn(
            OperationKind::DeleteCheckpoint,
            None,
            target,
            false,
            async move {
                let work = me.engine.delete_checkpoint(&id);
                logged(&*me.engine, log, async {
                    work.await.map(OperationResult::delete)
                })
                .await
            },
        )?)
    }

    /// Start a restore (of a checkpoint that exists, with valid parameters) for Karbor's
    /// `project`, whose operation log names it.
    pub async fn restore_in(
        self: &Arc<Self>,
        project: &str,
        request: RestoreRequest,
    ) -> Result<OperationRecord, ServiceError> {
        self.ops.check_accepting()?;
        crate::engine::check_pods(&request.pods)?;
        let cp = self.engine.checkpoint(&request.checkpoint_id).await?;
        let me = Arc::clone(self);
        let target = Some(request.checkpoint_id.to_string());
        let mut log = OperationLog::start(Logged::Restore, project);
        log.checkpoint_id = Some(request.checkpoint_id.clone());
        log.restore_id = request.restore_id.clone();
        log.plan = Some(cp.plan).filter(|p| !p.is_empty());
        Ok(self
            .ops
            .spawn(OperationKind::Restore, None, target, false, async move {
                let work = me.engine.restore(request);
                logged(&*me.engine, log, async {
                    work.await.map(|r| OperationResult::restore(&r))
                })
                .await
            })?)
    }
}
