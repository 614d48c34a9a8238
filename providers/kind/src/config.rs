//! The kind config (`kind.x-k8s.io/v1alpha4`) for one placement's cluster. Pure.
//!
//! ## Overview
//!
//! kind makes every node of a cluster at once, from one config file:
//! - one `control-plane` node, or three with [`KindOptions::ha`] (kind then adds its own load
//!   balancer in front of them);
//! - per pool, `scale.min` `worker` nodes, or one when min is 0: kind has no autoscaler, so a
//!   pool's `max` is never reached and the node count is fixed until the cluster is replaced;
//! - each worker gets its pool's labels (`tessera.dev/pool` among them) through kind's `labels`;
//! - taints: kind has no taint field, so each tainted pool's workers carry a `JoinConfiguration`
//!   patch setting the kubelet's `register-with-taints` (kind runs `kubeadm join` on every node
//!   but the first control plane);
//! - every node runs the pinned node image of the cluster's minor ([`crate::images`]); spot is
//!   ignored (a container is neither on-demand nor spot), and a node's arch is the host's;
//! - with audit logs on, the API server writes [`KIND_AUDIT_LOG`] as kind's auditing guide does:
//!   a cluster-wide `ClusterConfiguration` patch adds the audit flags and mounts, and each
//!   control-plane node mounts the policy file from the host (`extraMounts`).
//!
//! ## kubeadm API versions
//!
//! kind writes the kubeadm config in `kubeadm.k8s.io/v1beta4` for Kubernetes 1.36 and later,
//! `v1beta3` from 1.23, `v1beta2` before. In v1beta4 `extraArgs` and `kubeletExtraArgs` are lists
//! of `{name, value}`; before, maps of name to value. The patches here are written in the form
//! of the version kind uses for the cluster's minor, and, as in kind's own examples, without an
//! `apiVersion`: kind then matches them by `kind` alone. With an `apiVersion` that kind did not
//! generate, kind skips a patch silently and the taints would be lost; without one, a patch in
//! the wrong form fails the create loudly.

use std::path::Path;

use serde_json::{Map, Value, json};
use tessera_kube::coverage::POOL_LABEL;
use tessera_kube::manifests::KIND_AUDIT_LOG;
use tessera_provider_api::{ClusterTemplate, PoolTemplate, ProviderRef, Taint, TaintEffect};

use crate::images::minor_of;

pub const API_VERSION: &str = "kind.x-k8s.io/v1alpha4";
pub const ROLE_CONTROL_PLANE: &str = "control-plane";
pub const ROLE_WORKER: &str = "worker";

/// Where the audit policy is inside a control-plane node, and the directory the API server
/// mounts it from.
pub const POLICY_DIR: &str = "/etc/kubernetes/policies";
pub const POLICY_PATH: &str = "/etc/kubernetes/policies/audit-policy.yaml";
/// The directory of [`KIND_AUDIT_LOG`], mounted writable into the API server.
pub const AUDIT_LOG_DIR: &str = "/var/log/kubernetes";

/// Per-placement settings of a kind cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindOptions {
    /// Three control-plane nodes instead of one: an HA topology to test against, not more
    /// availability (they share one host).
    pub ha: bool,
}

impl KindOptions {
    /// The provider flavour (`ProviderRef.profile`) that selects [`KindOptions::ha`].
    pub const HA_PROFILE: &'static str = "ha";

    /// The options a placement's provider carries; `None` for an unknown flavour.
    pub fn of(provider: &ProviderRef) -> Option<Self> {
        match provider.profile.as_deref() {
            None => Some(Self { ha: false }),
            Some(Self::HA_PROFILE) => Some(Self { ha: true }),
            Some(_) => None,
        }
    }

    pub fn control_planes(&self) -> usize {
        if self.ha { 3 } else { 1 }
    }
}

