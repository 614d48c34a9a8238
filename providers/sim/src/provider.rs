use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tessera_provider_api::{Catalog, CloudId, Observed, Operation, Provider, ProviderError, ResourceSpec};

use crate::cloud::SimCloud;
use crate::profile::{Profile, Shape};

/// A `Provider` backed by the simulated cloud, imitating one real cloud's [`Profile`].
pub struct SimProvider {
    cloud: Arc<SimCloud>,
    profile: Profile,
    /// Real durations are multiplied by this: 1.0 is real time, 0.0 is instant.
    time_scale: f64,
    max_in_flight: usize,
}

impl SimProvider {
    pub fn new(cloud: Arc<SimCloud>, profile: Profile, time_scale: f64) -> Self {
        Self { cloud, profile, time_scale: time_scale.max(0.0), max_in_flight: 10 }
    }

    pub fn with_max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    fn latency(&self, rtype: &str, op: Operation) -> Duration {
        self.estimate(rtype, op)
    }

    fn shape(rtype: &str) -> Result<Shape, ProviderError> {
        Shape::from_rtype(rtype).ok_or_else(|| ProviderError::Fatal(format!("the sim has no resource type `{rtype}`")))
    }
}

#[async_trait]
impl Provider for SimProvider {
    fn catalog(&self) -> &Catalog {
        &self.profile.catalog
    }

    fn estimate(&self, rtype: &str, op: Operation) -> Duration {
        Shape::from_rtype(rtype).map(|s| self.profile.duration(s, op).mul_f64(self.time_scale)).unwrap_or_default()
    }

    fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    async fn read(&self, _rtype: &str, id: &CloudId) -> Result<Option<Observed>, ProviderError> {
        self.cloud.read(id).await
    }

    async fn find(&self, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
        self.cloud.find_owned(spec).await
    }

    async fn create(&self, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
        Self::shape(spec.rtype())?;
        // Like the clouds' tag lookups: an object already made for this address and generation
        // (by an attempt whose answer was lost) is adopted, not duplicated.
        if let Some(existing) = self.cloud.find_owned(spec).await? {
            return Ok(existing);
        }
        let prefix = format!("{}-{}", self.profile.name, spec.rtype().rsplit('.').next().unwrap_or("res"));
        let latency = self.latency(spec.rtype(), Operation::Create);
        self.cloud.create(&prefix, spec.rtype(), &spec.address.to_string(), &spec.attrs, latency).await
    }

    async fn update(&self, spec: &ResourceSpec, id: &CloudId, changed: &[String]) -> Result<Observed, ProviderError> {
        Self::shape(spec.rtype())?;
        let changes = changed.iter().filter_map(|f| spec.attrs.get(f).map(|v| (f.clone(), v.clone()))).collect();
        let latency = self.latency(spec.rtype(), Operation::Update);
        self.cloud.update(id, &spec.address.to_string(), changes, latency).await
    }

    async fn delete(&self, rtype: &str, id: &CloudId) -> Result<(), ProviderError> {
        Self::shape(rtype)?;
        self.cloud.delete(id, self.latency(rtype, Operation::Delete)).await
    }
}
