//! Coverage judged on what will run, three ways that must agree:
//! - Tessera's model of the chart's DaemonSets (`tessera_kube::workloads`), which validation uses;
//! - what the real helm renders from the same merged values on the stand-in chart
//!   (`tests/charts/kube-prometheus-stack`, which reads the real subchart's keys);
//! - and, for random value overlays, the property that a spec either validates and every pool is
//!   reached by every core DaemonSet in the built (and rendered) objects, or is refused.
//!
//! Validation itself renders with helm where the chart is on the machine: the last tests drive
//! that check through the real helm (a fork whose values miss a pool only in helm's rendering),
//! and show the fallback to the model, and that `tessera validate` says which was used.

use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::*;
use serde_json::{Value, json};
use tessera::spec;
use tessera_kube::charts::{KUBE_PROMETHEUS_STACK, MONITORING_NAMESPACE, MONITORING_RELEASE, kube_prometheus_stack};
use tessera_kube::coverage::{Service, pool_node};
use tessera_kube::scheduler::why_not;
use tessera_kube::workloads::{self, Source, Workload};
use tessera_kube::{floor, values};
use tessera_kube_client::helm::ChartRef;
use tessera_kube_client::{CachedCharts, KubeClientSettings};
use tessera_provider_api::{Arch, Machine, Monitoring, PoolTemplate, Taint, TaintEffect, Toleration};

fn helm() -> PathBuf {
    if let Some(p) = std::env::var_os("TESSERA_HELM") {
        return PathBuf::from(p);
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/helm");
    assert!(local.exists(), "this test needs the real helm: run scripts/test, or set TESSERA_HELM");
    local
}

/// What helm renders of the stand-in chart from `values`: its DaemonSets.
fn rendered_daemonsets(values: &Value) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("values.json");
    std::fs::write(&file, serde_json::to_vec(values).unwrap()).unwrap();
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/charts/kube-prometheus-stack");
    let out = Command::new(helm())
        .args(["template", MONITORING_RELEASE])
        .arg(&chart)
        .args(["--namespace", MONITORING_NAMESPACE, "--values"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "helm failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    text.split("\n---")
        .filter_map(|doc| serde_saphyr::from_str::<Value>(doc).ok())
        .filter(|o| o["kind"] == "DaemonSet")
        .collect()
}

fn monitoring(overlay: Value) -> Monitoring {
    Monitoring {
        node_exporter: true,
        exporters: vec![],
        tolerations: vec![Toleration::everything()],
        remote_write: None,
        remote_write_auth: None,
        chart: kube_prometheus_stack(),
        values: overlay,
        alerting: None,
    }
}

fn merged(m: &Monitoring) -> Value {
    values::merge(&m.values, &values::monitoring(m))
}

fn pools() -> Vec<PoolTemplate> {
    let pool = |name: &str, arch: Arch, taints: Vec<Taint>| PoolTemplate {
        name: name.into(),
        machine: Machine { vcpu: 4, memory_gib: 16, arch, spot: false },
        min: 1,
        max: 2,
        labels: [("tier".to_string(), name.to_string())].into(),
        taints,
    };
    let gpu = Taint { key: "gpu".into(), value: Some("true".into()), effect: TaintEffect::NoExecute };
    vec![pool("system", Arch::Amd64, vec![]), pool("gpu", Arch::Arm64, vec![gpu])]
}

/// Per pool, whether the DaemonSet reaches it, and whether it is below the floor.
fn verdict(ds: &Value) -> (Vec<bool>, bool) {
    let w = Workload { service: Service::Monitoring, source: Source::Chart, daemonset: ds.clone() };
    let reached = pools().iter().map(|p| why_not(w.pod_spec(), &pool_node(p)).is_none()).collect();
    (reached, floor::check(&w).is_empty())
}

#[test]
fn the_model_and_the_rendered_chart_agree_on_every_pool_and_on_the_floor() {
    let overlays = [
        json!({}),
        json!({"prometheus-node-exporter": {"nodeSelector": {"tier": "system"}}}),
        // Computed leaves win the merge: these change nothing in what runs.
        json!({"prometheus-node-exporter": {"tolerations": [{"operator": "Exists", "effect": "NoSchedule"}]}}),
        json!({"prometheus-node-exporter": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}]}}}}}),
        json!({"prometheus-node-exporter": {"extraHostVolumeMounts": [{"name": "etc", "hostPath": "/etc", "mountPath": "/host/etc"}]}}),
        json!({"prometheus-node-exporter": {"image": {"registry": "evil.example", "repository": "ne", "tag": "1"}}}),
        json!({"prometheus-node-exporter": {"hostRootFsMount": {"enabled": false}}}),
    ];
    let mut differing = 0;
    for overlay in overlays {
        let m = monitoring(overlay.clone());
        let values = merged(&m);
        let model: Vec<Value> = workloads::build(&tessera_provider_api::CoreServices {
            monitoring: Some(m),
            logging: None,
            audit_logs: true,
        })
        .into_iter()
        .map(|w| w.daemonset)
        .collect();
        let rendered = rendered_daemonsets(&values);
        assert_eq!(rendered.len(), 1, "{overlay}: {rendered:?}");
        assert_eq!(model.len(), 1);
        assert_eq!(verdict(&model[0]), verdict(&rendered[0]), "model and helm disagree for {overlay}");
        differing += usize::from(verdict(&rendered[0]) != (vec![true, true], true));
    }
    // The table is not vacuous: the selector, the affinity, the read-write mount and the image
    // each break coverage or the floor in the rendered object.
    assert_eq!(differing, 4);
}

