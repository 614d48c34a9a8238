//! `tessera reconcile`: a long-running loop that follows a spec (a file, or a path in a git
//! repository at a ref), reports drift, pending changes and core-service coverage as metrics and
//! events, and corrects only what the policy allows.
//!
//! ## Overview
//!
//! Every `--interval` (with jitter, so that many loops do not tick together), one [`tick`]:
//! 1. fetch the source and resolve the ref to a commit ([`source`]);
//! 2. take the state lease, or skip the tick if another run holds it (counted, not an error);
//! 3. recover a crashed run's intents, plan, and verify coverage, then release the lease;
//! 4. classify ([`classify`]): *drift* (changed outside Tessera, or a node without its core
//!    services), *pending* (the spec has changes not yet applied), *in sync*, or *error*;
//! 5. per lane of `policy.yaml` ([`policy`]): `report` changes nothing; `correct-drift` applies
//!    the actions that undo drift (never spec changes) except on a pipeline-only placement, whose
//!    drift becomes a plan file in `--plan-dir` for the pipeline and its approvers.
//!
//! Ticks never overlap: the next one is scheduled when the last has ended. A tick that errs makes
//! the next wait longer (exponential backoff from one interval up to eight); a good tick resets
//! it. The lease renewer and the PostgreSQL session each retry with backoff on their own, so a
//! lost database connection costs at most a failed tick. A stop request (SIGTERM) lets the tick
//! in flight finish, then the loop returns.
//!
//! Each tick ends in a [`report`]. Metrics ([`metrics`]) and health ([`http`]) are served on
//! `--listen`; events ([`events`]) go to stdout as JSON lines.

pub mod classify;
pub mod events;
pub mod http;
pub mod metrics;
pub mod policy;
pub mod report;
pub mod source;
pub mod tick;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use rand::{Rng, SeedableRng};
use tokio::sync::watch;

pub use events::{Event, Events, Recorded, Stdout};
pub use http::Health;
pub use metrics::Metrics;
pub use policy::{LaneMode, ReconcilePolicy};
pub use report::{TickReport, TickResult};
pub use source::{GitSource, Source, SourceError};

use crate::engine::Engine;

#[derive(Debug, Clone)]
pub struct Config {
    pub interval: Duration,
    /// Each wait is the interval (or the backoff) times a random factor in `1 ± jitter`.
    pub jitter: f64,
    /// Where plan files for pipeline-only placements are written; none are without it.
    pub plan_dir: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self { interval: Duration::from_secs(300), jitter: 0.1, plan_dir: None }
    }
}

pub struct Reconciler {
    pub engine: Arc<Engine>,
    pub source: Source,
    pub policy: ReconcilePolicy,
    pub config: Config,
    pub metrics: Arc<Metrics>,
    pub events: Arc<dyn Events>,
    pub health: Arc<Health>,
    /// What renders the core services' charts when a spec is validated each tick (see
    /// [`tessera_kube::render`]); Tessera's model unless set.
    pub charts: Charts,
}

/// A chart renderer the loop can share with the blocking pool that fetches git sources.
pub type Charts = Arc<dyn tessera_kube::render::ChartRenderer + Send + Sync>;

/// Failures wait one interval, then two, four, eight, and stay at eight.
const MAX_BACKOFF_INTERVALS: u32 = 8;

impl Reconciler {
    pub fn new(
        engine: Arc<Engine>,
        source: Source,
        policy: ReconcilePolicy,
        config: Config,
        events: Arc<dyn Events>,
    ) -> Self {
        Self {
            engine,
            source,
            policy,
            config,
            metrics: Arc::new(Metrics::new()),
            events,
            health: Arc::new(Health::default()),
            charts: Arc::new(tessera_kube::render::ModelOnly),
        }
    }

    /// Validates each tick's spec with `charts` (helm's rendering where it can) instead of the model.
    pub fn with_charts(mut self, charts: Charts) -> Self {
        self.charts = charts;
        self
    }

    /// Ticks until `stop` turns true; the tick in flight then finishes and the loop returns.
    pub async fn run(&self, mut stop: watch::Receiver<bool>) {
        self.health.alive.store(true, Ordering::Relaxed);
        let seed = getrandom::u64().unwrap_or_else(|_| u64::from(std::process::id()));
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.config.interval)
            .with_max_delay(self.config.interval * MAX_BACKOFF_INTERVALS)
            .with_factor(2.0)
            .without_max_times();
        let mut failures = None;
        while !*stop.borrow() {
            let report = self.tick(stop.clone()).await;
            let base = match report.result {
                TickResult::Error => {
                    self.health.ready.store(false, Ordering::Relaxed);
                    let delays = failures.get_or_insert_with(|| backoff.build());
                    delays.next().unwrap_or(self.config.interval * MAX_BACKOFF_INTERVALS)
                }
                // The lock's holder will be done by the next interval, most likely.
                TickResult::Skipped => self.config.interval,
                _ => {
                    self.health.ready.store(true, Ordering::Relaxed);
                    failures = None;
                    self.config.interval
                }
            };
            let j = self.config.jitter.clamp(0.0, 0.9);
            let delay = base.mul_f64(if j > 0.0 { 1.0 + rng.random_range(-j..=j) } else { 1.0 });
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stopped(&mut stop) => break,
            }
        }
        self.health.alive.store(false, Ordering::Relaxed);
    }
}

/// Resolves when a stop is requested; never, if nobody can request one any more.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}
