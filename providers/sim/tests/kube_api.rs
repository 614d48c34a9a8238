//! The sim's Kubernetes API through the `simkube` provider: core services installed on a sim
//! cluster, DaemonSets scheduled by node selector and taints, and coverage read back.

use std::sync::Arc;

use serde_json::json;
use tessera_kube::coverage::{self, Node};
use tessera_provider_api::{
    Arch, Backend, ClusterTemplate, Connection, CoreServices, Exporter, JournalPath, LogOutput, Logging, Machine,
    Monitoring, Network, Observed, PoolTemplate, ProviderExt, ProviderRef, ResourceSpec, Taint, TaintEffect,
    Toleration, TolerationOperator,
};
use tessera_sim::{Faults, Profile, SimBackend, SimCloud, SimKube, SimProvider};

fn pool(name: &str, size: u32, taints: Vec<Taint>) -> PoolTemplate {
    PoolTemplate {
        name: name.into(),
        machine: Machine { vcpu: 4, memory_gib: 16, arch: Arch::Amd64, spot: false },
        min: size,
        max: size + 2,
        labels: [(coverage::POOL_LABEL.to_string(), name.to_string())].into(),
        taints,
    }
}

fn cluster(monitoring_tolerations: Vec<Toleration>) -> ClusterTemplate {
    let no_execute = Taint { key: "gpu".into(), value: None, effect: TaintEffect::NoExecute };
    ClusterTemplate {
        fleet: "f".into(),
        placement: "p".into(),
        region: "eu-west-1".into(),
        zones: vec!["eu-west-1a".into()],
        kubernetes_version: "1.31".into(),
        network: Network::Managed { cidr: "10.0.0.0/16".into() },
        api_access: Default::default(),
        pools: vec![pool("system", 2, vec![]), pool("gpu", 1, vec![no_execute])],
        core_services: CoreServices {
            monitoring: Some(Monitoring {
                node_exporter: true,
                exporters: vec![Exporter {
                    name: "smart".into(),
                    image: "example/smart-exporter:1.2.3".into(),
                    privileged: true,
                    host_mounts: vec!["/dev".into()],
                    port: 9633,
                    path: "/metrics".into(),
                    interval: "30s".into(),
                }],
                tolerations: monitoring_tolerations,
                remote_write: None,
                remote_write_auth: None,
                chart: tessera_kube::charts::kube_prometheus_stack(),
                values: json!({}),
                alerting: None,
            }),
            logging: Some(Logging {
                journald_units: vec!["containerd".into()],
                journal_path: JournalPath::Auto,
                kubelet_logs: true,
                tolerations: vec![Toleration::everything()],
                output: LogOutput { plugin: "loki".into(), settings: json!({"url": "http://loki:3100"}) },
                chart: tessera_kube::charts::logging_operator(),
                values: json!({}),
            }),
            audit_logs: true,
        },
    }
}

/// Creates the cluster and pools, then every core-service resource in lowering order (which
/// respects dependencies), and returns the nodes the cluster reports.
async fn install(template: &ClusterTemplate) -> (Arc<SimCloud>, Vec<Node>) {
    let cloud = Arc::new(SimCloud::in_memory(Faults::default()));
    let sim = SimProvider::new(cloud.clone(), Profile::eks(), 0.0);
    let provider = ProviderRef { profile: Some("eks".into()), ..ProviderRef::new("sim", "eu-west-1") };
    let mut cluster_obs = None;
    for mut spec in SimBackend.lower(template, &provider, &Default::default()) {
        // References resolve as the executor would: the network id and cluster name are known.
        if let Some(obs) = &cluster_obs {
            let obs: &tessera_provider_api::Observed = obs;
            spec.attrs.insert("cluster".into(), obs.attrs["name"].clone());
        }
        spec.attrs.insert("network".into(), json!("net-1"));
        let obs = sim.create(&spec).await.unwrap();
        if spec.rtype() == "sim.cluster" {
            cluster_obs = Some(obs);
        }
    }
    let cluster_obs = cluster_obs.unwrap();
    let access = SimBackend.kube_access(template, &provider).unwrap();
    let conn = Connection { source: access.cluster.clone(), id: cluster_obs.id.clone(), outputs: cluster_obs.attrs };
    let kube = SimKube::connected(cloud.clone(), conn).with_time_scale(0.0);
    for spec in tessera_kube::lower::lower(template, &access, "eks") {
        kube.create(&spec).await.unwrap();
    }
    let obs = kube.read(coverage::NODES, &String::new()).await.unwrap().unwrap();
    (cloud, serde_json::from_value(obs.attrs["nodes"].clone()).unwrap())
}

