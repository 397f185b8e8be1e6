//! Writing a checkpoint: objects into packs, then the index, then the manifest.
//!
//! The caller (protect) drives: [`Bank::begin_checkpoint`] takes a writer lock,
//! [`CheckpointWriter::add_objects`] is fed page by page as etcd is scanned (hashing and
//! compression run on the blocking pool while the next page is being fetched),
//! [`CheckpointWriter::add_resource`] records what each object is, the volume records are
//! kept up to date with [`CheckpointWriter::save_progress`] as Cinder backups are created,
//! and [`CheckpointWriter::commit`] makes the checkpoint visible in one put. Dropping the
//! writer without committing leaves no checkpoint: only packs that gc removes.
//!
//! Parts: `pack` compresses objects into frames and packs (no I/O), `tables` groups the
//! resource and volume records into table objects; this file holds the protocol: dedup,
//! the background compression, the order of puts, the lock.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::backend::Kind;
use super::format::{self, pb};
use super::lock::{self, LockGuard};
use super::{Bank, BankError, CheckpointId, ObjectId};
use crate::model::{
    Checkpoint, CheckpointStatus, ClusterRecord, ResourceRecord, SelectionRecord, VolumeRecord,
};
use pack::{Compressed, PackState, SealedPack};
use tables::Tables;

mod pack;
mod tables;

/// Packs named by one index file: a writer writes an index file after this many packs
/// (~8 MiB of packs, some 60 000 small objects), so that it never holds the entries of a
/// whole checkpoint.
const PACKS_PER_INDEX: usize = 2;

/// What a new checkpoint is, before anything is read.
#[derive(Debug, Clone, Default)]
pub struct CheckpointDraft {
    /// Its id.
    pub id: Option<CheckpointId>,
    /// Karbor's `backup_name`.
    pub backup_name: String,
    /// Karbor's `description`.
    pub description: String,
    /// The selection asked for.
    pub selection: SelectionRecord,
    /// Which cluster.
    pub cluster: ClusterRecord,
    /// The agent plan that made it, if any.
    pub plan: String,
    /// The protect parameters as given (JSON).
    pub options_json: String,
    /// The Karbor project asking (empty: none).
    pub project_id: String,
}

/// Tuning of a writer.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Lease length of the writer lock.
    pub lock_ttl: Duration,
    /// How long to wait for a gc in progress to finish.
    pub lock_wait: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            lock_ttl: lock::DEFAULT_TTL,
            lock_wait: Duration::from_secs(120),
        }
    }
}

/// A checkpoint being written. See the module doc for the protocol.
#[derive(Debug)]
pub struct CheckpointWriter {
    bank: Arc<Bank>,
    lock: Option<LockGuard>,
    state: Option<PackState>,
    /// Compression of the previous batch, running on the blocking pool while the caller
    /// reads and decodes the next one.
    pending: Option<tokio::task::JoinHandle<(PackState, Result<Compressed, BankError>)>>,
    /// New objects not yet named by an index file (the bank's index covers the others).
    seen: HashSet<ObjectId>,
    /// Packs put since the last index file.
    written: Vec<pb::IndexPack>,
    /// The resource records, in tables.
    resources: Tables<pb::Resource>,
    /// The volume records kept outside the manifest, in tables.
    volumes: Tables<pb::Volume>,
    checkpoint: Checkpoint,
    started: Instant,
}

impl Bank {
    /// Starts a checkpoint: takes a writer lock (waiting for a gc in progress) and
    /// snapshots the index for dedup.
    pub async fn begin_checkpoint(
        self: &Arc<Self>,
        draft: CheckpointDraft,
        options: WriterOptions,
    ) -> Result<CheckpointWriter, BankError> {
        let id = draft.id.unwrap_or_else(CheckpointId::generate);
        let lock = LockGuard::acquire(
            self.backend.clone(),
            false,
            format!("checkpoint {id}"),
            options.lock_ttl,
            options.lock_wait,
        )
        .await?;
        self.upgrade_format().await?;
        // The index may have grown since the bank was opened (another writer).
        self.reload_index().await?;
        let checkpoint = Checkpoint {
            backup_name: draft.backup_name,
            description: draft.description,
            cluster: draft.cluster,
            selection: draft.selection,
            plan: draft.plan,
            options_json: draft.options_json,
            project_id: draft.project_id,
            ..Checkpoint::new(id, chrono::Utc::now())
        };
        lock.save_partial(pb::Checkpoint::from(&checkpoint)).await?;
        let target = self.pack_target();
        Ok(CheckpointWriter {
            pending: None,
            seen: HashSet::new(),
            state: Some(PackState::new(target)?),
            bank: self.clone(),
            lock: Some(lock),
            written: Vec::new(),
            resources: Tables::new(),
            volumes: Tables::new(),
            checkpoint,
            started: Instant::now(),
        })
    }
}

