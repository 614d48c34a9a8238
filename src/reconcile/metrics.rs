//! The loop's metrics, in the OpenMetrics text format (which Prometheus scrapes), through
//! `prometheus-client`, the Prometheus project's own Rust client.
//!
//! Per-placement gauges are replaced as a whole after every tick that planned: a placement whose
//! drift was put back reads 0, one that left the spec disappears. A tick that errs or is skipped
//! leaves them as the last tick that planned saw them, and says so in `runs_total`.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::report::{TickReport, TickResult};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlacementLabel {
    placement: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabel {
    placement: String,
    pool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommitLabel {
    source: String,
    commit: String,
}

pub struct Metrics {
    registry: Registry,
    runs: Family<ResultLabel, Counter>,
    duration: Histogram,
    last_success: Gauge<f64, AtomicU64>,
    drifted_resources: Family<PlacementLabel, Gauge>,
    drifted_fields: Family<PlacementLabel, Gauge>,
    pending: Family<PlacementLabel, Gauge>,
    uncovered: Family<PoolLabel, Gauge>,
    corrected: Counter,
    commit: Family<CommitLabel, Gauge>,
    rollout_halted: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tessera_reconcile");
        let runs = Family::<ResultLabel, Counter>::default();
        registry.register("runs", "Reconcile ticks by result (in_sync, drift, pending, error, skipped)", runs.clone());
        // 0.5 s to about 68 min: a sim fleet plans in milliseconds, a large real one in minutes.
        let duration = Histogram::new(exponential_buckets(0.5, 2.0, 14));
        registry.register("duration_seconds", "How long each tick took", duration.clone());
        let last_success = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "last_success_timestamp_seconds",
            "Unix time at which the last tick that planned completely ended",
            last_success.clone(),
        );
        let drifted_resources = Family::<PlacementLabel, Gauge>::default();
        registry.register("drifted_resources", "Resources changed outside Tessera", drifted_resources.clone());
        let drifted_fields = Family::<PlacementLabel, Gauge>::default();
        registry.register("drifted_fields", "Fields changed outside Tessera", drifted_fields.clone());
        let pending = Family::<PlacementLabel, Gauge>::default();
        registry.register("pending_changes", "Actions the spec asks for that are not applied yet", pending.clone());
        let uncovered = Family::<PoolLabel, Gauge>::default();
        registry.register(
            "uncovered_nodes",
            "Nodes lacking a ready pod of a core-service DaemonSet",
            uncovered.clone(),
        );
        let corrected = Counter::default();
        registry.register("corrected_actions", "Actions applied to undo drift", corrected.clone());
        let commit = Family::<CommitLabel, Gauge>::default();
        registry.register("commit_info", "The source and commit being followed (value 1)", commit.clone());
        let rollout_halted = Gauge::default();
        registry.register(
            "rollout_halted_wave",
            "The wave where a rollout halted and waits for an apply (0: none halted)",
            rollout_halted.clone(),
        );
        Self {
            registry,
            runs,
            duration,
            last_success,
            drifted_resources,
            drifted_fields,
            pending,
            uncovered,
            corrected,
            commit,
            rollout_halted,
        }
    }

    pub fn record(&self, r: &TickReport) {
        self.runs.get_or_create(&ResultLabel { result: r.result.as_str().into() }).inc();
        self.duration.observe(r.duration.as_secs_f64());
        if let Some(commit) = &r.commit {
            self.commit.clear();
            self.commit.get_or_create(&CommitLabel { source: r.source.clone(), commit: commit.clone() }).set(1);
        }
        if matches!(r.result, TickResult::Error | TickResult::Skipped) {
            return;
        }
        self.last_success.set(crate::state::now_secs() as f64);
        self.rollout_halted.set(r.rollout_halted.unwrap_or_default() as i64);
        self.corrected.inc_by(r.corrected.len() as u64);
        self.drifted_resources.clear();
        self.drifted_fields.clear();
        self.pending.clear();
        self.uncovered.clear();
        for p in &r.placements {
            let label = PlacementLabel { placement: p.name.clone() };
            self.drifted_resources.get_or_create(&label).set(p.drifted_resources as i64);
            self.drifted_fields.get_or_create(&label).set(p.drifted_fields as i64);
            self.pending.get_or_create(&label).set(p.pending as i64);
            for (pool, n) in &p.uncovered {
                let label = PoolLabel { placement: p.name.clone(), pool: pool.clone() };
                self.uncovered.get_or_create(&label).set(*n as i64);
            }
        }
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an error would only mean a label the encoder refused.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!("encoding metrics: {e}");
        }
        out
    }
}

/// What `/metrics` is served as.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