#[tokio::test]
async fn every_node_of_every_pool_is_covered_including_no_execute_pools() {
    let template = cluster(vec![Toleration::everything()]);
    let (_, nodes) = install(&template).await;
    assert_eq!(nodes.len(), 3, "one node per desired size of each pool: {nodes:?}");
    let report = coverage::report(&nodes, &coverage::expected(&template));
    assert!(report.gaps.is_empty(), "{:?}", report.gaps);
    let gpu = report.pools.iter().find(|p| p.pool == "gpu").unwrap();
    assert_eq!((gpu.nodes, gpu.monitored, gpu.logged), (1, 1, 1));
    let expected = coverage::expected(&template);
    assert_eq!(expected.len(), 4, "node-exporter, the exporter, fluent-bit, the host tailer");
}

#[tokio::test]
async fn the_charts_no_schedule_only_toleration_misses_no_execute_nodes() {
    let no_schedule_only = Toleration {
        key: None,
        operator: TolerationOperator::Exists,
        value: None,
        effect: Some(TaintEffect::NoSchedule),
    };
    let template = cluster(vec![no_schedule_only]);
    let (cloud, nodes) = install(&template).await;
    let cluster = cloud.find_by_address("p/sim.cluster/main").unwrap();
    let api = tessera_sim::kube_api::KubeApi { cloud: &cloud, cluster_id: &cluster.id, cluster_name: "f-p" };
    let status = api.daemonset_status(&coverage::node_exporter_id()).unwrap().unwrap();
    assert_eq!(status["desiredNumberScheduled"], 2, "the two system nodes, not the NoExecute one: {status}");
    assert_eq!(status["numberReady"], 2);
    assert!(api.daemonset_status("apps/v1/DaemonSet/monitoring/none").unwrap().is_none());
    let report = coverage::report(&nodes, &coverage::expected(&template));
    let gpu_gaps: Vec<&str> = report.gaps.iter().filter(|g| g.pool == "gpu").map(|g| g.daemonset.as_str()).collect();
    assert!(gpu_gaps.contains(&coverage::node_exporter_id().as_str()), "{:?}", report.gaps);
    assert!(gpu_gaps.contains(&coverage::exporter_id("smart").as_str()));
    assert!(report.gaps.iter().all(|g| g.pool == "gpu"), "system nodes stay covered: {:?}", report.gaps);
}

