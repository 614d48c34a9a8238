//! One apply makes an EKS cluster (on moto) and installs its core services (on the Kubernetes
//! API fixture, which the cluster's endpoint is mapped to): node-exporter through the
//! kube-prometheus-stack chart, a custom exporter, logging-operator and its pipeline. The charts
//! are local stand-ins (tests/charts) rendered by the real helm; every object Tessera sends is
//! validated by the fixture (`kubernetes-validate --strict` at 1.31, the real CRDs).
//!
//! The test then acts as the cluster: Nodes from the node groups moto holds (their labels and
//! taints, as EKS gives them), and Pods wherever a DaemonSet's pod template schedules
//! ([`coverage::schedules`]), the operator's fluent-bit and host-tailer DaemonSets made from the
//! FluentbitAgent and HostTailer, as logging-operator does. `tessera verify` must then find every
//! node covered, the NoExecute pool included.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::Harness;
use common::moto::{Moto, aws};
use secrecy::SecretString;
use serde_json::{Value, json};
use tessera::plan::ActionKind;
use tessera::providers::Registry;
use tessera::retry::RetryPolicy;
use tessera::spec::{self, Fleet};
use tessera::state::SqliteStore;
use tessera_kube::charts::{self, LOGGING_NAMESPACE};
use tessera_kube::coverage::{self, Node, POOL_LABEL};
use tessera_kube_client::KubeClientSettings;
use tessera_kube_client::release::{self, Release};
use tessera_kube_fixture::KubeFixture;
use tessera_provider_api::poll::PollPolicy;
use tessera_sim::Faults;

const TOKEN: &str = "eks-fixture-token";
const CLUSTER: &str = "eks-core-eu";
const REGION: &str = "eu-west-1";

const SPEC: &str = r#"apiVersion: tessera.dev/v1alpha1
kind: Fleet
metadata: { name: eks-core }
spec:
  kubernetes: { version: "1.31" }
  network: { cidr: 10.70.0.0/16 }
  nodePools:
    - name: system
      machine: { vcpu: 4, memoryGiB: 16, arch: amd64 }
      scale: { min: 2, max: 4 }
      labels: { tier: system }
    - name: infra
      machine: { vcpu: 8, memoryGiB: 32, arch: amd64 }
      scale: { min: 1, max: 2 }
      labels: { tier: infra }
      taints:
        - { key: dedicated, value: infra, effect: NoSchedule }
    - name: batch
      machine: { vcpu: 8, memoryGiB: 32, arch: amd64, spot: true }
      scale: { min: 2, max: 5 }
      taints:
        - { key: workload, value: batch, effect: NoExecute }
  coreServices:
    monitoring:
      exporters:
        - name: smartctl
          image: quay.io/prometheuscommunity/smartctl-exporter:v0.14.0
          privileged: true
          hostMounts: [/dev]
          port: 9633
    logging:
      journald: { units: [kubelet, containerd] }
      auditLogs: true
      output:
        loki: { url: http://loki.logging.svc:3100 }
  placements:
    - { name: eu, provider: eks, region: eu-west-1 }
"#;

fn helm() -> PathBuf {
    if let Some(h) = std::env::var_os("TESSERA_HELM").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/helm");
    assert!(local.exists(), "this test needs the real helm: run scripts/test, or set TESSERA_HELM");
    local
}

fn fast(total: Duration) -> PollPolicy {
    PollPolicy { min_delay: Duration::from_millis(20), max_delay: Duration::from_millis(200), total }
}

/// Every cluster's API server is the fixture; the pinned charts are the local stand-ins.
fn kube_settings(fixture: &KubeFixture) -> KubeClientSettings {
    let charts_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/charts");
    let local_charts = [
        (charts::KUBE_PROMETHEUS_STACK.to_string(), charts_dir.join("kube-prometheus-stack")),
        (charts::LOGGING_OPERATOR.to_string(), charts_dir.join("logging-operator")),
    ]
    .into();
    KubeClientSettings {
        endpoint: Some(fixture.url()),
        bearer_token: Some(SecretString::from(TOKEN.to_string())),
        helm: Some(helm()),
        local_charts,
        poll: fast(Duration::from_secs(60)),
        rollout: fast(Duration::from_secs(60)),
        ..KubeClientSettings::default()
    }
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

/// A Node as coverage sees a fixture Node.
fn as_node(n: &Value) -> Node {
    Node {
        name: text(n, "/metadata/name").into(),
        labels: serde_json::from_value(n["metadata"]["labels"].clone()).unwrap_or_default(),
        taints: n.pointer("/spec/taints").and_then(Value::as_array).cloned().unwrap_or_default(),
        daemon_pods: BTreeMap::new(),
        ready: n
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True")),
    }
}

/// A DaemonSet as logging-operator makes it from one of its resources: only what scheduling
/// needs, from the resource's tolerations and node selector.
fn operator_daemonset(namespace: &str, name: &str, tolerations: &Value, node_selector: &Value) -> Value {
    let mut pod = json!({"containers": [{"name": name, "image": "ghcr.io/kube-logging/fluent-bit:4.0"}]});
    if !tolerations.is_null() {
        pod["tolerations"] = tolerations.clone();
    }
    if !node_selector.is_null() {
        pod["nodeSelector"] = node_selector.clone();
    }
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                 "template": {"metadata": {"labels": {"app.kubernetes.io/name": name}}, "spec": pod}},
    })
}

