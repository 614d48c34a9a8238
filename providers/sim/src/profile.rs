//! The clouds the sim imitates: their catalogs and how long their operations take.
//!
//! Durations are wall-clock figures from public measurements, so that scheduling decisions made
//! against the sim (which control plane to start first) are the ones that matter on real clouds:
//! - EKS control plane: about 10 min. AWS's CreateCluster reference only says "several minutes";
//!   an independent run across 21 regions measured 13–16 min
//!   (easontechtalk.com, "Unofficial EKS Cluster Creation Performance"). We use the design
//!   brief's 10 min as the typical case.
//! - GKE: about 4 min (kubedex.com, "Microsoft AKS vs Google GKE": 3 min 50 s average create).
//! - AKS: about 6 min (Microsoft's own 5–6 min claim, reported in kubedex.com,
//!   "Is Azure Kubernetes (AKS) any less terrible?").
//! - Managed node pools: 3–5 min on all three.
//! - kind: tens of seconds on a laptop.

use std::time::Duration;

use tessera_provider_api::{Arch, Catalog, MachineCatalog, MachineType, Operation, Region};

/// The resource kinds every profile lowers to, in dependency order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Network,
    Cluster,
    NodePool,
}

impl Shape {
    pub fn from_rtype(rtype: &str) -> Option<Self> {
        match rtype.rsplit('.').next()? {
            "network" => Some(Self::Network),
            "cluster" => Some(Self::Cluster),
            "nodepool" => Some(Self::NodePool),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Profile {
    pub name: &'static str,
    pub catalog: Catalog,
    /// create, update, delete durations per shape.
    durations: [[Duration; 3]; 3],
}

const fn mins(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}
const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

impl Profile {
    pub const NAMES: [&'static str; 4] = ["eks", "aks", "gke", "kind"];

    pub fn named(name: &str) -> Option<Self> {
        match name {
            "eks" => Some(Self::eks()),
            "aks" => Some(Self::aks()),
            "gke" => Some(Self::gke()),
            "kind" => Some(Self::kind()),
            _ => None,
        }
    }

    pub fn duration(&self, shape: Shape, op: Operation) -> Duration {
        let s = match shape {
            Shape::Network => 0,
            Shape::Cluster => 1,
            Shape::NodePool => 2,
        };
        let o = match op {
            Operation::Create => 0,
            Operation::Update => 1,
            Operation::Delete => 2,
        };
        self.durations[s][o]
    }

    pub fn eks() -> Self {
        let types = [
            ("m6i.large", 2, 8, Arch::Amd64),
            ("m6i.xlarge", 4, 16, Arch::Amd64),
            ("m6i.2xlarge", 8, 32, Arch::Amd64),
            ("m6i.4xlarge", 16, 64, Arch::Amd64),
            ("c6i.xlarge", 4, 8, Arch::Amd64),
            ("c6i.2xlarge", 8, 16, Arch::Amd64),
            ("r6i.xlarge", 4, 32, Arch::Amd64),
            ("r6i.2xlarge", 8, 64, Arch::Amd64),
            ("t3.medium", 2, 4, Arch::Amd64),
            ("m7g.large", 2, 8, Arch::Arm64),
            ("m7g.xlarge", 4, 16, Arch::Arm64),
            ("m7g.2xlarge", 8, 32, Arch::Arm64),
            ("c7g.xlarge", 4, 8, Arch::Arm64),
        ];
        let regions = [
            ("us-east-1", &["a", "b", "c", "d", "f"][..]),
            ("us-east-2", &["a", "b", "c"]),
            ("us-west-2", &["a", "b", "c", "d"]),
            ("eu-west-1", &["a", "b", "c"]),
            ("eu-west-2", &["a", "b", "c"]),
            ("eu-central-1", &["a", "b", "c"]),
            ("eu-north-1", &["a", "b", "c"]),
            ("ap-southeast-1", &["a", "b", "c"]),
            ("ap-northeast-1", &["a", "c", "d"]),
        ];
        Self {
            name: "eks",
            catalog: catalog("eks", &regions, |r, z| format!("{r}{z}"), &types, true),
            durations: [[secs(40), secs(20), secs(60)], [mins(10), mins(8), mins(6)], [mins(4), mins(3), mins(4)]],
        }
    }

    pub fn aks() -> Self {
        let types = [
            ("Standard_D2s_v5", 2, 8, Arch::Amd64),
            ("Standard_D4s_v5", 4, 16, Arch::Amd64),
            ("Standard_D8s_v5", 8, 32, Arch::Amd64),
            ("Standard_D16s_v5", 16, 64, Arch::Amd64),
            ("Standard_F4s_v2", 4, 8, Arch::Amd64),
            ("Standard_F8s_v2", 8, 16, Arch::Amd64),
            ("Standard_E4s_v5", 4, 32, Arch::Amd64),
            ("Standard_E8s_v5", 8, 64, Arch::Amd64),
            ("Standard_B2s", 2, 4, Arch::Amd64),
            ("Standard_D2ps_v5", 2, 8, Arch::Arm64),
            ("Standard_D4ps_v5", 4, 16, Arch::Arm64),
            ("Standard_D8ps_v5", 8, 32, Arch::Arm64),
        ];
        let three = &["1", "2", "3"][..];
        let regions = [
            ("westeurope", three),
            ("northeurope", three),
            ("germanywestcentral", three),
            ("swedencentral", three),
            ("uksouth", three),
            ("eastus", three),
            ("eastus2", three),
            ("westus2", three),
            ("southeastasia", three),
        ];
        Self {
            name: "aks",
            catalog: catalog("aks", &regions, |_, z| z.to_string(), &types, true),
            durations: [[secs(30), secs(20), secs(45)], [mins(6), mins(5), mins(5)], [mins(4), mins(3), mins(3)]],
        }
    }

    pub fn gke() -> Self {
        let types = [
            ("e2-standard-2", 2, 8, Arch::Amd64),
            ("e2-standard-4", 4, 16, Arch::Amd64),
            ("e2-standard-8", 8, 32, Arch::Amd64),
            ("e2-standard-16", 16, 64, Arch::Amd64),
            ("n2-highcpu-8", 8, 8, Arch::Amd64),
            ("n2-highcpu-16", 16, 16, Arch::Amd64),
            ("n2-highmem-4", 4, 32, Arch::Amd64),
            ("n2-highmem-8", 8, 64, Arch::Amd64),
            ("e2-medium", 2, 4, Arch::Amd64),
            ("t2a-standard-2", 2, 8, Arch::Arm64),
            ("t2a-standard-4", 4, 16, Arch::Arm64),
            ("t2a-standard-8", 8, 32, Arch::Arm64),
        ];
        let regions = [
            ("europe-west4", &["a", "b", "c"][..]),
            ("europe-west1", &["b", "c", "d"]),
            ("europe-north1", &["a", "b", "c"]),
            ("us-central1", &["a", "b", "c", "f"]),
            ("us-east1", &["b", "c", "d"]),
            ("us-west1", &["a", "b", "c"]),
            ("asia-southeast1", &["a", "b", "c"]),
        ];
        Self {
            name: "gke",
            catalog: catalog("gke", &regions, |r, z| format!("{r}-{z}"), &types, true),
            durations: [[secs(30), secs(20), secs(40)], [mins(4), mins(4), mins(3)], [mins(3), mins(3), mins(3)]],
        }
    }

    pub fn kind() -> Self {
        Self {
            name: "kind",
            catalog: Catalog {
                provider: "kind".into(),
                regions: Vec::new(),
                machines: MachineCatalog::Any { name: "kindest/node".into() },
                versions: supported_versions(),
                supports_spot: false,
            },
            durations: [[secs(2), secs(1), secs(2)], [secs(40), secs(30), secs(10)], [secs(20), secs(15), secs(10)]],
        }
    }
}

fn supported_versions() -> Vec<String> {
    ["1.29", "1.30", "1.31", "1.32", "1.33"].iter().map(|v| v.to_string()).collect()
}

fn catalog(
    provider: &str,
    regions: &[(&str, &[&str])],
    zone_name: impl Fn(&str, &str) -> String,
    types: &[(&str, u32, u32, Arch)],
    supports_spot: bool,
) -> Catalog {
    Catalog {
        provider: provider.into(),
        regions: regions
            .iter()
            .map(|(r, zs)| Region { name: r.to_string(), zones: zs.iter().map(|z| zone_name(r, z)).collect() })
            .collect(),
        machines: MachineCatalog::Types(
            types
                .iter()
                .map(|(n, c, m, a)| MachineType { name: n.to_string(), vcpu: *c, memory_gib: *m, arch: *a })
                .collect(),
        ),
        versions: supported_versions(),
        supports_spot,
    }
}
