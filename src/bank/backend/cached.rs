//! A per-command cache of the bank's small records: checkpoint manifests and index files
//! that one command reads more than once (a command that names a checkpoint reads its
//! manifest, then the restore it starts reads it again; `bank verify` reloads the index
//! files that opening the bank has just read) are fetched once per command.
//!
//! The cache lives in a scope ([`scoped`]), not in the bank: a command runs inside one
//! (the engine's commands, [`crate::protection::restore`], [`crate::bank::Bank::verify`]
//! open one when they are not in one already), and everything cached is dropped when the
//! scope ends. A long-running agent so never answers one command with what another read:
//! each command sees the bank as it was when it first read each record. Outside a scope,
//! [`CachedBackend`] passes every request on.
//!
//! Correct under the process's own writes: a put or a delete of a path through any
//! [`CachedBackend`] forgets that path in the scope's cache (the next read fetches it).
//! Other processes' writes during a command are not seen by that command's later reads
//! of a record it already read: the command works on one reading of each record.
//!
//! Bounded: at most [`MAX_BYTES`] of records are held per scope (the plain bytes, after
//! decryption); a record that does not fit is read and returned, not kept. Only the kinds of
//! [`cached_kind`] are kept (packs, locks, restore records and journals never are).
//!
//! Must not touch: what is stored, or what a read answers (a hit answers the bytes the same
//! read answered earlier in the same command).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;

use super::{Backend, BackendError, Kind, ObjectInfo};

/// The most bytes of records one scope keeps.
pub const MAX_BYTES: usize = 64 << 20;

/// Whether records of `kind` are kept: manifests (read by name, rewritten only whole) and
/// index files (random names never given twice, so a name's content never changes).
pub fn cached_kind(kind: Kind) -> bool {
    matches!(kind, Kind::Checkpoint | Kind::Index)
}

/// (bank location, kind, name).
type Key = (String, Kind, String);

/// The records one scope has read.
#[derive(Debug, Default)]
struct Records {
    map: HashMap<Key, Bytes>,
    bytes: usize,
}

/// The cache of one scope.
#[derive(Debug, Default)]
pub struct RecordCache(Mutex<Records>);

impl RecordCache {
    fn get(&self, key: &Key) -> Option<Bytes> {
        self.0.lock().ok()?.map.get(key).cloned()
    }

    fn insert(&self, key: Key, data: Bytes) {
        let Ok(mut records) = self.0.lock() else {
            return;
        };
        let old = records.map.get(&key).map_or(0, Bytes::len);
        let bytes = records.bytes - old + data.len();
        if bytes > MAX_BYTES {
            return;
        }
        records.bytes = bytes;
        records.map.insert(key, data);
    }

    fn forget(&self, key: &Key) {
        if let Ok(mut records) = self.0.lock() {
            if let Some(old) = records.map.remove(key) {
                records.bytes -= old.len();
            }
        }
    }

    /// Records held, and their bytes.
    pub fn held(&self) -> (usize, usize) {
        self.0
            .lock()
            .map_or((0, 0), |records| (records.map.len(), records.bytes))
    }
}

tokio::task_local! {
    static SCOPE: Arc<RecordCache>;
}

/// Runs `work` with a record cache: a new one, unless it runs inside a scope already (then
/// that one's). Futures spawned as tasks from `work` are outside it.
pub async fn scoped<F: Future>(work: F) -> F::Output {
    if SCOPE.try_with(|_| ()).is_ok() {
        work.await
    } else {
        SCOPE.scope(Arc::default(), work).await
    }
}

/// The cache of the scope the caller runs in, if any.
pub fn current() -> Option<Arc<RecordCache>> {
    SCOPE.try_with(Arc::clone).ok()
}

/// A backend that answers reads of the small records from the scope's cache, and makes the
/// scope forget what is written or deleted through it.
#[derive(Debug)]
pub struct CachedBackend {
    inner: Arc<dyn Backend>,
    /// Whether reads are cached (`false`: a backend whose bytes differ from the cached
    /// ones, the raw one under the encryption; it only makes writes forget).
    reads: bool,
}

impl CachedBackend {
    /// Caches the reads of `inner` (`reads`), and forgets what is written through it.
    pub fn new(inner: Arc<dyn Backend>, reads: bool) -> Self {
        Self { inner, reads }
    }

    fn key(&self, kind: Kind, name: &str) -> Key {
        (self.inner.location(), kind, name.to_string())
    }

    fn forget(&self, kind: Kind, name: &str) {
        if let Some(cache) = current() {
            cache.forget(&self.key(kind, name));
        }
    }
}

#[async_trait]
impl Backend for CachedBackend {
    fn location(&self) -> String {
        self.inner.location()
    }

