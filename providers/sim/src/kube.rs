//! `simkube`: objects inside a sim cluster, reached through a connection built from the cluster's
//! outputs (endpoint and CA), the way a Kubernetes provider reaches a real one.
//!
//! It exists to prove the engine's model end to end before the real `kube` provider lands: a
//! provider configured from a resource created in the same apply, references that are "(known
//! after apply)" at plan time, refresh deferred while the cluster does not exist, and a new
//! client for a replaced cluster. An object lives and dies with its cluster, and a connection to
//! a cluster that is gone (or to a stale endpoint) is refused, as a real API server would be.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tessera_provider_api::{
    Catalog, CloudId, ClusterTemplate, Connection, MachineCatalog, Observed, Operation, Provider, ProviderError,
    ProviderRef, ResourceSpec,
};

use crate::cloud::SimCloud;

pub const KIND: &str = "simkube";
pub const NAMESPACE: &str = "simkube.namespace";
/// The attribute that records which cluster an object lives in.
const CLUSTER_ATTR: &str = "clusterId";

pub struct SimKube {
    cloud: Arc<SimCloud>,
    connection: Option<Connection>,
    catalog: Catalog,
}

impl SimKube {
    /// A client with no connection yet: it can estimate, but every call is refused.
    pub fn unconnected(cloud: Arc<SimCloud>) -> Self {
        let catalog = Catalog {
            provider: KIND.into(),
            regions: Vec::new(),
            machines: MachineCatalog::Any { name: "none".into() },
            versions: Vec::new(),
            supports_spot: false,
        };
        Self { cloud, connection: None, catalog }
    }

    pub fn connected(cloud: Arc<SimCloud>, connection: Connection) -> Self {
        Self { connection: Some(connection), ..Self::unconnected(cloud) }
    }

    /// The connection, checked against the cluster it points at.
    async fn session(&self) -> Result<&Connection, ProviderError> {
        let conn = self
            .connection
            .as_ref()
            .ok_or_else(|| ProviderError::Fatal("simkube: no connection (its cluster is not known yet)".into()))?;
        let endpoint = conn.output("endpoint")?;
        conn.output("certificateAuthority")?;
        let cluster = self.cloud.read(&conn.id).await?;
        match cluster {
            Some(c) if c.attrs.get("endpoint").and_then(Value::as_str) == Some(endpoint) => Ok(conn),
            _ => Err(ProviderError::unavailable(format!("dial {endpoint}: connection refused"))),
        }
    }

    fn check_type(rtype: &str) -> Result<(), ProviderError> {
        if rtype == NAMESPACE {
            Ok(())
        } else {
            Err(ProviderError::Fatal(format!("simkube has no resource type `{rtype}`")))
        }
    }

    fn in_this_cluster(&self, obs: Option<Observed>, conn: &Connection) -> Option<Observed> {
        obs.filter(|o| o.attrs.get(CLUSTER_ATTR).and_then(Value::as_str) == Some(conn.id.as_str()))
    }
}

#[async_trait]
impl Provider for SimKube {
    fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// In-cluster objects are not lowered from a cluster template by this provider.
    fn lower(&self, _cluster: &ClusterTemplate, _provider: &ProviderRef) -> Vec<ResourceSpec> {
        Vec::new()
    }

    fn estimate(&self, _rtype: &str, _op: Operation) -> Duration {
        Duration::from_secs(2)
    }

    async fn read(&self, rtype: &str, id: &CloudId) -> Result<Option<Observed>, ProviderError> {
        Self::check_type(rtype)?;
        let conn = self.session().await?;
        Ok(self.in_this_cluster(self.cloud.read(id).await?, conn))
    }

    async fn find(&self, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
        Self::check_type(spec.rtype())?;
        let conn = self.session().await?;
        Ok(self.in_this_cluster(self.cloud.find_owned(spec).await?, conn))
    }

    async fn create(&self, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
        Self::check_type(spec.rtype())?;
        let conn = self.session().await?;
        if let Some(existing) = self.in_this_cluster(self.cloud.find_owned(spec).await?, conn) {
            return Ok(existing);
        }
        let mut attrs = spec.attrs.clone();
        attrs.insert(CLUSTER_ATTR.into(), Value::String(conn.id.clone()));
        let latency = self.estimate(spec.rtype(), Operation::Create);
        self.cloud.create("kube-ns", spec.rtype(), &spec.address.to_string(), &attrs, latency).await
    }

    async fn update(&self, spec: &ResourceSpec, id: &CloudId, changed: &[String]) -> Result<Observed, ProviderError> {
        Self::check_type(spec.rtype())?;
        self.session().await?;
        let changes = changed.iter().filter_map(|f| spec.attrs.get(f).map(|v| (f.clone(), v.clone()))).collect();
        self.cloud.update(id, &spec.address.to_string(), changes, self.estimate(spec.rtype(), Operation::Update)).await
    }

    async fn delete(&self, rtype: &str, id: &CloudId) -> Result<(), ProviderError> {
        Self::check_type(rtype)?;
        let conn = self.session().await?;
        if self.in_this_cluster(self.cloud.read(id).await?, conn).is_none() {
            return Err(ProviderError::NotFound(id.clone()));
        }
        self.cloud.delete(id, self.estimate(rtype, Operation::Delete)).await
    }
}
