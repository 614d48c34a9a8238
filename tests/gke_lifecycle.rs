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
use tessera_gke_fixture::{Fault, GkeFixture, RecordedRequest};

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

/// A working directory for one fleet: its temporary directory (kept alive), the CLI's run
/// environment pointed at `fixture`, and where the spec goes.
pub struct Workdir {
    _dir: tempfile::TempDir,
    pub run: Run,
    pub file: std::path::PathBuf,
}

pub fn workdir(fixture: &GkeFixture) -> Workdir {
    let dir = tempfile::tempdir().unwrap();
    let run = run(dir.path(), fixture);
    let file = dir.path().join("fleet.yaml");
    Workdir { _dir: dir, run, file }
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
    let w = workdir(&fixture);
    let (r, file) = (&w.run, w.file.clone());
    let write = |text: String| std::fs::write(&file, text).unwrap();
    let path = file.to_str().unwrap();

    // 1. Apply: one regional cluster with its first pool in the create body, one more pool.
    write(spec("gke-life", "1.31", 4, 10, ""));
    ok(&tessera(r, &["apply", path, "--auto-approve"]));
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
    let clean = tessera(r, &["plan", path, "--detailed-exitcode"]);
    assert_eq!(clean.status.code(), Some(0), "{}", ok(&clean));

    // 3. Scale in place: setAutoscaling, no new pool.
    let before = fixture.requests().len();
    write(spec("gke-life", "1.31", 4, 12, ""));
    ok(&tessera(r, &["apply", path, "--auto-approve"]));
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
    ok(&tessera(r, &["apply", path, "--auto-approve"]));
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
    assert_eq!(tessera(r, &["plan", path, "--detailed-exitcode"]).status.code(), Some(0));

    // 5. Upgrade: the control plane first, then each pool.
    let before = fixture.requests().len();
    write(spec("gke-life", "1.32", 8, 12, ""));
    ok(&tessera(r, &["apply", path, "--auto-approve"]));
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
    assert_eq!(tessera(r, &["plan", path, "--detailed-exitcode"]).status.code(), Some(0));

    // 6. Out-of-band changes are drift: a pool's bounds and labels, the cluster's labels.
    let batch_name = pool(&fixture.node_pools(CLUSTER), "batch")["name"].as_str().unwrap().to_string();
    assert!(fixture.edit_node_pool(CLUSTER, &batch_name, |p| p["autoscaling"]["totalMaxNodeCount"] = json!(3)));
    let drift = tessera(r, &["drift", path]);
    assert_eq!(drift.status.code(), Some(2), "{}", String::from_utf8_lossy(&drift.stdout));
    ok(&tessera(r, &["apply", path, "--auto-approve"]));
    assert_eq!(pool(&fixture.node_pools(CLUSTER), "batch")["autoscaling"]["totalMaxNodeCount"], 12);
    assert!(fixture.edit_cluster(CLUSTER, |c| c["resourceLabels"]["team"] = json!("payments")));
    assert_eq!(tessera(r, &["drift", path]).status.code(), Some(2));
    ok(&tessera(r, &["apply", path, "--auto-approve"]));
    assert!(fixture.cluster(CLUSTER).unwrap()["resourceLabels"].get("team").is_none(), "set back");
    assert_eq!(tessera(r, &["drift", path]).status.code(), Some(0));

    // 7. Destroy: nothing left.
    ok(&tessera(r, &["destroy", path, "--auto-approve"]));
    assert!(fixture.clusters().is_empty(), "{:#?}", fixture.clusters());
    assert_eq!(fixture.conflicts(), 0);
    fixture.assert_no_rejections();
}

const INFRA: &str = "    - name: infra
      machine: { vcpu: 4, memoryGiB: 16, arch: amd64 }
      scale: { min: 1, max: 3 }
      labels: { tier: infra }
";

