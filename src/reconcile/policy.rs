//! What the loop may do about drift, per lane of `policy.yaml`.
//!
//! ```yaml
//! lanes:
//!   - { name: local, approvals: 1, providers: [sim, kind], reconcile: correct-drift }
//!   - { name: infra, approvals: 2, providers: [eks, aks, gke] }   # reconcile: report
//! ```
//!
//! A placement is covered by every lane that covers its name and any provider that acts for it
//! (its cloud, and the Kubernetes providers configured from its cluster); it is corrected only
//! when all of them say `correct-drift`. Without a policy, or for a placement no lane covers, the
//! mode is `report`. A pipeline-only placement is
//! never corrected, whatever its lane says: its drift becomes a plan file for the pipeline.

pub use crate::pipeline::policy::LaneMode;
use crate::pipeline::{Authority, Policy};

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

    /// The mode of every lane that covers the placement, through any provider that acts for it
    /// (see [`Authority`]): `correct-drift` only when all of them say so.
    pub fn mode(&self, authority: &Authority, placement: &str) -> LaneMode {
        self.policy.as_ref().map_or(LaneMode::Report, |p| p.reconcile_mode(authority, placement))
    }

    pub fn is_pipeline_only(&self, authority: &Authority, placement: &str) -> bool {
        self.policy.as_ref().is_some_and(|p| p.pipeline_only_placement(authority, placement))
    }

    pub fn treatment(&self, authority: &Authority, placement: &str) -> Treatment {
        match (self.mode(authority, placement), self.is_pipeline_only(authority, placement)) {
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
        let text = "apiVersion: tessera.dev/v1alpha1\nkind: Policy\napprovers:\n- { name: alice, key: 7b597afd99adf72cb7a3b38b6081f785b44a6d3847039f0957d6753f1e35871b, lanes: [local, infra] }\nlanes:\n- { name: local, approvals: 1, providers: [sim], reconcile: correct-drift }\n- { name: infra, approvals: 1, providers: [eks] }\n";
        let policy = Policy::parse(Path::new("policy.yaml"), text).unwrap();
        let r = ReconcilePolicy::new(Some(policy));
        let on = |kind: &str| Authority::of("a", &tessera_provider_api::ProviderRef::new(kind, "r"));
        assert_eq!(r.mode(&on("sim"), "a"), LaneMode::CorrectDrift);
        assert_eq!(r.mode(&on("eks"), "a"), LaneMode::Report);
        let bad = text.replace("correct-drift", "fix-everything");
        assert!(Policy::parse(Path::new("policy.yaml"), &bad).is_err());
        assert_eq!(ReconcilePolicy::default().treatment(&on("sim"), "any"), Treatment::Report);
    }
}
