//! The errors of the Cinder client: one enum, each variant saying what to check.

use std::fmt;
use std::time::Duration;

use super::{BackupId, GroupSnapshotId, SnapshotId, VolumeId};
use crate::openstack::OpenStackError;

/// Errors from Cinder or Keystone, each saying what to check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CinderError {
    /// The OpenStack settings are missing or wrong (clouds.yaml, `OS_*` variables).
    #[error("OpenStack settings: {0}")]
    Config(String),
    /// Keystone refused the credentials, or Cinder refused the token or the project.
    #[error("authentication: {0}")]
    Auth(String),
    /// No usable block-storage endpoint in the service catalog.
    #[error("service catalog: {0}")]
    Catalog(String),
    /// The Cinder server is too old for podbank (microversion below 3.47).
    #[error("unsupported Cinder: {0}")]
    Unsupported(String),
    /// The volume or backup does not exist (any more).
    #[error("{kind} {id} does not exist in Cinder")]
    NotFound {
        /// `volume` or `backup`.
        kind: ResourceKind,
        /// Its id.
        id: String,
    },
    /// Cinder refuses to delete a backup that incremental backups depend on: delete those
    /// (newest first) before it.
    #[error("backup {id} has dependent incremental backups; delete them first ({message})")]
    HasDependents {
        /// The backup that could not be deleted.
        id: BackupId,
        /// Cinder's message.
        message: String,
    },
    /// The backup ended in status `error`.
    #[error("backup {id} failed: {fail_reason}")]
    BackupFailed {
        /// The backup.
        id: BackupId,
        /// Cinder's `fail_reason` (or a note that it gave none).
        fail_reason: String,
    },
    /// The snapshot ended in an error status (`error`, `error_deleting`).
    #[error("snapshot {id} went to status {status}")]
    SnapshotFailed {
        /// The snapshot.
        id: SnapshotId,
        /// Its status.
        status: String,
    },
    /// The group snapshot ended in an error status (`error`, `error_deleting`).
    #[error("group snapshot {id} went to status {status}")]
    GroupSnapshotFailed {
        /// The group snapshot.
        id: GroupSnapshotId,
        /// Its status.
        status: String,
    },
    /// The volume ended in an error status (`error`, `error_restoring`, ...).
    #[error("volume {id} went to status {status}")]
    VolumeFailed {
        /// The volume.
        id: VolumeId,
        /// Its status.
        status: String,
    },
    /// A delete ended in an error status instead of removing the resource.
    #[error("deleting {kind} {id} failed: status {status}{}", reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    DeleteFailed {
        /// `volume` or `backup`.
        kind: ResourceKind,
        /// Its id.
        id: String,
        /// The status it ended in.
        status: String,
        /// Cinder's reason, when it gives one.
        reason: Option<String>,
    },
    /// A wait reached its deadline.
    #[error("gave up after {waited:?} waiting for {what}; last status {last_status}")]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long.
        waited: Duration,
        /// The last status seen.
        last_status: String,
    },
    /// Cinder answered with an error status.
    #[error("Cinder answered {status} to {method} {path}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// HTTP method.
        method: &'static str,
        /// Request path.
        path: String,
        /// Cinder's message.
        message: String,
    },
    /// Cinder or Keystone could not be reached, or the connection broke (after retries).
    #[error("cannot reach {url}: {message}")]
    Transport {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// Cinder answered something podbank cannot read.
    #[error("unexpected answer from Cinder to {what}: {message}")]
    InvalidResponse {
        /// The request.
        what: String,
        /// The parse error.
        message: String,
    },
}

impl From<OpenStackError> for CinderError {
    fn from(e: OpenStackError) -> Self {
        use OpenStackError as E;
        match e {
            E::Config(m) => CinderError::Config(m),
            E::Auth(m) => CinderError::Auth(m),
            E::Catalog(m) => CinderError::Catalog(m),
            E::Transport { url, message } => CinderError::Transport { url, message },
        }
    }
}

/// What kind of Cinder resource an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    /// A volume.
    Volume,
    /// A backup.
    Backup,
    /// A snapshot.
    Snapshot,
    /// A volume group.
    Group,
    /// A group type.
    GroupType,
    /// A group snapshot.
    GroupSnapshot,
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResourceKind::Volume => "volume",
            ResourceKind::Backup => "backup",
            ResourceKind::Snapshot => "snapshot",
            ResourceKind::Group => "group",
            ResourceKind::GroupType => "group type",
            ResourceKind::GroupSnapshot => "group snapshot",
        })
    }
}
