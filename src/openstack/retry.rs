//! The one retry policy of podbank's HTTP clients: which failures are worth another try,
//! how long to wait before it, how many tries to make.
//!
//! What is retried:
//! * an idempotent request (GET, HEAD, PUT of a whole object, DELETE) after a 5xx, 408 or
//!   429 answer, a refused connection, a timeout or a connection broken mid-answer;
//! * a request that is not idempotent (a POST that creates something) only when it surely
//!   did not reach the service: a refused connection, or 503 (a proxy with no backend to
//!   give it to); never after a timeout or another 5xx, which may mean the work was done;
//! * a Keystone login or token renewal that failed because Keystone was unreachable, timed
//!   out or answered 5xx; never one whose credentials Keystone refused.
//!
//! Delays double from the policy's first delay up to its maximum, with up to 25 % of random
//! jitter so that concurrent clients do not retry in lock step. [`RetryPolicy::run`] is the
//! loop; callers say what a transient failure is, in their own result type.

use std::future::Future;
use std::time::{Duration, Instant};

use reqwest::StatusCode;

/// Whether sending a request twice may do its work twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// GET, HEAD, DELETE, a PUT of a whole object: retried after any transient failure.
    Idempotent,
    /// A POST that creates something: retried only when the service surely did not get it.
    NotIdempotent,
}

/// How many tries a request gets and how long to wait between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first try (0: one try only).
    pub retries: u32,
    /// The pause before the first retry; doubled before each further one.
    pub first_delay: Duration,
    /// The longest pause between two tries, before jitter.
    pub max_delay: Duration,
}

/// The outcome of [`RetryPolicy::run`]: the last try's result and what it took.
#[derive(Debug)]
pub struct Outcome<T> {
    /// What the last try gave.
    pub result: T,
    /// How many retries were made (tries - 1).
    pub retries: u32,
    /// How long all tries and pauses took.
    pub elapsed: Duration,
    /// Whether the last try still failed transiently: the tries were spent, not the
    /// failure final.
    pub exhausted: bool,
}

impl RetryPolicy {
    /// Cinder and Keystone: 0.5 s, 1 s, 2 s, 4 s between the first tries, then 8 s; 4 retries.
    pub const API: RetryPolicy = RetryPolicy {
        retries: 4,
        first_delay: Duration::from_millis(500),
        max_delay: Duration::from_secs(8),
    };

    /// Object stores (the bank's backends): 0.2 s doubling up to 5 s; 5 retries, so 6 tries
    /// over about 6 s.
    pub const OBJECT_STORE: RetryPolicy = RetryPolicy {
        retries: 5,
        first_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(5),
    };

    /// The same delays with another number of retries.
    ///
    /// # Arguments
    /// * `retries` - retries after the first try.
    pub fn with_retries(self, retries: u32) -> RetryPolicy {
        RetryPolicy { retries, ..self }
    }

    /// How many tries in all: the first and the retries.
    pub fn tries(&self) -> u32 {
        self.retries.saturating_add(1)
    }

    /// The pause before retry `retry` (0-based): the first delay doubled `retry` times,
    /// capped at the maximum, plus up to 25 % of random jitter.
    ///
    /// # Arguments
    /// * `retry` - how many retries were made before this one.
    pub fn delay(&self, retry: u32) -> Duration {
        let base = self
            .first_delay
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.max_delay);
        base + base.mul_f64(rand::random::<f64>() * 0.25)
    }

    /// Runs `once` until its result is final or the tries are spent, pausing
    /// [`RetryPolicy::delay`] between tries; returns the last result.
    ///
    /// # Arguments
    /// * `what` - the request, for the debug log of each retry.
    /// * `once` - one try.
    /// * `transient` - whether a result is a failure that another try may cure.
    pub async fn run<T, F, Fut>(
        &self,
        what: &str,
        mut once: F,
        transient: impl Fn(&T) -> bool,
    ) -> Outcome<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = T>,
    {
        let started = Instant::now();
        let mut retries = 0;
        loop {
            let result = once().await;
            let failed = transient(&result);
            if !failed || retries >= self.retries {
                return Outcome {
                    result,
                    retries,
                    elapsed: started.elapsed(),
                    exhausted: failed,
                };
            }
            let delay = self.delay(retries);
            tracing::debug!(
                what,
                retry = retries + 1,
                ?delay,
                "transient failure: retrying"
            );
            tokio::time::sleep(delay).await;
            retries += 1;
        }
    }
}

