//! Read-only providers: a provider decorator, like [`crate::throttle::Throttled`]. Every mutating
//! call is refused here, before any request is made (or any client built). Outside `tessera
//! pipeline apply`, every resource of a pipeline-only placement or provider is reached through
//! one: the registry wraps a provider per placement (see `Registry::for_placement`), so a rule
//! written for placements holds even where the CLI's own up-front check is bypassed.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tessera_provider_api::{Attrs, Catalog, Operation, Outcome, Provider, ProviderError, Request};

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
    /// Reads and finds pass; every change is refused here, before any request is made.
    async fn call(&self, request: Request<'_>) -> Result<Outcome, ProviderError> {
        match request.operation() {
            None => self.inner.call(request).await,
            Some(_) => Err(self.refuse()),
        }
    }
}
