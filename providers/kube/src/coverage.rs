//! Which nodes the core DaemonSets cover: the check behind `tessera verify`.
//!
//! ## Overview
//!
//! A Kubernetes provider reports the cluster's nodes through the read-only [`NODES`] type: each
//! node's labels, taints, and the DaemonSet pods on it with their readiness. [`expected`] says
//! which DaemonSets a placement's core services must have on every Linux node, and [`report`]
//! compares the two per pool. [`schedules`] is the scheduler's rule for a DaemonSet pod (node
//! selector and taints), which the sim uses to place pods as a real cluster would.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tessera_provider_api::ClusterTemplate;

use crate::charts::{LOGGING_NAMESPACE, MONITORING_NAMESPACE, MONITORING_RELEASE};
use crate::contract::object_id;
use crate::manifests::LOGGING_NAME;

/// Read-only resource type: `read(NODES, "")` answers `{"nodes": [Node…]}`.
pub const NODES: &str = "kube.nodes";
/// The node label that names a node's pool; every pool sets it (see the spec's validation).
pub const POOL_LABEL: &str = "tessera.dev/pool";

/// What a node covers is judged for Linux nodes only; core services are Linux DaemonSets.
const OS_LABEL: &str = "kubernetes.io/os";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `{key, value?, effect}` as in a Node's `spec.taints`.
    #[serde(default)]
    pub taints: Vec<Value>,
    /// DaemonSet id ([`object_id`]) → whether its pod on this node is ready.
    #[serde(default)]
    pub daemon_pods: BTreeMap<String, bool>,
}

impl Node {
    pub fn pool(&self) -> &str {
        self.labels.get(POOL_LABEL).map_or("(no pool)", String::as_str)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Monitoring,
    Logging,
}

/// A DaemonSet that must run on every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    pub id: String,
    pub service: Service,
}

fn daemonset(namespace: &str, name: &str) -> String {
    object_id("apps/v1", "DaemonSet", Some(namespace), name)
}

/// The chart's node-exporter DaemonSet (the subchart's full name under Tessera's release).
pub fn node_exporter_id() -> String {
    daemonset(MONITORING_NAMESPACE, &format!("{MONITORING_RELEASE}-prometheus-node-exporter"))
}

/// logging-operator names a FluentbitAgent's DaemonSet `<agent>-fluentbit`.
pub fn fluentbit_id() -> String {
    daemonset(LOGGING_NAMESPACE, &format!("{LOGGING_NAME}-fluentbit"))
}

/// logging-operator names a HostTailer's DaemonSet `<tailer>-host-tailer`.
pub fn host_tailer_id() -> String {
    daemonset(LOGGING_NAMESPACE, &format!("{LOGGING_NAME}-host-tailer"))
}

pub fn exporter_id(name: &str) -> String {
    daemonset(MONITORING_NAMESPACE, name)
}

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
    }
    if cluster.core_services.logging.is_some() {
        out.push(Expected { id: fluentbit_id(), service: Service::Logging });
        out.push(Expected { id: host_tailer_id(), service: Service::Logging });
    }
    out
}

/// Whether the scheduler puts a DaemonSet pod with this pod spec on `node`: every entry of its
/// `nodeSelector` matches a label, and every `NoSchedule` or `NoExecute` taint is tolerated
/// (`PreferNoSchedule` only discourages).
pub fn schedules(pod_spec: &Value, node: &Node) -> bool {
    let selector_ok = match pod_spec.get("nodeSelector").and_then(Value::as_object) {
        Some(sel) => sel.iter().all(|(k, v)| node.labels.get(k).map(String::as_str) == v.as_str()),
        None => true,
    };
    let empty = Vec::new();
    let tolerations = pod_spec.get("tolerations").and_then(Value::as_array).unwrap_or(&empty);
    let taints_ok = node
        .taints
        .iter()
        .filter(|t| matches!(t.get("effect").and_then(Value::as_str), Some("NoSchedule" | "NoExecute")))
        .all(|taint| tolerations.iter().any(|tol| tolerates(tol, taint)));
    selector_ok && taints_ok
}

