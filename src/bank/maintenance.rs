//! Checking and cleaning the bank: `verify`, `gc`, `stats`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;

use super::backend::{BackendError, Kind};
use super::format::{self, now_ms, pb};
use super::lock::{self, LockGuard};
use super::{checked, Bank, BankError, CheckpointId, ObjectId};

/// One thing wrong in the bank.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// What is damaged: "pack ab12..", "object 3f.. in pack ab12..", "manifest of checkpoint X".
    pub subject: String,
    /// How.
    pub reason: String,
    /// The checkpoints that need it.
    pub checkpoints: Vec<String>,
}

/// What `verify` checked and found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// Checkpoints checked.
    pub checkpoints: usize,
    /// Objects read and re-hashed.
    pub objects: usize,
    /// Packs read.
    pub packs: usize,
    /// Packs no index names (crash leftovers; `bank gc` removes them).
    pub unindexed_packs: usize,
    /// Everything wrong.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What `gc` did.
#[derive(Debug, Clone, Default, Serialize)]
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
}

/// `bank stats`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Bank location.
    pub location: String,
    /// Whether the bank is encrypted.
    pub encrypted: bool,
    /// Checkpoints.
    pub checkpoints: usize,
    /// Distinct objects stored.
    pub objects: usize,
    /// Packs.
    pub packs: usize,
    /// Bytes of all packs as stored (compressed, sealed).
    pub stored_bytes: u64,
    /// Plain bytes of the distinct objects.
    pub unique_bytes: u64,
    /// Plain bytes of all resources of all checkpoints (what a bank without dedup and
    /// compression would hold).
    pub logical_bytes: u64,
    /// logical / unique.
    pub dedup_ratio: f64,
    /// logical / stored.
    pub total_ratio: f64,
}

impl Bank {
    /// Which checkpoints need each object (resource tables included). Checkpoints whose
    /// manifest or tables cannot be read are returned apart.
    async fn references(
        &self,
    ) -> Result<
        (
            HashMap<ObjectId, Vec<String>>,
            Vec<pb::Checkpoint>,
            Vec<Problem>,
        ),
        BankError,
    > {
        let (checkpoints, mut problems) = self.checkpoints().await?;
        let mut refs: HashMap<ObjectId, Vec<String>> = HashMap::new();
        for cp in &checkpoints {
            self.add_references(cp, &mut refs, &mut problems).await;
        }
        Ok((refs, checkpoints, problems))
    }

    /// Adds what `cp` needs (its resource tables and their objects, its volume tables) to
    /// `refs`. A table
    /// that cannot be read is a problem; the other tables are still followed, so that
    /// verify checks every object it can reach.
    async fn add_references(
        &self,
        cp: &pb::Checkpoint,
        refs: &mut HashMap<ObjectId, Vec<String>>,
        problems: &mut Vec<Problem>,
    ) {
        let mut add = |id: ObjectId| {
            let v = refs.entry(id).or_default();
            if v.last() != Some(&cp.id) {
                v.push(cp.id.clone());
            }
        };
        for raw in &cp.volume_tables {
            match ObjectId::from_slice(raw) {
                Some(id) => add(id),
                None => problems.push(Problem {
                    subject: format!("manifest of checkpoint {}", cp.id),
                    reason: "a volume table id is not 32 bytes".into(),
                    checkpoints: vec![cp.id.clone()],
                }),
            }
        }
        for raw in &cp.resource_tables {
            if let Some(id) = ObjectId::from_slice(raw) {
                add(id);
            }
            match self.resource_table(cp, raw).await {
                Ok(resources) => resources
                    .iter()
                    .filter_map(|r| ObjectId::from_slice(&r.object_id))
                    .for_each(&mut add),
                Err(e) => problems.push(Problem {
                    subject: format!("resource list of checkpoint {}", cp.id),
                    reason: e.to_string(),
                    checkpoints: vec![cp.id.clone()],
                }),
            }
        }
    }

