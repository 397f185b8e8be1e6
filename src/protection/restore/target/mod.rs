//! Where a restore's objects go: the [`RestoreTarget`] trait and its three implementations,
//! the cluster ([`ClusterTarget`]: Cinder for volumes, the API server for objects), an
//! export folder ([`ExportTarget`]: a dry run that writes every object it would create, and
//! the plan, into a folder) and a bare dry run ([`DryRunTarget`]: the same plan, kept in
//! memory). A dry run is a target, not a branch: the executor does the same steps whatever
//! target it holds. Where the restore record is kept is not a target's business: that is
//! the [`super::journal`].
//!
//! Contract, relied upon by the executor (and checked over every target by the
//! conformance suite, tests/scenarios/restore_targets.rs):
//! * `existing` answers for a name what the target holds; a target that does not look at
//!   what it restores into (a dry run) answers [`Existing::Absent`].
//! * `start_volume` returns a new volume's id as soon as it exists (before it is ready);
//!   `wait_volume` returns once it can be used. The executor records the id in between, so
//!   that a run killed while the volume is being made leaves no volume the record does not
//!   name.
//! * `create` makes the object from its edited bytes, or records what it would make; it
//!   returns the uid (empty when there is none) and the outcome (`restored`, `planned`).
//! * `concurrency` is at least 1; `dry_run` says whether `create` plans (`planned`) or
//!   makes (`restored`).
//! * `settle` watches what was made for a while and returns what the target deleted (the
//!   garbage collector, a controller); a dry run has nothing to watch.
//! * `finish` is called once, at the end.

mod cluster;
mod dry_run;
mod export;

pub use cluster::ClusterTarget;
pub use dry_run::{DryRunTarget, PlannedObject};
pub use export::ExportTarget;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};

use super::error::RestoreError;
use super::plan::{Existing, Key, ObjectStep};
use crate::apiserver::Throttling;
use crate::codec::ResourceKind;
use crate::model::{
    BackupId, Checkpoint, ObjectRef, Outcome, RestoreId, RestoreRecord, Source, VolumeId,
};

/// What a target made of a created object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The uid the target gave it (empty in a dry run).
    pub uid: String,
    /// `restored`, or `planned` in a dry run.
    pub outcome: Outcome,
}

/// A new volume, as a target made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVolume {
    /// Its id (a placeholder in a dry run).
    pub id: VolumeId,
    /// `restoring`, or `planned` in a dry run.
    pub outcome: Outcome,
    /// What a dry run would do.
    pub note: String,
}

/// An object the restore made, as the settle watch follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Made {
    /// What it is.
    pub kind: ResourceKind,
    /// Where it is.
    pub target: ObjectRef,
    /// Its uid in the target.
    pub uid: String,
    /// What it was (the record's source).
    pub source: Source,
}

/// Where a restore's objects go. See the module doc for the contract.
#[async_trait]
pub trait RestoreTarget: Send + Sync {
    /// Whether this is a dry run: nothing is made, and the target is not looked at (what it
    /// holds is unknown, not empty).
    fn dry_run(&self) -> bool {
        false
    }

    /// What the target holds at `name` (of `kind`); `restore` tells ours from others'.
    async fn existing(
        &self,
        kind: ResourceKind,
        name: &ObjectRef,
        restore: &RestoreId,
    ) -> Result<Existing, RestoreError>;

    /// What the target holds at each of `keys`. The default asks [`Self::existing`] for
    /// each, [`LOOKUPS_IN_FLIGHT`] at a time.
    async fn existing_all(
        &self,
        keys: Vec<Key>,
        restore: &RestoreId,
    ) -> Result<BTreeMap<Key, Existing>, RestoreError> {
        Ok(look_up_each(self, keys, restore)
            .await?
            .into_iter()
            .collect())
    }

    /// Whether the target's `name` (of `kind`, not this restore's) holds other content than
    /// `stored` (its plain stored bytes). The default: a target that is not looked at
    /// shows no difference.
    async fn differs(
        &self,
        kind: ResourceKind,
        name: &ObjectRef,
        stored: Vec<u8>,
    ) -> Result<bool, RestoreError> {
        let _ = (kind, name, stored);
        Ok(false)
    }

    /// Starts a new volume from `backup`, named `name`.
    async fn start_volume(&self, backup: &BackupId, name: &str) -> Result<NewVolume, RestoreError>;

    /// Waits until the volume can be used.
    async fn wait_volume(&self, volume: &VolumeId, backup: &BackupId) -> Result<(), RestoreError>;

    /// Creates the object of `step` from `body` (its edited stored bytes).
    async fn create(&self, step: &ObjectStep, body: Vec<u8>) -> Result<Created, RestoreError>;

    /// How many units may run at once into this target (at least 1). The default sets no
    /// bound of its own.
    fn concurrency(&self) -> usize {
        usize::MAX
    }

    /// How often the target asked to retry later so far. The default: never.
    fn throttling(&self) -> Throttling {
        Throttling::default()
    }

    /// Watches `made` for `period`; returns each object the target deleted meanwhile, with
    /// the error that says so. The default watches nothing.
    async fn settle(
        &self,
        made: &[Made],
        period: Duration,
    ) -> Result<Vec<(Made, RestoreError)>, RestoreError> {
        let _ = (made, period);
        Ok(Vec::new())
    }

    /// The restore is done. The default does nothing.
    async fn finish(
        &self,
        checkpoint: &Checkpoint,
        record: &RestoreRecord,
    ) -> Result<(), RestoreError> {
        let _ = (checkpoint, record);
        Ok(())
    }
}

/// How many existence lookups are in flight at once.
pub const LOOKUPS_IN_FLIGHT: usize = 16;

/// Asks `target` what it holds at each of `keys`, [`LOOKUPS_IN_FLIGHT`] at a time.
async fn look_up_each<T: RestoreTarget + ?Sized>(
    target: &T,
    keys: Vec<Key>,
    restore: &RestoreId,
) -> Result<Vec<(Key, Existing)>, RestoreError> {
    futures::stream::iter(keys)
        .map(|key| async move {
            let found = target.existing(key.0, &key.1, restore).await?;
            Ok::<_, RestoreError>((key, found))
        })
        .buffer_unordered(LOOKUPS_IN_FLIGHT)
        .try_collect()
        .await
}
