//! The bank: where podbank keeps checkpoints. Content-addressed, packed, zstd-compressed,
//! sha256-verified, crash-safe.
//!
//! Owns the bank's layout and rules; knows nothing of etcd, Kubernetes or Cinder beyond the
//! records of `proto/bank.proto`.
//!
//! * An object's id is the sha256 of its plain bytes ([`ObjectId`]). Objects are compressed
//!   one by one (a zstd frame each) and appended to packs of a few MiB; index files map
//!   id -> (pack, offset, length). An object already in the bank is not written again.
//! * Order of writes, which is what makes a crash harmless: packs, then the index naming
//!   them, then the checkpoint's manifest. The manifest is one atomic put: until it exists
//!   the checkpoint does not; afterwards everything it needs is there. Leftovers of a crash
//!   (packs and indexes no manifest needs) are removed by [`Bank::gc`].
//! * Every read re-hashes the plain bytes and fails with [`BankError::Corrupt`] on mismatch;
//!   every record (manifest, index, restore, lock, config) carries a checksum of its own
//!   ([`format`]), checked on every read.
//! * A file that cannot be read never takes the whole bank down: what does not need it goes
//!   on (with a warning naming it), `verify` reports it, and [`Bank::repair`] moves it into
//!   `quarantine/` and rebuilds what the packs still say.
//! * Writers and gc coordinate through lock objects ([`lock`]).

pub mod backend;
mod brief;
mod convert;
mod error;
mod file;
pub mod format;
pub mod index;
pub mod lock;
mod maintenance;
mod writer;

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use prost::Message;
use tokio::sync::RwLock;

use crate::model::{
    Checkpoint, CheckpointSummary, ResourceRecord, RestoreId, RestoreRecord, VolumeRecord,
};
pub use crate::model::{CheckpointId, ObjectId};
pub use backend::{Backend, BankKey, Kind};
use brief::CheckpointBrief;
use brief::Manifest;
pub use error::BankError;
pub use file::{BankFile, DamagedFile};
pub use format::pb;
pub use index::Index;
pub use maintenance::{GcReport, Problem, RepairReport, Stats, VerifyReport};
pub use writer::{CheckpointDraft, CheckpointWriter, WriterOptions};

use format::now_ms;

/// Most resources per [`pb::ResourceTable`] object (8 on average).
pub const RESOURCES_PER_TABLE: usize = 64;

/// Text sealed in the config to check a key.
const KEY_CHECK: &[u8] = b"podbank bank key check v1";

/// How to open a bank.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// The bank key, for an encrypted bank (or to create one).
    pub key: Option<BankKey>,
    /// Create the bank if there is none at the location.
    pub create: bool,
    /// Pack size target for new packs (default 4 MiB).
    pub pack_target_bytes: Option<u32>,
}

/// An open bank.
#[derive(Debug)]
pub struct Bank {
    /// The backend, with the encryption decorator if the bank is encrypted.
    backend: Arc<dyn Backend>,
    /// The backend as it is, for moving unreadable files aside byte for byte.
    raw: Arc<dyn Backend>,
    config: pb::BankConfig,
    /// Whether the config was rewritten in this podbank's format ([`Bank::upgrade_format`]).
    upgraded: std::sync::atomic::AtomicBool,
    index: RwLock<LoadedIndex>,
}

/// The index as last loaded, and the index files that could not be read.
#[derive(Debug, Clone, Default)]
struct LoadedIndex {
    index: Arc<Index>,
    damaged: Arc<Vec<DamagedFile>>,
}

