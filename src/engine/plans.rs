//! Plans: a selection of pods, protect parameters, a cron [`Schedule`] and a retention
//! policy. A plan run is a protect, then the plan's retention (list every checkpoint,
//! [`plan_retention`], delete in the order given, stopping at the first failure so that a
//! parent is never tried while its child is still there). [`run_plan`] does that over any
//! [`Engine`], so that the agent's scheduler, its HTTP trigger and the CLI run plans alike.

use chrono::{DateTime, Utc};
use croner::parser::{CronParser, Seconds};
use croner::Cron;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::{CheckpointFilter, CheckpointView, Engine, EngineError, ProtectRequest, SelectionSpec};
use crate::model::{CheckpointId, CheckpointStatus, StoredPlan};
use crate::protection::retention::{plan_retention, Candidate, RetentionPlan, RetentionPolicy};
use crate::protection::schema::ProtectParams;

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

/// A schedule that does not parse, or never fires.
#[derive(Debug, thiserror::Error)]
#[error("schedule {text:?} {reason}; e.g. \"0 2 * * *\" is 02:00 UTC daily, \"*/10 * * * * *\" every 10 seconds")]
pub struct ScheduleError {
    /// The text given.
    pub text: String,
    /// What is wrong.
    pub reason: String,
}

impl Schedule {
    /// Parse a cron expression (5 or 6 fields). A schedule that can never fire (30
    /// February) is refused too.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(text.trim())
            .map_err(|e| ScheduleError {
                text: text.to_string(),
                reason: format!("is not a cron expression ({e})"),
            })?;
        let schedule = Schedule {
            text: text.trim().to_string(),
            cron,
        };
        // Every date a cron expression can name comes within four years (leap days
        // included); one that names none never fires.
        let start = DateTime::from_timestamp(0, 0).unwrap_or_default();
        let horizon = chrono::TimeDelta::days(4 * 366 + 1);
        match schedule.next_after(start) {
            Some(t) if t - start <= horizon => Ok(schedule),
            _ => Err(ScheduleError {
                text: text.to_string(),
                reason: "never fires (no date matches it)".into(),
            }),
        }
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

impl Serialize for Schedule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Schedule::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
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
    pub parameters: ProtectParams,
    /// When to run.
    pub schedule: Schedule,
    /// Which checkpoints to keep.
    pub retention: RetentionPolicy,
    /// Exec hooks for the plan's pods (checked at load).
    pub hooks: Vec<crate::protection::hooks::PlanHook>,
}

impl Plan {
    /// The protect a run of this plan makes.
    pub fn protect_request(&self) -> ProtectRequest {
        ProtectRequest {
            plan: Some(self.name.clone()),
            selection: self.selection.clone(),
            parameters: self.parameters.clone(),
            volume_backups: true,
            secrets_in_plain_bank: false,
            skip_hooks: false,
            hooks: self.hooks.clone(),
            checkpoint_id: None,
            project_id: String::new(),
        }
    }
}

/// A plan as the API lists it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
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

impl From<&Plan> for PlanView {
    fn from(p: &Plan) -> Self {
        PlanView {
            name: p.name.clone(),
            schedule: p.schedule.as_str().to_string(),
            next_run: None,
            selection: p.selection.clone(),
            parameters: p.parameters.given.clone(),
            retention: p.retention.clone(),
            last_operation: None,
            running: false,
        }
    }
}

/// What retention did in a plan run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetentionReport {
    /// Checkpoints deleted, in order.
    pub deleted: Vec<CheckpointId>,
    /// Checkpoints the policy would delete but that were not reached (after an error).
    pub pending: Vec<CheckpointId>,
    /// Why retention stopped, if it did.
    pub error: Option<String>,
}

/// What a plan run did.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanRun {
    /// The plan.
    pub plan: String,
    /// The checkpoint it made.
    pub checkpoint: CheckpointView,
    /// What retention deleted.
    pub retention: RetentionReport,
}

/// Applies `plan`'s retention over `all` (every checkpoint of the bank, with its backup
/// chains), deleting through `engine`.
pub async fn apply_retention(
    engine: &dyn Engine,
    plan: &Plan,
    all: &[Candidate],
) -> RetentionReport {
    apply_policy(engine, &plan.name, &plan.retention, all).await
}

