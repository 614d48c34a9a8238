//! The `kube` backend: not placeable, built from a cluster's connection.

use std::sync::Arc;

use tessera_kube::contract::KIND;
use tessera_provider_api::{Backend, BuildContext, BuildError, Catalog, Provider, ProviderRef, Schema};

use crate::{KubeClientSettings, KubeProvider};

/// Real Kubernetes API servers. Settings: [`KubeClientSettings`] in the build's extensions.
pub struct KubeBackend;

impl Backend for KubeBackend {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// The types inside a cluster, as [`tessera_kube::schemas`] declares them.
    fn schemas(&self) -> Vec<Schema> {
        crate::types::TYPES.schemas().cloned().collect()
    }

    fn catalog(&self, _provider: &ProviderRef) -> Option<Catalog> {
        Some(crate::catalog())
    }

    /// A Kubernetes provider is configured from a cluster, never named by a placement.
    fn places_clusters(&self) -> bool {
        false
    }

    fn build(&self, ctx: &BuildContext<'_>) -> Result<Arc<dyn Provider>, BuildError> {
        let settings = ctx.extensions.get::<KubeClientSettings>().cloned().unwrap_or_default();
        Ok(Arc::new(KubeProvider::new(ctx.provider.clone(), ctx.connection.cloned(), settings)))
    }
}