#[test]
fn every_name_the_monitoring_chart_renders_is_refused_as_an_exporter_name() {
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/charts/kube-prometheus-stack");
    let out = Command::new(helm()).args(["template", MONITORING_RELEASE]).arg(&chart).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = out.stdout;
    let names: Vec<String> = String::from_utf8_lossy(&text)
        .split("\n---")
        .filter_map(|doc| serde_saphyr::from_str::<Value>(doc).ok())
        .filter(|o| o["kind"] != "CustomResourceDefinition")
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    assert!(names.len() >= 2, "{names:?}");
    for name in names {
        let src = format!(
            "apiVersion: tessera.dev/v1alpha1\nkind: Fleet\nmetadata: {{ name: core }}\nspec:\n  kubernetes: {{ version: \"1.31\" }}\n  nodePools:\n    - {{ name: system, machine: {{ vcpu: 4, memoryGiB: 16 }}, scale: {{ min: 1, max: 2 }} }}\n  coreServices:\n    monitoring: {{ exporters: [{{ name: {name}, image: \"x:1\", port: 9100 }}] }}\n  placements:\n    - {{ name: aws, provider: sim, region: eu-west-1 }}\n"
        );
        let err = spec::load_str(Path::new("f.yaml"), &src).map(|_| ()).unwrap_err();
        assert!(
            err.lines().iter().any(|l| l.contains("a name the monitoring chart gives")),
            "{name}: {:?}",
            err.lines()
        );
    }
}

/// A random overlay of kube-prometheus-stack values, from keys that matter to coverage and the
/// floor, and some that do not.
fn overlay() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(("nodeSelector", json!({"tier": "system"}))),
        Just(("nodeSelector", json!({"kubernetes.io/os": "linux"}))),
        Just(("tolerations", json!([]))),
        Just((
            "affinity",
            json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["gpu"]}]}]}}})
        )),
        Just(("hostPID", json!(true))),
        Just(("hostNetwork", json!(false))),
        Just(("image", json!({"tag": "latest"}))),
        Just(("extraHostVolumeMounts", json!([{"name": "r", "hostPath": "/run", "mountPath": "/host/run"}]))),
        Just(("hostRootFsMount", json!({"enabled": false}))),
        Just(("resources", json!({"limits": {"memory": "64Mi"}}))),
        Just(("podAnnotations", json!({"a": "b"}))),
        Just(("extraArgs", json!(["--collector.textfile"]))),
    ];
    let top = prop_oneof![
        Just(("prometheus", json!({"prometheusSpec": {"retention": "10d"}}))),
        Just(("prometheus", json!({"prometheusSpec": {"podMonitorSelector": {"matchLabels": {"a": "b"}}}}))),
        Just(("grafana", json!({"enabled": false}))),
        Just(("nodeExporter", json!({"enabled": false}))),
    ];
    (proptest::collection::vec(leaf, 0..4), proptest::option::of(top)).prop_map(|(leaves, top)| {
        let mut ne = serde_json::Map::new();
        for (k, v) in leaves {
            ne.insert(k.to_string(), v);
        }
        let mut out = json!({ "prometheus-node-exporter": ne });
        if let Some((k, v)) = top {
            out[k] = v;
        }
        out
    })
}

