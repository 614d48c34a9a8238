//! Shared by the tests: cluster templates, and kind's documented schema facts.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::Value;
use tessera_provider_api::{Arch, ClusterTemplate, CoreServices, Machine, Network, PoolTemplate, Taint, TaintEffect};

pub fn pool(name: &str, min: u32, labels: &[(&str, &str)], taints: Vec<Taint>) -> PoolTemplate {
    let mut l: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    l.insert("tessera.dev/pool".into(), name.into());
    PoolTemplate {
        name: name.into(),
        machine: Machine { vcpu: 4, memory_gib: 16, arch: Arch::Amd64, spot: false },
        min,
        max: min.max(1) * 2,
        labels: l,
        taints,
    }
}

pub fn taint(key: &str, value: Option<&str>, effect: TaintEffect) -> Taint {
    Taint { key: key.into(), value: value.map(Into::into), effect }
}

pub fn template(version: &str, pools: Vec<PoolTemplate>, audit_logs: bool) -> ClusterTemplate {
    ClusterTemplate {
        fleet: "f".into(),
        placement: "local".into(),
        region: String::new(),
        zones: Vec::new(),
        kubernetes_version: version.into(),
        network: Network::Managed { cidr: "10.0.0.0/16".into() },
        api_access: Default::default(),
        pools,
        core_services: CoreServices { monitoring: None, logging: None, audit_logs },
    }
}

/// A system pool, and a tainted, labelled gpu pool of two.
pub fn labelled_and_tainted(version: &str) -> ClusterTemplate {
    let gpu = pool(
        "gpu",
        2,
        &[("accelerator", "nvidia")],
        vec![
            taint("dedicated", Some("gpu"), TaintEffect::NoSchedule),
            taint("nvidia.com/gpu", None, TaintEffect::NoExecute),
        ],
    );
    template(version, vec![pool("system", 1, &[], Vec::new()), gpu], true)
}

fn keys_within(what: &str, v: &Value, allowed: &[&str], problems: &mut Vec<String>) {
    if let Some(m) = v.as_object() {
        for k in m.keys().filter(|k| !allowed.contains(&k.as_str())) {
            problems.push(format!("{what} has no field `{k}`"));
        }
    } else {
        problems.push(format!("{what} is not an object"));
    }
}

/// kubeadm's `extraArgs`/`kubeletExtraArgs`: a list of `{name, value}` strings in v1beta4
/// (kubeadm.k8s.io/v1beta4 `Arg`), a map of strings before.
fn check_args(what: &str, args: &Value, v1beta4: bool, problems: &mut Vec<String>) {
    let ok = if v1beta4 {
        args.as_array().is_some_and(|a| {
            a.iter().all(|i| {
                i.as_object().is_some_and(|o| {
                    o.len() == 2
                        && o.get("name").is_some_and(Value::is_string)
                        && o.get("value").is_some_and(Value::is_string)
                })
            })
        })
    } else {
        args.as_object().is_some_and(|o| o.values().all(Value::is_string))
    };
    if !ok {
        problems
            .push(format!("{what} is not in the kubeadm {} form: {args}", if v1beta4 { "v1beta4" } else { "v1beta3" }));
    }
}

fn check_patch(what: &str, patch: &Value, v1beta4: bool, problems: &mut Vec<String>) {
    let Some(text) = patch.as_str() else {
        problems.push(format!("{what} is not a string (kind takes inline YAML blobs)"));
        return;
    };
    let Ok(doc) = serde_json::from_str::<Value>(text) else {
        problems.push(format!("{what} is not one YAML/JSON document"));
        return;
    };
    let kinds = [
        "ClusterConfiguration",
        "InitConfiguration",
        "JoinConfiguration",
        "KubeletConfiguration",
        "KubeProxyConfiguration",
    ];
    match doc.get("kind").and_then(Value::as_str) {
        Some(k) if kinds.contains(&k) => {}
        other => problems.push(format!("{what} patches no kubeadm config kind: {other:?}")),
    }
    if doc.get("apiVersion").is_some() {
        problems.push(format!("{what} sets apiVersion: kind would skip it on any other version"));
    }
    if let Some(args) = doc.pointer("/nodeRegistration/kubeletExtraArgs") {
        check_args(&format!("{what} kubeletExtraArgs"), args, v1beta4, problems);
    }
    if let Some(args) = doc.pointer("/apiServer/extraArgs") {
        check_args(&format!("{what} apiServer.extraArgs"), args, v1beta4, problems);
    }
    for (i, vol) in doc.pointer("/apiServer/extraVolumes").and_then(Value::as_array).into_iter().flatten().enumerate() {
        // kubeadm HostPathMount.
        keys_within(
            &format!("{what} extraVolumes[{i}]"),
            vol,
            &["name", "hostPath", "mountPath", "readOnly", "pathType"],
            problems,
        );
    }
}

