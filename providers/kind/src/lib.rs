//! `kind`: a fleet's placement as a local kind cluster, through the real `kind` CLI.
//!
//! ## Overview
//!
//! A placement lowers to one `kind.cluster` ([`lower`]) whose `config` is the kind config
//! generated from its pools ([`config`]), on the node image pinned for its minor ([`images`]).
//! Its schema (outputs, replacement rules, estimates) and operations are registered in
//! [`types`]. The provider drives the `kind` binary ([`cli`]) and keeps, beside the files kind
//! reads, a record of what it asked for ([`record`]), since a kind cluster carries no tags:
//! - **create**: [`KindProvider::preflight`] first (`kind version`, `kind get clusters`), so a
//!   missing kind or a stopped Docker is one clear error before anything is written; then the
//!   record, then `kind create cluster`. A cluster of the same name that already exists is
//!   adopted when its record matches this spec (recovery after a crash), and refused otherwise;
//! - **read**: `kind get clusters`, then `kind get kubeconfig` for the endpoint and CA;
//! - **update**: only the ownership tags change in place (the record); everything else replaces;
//! - **delete**: `kind delete cluster`; a cluster that is not there is already deleted.
//!
//! Every failure is fatal and carries kind's `ERROR:` line: nothing kind reports clears by
//! itself. The core services reach the cluster through the `kube` provider with
//! `scope.auth = kind` (see [`lower::kube_access`]).

pub mod backend;
pub mod cli;
pub mod config;
pub mod error;
pub mod images;
pub mod kubeconfig;
pub mod lower;
pub mod record;
pub mod types;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use tessera_provider_api::{
    Attrs, Catalog, CloudId, Observed, Operation, Outcome, Provider, ProviderError, Request, ResourceSpec, TAGS_ATTR,
};

pub use backend::KindBackend;
use cli::KindCli;
pub use config::KindOptions;
use error::KindError;
use record::Workdir;

/// How to run kind here.
#[derive(Debug, Clone)]
pub struct KindSettings {
    /// The kind binary; `None`: `TESSERA_KIND`, else `kind` on PATH.
    pub binary: Option<PathBuf>,
    /// Where the kind configs, audit policies and records live (see [`record`]).
    pub state_dir: PathBuf,
    /// kind's `--wait` at create.
    pub wait: String,
}

impl Default for KindSettings {
    fn default() -> Self {
        Self { binary: None, state_dir: default_state_dir(), wait: "5m".into() }
    }
}

/// `$XDG_STATE_HOME/tessera/kind`, else `~/.local/state/tessera/kind`, else under the temp dir.
pub fn default_state_dir() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("tessera").join("kind")
}

pub struct KindProvider {
    cli: KindCli,
    workdir: Workdir,
    catalog: Catalog,
}

fn name_of(spec: &ResourceSpec) -> Result<String, ProviderError> {
    spec.attrs
        .get("name")
        .and_then(|v| v.as_str())
        .map(String::from)
        .ok_or_else(|| ProviderError::Fatal(format!("{} has no `name`", spec.address)))
}

/// Whether a record is of this spec's cluster as lowered: the same recorded attributes,
/// ownership tags included (so a replacement's next generation never adopts the old cluster).
fn matches(spec: &ResourceSpec, record: &Attrs) -> bool {
    record::RECORDED.iter().all(|k| spec.attrs.get(*k) == record.get(*k))
}

impl KindProvider {
    pub fn new(settings: KindSettings) -> Self {
        let binary = cli::resolve_binary(settings.binary.as_deref(), std::env::var_os(cli::ENV_BINARY));
        Self {
            cli: KindCli::new(binary, settings.wait),
            workdir: Workdir::new(settings.state_dir),
            catalog: backend::catalog(),
        }
    }

    /// That kind runs and Docker answers: `kind version`, then `kind get clusters` (which lists
    /// Docker containers). Returns the clusters. Fatal errors only.
    pub async fn preflight(&self) -> Result<Vec<String>, ProviderError> {
        self.cli.version().await?;
        Ok(self.cli.clusters().await?)
    }

    async fn observe(&self, name: &str) -> Result<Observed, ProviderError> {
        let kubeconfig = self.cli.kubeconfig(name).await?;
        let (endpoint, ca) = kubeconfig::endpoint_and_ca(&kubeconfig, name)?;
        // What Tessera asked for, from its record; a cluster without one (not made by Tessera, or
        // its record deleted) reports none of it (the schema has these `maybe_read`), so the diff
        // sees each value as changed rather than as an empty one.
        let mut attrs = self.workdir.load(name).await?.unwrap_or_default();
        attrs.insert("name".into(), json!(name));
        attrs.insert("endpoint".into(), json!(endpoint));
        attrs.insert("certificateAuthority".into(), json!(ca));
        Ok(Observed { id: name.to_string(), status: "running".into(), attrs })
    }

