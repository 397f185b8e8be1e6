//! `delete`: a checkpoint leaves the bank together with its Cinder backups.
//!
//! Order: the manifest is rewritten `deleting` → the checkpoint's Cinder backups are
//! deleted, never one that another backup depends on (Cinder refuses those with 400
//! "Incremental backups exist for this backup") → the manifest is removed (`deleted`).
//! A backup that a newer incremental backup depends on is kept, listed by a tombstone
//! (status `deleted`, hidden from `checkpoints list`); every later delete sweeps the
//! tombstones, newest first, so a chain unwinds as its newer links go. On failure the
//! manifest says `error-deleting` with the reason; running delete again finishes the job.
//! The objects go at the next `bank gc`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::volumes::{self, VolumeBackups};
use super::ProtectionError;
use crate::bank::Bank;
use crate::model::{BackupId, Checkpoint, CheckpointId, CheckpointStatus, TableRefs};

/// How long to wait for Cinder to delete one backup.
pub const BACKUP_DELETE_TIMEOUT: Duration = Duration::from_secs(600);

/// What delete did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteOutcome {
    /// The checkpoint.
    pub id: CheckpointId,
    /// `deleted` (with its backups gone, or kept under a tombstone while newer incremental
    /// backups need them).
    pub status: CheckpointStatus,
    /// Cinder backups removed (including those of older tombstones swept).
    pub backups_deleted: Vec<BackupId>,
    /// Backups kept because a newer incremental backup depends on them.
    pub backups_kept: Vec<BackupId>,
}

/// Deletes checkpoint `id`: see the module doc.
pub async fn delete_checkpoint(
    bank: &Bank,
    id: &CheckpointId,
    backups: &VolumeBackups<'_>,
) -> Result<DeleteOutcome, ProtectionError> {
    let mut checkpoint = bank.checkpoint(id).await?;
    if checkpoint.status == CheckpointStatus::Protecting {
        return Err(ProtectionError::InvalidState {
            checkpoint: id.clone(),
            status: checkpoint.status,
            reason: "it is still being written; delete it when it is available or error".into(),
        });
    }
    if checkpoint.status != CheckpointStatus::Deleted {
        checkpoint.status = CheckpointStatus::Deleting;
        checkpoint.reason.clear();
        bank.put_checkpoint(&checkpoint).await?;
    }
    let (mut deleted, kept) = finish(bank, &mut checkpoint, backups).await?;
    // Sweep older tombstones whose backups may now be free.
    let (all, _) = bank.checkpoints().await?;
    for mut tomb in all
        .into_iter()
        .rev()
        .filter(|c| c.status == CheckpointStatus::Deleted && c.id != checkpoint.id)
    {
        match finish(bank, &mut tomb, backups).await {
            Ok((d, _)) => deleted.extend(d),
            Err(e) => tracing::warn!("older deleted checkpoint {}: {e}", tomb.id),
        }
    }
    Ok(DeleteOutcome {
        id: id.clone(),
        status: CheckpointStatus::Deleted,
        backups_deleted: deleted,
        backups_kept: kept,
    })
}

/// Deletes what it can of `checkpoint`'s backups, then removes it or leaves a tombstone.
async fn finish(
    bank: &Bank,
    checkpoint: &mut Checkpoint,
    backups: &VolumeBackups<'_>,
) -> Result<(Vec<BackupId>, Vec<BackupId>), ProtectionError> {
    match volumes::delete_backups(checkpoint, backups, BACKUP_DELETE_TIMEOUT).await {
        Ok((deleted, kept)) => {
            if kept.is_empty() {
                bank.remove_checkpoint(&checkpoint.id).await?;
            } else {
                checkpoint.status = CheckpointStatus::Deleted;
                checkpoint.reason = format!(
                    "kept Cinder backups {} that newer incremental backups depend on; \
                     they go when those are deleted",
                    kept.iter()
                        .map(BackupId::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                checkpoint.tables = TableRefs::default();
                checkpoint.resource_count = 0;
                checkpoint.volume_table_count = 0;
                bank.put_checkpoint(checkpoint).await?;
            }
            Ok((deleted, kept))
        }
        Err(e) => {
            let reason = e.to_string();
            checkpoint.status = CheckpointStatus::ErrorDeleting;
            checkpoint.reason = reason.clone();
            bank.put_checkpoint(checkpoint).await?;
            Err(ProtectionError::DeleteIncomplete {
                checkpoint: checkpoint.id.clone(),
                reason,
            })
        }
    }
}
