//! The bank's records: checkpoint manifests (with the checkpoints live writers hold in
//! their locks), the resource and volume tables they name, and restore records. Files that
//! cannot be read are returned as problems, not hidden.

use futures::StreamExt;
use prost::Message;

use super::backend::{self, Kind};
use super::brief::{CheckpointBrief, Manifest};
use super::format::{self, pb};
use super::{is_sealing_error, lock, Bank, BankError, BankFile, CheckpointId, ObjectId, Problem};
use crate::model::{
    Checkpoint, CheckpointStatus, CheckpointSummary, JournalBatch, ResourceRecord, RestoreId,
    RestoreRecord, VolumeRecord,
};

impl Bank {
    /// Every checkpoint: the manifests, plus the checkpoints that live writers are writing
    /// now (status `protecting`). Sorted by creation time. Unreadable manifests are returned
    /// as problems, not hidden.
    pub async fn checkpoints(&self) -> Result<(Vec<Checkpoint>, Vec<Problem>), BankError> {
        self.manifests::<pb::Checkpoint>().await
    }

    /// Like [`Bank::checkpoints`], reading each manifest as a summary: what listings need,
    /// without the volume records' details (a manifest of 100k pods holds 300k of them).
    pub async fn checkpoint_briefs(
        &self,
    ) -> Result<(Vec<CheckpointSummary>, Vec<Problem>), BankError> {
        self.manifests::<CheckpointBrief>().await
    }

    async fn manifests<M: Manifest>(&self) -> Result<(Vec<M::Model>, Vec<Problem>), BankError> {
        let names = self.backend.list(Kind::Checkpoint).await?;
        let backend = self.backend.clone();
        let results = futures::stream::iter(names)
            .map(|info| {
                let backend = backend.clone();
                async move {
                    // Decoded as it arrives: the encoded bytes are not kept for all of them.
                    let manifest = match backend.get(Kind::Checkpoint, &info.name).await {
                        Ok(d) => format::decode::<M>(&d).map(Some).map_err(|e| e.to_string()),
                        Err(backend::BackendError::NotFound { .. }) => Ok(None),
                        Err(e) => Err(e.to_string()),
                    };
                    (info.name, manifest)
                }
            })
            .buffer_unordered(32)
            .collect::<Vec<_>>()
            .await;
        let mut checkpoints = Vec::new();
        let mut problems = Vec::new();
        for (name, manifest) in results {
            match manifest {
                Ok(Some(cp)) if cp.id() == name => checkpoints.push(cp),
                Ok(Some(cp)) => problems.push(Problem::file(
                    BankFile::new(Kind::Checkpoint, name.clone()),
                    format!(
                        "holds the manifest of checkpoint {:?}, not of {name:?}",
                        cp.id()
                    ),
                    vec![name],
                )),
                Ok(None) => {}
                Err(reason) => problems.push(Problem::file(
                    BankFile::new(Kind::Checkpoint, name.clone()),
                    reason,
                    vec![name],
                )),
            }
        }
        for lock in lock::live_locks(&self.backend).await? {
            if let Some(partial) = lock.partial.as_ref() {
                if !checkpoints.iter().any(|c| c.id() == partial.id) {
                    checkpoints.push(M::from_partial(partial));
                }
            }
        }
        checkpoints
            .sort_by(|a, b| (a.created_unix_ms(), a.id()).cmp(&(b.created_unix_ms(), b.id())));
        Ok((
            checkpoints.into_iter().map(Manifest::into_model).collect(),
            problems,
        ))
    }

    /// One checkpoint's manifest (or a live writer's checkpoint in progress).
    pub async fn checkpoint(&self, id: &CheckpointId) -> Result<Checkpoint, BankError> {
        self.manifest(id).await.map(Checkpoint::from)
    }