    /// A cluster named like `spec`'s exists: adopt it if Tessera made it with this config.
    async fn adopt(&self, spec: &ResourceSpec, name: &str) -> Result<Observed, ProviderError> {
        match self.workdir.load(name).await? {
            Some(record) if matches(spec, &record) => self.observe(name).await,
            found => {
                let why = if found.is_some() { "with another config or generation" } else { "not by Tessera" };
                Err(ProviderError::Fatal(format!(
                    "a kind cluster named `{name}` already exists, made {why}; kind cannot change a cluster, \
                     so delete it (`kind delete cluster --name {name}`) and apply again"
                )))
            }
        }
    }
}

#[async_trait]
impl Provider for KindProvider {
    fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// kind and Docker must both answer before a run records anything.
    async fn preflight(&self) -> Result<(), ProviderError> {
        KindProvider::preflight(self).await.map(drop)
    }

    fn estimate(&self, rtype: &str, op: Operation) -> Duration {
        types::TYPES.estimate(rtype, op)
    }

    /// One kind command at a time: a create starts several node containers and pulls images,
    /// and parallel creates on one host only slow each other.
    fn max_in_flight(&self) -> usize {
        1
    }

    async fn call(&self, request: Request<'_>) -> Result<Outcome, ProviderError> {
        types::TYPES.call(self, request).await
    }
}

/// The operations of `kind.cluster` ([`types::Cluster`] forwards to them).
impl KindProvider {
    pub(crate) async fn read_cluster(&self, id: &CloudId) -> Result<Option<Observed>, ProviderError> {
        if !self.cli.clusters().await?.iter().any(|c| c == id) {
            return Ok(None);
        }
        self.observe(id).await.map(Some)
    }

    pub(crate) async fn find_cluster(&self, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
        let name = name_of(spec)?;
        if !self.cli.clusters().await?.contains(&name) {
            return Ok(None);
        }
        match self.workdir.load(&name).await? {
            Some(record) if matches(spec, &record) => self.observe(&name).await.map(Some),
            _ => Ok(None),
        }
    }

    pub(crate) async fn create_cluster(&self, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
        let clusters = KindProvider::preflight(self).await?;
        let name = name_of(spec)?;
        if clusters.contains(&name) {
            return self.adopt(spec, &name).await;
        }
        let policy = lower::policy_file(self.workdir.root(), &name);
        self.workdir.write(&spec.attrs, &policy, &config::audit_policy()).await?;
        // kind writes the admin kubeconfig (with its client key) where --kubeconfig says: a
        // private temporary directory, removed when this call ends.
        let private = tempfile::Builder::new()
            .prefix("tessera-kind-")
            .tempdir()
            .map_err(|e| KindError::Local(format!("cannot make a temporary directory: {e}")))?;
        let created =
            self.cli.create(&name, &self.workdir.config_file(&name)?, &private.path().join("kubeconfig")).await;
        drop(private);
        match created {
            Ok(()) => self.observe(&name).await,
            Err(KindError::AlreadyExists(_)) => self.adopt(spec, &name).await,
            Err(e) => {
                // kind removes the nodes of a failed create: nothing is left to record.
                self.workdir.remove(&name).await?;
                Err(e.into())
            }
        }
    }

    pub(crate) async fn update_cluster(
        &self,
        spec: &ResourceSpec,
        id: &CloudId,
        changed: &[String],
    ) -> Result<Observed, ProviderError> {
        let in_place: Vec<&String> = changed.iter().filter(|f| f.as_str() != TAGS_ATTR).collect();
        if !in_place.is_empty() {
            return Err(ProviderError::Fatal(format!(
                "kind cannot change {} of cluster `{id}` in place; the cluster must be replaced",
                in_place.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
            )));
        }
        let policy = lower::policy_file(self.workdir.root(), id);
        self.workdir.write(&spec.attrs, &policy, &config::audit_policy()).await?;
        self.observe(id).await
    }

    pub(crate) async fn delete_cluster(&self, id: &CloudId) -> Result<(), ProviderError> {
        if KindProvider::preflight(self).await?.iter().any(|c| c == id) {
            self.cli.delete(id).await?;
        }
        Ok(self.workdir.remove(id).await?)
    }
}
