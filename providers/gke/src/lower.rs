//! A placement's cluster template → GKE resources: one cluster, one node pool per pool.
//!
//! ## Overview
//!
//! | resource | references | outputs | replaced |
//! |---|---|---|---|
//! | cluster | | `id` (`projects/P/locations/L/clusters/N`), `name`, `endpoint`, `certificateAuthority` | destroy first: names are unique per location |
//! | node pool | `cluster` → cluster `id` | `id` | create first, under a new name |
//!
//! - **Location.** A regional cluster (`location` = the region, node `locations` = the zones)
//!   unless the placement names exactly one zone: then zonal, `location` = that zone.
//! - **Versions.** No release channel (`releaseChannel: none`), an explicit version, and node
//!   auto-upgrade off: Tessera owns upgrades. `read` reports `major.minor` of the live version,
//!   so a patch GKE picks is not drift.
//! - **Node counts are per zone on GKE.** The neutral `scale` is for the whole pool, so it maps
//!   to `autoscaling.totalMinNodeCount`/`totalMaxNodeCount` (`minNodes`/`maxNodes` here), which
//!   GKE also counts for the whole pool. Creation needs a per-zone `initialNodeCount`: the
//!   smallest count per zone that reaches `min` (`ceil(min / zones)`). A scale whose `max` is
//!   below that times the zones (one node per zone already exceeds it), or whose `max` is 0,
//!   cannot be expressed and is refused at validation ([`scale_problem`]).
//! - **The first pool is in the cluster's create body** (`initialPool`, ignored by the diff: it
//!   only matters at create). Its node pool resource then finds it, adopts it (its labels say
//!   whose it is) and converges it; further pools are created through `nodePools.create`.
//! - **Audit logs.** The Kubernetes API server's audit log on GKE is Cloud Audit Logs' (Admin
//!   Activity is always on and cannot be turned off; Data Access is a project IAM audit setting,
//!   not a cluster one), so no node holds it and Tessera ships nothing for it. With `auditLogs`
//!   on, the cluster's control-plane logging also sends the API server's own log
//!   (`APISERVER` component) to Cloud Logging.

use serde_json::{Value, json};
use tessera_provider_api::{
    Address, Catalog, ClusterTemplate, KubeAccess, Network, OUTPUT_ID, PoolTemplate, ProviderRef, ResourceSpec,
    TAG_ADDRESS, TAG_FLEET, TaintEffect,
};

pub use crate::schemas::{CLUSTER, NODEPOOL};

/// GKE node pool names are at most 40 characters.
pub const MAX_POOL_NAME: usize = 40;

/// Logging components without and with API-server logs.
pub const LOGGING: [&str; 2] = ["SYSTEM_COMPONENTS", "WORKLOADS"];
pub const MONITORING: [&str; 1] = ["SYSTEM_COMPONENTS"];
pub const APISERVER: &str = "APISERVER";

/// The node image: Container-Optimized OS with containerd (amd64 and arm64 alike).
pub const IMAGE_TYPE: &str = "COS_CONTAINERD";

pub fn tags(fleet: &str, address: &Address) -> Value {
    json!({ TAG_FLEET: fleet, TAG_ADDRESS: address.to_string() })
}

pub fn taint_effect(e: TaintEffect) -> &'static str {
    match e {
        TaintEffect::NoSchedule => "NO_SCHEDULE",
        TaintEffect::PreferNoSchedule => "PREFER_NO_SCHEDULE",
        TaintEffect::NoExecute => "NO_EXECUTE",
    }
}

/// Where the cluster lives: its zone when the placement names one, else its region.
pub fn location(cluster: &ClusterTemplate) -> String {
    match cluster.zones.as_slice() {
        [zone] => zone.clone(),
        _ => cluster.region.clone(),
    }
}

