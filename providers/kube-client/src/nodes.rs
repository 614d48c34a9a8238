//! `kube.nodes`: the cluster's nodes and the DaemonSet pods on each, for `tessera verify`.
//!
//! ## Overview
//!
//! A read-only type ([`tessera_kube::coverage::NODES`]): `read(NODES, "")` lists every Node and
//! every Pod (all namespaces, a page at a time, [`crate::wire::Wire::list`]) and answers
//! `{"nodes": [node::Node…]}`: each node's name, labels and taints, whether it is ready (its
//! `Ready` condition is `True`; a node without one, or with `False` or `Unknown`, is not), and
//! `daemon_pods`, the DaemonSets with a pod on it (by the DaemonSet's contract id), `true` when
//! that pod is ready.
//!
//! Pods are the truth: a DaemonSet's status counts say how many nodes are covered, not which. A
//! pod belongs to the DaemonSet its controlling owner reference names (`controller: true`, kind
//! `DaemonSet` of `apps`), in the pod's namespace, and is on the node its `spec.nodeName` names
//! (a pod not scheduled yet is on none). It is ready when its `Ready` condition is `True` and it
//! is not terminating (it is leaving the node). When a DaemonSet has more than one pod on a node
//! (an old one going while its replacement starts), the node is covered when any of them is
//! ready.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node as KubeNode, Pod};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tessera_kube::contract::object_id;
use tessera_kube::coverage::NODES;
use tessera_kube::node::Node;
use tessera_provider_api::{Attrs, CloudId, Observed, ProviderError};

use crate::cluster::Cluster;

/// The status of a node list that was read.
pub const LISTED: &str = "Listed";

fn typed<T: DeserializeOwned>(kind: &str, items: Vec<Value>) -> Result<Vec<T>, ProviderError> {
    items
        .into_iter()
        .map(|item| {
            serde_json::from_value(item)
                .map_err(|e| ProviderError::Fatal(format!("the API server sent a {kind} that does not parse: {e}")))
        })
        .collect()
}

/// The contract id of the DaemonSet that controls `pod`, if one does.
pub fn daemonset_of(pod: &Pod) -> Option<String> {
    let owner = pod.metadata.owner_references.as_ref()?.iter().find(|o| o.controller == Some(true))?;
    let group = owner.api_version.split_once('/').map_or("", |(g, _)| g);
    if owner.kind != "DaemonSet" || group != "apps" {
        return None;
    }
    let namespace = pod.metadata.namespace.as_deref().filter(|n| !n.is_empty())?;
    Some(object_id("apps/v1", "DaemonSet", Some(namespace), &owner.name))
}

/// Whether `pod` is ready and staying: its `Ready` condition is `True` and it is not terminating.
pub fn ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    let ready = conditions.is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    ready && pod.metadata.deletion_timestamp.is_none()
}