/// Kubernetes' toleration rule, on the JSON forms.
pub fn tolerates(toleration: &Value, taint: &Value) -> bool {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).filter(|x| !x.is_empty()).map(str::to_string);
    if let Some(effect) = s(toleration, "effect") {
        if Some(effect) != s(taint, "effect") {
            return false;
        }
    }
    let exists = s(toleration, "operator").as_deref() == Some("Exists");
    match s(toleration, "key") {
        None => exists,
        Some(k) if Some(&k) != s(taint, "key").as_ref() => false,
        Some(_) => exists || s(toleration, "value") == s(taint, "value"),
    }
}

/// One pool's coverage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolCoverage {
    pub pool: String,
    pub nodes: usize,
    pub monitored: usize,
    pub logged: usize,
}

/// A node that lacks a ready pod of a DaemonSet it must have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    pub node: String,
    pub pool: String,
    pub daemonset: String,
    /// `missing` (no pod) or `not ready`.
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub pools: Vec<PoolCoverage>,
    pub gaps: Vec<Gap>,
}

/// Coverage per pool of the Linux nodes: a node is monitored (or logged) when every expected
/// DaemonSet of that service has a ready pod on it.
pub fn report(nodes: &[Node], expected: &[Expected]) -> Report {
    let mut pools: BTreeMap<String, PoolCoverage> = BTreeMap::new();
    let mut gaps = Vec::new();
    for node in nodes.iter().filter(|n| n.labels.get(OS_LABEL).is_none_or(|os| os == "linux")) {
        let pool = node.pool().to_string();
        let entry = pools.entry(pool.clone()).or_insert_with(|| PoolCoverage {
            pool: pool.clone(),
            nodes: 0,
            monitored: 0,
            logged: 0,
        });
        entry.nodes += 1;
        let mut covered = |service: Service| {
            let mut all = true;
            for e in expected.iter().filter(|e| e.service == service) {
                let reason = match node.daemon_pods.get(&e.id) {
                    Some(true) => continue,
                    Some(false) => "not ready",
                    None => "missing",
                };
                all = false;
                gaps.push(Gap { node: node.name.clone(), pool: pool.clone(), daemonset: e.id.clone(), reason });
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
    use serde_json::json;

    fn node(name: &str, pool: &str, taints: Value) -> Node {
        let labels = [(POOL_LABEL.to_string(), pool.to_string()), (OS_LABEL.to_string(), "linux".to_string())];
        Node {
            name: name.into(),
            labels: labels.into_iter().collect(),
            taints: serde_json::from_value(taints).unwrap(),
            daemon_pods: BTreeMap::new(),
        }
    }

    #[test]
    fn no_execute_taints_need_a_toleration_and_prefer_no_schedule_does_not() {
        let gpu = node("n1", "gpu", json!([{"key": "gpu", "effect": "NoExecute"}]));
        let chart_default = json!({"tolerations": [{"operator": "Exists", "effect": "NoSchedule"}]});
        assert!(!schedules(&chart_default, &gpu), "the chart's NoSchedule-only default misses NoExecute");
        assert!(schedules(&json!({"tolerations": [{"operator": "Exists"}]}), &gpu));
        let soft = node("n2", "soft", json!([{"key": "x", "effect": "PreferNoSchedule"}]));
        assert!(schedules(&json!({}), &soft));
    }

    #[test]
    fn node_selector_must_match_labels() {
        let n = node("n1", "system", json!([]));
        assert!(schedules(&json!({"nodeSelector": {"kubernetes.io/os": "linux"}}), &n));
        assert!(!schedules(&json!({"nodeSelector": {"kubernetes.io/os": "windows"}}), &n));
    }

    #[test]
    fn toleration_with_key_and_value_matches_only_that_taint() {
        let taint = json!({"key": "dedicated", "value": "infra", "effect": "NoSchedule"});
        assert!(tolerates(&json!({"key": "dedicated", "operator": "Equal", "value": "infra"}), &taint));
        assert!(!tolerates(&json!({"key": "dedicated", "operator": "Equal", "value": "gpu"}), &taint));
        assert!(tolerates(&json!({"key": "dedicated", "operator": "Exists"}), &taint));
        assert!(!tolerates(&json!({"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}), &taint));
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
}
