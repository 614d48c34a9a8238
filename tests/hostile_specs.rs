//! Specs written to defeat the coverage promise ("every node of every pool runs node monitoring
//! and node logging") or the core services' security floor, each refused at `file:line:col`.
//! One table row per way in: chart values that move or widen the DaemonSets, exporters that
//! impersonate the chart or reach into the node, labels the kubelet refuses or that take a pool
//! out of coverage, taints and tolerations Kubernetes refuses. Chart values are located key by
//! key, so a refusal points at the key that causes it.

use std::path::Path;

use tessera::spec;

const BASE: &str = r#"apiVersion: tessera.dev/v1alpha1
kind: Fleet
metadata: { name: core }
spec:
  kubernetes: { version: "1.31" }
  nodePools:
    - name: system
      machine: { vcpu: 4, memoryGiB: 16 }
      scale: { min: 3, max: 6 }
      labels: { tier: system }
      taints: [{ key: dedicated, value: system, effect: NoSchedule }]
  coreServices:
    monitoring: { nodeExporter: true }
    logging: { journald: { units: [kubelet] } }
  placements:
    - { name: aws, provider: sim, region: eu-west-1 }
"#;

const NE: &str = "DaemonSet monitoring/kube-prometheus-stack-prometheus-node-exporter";

/// `(what it tries, replace this, with this, the problem is at this token of the edit, and says)`.
const HOSTILE: &[(&str, &str, &str, &str, &str)] = &[
    (
        "a nodeSelector entry beside the computed one",
        "monitoring: { nodeExporter: true }",
        "monitoring: { values: { prometheus-node-exporter: { nodeSelector: { gpu: \"true\" } } } }",
        "gpu:",
        "`prometheus-node-exporter.nodeSelector.gpu` may not be added",
    ),
    (
        "the same nodeSelector, judged on the built DaemonSet",
        "monitoring: { nodeExporter: true }",
        "monitoring: { values: { prometheus-node-exporter: { nodeSelector: { gpu: \"true\" } } } }",
        "gpu:",
        "pool `system` would not run DaemonSet monitoring/kube-prometheus-stack-prometheus-node-exporter: its nodeSelector `gpu: true`",
    ),
    (
        "a required node affinity that excludes a pool",
        "monitoring: { nodeExporter: true }",
        "monitoring: { values: { prometheus-node-exporter: { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: tier, operator: NotIn, values: [system] }] }] } } } } } }",
        "affinity:",
        "no term of its required node affinity matches",
    ),
    (
        "a narrowed podMonitorSelector (exporters no longer scraped)",
        "monitoring: { nodeExporter: true }",
        "monitoring: { values: { prometheus: { prometheusSpec: { podMonitorSelector: { matchLabels: { team: a } } } } } }",
        "podMonitorSelector",
        "`prometheus.prometheusSpec.podMonitorSelector` may not be added",
    ),
    (
        "hostPID beside the computed values",
        "monitoring: { nodeExporter: true }",
        "monitoring: { values: { prometheus-node-exporter: { hostPID: true } } }",
        "hostPID",
        "`prometheus-node-exporter.hostPID` may not be added",
    ),
    (
        "an extra read-write host mount, judged on the built DaemonSet",
        "monitoring: { nodeExporter: true }",
        "monitoring: { values: { prometheus-node-exporter: { extraHostVolumeMounts: [{ name: etc, hostPath: /etc, mountPath: /host/etc }] } } }",
        "extraHostVolumeMounts",
        "would run with host path `/etc` mounted read-write",
    ),
    (
        "the subchart's own extra volumes (a host path the model does not read)",
        "monitoring: { nodeExporter: true }",
        "monitoring: { values: { prometheus-node-exporter: { extraVolumes: [{ name: root, hostPath: { path: / } }] } } }",
        "extraVolumes",
        "`prometheus-node-exporter.extraVolumes` may not be added",
    ),
    (
        "a global image registry (reaches node-exporter's image)",
        "monitoring: { nodeExporter: true }",
        "monitoring: { values: { global: { imageRegistry: evil.example } } }",
        "imageRegistry",
        "`global.imageRegistry` may not be added",
    ),
    (
        "a renamed node-exporter DaemonSet",
        "monitoring: { nodeExporter: true }",
        "monitoring: { values: { prometheus-node-exporter: { fullnameOverride: other } } }",
        "fullnameOverride",
        "`prometheus-node-exporter.fullnameOverride` may not be added",
    ),
    (
        "another node-exporter image",
        "monitoring: { nodeExporter: true }",
        "monitoring: { values: { prometheus-node-exporter: { image: { registry: evil.example, repository: ne, tag: \"1\" } } } }",
        "image:",
        "would run with image `evil.example/ne:1` instead of the pinned",
    ),
    (
        "a logging-operator affinity",
        "logging: { journald: { units: [kubelet] } }",
        "logging: { journald: { units: [kubelet] }, values: { affinity: { podAntiAffinity: {} } } }",
        "affinity",
        "`affinity` may not be added to the logging-operator values",
    ),
    (
        "an exporter named like the chart's node-exporter DaemonSet",
        "monitoring: { nodeExporter: true }",
        "monitoring: { exporters: [{ name: kube-prometheus-stack-prometheus-node-exporter, image: x:1, port: 9100 }] }",
        "kube-prometheus-stack-prometheus-node-exporter",
        "is a name the monitoring chart gives its own objects",
    ),
    (
        "an empty digest counted as pinned",
        "monitoring: { nodeExporter: true }",
        "monitoring: { exporters: [{ name: smart, image: \"x@sha256:\", port: 9633 }] }",
        "\"x@sha256",
        "a digest is `sha256:` and 64 hex digits",
    ),
    (
        "the node's root mounted by an exporter",
        "monitoring: { nodeExporter: true }",
        "monitoring: { exporters: [{ name: smart, image: x:1, hostMounts: [/], port: 9633 }] }",
        "/]",
        "may not mount this: host path `/` is the node's whole filesystem",
    ),
    (
        "/etc/shadow mounted by an exporter",
        "monitoring: { nodeExporter: true }",
        "monitoring: { exporters: [{ name: smart, image: x:1, hostMounts: [/etc/shadow], port: 9633 }] }",
        "/etc/shadow",
        "holds the node's configuration or credentials",
    ),
    (
        "a process's root mounted by an exporter",
        "monitoring: { nodeExporter: true }",
        "monitoring: { exporters: [{ name: smart, image: x:1, hostMounts: [/proc/1/root], port: 9633 }] }",
        "/proc/1/root",
        "is a process's directory",
    ),
    (
        "the container runtime's socket mounted by an exporter",
        "monitoring: { nodeExporter: true }",
        "monitoring: { exporters: [{ name: smart, image: x:1, hostMounts: [/run/containerd/containerd.sock], port: 9633 }] }",
        "/run/containerd",
        "a container runtime's socket",
    ),
    (
        "kubelet state mounted by an exporter",
        "monitoring: { nodeExporter: true }",
        "monitoring: { exporters: [{ name: smart, image: x:1, hostMounts: [/var/lib/kubelet/pods], port: 9633 }] }",
        "/var/lib/kubelet",
        "is kubelet or container-runtime state",
    ),
    (
        "one host path twice under two spellings",
        "monitoring: { nodeExporter: true }",
        "monitoring: { exporters: [{ name: smart, image: x:1, hostMounts: [/dev, /dev/], port: 9633 }] }",
        "/dev/]",
        "host mount `/dev` is listed twice",
    ),
    (
        "one journald unit twice under two spellings",
        "units: [kubelet]",
        "units: [kubelet, kubelet.service]",
        "kubelet.service",
        "journald unit `kubelet` is listed twice",
    ),
    (
        "a pool labelled as Windows (dropped from coverage)",
        "labels: { tier: system }",
        "labels: { kubernetes.io/os: windows }",
        "{ kubernetes.io/os",
        "pool label `kubernetes.io/os` is set on every node by the kubelet or the cloud",
    ),
    (
        "a label in the kubelet's reserved namespace",
        "labels: { tier: system }",
        "labels: { node-role.kubernetes.io/worker: \"\" }",
        "{ node-role",
        "is in a namespace reserved for Kubernetes, which the kubelet refuses",
    ),
    (
        "a taint value with a comma (a second taint on kind's command line)",
        "value: system, effect",
        "value: \"system,evil=x:NoSchedule\", effect",
        "\"system,evil",
        "invalid taint value",
    ),
    (
        "the same taint key and effect twice",
        "taints: [{ key: dedicated, value: system, effect: NoSchedule }]",
        "taints: [{ key: dedicated, value: system, effect: NoSchedule }, { key: dedicated, value: x, effect: NoSchedule }]",
        "dedicated, value: x",
        "is listed twice",
    ),
    (
        "a toleration `Exists` with a value",
        "monitoring: { nodeExporter: true }",
        "monitoring: { tolerations: [{ key: dedicated, operator: Exists, value: system }] }",
        "system }",
        "`operator: Exists` takes no value",
    ),
    (
        "a toleration without a key that is not `Exists`",
        "monitoring: { nodeExporter: true }",
        "monitoring: { tolerations: [{ value: system }] }",
        "{ value",
        "a toleration without a `key` must be `operator: Exists`",
    ),
    (
        "tolerations that leave a tainted pool without node-exporter",
        "monitoring: { nodeExporter: true }",
        "monitoring: { tolerations: [{ key: other, operator: Exists }] }",
        "dedicated, value: system",
        NE,
    ),
];

