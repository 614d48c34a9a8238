//! The Kubernetes objects of the core services that Tessera writes itself (the charts bring the
//! rest): exporter DaemonSets and their PodMonitors, and the logging pipeline's custom
//! resources. Plain JSON, checked in the tests against `kubernetes-validate` and the real CRDs.

use serde_json::{Value, json};
use tessera_provider_api::{Exporter, Logging};

use crate::charts::{LOGGING_NAMESPACE, MONITORING_NAMESPACE};
use crate::contract::ANNOTATION_WAIT_FOR;
use crate::values::{linux_only, tolerations_json};

/// Every object carries this label, so a core-service DaemonSet can be told from the others.
pub const LABEL_CORE_SERVICE: &str = "tessera.dev/core-service";
pub use crate::daemonsets::LOGGING_NAME;

pub fn namespace(name: &str) -> Value {
    json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": name } })
}

fn selector_labels(exporter: &Exporter) -> Value {
    json!({ "app.kubernetes.io/name": exporter.name, "app.kubernetes.io/part-of": "tessera-core-services" })
}

/// A custom exporter on every node: privileged if asked, each host mount read-only under
/// `/host<path>` with `HostToContainer` propagation.
pub fn exporter_daemonset(e: &Exporter, tolerations: &Value) -> Value {
    let volume_name = |i: usize| format!("host-{i}");
    let mounts: Vec<Value> = e
        .host_mounts
        .iter()
        .enumerate()
        .map(|(i, path)| {
            json!({
                "name": volume_name(i),
                "mountPath": format!("/host{path}"),
                "mountPropagation": "HostToContainer",
                "readOnly": true,
            })
        })
        .collect();
    let volumes: Vec<Value> = e
        .host_mounts
        .iter()
        .enumerate()
        .map(|(i, path)| json!({ "name": volume_name(i), "hostPath": { "path": path } }))
        .collect();
    let mut labels = selector_labels(e);
    labels[LABEL_CORE_SERVICE] = json!("monitoring");
    json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": { "name": e.name, "namespace": MONITORING_NAMESPACE, "labels": labels },
        "spec": {
            "selector": { "matchLabels": selector_labels(e) },
            "updateStrategy": { "type": "RollingUpdate" },
            "template": {
                "metadata": { "labels": selector_labels(e) },
                "spec": {
                    "nodeSelector": linux_only(),
                    "tolerations": tolerations,
                    "containers": [{
                        "name": e.name,
                        "image": e.image,
                        "ports": [{ "name": "metrics", "containerPort": e.port, "protocol": "TCP" }],
                        "securityContext": { "privileged": e.privileged },
                        "volumeMounts": mounts,
                    }],
                    "volumes": volumes,
                },
            },
        },
    })
}

/// The PodMonitor through which prometheus-operator scrapes an exporter.
pub fn exporter_podmonitor(e: &Exporter) -> Value {
    json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": { "name": e.name, "namespace": MONITORING_NAMESPACE },
        "spec": {
            "selector": { "matchLabels": selector_labels(e) },
            "podMetricsEndpoints": [{ "port": "metrics", "path": e.path, "interval": e.interval }],
        },
    })
}

/// The `Logging` that runs the aggregator in the logging namespace.
pub fn logging() -> Value {
    json!({
        "apiVersion": "logging.banzaicloud.io/v1beta1",
        "kind": "Logging",
        "metadata": { "name": LOGGING_NAME },
        "spec": { "controlNamespace": LOGGING_NAMESPACE },
    })
}

/// The fluent-bit DaemonSet, through its custom resource: container logs from every node.
pub fn fluentbit_agent(l: &Logging) -> Value {
    json!({
        "apiVersion": "logging.banzaicloud.io/v1beta1",
        "kind": "FluentbitAgent",
        "metadata": {
            "name": LOGGING_NAME,
            "labels": { LABEL_CORE_SERVICE: "logging" },
            "annotations": { ANNOTATION_WAIT_FOR: crate::daemonsets::fluentbit_id() },
        },
        "spec": { "tolerations": tolerations_json(&l.tolerations), "nodeSelector": linux_only() },
    })
}

pub fn cluster_output(l: &Logging) -> Value {
    let mut spec = serde_json::Map::new();
    spec.insert(l.output.plugin.clone(), l.output.settings.clone());
    json!({
        "apiVersion": "logging.banzaicloud.io/v1beta1",
        "kind": "ClusterOutput",
        "metadata": { "name": LOGGING_NAME, "namespace": LOGGING_NAMESPACE },
        "spec": spec,
    })
}

/// Everything that reaches the aggregator goes to the one output.
pub fn cluster_flow() -> Value {
    json!({
        "apiVersion": "logging.banzaicloud.io/v1beta1",
        "kind": "ClusterFlow",
        "metadata": { "name": LOGGING_NAME, "namespace": LOGGING_NAMESPACE },
        "spec": { "match": [{ "select": {} }], "globalOutputRefs": [LOGGING_NAME] },
    })
}

/// The systemd units a host tailer follows: the spec's, plus `kubelet` when kubelet logs are
/// shipped (every supported node image runs the kubelet as a systemd unit that logs to the
/// journal).
pub fn tailed_units(l: &Logging) -> Vec<String> {
    let mut units = l.journald_units.clone();
    if l.kubelet_logs && !units.iter().any(|u| u == "kubelet") {
        units.push("kubelet".into());
    }
    units
}

/// Where kind's API server writes its audit log (Tessera's kind config mounts it from the
/// control-plane node); on the managed clouds the audit log never reaches a node.
pub const KIND_AUDIT_LOG: &str = "/var/log/kubernetes/kube-apiserver-audit.log";

/// One systemd tailer per unit, reading the journal at `journal_dir`, on every node; and a file
/// tailer for an audit log that is on the nodes (kind's).
pub fn host_tailer(l: &Logging, journal_dir: &str, audit_file: Option<&str>) -> Value {
    let tailers: Vec<Value> = tailed_units(l)
        .iter()
        .map(|u| json!({ "name": u, "systemdFilter": format!("{u}.service"), "path": journal_dir }))
        .collect();
    let files: Vec<Value> = audit_file.iter().map(|path| json!({ "name": "kube-audit", "path": path })).collect();
    json!({
        "apiVersion": "logging-extensions.banzaicloud.io/v1alpha1",
        "kind": "HostTailer",
        "metadata": {
            "name": LOGGING_NAME,
            "namespace": LOGGING_NAMESPACE,
            "labels": { LABEL_CORE_SERVICE: "logging" },
            "annotations": { ANNOTATION_WAIT_FOR: crate::daemonsets::host_tailer_id() },
        },
        "spec": {
            "systemdTailers": tailers,
            "fileTailers": files,
            "workloadOverrides": { "tolerations": tolerations_json(&l.tolerations), "nodeSelector": linux_only() },
        },
    })
}