#[tokio::test]
async fn a_deleted_chart_daemonset_leaves_the_release_out_of_sync_and_the_operator_heals_its_own() {
    let template = cluster(vec![Toleration::everything()]);
    let (cloud, _) = install(&template).await;
    let name = "f-p";
    cloud.console_delete_kube_object(name, &coverage::node_exporter_id()).unwrap();
    cloud.console_delete_kube_object(name, &coverage::fluentbit_id()).unwrap();
    let cluster_rec = cloud.find_by_address("p/sim.cluster/main").unwrap();
    let access = SimBackend.kube_access(&template, &ProviderRef::new("sim", "eu-west-1")).unwrap();
    let cluster_id = cluster_rec.id.clone();
    let conn = Connection { source: access.cluster, id: cluster_rec.id, outputs: cluster_rec.attrs };
    let kube = SimKube::connected(cloud.clone(), conn).with_time_scale(0.0);
    let key = format!("{}|release/monitoring/kube-prometheus-stack", cluster_id);
    let release = kube.read("helm.release", &key).await.unwrap().unwrap();
    assert_eq!(release.attrs["inSync"], false, "the chart's DaemonSet is gone");
    let nodes: Vec<Node> = serde_json::from_value(
        kube.read(coverage::NODES, &String::new()).await.unwrap().unwrap().attrs["nodes"].clone(),
    )
    .unwrap();
    let report = coverage::report(&nodes, &coverage::expected(&template));
    assert!(report.gaps.iter().all(|g| g.daemonset == coverage::node_exporter_id()), "{:?}", report.gaps);
    assert_eq!(report.gaps.len(), 3, "node-exporter is missing on every node; fluent-bit came back");
}

/// Values that validation refuses, installed anyway: what the sim runs and what validation's
/// model predicts (the same built DaemonSets, the same scheduler rule) agree pool by pool.
#[tokio::test]
async fn the_sim_runs_what_validation_judges_pool_by_pool() {
    let mut template = cluster(vec![Toleration::everything()]);
    let affinity = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": coverage::POOL_LABEL, "operator": "NotIn", "values": ["gpu"]}]}
    ]}}});
    if let Some(m) = template.core_services.monitoring.as_mut() {
        m.values = json!({"prometheus-node-exporter": {"affinity": affinity}});
    }
    let (_, nodes) = install(&template).await;
    let report = coverage::report(&nodes, &coverage::expected(&template));
    let built = tessera_kube::workloads::build(&template.core_services);
    for pool in &template.pools {
        let predicted: Vec<String> = built
            .iter()
            .filter(|w| !tessera_kube::scheduler::schedules(w.pod_spec(), &coverage::pool_node(pool)))
            .map(|w| {
                format!("apps/v1/DaemonSet/{}/{}", w.daemonset["metadata"]["namespace"].as_str().unwrap(), w.name())
            })
            .collect();
        let mut seen: Vec<String> =
            report.gaps.iter().filter(|g| g.pool == pool.name).map(|g| g.daemonset.clone()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(predicted, seen, "pool {}", pool.name);
    }
    let gpu: Vec<&str> = report.gaps.iter().filter(|g| g.pool == "gpu").map(|g| g.daemonset.as_str()).collect();
    assert_eq!(gpu, [coverage::node_exporter_id()], "the affinity keeps node-exporter off the gpu pool only");
}

/// Creates the network, control plane and node pools of `template` (no core services); answers
/// each spec as created (references resolved) with what the cloud made of it.
async fn create_cluster(sim: &SimProvider, template: &ClusterTemplate) -> Vec<(ResourceSpec, Observed)> {
    let provider = ProviderRef { profile: Some("eks".into()), ..ProviderRef::new("sim", "eu-west-1") };
    let mut made: Vec<(ResourceSpec, Observed)> = Vec::new();
    for mut spec in SimBackend.lower(template, &provider, &Default::default()) {
        if let Some((_, cluster)) = made.iter().find(|(s, _)| s.rtype() == "sim.cluster") {
            spec.attrs.insert("cluster".into(), cluster.attrs["name"].clone());
        }
        spec.attrs.insert("network".into(), json!("net-1"));
        let obs = sim.create(&spec).await.unwrap();
        made.push((spec, obs));
    }
    made
}

fn made_at<'a>(made: &'a [(ResourceSpec, Observed)], address: &str) -> &'a (ResourceSpec, Observed) {
    made.iter().find(|(s, _)| s.address.to_string() == address).unwrap()
}