fn problems(src: &str) -> Vec<String> {
    match spec::load_str(Path::new("f.yaml"), src) {
        Ok(_) => Vec::new(),
        Err(e) => e.lines(),
    }
}

/// `line:col` (1-based) of the first `token` at or after byte `from` in `src`.
fn locate(src: &str, from: usize, token: &str) -> Option<String> {
    let offset = from + src.get(from..)?.find(token)?;
    let line = src[..offset].matches('\n').count() + 1;
    let col = src[..offset].rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some(format!("{line}:{col}"))
}

#[test]
fn the_base_spec_is_valid() {
    assert_eq!(problems(BASE), Vec::<String>::new());
}

#[test]
fn every_hostile_spec_is_refused_where_it_is_written() {
    let mut failures = Vec::new();
    for (what, from, to, token, needle) in HOSTILE {
        assert_eq!(BASE.matches(from).count(), 1, "{what}: `{from}` must occur once in the base spec");
        let start = BASE.find(from).unwrap_or_default();
        let src = BASE.replacen(from, to, 1);
        // The taint row points before the edit (at the pool's taint), so search from the top.
        let at = locate(&src, start, token).or_else(|| locate(&src, 0, token));
        let Some(at) = at else {
            failures.push(format!("{what}: token `{token}` is not in the edited spec"));
            continue;
        };
        let got = problems(&src);
        let want = format!("f.yaml:{at}: ");
        if !got.iter().any(|p| p.starts_with(&want) && p.contains(needle)) {
            failures.push(format!("{what}: expected a problem at {at} mentioning `{needle}`, got {got:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_refusal_of_an_exporter_mount_says_what_a_hardware_exporter_may_use() {
    let src = BASE.replace(
        "monitoring: { nodeExporter: true }",
        "monitoring: { exporters: [{ name: smart, image: x:1, hostMounts: [/etc, /root, /var/run/docker.sock], port: 9633 }] }",
    );
    let err = spec::load_str(Path::new("f.yaml"), &src).map(|_| ()).unwrap_err();
    let got = err.problems_json();
    let mounts: Vec<&serde_json::Value> =
        got.iter().filter(|p| p["message"].as_str().is_some_and(|m| m.contains("may not mount"))).collect();
    assert_eq!(mounts.len(), 3, "{got:#?}");
    for p in mounts {
        let hint = p["hint"].as_str().unwrap_or_default();
        assert!(hint.contains("/dev, /sys, /proc, /run/udev, /lib/modules"), "{p}");
    }
}

#[test]
fn node_exporter_off_with_no_exporter_is_reported() {
    let src = BASE.replace("monitoring: { nodeExporter: true }", "monitoring: { nodeExporter: false }");
    let fleet = spec::load_str(Path::new("f.yaml"), &src);
    let warnings: Vec<String> =
        fleet.map(|f| f.warnings.iter().map(|w| w.message.clone()).collect()).unwrap_or_default();
    assert!(warnings.iter().any(|w| w.contains("runs nothing")), "{warnings:?}");
}

#[test]
fn values_that_leave_placement_alone_are_accepted() {
    let src = BASE.replace(
        "monitoring: { nodeExporter: true }",
        "monitoring: { values: { prometheus-node-exporter: { resources: { limits: { memory: 64Mi } } }, prometheus: { prometheusSpec: { retention: 10d } } } }",
    );
    assert_eq!(problems(&src), Vec::<String>::new());
}
