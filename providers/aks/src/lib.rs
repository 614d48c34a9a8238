//! `aks`: Azure Kubernetes Service.
//!
//! What exists today is the backend's description: its catalog, the limits AKS enforces (checked
//! at validation, so a spec that validates does not fail at apply), the placement's scope (an
//! Azure subscription and, optionally, an existing resource group) and the `azure` section of the
//! sealed credentials. Its cloud calls, over Azure Resource Manager 2024-09-01, come with their
//! own issue; until then it lowers to the shared shapes and refuses to apply ([`PlanOnly`]).

use std::sync::Arc;

use tessera_provider_api::{
    Backend, BuildContext, BuildError, Catalog, ClusterTemplate, CredentialSection, Provider, ProviderRef, ScopeKey,
    SpecField, Violation, catalogs,
};
use tessera_sim::PlanOnly;

pub const KIND: &str = "aks";

/// AKS names node pools with 1 to 12 lowercase letters and digits, starting with a letter.
pub const MAX_POOL_NAME: usize = 12;

pub struct AksBackend;

fn subscription(v: &str) -> Result<(), String> {
    let groups: Vec<&str> = v.split('-').collect();
    let shape = [8, 4, 4, 4, 12];
    let ok = groups.len() == shape.len()
        && groups.iter().zip(shape).all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()));
    if ok { Ok(()) } else { Err("a subscription id is a GUID".into()) }
}

fn resource_group(v: &str) -> Result<(), String> {
    let ok = (1..=90).contains(&v.len())
        && v.chars().all(|c| c.is_alphanumeric() || "-_.()".contains(c))
        && !v.ends_with('.');
    if ok { Ok(()) } else { Err("1 to 90 letters, digits, '-', '_', '.', '(' or ')', not ending in '.'".into()) }
}

const SCOPE: &[ScopeKey] = &[
    ScopeKey {
        name: "subscription",
        required: true,
        example: "subscription: 00000000-0000-0000-0000-000000000000",
        check: subscription,
    },
    ScopeKey { name: "resourceGroup", required: false, example: "resourceGroup: rg-platform", check: resource_group },
];

/// Whether `name` is a valid AKS node pool name.
pub fn is_pool_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.len() <= MAX_POOL_NAME
}

impl Backend for AksBackend {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn catalog(&self, _provider: &ProviderRef) -> Option<Catalog> {
        Some(catalogs::aks())
    }

    fn scope_keys(&self) -> &'static [ScopeKey] {
        SCOPE
    }

    fn credentials(&self) -> Option<CredentialSection> {
        Some(CredentialSection {
            name: "azure",
            required: &["tenantId", "clientId"],
            one_of: &[&["clientSecret", "federatedTokenFile"]],
        })
    }

    fn validate(&self, cluster: &ClusterTemplate, _provider: &ProviderRef) -> Vec<Violation> {
        cluster
            .pools
            .iter()
            .filter(|p| !is_pool_name(&p.name))
            .map(|p| {
                Violation::new(
                    SpecField::Pool(p.name.clone()),
                    format!("AKS cannot name a node pool `{}`", p.name),
                    format!(
                        "AKS pool names are 1 to {MAX_POOL_NAME} lowercase letters and digits, starting with a letter \
                         (e.g. `{}`)",
                        suggestion(&p.name)
                    ),
                )
            })
            .collect()
    }

    fn build(&self, _ctx: &BuildContext<'_>) -> Result<Arc<dyn Provider>, BuildError> {
        Ok(Arc::new(PlanOnly::new(KIND)?))
    }
}

/// The name with what AKS refuses taken out, for the hint.
fn suggestion(name: &str) -> String {
    let kept: String = name.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect();
    let kept = kept.trim_start_matches(|c: char| c.is_ascii_digit());
    let short: String = kept.chars().take(MAX_POOL_NAME).collect();
    if short.is_empty() { "pool1".into() } else { short }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_names_follow_aks() {
        for ok in ["system", "infra2", "a", "abcdefghijkl"] {
            assert!(is_pool_name(ok), "{ok}");
        }
        for bad in ["", "system-pool", "Infra", "1pool", "abcdefghijklm"] {
            assert!(!is_pool_name(bad), "{bad}");
        }
        assert_eq!(suggestion("system-pool-x"), "systempoolx");
        assert!(is_pool_name(&suggestion("2-Batch-Workers-Long")));
    }

    #[test]
    fn scopes_are_checked() {
        assert!(subscription("6f1c2a3b-0d4e-4f5a-8b9c-0123456789ab").is_ok());
        assert!(subscription("my-subscription").is_err());
        assert!(resource_group("rg-platform_1").is_ok());
        assert!(resource_group("bad/name").is_err() && resource_group("").is_err());
    }
}
