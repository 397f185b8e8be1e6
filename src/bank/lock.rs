//! Locks (leases) in the bank, as restic does it: a lock is an object under `locks/`.
//!
//! * Writers (protect) take **shared** locks: any number at once.
//! * gc (and repair) takes an **exclusive** lock: no writer at the same time.
//!
//! Taking a lock: write it, then list the locks and back off if a conflicting live one
//! exists. Both sides check after writing their own, so at least one of two racing
//! processes sees the other. An exclusive lock that has to wait for writers stays in place,
//! marked `waiting`, while it waits: a writer that starts meanwhile sees it and waits behind
//! it, so gc is never starved and never shares the bank. Of two exclusive lockers the older
//! (creation time, then id) goes first.
//!
//! A lock is live while it is refreshed: its holder rewrites it every third of its TTL
//! (also while it waits), and a lock of a process on this host that no longer exists is
//! stale at once. A holder that cannot refresh its lock stops writing before the lease
//! runs out ([`LockGuard::ensure_held`]): nobody can have taken the bank over from it while
//! it still writes. A lock file that cannot be read is treated as a live exclusive lock of
//! an unknown holder until it is older than [`DEFAULT_TTL`] (a live holder would have
//! rewritten it by then); `verify` reports it and `bank repair` moves it aside.
//!
//! A writer's lock also carries its checkpoint in progress (status `protecting`, with the
//! Cinder backups created so far), so that a crashed writer's backups are never lost:
//! gc turns such a stale lock into an `error` checkpoint that `delete` can clean up.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use tokio::sync::Mutex;

use super::backend::{Backend, Kind};
use super::format::{self, now_ms, pb};
use super::BankError;

/// Default lease length.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// The longest lease a lock may ask for: a temporary file older than this is no live
/// writer's, and gc removes it.
pub const MAX_TTL: Duration = Duration::from_secs(600);

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
    let waiting = if lock.waiting { " (waiting)" } else { "" };
    format!(
        "{}{waiting} by {} pid {} since {since}",
        lock.purpose, lock.hostname, lock.pid
    )
}

/// One object under `locks/`.
#[derive(Debug, Clone)]
pub enum LockEntry {
    /// A lock record.
    Lock(Box<pb::Lock>),
    /// A file that is no lock record (damaged, or not podbank's).
    Unreadable {
        /// Its name under `locks/`.
        name: String,
        /// When it was last written, if the backend says.
        modified: Option<SystemTime>,
        /// Why it cannot be read.
        reason: String,
    },
}

impl LockEntry {
    /// The lock record, if readable.
    pub fn lock(&self) -> Option<&pb::Lock> {
        match self {
            LockEntry::Lock(l) => Some(l),
            LockEntry::Unreadable { .. } => None,
        }
    }

    /// Whether an unreadable file is young enough to be a live holder's lock that was
    /// damaged since its last refresh (a live holder rewrites it within its TTL).
    pub fn unreadable_and_young(&self) -> bool {
        match self {
            LockEntry::Lock(_) => false,
            LockEntry::Unreadable { modified, .. } => modified
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .is_none_or(|age| age <= DEFAULT_TTL),
        }
    }
}

/// Reads every lock.
pub async fn read_all(backend: &Arc<dyn Backend>) -> Result<Vec<LockEntry>, BankError> {
    let names = backend.list(Kind::Lock).await?;
    let results = futures::stream::iter(names)
        .map(|info| {
            let backend = backend.clone();
            async move {
                let unreadable = |reason: String| LockEntry::Unreadable {
                    name: info.name.clone(),
                    modified: info.modified,
                    reason,
                };
                match backend.get(Kind::Lock, &info.name).await {
                    Ok(data) => match format::decode::<pb::Lock>(&data) {
                        Ok(lock) if lock.id == info.name => Some(LockEntry::Lock(Box::new(lock))),
                        Ok(lock) => Some(unreadable(format!(
                            "a lock record named {:?} under another name",
                            lock.id
                        ))),
                        Err(e) => Some(unreadable(e.to_string())),
                    },
                    // Released meanwhile.
                    Err(super::backend::BackendError::NotFound { .. }) => None,
                    Err(e) => Some(unreadable(e.to_string())),
                }
            }
        })
        .buffer_unordered(16)
        .filter_map(|e| async move { e })
        .collect::<Vec<_>>()
        .await;
    Ok(results)
}

/// The live locks, readable ones only (for listing checkpoints in progress).
pub async fn live_locks(backend: &Arc<dyn Backend>) -> Result<Vec<pb::Lock>, BankError> {
    let now = now_ms();
    Ok(read_all(backend)
        .await?
        .into_iter()
        .filter_map(|e| match e {
            LockEntry::Lock(l) if is_live(&l, now) => Some(*l),
            _ => None,
        })
        .collect())
}

