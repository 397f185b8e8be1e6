//! Locks (leases) in the bank, the way restic does them: a writer or gc puts a lock object,
//! then lists the locks and backs off if a conflicting live one exists. Both sides check
//! after writing their own, so at least one of two racing processes sees the other.
//!
//! A writer's lock also carries its checkpoint in progress (status `protecting`, with the
//! Cinder backups created so far), so that a crashed writer's backups are never lost:
//! gc turns such a stale lock into an `error` checkpoint that `delete` can clean up.
//!
//! A lock is live while it is refreshed (every third of its TTL). A lock of a process on
//! this host that no longer exists is stale at once.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::Mutex;

use super::backend::{Backend, Kind};
use super::format::{self, now_ms, pb};
use super::BankError;

/// Default lease length.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// This machine's host name, for lock records.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".to_string())
}

/// Whether a lock record is still held by a live process.
pub fn is_live(lock: &pb::Lock, now: u64) -> bool {
    if lock.hostname == hostname() && lock.pid != 0 && lock.pid != std::process::id() {
        let alive = std::path::Path::new(&format!("/proc/{}", lock.pid)).exists();
        if !alive {
            return false;
        }
    }
    let ttl_ms = u64::from(lock.ttl_seconds.max(1)) * 1000;
    now.saturating_sub(lock.refreshed_unix_ms) <= ttl_ms
}

/// Describes the holder of a lock for messages.
pub fn describe(lock: &pb::Lock) -> String {
    let since =
        chrono::DateTime::from_timestamp_millis(i64::try_from(lock.created_unix_ms).unwrap_or(0))
            .map(|t| t.to_rfc3339())
            .unwrap_or_default();
    format!(
        "{} by {} pid {} since {since}",
        lock.purpose, lock.hostname, lock.pid
    )
}

/// Reads every lock; unreadable ones are returned as `Err(name)`.
pub async fn read_all(
    backend: &Arc<dyn Backend>,
) -> Result<Vec<Result<pb::Lock, String>>, BankError> {
    let names = backend.list(Kind::Lock).await?;
    let results = futures::stream::iter(names)
        .map(|info| {
            let backend = backend.clone();
            async move {
                match backend.get(Kind::Lock, &info.name).await {
                    Ok(data) => format::decode::<pb::Lock>(&data).map_err(|_| info.name),
                    Err(_) => Err(info.name),
                }
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    Ok(results)
}

/// A held lock; refreshed in the background until released.
#[derive(Debug)]
pub struct LockGuard {
    backend: Arc<dyn Backend>,
    record: Arc<Mutex<pb::Lock>>,
    refresher: tokio::task::JoinHandle<()>,
}

impl LockGuard {
    /// Takes a lock: a shared writer lock (`exclusive = false`) conflicts only with an
    /// exclusive one; an exclusive lock (gc) conflicts with every other live lock.
    pub async fn acquire(
        backend: Arc<dyn Backend>,
        exclusive: bool,
        purpose: String,
        ttl: Duration,
        wait: Duration,
    ) -> Result<Self, BankError> {
        let id = format!("{:016x}", rand::random::<u64>());
        let now = now_ms();
        let record = pb::Lock {
            id: id.clone(),
            exclusive,
            hostname: hostname(),
            pid: std::process::id(),
            created_unix_ms: now,
            refreshed_unix_ms: now,
            ttl_seconds: u32::try_from(ttl.as_secs().max(1)).unwrap_or(60),
            purpose,
            partial: None,
        };
        let deadline = tokio::time::Instant::now() + wait;
        let mut delay = Duration::from_millis(200);
        loop {
            backend
                .put(Kind::Lock, &id, format::encode(&record))
                .await?;
            let conflict = read_all(&backend)
                .await?
                .into_iter()
                .filter_map(Result::ok)
                .find(|other| {
                    other.id != id && is_live(other, now_ms()) && (exclusive || other.exclusive)
                });
            let Some(conflict) = conflict else { break };
            backend.delete(Kind::Lock, &id).await?;
            if tokio::time::Instant::now() + delay > deadline {
                return Err(BankError::Locked {
                    location: backend.location(),
                    holder: describe(&conflict),
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        let record = Arc::new(Mutex::new(record));
        let refresher = tokio::spawn(refresh_loop(backend.clone(), record.clone(), ttl / 3));
        Ok(Self {
            backend,
            record,
            refresher,
        })
    }

    /// Rewrites the lock now with `partial` as the checkpoint in progress.
    pub async fn save_partial(&self, partial: pb::Checkpoint) -> Result<(), BankError> {
        let mut record = self.record.lock().await;
        record.partial = Some(partial);
        record.refreshed_unix_ms = now_ms();
        let data = format::encode(&*record);
        self.backend.put(Kind::Lock, &record.id, data).await?;
        Ok(())
    }

    /// Releases the lock (deletes the lock object).
    pub async fn release(self) -> Result<(), BankError> {
        self.refresher.abort();
        let id = self.record.lock().await.id.clone();
        self.backend.delete(Kind::Lock, &id).await?;
        Ok(())
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // A guard dropped without `release` (error path, cancelled task) stops refreshing;
        // the lock goes stale after its TTL, or at once for processes that exited.
        self.refresher.abort();
    }
}

async fn refresh_loop(backend: Arc<dyn Backend>, record: Arc<Mutex<pb::Lock>>, every: Duration) {
    let every = every.max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(every).await;
        let (id, data) = {
            let mut r = record.lock().await;
            r.refreshed_unix_ms = now_ms();
            (r.id.clone(), format::encode(&*r))
        };
        if let Err(e) = backend.put(Kind::Lock, &id, Bytes::clone(&data)).await {
            tracing::warn!("cannot refresh bank lock {id}: {e}");
        }
    }
}
