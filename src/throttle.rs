//! Adaptive rate limiting per provider and region: AIMD over a token bucket.
//!
//! Each `ProviderRef` (kind, profile, region) has one [`AdaptiveRate`] shared by every call made
//! to it: refreshes, creates, updates, deletes, recovery, across all clusters in the run. Calls
//! go unthrottled until the cloud pushes back. On a throttling error the rate is set to half of
//! what was being achieved (multiplicative decrease, never below a floor); each success then adds
//! a little back (additive increase) until the limit lifts. Retries themselves are bounded by the
//! [`crate::retry::RetryPolicy`]. The token bucket is `leaky-bucket`, which paces on tokio's
//! clock, so the sim's paused-clock tests see exactly the same behaviour.
//!
//! Being the one decorator every built provider passes through, it is also where what providers
//! report has its URL user-info redacted ([`Observed::redacted`]), so no credential read back
//! from a cloud or cluster reaches a plan, state or an event.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use leaky_bucket::RateLimiter;
use serde::Serialize;
use tessera_provider_api::{Attrs, Catalog, Observed, Operation, Outcome, Provider, ProviderError, Request};
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct Aimd {
    /// Calls per second below which the rate never drops.
    pub floor: f64,
    /// Above this the limiter lifts entirely.
    pub ceiling: f64,
    /// Multiplier on throttling.
    pub decrease: f64,
    /// Calls per second added back per success.
    pub increase: f64,
}

impl Default for Aimd {
    fn default() -> Self {
        Self { floor: 0.5, ceiling: 50.0, decrease: 0.5, increase: 0.25 }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RateStats {
    pub throttles: u64,
    pub successes: u64,
    /// The lowest rate the limiter dropped to (calls/s), if it ever engaged.
    pub lowest_rate: Option<f64>,
    /// The current limit, if engaged.
    pub rate: Option<f64>,
}

struct State {
    rate: Option<f64>,
    limiter: Option<Arc<RateLimiter>>,
    /// Calls started in the current one-second window, to estimate the achieved rate.
    window_start: Instant,
    window_calls: u64,
    achieved: f64,
    stats: RateStats,
}

pub struct AdaptiveRate {
    config: Aimd,
    state: Mutex<State>,
}

fn bucket(rate: f64) -> Arc<RateLimiter> {
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    Arc::new(RateLimiter::builder().initial(1).max(1).refill(1).interval(interval).build())
}

impl AdaptiveRate {
    pub fn new(config: Aimd) -> Self {
        Self {
            config,
            state: Mutex::new(State {
                rate: None,
                limiter: None,
                window_start: Instant::now(),
                window_calls: 0,
                achieved: 0.0,
                stats: RateStats::default(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn stats(&self) -> RateStats {
        self.lock().stats.clone()
    }

    /// Waits for a token when the limit is engaged.
    pub async fn acquire(&self) {
        let limiter = {
            let mut s = self.lock();
            let now = Instant::now();
            let elapsed = now.duration_since(s.window_start);
            if elapsed >= Duration::from_secs(1) {
                s.achieved = s.window_calls as f64 / elapsed.as_secs_f64();
                s.window_start = now;
                s.window_calls = 0;
            }
            s.window_calls += 1;
            s.limiter.clone()
        };
        if let Some(l) = limiter {
            l.acquire_one().await;
        }
    }

    pub fn on_throttle(&self) {
        let mut s = self.lock();
        let current = s.rate.unwrap_or_else(|| s.achieved.max(s.window_calls as f64).max(self.config.floor * 2.0));
        let rate = (current * self.config.decrease).max(self.config.floor);
        s.rate = Some(rate);
        s.limiter = Some(bucket(rate));
        s.stats.throttles += 1;
        s.stats.rate = Some(rate);
        s.stats.lowest_rate = Some(s.stats.lowest_rate.map_or(rate, |l| l.min(rate)));
    }

    pub fn on_success(&self) {
        let mut s = self.lock();
        s.stats.successes += 1;
        let Some(rate) = s.rate else { return };
        let rate = rate + self.config.increase;
        if rate >= self.config.ceiling {
            s.rate = None;
            s.limiter = None;
            s.stats.rate = None;
        } else {
            // Rebuilding the bucket on every success would reset its pacing; step in whole calls/s.
            if rate.floor() > s.rate.unwrap_or_default().floor() {
                s.limiter = Some(bucket(rate));
            }
            s.rate = Some(rate);
            s.stats.rate = Some(rate);
        }
    }

    fn observe<T>(&self, result: &Result<T, ProviderError>) {
        match result {
            Err(e) if e.is_throttle() => self.on_throttle(),
            Ok(_) => self.on_success(),
            Err(_) => {}
        }
    }
}

/// A provider whose every cloud call passes through a shared [`AdaptiveRate`].
pub struct Throttled {
    pub inner: Arc<dyn Provider>,
    pub rate: Arc<AdaptiveRate>,
}

#[async_trait]
impl Provider for Throttled {
    fn catalog(&self) -> &Catalog {
        self.inner.catalog()
    }
    fn estimate(&self, rtype: &str, op: Operation) -> Duration {
        self.inner.estimate(rtype, op)
    }
    fn max_in_flight(&self) -> usize {
        self.inner.max_in_flight()
    }
    fn kubeconfig(&self, rtype: &str, attrs: &Attrs) -> Option<serde_json::Value> {
        self.inner.kubeconfig(rtype, attrs)
    }
    async fn preflight(&self) -> Result<(), ProviderError> {
        self.inner.preflight().await
    }
    /// Every call waits its turn at the shared rate, and what comes back is redacted before the
    /// engine sees it (plans, state and errors never hold a provider's secrets).
    async fn call(&self, request: Request<'_>) -> Result<Outcome, ProviderError> {
        self.rate.acquire().await;
        let result = self.inner.call(request).await;
        self.rate.observe(&result);
        result.map(|outcome| match outcome {
            Outcome::Looked(o) => Outcome::Looked(o.map(Observed::redacted)),
            Outcome::Made(o) => Outcome::Made(o.redacted()),
            Outcome::Gone => Outcome::Gone,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn halves_on_throttling_and_recovers_additively() {
        let r = AdaptiveRate::new(Aimd { floor: 1.0, ceiling: 10.0, decrease: 0.5, increase: 1.0 });
        assert_eq!(r.stats().rate, None, "unthrottled until the cloud pushes back");
        for _ in 0..8 {
            r.acquire().await;
        }
        r.on_throttle();
        let first = r.stats().rate.unwrap();
        assert!((first - 4.0).abs() < 1e-9, "half of the 8 calls/s achieved: {first}");
        r.on_throttle();
        assert!((r.stats().rate.unwrap() - 2.0).abs() < 1e-9);
        for _ in 0..20 {
            r.on_throttle();
        }
        assert_eq!(r.stats().rate, Some(1.0), "never below the floor");
        for _ in 0..8 {
            r.on_success();
        }
        assert_eq!(r.stats().rate, Some(9.0));
        r.on_success();
        assert_eq!(r.stats().rate, None, "the limit lifts at the ceiling");
    }

    #[tokio::test(start_paused = true)]
    async fn an_engaged_limit_paces_calls() {
        let r = AdaptiveRate::new(Aimd { floor: 2.0, ceiling: 100.0, decrease: 0.5, increase: 0.0 });
        r.on_throttle(); // → floor: 2 calls/s
        let start = Instant::now();
        for _ in 0..5 {
            r.acquire().await;
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(1900) && took <= Duration::from_millis(2100), "{took:?}");
    }
}
