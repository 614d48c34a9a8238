//! A placement's cluster template → EKS resources:
//! VPC, one subnet per zone, the cluster and node IAM roles, the cluster, one managed node group
//! per pool.
//!
//! Cross-resource references (a subnet's VPC, a cluster's subnets and role) are stored as the
//! *addresses* of the resources they point at, with policy `ignored`: the backend resolves them
//! to AWS ids at call time through the ownership tags, and a change of the referenced resource
//! reaches its dependents through replacement propagation instead of through diffs.

use std::net::Ipv4Addr;

use serde_json::{Value, json};
use tessera_provider_api::{
    Address, Arch, Catalog, ClusterTemplate, FieldPolicy, Network, ProviderRef, ResourceSpec, TAG_ADDRESS, TAG_FLEET,
    TaintEffect,
};

pub const VPC: &str = "eks.vpc";
pub const SUBNET: &str = "eks.subnet";
pub const ROLE: &str = "eks.role";
pub const CLUSTER: &str = "eks.cluster";
pub const NODEGROUP: &str = "eks.nodegroup";

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
fn generation(parts: &[&str]) -> String {
    // FNV-1a: tiny, stable across versions and platforms.
    let mut h: u32 = 0x811c_9dc5;
    for b in parts.join("|").bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{:06x}", h & 0xff_ffff)
}

/// An existing network's subnets are given by id, and moving to other subnets means replacement.
fn with_existing_subnets(spec: &mut ResourceSpec, ids: &[String]) {
    if !ids.is_empty() {
        spec.attrs.insert("subnetIds".into(), json!(ids));
        spec.replace_on.push("subnetIds".into());
    }
}