/// The nodes the cluster of `made` reports, as `name → ready`.
fn readiness(cloud: &SimCloud, made: &[(ResourceSpec, Observed)]) -> Vec<(String, bool)> {
    let (_, cluster) = made.iter().find(|(s, _)| s.rtype() == "sim.cluster").unwrap();
    let name = cluster.attrs["name"].as_str().unwrap();
    let api = tessera_sim::kube_api::KubeApi { cloud, cluster_id: &cluster.id, cluster_name: name };
    api.nodes().unwrap().into_iter().map(|n| (n.name, n.ready)).collect()
}

async fn set_version(sim: &SimProvider, made: &[(ResourceSpec, Observed)], address: &str, version: &str) {
    let (spec, obs) = made_at(made, address);
    let mut spec = spec.clone();
    spec.attrs.insert("version".into(), json!(version));
    sim.update(&spec, &obs.id, &["version".into()]).await.unwrap();
}

#[tokio::test]
async fn a_named_placement_goes_unready_once_upgraded_and_stays_so_in_a_reopened_cloud() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cloud.db");
    let cloud = Arc::new(SimCloud::durable(&path, Faults::default()).unwrap());
    cloud.set_unhealthy_after_upgrade(["p".to_string()].into());
    let sim = SimProvider::new(cloud.clone(), Profile::eks(), 0.0);
    let p_template = cluster(vec![]);
    let q_template = ClusterTemplate { placement: "q".into(), ..p_template.clone() };
    let p = create_cluster(&sim, &p_template).await;
    let q = create_cluster(&sim, &q_template).await;
    let all = |nodes: Vec<(String, bool)>, ready: bool| nodes.len() == 3 && nodes.iter().all(|(_, r)| *r == ready);
    assert!(all(readiness(&cloud, &p), true), "new clusters are healthy: {:?}", readiness(&cloud, &p));
    assert!(all(readiness(&cloud, &q), true));

    // An update that leaves the version alone is no upgrade.
    let (pool_spec, pool) = made_at(&p, "p/sim.nodepool/gpu");
    let mut bigger = pool_spec.clone();
    bigger.attrs.insert("maxSize".into(), json!(9));
    sim.update(&bigger, &pool.id, &["maxSize".into()]).await.unwrap();
    assert!(all(readiness(&cloud, &p), true));

    // One node pool of p upgraded: every node of p goes unready; q, upgraded too but not named,
    // stays healthy.
    set_version(&sim, &p, "p/sim.nodepool/gpu", "1.32").await;
    set_version(&sim, &q, "q/sim.cluster/main", "1.32").await;
    assert!(all(readiness(&cloud, &p), false), "{:?}", readiness(&cloud, &p));
    assert!(all(readiness(&cloud, &q), true), "{:?}", readiness(&cloud, &q));
    drop(sim);
    drop(cloud);

    // Another process opening the same cloud, told the same, sees the same.
    let cloud = Arc::new(SimCloud::durable(&path, Faults::default()).unwrap());
    assert!(all(readiness(&cloud, &p), true), "the setting is the process's, not the file's");
    cloud.set_unhealthy_after_upgrade(["p".to_string(), "q".to_string()].into());
    assert!(all(readiness(&cloud, &p), false), "p's created versions were kept in the file");
    assert!(all(readiness(&cloud, &q), false), "q's control plane was upgraded too");

    // p's pool back on the version it was created with: healthy again. The control plane counts
    // on its own.
    let sim = SimProvider::new(cloud.clone(), Profile::eks(), 0.0);
    set_version(&sim, &p, "p/sim.nodepool/gpu", "1.31").await;
    assert!(all(readiness(&cloud, &p), true), "{:?}", readiness(&cloud, &p));
    set_version(&sim, &p, "p/sim.cluster/main", "1.32").await;
    assert!(all(readiness(&cloud, &p), false));
    cloud.set_unhealthy_after_upgrade(Default::default());
    assert!(all(readiness(&cloud, &p), true), "an empty set turns it off");
}
