//! A placement's cluster template → EKS resources:
//! VPC, one subnet per zone, the cluster and node IAM roles, the cluster, one managed node group
//! per pool.
//!
//! Resources point at each other through references to declared outputs, which are owned
//! fields like any other: the plan compares their resolved values with what `read` reports, and
//! the executor resolves them just before each call.
//!
//! Lowering writes values and references only: each type's outputs, policies and replacement
//! rules are its schema's ([`crate::types`]), which the engine stamps on every spec. For
//! reference:
//!
//! | resource | references | outputs | replaced |
//! |---|---|---|---|
//! | VPC | | `id` | create first |
//! | subnet | `vpcId` → VPC `id` | `id` | create first |
//! | role | | `id` (the name), `arn` | destroy first: names are global |
//! | cluster | `roleArn` → cluster role `arn`; `subnetIds` → subnets' `id` | `name`, `endpoint`, `certificateAuthority`, `arn` | destroy first: names are unique per region |
//! | node group | `cluster` → cluster `name`; `nodeRoleArn` → node role `arn`; `subnetIds` → subnets' `id` | `id` | create first, under a new name |
//!
//! A change of a referenced value (a new subnet id, a new role ARN) forces replacement, and so
//! does the replacement of anything a resource depends on. With `network.existing` the subnet
//! ids are given, plain values, and nothing depends on a VPC or subnets of ours. Lists are in a
//! stable order that `read` reproduces: subnets in zone order (EKS keeps the order it was given),
//! policies and taints sorted.

use std::net::Ipv4Addr;

use serde_json::{Value, json};
use tessera_provider_api::{
    Address, ApiAccess, Arch, Catalog, ClusterTemplate, KubeAccess, Network, OUTPUT_ID, ProviderRef, ResourceSpec,
    TAG_ADDRESS, TAG_FLEET, TaintEffect,
};

/// IAM role names are at most 64 characters.
pub const MAX_ROLE_NAME: usize = 64;

/// The name of one of a cluster's IAM roles: `{cluster}-{role}`, or, when that is longer than IAM
/// allows, as much of the cluster name as fits, a hash of the full name, and the role. The same
/// every run, distinct per cluster, and never too long for AWS.
pub fn role_name(cluster: &str, role: &str) -> String {
    let full = format!("{cluster}-{role}");
    if full.len() <= MAX_ROLE_NAME {
        return full;
    }
    let hash = tessera_provider_api::backend::short_hash(&[&full], 8);
    let keep = MAX_ROLE_NAME.saturating_sub(role.len() + hash.len() + 2);
    let prefix: String = cluster.chars().take(keep).collect();
    format!("{}-{hash}-{role}", prefix.trim_end_matches('-'))
}

pub use crate::names::{CLUSTER, NODEGROUP, ROLE, SUBNET, VPC};

/// Control-plane logs shipped when the fleet ships audit logs (infrastructure logging).
pub const AUDIT_LOG_TYPES: [&str; 3] = ["api", "audit", "authenticator"];

pub const CLUSTER_POLICIES: [&str; 1] = ["arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"];
pub const NODE_POLICIES: [&str; 3] = [
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
];

pub fn tags(fleet: &str, address: &Address) -> Value {
    json!({ TAG_FLEET: fleet, TAG_ADDRESS: address.to_string() })
}

/// `index`-th /20 (or prefix+4) slice of the network CIDR, one per zone.
pub fn subnet_cidr(network: &str, index: u32) -> Option<String> {
    let (ip, len) = network.split_once('/')?;
    let base = u32::from(ip.parse::<Ipv4Addr>().ok()?);
    let len: u32 = len.parse().ok()?;
    let sub = len + 4;
    if sub > 28 || index >= 16 {
        return None;
    }
    let size = 1u32 << (32 - sub);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Some(format!("{}/{sub}", Ipv4Addr::from((base & mask) + index * size)))
}

/// The AMI family for an arch.
pub fn ami_type(arch: Arch) -> &'static str {
    match arch {
        Arch::Amd64 => "AL2023_x86_64_STANDARD",
        Arch::Arm64 => "AL2023_ARM_64_STANDARD",
    }
}

pub fn taint_effect(e: TaintEffect) -> &'static str {
    match e {
        TaintEffect::NoSchedule => "NO_SCHEDULE",
        TaintEffect::PreferNoSchedule => "PREFER_NO_SCHEDULE",
        TaintEffect::NoExecute => "NO_EXECUTE",
    }
}

