//! Counting the requests that reach a backend, and the bytes they read: what a command
//! costs in round trips on an object store, where each request is one.
//!
//! [`CountedBackend`] is the decorator; [`crate::bank::Bank::open`] puts it right around
//! the backend it is given (below the encryption decorator, above the retries), so that
//! every read of the bank is counted once, in stored (sealed, compressed) bytes. A retried
//! request counts once: the counters say what the bank asked for, not how often the
//! network failed.
//!
//! Must not touch: what is stored. Counting never changes an answer.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{Backend, BackendError, Kind, ObjectInfo};

/// Requests made of a backend and the bytes they read, at one moment or between two
/// ([`RequestCounts::since`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RequestCounts {
    /// Whole-object reads (GET).
    pub gets: u64,
    /// Ranged reads (GET with a Range header).
    pub range_gets: u64,
    /// Of `gets` and `range_gets`, those of packs.
    pub pack_gets: u64,
    /// Bytes the successful reads returned, as stored.
    pub bytes_read: u64,
    /// Writes (PUT).
    pub puts: u64,
    /// Listings (one per `list`, whatever paging the store needs).
    pub lists: u64,
    /// Deletes.
    pub deletes: u64,
}

impl RequestCounts {
    /// What was counted after `earlier` (a snapshot of the same counters taken before).
    pub fn since(&self, earlier: &RequestCounts) -> RequestCounts {
        RequestCounts {
            gets: self.gets.saturating_sub(earlier.gets),
            range_gets: self.range_gets.saturating_sub(earlier.range_gets),
            pack_gets: self.pack_gets.saturating_sub(earlier.pack_gets),
            bytes_read: self.bytes_read.saturating_sub(earlier.bytes_read),
            puts: self.puts.saturating_sub(earlier.puts),
            lists: self.lists.saturating_sub(earlier.lists),
            deletes: self.deletes.saturating_sub(earlier.deletes),
        }
    }

    /// Every read request, whole or ranged.
    pub fn reads(&self) -> u64 {
        self.gets + self.range_gets
    }
}

impl fmt::Display for RequestCounts {
    /// `12 GETs + 340 ranged GETs (350 of packs), 4.21 MiB read; 3 PUTs, 2 lists, 0 deletes`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} GETs + {} ranged GETs ({} of packs), {:.2} MiB read; {} PUTs, {} lists, {} deletes",
            self.gets,
            self.range_gets,
            self.pack_gets,
            self.bytes_read as f64 / f64::from(1 << 20),
            self.puts,
            self.lists,
            self.deletes
        )
    }
}

/// The live counters of a [`CountedBackend`], shared with whoever reads them.
#[derive(Debug, Default)]
pub struct RequestCounter {
    gets: AtomicU64,
    range_gets: AtomicU64,
    pack_gets: AtomicU64,
    bytes_read: AtomicU64,
    puts: AtomicU64,
    lists: AtomicU64,
    deletes: AtomicU64,
}

impl RequestCounter {
    /// The counts so far (each counter read on its own: a request in flight may show in
    /// one and not yet in another).
    pub fn counts(&self) -> RequestCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RequestCounts {
            gets: get(&self.gets),
            range_gets: get(&self.range_gets),
            pack_gets: get(&self.pack_gets),
            bytes_read: get(&self.bytes_read),
            puts: get(&self.puts),
            lists: get(&self.lists),
            deletes: get(&self.deletes),
        }
    }

    fn read(&self, counter: &AtomicU64, kind: Kind, answer: &Result<Bytes, BackendError>) {
        counter.fetch_add(1, Ordering::Relaxed);
        if kind == Kind::Pack {
            self.pack_gets.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(data) = answer {
            self.bytes_read
                .fetch_add(data.len() as u64, Ordering::Relaxed);
        }
    }
}

/// A backend that counts the requests passing through it to `inner`.
#[derive(Debug)]
pub struct CountedBackend {
    inner: Arc<dyn Backend>,
    counter: Arc<RequestCounter>,
}

impl CountedBackend {
    /// Counts the requests made of `inner`, from zero.
    pub fn new(inner: Arc<dyn Backend>) -> Self {
        Self {
            inner,
            counter: Arc::default(),
        }
    }

    /// The counters, to read while the backend is in use.
    pub fn counter(&self) -> Arc<RequestCounter> {
        self.counter.clone()
    }
}

#[async_trait]
impl Backend for CountedBackend {
    fn location(&self) -> String {
        self.inner.location()
    }

    async fn put(&self, kind: Kind, name: &str, data: Bytes) -> Result<(), BackendError> {
        self.counter.puts.fetch_add(1, Ordering::Relaxed);
        self.inner.put(kind, name, data).await
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<Bytes, BackendError> {
        let answer = self.inner.get(kind, name).await;
        self.counter.read(&self.counter.gets, kind, &answer);
        answer
    }

    async fn get_range(
        &self,
        kind: Kind,
        name: &str,
        offset: u64,
        length: u64,
    ) -> Result<Bytes, BackendError> {
        let answer = self.inner.get_range(kind, name, offset, length).await;
        self.counter.read(&self.counter.range_gets, kind, &answer);
        answer
    }

    async fn list(&self, kind: Kind) -> Result<Vec<ObjectInfo>, BackendError> {
        self.counter.lists.fetch_add(1, Ordering::Relaxed);
        self.inner.list(kind).await
    }

    async fn delete(&self, kind: Kind, name: &str) -> Result<(), BackendError> {
        self.counter.deletes.fetch_add(1, Ordering::Relaxed);
        self.inner.delete(kind, name).await
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

    #[derive(Debug)]
    struct Fixed;

    #[async_trait]
    impl Backend for Fixed {
        fn location(&self) -> String {
            "fixed".into()
        }
        async fn put(&self, _: Kind, _: &str, _: Bytes) -> Result<(), BackendError> {
            Ok(())
        }
        async fn get(&self, kind: Kind, name: &str) -> Result<Bytes, BackendError> {
            if name == "gone" {
                return Err(BackendError::NotFound {
                    location: self.location(),
                    kind,
                    name: name.into(),
                });
            }
            Ok(Bytes::from_static(b"0123456789"))
        }
        async fn list(&self, _: Kind) -> Result<Vec<ObjectInfo>, BackendError> {
            Ok(Vec::new())
        }
        async fn delete(&self, _: Kind, _: &str) -> Result<(), BackendError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn every_request_is_counted_and_only_bytes_returned_are_read() {
        let counted = CountedBackend::new(Arc::new(Fixed));
        let before = counted.counter().counts();
        assert_eq!(before, RequestCounts::default());
        let _ = counted.get(Kind::Index, "a").await;
        let _ = counted.get(Kind::Pack, "gone").await;
        let _ = counted.get_range(Kind::Pack, "p", 2, 3).await;
        let _ = counted.put(Kind::Lock, "l", Bytes::new()).await;
        let _ = counted.list(Kind::Lock).await;
        let _ = counted.delete(Kind::Lock, "l").await;
        let after = counted.counter().counts();
        assert_eq!(
            after.since(&before),
            RequestCounts {
                gets: 2,
                range_gets: 1,
                pack_gets: 2,
                bytes_read: 13,
                puts: 1,
                lists: 1,
                deletes: 1,
            }
        );
        assert_eq!(after.reads(), 3);
        assert_eq!(before.since(&after), RequestCounts::default());
    }
}
