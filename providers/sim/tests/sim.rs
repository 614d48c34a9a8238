//! The simulated cloud through its `Provider` surface.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tessera_provider_api::{Address, Operation, Provider, ProviderError, ProviderExt, ProviderRef, ResourceSpec};
use tessera_sim::{Faults, Profile, SimCloud, SimProvider};

/// A resource of the shape `addr` names, with every value its schema says reads report (the sim
/// reports what it was given, and the provider holds every answer to the schema).
fn spec(addr: &str) -> ResourceSpec {
    let p = ProviderRef { profile: Some("eks".into()), ..ProviderRef::new("sim", "eu-west-1") };
    let address: Address = addr.parse().unwrap();
    let shape = match address.rtype.as_str() {
        "sim.network" => json!({"cidr": "10.0.0.0/16", "region": "eu-west-1", "zones": []}),
        "sim.cluster" => {
            json!({"name": "c", "region": "eu-west-1", "version": "1.31", "logTypes": [], "network": "net-1"})
        }
        _ => json!({"cluster": "c", "instanceType": "m5.xlarge", "arch": "amd64", "capacityType": "ON_DEMAND",
                    "minSize": 1, "desiredSize": 1, "labels": {}, "taints": [], "version": "1.31"}),
    };
    let mut spec = ResourceSpec::new(address.clone(), p)
        .attr("maxSize", 3)
        .attr("tags", json!({ "tessera.dev/fleet": "f", "tessera.dev/address": addr }));
    for (k, v) in shape.as_object().into_iter().flatten() {
        spec = spec.attr(k, v.clone());
    }
    spec
}

#[tokio::test(start_paused = true)]
async fn create_takes_the_profiles_time_and_walks_through_statuses() {
    let cloud = Arc::new(SimCloud::in_memory(Faults::default()));
    let eks = SimProvider::new(cloud.clone(), Profile::eks(), 1.0);
    assert_eq!(eks.estimate("sim.cluster", Operation::Create), Duration::from_secs(600));
    let started = tokio::time::Instant::now();
    let creating = tokio::spawn({
        let cloud = cloud.clone();
        async move { SimProvider::new(cloud, Profile::eks(), 1.0).create(&spec("a/sim.cluster/main")).await }
    });
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(cloud.find_by_address("a/sim.cluster/main").unwrap().status, "CREATING");
    let obs = creating.await.unwrap().unwrap();
    assert_eq!(obs.status, "ACTIVE");
    assert_eq!(started.elapsed(), Duration::from_secs(600));

    let read = eks.read("sim.cluster", &obs.id).await.unwrap().unwrap();
    assert_eq!(read.attrs["maxSize"], 3);
    let updated =
        eks.update(&spec("a/sim.cluster/main").attr("maxSize", 5), &obs.id, &["maxSize".into()]).await.unwrap();
    assert_eq!(updated.attrs["maxSize"], 5);
    eks.delete(&spec("a/sim.cluster/main").address, &obs.id).await.unwrap();
    assert!(eks.read("sim.cluster", &obs.id).await.unwrap().is_none());
    assert!(matches!(eks.delete(&spec("a/sim.cluster/main").address, &obs.id).await, Err(ProviderError::NotFound(_))));
}

#[tokio::test(start_paused = true)]
async fn throttling_and_failures_are_typed() {
    let cloud = Arc::new(SimCloud::in_memory(Faults { throttle_rate: 1.0, ..Default::default() }));
    let p = SimProvider::new(cloud.clone(), Profile::gke(), 0.0);
    let err = p.create(&spec("a/sim.network/main")).await.unwrap_err();
    assert!(err.is_retryable() && err.is_throttle(), "{err}");
    assert!(cloud.resources().unwrap().is_empty(), "a throttled call does nothing");

    let faults = Faults { fail_addresses: ["a/sim.network/main".to_string()].into(), ..Default::default() };
    let p = SimProvider::new(Arc::new(SimCloud::in_memory(faults)), Profile::gke(), 0.0);
    let err = p.create(&spec("a/sim.network/main")).await.unwrap_err();
    assert!(matches!(&err, ProviderError::Fatal(m) if m.contains("InvalidParameterException")), "{err}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_durable_cloud_is_shared_by_every_process_that_opens_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cloud.db");
    let first = Arc::new(SimCloud::durable(&path, Faults::default()).unwrap());
    let obs = SimProvider::new(first.clone(), Profile::aks(), 0.0).create(&spec("a/sim.nodepool/x")).await.unwrap();
    drop(first);

    let second = Arc::new(SimCloud::durable(&path, Faults::default()).unwrap());
    let p = SimProvider::new(second.clone(), Profile::aks(), 0.0);
    assert_eq!(p.read("sim.nodepool", &obs.id).await.unwrap().unwrap().id, obs.id);
    second.console_edit("a/sim.nodepool/x", "maxSize", json!(9)).unwrap();
    assert_eq!(p.read("sim.nodepool", &obs.id).await.unwrap().unwrap().attrs["maxSize"], 9);
    let next = p.create(&spec("a/sim.nodepool/y")).await.unwrap();
    assert_ne!(next.id, obs.id, "ids are never reused across processes");
}
