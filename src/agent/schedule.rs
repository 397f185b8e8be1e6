//! Plans and their schedules, Karbor's scheduled operations and their triggers, and the
//! one scheduler loop that fires both while this replica leads.
//!
//! A [`crate::engine::Plan`] is a selection of pods, protect parameters, a cron
//! [`crate::engine::Schedule`] and a retention policy. The scheduler only decides *when*; firing a plan goes through
//! [`crate::agent::Service::trigger_plan`], the same path as an HTTP trigger, so a run
//! started by the clock and one started by hand are tracked, limited (one run per plan at
//! a time) and drained on shutdown alike.
//!
//! Karbor's scheduled operations and triggers are kept in the bank: the scheduler reads
//! them when it starts leading, whenever [`Service::schedules_changed`] says this
//! replica's Karbor API changed them, and every [`RELOAD_EVERY`] (for changes made through
//! another replica). An operation fires at the times of its trigger's pattern (from the
//! trigger's start, up to its end) through [`Service::start_scheduled_operation`]; a fire
//! more than the trigger's window late is dropped, and one whose plan still runs is
//! skipped (the `schedule_skipped` metric), as for plans.
//!
//! Times are UTC. A replica that becomes leader starts from the next fire time after now:
//! fire times missed while no replica led are not caught up. A replica that stops leading
//! fires nothing more, but a run it already started goes on to its end (the bank accepts
//! concurrent writers), so a handover can briefly see two runs of one plan.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::service::ServiceError;
use super::Service;
use crate::api::Trigger;
use crate::engine::triggers::TimePattern;
use crate::model::{ScheduledOperationId, StoredOperation, StoredTrigger};

/// How often the scheduled operations and triggers are read again from the bank when
/// nothing on this replica said they changed.
pub const RELOAD_EVERY: Duration = Duration::from_secs(30);

/// A scheduled operation with its trigger and its next fire time.
struct Scheduled {
    operation: StoredOperation,
    trigger: StoredTrigger,
    pattern: TimePattern,
    next: Option<DateTime<Utc>>,
}

impl Scheduled {
    /// The first time of the trigger strictly after `t` (and not before its start), if it
    /// comes before the trigger's end.
    fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let from = t.max(self.trigger.start_time - chrono::TimeDelta::seconds(1));
        self.pattern
            .times_after(from, 1)
            .into_iter()
            .next()
            .filter(|n| self.trigger.end_time.is_none_or(|e| *n <= e))
    }
}

/// The enabled scheduled operations of the bank, each with its trigger; the next fire
/// time of one already scheduled with the same trigger is kept, so that a read between
/// two fires neither skips nor repeats one.
async fn load_operations(service: &Service, old: Vec<Scheduled>) -> Vec<Scheduled> {
    let engine = service.engine();
    let (operations, triggers) = match (
        engine.stored_operations().await,
        engine.stored_triggers().await,
    ) {
        (Ok(o), Ok(t)) => (o, t),
        (Err(e), _) | (_, Err(e)) => {
            if !matches!(e, crate::engine::EngineError::Unsupported(_)) {
                tracing::warn!(error = %e, "scheduler: cannot read the scheduled operations; keeping the ones read before");
                return old;
            }
            return Vec::new();
        }
    };
    let mut kept: HashMap<ScheduledOperationId, Scheduled> =
        old.into_iter().map(|s| (s.operation.id, s)).collect();
    let now = Utc::now();
    let mut out = Vec::new();
    for operation in operations.into_iter().filter(|o| o.enabled) {
        let Some(trigger) = triggers
            .iter()
            .find(|t| t.id == operation.trigger_id && t.project_id == operation.project_id)
        else {
            tracing::warn!(operation = %operation.id, trigger = %operation.trigger_id, "scheduler: the operation's trigger is gone; it does not run");
            continue;
        };
        let pattern = match TimePattern::parse(trigger.format, &trigger.pattern, trigger.start_time)
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(operation = %operation.id, trigger = %trigger.id, error = %e, "scheduler: the trigger's pattern is refused; the operation does not run");
                continue;
            }
        };
        let mut s = Scheduled {
            operation,
            trigger: trigger.clone(),
            pattern,
            next: None,
        };
        s.next = match kept.remove(&s.operation.id) {
            Some(k) if k.trigger == s.trigger => k.next,
            _ => s.next_after(now),
        };
        out.push(s);
    }
    out
}

/// Fires the scheduled operations whose time has come (at `now`) and moves them on.
async fn fire_operations(service: &Arc<Service>, scheduled: &mut [Scheduled], now: DateTime<Utc>) {
    for s in scheduled.iter_mut() {
        let Some(at) = s.next else { continue };
        if at > now {
            continue;
        }
        s.next = s.next_after(at.max(now));
        let op = &s.operation;
        let late = (now - at).num_seconds();
        if late > i64::from(s.trigger.window_seconds) {
            tracing::warn!(operation = %op.id, late, window = s.trigger.window_seconds, "scheduler: the operation's time passed its window; this run is dropped");
            continue;
        }
        match service.start_scheduled_operation(op).await {
            Ok(run) => {
                tracing::info!(operation = %op.id, name = %op.name, run = %run.id, "scheduler: scheduled operation started")
            }
            Err(ServiceError::Busy(_)) => {
                service.metrics().schedule_skipped(&op.plan_id);
                tracing::warn!(operation = %op.id, plan = %op.plan_id, "scheduler: the plan's previous run is still in progress; this run is skipped");
            }
            Err(e) => {
                tracing::warn!(operation = %op.id, error = %e, "scheduler: cannot start the scheduled operation")
            }
        }
    }
}

