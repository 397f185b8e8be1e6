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

use super::volumes::{self, VolumeBackups};
use super::ProtectionError;
use crate::bank::{pb, Bank, CheckpointId};

/// How long to wait for Cinder to delete one backup.
pub const BACKUP_DELETE_TIMEOUT: Duration = Duration::from_secs(600);

/// What delete did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeleteOutcome {
    /// The checkpoint.
    pub id: String,
    /// `deleted` (or `deleted` with backups kept).
    pub status: String,
    /// Cinder backups removed (including those of older tombstones swept).
    pub backups_deleted: Vec<String>,
    /// Backups kept because a newer incremental backup depends on them.
    pub backups_kept: Vec<String>,
}

/// Deletes checkpoint `id`: see the module doc.
pub async fn delete_checkpoint(
    bank: &Bank,
    id: &CheckpointId,
    backups: &VolumeBackups<'_>,
) -> Result<DeleteOutcome, ProtectionError> {
    let mut checkpoint = bank.checkpoint(id).await?;
    if checkpoint.status() == pb::CheckpointStatus::Protecting {
        return Err(ProtectionError::Incomplete(format!(
            "checkpoint {id} is still being written; delete it when it is available or error"
        )));
    }
    if checkpoint.status() != pb::CheckpointStatus::Deleted {
        checkpoint.status = pb::CheckpointStatus::Deleting as i32;
        checkpoint.reason.clear();
        bank.put_checkpoint(&checkpoint).await?;
    }
    let (mut deleted, kept) = finish(bank, &mut checkpoint, backups).await?;
    // Sweep older tombstones whose backups may now be free.
    let (all, _) = bank.checkpoints().await?;
    for mut tomb in all
        .into_iter()
        .rev()
        .filter(|c| c.status() == pb::CheckpointStatus::Deleted && c.id != checkpoint.id)
    {
        match finish(bank, &mut tomb, backups).await {
            Ok((d, _)) => deleted.extend(d),
            Err(e) => tracing::warn!("older deleted checkpoint {}: {e}", tomb.id),
        }
    }
    Ok(DeleteOutcome {
        id: id.to_string(),
        status: "deleted".into(),
        backups_deleted: deleted,
        backups_kept: kept,
    })
}

/// Deletes what it can of `checkpoint`'s backups, then removes it or leaves a tombstone.
async fn finish(
    bank: &Bank,
    checkpoint: &mut pb::Checkpoint,
    backups: &VolumeBackups<'_>,
) -> Result<(Vec<String>, Vec<String>), ProtectionError> {
    let id: CheckpointId = checkpoint.id.parse().map_err(ProtectionError::Incomplete)?;
    match volumes::delete_backups(checkpoint, backups, BACKUP_DELETE_TIMEOUT).await {
        Ok((deleted, kept)) => {
            if kept.is_empty() {
                bank.remove_checkpoint(&id).await?;
            } else {
                checkpoint.status = pb::CheckpointStatus::Deleted as i32;
                checkpoint.reason = format!(
                    "kept Cinder backups {} that newer incremental backups depend on; \
                     they go when those are deleted",
                    kept.join(", ")
                );
                checkpoint.resource_tables.clear();
                checkpoint.resource_count = 0;
                checkpoint.volume_tables.clear();
                checkpoint.volume_table_count = 0;
                bank.put_checkpoint(checkpoint).await?;
            }
            Ok((deleted, kept))
        }
        Err(reason) => {
            checkpoint.status = pb::CheckpointStatus::ErrorDeleting as i32;
            checkpoint.reason = reason.clone();
            bank.put_checkpoint(checkpoint).await?;
            Err(ProtectionError::Incomplete(format!(
                "checkpoint {id} is error-deleting: {reason}; run delete again to finish"
            )))
        }
    }
}
