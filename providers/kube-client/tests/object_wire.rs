//! `kube.object` against the Kubernetes API fixture (a real HTTP server that validates every
//! object with `kubernetes-validate --strict` and the real CRDs).

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;
use tessera_kube_client::KubeClientSettings;
use tessera_kube_fixture::Fault;
use tessera_provider_api::poll::PollPolicy;
use tessera_provider_api::{Address, ProviderError, ProviderExt, ResourceSpec};

fn spec(name: &str, manifest: Value) -> ResourceSpec {
    ResourceSpec::new(Address::new("aws", "kube.object", name), provider_ref()).attr("manifest", manifest)
}

fn config_map(data: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "monitoring", "labels": owner_labels("aws.kube.object.settings")},
        "data": data
    })
}

const CM_ID: &str = "v1/ConfigMap/monitoring/settings";

#[tokio::test]
async fn applies_reads_owned_fields_corrects_drift_and_deletes() {
    let (fixture, kube) = env();
    let wanted = config_map(json!({"interval": "30s"}));
    let s = spec("settings", wanted.clone());

    let created = kube.create(&s).await.unwrap();
    assert_eq!(created.id, CM_ID);
    assert_eq!(created.attrs["manifest"], wanted, "what was applied reads back exactly: owned fields only");
    let read = kube.read("kube.object", &created.id).await.unwrap().unwrap();
    assert_eq!(read.attrs, created.attrs);
    let applies: Vec<_> = fixture.requests().into_iter().filter(|r| r.method == "PATCH").collect();
    assert_eq!(applies.len(), 1);
    assert!(
        applies[0].query.contains("fieldManager=tessera") && applies[0].query.contains("force=true"),
        "{:?}",
        applies[0]
    );
    assert_eq!(applies[0].content_type.as_deref(), Some("application/apply-patch+yaml"));

    // Someone edits an owned field, and another adds a field of their own.
    let mut edited = fixture.get_id(CM_ID).unwrap();
    edited["data"]["interval"] = json!("5m");
    edited["data"]["theirs"] = json!("x");
    fixture.put_object(edited).unwrap();
    let drifted = kube.read("kube.object", &created.id).await.unwrap().unwrap();
    assert_ne!(drifted.attrs["manifest"], wanted, "an owned field that moved is drift");
    assert!(drifted.attrs["manifest"]["data"].get("theirs").is_none(), "a field Tessera does not own is never drift");

    let fixed = kube.update(&s, &created.id, &["manifest".into()]).await.unwrap();
    assert_eq!(fixed.attrs["manifest"], wanted);
    assert_eq!(fixture.get_id(CM_ID).unwrap()["data"]["interval"], json!("30s"), "force takes the field back");

    kube.delete(&s.address, &created.id).await.unwrap();
    assert!(fixture.get_id(CM_ID).is_none());
    assert!(kube.read("kube.object", &created.id).await.unwrap().is_none());
    assert!(matches!(kube.delete(&s.address, &created.id).await, Err(ProviderError::NotFound(_))));
    fixture.assert_no_rejections();
}

#[tokio::test]
async fn find_adopts_its_own_object_and_refuses_anothers() {
    let (fixture, kube) = env();
    let s = spec("settings", config_map(json!({"a": "1"})));
    assert!(kube.find(&s).await.unwrap().is_none());
    kube.create(&s).await.unwrap();
    assert_eq!(kube.find(&s).await.unwrap().unwrap().id, CM_ID);

    let mut foreign = config_map(json!({"a": "2"}));
    foreign["metadata"]["labels"] = json!({"app": "someone-elses"});
    fixture.put_object(foreign).unwrap();
    let err = kube.find(&s).await.unwrap_err().to_string();
    assert!(err.contains("v1/ConfigMap/monitoring/settings exists and is not ours"), "{err}");
    let err = kube.create(&s).await.unwrap_err().to_string();
    assert!(err.contains("exists and is not ours"), "{err}");
    assert_eq!(fixture.get_id(CM_ID).unwrap()["data"]["a"], json!("2"), "a refused create changes nothing");
    fixture.assert_no_rejections();
}

