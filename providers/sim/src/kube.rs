//! `simkube`: objects inside a sim cluster, reached through a connection built from the cluster's
//! outputs (endpoint and CA), the way a Kubernetes provider reaches a real one.
//!
//! It implements the Kubernetes providers' contract (`tessera_kube::contract`: `kube.object`,
//! `helm.release`, and the read-only `kube.nodes`) on the sim's Kubernetes API
//! ([`crate::kube_api`]), so that core services install, drift and are verified on the sim.
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
    Catalog, CloudId, Connection, MachineCatalog, Observed, Operation, Provider, ProviderError, ResourceSpec,
};

use crate::cloud::SimCloud;
use crate::kube_api::KubeApi;
use tessera_kube::{contract, coverage};
use tessera_provider_api::TAG_ADDRESS;

pub const KIND: &str = "simkube";
pub const NAMESPACE: &str = "simkube.namespace";
/// The attribute that records which cluster an object lives in.
const CLUSTER_ATTR: &str = "clusterId";

pub struct SimKube {
    cloud: Arc<SimCloud>,
    connection: Option<Connection>,
    catalog: Catalog,
    /// Real durations are multiplied by this (see `SimRuntime`).
    time_scale: f64,
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
        Self { cloud, connection: None, catalog, time_scale: 1.0 }
    }

    /// Durations scaled by `time_scale` (1.0 is real time, 0.0 instant).
    pub fn with_time_scale(mut self, time_scale: f64) -> Self {
        self.time_scale = time_scale;
        self
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
        // What a client sees of a cluster that is gone, or of an API it cannot reach: nothing
        // answers. Classified as a real client's transport error would be.
        let refused = || {
            ProviderError::unreachable(format!(
                "cannot reach the Kubernetes API at {endpoint}: connection refused. Likely cause: the \
                 cluster is gone, or a firewall or private endpoint keeps this machine out. Fix: check \
                 the cluster exists, or run from inside its network"
            ))
        };
        if self.cloud.faults().kube_unreachable {
            return Err(refused());
        }
        let cluster = self.cloud.read(&conn.id).await?;
        match cluster {
            Some(c) if c.attrs.get("endpoint").and_then(Value::as_str) == Some(endpoint) => Ok(conn),
            _ => Err(refused()),
        }
    }

    fn check_type(rtype: &str) -> Result<(), ProviderError> {
        if rtype == NAMESPACE {
            Ok(())
        } else {
            Err(ProviderError::Fatal(format!("simkube has no resource type `{rtype}`")))
        }
    }

    fn api<'a>(&'a self, conn: &'a Connection) -> Result<KubeApi<'a>, ProviderError> {
        Ok(KubeApi { cloud: &self.cloud, cluster_id: &conn.id, cluster_name: conn.output(contract::OUTPUT_NAME)? })
    }

    /// The contract's types, on the sim's Kubernetes API; `None` for another type.
    async fn contract_read(&self, rtype: &str, id: &CloudId) -> Option<Result<Option<Observed>, ProviderError>> {
        let run = async {
            let conn = self.session().await?;
            let api = self.api(conn)?;
            // An id of another cluster (one since replaced) names nothing in this one.
            let local = api.local_id(id);
            if local.is_none() && rtype != coverage::NODES {
                return Ok(None);
            }
            let local = local.unwrap_or_default();
            match rtype {
                contract::OBJECT => Ok(api.get(local)?.map(|r| observed_object(id, &r.attrs))),
                contract::RELEASE => {
                    let (ns, name) = release_parts(local);
                    Ok(api.release(ns, name)?.map(|attrs| Observed { id: id.clone(), status: "ACTIVE".into(), attrs }))
                }
                _ => {
                    let nodes = serde_json::to_value(api.nodes()?).map_err(|e| ProviderError::Fatal(e.to_string()))?;
                    let attrs = [("nodes".to_string(), nodes)].into_iter().collect();
                    Ok(Some(Observed { id: id.clone(), status: "ACTIVE".into(), attrs }))
                }
            }
        };
        matches!(rtype, contract::OBJECT | contract::RELEASE | coverage::NODES).then_some(run.await)
    }

    async fn contract_apply(&self, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
        let conn = self.session().await?;
        let api = self.api(conn)?;
        let address = spec.address.to_string();
        tokio::time::sleep(self.estimate(spec.rtype(), Operation::Update)).await;
        match spec.rtype() {
            contract::OBJECT => {
                let manifest = spec.attrs.get("manifest").cloned().unwrap_or(Value::Null);
                let id = api.apply(&manifest, Some(&address))?;
                // Done when ready on every node it fits, as the real provider waits.
                if let Some(status) = api.daemonset_status(&id)? {
                    if status["numberReady"] != status["desiredNumberScheduled"] {
                        return Err(ProviderError::unavailable(format!("{id} is not ready yet: {status}")));
                    }
                }
                let stored = api.get(&id)?.ok_or_else(|| ProviderError::Fatal(format!("{id} vanished after apply")))?;
                Ok(observed_object(&api.key(&id), &stored.attrs))
            }
            _ => {
                api.install(&spec.attrs, Some(&address))?;
                let ns = spec.attrs.get("namespace").and_then(Value::as_str).unwrap_or_default();
                let name = spec.attrs.get("name").and_then(Value::as_str).unwrap_or_default();
                let attrs = api
                    .release(ns, name)?
                    .ok_or_else(|| ProviderError::Fatal(format!("release {ns}/{name} vanished")))?;
                Ok(Observed { id: api.key(&format!("release/{ns}/{name}")), status: "ACTIVE".into(), attrs })
            }
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

    fn estimate(&self, _rtype: &str, _op: Operation) -> Duration {
        Duration::from_secs(2).mul_f64(self.time_scale)
    }

    async fn read(&self, rtype: &str, id: &CloudId) -> Result<Option<Observed>, ProviderError> {
        if let Some(result) = self.contract_read(rtype, id).await {
            return result;
        }
        Self::check_type(rtype)?;
        let conn = self.session().await?;
        Ok(self.in_this_cluster(self.cloud.read(id).await?, conn))
    }

    async fn find(&self, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
        if let Some(id) = contract_id(spec) {
            // Deterministic names: the object is there or not, and an apply adopts it either way.
            let key = self.api(self.session().await?)?.key(&id);
            let found = self.read(spec.rtype(), &key).await?;
            return Ok(found.filter(|o| owned_by_spec(o, spec)));
        }
        Self::check_type(spec.rtype())?;
        let conn = self.session().await?;
        Ok(self.in_this_cluster(self.cloud.find_owned(spec).await?, conn))
    }

    async fn create(&self, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
        if contract_id(spec).is_some() {
            return self.contract_apply(spec).await;
        }
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
        if contract_id(spec).is_some() {
            return self.contract_apply(spec).await;
        }
        Self::check_type(spec.rtype())?;
        self.session().await?;
        let changes = changed.iter().filter_map(|f| spec.attrs.get(f).map(|v| (f.clone(), v.clone()))).collect();
        self.cloud.update(id, &spec.address.to_string(), changes, self.estimate(spec.rtype(), Operation::Update)).await
    }

    async fn delete(&self, rtype: &str, id: &CloudId) -> Result<(), ProviderError> {
        if matches!(rtype, contract::OBJECT | contract::RELEASE) {
            let conn = self.session().await?;
            let api = self.api(conn)?;
            let gone = match (api.local_id(id), rtype) {
                (None, _) => false,
                (Some(local), contract::OBJECT) => api.delete(local)?,
                (Some(local), _) => {
                    let (ns, name) = release_parts(local);
                    api.uninstall(ns, name)?
                }
            };
            return if gone { Ok(()) } else { Err(ProviderError::NotFound(id.clone())) };
        }
        Self::check_type(rtype)?;
        let conn = self.session().await?;
        if self.in_this_cluster(self.cloud.read(id).await?, conn).is_none() {
            return Err(ProviderError::NotFound(id.clone()));
        }
        self.cloud.delete(id, self.estimate(rtype, Operation::Delete)).await
    }
}

/// The object id (or `release/<ns>/<name>`) a contract spec has, known before it exists.
fn contract_id(spec: &ResourceSpec) -> Option<String> {
    match spec.rtype() {
        contract::OBJECT => spec.attrs.get("manifest").and_then(contract::id_of),
        contract::RELEASE => {
            let s = |k: &str| spec.attrs.get(k).and_then(Value::as_str).map(str::to_string);
            Some(format!("release/{}/{}", s("namespace")?, s("name")?))
        }
        _ => None,
    }
}

/// `release/<ns>/<name>` → (`ns`, `name`).
fn release_parts(local: &str) -> (&str, &str) {
    let rest = local.strip_prefix("release/").unwrap_or(local);
    rest.split_once('/').unwrap_or(("", rest))
}

/// An object found by its name is this spec's when it carries the spec's address annotation.
fn owned_by_spec(o: &Observed, spec: &ResourceSpec) -> bool {
    match spec.rtype() {
        contract::OBJECT => {
            let addr = |v: Option<&Value>| {
                v.and_then(|m| m["metadata"]["annotations"][TAG_ADDRESS].as_str().map(str::to_string))
            };
            addr(o.attrs.get("manifest")) == addr(spec.attrs.get("manifest"))
        }
        _ => true,
    }
}

fn observed_object(id: &str, stored: &tessera_provider_api::Attrs) -> Observed {
    let manifest = stored.get("manifest").cloned().unwrap_or(Value::Null);
    Observed {
        id: id.to_string(),
        status: "ACTIVE".into(),
        attrs: [("manifest".to_string(), manifest)].into_iter().collect(),
    }
}
