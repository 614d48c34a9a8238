//! Core services end to end through the CLI on the sim: installed in the same apply as the
//! clusters, verified per pool, and put back after an out-of-band deletion.

mod common;

use std::path::PathBuf;

use common::workdir::Workdir;
use serde_json::{Value, json};
use tessera_kube::coverage;

/// The quickstart, with tolerations listed (not "everything") so that a new taint can escape
/// them.
fn listed_tolerations_spec(w: &Workdir) -> PathBuf {
    let tolerations = "\n      tolerations:\n        - { key: dedicated, operator: Exists }\n        - { key: workload, operator: Exists }";
    let spec = std::fs::read_to_string(format!("{}/specs/quickstart.yaml", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .replace("  coreServices:\n    monitoring:", &format!("  coreServices:\n    monitoring:{tolerations}"))
        .replace("    logging:\n", &format!("    logging:{tolerations}\n"));
    let path = w.path("fleet.yaml");
    std::fs::write(&path, spec).unwrap();
    path
}

fn verify_json(w: &Workdir, spec: &str) -> (Option<i32>, Value) {
    let out = w.tessera().args(["--output", "json", "verify", spec]).output().unwrap();
    (out.status.code(), serde_json::from_slice(&out.stdout).unwrap_or(Value::Null))
}

#[test]
fn the_quickstart_installs_core_services_and_every_node_is_covered() {
    let w = Workdir::new();
    let (code, out) = w.run(&["apply", "specs/quickstart.yaml", "--auto-approve"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("sim-aws/helm.release/kube-prometheus-stack"), "{out}");
    assert!(out.contains("sim-azure/kube.object/hosttailer"), "{out}");

    let (code, v) = verify_json(&w, "specs/quickstart.yaml");
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["uncovered"], 0);
    let aws = v["placements"].as_array().unwrap().iter().find(|p| p["placement"] == "sim-aws").unwrap();
    // The NoExecute-tainted batch pool is covered like the others.
    let batch = aws["pools"].as_array().unwrap().iter().find(|p| p["pool"] == "batch").unwrap();
    assert_eq!(batch, &json!({"pool": "batch", "nodes": 1, "monitored": 1, "logged": 1}));
    let (code, out) = w.run(&["verify", "specs/quickstart.yaml"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("Every node is covered."), "{out}");

    let (code, out) = w.run(&["plan", "specs/quickstart.yaml", "--detailed-exitcode"]);
    assert_eq!(code, Some(0), "a second plan is clean: {out}");
}

#[test]
fn a_taint_added_out_of_band_is_an_uncovered_pool_named_by_verify() {
    let w = Workdir::new();
    let spec = listed_tolerations_spec(&w);
    let spec = spec.to_str().unwrap();
    let (code, out) = w.run(&["apply", spec, "--auto-approve"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(w.run(&["verify", spec]).0, Some(0));

    let taints = json!([{ "key": "maintenance", "value": "true", "effect": "NoSchedule" }]);
    w.cloud().console_edit("sim-gcp/sim.nodepool/system", "taints", taints).unwrap();
    let (code, out) = w.run(&["verify", spec]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("(pool system)"), "{out}");
    assert!(out.contains(&coverage::node_exporter_id()), "{out}");
    assert!(out.contains(&coverage::host_tailer_id()), "{out}");
    let (_, v) = verify_json(&w, spec);
    let gaps: Vec<&Value> =
        v["placements"].as_array().unwrap().iter().flat_map(|p| p["gaps"].as_array().unwrap()).collect();
    assert!(
        !gaps.is_empty()
            && gaps
                .iter()
                .all(|g| g["pool"] == "system" && g["node"].as_str().unwrap().starts_with("quickstart-sim-gcp-")),
        "{gaps:?}"
    );
    // The other placements' system pools are untouched.
    assert_eq!(v["uncovered"].as_u64().unwrap() as usize, gaps.len());
}

#[test]
fn a_deleted_daemonset_is_drift_and_apply_puts_it_back() {
    let w = Workdir::new();
    let (code, out) = w.run(&["apply", "specs/quickstart.yaml", "--auto-approve"]);
    assert_eq!(code, Some(0), "{out}");

    w.cloud().console_delete_kube_object("quickstart-sim-aws", &coverage::node_exporter_id()).unwrap();
    w.cloud().console_delete_kube_object("quickstart-sim-aws", &coverage::exporter_id("smartctl")).unwrap();
    let (code, out) = w.run(&["drift", "specs/quickstart.yaml"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("sim-aws/helm.release/kube-prometheus-stack"), "{out}");
    assert!(out.contains(&format!("objects.{}", coverage::node_exporter_id())), "{out}");
    assert!(out.contains("sim-aws/kube.object/daemonset-smartctl"), "{out}");
    let (code, out) = w.run(&["verify", "specs/quickstart.yaml"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("quickstart-sim-aws-batch-0 (pool batch)"), "{out}");

    let (code, out) = w.run(&["apply", "specs/quickstart.yaml", "--auto-approve"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("1 to update") && out.contains("1 to create"),
        "the release is re-applied and the DaemonSet recreated: {out}"
    );
    assert_eq!(w.run(&["verify", "specs/quickstart.yaml"]).0, Some(0));
    let (code, out) = w.run(&["plan", "specs/quickstart.yaml", "--detailed-exitcode"]);
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn with_node_exporter_off_and_no_exporter_every_node_is_not_monitored_and_verify_exits_2() {
    let w = Workdir::new();
    let exporters = "      exporters:\n        - name: smartctl\n          image: quay.io/prometheuscommunity/smartctl-exporter:v0.14.0\n          privileged: true\n          hostMounts: [/dev]\n          port: 9633\n";
    let quickstart = std::fs::read_to_string(format!("{}/specs/quickstart.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    assert!(quickstart.contains(exporters), "the quickstart's exporter block moved");
    let path = w.path("fleet.yaml");
    std::fs::write(&path, quickstart.replace(exporters, "      nodeExporter: false\n")).unwrap();
    let spec = path.to_str().unwrap();
    let (code, out) = w.run(&["validate", spec]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("runs nothing"), "validate warns: {out}");
    let (code, out) = w.run(&["apply", spec, "--auto-approve"]);
    assert_eq!(code, Some(0), "{out}");

    let (code, out) = w.run(&["verify", spec]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("(pool batch) is not monitored"), "{out}");
    let (code, v) = verify_json(&w, spec);
    assert_eq!(code, Some(2));
    let pools: Vec<&Value> =
        v["placements"].as_array().unwrap().iter().flat_map(|p| p["pools"].as_array().unwrap()).collect();
    assert!(!pools.is_empty() && pools.iter().all(|p| p["monitored"] == 0 && p["logged"] == p["nodes"]), "{pools:?}");
    let gaps: Vec<&Value> =
        v["placements"].as_array().unwrap().iter().flat_map(|p| p["gaps"].as_array().unwrap()).collect();
    let nodes: u64 = pools.iter().map(|p| p["nodes"].as_u64().unwrap()).sum();
    assert_eq!(gaps.len() as u64, nodes, "one gap per node: {gaps:?}");
    assert!(
        gaps.iter().all(|g| g["reason"] == "not monitored" && g["daemonset"] == coverage::NO_DAEMONSET),
        "{gaps:?}"
    );
}

/// A pool's new machine replaces the pool, and nothing inside the cluster: core services come
/// after the pools, but are the same objects in the same cluster (before, each was "replaced"
/// by itself, and the apply failed on the object's own id).
#[test]
fn a_pools_new_machine_replaces_the_pool_and_leaves_core_services_in_place() {
    let w = Workdir::new();
    let (code, out) = w.run(&["apply", "specs/quickstart.yaml", "--auto-approve"]);
    assert_eq!(code, Some(0), "{out}");
    let spec = std::fs::read_to_string(format!("{}/specs/quickstart.yaml", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .replace("machine: { vcpu: 4, memoryGiB: 16, spot: true }", "machine: { vcpu: 8, memoryGiB: 32, spot: true }");
    let path = w.path("bigger.yaml");
    std::fs::write(&path, spec).unwrap();
    let path = path.display().to_string();
    let (code, out) = w.run(&["apply", &path, "--auto-approve"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("3 to replace") && !out.contains("kube.object"), "only the three batch pools: {out}");
    let (code, out) = w.run(&["plan", &path, "--detailed-exitcode"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = w.run(&["verify", &path]);
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn verify_reports_each_clusters_alerting_and_exits_2_when_its_routing_is_gone() {
    let w = Workdir::new();
    let (code, out) = w.run(&["apply", "specs/quickstart.yaml", "--auto-approve"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, v) = verify_json(&w, "specs/quickstart.yaml");
    assert_eq!(code, Some(0), "{v}");
    for p in v["placements"].as_array().unwrap() {
        assert_eq!(p["alerting"], json!({"routingLoaded": true, "heartbeatFiring": true}), "{p}");
    }
    let routing = tessera_kube::contract::object_id(
        "monitoring.coreos.com/v1alpha1",
        "AlertmanagerConfig",
        Some("monitoring"),
        tessera_kube::alert_routing::NAME,
    );
    w.cloud().console_delete_kube_object("quickstart-sim-gcp", &routing).unwrap();
    let (code, out) = w.run(&["verify", "specs/quickstart.yaml"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("alerting: routing loaded NO, heartbeat firing NO"), "{out}");
    assert!(out.contains("1 placement(s) whose alerting does not work."), "{out}");
    let (_, v) = verify_json(&w, "specs/quickstart.yaml");
    assert_eq!(v["alertingBroken"], 1, "{v}");
    // Apply puts the routing back, and alerting works again.
    assert_eq!(w.run(&["apply", "specs/quickstart.yaml", "--auto-approve"]).0, Some(0));
    assert_eq!(w.run(&["verify", "specs/quickstart.yaml"]).0, Some(0));
}

#[test]
fn render_writes_each_object_of_one_placement_as_apply_would_apply_it() {
    let w = Workdir::new();
    let out_dir = w.path("rendered");
    let (code, out) =
        w.run(&["render", "specs/quickstart.yaml", "--placement", "sim-aws", "--out", out_dir.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    let mut files: Vec<String> =
        std::fs::read_dir(&out_dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    for wanted in ["alertmanagerconfig-monitoring-tessera.yaml", "prometheusrule-monitoring-tessera.yaml"] {
        assert!(files.iter().any(|f| f.ends_with(wanted)), "{wanted} in {files:?}");
    }
    // The AlertmanagerConfig as written is what the plan would apply, placement labels included.
    let rule_file = files.iter().find(|f| f.ends_with("prometheusrule-monitoring-tessera.yaml")).unwrap();
    let text = std::fs::read_to_string(out_dir.join(rule_file)).unwrap();
    let rule: Value = serde_saphyr::from_str(&text).unwrap();
    let labels = &rule["spec"]["groups"][0]["rules"][0]["labels"];
    assert_eq!(
        (&labels["placement"], &labels["cloud"], &labels["region"]),
        (&json!("sim-aws"), &json!("eks"), &json!("eu-west-1"))
    );
    // Releases: rendered by helm where the chart is on this machine, else their computed values.
    let values: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(out_dir.join("kube-prometheus-stack").join("values.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(values["prometheus"]["prometheusSpec"]["externalLabels"]["placement"], "sim-aws");
    assert!(out.contains("not rendered"), "the note says why: {out}");
    // Nothing of another placement, and a second render into the same directory is refused.
    assert!(!text.contains("sim-gcp"));
    let (code, out) =
        w.run(&["render", "specs/quickstart.yaml", "--placement", "sim-aws", "--out", out_dir.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("is not empty"), "{out}");
    let (code, out) =
        w.run(&["render", "specs/quickstart.yaml", "--placement", "nope", "--out", w.path("x").to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(out.contains("no placement `nope`") && out.contains("sim-aws"), "{out}");
}

#[test]
fn render_writes_each_object_of_a_release_as_helm_renders_them_when_the_chart_is_on_this_machine() {
    let w = Workdir::new();
    // The stand-in for the pinned kube-prometheus-stack, in the chart cache as a pull leaves it.
    let helm = std::env::var("TESSERA_HELM").unwrap_or_else(|_| "helm".into());
    let cache = w.path("cache");
    let chart_dir = cache.join("tessera/charts/ghcr.io_prometheus-community_charts_kube-prometheus-stack/88.5.3");
    std::fs::create_dir_all(&chart_dir).unwrap();
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/charts/kube-prometheus-stack");
    let packaged = std::process::Command::new(&helm).arg("package").arg(&source).arg("-d").arg(&chart_dir).output();
    let packaged = packaged.unwrap_or_else(|e| panic!("helm ({helm}) must run: scripts/test installs it: {e}"));
    assert!(packaged.status.success(), "{}", String::from_utf8_lossy(&packaged.stderr));

    let out_dir = w.path("rendered");
    let out = w
        .tessera()
        .args(["render", "specs/quickstart.yaml", "--placement", "sim-gcp", "--out", out_dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let release = out_dir.join("kube-prometheus-stack");
    let files: Vec<String> =
        std::fs::read_dir(&release).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(!files.iter().any(|f| f == "values.yaml"), "rendered, not values: {files:?}");
    let node_exporter = files.iter().find(|f| f.contains("daemonset") && f.contains("node-exporter"));
    let node_exporter = node_exporter.unwrap_or_else(|| panic!("node-exporter's DaemonSet in {files:?}"));
    let ds: Value = serde_saphyr::from_str(&std::fs::read_to_string(release.join(node_exporter)).unwrap()).unwrap();
    // Rendered from the values lowering installs: every taint tolerated.
    assert_eq!(ds["spec"]["template"]["spec"]["tolerations"], json!([{"operator": "Exists"}]), "{ds}");
    assert!(
        files.iter().any(|f| f.contains("customresourcedefinition") && f.contains("alertmanagerconfigs")),
        "{files:?}"
    );
}
