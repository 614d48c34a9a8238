//! A placement's cluster template → AKS resources: the resource group (unless the placement
//! names one), the managed cluster with its system pool, and one agent pool per further pool.
//!
//! ## Overview
//!
//! AKS needs a *system* pool at all times: it is created in the managed cluster's body, it cannot
//! be the cluster's last pool to go, and it may not carry a custom `NoSchedule` taint
//! (`SystemPoolHasRestrictedTaint`) or be spot. So the system pool is part of the cluster
//! resource, never a resource of its own: it is made with the cluster, changed through the
//! cluster's updates, replaced (a new `vmSize`) by the cluster's update making the new pool before
//! deleting the old, and deleted with the cluster.
//!
//! Which pool is the system pool ([`system_pool`]): the first pool of the spec that AKS accepts
//! as one (no `NoSchedule`/`NoExecute` taint, not spot, at least one node). When no pool
//! qualifies, Tessera adds a small dedicated one, tainted `CriticalAddonsOnly=true:NoSchedule` as
//! AKS recommends, and validation says so ([`crate::backend`]). Every other pool is an
//! `aks.agentPool` in `User` mode.
//!
//! Lowering writes values and references only: each type's outputs, policies (an autoscaled
//! pool's count is delegated, told by its `enableAutoScaling`) and replacement rules are its
//! schema's ([`crate::types`]), which the engine stamps on every spec. For reference:
//!
//! | resource | references | outputs | replaced |
//! |---|---|---|---|
//! | resource group | | `name` | destroy first: names are unique per subscription |
//! | cluster | `resourceGroup` → group `name` | `name`, `endpoint`, `certificateAuthority` | destroy first |
//! | agent pool | `cluster` → cluster `id` | `id` | create first, under a new name |
//!
//! Pool names are at most 12 lowercase letters and digits: as much of the pool's name as fits in
//! eight, then four hex digits of a hash of the pool's name and of everything that replaces it
//! (`vmSize`, priority, zones), so a replacement gets a new name that can exist beside the old.

use serde_json::{Value, json};
use tessera_provider_api::backend::short_hash;
use tessera_provider_api::{
    Address, Catalog, ClusterTemplate, KubeAccess, Machine, Network, PoolTemplate, ProviderRef, ResourceSpec,
    TAG_ADDRESS, TAG_FLEET, Taint, TaintEffect,
};

/// AKS names node pools with 1 to 12 lowercase letters and digits, starting with a letter.
/// Tessera derives them ([`pool_name`]), so any pool name of the spec will do.
pub const MAX_POOL_NAME: usize = 12;

/// Whether `name` is a valid AKS node pool name.
pub fn is_pool_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.len() <= MAX_POOL_NAME
}

pub use crate::names::{CLUSTER, GROUP, POOL};

/// The size of the dedicated system pool Tessera adds when no pool of the spec can be one.
pub const DEDICATED_SYSTEM: Machine =
    Machine { vcpu: 2, memory_gib: 8, arch: tessera_provider_api::Arch::Amd64, spot: false };
/// The taint AKS documents for a system pool that runs system pods only.
pub const CRITICAL_ADDONS_ONLY: &str = "CriticalAddonsOnly=true:NoSchedule";
/// The taint and label AKS puts on every spot pool itself: delegated, never drift.
pub const SPOT_TAINT: &str = "kubernetes.azure.com/scalesetpriority=spot:NoSchedule";
pub const SPOT_LABEL: &str = "kubernetes.azure.com/scalesetpriority";

pub fn tags(fleet: &str, address: &Address) -> Value {
    json!({ TAG_FLEET: fleet, TAG_ADDRESS: address.to_string() })
}

/// The cluster's name in Azure: `{fleet}-{placement}`.
pub fn cluster_name(cluster: &ClusterTemplate) -> String {
    format!("{}-{}", cluster.fleet, cluster.placement)
}

/// Why a pool cannot be AKS's system pool, or `None` when it can.
pub fn unfit_for_system(pool: &PoolTemplate) -> Option<&'static str> {
    if pool.machine.spot {
        Some("it is spot")
    } else if pool.taints.iter().any(|t| matches!(t.effect, TaintEffect::NoSchedule | TaintEffect::NoExecute)) {
        Some("it has a NoSchedule or NoExecute taint")
    } else if pool.max == 0 || pool.min == 0 {
        Some("it may scale to zero nodes")
    } else {
        None
    }
}

