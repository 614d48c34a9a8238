//! The EKS resource types: each one's schema (attributes, policies, replacement rules, outputs,
//! estimates) and its operations, registered once in the backend's [`Types`] table.
//!
//! The schemas hold what lowering used to stamp on each spec (see [`crate::lower`]'s table), and
//! the attributes each type's read reports: the table holds every answer to them, so a cloud
//! answer without, say, a node group's `nodeRoleArn` is an error naming the path, never an empty
//! value planned as drift.

use async_trait::async_trait;
use tessera_provider_api::{
    Attrs, CloudId, Field, FieldPolicy, Observed, Operations, ProviderError, Replacement, ResourceSpec, Schema,
    TAGS_ATTR, Ty, Types,
};

use crate::names::{CLUSTER, NODEGROUP, ROLE, SUBNET, VPC};
use crate::{EksProvider, attrs, cluster, iam, network, nodegroup, ours};

/// Bumped when a type's attributes change shape, so a plan made against the old shape is stale.
const SCHEMA_VERSION: u32 = 1;

fn tags() -> Field {
    Field::input(TAGS_ATTR, Ty::map(Ty::Text))
}

fn texts() -> Ty {
    Ty::list(Ty::Text)
}

fn vpc() -> Schema {
    Schema::new(VPC, SCHEMA_VERSION).input("cidr", Ty::Text).field(tags()).replace_on("cidr").takes(10, 5, 20)
}

fn subnet() -> Schema {
    Schema::new(SUBNET, SCHEMA_VERSION)
        .input("cidr", Ty::Text)
        .input("zone", Ty::Text)
        .input("vpcId", Ty::Text)
        .field(tags())
        .replace_on("cidr")
        .replace_on("zone")
        .replace_on("vpcId")
        .takes(10, 5, 20)
}

fn role() -> Schema {
    Schema::new(ROLE, SCHEMA_VERSION)
        .input("name", Ty::Text)
        // The trust policy's service: sent on create, never read back (GetRole's document is
        // not compared), and never a reason to change the role.
        .field(Field::input("service", Ty::Text).write_only())
        .input("policies", texts())
        .field(tags())
        .field(Field::computed("arn", Ty::Text))
        .outputs(&["arn"])
        .policy("service", FieldPolicy::Ignored)
        .replace_on("name")
        // IAM role names are global: the old role must go before the new one can exist.
        .replaced_by(Replacement::DestroyBeforeCreate)
}

fn eks_cluster() -> Schema {
    Schema::new(CLUSTER, SCHEMA_VERSION)
        .input("name", Ty::Text)
        .input("version", Ty::Text)
        .input("logTypes", texts())
        .input("endpointPublicAccess", Ty::Bool)
        .input("endpointPrivateAccess", Ty::Bool)
        .input("publicAccessCidrs", texts())
        .input("roleArn", Ty::Text)
        .input("subnetIds", texts())
        .field(tags())
        .field(Field::computed("arn", Ty::Text))
        // EKS reports the endpoint and the CA once the control plane is up, not while it is
        // being created.
        .field(Field::computed("endpoint", Ty::Text).optional())
        .field(Field::computed("certificateAuthority", Ty::Text).optional())
        .versioned("version")
        .outputs(&["name", "endpoint", "certificateAuthority", "arn"])
        .replace_on("name")
        .replace_on("roleArn")
        .replace_on("subnetIds")
        // Cluster names are unique per region: the old cluster must go before the new one.
        .replaced_by(Replacement::DestroyBeforeCreate)
        .takes(600, 480, 360)
}

fn taint() -> Ty {
    Ty::Object(vec![Field::input("key", Ty::Text), Field::input("value", Ty::Text), Field::input("effect", Ty::Text)])
}

fn node_group() -> Schema {
    Schema::new(NODEGROUP, SCHEMA_VERSION)
        .input("cluster", Ty::Text)
        .input("name", Ty::Text)
        .input("instanceType", Ty::Text)
        .input("amiType", Ty::Text)
        .input("capacityType", Ty::Text)
        .input("minSize", Ty::Integer)
        .input("maxSize", Ty::Integer)
        .input("desiredSize", Ty::Integer)
        .input("labels", Ty::map(Ty::Text))
        .input("taints", Ty::list(taint()))
        .input("version", Ty::Text)
        .input("nodeRoleArn", Ty::Text)
        .input("subnetIds", texts())
        .field(tags())
        .field(Field::computed("arn", Ty::Text))
        // The cluster autoscaler owns the live node count.
        .policy("desiredSize", FieldPolicy::Delegated)
        .replace_on("cluster")
        .replace_on("name")
        .replace_on("instanceType")
        .replace_on("amiType")
        .replace_on("capacityType")
        .replace_on("nodeRoleArn")
        .replace_on("subnetIds")
        .takes(240, 180, 240)
}

/// Found by tags or by name: ours only if fleet, address and generation all match.
fn if_ours(spec: &ResourceSpec, found: Option<Observed>) -> Option<Observed> {
    found.filter(|o| ours(spec, &o.attrs))
}

fn name(spec: &ResourceSpec) -> Result<&str, ProviderError> {
    attrs::text(&spec.attrs, "name")
}

/// A VPC or a subnet: the same operations (tags are all they change in place), on their own
/// EC2 calls.
#[derive(Clone, Copy)]
enum Net {
    Vpc,
    Subnet,
}

