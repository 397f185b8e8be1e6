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

use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
#[serde(default, deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Keep at most this many of the newest available checkpoints.
    pub keep_last: Option<u32>,
    /// Delete checkpoints older than this (the newest available one excepted).
    #[serde(with = "crate::model::duration::opt_duration")]
    #[schema(value_type = Option<String>, example = "30d")]
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

    let is_candidate = |c: &Candidate| c.plan.as_deref() == Some(plan);
    let mut candidates: Vec<&Candidate> =
        live.iter().copied().filter(|c| is_candidate(c)).collect();
    // Newest first; the id breaks ties so that the order is total.
    candidates.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));

    let available: Vec<&Candidate> = candidates
        .iter()
        .copied()
        .filter(|c| c.status == CheckpointStatus::Available)
        .collect();
    // Rule 3: the keep_last window is everything from its Nth newest available on.
    let outside_window = |c: &Candidate| match policy.keep_last {
        None => false,
        Some(0) => true,
        Some(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            match available.get(n - 1) {
                Some(edge) => (c.created_at, &c.id) < (edge.created_at, &edge.id),
                None => false,
            }
        }
    };
    let too_old = |c: &Candidate| match policy.max_age {
        Some(max) => match chrono::TimeDelta::from_std(max) {
            Ok(max) => now.signed_duration_since(c.created_at) > max,
            Err(_) => false, // an age beyond chrono's range: nothing is that old
        },
        None => false,
    };
    let newest_available = available.first().map(|c| &c.id);

    // Retained by rules 2-4.
    let mut keep: BTreeMap<&CheckpointId, KeepReason> = BTreeMap::new();
    let mut policy_deletes: BTreeSet<&CheckpointId> = BTreeSet::new();
    for c in &candidates {
        let reason = match c.status {
            CheckpointStatus::Protecting | CheckpointStatus::Deleting => {
                Some(KeepReason::InProgress)
            }
            CheckpointStatus::Deleted => None,
            CheckpointStatus::Available
            | CheckpointStatus::Error
            | CheckpointStatus::ErrorDeleting => {
                let retained = policy.is_unbounded() || (!outside_window(c) && !too_old(c));
                if retained {
                    Some(KeepReason::Policy)
                } else if Some(&c.id) == newest_available {
                    Some(KeepReason::Newest)
                } else {
                    None
                }
            }
        };
        match reason {
            Some(r) => {
                keep.insert(&c.id, r);
            }
            None => {
                policy_deletes.insert(&c.id);
            }
        }
    }

    // Rule 5: everything not deleted pins its ancestors. Start from every live checkpoint
    // that is not a deletion candidate (other plans' included).
    let mut stack: Vec<&CheckpointId> = live
        .iter()
        .map(|c| &c.id)
        .filter(|id| !policy_deletes.contains(id))
        .collect();
    while let Some(id) = stack.pop() {
        for parent in parents.get(id).into_iter().flatten() {
            if policy_deletes.remove(parent) {
                keep.insert(parent, KeepReason::DependedOnBy((*id).clone()));
                stack.push(parent);
            }
        }
    }

    // Rule 6: children before parents, newest first among the free.
    let mut dependents_left: HashMap<&CheckpointId, usize> =
        policy_deletes.iter().map(|id| (*id, 0)).collect();
    for id in &policy_deletes {
        for parent in parents.get(id).into_iter().flatten() {
            if let Some(n) = dependents_left.get_mut(parent) {
                *n += 1;
            }
        }
    }
    let order_key = |id: &CheckpointId| by_id.get(id).map(|c| c.created_at);
    let mut ready: BinaryHeap<(Option<DateTime<Utc>>, &CheckpointId)> = dependents_left
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(id, _)| (order_key(id), *id))
        .collect();
    let mut delete = Vec::new();
    while let Some((_, id)) = ready.pop() {
        delete.push(id.clone());
        dependents_left.remove(id);
        for parent in parents.get(id).into_iter().flatten() {
            if let Some(n) = dependents_left.get_mut(parent) {
                *n -= 1;
                if *n == 0 {
                    ready.push((order_key(parent), *parent));
                }
            }
        }
    }
    for id in dependents_left.keys() {
        keep.insert(id, KeepReason::Cycle);
    }

    let keep = candidates
        .iter()
        .filter_map(|c| keep.remove(&c.id).map(|r| (c.id.clone(), r)))
        .collect();
    RetentionPlan { delete, keep }
}

