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

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tessera_provider_api::{
    Attrs, Catalog, CloudId, Connection, MachineCatalog, Observed, Operation, Operations, Outcome, Provider,
    ProviderError, Request, ResourceSpec, Types,
};

use crate::cloud::SimCloud;
use crate::kube_api::KubeApi;
use tessera_kube::{contract, coverage};
use tessera_provider_api::TAG_ADDRESS;

pub const KIND: &str = "simkube";
use crate::schemas::CLUSTER_ATTR;
pub use crate::schemas::NAMESPACE;

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

    fn api<'a>(&'a self, conn: &'a Connection) -> Result<KubeApi<'a>, ProviderError> {
        Ok(KubeApi { cloud: &self.cloud, cluster_id: &conn.id, cluster_name: conn.output(contract::OUTPUT_NAME)? })
    }

    fn in_this_cluster(&self, obs: Option<Observed>, conn: &Connection) -> Option<Observed> {
        obs.filter(|o| o.attrs.get(CLUSTER_ATTR).and_then(Value::as_str) == Some(conn.id.as_str()))
    }

    /// The local id of `id` in the connected cluster, and its API; `None` for an id of another
    /// cluster (one since replaced), which names nothing in this one.
    async fn local<'a>(&'a self, id: &'a CloudId) -> Result<(KubeApi<'a>, Option<&'a str>), ProviderError> {
        let api = self.api(self.session().await?)?;
        let local = api.local_id(id);
        Ok((api, local))
    }

    /// Applies a contract object or installs a release, as both Kubernetes providers do for a
    /// create and an update alike.
    async fn apply(
        &self,
        spec: &ResourceSpec,
        install: fn(&KubeApi<'_>, &ResourceSpec) -> Result<Observed, ProviderError>,
    ) -> Result<Observed, ProviderError> {
        let api = self.api(self.session().await?)?;
        tokio::time::sleep(self.latency(Operation::Update)).await;
        install(&api, spec)
    }

    /// The sim's latency for an operation inside a cluster.
    fn latency(&self, _op: Operation) -> Duration {
        Duration::from_secs(2).mul_f64(self.time_scale)
    }
}

/// `kube.object` on the sim's Kubernetes API.
struct Objects;
/// `helm.release` on the sim's Kubernetes API.
struct Releases;
/// `kube.nodes`, read only.
/// `simkube.namespace`, a plain sim object connected through its cluster's outputs.
struct Namespaces;

fn apply_object(api: &KubeApi<'_>, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
    let manifest =
        spec.attrs.get("manifest").ok_or_else(|| ProviderError::Fatal(format!("{} has no manifest", spec.address)))?;
    let id = api.apply(manifest, Some(&spec.address.to_string()))?;
    // Done when ready on every node it fits, as the real provider waits.
    if let Some(status) = api.daemonset_status(&id)? {
        if status["numberReady"] != status["desiredNumberScheduled"] {
            return Err(ProviderError::unavailable(format!("{id} is not ready yet: {status}")));
        }
    }
    let stored = api.get(&id)?.ok_or_else(|| ProviderError::Fatal(format!("{id} vanished after apply")))?;
    Ok(observed_object(&api.key(&id), &stored.attrs))
}

fn install_release(api: &KubeApi<'_>, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
    let (ns, name) = release_name(spec)?;
    api.install(&spec.attrs, Some(&spec.address.to_string()))?;
    let attrs = api.release(ns, name)?.ok_or_else(|| ProviderError::Fatal(format!("release {ns}/{name} vanished")))?;
    Ok(Observed { id: api.key(&format!("release/{ns}/{name}")), status: "ACTIVE".into(), attrs })
}

fn release_name(spec: &ResourceSpec) -> Result<(&str, &str), ProviderError> {
    let text = |k: &str| {
        spec.attrs
            .get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| ProviderError::Fatal(format!("{} has no text `{k}`", spec.address)))
    };
    Ok((text("namespace")?, text("name")?))
}

/// The id of the object or release a spec names (`local`), in the connected cluster: names are
/// deterministic, so it is there or not, and an apply adopts it either way.
async fn named(cx: &SimKube, local: Option<String>) -> Result<Option<CloudId>, ProviderError> {
    let Some(local) = local else { return Ok(None) };
    Ok(Some(cx.api(cx.session().await?)?.key(&local)))
}