    /// One checkpoint's manifest as stored.
    async fn manifest(&self, id: &CheckpointId) -> Result<pb::Checkpoint, BankError> {
        match self.backend.get(Kind::Checkpoint, id.as_str()).await {
            Ok(data) => format::decode(&data).map_err(|e| BankError::Corrupt {
                location: self.location(),
                subject: format!("checkpoints/{id} (the manifest of checkpoint {id})"),
                reason: e.to_string(),
            }),
            Err(backend::BackendError::NotFound { .. }) => lock::live_locks(&self.backend)
                .await?
                .into_iter()
                .find_map(|l| l.partial.filter(|p| p.id == id.as_str()))
                .ok_or_else(|| BankError::CheckpointNotFound {
                    id: id.to_string(),
                    location: self.location(),
                }),
            Err(e) if is_sealing_error(&e) => Err(BankError::Corrupt {
                location: self.location(),
                subject: format!("checkpoints/{id} (the manifest of checkpoint {id})"),
                reason: e.to_string(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// The resource records of a checkpoint, in order.
    pub async fn resources(
        &self,
        checkpoint: &Checkpoint,
    ) -> Result<Vec<ResourceRecord>, BankError> {
        let mut out = Vec::with_capacity(usize::try_from(checkpoint.resource_count).unwrap_or(0));
        // Table by table: the decoded tables are not all held beside their conversions.
        self.each_table(
            checkpoint,
            &checkpoint.tables.resources,
            "resource table",
            |table: pb::ResourceTable| {
                out.extend(table.resources.into_iter().map(ResourceRecord::from));
            },
        )
        .await?;
        Ok(out)
    }

    /// One resource table of a checkpoint. With `read`, the table as a batch read it
    /// ([`Bank::read_found`]); without (the batch did not give it), read alone, for its
    /// own error.
    pub(crate) async fn resource_table(
        &self,
        checkpoint: &Checkpoint,
        id: &ObjectId,
        read: Option<&bytes::Bytes>,
    ) -> Result<Vec<ResourceRecord>, BankError> {
        let table: pb::ResourceTable = match read {
            Some(data) => self.decode_table(checkpoint, id, "resource table", data)?,
            None => self.table(checkpoint, id, "resource table").await?,
        };
        Ok(table.resources.into_iter().map(Into::into).collect())
    }

    /// Every volume record of a checkpoint: the manifest's (its Cinder volumes), then
    /// those of its volume tables (pod volumes that are not Cinder volumes).
    pub async fn volume_records(
        &self,
        checkpoint: &Checkpoint,
    ) -> Result<Vec<VolumeRecord>, BankError> {
        let mut out = checkpoint.volumes.clone();
        let tables: Vec<pb::VolumeTable> = self
            .tables(checkpoint, &checkpoint.tables.volumes, "volume table")
            .await?;
        for table in tables {
            out.extend(table.volumes.into_iter().map(VolumeRecord::from));
        }
        Ok(out)
    }

    /// Reads and decodes one table object of `checkpoint` (`what`: its kind, for errors).
    async fn table<M: Message + Default>(
        &self,
        checkpoint: &Checkpoint,
        id: &ObjectId,
        what: &str,
    ) -> Result<M, BankError> {
        let data = self.read_object(id, checkpoint.id.as_str()).await?;
        self.decode_table(checkpoint, id, what, &data)
    }

    /// Reads and decodes table objects of `checkpoint`, in the order of `ids`, by pack
    /// ([`Bank::read_objects`]). The first that cannot be had fails the whole, with the
    /// error of reading it alone.
    async fn tables<M: Message + Default>(
        &self,
        checkpoint: &Checkpoint,
        ids: &[ObjectId],
        what: &str,
    ) -> Result<Vec<M>, BankError> {
        let mut out = Vec::with_capacity(ids.len());
        self.each_table(checkpoint, ids, what, |table| out.push(table))
            .await?;
        Ok(out)
    }

    /// Reads the table objects `ids` of `checkpoint` by pack and hands each to `each`,
    /// decoded, in order. Each table's bytes are dropped once it is decoded, and each
    /// decoded table once `each` has it, so a caller that converts them holds one decoded
    /// table at a time.
    async fn each_table<M: Message + Default>(
        &self,
        checkpoint: &Checkpoint,
        ids: &[ObjectId],
        what: &str,
        mut each: impl FnMut(M),
    ) -> Result<(), BankError> {
        let mut read = self
            .read_found(ids.iter().copied(), checkpoint.id.as_str())
            .await;
        for (i, id) in ids.iter().enumerate() {
            // Kept while a later table has the same id (read once, decoded for each).
            let data = if ids[i + 1..].contains(id) {
                read.get(id).cloned()
            } else {
                read.remove(id)
            };
            each(match data {
                Some(data) => self.decode_table(checkpoint, id, what, &data)?,
                None => self.table(checkpoint, id, what).await?,
            });
        }
        Ok(())
    }

    fn decode_table<M: Message + Default>(
        &self,
        checkpoint: &Checkpoint,
        id: &ObjectId,
        what: &str,
        data: &[u8],
    ) -> Result<M, BankError> {
        M::decode(data).map_err(|e| BankError::Corrupt {
            location: self.location(),
            subject: format!("{what} {id} of checkpoint {}", checkpoint.id),
            reason: e.to_string(),
        })
    }

    /// Replaces a checkpoint's manifest (status changes of delete). Atomic.
    pub async fn put_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), BankError> {
        let manifest = pb::Checkpoint::from(checkpoint);
        self.backend
            .put(Kind::Checkpoint, &manifest.id, format::encode(&manifest)?)
            .await?;
        Ok(())
    }

    /// Sets a finished checkpoint's status to `available` or `error` and leaves the rest
    /// of its manifest as it is (Karbor's checkpoint reset-state). Only a checkpoint that
    /// is `available` or `error` can be reset, and only to one of those: one being written
    /// (`protecting`) or deleted is refused with [`BankError::InvalidState`], as Karbor
    /// refuses it. Returns the manifest written.
    ///
    /// Like the status changes of delete, this is a read and a rewrite of the manifest, not
    /// under the bank's lock: a reset racing a delete of the same checkpoint may put back
    /// the manifest that delete removed (deleting it again finishes the job).
    pub async fn set_checkpoint_status(
        &self,
        id: &CheckpointId,
        status: CheckpointStatus,
    ) -> Result<Checkpoint, BankError> {
        let settable = |s: CheckpointStatus| {
            matches!(s, CheckpointStatus::Available | CheckpointStatus::Error)
        };
        if !settable(status) {
            return Err(BankError::InvalidState {
                id: id.to_string(),
                reason: format!("its status can be set to available or error, not {status}"),
            });
        }
        let mut checkpoint = self.checkpoint(id).await?;
        if !settable(checkpoint.status) {
            return Err(BankError::InvalidState {
                id: id.to_string(),
                reason: format!(
                    "it is {}; only an available or error checkpoint can be reset",
                    checkpoint.status
                ),
            });
        }
        checkpoint.status = status;
        self.put_checkpoint(&checkpoint).await?;
        Ok(checkpoint)
    }

    /// Removes a checkpoint's manifest; its data goes at the next gc.
    pub async fn remove_checkpoint(&self, id: &CheckpointId) -> Result<(), BankError> {
        self.backend.delete(Kind::Checkpoint, id.as_str()).await?;
        Ok(())
    }

    /// Writes a restore record whole, then removes the journal batches it holds
    /// (`seq <= journal_seq`): the compaction of the journal. A run killed in between
    /// leaves batches that reading passes over.
    pub async fn put_restore(&self, restore: &RestoreRecord) -> Result<(), BankError> {
        let record = pb::Restore::from(restore);
        self.backend
            .put(Kind::Restore, &record.id, format::encode(&record)?)
            .await?;
        if restore.journal_seq > 0 {
            for (seq, name) in self.journal_names(&restore.id).await? {
                if seq <= restore.journal_seq {
                    self.backend.delete(Kind::Journal, &name).await?;
                }
            }
        }
        Ok(())
    }

    /// Appends a batch to a restore's journal: one small file, whatever the record's size.
    pub async fn append_restore(
        &self,
        restore: &RestoreId,
        batch: &JournalBatch,
    ) -> Result<(), BankError> {
        let record = pb::RestoreJournal::of(restore, batch);
        self.backend
            .put(
                Kind::Journal,
                &journal_name(restore, batch.seq),
                format::encode(&record)?,
            )
            .await?;
        Ok(())
    }

    /// Removes the journal batches that their restore record already holds (a restore
    /// killed between writing the record whole and removing them), and those of restores
    /// with no record. Returns how many.
    pub(crate) async fn remove_compacted_journal(&self) -> Result<usize, BankError> {
        let mut removed = 0;
        let mut held: std::collections::HashMap<String, Option<u64>> = Default::default();
        for info in self.backend.list(Kind::Journal).await? {
            let Some((id, seq)) = parse_journal_name(&info.name) else {
                continue;
            };
            let holds = match held.get(id) {
                Some(h) => *h,
                None => {
                    let h = match self.backend.get(Kind::Restore, id).await {
                        Ok(data) => format::decode::<pb::Restore>(&data)
                            .ok()
                            .map(|r| r.journal_seq),
                        Err(backend::BackendError::NotFound { .. }) => Some(u64::MAX),
                        Err(e) => return Err(e.into()),
                    };
                    held.insert(id.to_string(), h);
                    h
                }
            };
            // An unreadable record: its batches may be all that is left of it; kept.
            if holds.is_some_and(|h| seq <= h) {
                self.backend.delete(Kind::Journal, &info.name).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The journal batches of `restore` in the bank, as (seq, file name), in order.
    async fn journal_names(&self, restore: &RestoreId) -> Result<Vec<(u64, String)>, BankError> {
        let mut out: Vec<(u64, String)> = self
            .backend
            .list(Kind::Journal)
            .await?
            .into_iter()
            .filter_map(|info| match parse_journal_name(&info.name) {
                Some((id, seq)) if id == restore.as_str() => Some((seq, info.name)),
                _ => None,
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Reads a restore record, with the journal batches written since it was last
    /// written whole folded in.
    pub async fn restore(&self, id: &RestoreId) -> Result<RestoreRecord, BankError> {
        let names = self.journal_names(id).await?;
        self.read_restore(id, names)
            .await?
            .map_err(|(file, reason)| BankError::Corrupt {
                location: self.location(),
                subject: format!("{file} ({})", file.describe()),
                reason,
            })
    }

    /// Reads restore `id` with the journal batches `journal` (sorted): the inner `Err` names
    /// the damaged file and how.
    async fn read_restore(
        &self,
        id: &RestoreId,
        journal: Vec<(u64, String)>,
    ) -> Result<Result<RestoreRecord, (BankFile, String)>, BankError> {
        let mut record = match self.backend.get(Kind::Restore, id.as_str()).await {
            Ok(data) => match format::decode::<pb::Restore>(&data) {
                Ok(r) => RestoreRecord::from(r),
                Err(e) => {
                    return Ok(Err((
                        BankFile::new(Kind::Restore, id.to_string()),
                        e.to_string(),
                    )))
                }
            },
            Err(backend::BackendError::NotFound { .. }) => {
                return Err(BankError::RestoreNotFound {
                    id: id.to_string(),
                    location: self.location(),
                })
            }
            Err(e) => return Err(e.into()),
        };
        let mut batches = Vec::new();
        for (seq, name) in journal {
            if seq <= record.journal_seq {
                continue;
            }
            let data = match self.backend.get(Kind::Journal, &name).await {
                Ok(data) => data,
                // Compacted meanwhile: the record read above is older; read both again.
                Err(backend::BackendError::NotFound { .. }) => {
                    let names = self.journal_names(id).await?;
                    return Box::pin(self.read_restore(id, names)).await;
                }
                Err(e) => return Err(e.into()),
            };
            let file = BankFile::new(Kind::Journal, name);
            match format::decode::<pb::RestoreJournal>(&data) {
                Ok(batch) if batch.restore_id == id.as_str() && batch.seq == seq => {
                    batches.push(JournalBatch::from(batch))
                }
                Ok(batch) => {
                    let reason = format!(
                        "holds batch {} of restore {:?}",
                        batch.seq, batch.restore_id
                    );
                    return Ok(Err((file, reason)));
                }
                Err(e) => return Ok(Err((file, e.to_string()))),
            }
        }
        record.apply(batches);
        Ok(Ok(record))
    }

    /// Every restore record, oldest first; a file under `restores/` that cannot be read is
    /// left out with a warning naming it ([`Bank::restore_records`] returns them).
    pub async fn restores(&self) -> Result<Vec<RestoreRecord>, BankError> {
        let (restores, problems) = self.restore_records().await?;
        for p in problems {
            tracing::warn!("bank {}: {}: {}", self.location(), p.subject, p.reason);
        }
        Ok(restores)
    }

    /// Every restore record, oldest first, and the files under `restores/` that cannot be
    /// read (named, not hidden).
    pub async fn restore_records(&self) -> Result<(Vec<RestoreRecord>, Vec<Problem>), BankError> {
        let mut out = Vec::new();
        let mut problems = Vec::new();
        let mut journals: std::collections::HashMap<String, Vec<(u64, String)>> =
            Default::default();
        for info in self.backend.list(Kind::Journal).await? {
            match parse_journal_name(&info.name) {
                Some((id, seq)) => journals
                    .entry(id.to_string())
                    .or_default()
                    .push((seq, info.name)),
                None => problems.push(Problem::file(
                    BankFile::new(Kind::Journal, info.name),
                    "not a restore journal batch's name",
                    Vec::new(),
                )),
            }
        }
        for info in self.backend.list(Kind::Restore).await? {
            let Ok(id) = info.name.parse::<RestoreId>() else {
                problems.push(Problem::file(
                    BankFile::new(Kind::Restore, info.name),
                    "not a restore record's name",
                    Vec::new(),
                ));
                continue;
            };
            let mut journal = journals.remove(id.as_str()).unwrap_or_default();
            journal.sort();
            match self.read_restore(&id, journal).await {
                Ok(Ok(r)) => out.push(r),
                Ok(Err((file, reason))) => problems.push(Problem::file(file, reason, Vec::new())),
                Err(BankError::RestoreNotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok((out, problems))
    }
}

/// The file name of batch `seq` of `restore`'s journal.
fn journal_name(restore: &RestoreId, seq: u64) -> String {
    format!("{restore}.{seq:08}")
}

/// (restore id, seq) of a journal batch's file name.
fn parse_journal_name(name: &str) -> Option<(&str, u64)> {
    let (id, seq) = name.rsplit_once('.')?;
    id.parse::<RestoreId>().ok()?;
    Some((id, seq.parse().ok()?))
}
