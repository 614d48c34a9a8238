//! What the loop may do about drift, per lane of `policy.yaml`.
//!
//! ```yaml
//! lanes:
//!   - { name: local, approvals: 1, providers: [sim, kind], reconcile: correct-drift }
//!   - { name: infra, approvals: 2, providers: [eks, aks, gke] }   # reconcile: report
//! ```
//!
//! A placement belongs to the first lane that covers it (its name and its provider kind). Without
//! a policy, or for a placement no lane covers, the mode is `report`. A pipeline-only placement is
//! never corrected, whatever its lane says: its drift becomes a plan file for the pipeline.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::pipeline::Policy;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LaneMode {
    /// Report drift; change nothing.
    #[default]
    Report,
    /// Apply the actions that undo drift (never spec changes, never on a pipeline-only placement).
    CorrectDrift,
}

/// What to do with one placement's drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    Report,
    Correct,
    /// Pipeline-only under `correct-drift`: a plan file for the pipeline, never applied here.
    PlanFile,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("policy: {0}")]
#[diagnostic(code(tessera::reconcile::policy), help("a lane's `reconcile` is `report` or `correct-drift`"))]
pub struct LaneModeError(String);

#[derive(Debug, Clone, Default)]
pub struct ReconcilePolicy {
    pub policy: Option<Policy>,
    /// Lane name → mode; lanes not named are `report`.
    pub modes: BTreeMap<String, LaneMode>,
}

impl ReconcilePolicy {
    pub fn new(policy: Option<Policy>, modes: BTreeMap<String, LaneMode>) -> Self {
        Self { policy, modes }
    }

    /// Reads each lane's `reconcile:` from a policy's text, ignoring everything else (the policy
    /// itself is parsed and checked by [`Policy::parse`]).
    pub fn modes_from_text(text: &str) -> Result<BTreeMap<String, LaneMode>, LaneModeError> {
        #[derive(Deserialize)]
        struct Lanes {
            #[serde(default)]
            lanes: Vec<LaneEntry>,
        }
        #[derive(Deserialize)]
        struct LaneEntry {
            name: String,
            #[serde(default)]
            reconcile: LaneMode,
        }
        let lanes: Lanes = serde_saphyr::from_str(text).map_err(|e| LaneModeError(e.to_string()))?;
        Ok(lanes.lanes.into_iter().map(|l| (l.name, l.reconcile)).collect())
    }

    pub fn mode(&self, placement: &str, provider: &str) -> LaneMode {
        let Some(policy) = &self.policy else { return LaneMode::Report };
        policy
            .lanes
            .iter()
            .find(|l| l.covers(placement, provider))
            .and_then(|l| self.modes.get(&l.name).copied())
            .unwrap_or_default()
    }

    pub fn is_pipeline_only(&self, placement: &str, provider: &str) -> bool {
        self.policy.as_ref().is_some_and(|p| p.is_pipeline_only(placement, provider))
    }

    pub fn treatment(&self, placement: &str, provider: &str) -> Treatment {
        match (self.mode(placement, provider), self.is_pipeline_only(placement, provider)) {
            (LaneMode::Report, _) => Treatment::Report,
            (LaneMode::CorrectDrift, false) => Treatment::Correct,
            (LaneMode::CorrectDrift, true) => Treatment::PlanFile,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_modes_are_read_from_the_lanes_and_default_to_report() {
        let text = "apiVersion: x\nlanes:\n- { name: local, approvals: 1, reconcile: correct-drift }\n- { name: infra, approvals: 2 }\n";
        let modes = ReconcilePolicy::modes_from_text(text).unwrap();
        assert_eq!(modes["local"], LaneMode::CorrectDrift);
        assert_eq!(modes["infra"], LaneMode::Report);
        let err = ReconcilePolicy::modes_from_text("lanes:\n- { name: a, reconcile: fix-everything }\n");
        assert!(err.is_err());
        assert_eq!(ReconcilePolicy::default().treatment("any", "sim"), Treatment::Report);
    }
}
