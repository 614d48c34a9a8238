//! The EKS backend end to end against a real AWS emulator (moto, in server mode): the AWS SDK
//! drives the whole lifecycle, and every claim is checked through the SDK's own describe and list
//! calls, not through Tessera's state.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_ec2::types::Filter;
use common::Harness;

/// The shipped two-cluster spec, infrastructure only (moto's clusters have no Kubernetes API;
/// tests/eks_core_services.rs installs core services on EKS against the Kubernetes fixture).
fn spec_text() -> String {
    common::without_core_services(SPEC_FILE)
}
use common::moto::{Aws, KEY, Moto, SECRET, aws};
use tessera::plan::ActionKind;
use tessera::spec;
use tessera::state::{SqliteStore, StateStore};
use tessera_sim::Faults;

const SPEC_FILE: &str = include_str!("../specs/eks-two-clusters.yaml");
const PLACEMENTS: [(&str, &str); 2] = [("eu", "eu-west-1"), ("us", "us-east-2")];

async fn nodegroups(a: &Aws, cluster: &str) -> HashMap<String, aws_sdk_eks::types::Nodegroup> {
    let names = a.eks.list_nodegroups().cluster_name(cluster).send().await.unwrap().nodegroups().to_vec();
    let mut out = HashMap::new();
    for n in names {
        let ng = a.eks.describe_nodegroup().cluster_name(cluster).nodegroup_name(&n).send().await.unwrap();
        let ng = ng.nodegroup().unwrap().clone();
        let pool = ng.labels().and_then(|l| l.get("tier")).cloned().unwrap_or_default();
        out.insert(pool, ng);
    }
    out
}