/// Three pools on one cluster: the engine starts their creates together, and Tessera's
/// per-cluster lock makes them take turns: no operation overlaps another, and the fixture never
/// had to refuse one. Then another tool holds the cluster: Tessera's call is refused with
/// FAILED_PRECONDITION, retried, and lands once the other operation ends.
#[test]
fn three_pools_take_turns_and_a_foreign_operation_is_waited_out() {
    let fixture = GkeFixture::builder().operation_time(Duration::from_millis(80)).start().unwrap();
    let w = workdir(&fixture);
    let (r, file) = (&w.run, w.file.clone());
    let path = file.to_str().unwrap();
    std::fs::write(&file, spec("gke-three", "1.31", 4, 10, INFRA)).unwrap();
    ok(&tessera(r, &["apply", path, "--auto-approve"]));
    let cluster = "projects/acme-platform/locations/europe-west4/clusters/gke-three-gcp-eu";
    assert_eq!(fixture.node_pools(cluster).len(), 3);
    let ops = fixture.operations();
    assert_eq!(ops.len(), 3, "the cluster (with its first pool) and two pool creates: {ops:#?}");
    for pair in ops.windows(2) {
        assert!(pair[1].started >= pair[0].ends, "{} overlapped {}: {ops:#?}", pair[1].kind, pair[0].kind);
    }
    assert_eq!(fixture.conflicts(), 0, "Tessera never collided with itself");

    let foreign = fixture.begin_operation(cluster, Duration::from_millis(700)).unwrap();
    // And the first attempts that get through are answered 503 UNAVAILABLE: retried as well.
    fixture.fail_next(Fault { method: Some("POST".into()), path: ":setAutoscaling".into(), count: 2 });
    std::fs::write(&file, spec("gke-three", "1.31", 4, 12, INFRA)).unwrap();
    ok(&tessera(r, &["apply", path, "--auto-approve"]));
    assert!(fixture.conflicts() >= 1, "the busy cluster refused at least once");
    let ops = fixture.operations();
    let other = ops.iter().find(|o| o.id == foreign).unwrap();
    let scaled = ops.iter().rfind(|o| !o.foreign).unwrap();
    assert!(scaled.started >= other.ends, "retried until the other operation ended");
    let unavailable = fixture.requests().iter().filter(|r| r.status == 503).count();
    assert_eq!(unavailable, 2, "both injected faults were met and retried");
    let refused = fixture.requests().iter().filter(|r| r.status == 400).count();
    assert_eq!(refused, fixture.conflicts(), "every 400 was a conflict, none a bad body");
    assert_eq!(pool(&fixture.node_pools(cluster), "batch")["autoscaling"]["totalMaxNodeCount"], 12);
    fixture.assert_no_rejections();
}

/// Two clusters of one project against a limit of one operation per project: the second create
/// is refused with 429 RESOURCE_EXHAUSTED, which is throttling, and lands later.
#[test]
fn the_projects_operation_limit_is_throttling_and_is_waited_out() {
    let fixture =
        GkeFixture::builder().operation_time(Duration::from_millis(80)).max_concurrent_operations(1).start().unwrap();
    let w = workdir(&fixture);
    let (r, file) = (&w.run, w.file.clone());
    let two = spec("gke-two", "1.31", 4, 10, "").replace(
        "  placements:\n",
        "  placements:\n    - { name: gcp-us, provider: gke, region: us-central1, scope: { project: acme-platform } }\n",
    );
    std::fs::write(&file, two).unwrap();
    ok(&tessera(r, &["apply", file.to_str().unwrap(), "--auto-approve"]));
    assert_eq!(fixture.clusters().len(), 2);
    assert!(fixture.throttled() >= 1, "the project's limit was reached");
    assert!(fixture.clusters().iter().all(|c| c["nodePools"].as_array().map(Vec::len) == Some(2)));
    fixture.assert_no_rejections();
}

/// The shipped multi-cloud spec's GKE placement (`gcp-eu`), alone and without core services
/// (reaching the cluster's Kubernetes API is the kube provider's, tested against its own
/// fixture), applies, plans clean and is destroyed.
#[test]
fn the_multi_cloud_specs_gke_placement_applies() {
    let fixture = GkeFixture::builder().operation_time(Duration::from_millis(40)).start().unwrap();
    let w = workdir(&fixture);
    let (r, file) = (&w.run, w.file.clone());
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/multi-cloud.yaml")).unwrap();
    let head = &text[..text.find("  placements:\n").expect("placements")];
    let gcp = text.lines().find(|l| l.contains("name: gcp-eu")).expect("the gcp-eu placement");
    std::fs::write(&file, common::without_core_services(&format!("{head}  placements:\n{gcp}\n"))).unwrap();
    let path = file.to_str().unwrap();
    ok(&tessera(r, &["apply", path, "--auto-approve"]));
    let cluster =
        fixture.cluster("projects/acme-platform/locations/europe-west4/clusters/core-services-gcp-eu").unwrap();
    let pools = cluster["nodePools"].as_array().unwrap();
    assert_eq!(pools.len(), 2);
    assert_eq!(pool(pools, "batch")["config"]["spot"], true);
    assert_eq!(pool(pools, "system")["config"]["taints"][0]["effect"], "NO_SCHEDULE");
    assert_eq!(tessera(r, &["plan", path, "--detailed-exitcode"]).status.code(), Some(0));
    ok(&tessera(r, &["destroy", path, "--auto-approve"]));
    assert!(fixture.clusters().is_empty());
    fixture.assert_no_rejections();
}