/// The lease of a held lock, as its holder sees it: when it was last renewed.
#[derive(Debug)]
struct Lease {
    ttl: Duration,
    renewed: std::sync::Mutex<Instant>,
}

impl Lease {
    /// Until when the holder may write: two thirds of the TTL after the last renewal, so
    /// that it has stopped well before anyone can see the lock as stale.
    fn valid(&self) -> bool {
        let renewed = *self
            .renewed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        renewed.elapsed() < self.ttl * 2 / 3
    }

    fn renew(&self, at: Instant) {
        *self
            .renewed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = at;
    }
}

/// A held lock; refreshed in the background until released.
#[derive(Debug)]
pub struct LockGuard {
    backend: Arc<dyn Backend>,
    record: Arc<Mutex<pb::Lock>>,
    lease: Arc<Lease>,
    refresher: tokio::task::JoinHandle<()>,
}

/// Which of two exclusive lockers goes first: the older.
fn goes_first(a: &pb::Lock, b: &pb::Lock) -> bool {
    (a.created_unix_ms, &a.id) < (b.created_unix_ms, &b.id)
}

/// The lock among `entries` that `mine` must wait for, described; `None` if there is none.
fn conflict(mine: &pb::Lock, entries: &[LockEntry]) -> Option<String> {
    let now = now_ms();
    for entry in entries {
        match entry {
            LockEntry::Lock(other) if other.id != mine.id && is_live(other, now) => {
                let waits = if mine.exclusive {
                    // Writers; an exclusive locker that holds; an older one that waits.
                    !other.exclusive || !other.waiting || goes_first(other, mine)
                } else {
                    // An exclusive lock, held or waiting.
                    other.exclusive
                };
                if waits {
                    return Some(describe(other));
                }
            }
            LockEntry::Unreadable { name, reason, .. } if entry.unreadable_and_young() => {
                return Some(format!(
                    "an unreadable lock file {name} ({reason}) that may be a live holder's; \
                     it counts as stale once it is {}s old",
                    DEFAULT_TTL.as_secs()
                ));
            }
            _ => {}
        }
    }
    None
}

