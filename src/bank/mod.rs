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
//!
//! Parts of [`Bank`]: `open` (config, format version, key check), `objects` (the index
//! and reading one object), `batch` (reading many objects by pack), `records` (manifests, tables, restore records); `writer`
//! writes a checkpoint, `maintenance` is verify, gc, repair and stats. Below them:
//! [`backend`] (the one storage trait, its implementations and decorators), [`format`](mod@format)
//! (the stored encodings), [`index`], [`lock`]; `convert` turns the stored records into
//! [`crate::model`] types at the bank's edge, so that nothing above the bank reads
//! [`pb`].
//!
//! Must not touch: etcd, the codec, Cinder, the API server, or anything above (protection,
//! engine, fronts).

pub mod backend;
mod batch;
mod brief;
mod convert;
mod error;
mod file;
pub mod format;
pub mod index;
mod karbor_records;
pub mod lock;
mod maintenance;
mod objects;
mod open;
mod plans;
mod records;
mod scheduled_operations;
mod triggers;
mod writer;

use std::sync::Arc;

use tokio::sync::RwLock;

pub use crate::model::{CheckpointId, ObjectId};
pub use backend::{Backend, BankKey, Kind, RequestCounts};
pub use batch::{ObjectRead, MERGE_GAP, PACKS_AT_ONCE};
pub use error::BankError;
pub use file::{BankFile, DamagedFile};
pub(crate) use format::pb;
pub use index::Index;
pub use maintenance::{GcReport, Problem, RepairReport, Stats, VerifyReport};
pub use writer::{CheckpointDraft, CheckpointWriter, WriterOptions};

use objects::checked;

/// Most resources per [`pb::ResourceTable`] object (8 on average).
pub const RESOURCES_PER_TABLE: usize = 64;

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
    /// The counters of every request the bank makes of its backend.
    requests: Arc<backend::RequestCounter>,
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
    /// The backend (with the encryption decorator, if the bank is encrypted).
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The requests this open bank has made of its backend so far, and the bytes they read
    /// (as stored). What one command cost: a snapshot before it, [`RequestCounts::since`]
    /// after; on a bank shared by concurrent commands (the agent's), that includes what the
    /// others asked meanwhile.
    pub fn requests(&self) -> RequestCounts {
        self.requests.counts()
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