pub fn lower(catalog: &Catalog, cluster: &ClusterTemplate, provider: &ProviderRef) -> Vec<ResourceSpec> {
    let p = cluster.placement.as_str();
    let fleet = cluster.fleet.as_str();
    let cluster_name = format!("{fleet}-{p}");
    let vpc = Address::new(p, VPC, "main");
    let mut out = Vec::new();
    // Subnets the cluster and node groups use: ours (by address, resolved at call time) or,
    // for an existing network, the given ids.
    let mut subnets = Vec::new();
    let mut subnet_ids: Vec<String> = Vec::new();
    match &cluster.network {
        Network::Managed { cidr } => {
            out.push(
                ResourceSpec::new(vpc.clone(), provider.clone())
                    .attr("cidr", cidr.clone())
                    .attr("tags", tags(fleet, &vpc))
                    .replace_on("cidr"),
            );
            for (i, zone) in cluster.zones.iter().enumerate() {
                let address = Address::new(p, SUBNET, zone.clone());
                let sub = subnet_cidr(cidr, i as u32).unwrap_or_default();
                out.push(
                    ResourceSpec::new(address.clone(), provider.clone())
                        .attr("cidr", sub)
                        .attr("zone", zone.clone())
                        .attr("vpc", vpc.to_string())
                        .attr("tags", tags(fleet, &address))
                        .depends_on(vpc.clone())
                        .policy("vpc", FieldPolicy::Ignored)
                        .replace_on("cidr")
                        .replace_on("zone"),
                );
                subnets.push(address);
            }
        }
        Network::Existing { subnets: ids, .. } => subnet_ids = ids.clone(),
    }
    let subnet_refs: Vec<String> = subnets.iter().map(ToString::to_string).collect();

    let role = |name: &str, service: &str, policies: &[&str]| {
        let address = Address::new(p, ROLE, name);
        let mut policies: Vec<&str> = policies.to_vec();
        policies.sort_unstable();
        ResourceSpec::new(address.clone(), provider.clone())
            .attr("name", format!("{cluster_name}-{name}"))
            .attr("service", service)
            .attr("policies", policies)
            .attr("tags", tags(fleet, &address))
            .policy("service", FieldPolicy::Ignored)
            .replace_on("name")
    };
    let cluster_role = role("cluster", "eks.amazonaws.com", &CLUSTER_POLICIES);
    let node_role = role("node", "ec2.amazonaws.com", &NODE_POLICIES);
    let (cluster_role_addr, node_role_addr) = (cluster_role.address.clone(), node_role.address.clone());
    let (cluster_role_name, node_role_name) = (cluster_role.attrs["name"].clone(), node_role.attrs["name"].clone());
    out.push(cluster_role);
    out.push(node_role);

    let control_plane = Address::new(p, CLUSTER, "main");
    let log_types: Vec<&str> = match &cluster.core_services.logging {
        Some(l) if l.audit_logs => AUDIT_LOG_TYPES.to_vec(),
        _ => Vec::new(),
    };
    let mut cp = ResourceSpec::new(control_plane.clone(), provider.clone())
        .attr("name", cluster_name.clone())
        .attr("version", cluster.kubernetes_version.clone())
        .attr("logTypes", log_types)
        .attr("endpointPublicAccess", true)
        .attr("endpointPrivateAccess", true)
        .attr("roleName", cluster_role_name)
        .attr("subnets", subnet_refs.clone())
        .attr("tags", tags(fleet, &control_plane))
        .depends_on(cluster_role_addr)
        .policy("roleName", FieldPolicy::Ignored)
        .policy("subnets", FieldPolicy::Ignored)
        .replace_on("name");
    cp.deps.extend(subnets.iter().cloned());
    with_existing_subnets(&mut cp, &subnet_ids);
    out.push(cp);

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
        let mut ng = ResourceSpec::new(address.clone(), provider.clone())
            .attr("cluster", cluster_name.clone())
            .attr("name", format!("{}-{}", pool.name, generation(&[&instance_type, ami, capacity])))
            .attr("instanceType", instance_type)
            .attr("amiType", ami)
            .attr("capacityType", capacity)
            .attr("minSize", pool.min)
            .attr("maxSize", pool.max)
            .attr("desiredSize", pool.min.max(1).min(pool.max))
            .attr("labels", json!(pool.labels))
            .attr("taints", taints)
            .attr("version", cluster.kubernetes_version.clone())
            .attr("nodeRole", node_role_name.clone())
            .attr("subnets", subnet_refs.clone())
            .attr("tags", tags(fleet, &address))
            .depends_on(control_plane.clone())
            .depends_on(node_role_addr.clone())
            // The cluster autoscaler owns the live node count.
            .policy("desiredSize", FieldPolicy::Delegated)
            .policy("nodeRole", FieldPolicy::Ignored)
            .policy("subnets", FieldPolicy::Ignored)
            .replace_on("cluster")
            .replace_on("name")
            .replace_on("instanceType")
            .replace_on("amiType")
            .replace_on("capacityType");
        ng.deps.extend(subnets.iter().cloned());
        with_existing_subnets(&mut ng, &subnet_ids);
        out.push(ng);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_are_consecutive_slices_of_the_network() {
        assert_eq!(subnet_cidr("10.0.0.0/16", 0).as_deref(), Some("10.0.0.0/20"));
        assert_eq!(subnet_cidr("10.0.0.0/16", 2).as_deref(), Some("10.0.32.0/20"));
        assert_eq!(subnet_cidr("10.40.0.0/16", 1).as_deref(), Some("10.40.16.0/20"));
        assert_eq!(subnet_cidr("10.0.0.0/26", 0), None);
    }

    #[test]
    fn node_group_names_change_exactly_when_a_replacing_field_does() {
        let a = generation(&["m6i.xlarge", "AL2023_x86_64_STANDARD", "ON_DEMAND"]);
        assert_eq!(a, generation(&["m6i.xlarge", "AL2023_x86_64_STANDARD", "ON_DEMAND"]));
        assert_ne!(a, generation(&["m6i.2xlarge", "AL2023_x86_64_STANDARD", "ON_DEMAND"]));
        assert_ne!(a, generation(&["m6i.xlarge", "AL2023_x86_64_STANDARD", "SPOT"]));
    }
}