/// The kubeadm config API kind generates for a Kubernetes version.
pub fn kubeadm_api_version(version: &str) -> &'static str {
    let minor = minor_of(version);
    let number =
        minor.split_once('.').and_then(|(major, minor)| Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?)));
    match number {
        Some(v) if v >= (1, 36) => "kubeadm.k8s.io/v1beta4",
        Some(v) if v >= (1, 23) => "kubeadm.k8s.io/v1beta3",
        _ => "kubeadm.k8s.io/v1beta2",
    }
}

/// `extraArgs`/`kubeletExtraArgs` in the form of `api`: a list of `{name, value}` in v1beta4, a
/// map before.
fn extra_args(api: &str, args: &[(&str, String)]) -> Value {
    if api.ends_with("/v1beta4") {
        Value::Array(args.iter().map(|(name, value)| json!({ "name": name, "value": value })).collect())
    } else {
        Value::Object(args.iter().map(|(name, value)| (name.to_string(), json!(value))).collect())
    }
}

fn effect(e: TaintEffect) -> &'static str {
    match e {
        TaintEffect::NoSchedule => "NoSchedule",
        TaintEffect::PreferNoSchedule => "PreferNoSchedule",
        TaintEffect::NoExecute => "NoExecute",
    }
}

/// The kubelet's `--register-with-taints` value: `key=value:Effect` (or `key:Effect`), joined
/// by commas.
pub fn register_with_taints(taints: &[Taint]) -> String {
    let one = |t: &Taint| match &t.value {
        Some(v) => format!("{}={v}:{}", t.key, effect(t.effect)),
        None => format!("{}:{}", t.key, effect(t.effect)),
    };
    taints.iter().map(one).collect::<Vec<_>>().join(",")
}

/// A kubeadm patch as kind takes it: a string holding one document (JSON is YAML).
fn patch(document: Value) -> Value {
    Value::String(document.to_string())
}

/// The `JoinConfiguration` patch that registers a worker with its pool's taints.
fn taints_patch(api: &str, taints: &[Taint]) -> Value {
    patch(json!({
        "kind": "JoinConfiguration",
        "nodeRegistration": { "kubeletExtraArgs": extra_args(api, &[("register-with-taints", register_with_taints(taints))]) },
    }))
}

/// The `ClusterConfiguration` patch that turns the API server's audit log on (kind's auditing
/// guide): the flags, the policy directory read-only and the log directory writable.
fn audit_patch(api: &str) -> Value {
    patch(json!({
        "kind": "ClusterConfiguration",
        "apiServer": {
            "extraArgs": extra_args(api, &[
                ("audit-log-path", KIND_AUDIT_LOG.to_string()),
                ("audit-policy-file", POLICY_PATH.to_string()),
            ]),
            "extraVolumes": [
                { "name": "audit-policies", "hostPath": POLICY_DIR, "mountPath": POLICY_DIR, "readOnly": true, "pathType": "DirectoryOrCreate" },
                { "name": "audit-logs", "hostPath": AUDIT_LOG_DIR, "mountPath": AUDIT_LOG_DIR, "readOnly": false, "pathType": "DirectoryOrCreate" },
            ],
        },
    }))
}

/// The audit policy the API server reads: every request at `Metadata` level (who did what to
/// which object, no bodies), as in kind's guide; the `RequestReceived` stage is left out, since
/// every request also reaches `ResponseComplete` and logging both doubles the volume.
pub fn audit_policy() -> Value {
    json!({
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [{ "level": "Metadata" }],
    })
}

/// How many worker nodes a pool gets: `min`, or one when min is 0 (a pool with no node would
/// not exist on kind at all, and nothing scales it up).
pub fn workers_of(pool: &PoolTemplate) -> u32 {
    pool.min.max(1)
}

fn worker(pool: &PoolTemplate, image: &str, api: &str) -> Value {
    let mut labels = pool.labels.clone();
    labels.entry(POOL_LABEL.to_string()).or_insert_with(|| pool.name.clone());
    let mut node = Map::new();
    node.insert("role".into(), json!(ROLE_WORKER));
    node.insert("image".into(), json!(image));
    node.insert("labels".into(), json!(labels));
    if !pool.taints.is_empty() {
        node.insert("kubeadmConfigPatches".into(), json!([taints_patch(api, &pool.taints)]));
    }
    Value::Object(node)
}