const SPEC: &str = r#"apiVersion: tessera.dev/v1alpha1
kind: Fleet
metadata: { name: core }
spec:
  kubernetes: { version: "1.31" }
  nodePools:
    - { name: system, machine: { vcpu: 4, memoryGiB: 16 }, scale: { min: 1, max: 2 }, labels: { tier: system } }
    - name: gpu
      machine: { vcpu: 4, memoryGiB: 16 }
      scale: { min: 1, max: 2 }
      labels: { tier: gpu }
      taints: [{ key: gpu, value: "true", effect: NoExecute }]
  coreServices:
    monitoring: { values: VALUES }
  placements:
    - { name: aws, provider: sim, region: eu-west-1 }
"#;

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_overlays_either_validate_and_cover_every_pool_or_are_refused(overlay in overlay()) {
        let src = SPEC.replace("VALUES", &serde_json::to_string(&overlay).unwrap());
        if let Ok(fleet) = spec::load_str(Path::new("f.yaml"), &src) {
            let cluster = &fleet.placements[0].cluster;
            let built = workloads::build(&cluster.core_services);
            prop_assert!(built.iter().any(|w| w.source == Source::Chart), "node-exporter is built");
            for w in &built {
                for pool in &cluster.pools {
                    let why = why_not(w.pod_spec(), &pool_node(pool));
                    prop_assert!(why.is_none(), "{} misses pool {}: {:?} ({overlay})", w.name(), pool.name, why);
                }
                prop_assert!(floor::check(w).is_empty(), "{}: {:?}", w.name(), floor::check(w));
            }
            // What the real helm renders from the same values reaches every pool too.
            let m = cluster.core_services.monitoring.as_ref().unwrap();
            for ds in rendered_daemonsets(&merged(m)) {
                let (reached, floor_ok) = verdict(&ds);
                prop_assert!(reached.iter().all(|r| *r) && floor_ok, "rendered {ds} ({overlay})");
            }
        }
    }
}

#[test]
fn harmless_overlays_are_accepted_so_the_property_is_not_vacuous() {
    let harmless = json!({"prometheus-node-exporter": {"resources": {"limits": {"memory": "64Mi"}}, "extraArgs": ["--x"]},
                          "prometheus": {"prometheusSpec": {"retention": "10d"}}});
    let src = SPEC.replace("VALUES", &serde_json::to_string(&harmless).unwrap());
    assert!(spec::load_str(Path::new("f.yaml"), &src).is_ok());
}

/// A renderer with the real helm, the charts mapped to local directories, and an empty cache.
fn renderer(local: &[(&str, &Path)], cache: &Path) -> CachedCharts {
    let mut settings = KubeClientSettings {
        helm: Some(helm()),
        chart_cache: Some(cache.to_path_buf()),
        ..KubeClientSettings::default()
    };
    for (reference, dir) in local {
        settings.local_charts.insert(reference.to_string(), dir.to_path_buf());
    }
    CachedCharts::new(settings)
}

fn stand_in() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/charts/kube-prometheus-stack")
}

const FORK: &str = "oci://registry.test/forks/kube-prometheus-stack";

