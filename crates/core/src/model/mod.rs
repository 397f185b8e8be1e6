//! The domain model: what podbank talks about, apart from how any of it is stored or sent.
//!
//! Small named types: ids ([`CheckpointId`], [`RestoreId`], [`ObjectId`], [`VolumeId`],
//! [`BackupId`], [`Uid`]), references ([`ObjectRef`] for `namespace/name`, [`EtcdKey`]), the etcd
//! [`Revision`], the Kubernetes kinds ([`ResourceKind`], each one row of facts, an
//! [`ApiResource`]), the status enums of checkpoints, volumes, resources and restores, and the
//! records of a checkpoint and of a restore.
//!
//! No I/O and no storage format here: the bank converts its protobuf records to and from
//! these types at its edge (`bank/convert.rs`), and nothing above the bank reads the bank's
//! protobuf. Every other module may use the model; the model uses none of them.

mod checkpoint;
pub mod duration;
mod hook;
mod ids;
mod kind;
mod operation_log;
mod plan;
mod restore;
mod scheduled_operation;
mod status;
mod trigger;
mod verification;

pub use checkpoint::{
    BackupLink, Checkpoint, CheckpointSummary, ClusterRecord, Edge, ResourceRecord,
    SelectionRecord, TableRefs, TakenBy, VolumeRecord, WriteStats,
};
pub use hook::{HookOnError, HookOutcome, HookPhase, HookRecord, HOOK_OUTPUT_KEPT};
pub use ids::{
    BackupId, CheckpointId, EtcdKey, GroupId, GroupSnapshotId, IdError, Namespace, ObjectId,
    ObjectRef, RestoreId, Revision, SnapshotId, Uid, VolumeId,
};
pub use kind::{ApiResource, ResourceKind};
pub use operation_log::{BadOperationLog, OperationLog, OperationType as LoggedOperation, Phase};
pub use plan::{InvalidPlanId, PlanId, PlanResource, PlanStatus, StoredPlan};
pub use restore::{
    JournalBatch, OutcomeIndex, RestoreRecord, RestoreStats, RestoredResource, Source,
};
pub use scheduled_operation::{
    InvalidScheduledOperationId, OperationType, ScheduledOperationId, StoredOperation,
};
pub use status::{
    CheckpointStatus, Encoding, Outcome, Relation, ResourceStatus, ResourceType, RestoreStatus,
    VolumeDriver, VolumeStatus,
};
pub use trigger::{InvalidTriggerId, StoredTrigger, TimeFormat, TriggerId, TriggerType};
pub use verification::{BadVerification, Verification, VerificationStatus};

/// Milliseconds since the Unix epoch as a time; `None` for 0 (not set).
pub fn time_of_ms(ms: u64) -> Option<chrono::DateTime<chrono::Utc>> {
    if ms == 0 {
        return None;
    }
    chrono::DateTime::from_timestamp_millis(i64::try_from(ms).ok()?)
}

/// A time as milliseconds since the Unix epoch (0 for `None`).
pub fn ms_of(t: Option<chrono::DateTime<chrono::Utc>>) -> u64 {
    t.and_then(|t| u64::try_from(t.timestamp_millis()).ok())
        .unwrap_or(0)
}