#[tokio::test]
async fn a_custom_resource_waits_for_its_crd_and_a_crd_for_established() {
    let fixture = std::sync::Arc::new(
        tessera_kube_fixture::KubeFixture::builder().crd_established_after(Duration::from_millis(600)).start().unwrap(),
    );
    namespace(&fixture, "monitoring");
    let kube = std::sync::Arc::new(provider(settings(&fixture)));
    let widget = json!({
        "apiVersion": "test.tessera.dev/v1", "kind": "Widget",
        "metadata": {"name": "w", "namespace": "monitoring", "labels": owner_labels("aws.kube.object.w")},
        "spec": {"size": 3}
    });
    // The custom resource first: its kind is not served yet.
    let cr = {
        let (kube, widget) = (std::sync::Arc::clone(&kube), widget.clone());
        tokio::spawn(async move { kube.create(&spec("w", widget)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut crd: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/charts/coverage/crds/widgets.yaml"))
            .unwrap(),
    )
    .unwrap();
    crd["metadata"]["labels"] = owner_labels("aws.kube.object.widgets");
    kube.create(&spec("widgets", crd)).await.unwrap();
    let live = fixture.get_id("apiextensions.k8s.io/v1/CustomResourceDefinition//widgets.test.tessera.dev").unwrap();
    assert!(live.to_string().contains("Established"), "a CRD create returns once it is Established");

    let created = cr.await.unwrap().unwrap();
    assert_eq!(created.attrs["manifest"], widget);
    let requests = fixture.requests();
    let misses = requests.iter().filter(|r| r.path == "/apis/test.tessera.dev/v1" && r.status == 404).count();
    assert!(misses >= 1, "the kind was looked up before it was served, and waited for");
    let patched = |part: &str| requests.iter().position(|r| r.method == "PATCH" && r.path.contains(part)).unwrap();
    assert!(patched("/customresourcedefinitions/") < patched("/widgets/w"));
    fixture.assert_no_rejections();
}

/// [`settings`] with a DaemonSet rollout deadline of `millis`.
fn short_rollout(fixture: &tessera_kube_fixture::KubeFixture, millis: u64) -> KubeClientSettings {
    let rollout = PollPolicy {
        min_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(50),
        total: Duration::from_millis(millis),
    };
    KubeClientSettings { rollout, ..settings(fixture) }
}

fn daemonset() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "exporter", "namespace": "monitoring", "labels": owner_labels("aws.kube.object.exporter")},
        "spec": {
            "selector": {"matchLabels": {"app": "exporter"}},
            "template": {
                "metadata": {"labels": {"app": "exporter"}},
                "spec": {
                    "tolerations": [{"operator": "Exists"}],
                    "containers": [{"name": "exporter", "image": "quay.io/prometheus/node-exporter:v1.9.1"}]
                }
            }
        }
    })
}

#[tokio::test]
async fn a_daemonset_apply_waits_until_every_node_is_covered() {
    let (fixture, kube) = env();
    let created = rolling_out(&fixture, kube.create(&spec("exporter", daemonset()))).await.unwrap();
    let live = fixture.get_id(&created.id).unwrap();
    assert_eq!(live["status"]["numberReady"], json!(2), "create returned only once the DaemonSet was ready");
    assert_eq!(created.attrs["manifest"], daemonset(), "status and defaults are not Tessera's");
    fixture.assert_no_rejections();
}

#[tokio::test]
async fn a_daemonset_that_never_covers_its_nodes_is_a_retryable_timeout() {
    let fixture = start();
    namespace(&fixture, "monitoring");
    let kube = provider(short_rollout(&fixture, 800));
    let s = spec("exporter", daemonset());
    let apply = tokio::spawn(async move { kube.create(&s).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let live = fixture.get_id("apps/v1/DaemonSet/monitoring/exporter").unwrap();
    fixture
        .set_status(
            "apps/v1",
            "DaemonSet",
            Some("monitoring"),
            "exporter",
            json!({"observedGeneration": live["metadata"]["generation"], "desiredNumberScheduled": 2,
                   "currentNumberScheduled": 1, "numberReady": 1, "numberMisscheduled": 0}),
        )
        .unwrap();
    let err = apply.await.unwrap().unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("ready on 1 of 2 nodes"), "{err}");
}

/// A ConfigMap standing for a custom resource whose operator makes the DaemonSet `agent-ds`.
fn operator_made(wait_for: &str) -> Value {
    let mut cm = config_map(json!({"a": "1"}));
    cm["metadata"]["annotations"] = json!({"tessera.dev/wait-for-daemonsets": wait_for});
    cm
}

const AGENT_DS: &str = "apps/v1/DaemonSet/monitoring/agent-ds";

#[tokio::test]
async fn an_object_waits_for_the_daemonsets_its_operator_makes() {
    let (fixture, kube) = env();
    let s = spec("settings", operator_made(AGENT_DS));
    let operator = {
        let fixture = std::sync::Arc::clone(&fixture);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            let mut ds = daemonset();
            ds["metadata"]["name"] = json!("agent-ds");
            fixture.put_object(ds).unwrap();
        })
    };
    let created = rolling_out(&fixture, kube.create(&s)).await.unwrap();
    operator.await.unwrap();
    assert_eq!(created.id, CM_ID);
    let ds = fixture.get_id(AGENT_DS).expect("the apply returned only after the operator made the DaemonSet");
    assert_eq!(ds["status"]["numberReady"], json!(2), "and after it was ready on every node");
    fixture.assert_no_rejections();
}