/// The spec's pool that is AKS's system pool, or `None` when Tessera adds a dedicated one.
pub fn system_pool(cluster: &ClusterTemplate) -> Option<&PoolTemplate> {
    cluster.pools.iter().find(|p| unfit_for_system(p).is_none())
}

/// An AKS pool name: 1 to 12 lowercase letters and digits, starting with a letter.
pub fn pool_name(pool: &str, replaced_by: &[&str]) -> String {
    let kept: String = pool.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect();
    let kept = kept.trim_start_matches(|c: char| c.is_ascii_digit());
    let prefix: String = if kept.is_empty() { "pool".into() } else { kept.chars().take(8).collect() };
    let mut parts = vec![pool];
    parts.extend_from_slice(replaced_by);
    format!("{prefix}{}", short_hash(&parts, 4))
}

/// `key=value:Effect`, as AKS spells a taint.
pub fn taint_string(t: &Taint) -> String {
    let effect = match t.effect {
        TaintEffect::NoSchedule => "NoSchedule",
        TaintEffect::PreferNoSchedule => "PreferNoSchedule",
        TaintEffect::NoExecute => "NoExecute",
    };
    format!("{}={}:{effect}", t.key, t.value.clone().unwrap_or_default())
}

/// What a pool's profile holds, the same for the system pool (inside the cluster) and the
/// others: the owned fields, in the shape `read` reports them.
pub struct PoolShape {
    pub name: String,
    pub vm_size: String,
    pub spot: bool,
    pub autoscaled: bool,
    pub min: u32,
    pub max: u32,
    pub count: u32,
    pub labels: Value,
    pub taints: Vec<String>,
    pub zones: Vec<String>,
}

impl PoolShape {
    fn new(catalog: &Catalog, cluster: &ClusterTemplate, pool: &PoolTemplate, extra_taints: &[&str]) -> Self {
        let vm_size = catalog.machine_type(&pool.machine).unwrap_or_else(|| "unmapped".into());
        let priority = if pool.machine.spot { "Spot" } else { "Regular" };
        let zones = cluster.zones.join(",");
        let mut taints: Vec<String> = pool.taints.iter().map(taint_string).collect();
        taints.extend(extra_taints.iter().map(|t| t.to_string()));
        taints.sort();
        Self {
            name: pool_name(&pool.name, &[&vm_size, priority, &zones]),
            vm_size,
            spot: pool.machine.spot,
            autoscaled: pool.min < pool.max,
            min: pool.min,
            max: pool.max,
            count: pool.min.max(1).min(pool.max),
            labels: json!(pool.labels),
            taints,
            zones: cluster.zones.clone(),
        }
    }

    /// The owned fields of a pool (everything but its node count), as one object.
    pub fn profile(&self) -> Value {
        json!({
            "name": self.name,
            "vmSize": self.vm_size,
            "scaleSetPriority": if self.spot { "Spot" } else { "Regular" },
            "enableAutoScaling": self.autoscaled,
            "minCount": self.autoscaled.then_some(self.min),
            "maxCount": self.autoscaled.then_some(self.max),
            "nodeLabels": self.labels,
            "nodeTaints": self.taints,
            "availabilityZones": self.zones,
        })
    }
}

/// The dedicated system pool's template, when no pool of the spec can be one.
fn dedicated_system() -> PoolTemplate {
    PoolTemplate {
        name: "system".into(),
        machine: DEDICATED_SYSTEM,
        min: 1,
        max: 3,
        labels: Default::default(),
        taints: Vec::new(),
    }
}