    async fn put(&self, kind: Kind, name: &str, data: Bytes) -> Result<(), BackendError> {
        // Forgotten before and after: a read racing the write cannot leave the old bytes.
        self.forget(kind, name);
        let written = self.inner.put(kind, name, data).await;
        self.forget(kind, name);
        written
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<Bytes, BackendError> {
        let cache = match current() {
            Some(cache) if self.reads && cached_kind(kind) => cache,
            _ => return self.inner.get(kind, name).await,
        };
        let key = self.key(kind, name);
        if let Some(data) = cache.get(&key) {
            return Ok(data);
        }
        let data = self.inner.get(kind, name).await?;
        cache.insert(key, data.clone());
        Ok(data)
    }

    async fn get_range(
        &self,
        kind: Kind,
        name: &str,
        offset: u64,
        length: u64,
    ) -> Result<Bytes, BackendError> {
        self.inner.get_range(kind, name, offset, length).await
    }

    async fn list(&self, kind: Kind) -> Result<Vec<ObjectInfo>, BackendError> {
        self.inner.list(kind).await
    }

    async fn delete(&self, kind: Kind, name: &str) -> Result<(), BackendError> {
        self.forget(kind, name);
        let deleted = self.inner.delete(kind, name).await;
        self.forget(kind, name);
        deleted
    }

    async fn remove_leftovers(
        &self,
        older_than: std::time::Duration,
    ) -> Result<usize, BackendError> {
        self.inner.remove_leftovers(older_than).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bank::backend::{CountedBackend, LocalBackend};

    async fn setup() -> (
        tempfile::TempDir,
        CachedBackend,
        Arc<crate::bank::backend::RequestCounter>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let local: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.path()).unwrap());
        let counted = CountedBackend::new(local);
        let counter = counted.counter();
        (dir, CachedBackend::new(Arc::new(counted), true), counter)
    }

    #[tokio::test]
    async fn a_record_is_read_once_per_scope_and_forgotten_when_written() {
        let (_dir, cached, counter) = setup().await;
        cached
            .put(Kind::Checkpoint, "c", Bytes::from_static(b"one"))
            .await
            .unwrap();
        scoped(async {
            assert_eq!(cached.get(Kind::Checkpoint, "c").await.unwrap(), "one");
            assert_eq!(cached.get(Kind::Checkpoint, "c").await.unwrap(), "one");
            assert_eq!(counter.counts().gets, 1);
            // Nested: the same scope.
            scoped(async { cached.get(Kind::Checkpoint, "c").await.unwrap() }).await;
            assert_eq!(counter.counts().gets, 1);
            cached
                .put(Kind::Checkpoint, "c", Bytes::from_static(b"two"))
                .await
                .unwrap();
            assert_eq!(cached.get(Kind::Checkpoint, "c").await.unwrap(), "two");
            assert_eq!(counter.counts().gets, 2);
            cached.delete(Kind::Checkpoint, "c").await.unwrap();
            assert!(cached.get(Kind::Checkpoint, "c").await.is_err());
            // Not cached: packs.
            cached
                .put(Kind::Pack, "p", Bytes::from_static(b"pack"))
                .await
                .unwrap();
            cached.get(Kind::Pack, "p").await.unwrap();
            cached.get(Kind::Pack, "p").await.unwrap();
            assert_eq!(counter.counts().gets, 5);
        })
        .await;
        // A new scope reads again; outside one, every read goes through.
        cached
            .put(Kind::Index, "i", Bytes::from_static(b"index"))
            .await
            .unwrap();
        let before = counter.counts().gets;
        scoped(async { cached.get(Kind::Index, "i").await.unwrap() }).await;
        scoped(async { cached.get(Kind::Index, "i").await.unwrap() }).await;
        cached.get(Kind::Index, "i").await.unwrap();
        cached.get(Kind::Index, "i").await.unwrap();
        assert_eq!(counter.counts().gets - before, 4);
    }

    #[tokio::test]
    async fn the_cache_keeps_at_most_its_bound() {
        let (_dir, cached, counter) = setup().await;
        let big = Bytes::from(vec![7u8; MAX_BYTES / 2 + 1]);
        cached.put(Kind::Index, "a", big.clone()).await.unwrap();
        cached.put(Kind::Index, "b", big).await.unwrap();
        scoped(async {
            for _ in 0..2 {
                cached.get(Kind::Index, "a").await.unwrap();
                cached.get(Kind::Index, "b").await.unwrap();
            }
            // `a` kept, `b` did not fit: read each time.
            assert_eq!(counter.counts().gets, 3);
            let (records, bytes) = current().unwrap().held();
            assert_eq!(records, 1);
            assert!(bytes <= MAX_BYTES);
        })
        .await;
    }
}
