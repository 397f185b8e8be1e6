//! Retention: which checkpoints of a plan to delete, and in which order. A pure function
//! of the checkpoint summaries, the policy and the time; no I/O.
//!
//! Rules, in order:
//! 1. Only the plan's own checkpoints are candidates. Checkpoints of other plans (or of no
//!    plan) are never deleted here, but they still pin what they depend on.
//! 2. `protecting` and `deleting` checkpoints are left alone (work in progress), `deleted`
//!    ones are ignored.
//! 3. An `available` checkpoint is retained if it is among the `keep_last` newest available
//!    checkpoints (when set) AND not older than `max_age` (when set). An `error` or
//!    `error_deleting` checkpoint does not count towards `keep_last`; it is retained while
//!    it is not older than the oldest of those `keep_last` newest (when set) AND not older
//!    than `max_age` (when set). With neither set, everything is retained.
//! 4. The newest `available` checkpoint is always retained, however old: a plan whose
//!    schedule stalled must not lose its last good backup.
//! 5. Incremental-aware: a checkpoint that a retained (or untouched) checkpoint depends
//!    on, directly or through a chain, is retained too. A checkpoint depends on another
//!    when one of its incremental volume backups has its parent backup there (named by
//!    checkpoint id, or by backup id).
//! 6. Deletions come in dependency order: a checkpoint only after every checkpoint that
//!    depends on it; among those free to go, newest first. Checkpoints whose dependencies
//!    form a cycle (damaged records) are retained and reported.
//!
//! Parts: `policy` applies rules 1 to 4, `dependencies` rules 5 and 6; [`plan_retention`]
//! runs them in that order. Owns: the decision. Must not touch: the bank or Cinder (the
//! caller deletes, in the order given).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

mod dependencies;
mod policy;
#[cfg(test)]
mod tests;

pub use crate::model::BackupLink;
use crate::model::{CheckpointId, CheckpointStatus, CheckpointSummary};

/// A checkpoint as retention sees it: enough to decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// Its id.
    pub id: CheckpointId,
    /// The plan it belongs to, if any.
    #[serde(default)]
    pub plan: Option<String>,
    /// Its status.
    pub status: CheckpointStatus,
    /// When it was taken.
    pub created_at: DateTime<Utc>,
    /// Its Cinder volume backups.
    #[serde(default)]
    pub volumes: Vec<BackupLink>,
}

impl From<&CheckpointSummary> for Candidate {
    fn from(cp: &CheckpointSummary) -> Self {
        Self {
            id: cp.id.clone(),
            plan: (!cp.plan.is_empty()).then(|| cp.plan.clone()),
            status: cp.status,
            created_at: cp.created,
            volumes: cp.backups.clone(),
        }
    }
}

/// How many checkpoints of a plan to keep.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Keep at most this many of the newest available checkpoints.
    #[serde(alias = "keep_last")]
    pub keep_last: Option<u32>,
    /// Delete checkpoints older than this (the newest available one excepted).
    #[serde(with = "crate::model::duration::opt_duration")]
    #[schema(value_type = Option<String>, example = "30d")]
    #[serde(alias = "max_age")]
    pub max_age: Option<Duration>,
}

impl RetentionPolicy {
    /// Whether the policy deletes anything at all.
    pub fn is_unbounded(&self) -> bool {
        self.keep_last.is_none() && self.max_age.is_none()
    }
}

/// Why a candidate checkpoint is retained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeepReason {
    /// The policy retains it (within `keep_last` and `max_age`, or no limit set).
    Policy,
    /// The newest available checkpoint of the plan, kept whatever its age.
    Newest,
    /// Being written or deleted: left alone.
    InProgress,
    /// A retained checkpoint's incremental backup depends on it.
    DependedOnBy(CheckpointId),
    /// Its dependencies form a cycle; the records need a look.
    Cycle,
}

/// The decision for one plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetentionPlan {
    /// Checkpoints to delete, in the order to delete them.
    pub delete: Vec<CheckpointId>,
    /// Candidates retained, with the reason, newest first.
    pub keep: Vec<(CheckpointId, KeepReason)>,
}

/// Decide which of `plan`'s checkpoints to delete under `policy` at time `now`.
///
/// # Arguments
/// * `all` - every checkpoint summary of the bank, of every plan (other plans' checkpoints
///   pin the ones they depend on).
/// * `plan` - the plan whose checkpoints are candidates.
/// * `policy` - the plan's retention policy.
/// * `now` - the current time, for `max_age`.
pub fn plan_retention(
    all: &[Candidate],
    plan: &str,
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
) -> RetentionPlan {
    let live: Vec<&Candidate> = all
        .iter()
        .filter(|c| c.status != CheckpointStatus::Deleted)
        .collect();
    let by_id: HashMap<&CheckpointId, &Candidate> = live.iter().map(|c| (&c.id, *c)).collect();
    let parents = dependency_edges(&live, &by_id);

    let candidates = policy::candidates(&live, plan);
    let mut decision = policy::decide(&candidates, policy, now);
    dependencies::pin_ancestors(&live, &parents, &mut decision);
    let delete = dependencies::deletion_order(&parents, &by_id, &mut decision);

    let mut keep = decision.keep;
    let keep = candidates
        .iter()
        .filter_map(|c| keep.remove(&c.id).map(|r| (c.id.clone(), r)))
        .collect();
    RetentionPlan { delete, keep }
}

/// What the rules have decided so far: the candidates retained (with why) and those to
/// delete. Every candidate is in exactly one of the two.
#[derive(Debug, Default)]
struct Decision<'a> {
    keep: BTreeMap<&'a CheckpointId, KeepReason>,
    delete: BTreeSet<&'a CheckpointId>,
}

/// Incremental parents: the checkpoints each checkpoint depends on.
type Parents<'a> = HashMap<&'a CheckpointId, BTreeSet<&'a CheckpointId>>;

/// The checkpoints each checkpoint depends on (incremental parents), self excluded.
fn dependency_edges<'a>(
    live: &[&'a Candidate],
    by_id: &HashMap<&'a CheckpointId, &'a Candidate>,
) -> Parents<'a> {
    let by_backup: HashMap<&str, &CheckpointId> = live
        .iter()
        .flat_map(|c| c.volumes.iter().map(move |v| (v.backup_id.as_str(), &c.id)))
        .collect();
    let mut edges: Parents<'a> = HashMap::new();
    for c in live {
        for v in &c.volumes {
            let named = v
                .parent_checkpoint_id
                .as_ref()
                .and_then(|p| by_id.get_key_value(p).map(|(k, _)| *k));
            let via_backup = v
                .parent_backup_id
                .as_ref()
                .and_then(|b| by_backup.get(b.as_str()).copied());
            for parent in named.into_iter().chain(via_backup) {
                if *parent != c.id {
                    edges.entry(&c.id).or_default().insert(parent);
                }
            }
        }
    }
    edges
}