/// The config against kind's documented facts (pkg/apis/config/v1alpha4/types.go and the
/// configuration guide): `kind: Cluster` in `kind.x-k8s.io/v1alpha4`, known fields only, node
/// roles `control-plane` or `worker` with at least one control plane, images pinned by digest,
/// labels as a string map, mounts with known fields and an absolute host path, and kubeadm
/// patches as strings of one document in the form of the cluster's kubeadm API.
pub fn schema_problems(config: &Value, v1beta4: bool) -> Vec<String> {
    let mut p = Vec::new();
    keys_within(
        "Cluster",
        config,
        &[
            "kind",
            "apiVersion",
            "name",
            "nodes",
            "networking",
            "featureGates",
            "runtimeConfig",
            "kubeadmConfigPatches",
            "kubeadmConfigPatchesJSON6902",
            "containerdConfigPatches",
            "containerdConfigPatchesJSON6902",
        ],
        &mut p,
    );
    if config["kind"] != "Cluster" || config["apiVersion"] != "kind.x-k8s.io/v1alpha4" {
        p.push("not a kind.x-k8s.io/v1alpha4 Cluster".into());
    }
    for (i, patch) in config["kubeadmConfigPatches"].as_array().into_iter().flatten().enumerate() {
        check_patch(&format!("kubeadmConfigPatches[{i}]"), patch, v1beta4, &mut p);
    }
    let nodes = config["nodes"].as_array().cloned().unwrap_or_default();
    if !nodes.iter().any(|n| n["role"] == "control-plane") {
        p.push("no control-plane node".into());
    }
    for (i, n) in nodes.iter().enumerate() {
        let what = format!("nodes[{i}]");
        keys_within(
            &what,
            n,
            &[
                "role",
                "image",
                "labels",
                "extraMounts",
                "extraPortMappings",
                "gpus",
                "kubeadmConfigPatches",
                "kubeadmConfigPatchesJSON6902",
            ],
            &mut p,
        );
        if !matches!(n["role"].as_str(), Some("control-plane" | "worker")) {
            p.push(format!("{what} has role {}", n["role"]));
        }
        let image = n["image"].as_str().unwrap_or_default();
        let pinned =
            image.starts_with("kindest/node:v") && image.split_once("@sha256:").is_some_and(|(_, d)| d.len() == 64);
        if !pinned {
            p.push(format!("{what} image `{image}` is not pinned by digest"));
        }
        if let Some(labels) = n.get("labels") {
            if !labels.as_object().is_some_and(|l| l.values().all(Value::is_string)) {
                p.push(format!("{what} labels are not a string map"));
            }
        }
        for (j, m) in n["extraMounts"].as_array().into_iter().flatten().enumerate() {
            keys_within(
                &format!("{what} extraMounts[{j}]"),
                m,
                &["containerPath", "hostPath", "readOnly", "selinuxRelabel", "propagation"],
                &mut p,
            );
            if !m["hostPath"].as_str().is_some_and(|h| h.starts_with('/')) {
                p.push(format!("{what} extraMounts[{j}] host path is not absolute"));
            }
        }
        for (j, patch) in n["kubeadmConfigPatches"].as_array().into_iter().flatten().enumerate() {
            check_patch(&format!("{what} kubeadmConfigPatches[{j}]"), patch, v1beta4, &mut p);
        }
    }
    p
}
