//! The AKS backend end to end through the CLI, against the ARM fixture (`testkit/aks-fixture`):
//! a real HTTP server that checks every body against the official 2024-09-01 description, runs
//! operations for a while, refuses a second one on a busy cluster and keeps eTags. Every claim
//! is checked through the fixture's own view of its objects, not through Tessera's state.

mod common;

use std::path::Path;
use std::time::Duration;

use common::chaos::Run;
use serde_json::Value;
use tessera_aks_fixture::{AksFixture, Fault, Logged};

const SUBSCRIPTION: &str = "6f1c2a3b-0d4e-4f5a-8b9c-0123456789ab";

fn spec(version: &str, batch_vcpu: u32, batch_max: u32) -> String {
    format!(
        "apiVersion: tessera.dev/v1alpha1
kind: Fleet
metadata: {{ name: azf }}
spec:
  kubernetes: {{ version: \"{version}\" }}
  nodePools:
    - name: general
      machine: {{ vcpu: 4, memoryGiB: 16 }}
      scale: {{ min: 1, max: 3 }}
      labels: {{ tier: general }}
    - name: batch
      machine: {{ vcpu: {batch_vcpu}, memoryGiB: {mem}, spot: true }}
      scale: {{ min: 0, max: {batch_max} }}
      labels: {{ tier: batch }}
      taints: [{{ key: dedicated, value: batch, effect: NoSchedule }}]
  coreServices:
    monitoring: {{ enabled: false }}
    logging: {{ enabled: false, auditLogs: true }}
  placements:
    - {{ name: az, provider: aks, region: westeurope, scope: {{ subscription: {SUBSCRIPTION} }} }}
",
        mem = batch_vcpu * 4
    )
}

pub fn run(dir: &Path, fixture: &AksFixture) -> Run {
    Run {
        dir: dir.to_path_buf(),
        env: vec![
            ("AZURE_ENDPOINT".into(), fixture.url()),
            ("AZURE_ACCESS_TOKEN".into(), "fixture-token".into()),
            ("TESSERA_POLL_INTERVAL".into(), "20ms".into()),
        ],
    }
}

/// A fixture with operations of 100 ms, and the test spec applied to it: the fixture, the work
/// directory (kept alive), the runner and the spec file.
fn applied() -> (AksFixture, tempfile::TempDir, Run, std::path::PathBuf) {
    let fixture = AksFixture::builder().operation_time(Duration::from_millis(100)).start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &fixture);
    let file = dir.path().join("aks.yaml");
    std::fs::write(&file, spec("1.31", 8, 10)).unwrap();
    r.apply(&file).unwrap();
    (fixture, dir, r, file)
}

fn pool<'a>(pools: &'a [Value], label: &str) -> Vec<&'a Value> {
    pools.iter().filter(|p| p["properties"]["nodeLabels"]["tier"] == label).collect()
}

fn position(log: &[Logged], method: &str, path_end: &str, from: usize) -> Option<usize> {
    log.iter()
        .skip(from)
        .position(|l| l.method == method && l.path.ends_with(path_end) && l.status < 300)
        .map(|i| i + from)
}

