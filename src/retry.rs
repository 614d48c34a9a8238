//! Retrying provider calls: exponential backoff with jitter (backon), only for errors the
//! provider typed as retryable, bounded in attempts and per-attempt delay. When the cloud said
//! how long to wait (`Retry-After`, carried in [`ProviderError::retry_after`]), the next attempt
//! waits at least that long: retrying sooner only earns another refusal.
//!
//! A server that cannot be reached at all ([`ProviderError::is_unreachable`]: refused, DNS, TLS,
//! a connection timeout) is retried for [`RetryPolicy::unreachable_for`] only, counted from the
//! start of the first attempt that found it unreachable. The clock is a [`Reachability`], which
//! the executor shares between every step that talks to one server: a cluster API that stays
//! unreachable fails all of its steps within the bound, not each step after its own. The last
//! attempt starts when the bound is reached, so a step gives up within `unreachable_for` plus one
//! attempt (at most the client's connect timeout, 10 s for Kubernetes APIs).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use tessera_provider_api::{ProviderError, RetryReason};
use tokio::time::Instant;

/// The default of [`RetryPolicy::unreachable_for`]; the README states the bound it gives.
pub const UNREACHABLE_FOR: Duration = Duration::from_secs(150);

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Retries after the first attempt.
    pub max_retries: usize,
    /// How long a server that cannot be reached is retried (see the module docs).
    pub unreachable_for: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retries: 10,
            unreachable_for: UNREACHABLE_FOR,
        }
    }
}

/// Since when a server has been unreachable, shared by the calls that go to it. Any answer from
/// the server (success or an error of its own) resets it.
#[derive(Debug, Clone, Default)]
pub struct Reachability(Arc<Mutex<Option<Instant>>>);

impl Reachability {
    /// Notes how an attempt that started at `started` ended: the clock runs from the start of the
    /// first attempt that found the server unreachable.
    fn saw<T>(&self, started: Instant, result: &Result<T, ProviderError>) {
        if let Ok(mut since) = self.0.lock() {
            match result {
                Err(e) if e.is_unreachable() => {
                    since.get_or_insert(started);
                }
                _ => *since = None,
            }
        }
    }

    /// How long the server has been unreachable; zero when it answers.
    pub fn unreachable_for(&self) -> Duration {
        self.0.lock().ok().and_then(|s| s.map(|t| t.elapsed())).unwrap_or_default()
    }
}

impl RetryPolicy {
    /// Runs `call` until it succeeds, fails with a non-retryable error, or retries run out.
    /// `on_retry` sees each retryable error and the delay before the next attempt.
    pub async fn run<T, F, Fut>(
        &self,
        call: F,
        on_retry: impl FnMut(&ProviderError, Duration),
    ) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        self.run_shared(call, on_retry, &Reachability::default(), &|| true).await
    }

    /// [`run`](Self::run), with the server's [`Reachability`] shared with other calls, and
    /// `go_on` asked before each retry (false once the run is being stopped: the last error is
    /// then returned at once).
    pub async fn run_shared<T, F, Fut>(
        &self,
        mut call: F,
        mut on_retry: impl FnMut(&ProviderError, Duration),
        reach: &Reachability,
        go_on: &(dyn Fn() -> bool + Sync),
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
        let attempt = || {
            let fut = call();
            let started = Instant::now();
            async move {
                let result = fut.await;
                reach.saw(started, &result);
                result
            }
        };
        let result = attempt
            .retry(backoff)
            .when(|e: &ProviderError| e.is_retryable() && go_on())
            // Out of retries stays out of retries; otherwise the cloud's own wait is the floor,
            // and an unreachable server is not tried again past its bound.
            .adjust(|e: &ProviderError, delay| {
                let d = delay?;
                let d = e.retry_after().map_or(d, |after| d.max(after));
                if !e.is_unreachable() {
                    return Some(d);
                }
                // The last attempt is made when the bound is reached, not a backoff step before.
                let left = self.unreachable_for.saturating_sub(reach.unreachable_for());
                (!left.is_zero()).then_some(d.min(left))
            })
            .notify(|e: &ProviderError, d: Duration| on_retry(e, d))
            .await;
        result.map_err(|e| match e {
            ProviderError::Retryable { reason, message, retry_after } if reason == RetryReason::Unreachable => {
                let for_how_long = humantime::format_duration(Duration::from_secs(reach.unreachable_for().as_secs()));
                ProviderError::Retryable {
                    reason,
                    message: format!("{message} (unreachable for {for_how_long}; gave up)"),
                    retry_after,
                }
            }
            other => other,
        })
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
    async fn an_unreachable_server_is_given_up_on_within_the_bound_shared_by_its_calls() {
        let policy = RetryPolicy { max_retries: 1000, ..Default::default() };
        let reach = Reachability::default();
        let started = tokio::time::Instant::now();
        let calls = AtomicUsize::new(0);
        let refused = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(10)).await; // a connect timeout, each attempt
            Err::<(), _>(ProviderError::unreachable("cannot reach https://api: connection refused"))
        };
        let err = policy.run_shared(refused, |_, _| {}, &reach, &|| true).await.unwrap_err();
        assert!(err.is_unreachable() && err.to_string().contains("gave up"), "{err}");
        assert!(calls.load(Ordering::SeqCst) > 3, "retried meanwhile");
        let took = started.elapsed();
        assert!(took <= policy.unreachable_for + Duration::from_secs(10), "bounded: {took:?}");
        assert!(took >= policy.unreachable_for, "not given up early: {took:?}");

        // A second call to the same server, later, does not start the clock again.
        calls.store(0, Ordering::SeqCst);
        let second = policy.run_shared(refused, |_, _| {}, &reach, &|| true).await;
        assert!(second.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1, "the bound is the server's, not each call's");

        // Other retryable errors are not under that bound, and an answer resets the clock.
        let ok: Result<(), _> = policy.run_shared(|| async { Ok(()) }, |_, _| {}, &reach, &|| true).await;
        assert!(ok.is_ok());
        assert_eq!(reach.unreachable_for(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stopped_run_retries_no_more() {
        let policy = RetryPolicy::default();
        let calls = AtomicUsize::new(0);
        let r: Result<(), _> = policy
            .run_shared(
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err(ProviderError::unavailable("503"))
                },
                |_, _| {},
                &Reachability::default(),
                &|| false,
            )
            .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
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
