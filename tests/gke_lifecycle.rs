//! The GKE backend end to end through the CLI, against the GKE fixture (a real HTTP server that
//! validates every body against the discovery document): apply a two-pool fleet (one tainted,
//! one spot), check it through the fixture's own state, re-plan clean, scale in place, replace a
//! machine (create before delete, from the request log), upgrade the control plane then the
//! pools, an out-of-band change is drift (exit 2), destroy leaves nothing.

mod common;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use common::chaos::Run;
use serde_json::{Value, json};
use tessera_gke_fixture::{GkeFixture, RecordedRequest};

const CLUSTER: &str = "projects/acme-platform/locations/europe-west4/clusters/gke-life-gcp-eu";

pub fn spec(fleet: &str, version: &str, system_vcpu: u32, batch_max: u32, extra_pools: &str) -> String {
    common::without_core_services(&format!(
        "apiVersion: tessera.dev/v1alpha1
kind: Fleet
metadata: {{ name: {fleet} }}
spec:
  kubernetes: {{ version: \"{version}\" }}
  nodePools:
    - name: system
      machine: {{ vcpu: {system_vcpu}, memoryGiB: {memory}, arch: amd64 }}
      scale: {{ min: 3, max: 6 }}
      labels: {{ tier: system }}
      taints: [{{ key: dedicated, value: system, effect: NoSchedule }}]
    - name: batch
      machine: {{ vcpu: 8, memoryGiB: 32, arch: amd64, spot: true }}
      scale: {{ min: 0, max: {batch_max} }}
      labels: {{ tier: batch }}
      taints: [{{ key: capacity, value: spot, effect: PreferNoSchedule }}]
{extra_pools}  placements:
    - {{ name: gcp-eu, provider: gke, region: europe-west4, scope: {{ project: acme-platform }} }}
",
        memory = system_vcpu * 4
    ))
}

pub fn run(dir: &Path, fixture: &GkeFixture) -> Run {
    Run {
        dir: dir.to_path_buf(),
        env: vec![("GKE_ENDPOINT".into(), fixture.url()), ("TESSERA_POLL_INTERVAL".into(), "20ms".into())],
    }
}

pub fn tessera(run: &Run, args: &[&str]) -> Output {
    run.tessera().stdout(Stdio::piped()).args(args).output().expect("spawn tessera")
}

pub fn ok(out: &Output) -> String {
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "tessera failed ({:?}):\n{text}", out.status.code());
    text
}

fn pool<'a>(pools: &'a [Value], tier: &str) -> &'a Value {
    pools
        .iter()
        .find(|p| p["config"]["labels"]["tier"] == tier)
        .unwrap_or_else(|| panic!("no {tier} pool in {pools:#?}"))
}

/// Requests since `from` with this discovery method id (its last part).
fn calls<'a>(requests: &'a [RecordedRequest], from: usize, method: &str) -> Vec<(usize, &'a RecordedRequest)> {
    requests
        .iter()
        .enumerate()
        .skip(from)
        .filter(|(_, r)| r.method_id.as_deref().is_some_and(|m| m.ends_with(method)) && r.status == 200)
        .collect()
}

