//! The core-service DaemonSets as they will run, built before anything is planned.
//!
//! ## Overview
//!
//! Coverage is a property of what runs, not of the values Tessera computes: a spec's extra chart
//! values are merged with the computed ones, and the chart and logging-operator turn the result
//! into DaemonSets. [`build`] makes those DaemonSets the way they will be made:
//! - node-exporter from kube-prometheus-stack's merged values, through [`chart_workloads`]:
//!   Tessera's model of what the pinned chart renders, reading the same keys the chart's
//!   templates read (node selector, tolerations, affinity, `hostNetwork`, `hostPID`, image, the
//!   host root and extra host mounts) with the chart's defaults where the values say nothing;
//! - each custom exporter's DaemonSet, exactly as Tessera applies it;
//! - fluent-bit and the host tailer from the `FluentbitAgent` and `HostTailer` Tessera applies,
//!   through [`operator_daemonset`]: what logging-operator makes of them.
//!
//! Where helm and the chart are on the machine, validation renders the chart instead
//! ([`crate::render`]) and [`build_from`] takes the DaemonSets helm printed in place of the
//! model's; the rest is built the same way. Validation checks these objects per pool with the
//! scheduler's rule and against the security floor; the sim makes the model's objects when a
//! release or custom resource is applied; the tests hold the model to what `helm template`
//! renders.

use serde_json::{Value, json};
use tessera_provider_api::CoreServices;

use crate::charts::{LOGGING_NAMESPACE, LOGGING_RELEASE, MONITORING_NAMESPACE, MONITORING_RELEASE};
use crate::coverage::Service;
use crate::manifests;
use crate::values;

/// The node-exporter image the pinned chart runs (subchart prometheus-node-exporter 4.56.1,
/// appVersion 1.12.1, `image.registry`/`image.repository` defaults).
pub const NODE_EXPORTER_IMAGE: &str = "quay.io/prometheus/node-exporter:v1.12.1";
/// Stands for the fluent-bit and host-tailer images logging-operator pins itself (the
/// `FluentbitAgent` and `HostTailer` Tessera writes set none).
pub const OPERATOR_PINNED_IMAGE: &str = "logging-operator-pinned";

/// Where a built DaemonSet comes from, which says which spec setting shapes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The chart, from the computed values merged with the spec's `values`.
    Chart,
    /// A custom exporter of the spec, by name.
    Exporter(String),
    /// logging-operator, from a custom resource Tessera writes.
    Operator,
}

/// One core-service DaemonSet as it will run.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub service: Service,
    pub source: Source,
    pub daemonset: Value,
}

impl Workload {
    pub fn name(&self) -> &str {
        self.daemonset.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default()
    }

    pub fn pod_spec(&self) -> &Value {
        self.daemonset.pointer("/spec/template/spec").unwrap_or(&Value::Null)
    }
}

/// What helm rendered of each service's chart, where it could; `None` means Tessera's model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rendered {
    pub monitoring: Option<Vec<Value>>,
    pub logging: Option<Vec<Value>>,
}

/// Every core-service DaemonSet of `cs`, as it will run, the charts' by Tessera's model.
pub fn build(cs: &CoreServices) -> Vec<Workload> {
    build_from(cs, &Rendered::default())
}

/// Every core-service DaemonSet of `cs`, as it will run: each chart's from what helm rendered
/// where `rendered` has it, else from Tessera's model.
pub fn build_from(cs: &CoreServices, rendered: &Rendered) -> Vec<Workload> {
    let mut out = Vec::new();
    if let Some(m) = &cs.monitoring {
        let objects = rendered.monitoring.clone().unwrap_or_else(|| {
            chart_workloads(
                &m.chart.reference,
                MONITORING_RELEASE,
                MONITORING_NAMESPACE,
                &values::monitoring_release(m),
            )
        });
        out.extend(chart_daemonsets(Service::Monitoring, MONITORING_NAMESPACE, objects));
        let tolerations = values::tolerations_json(&m.tolerations);
        for e in &m.exporters {
            out.push(Workload {
                service: Service::Monitoring,
                source: Source::Exporter(e.name.clone()),
                daemonset: manifests::exporter_daemonset(e, &tolerations),
            });
        }
    }
    if let Some(l) = &cs.logging {
        let objects = rendered.logging.clone().unwrap_or_else(|| {
            chart_workloads(&l.chart.reference, LOGGING_RELEASE, LOGGING_NAMESPACE, &values::logging_release(l))
        });
        out.extend(chart_daemonsets(Service::Logging, LOGGING_NAMESPACE, objects));
        // The journal directory does not change where pods go; any cloud's will do here.
        let crs = [manifests::fluentbit_agent(l), manifests::host_tailer(l, "/var/log/journal", None)];
        for ds in crs.iter().filter_map(operator_daemonset) {
            out.push(Workload { service: Service::Logging, source: Source::Operator, daemonset: ds });
        }
    }
    out
}

