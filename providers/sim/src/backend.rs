//! The sim's backends: `sim` (a cloud imitating one of the real ones), `simkube` (objects inside a
//! sim cluster), and [`PlanOnly`], the stand-in a real backend uses until its cloud calls exist.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tessera_provider_api::{
    Backend, BuildContext, BuildError, Catalog, ClusterTemplate, KubeAccess, MachineCatalog, Operation, Outcome,
    Provider, ProviderError, ProviderRef, Request, Schema, Violation,
};

use crate::kube::{self, SimKube};
use crate::lower::{lower_shapes, shapes_access};
use crate::profile::{Profile, Shape};
use crate::{SimCloud, SimProvider};

/// What the sim backends run on: the registry puts one in its extensions.
#[derive(Clone)]
pub struct SimRuntime {
    pub cloud: Arc<SimCloud>,
    /// Real durations are multiplied by this: 1.0 is real time, 0.0 is instant.
    pub time_scale: f64,
    pub max_in_flight: Option<usize>,
}

fn runtime<'a>(ctx: &'a BuildContext<'_>) -> Result<&'a SimRuntime, BuildError> {
    ctx.extensions.get::<SimRuntime>().ok_or_else(|| BuildError::Invalid("no sim cloud is configured".into()))
}

/// The profile a `sim` placement imitates (`eks` unless it names another).
pub fn profile_of(r: &ProviderRef) -> Option<Profile> {
    Profile::named(r.profile.as_deref().unwrap_or("eks"))
}

pub struct SimBackend;

impl Backend for SimBackend {
    fn lower(
        &self,
        cluster: &ClusterTemplate,
        provider: &ProviderRef,
        _settings: &tessera_provider_api::Extensions,
    ) -> Vec<tessera_provider_api::ResourceSpec> {
        profile_of(provider).map(|p| lower_shapes("sim", &p.catalog, cluster, provider)).unwrap_or_default()
    }

    fn kube_access(&self, cluster: &ClusterTemplate, provider: &ProviderRef) -> Option<KubeAccess> {
        Some(shapes_access("sim", cluster, provider, crate::kube::KIND, tessera_kube::contract::AUTH_NONE))
    }

    fn kind(&self) -> &'static str {
        "sim"
    }

    /// The shapes under `sim`; their estimates are the EKS profile's (each provider uses its own
    /// profile's: estimates are not part of what a plan or a state stores).
    fn schemas(&self) -> Vec<Schema> {
        Profile::named("eks").map(|p| crate::schemas::shapes("sim", &p)).unwrap_or_default()
    }

    fn catalog(&self, provider: &ProviderRef) -> Option<Catalog> {
        profile_of(provider).map(|p| p.catalog)
    }

    /// The node limits of the cloud the profile imitates: the sim accepts no pool its cloud
    /// would refuse (and no pool of millions of nodes, which it would try to hold in memory).
    /// kind has no documented limit; it is held to EKS's, far above what one host can run.
    fn validate(&self, cluster: &ClusterTemplate, provider: &ProviderRef) -> Vec<Violation> {
        use tessera_provider_api::catalogs::{AKS_NODES, EKS_NODES, GKE_NODES};
        let limits = match profile_of(provider).map(|p| p.name) {
            Some("aks") => AKS_NODES,
            Some("gke") => GKE_NODES,
            _ => EKS_NODES,
        };
        let mut out = tessera_provider_api::backend::node_limits(cluster, &limits);
        out.extend(tessera_provider_api::backend::api_access_unused(cluster, "the sim has no network to guard"));
        out
    }

    fn build(&self, ctx: &BuildContext<'_>) -> Result<Arc<dyn Provider>, BuildError> {
        let rt = runtime(ctx)?;
        let name = ctx.provider.profile.as_deref().unwrap_or("eks");
        let profile =
            profile_of(ctx.provider).ok_or_else(|| BuildError::Invalid(format!("no sim profile `{name}`")))?;
        let mut sim = SimProvider::new(rt.cloud.clone(), profile, rt.time_scale);
        if let Some(n) = rt.max_in_flight {
            sim = sim.with_max_in_flight(n);
        }
        Ok(Arc::new(sim))
    }
}

