use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tessera_provider_api::{
    Attrs, Catalog, CloudId, Observed, Operation, Operations, Outcome, Provider, ProviderError, Request, ResourceSpec,
    Types,
};

use crate::cloud::SimCloud;
use crate::profile::Profile;

/// A `Provider` backed by the simulated cloud, imitating one real cloud's [`Profile`].
pub struct SimProvider {
    cloud: Arc<SimCloud>,
    profile: Profile,
    /// Real durations are multiplied by this: 1.0 is real time, 0.0 is instant.
    time_scale: f64,
    max_in_flight: usize,
    types: Arc<Types<SimProvider>>,
}

impl SimProvider {
    pub fn new(cloud: Arc<SimCloud>, profile: Profile, time_scale: f64) -> Self {
        let types = Arc::new(types(&profile));
        Self { cloud, profile, time_scale: time_scale.max(0.0), max_in_flight: 10, types }
    }

    pub fn with_max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    fn latency(&self, rtype: &str, op: Operation) -> Duration {
        self.estimate(rtype, op)
    }
}

/// One shape (its type name) on the sim's one store: the store keeps any attributes, so the
/// same operations serve the three types.
struct Shapes(String);

/// The sim's types for `profile`: the shared shapes under the `sim` prefix.
pub fn types(profile: &Profile) -> Types<SimProvider> {
    crate::schemas::shapes("sim", profile).into_iter().fold(Types::new("sim"), |t, s| {
        let ops = Shapes(s.rtype.clone());
        t.register(s, ops)
    })
}

#[async_trait]
impl Operations<SimProvider> for Shapes {
    async fn read(&self, cx: &SimProvider, id: &CloudId, _: Option<&Attrs>) -> Result<Option<Observed>, ProviderError> {
        cx.cloud.read(id).await
    }

    async fn find(&self, cx: &SimProvider, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
        cx.cloud.find_owned(spec).await
    }

    async fn create(&self, cx: &SimProvider, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
        // Like the clouds' tag lookups: an object already made for this address and generation
        // (by an attempt whose answer was lost) is adopted, not duplicated.
        if let Some(existing) = cx.cloud.find_owned(spec).await? {
            return Ok(existing);
        }
        let shape = spec.rtype().rsplit('.').next().unwrap_or("res");
        let prefix = format!("{}-{shape}", cx.profile.name);
        let latency = cx.latency(spec.rtype(), Operation::Create);
        cx.cloud.create(&prefix, spec.rtype(), &spec.address.to_string(), &spec.attrs, latency).await
    }

    async fn update(
        &self,
        cx: &SimProvider,
        spec: &ResourceSpec,
        id: &CloudId,
        changed: &[String],
    ) -> Result<Observed, ProviderError> {
        let changes = changed.iter().filter_map(|f| spec.attrs.get(f).map(|v| (f.clone(), v.clone()))).collect();
        let latency = cx.latency(spec.rtype(), Operation::Update);
        cx.cloud.update(id, &spec.address.to_string(), changes, latency).await
    }

    async fn delete(&self, cx: &SimProvider, id: &CloudId) -> Result<(), ProviderError> {
        cx.cloud.delete(id, cx.latency(&self.0, Operation::Delete)).await
    }
}

#[async_trait]
impl Provider for SimProvider {
    fn catalog(&self) -> &Catalog {
        &self.profile.catalog
    }

    fn estimate(&self, rtype: &str, op: Operation) -> Duration {
        self.types.estimate(rtype, op).mul_f64(self.time_scale)
    }

    fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    async fn call(&self, request: Request<'_>) -> Result<Outcome, ProviderError> {
        self.types.call(self, request).await
    }
}