/// The per-zone node count a pool starts with: the fewest that reach `min` over `zones`.
pub fn initial_per_zone(min: u32, zones: usize) -> u32 {
    let zones = u32::try_from(zones.max(1)).unwrap_or(u32::MAX);
    min.div_ceil(zones)
}

/// Why this pool's scale cannot be expressed on GKE with this many zones, if it cannot.
pub fn scale_problem(pool: &PoolTemplate, zones: usize) -> Option<String> {
    let zones = zones.max(1);
    if pool.max == 0 {
        return Some(format!("pool `{}` has scale max 0; GKE node pools autoscale to at least one node", pool.name));
    }
    let start = u64::from(initial_per_zone(pool.min, zones)) * zones as u64;
    (start > u64::from(pool.max)).then(|| {
        format!(
            "pool `{}` cannot start within {}..{} nodes: GKE counts nodes per zone, and {} per zone in {zones} zones is {start}",
            pool.name,
            pool.min,
            pool.max,
            initial_per_zone(pool.min, zones)
        )
    })
}

/// `{pool}-{hash}`: the hash of the fields that force replacement, so that a replacement gets a
/// new name and can exist beside the old pool (create before destroy).
pub fn pool_name(pool: &str, machine_type: &str, spot: bool) -> String {
    let hash = tessera_provider_api::backend::short_hash(&[machine_type, if spot { "spot" } else { "standard" }], 6);
    let keep = MAX_POOL_NAME - hash.len() - 1;
    let prefix: String = pool.chars().take(keep).collect();
    format!("{}-{hash}", prefix.trim_end_matches('-'))
}

/// The cluster's id, as GKE names it.
pub fn cluster_id(project: &str, location: &str, name: &str) -> String {
    format!("projects/{project}/locations/{location}/clusters/{name}")
}

/// What lowering writes of one pool: the node pool resource's attributes, also the shape of the
/// cluster's `initialPool`.
fn pool_attrs(catalog: &Catalog, pool: &PoolTemplate, zones: usize, version: &str) -> Vec<(&'static str, Value)> {
    let machine_type = catalog.machine_type(&pool.machine).unwrap_or_else(|| "unmapped".into());
    let mut taints: Vec<Value> = pool
        .taints
        .iter()
        .map(
            |t| json!({ "key": t.key, "value": t.value.clone().unwrap_or_default(), "effect": taint_effect(t.effect) }),
        )
        .collect();
    taints.sort_by_key(|t| t.to_string());
    vec![
        ("name", json!(pool_name(&pool.name, &machine_type, pool.machine.spot))),
        ("machineType", json!(machine_type)),
        ("spot", json!(pool.machine.spot)),
        ("imageType", json!(IMAGE_TYPE)),
        ("labels", json!(pool.labels)),
        ("taints", json!(taints)),
        ("minNodes", json!(pool.min)),
        ("maxNodes", json!(pool.max)),
        ("initialNodeCount", json!(initial_per_zone(pool.min, zones))),
        ("version", json!(version)),
    ]
}

