//! `aks`: Azure Kubernetes Service over Azure Resource Manager's REST API, version 2024-09-01.
//!
//! ## Overview
//!
//! No maintained Rust SDK covers ARM's container service (TESTBED.md), so this backend speaks
//! REST itself: reqwest, serde models of the bodies it uses ([`model`]), bearer tokens from
//! `azure_identity` behind a small trait ([`auth`]), and ARM's long-running operations polled
//! through the shared poller ([`arm`]).
//!
//! A placement lowers to a resource group (unless it names one), the managed cluster with its
//! system pool, and one agent pool per further pool ([`lower`] says why the system pool belongs
//! to the cluster resource).
//!
//! ## Safe to repeat
//!
//! - A create sends `If-None-Match: *`: a repeat after a crash never overwrites. Its 412 means
//!   the object exists, which is adopted when its ownership tags (fleet, address, generation) are
//!   this spec's and refused otherwise. [`Provider::find`] (recovery) applies the same rule to the
//!   deterministic names.
//! - An update reads the object and sends `If-Match` with the eTag it read: a change made in
//!   between is a conflict (retried, with a fresh read), never overwritten blindly.
//! - One mutating operation per cluster at a time ([`Serial`], held from the request until the
//!   operation has settled); AKS's own 409 `OperationNotAllowed`, for what the lock cannot see,
//!   is a retryable conflict.
//! - Deletes of what is gone are `NotFound`.
//!
//! `AZURE_ENDPOINT` (or [`AksSettings::endpoint`]) points the backend at another endpoint, such
//! as the test fixture.

pub mod arm;
pub mod auth;
pub mod backend;
mod cluster;
pub mod error;
mod group;
pub mod lower;
pub mod model;
mod pool;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tessera_provider_api::poll::PollPolicy;
use tessera_provider_api::serial::Serial;
use tessera_provider_api::{
    Attrs, Catalog, CloudId, Observed, Operation, Provider, ProviderError, ResourceSpec, catalogs,
};

pub use auth::{StaticToken, TokenSource};
pub use backend::AksBackend;
pub use lower::is_pool_name;

/// The ARM API version of every managed-cluster and agent-pool call.
pub const API: &str = "2024-09-01";

/// The AAD application of the AKS API server, which `kubelogin` asks a token for.
pub const AKS_SERVER_ID: &str = "6dae42f8-4368-4678-94ff-3960e28e3630";

/// How to reach ARM. Unset fields come from the environment (see [`backend`]).
#[derive(Clone, Default)]
pub struct AksSettings {
    pub endpoint: Option<String>,
    pub token: Option<Arc<dyn TokenSource>>,
    pub poll: Option<PollPolicy>,
}

pub struct AksProvider {
    subscription: String,
    catalog: Catalog,
    arm: arm::Arm,
    serial: Serial,
}

impl AksProvider {
    pub fn new(subscription: String, settings: AksSettings) -> Result<Self, ProviderError> {
        let token = settings
            .token
            .ok_or_else(|| ProviderError::Fatal("the aks provider has no way to sign in to Azure".into()))?;
        let endpoint = settings.endpoint.unwrap_or_else(|| backend::PUBLIC_CLOUD.to_string());
        let arm = arm::Arm::new(&endpoint, token, settings.poll.unwrap_or_default())?;
        Ok(Self { subscription, catalog: catalogs::aks(), arm, serial: Serial::new() })
    }
}

pub(crate) fn fatal_attrs(what: &str, e: impl std::fmt::Display) -> ProviderError {
    ProviderError::Fatal(format!("{what} is malformed: {e}"))
}

pub(crate) fn ours(spec: &ResourceSpec, observed: &Attrs) -> bool {
    spec.is_ours(observed)
}

pub(crate) fn not_ours(spec: &ResourceSpec, what: &str) -> ProviderError {
    spec.not_ours(what)
}

fn unknown_type(rtype: &str) -> ProviderError {
    ProviderError::Fatal(format!("the aks backend has no resource type `{rtype}`"))
}