impl LockGuard {
    /// Takes a lock: a shared writer lock (`exclusive = false`) conflicts only with an
    /// exclusive one (held or waiting); an exclusive lock (gc) conflicts with every other
    /// live lock. Waits up to `wait`, then fails with [`BankError::Locked`] naming the
    /// holder.
    pub async fn acquire(
        backend: Arc<dyn Backend>,
        exclusive: bool,
        purpose: String,
        ttl: Duration,
        wait: Duration,
    ) -> Result<Self, BankError> {
        let ttl = ttl.clamp(Duration::from_secs(1), MAX_TTL);
        let id = format!(
            "{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        );
        let mut record = pb::Lock {
            id: id.clone(),
            exclusive,
            hostname: hostname(),
            pid: std::process::id(),
            created_unix_ms: now_ms(),
            refreshed_unix_ms: 0,
            ttl_seconds: u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX),
            purpose,
            partial: None,
            waiting: exclusive,
        };
        let deadline = Instant::now() + wait;
        let mut delay = Duration::from_millis(100);
        let mut renewed;
        loop {
            // Written afresh every round: a lock that waits is still a live one.
            record.refreshed_unix_ms = now_ms();
            renewed = Instant::now();
            backend
                .put(Kind::Lock, &id, format::encode(&record)?)
                .await?;
            let mut holder = conflict(&record, &read_all(&backend).await?);
            if holder.is_none() && record.waiting {
                // Our turn: say so, then look again. Of two exclusive lockers that both
                // thought it was their turn, at least one sees the other here and steps back.
                record.waiting = false;
                record.refreshed_unix_ms = now_ms();
                renewed = Instant::now();
                backend
                    .put(Kind::Lock, &id, format::encode(&record)?)
                    .await?;
                holder = conflict(&record, &read_all(&backend).await?);
                record.waiting = holder.is_some();
            }
            let Some(holder) = holder else {
                break;
            };
            let give_up = Instant::now() + delay > deadline;
            if !exclusive || give_up {
                // A writer steps back so that a waiting gc can go; gc stays in line.
                backend.delete(Kind::Lock, &id).await?;
            }
            if give_up {
                return Err(BankError::Locked {
                    location: backend.location(),
                    holder,
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2)).min(ttl / 3);
        }
        let lease = Arc::new(Lease {
            ttl,
            renewed: std::sync::Mutex::new(renewed),
        });
        let record = Arc::new(Mutex::new(record));
        let refresher = tokio::spawn(refresh_loop(backend.clone(), record.clone(), lease.clone()));
        Ok(Self {
            backend,
            record,
            lease,
            refresher,
        })
    }

    /// Fails with [`BankError::LockLost`] if the lease could not be renewed in time: the
    /// holder must not write to the bank any more (someone may take it over soon).
    pub fn ensure_held(&self) -> Result<(), BankError> {
        if self.lease.valid() {
            Ok(())
        } else {
            Err(BankError::LockLost {
                location: self.backend.location(),
                ttl: self.lease.ttl.as_secs(),
            })
        }
    }

    /// Rewrites the lock now with `partial` as the checkpoint in progress.
    pub async fn save_partial(&self, partial: pb::Checkpoint) -> Result<(), BankError> {
        self.ensure_held()?;
        let mut record = self.record.lock().await;
        record.partial = Some(partial);
        record.refreshed_unix_ms = now_ms();
        let at = Instant::now();
        let data = format::encode(&*record)?;
        self.backend.put(Kind::Lock, &record.id, data).await?;
        self.lease.renew(at);
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

async fn refresh_loop(backend: Arc<dyn Backend>, record: Arc<Mutex<pb::Lock>>, lease: Arc<Lease>) {
    let every = (lease.ttl / 3).max(Duration::from_millis(100));
    let retry = (lease.ttl / 12).max(Duration::from_millis(50));
    let mut wait = every;
    loop {
        tokio::time::sleep(wait).await;
        let at = Instant::now();
        let (id, data) = {
            let mut r = record.lock().await;
            r.refreshed_unix_ms = now_ms();
            (r.id.clone(), format::encode(&*r))
        };
        let written = match data {
            Ok(data) => backend
                .put(Kind::Lock, &id, data)
                .await
                .map_err(BankError::from),
            Err(e) => Err(e.into()),
        };
        match written {
            Ok(()) => {
                lease.renew(at);
                wait = every;
            }
            Err(e) => {
                tracing::warn!("cannot refresh bank lock {id}: {e}; retrying");
                wait = retry;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(id: &str, exclusive: bool, created: u64) -> pb::Lock {
        pb::Lock {
            id: id.into(),
            exclusive,
            hostname: "elsewhere".into(),
            pid: 1,
            created_unix_ms: created,
            refreshed_unix_ms: now_ms(),
            ttl_seconds: 60,
            ..Default::default()
        }
    }

    #[test]
    fn writers_wait_for_any_exclusive_lock_and_gc_for_writers_and_older_gcs() {
        let writer = lock("w", false, 10);
        let other_writer = lock("w2", false, 5);
        let gc_old = lock("g1", true, 1);
        let gc_new = lock("g2", true, 20);
        let mut waiting_gc = gc_new.clone();
        waiting_gc.waiting = true;
        // Writers share.
        let entry = |l: &pb::Lock| LockEntry::Lock(Box::new(l.clone()));
        assert!(conflict(&writer, &[entry(&other_writer)]).is_none());
        // A writer waits behind a gc, even one still waiting itself.
        assert!(conflict(&writer, &[entry(&waiting_gc)]).is_some());
        // gc waits for writers, and for an older gc, not a younger one.
        assert!(conflict(&gc_new, &[entry(&writer)]).is_some());
        let mut gc_old_waiting = gc_old.clone();
        gc_old_waiting.waiting = true;
        assert!(conflict(&gc_new, &[entry(&gc_old_waiting)]).is_some());
        assert!(conflict(&gc_old, &[entry(&waiting_gc)]).is_none());
        // One that holds (not waiting) is waited for, whatever its age.
        assert!(conflict(&gc_old, &[entry(&gc_new)]).is_some());
        // Stale locks are no conflict.
        let mut stale = gc_old.clone();
        stale.refreshed_unix_ms = 0;
        assert!(conflict(&writer, &[entry(&stale)]).is_none());
        // A young unreadable file counts; an old one does not.
        let young = LockEntry::Unreadable {
            name: "x".into(),
            modified: Some(SystemTime::now()),
            reason: "damaged".into(),
        };
        let old = LockEntry::Unreadable {
            name: "y".into(),
            modified: SystemTime::now().checked_sub(DEFAULT_TTL * 2),
            reason: "damaged".into(),
        };
        assert!(conflict(&writer, &[young]).is_some());
        assert!(conflict(&writer, &[old]).is_none());
    }

    #[test]
    fn a_lease_not_renewed_in_time_is_no_longer_held() {
        let lease = Lease {
            ttl: Duration::from_secs(3),
            renewed: std::sync::Mutex::new(Instant::now()),
        };
        assert!(lease.valid());
        lease.renew(Instant::now() - Duration::from_secs(2) - Duration::from_millis(10));
        assert!(!lease.valid());
    }
}
