//! Golden tests of the generated kind config, each also checked against kind's documented
//! schema facts. `TESSERA_BLESS=1` rewrites the golden files (then review the diff).

mod common;

use std::path::Path;

use serde_json::Value;
use tessera_kind::backend::validate_for_host;
use tessera_kind::config::{KindOptions, kind_config, kubeadm_api_version};
use tessera_kind::images;
use tessera_provider_api::{Arch, ClusterTemplate, SpecField};

use common::*;

const POLICY: &str = "/state/tessera/kind/f-local/audit-policy.yaml";

fn generate(t: &ClusterTemplate, options: KindOptions) -> Value {
    let image = images::for_version(&t.kubernetes_version).map(|i| i.image).unwrap_or_default();
    kind_config(t, options, image, Path::new(POLICY))
}

/// Compares with `tests/golden/{name}.json` and checks the schema facts.
fn golden(name: &str, t: &ClusterTemplate, options: KindOptions) -> Value {
    let config = generate(t, options);
    let v1beta4 = kubeadm_api_version(&t.kubernetes_version).ends_with("v1beta4");
    let problems = common::schema_problems(&config, v1beta4);
    assert!(problems.is_empty(), "{name}: {problems:#?}");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(&config).unwrap() + "\n";
    if std::env::var_os("TESSERA_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(text, expected, "{name} differs from {}", path.display());
    config
}

fn patches_of(node: &Value) -> Vec<Value> {
    node["kubeadmConfigPatches"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str())
        .map(|s| serde_json::from_str(s).unwrap())
        .collect()
}

fn workers(config: &Value, pool: &str) -> Vec<Value> {
    config["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["role"] == "worker" && n["labels"]["tessera.dev/pool"] == pool)
        .cloned()
        .collect()
}

#[test]
fn pools_with_labels_and_taints_on_1_35_use_kubeadm_v1beta3_maps() {
    let config = golden("labels-taints-1.35", &labelled_and_tainted("1.35"), KindOptions::default());
    let gpu = workers(&config, "gpu");
    assert_eq!(gpu.len(), 2, "scale.min workers");
    assert_eq!(gpu[0]["labels"]["accelerator"], "nvidia");
    let join = &patches_of(&gpu[0])[0];
    assert_eq!(join["kind"], "JoinConfiguration");
    assert_eq!(
        join["nodeRegistration"]["kubeletExtraArgs"]["register-with-taints"],
        "dedicated=gpu:NoSchedule,nvidia.com/gpu:NoExecute"
    );
    let system = workers(&config, "system");
    assert_eq!(system.len(), 1);
    assert!(system[0].get("kubeadmConfigPatches").is_none(), "an untainted pool has no patch");
    assert!(config["nodes"][0]["image"].as_str().unwrap().starts_with("kindest/node:v1.35.0@sha256:452d707d"));
}

#[test]
fn on_1_36_the_same_pools_use_kubeadm_v1beta4_lists() {
    let config = golden("labels-taints-1.36", &labelled_and_tainted("1.36"), KindOptions::default());
    let join = &patches_of(&workers(&config, "gpu")[0])[0];
    assert_eq!(
        join["nodeRegistration"]["kubeletExtraArgs"],
        serde_json::json!([{ "name": "register-with-taints", "value": "dedicated=gpu:NoSchedule,nvidia.com/gpu:NoExecute" }])
    );
    let audit: Value = serde_json::from_str(config["kubeadmConfigPatches"][0].as_str().unwrap()).unwrap();
    assert_eq!(
        audit["apiServer"]["extraArgs"][0],
        serde_json::json!({ "name": "audit-log-path", "value": "/var/log/kubernetes/kube-apiserver-audit.log" })
    );
    // The 1.35 form would break the 1.36 schema, and the other way round: the checks can fail.
    let v135 = generate(&labelled_and_tainted("1.35"), KindOptions::default());
    assert!(!common::schema_problems(&v135, true).is_empty());
    assert!(!common::schema_problems(&config, false).is_empty());
}

#[test]
fn the_audit_log_is_written_where_the_host_tailer_reads_it() {
    let config = golden("labels-taints-1.35", &labelled_and_tainted("1.35"), KindOptions::default());
    let audit: Value = serde_json::from_str(config["kubeadmConfigPatches"][0].as_str().unwrap()).unwrap();
    assert_eq!(audit["kind"], "ClusterConfiguration");
    assert_eq!(audit["apiServer"]["extraArgs"]["audit-log-path"], tessera_kube::manifests::KIND_AUDIT_LOG);
    assert_eq!(audit["apiServer"]["extraArgs"]["audit-policy-file"], "/etc/kubernetes/policies/audit-policy.yaml");
    let cp = &config["nodes"][0];
    assert_eq!(cp["role"], "control-plane");
    assert_eq!(cp["extraMounts"][0]["hostPath"], POLICY);
    assert_eq!(cp["extraMounts"][0]["containerPath"], "/etc/kubernetes/policies/audit-policy.yaml");
    let quiet = generate(&template("1.35", vec![pool("system", 0, &[], Vec::new())], false), KindOptions::default());
    assert!(quiet.get("kubeadmConfigPatches").is_none() && quiet["nodes"][0].get("extraMounts").is_none());
    assert_eq!(quiet["nodes"].as_array().unwrap().len(), 2, "min 0 still gets one worker");
}

#[test]
fn spot_is_ignored_on_kind() {
    let mut spot = labelled_and_tainted("1.35");
    for p in &mut spot.pools {
        p.machine.spot = true;
    }
    let config = golden("labels-taints-1.35", &spot, KindOptions::default());
    assert_eq!(config, generate(&labelled_and_tainted("1.35"), KindOptions::default()));
}

#[test]
fn arm64_must_match_the_host() {
    let mut arm = labelled_and_tainted("1.35");
    arm.pools[1].machine.arch = Arch::Arm64;
    let on_amd = validate_for_host(&arm, Some(Arch::Amd64));
    assert_eq!(on_amd.len(), 1, "{on_amd:?}");
    assert_eq!(on_amd[0].field, SpecField::Pool("gpu".into()));
    assert!(on_amd[0].message.contains("arm64") && on_amd[0].help.contains("arch: amd64"), "{:?}", on_amd[0]);
    for p in &mut arm.pools {
        p.machine.arch = Arch::Arm64;
    }
    assert!(validate_for_host(&arm, Some(Arch::Arm64)).is_empty());
    assert_eq!(validate_for_host(&arm, Some(Arch::Amd64)).len(), 2);
    assert_eq!(validate_for_host(&arm, None).len(), 2, "an unknown host arch runs no node");
    // The config names no arch: Docker runs the host's variant of the multi-arch image.
    golden("labels-taints-1.35", &arm, KindOptions::default());
}

#[test]
fn the_ha_option_makes_three_control_planes_each_mounting_the_policy() {
    let t = template("1.35", vec![pool("system", 1, &[], Vec::new())], true);
    let config = golden("ha-1.35", &t, KindOptions { ha: true });
    let cps: Vec<&Value> =
        config["nodes"].as_array().unwrap().iter().filter(|n| n["role"] == "control-plane").collect();
    assert_eq!(cps.len(), 3);
    assert!(cps.iter().all(|n| n["extraMounts"][0]["hostPath"] == POLICY));
    let single = generate(&t, KindOptions::default());
    assert_eq!(single["nodes"].as_array().unwrap().iter().filter(|n| n["role"] == "control-plane").count(), 1);
}

#[test]
fn the_schema_check_catches_what_kind_would_refuse() {
    let mut bad = generate(&labelled_and_tainted("1.35"), KindOptions::default());
    bad["nodes"][1]["role"] = "master".into();
    bad["nodes"][1]["taints"] = Value::Array(Vec::new());
    bad["nodes"][0]["image"] = "kindest/node:v1.35.0".into();
    let problems = common::schema_problems(&bad, false);
    assert_eq!(problems.len(), 3, "{problems:#?}");
}
