//! Protection: the orchestration of etcd, codec, resources and bank (and, for protect and
//! restore, Cinder and the API server). The only module that knows all the others.
//!
//! * [`inventory`] reads the selected pods, their claims and volumes at one revision
//!   (Karbor's protectables: list / show / dependents).

pub mod delete;
pub mod inventory;
pub mod protect;
pub mod report;
pub mod schema;
pub mod volumes;

pub use delete::{delete_checkpoint, DeleteOutcome};
pub use inventory::{read_inventory, Inventory, PodEntry, Problem, Selection};
pub use protect::{protect, ProtectRequest, Services};
pub use volumes::VolumeBackups;

/// Errors of protection operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtectionError {
    /// etcd could not be read.
    #[error(transparent)]
    Etcd(#[from] crate::etcd::EtcdError),
    /// A selector or parameter is invalid.
    #[error(transparent)]
    Resource(#[from] crate::resources::ResourceError),
    /// Parameters that do not match the operation's schema.
    #[error(transparent)]
    InvalidParameters(#[from] schema::InvalidParameters),
    /// The bank failed.
    #[error(transparent)]
    Bank(#[from] crate::bank::BankError),
    /// The operation stopped half-way; the message says what exists and how to finish.
    #[error("{0}")]
    Incomplete(String),
    /// The pod asked for does not exist.
    #[error("pod {0} not found at etcd revision {1}")]
    PodNotFound(String, crate::etcd::Revision),
}
