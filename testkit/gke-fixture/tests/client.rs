//! The fixture against the real google-cloud-container-v1 client: the wire format (integer
//! enums, the paths it builds) is the client's, not a hand-made imitation.

use std::time::Duration;

use google_cloud_container_v1::client::ClusterManager;
use google_cloud_container_v1::model::{CreateClusterRequest, operation};
use serde_json::json;
use tessera_gke_fixture::{Fault, GkeFixture};

const CLUSTER: &str = "projects/acme-platform/locations/europe-west4/clusters/c1";

async fn client(f: &GkeFixture) -> ClusterManager {
    ClusterManager::builder()
        .with_endpoint(f.url())
        .with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build())
        .build()
        .await
        .unwrap()
}

fn create_request() -> CreateClusterRequest {
    serde_json::from_value(json!({
        "parent": "projects/acme-platform/locations/europe-west4",
        "cluster": {
            "name": "c1",
            "initialClusterVersion": "1.31",
            "locations": ["europe-west4-a", "europe-west4-b"],
            "releaseChannel": { "channel": "UNSPECIFIED" },
            "loggingConfig": { "componentConfig": { "enableComponents": ["SYSTEM_COMPONENTS", "APISERVER"] } },
            "nodePools": [{
                "name": "system",
                "initialNodeCount": 1,
                "config": { "machineType": "e2-standard-4", "taints": [{ "key": "dedicated", "value": "system", "effect": "PREFER_NO_SCHEDULE" }] },
                "autoscaling": { "enabled": true, "totalMinNodeCount": 2, "totalMaxNodeCount": 4, "locationPolicy": "BALANCED" },
            }],
        },
    }))
    .unwrap()
}

#[tokio::test]
async fn the_client_creates_polls_and_reads_and_its_integer_enums_are_named() {
    let f = GkeFixture::builder().operation_time(Duration::from_millis(100)).start().unwrap();
    let c = client(&f).await;
    let op = c.create_cluster().with_request(create_request()).send().await.unwrap();
    assert_eq!(op.operation_type, operation::Type::CreateCluster);
    assert!(!op.name.contains('/'), "a bare id, as GKE answers: {}", op.name);
    let name = format!("projects/acme-platform/locations/europe-west4/operations/{}", op.name);
    let done = loop {
        let op = c.get_operation().set_name(&name).send().await.unwrap();
        if op.status == operation::Status::Done {
            break op;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(done.error.is_none());
    let cluster = c.get_cluster().set_name(CLUSTER).send().await.unwrap();
    assert_eq!(cluster.status.name(), Some("RUNNING"));
    assert_eq!(cluster.current_master_version, "1.31.5-gke.1023000");
    let pool = &cluster.node_pools[0];
    assert_eq!(pool.config.as_ref().unwrap().taints[0].effect.name(), Some("PREFER_NO_SCHEDULE"));

    // What arrived: the client sent the enums as integers, and the fixture named them.
    let create = f.requests().into_iter().find(|r| r.method == "POST").unwrap();
    assert_eq!(create.body["cluster"]["nodePools"][0]["config"]["taints"][0]["effect"], "PREFER_NO_SCHEDULE");
    assert_eq!(create.body["cluster"]["nodePools"][0]["autoscaling"]["locationPolicy"], "BALANCED");
    f.assert_no_rejections();
}

#[tokio::test]
async fn a_busy_cluster_refuses_a_second_operation_and_faults_are_unavailable() {
    let f = GkeFixture::builder().operation_time(Duration::from_millis(10)).start().unwrap();
    let c = client(&f).await;
    c.create_cluster().with_request(create_request()).send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    f.begin_operation(CLUSTER, Duration::from_secs(30)).unwrap();
    let err = c.delete_cluster().set_name(CLUSTER).send().await.unwrap_err();
    let status = err.status().unwrap();
    assert_eq!(status.code.name(), "FAILED_PRECONDITION");
    assert!(status.message.contains("incompatible operation"), "{}", status.message);
    assert_eq!(f.conflicts(), 1);

    f.fail_next(Fault { method: Some("GET".into()), path: "/clusters/c1".into(), count: 1 });
    // The client's default retry covers UNAVAILABLE: the fault is seen, and the read succeeds.
    c.get_cluster().set_name(CLUSTER).send().await.unwrap();
    assert!(f.requests().iter().any(|r| r.status == 503));
    f.assert_no_rejections();
}

#[tokio::test]
async fn a_body_the_discovery_document_refuses_fails_the_test_that_sent_it() {
    let f = GkeFixture::start().unwrap();
    let c = client(&f).await;
    // `diskSizeGb` is an integer; a body the client would never send, made with a raw request.
    let raw = reqwest_free_post(
        &f.url(),
        "/v1/projects/p-123456/locations/l/clusters",
        r#"{"cluster":{"name":"x","nodeConfig":{"diskSizeGb":"big"}}}"#,
    );
    assert_eq!(raw, 400);
    assert_eq!(f.rejections().len(), 1);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f.assert_no_rejections()));
    assert!(caught.is_err(), "a rejection must fail the test");
    drop(c);
}

/// A POST with std's TcpStream: the fixture's own refusal path, without the client's types.
fn reqwest_free_post(url: &str, path: &str, body: &str) -> u16 {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}