/// One pass of what a real cluster's controllers do: logging-operator makes the fluent-bit and
/// host-tailer DaemonSets (once its Deployment is installed), the DaemonSet controller and the
/// scheduler put a ready Pod of each DaemonSet on every node its template schedules onto (and
/// take it off the others), and the DaemonSet's status follows.
fn act_as_cluster(fixture: &KubeFixture) {
    let operator_installed =
        fixture.get("apps/v1", "Deployment", Some(LOGGING_NAMESPACE), charts::LOGGING_RELEASE).is_some();
    if operator_installed {
        let mut made = Vec::new();
        for agent in fixture.objects_of("logging.banzaicloud.io/v1beta1", "FluentbitAgent") {
            let name = format!("{}-fluentbit", text(&agent, "/metadata/name"));
            let spec = &agent["spec"];
            made.push(operator_daemonset(LOGGING_NAMESPACE, &name, &spec["tolerations"], &spec["nodeSelector"]));
        }
        for tailer in fixture.objects_of("logging-extensions.banzaicloud.io/v1alpha1", "HostTailer") {
            let name = format!("{}-host-tailer", text(&tailer, "/metadata/name"));
            let o = &tailer["spec"]["workloadOverrides"];
            let ns = text(&tailer, "/metadata/namespace");
            made.push(operator_daemonset(ns, &name, &o["tolerations"], &o["nodeSelector"]));
        }
        for ds in made {
            let live = fixture.get(
                "apps/v1",
                "DaemonSet",
                Some(text(&ds, "/metadata/namespace")),
                text(&ds, "/metadata/name"),
            );
            if live.is_none_or(|l| l["spec"]["template"] != ds["spec"]["template"]) {
                fixture.put_object(ds).unwrap();
            }
        }
    }
    let nodes: Vec<Node> = fixture.objects_of("v1", "Node").iter().map(as_node).collect();
    for ds in fixture.objects_of("apps/v1", "DaemonSet") {
        let (ns, name) = (text(&ds, "/metadata/namespace"), text(&ds, "/metadata/name"));
        for node in &nodes {
            let pod_name = format!("{name}-{}", node.name);
            let present = fixture.get("v1", "Pod", Some(ns), &pod_name).is_some();
            let wanted = coverage::schedules(&ds["spec"]["template"]["spec"], node);
            if wanted && !present {
                fixture
                    .put_object(json!({
                        "apiVersion": "v1", "kind": "Pod",
                        "metadata": {
                            "name": pod_name, "namespace": ns,
                            "labels": ds["spec"]["selector"]["matchLabels"],
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": name,
                                                 "uid": ds["metadata"]["uid"], "controller": true,
                                                 "blockOwnerDeletion": true}],
                        },
                        "spec": {"nodeName": node.name, "containers": ds["spec"]["template"]["spec"]["containers"]},
                        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
                    }))
                    .unwrap();
            } else if !wanted && present {
                fixture.delete_object("v1", "Pod", Some(ns), &pod_name);
            }
        }
    }
    fixture.run_daemonset_controller().unwrap();
}

