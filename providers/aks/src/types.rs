//! The AKS resource types: each one's schema (attributes, policies, replacement rules, outputs,
//! estimates) and its operations, registered once in the backend's [`Types`] table.
//!
//! The schemas hold what lowering used to stamp on each spec (see [`crate::lower`]'s table), and
//! the attributes each type's read reports: the table holds every answer to them, so a cloud
//! answer without, say, a pool's `vmSize` is an error naming the path, never an empty value
//! planned as drift.

use async_trait::async_trait;
use serde_json::Value;
use tessera_provider_api::{
    Attrs, CloudId, Field, FieldPolicy, Observed, Operations, ProviderError, Replacement, ResourceSpec, Schema, Ty,
    Types,
};

use crate::names::{CLUSTER, GROUP, POOL};
use crate::{API, AksProvider, arm, cluster, fatal_attrs, group, ours, pool};

/// Bumped when a type's attributes change shape, so a plan made against the old shape is stale.
const SCHEMA_VERSION: u32 = 1;

fn tags() -> Field {
    Field::input("tags", Ty::map(Ty::Text))
}

fn texts() -> Ty {
    Ty::list(Ty::Text)
}

/// A pool's owned fields, as lowering writes them and [`pool::profile`] reads them: the system
/// pool's `systemPool` object, and the top-level attributes of an `aks.agentPool`. The bounds
/// are null unless the pool autoscales.
fn pool_fields() -> Vec<Field> {
    vec![
        Field::input("name", Ty::Text),
        Field::input("vmSize", Ty::Text),
        Field::input("scaleSetPriority", Ty::Text),
        Field::input("enableAutoScaling", Ty::Bool),
        Field::input("minCount", Ty::Integer).optional(),
        Field::input("maxCount", Ty::Integer).optional(),
        Field::input("nodeLabels", Ty::map(Ty::Text)),
        Field::input("nodeTaints", texts()),
        Field::input("availabilityZones", texts()),
    ]
}

fn autoscaled(profile: Option<&Value>) -> bool {
    profile.and_then(|p| p.get("enableAutoScaling")).and_then(Value::as_bool) == Some(true)
}

fn resource_group() -> Schema {
    Schema::new(GROUP, SCHEMA_VERSION)
        .input("name", Ty::Text)
        .input("location", Ty::Text)
        .field(tags())
        .outputs(&["name"])
        .replace_on("name")
        .replace_on("location")
        // Group names are unique per subscription: the old group must go first.
        .replaced_by(Replacement::DestroyBeforeCreate)
        .takes(5, 5, 120)
}

fn managed_cluster() -> Schema {
    let network = Ty::Object(vec![
        Field::input("networkPlugin", Ty::Text),
        // Set for a managed network (overlay), null on an existing subnet.
        Field::input("networkPluginMode", Ty::Text).optional(),
        Field::input("vnetSubnetID", Ty::Text).optional(),
    ]);
    let access =
        Ty::Object(vec![Field::input("enablePrivateCluster", Ty::Bool), Field::input("authorizedIPRanges", texts())]);
    Schema::new(CLUSTER, SCHEMA_VERSION)
        .input("name", Ty::Text)
        .input("resourceGroup", Ty::Text)
        .input("location", Ty::Text)
        .input("kubernetesVersion", Ty::Text)
        .input("dnsPrefix", Ty::Text)
        .input("network", network)
        .input("systemPool", Ty::Object(pool_fields()))
        .input("systemPoolCount", Ty::Integer)
        .input("apiServerAccess", access)
        .field(tags())
        // ARM reports the address once the cluster has one, and the CA comes from a call that
        // Azure's Reader role may not make.
        .field(Field::computed("endpoint", Ty::Text).optional())
        .field(Field::computed("certificateAuthority", Ty::Text).optional())
        .versioned("kubernetesVersion")
        .outputs(&["name", "endpoint", "certificateAuthority"])
        // The cluster autoscaler owns the live node count of an autoscaled system pool.
        .policy_when("systemPoolCount", FieldPolicy::Delegated, |a| autoscaled(a.get("systemPool")))
        .replace_on("name")
        .replace_on("resourceGroup")
        .replace_on("location")
        .replace_on("dnsPrefix")
        .replace_on("network")
        // AKS cannot make an existing cluster private or public; ranges change in place.
        .replace_on("/apiServerAccess/enablePrivateCluster")
        // Cluster names are unique per resource group: the old cluster must go first.
        .replaced_by(Replacement::DestroyBeforeCreate)
        .takes(600, 600, 600)
}

fn agent_pool() -> Schema {
    let mut schema = Schema::new(POOL, SCHEMA_VERSION).input("cluster", Ty::Text);
    for field in pool_fields() {
        schema = schema.field(field);
    }
    schema
        .input("mode", Ty::Text)
        .input("count", Ty::Integer)
        .input("orchestratorVersion", Ty::Text)
        // Set on an existing network's subnet, null when AKS makes the network.
        .field(Field::input("vnetSubnetID", Ty::Text).optional())
        .field(tags())
        // The cluster autoscaler owns the live node count of an autoscaled pool.
        .policy_when("count", FieldPolicy::Delegated, |a| {
            a.get("enableAutoScaling").and_then(Value::as_bool) == Some(true)
        })
        .replace_on("cluster")
        .replace_on("name")
        .replace_on("vmSize")
        .replace_on("scaleSetPriority")
        .replace_on("availabilityZones")
        .replace_on("vnetSubnetID")
        .takes(300, 300, 300)
}