#[test]
fn aks_lifecycle_through_the_cli_against_the_fixture() {
    let fixture = AksFixture::builder().operation_time(Duration::from_millis(150)).start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &fixture);
    let file = dir.path().join("aks.yaml");
    let write = |text: String| std::fs::write(&file, text).unwrap();

    // 1. Apply: the resource group, the cluster with its system pool, the spot pool.
    write(spec("1.31", 8, 10));
    r.apply(&file).unwrap();
    let groups = fixture.groups();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["name"], "azf-az-rg");
    assert_eq!(groups[0]["tags"]["tessera.dev/address"], "az/aks.resourceGroup/main");
    let clusters = fixture.clusters();
    assert_eq!(clusters.len(), 1);
    let c = &clusters[0];
    assert_eq!(c["name"], "azf-az");
    assert_eq!(c["properties"]["kubernetesVersion"], "1.31");
    assert_eq!(c["properties"]["provisioningState"], "Succeeded");
    assert_eq!(c["identity"]["type"], "SystemAssigned");
    assert_eq!(c["tags"]["tessera.dev/fleet"], "azf");
    let pools = fixture.pools();
    let general = pool(&pools, "general");
    assert_eq!(general.len(), 1);
    assert_eq!(general[0]["properties"]["mode"], "System", "the untainted on-demand pool is the system pool");
    assert_eq!(general[0]["properties"]["vmSize"], "Standard_D4s_v5");
    let batch = pool(&pools, "batch");
    assert_eq!(batch.len(), 1);
    let b = &batch[0]["properties"];
    assert_eq!(b["mode"], "User");
    assert_eq!(b["vmSize"], "Standard_D8s_v5");
    assert_eq!(b["scaleSetPriority"], "Spot");
    assert_eq!(b["spotMaxPrice"], -1.0);
    assert_eq!(b["enableAutoScaling"], true);
    assert_eq!((b["minCount"].clone(), b["maxCount"].clone()), (0.into(), 10.into()));
    let taints: Vec<&str> = b["nodeTaints"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(taints.contains(&"dedicated=batch:NoSchedule"), "{taints:?}");
    assert!(
        taints.contains(&"kubernetes.azure.com/scalesetpriority=spot:NoSchedule"),
        "AKS's own, added by the fixture"
    );
    let name = batch[0]["name"].as_str().unwrap().to_string();
    assert!(tessera_aks::is_pool_name(&name), "{name}");
    let log = fixture.requests();
    assert!(
        log.iter()
            .filter(|l| l.method == "PUT" && l.path.contains("managedClusters"))
            .all(|l| l.if_none_match.as_deref() == Some("*")),
        "creates never overwrite"
    );

    // 2. Re-plan clean: the spot taint and label AKS adds are not drift.
    assert!(r.plan_is_empty(&file), "a plan right after apply changes nothing");

    // 3. Scale: the pool is updated in place, under the eTag it was read with.
    let before = fixture.requests().len();
    write(spec("1.31", 8, 12));
    r.apply(&file).unwrap();
    let log = fixture.requests();
    let put = position(&log, "PUT", &format!("/agentPools/{name}"), before).expect("an agent pool PUT");
    assert!(log[put].if_match.as_deref().is_some_and(|e| e.contains("etag")), "{:?}", log[put]);
    assert!(position(&log, "DELETE", "", before).is_none(), "nothing deleted");
    assert_eq!(pool(&fixture.pools(), "batch")[0]["properties"]["maxCount"], 12);
    assert!(r.plan_is_empty(&file));

    // 4. A new machine: the new pool is made before the old one goes.
    let before = fixture.requests().len();
    write(spec("1.31", 16, 12));
    r.apply(&file).unwrap();
    let log = fixture.requests();
    let batch = pool(&fixture.pools(), "batch").into_iter().cloned().collect::<Vec<_>>();
    assert_eq!(batch.len(), 1);
    let new_name = batch[0]["name"].as_str().unwrap().to_string();
    assert_ne!(new_name, name);
    assert_eq!(batch[0]["properties"]["vmSize"], "Standard_D16s_v5");
    let created = position(&log, "PUT", &format!("/agentPools/{new_name}"), before).expect("the new pool");
    let deleted = position(&log, "DELETE", &format!("/agentPools/{name}"), before).expect("the old pool's delete");
    assert!(created < deleted, "create before destroy: {created} < {deleted}");
    assert!(r.plan_is_empty(&file));

    // 5. Upgrade: the control plane first (every pool at its version), then the pools.
    let before = fixture.requests().len();
    write(spec("1.32", 16, 12));
    r.apply(&file).unwrap();
    let log = fixture.requests();
    let cluster_put = position(&log, "PUT", "/managedClusters/azf-az", before).expect("the cluster PUT");
    let pool_puts: Vec<usize> = (before..log.len())
        .filter(|&i| log[i].method == "PUT" && log[i].path.contains("/agentPools/") && log[i].status < 300)
        .collect();
    assert_eq!(pool_puts.len(), 2, "both pools move to 1.32: {pool_puts:?}");
    assert!(pool_puts.iter().all(|&i| i > cluster_put), "pools after the control plane");
    let c = &fixture.clusters()[0];
    assert_eq!(c["properties"]["kubernetesVersion"], "1.32");
    for p in c["properties"]["agentPoolProfiles"].as_array().unwrap() {
        assert_eq!(p["orchestratorVersion"], "1.32", "{p}");
    }
    assert!(r.plan_is_empty(&file));

    // 6. A console edit is drift: exit 2.
    let pool_id = batch[0]["id"].as_str().unwrap().to_string();
    assert!(fixture.edit_pool(&pool_id, |p| {
        p.insert("nodeLabels".into(), serde_json::json!({"tier": "batch", "team": "console"}));
    }));
    let drift = r.tessera().arg("drift").arg(&file).output().unwrap();
    assert_eq!(drift.status.code(), Some(2), "{}", String::from_utf8_lossy(&drift.stderr));

    // 7. Destroy: nothing left.
    let out = r.tessera().args(["destroy", "--auto-approve"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(fixture.clusters().is_empty() && fixture.pools().is_empty() && fixture.groups().is_empty());
    fixture.assert_no_rejections();
}

#[test]
fn a_busy_cluster_and_throttling_are_waited_out() {
    let (fixture, _dir, r, file) = applied();

    // Another operation holds the cluster (the fixture's 409 OperationNotAllowed, twice), and ARM
    // throttles reads (429, twice): the scale still lands.
    let cluster = fixture.clusters()[0]["id"].as_str().unwrap().to_string();
    fixture.busy(&cluster, Duration::from_millis(300));
    let conflict = |method: &str| Fault {
        path: "/agentPools/".into(),
        method: Some(method.into()),
        times: 2,
        status: 409,
        retry_after: 0,
    };
    fixture.fail_next(conflict("PUT"));
    fixture.fail_next(Fault { status: 429, ..conflict("GET") });
    std::fs::write(&file, spec("1.31", 8, 11)).unwrap();
    let before = fixture.requests().len();
    r.apply(&file).unwrap();
    let log = fixture.requests();
    let refused: Vec<&Logged> = log[before..].iter().filter(|l| l.status == 409).collect();
    let throttled = log[before..].iter().filter(|l| l.status == 429).count();
    assert!(refused.len() >= 2, "the busy cluster refused: {refused:?}");
    assert_eq!(throttled, 2);
    assert_eq!(pool(&fixture.pools(), "batch")[0]["properties"]["maxCount"], 11);
    fixture.assert_no_rejections();
}

#[test]
fn three_pools_of_one_cluster_never_overlap_their_operations() {
    let fixture = AksFixture::builder().operation_time(Duration::from_millis(150)).start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &fixture);
    let file = dir.path().join("aks.yaml");
    let three = spec("1.31", 8, 10).replace(
        "  coreServices:",
        "    - { name: b1, machine: { vcpu: 4, memoryGiB: 16 }, scale: { min: 1, max: 2 } }
    - { name: b2, machine: { vcpu: 4, memoryGiB: 16 }, scale: { min: 1, max: 2 } }
  coreServices:",
    );
    std::fs::write(&file, three).unwrap();
    r.apply(&file).unwrap();
    assert_eq!(fixture.pools().len(), 4, "the system pool and three agent pools");
    let log = fixture.requests();
    // The fixture answers 409 to any mutation of a busy cluster: none means none overlapped.
    let conflicts: Vec<&Logged> = log.iter().filter(|l| l.status == 409).collect();
    assert!(conflicts.is_empty(), "overlapping operations were sent: {conflicts:#?}");
    assert_eq!(log.iter().filter(|l| l.method == "PUT" && l.path.contains("/agentPools/")).count(), 3);
    fixture.assert_no_rejections();
}

#[test]
fn the_kubeconfig_authenticates_through_kubelogin_and_holds_no_token() {
    let fixture = AksFixture::builder().operation_time(Duration::from_millis(50)).start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &fixture);
    let file = dir.path().join("aks.yaml");
    std::fs::write(&file, spec("1.31", 8, 10)).unwrap();
    r.apply(&file).unwrap();
    let out = r.tessera().stdout(std::process::Stdio::piped()).args(["kubeconfig", "az"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("kubelogin") && text.contains("azf-az-dns.hcp.westeurope.azmk8s.io"), "{text}");
    assert!(text.contains(tessera_aks_fixture::CA_DATA), "the CA from listClusterUserCredential");
    assert!(!text.contains("fixture-token") && !text.contains("token:"), "{text}");
    assert!(fixture.requests().iter().any(|l| l.path.ends_with("/listClusterUserCredential")));
    fixture.assert_no_rejections();
}

/// `specs/multi-cloud.yaml`, its AKS placement alone (infrastructure: the fixture's clusters
/// have no Kubernetes API), in the resource group the placement names.
#[test]
fn the_multi_cloud_spec_applies_its_aks_placement() {
    let fixture = AksFixture::builder().operation_time(Duration::from_millis(50)).start().unwrap();
    fixture.add_group(SUBSCRIPTION, "rg-platform", "westeurope");
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &fixture);
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/multi-cloud.yaml")).unwrap();
    let start = text.find("  placements:").unwrap();
    let azure = text.find("    - name: azure-eu").unwrap();
    let local = text.find("    - name: local").unwrap();
    let only_aks = format!("{}  placements:\n{}", &text[..start], &text[azure..local]);
    let file = dir.path().join("multi.yaml");
    std::fs::write(&file, common::without_core_services(&only_aks)).unwrap();

    let validate = r.tessera().arg("validate").arg(&file).output().unwrap();
    let said = String::from_utf8_lossy(&validate.stderr).to_string() + &String::from_utf8_lossy(&validate.stdout);
    assert!(validate.status.success(), "{said}");
    assert!(said.contains("no pool can be AKS's system pool"), "the added system pool is reported: {said}");

    r.apply(&file).unwrap();
    assert_eq!(fixture.groups().len(), 1, "the named group is used, none made");
    let clusters = fixture.clusters();
    assert_eq!(clusters.len(), 1);
    assert!(clusters[0]["id"].as_str().unwrap().contains("/resourceGroups/rg-platform/"));
    let pools = fixture.pools();
    let systems: Vec<&Value> = pools.iter().filter(|p| p["properties"]["mode"] == "System").collect();
    assert_eq!(systems.len(), 1);
    assert_eq!(systems[0]["properties"]["nodeTaints"], serde_json::json!(["CriticalAddonsOnly=true:NoSchedule"]));
    assert_eq!(pools.len(), 3, "the dedicated system pool, and system and batch as user pools");
    assert!(r.plan_is_empty(&file));
    fixture.assert_no_rejections();
}

