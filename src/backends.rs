//! Every backend this build has, in one list.
//!
//! Adding a cloud is a crate under `providers/` that implements
//! [`tessera_provider_api::Backend`], a feature for it in `Cargo.toml`, and one line here.
//! Validation reads catalogs, limits and scopes from this list without building any client; the
//! registry builds clients from it.
//!
//! Each backend registers its resource types' schemas; the registry's `stamp` and [`restore`]
//! fill a resource's policies, replacement rules and outputs from them, for what lowering made
//! and for what a plan file holds (which carry the type's name, its schema version and the
//! values, never the schema).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use tessera_provider_api::{Backend, ResourceSpec, Schema};

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

/// Every resource type's schema in this build, by type name. A type two backends run (the
/// Kubernetes contract's, by `simkube` and `kube`) has one schema, declared once
/// (`tessera_kube::schemas`); the first registration wins, and a test holds them equal.
fn schemas() -> &'static HashMap<String, Schema> {
    static TABLE: LazyLock<HashMap<String, Schema>> = LazyLock::new(|| {
        let mut table = HashMap::new();
        for schema in all().iter().flat_map(|b| b.schemas()) {
            table.entry(schema.rtype.clone()).or_insert(schema);
        }
        table
    });
    &TABLE
}

/// The schema of `rtype`, if a backend of this build has the type.
pub fn schema(rtype: &str) -> Option<&'static Schema> {
    schemas().get(rtype)
}

/// A resource whose type this build cannot handle as it was made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypeError {
    #[error("{address}: no backend of this build has the resource type `{rtype}`")]
    Unknown { address: String, rtype: String },
    #[error(
        "{address} was made for version {found} of the `{rtype}` schema, and this Tessera has version {current}: \
         it was made by another release of Tessera; run `tessera plan` again"
    )]
    Stale { address: String, rtype: String, found: u32, current: u32 },
}

fn schema_for(spec: &ResourceSpec) -> Result<&'static Schema, TypeError> {
    schema(spec.rtype())
        .ok_or_else(|| TypeError::Unknown { address: spec.address.to_string(), rtype: spec.rtype().to_string() })
}

/// The same for a resource read back from a plan file or a state: it must have been made for
/// the schema version this build has.
pub fn restore(spec: &mut ResourceSpec) -> Result<(), TypeError> {
    let schema = schema_for(spec)?;
    if spec.schema_version != schema.version {
        return Err(TypeError::Stale {
            address: spec.address.to_string(),
            rtype: spec.rtype().to_string(),
            found: spec.schema_version,
            current: schema.version,
        });
    }
    schema.stamp(spec);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_is_sound_and_a_type_two_backends_run_has_one_schema() {
        let mut seen: HashMap<String, String> = HashMap::new();
        for backend in all() {
            for schema in backend.schemas() {
                assert!(schema.problems().is_empty(), "{}: {:?}", backend.kind(), schema.problems());
                let shape = format!("{} {:?}", schema.version, schema.fields());
                if let Some(other) = seen.insert(schema.rtype.clone(), shape.clone()) {
                    assert_eq!(other, shape, "{} is registered twice with different schemas", schema.rtype);
                }
            }
        }
        assert!(schema("kube.object").is_some() && schema("sim.cluster").is_some());
    }

    #[test]
    fn a_stored_resource_of_another_schema_version_or_unknown_type_is_refused() {
        let provider = tessera_provider_api::ProviderRef::new("sim", "eu-west-1");
        let mut spec = ResourceSpec::new("a/sim.cluster/main".parse().unwrap(), provider.clone());
        assert_eq!(restore(&mut spec), Ok(()));
        assert!(spec.has_output("endpoint") && !spec.replace_on.is_empty(), "restored from the schema");
        spec.schema_version = 99;
        assert!(matches!(restore(&mut spec), Err(TypeError::Stale { found: 99, .. })));
        let mut unknown = ResourceSpec::new("a/sim.teapot/main".parse().unwrap(), provider);
        assert!(matches!(restore(&mut unknown), Err(TypeError::Unknown { .. })));
    }
}
