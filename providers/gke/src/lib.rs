//! `gke`: Google Kubernetes Engine.
//!
//! What exists today is the backend's description: its catalog, the limits GKE enforces (checked
//! at validation), the placement's scope (a GCP project) and the `gcp` section of the sealed
//! credentials. Its cloud calls, on google-cloud-container-v1, come with their own issue; until
//! then it lowers to the shared shapes and refuses to apply ([`PlanOnly`]).

use std::sync::Arc;

use tessera_provider_api::{
    Backend, BuildContext, BuildError, Catalog, ClusterTemplate, CredentialSection, Provider, ProviderRef, ScopeKey,
    SpecField, Violation, catalogs,
};
use tessera_sim::PlanOnly;

pub const KIND: &str = "gke";

/// GKE cluster names are at most 40 characters.
pub const MAX_CLUSTER_NAME: usize = 40;

pub struct GkeBackend;

/// GCP project ids: 6 to 30 lowercase letters, digits and hyphens, starting with a letter and not
/// ending with a hyphen.
fn project(v: &str) -> Result<(), String> {
    let ok = (6..=30).contains(&v.len())
        && v.starts_with(|c: char| c.is_ascii_lowercase())
        && !v.ends_with('-')
        && v.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err("a project id is 6 to 30 lowercase letters, digits and '-', starting with a letter".into())
    }
}

const SCOPE: &[ScopeKey] =
    &[ScopeKey { name: "project", required: true, example: "project: acme-platform", check: project }];

impl Backend for GkeBackend {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn catalog(&self, _provider: &ProviderRef) -> Option<Catalog> {
        Some(catalogs::gke())
    }

    fn scope_keys(&self) -> &'static [ScopeKey] {
        SCOPE
    }

    fn credentials(&self) -> Option<CredentialSection> {
        Some(CredentialSection {
            name: "gcp",
            required: &[],
            one_of: &[&["serviceAccountKey", "workloadIdentityConfig"]],
        })
    }

    fn validate(&self, cluster: &ClusterTemplate, _provider: &ProviderRef) -> Vec<Violation> {
        let name = format!("{}-{}", cluster.fleet, cluster.placement);
        if name.len() <= MAX_CLUSTER_NAME {
            return Vec::new();
        }
        vec![Violation::new(
            SpecField::PlacementName,
            format!("GKE cluster name `{name}` is {} characters; GKE allows {MAX_CLUSTER_NAME}", name.len()),
            "cluster names are `{fleet}-{placement}`: shorten the placement or the fleet name",
        )]
    }

    fn build(&self, _ctx: &BuildContext<'_>) -> Result<Arc<dyn Provider>, BuildError> {
        Ok(Arc::new(PlanOnly::new(KIND)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_ids_are_checked() {
        assert!(project("acme-platform").is_ok());
        for bad in ["acme", "Acme-platform", "acme-platform-", "1acme-platform", "acme_platform"] {
            assert!(project(bad).is_err(), "{bad}");
        }
    }
}
