//! `tessera verify`: does every node of every cluster run its core services?
//!
//! ## Overview
//!
//! For each placement, the cluster's record in state gives the connection (as for any resource
//! configured from it); the cluster's Kubernetes provider then reports its nodes and the
//! DaemonSet pods on each (`tessera_kube::coverage::NODES`). What each node must run follows
//! from the spec ([`tessera_kube::coverage::expected`]): node-exporter and each exporter for
//! monitoring, fluent-bit and the host tailer for logging. A node without a ready pod of one of
//! them is a gap, named with its pool and the DaemonSet. Where the spec turns alerting on, the
//! cluster is also asked whether its Alertmanager runs Tessera's routing and holds the heartbeat
//! (`tessera_kube::alerting_status`); either missing is a problem of that placement. Nothing is
//! changed and no lease is taken.
//!
//! Placements are read concurrently, each on its own: one that cannot be read is reported and the
//! others go on. Before its API is asked, each cluster is read through its cloud's provider (one
//! describe call): a cluster the cloud says does not exist is reported at once as gone, rather
//! than its API being retried as unreachable. An API that does not answer is given up on within
//! the retry policy's bound for unreachable servers (`crate::retry`).

use serde::Serialize;
use tessera_kube::alerting_status::{ALERTING, AlertingStatus};
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
    /// Whether its alerting works; `None` when the spec turns alerting off (or the cluster could
    /// not be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerting: Option<AlertingStatus>,
    /// The nodes whose Ready condition is not true.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ready: Vec<String>,
}

impl PlacementCoverage {
    pub fn uncovered(&self) -> usize {
        self.report.as_ref().map_or(0, |r| r.gaps.len())
    }

    /// Its alerting does not work: the routing is not loaded or the heartbeat is not firing.
    pub fn alerting_broken(&self) -> bool {
        self.alerting.as_ref().is_some_and(|a| !a.ok())
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
    verify_placements(fleet, &|_| true, registry, store, retry).await
}

/// [`verify`] for the placements `wanted` names. A placement whose cluster has no Kubernetes
/// API to read is reported with that as its error.
pub async fn verify_placements(
    fleet: &Fleet,
    wanted: &(dyn Fn(&str) -> bool + Sync),
    registry: &Registry,
    store: &dyn StateStore,
    retry: &RetryPolicy,
) -> Result<Vec<PlacementCoverage>, VerifyError> {
    let records = store.resources().await?;
    let mut reads = Vec::new();
    for p in fleet.placements.iter().filter(|p| wanted(&p.name)) {
        let Some(access) = registry.kube_access(&p.cluster, &p.provider)? else { continue };
        let cluster = records.iter().find(|r| r.address == access.cluster && !r.deposed);
        reads.push(async move {
            let coverage = match read_placement(p, &access, cluster, registry, retry).await {
                Ok(read) => PlacementCoverage {
                    placement: p.name.clone(),
                    report: Some(read.report),
                    error: None,
                    alerting: read.alerting,
                    not_ready: read.not_ready,
                },
                Err(e) => PlacementCoverage {
                    placement: p.name.clone(),
                    report: None,
                    error: Some(e),
                    alerting: None,
                    not_ready: Vec::new(),
                },
            };
            Ok::<_, VerifyError>(coverage)
        });
    }
    futures::future::join_all(reads).await.into_iter().collect()
}

/// What one placement's cluster answered.
struct Read {
    report: Report,
    alerting: Option<AlertingStatus>,
    not_ready: Vec<String>,
}

/// One placement: the cluster as the cloud sees it, then its nodes (and, with alerting on, its
/// alerting) through its Kubernetes API.
async fn read_placement(
    p: &crate::spec::Placement,
    access: &tessera_provider_api::KubeAccess,
    cluster: Option<&ResourceRecord>,
    registry: &Registry,
    retry: &RetryPolicy,
) -> Result<Read, String> {
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
    let report = coverage::report(&nodes, &coverage::expected(&p.cluster));
    let not_ready = nodes.iter().filter(|n| !n.ready).map(|n| n.name.clone()).collect();
    let alerting_on = p.cluster.core_services.monitoring.as_ref().is_some_and(|m| m.alerting.is_some());
    if !alerting_on {
        return Ok(Read { report, alerting: None, not_ready });
    }
    let read = retry.run(|| kube.read(ALERTING, &all), |_, _| {}).await;
    let status = read.and_then(|o| alerting_of(o.map(|o| o.attrs))).map_err(|e| e.to_string())?;
    Ok(Read { report, alerting: Some(status), not_ready })
}

fn alerting_of(attrs: Option<tessera_provider_api::Attrs>) -> Result<AlertingStatus, ProviderError> {
    let value = serde_json::Value::Object(attrs.unwrap_or_default().into_iter().collect());
    serde_json::from_value(value).map_err(|e| ProviderError::Fatal(format!("the alerting status is malformed: {e}")))
}

fn nodes_of(attrs: Option<tessera_provider_api::Attrs>) -> Result<Vec<Node>, ProviderError> {
    let nodes = attrs.and_then(|mut a| a.remove("nodes")).unwrap_or_default();
    serde_json::from_value(nodes).map_err(|e| ProviderError::Fatal(format!("the node list is malformed: {e}")))
}