/// The chaos harness against the fixture: `tessera apply` SIGKILLed at 20 seeded points, then
/// run again. Every run converges with nothing orphaned or duplicated, as the fixture holds it.
#[test]
fn killed_applies_converge_against_the_gke_fixture() {
    use common::chaos::{Tally, report};
    use rand::{Rng, SeedableRng, rngs::SmallRng};
    const RUNS: u64 = 20;
    let fixture = GkeFixture::builder().operation_time(Duration::from_millis(150)).start().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut t = Tally::default();
    let mut failures = Vec::new();
    for seed in 0..RUNS {
        let dir = tempfile::tempdir().unwrap();
        let fleet = format!("chaos{seed}");
        let file = dir.path().join("fleet.yaml");
        std::fs::write(&file, spec(&fleet, "1.31", 4, 10, "")).unwrap();
        let r = run(dir.path(), &fixture);
        let mut rng = SmallRng::seed_from_u64(seed);
        let killed = r.apply_and_kill(&file, Duration::from_millis(rng.random_range(30..500)));
        let converged = r.apply(&file).and_then(|()| {
            r.plan_is_empty(&file).then_some(()).ok_or_else(|| "plan not empty after converging".to_string())
        });
        // Everything carrying this fleet's labels, as the fixture holds it.
        let mut objects: Vec<(String, String)> = Vec::new();
        let address = |labels: &Value| -> Option<String> {
            let labels: std::collections::BTreeMap<String, String> = serde_json::from_value(labels.clone()).ok()?;
            let tags = tessera_gke::labels::to_tags(&labels);
            (tags["tessera.dev/fleet"] == fleet.as_str())
                .then(|| tags["tessera.dev/address"].as_str().map(str::to_string))?
        };
        for c in fixture.clusters() {
            let Some(a) = address(&c["resourceLabels"]) else { continue };
            let id = format!(
                "projects/acme-platform/locations/{}/clusters/{}",
                c["location"].as_str().unwrap(),
                c["name"].as_str().unwrap()
            );
            for p in c["nodePools"].as_array().into_iter().flatten() {
                if let Some(pa) = address(&p["config"]["resourceLabels"]) {
                    objects.push((format!("{id}/nodePools/{}", p["name"].as_str().unwrap()), pa));
                }
            }
            objects.push((id, a));
        }
        let (state_ids, open) = rt.block_on(r.state());
        failures.extend(t.count(seed, killed, converged, &objects, &state_ids, open, Some(3)));
    }
    report("gke fixture", &t);
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(t.killed_mid_run >= RUNS as usize / 2, "most kills must land mid-apply to mean anything: {t:?}");
    assert_eq!((t.runs, t.converged, t.orphans, t.duplicates), (RUNS as usize, RUNS as usize, 0, 0));
    fixture.assert_no_rejections();
}

/// A pool GKE reports in ERROR fails the apply that waits for it, with GKE's `statusMessage`;
/// RUNNING_WITH_ERROR still serves and is shown with its message.
#[test]
fn an_error_status_is_reported_with_its_message() {
    let fixture = GkeFixture::builder().operation_time(Duration::from_millis(40)).start().unwrap();
    let w = workdir(&fixture);
    let (r, file) = (&w.run, w.file.clone());
    let path = file.to_str().unwrap();
    std::fs::write(&file, spec("gke-err", "1.31", 4, 10, "")).unwrap();
    ok(&tessera(r, &["apply", path, "--auto-approve"]));
    let cluster = "projects/acme-platform/locations/europe-west4/clusters/gke-err-gcp-eu";
    let batch = pool(&fixture.node_pools(cluster), "batch")["name"].as_str().unwrap().to_string();
    assert!(fixture.edit_node_pool(cluster, &batch, |p| {
        p["status"] = json!("ERROR");
        p["statusMessage"] = json!("Quota 'CPUS' exceeded. Limit: 24.0 in region europe-west4.");
    }));
    std::fs::write(&file, spec("gke-err", "1.31", 4, 12, "")).unwrap();
    let out = tessera(r, &["apply", path, "--auto-approve"]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("is ERROR: Quota 'CPUS' exceeded"), "{text}");
    fixture.assert_no_rejections();
}