pub fn lower(catalog: &Catalog, cluster: &ClusterTemplate, provider: &ProviderRef) -> Vec<ResourceSpec> {
    let p = cluster.placement.as_str();
    let fleet = cluster.fleet.as_str();
    let project = provider.scope.get("project").cloned().unwrap_or_default();
    let location = location(cluster);
    let mut zones = cluster.zones.clone();
    zones.sort();
    let version = cluster.kubernetes_version.clone();

    let mut logging: Vec<&str> = LOGGING.to_vec();
    if cluster.core_services.audit_logs {
        logging.push(APISERVER);
    }
    logging.sort_unstable();
    let network = match &cluster.network {
        Network::Managed { cidr } => json!({ "cidr": cidr }),
        Network::Existing { id, subnets } => json!({ "network": id, "subnetwork": subnets.first() }),
    };
    let control_plane = Address::new(p, CLUSTER, "main");
    let mut cp = ResourceSpec::new(control_plane.clone(), provider.clone())
        .attr("name", format!("{fleet}-{p}"))
        .attr("project", project)
        .attr("location", location)
        .attr("nodeLocations", json!(zones))
        .attr("version", version.clone())
        .attr("releaseChannel", "none")
        .attr("loggingComponents", json!(logging))
        .attr("monitoringComponents", json!(MONITORING))
        .attr("network", network)
        // Policies, replacement rules and outputs are the type's: `schemas::cluster`.
        .attr("publicEndpoint", cluster.api_access.public)
        .attr("authorizedNetworks", cluster.api_access.restricted_to())
        .attr("tags", tags(fleet, &control_plane));
    if let Some(first) = cluster.pools.first() {
        let mut initial: serde_json::Map<String, Value> =
            pool_attrs(catalog, first, zones.len(), &version).into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        initial.insert("tags".into(), tags(fleet, &Address::new(p, NODEPOOL, first.name.clone())));
        cp = cp.attr("initialPool", Value::Object(initial));
    }
    let mut out = vec![cp];

    for pool in &cluster.pools {
        let address = Address::new(p, NODEPOOL, pool.name.clone());
        let mut np =
            ResourceSpec::new(address.clone(), provider.clone()).attr_ref("cluster", &control_plane, OUTPUT_ID);
        for (k, v) in pool_attrs(catalog, pool, zones.len(), &version) {
            np = np.attr(k, v);
        }
        // Policies and replacement rules are the type's: `schemas::nodepool`.
        out.push(np.attr("tags", tags(fleet, &address)));
    }
    out
}

