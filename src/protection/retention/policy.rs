//! Rules 1 to 4 of retention: which of the plan's checkpoints are candidates, and which of
//! them the policy (`keep_last`, `max_age`, the newest available, work in progress)
//! retains. Dependencies between checkpoints are not looked at here (see `dependencies`).

use chrono::{DateTime, Utc};

use super::{Candidate, Decision, KeepReason, RetentionPolicy};
use crate::model::CheckpointStatus;

/// Rule 1: the plan's own live checkpoints, newest first (the id breaks ties so that the
/// order is total).
pub(super) fn candidates<'a>(live: &[&'a Candidate], plan: &str) -> Vec<&'a Candidate> {
    let mut candidates: Vec<&Candidate> = live
        .iter()
        .copied()
        .filter(|c| c.plan.as_deref() == Some(plan))
        .collect();
    candidates.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    candidates
}

/// Rules 2 to 4 over `candidates` (newest first): each is retained with a reason, or
/// deleted.
pub(super) fn decide<'a>(
    candidates: &[&'a Candidate],
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
) -> Decision<'a> {
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

    let mut decision = Decision::default();
    for c in candidates {
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
                decision.keep.insert(&c.id, r);
            }
            None => {
                decision.delete.insert(&c.id);
            }
        }
    }
    decision
}
