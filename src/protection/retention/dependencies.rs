//! Rules 5 and 6 of retention, over the incremental-backup dependencies between
//! checkpoints: what a kept checkpoint needs is kept too, and deletions come children
//! first (newest first among those free to go); a cycle is kept and reported.

use std::collections::{BinaryHeap, HashMap};

use chrono::{DateTime, Utc};

use super::{Candidate, Decision, KeepReason, Parents};
use crate::model::CheckpointId;

/// Rule 5: everything not deleted pins its ancestors. Starts from every live checkpoint
/// that is not a deletion candidate (other plans' included); a pinned candidate moves from
/// `delete` to `keep`, naming the checkpoint that needs it.
pub(super) fn pin_ancestors<'a>(
    live: &[&'a Candidate],
    parents: &Parents<'a>,
    decision: &mut Decision<'a>,
) {
    let mut stack: Vec<&CheckpointId> = live
        .iter()
        .map(|c| &c.id)
        .filter(|id| !decision.delete.contains(id))
        .collect();
    while let Some(id) = stack.pop() {
        for parent in parents.get(id).into_iter().flatten() {
            if decision.delete.remove(parent) {
                decision
                    .keep
                    .insert(parent, KeepReason::DependedOnBy((*id).clone()));
                stack.push(parent);
            }
        }
    }
}

/// Rule 6: the order to delete `decision.delete` in: children before parents, newest first
/// among the free. What a cycle holds back is kept ([`KeepReason::Cycle`]).
pub(super) fn deletion_order<'a>(
    parents: &Parents<'a>,
    by_id: &HashMap<&'a CheckpointId, &'a Candidate>,
    decision: &mut Decision<'a>,
) -> Vec<CheckpointId> {
    let mut dependents_left: HashMap<&CheckpointId, usize> =
        decision.delete.iter().map(|id| (*id, 0)).collect();
    for id in &decision.delete {
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
        decision.keep.insert(id, KeepReason::Cycle);
    }
    delete
}
