//! The schemas are sound, every lowered resource fits its type's schema and is stamped with
//! exactly what lowering used to set, and a malformed read is refused with its path.

use std::collections::BTreeMap;

use serde_json::json;
use tessera_provider_api::{
    ApiAccess, Arch, Attrs, ClusterTemplate, CoreServices, FieldPolicy, Machine, Network, PoolTemplate, ProviderRef,
    Replacement, ResourceSpec, Taint, TaintEffect, catalogs,
};

use super::types;
use crate::lower::{self, CLUSTER, NODEGROUP, ROLE, SUBNET, VPC};

fn pool(name: &str, min: u32, max: u32, spot: bool) -> PoolTemplate {
    PoolTemplate {
        name: name.into(),
        machine: Machine { vcpu: 4, memory_gib: 16, arch: Arch::Amd64, spot },
        min,
        max,
        labels: BTreeMap::from([("tier".to_string(), name.to_string())]),
        taints: vec![Taint { key: "dedicated".into(), value: None, effect: TaintEffect::NoSchedule }],
    }
}

fn template(network: Network, api_access: ApiAccess, audit_logs: bool) -> ClusterTemplate {
    ClusterTemplate {
        fleet: "f".into(),
        placement: "eu".into(),
        region: "eu-west-1".into(),
        zones: vec!["eu-west-1a".into(), "eu-west-1b".into()],
        kubernetes_version: "1.31".into(),
        network,
        api_access,
        pools: vec![pool("system", 1, 3, false), pool("fixed", 2, 2, false), pool("spot", 0, 5, true)],
        core_services: CoreServices { monitoring: None, logging: None, audit_logs },
    }
}

