//! Protection: the orchestration of etcd, codec, resources and bank (and, for protect and
//! restore, Cinder and the API server). The only module that knows all the others.
//!
//! * [`inventory`] reads the selected pods, their claims and volumes at one revision
//!   (Karbor's protectables: list / show / dependents).
//! * [`protect`](mod@protect) writes a checkpoint: the etcd scan into the bank, Cinder backups of the
//!   volumes ([`volumes`]), the parameters checked against their [`schema`].
//! * [`restore`](mod@restore) plans a restore, then executes it through a sink (the API server or an
//!   export directory), and keeps its record.
//! * [`delete`] deletes a checkpoint and its backups; [`retention`] decides which
//!   checkpoints of a plan to delete, and in which order.
//!
//! Owns: the order of work across the layers and what a checkpoint or restore records.
//! Must not touch: the fronts (`cli`, `agent`) or HTTP (`api`); the engine calls this
//! module, never the other way round. Reads and writes the domain [`crate::model`], never
//! the bank's protobuf records.

pub mod delete;
pub mod hooks;
pub mod inventory;
pub mod progress;
pub mod protect;
pub mod restore;
pub mod retention;
pub mod schema;
pub mod volumes;

pub use delete::{delete_checkpoint, DeleteOutcome};
pub use inventory::{read_inventory, read_inventory_of, Inventory, PodEntry, Problem, Selection};
pub use progress::{Progress, SharedProgress, Stage};
pub use protect::{protect, ProtectHooks, ProtectRequest, SecretPolicy, Services};
pub use restore::{restore, ConflictPolicy, RestoreError, RestoreMode, RestoreRequest};
pub use volumes::VolumeBackups;

/// How many items a message about many objects names; the rest are counted.
pub const NAMED: usize = 5;

/// `items` joined with `; ` when there are at most [`NAMED`]; else `<count> <what>; the first
/// 5: ...; and <n> more (<where_all>)`: a message about many objects says it once, the full
/// list is where `where_all` says.
pub fn summarise_list(items: &[&str], what: &str, where_all: &str) -> String {
    if items.len() <= NAMED {
        return items.join("; ");
    }
    format!(
        "{} {what}; the first {NAMED}: {}; and {} more ({where_all})",
        items.len(),
        items[..NAMED].join("; "),
        items.len() - NAMED
    )
}

/// Errors of protection operations. Each says whether the caller asked for something
/// wrong ([`ProtectionError::is_invalid_request`]), or what exists now and how to finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtectionError {
    /// etcd could not be read.
    #[error(transparent)]
    Etcd(#[from] crate::etcd::EtcdError),
    /// A selector is invalid.
    #[error(transparent)]
    Resource(#[from] crate::resources::ResourceError),
    /// Parameters that do not match the operation's schema.
    #[error(transparent)]
    InvalidParameters(#[from] schema::InvalidParameters),
    /// The bank failed.
    #[error(transparent)]
    Bank(#[from] crate::bank::BankError),
    /// The request names something that is not there, or asks for something impossible
    /// (a pod the checkpoint does not hold, one `restore_name` for several pods).
    #[error("{0}")]
    InvalidRequest(String),
    /// The checkpoint is in a state that does not allow the operation.
    #[error("checkpoint {checkpoint} is {status}: {reason}")]
    InvalidState {
        /// The checkpoint.
        checkpoint: crate::model::CheckpointId,
        /// Its status.
        status: crate::model::CheckpointStatus,
        /// What to do.
        reason: String,
    },
    /// Writing the checkpoint failed after Cinder backups were made: they are recorded in
    /// the bank's lock, where gc finds them.
    #[error("{source}; the Cinder backups {} were made and are recorded in the bank's lock: `podbank bank gc` turns them into an error checkpoint that `podbank delete` removes", backups.join(", "))]
    BackupsOrphaned {
        /// Why the write failed.
        source: crate::bank::BankError,
        /// The backups made.
        backups: Vec<String>,
    },
    /// A delete stopped half-way; the checkpoint is `error-deleting` and a new delete
    /// finishes it.
    #[error("checkpoint {checkpoint} is error-deleting: {reason}; run delete again to finish")]
    DeleteIncomplete {
        /// The checkpoint.
        checkpoint: crate::model::CheckpointId,
        /// What failed.
        reason: String,
    },
    /// A restore could not start or could not write its plan.
    #[error(transparent)]
    Restore(#[from] restore::RestoreError),
    /// The pod asked for does not exist.
    #[error("pod {0} not found at etcd revision {1}")]
    PodNotFound(String, crate::etcd::Revision),
}

impl ProtectionError {
    /// Whether the caller asked for something wrong (a usage error, HTTP 400), rather than
    /// something failing.
    pub fn is_invalid_request(&self) -> bool {
        matches!(
            self,
            ProtectionError::Resource(_)
                | ProtectionError::InvalidParameters(_)
                | ProtectionError::InvalidRequest(_)
        ) || matches!(self, ProtectionError::Restore(e) if e.is_invalid_request())
    }
}
