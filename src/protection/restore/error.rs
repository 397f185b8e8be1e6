//! What can go wrong in a restore, and whose fault it is.

use crate::apiserver::ApiError;
use crate::bank::BankError;
use crate::cinder::CinderError;
use crate::codec::CodecError;
use crate::model::{BackupId, CheckpointId, CheckpointStatus, ObjectRef, VolumeId, VolumeStatus};

/// Errors of a restore: those that stop it before it starts ([`RestoreError::is_invalid_request`]
/// says which are the caller's), and those that fail one pod (recorded in that pod's
/// outcomes; the restore goes on with the next pod).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// Only `available` and `error` checkpoints can be restored.
    #[error("checkpoint {checkpoint} is {status}: only available (or error) checkpoints can be restored")]
    NotRestorable {
        /// The checkpoint.
        checkpoint: CheckpointId,
        /// Its status.
        status: CheckpointStatus,
    },
    /// A pod asked for is not in the checkpoint.
    #[error("pod {pod} is not in checkpoint {checkpoint}")]
    PodNotInCheckpoint {
        /// The pod.
        pod: ObjectRef,
        /// The checkpoint.
        checkpoint: CheckpointId,
    },
    /// `restore_name` names one pod.
    #[error("restore_name names one pod, but {0} pods are selected; pick one with --pod")]
    RestoreNameNeedsOnePod(usize),
    /// The object exists and the conflict policy is `fail`.
    #[error("{kind} {name} already exists (use --conflict skip or rename)")]
    Exists {
        /// Its kind.
        kind: &'static str,
        /// `namespace/name`.
        name: ObjectRef,
    },
    /// A ConfigMap, Secret or ServiceAccount the pods need exists with other content, and
    /// the conflict policy is `fail`.
    #[error("{kind} {name} exists in the target with other content than the checkpoint's (--conflict skip keeps the live one)")]
    Differs {
        /// Its kind.
        kind: &'static str,
        /// `namespace/name`.
        name: ObjectRef,
    },
    /// The object and its renamed copy both exist.
    #[error("{kind} {name} and {renamed} both exist")]
    BothExist {
        /// Its kind.
        kind: &'static str,
        /// `namespace/name`.
        name: ObjectRef,
        /// The renamed name tried.
        renamed: String,
    },
    /// A volume of the pod has no backup to restore from.
    #[error("volume {volume} has no available backup in this checkpoint ({status}{})", if reason.is_empty() { String::new() } else { format!(": {reason}") })]
    NoBackup {
        /// The volume.
        volume: VolumeId,
        /// Its record's status.
        status: VolumeStatus,
        /// Its record's reason.
        reason: String,
    },
    /// The checkpoint lacks the claim or volume record a volume needs.
    #[error("claim {claim} or volume {persistent_volume} is missing from the checkpoint")]
    MissingRecords {
        /// The claim.
        claim: String,
        /// The persistent volume.
        persistent_volume: String,
    },
    /// Volumes cannot be restored without Cinder.
    #[error("volume {volume} cannot be restored: {reason}")]
    NoCinder {
        /// The volume.
        volume: VolumeId,
        /// Why there is no Cinder.
        reason: String,
    },
    /// Cinder could not restore a backup.
    #[error("restore of backup {backup} failed: {source}")]
    VolumeRestore {
        /// The backup.
        backup: BackupId,
        /// Cinder's error.
        source: Box<CinderError>,
    },
    /// The restored volume did not become available.
    #[error("volume {volume} (restored from backup {backup}) is not available: {source}")]
    VolumeNotAvailable {
        /// The new volume.
        volume: VolumeId,
        /// The backup.
        backup: BackupId,
        /// Cinder's error.
        source: Box<CinderError>,
    },
    /// The API server refused or failed a request.
    #[error("{0}")]
    Api(#[source] ApiError),
    /// The object exists although this restore did not see it before (a race).
    #[error("{0} (created meanwhile by someone else?)")]
    CreatedMeanwhile(#[source] ApiError),
    /// The checkpoint records the object but holds no bytes of it.
    #[error("{object}: the checkpoint has no stored object for it")]
    NotStored {
        /// What it was (`pod:<ns>/<name>`, ...).
        object: String,
    },
    /// The stored object could not be edited.
    #[error("{0}")]
    Edit(#[from] CodecError),
    /// A workload's pod template mounts a Cinder volume inline: its volume id cannot be
    /// swapped in the template.
    #[error("its {kind}'s pod template mounts a Cinder volume inline; restore its pods with --pods-only")]
    InlineInTemplate {
        /// The workload's kind.
        kind: &'static str,
    },
    /// An object created was deleted during the settle period (garbage collector, a
    /// controller scaling down, someone else).
    #[error("{kind} {name} was deleted {after} after it was created{}", if reason.is_empty() { String::new() } else { format!(" (Event {reason})") })]
    Lost {
        /// Its kind.
        kind: &'static str,
        /// `namespace/name`.
        name: ObjectRef,
        /// How long after the last create it was found gone.
        after: String,
        /// The Event's reason and message, if one was found.
        reason: String,
    },
    /// The bank failed (reading an object, saving the record).
    #[error(transparent)]
    Bank(#[from] BankError),
    /// A file of the export could not be written.
    #[error("cannot write {path}: {source}")]
    Export {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl RestoreError {
    /// Whether the request itself is wrong (HTTP 400, exit code 2).
    pub fn is_invalid_request(&self) -> bool {
        matches!(
            self,
            RestoreError::PodNotInCheckpoint { .. } | RestoreError::RestoreNameNeedsOnePod(_)
        )
    }

    /// What the caller can do about this error, when one request option is the answer.
    pub fn remedy(&self) -> Option<&'static str> {
        match self {
            RestoreError::NoBackup { .. } => Some(
                "for volumes without a backup (a checkpoint taken with --no-volume-backups), \
                 restore with --original-volumes (the restored objects name the original \
                 volumes) or --pods-only (no volumes)",
            ),
            _ => None,
        }
    }
}