pub fn lower(catalog: &Catalog, cluster: &ClusterTemplate, provider: &ProviderRef) -> Vec<ResourceSpec> {
    let p = cluster.placement.as_str();
    let fleet = cluster.fleet.as_str();
    let mut out = Vec::new();

    // The resource group: the placement's, or one of ours.
    let group_ref: Option<Address> = match provider.scope.get("resourceGroup") {
        Some(_) => None,
        None => {
            let address = Address::new(p, GROUP, "main");
            out.push(
                ResourceSpec::new(address.clone(), provider.clone())
                    .attr("name", format!("{}-rg", cluster_name(cluster)))
                    .attr("location", cluster.region.clone())
                    .attr("tags", tags(fleet, &address)),
            );
            Some(address)
        }
    };

    let (subnet, plugin_mode) = match &cluster.network {
        // AKS makes the VNet and subnet in the node resource group; pods get overlay addresses.
        Network::Managed { .. } => (None, Some("overlay")),
        // Azure CNI on the given subnet.
        Network::Existing { subnets, .. } => (subnets.first().cloned(), None),
    };
    let network = json!({ "networkPlugin": "azure", "networkPluginMode": plugin_mode, "vnetSubnetID": subnet });

    let control_plane = Address::new(p, CLUSTER, "main");
    let system = match system_pool(cluster) {
        Some(pool) => PoolShape::new(catalog, cluster, pool, &[]),
        None => PoolShape::new(catalog, cluster, &dedicated_system(), &[CRITICAL_ADDONS_ONLY]),
    };
    let name = cluster_name(cluster);
    let cp = ResourceSpec::new(control_plane.clone(), provider.clone())
        .attr("name", name.clone())
        .attr("location", cluster.region.clone())
        .attr("kubernetesVersion", cluster.kubernetes_version.clone())
        .attr("dnsPrefix", name)
        .attr("network", network)
        .attr("systemPool", system.profile())
        .attr("systemPoolCount", system.count)
        // ARM's `apiServerAccessProfile`: only a private cluster has no public address.
        .attr(
            "apiServerAccess",
            json!({
                "enablePrivateCluster": !cluster.api_access.public,
                "authorizedIPRanges": cluster.api_access.restricted_to(),
            }),
        )
        .attr("tags", tags(fleet, &control_plane));
    let cp = match (&group_ref, provider.scope.get("resourceGroup")) {
        (Some(group), _) => cp.attr_ref("resourceGroup", group, "name"),
        (None, Some(existing)) => cp.attr("resourceGroup", existing.clone()),
        (None, None) => cp,
    };
    out.push(cp);

    let system_name = system_pool(cluster).map(|pool| pool.name.clone());
    for pool in cluster.pools.iter().filter(|pool| Some(&pool.name) != system_name.as_ref()) {
        let address = Address::new(p, POOL, pool.name.clone());
        let shape = PoolShape::new(catalog, cluster, pool, &[]);
        let spec = ResourceSpec::new(address.clone(), provider.clone())
            .attr_ref("cluster", &control_plane, "id")
            .attr("name", shape.name.clone())
            .attr("mode", "User")
            .attr("vmSize", shape.vm_size.clone())
            .attr("scaleSetPriority", if shape.spot { "Spot" } else { "Regular" })
            .attr("enableAutoScaling", shape.autoscaled)
            .attr("minCount", shape.autoscaled.then_some(shape.min))
            .attr("maxCount", shape.autoscaled.then_some(shape.max))
            .attr("count", shape.count)
            .attr("nodeLabels", shape.labels.clone())
            .attr("nodeTaints", shape.taints.clone())
            .attr("availabilityZones", shape.zones.clone())
            .attr("orchestratorVersion", cluster.kubernetes_version.clone())
            .attr("vnetSubnetID", subnet.clone())
            .attr("tags", tags(fleet, &address));
        out.push(spec);
    }
    out
}

