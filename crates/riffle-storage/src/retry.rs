//! A small retry loop for whole operations that failed with a transient error.
//!
//! object_store retries single HTTP requests itself (see [`crate::DeepStore`] for the
//! limits set there); this loop retries a whole operation (an upload that lost a part, a
//! download cut short) a few more times, with exponential backoff and an overall time
//! budget after which no new attempt starts.

use std::future::Future;
use std::time::{Duration, Instant};

use riffle_common::ClassifyError;

/// How often and how long to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retry).
    pub attempts: u32,
    /// The wait before the second attempt; doubled before each further one.
    pub initial_backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
    /// No new attempt starts once this much time has passed since the first one started
    /// (the backoff included): an operation that ran longer is not repeated as a whole.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
            max_elapsed: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        }
    }
}

/// Runs `op` until it succeeds, fails with an error that is not retryable, or the policy
/// is exhausted; returns the last result. `what` names the operation in the log.
pub async fn retry<T, E, F, Fut>(policy: &RetryPolicy, what: &str, mut op: F) -> Result<T, E>
where
    E: ClassifyError + std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let start = Instant::now();
    let mut backoff = policy.initial_backoff;
    let mut attempt = 1u32;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let exhausted = attempt >= policy.attempts
                    || start.elapsed() + backoff > policy.max_elapsed
                    || !e.is_retryable();
                if exhausted {
                    return Err(e);
                }
                tracing::info!(
                    "{what}: attempt {attempt} of {} failed, retrying in {backoff:?}: {e}",
                    policy.attempts
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(policy.max_backoff);
                attempt += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{StorageError, StorageErrorKind};
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fast(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            attempts,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            max_elapsed: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn test_retry_transient_then_success() {
        let calls = AtomicU32::new(0);
        let out = retry(&fast(3), "op", || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(StorageError::new(StorageErrorKind::Unavailable, "busy"))
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(out.ok(), Some(7));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn test_retry_gives_up_after_attempts() {
        let calls = AtomicU32::new(0);
        let out: Result<(), _> = retry(&fast(3), "op", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(StorageError::new(StorageErrorKind::Unavailable, "busy"))
        })
        .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn test_retry_not_for_permanent_errors() {
        let calls = AtomicU32::new(0);
        let out: Result<(), _> = retry(&fast(5), "op", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(StorageError::new(StorageErrorKind::NotFound, "gone"))
        })
        .await;
        assert_eq!(out.err().map(|e| e.kind), Some(StorageErrorKind::NotFound));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn test_retry_stops_at_time_budget() {
        let calls = AtomicU32::new(0);
        let policy = RetryPolicy {
            attempts: 100,
            initial_backoff: Duration::from_millis(40),
            max_backoff: Duration::from_millis(40),
            max_elapsed: Duration::from_millis(100),
        };
        let out: Result<(), _> = retry(&policy, "op", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(StorageError::new(StorageErrorKind::Unavailable, "busy"))
        })
        .await;
        assert!(out.is_err());
        let n = calls.load(Ordering::SeqCst);
        assert!((2..=3).contains(&n), "{n} attempts");
    }
}