/// A fork of the stand-in chart, as a spec may pin one (`coreServices.monitoring.chart`): its
/// node-exporter keeps to one tier of nodes when `onlyTier` is set, a key the model never reads,
/// and, as real charts do, it fails on a value of the wrong kind.
fn fork(dir: &Path) -> PathBuf {
    let out = dir.join("kube-prometheus-stack");
    std::fs::create_dir_all(out.join("templates")).unwrap();
    std::fs::copy(stand_in().join("values.yaml"), out.join("values.yaml")).unwrap();
    std::fs::copy(stand_in().join("templates/operator.yaml"), out.join("templates/operator.yaml")).unwrap();
    let chart = std::fs::read_to_string(stand_in().join("Chart.yaml")).unwrap();
    std::fs::write(out.join("Chart.yaml"), chart.replace("version: 88.5.3", "version: 88.5.3-fork.1")).unwrap();
    let template = std::fs::read_to_string(stand_in().join("templates/node-exporter.yaml")).unwrap();
    let selector = "      {{- with $ne.nodeSelector }}\n      nodeSelector:\n        {{- toYaml . | nindent 8 }}\n      {{- end }}";
    let forked = "      {{- if kindIs \"map\" $ne.onlyTier }}{{ fail \"onlyTier is one tier's name\" }}{{ end }}\n      nodeSelector:\n        {{- toYaml $ne.nodeSelector | nindent 8 }}\n        {{- with $ne.onlyTier }}\n        tier: {{ . }}\n        {{- end }}";
    assert!(template.contains(selector), "the stand-in's node selector moved; update the fork");
    std::fs::write(out.join("templates/node-exporter.yaml"), template.replace(selector, forked)).unwrap();
    out
}

/// [`SPEC`] with the fork pinned, and values that keep its node-exporter to the `system` tier.
fn fork_spec() -> String {
    let fork = "monitoring:\n      chart: { reference: \"oci://registry.test/forks/kube-prometheus-stack\", version: 88.5.3-fork.1 }\n      values:\n        prometheus-node-exporter:\n          onlyTier: system";
    SPEC.replace("monitoring: { values: VALUES }", fork)
}

fn load_rendered(src: &str, charts: &CachedCharts) -> Result<spec::Fleet, spec::SpecError> {
    spec::load_str_with_charts(Path::new("f.yaml"), src, &tessera::backends::all(), charts)
}

fn check<'f>(fleet: &'f spec::Fleet, reference: &str) -> &'f spec::ChartCheck {
    let found = fleet.chart_checks.iter().find(|c| c.chart == reference);
    found.unwrap_or_else(|| panic!("no check of {reference}: {:?}", fleet.chart_checks))
}

#[test]
fn a_pool_only_helms_rendering_misses_is_refused_at_the_values() {
    let dir = tempfile::tempdir().unwrap();
    let fork = fork(dir.path());

    // Tessera's model does not know `onlyTier`: by it, every pool is reached.
    let src = fork_spec();
    let by_model = spec::load_str(Path::new("f.yaml"), &src).unwrap();
    let c = check(&by_model, FORK);
    assert!(!c.rendered && c.describe().contains("checked against Tessera's model"), "{}", c.describe());

    let err = load_rendered(&src, &renderer(&[(FORK, fork.as_path())], dir.path())).unwrap_err();
    let line = src.lines().position(|l| l.trim() == "prometheus-node-exporter:").unwrap() + 1;
    let at = format!(
        "f.yaml:{line}:9: pool `gpu` would not run DaemonSet monitoring/kube-prometheus-stack-prometheus-node-exporter (as helm renders it)"
    );
    assert!(err.lines().iter().any(|l| l.starts_with(&at)), "{:?}", err.lines());
    assert_eq!(err.lines().len(), 1, "only the gpu pool is missed: {:?}", err.lines());
}

#[test]
fn values_helm_refuses_are_refused_at_the_values() {
    let dir = tempfile::tempdir().unwrap();
    let fork = fork(dir.path());
    let src = fork_spec().replace("onlyTier: system", "onlyTier: { name: system }");
    let err = load_rendered(&src, &renderer(&[(FORK, fork.as_path())], dir.path())).unwrap_err();
    let line = src.lines().position(|l| l.trim() == "prometheus-node-exporter:").unwrap() + 1;
    let at = format!(
        "f.yaml:{line}:9: helm cannot render chart `{FORK}` 88.5.3-fork.1 from these values: helm template failed"
    );
    assert!(
        err.lines().iter().any(|l| l.starts_with(&at) && l.contains("onlyTier is one tier's name")),
        "{:?}",
        err.lines()
    );
}

