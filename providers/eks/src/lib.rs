//! `eks`: Amazon EKS through the official AWS SDKs (aws-sdk-eks, -ec2, -iam).
//!
//! A placement lowers to a VPC, one subnet per zone, the cluster and node IAM roles, the EKS
//! cluster and one managed node group per pool (see [`lower`]). Everything Tessera creates carries
//! the `tessera.dev/fleet` and `tessera.dev/address` tags; creates look for their own tagged
//! object first and adopt it, so repeating a create after a crash does not duplicate anything.
//!
//! Credentials come from the standard AWS chain; `AWS_ENDPOINT_URL` is honoured (tests point it
//! at a moto server). Waits poll with exponential backoff, never a fixed sleep.

mod attrs;
mod cluster;
pub mod error;
mod iam;
pub mod lower;
mod network;
mod nodegroup;
pub mod wait;

use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_sdk_eks::config::{Credentials, Region};
use serde_json::{Value, json};
use tessera_provider_api::{
    Attrs, Catalog, CloudId, ClusterTemplate, Observed, Operation, Provider, ProviderError, ProviderRef, ResourceSpec,
    catalogs,
};
use tokio::sync::OnceCell;

pub use wait::PollPolicy;

/// How to reach AWS. Defaults: the standard environment (credentials chain, `AWS_ENDPOINT_URL`).
#[derive(Debug, Clone, Default)]
pub struct EksSettings {
    /// Overrides the endpoint for EKS, EC2 and IAM alike (a moto server, a proxy).
    pub endpoint_url: Option<String>,
    /// Static credentials instead of the chain (tests).
    pub static_credentials: Option<(String, String)>,
    pub poll: PollPolicy,
}

pub(crate) struct Clients {
    eks: aws_sdk_eks::Client,
    ec2: aws_sdk_ec2::Client,
    iam: aws_sdk_iam::Client,
}

pub struct EksProvider {
    region: String,
    settings: EksSettings,
    catalog: Catalog,
    poll: PollPolicy,
    clients: OnceCell<Clients>,
}

impl EksProvider {
    pub fn new(region: impl Into<String>, settings: EksSettings) -> Self {
        let poll = settings.poll.clone();
        Self { region: region.into(), settings, catalog: catalogs::eks(), poll, clients: OnceCell::new() }
    }

    /// SDK clients, built on first use: loading the AWS configuration is async.
    async fn clients(&self) -> &Clients {
        self.clients
            .get_or_init(|| async {
                let mut loader =
                    aws_config::defaults(BehaviorVersion::latest()).region(Region::new(self.region.clone()));
                if let Some(url) = &self.settings.endpoint_url {
                    loader = loader.endpoint_url(url);
                }
                if let Some((key, secret)) = &self.settings.static_credentials {
                    loader = loader.credentials_provider(Credentials::new(key, secret, None, None, "tessera-static"));
                }
                let conf = loader.load().await;
                Clients {
                    eks: aws_sdk_eks::Client::new(&conf),
                    ec2: aws_sdk_ec2::Client::new(&conf),
                    iam: aws_sdk_iam::Client::new(&conf),
                }
            })
            .await
    }
}

/// A stable idempotency token per resource (EKS deduplicates creates that repeat one).
pub(crate) fn request_token(spec: &ResourceSpec) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in spec
        .address
        .to_string()
        .bytes()
        .chain(spec.attrs.get("name").map(|n| n.to_string()).unwrap_or_default().bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("tessera-{h:016x}")
}

fn unknown_type(rtype: &str) -> ProviderError {
    ProviderError::Fatal(format!("the eks backend has no resource type `{rtype}`"))
}

/// A kubeconfig for a cluster, authenticating through `aws eks get-token`: no token is stored.
pub fn kubeconfig(cluster: &Attrs, region: &str) -> Option<Value> {
    let name = cluster.get("name")?.as_str()?;
    let server = cluster.get("endpoint")?.as_str()?;
    let ca = cluster.get("certificateAuthority")?.as_str()?;
    let context = format!("eks-{name}");
    Some(json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": context, "cluster": { "server": server, "certificate-authority-data": ca } }],
        "users": [{ "name": context, "user": { "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", name, "--region", region, "--output", "json"],
            "interactiveMode": "Never"
        } } }],
        "contexts": [{ "name": context, "context": { "cluster": context, "user": context } }],
        "current-context": context,
    }))
}

