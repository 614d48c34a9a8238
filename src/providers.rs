//! Which backend serves a placement, built once per [`ProviderRef`].
//!
//! `sim` runs against the simulated cloud; `eks` against AWS (when built with the `eks` feature,
//! the default). `aks`, `gke` and `kind` have catalogs and lowering here so that a multi-cloud
//! spec validates, compiles and plans today; their cloud calls are refused by [`PlanOnly`] until
//! each backend lands in its own crate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tessera_provider_api::{
    Catalog, CloudId, ClusterTemplate, Connection, Observed, Operation, Provider, ProviderError, ProviderRef,
    ResourceSpec, catalogs,
};
use tessera_sim::{Profile, Shape, SimCloud, SimKube, SimProvider, lower_shapes};
use tokio::sync::Semaphore;

use crate::read_only::ReadOnly;
use crate::throttle::{AdaptiveRate, Aimd, Throttled};

/// Every provider a placement may name.
pub const KINDS: [&str; 5] = ["sim", "eks", "aks", "gke", "kind"];

/// The catalog a placement validates against: the sim's profile, or the real cloud's.
pub fn catalog_for(r: &ProviderRef) -> Option<Catalog> {
    let name = if r.kind == "sim" { r.profile.as_deref()? } else { r.kind.as_str() };
    match name {
        "eks" => Some(catalogs::eks()),
        "aks" => Some(catalogs::aks()),
        "gke" => Some(catalogs::gke()),
        "kind" => Some(catalogs::kind()),
        _ => None,
    }
}

/// Says, for a placement and a provider kind, whether mutations are refused here.
pub type MutationGuard = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

#[derive(Debug, thiserror::Error)]
#[error("no backend for provider `{0}`")]
pub struct UnknownProvider(pub String);

/// Builds and caches one provider per `ProviderRef`; all `sim` placements share one cloud.
pub struct Registry {
    sim: Arc<SimCloud>,
    time_scale: f64,
    sim_max_in_flight: Option<usize>,
    #[cfg(feature = "eks")]
    eks: tessera_eks::EksSettings,
    built: Mutex<HashMap<ProviderRef, Arc<dyn Provider>>>,
    /// Providers configured from a resource, keyed by the source object's identity: a replaced
    /// cluster gets a new client.
    connected: Mutex<HashMap<(ProviderRef, CloudId), Arc<dyn Provider>>>,
    budgets: Mutex<HashMap<ProviderRef, Arc<Semaphore>>>,
    rates: Mutex<HashMap<ProviderRef, Arc<AdaptiveRate>>>,
    aimd: Aimd,
    /// Whose mutating calls are refused (pipeline-only outside the pipeline).
    read_only: Option<MutationGuard>,
}

impl Registry {
    pub fn new(sim: Arc<SimCloud>, time_scale: f64) -> Self {
        Self {
            sim,
            time_scale,
            sim_max_in_flight: None,
            #[cfg(feature = "eks")]
            eks: tessera_eks::EksSettings::default(),
            built: Mutex::new(HashMap::new()),
            connected: Mutex::new(HashMap::new()),
            budgets: Mutex::new(HashMap::new()),
            rates: Mutex::new(HashMap::new()),
            aimd: Aimd::default(),
            read_only: None,
        }
    }

    pub fn with_sim_max_in_flight(mut self, n: usize) -> Self {
        self.sim_max_in_flight = Some(n);
        self
    }

    /// How the `eks` backend reaches AWS (endpoint, credentials, polling).
    #[cfg(feature = "eks")]
    pub fn with_eks(mut self, settings: tessera_eks::EksSettings) -> Self {
        self.eks = settings;
        self
    }

    /// Refuses mutations, before any request, for every placement the guard names.
    pub fn with_read_only(mut self, guard: MutationGuard) -> Self {
        self.read_only = Some(guard);
        self
    }

    /// The provider that acts for a resource of `placement`: read-only where the guard says so.
    /// Every mutation (execution and recovery) is made through this.
    pub fn for_placement(&self, r: &ProviderRef, placement: &str) -> Result<Arc<dyn Provider>, UnknownProvider> {
        Ok(self.guard(r, placement, self.get(r)?))
    }

    /// [`Registry::connect`], for a resource of `placement`.
    pub fn connect_for(
        &self,
        r: &ProviderRef,
        conn: &Connection,
        placement: &str,
    ) -> Result<Arc<dyn Provider>, UnknownProvider> {
        Ok(self.guard(r, placement, self.connect(r, conn)?))
    }

    fn guard(&self, r: &ProviderRef, placement: &str, provider: Arc<dyn Provider>) -> Arc<dyn Provider> {
        match &self.read_only {
            Some(refuses) if refuses(placement, &r.kind) => {
                Arc::new(ReadOnly { inner: provider, name: format!("{placement} ({r})") })
            }
            _ => provider,
        }
    }

