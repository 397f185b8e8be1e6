//! `bank repair`: after damage, make the bank tell the truth again and keep all it still can.
//!
//! Under the exclusive lock, in this order:
//! 1. every file that cannot be read (a lock, restore record, manifest or index file that
//!    fails its checksum, a file that is not podbank's) is moved into `quarantine/`, byte
//!    for byte, under `<repair time>-<folder>-<name>`;
//! 2. every pack is read whole: a pack no readable index names gets its entries back from
//!    its trailer (format 3), or, for older packs, from the frames that hold one object
//!    each; a pack whose bytes no longer match its name has its readable objects written
//!    into new packs, and is then quarantined;
//! 3. one index file is written for every pack that remains, and the old index files go
//!    (the order gc uses: at every moment the index files name what checkpoints need);
//! 4. every checkpoint that still needs an object the bank no longer holds becomes `error`,
//!    naming what was lost: nothing unreadable is listed `available` afterwards;
//! 5. a report (`quarantine/<repair time>-report.json`) says what was done.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::verify::objects_in_pack;
use super::{is_pack_name, Problem, References};
use crate::bank::backend::{BackendError, Kind};
use crate::bank::format::{self, pb};
use crate::bank::index::Location;
use crate::bank::lock::{self, LockEntry, LockGuard};
use crate::bank::{new_index_name, Bank, BankError, BankFile, ObjectId};
use crate::model::{Checkpoint, CheckpointStatus};

/// A file moved into `quarantine/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quarantined {
    /// Where it was.
    pub file: BankFile,
    /// Why it was moved.
    pub reason: String,
    /// Where it is now.
    pub moved_to: BankFile,
}

/// What `bank repair` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepairReport {
    /// When (also the prefix of the quarantined names).
    pub stamp: String,
    /// Files moved aside.
    pub quarantined: Vec<Quarantined>,
    /// Packs whose index entries were rebuilt from the pack itself.
    pub packs_reindexed: usize,
    /// Objects so indexed again.
    pub objects_reindexed: usize,
    /// Damaged packs whose readable objects were written into new packs.
    pub packs_salvaged: usize,
    /// Objects so saved.
    pub objects_salvaged: usize,
    /// Objects of damaged packs that could not be read.
    pub objects_lost: usize,
    /// Checkpoints that lost data and are now `error`.
    pub checkpoints_marked_error: Vec<String>,
    /// Checkpoints whose manifest was quarantined (their Cinder backups are not known to
    /// podbank any more; the backups carry the checkpoint id in their metadata).
    pub checkpoints_lost: Vec<String>,
    /// Index files replaced by the new one.
    pub indexes_replaced: usize,
    /// The report's own file.
    pub report_file: Option<BankFile>,
}

impl RepairReport {
    /// Whether the bank needed nothing.
    pub fn is_noop(&self) -> bool {
        self.quarantined.is_empty()
            && self.packs_reindexed == 0
            && self.packs_salvaged == 0
            && self.checkpoints_marked_error.is_empty()
    }
}

/// One pack's index entries as the packs themselves tell them.
fn entries_of_pack(data: &[u8]) -> Option<Vec<pb::IndexEntry>> {
    let tail_at = data.len().checked_sub(format::PACK_TAIL)?;
    if let Some(length) = format::pack_trailer_length(&data[tail_at..]) {
        let start = tail_at.checked_sub(usize::try_from(length).ok()?)?;
        return format::read_pack_trailer(&data[start..tail_at]).ok();
    }
    // Formats 1 and 2: no trailer; a frame that holds one object is named by its hash.
    let mut entries = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        let len = zstd::zstd_safe::find_frame_compressed_size(&data[pos..]).ok()?;
        if len == 0 {
            return None;
        }
        let frame = &data[pos..pos + len];
        if let Ok(plain) = format::decompress_frame(frame, 0) {
            entries.push(pb::IndexEntry {
                id: ObjectId::of(&plain).to_bytes(),
                offset: pos as u64,
                length: u32::try_from(len).ok()?,
                plain_length: u32::try_from(plain.len()).ok()?,
                offset_in_frame: 0,
            });
        }
        pos += len;
    }
    Some(entries)
}

