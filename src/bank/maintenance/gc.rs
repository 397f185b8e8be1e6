//! `gc`: remove what no checkpoint needs, under the exclusive lock.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::is_pack_name;
use crate::bank::backend::Kind;
use crate::bank::format::{self, now_ms, pb};
use crate::bank::lock::{self, LockEntry, LockGuard};
use crate::bank::{new_index_name, Bank, BankError};
use crate::model::{Checkpoint, CheckpointStatus, TableRefs};

/// What `gc` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GcReport {
    /// Checkpoints whose data was kept.
    pub checkpoints: usize,
    /// Objects still referenced.
    pub referenced_objects: usize,
    /// Packs removed.
    pub packs_removed: usize,
    /// Bytes of the packs removed.
    pub bytes_removed: u64,
    /// Index files rewritten into one.
    pub indexes_replaced: usize,
    /// Locks of dead writers removed.
    pub stale_locks_removed: usize,
    /// Dead writers' checkpoints kept as `error` because they had Cinder backups.
    pub checkpoints_recovered: Vec<String>,
    /// Cinder snapshots of dead writers (a protect killed after its snapshot burst) deleted.
    #[serde(default)]
    pub snapshots_deleted: Vec<String>,
    /// Such snapshots that could not be deleted, each with the reason (`delete` of the
    /// recovered checkpoint tries again).
    #[serde(default)]
    pub snapshots_left: Vec<String>,
    /// Temporary files of interrupted writes removed, and restore journal batches that
    /// their record already holds (a restore killed while compacting).
    pub leftovers_removed: usize,
}

impl Bank {
    /// Removes what no checkpoint needs: packs with no referenced object, packs no index
    /// names (crash leftovers), temporary files older than any lease, and locks of dead
    /// writers. Runs under an exclusive lock: while a checkpoint is being written, gc waits
    /// up to `wait` (new writers wait behind it) and then gives up, deleting nothing. A dead
    /// writer's checkpoint that created Cinder backups is kept as an `error` checkpoint so
    /// that `delete` can remove those backups. While any index file or manifest cannot be
    /// read, gc cannot tell what is needed and deletes nothing: `bank repair` first.
    pub async fn gc(&self, wait: Duration) -> Result<GcReport, BankError> {
        let mut report = GcReport::default();
        report.stale_locks_removed = self
            .recover_stale_locks(&mut report.checkpoints_recovered)
            .await?;
        let guard = LockGuard::acquire(
            self.backend.clone(),
            true,
            "gc".to_string(),
            lock::DEFAULT_TTL,
            wait,
        )
        .await?;
        let result = self.gc_locked(&guard, &mut report).await;
        guard.release().await?;
        result.map(|()| report)
    }

    /// Removes the locks of dead writers; those with Cinder backups become `error`
    /// checkpoints. Returns how many locks were removed. Unreadable lock files are left
    /// for `bank repair` (and counted as live while they are young).
    pub async fn recover_stale_locks(
        &self,
        recovered: &mut Vec<String>,
    ) -> Result<usize, BankError> {
        let now = now_ms();
        let mut removed = 0;
        for entry in lock::read_all(&self.backend).await? {
            let lock = match entry {
                LockEntry::Lock(lock) => lock,
                LockEntry::Unreadable { name, reason, .. } => {
                    tracing::warn!("bank {}: locks/{name}: {reason}; leaving it (`podbank bank repair` moves it aside)", self.location());
                    continue;
                }
            };
            if lock::is_live(&lock, now) {
                continue;
            }
            if let Some(partial) = lock.partial.clone() {
                if partial.volumes.iter().any(|v| {
                    !v.backup_id.is_empty()
                        || !v.snapshot_id.is_empty()
                        || !v.group_snapshot_id.is_empty()
                }) {
                    let mut partial = Checkpoint::from(partial);
                    partial.status = CheckpointStatus::Error;
                    partial.reason = format!(
                        "the writer ({} pid {}) stopped before finishing; its Cinder backups and snapshots are listed so that delete removes them",
                        lock.hostname, lock.pid
                    );
                    partial.finished = Some(chrono::Utc::now());
                    partial.tables = TableRefs::default();
                    partial.resource_count = 0;
                    partial.volume_table_count = 0;
                    self.put_checkpoint(&partial).await?;
                    recovered.push(partial.id.to_string());
                }
            }
            self.backend.delete(Kind::Lock, &lock.id).await?;
            removed += 1;
        }
        Ok(removed)
    }