#[tokio::test]
async fn a_daemonset_the_operator_never_makes_is_a_retryable_timeout_and_a_bad_id_is_fatal() {
    let fixture = start();
    namespace(&fixture, "monitoring");
    let kube = provider(short_rollout(&fixture, 500));
    let err = kube.create(&spec("settings", operator_made(AGENT_DS))).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("agent-ds is not made by its operator yet"), "{err}");
    let err = kube.update(&spec("settings", operator_made("v1/ConfigMap/monitoring/x")), &CM_ID.into(), &[]).await;
    assert!(
        matches!(&err, Err(ProviderError::Fatal(m)) if m.contains("not the id of a namespaced apps/v1 DaemonSet")),
        "{err:?}"
    );
}

#[tokio::test]
async fn api_errors_are_typed() {
    let (fixture, kube) = env();
    let s = spec("settings", config_map(json!({"a": "1"})));

    fixture.fail_next(Fault::new("/configmaps/settings", 1, 429).method("PATCH").retry_after(7));
    let throttled = kube.update(&s, &CM_ID.to_string(), &[]).await.unwrap_err();
    assert!(throttled.is_throttle(), "{throttled:?}");
    assert_eq!(throttled.retry_after(), Some(Duration::from_secs(7)), "Retry-After reaches the engine");

    fixture.fail_next(Fault::new("/configmaps/settings", 1, 503).method("PATCH"));
    let unavailable = kube.update(&s, &CM_ID.to_string(), &[]).await.unwrap_err();
    assert!(unavailable.is_retryable() && !unavailable.is_throttle(), "{unavailable:?}");

    fixture.fail_next(Fault::new("/configmaps/settings", 1, 409).method("PATCH"));
    assert!(matches!(kube.update(&s, &CM_ID.to_string(), &[]).await, Err(ProviderError::Conflict(_))));

    let mut invalid = daemonset();
    invalid["spec"].as_object_mut().unwrap().remove("selector");
    let err = kube.update(&spec("exporter", invalid), &"x".into(), &[]).await.unwrap_err();
    assert!(matches!(&err, ProviderError::Fatal(m) if m.contains("422")), "{err:?}");
    assert_eq!(fixture.rejections().len(), 1, "the fixture saw the invalid object and refused it");

    let unreachable = KubeClientSettings { endpoint: Some("http://127.0.0.1:1".into()), ..settings(&fixture) };
    let down = provider(unreachable).read("kube.object", &CM_ID.to_string()).await.unwrap_err();
    assert!(down.is_retryable(), "a cluster that does not answer yet is retryable: {down:?}");
}

#[tokio::test]
async fn a_namespaced_object_without_a_namespace_is_refused_before_sending() {
    let fixture = start();
    let kube = provider(settings(&fixture));
    let mut cm = config_map(json!({}));
    cm["metadata"].as_object_mut().unwrap().remove("namespace");
    let err = kube.create(&spec("settings", cm)).await.unwrap_err().to_string();
    assert!(err.contains("ConfigMap settings is namespaced and names no metadata.namespace"), "{err}");
    assert!(fixture.requests().iter().all(|r| r.method == "GET"), "nothing was written");
}

#[tokio::test]
async fn an_object_in_a_missing_namespace_is_a_fatal_error_naming_it() {
    let fixture = start();
    let kube = provider(settings(&fixture));
    let err = kube.create(&spec("settings", config_map(json!({})))).await.unwrap_err();
    assert!(matches!(&err, ProviderError::Fatal(m) if m.contains("404") && m.contains("monitoring")), "{err:?}");
}