impl CheckpointWriter {
    /// The checkpoint's id.
    pub fn id(&self) -> &CheckpointId {
        &self.checkpoint.id
    }

    /// The checkpoint as it stands (status `protecting` until committed).
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Mutable access to the manifest being built (revision, volumes, cluster, pods).
    pub fn checkpoint_mut(&mut self) -> &mut Checkpoint {
        &mut self.checkpoint
    }

    /// Stores objects (plain bytes); returns their ids in order. Objects already in the
    /// bank, or added before by this writer, cost nothing.
    pub async fn add_objects(&mut self, objects: Vec<Bytes>) -> Result<Vec<ObjectId>, BankError> {
        self.store_tables().await?;
        self.store(objects, false).await
    }

    /// Stores the tables that filled up since the last call.
    async fn store_tables(&mut self) -> Result<(), BankError> {
        if !self.resources.ready.is_empty() {
            let tables = std::mem::take(&mut self.resources.ready);
            let ids = self.store(tables, true).await?;
            self.resources.ids.extend(ids);
        }
        if !self.volumes.ready.is_empty() {
            let tables = std::mem::take(&mut self.volumes.ready);
            let ids = self.store(tables, true).await?;
            self.volumes.ids.extend(ids);
        }
        Ok(())
    }

    async fn store(
        &mut self,
        objects: Vec<Bytes>,
        tables: bool,
    ) -> Result<Vec<ObjectId>, BankError> {
        // Hash and dedup here (cheap); compress in the background, one batch at a time.
        let mut ids = Vec::with_capacity(objects.len());
        let mut new = Vec::new();
        let index = self.bank.index().await;
        for plain in objects {
            let id = ObjectId::of(&plain);
            ids.push(id);
            if !index.contains(&id) && self.seen.insert(id) {
                new.push((id, plain));
            }
        }
        drop(index);
        let stats = &mut self.checkpoint.stats;
        if tables {
            stats.tables_new += new.len() as u64;
        } else {
            stats.objects_new += new.len() as u64;
        }
        self.finish_pending().await?;
        if new.is_empty() {
            return Ok(ids);
        }
        let mut state = self
            .state
            .take()
            .ok_or_else(|| BankError::Task("a previous write of this checkpoint failed".into()))?;
        self.pending = Some(tokio::task::spawn_blocking(move || {
            let compressed = state.compress(new);
            (state, compressed)
        }));
        Ok(ids)
    }

    /// Waits for the batch being compressed and puts the packs it filled.
    async fn finish_pending(&mut self) -> Result<(), BankError> {
        let Some(handle) = self.pending.take() else {
            return Ok(());
        };
        let (state, compressed) = handle.await.map_err(|e| BankError::Task(e.to_string()))?;
        // After a failed compression the writer holds no state: it cannot go on.
        let compressed = compressed?;
        self.state = Some(state);
        self.put_compressed(compressed).await
    }

    /// Counts what was compressed and puts the packs that filled up.
    async fn put_compressed(&mut self, (bytes, sealed): Compressed) -> Result<(), BankError> {
        self.checkpoint.stats.bytes_new += bytes;
        for pack in sealed {
            self.put_pack(pack).await?;
        }
        Ok(())
    }

    /// Fails if this writer's lock could not be renewed in time: it must stop writing.
    fn ensure_held(&self) -> Result<(), BankError> {
        match &self.lock {
            Some(lock) => lock.ensure_held(),
            None => Ok(()),
        }
    }

    async fn put_pack(&mut self, pack: SealedPack) -> Result<(), BankError> {
        self.ensure_held()?;
        self.bank
            .backend
            .put(Kind::Pack, &pack.name, pack.data)
            .await?;
        self.checkpoint.stats.packs_new += 1;
        self.written.push(pack.entry);
        if self.written.len() >= PACKS_PER_INDEX {
            self.write_index().await?;
        }
        Ok(())
    }