/// The checkpoints each checkpoint depends on (incremental parents), self excluded.
fn dependency_edges<'a>(
    live: &[&'a Candidate],
    by_id: &HashMap<&'a CheckpointId, &'a Candidate>,
) -> HashMap<&'a CheckpointId, BTreeSet<&'a CheckpointId>> {
    let by_backup: HashMap<&str, &CheckpointId> = live
        .iter()
        .flat_map(|c| c.volumes.iter().map(move |v| (v.backup_id.as_str(), &c.id)))
        .collect();
    let mut edges: HashMap<&CheckpointId, BTreeSet<&CheckpointId>> = HashMap::new();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BackupId, VolumeId};

    fn cid(s: &str) -> CheckpointId {
        s.parse().expect("a checkpoint id")
    }
    use chrono::TimeZone;

    const DAY: i64 = 86_400;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0)
            .single()
            .expect("time")
    }

    fn now() -> DateTime<Utc> {
        t(100 * DAY)
    }

    /// A checkpoint of `plan` at `at`; `vols` are (volume, backup, parent checkpoint).
    fn cp(
        id: &str,
        plan: &str,
        at: i64,
        status: CheckpointStatus,
        vols: &[(&str, &str, Option<&str>)],
    ) -> Candidate {
        Candidate {
            id: cid(id),
            plan: Some(plan.to_string()),
            status,
            created_at: t(at),
            volumes: vols
                .iter()
                .map(|(vol, backup, parent)| BackupLink {
                    volume_id: VolumeId::new(*vol),
                    backup_id: BackupId::new(*backup),
                    incremental: parent.is_some(),
                    parent_backup_id: None,
                    parent_checkpoint_id: parent.map(cid),
                })
                .collect(),
        }
    }

    fn full(id: &str, at: i64) -> Candidate {
        cp(
            id,
            "p",
            at,
            CheckpointStatus::Available,
            &[("vol", &format!("b-{id}"), None)],
        )
    }

    fn inc(id: &str, at: i64, parent: &str) -> Candidate {
        cp(
            id,
            "p",
            at,
            CheckpointStatus::Available,
            &[("vol", &format!("b-{id}"), Some(parent))],
        )
    }

    fn keep_last(n: u32) -> RetentionPolicy {
        RetentionPolicy {
            keep_last: Some(n),
            max_age: None,
        }
    }

    fn max_age(days: u64) -> RetentionPolicy {
        RetentionPolicy {
            keep_last: None,
            max_age: Some(Duration::from_secs(days * 86_400)),
        }
    }

    fn ids(v: &[CheckpointId]) -> Vec<&str> {
        v.iter().map(|c| c.as_str()).collect()
    }

    fn reason<'a>(plan: &'a RetentionPlan, id: &str) -> Option<&'a KeepReason> {
        plan.keep
            .iter()
            .find(|(k, _)| k.as_str() == id)
            .map(|(_, r)| r)
    }

    #[test]
    fn keep_last_deletes_the_oldest_newest_first() {
        let all: Vec<_> = (0..5).map(|i| full(&format!("c{i}"), i * DAY)).collect();
        let plan = plan_retention(&all, "p", &keep_last(3), now());
        assert_eq!(ids(&plan.delete), ["c1", "c0"]);
        assert_eq!(plan.keep.len(), 3);
        assert!(plan.keep.iter().all(|(_, r)| *r == KeepReason::Policy));
        assert_eq!(plan.keep[0].0.as_str(), "c4", "keep list is newest first");
    }

    #[test]
    fn fewer_checkpoints_than_keep_last_deletes_nothing() {
        let all = vec![full("a", 0), full("b", DAY)];
        let plan = plan_retention(&all, "p", &keep_last(5), now());
        assert!(plan.delete.is_empty());
        assert_eq!(plan.keep.len(), 2);
    }

    #[test]
    fn no_policy_deletes_nothing() {
        let all: Vec<_> = (0..4).map(|i| full(&format!("c{i}"), i)).collect();
        let plan = plan_retention(&all, "p", &RetentionPolicy::default(), now());
        assert!(plan.delete.is_empty());
        assert_eq!(plan.keep.len(), 4);
    }

    #[test]
    fn max_age_deletes_what_is_older() {
        // Ages: 100, 60, 20, 5 days.
        let all = vec![
            full("a", 0),
            full("b", 40 * DAY),
            full("c", 80 * DAY),
            full("d", 95 * DAY),
        ];
        let plan = plan_retention(&all, "p", &max_age(30), now());
        assert_eq!(ids(&plan.delete), ["b", "a"]);
        assert_eq!(reason(&plan, "c"), Some(&KeepReason::Policy));
        assert_eq!(reason(&plan, "d"), Some(&KeepReason::Policy));
    }

    #[test]
    fn keep_last_and_max_age_both_apply() {
        // keep_last 3 keeps e, d, c; max_age 30 days removes c (age 40 days) too.
        let all = vec![
            full("a", 10 * DAY),
            full("b", 20 * DAY),
            full("c", 60 * DAY),
            full("d", 80 * DAY),
            full("e", 90 * DAY),
        ];
        let policy = RetentionPolicy {
            keep_last: Some(3),
            max_age: Some(Duration::from_secs(30 * 86_400)),
        };
        let plan = plan_retention(&all, "p", &policy, now());
        assert_eq!(ids(&plan.delete), ["c", "b", "a"]);
        assert_eq!(plan.keep.len(), 2);
    }

    #[test]
    fn the_newest_available_checkpoint_survives_any_age() {
        let all = vec![full("old", 0), full("older", -DAY)];
        let plan = plan_retention(&all, "p", &max_age(1), now());
        assert_eq!(ids(&plan.delete), ["older"]);
        assert_eq!(reason(&plan, "old"), Some(&KeepReason::Newest));
        // keep_last 0 is the same: the newest survives.
        let plan = plan_retention(&all, "p", &keep_last(0), now());
        assert_eq!(ids(&plan.delete), ["older"]);
    }

    #[test]
    fn an_incremental_chain_behind_a_kept_checkpoint_is_kept_whole() {
        // a <- b <- c (c incremental on b, b on a); keep_last 1 keeps c, hence b and a.
        let all = vec![full("a", 0), inc("b", DAY, "a"), inc("c", 2 * DAY, "b")];
        let plan = plan_retention(&all, "p", &keep_last(1), now());
        assert!(plan.delete.is_empty(), "{plan:?}");
        assert_eq!(reason(&plan, "c"), Some(&KeepReason::Policy));
        assert_eq!(
            reason(&plan, "b"),
            Some(&KeepReason::DependedOnBy(cid("c")))
        );
        assert_eq!(
            reason(&plan, "a"),
            Some(&KeepReason::DependedOnBy(cid("b")))
        );
    }

    #[test]
    fn an_old_chain_goes_children_first() {
        // Chain 1: a <- b <- c; chain 2: d <- e. keep_last 1 keeps e and d.
        let all = vec![
            full("a", 0),
            inc("b", DAY, "a"),
            inc("c", 2 * DAY, "b"),
            full("d", 3 * DAY),
            inc("e", 4 * DAY, "d"),
        ];
        let plan = plan_retention(&all, "p", &keep_last(1), now());
        assert_eq!(ids(&plan.delete), ["c", "b", "a"]);
        assert_eq!(
            reason(&plan, "d"),
            Some(&KeepReason::DependedOnBy(cid("e")))
        );
    }

    #[test]
    fn dependency_order_wins_over_timestamps() {
        // A child stamped *before* its parent (clock skew): still deleted first.
        let all = vec![
            full("parent", 5 * DAY),
            inc("child", 2 * DAY, "parent"),
            full("keep", 9 * DAY),
        ];
        let plan = plan_retention(&all, "p", &keep_last(1), now());
        assert_eq!(ids(&plan.delete), ["child", "parent"]);
    }

    #[test]
    fn interleaved_chains_respect_every_edge() {
        // Two volumes with chains crossing checkpoints: x1 full of both volumes;
        // x2 incremental of vol1 on x1 and full of vol2; x3 incremental of vol2 on x2 and of
        // vol1 on x1; keep only x4 (independent).
        let all = vec![
            cp(
                "x1",
                "p",
                0,
                CheckpointStatus::Available,
                &[("v1", "b11", None), ("v2", "b21", None)],
            ),
            cp(
                "x2",
                "p",
                DAY,
                CheckpointStatus::Available,
                &[("v1", "b12", Some("x1")), ("v2", "b22", None)],
            ),
            cp(
                "x3",
                "p",
                2 * DAY,
                CheckpointStatus::Available,
                &[("v1", "b13", Some("x1")), ("v2", "b23", Some("x2"))],
            ),
            full("x4", 3 * DAY),
        ];
        let plan = plan_retention(&all, "p", &keep_last(1), now());
        assert_eq!(ids(&plan.delete), ["x3", "x2", "x1"]);
        // Keep x3 instead: it pins x2 and x1.
        let plan = plan_retention(&all[..3], "p", &keep_last(1), now());
        assert!(plan.delete.is_empty());
    }

    #[test]
    fn parents_named_by_backup_id_are_followed() {
        let mut b = full("b", DAY);
        b.volumes[0].incremental = true;
        b.volumes[0].parent_backup_id = Some("b-a".into());
        let all = vec![full("a", 0), b, full("c", 2 * DAY)];
        let plan = plan_retention(&all, "p", &keep_last(2), now());
        // keep c and b; b pins a through its parent backup.
        assert!(plan.delete.is_empty(), "{plan:?}");
        assert_eq!(
            reason(&plan, "a"),
            Some(&KeepReason::DependedOnBy(cid("b")))
        );
    }

    #[test]
    fn other_plans_pin_what_they_depend_on_and_are_never_deleted() {
        let mut other = inc("o1", DAY, "a");
        other.plan = Some("other".into());
        let mut unplanned = full("u", 0);
        unplanned.plan = None;
        let all = vec![
            full("a", 0),
            other,
            unplanned,
            full("b", 2 * DAY),
            full("c", 3 * DAY),
        ];
        let plan = plan_retention(&all, "p", &keep_last(1), now());
        assert_eq!(ids(&plan.delete), ["b"]);
        assert_eq!(
            reason(&plan, "a"),
            Some(&KeepReason::DependedOnBy(cid("o1")))
        );
        assert!(
            reason(&plan, "o1").is_none(),
            "other plans are not candidates"
        );
    }

    #[test]
    fn work_in_progress_is_left_alone_and_pins_its_parent() {
        let all = vec![
            full("a", 0),
            cp(
                "run",
                "p",
                3 * DAY,
                CheckpointStatus::Protecting,
                &[("vol", "b-run", Some("a"))],
            ),
            cp("del", "p", DAY, CheckpointStatus::Deleting, &[]),
            full("b", 2 * DAY),
        ];
        let plan = plan_retention(&all, "p", &keep_last(1), now());
        assert!(plan.delete.is_empty(), "{plan:?}");
        assert_eq!(reason(&plan, "run"), Some(&KeepReason::InProgress));
        assert_eq!(reason(&plan, "del"), Some(&KeepReason::InProgress));
        assert_eq!(
            reason(&plan, "a"),
            Some(&KeepReason::DependedOnBy(cid("run")))
        );
    }

    #[test]
    fn error_checkpoints_do_not_count_and_go_when_outside_the_window() {
        let err = |id: &str, at: i64| cp(id, "p", at, CheckpointStatus::Error, &[]);
        let all = vec![
            full("a", 0),
            err("e1", DAY),
            full("b", 2 * DAY),
            err("e2", 3 * DAY),
            full("c", 4 * DAY),
            cp("ed", "p", 5 * DAY, CheckpointStatus::ErrorDeleting, &[]),
        ];
        // keep_last 2: the window is c, b (available only). e2 and ed are newer than b:
        // inside; e1 and a are older: deleted.
        let plan = plan_retention(&all, "p", &keep_last(2), now());
        assert_eq!(ids(&plan.delete), ["e1", "a"]);
        assert_eq!(reason(&plan, "e2"), Some(&KeepReason::Policy));
        assert_eq!(reason(&plan, "ed"), Some(&KeepReason::Policy));
        // keep_last 1: everything before c goes, including the error_deleting one? No: ed
        // is newer than c, so it stays; e2, b, e1, a go.
        let plan = plan_retention(&all, "p", &keep_last(1), now());
        assert_eq!(ids(&plan.delete), ["e2", "b", "e1", "a"]);
    }

    #[test]
    fn deleted_records_are_ignored() {
        let all = vec![
            cp("gone", "p", 0, CheckpointStatus::Deleted, &[]),
            full("a", DAY),
            full("b", 2 * DAY),
        ];
        let plan = plan_retention(&all, "p", &keep_last(1), now());
        assert_eq!(ids(&plan.delete), ["a"]);
        assert!(reason(&plan, "gone").is_none());
    }

    #[test]
    fn a_dependency_cycle_is_kept_and_reported() {
        let all = vec![
            inc("x", 0, "y"),
            inc("y", DAY, "x"),
            full("z", 2 * DAY),
            full("w", 3 * DAY),
        ];
        let plan = plan_retention(&all, "p", &keep_last(1), now());
        assert_eq!(ids(&plan.delete), ["z"]);
        assert_eq!(reason(&plan, "x"), Some(&KeepReason::Cycle));
        assert_eq!(reason(&plan, "y"), Some(&KeepReason::Cycle));
    }

    #[test]
    fn a_parent_already_gone_does_not_block() {
        let all = vec![inc("b", DAY, "vanished"), full("c", 2 * DAY)];
        let plan = plan_retention(&all, "p", &keep_last(1), now());
        assert_eq!(ids(&plan.delete), ["b"]);
    }

    #[test]
    fn every_deletion_comes_after_its_dependents_on_a_long_random_history() {
        // 60 checkpoints, three volumes: v0 and v1 full every 7th checkpoint, v2 every
        // 14th, incrementals in between; keep_last 10 keeps c50..c59, which pin back to the
        // last checkpoint where every volume was full (c42).
        let mut all = Vec::new();
        for i in 0..60i64 {
            let vols: Vec<(String, String, Option<String>)> = (0..3)
                .map(|v| {
                    let parent = if i % 7 == 0 && (v < 2 || i % 14 == 0) {
                        None
                    } else {
                        Some(format!("c{}", i - 1))
                    };
                    (format!("v{v}"), format!("b{i}-{v}"), parent)
                })
                .collect();
            let refs: Vec<(&str, &str, Option<&str>)> = vols
                .iter()
                .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_deref()))
                .collect();
            all.push(cp(
                &format!("c{i}"),
                "p",
                i * 3600,
                CheckpointStatus::Available,
                &refs,
            ));
        }
        let plan = plan_retention(&all, "p", &keep_last(10), now());
        let deleted: BTreeSet<&str> = plan.delete.iter().map(|c| c.as_str()).collect();
        assert_eq!(deleted.len() + plan.keep.len(), 60);
        // No kept checkpoint depends on a deleted one.
        for c in &all {
            if deleted.contains(c.id.as_str()) {
                continue;
            }
            for v in &c.volumes {
                if let Some(p) = &v.parent_checkpoint_id {
                    assert!(
                        !deleted.contains(p.as_str()),
                        "{} depends on deleted {p}",
                        c.id
                    );
                }
            }
        }
        // Each deleted checkpoint comes after everything that depends on it.
        let pos: HashMap<&str, usize> = plan
            .delete
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i))
            .collect();
        for c in &all {
            for v in &c.volumes {
                if let (Some(p), Some(child)) = (&v.parent_checkpoint_id, pos.get(c.id.as_str())) {
                    assert!(
                        pos[p.as_str()] > *child,
                        "{p} deleted before its child {}",
                        c.id
                    );
                }
            }
        }
        // The 10 newest are kept by policy.
        for i in 50..60 {
            assert_eq!(reason(&plan, &format!("c{i}")), Some(&KeepReason::Policy));
        }
        let expected: BTreeSet<String> = (0..42).map(|i| format!("c{i}")).collect();
        let deleted_owned: BTreeSet<String> = deleted.iter().map(|s| s.to_string()).collect();
        assert_eq!(deleted_owned, expected);
        for i in 42..50 {
            assert!(
                matches!(
                    reason(&plan, &format!("c{i}")),
                    Some(KeepReason::DependedOnBy(_))
                ),
                "c{i}"
            );
        }
    }
}
