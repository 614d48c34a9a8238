//! The registry: builds providers from the backend list ([`crate::backends`]) and caches one per
//! [`ProviderRef`] (and, for providers configured from a resource, per source object).
//!
//! Every provider it builds passes through the adaptive rate of its reference
//! ([`crate::throttle::Throttled`]); every provider that acts for a placement the pipeline alone
//! may change is wrapped read-only ([`crate::read_only::ReadOnly`]). Backends get their settings
//! (a shared sim cloud, an endpoint override) from typed [`Extensions`], and their write
//! credentials, in the pipeline, from the sealed file's section they declare.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tessera_provider_api::{
    Backend, BuildContext, CloudId, ClusterTemplate, Connection, Credentials, Extensions, KubeAccess, Provider,
    ProviderRef, ResourceSpec, Schema,
};
use tessera_sim::{SimCloud, SimRuntime};
use tokio::sync::Semaphore;

use crate::read_only::ReadOnly;
use crate::throttle::{AdaptiveRate, Aimd, Throttled};

/// Says, for a placement and the provider acting for it, whether mutations are refused here.
pub type MutationGuard = Arc<dyn Fn(&str, &ProviderRef) -> bool + Send + Sync>;

/// No provider can be built for a reference: an unknown kind, or a backend that refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UnknownProvider(pub String);

pub struct Registry {
    backends: Vec<Arc<dyn Backend>>,
    /// The schemas of backends added to this registry alone ([`Registry::with_backend`]); the
    /// build's own are in [`crate::backends`].
    added_schemas: HashMap<String, Schema>,
    extensions: Extensions,
    sim: Arc<SimCloud>,
    /// Sealed write credentials by section name (`aws`, `azure`, `gcp`): the pipeline's only.
    credentials: BTreeMap<String, Credentials>,
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
    /// Every backend of this build; `sim` placements share `sim`, at `time_scale`.
    pub fn new(sim: Arc<SimCloud>, time_scale: f64) -> Self {
        let mut extensions = Extensions::default();
        extensions.insert(SimRuntime { cloud: sim.clone(), time_scale, max_in_flight: None });
        Self {
            backends: crate::backends::all(),
            added_schemas: HashMap::new(),
            extensions,
            sim,
            credentials: BTreeMap::new(),
            built: Mutex::new(HashMap::new()),
            connected: Mutex::new(HashMap::new()),
            budgets: Mutex::new(HashMap::new()),
            rates: Mutex::new(HashMap::new()),
            aimd: Aimd::default(),
            read_only: None,
        }
    }

    pub fn with_sim_max_in_flight(mut self, n: usize) -> Self {
        let mut rt = self.sim_runtime();
        rt.max_in_flight = Some(n);
        self.extensions.insert(rt);
        self
    }

    fn sim_runtime(&self) -> SimRuntime {
        self.extensions.get::<SimRuntime>().cloned().unwrap_or(SimRuntime {
            cloud: self.sim.clone(),
            time_scale: 1.0,
            max_in_flight: None,
        })
    }

    /// How fast time runs where `r` acts: the sim's time scale for a sim placement (so a
    /// rollout's soak follows `--sim-time-scale`), else real time.
    pub fn time_scale(&self, r: &ProviderRef) -> f64 {
        if r.kind == "sim" { self.sim_runtime().time_scale } else { 1.0 }
    }

    /// A typed setting for the backends that read it (see each backend's settings type).
    pub fn with_setting<T: std::any::Any + Send + Sync>(mut self, value: T) -> Self {
        self.extensions.insert(value);
        self
    }

    /// How the `eks` backend reaches AWS (endpoint, credentials, polling).
    #[cfg(feature = "eks")]
    pub fn with_eks(self, settings: tessera_eks::EksSettings) -> Self {
        self.with_setting(settings)
    }

    /// How the `kube` backend reaches clusters and renders charts (an endpoint override, local
    /// charts, the helm binary).
    #[cfg(feature = "kube")]
    pub fn with_kube(self, settings: tessera_kube_client::KubeClientSettings) -> Self {
        self.with_setting(settings)
    }

