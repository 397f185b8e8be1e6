//! `delete`: a checkpoint leaves the bank together with its Cinder backups.
//!
//! Order: the manifest is rewritten `deleting` → the checkpoint's Cinder backups are
//! deleted, newest incremental first, never one that another checkpoint's backup depends
//! on → the manifest is removed (`deleted`). On failure the manifest says `error-deleting`
//! with the reason, and running delete again finishes the job. The objects go at the next
//! `bank gc`.

use super::volumes::{self, VolumeBackups};
use super::ProtectionError;
use crate::bank::{pb, Bank, CheckpointId};

/// What delete did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeleteOutcome {
    /// The checkpoint.
    pub id: String,
    /// `deleted` or `error-deleting`.
    pub status: String,
    /// Cinder backups removed.
    pub backups_deleted: Vec<String>,
    /// Backups kept because another checkpoint's incremental backup depends on them.
    pub backups_kept: Vec<String>,
    /// Why it failed, if it did.
    pub reason: String,
}

/// Deletes checkpoint `id`: see the module doc.
pub async fn delete_checkpoint(
    bank: &Bank,
    id: &CheckpointId,
    backups: &VolumeBackups<'_>,
) -> Result<DeleteOutcome, ProtectionError> {
    let mut checkpoint = bank.checkpoint(id).await?;
    let status = checkpoint.status();
    if status == pb::CheckpointStatus::Protecting {
        return Err(ProtectionError::Incomplete(format!(
            "checkpoint {id} is still being written; delete it when it is available or error"
        )));
    }
    checkpoint.status = pb::CheckpointStatus::Deleting as i32;
    checkpoint.reason.clear();
    bank.put_checkpoint(&checkpoint).await?;

    let (others, _) = bank.checkpoints().await?;
    let others: Vec<pb::Checkpoint> = others
        .into_iter()
        .filter(|c| c.id != checkpoint.id)
        .collect();
    let result = volumes::delete_backups(&mut checkpoint, &others, backups).await;
    match result {
        Ok((deleted, kept)) => {
            if kept.is_empty() {
                bank.remove_checkpoint(id).await?;
            } else {
                // Backups others depend on stay listed by this (hidden) tombstone until
                // their dependents are gone; a later delete or gc sweeps it.
                checkpoint.status = pb::CheckpointStatus::Deleted as i32;
                checkpoint.reason = format!(
                    "kept Cinder backups {} that newer incremental backups depend on",
                    kept.join(", ")
                );
                checkpoint.resource_tables.clear();
                checkpoint.resource_count = 0;
                bank.put_checkpoint(&checkpoint).await?;
            }
            Ok(DeleteOutcome {
                id: id.to_string(),
                status: "deleted".into(),
                backups_deleted: deleted,
                backups_kept: kept,
                reason: String::new(),
            })
        }
        Err(reason) => {
            checkpoint.status = pb::CheckpointStatus::ErrorDeleting as i32;
            checkpoint.reason = reason.clone();
            bank.put_checkpoint(&checkpoint).await?;
            Err(ProtectionError::Incomplete(format!(
                "checkpoint {id} is error-deleting: {reason}; run delete again to finish"
            )))
        }
    }
}
