//! The GKE resource types, each with its schema ([`crate::schemas`]) and its operations, in the
//! one table [`crate::GkeProvider`] forwards every call to.

use std::sync::LazyLock;

use async_trait::async_trait;
use tessera_provider_api::{Attrs, CloudId, Observed, Operations, ProviderError, ResourceSpec, Types};

use crate::{GkeProvider, cluster, nodepool, schemas};

/// The table, built once: it is pure (schemas and operation values, no client).
pub(crate) static TYPES: LazyLock<Types<GkeProvider>> = LazyLock::new(types);

pub fn types() -> Types<GkeProvider> {
    Types::new(crate::KIND).register(schemas::cluster(), Cluster).register(schemas::nodepool(), NodePool)
}

/// An object found by name: ours only if fleet, address and generation all match; one still
/// `PROVISIONING` or `RECONCILING` (an operation a crash left running) is adopted once it has
/// settled, so what recovery records is what the object is (a cluster's endpoint and CA come at
/// the end).
fn ours(spec: &ResourceSpec, found: Option<Observed>) -> Found {
    match found.filter(|o| spec.is_ours(&o.attrs)) {
        None => Found::None,
        Some(o) if matches!(o.status.split(':').next(), Some("PROVISIONING" | "RECONCILING")) => Found::Pending(o.id),
        Some(o) => Found::Settled(o),
    }
}

enum Found {
    None,
    Settled(Observed),
    /// Ours, with an operation still running on it.
    Pending(CloudId),
}

pub struct Cluster;

#[async_trait]
impl Operations<GkeProvider> for Cluster {
    async fn read(&self, p: &GkeProvider, id: &CloudId, _: Option<&Attrs>) -> Result<Option<Observed>, ProviderError> {
        cluster::read(p, id).await
    }

    async fn find(&self, p: &GkeProvider, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
        match ours(spec, cluster::read(p, &cluster::id(spec)?).await?) {
            Found::None => Ok(None),
            Found::Settled(o) => Ok(Some(o)),
            Found::Pending(id) => cluster::settle(p, &id).await.map(Some),
        }
    }

    async fn create(&self, p: &GkeProvider, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
        cluster::create(p, spec).await
    }

    async fn update(
        &self,
        p: &GkeProvider,
        spec: &ResourceSpec,
        id: &CloudId,
        changed: &[String],
    ) -> Result<Observed, ProviderError> {
        cluster::update(p, id, spec, changed).await
    }

    async fn delete(&self, p: &GkeProvider, id: &CloudId) -> Result<(), ProviderError> {
        cluster::delete(p, id).await
    }
}

pub struct NodePool;

#[async_trait]
impl Operations<GkeProvider> for NodePool {
    async fn read(&self, p: &GkeProvider, id: &CloudId, _: Option<&Attrs>) -> Result<Option<Observed>, ProviderError> {
        nodepool::read(p, id).await
    }

    async fn find(&self, p: &GkeProvider, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
        match ours(spec, nodepool::read(p, &nodepool::id(spec)?).await?) {
            Found::None => Ok(None),
            Found::Settled(o) => Ok(Some(o)),
            Found::Pending(id) => nodepool::settle(p, &id).await.map(Some),
        }
    }

    async fn create(&self, p: &GkeProvider, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
        nodepool::create(p, spec).await
    }

    async fn update(
        &self,
        p: &GkeProvider,
        spec: &ResourceSpec,
        id: &CloudId,
        changed: &[String],
    ) -> Result<Observed, ProviderError> {
        nodepool::update(p, id, spec, changed).await
    }

