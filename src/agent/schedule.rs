//! Plans and their schedules, and the scheduler loop that fires them while this replica
//! leads.
//!
//! A [`crate::engine::Plan`] is a selection of pods, protect parameters, a cron
//! [`crate::engine::Schedule`] and a retention policy. The scheduler only decides *when*; firing a plan goes through
//! [`crate::agent::Service::trigger_plan`], the same path as an HTTP trigger, so a run
//! started by the clock and one started by hand are tracked, limited (one run per plan at
//! a time) and drained on shutdown alike.
//!
//! Times are UTC. A replica that becomes leader starts from the next fire time after now:
//! fire times missed while no replica led are not caught up. A replica that stops leading
//! fires nothing more, but a run it already started goes on to its end (the bank accepts
//! concurrent writers), so a handover can briefly see two runs of one plan.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::service::ServiceError;
use super::Service;
use crate::api::Trigger;

/// Fire plans on their schedules while `leading` is true, until `stop` turns true.
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
        tracing::info!(
            plans = service.plans().len(),
            "scheduler: running schedules"
        );
        let mut next: Vec<Option<DateTime<Utc>>> = service
            .plans()
            .iter()
            .map(|p| p.schedule.next_after(Utc::now()))
            .collect();
        service.set_next_runs(&next);
        loop {
            let earliest = next.iter().flatten().min().copied();
            let wait = earliest.map(|at| (at - Utc::now()).to_std().unwrap_or_default());
            tokio::select! {
                _ = sleep_opt(wait) => {
                    let now = Utc::now();
                    for (i, plan) in service.plans().iter().enumerate() {
                        let Some(at) = next[i] else { continue };
                        if at > now {
                            continue;
                        }
                        match service.trigger_plan(&plan.name, Trigger::Schedule) {
                            Ok(op) => tracing::info!(plan = %plan.name, operation = %op.id, "scheduler: plan started"),
                            Err(ServiceError::Busy(_)) => {
                                service.metrics().schedule_skipped(&plan.name);
                                tracing::warn!(plan = %plan.name, "scheduler: previous run still in progress; this run is skipped");
                            }
                            Err(e) => tracing::warn!(plan = %plan.name, error = %e, "scheduler: cannot start the plan"),
                        }
                        next[i] = plan.schedule.next_after(at.max(now));
                    }
                    service.set_next_runs(&next);
                }
                r = leading.wait_for(|l| !*l) => {
                    if r.is_err() { return }
                    tracing::info!("scheduler: no longer leader; schedules stop here");
                    service.set_next_runs(&vec![None; next.len()]);
                    break;
                }
                _ = stop.wait_for(|s| *s) => {
                    service.set_next_runs(&vec![None; next.len()]);
                    return;
                }
            }
        }
    }
}

async fn sleep_opt(d: Option<std::time::Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