    /// Verifies one checkpoint (`Some`) or the whole bank (`None`): every object a
    /// checkpoint needs is read, decompressed and re-hashed; with `None`, every pack's own
    /// hash is checked too and unindexed packs are counted.
    pub async fn verify(&self, only: Option<&CheckpointId>) -> Result<VerifyReport, BankError> {
        self.reload_index().await?;
        let mut report = VerifyReport::default();
        let (refs, checkpoints, problems) = match only {
            Some(id) => {
                let cp = match self.checkpoint(id).await {
                    Ok(cp) => cp,
                    Err(BankError::Corrupt {
                        subject, reason, ..
                    }) => {
                        report.problems.push(Problem {
                            subject,
                            reason,
                            checkpoints: vec![id.to_string()],
                        });
                        return Ok(report);
                    }
                    Err(e) => return Err(e),
                };
                let mut refs: HashMap<ObjectId, Vec<String>> = HashMap::new();
                let mut problems = Vec::new();
                self.add_references(&cp, &mut refs, &mut problems).await;
                (refs, vec![cp], problems)
            }
            None => self.references().await?,
        };
        report.checkpoints = checkpoints.len();
        report.problems.extend(problems);
        let index = self.index().await;
        // Objects by pack, so that each pack is read once.
        let mut by_pack: BTreeMap<Arc<str>, Vec<ObjectId>> = BTreeMap::new();
        for (id, who) in &refs {
            match index.get(id) {
                Some(loc) => by_pack.entry(loc.pack.clone()).or_default().push(*id),
                None => report.problems.push(Problem {
                    subject: format!("object {id}"),
                    reason: "not in any index: the bank has lost it".into(),
                    checkpoints: who.clone(),
                }),
            }
        }
        if only.is_none() {
            for pack in index.packs() {
                by_pack.entry(pack.name.clone()).or_default();
            }
        }
        let backend = self.backend.clone();
        let mut reads = futures::stream::iter(by_pack)
            .map(|(pack, ids)| {
                let backend = backend.clone();
                async move {
                    let data = backend.get(Kind::Pack, &pack).await;
                    (pack, ids, data)
                }
            })
            .buffer_unordered(4);
        while let Some((pack, ids, data)) = reads.next().await {
            report.packs += 1;
            let who = |ids: &[ObjectId]| -> Vec<String> {
                let mut v: Vec<String> = ids
                    .iter()
                    .flat_map(|i| refs.get(i).cloned().unwrap_or_default())
                    .collect();
                v.sort();
                v.dedup();
                v
            };
            let data = match data {
                Ok(d) => d,
                Err(BackendError::NotFound { .. }) => {
                    report.problems.push(Problem {
                        subject: format!("pack {pack}"),
                        reason: format!("missing ({} objects in it are lost)", ids.len()),
                        checkpoints: who(&ids),
                    });
                    continue;
                }
                Err(e) => {
                    report.problems.push(Problem {
                        subject: format!("pack {pack}"),
                        reason: format!("unreadable: {e}"),
                        checkpoints: who(&ids),
                    });
                    continue;
                }
            };
            let expected_size = index.pack(&pack).map(|p| p.size).unwrap_or(0);
            let actual = ObjectId::of(&data).to_hex();
            if actual != *pack {
                let reason = if (data.len() as u64) < expected_size {
                    format!("truncated: {} bytes of {expected_size}", data.len())
                } else {
                    "content does not match its name (damaged)".to_string()
                };
                report.problems.push(Problem {
                    subject: format!("pack {pack}"),
                    reason,
                    checkpoints: who(&ids),
                });
            }
            // In frame order, each frame decompressed once for the objects it holds.
            let mut located: Vec<_> = ids
                .iter()
                .filter_map(|id| index.get(id).map(|loc| (id, loc)))
                .collect();
            located.sort_by_key(|(_, loc)| (loc.offset, loc.offset_in_frame));
            report.objects += ids.len();
            let mut frame: Option<(u64, Result<bytes::Bytes, String>)> = None;
            for (id, loc) in located {
                if frame.as_ref().map(|(at, _)| *at) != Some(loc.offset) {
                    let start = usize::try_from(loc.offset).unwrap_or(usize::MAX);
                    let end =
                        start.saturating_add(usize::try_from(loc.length).unwrap_or(usize::MAX));
                    let plain = match data.get(start..end) {
                        Some(bytes) => format::decompress_frame(bytes, 0),
                        None => Err(format!("past the end of the pack ({} bytes)", data.len())),
                    };
                    frame = Some((loc.offset, plain));
                }
                let result = match frame.as_ref().map(|(_, plain)| plain) {
                    Some(Ok(plain)) => {
                        format::object_in_frame(plain, loc.offset_in_frame, loc.plain_length)
                            .and_then(|object| checked(id, object))
                            .map(|_| ())
                    }
                    Some(Err(reason)) => Err(reason.clone()),
                    None => Err("no frame".into()),
                };
                if let Err(reason) = result {
                    report.problems.push(Problem {
                        subject: format!("object {id} in pack {pack}"),
                        reason,
                        checkpoints: who(std::slice::from_ref(id)),
                    });
                }
            }
        }
        if only.is_none() {
            let stored = self.backend.list(Kind::Pack).await?;
            report.unindexed_packs = stored
                .iter()
                .filter(|p| index.pack(&p.name).is_none())
                .count();
        }
        Ok(report)
    }

