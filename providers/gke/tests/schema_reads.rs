//! What the GKE provider reports through the real client, against the GKE fixture (which checks
//! every body against the discovery document), is held to the types' schemas: a create, a read
//! and a find of a cluster and its pools all pass `Schema::check_read` (the table checks every
//! answer).

use std::time::Duration;

use tessera_gke::{GkeBackend, GkeProvider, GkeSettings, lower};
use tessera_gke_fixture::GkeFixture;
use tessera_provider_api::poll::PollPolicy;
use tessera_provider_api::{
    Arch, Backend, ClusterTemplate, CoreServices, Machine, Network, PoolTemplate, ProviderExt, ProviderRef, catalogs,
};

fn template() -> ClusterTemplate {
    let pool = |name: &str, spot: bool, min: u32, max: u32| PoolTemplate {
        name: name.into(),
        machine: Machine { vcpu: 4, memory_gib: 16, arch: Arch::Amd64, spot },
        min,
        max,
        labels: [("tier".to_string(), name.to_string())].into(),
        taints: Vec::new(),
    };
    ClusterTemplate {
        fleet: "f".into(),
        placement: "gcp-eu".into(),
        region: "europe-west4".into(),
        zones: vec!["europe-west4-a".into()],
        kubernetes_version: "1.31".into(),
        network: Network::Managed { cidr: "10.0.0.0/16".into() },
        api_access: Default::default(),
        pools: vec![pool("system", false, 1, 3), pool("batch", true, 0, 4)],
        core_services: CoreServices { monitoring: None, logging: None, audit_logs: false },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_and_its_pools_read_back_as_their_schemas_say() {
    let fixture = GkeFixture::start().unwrap();
    let poll = PollPolicy {
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        total: Duration::from_secs(30),
    };
    let p = GkeProvider::new(GkeSettings { endpoint: Some(fixture.url()), poll });
    let mut provider = ProviderRef::new("gke", "europe-west4");
    provider.scope.insert("project".into(), "acme-platform".into());
    let mut specs = lower::lower(&catalogs::gke(), &template(), &provider);
    let schemas = GkeBackend.schemas();
    for spec in &mut specs {
        schemas.iter().find(|s| s.rtype == spec.rtype()).unwrap().stamp(spec);
    }
    let cluster = p.create(&specs[0]).await.unwrap();
    assert!(cluster.attrs["endpoint"].as_str().unwrap().starts_with("https://"), "{cluster:?}");
    for pool in &mut specs[1..] {
        // What the engine does with the reference once the cluster exists.
        pool.attrs.insert("cluster".into(), cluster.id.clone().into());
        pool.ref_attrs.remove("cluster");
        let made = p.create(pool).await.unwrap();
        assert_eq!(p.read(lower::NODEPOOL, &made.id).await.unwrap().as_ref(), Some(&made));
        assert_eq!(p.find(pool).await.unwrap().map(|o| o.id), Some(made.id));
    }
    let read = p.read(lower::CLUSTER, &cluster.id).await.unwrap().unwrap();
    assert_eq!(read.attrs["version"], "1.31");
    assert_eq!(p.find(&specs[0]).await.unwrap().map(|o| o.id), Some(cluster.id));
}