impl Bank {
    /// Opens the bank on `backend` (creating it if `options.create` and there is none),
    /// checks the key and loads the index.
    pub async fn open(
        backend: Arc<dyn Backend>,
        options: OpenOptions,
    ) -> Result<Arc<Self>, BankError> {
        let location = backend.location();
        let raw = backend.clone();
        let config = match backend.get(Kind::Config, "config").await {
            Ok(data) => format::decode_config(&data).map_err(|e| BankError::BadConfig {
                location: location.clone(),
                reason: format!("the config object is not a readable podbank bank config: {e}"),
            })?,
            Err(backend::BackendError::NotFound { .. }) if options.create => {
                let config = Self::new_config(&options);
                backend
                    .put(Kind::Config, "config", format::encode_config(&config))
                    .await?;
                config
            }
            Err(backend::BackendError::NotFound { .. }) => {
                return Err(BankError::NotABank { location });
            }
            Err(e) => return Err(e.into()),
        };
        if !(format::OLDEST_FORMAT_VERSION..=format::FORMAT_VERSION).contains(&config.version) {
            return Err(BankError::BadConfig {
                location,
                reason: format!(
                    "bank format version {} is not supported (this podbank reads versions {} to {})",
                    config.version,
                    format::OLDEST_FORMAT_VERSION,
                    format::FORMAT_VERSION
                ),
            });
        }
        let backend: Arc<dyn Backend> = match (&options.key, config.encrypted) {
            (None, true) => {
                return Err(BankError::Key {
                    location,
                    reason: "the bank is encrypted: pass its key with --bank-key-file".into(),
                });
            }
            (Some(_), false) => {
                return Err(BankError::Key {
                    location,
                    reason: "a key was given but the bank is not encrypted; drop --bank-key-file"
                        .into(),
                });
            }
            (Some(key), true) => {
                if key
                    .open(config.bank_id.as_bytes(), &config.key_check)
                    .as_deref()
                    != Some(KEY_CHECK)
                {
                    return Err(BankError::Key {
                        location,
                        reason: "the key given with --bank-key-file does not open this bank".into(),
                    });
                }
                Arc::new(backend::CryptBackend::new(backend, key.clone()))
            }
            (None, false) => backend,
        };
        let bank = Arc::new(Self {
            backend,
            raw,
            config,
            upgraded: std::sync::atomic::AtomicBool::new(false),
            index: RwLock::new(LoadedIndex::default()),
        });
        bank.reload_index().await?;
        Ok(bank)
    }

    fn new_config(options: &OpenOptions) -> pb::BankConfig {
        let bank_id = hex::encode(rand::random::<[u8; 16]>());
        let key_check = options
            .key
            .as_ref()
            .map(|k| k.seal(bank_id.as_bytes(), KEY_CHECK))
            .unwrap_or_default();
        pb::BankConfig {
            version: format::FORMAT_VERSION,
            encrypted: options.key.is_some(),
            key_check: key_check.into(),
            created_unix_ms: now_ms(),
            pack_target_bytes: options.pack_target_bytes.unwrap_or(4 << 20),
            bank_id,
            checksum: Bytes::new(),
        }
    }

