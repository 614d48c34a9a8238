//! ## Overview
//!
//! Authority belongs to the placement. A placement's resources are made by several providers: its
//! cloud backend (`eks`) and the providers that act inside its cluster (`kube`, `simkube`), which
//! are configured from the cluster resource. A rule written about `eks` (a lane, `pipelineOnly`,
//! a reconcile mode) must hold for all of them, or a laptop could change a pipeline-only
//! cluster's monitoring by going through its Kubernetes provider.
//!
//! So every rule is asked of a placement together with every *claim* on it: a pair
//! `(placement, backend)` for
//! - the kind of each provider that acts for the placement;
//! - for a provider configured from a resource, the backend of that resource (a type names its
//!   backend before the dot: `eks.cluster` → `eks`), both for this placement and for the
//!   placement of that resource;
//! - the placement's provider in the spec, and every provider state records for it.
//!
//! Rules combine fail-closed: a placement is pipeline-only when any claim is; every lane that
//! covers any claim must approve ([`Policy::lanes_for`]); and reconcile corrects drift only when
//! every such lane says so.

use std::collections::{BTreeMap, BTreeSet};

use tessera_provider_api::ProviderRef;

use super::policy::{Lane, LaneMode, Policy};

/// The claims on each placement, gathered from a spec, a plan and state.
#[derive(Debug, Clone, Default)]
pub struct Authority {
    claims: BTreeMap<String, BTreeSet<(String, String)>>,
}

/// The backend that a resource type belongs to: the part before the dot.
fn backend_of_type(rtype: &str) -> &str {
    rtype.split_once('.').map_or(rtype, |(kind, _)| kind)
}

impl Authority {
    /// The claims of one provider acting for `placement`.
    pub fn of(placement: &str, provider: &ProviderRef) -> Self {
        let mut a = Self::default();
        a.add(placement, provider);
        a
    }

    /// Records that `provider` acts for `placement`.
    pub fn add(&mut self, placement: &str, provider: &ProviderRef) {
        let claims = self.claims.entry(placement.to_string()).or_default();
        claims.insert((placement.to_string(), provider.kind.clone()));
        if let Some(source) = &provider.connection {
            let backend = backend_of_type(&source.rtype).to_string();
            claims.insert((placement.to_string(), backend.clone()));
            claims.insert((source.placement.clone(), backend));
        }
    }

    /// Everything known to act for each placement: the spec's placements, the resources state
    /// records, and the plan's actions.
    pub fn gather(
        fleet: Option<&crate::spec::Fleet>,
        records: &[crate::state::ResourceRecord],
        actions: &[crate::plan::Action],
    ) -> Self {
        let mut a = Self::default();
        for p in fleet.map(|f| f.placements.as_slice()).unwrap_or_default() {
            a.add(&p.name, &p.provider);
        }
        for r in records {
            a.add(&r.address.placement, &r.provider);
        }
        for action in actions {
            a.add(&action.address.placement, &action.provider);
        }
        a
    }

    /// The claims on `placement`; one with no known provider still answers to its name.
    pub fn claims<'a>(&'a self, placement: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let named = std::iter::once((placement, ""));
        named.chain(self.claims.get(placement).into_iter().flatten().map(|(p, k)| (p.as_str(), k.as_str())))
    }
}

impl Policy {
    /// Whether `placement` may be changed only by `tessera pipeline apply`: when any claim on it is.
    pub fn pipeline_only_placement(&self, authority: &Authority, placement: &str) -> bool {
        authority.claims(placement).any(|(p, kind)| self.is_pipeline_only(p, kind))
    }

    /// The registry's guard under this policy: a provider acting for a placement is read-only
    /// when the placement, the provider, or the resource it is configured from is pipeline-only.
    pub fn read_only_guard(&self) -> crate::providers::MutationGuard {
        let policy = self.clone();
        std::sync::Arc::new(move |placement: &str, provider: &ProviderRef| {
            policy.pipeline_only_placement(&Authority::of(placement, provider), placement)
        })
    }

    /// Every lane that covers a claim on `placement`: each of them must approve its changes.
    pub fn lanes_for(&self, authority: &Authority, placement: &str) -> Vec<&Lane> {
        self.lanes.iter().filter(|l| authority.claims(placement).any(|(p, kind)| l.covers(p, kind))).collect()
    }

    /// What reconcile may do about `placement`'s drift: correct only when every lane that covers
    /// it says so (no lane: report).
    pub fn reconcile_mode(&self, authority: &Authority, placement: &str) -> LaneMode {
        let lanes = self.lanes_for(authority, placement);
        if !lanes.is_empty() && lanes.iter().all(|l| l.reconcile == LaneMode::CorrectDrift) {
            LaneMode::CorrectDrift
        } else {
            LaneMode::Report
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use tessera_provider_api::Address;

    use super::*;

    fn policy(lanes: &str, pipeline_only: &str) -> Policy {
        let key = hex::encode(ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key().to_bytes());
        let text = format!(
            "apiVersion: tessera.dev/v1alpha1\nkind: Policy\napprovers:\n- {{ name: a, key: {key}, lanes: [infra, local] }}\nlanes:\n{lanes}{pipeline_only}"
        );
        Policy::parse(Path::new("policy.yaml"), &text).unwrap()
    }

    fn kube_on(placement: &str, cluster: &str) -> ProviderRef {
        ProviderRef::connected("kube", Address::new(placement, cluster, "main"))
    }

    #[test]
    fn a_kubernetes_provider_answers_to_its_clusters_backend() {
        let p = policy(
            "- { name: infra, approvals: 1, providers: [eks] }\n- { name: local, approvals: 1, providers: [kind] }\n",
            "pipelineOnly: { providers: [eks] }\n",
        );
        let on_eks = Authority::of("aws", &kube_on("aws", "eks.cluster"));
        assert!(p.pipeline_only_placement(&on_eks, "aws"));
        assert_eq!(p.lanes_for(&on_eks, "aws").iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["infra"]);
        let on_kind = Authority::of("local", &kube_on("local", "kind.cluster"));
        assert!(!p.pipeline_only_placement(&on_kind, "local"));
        assert_eq!(p.lanes_for(&on_kind, "local")[0].name, "local");
        // A connection to another placement's cluster carries that placement's rules with it.
        let borrowed = Authority::of("local", &kube_on("aws", "eks.cluster"));
        assert!(p.pipeline_only_placement(&borrowed, "local"));
    }

    #[test]
    fn placement_patterns_hold_without_any_known_provider() {
        let p = policy(
            "- { name: infra, approvals: 1 }\n- { name: local, approvals: 1 }\n",
            "pipelineOnly: { placements: [\"prod-*\"] }\n",
        );
        assert!(p.pipeline_only_placement(&Authority::default(), "prod-eu"));
        assert!(!p.pipeline_only_placement(&Authority::default(), "dev-eu"));
    }

    #[test]
    fn every_covering_lane_counts_and_reconcile_takes_the_strictest_mode() {
        let p = policy(
            "- { name: infra, approvals: 1, providers: [eks], reconcile: report }\n- { name: local, approvals: 1, placements: [\"*\"], reconcile: correct-drift }\n",
            "pipelineOnly: { providers: [] }\n",
        );
        let mut a = Authority::default();
        a.add("x", &ProviderRef::new("sim", "r"));
        assert_eq!(p.reconcile_mode(&a, "x"), LaneMode::CorrectDrift);
        a.add("x", &ProviderRef::new("eks", "r"));
        assert_eq!(p.lanes_for(&a, "x").len(), 2);
        assert_eq!(p.reconcile_mode(&a, "x"), LaneMode::Report);
    }
}