fn text<'a>(spec: &'a ResourceSpec, key: &str) -> Result<&'a str, ProviderError> {
    spec.attrs
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| fatal_attrs(&spec.address.to_string(), format!("no `{key}`")))
}

#[async_trait]
impl Provider for AksProvider {
    fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    fn estimate(&self, rtype: &str, op: Operation) -> Duration {
        let (create, update, delete) = match rtype {
            lower::CLUSTER => (600, 600, 600),
            lower::POOL => (300, 300, 300),
            lower::GROUP => (5, 5, 120),
            _ => (5, 5, 5),
        };
        Duration::from_secs(op.pick(create, update, delete))
    }

    fn kubeconfig(&self, rtype: &str, attrs: &Attrs) -> Option<Value> {
        (rtype == lower::CLUSTER).then(|| cluster::kubeconfig(attrs)).flatten()
    }

    async fn read(&self, rtype: &str, id: &CloudId) -> Result<Option<Observed>, ProviderError> {
        match rtype {
            lower::GROUP => group::read(self, id).await,
            lower::CLUSTER => cluster::read(self, id).await,
            lower::POOL => pool::read(self, id).await,
            other => Err(unknown_type(other)),
        }
    }

    async fn read_recorded(
        &self,
        rtype: &str,
        id: &CloudId,
        recorded: &Attrs,
    ) -> Result<Option<Observed>, ProviderError> {
        match rtype {
            lower::CLUSTER => {
                let known = recorded.get("certificateAuthority").and_then(Value::as_str);
                cluster::read_knowing(self, id, known).await
            }
            _ => self.read(rtype, id).await,
        }
    }

    async fn find(&self, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
        let found = match spec.rtype() {
            lower::GROUP => group::read(self, &group::id(&self.subscription, text(spec, "name")?)).await?,
            lower::CLUSTER => {
                let id = cluster::id(&self.subscription, text(spec, "resourceGroup")?, text(spec, "name")?);
                cluster::read(self, &id).await?
            }
            lower::POOL => pool::read(self, &pool::id(text(spec, "cluster")?, text(spec, "name")?)).await?,
            other => return Err(unknown_type(other)),
        };
        let Some(found) = found.filter(|o| ours(spec, &o.attrs)) else { return Ok(None) };
        if matches!(found.status.as_str(), "Succeeded" | "Failed" | "Canceled" | "") {
            return Ok(Some(found));
        }
        // An operation a crash left running: adopt the object once it has settled, so what
        // recovery records is what the object is (a cluster's endpoint and CA come at the end).
        let path = found.id.clone();
        let api = if spec.rtype() == lower::GROUP { group::GROUPS_API } else { API };
        self.arm.settle(&arm::Reply::empty(), &path, api, &format!("{} (recovering)", spec.address)).await?;
        self.read(spec.rtype(), &path).await
    }

    async fn create(&self, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
        match spec.rtype() {
            lower::GROUP => group::create(self, spec).await,
            lower::CLUSTER => cluster::create(self, spec).await,
            lower::POOL => pool::create(self, spec).await,
            other => Err(unknown_type(other)),
        }
    }

    async fn update(&self, spec: &ResourceSpec, id: &CloudId, changed: &[String]) -> Result<Observed, ProviderError> {
        match spec.rtype() {
            lower::GROUP => group::update(self, spec, id).await,
            lower::CLUSTER => cluster::update(self, spec, id, changed).await,
            lower::POOL => pool::update(self, spec, id).await,
            other => Err(unknown_type(other)),
        }
    }

    async fn delete(&self, rtype: &str, id: &CloudId) -> Result<(), ProviderError> {
        match rtype {
            lower::GROUP => group::delete(self, id).await,
            lower::CLUSTER => cluster::delete(self, id).await,
            lower::POOL => pool::delete(self, id).await,
            other => Err(unknown_type(other)),
        }
    }
}
