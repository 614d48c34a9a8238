//! Retrying provider calls: exponential backoff with jitter (backon), only for errors the
//! provider typed as retryable, bounded in attempts and per-attempt delay. When the cloud said
//! how long to wait (`Retry-After`, carried in [`ProviderError::retry_after`]), the next attempt
//! waits at least that long: retrying sooner only earns another refusal.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use tessera_provider_api::ProviderError;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Retries after the first attempt.
    pub max_retries: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { min_delay: Duration::from_millis(500), max_delay: Duration::from_secs(30), max_retries: 10 }
    }
}

impl RetryPolicy {
    /// Runs `call` until it succeeds, fails with a non-retryable error, or retries run out.
    /// `on_retry` sees each retryable error and the delay before the next attempt.
    pub async fn run<T, F, Fut>(
        &self,
        call: F,
        mut on_retry: impl FnMut(&ProviderError, Duration),
    ) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let backoff = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries);
        call.retry(backoff)
            .when(ProviderError::is_retryable)
            // Out of retries stays out of retries; otherwise the cloud's own wait is the floor.
            .adjust(|e: &ProviderError, delay| delay.map(|d| e.retry_after().map_or(d, |after| d.max(after))))
            .notify(|e: &ProviderError, d: Duration| on_retry(e, d))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn retries_retryable_errors_only_and_gives_up() {
        let policy = RetryPolicy { max_retries: 3, ..Default::default() };
        let calls = AtomicUsize::new(0);
        let r: Result<(), _> = policy
            .run(
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err(ProviderError::throttled("slow down"))
                },
                |_, _| {},
            )
            .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 4, "one attempt plus three retries");

        calls.store(0, Ordering::SeqCst);
        let r: Result<(), _> = policy
            .run(
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err(ProviderError::Fatal("no".into()))
                },
                |_, _| {},
            )
            .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1, "fatal errors are not retried");

        calls.store(0, Ordering::SeqCst);
        let r = policy
            .run(
                || async {
                    if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                        Err(ProviderError::unavailable("503"))
                    } else {
                        Ok(7)
                    }
                },
                |_, _| {},
            )
            .await;
        assert_eq!(r.unwrap(), 7);
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_from_the_cloud_is_waited_out() {
        let policy = RetryPolicy { min_delay: Duration::from_millis(10), max_retries: 3, ..Default::default() };
        let calls = AtomicUsize::new(0);
        let started = tokio::time::Instant::now();
        let mut delays = Vec::new();
        let r = policy
            .run(
                || async {
                    if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                        Err(ProviderError::Retryable {
                            reason: tessera_provider_api::RetryReason::Throttled,
                            message: "429".into(),
                            retry_after: Some(Duration::from_secs(45)),
                        })
                    } else {
                        Ok(())
                    }
                },
                |_, d| delays.push(d),
            )
            .await;
        assert!(r.is_ok());
        assert!(delays[0] >= Duration::from_secs(45), "{delays:?}");
        assert!(started.elapsed() >= Duration::from_secs(45), "waited {:?}", started.elapsed());
    }
}