    async fn delete(&self, p: &GkeProvider, id: &CloudId) -> Result<(), ProviderError> {
        nodepool::delete(p, id).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use google_cloud_container_v1::model;
    use serde_json::json;
    use tessera_provider_api::{FieldPolicy, Replacement, catalogs};

    use super::*;
    use crate::lower;

    fn stamped() -> Vec<ResourceSpec> {
        let zones = ["europe-west4-a", "europe-west4-b", "europe-west4-c"];
        let mut specs = lower::lower(&catalogs::gke(), &lower::tests::template(&zones), &lower::tests::provider());
        let table = types();
        for spec in &mut specs {
            let schema = table.schema(spec.rtype()).unwrap();
            schema.stamp(spec);
            assert_eq!(schema.check_spec(spec), Ok(()), "{}", spec.address);
        }
        specs
    }

    fn policies(pairs: &[(&str, FieldPolicy)]) -> BTreeMap<String, FieldPolicy> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn the_schemas_are_sound() {
        let table = types();
        assert_eq!(table.schemas().count(), 2);
        for s in table.schemas() {
            assert!(s.problems().is_empty(), "{:?}", s.problems());
        }
    }

    #[test]
    fn stamped_specs_carry_what_lowering_used_to_set() {
        let specs = stamped();
        assert_eq!(specs.len(), 3, "a cluster and two pools");
        let cp = specs.iter().find(|s| s.rtype() == lower::CLUSTER).unwrap();
        assert_eq!(cp.policies, policies(&[("initialPool", FieldPolicy::Ignored),]));
        assert_eq!(cp.replace_on, ["name", "project", "location", "nodeLocations", "network", "publicEndpoint"]);
        assert_eq!(cp.outputs, ["name", "endpoint", "certificateAuthority"]);
        assert_eq!(cp.replacement, Replacement::DestroyBeforeCreate);
        assert_eq!(cp.version_attr.as_deref(), Some("version"));
        for np in specs.iter().filter(|s| s.rtype() == lower::NODEPOOL) {
            assert_eq!(np.policies, policies(&[("initialNodeCount", FieldPolicy::Delegated),]));
            assert_eq!(np.replace_on, ["cluster", "name", "machineType", "spot", "imageType"]);
            assert!(np.outputs.is_empty());
            assert_eq!(np.replacement, Replacement::CreateBeforeDestroy);
            assert_eq!(np.version_attr, None);
        }
    }

    const CLUSTER_ID: &str = "projects/acme-platform/locations/europe-west4/clusters/f-gcp-eu";

    fn live_cluster() -> model::Cluster {
        serde_json::from_value(json!({
            "name": "f-gcp-eu",
            "location": "europe-west4",
            "locations": ["europe-west4-a"],
            "currentMasterVersion": "1.31.6-gke.1000000",
            "endpoint": "203.0.113.7",
            "masterAuth": { "clusterCaCertificate": "LS0tLS1CRUdJTg==" },
            "loggingConfig": { "componentConfig": { "enableComponents": ["SYSTEM_COMPONENTS"] } },
            "monitoringConfig": { "componentConfig": { "enableComponents": ["SYSTEM_COMPONENTS"] } },
            "ipAllocationPolicy": { "createSubnetwork": true, "nodeIpv4CidrBlock": "10.0.0.0/16" },
            "resourceLabels": { "env": "prod" },
            "status": "RUNNING",
        }))
        .unwrap()
    }

    fn live_pool() -> model::NodePool {
        serde_json::from_value(json!({
            "name": "system-abc123",
            "version": "1.31.6-gke.1000000",
            "initialNodeCount": 1,
            "config": { "machineType": "e2-standard-4", "imageType": "COS_CONTAINERD", "labels": { "tier": "system" } },
            "autoscaling": { "enabled": true, "totalMinNodeCount": 3, "totalMaxNodeCount": 6 },
            "status": "RUNNING",
        }))
        .unwrap()
    }

    #[test]
    fn what_the_reads_report_passes_the_schemas() {
        let table = types();
        let cl = crate::cluster::observed(&live_cluster(), CLUSTER_ID);
        table.schema(lower::CLUSTER).unwrap().check_read(&cl.id, &cl.attrs).unwrap();
        assert_eq!(cl.attrs["endpoint"], "https://203.0.113.7");
        let np_id = format!("{CLUSTER_ID}/nodePools/system-abc123");
        let np = crate::nodepool::observed(&live_pool(), &np_id);
        table.schema(lower::NODEPOOL).unwrap().check_read(&np.id, &np.attrs).unwrap();
    }

    #[test]
    fn a_read_missing_a_value_or_of_the_wrong_type_is_refused_naming_the_path() {
        let table = types();
        let schema = table.schema(lower::CLUSTER).unwrap();
        // A cluster whose answer has no logging config and no version: null, never "" or [].
        let mut bare = live_cluster();
        bare.logging_config = None;
        let cl = crate::cluster::observed(&bare, CLUSTER_ID);
        let err = schema.check_read(&cl.id, &cl.attrs).unwrap_err().to_string();
        assert!(err.contains(CLUSTER_ID) && err.contains("`/loggingComponents`"), "{err}");
        bare = live_cluster();
        bare.current_master_version.clear();
        let cl = crate::cluster::observed(&bare, CLUSTER_ID);
        let err = schema.check_read(&cl.id, &cl.attrs).unwrap_err().to_string();
        assert!(err.contains("`/version`"), "{err}");
        // Still provisioning: no endpoint yet, which a read may lack.
        bare = live_cluster();
        bare.endpoint.clear();
        let cl = crate::cluster::observed(&bare, CLUSTER_ID);
        assert_eq!(cl.attrs["endpoint"], json!(null));
        schema.check_read(&cl.id, &cl.attrs).unwrap();

        let schema = table.schema(lower::NODEPOOL).unwrap();
        let mut pool = live_pool();
        pool.config = None;
        let np = crate::nodepool::observed(&pool, "p/nodePools/n");
        let err = schema.check_read(&np.id, &np.attrs).unwrap_err().to_string();
        assert!(err.contains("`/machineType`"), "{err}");
        let mut wrong = crate::nodepool::observed(&live_pool(), "p/nodePools/n").attrs;
        wrong.insert("minNodes".into(), json!("3"));
        let err = schema.check_read("p/nodePools/n", &wrong).unwrap_err().to_string();
        assert!(err.contains("`/minNodes`") && err.contains("an integer"), "{err}");
    }
}