#[async_trait]
impl Operations<SimKube> for Objects {
    async fn read(&self, cx: &SimKube, id: &CloudId, _: Option<&Attrs>) -> Result<Option<Observed>, ProviderError> {
        let (api, local) = cx.local(id).await?;
        let Some(local) = local else { return Ok(None) };
        Ok(api.get(local)?.map(|r| observed_object(id, &r.attrs)))
    }
    async fn find(&self, cx: &SimKube, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
        let local = spec.attrs.get("manifest").and_then(contract::id_of);
        let Some(id) = named(cx, local).await? else { return Ok(None) };
        Ok(self.read(cx, &id, None).await?.filter(|o| owned_by_spec(o, spec)))
    }
    async fn create(&self, cx: &SimKube, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
        cx.apply(spec, apply_object).await
    }
    async fn update(
        &self,
        cx: &SimKube,
        spec: &ResourceSpec,
        _: &CloudId,
        _: &[String],
    ) -> Result<Observed, ProviderError> {
        cx.apply(spec, apply_object).await
    }
    async fn delete(&self, cx: &SimKube, id: &CloudId) -> Result<(), ProviderError> {
        let (api, local) = cx.local(id).await?;
        deleted(
            id,
            match local {
                Some(local) => api.delete(local)?,
                None => false,
            },
        )
    }
}

#[async_trait]
impl Operations<SimKube> for Releases {
    async fn read(&self, cx: &SimKube, id: &CloudId, _: Option<&Attrs>) -> Result<Option<Observed>, ProviderError> {
        let (api, local) = cx.local(id).await?;
        let Some(local) = local else { return Ok(None) };
        let (ns, name) = release_parts(local);
        Ok(api.release(ns, name)?.map(|attrs| Observed { id: id.clone(), status: "ACTIVE".into(), attrs }))
    }
    async fn find(&self, cx: &SimKube, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
        let local = release_name(spec).ok().map(|(ns, name)| format!("release/{ns}/{name}"));
        let Some(id) = named(cx, local).await? else { return Ok(None) };
        self.read(cx, &id, None).await
    }
    async fn create(&self, cx: &SimKube, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
        cx.apply(spec, install_release).await
    }
    async fn update(
        &self,
        cx: &SimKube,
        spec: &ResourceSpec,
        _: &CloudId,
        _: &[String],
    ) -> Result<Observed, ProviderError> {
        cx.apply(spec, install_release).await
    }
    async fn delete(&self, cx: &SimKube, id: &CloudId) -> Result<(), ProviderError> {
        let (api, local) = cx.local(id).await?;
        deleted(
            id,
            match local {
                Some(local) => {
                    let (ns, name) = release_parts(local);
                    api.uninstall(ns, name)?
                }
                None => false,
            },
        )
    }
}

/// A delete's answer: done, or nothing of that id was there.
fn deleted(id: &CloudId, gone: bool) -> Result<(), ProviderError> {
    if gone { Ok(()) } else { Err(ProviderError::NotFound(id.clone())) }
}

fn read_only() -> ProviderError {
    ProviderError::Fatal(format!(
        "`{}` and `{}` are read-only: they report the cluster's state, which is not Tessera's to change",
        coverage::NODES,
        tessera_kube::alerting_status::ALERTING
    ))
}

