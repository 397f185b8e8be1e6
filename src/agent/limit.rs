//! The bound on requests that read etcd or the bank (pod listings and shows, checkpoint
//! shows), shared by the agent's API and the Karbor API.
//!
//! At most [`ReadLimits::concurrent`] such requests run at once; up to
//! [`ReadLimits::waiting`] more wait, each at most [`ReadLimits::wait`], for a turn. Past
//! that, a request is refused at once with 503 and `Retry-After`, so that memory and etcd's
//! load stay bounded whatever the number of clients (a page holds at most
//! [`crate::engine::MAX_PAGE`] pods). Cheap routes (`/healthz`, `/metrics`, listings of
//! the bank's records) are not bound.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How many reads run and wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReadLimits {
    /// Reads that run at once.
    pub concurrent: usize,
    /// Reads that may wait for a turn; more are refused at once.
    pub waiting: usize,
    /// The longest a read waits for its turn before it is refused.
    #[serde(with = "crate::model::duration::as_text")]
    pub wait: Duration,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            concurrent: 8,
            waiting: 64,
            wait: Duration::from_secs(2),
        }
    }
}

/// What a refused read is told: seconds to wait before trying again.
pub const RETRY_AFTER_SECONDS: u64 = 1;

/// Why a read was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error(
    "the agent is serving {running} reads of etcd or the bank and {waiting} more wait: try again \
     in {RETRY_AFTER_SECONDS} s"
)]
pub struct Overloaded {
    /// Reads running.
    pub running: usize,
    /// Reads waiting.
    pub waiting: usize,
}

/// The gate reads pass.
#[derive(Debug)]
pub struct ReadLimit {
    limits: ReadLimits,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    refused: AtomicUsize,
}

/// A read's turn; the next read may start once it is dropped.
#[derive(Debug)]
pub struct Turn(#[allow(dead_code)] OwnedSemaphorePermit);

impl ReadLimit {
    /// A gate with these limits (at least one read runs).
    pub fn new(limits: ReadLimits) -> Self {
        ReadLimit {
            permits: Arc::new(Semaphore::new(limits.concurrent.max(1))),
            limits,
            waiting: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
        }
    }

    fn overloaded(&self) -> Overloaded {
        self.refused.fetch_add(1, Ordering::Relaxed);
        Overloaded {
            running: self.limits.concurrent.max(1) - self.permits.available_permits(),
            waiting: self.waiting.load(Ordering::Relaxed),
        }
    }

    /// A turn: at once, after a wait, or refused.
    pub async fn enter(&self) -> Result<Turn, Overloaded> {
        if let Ok(p) = Arc::clone(&self.permits).try_acquire_owned() {
            return Ok(Turn(p));
        }
        let before = self.waiting.fetch_add(1, Ordering::AcqRel);
        let turn = if before >= self.limits.waiting {
            None
        } else {
            tokio::time::timeout(self.limits.wait, Arc::clone(&self.permits).acquire_owned())
                .await
                .ok()
                .and_then(Result::ok)
        };
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        turn.map(Turn).ok_or_else(|| self.overloaded())
    }

    /// Reads refused so far.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::Relaxed)
    }
}
