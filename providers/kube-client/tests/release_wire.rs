//! `helm.release` against the Kubernetes API fixture, rendered by the real helm from the local
//! test chart.

mod support;

use serde_json::{Value, json};
use support::*;
use tessera_provider_api::{Attrs, Observed, ProviderError, ProviderExt, ResourceSpec};

const RELEASE_ID: &str = "monitoring/cov";

fn spec(values: Value) -> ResourceSpec {
    release_spec(values)
}

fn tolerations() -> Value {
    json!({"tolerations": [{"operator": "Exists"}]})
}

fn inventory(o: &Observed) -> Vec<String> {
    serde_json::from_value(o.attrs["inventory"].clone()).unwrap()
}

const CRD: &str = "apiextensions.k8s.io/v1/CustomResourceDefinition//widgets.test.tessera.dev";
const CM: &str = "v1/ConfigMap/monitoring/cov-settings";
const EXTRA: &str = "v1/ConfigMap/monitoring/cov-extra";
const DS: &str = "apps/v1/DaemonSet/monitoring/cov-exporter";
const NS: &str = "v1/Namespace//cov-workloads";
const WIDGET: &str = "test.tessera.dev/v1/Widget/cov-workloads/cov-widget";

#[tokio::test]
async fn a_release_applies_crds_first_reads_in_sync_and_shows_drift() {
    let (fixture, kube) = env();
    let created = rolling_out(&fixture, kube.create(&spec(tolerations()))).await.unwrap();

    assert_eq!(created.id, RELEASE_ID);
    let mut expected: Vec<String> = [CRD, NS, WIDGET, DS, CM].iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(inventory(&created), expected, "the sorted ids of every applied object");
    assert_eq!(created.attrs["inSync"], json!(true));
    for key in ["name", "namespace", "chart", "version", "digest", "values", "kubeVersion"] {
        assert_eq!(created.attrs[key], spec(tolerations()).attrs[key], "{key} is echoed");
    }
    let ds = fixture.get_id(DS).unwrap();
    assert_eq!(ds["spec"]["template"]["spec"]["tolerations"], json!([{"operator": "Exists"}]));
    assert_eq!(ds["metadata"]["labels"]["tessera.dev/release"], json!("monitoring_cov"));
    assert_eq!(ds["status"]["numberReady"], json!(2), "the release waited for its DaemonSet");
    assert!(fixture.get_id(CM).is_some(), "the ConfigMap got the release's namespace");
    assert_eq!(created.attrs["objects"][CM]["data"], json!({"scrapeInterval": "30s"}));

    // CRDs first, then Namespaces, then the rest.
    let applied: Vec<String> = fixture.requests().into_iter().filter(|r| r.method == "PATCH").map(|r| r.path).collect();
    let at =
        |part: &str| applied.iter().position(|p| p.contains(part)).unwrap_or_else(|| panic!("{part} in {applied:?}"));
    assert!(at("/customresourcedefinitions/") < at("/namespaces/cov-workloads"), "{applied:?}");
    assert!(at("/namespaces/cov-workloads") < at("/widgets/cov-widget"), "{applied:?}");
    assert!(at("/namespaces/cov-workloads") < at("/daemonsets/cov-exporter"), "{applied:?}");

    let read = kube.read_recorded("helm.release", &created.id, &created.attrs).await.unwrap().unwrap();
    assert_eq!(read.attrs, created.attrs, "nothing moved: the read is the record");

    let mut edited = fixture.get_id(CM).unwrap();
    edited["data"]["scrapeInterval"] = json!("5m");
    fixture.put_object(edited).unwrap();
    let drifted = kube.read_recorded("helm.release", &created.id, &created.attrs).await.unwrap().unwrap();
    assert_eq!(drifted.attrs["inSync"], json!(false));
    assert_ne!(drifted.attrs["objects"][CM], created.attrs["objects"][CM]);

    fixture.delete_object("apps/v1", "DaemonSet", Some("monitoring"), "cov-exporter");
    let missing = kube.read_recorded("helm.release", &created.id, &created.attrs).await.unwrap().unwrap();
    assert_eq!(missing.attrs["inSync"], json!(false));
    assert!(missing.attrs["objects"].get(DS).is_none(), "a deleted object is missing from the objects");
    fixture.assert_no_rejections();
}