/// Objects inside sim clusters, reached through a connection (see [`crate::kube`]).
pub struct SimKubeBackend;

impl Backend for SimKubeBackend {
    fn kind(&self) -> &'static str {
        kube::KIND
    }

    fn schemas(&self) -> Vec<Schema> {
        kube::types().schemas().cloned().collect()
    }

    fn places_clusters(&self) -> bool {
        false
    }

    fn catalog(&self, _provider: &ProviderRef) -> Option<Catalog> {
        Some(Catalog {
            provider: kube::KIND.into(),
            regions: Vec::new(),
            machines: MachineCatalog::Any { name: "none".into() },
            versions: Vec::new(),
            supports_spot: false,
        })
    }

    fn build(&self, ctx: &BuildContext<'_>) -> Result<Arc<dyn Provider>, BuildError> {
        let rt = runtime(ctx)?;
        let kube = match ctx.connection {
            Some(c) => SimKube::connected(rt.cloud.clone(), c.clone()),
            None => SimKube::unconnected(rt.cloud.clone()),
        };
        Ok(Arc::new(kube.with_time_scale(rt.time_scale)))
    }
}

/// A backend whose cloud calls are not built yet: it lowers to the shared shapes with the real
/// catalog, so a spec validates, compiles and plans, and it refuses every call with a clear error.
pub struct PlanOnly {
    kind: String,
    profile: Profile,
}

impl PlanOnly {
    /// The stand-in for `kind`, with the sim profile of the same name (its catalog and durations).
    pub fn new(kind: &str) -> Result<Self, BuildError> {
        let profile = Profile::named(kind).ok_or_else(|| BuildError::Invalid(format!("no profile for `{kind}`")))?;
        Ok(Self { kind: kind.to_string(), profile })
    }

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

    fn estimate(&self, rtype: &str, op: Operation) -> Duration {
        Shape::from_rtype(rtype).map(|s| self.profile.duration(s, op)).unwrap_or_default()
    }

    async fn call(&self, _request: Request<'_>) -> Result<Outcome, ProviderError> {
        Err(self.refuse())
    }
}

/// `kind` before its backend crate: catalog and plan, no cluster.
pub struct PlanOnlyBackend(pub &'static str);

impl Backend for PlanOnlyBackend {
    fn lower(
        &self,
        cluster: &ClusterTemplate,
        provider: &ProviderRef,
        _settings: &tessera_provider_api::Extensions,
    ) -> Vec<tessera_provider_api::ResourceSpec> {
        Profile::named(self.0).map(|p| lower_shapes(self.0, &p.catalog, cluster, provider)).unwrap_or_default()
    }

    fn kube_access(&self, cluster: &ClusterTemplate, provider: &ProviderRef) -> Option<KubeAccess> {
        use tessera_kube::contract::{AUTH_AZURE, AUTH_GCP, AUTH_NONE, KIND};
        let auth = match self.0 {
            "aks" => AUTH_AZURE,
            "gke" => AUTH_GCP,
            _ => AUTH_NONE,
        };
        Some(shapes_access(self.0, cluster, provider, KIND, auth))
    }

    fn kind(&self) -> &'static str {
        self.0
    }

    fn schemas(&self) -> Vec<Schema> {
        Profile::named(self.0).map(|p| crate::schemas::shapes(self.0, &p)).unwrap_or_default()
    }

    fn catalog(&self, _provider: &ProviderRef) -> Option<Catalog> {
        Profile::named(self.0).map(|p| p.catalog)
    }

    fn build(&self, _ctx: &BuildContext<'_>) -> Result<Arc<dyn Provider>, BuildError> {
        Ok(Arc::new(PlanOnly::new(self.0)?))
    }
}