/// The kind config for `cluster`. `audit_policy_file` is where the policy is on the host (the
/// driver writes it there before creating).
pub fn kind_config(cluster: &ClusterTemplate, options: KindOptions, image: &str, audit_policy_file: &Path) -> Value {
    let api = kubeadm_api_version(&cluster.kubernetes_version);
    let audit = cluster.core_services.audit_logs;
    let mut control_plane = Map::new();
    control_plane.insert("role".into(), json!(ROLE_CONTROL_PLANE));
    control_plane.insert("image".into(), json!(image));
    if audit {
        control_plane.insert(
            "extraMounts".into(),
            json!([{ "hostPath": audit_policy_file.to_string_lossy(), "containerPath": POLICY_PATH, "readOnly": true }]),
        );
    }
    let mut nodes: Vec<Value> = (0..options.control_planes()).map(|_| Value::Object(control_plane.clone())).collect();
    for pool in &cluster.pools {
        let node = worker(pool, image, api);
        nodes.extend((0..workers_of(pool)).map(|_| node.clone()));
    }
    let mut config = Map::new();
    config.insert("kind".into(), json!("Cluster"));
    config.insert("apiVersion".into(), json!(API_VERSION));
    config.insert("name".into(), json!(cluster_name(cluster)));
    if audit {
        // Cluster-wide: every control-plane node's API server takes the same flags.
        config.insert("kubeadmConfigPatches".into(), json!([audit_patch(api)]));
    }
    config.insert("nodes".into(), Value::Array(nodes));
    Value::Object(config)
}

/// `{fleet}-{placement}`: unique among the host's kind clusters.
pub fn cluster_name(cluster: &ClusterTemplate) -> String {
    format!("{}-{}", cluster.fleet, cluster.placement)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_picks_kubeadm_v1beta4_from_1_36_and_v1beta3_from_1_23() {
        assert_eq!(kubeadm_api_version("1.36"), "kubeadm.k8s.io/v1beta4");
        assert_eq!(kubeadm_api_version("1.37.2"), "kubeadm.k8s.io/v1beta4");
        assert_eq!(kubeadm_api_version("1.35"), "kubeadm.k8s.io/v1beta3");
        assert_eq!(kubeadm_api_version("1.23"), "kubeadm.k8s.io/v1beta3");
        assert_eq!(kubeadm_api_version("1.21"), "kubeadm.k8s.io/v1beta2");
    }

    #[test]
    fn extra_args_are_a_list_in_v1beta4_and_a_map_before() {
        let args = [("a", "1".to_string())];
        assert_eq!(extra_args("kubeadm.k8s.io/v1beta4", &args), json!([{ "name": "a", "value": "1" }]));
        assert_eq!(extra_args("kubeadm.k8s.io/v1beta3", &args), json!({ "a": "1" }));
    }

    #[test]
    fn taints_are_written_as_the_kubelet_flag_takes_them() {
        let taints = vec![
            Taint { key: "dedicated".into(), value: Some("gpu".into()), effect: TaintEffect::NoSchedule },
            Taint { key: "spot".into(), value: None, effect: TaintEffect::PreferNoSchedule },
        ];
        assert_eq!(register_with_taints(&taints), "dedicated=gpu:NoSchedule,spot:PreferNoSchedule");
    }

    #[test]
    fn an_unknown_flavour_has_no_options() {
        let mut p = ProviderRef::new("kind", "");
        assert_eq!(KindOptions::of(&p), Some(KindOptions { ha: false }));
        p.profile = Some("ha".into());
        assert_eq!(KindOptions::of(&p).map(|o| o.control_planes()), Some(3));
        p.profile = Some("big".into());
        assert_eq!(KindOptions::of(&p), None);
    }
}