#[tokio::test]
async fn an_update_prunes_what_is_no_longer_rendered_and_delete_keeps_crds() {
    let (fixture, kube) = env();
    let controller = daemonset_controller(&fixture);
    let with_extra = kube.create(&spec(json!({"extra": {"enabled": true}}))).await.unwrap();
    assert!(inventory(&with_extra).contains(&EXTRA.to_string()));
    assert!(fixture.get_id(EXTRA).is_some());

    let without = kube.update(&spec(json!({})), &with_extra.id, &["values".into()]).await.unwrap();
    assert!(!inventory(&without).contains(&EXTRA.to_string()));
    assert!(fixture.get_id(EXTRA).is_none(), "the object that left the rendered set is pruned");
    assert!(fixture.get_id(CM).is_some());

    // The record in the cluster lets a later provider (another process) prune too.
    let later = provider(settings(&fixture));
    let back = later.update(&spec(json!({"extra": {"enabled": true}})), &without.id, &[]).await.unwrap();
    assert!(inventory(&back).contains(&EXTRA.to_string()));
    later.update(&spec(json!({})), &back.id, &[]).await.unwrap();
    assert!(fixture.get_id(EXTRA).is_none());
    controller.abort();

    later.delete(&spec(tolerations()).address, &RELEASE_ID.to_string()).await.unwrap();
    for id in [CM, DS, NS, WIDGET] {
        assert!(fixture.get_id(id).is_none(), "{id} is deleted with the release");
    }
    assert!(fixture.get_id(CRD).is_some(), "CRDs outlive the release: deleting one deletes every resource of its kind");
    assert!(fixture.get_id("v1/ConfigMap/monitoring/tessera-release-cov").is_none());
    assert!(matches!(
        later.delete(&spec(tolerations()).address, &RELEASE_ID.to_string()).await,
        Err(ProviderError::NotFound(_))
    ));
    assert!(later.read("helm.release", &RELEASE_ID.to_string()).await.unwrap().is_none());
    fixture.assert_no_rejections();
}

#[tokio::test]
async fn find_adopts_a_release_whose_create_was_lost() {
    let (fixture, kube) = env();
    assert!(kube.find(&spec(tolerations())).await.unwrap().is_none());
    let created = rolling_out(&fixture, kube.create(&spec(tolerations()))).await.unwrap();
    let found = kube.find(&spec(tolerations())).await.unwrap().unwrap();
    assert_eq!(found.id, created.id);
    assert_eq!(found.attrs, created.attrs, "recovery sees what the create would have reported");
}

#[tokio::test]
async fn objects_of_someone_else_are_refused_before_anything_is_applied() {
    let fixture = start();
    namespace(&fixture, "monitoring");
    fixture
        .put_object(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cov-settings", "namespace": "monitoring", "labels": {"app": "hand-made"}},
            "data": {"mine": "yes"}}))
        .unwrap();
    let kube = provider(settings(&fixture));
    let err = kube.create(&spec(json!({}))).await.unwrap_err().to_string();
    assert!(err.contains("exist and are not ours") && err.contains(CM), "{err}");
    assert_eq!(fixture.get_id(CM).unwrap()["data"], json!({"mine": "yes"}));
    assert!(fixture.get_id(DS).is_none() && fixture.get_id(CRD).is_none(), "nothing of the release was applied");
}

#[tokio::test]
async fn a_hook_is_refused_before_anything_is_applied() {
    let (fixture, kube) = env();
    let err = kube.create(&spec(json!({"hookJob": {"enabled": true}}))).await.unwrap_err().to_string();
    assert!(err.contains("Job cov-admission-create"), "{err}");
    assert!(fixture.requests().iter().all(|r| r.method == "GET"), "nothing was written");
}

#[tokio::test]
async fn a_read_without_a_record_uses_the_clusters() {
    let (fixture, kube) = env();
    let created = rolling_out(&fixture, kube.create(&spec(tolerations()))).await.unwrap();
    let read = kube.read_recorded("helm.release", &created.id, &Attrs::new()).await.unwrap().unwrap();
    assert_eq!(read.attrs["inventory"], created.attrs["inventory"]);
    assert_eq!(read.attrs["objects"], created.attrs["objects"]);
    assert!(!read.attrs.contains_key("values"), "values are never kept in the cluster");
}

#[tokio::test]
async fn without_its_record_a_release_finds_its_objects_by_label() {
    let (fixture, kube) = env();
    let controller = daemonset_controller(&fixture);
    let created = kube.create(&spec(json!({"extra": {"enabled": true}}))).await.unwrap();
    let drop_record = || fixture.delete_object("v1", "ConfigMap", Some("monitoring"), "tessera-release-cov").unwrap();

    drop_record();
    kube.update(&spec(json!({})), &created.id, &[]).await.unwrap();
    assert!(fixture.get_id(EXTRA).is_none(), "pruned by its label");
    controller.abort();

    drop_record();
    kube.delete(&spec(tolerations()).address, &created.id).await.unwrap();
    for id in [CM, DS, NS, WIDGET] {
        assert!(fixture.get_id(id).is_none(), "{id} is found by its label and deleted");
    }
    assert!(fixture.get_id(CRD).is_some());
    assert!(matches!(kube.delete(&spec(tolerations()).address, &created.id).await, Err(ProviderError::NotFound(_))));
    fixture.assert_no_rejections();
}