    pub fn with_aimd(mut self, aimd: Aimd) -> Self {
        self.aimd = aimd;
        self
    }

    /// The adaptive rate shared by every call to one provider and region.
    pub fn rate(&self, r: &ProviderRef) -> Arc<AdaptiveRate> {
        let mut rates = self.rates.lock().unwrap_or_else(|e| e.into_inner());
        rates.entry(r.clone()).or_insert_with(|| Arc::new(AdaptiveRate::new(self.aimd.clone()))).clone()
    }

    pub fn sim_cloud(&self) -> &Arc<SimCloud> {
        &self.sim
    }

    /// The in-flight budget shared by every call to one provider and region, by plans and
    /// applies alike.
    pub fn budget(&self, r: &ProviderRef) -> Result<Arc<Semaphore>, UnknownProvider> {
        let provider = self.get(r)?;
        let mut budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
        Ok(budgets.entry(r.clone()).or_insert_with(|| Arc::new(Semaphore::new(provider.max_in_flight()))).clone())
    }

    /// The provider for `r`. One configured from a resource comes back unconnected: it serves
    /// estimates and limits, and refuses calls until [`Registry::connect`] builds it.
    pub fn get(&self, r: &ProviderRef) -> Result<Arc<dyn Provider>, UnknownProvider> {
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = built.get(r) {
            return Ok(p.clone());
        }
        let provider = self.wrap(r, self.build(r, None)?);
        built.insert(r.clone(), provider.clone());
        Ok(provider)
    }

    /// The provider for `r`, connected through `conn` (the outputs of `r.connection`'s object).
    pub fn connect(&self, r: &ProviderRef, conn: &Connection) -> Result<Arc<dyn Provider>, UnknownProvider> {
        let key = (r.clone(), conn.id.clone());
        let mut connected = self.connected.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = connected.get(&key) {
            return Ok(p.clone());
        }
        let provider = self.wrap(r, self.build(r, Some(conn))?);
        connected.insert(key, provider.clone());
        Ok(provider)
    }

    /// Every provider passes through the shared rate of its reference.
    fn wrap(&self, r: &ProviderRef, provider: Arc<dyn Provider>) -> Arc<dyn Provider> {
        Arc::new(Throttled { inner: provider, rate: self.rate(r) })
    }

    fn build(&self, r: &ProviderRef, conn: Option<&Connection>) -> Result<Arc<dyn Provider>, UnknownProvider> {
        Ok(match r.kind.as_str() {
            "sim" => {
                let name = r.profile.as_deref().unwrap_or("eks");
                let profile = Profile::named(name).ok_or_else(|| UnknownProvider(format!("sim[{name}]")))?;
                let mut sim = SimProvider::new(self.sim.clone(), profile, self.time_scale);
                if let Some(n) = self.sim_max_in_flight {
                    sim = sim.with_max_in_flight(n);
                }
                Arc::new(sim)
            }
            tessera_sim::kube::KIND => match conn {
                Some(c) => Arc::new(SimKube::connected(self.sim.clone(), c.clone())),
                None => Arc::new(SimKube::unconnected(self.sim.clone())),
            },
            #[cfg(feature = "eks")]
            "eks" => Arc::new(tessera_eks::EksProvider::new(r.region.clone(), self.eks.clone())),
            kind => {
                let profile = Profile::named(kind).ok_or_else(|| UnknownProvider(kind.to_string()))?;
                Arc::new(PlanOnly { kind: kind.to_string(), profile })
            }
        })
    }
}

/// A backend that can lower and plan but not touch a cloud yet.
pub struct PlanOnly {
    kind: String,
    profile: Profile,
}

impl PlanOnly {
    fn refuse(&self) -> ProviderError {
        ProviderError::Fatal(format!(
            "the {} backend is not built yet: this build can validate and plan {} placements but not apply them",
            self.kind, self.kind
        ))
    }
}

#[async_trait]
impl Provider for PlanOnly {
    fn catalog(&self) -> &Catalog {
        &self.profile.catalog
    }

    fn lower(&self, cluster: &ClusterTemplate, provider: &ProviderRef) -> Vec<ResourceSpec> {
        lower_shapes(&self.kind, &self.profile.catalog, cluster, provider)
    }

    fn estimate(&self, rtype: &str, op: Operation) -> Duration {
        Shape::from_rtype(rtype).map(|s| self.profile.duration(s, op)).unwrap_or_default()
    }

    async fn read(&self, _rtype: &str, _id: &CloudId) -> Result<Option<Observed>, ProviderError> {
        Err(self.refuse())
    }

    async fn find(&self, _spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
        Err(self.refuse())
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
