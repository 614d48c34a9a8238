//! The resource shapes every cloud shares: a network, a control plane, one node pool per pool.
//! Their policies and replacement rules are in their schemas ([`crate::schemas`]).
//!
//! The sim lowers to these directly. Backends that are not built yet (see `PlanOnly` in the
//! engine) lower to them too, so that a multi-cloud spec validates and plans today.

use serde_json::{Value, json};
use tessera_provider_api::{
    Address, Catalog, ClusterTemplate, KubeAccess, Network, ProviderRef, ResourceSpec, TAG_ADDRESS, TAG_FLEET,
};

/// Control-plane log types enabled when the fleet ships audit logs.
pub const AUDIT_LOG_TYPES: [&str; 3] = ["api", "audit", "authenticator"];

fn tags(cluster: &ClusterTemplate, address: &Address) -> Value {
    json!({ TAG_FLEET: cluster.fleet, TAG_ADDRESS: address.to_string() })
}

/// Lowers `cluster` into `{prefix}.network`, `{prefix}.cluster` and `{prefix}.nodepool`s.
/// Machines the catalog cannot map are rejected by validation before lowering, so an unmapped
/// machine here is recorded as `unmapped` rather than panicking.
pub fn lower_shapes(
    prefix: &str,
    catalog: &Catalog,
    cluster: &ClusterTemplate,
    provider: &ProviderRef,
) -> Vec<ResourceSpec> {
    let placement = cluster.placement.as_str();
    let cluster_name = format!("{}-{}", cluster.fleet, placement);
    let network = Address::new(placement, format!("{prefix}.network"), "main");
    let control_plane = Address::new(placement, format!("{prefix}.cluster"), "main");

    let mut out = Vec::with_capacity(cluster.pools.len() + 2);
    // An existing network is not ours: the cluster just records which one it joins.
    let (managed, existing) = match &cluster.network {
        Network::Managed { cidr } => (Some(cidr), None),
        Network::Existing { id, .. } => (None, Some(id)),
    };
    if let Some(cidr) = managed {
        out.push(
            ResourceSpec::new(network.clone(), provider.clone())
                .attr("cidr", cidr.clone())
                .attr("region", cluster.region.clone())
                .attr("zones", cluster.zones.clone())
                .attr("tags", tags(cluster, &network)),
        );
    }
    let log_types: Vec<&str> = if cluster.core_services.audit_logs { AUDIT_LOG_TYPES.to_vec() } else { Vec::new() };
    let cp = ResourceSpec::new(control_plane.clone(), provider.clone())
        .attr("name", cluster_name.clone())
        .attr("region", cluster.region.clone())
        .attr("version", cluster.kubernetes_version.clone())
        .attr("logTypes", log_types)
        .attr("tags", tags(cluster, &control_plane));
    let cp = match existing {
        Some(id) => cp.attr("network", id.clone()),
        None => cp.attr_ref("network", &network, "id"),
    };
    out.push(cp);
    for pool in &cluster.pools {
        let address = Address::new(placement, format!("{prefix}.nodepool"), pool.name.clone());
        let taints: Vec<Value> =
            pool.taints.iter().map(|t| json!({ "key": t.key, "value": t.value, "effect": t.effect })).collect();
        let instance_type = catalog.machine_type(&pool.machine).unwrap_or_else(|| "unmapped".into());
        out.push(
            ResourceSpec::new(address.clone(), provider.clone())
                .attr_ref("cluster", &control_plane, "name")
                .attr("instanceType", instance_type)
                .attr("arch", pool.machine.arch.to_string())
                .attr("capacityType", if pool.machine.spot && catalog.supports_spot { "SPOT" } else { "ON_DEMAND" })
                .attr("minSize", pool.min)
                .attr("maxSize", pool.max)
                .attr("desiredSize", pool.min)
                .attr("labels", json!(pool.labels))
                .attr("taints", taints)
                .attr("version", cluster.kubernetes_version.clone())
                .attr("tags", tags(cluster, &address)),
        );
    }
    out
}

/// How the cluster of [`lower_shapes`] is reached from inside: through `kube_kind` (the real
/// `kube` provider, or the sim's), authenticating with `auth` (see `tessera_kube::contract`),
/// once the node pools exist.
pub fn shapes_access(
    prefix: &str,
    cluster: &ClusterTemplate,
    provider: &ProviderRef,
    kube_kind: &str,
    auth: &str,
) -> KubeAccess {
    let placement = cluster.placement.as_str();
    let control_plane = Address::new(placement, format!("{prefix}.cluster"), "main");
    let mut kube = ProviderRef::connected(kube_kind, control_plane.clone());
    kube.region = provider.region.clone();
    kube.scope.insert(tessera_kube::contract::SCOPE_AUTH.into(), auth.into());
    let after =
        cluster.pools.iter().map(|p| Address::new(placement, format!("{prefix}.nodepool"), p.name.clone())).collect();
    KubeAccess { cluster: control_plane, provider: kube, after }
}
