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

use serde::Serialize;
use tessera_kube::coverage::{self, Node, Report};
use tessera_provider_api::{Connection, ProviderError};

use crate::providers::{Registry, UnknownProvider};
use crate::retry::RetryPolicy;
use crate::spec::Fleet;
use crate::state::{StateError, StateStore};

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

/// Reads every placement's coverage; a placement that cannot be read is reported, not fatal.
pub async fn verify(
    fleet: &Fleet,
    registry: &Registry,
    store: &dyn StateStore,
    retry: &RetryPolicy,
) -> Result<Vec<PlacementCoverage>, VerifyError> {
    let records = store.resources().await?;
    let mut out = Vec::new();
    for p in &fleet.placements {
        let provider = registry.get(&p.provider)?;
        let Some(access) = provider.kube_access(&p.cluster, &p.provider) else { continue };
        let entry = |report: Option<Report>, error: Option<String>| PlacementCoverage {
            placement: p.name.clone(),
            report,
            error,
        };
        let Some(cluster) = records.iter().find(|r| r.address == access.cluster && !r.deposed) else {
            out.push(entry(None, Some(format!("{} is not in state: apply first", access.cluster))));
            continue;
        };
        let conn =
            Connection { source: cluster.address.clone(), id: cluster.id.clone(), outputs: cluster.attrs.clone() };
        let kube = registry.connect(&access.provider, &conn)?;
        let all = String::new();
        let read = retry.run(|| kube.read(coverage::NODES, &all), |_, _| {}).await;
        out.push(match read.and_then(|o| nodes_of(o.map(|o| o.attrs))) {
            Ok(nodes) => entry(Some(coverage::report(&nodes, &coverage::expected(&p.cluster))), None),
            Err(e) => entry(None, Some(e.to_string())),
        });
    }
    Ok(out)
}

fn nodes_of(attrs: Option<tessera_provider_api::Attrs>) -> Result<Vec<Node>, ProviderError> {
    let nodes = attrs.and_then(|mut a| a.remove("nodes")).unwrap_or_default();
    serde_json::from_value(nodes).map_err(|e| ProviderError::Fatal(format!("the node list is malformed: {e}")))
}