/// Whether an answer with `status` is worth another try.
///
/// # Arguments
/// * `status` - the answer's HTTP status.
/// * `idempotency` - whether the request may be sent twice.
pub fn retryable_status(status: StatusCode, idempotency: Idempotency) -> bool {
    match idempotency {
        Idempotency::Idempotent => {
            status.is_server_error()
                || status == StatusCode::REQUEST_TIMEOUT
                || status == StatusCode::TOO_MANY_REQUESTS
        }
        Idempotency::NotIdempotent => status == StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Whether a request that failed without an answer (or whose answer broke off) is worth
/// another try: always when no connection was made; for idempotent requests also after a
/// timeout or a broken connection; never when the request could not be built.
///
/// # Arguments
/// * `e` - the error of sending the request or reading its answer.
/// * `idempotency` - whether the request may be sent twice.
pub fn retryable_transport(e: &reqwest::Error, idempotency: Idempotency) -> bool {
    e.is_connect() || (idempotency == Idempotency::Idempotent && !e.is_builder())
}

/// Whether a Keystone failure (a login, a token renewal, a catalog read) is worth another
/// try: no connection, a timeout, a 5xx answer.
///
/// # Arguments
/// * `e` - the error osauth gave.
pub fn keystone_transient(e: &osauth::Error) -> bool {
    use osauth::ErrorKind as K;
    matches!(
        e.kind(),
        K::ProtocolError | K::OperationTimedOut | K::OperationFailed | K::InternalServerError
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_bounded_jitter() {
        let p = RetryPolicy::OBJECT_STORE;
        for retry in 0..8 {
            let base = p.first_delay.saturating_mul(1 << retry).min(p.max_delay);
            let wait = p.delay(retry);
            assert!(
                wait >= base && wait <= base.mul_f64(1.25),
                "{retry}: {wait:?}"
            );
        }
        let api = RetryPolicy::API;
        assert!(api.delay(0) >= Duration::from_millis(500));
        assert!(api.delay(0) <= Duration::from_millis(625));
        assert!(api.delay(3) >= Duration::from_secs(4));
        assert!(api.delay(20) <= Duration::from_secs(10));
        assert_eq!(api.with_retries(2).tries(), 3);
    }

    #[test]
    fn statuses_worth_a_retry() {
        use Idempotency::*;
        for status in [500, 502, 503, 504, 408, 429] {
            let status = StatusCode::from_u16(status).unwrap_or_default();
            assert!(retryable_status(status, Idempotent), "{status}");
        }
        for status in [400, 401, 403, 404, 409, 422] {
            let status = StatusCode::from_u16(status).unwrap_or_default();
            assert!(!retryable_status(status, Idempotent), "{status}");
        }
        assert!(retryable_status(
            StatusCode::SERVICE_UNAVAILABLE,
            NotIdempotent
        ));
        assert!(!retryable_status(
            StatusCode::INTERNAL_SERVER_ERROR,
            NotIdempotent
        ));
        assert!(!retryable_status(StatusCode::BAD_GATEWAY, NotIdempotent));
    }

    #[tokio::test]
    async fn run_retries_transient_results_until_the_tries_are_spent() {
        let quick = RetryPolicy {
            retries: 3,
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        };
        let tries = std::sync::atomic::AtomicU32::new(0);
        let next = || async { tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst) };
        // fails twice, then succeeds
        let outcome = quick.run("test", next, |n| *n < 2).await;
        assert_eq!((outcome.result, outcome.retries), (2, 2));
        assert!(!outcome.exhausted);
        // never succeeds: 4 tries, then the last result
        tries.store(0, std::sync::atomic::Ordering::SeqCst);
        let outcome = quick.run("test", next, |_| true).await;
        assert_eq!((outcome.result, outcome.retries), (3, 3));
        assert!(outcome.exhausted);
        // a final failure is not retried
        tries.store(0, std::sync::atomic::Ordering::SeqCst);
        let outcome = quick.run("test", next, |_| false).await;
        assert_eq!((outcome.result, outcome.retries), (0, 0));
    }
}