    /// The pipeline's decrypted write credentials, one section per backend.
    pub fn with_credentials(mut self, sections: BTreeMap<String, Credentials>) -> Self {
        self.credentials = sections;
        self
    }

    /// Refuses mutations, before any request, for every placement the guard names.
    pub fn with_read_only(mut self, guard: MutationGuard) -> Self {
        self.read_only = Some(guard);
        self
    }

    pub fn with_aimd(mut self, aimd: Aimd) -> Self {
        self.aimd = aimd;
        self
    }

    /// One more backend, for this registry only: a backend written outside this build (the
    /// engine's tests add one to show that a backend needs nothing but its own crate and one
    /// line in [`crate::backends`]). It comes first, so it may stand in for a kind the build has.
    pub fn with_backend(mut self, backend: Arc<dyn Backend>) -> Self {
        for schema in backend.schemas() {
            self.added_schemas.insert(schema.rtype.clone(), schema);
        }
        self.backends.insert(0, backend);
        self
    }

    /// The schema of `rtype`: an added backend's, or the build's.
    pub fn schema(&self, rtype: &str) -> Option<&Schema> {
        self.added_schemas.get(rtype).or_else(|| crate::backends::schema(rtype))
    }

    /// Fills a freshly lowered resource's policies, replacement rules, outputs and schema version
    /// from its type's schema.
    pub fn stamp(&self, spec: &mut ResourceSpec) -> Result<(), crate::backends::TypeError> {
        let schema = self.schema(spec.rtype()).ok_or_else(|| crate::backends::TypeError::Unknown {
            address: spec.address.to_string(),
            rtype: spec.rtype().to_string(),
        })?;
        schema.stamp(spec);
        Ok(())
    }

    pub fn backends(&self) -> &[Arc<dyn Backend>] {
        &self.backends
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
        let provider = self.build(r, None)?;
        built.insert(r.clone(), provider.clone());
        Ok(provider)
    }

    /// `cluster` lowered by its backend: pure, nothing is built (see [`Backend::lower`]).
    pub fn lower(&self, cluster: &ClusterTemplate, r: &ProviderRef) -> Result<Vec<ResourceSpec>, UnknownProvider> {
        Ok(self.backend(r)?.lower(cluster, r, &self.extensions))
    }

    /// How `cluster`'s inside is reached, by its backend (see [`Backend::kube_access`]).
    pub fn kube_access(
        &self,
        cluster: &ClusterTemplate,
        r: &ProviderRef,
    ) -> Result<Option<KubeAccess>, UnknownProvider> {
        Ok(self.backend(r)?.kube_access(cluster, r))
    }

    fn backend(&self, r: &ProviderRef) -> Result<Arc<dyn Backend>, UnknownProvider> {
        crate::backends::find(&self.backends, &r.kind)
            .ok_or_else(|| UnknownProvider(format!("no backend for provider `{}`", r.kind)))
    }

    /// The provider for `r`, connected through `conn` (the outputs of `r.connection`'s object).
    pub fn connect(&self, r: &ProviderRef, conn: &Connection) -> Result<Arc<dyn Provider>, UnknownProvider> {
        let key = (r.clone(), conn.id.clone());
        let mut connected = self.connected.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = connected.get(&key) {
            return Ok(p.clone());
        }
        let provider = self.build(r, Some(conn))?;
        connected.insert(key, provider.clone());
        Ok(provider)
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
            Some(refuses) if refuses(placement, r) => {
                Arc::new(ReadOnly { inner: provider, name: format!("{placement} ({r})") })
            }
            _ => provider,
        }
    }

    fn build(&self, r: &ProviderRef, connection: Option<&Connection>) -> Result<Arc<dyn Provider>, UnknownProvider> {
        let backend = self.backend(r)?;
        let credentials = backend.credentials().and_then(|section| self.credentials.get(section.name));
        let ctx = BuildContext { provider: r, connection, credentials, extensions: &self.extensions };
        let provider =
            backend.build(&ctx).map_err(|e| UnknownProvider(format!("cannot build the {} provider: {e}", r.kind)))?;
        Ok(Arc::new(Throttled { inner: provider, rate: self.rate(r) }))
    }
}