/// A chart's DaemonSets, each in the namespace it will be applied to: helm leaves a template's
/// namespace out when the template does, and the client then applies it to the release's.
fn chart_daemonsets(service: Service, namespace: &str, objects: Vec<Value>) -> impl Iterator<Item = Workload> {
    objects.into_iter().filter(|o| o["kind"] == "DaemonSet").map(move |mut ds| {
        if ds.pointer("/metadata/namespace").and_then(Value::as_str).is_none_or(str::is_empty) {
            ds["metadata"]["namespace"] = json!(namespace);
        }
        Workload { service, source: Source::Chart, daemonset: ds }
    })
}

/// What logging-operator makes of a custom resource: `<name>-fluentbit` for a `FluentbitAgent`,
/// `<name>-host-tailer` for a `HostTailer` (with its `workloadOverrides`); `None` for others.
pub fn operator_daemonset(cr: &Value) -> Option<Value> {
    let name = cr.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let (ns, name, pod) = match cr.get("kind").and_then(Value::as_str) {
        Some("FluentbitAgent") => (LOGGING_NAMESPACE, format!("{name}-fluentbit"), &cr["spec"]),
        Some("HostTailer") => {
            let ns = cr.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or(LOGGING_NAMESPACE);
            (ns, format!("{name}-host-tailer"), &cr["spec"]["workloadOverrides"])
        }
        _ => return None,
    };
    Some(daemonset(ns, &name, pod, OPERATOR_PINNED_IMAGE, &[]))
}

/// A host path volume: `(volume name, host path, mount path, read-only)`.
type HostMount = (String, String, String, bool);

/// A DaemonSet with the scheduling and host-access fields of `pod` (`nodeSelector`,
/// `tolerations`, `affinity`, `hostNetwork`, `hostPID`) and one container.
fn daemonset(namespace: &str, name: &str, pod: &Value, image: &str, mounts: &[HostMount]) -> Value {
    let volume_mounts: Vec<Value> =
        mounts.iter().map(|(v, _, at, ro)| json!({ "name": v, "mountPath": at, "readOnly": ro })).collect();
    let volumes: Vec<Value> =
        mounts.iter().map(|(v, host, _, _)| json!({ "name": v, "hostPath": { "path": host } })).collect();
    let mut spec = json!({ "containers": [{ "name": name, "image": image, "volumeMounts": volume_mounts }] });
    if !volumes.is_empty() {
        spec["volumes"] = json!(volumes);
    }
    for key in ["nodeSelector", "tolerations", "affinity", "hostNetwork", "hostPID"] {
        match pod.get(key) {
            None | Some(Value::Null) => {}
            Some(v) => spec[key] = v.clone(),
        }
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": { "name": name, "namespace": namespace },
        "spec": {
            "selector": { "matchLabels": { "app.kubernetes.io/name": name } },
            "template": { "metadata": { "labels": { "app.kubernetes.io/name": name } }, "spec": spec },
        },
    })
}

/// The workloads a pinned chart renders from these (merged) values; an unknown chart renders
/// none. For kube-prometheus-stack: the operator's Deployment and, unless `nodeExporter.enabled`
/// is false, the node-exporter DaemonSet with the subchart's defaults where the values are
/// silent (tolerations `NoSchedule` only, Linux only, `hostNetwork` and `hostPID` on, the host
/// root mounted read-only).
pub fn chart_workloads(chart: &str, release: &str, namespace: &str, values: &Value) -> Vec<Value> {
    let deployment = |n: String| json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": n, "namespace": namespace } });
    if chart.ends_with("/kube-prometheus-stack") {
        let mut out = vec![deployment(format!("{release}-operator"))];
        if values["nodeExporter"]["enabled"] != json!(false) {
            out.push(node_exporter(release, namespace, &values["prometheus-node-exporter"]));
        }
        out
    } else if chart.ends_with("/logging-operator") {
        vec![deployment(release.to_string())]
    } else {
        Vec::new()
    }
}