/// The GKE cluster seen from inside: the `kube` provider, authenticating with
/// `gke-gcloud-auth-plugin`, once the node pools exist.
pub fn kube_access(cluster: &ClusterTemplate, provider: &ProviderRef) -> KubeAccess {
    let p = cluster.placement.as_str();
    let after = cluster.pools.iter().map(|pool| Address::new(p, NODEPOOL, pool.name.clone())).collect();
    tessera_kube::contract::access(Address::new(p, CLUSTER, "main"), provider, tessera_kube::contract::AUTH_GCP, after)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use tessera_provider_api::{Arch, CoreServices, FieldPolicy, Machine, Replacement, Taint, catalogs};

    use super::*;

    fn pool(name: &str, vcpu: u32, spot: bool, min: u32, max: u32) -> PoolTemplate {
        PoolTemplate {
            name: name.into(),
            machine: Machine { vcpu, memory_gib: vcpu * 4, arch: Arch::Amd64, spot },
            min,
            max,
            labels: BTreeMap::from([("tier".to_string(), name.to_string())]),
            taints: vec![Taint { key: "dedicated".into(), value: Some(name.into()), effect: TaintEffect::NoSchedule }],
        }
    }

    pub(crate) fn template(zones: &[&str]) -> ClusterTemplate {
        ClusterTemplate {
            fleet: "f".into(),
            placement: "gcp-eu".into(),
            region: "europe-west4".into(),
            zones: zones.iter().map(|z| z.to_string()).collect(),
            kubernetes_version: "1.31".into(),
            network: Network::Managed { cidr: "10.0.0.0/16".into() },
            api_access: Default::default(),
            pools: vec![pool("system", 4, false, 3, 6), pool("batch", 8, true, 0, 10)],
            core_services: CoreServices { monitoring: None, logging: None, audit_logs: true },
        }
    }

    pub(crate) fn provider() -> ProviderRef {
        let mut p = ProviderRef::new("gke", "europe-west4");
        p.scope.insert("project".into(), "acme-platform".into());
        p
    }

    /// The spec at `address`, stamped with its type's schema as the engine does.
    fn by_address(specs: &[ResourceSpec], address: &str) -> ResourceSpec {
        let mut spec =
            specs.iter().find(|s| s.address.to_string() == address).cloned().unwrap_or_else(|| panic!("no {address}"));
        let schema = crate::schemas::all().into_iter().find(|s| s.rtype == spec.rtype()).unwrap();
        schema.stamp(&mut spec);
        spec
    }

    #[test]
    fn a_regional_cluster_with_its_first_pool_in_the_create_body() {
        let zones = ["europe-west4-b", "europe-west4-a", "europe-west4-c"];
        let specs = lower(&catalogs::gke(), &template(&zones), &provider());
        let cp = by_address(&specs, "gcp-eu/gke.cluster/main");
        assert_eq!(cp.attrs["location"], "europe-west4");
        assert_eq!(cp.attrs["nodeLocations"], json!(["europe-west4-a", "europe-west4-b", "europe-west4-c"]));
        assert_eq!(cp.attrs["loggingComponents"], json!(["APISERVER", "SYSTEM_COMPONENTS", "WORKLOADS"]));
        assert_eq!(cp.replacement, Replacement::DestroyBeforeCreate);
        assert_eq!(cp.policy_of("initialPool"), FieldPolicy::Ignored);
        let initial = &cp.attrs["initialPool"];
        let system = by_address(&specs, "gcp-eu/gke.nodepool/system");
        assert_eq!(initial["name"], system.attrs["name"], "the first pool is the one created with the cluster");
        assert_eq!(initial["tags"], system.attrs["tags"]);
        let refs: Vec<String> = system.references().iter().map(ToString::to_string).collect();
        assert_eq!(refs, ["gcp-eu/gke.cluster/main#id"]);
        assert_eq!(system.attrs["initialNodeCount"], 1, "3 nodes over 3 zones");
        assert_eq!((system.attrs["minNodes"].clone(), system.attrs["maxNodes"].clone()), (json!(3), json!(6)));
        let batch = by_address(&specs, "gcp-eu/gke.nodepool/batch");
        assert_eq!(batch.attrs["spot"], true);
        assert_eq!(batch.attrs["machineType"], "e2-standard-8");
        assert_eq!(batch.attrs["taints"][0]["effect"], "NO_SCHEDULE");
        assert_eq!(batch.policy_of("initialNodeCount"), FieldPolicy::Delegated);
        for f in ["machineType", "spot", "cluster", "name"] {
            assert!(batch.replace_on.iter().any(|r| r == f), "{f}");
        }
    }

    #[test]
    fn one_zone_makes_a_zonal_cluster() {
        let specs = lower(&catalogs::gke(), &template(&["europe-west4-a"]), &provider());
        assert_eq!(by_address(&specs, "gcp-eu/gke.cluster/main").attrs["location"], "europe-west4-a");
        assert_eq!(by_address(&specs, "gcp-eu/gke.nodepool/system").attrs["initialNodeCount"], 3);
    }

    #[test]
    fn pool_names_change_exactly_when_a_replacing_field_does_and_fit_gke() {
        let a = pool_name("system", "e2-standard-4", false);
        assert_eq!(a, pool_name("system", "e2-standard-4", false));
        assert_ne!(a, pool_name("system", "e2-standard-8", false));
        assert_ne!(a, pool_name("system", "e2-standard-4", true));
        assert!(pool_name(&"p".repeat(60), "e2-standard-4", false).len() <= MAX_POOL_NAME);
    }

    #[test]
    fn scales_that_per_zone_counts_cannot_express_are_named() {
        assert_eq!(scale_problem(&pool("a", 4, false, 3, 6), 3), None);
        assert_eq!(scale_problem(&pool("a", 4, false, 0, 10), 3), None);
        assert_eq!(scale_problem(&pool("a", 4, false, 4, 6), 3), None, "2 per zone = 6");
        let msg = scale_problem(&pool("a", 4, false, 1, 2), 3).unwrap();
        assert!(msg.contains("1 per zone in 3 zones is 3"), "{msg}");
        assert!(scale_problem(&pool("a", 4, false, 0, 0), 1).unwrap().contains("max 0"));
    }
}
