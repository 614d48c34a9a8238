//! The AKS backend's description (catalog, scope, credentials, what validation reports) and how
//! its provider is built from settings, the environment and the sealed credentials.

use std::path::PathBuf;
use std::sync::Arc;

use secrecy::SecretString;
use tessera_provider_api::poll::PollPolicy;
use tessera_provider_api::{
    Backend, BuildContext, BuildError, Catalog, ClusterTemplate, CredentialSection, Provider, ProviderRef, ScopeKey,
    SpecField, Violation, catalogs,
};

use crate::auth::{AzureIdentity, SignIn, StaticToken, TokenSource};
use crate::lower::{CRITICAL_ADDONS_ONLY, DEDICATED_SYSTEM, system_pool, unfit_for_system};
use crate::{AksProvider, AksSettings};

pub const KIND: &str = "aks";

/// Points the backend at another ARM endpoint (a fixture, a proxy).
pub const ENDPOINT_ENV: &str = "AZURE_ENDPOINT";
/// A bearer token to use as is (a fixture; or `az account get-access-token` piped in).
pub const TOKEN_ENV: &str = "AZURE_ACCESS_TOKEN";
pub const PUBLIC_CLOUD: &str = "https://management.azure.com";

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

impl Backend for AksBackend {
    fn lower(
        &self,
        cluster: &ClusterTemplate,
        provider: &ProviderRef,
        _settings: &tessera_provider_api::Extensions,
    ) -> Vec<tessera_provider_api::ResourceSpec> {
        crate::lower::lower(&tessera_provider_api::catalogs::aks(), cluster, provider)
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

    /// AKS needs a system pool that is on demand and has no `NoSchedule`/`NoExecute` taint. When
    /// no pool of the spec is one, Tessera adds a small one: said here, as a warning, so the
    /// extra nodes are never a surprise.
    fn validate(&self, cluster: &ClusterTemplate, _provider: &ProviderRef) -> Vec<Violation> {
        let mut out = tessera_provider_api::backend::node_limits(cluster, &tessera_provider_api::catalogs::AKS_NODES);
        out.extend(system_pool_warning(cluster));
        out.extend(tessera_provider_api::backend::api_access(cluster, &tessera_provider_api::catalogs::AKS_API));
        out.extend(tessera_provider_api::backend::private_always(cluster, "AKS"));
        out
    }

    fn build(&self, ctx: &BuildContext<'_>) -> Result<Arc<dyn Provider>, BuildError> {
        let mut settings = ctx.extensions.get::<AksSettings>().cloned().unwrap_or_default();
        if settings.endpoint.is_none() {
            settings.endpoint = std::env::var(ENDPOINT_ENV).ok().filter(|v| !v.is_empty());
        }
        let invalid = |e: tessera_provider_api::ProviderError| BuildError::Invalid(e.to_string());
        if let Some(creds) = ctx.credentials {
            // Sealed pipeline credentials replace every ambient sign-in.
            let key = |k: &str| creds.expose(k).map(str::to_string);
            let (tenant, client) = key("tenantId").zip(key("clientId")).ok_or_else(|| {
                BuildError::Invalid("the sealed `azure` section needs `tenantId` and `clientId`".into())
            })?;
            let how = match (creds.expose("clientSecret"), key("federatedTokenFile")) {
                (Some(secret), _) => {
                    SignIn::ClientSecret { tenant, client, secret: SecretString::from(secret.to_string()) }
                }
                (None, Some(file)) => SignIn::Federated { tenant, client, token_file: PathBuf::from(file) },
                (None, None) => {
                    return Err(BuildError::Invalid(
                        "the sealed `azure` section needs `clientSecret` or `federatedTokenFile`".into(),
                    ));
                }
            };
            settings.token = Some(Arc::new(AzureIdentity::new(how).map_err(invalid)?));
        }
        if settings.token.is_none() {
            settings.token = Some(ambient().map_err(invalid)?);
        }
        if settings.poll.is_none() {
            settings.poll = Some(PollPolicy::from_env().map_err(BuildError::Invalid)?);
        }
        let subscription = ctx.provider.scope.get("subscription").cloned().ok_or_else(|| {
            BuildError::Invalid(format!("the aks provider {} has no `scope.subscription`", ctx.provider))
        })?;
        Ok(Arc::new(AksProvider::new(subscription, settings).map_err(invalid)?))
    }
}

/// The sign-in of this environment: a token handed in, workload identity (a federated token file,
/// as in CI and on AKS), else the Azure CLI's login.
fn ambient() -> Result<Arc<dyn TokenSource>, tessera_provider_api::ProviderError> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let Some(token) = var(TOKEN_ENV) {
        return Ok(Arc::new(StaticToken(SecretString::from(token))));
    }
    if let (Some(tenant), Some(client), Some(file)) =
        (var("AZURE_TENANT_ID"), var("AZURE_CLIENT_ID"), var("AZURE_FEDERATED_TOKEN_FILE"))
    {
        return Ok(Arc::new(AzureIdentity::new(SignIn::Federated {
            tenant,
            client,
            token_file: PathBuf::from(file),
        })?));
    }
    Ok(Arc::new(AzureIdentity::new(SignIn::AzureCli)?))
}

/// AKS needs a system pool; when no pool of the spec can be one, Tessera adds one (a warning).
fn system_pool_warning(cluster: &ClusterTemplate) -> Vec<Violation> {
    if system_pool(cluster).is_some() || cluster.pools.is_empty() {
        return Vec::new();
    }
    let why: Vec<String> =
        cluster.pools.iter().filter_map(|p| unfit_for_system(p).map(|why| format!("`{}`: {why}", p.name))).collect();
    let first = cluster.pools[0].name.clone();
    vec![Violation::warning(
        SpecField::Pool(first),
        format!(
            "no pool can be AKS's system pool ({}), so Tessera adds one of 1 to 3 {} vCPU / {} GiB nodes \
             tainted {CRITICAL_ADDONS_ONLY}",
            why.join("; "),
            DEDICATED_SYSTEM.vcpu,
            DEDICATED_SYSTEM.memory_gib
        ),
        "to run system pods on a pool of yours instead, give one on-demand pool at least one node and no \
         NoSchedule or NoExecute taint",
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_checked() {
        assert!(subscription("6f1c2a3b-0d4e-4f5a-8b9c-0123456789ab").is_ok());
        assert!(subscription("my-subscription").is_err());
        assert!(resource_group("rg-platform_1").is_ok());
        assert!(resource_group("bad/name").is_err() && resource_group("").is_err());
    }
}
