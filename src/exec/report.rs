//! What a run did, step by step: the [`Report`] that [`execute`](super::execute) returns.

use std::time::Duration;

use serde::Serialize;

use super::StepKind;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "detail", rename_all = "snake_case")]
pub enum StepStatus {
    Succeeded,
    Failed(String),
    Skipped(String),
    /// Stopped by Ctrl-C or SIGTERM before it finished.
    Interrupted(String),
    NotStarted,
}

/// In words, for people: `failed: <why>`, never the Rust form `Failed("…")`.
impl std::fmt::Display for StepStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Succeeded => f.write_str("succeeded"),
            Self::Failed(why) => write!(f, "failed: {why}"),
            Self::Skipped(why) => write!(f, "skipped: {why}"),
            Self::Interrupted(why) => write!(f, "interrupted: {why}"),
            Self::NotStarted => f.write_str("not started"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub address: String,
    pub kind: StepKind,
    pub status: StepStatus,
    pub retries: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub steps: Vec<StepReport>,
    pub interrupted: bool,
    pub retries: u64,
    #[serde(with = "humantime_serde_ms")]
    pub elapsed: Duration,
    /// Why the run stopped before its end though no step failed: a rollout's gate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub halted: Option<String>,
    /// Said at the end of the run (placements set aside, whose changes wait).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

mod humantime_serde_ms {
    pub fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

impl Report {
    fn count(&self, f: impl Fn(&StepStatus) -> bool) -> usize {
        self.steps.iter().filter(|s| f(&s.status)).count()
    }
    pub fn succeeded(&self) -> usize {
        self.count(|s| *s == StepStatus::Succeeded)
    }
    pub fn failed(&self) -> usize {
        self.count(|s| matches!(s, StepStatus::Failed(_)))
    }
    pub fn skipped(&self) -> usize {
        self.count(|s| matches!(s, StepStatus::Skipped(_)))
    }
    pub fn not_started(&self) -> usize {
        self.count(|s| *s == StepStatus::NotStarted)
    }
    pub fn interrupted_steps(&self) -> usize {
        self.count(|s| matches!(s, StepStatus::Interrupted(_)))
    }
    pub fn is_success(&self) -> bool {
        self.succeeded() == self.steps.len() && self.halted.is_none()
    }
}