/// A short, stable suffix from the fields that force a node group's replacement, so that the
/// replacement gets a new name and can exist beside the old one (create before destroy).
fn name_suffix(parts: &[&str]) -> String {
    // FNV-1a: tiny, stable across versions and platforms.
    let mut h: u32 = 0x811c_9dc5;
    for b in parts.join("|").bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{:06x}", h & 0xff_ffff)
}

/// The subnets a cluster and its node groups use.
enum Subnets {
    /// Ours: references to each subnet's id, in zone order.
    Managed(Vec<Address>),
    /// An existing network's, given by id.
    Existing(Vec<String>),
}

impl Subnets {
    /// Sets `subnetIds`; moving to other subnets means replacement.
    fn apply(&self, spec: ResourceSpec) -> ResourceSpec {
        match self {
            Self::Managed(addresses) => spec.attr_refs("subnetIds", addresses, OUTPUT_ID),
            Self::Existing(ids) => spec.attr("subnetIds", json!(ids)),
        }
    }
}

/// EKS's `publicAccessCidrs`: the allowed ranges, or EKS's own default (everyone) when the
/// address is open or absent, as EKS reports it then.
fn public_access_cidrs(access: &ApiAccess) -> Vec<String> {
    match access.restricted_to() {
        open if open.is_empty() => vec![ApiAccess::INTERNET.to_string()],
        ranges => ranges,
    }
}

pub fn lower(catalog: &Catalog, cluster: &ClusterTemplate, provider: &ProviderRef) -> Vec<ResourceSpec> {
    let p = cluster.placement.as_str();
    let fleet = cluster.fleet.as_str();
    let cluster_name = format!("{fleet}-{p}");
    let mut out = Vec::new();
    let subnets = match &cluster.network {
        Network::Managed { cidr } => {
            let vpc = Address::new(p, VPC, "main");
            out.push(
                ResourceSpec::new(vpc.clone(), provider.clone())
                    .attr("cidr", cidr.clone())
                    .attr("tags", tags(fleet, &vpc)),
            );
            let mut addresses = Vec::new();
            for (i, zone) in cluster.zones.iter().enumerate() {
                let address = Address::new(p, SUBNET, zone.clone());
                let sub = subnet_cidr(cidr, i as u32).unwrap_or_default();
                out.push(
                    ResourceSpec::new(address.clone(), provider.clone())
                        .attr("cidr", sub)
                        .attr("zone", zone.clone())
                        .attr_ref("vpcId", &vpc, OUTPUT_ID)
                        .attr("tags", tags(fleet, &address)),
                );
                addresses.push(address);
            }
            Subnets::Managed(addresses)
        }
        Network::Existing { subnets: ids, .. } => Subnets::Existing(ids.clone()),
    };

    let role = |name: &str, service: &str, policies: &[&str]| {
        let address = Address::new(p, ROLE, name);
        let mut policies: Vec<&str> = policies.to_vec();
        policies.sort_unstable();
        ResourceSpec::new(address.clone(), provider.clone())
            .attr("name", role_name(&cluster_name, name))
            .attr("service", service)
            .attr("policies", policies)
            .attr("tags", tags(fleet, &address))
    };
    let cluster_role = role("cluster", "eks.amazonaws.com", &CLUSTER_POLICIES);
    let node_role = role("node", "ec2.amazonaws.com", &NODE_POLICIES);
    let (cluster_role_addr, node_role_addr) = (cluster_role.address.clone(), node_role.address.clone());
    out.push(cluster_role);
    out.push(node_role);

    let control_plane = Address::new(p, CLUSTER, "main");
    let log_types: Vec<&str> = if cluster.core_services.audit_logs { AUDIT_LOG_TYPES.to_vec() } else { Vec::new() };
    let cp = ResourceSpec::new(control_plane.clone(), provider.clone())
        .attr("name", cluster_name.clone())
        .attr("version", cluster.kubernetes_version.clone())
        .attr("logTypes", log_types)
        .attr("endpointPublicAccess", cluster.api_access.public)
        .attr("endpointPrivateAccess", cluster.api_access.private)
        .attr("publicAccessCidrs", public_access_cidrs(&cluster.api_access))
        .attr_ref("roleArn", &cluster_role_addr, "arn")
        .attr("tags", tags(fleet, &control_plane));
    out.push(subnets.apply(cp));

    for pool in &cluster.pools {
        let address = Address::new(p, NODEGROUP, pool.name.clone());
        let instance_type = catalog.machine_type(&pool.machine).unwrap_or_else(|| "unmapped".into());
        let ami = ami_type(pool.machine.arch);
        let capacity = if pool.machine.spot { "SPOT" } else { "ON_DEMAND" };
        let mut taints: Vec<Value> = pool
            .taints
            .iter()
            .map(|t| json!({ "key": t.key, "value": t.value.clone().unwrap_or_default(), "effect": taint_effect(t.effect) }))
            .collect();
        taints.sort_by_key(|t| t.to_string());
        let ng = ResourceSpec::new(address.clone(), provider.clone())
            .attr_ref("cluster", &control_plane, "name")
            .attr("name", format!("{}-{}", pool.name, name_suffix(&[&instance_type, ami, capacity])))
            .attr("instanceType", instance_type)
            .attr("amiType", ami)
            .attr("capacityType", capacity)
            .attr("minSize", pool.min)
            .attr("maxSize", pool.max)
            .attr("desiredSize", pool.min.max(1).min(pool.max))
            .attr("labels", json!(pool.labels))
            .attr("taints", taints)
            .attr("version", cluster.kubernetes_version.clone())
            .attr_ref("nodeRoleArn", &node_role_addr, "arn")
            .attr("tags", tags(fleet, &address));
        out.push(subnets.apply(ng));
    }
    out
}

