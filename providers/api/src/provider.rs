use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{Address, Attrs, Catalog, CloudId, ProviderError};

/// Enough to rebuild a provider client for a resource, even after its placement has left the
/// spec (so that it can still be read and destroyed). It is also the unit of concurrency: each
/// distinct `ProviderRef` gets its own in-flight budget.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProviderRef {
    /// `sim`, `eks`, `aks`, `gke`, `kind`.
    pub kind: String,
    pub region: String,
    /// Backend-specific flavour; for `sim`, the cloud profile it imitates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// For a provider configured from a resource (a Kubernetes connection from a cluster): the
    /// resource whose outputs it connects with. Such a provider is built at execution time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<Address>,
    /// Where in the cloud: an AWS `account` or `profile`, an Azure `subscription` and
    /// `resourceGroup`, a GCP `project`. Part of the identity, so two accounts in one region get
    /// their own concurrency and rate limits.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scope: BTreeMap<String, String>,
}

impl ProviderRef {
    pub fn new(kind: impl Into<String>, region: impl Into<String>) -> Self {
        Self { kind: kind.into(), region: region.into(), ..Self::default() }
    }

    /// A provider of `kind` that connects through the outputs of `source`.
    pub fn connected(kind: impl Into<String>, source: Address) -> Self {
        Self { kind: kind.into(), connection: Some(source), ..Self::default() }
    }
}

/// What a provider configured from a resource is built from: the source object's identity and
/// its outputs, as committed to state. Keyed by the identity, so a replaced cluster gets a new
/// client.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    pub source: Address,
    pub id: CloudId,
    pub outputs: Attrs,
}

impl Connection {
    pub fn output(&self, name: &str) -> Result<&str, ProviderError> {
        self.outputs.get(name).and_then(|v| v.as_str()).ok_or_else(|| {
            ProviderError::Fatal(format!("the connection source {} has no output `{name}`", self.source))
        })
    }
}

impl fmt::Display for ProviderRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind)?;
        if let Some(p) = &self.profile {
            write!(f, "[{p}]")?;
        }
        if !self.scope.is_empty() {
            let scope: Vec<String> = self.scope.iter().map(|(k, v)| format!("{k}={v}")).collect();
            write!(f, "{{{}}}", scope.join(","))?;
        }
        if !self.region.is_empty() {
            write!(f, "/{}", self.region)?;
        }
        if let Some(source) = &self.connection {
            write!(f, "({source})")?;
        }
        Ok(())
    }
}

/// How the objects inside a placement's cluster are reached: which resource is the cluster
/// (its outputs connect), which provider talks to it, and what must exist before anything is
/// installed (the node pools, so that DaemonSets have nodes to cover).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeAccess {
    pub cluster: Address,
    /// A provider configured from `cluster`: `connection` is `Some(cluster)`.
    pub provider: ProviderRef,
    pub after: Vec<Address>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    Create,
    Update,
    Delete,
}

impl Operation {
    /// The value for this operation out of one per operation (a backend's table of estimates).
    pub fn pick<T>(self, create: T, update: T, delete: T) -> T {
        match self {
            Self::Create => create,
            Self::Update => update,
            Self::Delete => delete,
        }
    }
}

/// A cloud backend's client. Lowering is pure and lives on [`crate::Backend`]; this talks to the
/// cloud.
///
/// Every mutating call must be safe to repeat after a crash: a create tags what it makes with
/// [`crate::TAG_FLEET`] and [`crate::TAG_ADDRESS`], an update converges to the given spec, and
/// a delete of a missing resource returns [`ProviderError::NotFound`].
#[async_trait]
pub trait Provider: Send + Sync {
    fn catalog(&self) -> &Catalog;

    /// How long `op` usually takes on `rtype`; drives longest-path-first scheduling.
    fn estimate(&self, rtype: &str, op: Operation) -> Duration;

    /// How many calls may be in flight at once against this provider and region.
    fn max_in_flight(&self) -> usize {
        8
    }

    /// A kubeconfig (as JSON) for a cluster resource with these recorded attributes, when the
    /// provider can authenticate without a stored token.
    fn kubeconfig(&self, _rtype: &str, _attrs: &Attrs) -> Option<serde_json::Value> {
        None
    }

    /// Whether this provider can act at all here (its CLI is installed, its daemon runs), asked
    /// before a run records anything: a failure refuses the whole run with nothing written.
    async fn preflight(&self) -> Result<(), ProviderError> {
        Ok(())
    }

    /// The one operation entry point: a read, find, create, update or delete of one resource
    /// ([`crate::Request`]). A provider built from a [`crate::Types`] table forwards it there; a
    /// decorator wraps this one method. Callers use [`crate::ProviderExt`]'s `read`, `create`, ….
    async fn call(&self, request: crate::Request<'_>) -> Result<crate::Outcome, ProviderError>;
}
