//! Long operations (protect, plan runs, checkpoint deletes, restores) running in the
//! background, and their records: what the status URL of a `202 Accepted` shows.
//!
//! Owns the in-memory table of operations of this replica and the shutdown drain: once
//! [`Operations::close`] is called no new operation starts, and [`Operations::drain`] waits
//! for the running ones up to a grace period, then cancels what is left (the future is
//! dropped; the engine guarantees nothing half-visible) and records why. Records are not
//! persisted: the bank holds the durable truth (checkpoints, restores).

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::engine::EngineError;

/// Records kept after they finish (oldest finished ones are forgotten first).
const HISTORY: usize = 1000;

pub use crate::api::{OperationKind, OperationRecord, OperationResult, OperationState};

/// Why an operation was not started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refused {
    /// The agent is shutting down; send the request to another replica.
    #[error("the agent is shutting down and starts no new work; retry on another replica")]
    ShuttingDown,
    /// The plan already has a run in progress (operation id given).
    #[error("plan {plan} already has a run in progress: operation {operation}")]
    PlanBusy {
        /// The plan.
        plan: String,
        /// The running operation.
        operation: String,
    },
}

struct Entry {
    record: OperationRecord,
    abort: Option<AbortHandle>,
}

#[derive(Default)]
struct Table {
    entries: BTreeMap<String, Entry>,
    finished: VecDeque<String>,
    busy_plans: BTreeMap<String, String>,
}

/// The table of operations and the tasks running them.
pub struct Operations {
    table: Arc<Mutex<Table>>,
    accepting: AtomicBool,
    running: Arc<watch::Sender<usize>>,
}

impl Default for Operations {
    fn default() -> Self {
        Operations::new()
    }
}

impl Operations {
    /// An empty table that accepts work.
    pub fn new() -> Operations {
        Operations {
            table: Arc::default(),
            accepting: AtomicBool::new(true),
            running: Arc::new(watch::channel(0).0),
        }
    }

    /// Start `work` in the background as a new operation.
    ///
    /// # Arguments
    /// * `kind`, `plan`, `target` - recorded in the operation.
    /// * `exclusive` - refuse if `plan` already has an operation running.
    /// * `work` - the operation; `Ok` is its result, `Err` its error.
    pub fn spawn<F>(
        &self,
        kind: OperationKind,
        plan: Option<String>,
        target: Option<String>,
        exclusive: bool,
        work: F,
    ) -> Result<OperationRecord, Refused>
    where
        F: Future<Output = Result<OperationResult, EngineError>> + Send + 'static,
    {
        let mut table = lock(&self.table);
        // Checked under the lock: `close` takes it too, so nothing slips in after a drain
        // has counted the running operations.
        if !self.accepting.load(Ordering::SeqCst) {
            return Err(Refused::ShuttingDown);
        }
        let id = new_id();
        if exclusive {
            if let Some(p) = &plan {
                if let Some(op) = table.busy_plans.get(p) {
                    return Err(Refused::PlanBusy {
                        plan: p.clone(),
                        operation: op.clone(),
                    });
                }
                table.busy_plans.insert(p.clone(), id.clone());
            }
        }
        let record = OperationRecord {
            id: id.clone(),
            kind,
            plan: plan.clone(),
            target,
            state: OperationState::Running,
            started_at: Utc::now(),
            finished_at: None,
            result: None,
            error: None,
            error_code: None,
        };
        table.entries.insert(
            id.clone(),
            Entry {
                record: record.clone(),
                abort: None,
            },
        );
        self.running.send_modify(|n| *n += 1);
        let guard = RunningGuard {
            table: Arc::clone(&self.table),
            running: Arc::clone(&self.running),
            id: id.clone(),
            plan: plan.filter(|_| exclusive),
        };
        let table_for_task = Arc::clone(&self.table);
        let task_id = id.clone();
        let handle = tokio::spawn(async move {
            let _guard = guard;
            let outcome = work.await;
            let mut table = lock(&table_for_task);
            if let Some(e) = table.entries.get_mut(&task_id) {
                e.record.finished_at = Some(Utc::now());
                match outcome {
                    Ok(v) => {
                        e.record.state = OperationState::Succeeded;
                        e.record.result = Some(v);
                    }
                    Err(err) => {
                        e.record.state = OperationState::Failed;
                        e.record.error_code = Some(crate::api::status_of(&err).1.to_string());
                        e.record.error = Some(err.to_string());
                    }
                }
            }
        });
        if let Some(e) = table.entries.get_mut(&id) {
            e.abort = Some(handle.abort_handle());
        }
        Ok(record)
    }