    async fn gc_locked(&self, guard: &LockGuard, report: &mut GcReport) -> Result<(), BankError> {
        self.reload_index().await?;
        if let Some(d) = self.damaged_index_files().await.first() {
            return Err(BankError::Corrupt {
                location: self.location(),
                subject: d.file.to_string(),
                reason: format!(
                    "{}; gc deletes nothing while an index file cannot be read (it cannot tell \
                     which packs hold what): run `podbank bank repair` first",
                    d.reason
                ),
            });
        }
        let (refs, checkpoints, problems) = self.references().await?;
        if let Some(p) = problems.first() {
            return Err(BankError::Corrupt {
                location: self.location(),
                subject: p.subject.clone(),
                reason: format!(
                    "{}; gc deletes nothing while it cannot tell what this checkpoint needs: \
                     run `podbank bank repair` first",
                    p.reason
                ),
            });
        }
        report.checkpoints = checkpoints.len();
        report.referenced_objects = refs.len();
        guard.ensure_held()?;
        report.leftovers_removed = self.backend.remove_leftovers(lock::MAX_TTL).await?;
        report.leftovers_removed += self.remove_compacted_journal().await?;
        let index = self.index().await;
        // A pack stays if it holds a referenced object; the index entries it keeps are
        // those of its objects (each object's primary location).
        let mut keep: BTreeMap<Arc<str>, Vec<pb::IndexEntry>> = BTreeMap::new();
        let mut needed: HashSet<Arc<str>> = HashSet::new();
        for (id, loc) in index.objects() {
            if refs.contains_key(id) {
                needed.insert(loc.pack.clone());
            }
            keep.entry(loc.pack).or_default().push(pb::IndexEntry {
                id: id.to_bytes(),
                offset: loc.offset,
                length: loc.length,
                plain_length: loc.plain_length,
                offset_in_frame: loc.offset_in_frame,
            });
        }
        keep.retain(|pack, _| needed.contains(pack));
        let mut remove = Vec::new();
        for pack in index.packs() {
            if !keep.contains_key(&pack.name) {
                remove.push((pack.name.clone(), pack.size));
            }
        }
        let stored: HashSet<String> = self
            .backend
            .list(Kind::Pack)
            .await?
            .into_iter()
            // A file that is no pack is not gc's to remove: verify names it, repair moves it.
            .filter(|p| is_pack_name(&p.name))
            .map(|p| {
                if index.pack(&p.name).is_none() {
                    remove.push((p.name.as_str().into(), p.size));
                }
                p.name
            })
            .collect();
        // One new index for the packs kept, then the old indexes go, then the packs: at
        // every moment the index files there are name every pack a checkpoint needs.
        let old_files: Vec<String> = self
            .backend
            .list(Kind::Index)
            .await?
            .into_iter()
            .map(|i| i.name)
            .collect();
        if !remove.is_empty() || old_files.len() > 1 {
            let mut file = pb::IndexFile::default();
            for (pack, entries) in keep {
                file.packs.push(pb::IndexPack {
                    pack: pack.to_string(),
                    size: index.pack(&pack).map_or(0, |p| p.size),
                    entries,
                });
            }
            if !file.packs.is_empty() {
                guard.ensure_held()?;
                self.backend
                    .put(Kind::Index, &new_index_name(), format::encode(&file)?)
                    .await?;
            }
            for old in &old_files {
                guard.ensure_held()?;
                self.backend.delete(Kind::Index, old).await?;
                report.indexes_replaced += 1;
            }
            for (pack, size) in &remove {
                if stored.contains(&**pack) {
                    guard.ensure_held()?;
                    self.backend.delete(Kind::Pack, pack).await?;
                    report.packs_removed += 1;
                    report.bytes_removed += size;
                }
            }
        }
        self.reload_index().await
    }
}