/// Runs `work` while [`act_as_cluster`] runs every 100 ms.
async fn with_cluster_running<T>(fixture: &Arc<KubeFixture>, work: impl std::future::Future<Output = T>) -> T {
    let controllers = {
        let fixture = Arc::clone(fixture);
        tokio::spawn(async move {
            loop {
                act_as_cluster(&fixture);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let out = work.await;
    controllers.abort();
    out
}

/// Nodes for every node group moto holds: its desired size, its labels and taints as EKS puts
/// them on the nodes.
async fn add_nodes(moto: &Moto, fixture: &KubeFixture) -> BTreeMap<String, Vec<String>> {
    let a = aws(moto, REGION).await;
    let mut pools = BTreeMap::new();
    for ng_name in a.eks.list_nodegroups().cluster_name(CLUSTER).send().await.unwrap().nodegroups() {
        let ng = a.eks.describe_nodegroup().cluster_name(CLUSTER).nodegroup_name(ng_name).send().await.unwrap();
        let ng = ng.nodegroup().unwrap();
        let labels: BTreeMap<String, String> = ng.labels().cloned().unwrap_or_default().into_iter().collect();
        let pool =
            labels.get(POOL_LABEL).cloned().unwrap_or_else(|| panic!("node group {ng_name} has no {POOL_LABEL}"));
        let taints: Vec<Value> = ng
            .taints()
            .iter()
            .map(|t| {
                let effect = match t.effect().map(|e| e.as_str()) {
                    Some("NO_SCHEDULE") => "NoSchedule",
                    Some("NO_EXECUTE") => "NoExecute",
                    Some("PREFER_NO_SCHEDULE") => "PreferNoSchedule",
                    other => panic!("unknown taint effect {other:?}"),
                };
                json!({"key": t.key(), "value": t.value(), "effect": effect})
            })
            .collect();
        let size = ng.scaling_config().and_then(|s| s.desired_size()).unwrap_or(0);
        let mut names = Vec::new();
        for i in 0..size {
            let name = format!("ip-10-70-{pool}-{i}.{REGION}.compute.internal");
            fixture.add_node(&name, json!(labels), json!(taints)).unwrap();
            names.push(name);
        }
        pools.insert(pool, names);
    }
    pools
}

struct Env {
    moto: Moto,
    fixture: Arc<KubeFixture>,
    h: Harness,
    registry: Registry,
    fleet: Fleet,
    settings: (tessera_eks::EksSettings, KubeClientSettings),
    _dir: tempfile::TempDir,
}

impl Env {
    /// Another registry on the same moto, fixture and sim cloud, as another run would build it.
    fn registry_with(&self, f: impl FnOnce(Registry) -> Registry) -> Registry {
        let (eks, kube) = self.settings.clone();
        f(Registry::new(self.h.cloud.clone(), 1.0).with_eks(eks).with_kube(kube))
    }
}

/// moto, the fixture (answering only the token), and an engine whose EKS backend is moto and
/// whose Kubernetes provider reaches the fixture.
fn env() -> Env {
    let moto = Moto::start();
    let fixture =
        Arc::new(KubeFixture::builder().kubernetes_version("1.31.0").require_bearer_token(TOKEN).start().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let (eks, kube) = (moto.eks_settings(), kube_settings(&fixture));
    let h = Harness::with_registry(Faults::default(), store, |r| r.with_eks(eks.clone()).with_kube(kube.clone()));
    let registry = Registry::new(h.cloud.clone(), 1.0).with_eks(eks.clone()).with_kube(kube.clone());
    let spec_path = dir.path().join("eks-core.yaml");
    std::fs::write(&spec_path, SPEC).unwrap();
    let fleet = spec::load(&spec_path).unwrap();
    Env { moto, fixture, h, registry, fleet, settings: (eks, kube), _dir: dir }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_apply_makes_an_eks_cluster_and_installs_its_core_services_covering_every_node() {
    let e = env();

    // The plan: the Kubernetes side is planned before the cluster exists; its connection is
    // known after apply.
    let plan = e.h.plan(&e.fleet).await;
    let shown = tessera::plan::render_human(&plan);
    assert!(plan.is_complete(), "{shown}");
    let planned: Vec<String> = plan.actions.iter().map(|a| a.address.to_string()).collect();
    for wanted in [
        "eu/eks.cluster/main",
        "eu/eks.nodegroup/batch",
        "eu/kube.object/namespace-monitoring",
        "eu/helm.release/kube-prometheus-stack",
        "eu/helm.release/logging-operator",
        "eu/kube.object/daemonset-smartctl",
        "eu/kube.object/hosttailer",
    ] {
        assert!(planned.iter().any(|p| p == wanted), "{wanted} is not planned:\n{shown}");
    }
    // Every Kubernetes-side action goes through the cluster this plan creates.
    let cluster = tessera_provider_api::Address::new("eu", "eks.cluster", "main");
    assert!(plan.actions.iter().any(|a| a.address == cluster && a.kind == ActionKind::Create), "{shown}");
    let kube_side: Vec<_> = plan.actions.iter().filter(|a| a.provider.kind == tessera_kube::contract::KIND).collect();
    assert_eq!(kube_side.len(), 13, "2 namespaces, 2 releases, 9 objects (2 of them alerting's):\n{shown}");
    assert!(kube_side.iter().all(|a| a.provider.connection.as_ref() == Some(&cluster)), "{shown}");

    // One apply converges: cloud and cluster side.
    let report = with_cluster_running(&e.fixture, e.h.apply_plan(&plan, &e.fleet)).await;
    assert!(report.is_success(), "{report:#?}");
    assert_eq!(report.succeeded(), plan.actions.len(), "{report:#?}");
    e.fixture.assert_no_rejections();
    let requests = e.fixture.requests();
    assert!(!requests.is_empty() && requests.iter().all(|r| r.status != 401), "every request carried the token");
    for id in [
        "v1/Namespace//monitoring",
        "v1/Namespace//logging",
        &coverage::node_exporter_id(),
        "apps/v1/Deployment/monitoring/kube-prometheus-stack-operator",
        "apps/v1/Deployment/logging/logging-operator",
        &coverage::exporter_id("smartctl"),
        "monitoring.coreos.com/v1/PodMonitor/monitoring/smartctl",
        "logging.banzaicloud.io/v1beta1/Logging//tessera",
        "logging.banzaicloud.io/v1beta1/FluentbitAgent//tessera",
        "logging.banzaicloud.io/v1beta1/ClusterOutput/logging/tessera",
        "logging.banzaicloud.io/v1beta1/ClusterFlow/logging/tessera",
        "logging-extensions.banzaicloud.io/v1alpha1/HostTailer/logging/tessera",
    ] {
        let live = e.fixture.get_id(id).unwrap_or_else(|| panic!("{id} was not applied"));
        assert_eq!(live["metadata"]["labels"]["app.kubernetes.io/managed-by"], "tessera", "{id}");
    }
    for crd in ["podmonitors.monitoring.coreos.com", "hosttailers.logging-extensions.banzaicloud.io"] {
        assert!(e.fixture.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", None, crd).is_some(), "{crd}");
    }

    // The cluster's nodes join; its controllers place the DaemonSet pods.
    let pools = add_nodes(&e.moto, &e.fixture).await;
    assert_eq!(pools.keys().map(String::as_str).collect::<Vec<_>>(), ["batch", "infra", "system"]);
    act_as_cluster(&e.fixture);
    act_as_cluster(&e.fixture); // the operator's DaemonSets get their pods on the second pass

    let coverage =
        tessera::verify::verify(&e.fleet, &e.registry, e.h.store.as_ref(), &RetryPolicy::default()).await.unwrap();
    assert_eq!(coverage.len(), 1, "{coverage:?}");
    let report = coverage[0].report.as_ref().unwrap_or_else(|| panic!("verify could not read: {coverage:?}"));
    assert!(report.gaps.is_empty(), "uncovered: {:#?}", report.gaps);
    assert_eq!(report.pools.len(), pools.len(), "{:?}", report.pools);
    for p in &report.pools {
        let n = pools[&p.pool].len();
        assert!(n > 0, "{p:?}");
        assert_eq!((p.nodes, p.monitored, p.logged), (n, n, n), "{p:?}");
    }
    // The NoExecute pool's nodes run node-exporter, fluent-bit and the host tailer.
    for node in &pools["batch"] {
        for ds in [coverage::node_exporter_id(), coverage::fluentbit_id(), coverage::host_tailer_id()] {
            let o = tessera_kube::contract::parse_object_id(&ds).unwrap();
            assert!(e.fixture.get("v1", "Pod", o.namespace, &format!("{}-{node}", o.name)).is_some(), "{ds} on {node}");
        }
    }

    // Nothing to do: the pods, statuses and operator-made DaemonSets are not Tessera's fields.
    let again = e.h.plan(&e.fleet).await;
    assert!(!again.has_changes() && again.drift.is_empty(), "{}", tessera::plan::render_human(&again));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_exporter_helm_renders_tolerates_the_no_execute_pool_where_the_charts_default_does_not() {
    let e = env();
    let report = with_cluster_running(&e.fixture, e.h.apply(&e.fleet)).await;
    assert!(report.is_success(), "{report:#?}");
    e.fixture.assert_no_rejections();
    let pools = add_nodes(&e.moto, &e.fixture).await;
    let batch = as_node(&e.fixture.get("v1", "Node", None, &pools["batch"][0]).unwrap());
    assert_eq!(batch.taints, [json!({"key": "workload", "value": "batch", "effect": "NoExecute"})]);

    // What helm rendered and Tessera applied.
    let ne = e.fixture.get_id(&coverage::node_exporter_id()).unwrap();
    let pod = &ne["spec"]["template"]["spec"];
    let tolerations = pod["tolerations"].as_array().cloned().unwrap_or_default();
    assert!(
        batch.taints.iter().all(|t| tolerations.iter().any(|tol| coverage::tolerates(tol, t))),
        "node-exporter tolerates the NoExecute taint: {tolerations:?}"
    );
    assert!(coverage::schedules(pod, &batch), "{pod}");
    assert_eq!(pod["nodeSelector"], json!({"kubernetes.io/os": "linux"}));
    let root = pod["containers"][0]["volumeMounts"].as_array().unwrap().iter().find(|m| m["name"] == "root").cloned();
    assert_eq!(
        root,
        Some(
            json!({"name": "root", "mountPath": "/host/root", "mountPropagation": "HostToContainer", "readOnly": true})
        )
    );

    // The same chart with its own defaults (NoSchedule only) would leave the batch pool out.
    let chart_defaults = Release {
        name: charts::MONITORING_RELEASE.into(),
        namespace: charts::MONITORING_NAMESPACE.into(),
        chart: tessera_kube_client::helm::ChartRef {
            reference: charts::KUBE_PROMETHEUS_STACK.into(),
            version: charts::KUBE_PROMETHEUS_STACK_VERSION.into(),
            digest: None,
        },
        values: json!({}),
        kube_version: "1.31".into(),
    };
    let rendered = release::render(&kube_settings(&e.fixture), &chart_defaults).await.unwrap();
    let default_ds = rendered
        .iter()
        .find(|o| tessera_kube::contract::id_of(o).as_deref() == Some(coverage::node_exporter_id().as_str()))
        .expect("the stand-in chart renders node-exporter");
    assert!(!coverage::schedules(&default_ds["spec"]["template"]["spec"], &batch), "{default_ds}");
}

/// Issue 12: "the plan shows `(known after apply)` for [the cluster's endpoint] beforehand".
/// The cluster's outputs that only EKS will give are shown so, and each Kubernetes-side action
/// says it goes through that cluster's API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_shows_the_clusters_endpoint_and_ca_as_known_after_apply() {
    let e = env();
    let shown = tessera::plan::render_human(&e.h.plan(&e.fleet).await);
    for output in ["endpoint", "certificateAuthority"] {
        let line = shown.lines().find(|l| l.contains(output) && l.contains("(known after apply)"));
        assert!(line.is_some(), "the cluster's {output} is known after apply:\n{shown}");
    }
    let through = "# through the API of eu/eks.cluster/main (known after apply)";
    assert!(
        shown.matches(through).count() >= 11,
        "every Kubernetes-side action connects through the new cluster:\n{shown}"
    );
}

/// Issue 21: authority belongs to the placement. Under a policy that names only `eks` as
/// pipeline-only, a laptop apply that changes nothing but the cluster's log output (a
/// Kubernetes-side change) is refused in the provider layer: the fixture sees no write, and the
/// cluster's ClusterOutput still points where the pipeline put it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_laptop_cannot_change_the_core_services_of_a_pipeline_only_eks_cluster() {
    let e = env();
    let report = with_cluster_running(&e.fixture, e.h.apply(&e.fleet)).await;
    assert!(report.is_success(), "{report:#?}");
    let output_id = "logging.banzaicloud.io/v1beta1/ClusterOutput/logging/tessera";
    let before = e.fixture.get_id(output_id).unwrap();

    let key = hex::encode(ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key().to_bytes());
    let policy = tessera::pipeline::Policy::parse(
        std::path::Path::new("policy.yaml"),
        &format!(
            "apiVersion: tessera.dev/v1alpha1\nkind: Policy\napprovers:\n- {{ name: a, key: {key}, lanes: [infra] }}\n\
             lanes:\n- {{ name: infra, approvals: 1, providers: [eks] }}\npipelineOnly: {{ providers: [eks] }}\n"
        ),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eks-core.yaml");
    std::fs::write(&path, SPEC.replace("http://loki.logging.svc:3100", "http://attacker.example:3100")).unwrap();
    let fleet = spec::load(&path).unwrap();
    let laptop = tessera::engine::Engine::new(
        Arc::new(e.registry_with(|r| r.with_read_only(policy.read_only_guard()))),
        e.h.store.clone(),
    );
    let plan = laptop.plan(&fleet, tessera::plan::Mode::Apply).await.unwrap();
    assert!(!plan.actions.is_empty(), "the log output changes");
    assert!(plan.actions.iter().all(|a| a.provider.kind == tessera_kube::contract::KIND), "only the cluster's inside");
    let writes_before = e.fixture.requests().iter().filter(|r| r.method != "GET").count();
    let (_tx, rx) = tessera::exec::cancel_signal();
    let report = laptop
        .apply(&plan, Some(&fleet), "apply", &Default::default(), Arc::new(tessera::exec::Quiet), rx)
        .await
        .unwrap();
    assert_eq!(report.succeeded(), 0, "{report:#?}");
    assert!(report.failed() > 0, "{report:#?}");
    let writes_after = e.fixture.requests().iter().filter(|r| r.method != "GET").count();
    assert_eq!(writes_before, writes_after, "no write reached the cluster");
    assert_eq!(e.fixture.get_id(output_id).unwrap()["spec"], before["spec"]);
}

/// A rollout with an EKS canary (moto, its API the fixture) and a sim placement after it: a pool
/// change reaches the canary first, and its gate reads the canary's Nodes and DaemonSet Pods
/// through the Kubernetes API (and its Alertmanager through the API server's proxy). A node that
/// is not Ready, then a node without its node-exporter pod, then a critical alert, halt the
/// rollout with the sim placement untouched; once the canary is whole again the next
/// apply reads the gate again, goes on with the second wave and leaves a clean plan.
///
/// A version upgrade would be the natural change, but moto (5.x) has no UpdateClusterVersion or
/// UpdateNodegroupVersion; a node group's scale goes through UpdateNodegroupConfig, which it has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_change_goes_wave_by_wave_and_the_eks_canarys_gate_reads_its_nodes_and_pods() {
    let e = env();
    let with_sim = SPEC.replace(
        "    - { name: eu, provider: eks, region: eu-west-1 }\n",
        "    - { name: eu, provider: eks, region: eu-west-1 }\n    - { name: sim, provider: sim, sim: { profile: eks }, region: eu-west-1 }\n",
    );
    let waves = "  rollout:\n    soak: 1s\n    waves:\n      - { placements: [eu] }\n      - { placements: [\"*\"] }\n";
    let load = |text: &str| {
        let path = e._dir.path().join("fleet.yaml");
        std::fs::write(&path, text).unwrap();
        spec::load(&path).unwrap()
    };
    // The sim's clusters come up at once (time scale 0); moto's and the fixture's take what they take.
    let registry = Arc::new(e.registry_with(|r| r).with_setting(tessera_sim::SimRuntime {
        cloud: e.h.cloud.clone(),
        time_scale: 0.0,
        max_in_flight: None,
    }));
    let engine = tessera::engine::Engine::new(registry, e.h.store.clone());
    let apply = |fleet: Fleet| {
        let engine = &engine;
        async move {
            let plan = engine.plan(&fleet, tessera::plan::Mode::Apply).await.unwrap();
            let events = Arc::new(tessera::exec::Recorder::default());
            let (_tx, rx) = tessera::exec::cancel_signal();
            let report =
                engine.apply(&plan, Some(&fleet), "apply", &Default::default(), events.clone(), rx).await.unwrap();
            (plan, report, events.events())
        }
    };

    // The fleet, made at once; the canary's nodes join, its pods run, and its Alertmanager (alerting
    // is on with monitoring) runs Tessera's routing, holds the heartbeat, and pages nobody.
    let (_, report, _) = with_cluster_running(&e.fixture, apply(load(&with_sim))).await;
    assert!(report.is_success(), "{report:#?}");
    let pools = add_nodes(&e.moto, &e.fixture).await;
    act_as_cluster(&e.fixture);
    act_as_cluster(&e.fixture);
    use tessera_kube::alerting_status::{alertmanager_service, critical_path};
    let am = format!("http:{}:9093", alertmanager_service());
    let (_, critical_query) =
        critical_path().split_once("/proxy").map(|(a, q)| (a.to_string(), q.to_string())).unwrap();
    let routing = format!(
        "route:\n  receiver: {}\nreceivers:\n- name: {}\n",
        tessera_kube::alert_routing::NOBODY,
        tessera_kube::alert_routing::NOBODY
    );
    e.fixture.serve_through_proxy("monitoring", &am, "/api/v2/status", json!({"config": {"original": routing}}));
    let beat = json!([{"labels": {"alertname": tessera_kube::alert_rules::HEARTBEAT, "severity": "none"}, "status": {"state": "active"}}]);
    e.fixture.serve_through_proxy("monitoring", &am, "/api/v2/alerts", beat);
    e.fixture.serve_through_proxy("monitoring", &am, &critical_query, json!([]));

    // The change: the system pool grows. A canary node is NotReady.
    let grown = format!("{}{waves}", with_sim.replace("scale: { min: 2, max: 4 }", "scale: { min: 3, max: 4 }"));
    let sick = &pools["system"][0];
    e.fixture
        .set_status(
            "v1",
            "Node",
            None,
            sick,
            json!({"conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady"}]}),
        )
        .unwrap();
    e.fixture.clear_requests();
    let (plan, report, events) = apply(load(&grown)).await;
    assert!(plan.actions.iter().any(|a| a.address.placement == "sim"), "the sim placement changes too");
    let halted = report.halted.clone().unwrap_or_else(|| panic!("the gate must halt: {report:#?}"));
    assert!(halted.contains("placement `eu` failed its gate") && halted.contains(sick), "{halted}");
    assert!(
        report
            .steps
            .iter()
            .filter(|s| s.address.starts_with("eu/"))
            .all(|s| s.status == tessera::exec::StepStatus::Succeeded),
        "{report:#?}"
    );
    let sim_steps: Vec<_> = report.steps.iter().filter(|s| s.address.starts_with("sim/")).collect();
    assert!(
        !sim_steps.is_empty() && sim_steps.iter().all(|s| s.status == tessera::exec::StepStatus::NotStarted),
        "{report:#?}"
    );
    assert!(
        !events
            .iter()
            .any(|ev| matches!(ev, tessera::exec::Event::StepStarted { placement, .. } if placement == "sim"))
    );
    let asked: Vec<String> =
        e.fixture.requests().iter().filter(|r| r.method == "GET").map(|r| r.path.clone()).collect();
    assert!(asked.iter().any(|p| p == "/api/v1/nodes"), "the gate read the Nodes through the API: {asked:?}");
    assert!(asked.iter().any(|p| p.ends_with("/pods") || p == "/api/v1/pods"), "and the Pods: {asked:?}");

    // The node is Ready again, but a node lost its node-exporter pod: the gate, read again before
    // anything changes, halts on coverage.
    e.fixture
        .set_status("v1", "Node", None, sick, json!({"conditions": [{"type": "Ready", "status": "True"}]}))
        .unwrap();
    let exporter_id = coverage::node_exporter_id();
    let exporter = tessera_kube::contract::parse_object_id(&exporter_id).unwrap();
    let pod = format!("{}-{}", exporter.name, pools["batch"][0]);
    assert!(e.fixture.delete_object("v1", "Pod", exporter.namespace, &pod).is_some(), "{pod}");
    let (_, report, events) = apply(load(&grown)).await;
    let halted = report.halted.clone().unwrap_or_else(|| panic!("still halted: {report:#?}"));
    assert!(halted.contains("coverage") && halted.contains(&pools["batch"][0]), "{halted}");
    assert!(!events.iter().any(|ev| matches!(ev, tessera::exec::Event::StepStarted { .. })), "nothing changed");

    // Covered again, but the canary pages someone: a critical alert in its Alertmanager halts it.
    act_as_cluster(&e.fixture);
    let paging =
        json!([{"labels": {"alertname": "KubeletDown", "severity": "critical"}, "status": {"state": "active"}}]);
    e.fixture.serve_through_proxy("monitoring", &am, &critical_query, paging);
    let (_, report, events) = apply(load(&grown)).await;
    let halted = report.halted.clone().unwrap_or_else(|| panic!("still halted: {report:#?}"));
    assert!(halted.contains("alertsFiring: critical alert(s) firing: KubeletDown"), "{halted}");
    assert!(!events.iter().any(|ev| matches!(ev, tessera::exec::Event::StepStarted { .. })), "nothing changed");

    // Whole again: the rollout goes on with the sim placement, and the fleet matches the spec.
    e.fixture.serve_through_proxy("monitoring", &am, &critical_query, json!([]));
    let (_, report, events) = with_cluster_running(&e.fixture, apply(load(&grown))).await;
    assert!(report.is_success(), "{report:#?}");
    assert!(events.iter().any(
        |ev| matches!(ev, tessera::exec::Event::StepStarted { placement, wave: Some(2), .. } if placement == "sim")
    ));
    let again = engine.plan(&load(&grown), tessera::plan::Mode::Apply).await.unwrap();
    assert!(!again.has_changes(), "{}", tessera::plan::render_human(&again));
    assert!(again.notes.is_empty(), "the halt is cleared: {:?}", again.notes);
}