/// Whether kubelet reports `n` healthy: its `Ready` condition is `True`. `Unknown` (the node
/// controller's word for a kubelet that stopped posting) is not ready either.
pub fn node_ready(n: &KubeNode) -> bool {
    let conditions = n.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// A Node as coverage sees it (no pods yet). A Node without a name is an answer that cannot be
/// told apart from another: an error, never a node silently left out.
pub fn node(n: &KubeNode) -> Result<Node, ProviderError> {
    let name = n.metadata.name.clone().filter(|name| !name.is_empty()).ok_or_else(|| {
        ProviderError::Fatal(format!("the API server listed a {NODES} Node without `/metadata/name`"))
    })?;
    let taints = n.spec.as_ref().and_then(|s| s.taints.as_ref()).map_or_else(Vec::new, |ts| {
        ts.iter()
            .map(|t| {
                let mut taint = json!({"key": t.key, "effect": t.effect});
                if let Some(v) = t.value.as_ref().filter(|v| !v.is_empty()) {
                    taint["value"] = json!(v);
                }
                taint
            })
            .collect()
    });
    Ok(Node {
        name,
        // The API server leaves an empty label map out: no labels.
        labels: n.metadata.labels.clone().unwrap_or_default(),
        taints,
        daemon_pods: BTreeMap::new(),
        ready: node_ready(n),
    })
}

/// The nodes with the DaemonSet pods on each (see the module docs).
pub fn with_pods(nodes: &[KubeNode], pods: &[Pod]) -> Result<Vec<Node>, ProviderError> {
    let mut out = BTreeMap::new();
    for n in nodes {
        let n = node(n)?;
        out.insert(n.name.clone(), n);
    }
    for pod in pods {
        let Some(daemonset) = daemonset_of(pod) else { continue };
        let Some(on) = pod.spec.as_ref().and_then(|s| s.node_name.as_ref()).and_then(|n| out.get_mut(n)) else {
            continue;
        };
        let entry = on.daemon_pods.entry(daemonset).or_insert(false);
        *entry |= ready(pod);
    }
    Ok(out.into_values().collect())
}

/// `read(NODES, _)`: every node of the cluster; the id is not used (there is one node list).
pub async fn read(cluster: &Cluster, id: &CloudId) -> Result<Option<Observed>, ProviderError> {
    let node_kind = cluster.served_soon("v1", "Node").await?;
    let pod_kind = cluster.served_soon("v1", "Pod").await?;
    let nodes: Vec<KubeNode> = typed("Node", cluster.wire.list(&node_kind, "").await?)?;
    let pods: Vec<Pod> = typed("Pod", cluster.wire.list(&pod_kind, "").await?)?;
    let listed = with_pods(&nodes, &pods)?;
    let mut attrs = Attrs::new();
    attrs.insert(
        "nodes".into(),
        serde_json::to_value(listed).map_err(|e| ProviderError::Fatal(format!("the node list: {e}")))?,
    );
    Ok(Some(Observed { id: id.clone(), status: LISTED.into(), attrs }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, node: Option<&str>, owner: Value, ready: &str) -> Pod {
        let mut p = json!({
            "metadata": {"name": name, "namespace": "monitoring", "ownerReferences": [owner]},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"conditions": [{"type": "Ready", "status": ready}]},
        });
        if let Some(n) = node {
            p["spec"]["nodeName"] = json!(n);
        }
        serde_json::from_value(p).unwrap()
    }

    fn ds_owner(name: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "name": name, "uid": "u", "controller": true})
    }

    fn kube_node(name: &str) -> KubeNode {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"tessera.dev/pool": "gpu"}},
            "spec": {"taints": [{"key": "gpu", "effect": "NoExecute"}, {"key": "x", "value": "y", "effect": "NoSchedule"}]},
        }))
        .unwrap()
    }

    #[test]
    fn pods_of_daemonsets_count_on_their_node_and_others_do_not() {
        let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r", "uid": "u", "controller": true});
        let not_controller = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "other", "uid": "u"});
        let pods = [
            pod("ne-1", Some("n1"), ds_owner("ne"), "True"),
            pod("fb-1", Some("n1"), ds_owner("fb"), "False"),
            pod("fb-2", Some("n1"), ds_owner("fb"), "True"),
            pod("ht-1", Some("n1"), ds_owner("ht"), "False"),
            pod("ne-2", None, ds_owner("ne"), "True"),
            pod("ne-3", Some("elsewhere"), ds_owner("ne"), "True"),
            pod("web", Some("n1"), rs, "True"),
            pod("adopted", Some("n1"), not_controller, "True"),
        ];
        let nodes = with_pods(&[kube_node("n1"), kube_node("n2")], &pods).unwrap();
        assert_eq!(nodes.len(), 2);
        let n1 = &nodes[0];
        assert_eq!(n1.name, "n1");
        let id = |n: &str| object_id("apps/v1", "DaemonSet", Some("monitoring"), n);
        let expected: BTreeMap<String, bool> = [(id("ne"), true), (id("fb"), true), (id("ht"), false)].into();
        assert_eq!(n1.daemon_pods, expected);
        assert!(nodes[1].daemon_pods.is_empty(), "an unscheduled pod is on no node");
        assert_eq!(n1.pool(), "gpu");
        assert_eq!(
            n1.taints,
            [json!({"key": "gpu", "effect": "NoExecute"}), json!({"key": "x", "value": "y", "effect": "NoSchedule"})]
        );
    }

    #[test]
    fn a_node_is_ready_only_when_its_ready_condition_is_true() {
        let with = |conditions: Value| -> KubeNode {
            serde_json::from_value(json!({"metadata": {"name": "n1"}, "status": {"conditions": conditions}})).unwrap()
        };
        let cond = |t: &str, s: &str| json!({"type": t, "status": s});
        let ready = |n: KubeNode| node(&n).unwrap().ready;
        assert!(ready(with(json!([cond("MemoryPressure", "False"), cond("Ready", "True")]))));
        assert!(!ready(with(json!([cond("Ready", "False")]))), "Ready=False");
        assert!(!ready(with(json!([cond("Ready", "Unknown")]))), "Ready=Unknown");
        assert!(!ready(with(json!([cond("MemoryPressure", "False")]))), "no Ready condition");
        assert!(!ready(with(json!([]))), "no conditions");
        assert!(!ready(kube_node("n1")), "no status at all");
    }

    #[test]
    fn a_terminating_pod_is_not_ready() {
        let mut p = pod("ne-1", Some("n1"), ds_owner("ne"), "True");
        assert!(ready(&p));
        p.metadata.deletion_timestamp = Some(serde_json::from_value(json!("2026-01-01T00:00:00Z")).unwrap());
        assert!(!ready(&p));
    }
}
