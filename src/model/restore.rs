//! A restore: its request as recorded, and what became of every resource.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{CheckpointId, Outcome, ResourceType, RestoreId, RestoreStatus};

/// What became of one resource in a restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredResource {
    /// Karbor-style type.
    pub kind: ResourceType,
    /// What it was in the checkpoint: `pod:<ns>/<name>`, `pvc:<ns>/<name>`, `pv:<name>`,
    /// or a Cinder volume id.
    pub source: String,
    /// What was created (`<ns>/<name>`, a name, or the new volume id).
    pub target: String,
    /// The uid of the created object, or the new volume id.
    pub new_id: String,
    /// What happened.
    pub outcome: Outcome,
    /// Why (for skips and errors).
    pub reason: String,
}

/// A restore record.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreRecord {
    /// Its id.
    pub id: RestoreId,
    /// The checkpoint restored from.
    pub checkpoint: CheckpointId,
    /// Its state.
    pub status: RestoreStatus,
    /// Karbor's `restore_name`.
    pub restore_name: String,
    /// Karbor's `restore_description`.
    pub restore_description: String,
    /// When it started.
    pub created: DateTime<Utc>,
    /// When it ended.
    pub finished: Option<DateTime<Utc>>,
    /// Per-resource outcomes.
    pub resources: Vec<RestoredResource>,
    /// Old id -> new id (Karbor's `new_resources`).
    pub new_resources: BTreeMap<String, String>,
    /// The request as given, to recognise the same restore when it runs again.
    pub parameters_json: String,
    /// Why it failed.
    pub reason: String,
}

impl RestoreRecord {
    /// A new restore of `checkpoint`, in progress.
    pub fn new(id: RestoreId, checkpoint: CheckpointId, created: DateTime<Utc>) -> Self {
        Self {
            id,
            checkpoint,
            status: RestoreStatus::InProgress,
            restore_name: String::new(),
            restore_description: String::new(),
            created,
            finished: None,
            resources: Vec::new(),
            new_resources: BTreeMap::new(),
            parameters_json: String::new(),
            reason: String::new(),
        }
    }

    /// Records the outcome of (`kind`, `source`), replacing an earlier one.
    pub fn record(&mut self, outcome: RestoredResource) {
        match self
            .resources
            .iter_mut()
            .find(|r| r.kind == outcome.kind && r.source == outcome.source)
        {
            Some(existing) => *existing = outcome,
            None => self.resources.push(outcome),
        }
    }
}
