//! Which nodes the core DaemonSets cover: the check behind `tessera verify`.
//!
//! ## Overview
//!
//! A Kubernetes provider reports the cluster's nodes through the read-only [`NODES`] type: each
//! node's labels, taints, and the DaemonSet pods on it with their readiness. [`expected`] says
//! which DaemonSets a placement's core services must have on every node, and [`report`] compares
//! the two per pool. [`schedules`] is the scheduler's rule for a DaemonSet pod
//! ([`crate::scheduler`]), which the sim uses to place pods as a real cluster would.
//!
//! A node is *covered* for a service only by ready pods of that service's DaemonSets; nothing is
//! skipped. A service that is on but runs no DaemonSet (monitoring with node-exporter off and no
//! exporter) leaves every node "not monitored"; a node whose OS the core services do not run on
//! (they are Linux binaries) is "unsupported OS", whatever pods it reports. Both are gaps, so
//! `tessera verify` exits 2 on them. A service turned off (`enabled: false`, which validation
//! reports) expects nothing and counts no node as covered.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tessera_provider_api::{ClusterTemplate, PoolTemplate};

pub use crate::daemonsets::{exporter_id, fluentbit_id, host_tailer_id, node_exporter_id};
pub use crate::node::{Node, POOL_LABEL};

/// Read-only resource type: `read(NODES, "")` answers `{"nodes": [Node…]}`.
pub const NODES: &str = "kube.nodes";

use crate::scheduler::{OS_LABEL, SUPPORTED_OS};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Monitoring,
    Logging,
}

/// A DaemonSet that must run on every node. An empty `id` ([`Expected::nothing`]) says that the
/// service is on but runs no DaemonSet at all, so no node can be covered by it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    pub id: String,
    pub service: Service,
}

impl Expected {
    /// The service is on, and nothing of it would run on any node.
    pub fn nothing(service: Service) -> Self {
        Self { id: String::new(), service }
    }

    pub fn is_nothing(&self) -> bool {
        self.id.is_empty()
    }
}

/// What a gap's `daemonset` says when the service runs none.
pub const NO_DAEMONSET: &str = "(none)";

/// The DaemonSets a placement's core services must have on every node.
pub fn expected(cluster: &ClusterTemplate) -> Vec<Expected> {
    let mut out = Vec::new();
    if let Some(m) = &cluster.core_services.monitoring {
        if m.node_exporter {
            out.push(Expected { id: node_exporter_id(), service: Service::Monitoring });
        }
        for e in &m.exporters {
            out.push(Expected { id: exporter_id(&e.name), service: Service::Monitoring });
        }
        if !m.node_exporter && m.exporters.is_empty() {
            out.push(Expected::nothing(Service::Monitoring));
        }
    }
    if cluster.core_services.logging.is_some() {
        out.push(Expected { id: fluentbit_id(), service: Service::Logging });
        out.push(Expected { id: host_tailer_id(), service: Service::Logging });
    }
    out
}

pub use crate::scheduler::{schedules, tolerates};

/// The node a pool's machines register as, for the scheduler's rule before any node exists: the
/// pool's labels, plus what every node gets (the pool label, `kubernetes.io/os: linux` and the
/// machine's architecture, which the kubelet adds), and the pool's taints.
pub fn pool_node(pool: &PoolTemplate) -> Node {
    let mut labels = pool.labels.clone();
    labels.insert(POOL_LABEL.into(), pool.name.clone());
    labels.insert(OS_LABEL.into(), SUPPORTED_OS.into());
    labels.insert("kubernetes.io/arch".into(), pool.machine.arch.to_string());
    let taints = pool
        .taints
        .iter()
        .map(|t| {
            let mut v = serde_json::json!({ "key": t.key, "effect": t.effect });
            if let Some(value) = &t.value {
                v["value"] = serde_json::json!(value);
            }
            v
        })
        .collect();
    // The model of a pool's node is a healthy one.
    Node { name: format!("{}-node", pool.name), labels, taints, daemon_pods: Default::default(), ready: true }
}

/// One pool's coverage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolCoverage {
    pub pool: String,
    pub nodes: usize,
    pub monitored: usize,
    pub logged: usize,
}

/// A node that a service does not cover, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    pub node: String,
    pub pool: String,
    /// The DaemonSet that should cover it, or [`NO_DAEMONSET`] when the service runs none.
    pub daemonset: String,
    /// `missing` (no pod), `not ready`, `not monitored`/`not logged` (the service runs no
    /// DaemonSet), or `unsupported OS` (core services run on Linux nodes only).
    pub reason: &'static str,
}

