//! `eks`: Amazon EKS through the official AWS SDKs (aws-sdk-eks, -ec2 and -iam).
//!
//! A placement lowers to a VPC, one subnet per zone, the cluster and node IAM roles, the EKS
//! cluster and one managed node group per pool (see [`lower`]). Resources point at each other
//! through *references* to outputs (a subnet's `vpcId` is the VPC's `id`, a cluster's `roleArn`
//! is its role's `arn`); the engine resolves them from the committed outputs just before each
//! call, so a create receives the ids and ARNs it needs and makes no look-ups of its own.
//!
//! Each resource type's schema and operations are registered once, in [`types`]: the provider's
//! one entry point, `call`, dispatches there, and every answer is held to the type's schema.
//!
//! ## Ownership and generations
//!
//! Everything Tessera creates carries the `tessera.dev/fleet` and `tessera.dev/address` tags, and
//! from its first replacement on a `tessera.dev/generation` tag. An object found by its tags or
//! by its name is ours only if all three match the spec: creates look for their own
//! object first and adopt it, so repeating a create after a crash does not duplicate anything,
//! and a replacement (the next generation) never adopts the object it replaces. A find
//! (recovery, [`tessera_provider_api::ProviderExt::find`]) applies the same rule.
//!
//! ## Calls
//!
//! A create returns what its response carries when that is everything `read` would report (a
//! VPC, a subnet, a role, an already ACTIVE cluster or node group), and otherwise waits with
//! DescribeCluster/DescribeNodegroup until the object settles. The only other calls are one
//! ownership look-up per VPC and subnet before creating it (EC2 takes no idempotency token for
//! them). For one cluster with one pool in three zones an apply makes 16 calls against moto,
//! where clusters and node groups are ACTIVE at once (`tests/eks_replace.rs` counts them);
//! against AWS, add the polls of the two waits.
//!
//! Credentials come from the standard AWS chain; `AWS_ENDPOINT_URL` is honoured (tests point it
//! at a moto server). Waits poll with exponential backoff, never a fixed sleep.

mod attrs;
pub mod backend;
mod cluster;
pub mod error;
mod iam;
pub mod lower;
mod names;
mod network;
mod nodegroup;
pub mod types;
pub mod wait;

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_sdk_eks::config::{Credentials, Region};
use serde_json::Value;
use tessera_provider_api::{
    Attrs, Catalog, Operation, Outcome, Provider, ProviderError, Request, ResourceSpec, Types, catalogs,
};
use tokio::sync::OnceCell;

pub use backend::EksBackend;
pub use wait::PollPolicy;

/// How to reach AWS. Defaults: the standard environment (credentials chain, `AWS_ENDPOINT_URL`).
#[derive(Debug, Clone, Default)]
pub struct EksSettings {
    /// Overrides the endpoint for EKS, EC2 and IAM alike (a moto server, a proxy).
    pub endpoint_url: Option<String>,
    /// Static credentials instead of the chain (tests, and the pipeline's sealed credentials).
    pub static_credentials: Option<(String, String)>,
    /// A named profile of the AWS configuration (a placement's `scope.profile`).
    pub profile: Option<String>,
    pub poll: PollPolicy,
}

pub(crate) struct Clients {
    eks: aws_sdk_eks::Client,
    ec2: aws_sdk_ec2::Client,
    iam: aws_sdk_iam::Client,
}

/// The backend's resource types, built once: every provider (one per region and account) shares
/// the same schemas and operations.
static TYPES: LazyLock<Types<EksProvider>> = LazyLock::new(types::types);

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
                if let Some(profile) = &self.settings.profile {
                    loader = loader.profile_name(profile);
                }
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

/// A stable idempotency token per object (EKS deduplicates creates that repeat one): the
/// address, the name and the generation, so that a replacement of the same name is not taken
/// for a repeat of the create it replaces.
pub(crate) fn request_token(spec: &ResourceSpec) -> String {
    let generation = match spec.generation() {
        0 => String::new(),
        g => format!("#{g}"),
    };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in spec
        .address
        .to_string()
        .bytes()
        .chain(spec.attrs.get("name").map(|n| n.to_string()).unwrap_or_default().bytes())
        .chain(generation.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("tessera-{h:016x}")
}

pub(crate) fn ours(spec: &ResourceSpec, observed: &Attrs) -> bool {
    spec.is_ours(observed)
}

pub(crate) fn not_ours(spec: &ResourceSpec, what: &str) -> ProviderError {
    spec.not_ours(what)
}

/// A kubeconfig for a cluster, authenticating through `aws eks get-token`: no token is stored.
pub fn kubeconfig(cluster: &Attrs, region: &str) -> Option<Value> {
    let name = cluster.get("name")?.as_str()?;
    let server = cluster.get("endpoint")?.as_str()?;
    let ca = cluster.get("certificateAuthority")?.as_str()?;
    let args = ["eks", "get-token", "--cluster-name", name, "--region", region, "--output", "json"];
    Some(tessera_provider_api::kubeconfig::exec(&format!("eks-{name}"), server, ca, "aws", &args))
}

#[async_trait]
impl Provider for EksProvider {
    fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    fn estimate(&self, rtype: &str, op: Operation) -> Duration {
        TYPES.estimate(rtype, op)
    }

    fn kubeconfig(&self, rtype: &str, attrs: &Attrs) -> Option<Value> {
        (rtype == lower::CLUSTER).then(|| kubeconfig(attrs, &self.region)).flatten()
    }

    async fn call(&self, request: Request<'_>) -> Result<Outcome, ProviderError> {
        TYPES.call(self, request).await
    }
}
