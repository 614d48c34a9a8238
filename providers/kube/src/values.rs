//! The chart values Tessera computes, and how a spec's extra values join them.
//!
//! ## Overview
//!
//! Computed values are what makes a core service cover every node (tolerations, node selector,
//! the host root mount) and work across releases (monitor selectors). A spec may pass any other
//! value; one that sets a computed leaf is refused at validation ([`conflicts`]) rather than
//! silently winning or losing. Nor may a spec add keys beside computed ones where that changes
//! which nodes run the pods or what they touch ([`additions`]: a node-selector entry, an
//! affinity, `hostPID`, extra host mounts, another image, a narrower monitor selector).
//! [`merge`] lays the computed values over the spec's. These are guards on the input; the
//! guarantee is checked on the outcome, the built objects ([`crate::workloads`]).

use serde_json::{Map, Value, json};
use tessera_provider_api::{Logging, Monitoring, RemoteWriteAuth, SecretKeyRef, Toleration, TolerationOperator};

/// Kubernetes' JSON for a toleration.
pub fn toleration_json(t: &Toleration) -> Value {
    let mut m = Map::new();
    if let Some(k) = &t.key {
        m.insert("key".into(), k.clone().into());
    }
    let op = match t.operator {
        TolerationOperator::Exists => "Exists",
        TolerationOperator::Equal => "Equal",
    };
    m.insert("operator".into(), op.into());
    if let Some(v) = &t.value {
        m.insert("value".into(), v.clone().into());
    }
    if let Some(e) = t.effect {
        m.insert("effect".into(), json!(e));
    }
    Value::Object(m)
}

pub fn tolerations_json(ts: &[Toleration]) -> Value {
    Value::Array(ts.iter().map(toleration_json).collect())
}

/// Core services run on Linux nodes only (node-exporter and fluent-bit are Linux binaries).
pub fn linux_only() -> Value {
    json!({ "kubernetes.io/os": "linux" })
}

/// kube-prometheus-stack's computed values.
///
/// - node-exporter tolerates every pool's taints (the chart's default tolerates NoSchedule only,
///   and so misses NoExecute pools), runs on Linux, and mounts the host root read-only with
///   `HostToContainer` propagation so that filesystems mounted later are seen;
/// - the operator selects monitors and rules of every release, not only its own, so that the
///   exporters' PodMonitors are scraped;
/// - the admission webhooks are off: their certificates come from Helm hook Jobs, and Tessera
///   applies rendered objects itself and refuses hooks (see ARCHITECTURE.md).
pub fn monitoring(m: &Monitoring) -> Value {
    let mut prometheus_spec = json!({
        "podMonitorSelectorNilUsesHelmValues": false,
        "serviceMonitorSelectorNilUsesHelmValues": false,
        "ruleSelectorNilUsesHelmValues": false,
        "probeSelectorNilUsesHelmValues": false,
    });
    if let Some(url) = &m.remote_write {
        // The Prometheus resource reads credentials from Secrets in its own namespace.
        let selector = |r: &SecretKeyRef| json!({ "name": r.name, "key": r.key });
        let mut target = json!({ "url": url });
        match &m.remote_write_auth {
            Some(RemoteWriteAuth::Basic { username, password }) => {
                target["basicAuth"] = json!({ "username": selector(username), "password": selector(password) });
            }
            Some(RemoteWriteAuth::Bearer { token }) => {
                target["authorization"] = json!({ "type": "Bearer", "credentials": selector(token) });
            }
            None => {}
        }
        prometheus_spec["remoteWrite"] = json!([target]);
    }
    let mut values = json!({
        "nodeExporter": { "enabled": m.node_exporter },
        "prometheus-node-exporter": {
            "tolerations": tolerations_json(&m.tolerations),
            "nodeSelector": linux_only(),
            "hostRootFsMount": { "enabled": true, "mountPropagation": "HostToContainer" },
            // Each target names its node, so that a node whose exporter is down is named.
            "prometheus": { "monitor": { "relabelings": [
                { "sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node" },
            ] } },
        },
        // kube_node_labels carries each node's pool, for the `pool` label of node alerts.
        "kube-state-metrics": { "metricLabelsAllowlist": [format!("nodes=[{}]", crate::coverage::POOL_LABEL)] },
        // The operator's TLS secret is made by the same hook Jobs, so TLS goes with them.
        "prometheusOperator": {
            "admissionWebhooks": { "enabled": false, "patch": { "enabled": false } },
            "tls": { "enabled": false },
        },
        "prometheus": { "prometheusSpec": prometheus_spec },
    });
    if m.alerting.is_some() {
        // Tessera's AlertmanagerConfig is the top-level configuration: its routes see every
        // alert, not only those of its own namespace (see `crate::alert_routing`).
        values["alertmanager"] = json!({ "alertmanagerSpec": {
            "alertmanagerConfiguration": { "name": crate::alert_routing::NAME },
        } });
    }
    values
}