    /// Writes an index file naming the packs put since the last one, and adds it to the
    /// bank's index: from then on the bank's index, not this writer, knows those objects.
    /// A checkpoint's objects are so named by a few index files as it goes, which keeps
    /// what the writer holds small; until its manifest is written none of them is needed
    /// by a checkpoint, and gc removes them if it never is.
    async fn write_index(&mut self) -> Result<(), BankError> {
        if self.written.is_empty() {
            return Ok(());
        }
        self.ensure_held()?;
        let file = pb::IndexFile {
            packs: std::mem::take(&mut self.written),
            supersedes: Vec::new(),
        };
        let data = format::encode(&file)?;
        let name = super::new_index_name();
        self.bank.backend.put(Kind::Index, &name, data).await?;
        self.bank.merge_index(&name, &file).await;
        for id in file
            .packs
            .iter()
            .flat_map(|p| &p.entries)
            .filter_map(|e| ObjectId::from_slice(&e.id))
        {
            self.seen.remove(&id);
        }
        Ok(())
    }

    /// Records a resource (its object must have been added). Resources are grouped into
    /// tables as they come; a full table is stored with the next objects.
    pub fn add_resource(&mut self, resource: ResourceRecord) {
        let stats = &mut self.checkpoint.stats;
        stats.objects += 1;
        stats.bytes_plain += resource.size;
        self.resources.push(resource.into());
    }

    /// Records a volume in the checkpoint's volume tables, outside the manifest: for the
    /// records that delete, restore and retention never read (a pod volume with no Cinder
    /// volume, and so no backup). The Cinder volumes' records are the manifest's `volumes`
    /// ([`CheckpointWriter::checkpoint_mut`]). Tables are stored like resource tables.
    pub fn add_volume_record(&mut self, volume: VolumeRecord) {
        self.volumes.push(volume.into());
    }

    /// Forgets the resource and volume-table records so far (the etcd scan started again
    /// at a new revision). Objects and tables already stored stay: they are
    /// content-addressed, and gc removes what no checkpoint references.
    pub fn reset_records(&mut self) {
        self.resources.clear();
        self.volumes.clear();
        let stats = &mut self.checkpoint.stats;
        stats.objects = 0;
        stats.bytes_plain = 0;
    }

    /// Writes the checkpoint in progress (with its volume records) into the writer's lock,
    /// so that the Cinder backups created so far are known even if this process dies.
    pub async fn save_progress(&self) -> Result<(), BankError> {
        match &self.lock {
            Some(lock) => {
                lock.save_partial(pb::Checkpoint::from(&self.checkpoint))
                    .await
            }
            None => Ok(()),
        }
    }

    /// Makes the checkpoint visible with `status` (`available` or `error`) and `reason`:
    /// flushes the last pack, writes the resource tables, the index, then the manifest,
    /// and releases the lock. Returns the manifest written.
    pub async fn commit(
        mut self,
        status: CheckpointStatus,
        reason: String,
    ) -> Result<Checkpoint, BankError> {
        self.resources.close();
        self.volumes.close();
        self.store_tables().await?;
        self.finish_pending().await?;
        if let Some(state) = self.state.as_mut() {
            let compressed = state.finish()?;
            self.put_compressed(compressed).await?;
        }
        self.write_index().await?;
        let cp = &mut self.checkpoint;
        cp.tables.resources = std::mem::take(&mut self.resources.ids);
        cp.resource_count = self.resources.count;
        cp.tables.volumes = std::mem::take(&mut self.volumes.ids);
        cp.volume_table_count = self.volumes.count;
        cp.status = status;
        cp.reason = reason;
        cp.finished = Some(chrono::Utc::now());
        cp.stats.seconds = self.started.elapsed().as_secs_f64();
        self.ensure_held()?;
        self.bank.put_checkpoint(&self.checkpoint).await?;
        if let Some(lock) = self.lock.take() {
            lock.release().await?;
        }
        Ok(self.checkpoint)
    }

    /// Gives up without a checkpoint: releases the lock; what was stored goes at the next
    /// gc. Only for failures before anything outside the bank (a Cinder backup) was made.
    pub async fn abandon(mut self) -> Result<(), BankError> {
        if let Some(lock) = self.lock.take() {
            lock.release().await?;
        }
        Ok(())
    }
}
