//! `kube`: Tessera's provider for real Kubernetes API servers, through kube-rs and the real helm.
//!
//! ## Overview
//!
//! A `kube` provider is configured from a cluster resource (its `ProviderRef.connection`): the
//! cluster's outputs give the API server and its CA, `scope.auth` the exec authentication
//! ([`connect`]). It executes the two resource types of [`tessera_kube::contract`]:
//! - `kube.object` ([`object`]): one object, server-side applied as `tessera`, read back as the
//!   fields `tessera` owns ([`fields`]), so drift is per owned field;
//! - `helm.release` ([`release`]): a chart rendered by `helm template` ([`helm`],
//!   [`manifests`]) and applied object by object, CRDs first, with an inventory that prunes;
//! - `kube.nodes` ([`nodes`], read-only): the nodes and the DaemonSet pods on each, and
//!   `kube.alerting` ([`alerting`], read-only): whether Alertmanager runs Tessera's routing and
//!   holds the heartbeat; both for `tessera verify`.
//!
//! For validation, [`offline::CachedCharts`] renders charts already on this machine with the
//! same helm, never pulling, so that coverage is checked on what helm renders.
//!
//! Requests and discovery are in [`wire`], the waits in [`cluster`], and the mapping of API
//! server and helm failures onto `ProviderError` in [`error`]. Each type's operations are
//! registered with its schema (declared once in `tessera_kube::schemas`) in [`types`], the table
//! every call goes through and every answer is checked against.
//!
//! ## Helm hooks
//!
//! Tessera does not run Helm hooks. The objects a chart marks with `helm.sh/hook` are Jobs and
//! Pods that `helm install` runs in a phase and then deletes; applied as ordinary objects they
//! would run at the wrong time, or never be cleaned up, and their results (kube-prometheus-stack's
//! admission-webhook certificates, patched into the webhook configuration) are moved by the Job,
//! not applied. So the release's values turn them off (for kube-prometheus-stack,
//! `prometheusOperator.admissionWebhooks`), and any object that still carries a hook annotation
//! is refused before anything is applied, with an error naming each one: fail closed, never
//! half a hook. `helm test` hooks are never rendered (`--skip-tests`).
//!
//! ## Settings
//!
//! [`KubeClientSettings`], in the build's extensions: an endpoint and a bearer token instead of the
//! cluster's (tests), the helm binary, the chart cache, local chart directories per `oci://`
//! reference (charts that cannot be pulled), and the deadlines of the waits.

pub mod alerting;
pub mod backend;
pub mod cluster;
pub mod connect;
pub mod error;
pub mod fields;
pub mod helm;
pub mod manifests;
pub mod nodes;
pub mod object;
pub mod offline;
pub mod release;
pub mod settings;
pub mod types;
pub mod wire;

use std::time::Duration;

use async_trait::async_trait;
use tessera_kube::contract::KIND;
use tessera_provider_api::{
    Catalog, Connection, MachineCatalog, Operation, Outcome, Provider, ProviderError, ProviderRef, Request,
};
use tokio::sync::OnceCell;

pub use backend::KubeBackend;
pub use offline::CachedCharts;
pub use settings::KubeClientSettings;

use crate::cluster::Cluster;

/// No regions, machines or versions: a `kube` provider runs inside a cluster made elsewhere.
pub fn catalog() -> Catalog {
    Catalog {
        provider: KIND.into(),
        regions: Vec::new(),
        machines: MachineCatalog::Any { name: "none".into() },
        versions: Vec::new(),
        supports_spot: false,
    }
}

pub struct KubeProvider {
    provider: ProviderRef,
    connection: Option<Connection>,
    settings: KubeClientSettings,
    catalog: Catalog,
    cluster: OnceCell<Cluster>,
}

impl KubeProvider {
    /// A provider for the cluster behind `connection`; without one, it can only estimate.
    pub fn new(provider: ProviderRef, connection: Option<Connection>, settings: KubeClientSettings) -> Self {
        Self { provider, connection, settings, catalog: catalog(), cluster: OnceCell::new() }
    }

    /// The cluster's client, built on first use (reading the kubeconfig is async).
    async fn cluster(&self) -> Result<&Cluster, ProviderError> {
        let conn = self.connection.as_ref().ok_or_else(|| {
            ProviderError::Fatal(format!(
                "the Kubernetes provider {} has no connection (its cluster is not known yet)",
                self.provider
            ))
        })?;
        self.cluster
            .get_or_try_init(|| async {
                let (client, endpoint) = connect::connected(conn, &self.provider, &self.settings).await?;
                let wire = wire::Wire::new(client, endpoint);
                Ok::<_, ProviderError>(Cluster { wire, settings: self.settings.clone() })
            })
            .await
    }
}

#[async_trait]
impl Provider for KubeProvider {
    fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    fn estimate(&self, rtype: &str, op: Operation) -> Duration {
        types::TYPES.estimate(rtype, op)
    }

    async fn call(&self, request: Request<'_>) -> Result<Outcome, ProviderError> {
        types::TYPES.call(self, request).await
    }
}
