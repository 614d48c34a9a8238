//! The EKS backend's description (catalog, limits, scope, credentials) and how its provider is
//! built from settings and sealed credentials.

use std::sync::Arc;

use tessera_provider_api::{
    Backend, BuildContext, BuildError, Catalog, ClusterTemplate, CredentialSection, Network, Provider, ProviderRef,
    ScopeKey, SpecField, Violation, catalogs,
};

use crate::{EksProvider, EksSettings};

pub const KIND: &str = "eks";

/// VPC CIDRs EKS accepts are /16 to /28; Tessera cuts one /(n+4) subnet per zone, and subnets
/// stop at /28, so the network itself is /16 to /24.
pub const NETWORK_PREFIXES: std::ops::RangeInclusive<u32> = 16..=24;

pub struct EksBackend;

fn account(v: &str) -> Result<(), String> {
    if v.len() == 12 && v.chars().all(|c| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err("an AWS account id is 12 digits".into())
    }
}

fn profile(v: &str) -> Result<(), String> {
    let ok = !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok { Ok(()) } else { Err("a profile name from ~/.aws/config: letters, digits, '-', '_' and '.'".into()) }
}

const SCOPE: &[ScopeKey] = &[
    ScopeKey { name: "account", required: false, example: "account: \"123456789012\"", check: account },
    ScopeKey { name: "profile", required: false, example: "profile: platform-prod", check: profile },
];

impl Backend for EksBackend {
    fn lower(
        &self,
        cluster: &ClusterTemplate,
        provider: &ProviderRef,
        _settings: &tessera_provider_api::Extensions,
    ) -> Vec<tessera_provider_api::ResourceSpec> {
        crate::lower::lower(&catalogs::eks(), cluster, provider)
    }

    fn schemas(&self) -> Vec<tessera_provider_api::Schema> {
        crate::types::types().schemas().cloned().collect()
    }

    fn kube_access(
        &self,
        cluster: &ClusterTemplate,
        provider: &ProviderRef,
    ) -> Option<tessera_provider_api::KubeAccess> {
        Some(crate::lower::kube_access(cluster, provider))
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    fn catalog(&self, _provider: &ProviderRef) -> Option<Catalog> {
        Some(catalogs::eks())
    }

    fn scope_keys(&self) -> &'static [ScopeKey] {
        SCOPE
    }

    fn credentials(&self) -> Option<CredentialSection> {
        Some(CredentialSection { name: "aws", required: &["accessKeyId", "secretAccessKey"], one_of: &[] })
    }

    fn validate(&self, cluster: &ClusterTemplate, _provider: &ProviderRef) -> Vec<Violation> {
        let mut out = Vec::new();
        if let Network::Managed { cidr } = &cluster.network {
            let prefix = cidr.split_once('/').and_then(|(_, p)| p.parse::<u32>().ok());
            if prefix.is_some_and(|p| !NETWORK_PREFIXES.contains(&p)) {
                out.push(Violation::new(
                    SpecField::Network,
                    format!(
                        "EKS cannot use the network {cidr}: a VPC is /16 to /28, and each zone's subnet is a /(n+4)"
                    ),
                    format!(
                        "use a /{} to /{} network, e.g. 10.0.0.0/16",
                        NETWORK_PREFIXES.start(),
                        NETWORK_PREFIXES.end()
                    ),
                ));
            }
        }
        out.extend(tessera_provider_api::backend::node_limits(cluster, &tessera_provider_api::catalogs::EKS_NODES));
        out.extend(tessera_provider_api::backend::api_access(cluster, &tessera_provider_api::catalogs::EKS_API));
        let access = &cluster.api_access;
        if !access.private && !access.restricted_to().is_empty() {
            out.push(Violation::warning(
                SpecField::ApiAccess,
                "with `private: false` and `allowedCidrs`, the nodes reach the API through its public address",
                "keep `private: true`, or list the network's NAT gateway addresses in `allowedCidrs`, or nodes cannot join",
            ));
        }
        out
    }

    fn build(&self, ctx: &BuildContext<'_>) -> Result<Arc<dyn Provider>, BuildError> {
        let mut settings = ctx.extensions.get::<EksSettings>().cloned().unwrap_or_default();
        if let Some(creds) = ctx.credentials {
            let key = |k: &str| creds.expose(k).map(str::to_string);
            // Sealed pipeline credentials replace the ambient chain entirely.
            settings.static_credentials = key("accessKeyId").zip(key("secretAccessKey"));
        }
        if let Some(p) = ctx.provider.scope.get("profile") {
            settings.profile = Some(p.clone());
        }
        Ok(Arc::new(EksProvider::new(ctx.provider.region.clone(), settings)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_values_are_checked() {
        assert!(account("123456789012").is_ok());
        assert!(account("12345").is_err() && account("12345678901a").is_err());
        assert!(profile("platform-prod").is_ok() && profile("bad profile").is_err());
    }
}
