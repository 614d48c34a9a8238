//! The provider-neutral description of one cluster: the fleet's template with a placement's
//! overrides already applied. This is the only input a provider's `lower` sees.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Amd64,
    Arm64,
}

impl Arch {
    pub const ALL: [&'static str; 2] = ["amd64", "arm64"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "amd64" => Some(Self::Amd64),
            "arm64" => Some(Self::Arm64),
            _ => None,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Amd64 => "amd64",
            Self::Arm64 => "arm64",
        })
    }
}

/// A machine described by what it offers, never by a cloud's instance-type name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    pub vcpu: u32,
    pub memory_gib: u32,
    pub arch: Arch,
    pub spot: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaintEffect {
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
}

impl TaintEffect {
    pub const ALL: [&'static str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "NoSchedule" => Some(Self::NoSchedule),
            "PreferNoSchedule" => Some(Self::PreferNoSchedule),
            "NoExecute" => Some(Self::NoExecute),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taint {
    pub key: String,
    pub value: Option<String>,
    pub effect: TaintEffect,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolTemplate {
    pub name: String,
    pub machine: Machine,
    pub min: u32,
    pub max: u32,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TolerationOperator {
    Exists,
    Equal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Toleration {
    pub key: Option<String>,
    pub operator: TolerationOperator,
    pub value: Option<String>,
    pub effect: Option<TaintEffect>,
}

impl Toleration {
    /// The toleration Kubernetes uses for "run everywhere": `operator: Exists` with no key.
    pub fn everything() -> Self {
        Self { key: None, operator: TolerationOperator::Exists, value: None, effect: None }
    }

    /// Kubernetes' matching rule (`v1.Toleration.ToleratesTaint`).
    pub fn tolerates(&self, taint: &Taint) -> bool {
        if self.effect.is_some_and(|e| e != taint.effect) {
            return false;
        }
        match (&self.key, self.operator) {
            (None, TolerationOperator::Exists) => true,
            (None, TolerationOperator::Equal) => false,
            (Some(k), _) if *k != taint.key => false,
            (Some(_), TolerationOperator::Exists) => true,
            (Some(_), TolerationOperator::Equal) => self.value == taint.value,
        }
    }
}

/// A Helm chart at a pinned version: Tessera pins one per release; a spec may override it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chart {
    /// An `oci://` reference.
    pub reference: String,
    pub version: String,
    /// `sha256:…` of the chart archive, checked when given.
    pub digest: Option<String>,
}

/// A custom exporter: one privileged-if-asked DaemonSet on every node, scraped through a
/// PodMonitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exporter {
    pub name: String,
    pub image: String,
    pub privileged: bool,
    pub host_mounts: Vec<String>,
    pub port: u16,
    pub path: String,
    /// A Prometheus duration (`30s`).
    pub interval: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Monitoring {
    pub node_exporter: bool,
    pub exporters: Vec<Exporter>,
    pub tolerations: Vec<Toleration>,
    pub remote_write: Option<String>,
    /// Credentials for `remote_write`: references to Secret keys, never values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_write_auth: Option<RemoteWriteAuth>,
    pub chart: Chart,
    /// Extra chart values from the spec, merged under the computed ones.
    pub values: serde_json::Value,
    /// Alert routing and Tessera's own rules; `None` when turned off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerting: Option<crate::Alerting>,
}

/// A key of a Kubernetes Secret in the namespace of the workload that reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
}

/// How Prometheus authenticates to its `remoteWrite` endpoint: from Secret keys, so that no
/// credential is in the spec, the plan or state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RemoteWriteAuth {
    Basic { username: SecretKeyRef, password: SecretKeyRef },
    Bearer { token: SecretKeyRef },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JournalPath {
    /// Chosen per node OS image: persistent `/var/log/journal` or volatile `/run/log/journal`.
    Auto,
    Persistent,
    Volatile,
}

/// Where logs are shipped: one logging-operator output plugin and its settings, as the
/// `ClusterOutput` CRD spells them (`loki: {url: …}`). Credentials are Secret references.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogOutput {
    pub plugin: String,
    pub settings: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logging {
    pub journald_units: Vec<String>,
    pub journal_path: JournalPath,
    pub kubelet_logs: bool,
    pub tolerations: Vec<Toleration>,
    pub output: LogOutput,
    pub chart: Chart,
    pub values: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreServices {
    pub monitoring: Option<Monitoring>,
    pub logging: Option<Logging>,
    /// API-server audit logs: the cloud's control-plane logging (EKS log types, AKS diagnostic
    /// settings), or a file tailer where the log is on a node (kind). Independent of in-cluster
    /// logging, which may be off while the cloud still keeps the audit log.
    pub audit_logs: bool,
}

/// Where a cluster's nodes live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Network {
    /// Tessera creates the network (a VPC, VNet…) from this IPv4 CIDR, one subnet per zone.
    Managed { cidr: String },
    /// The network exists already and is not Tessera's: its id and the subnets to use.
    Existing { id: String, subnets: Vec<String> },
}

/// Who reaches the cluster's Kubernetes API, and from where. Tessera itself is one of them: the
/// core services are installed through this API from wherever `apply` runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiAccess {
    /// The API has an address on the internet.
    pub public: bool,
    /// The source ranges that may use the public address. [`ApiAccess::INTERNET`] is everyone.
    pub allowed_cidrs: Vec<String>,
    /// The API has an address inside the cluster's network, so that nodes and runners there
    /// reach it without leaving the network.
    pub private: bool,
}

impl ApiAccess {
    /// The whole IPv4 internet, as every cloud spells "no restriction".
    pub const INTERNET: &'static str = "0.0.0.0/0";

    /// Reachable from anywhere on the internet: the allowed ranges together (`0.0.0.0/1` and
    /// `128.0.0.0/1` are everyone too).
    pub fn open_to_internet(&self) -> bool {
        self.public_reach() == 1u64 << 32
    }

    /// How many IPv4 addresses may use the public address: the size of the allowed ranges'
    /// union (0 without a public address).
    pub fn public_reach(&self) -> u64 {
        if !self.public {
            return 0;
        }
        let nets: Vec<ipnet::Ipv4Net> = self.allowed_cidrs.iter().filter_map(|c| c.parse().ok()).collect();
        ipnet::Ipv4Net::aggregate(&nets).iter().map(|n| 1u64 << (32 - u32::from(n.prefix_len()))).sum()
    }

    /// The ranges the public address is limited to, or none when it is open (or absent): the
    /// form every cloud's "authorized networks" list takes.
    pub fn restricted_to(&self) -> Vec<String> {
        if !self.public || self.open_to_internet() {
            return Vec::new();
        }
        // Canonical (`10.0.0.0/8`, never `010.0.0.0/08`), as the clouds report ranges back.
        let mut cidrs: Vec<String> = self
            .allowed_cidrs
            .iter()
            .map(|c| c.parse::<ipnet::Ipv4Net>().map_or_else(|_| c.clone(), |n| n.trunc().to_string()))
            .collect();
        cidrs.sort();
        cidrs.dedup();
        cidrs
    }
}

impl Default for ApiAccess {
    /// Every cloud's own default: a public address open to all, and a private one.
    fn default() -> Self {
        Self { public: true, allowed_cidrs: vec![Self::INTERNET.to_string()], private: true }
    }
}

/// One placement's cluster, ready to lower.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterTemplate {
    pub fleet: String,
    pub placement: String,
    pub region: String,
    pub zones: Vec<String>,
    pub kubernetes_version: String,
    pub network: Network,
    #[serde(default)]
    pub api_access: ApiAccess,
    pub pools: Vec<PoolTemplate>,
    pub core_services: CoreServices,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, value: Option<&str>, effect: TaintEffect) -> Taint {
        Taint { key: key.into(), value: value.map(Into::into), effect }
    }

    #[test]
    fn toleration_matching_follows_kubernetes() {
        let t = taint("dedicated", Some("system"), TaintEffect::NoSchedule);
        assert!(Toleration::everything().tolerates(&t));
        let exists = Toleration {
            key: Some("dedicated".into()),
            operator: TolerationOperator::Exists,
            value: None,
            effect: None,
        };
        assert!(exists.tolerates(&t));
        let equal_wrong = Toleration {
            key: Some("dedicated".into()),
            operator: TolerationOperator::Equal,
            value: Some("gpu".into()),
            effect: None,
        };
        assert!(!equal_wrong.tolerates(&t));
        let wrong_effect = Toleration {
            key: Some("dedicated".into()),
            operator: TolerationOperator::Exists,
            value: None,
            effect: Some(TaintEffect::NoExecute),
        };
        assert!(!wrong_effect.tolerates(&t));
    }
}