/// Where the cluster is, as Prometheus' external labels: on every alert it sends and every
/// sample it remote-writes.
pub fn site(site: &crate::alert_rules::Site) -> Value {
    json!({ "prometheus": { "prometheusSpec": { "externalLabels": site.labels() } } })
}

/// logging-operator's computed values: the operator's own Deployment tolerates what the
/// logging DaemonSets tolerate, so that a cluster whose every pool is tainted still runs it.
pub fn logging(l: &Logging) -> Value {
    json!({ "tolerations": tolerations_json(&l.tolerations), "nodeSelector": linux_only() })
}

/// The values kube-prometheus-stack is installed with: the spec's, the computed laid over them.
/// Lowering installs these and validation renders these, so both see one release.
pub fn monitoring_release(m: &Monitoring) -> Value {
    merge(&m.values, &monitoring(m))
}

/// The values logging-operator is installed with (see [`monitoring_release`]).
pub fn logging_release(l: &Logging) -> Value {
    merge(&l.values, &logging(l))
}

/// Leaf paths (`a.b.c`) that both `extra` and `computed` set, or where `extra` puts a
/// non-object above a computed leaf.
pub fn conflicts(extra: &Value, computed: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk_conflicts(extra, computed, String::new(), &mut out);
    out
}

fn walk_conflicts(extra: &Value, computed: &Value, path: String, out: &mut Vec<String>) {
    match (extra, computed) {
        (Value::Object(e), Value::Object(c)) => {
            for (k, cv) in c {
                if let Some(ev) = e.get(k) {
                    let sub = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                    walk_conflicts(ev, cv, sub, out);
                }
            }
        }
        _ => out.push(path),
    }
}

/// Where a spec may not add keys: maps it may add nothing under, and keys it may not add in a
/// map, by dotted path (`""` is the top level).
pub struct Guard {
    pub sealed: &'static [&'static str],
    pub guarded: &'static [(&'static str, &'static [&'static str])],
    /// Why, for the user whose spec is refused.
    pub why: &'static str,
}

const COVERAGE: &str = "it would change which nodes the core DaemonSets reach or what they may touch; Tessera computes placement, host access and selectors so that every node is covered (use the core service's `tolerations`)";

/// kube-prometheus-stack: node-exporter's placement, host access and image, and the operator's
/// selectors (a narrowed `podMonitorSelector` would stop the exporters being scraped).
pub const MONITORING_GUARD: Guard = Guard {
    why: COVERAGE,
    sealed: &[
        "nodeExporter",
        "prometheus-node-exporter.nodeSelector",
        "prometheus-node-exporter.hostRootFsMount",
        "prometheusOperator.admissionWebhooks",
        "prometheusOperator.tls",
        "prometheus.prometheusSpec.externalLabels",
        "alertmanager.alertmanagerSpec.alertmanagerConfiguration",
    ],
    guarded: &[
        (
            "prometheus-node-exporter",
            &[
                "affinity",
                "hostPID",
                "hostNetwork",
                "hostIPC",
                "hostUsers",
                "image",
                "extraHostVolumeMounts",
                "sidecarHostVolumeMounts",
                "sidecars",
                "extraInitContainers",
                "securityContext",
                "containerSecurityContext",
                // Keys of the real subchart's values.yaml that mount host paths, swap the image,
                // add objects, or rename the DaemonSet (so that Tessera's checks miss it).
                "extraVolumes",
                "extraVolumeMounts",
                "extraManifests",
                "kubeRBACProxy",
                "global",
                "namespaceOverride",
                "fullnameOverride",
                "nameOverride",
            ],
        ),
        // The parent chart's globals reach every subchart: a registry there swaps node-exporter's.
        ("global", &["imageRegistry", "imagePullSecrets"]),
        // Dropping node-exporter's samples after the scrape hides a node as surely as not
        // scraping it.
        ("prometheus-node-exporter.prometheus.monitor", &["metricRelabelings"]),
        (
            "prometheus.prometheusSpec",
            &[
                "podMonitorSelector",
                "podMonitorNamespaceSelector",
                "serviceMonitorSelector",
                "serviceMonitorNamespaceSelector",
                "ruleSelector",
                "ruleNamespaceSelector",
                "probeSelector",
                "probeNamespaceSelector",
                // The operator writes these after the external labels, over Tessera's.
                "prometheusExternalLabelName",
                "replicaExternalLabelName",
            ],
        ),
    ],
};