/// Naming one zone moves the placement to a zonal cluster: a new cluster id, so the cluster is
/// replaced (deleted first: names are unique) and its pools with it. The new cluster's create
/// body makes the first pool with generation-0 labels; that pool's resource (generation 1)
/// adopts it and relabels it, and the re-plan is clean.
#[test]
fn naming_one_zone_replaces_the_cluster_and_its_first_pool_is_adopted() {
    let fixture = GkeFixture::builder().operation_time(Duration::from_millis(40)).start().unwrap();
    let w = workdir(&fixture);
    let (r, file) = (&w.run, w.file.clone());
    let path = file.to_str().unwrap();
    std::fs::write(&file, spec("gke-zone", "1.31", 4, 10, "")).unwrap();
    ok(&tessera(r, &["apply", path, "--auto-approve"]));
    let zonal = spec("gke-zone", "1.31", 4, 10, "")
        .replace("region: europe-west4,", "region: europe-west4, zones: [europe-west4-b],");
    std::fs::write(&file, zonal).unwrap();
    ok(&tessera(r, &["apply", path, "--auto-approve"]));
    let clusters = fixture.clusters();
    assert_eq!(clusters.len(), 1, "the regional cluster is gone: {clusters:#?}");
    assert_eq!(clusters[0]["location"], "europe-west4-b");
    let pools = clusters[0]["nodePools"].as_array().unwrap();
    assert_eq!(pools.len(), 2);
    for p in pools {
        assert_eq!(p["config"]["resourceLabels"]["tessera-dev_generation"], "1", "{p:#}");
    }
    assert_eq!(pool(pools, "system")["initialNodeCount"], 3, "3 nodes in one zone");
    assert_eq!(tessera(r, &["plan", path, "--detailed-exitcode"]).status.code(), Some(0));
    fixture.assert_no_rejections();
}

/// A scale GKE's per-zone counts cannot express is refused at validation, naming the pool.
#[test]
fn a_scale_per_zone_counts_cannot_express_is_refused_at_validation() {
    let fixture = GkeFixture::start().unwrap();
    let w = workdir(&fixture);
    std::fs::write(
        &w.file,
        spec("gke-bad", "1.31", 4, 10, "").replace("scale: { min: 3, max: 6 }", "scale: { min: 1, max: 2 }"),
    )
    .unwrap();
    let out = tessera(&w.run, &["--output", "json", "validate", w.file.to_str().unwrap()]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("pool `system` cannot start within 1..2 nodes"), "{text}");
    assert!(text.contains("1 per zone in 3 zones is 3"), "{text}");
    assert!(text.contains("\"line\":7"), "reported at the pool, line 7: {text}");
    assert!(fixture.requests().is_empty(), "validation makes no call");
}

/// The cluster's own settings changed out of band (enrolled in a release channel, logging and
/// monitoring components trimmed) are drift, and one apply sets each back with its own
/// `clusters.update`.
#[test]
fn cluster_settings_changed_out_of_band_are_drift_and_set_back() {
    let fixture = GkeFixture::builder().operation_time(Duration::from_millis(40)).start().unwrap();
    let w = workdir(&fixture);
    let (r, path) = (&w.run, w.file.to_str().unwrap());
    std::fs::write(&w.file, spec("gke-set", "1.31", 4, 10, "")).unwrap();
    ok(&tessera(r, &["apply", path, "--auto-approve"]));
    let cluster = "projects/acme-platform/locations/europe-west4/clusters/gke-set-gcp-eu";
    assert!(fixture.edit_cluster(cluster, |c| {
        c["releaseChannel"] = json!({ "channel": "REGULAR" });
        c["loggingConfig"] = json!({ "componentConfig": { "enableComponents": ["SYSTEM_COMPONENTS"] } });
        c["monitoringConfig"] = json!({ "componentConfig": { "enableComponents": [] } });
    }));
    assert_eq!(tessera(r, &["drift", path]).status.code(), Some(2));
    let before = fixture.requests().len();
    ok(&tessera(r, &["apply", path, "--auto-approve"]));
    let requests = fixture.requests();
    let mut fields: Vec<String> = calls(&requests, before, "clusters.update")
        .iter()
        .filter_map(|(_, r)| r.body["update"].as_object().and_then(|u| u.keys().next().cloned()))
        .collect();
    fields.sort();
    assert_eq!(fields, ["desiredLoggingConfig", "desiredMonitoringConfig", "desiredReleaseChannel"]);
    let c = fixture.cluster(cluster).unwrap();
    assert_eq!(c["releaseChannel"], json!({}), "back to no channel (UNSPECIFIED, not written)");
    assert_eq!(
        c["loggingConfig"]["componentConfig"]["enableComponents"],
        json!(["APISERVER", "SYSTEM_COMPONENTS", "WORKLOADS"])
    );
    assert_eq!(c["monitoringConfig"]["componentConfig"]["enableComponents"], json!(["SYSTEM_COMPONENTS"]));
    assert_eq!(tessera(r, &["drift", path]).status.code(), Some(0));
    fixture.assert_no_rejections();
}