    /// Before the first write to a bank of an older format: writes its config with this
    /// podbank's format version, so that an older podbank refuses the bank (naming the
    /// version) rather than misreading what is written now. Done once per open bank.
    async fn upgrade_format(&self) -> Result<(), BankError> {
        if self.config.version >= format::FORMAT_VERSION
            || self
                .upgraded
                .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return Ok(());
        }
        let config = pb::BankConfig {
            version: format::FORMAT_VERSION,
            ..self.config.clone()
        };
        let written = self
            .backend
            .put(Kind::Config, "config", format::encode_config(&config))
            .await;
        if written.is_err() {
            self.upgraded
                .store(false, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(written?)
    }

    /// The backend (with the encryption decorator, if the bank is encrypted).
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Where the bank is.
    pub fn location(&self) -> String {
        self.backend.location()
    }

    /// Whether the bank encrypts everything it stores.
    pub fn encrypted(&self) -> bool {
        self.config.encrypted
    }

    /// The bank's config.
    pub fn config(&self) -> &pb::BankConfig {
        &self.config
    }

    /// The current index.
    pub async fn index(&self) -> Arc<Index> {
        self.index.read().await.index.clone()
    }

    /// The index files that could not be read at the last load: their objects are missing
    /// from [`Bank::index`] until `bank repair` rebuilds them from the packs.
    pub async fn damaged_index_files(&self) -> Arc<Vec<DamagedFile>> {
        self.index.read().await.damaged.clone()
    }

    /// Reloads every index file from the backend. An index file that cannot be read is
    /// left out with a warning naming it (and kept in [`Bank::damaged_index_files`]): reads
    /// and writes go on (a writer stores again what it names), while gc refuses to run
    /// until `bank repair` has rebuilt it.
    pub async fn reload_index(&self) -> Result<(), BankError> {
        let names = self.backend.list(Kind::Index).await?;
        let backend = self.backend.clone();
        let files = futures::stream::iter(names)
            .map(|info| {
                let backend = backend.clone();
                async move {
                    let data = backend.get(Kind::Index, &info.name).await;
                    (info.name, data)
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
        let mut decoded = Vec::with_capacity(files.len());
        let mut damaged = Vec::new();
        for (name, data) in files {
            let reason = match data {
                Ok(data) => match format::decode::<pb::IndexFile>(&data) {
                    Ok(file) => {
                        decoded.push((name, file));
                        continue;
                    }
                    Err(e) => e.to_string(),
                },
                Err(backend::BackendError::NotFound { .. }) => continue, // removed by gc meanwhile
                Err(e @ backend::BackendError::Io { .. }) if is_sealing_error(&e) => e.to_string(),
                Err(e) => return Err(e.into()),
            };
            let file = DamagedFile {
                file: BankFile::new(Kind::Index, name),
                reason,
            };
            tracing::warn!(
                "bank {}: {file}; its objects are left out (`podbank bank repair` rebuilds it from the packs)",
                self.location()
            );
            damaged.push(file);
        }
        damaged.sort_by(|a, b| a.file.cmp(&b.file));
        // Every index file counts (formats 1 and 2 wrote `supersedes`; see bank.proto).
        let mut index = Index::default();
        for problem in index.add_files(decoded.iter().map(|(name, file)| (name.as_str(), file))) {
            tracing::warn!("{problem}");
        }
        drop(decoded);
        *self.index.write().await = LoadedIndex {
            index: Arc::new(index),
            damaged: Arc::new(damaged),
        };
        Ok(())
    }

    /// Adds a just-written index file to the in-memory index: in place, unless a reader
    /// still holds the current one (then it keeps its copy and the bank gets a new one).
    async fn merge_index(&self, name: &str, file: &pb::IndexFile) {
        let mut guard = self.index.write().await;
        Arc::make_mut(&mut guard.index).add_file(name, file);
    }

    /// Reads one object: fetches its frame, decompresses it and checks its hash.
    ///
    /// # Arguments
    /// * `id` - the object.
    /// * `needed_by` - what needs it (a checkpoint id), for the error message.
    pub async fn read_object(
        &self,
        id: &ObjectId,
        needed_by: impl std::fmt::Display,
    ) -> Result<Bytes, BankError> {
        let location = self
            .index()
            .await
            .get(id)
            .ok_or_else(|| BankError::ObjectMissing {
                location: self.location(),
                id: id.to_hex(),
                needed_by: needed_by.to_string(),
            })?;
        let frame = self
            .backend
            .get_range(
                Kind::Pack,
                &location.pack,
                location.offset,
                u64::from(location.length),
            )
            .await
            .map_err(|e| match e {
                backend::BackendError::NotFound { .. } => BankError::Corrupt {
                    location: self.location(),
                    subject: format!("object {id} (needed by {needed_by})"),
                    reason: format!("its pack data/{} is missing", location.pack),
                },
                other => BankError::Corrupt {
                    location: self.location(),
                    subject: format!("object {id} (needed by {needed_by})"),
                    reason: format!("cannot read it from pack data/{}: {other}", location.pack),
                },
            })?;
        format::open_frame(&frame, location.offset_in_frame, location.plain_length)
            .map_err(|e| e.to_string())
            .and_then(|object| checked(id, object))
            .map_err(|reason| BankError::Corrupt {
                location: self.location(),
                subject: format!(
                    "object {id} in pack data/{} (needed by {needed_by})",
                    location.pack
                ),
                reason,
            })
    }

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
        for id in &checkpoint.tables.resources {
            out.extend(self.resource_table(checkpoint, id).await?);
        }
        Ok(out)
    }

    /// One resource table of a checkpoint.
    pub(crate) async fn resource_table(
        &self,
        checkpoint: &Checkpoint,
        id: &ObjectId,
    ) -> Result<Vec<ResourceRecord>, BankError> {
        let table: pb::ResourceTable = self.table(checkpoint, id, "resource table").await?;
        Ok(table.resources.into_iter().map(Into::into).collect())
    }

    /// Every volume record of a checkpoint: the manifest's (its Cinder volumes), then
    /// those of its volume tables (pod volumes that are not Cinder volumes).
    pub async fn volume_records(
        &self,
        checkpoint: &Checkpoint,
    ) -> Result<Vec<VolumeRecord>, BankError> {
        let mut out = checkpoint.volumes.clone();
        for id in &checkpoint.tables.volumes {
            let table: pb::VolumeTable = self.table(checkpoint, id, "volume table").await?;
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
        M::decode(data.as_ref()).map_err(|e| BankError::Corrupt {
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

    /// Removes a checkpoint's manifest; its data goes at the next gc.
    pub async fn remove_checkpoint(&self, id: &CheckpointId) -> Result<(), BankError> {
        self.backend.delete(Kind::Checkpoint, id.as_str()).await?;
        Ok(())
    }

    /// Writes a restore record.
    pub async fn put_restore(&self, restore: &RestoreRecord) -> Result<(), BankError> {
        let record = pb::Restore::from(restore);
        self.backend
            .put(Kind::Restore, &record.id, format::encode(&record)?)
            .await?;
        Ok(())
    }

    /// Reads a restore record.
    pub async fn restore(&self, id: &RestoreId) -> Result<RestoreRecord, BankError> {
        match self.backend.get(Kind::Restore, id.as_str()).await {
            Ok(data) => format::decode::<pb::Restore>(&data)
                .map(RestoreRecord::from)
                .map_err(|e| BankError::Corrupt {
                    location: self.location(),
                    subject: format!("restores/{id} (restore record {id})"),
                    reason: e.to_string(),
                }),
            Err(backend::BackendError::NotFound { .. }) => Err(BankError::RestoreNotFound {
                id: id.to_string(),
                location: self.location(),
            }),
            Err(e) => Err(e.into()),
        }
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
        for info in self.backend.list(Kind::Restore).await? {
            let Ok(id) = info.name.parse::<RestoreId>() else {
                problems.push(Problem::file(
                    BankFile::new(Kind::Restore, info.name),
                    "not a restore record's name",
                    Vec::new(),
                ));
                continue;
            };
            match self.restore(&id).await {
                Ok(r) => out.push(r),
                Err(BankError::RestoreNotFound { .. }) => {}
                Err(BankError::Corrupt { reason, .. }) => problems.push(Problem::file(
                    BankFile::new(Kind::Restore, info.name),
                    reason,
                    Vec::new(),
                )),
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok((out, problems))
    }
}

/// A new index file's name: random, never derived from content. A name taken from the
/// content could come back (the same packs written again after a gc removed them) and stand
/// for a file that a reader had been told to ignore; a random name is never given twice.
fn new_index_name() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Whether a backend error says the stored bytes could not be opened (a decorator's
/// authentication failure): damage of the file, not a failure of the store.
fn is_sealing_error(e: &backend::BackendError) -> bool {
    matches!(e, backend::BackendError::Io { op: "decrypt", .. })
}

/// Checks that `object` is the object `id` names.
fn checked(id: &ObjectId, object: Bytes) -> Result<Bytes, String> {
    let actual = ObjectId::of(&object);
    if &actual != id {
        return Err(format!(
            "content hash mismatch (content hashes to {})",
            actual.short()
        ));
    }
    Ok(object)
}