/// Managed and existing networks, open, restricted and private API access, logs on and off.
fn templates() -> Vec<ClusterTemplate> {
    let managed = || Network::Managed { cidr: "10.0.0.0/16".into() };
    let existing = Network::Existing { id: "vpc-1".into(), subnets: vec!["subnet-b".into(), "subnet-a".into()] };
    vec![
        template(managed(), ApiAccess::default(), true),
        template(
            managed(),
            ApiAccess { public: true, allowed_cidrs: vec!["203.0.113.0/24".into()], private: true },
            false,
        ),
        template(existing, ApiAccess { public: false, allowed_cidrs: Vec::new(), private: true }, true),
    ]
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// What lowering used to set on each type, written out: the stamp must reproduce it.
struct Expected {
    policies: BTreeMap<String, FieldPolicy>,
    replace_on: Vec<String>,
    outputs: Vec<String>,
    replacement: Replacement,
    version_attr: Option<String>,
}

fn expected(rtype: &str) -> Expected {
    let ignored = |names: &[&str]| names.iter().map(|n| (n.to_string(), FieldPolicy::Ignored)).collect();
    let create_first = |replace_on: &[&str]| Expected {
        policies: BTreeMap::new(),
        replace_on: strings(replace_on),
        outputs: Vec::new(),
        replacement: Replacement::CreateBeforeDestroy,
        version_attr: None,
    };
    match rtype {
        VPC => create_first(&["cidr"]),
        SUBNET => create_first(&["cidr", "zone", "vpcId"]),
        ROLE => Expected {
            policies: ignored(&["service"]),
            replace_on: strings(&["name"]),
            outputs: strings(&["arn"]),
            replacement: Replacement::DestroyBeforeCreate,
            version_attr: None,
        },
        CLUSTER => Expected {
            policies: BTreeMap::new(),
            replace_on: strings(&["name", "roleArn", "subnetIds"]),
            outputs: strings(&["name", "endpoint", "certificateAuthority", "arn"]),
            replacement: Replacement::DestroyBeforeCreate,
            version_attr: Some("version".into()),
        },
        NODEGROUP => {
            let mut policies: BTreeMap<String, FieldPolicy> = BTreeMap::new();
            policies.insert("desiredSize".into(), FieldPolicy::Delegated);
            Expected {
                policies,
                ..create_first(&[
                    "cluster",
                    "name",
                    "instanceType",
                    "amiType",
                    "capacityType",
                    "nodeRoleArn",
                    "subnetIds",
                ])
            }
        }
        other => panic!("unexpected type {other}"),
    }
}

#[test]
fn every_schema_is_sound() {
    let types = types();
    assert_eq!(types.schemas().count(), 5);
    for schema in types.schemas() {
        assert!(schema.problems().is_empty(), "{:?}", schema.problems());
    }
}

#[test]
fn every_lowered_resource_fits_its_schema_and_is_stamped_as_lowering_used_to() {
    let types = types();
    let provider = ProviderRef::new("eks", "eu-west-1");
    let mut seen = std::collections::BTreeSet::new();
    for t in templates() {
        let specs = lower::lower(&catalogs::eks(), &t, &provider);
        assert_eq!(specs.iter().filter(|s| s.rtype() == NODEGROUP).count(), 3);
        for mut spec in specs {
            let schema = types.schema(spec.rtype()).unwrap_or_else(|| panic!("no schema for {}", spec.rtype()));
            schema.stamp(&mut spec);
            assert_eq!(schema.check_spec(&spec), Ok(()), "{}", spec.address);
            let want = expected(spec.rtype());
            assert_eq!(spec.policies, want.policies, "{}", spec.address);
            assert_eq!(spec.replace_on, want.replace_on, "{}", spec.address);
            assert_eq!(spec.outputs, want.outputs, "{}", spec.address);
            assert_eq!(spec.replacement, want.replacement, "{}", spec.address);
            assert_eq!(spec.version_attr, want.version_attr, "{}", spec.address);
            seen.insert(spec.rtype().to_string());
        }
    }
    assert_eq!(seen.len(), 5, "every type was lowered: {seen:?}");
}

#[test]
fn estimates_are_the_backends() {
    use std::time::Duration;
    use tessera_provider_api::Operation;
    let types = types();
    let secs = |rtype: &str, op| types.estimate(rtype, op);
    assert_eq!(secs(CLUSTER, Operation::Create), Duration::from_secs(600));
    assert_eq!(secs(CLUSTER, Operation::Update), Duration::from_secs(480));
    assert_eq!(secs(NODEGROUP, Operation::Delete), Duration::from_secs(240));
    assert_eq!(secs(SUBNET, Operation::Delete), Duration::from_secs(20));
    assert_eq!(secs(ROLE, Operation::Create), Duration::from_secs(5));
}

fn node_group_read() -> Attrs {
    serde_json::from_value(json!({
        "cluster": "f-eu", "name": "system-1a2b3c4d", "instanceType": "m6i.xlarge",
        "amiType": "AL2023_x86_64_STANDARD", "capacityType": "ON_DEMAND",
        "minSize": 1, "maxSize": 3, "desiredSize": 2, "labels": {"tier": "system"},
        "taints": [{"key": "dedicated", "value": "", "effect": "NO_SCHEDULE"}], "version": "1.31",
        "nodeRoleArn": "arn:aws:iam::123456789012:role/f-eu-node", "subnetIds": ["subnet-a"],
        "tags": {"tessera.dev/fleet": "f"}, "arn": "arn:aws:eks:eu-west-1:123456789012:nodegroup/f-eu/x/1"
    }))
    .unwrap()
}

#[test]
fn a_read_missing_a_value_or_of_the_wrong_type_is_refused_with_its_path() {
    let types = types();
    let schema = types.schema(NODEGROUP).unwrap();
    assert!(schema.check_read("f-eu/x", &node_group_read()).is_ok());

    let mut missing = node_group_read();
    missing.insert("nodeRoleArn".into(), serde_json::Value::Null);
    let err = schema.check_read("f-eu/x", &missing).unwrap_err().to_string();
    assert!(err.contains("has no `/nodeRoleArn`") && err.contains("f-eu/x"), "{err}");

    let mut wrong = node_group_read();
    wrong.insert("desiredSize".into(), json!("2"));
    let err = schema.check_read("f-eu/x", &wrong).unwrap_err().to_string();
    assert!(err.contains("`/desiredSize`") && err.contains("an integer"), "{err}");

    let mut taint = node_group_read();
    taint.insert("taints".into(), json!([{"key": null, "value": "", "effect": "NO_SCHEDULE"}]));
    let err = schema.check_read("f-eu/x", &taint).unwrap_err().to_string();
    assert!(err.contains("`/taints/0/key`"), "{err}");
}

#[test]
fn a_cluster_being_created_may_lack_its_endpoint_but_never_its_role() {
    let types = types();
    let schema = types.schema(CLUSTER).unwrap();
    let mut read: Attrs = serde_json::from_value(json!({
        "name": "f-eu", "version": "1.31", "logTypes": [], "endpointPublicAccess": true,
        "endpointPrivateAccess": true, "publicAccessCidrs": ["0.0.0.0/0"],
        "roleArn": "arn:aws:iam::123456789012:role/f-eu-cluster", "subnetIds": ["subnet-a"], "tags": {},
        "arn": "arn:aws:eks:eu-west-1:123456789012:cluster/f-eu", "endpoint": null, "certificateAuthority": null
    }))
    .unwrap();
    assert!(schema.check_read("f-eu", &read).is_ok());
    read.remove("roleArn");
    let err = schema.check_read("f-eu", &read).unwrap_err().to_string();
    assert!(err.contains("has no `/roleArn`"), "{err}");
}

#[test]
fn a_hand_made_spec_missing_a_lowered_value_is_refused() {
    let types = types();
    let provider = ProviderRef::new("eks", "eu-west-1");
    let t = &templates()[0];
    let mut spec: ResourceSpec =
        lower::lower(&catalogs::eks(), t, &provider).into_iter().find(|s| s.rtype() == VPC).unwrap();
    spec.attrs.remove("cidr");
    let err = types.schema(VPC).unwrap().check_spec(&spec).unwrap_err();
    assert!(err.contains("has no `/cidr`"), "{err}");
}
