//! `kube.nodes` against the Kubernetes API fixture: Nodes and Pods put out of band, as kubelet
//! and the DaemonSet controller would, read back as coverage.

mod support;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use support::*;
use tessera_kube::contract::object_id;
use tessera_kube::coverage::{self, Expected, NODES, Node, Service};
use tessera_kube_fixture::{Fault, KubeFixture};
use tessera_provider_api::{Provider, ProviderError, ProviderExt};

/// A pod of `owner` (a DaemonSet name in `namespace`, or any owner reference) on `node`.
fn pod(fixture: &KubeFixture, namespace: &str, name: &str, node: Option<&str>, owner: Value, ready: bool) {
    let mut spec = json!({"containers": [{"name": "main", "image": "registry.test/x:1"}]});
    if let Some(n) = node {
        spec["nodeName"] = json!(n);
    }
    let status = if ready { "True" } else { "False" };
    fixture
        .put_object(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "ownerReferences": [owner]},
            "spec": spec,
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": status}]},
        }))
        .unwrap();
}

fn daemonset_owner(name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "name": name, "uid": format!("uid-{name}"),
           "controller": true, "blockOwnerDeletion": true})
}

fn ds(namespace: &str, name: &str) -> String {
    object_id("apps/v1", "DaemonSet", Some(namespace), name)
}

async fn nodes(kube: &impl Provider) -> Vec<Node> {
    let read = kube.read(NODES, &String::new()).await.unwrap().expect("the node list is always there");
    serde_json::from_value(read.attrs["nodes"].clone()).unwrap()
}

#[tokio::test]
async fn reports_every_node_with_the_daemonset_pods_on_it() {
    // Nodes pool-a-0 (no taints) and pool-gpu-0 (NoExecute), and one more in pool a.
    let (fixture, kube) = env();
    fixture.add_node("pool-a-1", json!({"pool": "a", "tessera.dev/pool": "a"}), json!([])).unwrap();
    namespace(&fixture, "logging");
    pod(&fixture, "monitoring", "ne-a0", Some("pool-a-0"), daemonset_owner("node-exporter"), true);
    pod(&fixture, "monitoring", "ne-gpu", Some("pool-gpu-0"), daemonset_owner("node-exporter"), true);
    pod(&fixture, "monitoring", "ne-a1", Some("pool-a-1"), daemonset_owner("node-exporter"), false);
    pod(&fixture, "logging", "fb-gpu", Some("pool-gpu-0"), daemonset_owner("fluentbit"), true);
    // Not counted: not scheduled yet; owned by a ReplicaSet; a DaemonSet that does not control it.
    pod(&fixture, "logging", "fb-pending", None, daemonset_owner("fluentbit"), false);
    let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "u1", "controller": true});
    pod(&fixture, "monitoring", "web-1", Some("pool-a-0"), rs, true);
    let loose = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "loose", "uid": "u2"});
    pod(&fixture, "monitoring", "loose-1", Some("pool-a-0"), loose, true);

    let listed = nodes(&kube).await;
    let by_name: BTreeMap<&str, &Node> = listed.iter().map(|n| (n.name.as_str(), n)).collect();
    assert_eq!(by_name.keys().copied().collect::<Vec<_>>(), ["pool-a-0", "pool-a-1", "pool-gpu-0"]);
    let gpu = by_name["pool-gpu-0"];
    assert_eq!(gpu.taints, [json!({"key": "gpu", "value": "true", "effect": "NoExecute"})]);
    assert_eq!(gpu.labels["pool"], "gpu");
    assert_eq!(gpu.labels["kubernetes.io/os"], "linux");
    let pods = |n: &str| by_name[n].daemon_pods.clone();
    assert_eq!(pods("pool-a-0"), [(ds("monitoring", "node-exporter"), true)].into());
    assert_eq!(pods("pool-a-1"), [(ds("monitoring", "node-exporter"), false)].into());
    assert_eq!(
        pods("pool-gpu-0"),
        [(ds("monitoring", "node-exporter"), true), (ds("logging", "fluentbit"), true)].into()
    );

    // What verify makes of it.
    let expected = [
        Expected { id: ds("monitoring", "node-exporter"), service: Service::Monitoring },
        Expected { id: ds("logging", "fluentbit"), service: Service::Logging },
    ];
    let report = coverage::report(&listed, &expected);
    let gaps: Vec<(&str, &str, &str)> =
        report.gaps.iter().map(|g| (g.node.as_str(), g.daemonset.as_str(), g.reason)).collect();
    let (ne, fb) = (ds("monitoring", "node-exporter"), ds("logging", "fluentbit"));
    assert_eq!(
        gaps,
        [
            ("pool-a-0", fb.as_str(), "missing"),
            ("pool-a-1", ne.as_str(), "not ready"),
            ("pool-a-1", fb.as_str(), "missing"),
        ]
    );

    // Lists ask for pages, over every namespace.
    let lists: Vec<_> =
        fixture.requests().into_iter().filter(|r| r.method == "GET" && r.path.ends_with("/pods")).collect();
    assert!(
        !lists.is_empty() && lists.iter().all(|r| r.path == "/api/v1/pods" && r.query.contains("limit=500")),
        "{lists:?}"
    );
    fixture.assert_no_rejections();
}

#[tokio::test]
async fn a_throttled_list_is_retryable_and_the_type_is_read_only() {
    let (fixture, kube) = env();
    fixture.fail_next(Fault::new("/api/v1/pods", 1, 429).retry_after(2));
    let err = kube.read(NODES, &String::new()).await.unwrap_err();
    assert!(err.is_throttle(), "{err}");
    assert_eq!(nodes(&kube).await.len(), 2, "the next read succeeds");

    let spec = tessera_provider_api::ResourceSpec::new(
        tessera_provider_api::Address::new("aws", NODES, "all"),
        provider_ref(),
    );
    let err = kube.create(&spec).await.unwrap_err();
    assert!(matches!(&err, ProviderError::Fatal(m) if m.contains("read-only")), "{err}");
}

#[tokio::test]
async fn a_node_is_ready_only_while_its_ready_condition_is_true() {
    // The fixture's Nodes are Ready, as kubelet reports a healthy one.
    let (fixture, kube) = env();
    let ready = |nodes: Vec<Node>| -> BTreeMap<String, bool> { nodes.into_iter().map(|n| (n.name, n.ready)).collect() };
    assert_eq!(ready(nodes(&kube).await), [("pool-a-0".into(), true), ("pool-gpu-0".into(), true)].into());
    // kubelet reports pool-a-0 not ready; pool-gpu-0 stopped reporting and lost its conditions.
    let not_ready = json!({"conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady"}]});
    fixture.set_status("v1", "Node", None, "pool-a-0", not_ready).unwrap();
    fixture.set_status("v1", "Node", None, "pool-gpu-0", json!({"conditions": []})).unwrap();
    assert_eq!(ready(nodes(&kube).await), [("pool-a-0".into(), false), ("pool-gpu-0".into(), false)].into());
    let back = json!({"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]});
    fixture.set_status("v1", "Node", None, "pool-a-0", back).unwrap();
    assert!(ready(nodes(&kube).await)["pool-a-0"], "Ready again");
}
