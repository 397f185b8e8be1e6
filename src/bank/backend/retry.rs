//! Retries: a decorator that repeats an operation of the inner backend after a transient
//! failure, with the delays and the number of tries of a [`RetryPolicy`]
//! ([`RetryPolicy::OBJECT_STORE`] unless told otherwise).
//!
//! Only [`BackendError::is_transient`] failures are retried (a refused connection, a timeout,
//! a 5xx answer): never [`BackendError::NotFound`], [`BackendError::Config`] or an I/O error
//! a retry would only repeat. Every [`Backend`] operation is idempotent (the trait's
//! contract), so each may be repeated whole. When the tries are spent, the error is the last
//! one, with a [`GaveUp`] as its source naming the tries, and no longer transient.
//!
//! The inner backends try each request once; this file is the one place a bank operation
//! is retried. Per-request timeouts stay in the backends.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::{Backend, BackendError, Kind, ObjectInfo};
use crate::openstack::RetryPolicy;

/// The last failure of an operation that failed transiently at every try.
#[derive(Debug, thiserror::Error)]
#[error(
    "{last} (gave up after {tries} tries, {retries} retries in {secs:.1} s)",
    retries = .tries.saturating_sub(1),
    secs = .elapsed.as_secs_f64()
)]
pub struct GaveUp {
    /// How many tries were made.
    pub tries: u32,
    /// How long they took, pauses included.
    pub elapsed: Duration,
    /// The last try's error (the source of the inner backend's error).
    #[source]
    pub last: Box<dyn std::error::Error + Send + Sync>,
}

/// The retrying decorator.
#[derive(Debug)]
pub struct RetryBackend {
    inner: Arc<dyn Backend>,
    policy: RetryPolicy,
}

impl RetryBackend {
    /// Wraps `inner` with [`RetryPolicy::OBJECT_STORE`]: 6 tries over about 6 s.
    ///
    /// # Arguments
    /// * `inner` - the backend whose transient failures are retried.
    pub fn new(inner: Arc<dyn Backend>) -> Self {
        Self::with_policy(inner, RetryPolicy::OBJECT_STORE)
    }

    /// Wraps `inner` with another policy.
    ///
    /// # Arguments
    /// * `inner` - the backend whose transient failures are retried.
    /// * `policy` - how many tries, and the delays between them.
    pub fn with_policy(inner: Arc<dyn Backend>, policy: RetryPolicy) -> Self {
        Self { inner, policy }
    }

    /// The policy in use.
    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// Runs `once` under the policy; a transient error left when the tries are spent
    /// becomes a final one whose source is a [`GaveUp`].
    async fn retry<T, F, Fut>(
        &self,
        op: &str,
        kind: Kind,
        name: &str,
        once: F,
    ) -> Result<T, BackendError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, BackendError>>,
    {
        let what = format!("{op} {kind} {name} in {}", self.inner.location());
        let outcome = self
            .policy
            .run(&what, once, |result| {
                result.as_ref().is_err_and(BackendError::is_transient)
            })
            .await;
        match outcome.result {
            Err(BackendError::Io {
                location,
                op,
                kind,
                name,
                source,
                transient: true,
            }) if outcome.exhausted => Err(BackendError::Io {
                location,
                op,
                kind,
                name,
                source: Box::new(GaveUp {
                    tries: outcome.retries + 1,
                    elapsed: outcome.elapsed,
                    last: source,
                }),
                transient: false,
            }),
            other => other,
        }
    }
}

#[async_trait]
impl Backend for RetryBackend {
    fn location(&self) -> String {
        self.inner.location()
    }

    async fn put(&self, kind: Kind, name: &str, data: Bytes) -> Result<(), BackendError> {
        self.retry("put", kind, name, || {
            self.inner.put(kind, name, data.clone())
        })
        .await
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<Bytes, BackendError> {
        self.retry("get", kind, name, || self.inner.get(kind, name))
            .await
    }

    async fn get_range(
        &self,
        kind: Kind,
        name: &str,
        offset: u64,
        length: u64,
    ) -> Result<Bytes, BackendError> {
        self.retry("get_range", kind, name, || {
            self.inner.get_range(kind, name, offset, length)
        })
        .await
    }

    async fn list(&self, kind: Kind) -> Result<Vec<ObjectInfo>, BackendError> {
        self.retry("list", kind, "", || self.inner.list(kind)).await
    }

    async fn delete(&self, kind: Kind, name: &str) -> Result<(), BackendError> {
        self.retry("delete", kind, name, || self.inner.delete(kind, name))
            .await
    }

    async fn remove_leftovers(&self, older_than: Duration) -> Result<usize, BackendError> {
        self.retry("remove_leftovers", Kind::Pack, "", || {
            self.inner.remove_leftovers(older_than)
        })
        .await
    }
}
