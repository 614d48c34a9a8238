//! What the DaemonSet controller and the scheduler would report: which Nodes a DaemonSet's pods
//! land on, and the status that follows.
//!
//! ## Overview
//! A pod fits a Node when the Node's labels match the pod template's `nodeSelector` and every
//! `NoSchedule`/`NoExecute` taint of the Node is tolerated (`PreferNoSchedule` never blocks).
//! Node affinity is not evaluated. [`status`] is the status a DaemonSet gets once every fitting
//! pod is running and ready.

use serde_json::{Value, json};

/// A toleration tolerates a taint (the scheduler's rules, `operator` `Equal` by default).
pub fn tolerates(toleration: &Value, taint: &Value) -> bool {
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let effect = text(toleration, "effect");
    if !effect.is_empty() && effect != text(taint, "effect") {
        return false;
    }
    let key = text(toleration, "key");
    match text(toleration, "operator").as_str() {
        "Exists" => key.is_empty() || key == text(taint, "key"),
        _ => key == text(taint, "key") && text(toleration, "value") == text(taint, "value"),
    }
}

/// The pods of the DaemonSet `ds` would run on `node`.
pub fn fits(ds: &Value, node: &Value) -> bool {
    let pod = ds.pointer("/spec/template/spec").cloned().unwrap_or(Value::Null);
    let labels = node.pointer("/metadata/labels");
    let selected = pod
        .get("nodeSelector")
        .and_then(Value::as_object)
        .is_none_or(|sel| sel.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v)));
    let tolerations = pod.get("tolerations").and_then(Value::as_array).cloned().unwrap_or_default();
    let taints = node.pointer("/spec/taints").and_then(Value::as_array).cloned().unwrap_or_default();
    let tolerated = taints
        .iter()
        .filter(|t| t.get("effect").and_then(Value::as_str) != Some("PreferNoSchedule"))
        .all(|taint| tolerations.iter().any(|tol| tolerates(tol, taint)));
    selected && tolerated
}

/// The status of `ds` with all its pods on `nodes` scheduled, running and ready.
pub fn status(ds: &Value, nodes: &[Value]) -> Value {
    let scheduled = nodes.iter().filter(|n| fits(ds, n)).count();
    json!({
        "currentNumberScheduled": scheduled,
        "desiredNumberScheduled": scheduled,
        "numberAvailable": scheduled,
        "numberMisscheduled": 0,
        "numberReady": scheduled,
        "updatedNumberScheduled": scheduled,
        "observedGeneration": ds.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(labels: Value, taints: Value) -> Value {
        json!({"metadata": {"labels": labels}, "spec": {"taints": taints}})
    }

    fn ds(tolerations: Value) -> Value {
        json!({"spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "tolerations": tolerations}}}})
    }

    #[test]
    fn no_execute_taints_need_a_toleration_that_covers_them() {
        let linux = json!({"kubernetes.io/os": "linux"});
        let gpu = node(linux.clone(), json!([{"key": "gpu", "value": "true", "effect": "NoExecute"}]));
        let plain = node(linux.clone(), json!([]));
        let windows = node(json!({"kubernetes.io/os": "windows"}), json!([]));
        let chart_default = ds(json!([{"effect": "NoSchedule", "operator": "Exists"}]));
        let everything = ds(json!([{"operator": "Exists"}]));
        assert!(!fits(&chart_default, &gpu), "NoSchedule-only tolerations miss NoExecute");
        assert!(fits(&everything, &gpu) && fits(&everything, &plain));
        assert!(!fits(&everything, &windows), "nodeSelector");
        let keyed = ds(json!([{"key": "gpu", "operator": "Equal", "value": "true"}]));
        assert!(fits(&keyed, &gpu));
        let nodes = [gpu, plain, windows];
        assert_eq!(status(&chart_default, &nodes)["desiredNumberScheduled"], 1);
        assert_eq!(status(&everything, &nodes)["numberReady"], 2);
    }
}
