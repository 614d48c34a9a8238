//! What each cloud offers: regions and zones, instance types, Kubernetes versions. One table per
//! cloud, kept here so that the real backends and the sim's imitations of them agree.

use crate::{Arch, Catalog, MachineCatalog, MachineType, Region};

/// Kubernetes minor versions the managed services offer in standard support.
pub fn supported_versions() -> Vec<String> {
    ["1.29", "1.30", "1.31", "1.32", "1.33"].iter().map(|v| v.to_string()).collect()
}

/// EKS: instance types, general-purpose families first (the first exact match wins).
pub fn eks() -> Catalog {
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
    table("eks", &regions, |r, z| format!("{r}{z}"), &types, true)
}

/// AKS: instance types, general-purpose families first (the first exact match wins).
pub fn aks() -> Catalog {
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
    table("aks", &regions, |_, z| z.to_string(), &types, true)
}

/// GKE: instance types, general-purpose families first (the first exact match wins).
pub fn gke() -> Catalog {
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
    table("gke", &regions, |r, z| format!("{r}-{z}"), &types, true)
}

/// kind runs nodes as containers: any size, no regions, no spot.
pub fn kind() -> Catalog {
    Catalog {
        provider: "kind".into(),
        regions: Vec::new(),
        machines: MachineCatalog::Any { name: "kindest/node".into() },
        versions: supported_versions(),
        supports_spot: false,
    }
}

fn table(
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

/// A cloud's documented node limits, checked by each backend's `validate` (and the sim's, for the
/// cloud a profile imitates) against the pools' `scale.max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLimits {
    pub cloud: &'static str,
    /// Nodes one pool may have (in each zone, when `per_zone`).
    pub per_pool: u32,
    pub per_zone: bool,
    /// Nodes one cluster may have, every pool together.
    pub per_cluster: Option<u32>,
    /// Where the numbers are documented.
    pub source: &'static str,
}

/// What a cloud allows of a cluster API's access rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiAccessLimits {
    pub cloud: &'static str,
    /// Source ranges the public address may be limited to.
    pub max_cidrs: usize,
    /// Where the number is documented.
    pub source: &'static str,
}

/// EKS: 40 public access CIDR ranges per cluster.
pub const EKS_API: ApiAccessLimits = ApiAccessLimits {
    cloud: "EKS",
    max_cidrs: 40,
    source: "https://docs.aws.amazon.com/eks/latest/userguide/service-quotas.html",
};

/// AKS: 200 authorized IP ranges.
pub const AKS_API: ApiAccessLimits = ApiAccessLimits {
    cloud: "AKS",
    max_cidrs: 200,
    source: "https://learn.microsoft.com/en-us/azure/aks/api-server-authorized-ip-ranges",
};

/// GKE: 50 authorized networks on the public endpoint (`MasterAuthorizedNetworksConfig`).
pub const GKE_API: ApiAccessLimits = ApiAccessLimits {
    cloud: "GKE",
    max_cidrs: 50,
    source: "https://cloud.google.com/kubernetes-engine/docs/how-to/authorized-networks",
};

/// EKS service quotas: 450 nodes per managed node group (a default quota, adjustable); no
/// per-cluster node count is documented.
pub const EKS_NODES: NodeLimits = NodeLimits {
    cloud: "EKS",
    per_pool: 450,
    per_zone: false,
    per_cluster: None,
    source: "https://docs.aws.amazon.com/eks/latest/userguide/service-quotas.html",
};

/// AKS quotas: 1,000 nodes per node pool (Virtual Machine Scale Sets), 5,000 per cluster.
pub const AKS_NODES: NodeLimits = NodeLimits {
    cloud: "AKS",
    per_pool: 1000,
    per_zone: false,
    per_cluster: Some(5000),
    source: "https://learn.microsoft.com/en-us/azure/aks/quotas-skus-regions",
};

/// GKE limits (Standard): 1,000 nodes per node pool zone, 15,000 per cluster.
pub const GKE_NODES: NodeLimits = NodeLimits {
    cloud: "GKE",
    per_pool: 1000,
    per_zone: true,
    per_cluster: Some(15_000),
    source: "https://cloud.google.com/kubernetes-engine/quotas",
};