/// Applies `policy` to the checkpoints recorded as made by plan `plan` among `all` (every
/// checkpoint of the bank, with its backup chains), deleting through `engine` in
/// [`plan_retention`]'s order (a child before its parent) and stopping at the first
/// failure, so that a parent is never tried while its child is still there.
pub async fn apply_policy(
    engine: &dyn Engine,
    plan: &str,
    policy: &RetentionPolicy,
    all: &[Candidate],
) -> RetentionReport {
    let mut report = RetentionReport::default();
    if policy.is_unbounded() {
        return report;
    }
    let RetentionPlan { delete, keep } = plan_retention(all, plan, policy, Utc::now());
    tracing::debug!(plan = %plan, delete = delete.len(), keep = keep.len(), "retention");
    let mut todo = delete.into_iter();
    for id in todo.by_ref() {
        match engine.delete_checkpoint(&id).await {
            Ok(_) => {
                tracing::info!(plan = %plan, checkpoint = %id, "retention: checkpoint deleted");
                report.deleted.push(id);
            }
            Err(e) => {
                tracing::warn!(plan = %plan, checkpoint = %id, error = %e, "retention: delete failed; the rest waits for the next run");
                report.error = Some(format!("deleting checkpoint {id}: {e}"));
                report.pending.push(id);
                break;
            }
        }
    }
    report.pending.extend(todo);
    report
}

/// Runs `plan` on `engine`: protect, then retention over the bank's checkpoints and their
/// chains as they are after the protect.
pub async fn run_plan(engine: &dyn Engine, plan: &Plan) -> Result<PlanRun, EngineError> {
    protect_and_retain(engine, plan.protect_request(), &plan.retention).await
}

/// Protects with `request`, then, once the checkpoint is available, applies `policy` to
/// the checkpoints of the request's plan (none without a plan) as the bank holds them
/// after the protect. A checkpoint that does not end available is an error and nothing
/// is deleted.
pub async fn protect_and_retain(
    engine: &dyn Engine,
    request: ProtectRequest,
    policy: &RetentionPolicy,
) -> Result<PlanRun, EngineError> {
    let plan = request.plan.clone().unwrap_or_default();
    let checkpoint = engine.protect(request).await?;
    if checkpoint.status != CheckpointStatus::Available {
        return Err(EngineError::Failed(format!(
            "checkpoint {} ended {}{}; retention did not run",
            checkpoint.id,
            checkpoint.status,
            if checkpoint.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", checkpoint.reason)
            }
        )));
    }
    let retention = if policy.is_unbounded() || plan.is_empty() {
        RetentionReport::default()
    } else {
        let every = CheckpointFilter {
            plan: None,
            all: true,
        };
        match engine.checkpoints(&every).await {
            Ok(list) => {
                for p in &list.problems {
                    tracing::warn!(subject = %p.subject, reason = %p.reason, "retention: unreadable checkpoint");
                }
                let all: Vec<Candidate> = list.items.iter().map(Candidate::from).collect();
                apply_policy(engine, &plan, policy, &all).await
            }
            Err(e) => RetentionReport {
                error: Some(format!("listing checkpoints: {e}")),
                ..Default::default()
            },
        }
    };
    Ok(PlanRun {
        plan,
        checkpoint,
        retention,
    })
}

/// The protect a checkpoint of a plan kept in the bank makes: its pods (by uid), with its
/// `OS::Kubernetes::Pod` parameters, recorded under the plan's id.
pub fn stored_plan_request(plan: &StoredPlan) -> Result<ProtectRequest, EngineError> {
    let pods: Vec<String> = plan
        .resources
        .iter()
        .filter(|r| r.kind == POD_TYPE)
        .map(|r| r.id.clone())
        .collect();
    let parameters = plan
        .parameters
        .get(POD_TYPE)
        .cloned()
        .unwrap_or_else(|| serde_json::json!({}));
    serde_json::from_value::<ProtectRequest>(serde_json::json!({
        "plan": plan.id.to_string(),
        "selection": { "uids": pods },
        "parameters": parameters,
    }))
    .map_err(|e| EngineError::Invalid(format!("plan {}: {e}", plan.id)))
}

/// The Karbor resource type a plan kept in the bank protects.
pub const POD_TYPE: &str = "OS::Kubernetes::Pod";

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
    fn a_schedule_that_never_fires_is_refused() {
        for never in ["0 0 30 2 *", "0 0 31 4 *"] {
            let e = Schedule::parse(never).expect_err(never).to_string();
            assert!(e.contains("never fires"), "{never}: {e}");
        }
        // Leap days do come.
        assert!(Schedule::parse("0 0 29 2 *").is_ok());
    }

    #[test]
    fn garbage_is_refused_with_an_example() {
        for bad in ["", "not cron", "61 * * * *", "* * *"] {
            let e = Schedule::parse(bad).expect_err(bad);
            assert!(e.to_string().contains("0 2 * * *"), "{e}");
        }
    }
}
