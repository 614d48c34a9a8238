//! The scheduler's rule for a DaemonSet pod: whether, and if not why not, a pod with a given pod
//! spec runs on a node.
//!
//! ## Overview
//!
//! A DaemonSet's pod lands on a node when all of these hold (kube-scheduler's filter plugins,
//! which the DaemonSet controller also runs):
//! - the node's OS is the pod's (`spec.os.name`, else the `kubernetes.io/os` node selector);
//! - every `nodeSelector` entry matches a node label (`NodeAffinity`);
//! - one of the required node-affinity terms matches (`NodeAffinity`): each term's expressions
//!   all hold, with `In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt`, `Lt`; `matchFields` on
//!   `metadata.name`;
//! - every `NoSchedule` or `NoExecute` taint is tolerated (`TaintToleration`; `PreferNoSchedule`
//!   only discourages).
//!
//! The same rule serves validation (a pool's synthetic node against the built DaemonSets), the
//! sim (placing pods) and the test fixtures, so all three agree by construction.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::node::Node;

/// The node label that carries the OS; the kubelet sets it, and core services are Linux only.
pub const OS_LABEL: &str = "kubernetes.io/os";
/// The one OS the core services run on (node-exporter and fluent-bit are Linux binaries).
pub const SUPPORTED_OS: &str = "linux";

/// Why a pod does not land on a node: the first rule that excludes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreached {
    /// The node's OS (`None`: unlabelled) is not the one the pod needs.
    Os { node: Option<String>, pod: String },
    /// A `nodeSelector` entry the node's labels do not match.
    NodeSelector { key: String, value: String },
    /// No required node-affinity term matches.
    NodeAffinity,
    /// A `NoSchedule`/`NoExecute` taint no toleration matches.
    Taint { key: String, effect: String },
}

impl fmt::Display for Unreached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Os { node, pod } => {
                write!(f, "its pods need OS `{pod}`, the nodes are `{}`", node.as_deref().unwrap_or("(unlabelled)"))
            }
            Self::NodeSelector { key, value } => write!(f, "its nodeSelector `{key}: {value}` matches no node label"),
            Self::NodeAffinity => f.write_str("no term of its required node affinity matches the nodes"),
            Self::Taint { key, effect } => write!(f, "it does not tolerate the taint `{key}` ({effect})"),
        }
    }
}

/// Whether the scheduler puts a pod with this pod spec on `node`.
pub fn schedules(pod_spec: &Value, node: &Node) -> bool {
    why_not(pod_spec, node).is_none()
}

/// The first scheduling rule that keeps a pod with this pod spec off `node`.
pub fn why_not(pod_spec: &Value, node: &Node) -> Option<Unreached> {
    let node_os = node.labels.get(OS_LABEL).cloned();
    if let Some(pod_os) = pod_spec.pointer("/os/name").and_then(Value::as_str) {
        if node_os.as_deref() != Some(pod_os) {
            return Some(Unreached::Os { node: node_os, pod: pod_os.to_string() });
        }
    }
    if let Some(sel) = pod_spec.get("nodeSelector").and_then(Value::as_object) {
        for (k, v) in sel {
            let want = v.as_str().unwrap_or_default();
            if node.labels.get(k).map(String::as_str) != Some(want) {
                if k == OS_LABEL {
                    return Some(Unreached::Os { node: node_os, pod: want.to_string() });
                }
                return Some(Unreached::NodeSelector { key: k.clone(), value: want.to_string() });
            }
        }
    }
    let required = pod_spec.pointer("/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution");
    if let Some(required) = required.filter(|r| !r.is_null()) {
        let terms = required.get("nodeSelectorTerms").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
        if !terms.iter().any(|t| term_matches(t, node)) {
            return Some(Unreached::NodeAffinity);
        }
    }
    let empty = Vec::new();
    let tolerations = pod_spec.get("tolerations").and_then(Value::as_array).unwrap_or(&empty);
    node.taints
        .iter()
        .filter(|t| matches!(t.get("effect").and_then(Value::as_str), Some("NoSchedule" | "NoExecute")))
        .find(|taint| !tolerations.iter().any(|tol| tolerates(tol, taint)))
        .map(|taint| Unreached::Taint {
            key: taint.get("key").and_then(Value::as_str).unwrap_or_default().to_string(),
            effect: taint.get("effect").and_then(Value::as_str).unwrap_or_default().to_string(),
        })
}

