//! The kind backend's description (catalog, limits) and how its provider is built.

use std::sync::Arc;

use tessera_provider_api::{
    Arch, Backend, BuildContext, BuildError, Catalog, ClusterTemplate, MachineCatalog, Provider, ProviderRef, Schema,
    SpecField, Violation,
};

use crate::config::KindOptions;
use crate::{KindProvider, KindSettings, images};

pub const KIND: &str = "kind";

/// kind runs nodes as containers: any size, no regions, no spot; the Kubernetes minors with a
/// pinned node image.
pub fn catalog() -> Catalog {
    Catalog {
        provider: KIND.into(),
        regions: Vec::new(),
        machines: MachineCatalog::Any { name: "kindest/node".into() },
        versions: images::versions(),
        supports_spot: false,
    }
}

/// The arch of this host, as node images are built for it (`None`: neither amd64 nor arm64).
pub fn host_arch() -> Option<Arch> {
    match std::env::consts::ARCH {
        "x86_64" => Some(Arch::Amd64),
        "aarch64" => Some(Arch::Arm64),
        _ => None,
    }
}

/// Pools whose arch is not the host's: a kind node is a container of the host's arch (the node
/// images are multi-arch, and Docker runs the host's variant).
pub fn validate_for_host(cluster: &ClusterTemplate, host: Option<Arch>) -> Vec<Violation> {
    cluster
        .pools
        .iter()
        .filter(|p| Some(p.machine.arch) != host)
        .map(|p| {
            let host_name = host.map_or_else(|| std::env::consts::ARCH.to_string(), |a| a.to_string());
            Violation::new(
                SpecField::Pool(p.name.clone()),
                format!(
                    "kind cannot run {} nodes on this {host_name} host: its nodes are containers of the host's arch",
                    p.machine.arch
                ),
                match host {
                    Some(a) => format!("use `arch: {a}` for kind placements, or run this placement on a cloud"),
                    None => "kind node images are made for amd64 and arm64 hosts".to_string(),
                },
            )
        })
        .collect()
}

pub struct KindBackend;

impl Backend for KindBackend {
    /// kind's config names files in its work directory (the audit policy), so lowering reads
    /// where that is from the settings.
    fn lower(
        &self,
        cluster: &ClusterTemplate,
        provider: &ProviderRef,
        settings: &tessera_provider_api::Extensions,
    ) -> Vec<tessera_provider_api::ResourceSpec> {
        let settings = settings.get::<KindSettings>().cloned().unwrap_or_default();
        crate::lower::lower(cluster, provider, crate::record::Workdir::new(settings.state_dir).root())
    }

    fn kube_access(
        &self,
        cluster: &ClusterTemplate,
        _provider: &ProviderRef,
    ) -> Option<tessera_provider_api::KubeAccess> {
        Some(crate::lower::kube_access(cluster))
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    fn schemas(&self) -> Vec<Schema> {
        crate::types::TYPES.schemas().cloned().collect()
    }

    fn catalog(&self, provider: &ProviderRef) -> Option<Catalog> {
        KindOptions::of(provider).map(|_| catalog())
    }

    fn validate(&self, cluster: &ClusterTemplate, _provider: &ProviderRef) -> Vec<Violation> {
        let mut out = validate_for_host(cluster, host_arch());
        out.extend(tessera_provider_api::backend::api_access_unused(
            cluster,
            "kind serves the Kubernetes API on this machine only (127.0.0.1)",
        ));
        out
    }

    fn build(&self, ctx: &BuildContext<'_>) -> Result<Arc<dyn Provider>, BuildError> {
        let settings = ctx.extensions.get::<KindSettings>().cloned().unwrap_or_default();
        Ok(Arc::new(KindProvider::new(settings)))
    }
}