/// The AKS cluster seen from inside: the `kube` provider, authenticating through `kubelogin`,
/// once the agent pools exist.
pub fn kube_access(cluster: &ClusterTemplate, provider: &ProviderRef) -> KubeAccess {
    let p = cluster.placement.as_str();
    let system = system_pool(cluster).map(|pool| pool.name.clone());
    let after = cluster
        .pools
        .iter()
        .filter(|pool| Some(&pool.name) != system.as_ref())
        .map(|pool| Address::new(p, POOL, pool.name.clone()))
        .collect();
    tessera_kube::contract::access(
        Address::new(p, CLUSTER, "main"),
        provider,
        tessera_kube::contract::AUTH_AZURE,
        after,
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tessera_provider_api::{Arch, CoreServices, FieldPolicy, catalogs};

    use super::*;

    fn pool(name: &str, spot: bool, taint: Option<TaintEffect>) -> PoolTemplate {
        PoolTemplate {
            name: name.into(),
            machine: Machine { vcpu: 4, memory_gib: 16, arch: Arch::Amd64, spot },
            min: 1,
            max: 3,
            labels: BTreeMap::from([("tier".to_string(), name.to_string())]),
            taints: taint
                .map(|effect| Taint { key: "dedicated".into(), value: Some(name.into()), effect })
                .into_iter()
                .collect(),
        }
    }

    fn template(pools: Vec<PoolTemplate>) -> ClusterTemplate {
        ClusterTemplate {
            fleet: "f".into(),
            placement: "az".into(),
            region: "westeurope".into(),
            zones: vec!["1".into(), "2".into()],
            kubernetes_version: "1.31".into(),
            network: Network::Managed { cidr: "10.0.0.0/16".into() },
            api_access: Default::default(),
            pools,
            core_services: CoreServices { monitoring: None, logging: None, audit_logs: true },
        }
    }

    fn provider(group: Option<&str>) -> ProviderRef {
        let mut p = ProviderRef::new("aks", "westeurope");
        p.scope.insert("subscription".into(), "00000000-0000-0000-0000-000000000000".into());
        if let Some(g) = group {
            p.scope.insert("resourceGroup".into(), g.into());
        }
        p
    }

    #[test]
    fn pool_names_follow_aks() {
        for ok in ["system", "infra2", "a", "abcdefghijkl"] {
            assert!(is_pool_name(ok), "{ok}");
        }
        for bad in ["", "system-pool", "Infra", "1pool", "abcdefghijklm"] {
            assert!(!is_pool_name(bad), "{bad}");
        }
    }

    #[test]
    fn the_first_fit_pool_is_the_system_pool_and_the_others_are_agent_pools() {
        let t = template(vec![
            pool("infra", false, Some(TaintEffect::NoSchedule)),
            pool("general", false, None),
            pool("batch", true, None),
        ]);
        let mut specs = lower(&catalogs::aks(), &t, &provider(None));
        let table = crate::types::types();
        for spec in &mut specs {
            table.schema(spec.rtype()).unwrap_or_else(|| panic!("no schema for {}", spec.rtype())).stamp(spec);
        }
        let types: Vec<String> = specs.iter().map(|s| s.address.to_string()).collect();
        assert_eq!(
            types,
            ["az/aks.resourceGroup/main", "az/aks.cluster/main", "az/aks.agentPool/infra", "az/aks.agentPool/batch"]
        );
        let cluster = &specs[1];
        assert_eq!(cluster.attrs["systemPool"]["nodeLabels"], json!({"tier": "general"}));
        assert_eq!(cluster.policy_of("systemPoolCount"), FieldPolicy::Delegated, "autoscaled 1..3");
        let batch = &specs[3];
        assert_eq!(batch.attrs["scaleSetPriority"], "Spot");
        assert_eq!(batch.policy_of("count"), FieldPolicy::Delegated);
        assert_eq!(specs[2].attrs["nodeTaints"], json!(["dedicated=infra:NoSchedule"]));
    }

    #[test]
    fn with_no_fit_pool_a_dedicated_critical_addons_system_pool_is_added() {
        let t = template(vec![pool("system", false, Some(TaintEffect::NoSchedule)), pool("batch", true, None)]);
        let specs = lower(&catalogs::aks(), &t, &provider(Some("rg-platform")));
        assert!(specs.iter().all(|s| s.rtype() != GROUP), "the placement names its resource group");
        let cluster = specs.iter().find(|s| s.rtype() == CLUSTER).unwrap();
        assert_eq!(cluster.attrs["resourceGroup"], "rg-platform");
        assert_eq!(cluster.attrs["systemPool"]["vmSize"], "Standard_D2s_v5");
        assert_eq!(cluster.attrs["systemPool"]["nodeTaints"], json!([CRITICAL_ADDONS_ONLY]));
        assert_eq!(specs.iter().filter(|s| s.rtype() == POOL).count(), 2, "both spec pools are user pools");
    }

    #[test]
    fn pool_names_fit_aks_and_change_exactly_when_a_replacing_field_does() {
        let a = pool_name("system", &["Standard_D4s_v5", "Regular", "1,2"]);
        assert!(is_pool_name(&a), "{a}");
        assert_eq!(a, pool_name("system", &["Standard_D4s_v5", "Regular", "1,2"]));
        assert_ne!(a, pool_name("system", &["Standard_D8s_v5", "Regular", "1,2"]));
        assert_ne!(a, pool_name("system", &["Standard_D4s_v5", "Spot", "1,2"]));
        for name in ["2-Batch-Workers-Long", "---", "a"] {
            let n = pool_name(name, &["x"]);
            assert!(is_pool_name(&n), "{name} → {n}");
        }
        assert_ne!(pool_name("batch-a", &["x"]), pool_name("batcha", &["x"]), "the hash keeps look-alikes apart");
    }
}