#[test]
fn the_rendered_stand_in_is_refused_at_the_same_lines_as_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let charts = renderer(&[(KUBE_PROMETHEUS_STACK, stand_in().as_path())], dir.path());
    // Monitoring tolerates only `dedicated`: the NoExecute `gpu` taint keeps node-exporter off.
    let src = SPEC.replace(
        "monitoring: { values: VALUES }",
        "monitoring: { tolerations: [{ key: dedicated, operator: Exists }] }",
    );
    let model = spec::load_str(Path::new("f.yaml"), &src).unwrap_err().lines();
    let rendered = load_rendered(&src, &charts).unwrap_err().lines();
    let location = |l: &String| l.split(": ").next().unwrap_or_default().to_string();
    assert!(!model.is_empty());
    assert_eq!(model.iter().map(location).collect::<Vec<_>>(), rendered.iter().map(location).collect::<Vec<_>>());
    assert!(rendered.iter().any(|l| l.contains("taint `gpu`") && l.contains("(as helm renders it)")), "{rendered:?}");

    // And a spec that covers every pool validates, saying helm's rendering was used.
    let ok = load_rendered(&SPEC.replace("VALUES", "{}"), &charts).unwrap();
    let c = check(&ok, KUBE_PROMETHEUS_STACK);
    assert!(c.rendered, "{c:?}");
    assert!(c.describe().ends_with("coverage checked against helm's rendering"), "{}", c.describe());
}

#[test]
fn without_helm_or_the_chart_the_model_is_used_and_said() {
    let dir = tempfile::tempdir().unwrap();
    let fork = fork(dir.path());
    let no_helm = CachedCharts::new(KubeClientSettings {
        helm: Some("/nonexistent/helm".into()),
        chart_cache: Some(dir.path().to_path_buf()),
        local_charts: [(FORK.to_string(), fork)].into(),
        ..KubeClientSettings::default()
    });
    // The fork's miss is not seen, and the fleet says why.
    let fleet = load_rendered(&fork_spec(), &no_helm).unwrap();
    let c = check(&fleet, FORK);
    assert!(!c.rendered);
    assert!(
        c.describe().contains("helm or the chart is not available locally (no helm at `/nonexistent/helm`)"),
        "{}",
        c.describe()
    );

    // With helm but not the chart (nothing cached, nothing mapped), nothing is pulled.
    let fleet = load_rendered(&fork_spec(), &renderer(&[], dir.path())).unwrap();
    assert_eq!(check(&fleet, FORK).reason.as_deref(), Some("the chart is not in the chart cache"));
}

#[test]
fn validate_says_which_charts_helm_rendered() {
    let cache = tempfile::tempdir().unwrap();
    // What an earlier install leaves: the pinned chart's archive in the chart cache.
    let pinned = ChartRef { reference: KUBE_PROMETHEUS_STACK.into(), version: "88.5.3".into(), digest: None };
    let dir = tessera_kube_client::helm::cache_dir(&cache.path().join("tessera/charts"), &pinned);
    std::fs::create_dir_all(&dir).unwrap();
    let packaged = Command::new(helm()).arg("package").arg(stand_in()).arg("-d").arg(&dir).output().unwrap();
    assert!(packaged.status.success(), "{}", String::from_utf8_lossy(&packaged.stderr));

    let validate = |helm: &Path, json: bool| {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("tessera"));
        c.current_dir(env!("CARGO_MANIFEST_DIR")).env("XDG_CACHE_HOME", cache.path()).env("TESSERA_HELM", helm);
        c.env("NO_COLOR", "1").args(["validate", "specs/quickstart.yaml"]);
        if json {
            c.args(["--output", "json"]);
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out
    };
    let out = validate(&helm(), false);
    let notes = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        notes.contains("note: chart `kube-prometheus-stack` 88.5.3: coverage checked against helm's rendering"),
        "{notes}"
    );
    assert!(
        notes.contains("note: chart `logging-operator` 6.7.0: coverage checked against Tessera's model of it; helm or the chart is not available locally (the chart is not in the chart cache)"),
        "{notes}"
    );

    let out = validate(Path::new("/nonexistent/helm"), false);
    let notes = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(notes.contains("chart `kube-prometheus-stack` 88.5.3: coverage checked against Tessera's model of it; helm or the chart is not available locally (no helm at `/nonexistent/helm`)"), "{notes}");

    let out = validate(&helm(), true);
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["charts"][0]["chart"], json!(KUBE_PROMETHEUS_STACK), "{body}");
    assert_eq!(body["charts"][0]["rendered"], json!(true), "{body}");
    assert_eq!(body["charts"][1]["rendered"], json!(false), "{body}");
}
