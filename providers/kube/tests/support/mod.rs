//! What the tests of the core services share: a cluster with every core service on, the real
//! tools from Debian's packages, and scratch directories.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{Value, json};
use tessera_kube::charts;
use tessera_provider_api::{
    Alerting, Arch, ClusterTemplate, CoreServices, Exporter, JournalPath, LogOutput, Logging, Machine, Monitoring,
    Network, PoolTemplate, Taint, TaintEffect, Toleration,
};

/// A cluster with every core service on: two pools (one tainted `NoExecute`), node-exporter and
/// a custom exporter, logging to `output`, and `alerting`.
pub fn cluster(output: LogOutput, alerting: Option<Alerting>) -> ClusterTemplate {
    let pool = |name: &str, taints: Vec<Taint>| PoolTemplate {
        name: name.into(),
        machine: Machine { vcpu: 4, memory_gib: 16, arch: Arch::Amd64, spot: false },
        min: 1,
        max: 3,
        labels: [("tessera.dev/pool".to_string(), name.to_string())].into(),
        taints,
    };
    ClusterTemplate {
        fleet: "core".into(),
        placement: "p".into(),
        region: "eu-west-1".into(),
        zones: vec![],
        kubernetes_version: "1.31".into(),
        network: Network::Managed { cidr: "10.0.0.0/16".into() },
        api_access: Default::default(),
        pools: vec![
            pool("system", vec![]),
            pool("gpu", vec![Taint { key: "gpu".into(), value: None, effect: TaintEffect::NoExecute }]),
        ],
        core_services: CoreServices {
            monitoring: Some(Monitoring {
                node_exporter: true,
                exporters: vec![Exporter {
                    name: "smartctl".into(),
                    image: "quay.io/prometheuscommunity/smartctl-exporter:v0.14.0".into(),
                    privileged: true,
                    host_mounts: vec!["/dev".into(), "/run/udev".into()],
                    port: 9633,
                    path: "/metrics".into(),
                    interval: "30s".into(),
                }],
                tolerations: vec![Toleration::everything()],
                remote_write: None,
                remote_write_auth: None,
                chart: charts::kube_prometheus_stack(),
                values: json!({}),
                alerting,
            }),
            logging: Some(Logging {
                journald_units: vec!["containerd".into()],
                journal_path: JournalPath::Auto,
                kubelet_logs: true,
                tolerations: vec![Toleration::everything()],
                output,
                chart: charts::logging_operator(),
                values: json!({}),
            }),
            audit_logs: true,
        },
    }
}

/// Logs collected and dropped: for tests about something else.
pub fn nullout() -> LogOutput {
    LogOutput { plugin: "nullout".into(), settings: json!({}) }
}

/// The path of a tool from a Debian package; a missing tool fails the test and names the package.
pub fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("`{name}` not found on PATH: install the Debian package `{package}` (apt-get install {package})")
    })
}

/// A directory removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tessera-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }

    /// `v` as JSON (which is YAML too) in a file of the directory.
    pub fn write(&self, name: &str, v: &Value) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, serde_json::to_string_pretty(v).expect("json")).expect("write");
        p
    }

    pub fn dir(&self, name: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::create_dir_all(&p).expect("dir");
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
