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
//! Each resource type's schema and operations are registered once, in [`types`]: the provider's
//! one entry point, `call`, dispatches there, and every answer is held to the type's schema.
//!
//! ## Safe to repeat
//!
//! - A create sends `If-None-Match: *`: a repeat after a crash never overwrites. Its 412 means
//!   the object exists, which is adopted when its ownership tags (fleet, address, generation) are
//!   this spec's and refused otherwise. A find (recovery, [`types`]) applies the same rule to the
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
mod names;
mod pool;
pub mod types;

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tessera_provider_api::poll::PollPolicy;
use tessera_provider_api::serial::Serial;
use tessera_provider_api::{
    Attrs, Catalog, Operation, Outcome, Provider, ProviderError, Request, ResourceSpec, Types, catalogs,
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

/// The backend's resource types, built once: every provider (one per subscription) shares the
/// same schemas and operations.
static TYPES: LazyLock<Types<AksProvider>> = LazyLock::new(types::types);

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

#[async_trait]
impl Provider for AksProvider {
    fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    fn estimate(&self, rtype: &str, op: Operation) -> Duration {
        TYPES.estimate(rtype, op)
    }

    fn kubeconfig(&self, rtype: &str, attrs: &Attrs) -> Option<Value> {
        (rtype == lower::CLUSTER).then(|| cluster::kubeconfig(attrs)).flatten()
    }

    async fn call(&self, request: Request<'_>) -> Result<Outcome, ProviderError> {
        TYPES.call(self, request).await
    }
}
