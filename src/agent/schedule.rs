//! Plans and their schedules, and the scheduler loop that fires them while this replica
//! leads.
//!
//! A [`Plan`] is a selection of pods, protect parameters, a cron [`Schedule`] and a
//! retention policy. The scheduler only decides *when*; firing a plan goes through
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
use croner::parser::{CronParser, Seconds};
use croner::Cron;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;

use super::engine::SelectionSpec;
use super::retention::RetentionPolicy;
use super::service::{ServiceError, Trigger};
use super::Service;

/// A cron schedule: 5 fields (minute hour day-of-month month day-of-week), or 6 with a
/// leading seconds field; names (`MON`, `JAN`), ranges, steps and lists as in Vixie cron.
#[derive(Clone)]
pub struct Schedule {
    text: String,
    cron: Cron,
}

impl std::fmt::Debug for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Schedule").field(&self.text).finish()
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

/// A schedule that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("schedule {text:?} is not a cron expression ({reason}); e.g. \"0 2 * * *\" is 02:00 UTC daily, \"*/10 * * * * *\" every 10 seconds")]
pub struct ScheduleError {
    /// The text given.
    pub text: String,
    /// The parser's complaint.
    pub reason: String,
}

impl Schedule {
    /// Parse a cron expression (5 or 6 fields).
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(text.trim())
            .map_err(|e| ScheduleError {
                text: text.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Schedule {
            text: text.trim().to_string(),
            cron,
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first fire time strictly after `t`; `None` if the schedule never fires again.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&t, false).ok()
    }
}

/// A scheduled protection plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Name (a DNS label): metrics label, URL segment, recorded in each checkpoint.
    pub name: String,
    /// The pods protected.
    pub selection: SelectionSpec,
    /// Protect parameters (Karbor OPTIONS_SCHEMA), validated at load.
    pub parameters: Value,
    /// When to run.
    pub schedule: Schedule,
    /// Which checkpoints to keep.
    pub retention: RetentionPolicy,
}

/// A plan as the API lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, Deserialize)]
pub struct PlanView {
    /// Name.
    pub name: String,
    /// Cron expression (UTC).
    pub schedule: String,
    /// Next fire time, if this replica leads (only the leader runs schedules).
    pub next_run: Option<DateTime<Utc>>,
    /// The pods protected.
    pub selection: SelectionSpec,
    /// Protect parameters.
    #[schema(value_type = Object)]
    pub parameters: Value,
    /// Retention policy.
    pub retention: RetentionPolicy,
    /// The last run started on this replica (an operation id), if any.
    pub last_operation: Option<String>,
    /// Whether a run is in progress on this replica.
    pub running: bool,
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, h, m, s)
            .single()
            .expect("time")
    }

    #[test]
    fn five_fields_fire_on_the_minute() {
        let s = Schedule::parse("0 2 * * *").expect("parses");
        assert_eq!(s.next_after(at(1, 59, 59)), Some(at(2, 0, 0)));
        assert_eq!(
            s.next_after(at(2, 0, 0)),
            Some(
                Utc.with_ymd_and_hms(2026, 11, 26, 2, 0, 0)
                    .single()
                    .expect("t")
            )
        );
    }

    #[test]
    fn six_fields_have_seconds() {
        let s = Schedule::parse("*/10 * * * * *").expect("parses");
        assert_eq!(s.next_after(at(3, 0, 1)), Some(at(3, 0, 10)));
        let every = Schedule::parse("* * * * * *").expect("parses");
        assert_eq!(every.next_after(at(3, 0, 1)), Some(at(3, 0, 2)));
        assert_eq!(every.as_str(), "* * * * * *");
    }

    #[test]
    fn day_names_and_ranges() {
        // 2026-11-25 is a Wednesday.
        let s = Schedule::parse("30 4 * * MON-FRI").expect("parses");
        assert_eq!(
            s.next_after(at(5, 0, 0)),
            Some(
                Utc.with_ymd_and_hms(2026, 11, 26, 4, 30, 0)
                    .single()
                    .expect("t")
            )
        );
        let sunday = Schedule::parse("0 0 * * 0").expect("parses");
        assert_eq!(
            sunday.next_after(at(5, 0, 0)),
            Some(
                Utc.with_ymd_and_hms(2026, 11, 29, 0, 0, 0)
                    .single()
                    .expect("t")
            )
        );
    }

    #[test]
    fn garbage_is_refused_with_an_example() {
        for bad in ["", "not cron", "61 * * * *", "* * *"] {
            let e = Schedule::parse(bad).expect_err(bad);
            assert!(e.to_string().contains("0 2 * * *"), "{e}");
        }
    }
}
