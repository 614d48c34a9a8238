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

use crate::pipeline::Policy;
pub use crate::pipeline::policy::LaneMode;

/// What to do with one placement's drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    Report,
    Correct,
    /// Pipeline-only under `correct-drift`: a plan file for the pipeline, never applied here.
    PlanFile,
}

#[derive(Debug, Clone, Default)]
pub struct ReconcilePolicy {
    pub policy: Option<Policy>,
}

impl ReconcilePolicy {
    pub fn new(policy: Option<Policy>) -> Self {
        Self { policy }
    }

    pub fn mode(&self, placement: &str, provider: &str) -> LaneMode {
        let Some(policy) = &self.policy else { return LaneMode::Report };
        policy.lanes.iter().find(|l| l.covers(placement, provider)).map(|l| l.reconcile).unwrap_or_default()
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
    use std::path::Path;

    use super::*;

    #[test]
    fn lane_modes_are_read_from_the_lanes_and_default_to_report() {
        let text = "apiVersion: tessera.dev/v1alpha1\nkind: Policy\napprovers:\n- { name: alice, key: 7b597afd99adf72cb7a3b38b6081f785b44a6d3847039f0957d6753f1e35871b, lanes: [local, infra] }\nlanes:\n- { name: local, approvals: 1, providers: [sim], reconcile: correct-drift }\n- { name: infra, approvals: 1 }\n";
        let policy = Policy::parse(Path::new("policy.yaml"), text).unwrap();
        let r = ReconcilePolicy::new(Some(policy));
        assert_eq!(r.mode("a", "sim"), LaneMode::CorrectDrift);
        assert_eq!(r.mode("a", "eks"), LaneMode::Report);
        let bad = text.replace("correct-drift", "fix-everything");
        assert!(Policy::parse(Path::new("policy.yaml"), &bad).is_err());
        assert_eq!(ReconcilePolicy::default().treatment("any", "sim"), Treatment::Report);
    }
}
