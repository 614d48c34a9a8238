//! Waiting for a long-running cloud operation: one poller for every backend.
//!
//! ## Overview
//!
//! Clouds answer a mutation before it is done (an EKS cluster `CREATING`, an ARM `202 Accepted`
//! with a `Location` to poll, a GKE `Operation` that is not yet `DONE`). [`until`] polls a check
//! until it reports [`Seen::Done`], with exponential backoff and jitter (backon), never a fixed
//! sleep, and bounded by a deadline. A check reports a terminal failure by returning an error;
//! retryable errors (throttling, 5xx) are polled through. When the cloud says how long to wait
//! (`Retry-After`, on [`Seen::Wait`] or on a retryable error), the next poll waits at least that
//! long.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use crate::ProviderError;

/// How to poll: first and longest delay, and the deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollPolicy {
    pub min_delay: Duration,
    pub max_delay: Duration,
    pub total: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        // Control planes take 10-15 min, deletions of node pools up to 20.
        Self {
            min_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(30),
            total: Duration::from_secs(45 * 60),
        }
    }
}

/// Names the first poll delay for every backend: for emulators and fixtures whose operations
/// take milliseconds, where the default 2 s would dominate a run. A humantime duration (`50ms`).
pub const POLL_INTERVAL_ENV: &str = "TESSERA_POLL_INTERVAL";

impl PollPolicy {
    /// The default policy, with the first delay from [`POLL_INTERVAL_ENV`] when it is set (and the
    /// longest delay eight times that, at most the default's). A malformed value is an error that
    /// names the variable, never silently the default.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var(POLL_INTERVAL_ENV) {
            Err(_) => Ok(Self::default()),
            Ok(text) => Self::with_interval(&text),
        }
    }

    fn with_interval(text: &str) -> Result<Self, String> {
        let base = Self::default();
        let min_delay =
            humantime::parse_duration(text.trim()).ok().filter(|d| !d.is_zero() && *d <= base.max_delay).ok_or_else(
                || format!("{POLL_INTERVAL_ENV}={text:?} is not a duration from 1ms to 30s (for example `50ms`)"),
            )?;
        Ok(Self { min_delay, max_delay: (min_delay * 8).min(base.max_delay), ..base })
    }
}

/// What one poll saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen<T> {
    Done(T),
    /// Still in a transitional status (named, for the timeout message).
    Pending(String),
    /// Still in a transitional status, and the cloud asked to be polled again no sooner than this.
    Wait(String, Duration),
}

#[derive(Debug)]
enum PollError {
    NotYet(String, Option<Duration>),
    Failed(ProviderError),
}

/// Polls `check` until it reports `Done`, a non-retryable error, or the deadline passes.
pub async fn until<T, F, Fut>(policy: &PollPolicy, what: &str, mut check: F) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Seen<T>, ProviderError>>,
{
    let backoff = ExponentialBuilder::default()
        .with_jitter()
        .with_min_delay(policy.min_delay)
        .with_max_delay(policy.max_delay)
        .with_total_delay(Some(policy.total))
        .without_max_times();
    let attempt = || {
        let fut = check();
        async move {
            match fut.await {
                Ok(Seen::Done(v)) => Ok(v),
                Ok(Seen::Pending(status)) => Err(PollError::NotYet(status, None)),
                Ok(Seen::Wait(status, after)) => Err(PollError::NotYet(status, Some(after))),
                Err(e) => Err(PollError::Failed(e)),
            }
        }
    };
    let retryable = |e: &PollError| match e {
        PollError::NotYet(..) => true,
        PollError::Failed(p) => p.is_retryable(),
    };
    let floor = |e: &PollError| match e {
        PollError::NotYet(_, after) => *after,
        PollError::Failed(p) => p.retry_after(),
    };
    let started = tokio::time::Instant::now();
    let result = attempt
        .retry(backoff)
        .when(retryable)
        // The deadline still holds when the cloud asks for long waits.
        .adjust(|e, delay| {
            let delay = delay?;
            let wait = floor(e).map_or(delay, |after| delay.max(after));
            (started.elapsed() + wait <= policy.total).then_some(wait)
        })
        .await;
    match result {
        Ok(v) => Ok(v),
        Err(PollError::Failed(e)) => Err(e),
        Err(PollError::NotYet(status, _)) => Err(ProviderError::Fatal(format!(
            "{what} still {status} after {} min; it may finish later, and the next plan will read it",
            policy.total.as_secs() / 60
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn policy() -> PollPolicy {
        PollPolicy {
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(4),
            total: Duration::from_secs(600),
        }
    }

    #[test]
    fn the_interval_from_the_environment_is_checked() {
        let p = PollPolicy::with_interval("50ms").unwrap();
        assert_eq!((p.min_delay, p.max_delay), (Duration::from_millis(50), Duration::from_millis(400)));
        assert_eq!(p.total, PollPolicy::default().total);
        for bad in ["", "0s", "fast", "5m"] {
            assert!(PollPolicy::with_interval(bad).unwrap_err().contains(POLL_INTERVAL_ENV), "{bad}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn polls_until_done_and_honours_retry_after() {
        let polls = AtomicUsize::new(0);
        let started = tokio::time::Instant::now();
        let r = until(&policy(), "op", || async {
            match polls.fetch_add(1, Ordering::SeqCst) {
                0 => Ok(Seen::Wait("InProgress".into(), Duration::from_secs(60))),
                1 => Ok(Seen::Pending("InProgress".into())),
                _ => Ok(Seen::Done(7)),
            }
        })
        .await;
        assert_eq!(r.unwrap(), 7);
        assert_eq!(polls.load(Ordering::SeqCst), 3);
        assert!(started.elapsed() >= Duration::from_secs(60), "Retry-After is a floor: {:?}", started.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_terminal_failure_ends_polling_and_retryable_errors_are_polled_through() {
        let polls = AtomicUsize::new(0);
        let r: Result<(), _> = until(&policy(), "op", || async {
            match polls.fetch_add(1, Ordering::SeqCst) {
                0 => Err(ProviderError::unavailable("503")),
                _ => Err(ProviderError::Fatal("provisioningState Failed".into())),
            }
        })
        .await;
        assert!(matches!(r, Err(ProviderError::Fatal(m)) if m.contains("Failed")));
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_ends_a_wait_that_never_settles() {
        let started = tokio::time::Instant::now();
        let r: Result<(), _> = until(&policy(), "cluster x", || async { Ok(Seen::Pending("CREATING".into())) }).await;
        let msg = r.unwrap_err().to_string();
        assert!(msg.contains("cluster x still CREATING after 10 min"), "{msg}");
        assert!(started.elapsed() <= Duration::from_secs(600));
    }
}