/// One `nodeSelectorTerm`: an empty term matches nothing (as in Kubernetes).
fn term_matches(term: &Value, node: &Node) -> bool {
    let exprs = term.get("matchExpressions").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    let fields = term.get("matchFields").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let name_field: BTreeMap<String, String> = [("metadata.name".to_string(), node.name.clone())].into();
    exprs.iter().all(|e| requirement(e, &node.labels)) && fields.iter().all(|e| requirement(e, &name_field))
}

/// One `NodeSelectorRequirement` against a label map; an unknown operator matches nothing.
fn requirement(req: &Value, labels: &BTreeMap<String, String>) -> bool {
    let key = req.get("key").and_then(Value::as_str).unwrap_or_default();
    let values: Vec<&str> = req
        .get("values")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let label = labels.get(key).map(String::as_str);
    let number = |s: &str| s.parse::<i64>().ok();
    match req.get("operator").and_then(Value::as_str).unwrap_or_default() {
        "In" => label.is_some_and(|l| values.contains(&l)),
        "NotIn" => label.is_none_or(|l| !values.contains(&l)),
        "Exists" => label.is_some(),
        "DoesNotExist" => label.is_none(),
        "Gt" => matches!((label.and_then(number), values.first().and_then(|v| number(v))), (Some(l), Some(v)) if l > v),
        "Lt" => matches!((label.and_then(number), values.first().and_then(|v| number(v))), (Some(l), Some(v)) if l < v),
        _ => false,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(labels: &[(&str, &str)], taints: Value) -> Node {
        Node {
            name: "n1".into(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            taints: serde_json::from_value(taints).unwrap_or_default(),
            daemon_pods: BTreeMap::new(),
            ready: true,
        }
    }

    #[test]
    fn required_node_affinity_is_an_or_of_ands() {
        let n = node(&[("kubernetes.io/os", "linux"), ("tier", "gpu"), ("cores", "8")], json!([]));
        let aff = |terms: Value| json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}});
        assert!(schedules(
            &aff(json!([{"matchExpressions": [{"key": "tier", "operator": "In", "values": ["gpu"]}]}])),
            &n
        ));
        assert_eq!(
            why_not(&aff(json!([{"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["gpu"]}]}])), &n),
            Some(Unreached::NodeAffinity)
        );
        let two = json!([
            {"matchExpressions": [{"key": "zone", "operator": "Exists"}]},
            {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}, {"key": "x", "operator": "DoesNotExist"}]},
        ]);
        assert!(schedules(&aff(two), &n));
        assert!(!schedules(&aff(json!([{}])), &n), "an empty term matches nothing");
        assert!(!schedules(
            &aff(json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}])),
            &n
        ));
    }

    #[test]
    fn the_os_is_a_rule_of_its_own() {
        let windows = node(&[("kubernetes.io/os", "windows")], json!([]));
        let linux_only = json!({"nodeSelector": {"kubernetes.io/os": "linux"}});
        assert_eq!(
            why_not(&linux_only, &windows),
            Some(Unreached::Os { node: Some("windows".into()), pod: "linux".into() })
        );
        assert!(matches!(why_not(&json!({"os": {"name": "linux"}}), &windows), Some(Unreached::Os { .. })));
    }

    #[test]
    fn the_first_untolerated_taint_is_named() {
        let n = node(&[], json!([{"key": "a", "effect": "PreferNoSchedule"}, {"key": "b", "effect": "NoExecute"}]));
        assert_eq!(why_not(&json!({}), &n), Some(Unreached::Taint { key: "b".into(), effect: "NoExecute".into() }));
    }

    #[test]
    fn no_execute_taints_need_a_toleration_and_prefer_no_schedule_does_not() {
        let gpu = node(&[], json!([{"key": "gpu", "effect": "NoExecute"}]));
        let chart_default = json!({"tolerations": [{"operator": "Exists", "effect": "NoSchedule"}]});
        assert!(!schedules(&chart_default, &gpu), "the chart's NoSchedule-only default misses NoExecute");
        assert!(schedules(&json!({"tolerations": [{"operator": "Exists"}]}), &gpu));
        let soft = node(&[], json!([{"key": "x", "effect": "PreferNoSchedule"}]));
        assert!(schedules(&json!({}), &soft));
    }

    #[test]
    fn node_selector_must_match_labels() {
        let n = node(&[("kubernetes.io/os", "linux")], json!([]));
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
}