fn text<'a>(spec: &'a ResourceSpec, key: &str) -> Result<&'a str, ProviderError> {
    spec.attrs
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| fatal_attrs(&spec.address.to_string(), format!("no `{key}`")))
}

/// What a find found, once it is known to be ours and settled.
enum Found {
    Nothing,
    Settled(Observed),
    /// An operation a crash left running, now settled: the object at this id is read again, so
    /// what recovery records is what the object is (a cluster's endpoint and CA come at the end).
    ReadAgain(CloudId),
}

async fn recover(
    aks: &AksProvider,
    spec: &ResourceSpec,
    found: Option<Observed>,
    api: &str,
) -> Result<Found, ProviderError> {
    let Some(found) = found.filter(|o| ours(spec, &o.attrs)) else { return Ok(Found::Nothing) };
    if matches!(found.status.as_str(), "Succeeded" | "Failed" | "Canceled" | "") {
        return Ok(Found::Settled(found));
    }
    let path = found.id;
    aks.arm.settle(&arm::Reply::empty(), &path, api, &format!("{} (recovering)", spec.address)).await?;
    Ok(Found::ReadAgain(path))
}

struct GroupOps;
struct ClusterOps;
struct PoolOps;

#[async_trait]
impl Operations<AksProvider> for GroupOps {
    async fn read(
        &self,
        aks: &AksProvider,
        id: &CloudId,
        _: Option<&Attrs>,
    ) -> Result<Option<Observed>, ProviderError> {
        group::read(aks, id).await
    }

    async fn find(&self, aks: &AksProvider, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
        let found = group::read(aks, &group::id(&aks.subscription, text(spec, "name")?)).await?;
        match recover(aks, spec, found, group::GROUPS_API).await? {
            Found::Nothing => Ok(None),
            Found::Settled(o) => Ok(Some(o)),
            Found::ReadAgain(id) => group::read(aks, &id).await,
        }
    }

    async fn create(&self, aks: &AksProvider, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
        group::create(aks, spec).await
    }

    async fn update(
        &self,
        aks: &AksProvider,
        spec: &ResourceSpec,
        id: &CloudId,
        _: &[String],
    ) -> Result<Observed, ProviderError> {
        group::update(aks, spec, id).await
    }

    async fn delete(&self, aks: &AksProvider, id: &CloudId) -> Result<(), ProviderError> {
        group::delete(aks, id).await
    }
}

#[async_trait]
impl Operations<AksProvider> for ClusterOps {
    /// The CA recorded is kept rather than asked again (see [`cluster::read_knowing`]).
    async fn read(
        &self,
        aks: &AksProvider,
        id: &CloudId,
        recorded: Option<&Attrs>,
    ) -> Result<Option<Observed>, ProviderError> {
        let known = recorded.and_then(|r| r.get("certificateAuthority")).and_then(Value::as_str);
        cluster::read_knowing(aks, id, known).await
    }

    async fn find(&self, aks: &AksProvider, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
        let id = cluster::id(&aks.subscription, text(spec, "resourceGroup")?, text(spec, "name")?);
        let found = cluster::read(aks, &id).await?;
        match recover(aks, spec, found, API).await? {
            Found::Nothing => Ok(None),
            Found::Settled(o) => Ok(Some(o)),
            Found::ReadAgain(id) => cluster::read(aks, &id).await,
        }
    }

    async fn create(&self, aks: &AksProvider, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
        cluster::create(aks, spec).await
    }

    async fn update(
        &self,
        aks: &AksProvider,
        spec: &ResourceSpec,
        id: &CloudId,
        changed: &[String],
    ) -> Result<Observed, ProviderError> {
        cluster::update(aks, spec, id, changed).await
    }

    async fn delete(&self, aks: &AksProvider, id: &CloudId) -> Result<(), ProviderError> {
        cluster::delete(aks, id).await
    }
}

#[async_trait]
impl Operations<AksProvider> for PoolOps {
    async fn read(
        &self,
        aks: &AksProvider,
        id: &CloudId,
        _: Option<&Attrs>,
    ) -> Result<Option<Observed>, ProviderError> {
        pool::read(aks, id).await
    }

    async fn find(&self, aks: &AksProvider, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
        let found = pool::read(aks, &pool::id(text(spec, "cluster")?, text(spec, "name")?)).await?;
        match recover(aks, spec, found, API).await? {
            Found::Nothing => Ok(None),
            Found::Settled(o) => Ok(Some(o)),
            Found::ReadAgain(id) => pool::read(aks, &id).await,
        }
    }

    async fn create(&self, aks: &AksProvider, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
        pool::create(aks, spec).await
    }

    async fn update(
        &self,
        aks: &AksProvider,
        spec: &ResourceSpec,
        id: &CloudId,
        _: &[String],
    ) -> Result<Observed, ProviderError> {
        pool::update(aks, spec, id).await
    }

    async fn delete(&self, aks: &AksProvider, id: &CloudId) -> Result<(), ProviderError> {
        pool::delete(aks, id).await
    }
}

/// The AKS backend's resource types. Pure: schemas and operation values, no client.
pub fn types() -> Types<AksProvider> {
    Types::new("aks")
        .register(resource_group(), GroupOps)
        .register(managed_cluster(), ClusterOps)
        .register(agent_pool(), PoolOps)
}

#[cfg(test)]
mod tests;