fn location_of(pack: &Arc<str>, e: &pb::IndexEntry) -> Location {
    Location {
        pack: pack.clone(),
        offset: e.offset,
        length: e.length,
        plain_length: e.plain_length,
        offset_in_frame: e.offset_in_frame,
    }
}

impl Bank {
    /// Repairs the bank after damage: see the module doc. Waits up to `wait` for writers.
    pub async fn repair(&self, wait: std::time::Duration) -> Result<RepairReport, BankError> {
        let guard = LockGuard::acquire(
            self.backend.clone(),
            true,
            "repair".to_string(),
            lock::DEFAULT_TTL,
            wait,
        )
        .await?;
        let result = self.repair_locked(&guard).await;
        guard.release().await?;
        result
    }

    /// Moves `file` (as stored, not decrypted) into `quarantine/`.
    async fn quarantine(
        &self,
        report: &mut RepairReport,
        file: BankFile,
        reason: String,
        guard: &LockGuard,
    ) -> Result<(), BankError> {
        guard.ensure_held()?;
        let moved_to = BankFile::new(
            Kind::Quarantine,
            format!(
                "{}-{}-{}",
                report.stamp,
                match file.kind.folder() {
                    "" => "root",
                    f => f,
                },
                file.name
            ),
        );
        match self.raw.get(file.kind, &file.name).await {
            Ok(data) => {
                self.raw.put(Kind::Quarantine, &moved_to.name, data).await?;
                self.raw.delete(file.kind, &file.name).await?;
            }
            Err(BackendError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        tracing::warn!(
            "bank {}: moved {file} to {moved_to}: {reason}",
            self.location()
        );
        report.quarantined.push(Quarantined {
            file,
            reason,
            moved_to,
        });
        Ok(())
    }

    async fn repair_locked(&self, guard: &LockGuard) -> Result<RepairReport, BankError> {
        let mut report = RepairReport {
            stamp: chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string(),
            ..Default::default()
        };
        // 1. Files that cannot be read.
        for entry in lock::read_all(&self.backend).await? {
            if let LockEntry::Unreadable { name, reason, .. } = &entry {
                if !entry.unreadable_and_young() {
                    let file = BankFile::new(Kind::Lock, name.clone());
                    self.quarantine(&mut report, file, reason.clone(), guard)
                        .await?;
                }
            }
        }
        let (_, restore_problems) = self.restore_records().await?;
        let (_, manifest_problems) = self.checkpoints().await?;
        let (_, plan_problems) = self.plans().await?;
        for p in restore_problems
            .into_iter()
            .chain(manifest_problems)
            .chain(plan_problems)
        {
            if let Some(file) = p.file {
                if file.kind == Kind::Checkpoint {
                    report.checkpoints_lost.push(file.name.clone());
                }
                self.quarantine(&mut report, file, p.reason, guard).await?;
            }
        }
        self.reload_index().await?;
        for d in self.damaged_index_files().await.iter() {
            self.quarantine(&mut report, d.file.clone(), d.reason.clone(), guard)
                .await?;
        }
        // 2. Every pack, read whole.
        let index = self.index().await;
        let mut by_pack: HashMap<Arc<str>, Vec<pb::IndexEntry>> = HashMap::new();
        for (id, loc) in index.objects() {
            by_pack
                .entry(loc.pack.clone())
                .or_default()
                .push(pb::IndexEntry {
                    id: id.to_bytes(),
                    offset: loc.offset,
                    length: loc.length,
                    plain_length: loc.plain_length,
                    offset_in_frame: loc.offset_in_frame,
                });
        }
        drop(index);
        let mut entries: BTreeMap<Arc<str>, (u64, Vec<pb::IndexEntry>)> = BTreeMap::new();
        let mut dropped: HashSet<Arc<str>> = HashSet::new();
        for info in self.backend.list(Kind::Pack).await? {
            let file = BankFile::new(Kind::Pack, info.name.clone());
            if !is_pack_name(&info.name) {
                let reason = "not a pack (its name is no sha256): a foreign file".to_string();
                self.quarantine(&mut report, file, reason, guard).await?;
                continue;
            }
            let name: Arc<str> = info.name.as_str().into();
            let data = match self.backend.get(Kind::Pack, &info.name).await {
                Ok(data) => Some(data),
                Err(BackendError::NotFound { .. }) => continue,
                Err(e @ BackendError::Io { op: "decrypt", .. }) => {
                    tracing::warn!("{file}: {e}");
                    None
                }
                Err(e) => return Err(e.into()),
            };
            let intact = data
                .as_ref()
                .is_some_and(|d| ObjectId::of(d).to_hex() == *name);
            let indexed = by_pack.remove(&name).unwrap_or_default();
            if intact {
                let data = data.unwrap_or_default();
                let known = if indexed.is_empty() {
                    match entries_of_pack(&data) {
                        Some(found) if !found.is_empty() => {
                            report.packs_reindexed += 1;
                            report.objects_reindexed += found.len();
                            found
                        }
                        // Nothing to learn from it: no checkpoint can need it; gc removes it.
                        _ => Vec::new(),
                    }
                } else {
                    indexed
                };
                if !known.is_empty() {
                    entries.insert(name, (data.len() as u64, known));
                }
                continue;
            }
            // Damaged: save what can still be read, then move it aside.
            let listed = match (&data, indexed.is_empty()) {
                (Some(d), true) => entries_of_pack(d).unwrap_or_default(),
                _ => indexed,
            };
            let located: Vec<(ObjectId, Location)> = listed
                .iter()
                .filter_map(|e| ObjectId::from_slice(&e.id).map(|id| (id, location_of(&name, e))))
                .collect();
            let mut good = Vec::new();
            match &data {
                Some(d) => {
                    for (id, _, object) in objects_in_pack(d, located) {
                        match object {
                            Ok(plain) => good.push((id, plain)),
                            Err(_) => report.objects_lost += 1,
                        }
                    }
                }
                None => report.objects_lost += located.len(),
            }
            report.objects_salvaged += good.len();
            report.packs_salvaged += 1;
            for pack in self.write_packs(good, guard).await? {
                let pack_name: Arc<str> = pack.pack.as_str().into();
                entries.insert(pack_name, (pack.size, pack.entries));
            }
            dropped.insert(name);
            let reason = match data {
                Some(_) => "content does not match its name (damaged); its readable objects were written into new packs".to_string(),
                None => "cannot be opened (damaged or sealed with another key)".to_string(),
            };
            self.quarantine(&mut report, file, reason, guard).await?;
        }
        // 3. One index for what remains.
        let old_files: Vec<String> = self
            .backend
            .list(Kind::Index)
            .await?
            .into_iter()
            .map(|i| i.name)
            .collect();
        let changed = report.packs_reindexed > 0 || report.packs_salvaged > 0;
        if changed {
            let mut file = pb::IndexFile::default();
            for (pack, (size, list)) in entries {
                if !dropped.contains(&pack) {
                    file.packs.push(pb::IndexPack {
                        pack: pack.to_string(),
                        size,
                        entries: list,
                    });
                }
            }
            guard.ensure_held()?;
            self.backend
                .put(Kind::Index, &new_index_name(), format::encode(&file)?)
                .await?;
            for old in &old_files {
                guard.ensure_held()?;
                self.backend.delete(Kind::Index, old).await?;
                report.indexes_replaced += 1;
            }
        }
        self.reload_index().await?;
        // 4. Checkpoints that lost something say so.
        self.mark_damaged_checkpoints(&mut report, guard).await?;
        // 5. The report.
        let name = format!("{}-report.json", report.stamp);
        report.report_file = Some(BankFile::new(Kind::Quarantine, name.clone()));
        if !report.is_noop() {
            let text = serde_json::to_vec_pretty(&report).unwrap_or_default();
            self.raw
                .put(Kind::Quarantine, &name, Bytes::from(text))
                .await?;
        } else {
            report.report_file = None;
        }
        Ok(report)
    }

    /// Every `available` checkpoint that needs an object the index does not hold, or a
    /// table that cannot be read, becomes `error` with what it lost.
    async fn mark_damaged_checkpoints(
        &self,
        report: &mut RepairReport,
        guard: &LockGuard,
    ) -> Result<(), BankError> {
        let (checkpoints, _) = self.checkpoints().await?;
        let index = self.index().await;
        for mut cp in checkpoints {
            if cp.status == CheckpointStatus::Protecting {
                continue;
            }
            // Tables that are gone are taken out of the lists (and kept as lost), so that
            // what remains reads, and gc can tell what it needs.
            let lost_tables = self.take_lost_tables(&mut cp, &index).await;
            let mut refs = References::new();
            let mut problems: Vec<Problem> = Vec::new();
            let tables = self.read_resource_tables([&cp]).await;
            self.add_references(&cp, &tables, &mut refs, &mut problems)
                .await;
            let missing = refs.keys().filter(|id| !index.contains(id)).count();
            if missing == 0 && problems.is_empty() && lost_tables == 0 {
                continue;
            }
            let what = match (missing, lost_tables, problems.first()) {
                (0, 0, Some(p)) => format!("{}: {}", p.subject, p.reason),
                (n, 0, _) => format!("{n} stored object(s) lost"),
                (n, t, _) => format!("{t} table(s) of its records and {n} stored object(s) lost"),
            };
            let note = format!(
                "damaged: {what} (bank repair {}; see quarantine/{}-report.json)",
                report.stamp, report.stamp
            );
            if cp.status == CheckpointStatus::Available {
                cp.status = CheckpointStatus::Error;
            }
            cp.reason = if cp.reason.is_empty() {
                note
            } else {
                format!("{}; {note}", cp.reason)
            };
            guard.ensure_held()?;
            self.put_checkpoint(&cp).await?;
            report.checkpoints_marked_error.push(cp.id.to_string());
        }
        Ok(())
    }
}

impl Bank {
    /// Moves the ids of `cp`'s resource and volume tables that cannot be read into its
    /// `lost_tables`; returns how many.
    async fn take_lost_tables(&self, cp: &mut Checkpoint, index: &crate::bank::Index) -> usize {
        let mut lost = Vec::new();
        let snapshot = cp.clone();
        for list in [&mut cp.tables.resources, &mut cp.tables.volumes] {
            let mut kept = Vec::with_capacity(list.len());
            for id in list.drain(..) {
                if index.contains(&id) && self.read_object(&id, snapshot.id.as_str()).await.is_ok()
                {
                    kept.push(id);
                } else {
                    lost.push(id);
                }
            }
            *list = kept;
        }
        let n = lost.len();
        cp.tables.lost.extend(lost);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pack_without_trailer_is_indexed_by_its_single_object_frames() {
        let a = b"first object".to_vec();
        let b = b"second object, a little longer".to_vec();
        let mut pack = zstd::bulk::compress(&a, 1).unwrap_or_default();
        let second_at = pack.len();
        pack.extend(zstd::bulk::compress(&b, 1).unwrap_or_default());
        let entries = entries_of_pack(&pack).unwrap_or_default();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].id, ObjectId::of(&a).to_bytes());
        assert_eq!(entries[1].id, ObjectId::of(&b).to_bytes());
        assert_eq!(entries[1].offset, second_at as u64);
    }

    #[test]
    fn a_pack_with_trailer_says_what_it_holds() {
        let entry = pb::IndexEntry {
            id: ObjectId::of(b"x").to_bytes(),
            offset: 0,
            length: 10,
            plain_length: 1,
            offset_in_frame: 0,
        };
        let mut pack = vec![0u8; 10];
        pack.extend(format::pack_trailer(std::slice::from_ref(&entry)).unwrap_or_default());
        assert_eq!(entries_of_pack(&pack), Some(vec![entry]));
    }
}