    /// One operation's record.
    pub fn get(&self, id: &str) -> Option<OperationRecord> {
        lock(&self.table).entries.get(id).map(|e| e.record.clone())
    }

    /// Every known operation, newest first.
    pub fn list(&self) -> Vec<OperationRecord> {
        let mut v: Vec<OperationRecord> = lock(&self.table)
            .entries
            .values()
            .map(|e| e.record.clone())
            .collect();
        v.sort_by(|a, b| (b.started_at, &b.id).cmp(&(a.started_at, &a.id)));
        v
    }

    /// The operation running for `plan`, if any.
    pub fn running_for_plan(&self, plan: &str) -> Option<String> {
        lock(&self.table).busy_plans.get(plan).cloned()
    }

    /// How many operations are running.
    pub fn running(&self) -> usize {
        *self.running.borrow()
    }

    /// Refuses with [`Refused::ShuttingDown`] once the agent no longer takes new work:
    /// checked before a request is validated, so that a draining agent answers 503 to
    /// everything that would start an operation.
    pub fn check_accepting(&self) -> Result<(), Refused> {
        if self.is_accepting() {
            Ok(())
        } else {
            Err(Refused::ShuttingDown)
        }
    }

    /// Whether new operations are accepted (not shutting down).
    pub fn is_accepting(&self) -> bool {
        self.accepting.load(Ordering::SeqCst)
    }

    /// Refuse new operations from now on.
    pub fn close(&self) {
        let _table = lock(&self.table);
        self.accepting.store(false, Ordering::SeqCst);
    }

    /// Wait up to `grace` for running operations to end, then cancel the rest. Returns the
    /// ids of the cancelled operations.
    pub async fn drain(&self, grace: Duration) -> Vec<String> {
        let mut rx = self.running.subscribe();
        if tokio::time::timeout(grace, rx.wait_for(|n| *n == 0))
            .await
            .is_ok()
        {
            return Vec::new();
        }
        let mut cancelled = Vec::new();
        {
            let mut table = lock(&self.table);
            for e in table.entries.values_mut() {
                if e.record.state == OperationState::Running {
                    if let Some(a) = &e.abort {
                        a.abort();
                    }
                    e.record.state = OperationState::Cancelled;
                    e.record.finished_at = Some(Utc::now());
                    e.record.error = Some(format!(
                        "cancelled: still running when the shutdown grace period of {}s ended",
                        grace.as_secs()
                    ));
                    cancelled.push(e.record.id.clone());
                }
            }
        }
        // Aborted tasks drop their guards at their next poll; wait for that.
        let _ = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|n| *n == 0)).await;
        cancelled
    }
}