impl Net {
    async fn read(self, c: &crate::Clients, id: &str) -> Result<Option<Observed>, ProviderError> {
        match self {
            Net::Vpc => network::read_vpc(c, id).await,
            Net::Subnet => network::read_subnet(c, id).await,
        }
    }
}
struct RoleOps;
struct ClusterOps;
struct NodeGroupOps;

#[async_trait]
impl Operations<EksProvider> for Net {
    async fn read(&self, p: &EksProvider, id: &CloudId, _: Option<&Attrs>) -> Result<Option<Observed>, ProviderError> {
        Net::read(*self, p.clients().await, id).await
    }

    async fn find(&self, p: &EksProvider, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
        let c = p.clients().await;
        let found = match self {
            Net::Vpc => network::find_vpc(c, spec).await?,
            Net::Subnet => network::find_subnet(c, spec).await?,
        };
        Ok(if_ours(spec, found))
    }

    async fn create(&self, p: &EksProvider, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
        let c = p.clients().await;
        match self {
            Net::Vpc => network::create_vpc(c, spec).await,
            Net::Subnet => network::create_subnet(c, spec).await,
        }
    }

    async fn update(
        &self,
        p: &EksProvider,
        spec: &ResourceSpec,
        id: &CloudId,
        _: &[String],
    ) -> Result<Observed, ProviderError> {
        let c = p.clients().await;
        // VPCs and subnets change only their tags in place.
        let live = Net::read(*self, c, id).await?.ok_or_else(|| ProviderError::NotFound(id.clone()))?;
        network::retag(c, id, spec, &live.attrs).await?;
        Net::read(*self, c, id).await?.ok_or_else(|| ProviderError::NotFound(id.clone()))
    }

    async fn delete(&self, p: &EksProvider, id: &CloudId) -> Result<(), ProviderError> {
        let c = p.clients().await;
        match self {
            Net::Vpc => network::delete_vpc(c, id).await,
            Net::Subnet => network::delete_subnet(c, id).await,
        }
    }
}

#[async_trait]
impl Operations<EksProvider> for RoleOps {
    async fn read(&self, p: &EksProvider, id: &CloudId, _: Option<&Attrs>) -> Result<Option<Observed>, ProviderError> {
        iam::read(p.clients().await, id).await
    }

    async fn find(&self, p: &EksProvider, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
        Ok(if_ours(spec, iam::read(p.clients().await, name(spec)?).await?))
    }

    async fn create(&self, p: &EksProvider, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
        iam::create(p.clients().await, spec).await
    }

    async fn update(
        &self,
        p: &EksProvider,
        spec: &ResourceSpec,
        id: &CloudId,
        changed: &[String],
    ) -> Result<Observed, ProviderError> {
        iam::update(p.clients().await, id, spec, changed).await
    }

    async fn delete(&self, p: &EksProvider, id: &CloudId) -> Result<(), ProviderError> {
        iam::delete(p.clients().await, id).await
    }
}

#[async_trait]
impl Operations<EksProvider> for ClusterOps {
    async fn read(&self, p: &EksProvider, id: &CloudId, _: Option<&Attrs>) -> Result<Option<Observed>, ProviderError> {
        cluster::read(p.clients().await, id).await
    }

    async fn find(&self, p: &EksProvider, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
        Ok(if_ours(spec, cluster::read(p.clients().await, name(spec)?).await?))
    }

    async fn create(&self, p: &EksProvider, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
        cluster::create(p, p.clients().await, spec).await
    }

    async fn update(
        &self,
        p: &EksProvider,
        spec: &ResourceSpec,
        id: &CloudId,
        changed: &[String],
    ) -> Result<Observed, ProviderError> {
        cluster::update(p, p.clients().await, id, spec, changed).await
    }

    async fn delete(&self, p: &EksProvider, id: &CloudId) -> Result<(), ProviderError> {
        cluster::delete(p, p.clients().await, id).await
    }
}

#[async_trait]
impl Operations<EksProvider> for NodeGroupOps {
    async fn read(&self, p: &EksProvider, id: &CloudId, _: Option<&Attrs>) -> Result<Option<Observed>, ProviderError> {
        nodegroup::read(p.clients().await, id).await
    }

    async fn find(&self, p: &EksProvider, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
        let id = nodegroup::id(attrs::text(&spec.attrs, "cluster")?, name(spec)?);
        Ok(if_ours(spec, nodegroup::read(p.clients().await, &id).await?))
    }

    async fn create(&self, p: &EksProvider, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
        nodegroup::create(p, p.clients().await, spec).await
    }

    async fn update(
        &self,
        p: &EksProvider,
        spec: &ResourceSpec,
        id: &CloudId,
        changed: &[String],
    ) -> Result<Observed, ProviderError> {
        nodegroup::update(p, p.clients().await, id, spec, changed).await
    }

    async fn delete(&self, p: &EksProvider, id: &CloudId) -> Result<(), ProviderError> {
        nodegroup::delete(p, p.clients().await, id).await
    }
}

/// The EKS backend's resource types. Pure: schemas and operation values, no client.
pub fn types() -> Types<EksProvider> {
    Types::new("eks")
        .register(vpc(), Net::Vpc)
        .register(subnet(), Net::Subnet)
        .register(role(), RoleOps)
        .register(eks_cluster(), ClusterOps)
        .register(node_group(), NodeGroupOps)
}

#[cfg(test)]
mod tests;
