//! Read-only providers: a provider decorator, like [`crate::throttle::Throttled`]. Every mutating
//! call is refused here, before any request is made (or any client built). Outside `tessera
//! pipeline apply`, every resource of a pipeline-only placement or provider is reached through
//! one: the registry wraps a provider per placement (see `Registry::for_placement`), so a rule
//! written for placements holds even where the CLI's own up-front check is bypassed.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tessera_provider_api::{Attrs, Catalog, CloudId, Observed, Operation, Provider, ProviderError, ResourceSpec};

pub struct ReadOnly {
    pub inner: Arc<dyn Provider>,
    pub name: String,
}

impl ReadOnly {
    fn refuse(&self) -> ProviderError {
        ProviderError::ReadOnly(format!("{} (pipeline-only: changes go through `tessera pipeline apply`)", self.name))
    }
}

#[async_trait]
impl Provider for ReadOnly {
    fn catalog(&self) -> &Catalog {
        self.inner.catalog()
    }
    fn estimate(&self, rtype: &str, op: Operation) -> Duration {
        self.inner.estimate(rtype, op)
    }
    fn max_in_flight(&self) -> usize {
        self.inner.max_in_flight()
    }
    fn kubeconfig(&self, rtype: &str, attrs: &Attrs) -> Option<serde_json::Value> {
        self.inner.kubeconfig(rtype, attrs)
    }
    async fn preflight(&self) -> Result<(), ProviderError> {
        self.inner.preflight().await
    }
    async fn read(&self, rtype: &str, id: &CloudId) -> Result<Option<Observed>, ProviderError> {
        self.inner.read(rtype, id).await
    }
    async fn read_recorded(
        &self,
        rtype: &str,
        id: &CloudId,
        recorded: &Attrs,
    ) -> Result<Option<Observed>, ProviderError> {
        self.inner.read_recorded(rtype, id, recorded).await
    }
    async fn find(&self, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
        self.inner.find(spec).await
    }
    async fn create(&self, _spec: &ResourceSpec) -> Result<Observed, ProviderError> {
        Err(self.refuse())
    }
    async fn update(
        &self,
        _spec: &ResourceSpec,
        _id: &CloudId,
        _changed: &[String],
    ) -> Result<Observed, ProviderError> {
        Err(self.refuse())
    }
    async fn delete(&self, _rtype: &str, _id: &CloudId) -> Result<(), ProviderError> {
        Err(self.refuse())
    }
}
