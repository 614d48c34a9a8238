//! Every backend this build has, in one list.
//!
//! Adding a cloud is a crate under `providers/` that implements
//! [`tessera_provider_api::Backend`], a feature for it in `Cargo.toml`, and one line here.
//! Validation reads catalogs, limits and scopes from this list without building any client; the
//! registry builds clients from it.

use std::sync::Arc;

use tessera_provider_api::Backend;

/// The backends, in the order `tessera validate` lists them.
pub fn all() -> Vec<Arc<dyn Backend>> {
    let mut list: Vec<Arc<dyn Backend>> = vec![Arc::new(tessera_sim::SimBackend)];
    #[cfg(feature = "eks")]
    list.push(Arc::new(tessera_eks::EksBackend));
    #[cfg(not(feature = "eks"))]
    list.push(Arc::new(tessera_sim::PlanOnlyBackend("eks")));
    #[cfg(feature = "aks")]
    list.push(Arc::new(tessera_aks::AksBackend));
    #[cfg(feature = "gke")]
    list.push(Arc::new(tessera_gke::GkeBackend));
    #[cfg(feature = "kind")]
    list.push(Arc::new(tessera_kind::KindBackend));
    #[cfg(not(feature = "kind"))]
    list.push(Arc::new(tessera_sim::PlanOnlyBackend("kind")));
    // Providers configured from a resource: never named by a placement. Without `kube`, core
    // services of real clusters plan but are refused at apply ("no backend for provider").
    list.push(Arc::new(tessera_sim::SimKubeBackend));
    #[cfg(feature = "kube")]
    list.push(Arc::new(tessera_kube_client::KubeBackend));
    list
}

/// The backend for `kind`, if this build has it.
pub fn find(backends: &[Arc<dyn Backend>], kind: &str) -> Option<Arc<dyn Backend>> {
    backends.iter().find(|b| b.kind() == kind).cloned()
}

/// The kinds a placement may name.
pub fn placement_kinds(backends: &[Arc<dyn Backend>]) -> Vec<&'static str> {
    backends.iter().filter(|b| b.places_clusters()).map(|b| b.kind()).collect()
}