/// The chaos harness against the fixture: an apply SIGKILLed at a seeded random moment, then run
/// again, 20 times. Every run converges, with nothing orphaned or duplicated. The system pool
/// belongs to its cluster (it carries the cluster's tags), so the census counts it with it.
#[test]
fn killed_applies_converge_against_the_fixture() {
    use common::chaos::{Tally, report};
    use rand::{Rng, SeedableRng, rngs::SmallRng};
    const RUNS: u64 = 20;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut t = Tally::default();
    let mut failures = Vec::new();
    for seed in 0..RUNS {
        let fixture = AksFixture::builder().operation_time(Duration::from_millis(300)).start().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut r = run(dir.path(), &fixture);
        r.env.push(("TESSERA_LOCK_TTL".into(), "1s".into()));
        let file = dir.path().join("aks.yaml");
        std::fs::write(&file, spec("1.31", 8, 10)).unwrap();
        let mut rng = SmallRng::seed_from_u64(seed);
        let killed = r.apply_and_kill(&file, Duration::from_millis(rng.random_range(50..1200)));
        let converged = r.apply(&file).and_then(|()| {
            r.plan_is_empty(&file).then_some(()).ok_or_else(|| {
                let plan = r.tessera().stdout(std::process::Stdio::piped()).arg("plan").arg(&file).output();
                let shown = plan.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
                format!("plan not empty after converging:\n{shown}")
            })
        });
        let mut objects: Vec<(String, String)> = Vec::new();
        let tag = |v: &Value| v["tags"]["tessera.dev/address"].as_str().unwrap_or_default().to_string();
        for g in fixture.groups() {
            objects.push((g["id"].as_str().unwrap_or_default().into(), tag(&g)));
        }
        for c in fixture.clusters() {
            objects.push((c["id"].as_str().unwrap_or_default().into(), tag(&c)));
        }
        for p in fixture.pools().iter().filter(|p| p["properties"]["mode"] != "System") {
            objects.push((p["id"].as_str().unwrap_or_default().into(), tag(&p["properties"])));
        }
        let (state_ids, open) = rt.block_on(r.state());
        failures.extend(t.count(seed, killed, converged, &objects, &state_ids, open, Some(3)));
        if !fixture.rejections().is_empty() {
            failures.push(format!("seed {seed}: {:?}", fixture.rejections()));
        }
    }
    report("aks fixture", &t);
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(t.killed_mid_run >= RUNS as usize / 2, "most kills must land mid-apply to mean anything: {t:?}");
    assert_eq!((t.runs, t.converged, t.orphans, t.duplicates), (RUNS as usize, RUNS as usize, 0, 0));
}

/// An operation status without its `status` (ARM always sends one) is an error at once, never
/// taken for "still running" (which polled to the deadline) or for done.
#[test]
fn an_operation_status_without_a_status_is_an_error_not_a_wait() {
    let (fixture, _dir, r, file) = applied();
    // The next status answer is a 200 carrying an error body and no `status`.
    fixture.fail_next(Fault {
        path: "/operations/".into(),
        method: Some("GET".into()),
        times: 1,
        status: 200,
        retry_after: 0,
    });
    std::fs::write(&file, spec("1.31", 8, 11)).unwrap();
    let out =
        r.tessera().args(["apply", "--auto-approve"]).arg(&file).stdout(std::process::Stdio::piped()).output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "a status answer without a status: {said}");
    assert!(said.contains("has no `status`"), "{said}");
    // Nothing is lost: the next run reads the pool again and converges.
    r.apply(&file).unwrap();
    assert_eq!(pool(&fixture.pools(), "batch")[0]["properties"]["maxCount"], 11);
}
