//! `tessera verify`: does every node of every cluster run its core services?
//!
//! ## Overview
//!
//! For each placement, the cluster's record in state gives the connection (as for any resource
//! configured from it); the cluster's Kubernetes provider then reports its nodes and the
//! DaemonSet pods on each (`tessera_kube::coverage::NODES`). What each node must run follows
//! from the spec ([`tessera_kube::coverage::expected`]): node-exporter and each exporter for
//! monitoring, fluent-bit and the host tailer for logging. A node without a ready pod of one of
//! them is a gap, named with its pool and the DaemonSet. Nothing is changed and no lease is
//! taken.
//!
//! Placements are read concurrently, each on its own: one that cannot be read is reported and the
//! others go on. Before its API is asked, each cluster is read through its cloud's provider (one
//! describe call): a cluster the cloud says does not exist is reported at once as gone, rather
//! than its API being retried as unreachable. An API that does not answer is given up on within
//! the retry policy's bound for unreachable servers (`crate::retry`).

use serde::Serialize;
use tessera_kube::coverage::{self, Node, Report};
use tessera_provider_api::{Connection, ProviderError, ProviderExt};

use crate::providers::{Registry, UnknownProvider};
use crate::retry::RetryPolicy;
use crate::spec::Fleet;
use crate::state::{ResourceRecord, StateError, StateStore};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum VerifyError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Provider(#[from] UnknownProvider),
}

/// One placement's coverage, or why it could not be read.
#[derive(Debug, Clone, Serialize)]
pub struct PlacementCoverage {
    pub placement: String,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl PlacementCoverage {
    pub fn uncovered(&self) -> usize {
        self.report.as_ref().map_or(0, |r| r.gaps.len())
    }
}

/// Reads every placement's coverage, concurrently; a placement that cannot be read is reported,
/// not fatal, and does not hold up the others.
pub async fn verify(
    fleet: &Fleet,
    registry: &Registry,
    store: &dyn StateStore,
    retry: &RetryPolicy,
) -> Result<Vec<PlacementCoverage>, VerifyError> {
    let records = store.resources().await?;
    let mut reads = Vec::new();
    for p in &fleet.placements {
        let Some(access) = registry.kube_access(&p.cluster, &p.provider)? else { continue };
        let cluster = records.iter().find(|r| r.address == access.cluster && !r.deposed);
        reads.push(async move {
            let (report, error) = match read_placement(p, &access, cluster, registry, retry).await {
                Ok(report) => (Some(report), None),
                Err(e) => (None, Some(e)),
            };
            Ok::<_, VerifyError>(PlacementCoverage { placement: p.name.clone(), report, error })
        });
    }
    futures::future::join_all(reads).await.into_iter().collect()
}

/// One placement: the cluster as the cloud sees it, then its nodes through its Kubernetes API.
async fn read_placement(
    p: &crate::spec::Placement,
    access: &tessera_provider_api::KubeAccess,
    cluster: Option<&ResourceRecord>,
    registry: &Registry,
    retry: &RetryPolicy,
) -> Result<Report, String> {
    let Some(cluster) = cluster else {
        return Err(format!("{} is not in state: apply first", access.cluster));
    };
    let cloud = registry.get(&cluster.provider).map_err(|e| e.to_string())?;
    let found = retry.run(|| cloud.read(&cluster.address.rtype, &cluster.id), |_, _| {}).await;
    match found {
        Ok(None) | Err(ProviderError::NotFound(_)) => {
            return Err(format!(
                "cluster {} ({}) does not exist any more: the cloud has no such cluster (deleted outside \
                 Tessera?). `tessera plan` shows it being created again",
                cluster.address, cluster.id
            ));
        }
        // The cluster's API may still answer when its cloud's does not: go on and ask it.
        Ok(Some(_)) | Err(_) => {}
    }
    let conn = Connection { source: cluster.address.clone(), id: cluster.id.clone(), outputs: cluster.attrs.clone() };
    let kube = registry.connect(&access.provider, &conn).map_err(|e| e.to_string())?;
    let all = String::new();
    let read = retry.run(|| kube.read(coverage::NODES, &all), |_, _| {}).await;
    let nodes = read.and_then(|o| nodes_of(o.map(|o| o.attrs))).map_err(|e| e.to_string())?;
    Ok(coverage::report(&nodes, &coverage::expected(&p.cluster)))
}

fn nodes_of(attrs: Option<tessera_provider_api::Attrs>) -> Result<Vec<Node>, ProviderError> {
    let nodes = attrs.and_then(|mut a| a.remove("nodes")).unwrap_or_default();
    serde_json::from_value(nodes).map_err(|e| ProviderError::Fatal(format!("the node list is malformed: {e}")))
}
