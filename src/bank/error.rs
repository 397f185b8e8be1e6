//! Errors of the bank.

use super::backend::BackendError;

/// What went wrong in the bank, and what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BankError {
    /// The storage backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// There is no bank at the location.
    #[error("no podbank bank at {location}: run a protect (it creates one) or check the bank URL")]
    NotABank {
        /// The bank location.
        location: String,
    },
    /// The bank's config is unreadable or of an unknown format.
    #[error("bank {location}: {reason}")]
    BadConfig {
        /// The bank location.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// The bank is encrypted and no key was given, or the key is wrong, or a key was given
    /// for a bank that is not encrypted.
    #[error("bank {location}: {reason}")]
    Key {
        /// The bank location.
        location: String,
        /// What is wrong with the key.
        reason: String,
    },
    /// No checkpoint with this id.
    #[error("checkpoint {id} not found in bank {location}")]
    CheckpointNotFound {
        /// The id asked for.
        id: String,
        /// The bank location.
        location: String,
    },
    /// No restore record with this id.
    #[error("restore {id} not found in bank {location}")]
    RestoreNotFound {
        /// The id asked for.
        id: String,
        /// The bank location.
        location: String,
    },
    /// Stored data does not match its id, is truncated or cannot be decoded.
    #[error("bank {location}: {subject}: {reason}; run `podbank checkpoints verify --all`")]
    Corrupt {
        /// The bank location.
        location: String,
        /// What is damaged ("object 3fa2.. in pack 91bc..", "manifest of checkpoint X").
        subject: String,
        /// How.
        reason: String,
    },
    /// An object a record refers to is not in any index.
    #[error("bank {location}: object {id} is not in the bank (needed by {needed_by})")]
    ObjectMissing {
        /// The bank location.
        location: String,
        /// The object.
        id: String,
        /// What needs it.
        needed_by: String,
    },
    /// Another process holds a lock that conflicts with this operation.
    #[error("bank {location} is locked: {holder}; retry when it is done")]
    Locked {
        /// The bank location.
        location: String,
        /// Who holds the lock, since when, for what.
        holder: String,
    },
    /// This process could not renew its lock in time and stopped writing, before anyone
    /// could take the bank over from it.
    #[error("bank {location}: the lock could not be renewed within {ttl}s; stopped writing (is the bank reachable?)")]
    LockLost {
        /// The bank location.
        location: String,
        /// The lease length.
        ttl: u64,
    },
    /// Stored bytes could not be encoded (a bug, or no memory).
    #[error("bank: cannot encode a record: {0}")]
    Encode(#[from] super::format::FormatError),
    /// A checkpoint is in a state that does not allow the operation.
    #[error("checkpoint {id}: {reason}")]
    InvalidState {
        /// The checkpoint.
        id: String,
        /// Why the operation is refused.
        reason: String,
    },
    /// A background task failed (panicked or was cancelled).
    #[error("bank task failed: {0}")]
    Task(String),
}
