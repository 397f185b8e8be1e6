//! The retention rules, case by case, and on a long incremental history.

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