impl Gap {
    /// One line for people: what the node lacks.
    pub fn describe(&self) -> String {
        let at = format!("node {} (pool {})", self.node, self.pool);
        match self.reason {
            "missing" => format!("{at} has no pod of {}", self.daemonset),
            "not ready" => format!("{at} has no ready pod of {}", self.daemonset),
            "unsupported OS" => format!("{at} runs an OS {} does not run on (Linux only)", self.daemonset),
            other => format!("{at} is {other}: nothing of its service runs there"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub pools: Vec<PoolCoverage>,
    pub gaps: Vec<Gap>,
}

/// Coverage per pool of every node: a node is monitored (or logged) when every expected
/// DaemonSet of that service has a ready pod on it, the service runs at least one, and the node
/// runs Linux. A node without an OS label counts as Linux (the kubelet always sets it; the sim's
/// and older fixtures' nodes may not).
pub fn report(nodes: &[Node], expected: &[Expected]) -> Report {
    let mut pools: BTreeMap<String, PoolCoverage> = BTreeMap::new();
    let mut gaps = Vec::new();
    for node in nodes {
        let pool = node.pool().to_string();
        let entry = pools.entry(pool.clone()).or_insert_with(|| PoolCoverage {
            pool: pool.clone(),
            nodes: 0,
            monitored: 0,
            logged: 0,
        });
        entry.nodes += 1;
        let supported = node.labels.get(OS_LABEL).is_none_or(|os| os == SUPPORTED_OS);
        let mut covered = |service: Service| {
            let wanted: Vec<&Expected> = expected.iter().filter(|e| e.service == service).collect();
            let mut all = !wanted.is_empty();
            for e in wanted {
                let reason = if e.is_nothing() {
                    if service == Service::Monitoring { "not monitored" } else { "not logged" }
                } else if !supported {
                    "unsupported OS"
                } else {
                    match node.daemon_pods.get(&e.id) {
                        Some(true) => continue,
                        Some(false) => "not ready",
                        None => "missing",
                    }
                };
                all = false;
                let daemonset = if e.is_nothing() { NO_DAEMONSET.to_string() } else { e.id.clone() };
                gaps.push(Gap { node: node.name.clone(), pool: pool.clone(), daemonset, reason });
            }
            all
        };
        let monitored = covered(Service::Monitoring);
        let logged = covered(Service::Logging);
        entry.monitored += usize::from(monitored);
        entry.logged += usize::from(logged);
    }
    Report { pools: pools.into_values().collect(), gaps }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn node(name: &str, pool: &str, taints: Value) -> Node {
        let labels = [(POOL_LABEL.to_string(), pool.to_string()), (OS_LABEL.to_string(), "linux".to_string())];
        Node {
            name: name.into(),
            labels: labels.into_iter().collect(),
            taints: serde_json::from_value(taints).unwrap(),
            daemon_pods: BTreeMap::new(),
            ready: true,
        }
    }

    #[test]
    fn report_counts_per_pool_and_names_each_gap() {
        let ne = Expected { id: node_exporter_id(), service: Service::Monitoring };
        let fb = Expected { id: fluentbit_id(), service: Service::Logging };
        let mut a = node("a", "system", json!([]));
        a.daemon_pods.insert(ne.id.clone(), true);
        a.daemon_pods.insert(fb.id.clone(), true);
        let mut b = node("b", "gpu", json!([]));
        b.daemon_pods.insert(ne.id.clone(), false);
        b.daemon_pods.insert(fb.id.clone(), true);
        let r = report(&[a, b], &[ne.clone(), fb]);
        assert_eq!(r.pools.len(), 2);
        let gpu = r.pools.iter().find(|p| p.pool == "gpu").unwrap();
        assert_eq!((gpu.nodes, gpu.monitored, gpu.logged), (1, 0, 1));
        assert_eq!(r.gaps.len(), 1);
        assert_eq!((r.gaps[0].node.as_str(), r.gaps[0].daemonset.as_str()), ("b", ne.id.as_str()));
        assert_eq!(r.gaps[0].reason, "not ready");
    }

    #[test]
    fn a_service_that_runs_nothing_covers_no_node_and_each_node_is_a_gap() {
        let a = node("a", "system", json!([]));
        let r = report(&[a], &[Expected::nothing(Service::Monitoring)]);
        assert_eq!((r.pools[0].monitored, r.pools[0].logged), (0, 0), "logging off counts nothing either");
        assert_eq!(r.gaps.len(), 1);
        assert_eq!((r.gaps[0].reason, r.gaps[0].daemonset.as_str()), ("not monitored", NO_DAEMONSET));
        assert!(r.gaps[0].describe().contains("not monitored"), "{}", r.gaps[0].describe());
    }

    #[test]
    fn a_node_of_another_os_is_uncovered_not_skipped() {
        let ne = Expected { id: node_exporter_id(), service: Service::Monitoring };
        let mut win = node("w", "win", json!([]));
        win.labels.insert(OS_LABEL.into(), "windows".into());
        // Even a pod reported on it does not make a Linux exporter cover it.
        win.daemon_pods.insert(ne.id.clone(), true);
        let r = report(&[win], &[ne]);
        assert_eq!((r.pools[0].nodes, r.pools[0].monitored), (1, 0));
        assert_eq!(r.gaps.iter().map(|g| g.reason).collect::<Vec<_>>(), ["unsupported OS"]);
    }
}