fn tag_filter(fleet: &str) -> Filter {
    Filter::builder().name("tag:tessera.dev/fleet").values(fleet).build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eks_lifecycle_against_moto() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let state_path = dir.path().join("state.db");
    let store = Arc::new(SqliteStore::open(&state_path).unwrap());
    let h = Harness::with_registry(Faults::default(), store, |r| r.with_eks(moto.eks_settings()));
    let spec_path = dir.path().join("eks.yaml");
    std::fs::write(&spec_path, spec_text()).unwrap();
    let fleet = spec::load(&spec_path).unwrap();

    // 1. Apply: per cluster a VPC, 3 subnets, 2 roles, the cluster and 2 node groups.
    let report = h.apply(&fleet).await;
    assert!(report.is_success(), "{report:#?}");
    assert_eq!(report.succeeded(), 18);

    // 2. Everything, as the SDK sees it.
    for (placement, region) in PLACEMENTS {
        let a = aws(&moto, region).await;
        let name = format!("eks-pair-{placement}");
        let cl = a.eks.describe_cluster().name(&name).send().await.unwrap().cluster().unwrap().clone();
        assert_eq!(cl.version(), Some("1.31"));
        let mut logs: Vec<&str> = cl
            .logging()
            .unwrap()
            .cluster_logging()
            .iter()
            .filter(|l| l.enabled() == Some(true))
            .flat_map(|l| l.types().iter().map(|t| t.as_str()))
            .collect();
        logs.sort_unstable();
        assert_eq!(logs, ["api", "audit", "authenticator"]);
        let tags = cl.tags().unwrap();
        assert_eq!(tags["tessera.dev/fleet"], "eks-pair");
        assert_eq!(tags["tessera.dev/address"], format!("{placement}/eks.cluster/main"));
        assert!(cl.role_arn().unwrap().ends_with(&format!("role/{name}-cluster")));

        let subnet_ids = cl.resources_vpc_config().unwrap().subnet_ids().to_vec();
        assert_eq!(subnet_ids.len(), 3);
        let subnets = a.ec2.describe_subnets().set_subnet_ids(Some(subnet_ids)).send().await.unwrap();
        let mut zones: Vec<&str> = subnets.subnets().iter().filter_map(|s| s.availability_zone()).collect();
        zones.sort_unstable();
        assert_eq!(zones, [format!("{region}a"), format!("{region}b"), format!("{region}c")]);
        let mut cidrs: Vec<&str> = subnets.subnets().iter().filter_map(|s| s.cidr_block()).collect();
        cidrs.sort_unstable();
        assert_eq!(cidrs, ["10.60.0.0/20", "10.60.16.0/20", "10.60.32.0/20"]);
        let vpcs = a.ec2.describe_vpcs().filters(tag_filter("eks-pair")).send().await.unwrap();
        assert_eq!(vpcs.vpcs().len(), 1, "one VPC per region");
        assert_eq!(vpcs.vpcs()[0].cidr_block(), Some("10.60.0.0/16"));

        for (role, policies) in [("cluster", 1), ("node", 3)] {
            let attached =
                a.iam.list_attached_role_policies().role_name(format!("{name}-{role}")).send().await.unwrap();
            assert_eq!(attached.attached_policies().len(), policies, "{role} role policies");
        }

        let ngs = nodegroups(&a, &name).await;
        let system = &ngs["system"];
        assert_eq!(system.instance_types(), ["m6i.xlarge"]);
        assert_eq!(system.capacity_type().map(|c| c.as_str()), Some("ON_DEMAND"));
        assert_eq!(system.ami_type().map(|c| c.as_str()), Some("AL2023_x86_64_STANDARD"));
        let s = system.scaling_config().unwrap();
        assert_eq!((s.min_size(), s.max_size()), (Some(2), Some(4)));
        assert!(system.taints().is_empty());
        assert!(system.node_role().unwrap().ends_with(&format!("role/{name}-node")));
        let batch = &ngs["batch"];
        assert_eq!(batch.instance_types(), ["m6i.2xlarge"]);
        assert_eq!(batch.capacity_type().map(|c| c.as_str()), Some("SPOT"));
        let t = &batch.taints()[0];
        assert_eq!(
            (t.key(), t.value(), t.effect().map(|e| e.as_str())),
            (Some("capacity"), Some("spot"), Some("NO_SCHEDULE"))
        );
        assert_eq!(batch.tags().unwrap()["tessera.dev/address"], format!("{placement}/eks.nodegroup/batch"));
    }

    // 3. Nothing to do.
    let again = h.plan(&fleet).await;
    assert!(!again.has_changes() && again.drift.is_empty(), "{}", tessera::plan::render_human(&again));

    // 4. Scale and label changes are in-place updates (UpdateNodegroupConfig); turning audit logs
    //    off updates the control plane's logging (UpdateClusterConfig).
    let edited = spec_text()
        .replace("scale: { min: 2, max: 4 }", "scale: { min: 2, max: 6 }")
        .replace("labels: { tier: system }", "labels: { tier: system, team: platform }")
        .replace("auditLogs: true", "auditLogs: false");
    std::fs::write(&spec_path, &edited).unwrap();
    let scaled = spec::load(&spec_path).unwrap();
    let plan = h.plan(&scaled).await;
    assert_eq!(plan.actions.len(), 4, "{}", tessera::plan::render_human(&plan));
    assert!(plan.actions.iter().all(|a| a.kind == ActionKind::Update));
    let eu = aws(&moto, "eu-west-1").await;
    let before = nodegroups(&eu, "eks-pair-eu").await["system"].nodegroup_name().unwrap().to_string();
    let report = h.apply_plan(&plan, &scaled).await;
    assert!(report.is_success(), "{report:#?}");
    let after = nodegroups(&eu, "eks-pair-eu").await;
    assert_eq!(after["system"].nodegroup_name().unwrap(), before, "same node group");
    assert_eq!(after["system"].scaling_config().unwrap().max_size(), Some(6));
    assert_eq!(after["system"].labels().unwrap()["team"], "platform");
    let cl = eu.eks.describe_cluster().name("eks-pair-eu").send().await.unwrap();
    let enabled =
        cl.cluster().unwrap().logging().unwrap().cluster_logging().iter().filter(|l| l.enabled() == Some(true)).count();
    assert_eq!(enabled, 0, "audit log types turned off");
    assert!(!h.plan(&scaled).await.has_changes());

    // 5. A machine change replaces the node group: new one first, then the old one goes.
    let resized = edited.replace("vcpu: 8, memoryGiB: 32", "vcpu: 16, memoryGiB: 64");
    std::fs::write(&spec_path, &resized).unwrap();
    let resized = spec::load(&spec_path).unwrap();
    let plan = h.plan(&resized).await;
    assert_eq!(plan.count(ActionKind::Replace), 2, "{}", tessera::plan::render_human(&plan));
    let old_batch = after["batch"].nodegroup_name().unwrap().to_string();
    assert!(h.apply_plan(&plan, &resized).await.is_success());
    let now = nodegroups(&eu, "eks-pair-eu").await;
    assert_eq!(now.len(), 2, "the old batch group is gone: {:?}", now.keys());
    assert_ne!(now["batch"].nodegroup_name().unwrap(), old_batch);
    assert_eq!(now["batch"].instance_types(), ["m6i.4xlarge"]);
    assert!(!h.plan(&resized).await.has_changes());

    // 6. A change made outside Tessera is drift: in the plan, and `tessera drift` exits 2.
    let us = aws(&moto, "us-east-2").await;
    let system_us = nodegroups(&us, "eks-pair-us").await["system"].nodegroup_name().unwrap().to_string();
    us.eks
        .update_nodegroup_config()
        .cluster_name("eks-pair-us")
        .nodegroup_name(&system_us)
        .scaling_config(
            aws_sdk_eks::types::NodegroupScalingConfig::builder().min_size(2).max_size(9).desired_size(2).build(),
        )
        .send()
        .await
        .unwrap();
    let drifted = h.plan(&resized).await;
    let d = drifted.drift.iter().find(|d| d.address.to_string() == "us/eks.nodegroup/system").expect("drift reported");
    assert_eq!((d.field.as_str(), d.recorded.clone(), d.live.clone()), ("maxSize", Some(6.into()), Some(9.into())));
    let out = assert_cmd::Command::cargo_bin("tessera")
        .unwrap()
        .args(["drift"])
        .arg(&spec_path)
        .env("TESSERA_STATE", format!("sqlite://{}", state_path.display()))
        .env("TESSERA_SIM_CLOUD", dir.path().join("sim.db"))
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("us/eks.nodegroup/system  maxSize: recorded 6, found 9"), "{text}");

    // A console tag on the cluster is drift too, and apply puts both back.
    let arn = us
        .eks
        .describe_cluster()
        .name("eks-pair-us")
        .send()
        .await
        .unwrap()
        .cluster()
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    us.eks.tag_resource().resource_arn(&arn).tags("owner", "someone").send().await.unwrap();
    let drifted = h.plan(&resized).await;
    assert!(
        drifted.drift.iter().any(|d| d.address.to_string() == "us/eks.cluster/main"
            && d.field == "tags.owner"
            && serde_json::to_value(&d.path).unwrap() == serde_json::json!(["tags", "owner"])),
        "{:?}",
        drifted.drift
    );
    assert!(h.apply_plan(&drifted, &resized).await.is_success());
    let cl = us.eks.describe_cluster().name("eks-pair-us").send().await.unwrap();
    assert!(!cl.cluster().unwrap().tags().unwrap().contains_key("owner"), "console tag removed");
    let ng = &nodegroups(&us, "eks-pair-us").await["system"];
    assert_eq!(ng.scaling_config().unwrap().max_size(), Some(6), "console scaling reverted");
    let settled = h.plan(&resized).await;
    assert!(!settled.has_changes() && settled.drift.is_empty(), "{}", tessera::plan::render_human(&settled));

    // The kubeconfig authenticates through `aws eks get-token`; no token is written.
    let out = assert_cmd::Command::cargo_bin("tessera")
        .unwrap()
        .args(["kubeconfig", "eu"])
        .env("TESSERA_STATE", format!("sqlite://{}", state_path.display()))
        .env("TESSERA_SIM_CLOUD", dir.path().join("sim.db"))
        .output()
        .unwrap();
    let kubeconfig = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for needle in ["get-token", "eks-pair-eu", "certificate-authority-data", "eu-west-1"] {
        assert!(kubeconfig.contains(needle), "{needle} missing from {kubeconfig}");
    }
    assert!(!kubeconfig.contains("token:"), "{kubeconfig}");

    // 7. Destroy leaves nothing behind.
    let report = h.destroy(&resized).await;
    assert!(report.is_success(), "{report:#?}");
    for (placement, region) in PLACEMENTS {
        let a = aws(&moto, region).await;
        assert!(a.eks.list_clusters().send().await.unwrap().clusters().is_empty());
        assert!(a.ec2.describe_vpcs().filters(tag_filter("eks-pair")).send().await.unwrap().vpcs().is_empty());
        assert!(a.ec2.describe_subnets().filters(tag_filter("eks-pair")).send().await.unwrap().subnets().is_empty());
        for role in ["cluster", "node"] {
            assert!(
                a.iam.get_role().role_name(format!("eks-pair-{placement}-{role}")).send().await.is_err(),
                "{role} role left"
            );
        }
    }
    assert!(h.store.resources().await.unwrap().is_empty());
}