    /// Removes what no checkpoint needs: packs with no referenced object, packs no index
    /// names (crash leftovers), and locks of dead writers. Runs under an exclusive lock:
    /// while a checkpoint is being written, gc waits up to `wait` and then gives up,
    /// deleting nothing. A dead writer's checkpoint that created Cinder backups is kept as
    /// an `error` checkpoint so that `delete` can remove those backups.
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
        let result = self.gc_locked(&mut report).await;
        guard.release().await?;
        result.map(|()| report)
    }

    /// Removes the locks of dead writers; those with Cinder backups become `error`
    /// checkpoints. Returns how many locks were removed.
    pub async fn recover_stale_locks(
        &self,
        recovered: &mut Vec<String>,
    ) -> Result<usize, BankError> {
        let now = now_ms();
        let mut removed = 0;
        for entry in lock::read_all(&self.backend).await? {
            let lock = match entry {
                Ok(lock) => lock,
                Err(name) => {
                    tracing::warn!("lock {name} is unreadable; leaving it");
                    continue;
                }
            };
            if lock::is_live(&lock, now) {
                continue;
            }
            if let Some(mut partial) = lock.partial.clone() {
                if partial.volumes.iter().any(|v| !v.backup_id.is_empty()) {
                    partial.status = pb::CheckpointStatus::Error as i32;
                    partial.reason = format!(
                        "the writer ({} pid {}) stopped before finishing; its Cinder backups are listed so that delete removes them",
                        lock.hostname, lock.pid
                    );
                    partial.finished_unix_ms = now;
                    partial.resource_tables.clear();
                    partial.resource_count = 0;
                    partial.volume_tables.clear();
                    partial.volume_table_count = 0;
                    self.put_checkpoint(&partial).await?;
                    recovered.push(partial.id.clone());
                }
            }
            self.backend.delete(Kind::Lock, &lock.id).await?;
            removed += 1;
        }
        Ok(removed)
    }

    async fn gc_locked(&self, report: &mut GcReport) -> Result<(), BankError> {
        self.reload_index().await?;
        let (refs, checkpoints, problems) = self.references().await?;
        if let Some(p) = problems.first() {
            return Err(BankError::Corrupt {
                location: self.location(),
                subject: p.subject.clone(),
                reason: format!(
                    "{}; gc deletes nothing while it cannot tell what this checkpoint needs",
                    p.reason
                ),
            });
        }
        report.checkpoints = checkpoints.len();
        report.referenced_objects = refs.len();
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
            .map(|p| {
                if index.pack(&p.name).is_none() {
                    remove.push((p.name.as_str().into(), p.size));
                }
                p.name
            })
            .collect();
        // One new index for the packs kept, then the old indexes go, then the packs.
        let old_files: Vec<String> = self
            .backend
            .list(Kind::Index)
            .await?
            .into_iter()
            .map(|i| i.name)
            .collect();
        if !remove.is_empty() || old_files.len() > 1 {
            let mut file = pb::IndexFile {
                packs: Vec::new(),
                supersedes: old_files.clone(),
            };
            for (pack, entries) in keep {
                file.packs.push(pb::IndexPack {
                    pack: pack.to_string(),
                    size: index.pack(&pack).map_or(0, |p| p.size),
                    entries,
                });
            }
            let data = format::encode(&file);
            let name = ObjectId::of(&data).to_hex();
            if !file.packs.is_empty() {
                self.backend.put(Kind::Index, &name, data).await?;
            }
            for old in &old_files {
                if *old != name {
                    self.backend.delete(Kind::Index, old).await?;
                    report.indexes_replaced += 1;
                }
            }
            for (pack, size) in &remove {
                if stored.contains(&**pack) {
                    self.backend.delete(Kind::Pack, pack).await?;
                    report.packs_removed += 1;
                    report.bytes_removed += size;
                }
            }
        }
        self.reload_index().await
    }

    /// Counts of the bank.
    pub async fn stats(&self) -> Result<Stats, BankError> {
        self.reload_index().await?;
        let index = self.index().await;
        let (checkpoints, _) = self.checkpoints().await?;
        let logical: u64 = checkpoints
            .iter()
            .filter_map(|c| c.stats.as_ref())
            .map(|s| s.bytes_plain)
            .sum();
        let stored: u64 = index.packs().iter().map(|p| p.size).sum();
        let unique = index.plain_bytes();
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        Ok(Stats {
            location: self.location(),
            encrypted: self.config.encrypted,
            checkpoints: checkpoints.len(),
            objects: index.len(),
            packs: index.packs().len(),
            stored_bytes: stored,
            unique_bytes: unique,
            logical_bytes: logical,
            dedup_ratio: ratio(logical, unique),
            total_ratio: ratio(logical, stored),
        })
    }
}