#[async_trait]
impl Provider for EksProvider {
    fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    fn lower(&self, cluster: &ClusterTemplate, provider: &ProviderRef) -> Vec<ResourceSpec> {
        lower::lower(&self.catalog, cluster, provider)
    }

    fn estimate(&self, rtype: &str, op: Operation) -> Duration {
        let (create, update, delete) = match rtype {
            lower::CLUSTER => (600, 480, 360),
            lower::NODEGROUP => (240, 180, 240),
            lower::VPC | lower::SUBNET => (10, 5, 20),
            _ => (5, 5, 5),
        };
        Duration::from_secs(match op {
            Operation::Create => create,
            Operation::Update => update,
            Operation::Delete => delete,
        })
    }

    fn kubeconfig(&self, rtype: &str, attrs: &Attrs) -> Option<Value> {
        (rtype == lower::CLUSTER).then(|| kubeconfig(attrs, &self.region)).flatten()
    }

    async fn read(&self, rtype: &str, id: &CloudId) -> Result<Option<Observed>, ProviderError> {
        let c = self.clients().await;
        match rtype {
            lower::VPC => network::read_vpc(c, id).await,
            lower::SUBNET => network::read_subnet(c, id).await,
            lower::ROLE => iam::read(c, id).await,
            lower::CLUSTER => cluster::read(c, id).await,
            lower::NODEGROUP => nodegroup::read(c, id).await,
            other => Err(unknown_type(other)),
        }
    }

    async fn find(&self, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
        let c = self.clients().await;
        let address = spec.address.to_string();
        let name = || attrs::text(&spec.attrs, "name");
        match spec.rtype() {
            lower::VPC => match network::vpc_id_for(c, network::fleet_of(spec)?, &address).await? {
                Some(id) => network::read_vpc(c, &id).await,
                None => Ok(None),
            },
            lower::SUBNET => match network::subnet_id_for(c, network::fleet_of(spec)?, &address).await? {
                Some(id) => network::read_subnet(c, &id).await,
                None => Ok(None),
            },
            lower::ROLE => iam::read(c, name()?).await,
            lower::CLUSTER => cluster::read(c, name()?).await,
            lower::NODEGROUP => nodegroup::read(c, &nodegroup::id(attrs::text(&spec.attrs, "cluster")?, name()?)).await,
            other => Err(unknown_type(other)),
        }
        // Found by name: only ours if it carries our address tag.
        .map(|found| {
            found.filter(|o| {
                o.attrs.get("tags").and_then(|t| t.get(tessera_provider_api::TAG_ADDRESS)) == Some(&json!(address))
            })
        })
    }

    async fn create(&self, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
        let c = self.clients().await;
        match spec.rtype() {
            lower::VPC => network::create_vpc(c, spec).await,
            lower::SUBNET => network::create_subnet(c, spec).await,
            lower::ROLE => iam::create(c, spec).await,
            lower::CLUSTER => cluster::create(self, c, spec).await,
            lower::NODEGROUP => nodegroup::create(self, c, spec).await,
            other => Err(unknown_type(other)),
        }
    }

    async fn update(&self, spec: &ResourceSpec, id: &CloudId, changed: &[String]) -> Result<Observed, ProviderError> {
        let c = self.clients().await;
        match spec.rtype() {
            lower::VPC | lower::SUBNET => {
                let read = |c, id| async move {
                    if spec.rtype() == lower::VPC {
                        network::read_vpc(c, id).await
                    } else {
                        network::read_subnet(c, id).await
                    }
                };
                let live = read(c, id).await?.ok_or_else(|| ProviderError::NotFound(id.clone()))?;
                network::retag(c, id, spec, &live.attrs).await?;
                read(c, id).await?.ok_or_else(|| ProviderError::NotFound(id.clone()))
            }
            lower::ROLE => iam::update(c, id, spec, changed).await,
            lower::CLUSTER => cluster::update(self, c, id, spec, changed).await,
            lower::NODEGROUP => nodegroup::update(self, c, id, spec, changed).await,
            other => Err(unknown_type(other)),
        }
    }

    async fn delete(&self, rtype: &str, id: &CloudId) -> Result<(), ProviderError> {
        let c = self.clients().await;
        match rtype {
            lower::VPC => network::delete_vpc(c, id).await,
            lower::SUBNET => network::delete_subnet(c, id).await,
            lower::ROLE => iam::delete(c, id).await,
            lower::CLUSTER => cluster::delete(self, c, id).await,
            lower::NODEGROUP => nodegroup::delete(self, c, id).await,
            other => Err(unknown_type(other)),
        }
    }
}