#[test]
fn gke_lifecycle_through_the_cli() {
    let fixture = GkeFixture::builder().operation_time(Duration::from_millis(60)).start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &fixture);
    let file = dir.path().join("fleet.yaml");
    let write = |text: String| std::fs::write(&file, text).unwrap();
    let path = file.to_str().unwrap();

    // 1. Apply: one regional cluster with its first pool in the create body, one more pool.
    write(spec("gke-life", "1.31", 4, 10, ""));
    ok(&tessera(&r, &["apply", path, "--auto-approve"]));
    let cluster = fixture.cluster(CLUSTER).expect("the cluster exists");
    assert_eq!(cluster["status"], "RUNNING");
    assert_eq!(cluster["location"], "europe-west4");
    assert_eq!(cluster["locations"], json!(["europe-west4-a", "europe-west4-b", "europe-west4-c"]));
    assert_eq!(cluster["currentMasterVersion"], "1.31.5-gke.1023000");
    assert_eq!(cluster["releaseChannel"], json!({}), "UNSPECIFIED, the proto default, is not written");
    assert_eq!(
        cluster["loggingConfig"]["componentConfig"]["enableComponents"],
        json!(["APISERVER", "SYSTEM_COMPONENTS", "WORKLOADS"])
    );
    assert_eq!(
        cluster["resourceLabels"],
        json!({ "tessera-dev_fleet": "gke-life", "tessera-dev_address": "gcp-eu_2fgke_2ecluster_2fmain" })
    );
    let requests = fixture.requests();
    let create = calls(&requests, 0, "clusters.create");
    assert_eq!(create.len(), 1);
    assert_eq!(
        create[0].1.body["cluster"]["nodePools"].as_array().map(Vec::len),
        Some(1),
        "the first pool rides along"
    );
    let pools = fixture.node_pools(CLUSTER);
    assert_eq!(pools.len(), 2, "{pools:#?}");
    let system = pool(&pools, "system");
    assert_eq!(system["config"]["machineType"], "e2-standard-4");
    assert_eq!(system["config"]["taints"], json!([{ "key": "dedicated", "value": "system", "effect": "NO_SCHEDULE" }]));
    assert_eq!(system["autoscaling"]["totalMinNodeCount"], 3);
    assert_eq!(system["autoscaling"]["totalMaxNodeCount"], 6);
    assert_eq!(system["initialNodeCount"], 1, "3 nodes over 3 zones: 1 per zone");
    assert_eq!(system["config"]["resourceLabels"]["tessera-dev_address"], "gcp-eu_2fgke_2enodepool_2fsystem");
    let batch = pool(&pools, "batch");
    assert_eq!(batch["config"]["spot"], true);
    assert_eq!(batch["config"]["machineType"], "e2-standard-8");
    assert_eq!(batch["config"]["taints"][0]["effect"], "PREFER_NO_SCHEDULE");
    assert_eq!(batch["autoscaling"]["totalMaxNodeCount"], 10);
    assert_eq!(fixture.conflicts(), 0, "Tessera's own operations never collide");

    // 2. Re-plan: nothing to do.
    let clean = tessera(&r, &["plan", path, "--detailed-exitcode"]);
    assert_eq!(clean.status.code(), Some(0), "{}", ok(&clean));

    // 3. Scale in place: setAutoscaling, no new pool.
    let before = fixture.requests().len();
    write(spec("gke-life", "1.31", 4, 12, ""));
    ok(&tessera(&r, &["apply", path, "--auto-approve"]));
    let requests = fixture.requests();
    assert_eq!(calls(&requests, before, "setAutoscaling").len(), 1);
    assert!(calls(&requests, before, "nodePools.create").is_empty());
    let pools = fixture.node_pools(CLUSTER);
    assert_eq!(pool(&pools, "batch")["autoscaling"]["totalMaxNodeCount"], 12);
    assert_eq!(pool(&pools, "batch")["name"], batch["name"], "the same pool");

    // 4. A machine type change: a new pool under a new name, created before the old is deleted.
    let before = fixture.requests().len();
    let old_system = system["name"].as_str().unwrap().to_string();
    write(spec("gke-life", "1.31", 8, 12, ""));
    ok(&tessera(&r, &["apply", path, "--auto-approve"]));
    let requests = fixture.requests();
    let created = calls(&requests, before, "nodePools.create");
    let deleted = calls(&requests, before, "nodePools.delete");
    assert_eq!((created.len(), deleted.len()), (1, 1), "{:#?}", &requests[before..]);
    assert!(created[0].0 < deleted[0].0, "create before delete");
    assert!(deleted[0].1.path.ends_with(&format!("/nodePools/{old_system}")));
    let pools = fixture.node_pools(CLUSTER);
    assert_eq!(pools.len(), 2, "{pools:#?}");
    let system = pool(&pools, "system");
    assert_eq!(system["config"]["machineType"], "e2-standard-8");
    assert_ne!(system["name"], old_system.as_str());
    assert_eq!(system["config"]["resourceLabels"]["tessera-dev_generation"], "1");
    assert_eq!(tessera(&r, &["plan", path, "--detailed-exitcode"]).status.code(), Some(0));

    // 5. Upgrade: the control plane first, then each pool.
    let before = fixture.requests().len();
    write(spec("gke-life", "1.32", 8, 12, ""));
    ok(&tessera(&r, &["apply", path, "--auto-approve"]));
    let requests = fixture.requests();
    let master = calls(&requests, before, "clusters.update");
    let nodes: Vec<_> = calls(&requests, before, "nodePools.update")
        .into_iter()
        .filter(|(_, r)| r.body["nodeVersion"] == "1.32")
        .collect();
    assert_eq!(master.len(), 1);
    assert_eq!(master[0].1.body["update"]["desiredMasterVersion"], "1.32");
    assert_eq!(nodes.len(), 2, "{:#?}", &requests[before..]);
    assert!(nodes.iter().all(|(i, _)| *i > master[0].0), "pools after the control plane");
    let cluster = fixture.cluster(CLUSTER).unwrap();
    assert_eq!(cluster["currentMasterVersion"], "1.32.1-gke.1357000");
    assert!(fixture.node_pools(CLUSTER).iter().all(|p| p["version"] == "1.32.1-gke.1357000"));
    assert_eq!(tessera(&r, &["plan", path, "--detailed-exitcode"]).status.code(), Some(0));

    // 6. Out-of-band changes are drift: a pool's bounds and labels, the cluster's labels.
    let batch_name = pool(&fixture.node_pools(CLUSTER), "batch")["name"].as_str().unwrap().to_string();
    assert!(fixture.edit_node_pool(CLUSTER, &batch_name, |p| p["autoscaling"]["totalMaxNodeCount"] = json!(3)));
    let drift = tessera(&r, &["drift", path]);
    assert_eq!(drift.status.code(), Some(2), "{}", String::from_utf8_lossy(&drift.stdout));
    ok(&tessera(&r, &["apply", path, "--auto-approve"]));
    assert_eq!(pool(&fixture.node_pools(CLUSTER), "batch")["autoscaling"]["totalMaxNodeCount"], 12);
    assert!(fixture.edit_cluster(CLUSTER, |c| c["resourceLabels"]["team"] = json!("payments")));
    assert_eq!(tessera(&r, &["drift", path]).status.code(), Some(2));
    ok(&tessera(&r, &["apply", path, "--auto-approve"]));
    assert!(fixture.cluster(CLUSTER).unwrap()["resourceLabels"].get("team").is_none(), "set back");
    assert_eq!(tessera(&r, &["drift", path]).status.code(), Some(0));

    // 7. Destroy: nothing left.
    ok(&tessera(&r, &["destroy", path, "--auto-approve"]));
    assert!(fixture.clusters().is_empty(), "{:#?}", fixture.clusters());
    assert_eq!(fixture.conflicts(), 0);
    fixture.assert_no_rejections();
}