/// Fire plans on their schedules, and the bank's scheduled operations on their triggers,
/// while `leading` is true, until `stop` turns true.
pub async fn run_scheduler(
    service: Arc<Service>,
    mut leading: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        // Follower: wait to lead.
        tokio::select! {
            r = leading.wait_for(|l| *l) => if r.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
        if *stop.borrow() {
            return;
        }
        let mut operations = load_operations(&service, Vec::new()).await;
        let mut reload_at = tokio::time::Instant::now() + RELOAD_EVERY;
        tracing::info!(
            plans = service.plans().len(),
            operations = operations.len(),
            "scheduler: running schedules"
        );
        let mut next: Vec<Option<DateTime<Utc>>> = service
            .plans()
            .iter()
            .map(|p| p.schedule.next_after(Utc::now()))
            .collect();
        service.set_next_runs(&next);
        loop {
            let earliest = next
                .iter()
                .flatten()
                .chain(operations.iter().filter_map(|s| s.next.as_ref()))
                .min()
                .copied();
            let wait = earliest.map(|at| (at - Utc::now()).to_std().unwrap_or_default());
            let wake = tokio::select! {
                _ = sleep_opt(wait) => Wake::Due,
                _ = tokio::time::sleep_until(reload_at) => Wake::Reload,
                _ = service.schedule_change() => Wake::Reload,
                r = leading.wait_for(|l| !*l) => if r.is_err() { Wake::Stop } else { Wake::Follow },
                _ = stop.wait_for(|s| *s) => Wake::Stop,
            };
            match wake {
                Wake::Due => {
                    let now = Utc::now();
                    for (i, plan) in service.plans().iter().enumerate() {
                        let Some(at) = next[i] else { continue };
                        if at > now {
                            continue;
                        }
                        match service.trigger_plan(&plan.name, Trigger::Schedule) {
                            Ok(op) => {
                                tracing::info!(plan = %plan.name, operation = %op.id, "scheduler: plan started")
                            }
                            Err(ServiceError::Busy(_)) => {
                                service.metrics().schedule_skipped(&plan.name);
                                tracing::warn!(plan = %plan.name, "scheduler: previous run still in progress; this run is skipped");
                            }
                            Err(e) => {
                                tracing::warn!(plan = %plan.name, error = %e, "scheduler: cannot start the plan")
                            }
                        }
                        next[i] = plan.schedule.next_after(at.max(now));
                    }
                    service.set_next_runs(&next);
                    fire_operations(&service, &mut operations, now).await;
                }
                Wake::Reload => {
                    operations = load_operations(&service, operations).await;
                    reload_at = tokio::time::Instant::now() + RELOAD_EVERY;
                }
                Wake::Follow => {
                    tracing::info!("scheduler: no longer leader; schedules stop here");
                    service.set_next_runs(&vec![None; next.len()]);
                    break;
                }
                Wake::Stop => {
                    service.set_next_runs(&vec![None; next.len()]);
                    return;
                }
            }
        }
    }
}

/// What woke the scheduler while it leads.
enum Wake {
    /// A plan's or an operation's time came.
    Due,
    /// The scheduled operations are to be read again.
    Reload,
    /// This replica no longer leads.
    Follow,
    /// The agent stops.
    Stop,
}

async fn sleep_opt(d: Option<std::time::Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::triggers::parse_time;
    use crate::model::{OperationType, ScheduledOperationId, TimeFormat, TriggerId, TriggerType};

    fn at(s: &str) -> DateTime<Utc> {
        parse_time(s).expect("time")
    }

    fn scheduled(pattern: &str, start: &str, end: Option<&str>) -> Scheduled {
        let trigger = StoredTrigger {
            id: TriggerId::generate(),
            project_id: "p".into(),
            name: "t".into(),
            kind: TriggerType::Time,
            format: TimeFormat::Crontab,
            pattern: pattern.into(),
            start_time: at(start),
            end_time: end.map(at),
            window_seconds: 900,
            created: at(start),
        };
        let pattern = TimePattern::parse(trigger.format, &trigger.pattern, trigger.start_time)
            .expect("pattern");
        Scheduled {
            operation: StoredOperation {
                id: ScheduledOperationId::generate(),
                project_id: "p".into(),
                name: "o".into(),
                description: String::new(),
                operation_type: OperationType::Protect,
                trigger_id: trigger.id,
                plan_id: "plan".into(),
                provider_id: "provider".into(),
                max_backups: None,
                retention_days: None,
                enabled: true,
                created: at(start),
            },
            trigger,
            pattern,
            next: None,
        }
    }

    #[test]
    fn an_operation_fires_from_its_triggers_start_to_its_end() {
        let s = scheduled(
            "0 * * * *",
            "2026-01-01 05:00:00",
            Some("2026-01-01 07:00:00"),
        );
        // Before the start: the start itself (a time of the pattern) comes first.
        assert_eq!(
            s.next_after(at("2026-01-01 00:10:00")),
            Some(at("2026-01-01 05:00:00"))
        );
        assert_eq!(
            s.next_after(at("2026-01-01 05:00:00")),
            Some(at("2026-01-01 06:00:00"))
        );
        assert_eq!(
            s.next_after(at("2026-01-01 06:30:00")),
            Some(at("2026-01-01 07:00:00"))
        );
        // After the end: never again.
        assert_eq!(s.next_after(at("2026-01-01 07:00:00")), None);
        let open = scheduled("30 2 * * *", "2026-01-01 00:00:00", None);
        assert_eq!(
            open.next_after(at("2026-03-01 03:00:00")),
            Some(at("2026-03-02 02:30:00"))
        );
    }
}
