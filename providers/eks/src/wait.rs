//! Waiting for the cloud to settle: polls with exponential backoff (backon), bounded in total
//! time, never a fixed sleep.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use tessera_provider_api::ProviderError;

/// How to poll: first and longest delay, and how long to wait in all.
#[derive(Debug, Clone)]
pub struct PollPolicy {
    pub min_delay: Duration,
    pub max_delay: Duration,
    pub total: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        // Control planes take 10-15 min, deletions of node groups up to 20.
        Self {
            min_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(30),
            total: Duration::from_secs(45 * 60),
        }
    }
}

/// What one poll saw.
pub enum Seen<T> {
    Done(T),
    /// Still in a transitional status (named, for the timeout message).
    Pending(String),
}

#[derive(Debug)]
enum PollError {
    NotYet(String),
    Failed(ProviderError),
}

/// Polls `check` until it reports `Done`, a non-retryable error, or the policy's total runs out.
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
                Ok(Seen::Pending(status)) => Err(PollError::NotYet(status)),
                Err(e) => Err(PollError::Failed(e)),
            }
        }
    };
    let retryable = |e: &PollError| match e {
        PollError::NotYet(_) => true,
        PollError::Failed(p) => p.is_retryable(),
    };
    match attempt.retry(backoff).when(retryable).await {
        Ok(v) => Ok(v),
        Err(PollError::Failed(e)) => Err(e),
        Err(PollError::NotYet(status)) => Err(ProviderError::Fatal(format!(
            "{what} still {status} after {}; it may finish later, and the next plan will read it",
            humantime_secs(policy.total)
        ))),
    }
}

fn humantime_secs(d: Duration) -> String {
    format!("{} min", d.as_secs() / 60)
}