fn node_exporter(release: &str, namespace: &str, ne: &Value) -> Value {
    let or = |v: &Value, default: Value| if v.is_null() { default } else { v.clone() };
    let pod = json!({
        "tolerations": or(&ne["tolerations"], json!([{ "effect": "NoSchedule", "operator": "Exists" }])),
        "nodeSelector": or(&ne["nodeSelector"], json!({ "kubernetes.io/os": "linux" })),
        "affinity": or(&ne["affinity"], json!({})),
        "hostNetwork": or(&ne["hostNetwork"], json!(true)),
        "hostPID": or(&ne["hostPID"], json!(true)),
    });
    let mut mounts: Vec<HostMount> = vec![
        ("proc".into(), "/proc".into(), "/host/proc".into(), true),
        ("sys".into(), "/sys".into(), "/host/sys".into(), true),
    ];
    if ne["hostRootFsMount"]["enabled"] != json!(false) {
        mounts.push(("root".into(), "/".into(), "/host/root".into(), true));
    }
    for (i, m) in ne["extraHostVolumeMounts"].as_array().map_or(&[][..], Vec::as_slice).iter().enumerate() {
        let text = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let name = m.get("name").and_then(Value::as_str).map_or_else(|| format!("extra-{i}"), str::to_string);
        // The chart mounts an extra host path read-write unless it says `readOnly: true`.
        mounts.push((name, text("hostPath"), text("mountPath"), m.get("readOnly") == Some(&json!(true))));
    }
    daemonset(
        namespace,
        &format!("{release}-prometheus-node-exporter"),
        &pod,
        &node_exporter_image(&ne["image"]),
        &mounts,
    )
}

/// The subchart's image: `registry/repository:tag` (the tag defaulting to `v<appVersion>`),
/// `@digest` when one is given.
fn node_exporter_image(image: &Value) -> String {
    let text = |k: &str| image.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    if [text("registry"), text("repository"), text("tag"), text("digest")].iter().all(Option::is_none) {
        return NODE_EXPORTER_IMAGE.to_string();
    }
    let registry = text("registry").unwrap_or("quay.io");
    let repository = text("repository").unwrap_or("prometheus/node-exporter");
    match (text("digest"), text("tag")) {
        (Some(d), _) => format!("{registry}/{repository}@{d}"),
        (None, Some(t)) => format!("{registry}/{repository}:{t}"),
        (None, None) => format!("{registry}/{repository}:v1.12.1"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_provider_api::{Logging, Monitoring, Toleration};

    fn core(values: Value) -> CoreServices {
        core_with(true, values)
    }

    fn core_with(node_exporter: bool, values: Value) -> CoreServices {
        let m = Monitoring {
            node_exporter,
            exporters: vec![],
            tolerations: vec![Toleration::everything()],
            remote_write: None,
            remote_write_auth: None,
            chart: crate::charts::kube_prometheus_stack(),
            values,
            alerting: None,
        };
        CoreServices { monitoring: Some(m), logging: None::<Logging>, audit_logs: true }
    }

    #[test]
    fn node_exporter_is_built_from_the_merged_values() {
        let built = build(&core(json!({"prometheus-node-exporter": {"hostPID": false, "affinity": {"x": 1}}})));
        let ne = built.iter().find(|w| w.source == Source::Chart).map(|w| w.pod_spec().clone()).unwrap_or_default();
        assert_eq!(ne["tolerations"], json!([{"operator": "Exists"}]), "the computed tolerations");
        assert_eq!(ne["hostPID"], json!(false));
        assert_eq!(ne["affinity"], json!({"x": 1}), "what the spec adds is in the built object");
        assert_eq!(ne["containers"][0]["image"], json!(NODE_EXPORTER_IMAGE));
    }

    #[test]
    fn extra_host_mounts_are_read_write_unless_marked() {
        let extra = json!({"prometheus-node-exporter": {"extraHostVolumeMounts": [
            {"name": "etc", "hostPath": "/etc", "mountPath": "/host/etc"},
        ]}});
        let built = build(&core(extra));
        let mounts = built[0].pod_spec()["containers"][0]["volumeMounts"].as_array().cloned().unwrap_or_default();
        let etc = mounts.iter().find(|m| m["name"] == "etc").cloned().unwrap_or_default();
        assert_eq!(etc["readOnly"], json!(false));
    }

    #[test]
    fn rendered_objects_replace_the_model_of_their_chart() {
        let ds = json!({"kind": "DaemonSet", "metadata": {"name": "kps-ne"},
                        "spec": {"template": {"spec": {"nodeSelector": {"tier": "a"}}}}});
        let deployment = json!({"kind": "Deployment", "metadata": {"name": "kps-operator"}});
        let rendered = Rendered { monitoring: Some(vec![ds, deployment]), logging: None };
        let built = build_from(&core(json!({})), &rendered);
        let chart: Vec<&Workload> = built.iter().filter(|w| w.source == Source::Chart).collect();
        assert_eq!(chart.len(), 1, "{built:?}");
        assert_eq!(chart[0].name(), "kps-ne");
        assert_eq!(chart[0].pod_spec()["nodeSelector"], json!({"tier": "a"}));
        assert_eq!(chart[0].daemonset["metadata"]["namespace"], json!(MONITORING_NAMESPACE), "the release's namespace");
        assert_eq!(build_from(&core(json!({})), &Rendered::default()), build(&core(json!({}))));
    }

    #[test]
    fn node_exporter_off_builds_no_daemonset() {
        let built = build(&core_with(false, json!({})));
        assert!(built.iter().all(|w| w.source != Source::Chart), "{built:?}");
    }
}