/// A read-only view of the cluster (its nodes, whether its alerting works): `read` answers what
/// the function computes from the cluster's objects; nothing else is allowed.
struct View(fn(&KubeApi<'_>) -> Result<Value, ProviderError>);

fn nodes_view(api: &KubeApi<'_>) -> Result<Value, ProviderError> {
    Ok(serde_json::json!({ "nodes": api.nodes()? }))
}

fn alerting_view(api: &KubeApi<'_>) -> Result<Value, ProviderError> {
    serde_json::to_value(api.alerting_status()?).map_err(|e| ProviderError::Fatal(e.to_string()))
}

#[async_trait]
impl Operations<SimKube> for View {
    async fn read(&self, cx: &SimKube, id: &CloudId, _: Option<&Attrs>) -> Result<Option<Observed>, ProviderError> {
        let api = cx.api(cx.session().await?)?;
        let attrs = match (self.0)(&api)? {
            Value::Object(m) => m.into_iter().collect(),
            _ => Attrs::new(),
        };
        Ok(Some(Observed { id: id.clone(), status: "ACTIVE".into(), attrs }))
    }
    async fn find(&self, _: &SimKube, _: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
        Err(read_only())
    }
    async fn create(&self, _: &SimKube, _: &ResourceSpec) -> Result<Observed, ProviderError> {
        Err(read_only())
    }
    async fn update(
        &self,
        _: &SimKube,
        _: &ResourceSpec,
        _: &CloudId,
        _: &[String],
    ) -> Result<Observed, ProviderError> {
        Err(read_only())
    }
    async fn delete(&self, _: &SimKube, _: &CloudId) -> Result<(), ProviderError> {
        Err(read_only())
    }
}

#[async_trait]
impl Operations<SimKube> for Namespaces {
    async fn read(&self, cx: &SimKube, id: &CloudId, _: Option<&Attrs>) -> Result<Option<Observed>, ProviderError> {
        let conn = cx.session().await?;
        Ok(cx.in_this_cluster(cx.cloud.read(id).await?, conn))
    }
    async fn find(&self, cx: &SimKube, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
        let conn = cx.session().await?;
        Ok(cx.in_this_cluster(cx.cloud.find_owned(spec).await?, conn))
    }
    async fn create(&self, cx: &SimKube, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
        let conn = cx.session().await?;
        if let Some(existing) = cx.in_this_cluster(cx.cloud.find_owned(spec).await?, conn) {
            return Ok(existing);
        }
        let mut attrs = spec.attrs.clone();
        attrs.insert(CLUSTER_ATTR.into(), Value::String(conn.id.clone()));
        let latency = cx.latency(Operation::Create);
        cx.cloud.create("kube-ns", spec.rtype(), &spec.address.to_string(), &attrs, latency).await
    }
    async fn update(
        &self,
        cx: &SimKube,
        spec: &ResourceSpec,
        id: &CloudId,
        changed: &[String],
    ) -> Result<Observed, ProviderError> {
        cx.session().await?;
        let changes = changed.iter().filter_map(|f| spec.attrs.get(f).map(|v| (f.clone(), v.clone()))).collect();
        cx.cloud.update(id, &spec.address.to_string(), changes, cx.latency(Operation::Update)).await
    }
    async fn delete(&self, cx: &SimKube, id: &CloudId) -> Result<(), ProviderError> {
        let conn = cx.session().await?;
        if cx.in_this_cluster(cx.cloud.read(id).await?, conn).is_none() {
            return Err(ProviderError::NotFound(id.clone()));
        }
        cx.cloud.delete(id, cx.latency(Operation::Delete)).await
    }
}

/// The sim's in-cluster types: the Kubernetes providers' contract, and its own namespace.
pub fn types() -> Types<SimKube> {
    use tessera_kube::schemas;
    Types::new(KIND)
        .register(schemas::object(), Objects)
        .register(schemas::release(), Releases)
        .register(schemas::nodes(), View(nodes_view))
        .register(schemas::alerting(), View(alerting_view))
        .register(crate::schemas::namespace(), Namespaces)
}

static TYPES: LazyLock<Types<SimKube>> = LazyLock::new(types);

#[async_trait]
impl Provider for SimKube {
    fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    fn estimate(&self, _rtype: &str, op: Operation) -> Duration {
        self.latency(op)
    }

    async fn call(&self, request: Request<'_>) -> Result<Outcome, ProviderError> {
        TYPES.call(self, request).await
    }
}

/// `release/<ns>/<name>` → (`ns`, `name`).
fn release_parts(local: &str) -> (&str, &str) {
    let rest = local.strip_prefix("release/").unwrap_or(local);
    rest.split_once('/').unwrap_or(("", rest))
}

/// An object found by its name is this spec's when it carries the spec's address annotation.
fn owned_by_spec(o: &Observed, spec: &ResourceSpec) -> bool {
    let addr =
        |v: Option<&Value>| v.and_then(|m| m["metadata"]["annotations"][TAG_ADDRESS].as_str().map(str::to_string));
    addr(o.attrs.get("manifest")) == addr(spec.attrs.get("manifest"))
}

fn observed_object(id: &str, stored: &tessera_provider_api::Attrs) -> Observed {
    let manifest = stored.get("manifest").cloned().unwrap_or(Value::Null);
    Observed {
        id: id.to_string(),
        status: "ACTIVE".into(),
        attrs: [("manifest".to_string(), manifest)].into_iter().collect(),
    }
}