/// Decrements the running count and frees the plan when the task ends in any way
/// (finished, panicked, aborted).
struct RunningGuard {
    table: Arc<Mutex<Table>>,
    running: Arc<watch::Sender<usize>>,
    id: String,
    plan: Option<String>,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        {
            let mut table = lock(&self.table);
            if let Some(p) = &self.plan {
                if table.busy_plans.get(p) == Some(&self.id) {
                    table.busy_plans.remove(p);
                }
            }
            if let Some(e) = table.entries.get_mut(&self.id) {
                e.abort = None;
                if e.record.state == OperationState::Running {
                    // The task ended without recording an outcome: it panicked.
                    e.record.state = OperationState::Failed;
                    e.record.finished_at = Some(Utc::now());
                    e.record.error = Some("the operation panicked; see the agent's log".into());
                }
            }
            table.finished.push_back(self.id.clone());
            while table.finished.len() > HISTORY {
                if let Some(old) = table.finished.pop_front() {
                    table.entries.remove(&old);
                }
            }
        }
        self.running.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// A lock that survives a panicked holder (the table stays usable; records are plain data).
fn lock(m: &Mutex<Table>) -> MutexGuard<'_, Table> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A fresh operation id: time-ordered, with random bits against collisions.
fn new_id() -> String {
    let millis = Utc::now().timestamp_millis();
    let random: u32 = rand::random();
    format!("op-{millis:x}-{random:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    fn done() -> OperationResult {
        OperationResult::Protect {
            checkpoint_id: "cp-0001".parse().expect("a checkpoint id"),
            status: crate::model::CheckpointStatus::Available,
            stats: Default::default(),
        }
    }

    async fn wait_state(ops: &Operations, id: &str, state: OperationState) -> OperationRecord {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let r = ops.get(id).expect("record");
            if r.state == state {
                return r;
            }
            assert!(tokio::time::Instant::now() < deadline, "{r:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn results_and_errors_are_recorded() {
        let ops = Operations::new();
        let ok = ops
            .spawn(OperationKind::Protect, None, None, false, async {
                Ok(done())
            })
            .expect("spawn");
        let bad = ops
            .spawn(
                OperationKind::Restore,
                None,
                Some("c1".into()),
                false,
                async { Err(EngineError::Failed("boom".into())) },
            )
            .expect("spawn");
        let r = wait_state(&ops, &ok.id, OperationState::Succeeded).await;
        assert_eq!(r.result, Some(done()));
        assert!(r.finished_at.is_some());
        let r = wait_state(&ops, &bad.id, OperationState::Failed).await;
        assert_eq!(r.error.as_deref(), Some("boom"));
        assert_eq!(r.target.as_deref(), Some("c1"));
        assert_eq!(ops.list().len(), 2);
        assert_eq!(ops.running(), 0);
    }

    #[tokio::test]
    async fn one_run_per_plan() {
        let ops = Operations::new();
        let (tx, rx) = oneshot::channel::<()>();
        let first = ops
            .spawn(
                OperationKind::PlanRun,
                Some("p".into()),
                None,
                true,
                async move {
                    let _ = rx.await;
                    Ok(done())
                },
            )
            .expect("first");
        let second = ops.spawn(
            OperationKind::PlanRun,
            Some("p".into()),
            None,
            true,
            async { Ok(done()) },
        );
        assert_eq!(
            second,
            Err(Refused::PlanBusy {
                plan: "p".into(),
                operation: first.id.clone()
            })
        );
        assert_eq!(ops.running_for_plan("p"), Some(first.id.clone()));
        // Another plan is free.
        ops.spawn(
            OperationKind::PlanRun,
            Some("q".into()),
            None,
            true,
            async { Ok(done()) },
        )
        .expect("other plan");
        let _ = tx.send(());
        wait_state(&ops, &first.id, OperationState::Succeeded).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while ops.running_for_plan("p").is_some() {
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        ops.spawn(
            OperationKind::PlanRun,
            Some("p".into()),
            None,
            true,
            async { Ok(done()) },
        )
        .expect("free again");
    }

    #[tokio::test]
    async fn drain_waits_for_short_work_and_cancels_long_work() {
        let ops = Operations::new();
        let short = ops
            .spawn(OperationKind::Protect, None, None, false, async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok(done())
            })
            .expect("spawn");
        ops.close();
        assert_eq!(
            ops.spawn(OperationKind::Protect, None, None, false, async {
                Ok(done())
            }),
            Err(Refused::ShuttingDown)
        );
        assert!(ops.drain(Duration::from_secs(5)).await.is_empty());
        assert_eq!(
            ops.get(&short.id).expect("rec").state,
            OperationState::Succeeded
        );

        let ops = Operations::new();
        let long = ops
            .spawn(
                OperationKind::Protect,
                Some("p".into()),
                None,
                true,
                async {
                    std::future::pending::<()>().await;
                    Ok(done())
                },
            )
            .expect("spawn");
        ops.close();
        let cancelled = ops.drain(Duration::from_millis(100)).await;
        assert_eq!(cancelled, vec![long.id.clone()]);
        let r = ops.get(&long.id).expect("rec");
        assert_eq!(r.state, OperationState::Cancelled);
        assert!(r
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("grace period"));
        assert_eq!(ops.running(), 0);
        assert_eq!(ops.running_for_plan("p"), None);
    }

    #[tokio::test]
    async fn a_panicking_operation_is_recorded_as_failed() {
        let ops = Operations::new();
        let op = ops
            .spawn(OperationKind::Protect, None, None, false, async {
                let r: Result<OperationResult, EngineError> =
                    Err(EngineError::Failed(String::new()));
                if r.is_err() {
                    panic!("engine bug");
                }
                r
            })
            .expect("spawn");
        let r = wait_state(&ops, &op.id, OperationState::Failed).await;
        assert!(r.error.as_deref().unwrap_or_default().contains("panicked"));
    }
}