/// The EKS cluster seen from inside: the `kube` provider, authenticating with
/// `aws eks get-token` (in the placement's profile, if it names one), once the node groups exist.
pub fn kube_access(cluster: &ClusterTemplate, provider: &ProviderRef) -> KubeAccess {
    let p = cluster.placement.as_str();
    let after = cluster.pools.iter().map(|pool| Address::new(p, NODEGROUP, pool.name.clone())).collect();
    tessera_kube::contract::access(Address::new(p, CLUSTER, "main"), provider, tessera_kube::contract::AUTH_AWS, after)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tessera_provider_api::reference::references;
    use tessera_provider_api::{CoreServices, FieldPolicy, Machine, PoolTemplate, Replacement, catalogs};

    use super::*;

    fn template(network: Network) -> ClusterTemplate {
        ClusterTemplate {
            fleet: "f".into(),
            placement: "eu".into(),
            region: "eu-west-1".into(),
            zones: vec!["eu-west-1a".into(), "eu-west-1b".into()],
            kubernetes_version: "1.31".into(),
            network,
            api_access: Default::default(),
            pools: vec![PoolTemplate {
                name: "system".into(),
                machine: Machine { vcpu: 4, memory_gib: 16, arch: Arch::Amd64, spot: false },
                min: 1,
                max: 3,
                labels: BTreeMap::new(),
                taints: Vec::new(),
            }],
            core_services: CoreServices { monitoring: None, logging: None, audit_logs: true },
        }
    }

    /// Lowered and stamped with each type's schema, as the engine does.
    fn lower(catalog: &Catalog, cluster: &ClusterTemplate, provider: &ProviderRef) -> Vec<ResourceSpec> {
        let types = crate::types::types();
        let mut specs = super::lower(catalog, cluster, provider);
        for spec in &mut specs {
            types.schema(spec.rtype()).unwrap_or_else(|| panic!("no schema for {}", spec.rtype())).stamp(spec);
        }
        specs
    }

    fn by_address(specs: &[ResourceSpec], address: &str) -> ResourceSpec {
        specs.iter().find(|s| s.address.to_string() == address).cloned().unwrap_or_else(|| panic!("no {address}"))
    }

    fn refs(spec: &ResourceSpec, key: &str) -> Vec<String> {
        assert!(spec.ref_attrs.contains(key), "{key} is not a referencing attribute");
        references(&spec.attrs[key]).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn resources_reference_declared_outputs_and_depend_on_their_sources() {
        let specs = lower(&catalogs::eks(), &template(Network::Managed { cidr: "10.0.0.0/16".into() }), &provider());
        for spec in &specs {
            for r in spec.references() {
                let source = by_address(&specs, &r.address.to_string());
                assert!(source.has_output(&r.output), "{} references undeclared {r}", spec.address);
                assert!(spec.deps.contains(&r.address), "{} does not depend on {}", spec.address, r.address);
            }
        }
        let subnet = by_address(&specs, "eu/eks.subnet/eu-west-1a");
        assert_eq!(refs(&subnet, "vpcId"), ["eu/eks.vpc/main#id"]);
        let cluster = by_address(&specs, "eu/eks.cluster/main");
        assert_eq!(refs(&cluster, "roleArn"), ["eu/eks.role/cluster#arn"]);
        assert_eq!(refs(&cluster, "subnetIds"), ["eu/eks.subnet/eu-west-1a#id", "eu/eks.subnet/eu-west-1b#id"]);
        assert_eq!(cluster.replacement, Replacement::DestroyBeforeCreate);
        let ng = by_address(&specs, "eu/eks.nodegroup/system");
        assert_eq!(refs(&ng, "cluster"), ["eu/eks.cluster/main#name"]);
        assert_eq!(refs(&ng, "nodeRoleArn"), ["eu/eks.role/node#arn"]);
        assert_eq!(refs(&ng, "subnetIds"), refs(&cluster, "subnetIds"), "the same subnets, in zone order");
        assert_eq!(ng.replacement, Replacement::CreateBeforeDestroy, "a new name can exist beside the old");
        for field in ["cluster", "nodeRoleArn", "subnetIds"] {
            assert!(ng.replace_on.iter().any(|f| f == field), "{field}");
            assert_eq!(ng.policy_of(field), FieldPolicy::Owned, "{field}");
        }
        for role in ["eu/eks.role/cluster", "eu/eks.role/node"] {
            assert_eq!(by_address(&specs, role).replacement, Replacement::DestroyBeforeCreate, "{role}");
        }
    }

    #[test]
    fn iam_role_names_that_would_be_too_long_are_shortened_never_sent_long() {
        let mut t = template(Network::Managed { cidr: "10.0.0.0/16".into() });
        t.fleet = "a-rather-long-fleet-name-for-core-services".into();
        t.placement = "europe-west-production-1".into();
        assert!(format!("{}-{}-cluster", t.fleet, t.placement).len() > 64, "the plain name would not fit");
        let specs = lower(&catalogs::eks(), &t, &provider());
        for role in ["cluster", "node"] {
            let spec = by_address(&specs, &format!("europe-west-production-1/eks.role/{role}"));
            let name = spec.attrs["name"].as_str().unwrap_or_default().to_string();
            assert!(name.len() <= 64 && name.ends_with(role), "{name} ({} characters)", name.len());
        }
    }

    #[test]
    fn an_existing_network_gives_plain_subnet_ids() {
        let network = Network::Existing { id: "vpc-1".into(), subnets: vec!["subnet-b".into(), "subnet-a".into()] };
        let specs = lower(&catalogs::eks(), &template(network), &provider());
        assert!(specs.iter().all(|s| s.rtype() != VPC && s.rtype() != SUBNET));
        for address in ["eu/eks.cluster/main", "eu/eks.nodegroup/system"] {
            let spec = by_address(&specs, address);
            assert_eq!(spec.attrs["subnetIds"], json!(["subnet-b", "subnet-a"]), "as given");
            assert!(spec.replace_on.iter().any(|f| f == "subnetIds"));
            assert!(spec.deps.iter().all(|d| d.rtype != SUBNET));
        }
    }

    fn provider() -> ProviderRef {
        ProviderRef::new("eks", "eu-west-1")
    }

    #[test]
    fn subnets_are_consecutive_slices_of_the_network() {
        assert_eq!(subnet_cidr("10.0.0.0/16", 0).as_deref(), Some("10.0.0.0/20"));
        assert_eq!(subnet_cidr("10.0.0.0/16", 2).as_deref(), Some("10.0.32.0/20"));
        assert_eq!(subnet_cidr("10.40.0.0/16", 1).as_deref(), Some("10.40.16.0/20"));
        assert_eq!(subnet_cidr("10.0.0.0/26", 0), None);
    }

    #[test]
    fn node_group_names_change_exactly_when_a_replacing_field_does() {
        let a = name_suffix(&["m6i.xlarge", "AL2023_x86_64_STANDARD", "ON_DEMAND"]);
        assert_eq!(a, name_suffix(&["m6i.xlarge", "AL2023_x86_64_STANDARD", "ON_DEMAND"]));
        assert_ne!(a, name_suffix(&["m6i.2xlarge", "AL2023_x86_64_STANDARD", "ON_DEMAND"]));
        assert_ne!(a, name_suffix(&["m6i.xlarge", "AL2023_x86_64_STANDARD", "SPOT"]));
    }

    #[test]
    fn role_names_always_fit_iam() {
        assert_eq!(role_name("core-aws", "cluster"), "core-aws-cluster");
        let long = format!("{}-{}", "f".repeat(40), "p".repeat(30));
        let a = role_name(&long, "cluster");
        assert!(a.len() <= MAX_ROLE_NAME, "{a} is {} characters", a.len());
        assert!(a.ends_with("-cluster") && a.starts_with("ffff"), "{a}");
        assert_eq!(a, role_name(&long, "cluster"), "deterministic");
        let other = format!("{}-{}", "f".repeat(40), "q".repeat(30));
        assert_ne!(a, role_name(&other, "cluster"), "distinct clusters keep distinct roles");
        assert!(role_name(&long, "node").len() <= MAX_ROLE_NAME);
    }
}
