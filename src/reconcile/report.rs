//! What one tick found and did: its result, per-placement counts, and the tick event's body.
//!
//! The tick fills it in, the metrics record it and the events print it; it is kept apart from the
//! tick so that neither of those needs the tick itself.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TickResult {
    InSync,
    /// Changed outside Tessera (or a node without its core services).
    Drift,
    /// Git has changes not yet applied.
    Pending,
    Error,
    /// Another run held the state lock.
    Skipped,
}

impl TickResult {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InSync => "in_sync",
            Self::Drift => "drift",
            Self::Pending => "pending",
            Self::Error => "error",
            Self::Skipped => "skipped",
        }
    }

    /// `--once`: 0 in sync, 2 drift or pending, 1 otherwise (an error, or a tick that could not
    /// look because an apply held the lock).
    pub fn exit_code(self) -> u8 {
        match self {
            Self::InSync => 0,
            Self::Drift | Self::Pending => 2,
            Self::Error | Self::Skipped => 1,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PlacementReport {
    pub name: String,
    pub drifted_resources: usize,
    pub drifted_fields: usize,
    pub pending: usize,
    /// Pool → uncovered nodes.
    pub uncovered: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TickReport {
    pub result: TickResult,
    pub source: String,
    pub commit: Option<String>,
    #[serde(serialize_with = "millis")]
    pub duration: Duration,
    pub placements: Vec<PlacementReport>,
    /// Addresses of the actions applied to undo drift.
    pub corrected: Vec<String>,
    /// Plan files written for the pipeline.
    pub plan_files: Vec<PathBuf>,
    pub error: Option<String>,
    #[serde(skip)]
    pub drift: Vec<crate::plan::Drift>,
    /// The wave where a rollout halted (state's record), if one did: the loop reports it and
    /// never moves it on.
    pub rollout_halted: Option<usize>,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u128(d.as_millis())
}

impl TickReport {
    pub fn pending(&self) -> usize {
        self.placements.iter().map(|p| p.pending).sum()
    }
    pub fn uncovered(&self) -> usize {
        self.placements.iter().flat_map(|p| p.uncovered.values()).sum()
    }
}

/// The tick event's body.
pub fn tick_json(r: &TickReport) -> serde_json::Value {
    json!({
        "event": "tick",
        "result": r.result,
        "source": r.source,
        "commit": r.commit,
        "duration_ms": r.duration.as_millis() as u64,
        "drifted_fields": r.drift.len(),
        "pending": r.pending(),
        "uncovered": r.uncovered(),
        "placements": r.placements,
        "corrected": r.corrected,
        "plan_files": r.plan_files,
        "error": r.error,
        "rollout_halted_wave": r.rollout_halted,
    })
}