/// kube-prometheus-stack with alerting on: what would keep Tessera's alerts from its routing
/// (alerts dropped or relabelled on the way out, sent to another Alertmanager, no Prometheus or
/// no Alertmanager, another routing configuration selected).
pub const ALERTING_GUARD: Guard = Guard {
    why: "it would keep Tessera's alerts from its routing (dropped or sent elsewhere, no Prometheus or Alertmanager, another configuration); turn alerting off (`coreServices.alerting.enabled: false`) to run your own",
    sealed: &[],
    guarded: &[
        ("prometheus", &["enabled"]),
        ("alertmanager", &["enabled"]),
        (
            "prometheus.prometheusSpec",
            &[
                "additionalAlertRelabelConfigs",
                "additionalAlertRelabelConfigsSecret",
                "additionalAlertManagerConfigs",
                "additionalAlertManagerConfigsSecret",
                "alertingEndpoints",
            ],
        ),
        (
            "alertmanager.alertmanagerSpec",
            &[
                "replicas",
                "configSecret",
                "alertmanagerConfigSelector",
                "alertmanagerConfigNamespaceSelector",
                "alertmanagerConfigMatcherStrategy",
            ],
        ),
    ],
};

/// logging-operator: its Deployment's placement (it must run where the logging DaemonSets do).
pub const LOGGING_GUARD: Guard = Guard { why: COVERAGE, sealed: &["nodeSelector"], guarded: &[("", &["affinity"])] };

/// Dotted paths of the keys `extra` adds where `guard` forbids it.
pub fn additions(extra: &Value, guard: &Guard) -> Vec<String> {
    let at = |path: &str| {
        if path.is_empty() { Some(extra) } else { path.split('.').try_fold(extra, |v, k| v.get(k)) }
    };
    let join = |path: &str, k: &str| if path.is_empty() { k.to_string() } else { format!("{path}.{k}") };
    let mut out = Vec::new();
    for path in guard.sealed {
        if let Some(Value::Object(m)) = at(path) {
            out.extend(m.keys().map(|k| join(path, k)));
        }
    }
    for (path, keys) in guard.guarded {
        if let Some(Value::Object(m)) = at(path) {
            out.extend(keys.iter().filter(|k| m.contains_key(**k)).map(|k| join(path, k)));
        }
    }
    out
}

/// `computed` laid over `extra`: maps merge, and a computed leaf wins (validation has refused a
/// spec that sets one).
pub fn merge(extra: &Value, computed: &Value) -> Value {
    match (extra, computed) {
        (Value::Object(e), Value::Object(c)) => {
            let mut out = e.clone();
            for (k, cv) in c {
                let merged = match e.get(k) {
                    Some(ev) => merge(ev, cv),
                    None => cv.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (_, c) => c.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_name_each_computed_leaf_the_spec_sets() {
        let computed = json!({"a": {"b": 1, "c": {"d": 2}}, "e": 3});
        assert!(conflicts(&json!({"a": {"x": 1}, "y": 2}), &computed).is_empty());
        assert_eq!(conflicts(&json!({"a": {"b": 9}}), &computed), vec!["a.b"]);
        assert_eq!(conflicts(&json!({"a": {"c": "flat"}}), &computed), vec!["a.c"]);
        assert_eq!(conflicts(&json!({"e": {"deep": 1}}), &computed), vec!["e"]);
    }

    #[test]
    fn additions_name_keys_added_under_sealed_maps_and_guarded_keys() {
        let extra = json!({
            "prometheus-node-exporter": {"nodeSelector": {"gpu": "true"}, "affinity": {}, "resources": {}},
            "prometheus": {"prometheusSpec": {"podMonitorSelector": {}, "retention": "10d"}},
        });
        let mut got = additions(&extra, &MONITORING_GUARD);
        got.sort();
        assert_eq!(
            got,
            [
                "prometheus-node-exporter.affinity",
                "prometheus-node-exporter.nodeSelector.gpu",
                "prometheus.prometheusSpec.podMonitorSelector"
            ]
        );
        assert_eq!(additions(&json!({"affinity": {}}), &LOGGING_GUARD), ["affinity"]);
    }

    #[test]
    fn merge_keeps_extra_values_and_lays_computed_over_them() {
        let merged = merge(&json!({"a": {"x": 1}, "y": 2}), &json!({"a": {"b": 1}}));
        assert_eq!(merged, json!({"a": {"x": 1, "b": 1}, "y": 2}));
    }

    #[test]
    fn node_exporter_tolerates_every_taint_by_default() {
        let m = Monitoring {
            node_exporter: true,
            exporters: vec![],
            tolerations: vec![Toleration::everything()],
            remote_write: Some("https://prom.example/api/v1/write".into()),
            remote_write_auth: None,
            chart: crate::charts::kube_prometheus_stack(),
            values: json!({}),
            alerting: None,
        };
        let v = monitoring(&m);
        assert_eq!(v["prometheus-node-exporter"]["tolerations"], json!([{"operator": "Exists"}]));
        assert_eq!(v["prometheus"]["prometheusSpec"]["remoteWrite"][0]["url"], "https://prom.example/api/v1/write");
    }
}