/// `network.existing`: the cluster joins a VPC Tessera does not own, and destroy leaves it alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_network_is_used_and_left_alone() {
    let moto = Moto::start();
    let a = aws(&moto, "eu-west-1").await;
    let vpc = a
        .ec2
        .create_vpc()
        .cidr_block("10.99.0.0/16")
        .send()
        .await
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_string();
    let mut subnets = Vec::new();
    for (cidr, zone) in [("10.99.0.0/20", "eu-west-1a"), ("10.99.16.0/20", "eu-west-1b")] {
        let s = a.ec2.create_subnet().vpc_id(&vpc).cidr_block(cidr).availability_zone(zone).send().await.unwrap();
        subnets.push(s.subnet().unwrap().subnet_id().unwrap().to_string());
    }
    let spec = spec_text().replace("    - { name: us, provider: eks, region: us-east-2 }\n", "").replace(
        "    - { name: eu, provider: eks, region: eu-west-1 }",
        &format!(
            "    - name: eu\n      provider: eks\n      region: eu-west-1\n      overrides:\n        network:\n          existing: {{ id: {vpc}, subnets: [{}] }}",
            subnets.join(", ")
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let spec_path = dir.path().join("existing.yaml");
    std::fs::write(&spec_path, spec).unwrap();
    let fleet = spec::load(&spec_path).unwrap();
    let h = Harness::with_registry(Faults::default(), Arc::new(SqliteStore::in_memory().unwrap()), |r| {
        r.with_eks(moto.eks_settings())
    });
    let plan = h.plan(&fleet).await;
    assert!(
        plan.actions.iter().all(|a| !a.address.rtype.contains("vpc") && !a.address.rtype.contains("subnet")),
        "no network resources"
    );
    assert!(h.apply_plan(&plan, &fleet).await.is_success());
    let cl = a.eks.describe_cluster().name("eks-pair-eu").send().await.unwrap();
    assert_eq!(cl.cluster().unwrap().resources_vpc_config().unwrap().subnet_ids(), subnets.as_slice());
    let ng = nodegroups(&a, "eks-pair-eu").await;
    assert_eq!(ng["system"].subnets(), subnets.as_slice());
    assert!(!h.plan(&fleet).await.has_changes());
    assert!(h.destroy(&fleet).await.is_success());
    let left = a.ec2.describe_subnets().set_subnet_ids(Some(subnets.clone())).send().await.unwrap();
    assert_eq!(left.subnets().len(), 2, "the existing subnets are not Tessera's to delete");
    assert_eq!(a.ec2.describe_vpcs().vpc_ids(&vpc).send().await.unwrap().vpcs().len(), 1);
}
