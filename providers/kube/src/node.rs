//! A node as a Kubernetes provider reports it for coverage: its labels, its taints, whether it
//! is ready and the DaemonSet pods on it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The node label that names a node's pool; every pool sets it (see the spec's validation).
pub const POOL_LABEL: &str = "tessera.dev/pool";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `{key, value?, effect}` as in a Node's `spec.taints`.
    #[serde(default)]
    pub taints: Vec<Value>,
    /// DaemonSet id (`contract::object_id`) → whether its pod on this node is ready.
    #[serde(default)]
    pub daemon_pods: BTreeMap<String, bool>,
    /// Its `Ready` condition is `True`: kubelet reports it healthy. A rollout's gate reads it. A
    /// node that does not say it is ready is not, so an absent field reads as `false`.
    #[serde(default)]
    pub ready: bool,
}

impl Node {
    pub fn pool(&self) -> &str {
        self.labels.get(POOL_LABEL).map_or("(no pool)", String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_node_that_does_not_say_it_is_ready_is_not() {
        let n: Node = serde_json::from_value(json!({"name": "n1"})).unwrap();
        assert!(!n.ready);
        let n: Node = serde_json::from_value(json!({"name": "n1", "ready": true})).unwrap();
        assert!(n.ready);
        assert_eq!(serde_json::to_value(&n).unwrap()["ready"], json!(true));
    }
}
