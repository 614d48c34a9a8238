//! The schemas are sound, every lowered resource fits its type's schema and is stamped with
//! exactly what lowering used to set (an autoscaled pool's count delegated, a fixed one's
//! owned), and a malformed read is refused with its path.

use std::collections::BTreeMap;

use serde_json::json;
use tessera_provider_api::{
    ApiAccess, Arch, Attrs, ClusterTemplate, CoreServices, FieldPolicy, Machine, Network, Operation, PoolTemplate,
    ProviderRef, Replacement, Taint, TaintEffect, catalogs,
};

use super::types;
use crate::lower::{self, CLUSTER, GROUP, POOL};

fn pool(name: &str, min: u32, max: u32, spot: bool, taint: Option<TaintEffect>) -> PoolTemplate {
    PoolTemplate {
        name: name.into(),
        machine: Machine { vcpu: 4, memory_gib: 16, arch: Arch::Amd64, spot },
        min,
        max,
        labels: BTreeMap::from([("tier".to_string(), name.to_string())]),
        taints: taint
            .map(|effect| Taint { key: "dedicated".into(), value: Some(name.into()), effect })
            .into_iter()
            .collect(),
    }
}

fn template(pools: Vec<PoolTemplate>, network: Network, api_access: ApiAccess) -> ClusterTemplate {
    ClusterTemplate {
        fleet: "f".into(),
        placement: "az".into(),
        region: "westeurope".into(),
        zones: vec!["1".into(), "2".into()],
        kubernetes_version: "1.31".into(),
        network,
        api_access,
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

/// A template, the provider it is lowered for, and whether its system pool autoscales.
struct Case {
    template: ClusterTemplate,
    provider: ProviderRef,
    system_autoscaled: bool,
}

fn cases() -> Vec<Case> {
    let managed = || Network::Managed { cidr: "10.0.0.0/16".into() };
    let existing = Network::Existing { id: "vnet-1".into(), subnets: vec!["/subscriptions/s/subnets/a".into()] };
    vec![
        // A fixed system pool, a fixed tainted pool and an autoscaled spot pool; our own group.
        Case {
            template: template(
                vec![
                    pool("system", 2, 2, false, None),
                    pool("infra", 1, 1, false, Some(TaintEffect::NoSchedule)),
                    pool("batch", 0, 5, true, None),
                ],
                managed(),
                ApiAccess::default(),
            ),
            provider: provider(None),
            system_autoscaled: false,
        },
        // An autoscaled system pool, an existing network and resource group, a private API.
        Case {
            template: template(
                vec![pool("general", 1, 3, false, None), pool("fixed", 3, 3, false, None)],
                existing,
                ApiAccess { public: false, allowed_cidrs: Vec::new(), private: true },
            ),
            provider: provider(Some("rg-platform")),
            system_autoscaled: true,
        },
        // No pool fit for the system pool: Tessera's dedicated one (1..3); restricted API ranges.
        Case {
            template: template(
                vec![pool("tainted", 1, 4, false, Some(TaintEffect::NoExecute))],
                managed(),
                ApiAccess { public: true, allowed_cidrs: vec!["203.0.113.0/24".into()], private: false },
            ),
            provider: provider(None),
            system_autoscaled: true,
        },
    ]
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// What lowering used to set, written out.
struct Expected {
    policies: BTreeMap<String, FieldPolicy>,
    replace_on: Vec<String>,
    outputs: Vec<String>,
    replacement: Replacement,
    version_attr: Option<String>,
}

fn expected(rtype: &str, autoscaled: bool) -> Expected {
    let mut policies = BTreeMap::new();
    match rtype {
        GROUP => Expected {
            policies,
            replace_on: strings(&["name", "location"]),
            outputs: strings(&["name"]),
            replacement: Replacement::DestroyBeforeCreate,
            version_attr: None,
        },
        CLUSTER => {
            if autoscaled {
                policies.insert("systemPoolCount".to_string(), FieldPolicy::Delegated);
            }
            Expected {
                policies,
                replace_on: strings(&[
                    "name",
                    "resourceGroup",
                    "location",
                    "dnsPrefix",
                    "network",
                    "/apiServerAccess/enablePrivateCluster",
                ]),
                outputs: strings(&["name", "endpoint", "certificateAuthority"]),
                replacement: Replacement::DestroyBeforeCreate,
                version_attr: Some("kubernetesVersion".into()),
            }
        }
        POOL => {
            if autoscaled {
                policies.insert("count".to_string(), FieldPolicy::Delegated);
            }
            Expected {
                policies,
                replace_on: strings(&[
                    "cluster",
                    "name",
                    "vmSize",
                    "scaleSetPriority",
                    "availabilityZones",
                    "vnetSubnetID",
                ]),
                outputs: Vec::new(),
                replacement: Replacement::CreateBeforeDestroy,
                version_attr: None,
            }
        }
        other => panic!("unexpected type {other}"),
    }
}

#[test]
fn every_schema_is_sound() {
    let types = types();
    assert_eq!(types.schemas().count(), 3);
    for schema in types.schemas() {
        assert!(schema.problems().is_empty(), "{:?}", schema.problems());
    }
    assert_eq!(types.estimate(CLUSTER, Operation::Update).as_secs(), 600);
    assert_eq!(types.estimate(POOL, Operation::Create).as_secs(), 300);
    assert_eq!(types.estimate(GROUP, Operation::Delete).as_secs(), 120);
    assert_eq!(types.estimate(GROUP, Operation::Create).as_secs(), 5);
}

#[test]
fn every_lowered_resource_fits_its_schema_and_is_stamped_as_lowering_used_to() {
    let types = types();
    let (mut delegated, mut owned) = (0, 0);
    for case in cases() {
        let t = &case.template;
        for mut spec in lower::lower(&catalogs::aks(), t, &case.provider) {
            let schema = types.schema(spec.rtype()).unwrap_or_else(|| panic!("no schema for {}", spec.rtype()));
            schema.stamp(&mut spec);
            assert_eq!(schema.check_spec(&spec), Ok(()), "{}", spec.address);
            let autoscaled = match spec.rtype() {
                CLUSTER => case.system_autoscaled,
                POOL => t.pools.iter().any(|p| p.name == spec.address.name && p.min < p.max),
                _ => false,
            };
            if spec.rtype() == POOL {
                if autoscaled { delegated += 1 } else { owned += 1 }
            }
            let want = expected(spec.rtype(), autoscaled);
            assert_eq!(spec.policies, want.policies, "{}", spec.address);
            assert_eq!(spec.replace_on, want.replace_on, "{}", spec.address);
            assert_eq!(spec.outputs, want.outputs, "{}", spec.address);
            assert_eq!(spec.replacement, want.replacement, "{}", spec.address);
            assert_eq!(spec.version_attr, want.version_attr, "{}", spec.address);
        }
    }
    assert!(delegated > 0 && owned > 0, "both autoscaled and fixed pools were lowered");
}

fn pool_read() -> Attrs {
    serde_json::from_value(json!({
        "cluster": "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerService/managedClusters/c",
        "name": "batch1a2b", "mode": "User", "vmSize": "Standard_D4s_v5", "scaleSetPriority": "Spot",
        "enableAutoScaling": true, "minCount": 0, "maxCount": 5, "count": 2, "nodeLabels": {"tier": "batch"},
        "nodeTaints": [], "availabilityZones": ["1", "2"], "orchestratorVersion": "1.31", "vnetSubnetID": null,
        "tags": {"tessera.dev/fleet": "f"}
    }))
    .unwrap()
}

#[test]
fn a_read_missing_a_value_or_of_the_wrong_type_is_refused_with_its_path() {
    let types = types();
    let schema = types.schema(POOL).unwrap();
    assert!(schema.check_read("pool-1", &pool_read()).is_ok());

    let mut missing = pool_read();
    missing.insert("vmSize".into(), serde_json::Value::Null);
    let err = schema.check_read("pool-1", &missing).unwrap_err().to_string();
    assert!(err.contains("has no `/vmSize`") && err.contains("pool-1"), "{err}");

    let mut wrong = pool_read();
    wrong.insert("count".into(), json!("2"));
    let err = schema.check_read("pool-1", &wrong).unwrap_err().to_string();
    assert!(err.contains("`/count`") && err.contains("an integer"), "{err}");
}

#[test]
fn a_cluster_read_without_its_system_pool_or_with_a_malformed_one_is_refused() {
    let types = types();
    let schema = types.schema(CLUSTER).unwrap();
    let mut profile: serde_json::Map<String, serde_json::Value> = pool_read().into_iter().collect();
    for k in ["cluster", "mode", "count", "orchestratorVersion", "vnetSubnetID", "tags"] {
        profile.remove(k);
    }
    let mut read: Attrs = serde_json::from_value(json!({
        "name": "f-az", "resourceGroup": "g", "location": "westeurope", "kubernetesVersion": "1.31",
        "dnsPrefix": "f-az", "network": {"networkPlugin": "azure", "networkPluginMode": "overlay", "vnetSubnetID": null},
        "systemPool": profile, "systemPoolCount": 2,
        "apiServerAccess": {"enablePrivateCluster": false, "authorizedIPRanges": []}, "tags": {},
        "endpoint": null, "certificateAuthority": null
    }))
    .unwrap();
    assert!(schema.check_read("c", &read).is_ok(), "a cluster being created has no endpoint yet");
    read.get_mut("systemPool").and_then(|p| p.as_object_mut()).unwrap().remove("vmSize");
    let err = schema.check_read("c", &read).unwrap_err().to_string();
    assert!(err.contains("has no `/systemPool/vmSize`"), "{err}");
    read.insert("systemPool".into(), serde_json::Value::Null);
    let err = schema.check_read("c", &read).unwrap_err().to_string();
    assert!(err.contains("has no `/systemPool`"), "{err}");
}
