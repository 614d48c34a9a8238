//! The fixture driven by the real kube-rs client (kube 5, aws-lc-rs), as the `kube` provider
//! drives it.

use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::Discovery;
use kube::{Client, Config};
use serde_json::{Value, json};
use tessera_kube_fixture::{Fault, KubeFixture};

fn client(fixture: &KubeFixture) -> Client {
    Client::try_from(Config::new(fixture.url().parse().unwrap())).unwrap()
}

fn api(client: &Client, group: &str, version: &str, kind: &str, ns: Option<&str>) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

fn obj(value: Value) -> DynamicObject {
    serde_json::from_value(value).unwrap()
}

fn daemonset(image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "node-exporter", "namespace": "default", "labels": {"app": "node-exporter"}},
        "spec": {
            "selector": {"matchLabels": {"app": "node-exporter"}},
            "template": {
                "metadata": {"labels": {"app": "node-exporter"}},
                "spec": {
                    "tolerations": [{"operator": "Exists"}],
                    "containers": [{"name": "node-exporter", "image": image,
                                    "ports": [{"containerPort": 9100, "protocol": "TCP"}]}]
                }
            }
        }
    })
}

fn crd_file(name: &str) -> Value {
    let path = tessera_kube_fixture::crds::shared_k8s_dir().join("crds").join(name);
    tessera_kube_fixture::crds::load_yaml(&path).unwrap()
}

fn api_code(err: kube::Error) -> u16 {
    match err {
        kube::Error::Api(status) => status.code,
        other => panic!("expected an API error, got {other}"),
    }
}

fn rv(o: &DynamicObject) -> u64 {
    o.metadata.resource_version.as_deref().unwrap().parse().unwrap()
}

const SSA: &str = "tessera";

#[tokio::test]
async fn server_side_apply_keeps_managed_fields_resource_version_and_generation() {
    let fixture = KubeFixture::start().unwrap();
    let ds = api(&client(&fixture), "apps", "v1", "DaemonSet", Some("default"));
    let pp = PatchParams::apply(SSA).force();

    let first = ds.patch("node-exporter", &pp, &Patch::Apply(obj(daemonset("a:1")))).await.unwrap();
    let mf = first.metadata.managed_fields.clone().unwrap();
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0].manager.as_deref(), Some(SSA));
    assert_eq!(mf[0].operation.as_deref(), Some("Apply"));
    assert_eq!(mf[0].fields_type.as_deref(), Some("FieldsV1"));
    let fields = &mf[0].fields_v1.as_ref().unwrap().0;
    let container = &fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"node-exporter\"}"];
    assert_eq!(container["."], json!({}));
    assert_eq!(container["f:image"], json!({}));
    assert_eq!(container["f:ports"]["k:{\"containerPort\":9100,\"protocol\":\"TCP\"}"]["f:containerPort"], json!({}));
    assert_eq!(fields["f:spec"]["f:template"]["f:spec"]["f:tolerations"], json!({}), "atomic list is a leaf");
    assert!(first.metadata.uid.is_some() && first.metadata.creation_timestamp.is_some());
    assert_eq!(first.metadata.generation, Some(1));

    let again = ds.patch("node-exporter", &pp, &Patch::Apply(obj(daemonset("a:1")))).await.unwrap();
    assert_eq!(rv(&again), rv(&first), "a no-op apply does not move resourceVersion");
    let changed = ds.patch("node-exporter", &pp, &Patch::Apply(obj(daemonset("a:2")))).await.unwrap();
    assert!(rv(&changed) > rv(&first));
    assert_eq!(changed.metadata.generation, Some(2));
    assert_eq!(changed.metadata.uid, first.metadata.uid);

    let other = PatchParams::apply("someone-else");
    let err = ds.patch("node-exporter", &other, &Patch::Apply(obj(daemonset("b:1")))).await.unwrap_err();
    assert_eq!(api_code(err), 409, "a field owned by another manager conflicts without force");
    fixture.assert_no_rejections();
}

#[tokio::test]
async fn an_invalid_daemonset_is_refused_and_recorded() {
    let fixture = KubeFixture::start().unwrap();
    let ds = api(&client(&fixture), "apps", "v1", "DaemonSet", Some("default"));
    let mut bad = daemonset("a:1");
    bad["spec"]["template"]["spec"]["containers"][0]["mountPropagation"] = json!("HostToContainer");
    let err = ds.patch("node-exporter", &PatchParams::apply(SSA).force(), &Patch::Apply(obj(bad))).await.unwrap_err();
    assert_eq!(api_code(err), 422);
    let rejections = fixture.rejections();
    assert_eq!(rejections.len(), 1);
    assert_eq!(rejections[0].object_id, "apps/v1/DaemonSet/default/node-exporter");
    assert!(rejections[0].message.contains("mountPropagation"), "{}", rejections[0].message);
    assert!(fixture.get("apps/v1", "DaemonSet", Some("default"), "node-exporter").is_none(), "nothing stored");
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fixture.assert_no_rejections()));
    assert!(caught.is_err(), "assert_no_rejections fails the test");
}

fn host_tailer(spec: Value) -> Value {
    json!({
        "apiVersion": "logging-extensions.banzaicloud.io/v1alpha1", "kind": "HostTailer",
        "metadata": {"name": "journal", "namespace": "default"},
        "spec": spec
    })
}

#[tokio::test]
async fn custom_resources_are_checked_against_the_real_crd() {
    let fixture = KubeFixture::start().unwrap();
    let client = client(&fixture);
    let crds = api(&client, "apiextensions.k8s.io", "v1", "CustomResourceDefinition", None);
    let crd = crd_file("logging-extensions.banzaicloud.io_hosttailers.yaml");
    crds.patch(
        "hosttailers.logging-extensions.banzaicloud.io",
        &PatchParams::apply(SSA).force(),
        &Patch::Apply(obj(crd)),
    )
    .await
    .unwrap();

    let tailers = api(&client, "logging-extensions.banzaicloud.io", "v1alpha1", "HostTailer", Some("default"));
    let pp = PatchParams::apply(SSA).force();
    let good = host_tailer(json!({
        "systemdTailers": [{"name": "kubelet", "systemdFilter": "kubelet.service", "path": "/var/log/journal", "maxEntries": 100}],
        "workloadOverrides": {"tolerations": [{"operator": "Exists"}]}
    }));
    let stored = tailers.patch("journal", &pp, &Patch::Apply(obj(good))).await.unwrap();
    fixture.assert_no_rejections();
    let fields = &stored.metadata.managed_fields.unwrap()[0].fields_v1.clone().unwrap().0;
    assert_eq!(fields["f:spec"]["f:systemdTailers"], json!({}), "the CRD declares no list type: atomic");
    assert_eq!(fields["f:spec"]["f:workloadOverrides"]["f:tolerations"], json!({}));

    let misspelled = host_tailer(json!({"systemdTailers": [{"name": "kubelet", "systemdFilters": "kubelet.service"}]}));
    assert_eq!(api_code(tailers.patch("journal", &pp, &Patch::Apply(obj(misspelled))).await.unwrap_err()), 422);
    let wrong_type = host_tailer(json!({"systemdTailers": [{"name": "kubelet", "maxEntries": "many"}]}));
    assert_eq!(api_code(tailers.patch("journal", &pp, &Patch::Apply(obj(wrong_type))).await.unwrap_err()), 422);
    let rejections = fixture.rejections();
    assert_eq!(rejections.len(), 2);
    assert!(rejections[0].message.contains("systemdFilters"), "{}", rejections[0].message);
    assert!(rejections[0].message.contains("real CRD"), "{}", rejections[0].message);
}

#[tokio::test]
async fn a_crd_becomes_discoverable_once_established() {
    let fixture = KubeFixture::builder().crd_established_after(Duration::from_millis(400)).start().unwrap();
    let client = client(&fixture);
    let crds = api(&client, "apiextensions.k8s.io", "v1", "CustomResourceDefinition", None);
    let name = "hosttailers.logging-extensions.banzaicloud.io";
    let crd = crd_file("logging-extensions.banzaicloud.io_hosttailers.yaml");
    crds.patch(name, &PatchParams::apply(SSA).force(), &Patch::Apply(obj(crd))).await.unwrap();

    let established = |o: &DynamicObject| {
        o.data["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Established" && c["status"] == "True")
    };
    let installing = crds.get(name).await.unwrap();
    assert!(!established(&installing));
    let names_accepted = &installing.data["status"]["conditions"][0];
    assert_eq!(
        (names_accepted["type"].as_str(), names_accepted["status"].as_str()),
        (Some("NamesAccepted"), Some("True"))
    );
    let tailers = api(&client, "logging-extensions.banzaicloud.io", "v1alpha1", "HostTailer", Some("default"));
    assert_eq!(api_code(tailers.list(&ListParams::default()).await.unwrap_err()), 404, "not served before Established");
    let before = Discovery::new(client.clone()).run().await.unwrap();
    assert!(!before.has_group("logging-extensions.banzaicloud.io"));

    let mut live = installing;
    for _ in 0..50 {
        if established(&live) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        live = crds.get(name).await.unwrap();
    }
    assert!(established(&live), "Established after the delay");
    let after = Discovery::new(client.clone()).run().await.unwrap();
    let group = after.get("logging-extensions.banzaicloud.io").expect("group discovered");
    let (ar, caps) = group.recommended_kind("HostTailer").expect("HostTailer discovered");
    assert_eq!(ar.plural, "hosttailers");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    assert!(tailers.list(&ListParams::default()).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn builtin_discovery_lists_the_kinds_tessera_uses() {
    let fixture = KubeFixture::start().unwrap();
    let discovery = Discovery::new(client(&fixture)).run().await.unwrap();
    for (group, kind) in [
        ("", "Namespace"),
        ("", "ServiceAccount"),
        ("", "ConfigMap"),
        ("", "Node"),
        ("apps", "DaemonSet"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    ] {
        let g = discovery.get(group).unwrap_or_else(|| panic!("group {group:?}"));
        assert!(g.recommended_kind(kind).is_some(), "{group}/{kind}");
    }
    let v = client(&fixture).apiserver_version().await.unwrap();
    assert_eq!((v.major.as_str(), v.minor.as_str(), v.git_version.as_str()), ("1", "31", "v1.31.0"));
}

#[tokio::test]
async fn get_list_delete_and_missing_namespaces() {
    let fixture = KubeFixture::start().unwrap();
    let client = client(&fixture);
    let cms = api(&client, "", "v1", "ConfigMap", Some("default"));
    for (name, tier) in [("a", "x"), ("b", "y")] {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": name, "labels": {"tier": tier}}, "data": {"k": "v"}});
        cms.create(&PostParams::default(), &obj(cm)).await.unwrap();
    }
    let dup = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
    assert_eq!(api_code(cms.create(&PostParams::default(), &obj(dup)).await.unwrap_err()), 409);
    let listed = cms.list(&ListParams::default().labels("tier=x")).await.unwrap();
    let names: Vec<_> = listed.items.iter().map(|o| o.metadata.name.clone().unwrap()).collect();
    assert_eq!(names, ["a"]);
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_code(cms.get("a").await.unwrap_err()), 404);
    assert_eq!(api_code(cms.delete("a", &DeleteParams::default()).await.unwrap_err()), 404);

    let elsewhere = api(&client, "", "v1", "ConfigMap", Some("monitoring"));
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "monitoring"}});
    let err = elsewhere.patch("c", &PatchParams::apply(SSA).force(), &Patch::Apply(obj(cm.clone()))).await.unwrap_err();
    assert_eq!(api_code(err), 404, "the namespace does not exist yet");
    let ns = api(&client, "", "v1", "Namespace", None);
    let monitoring = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "monitoring"}});
    ns.patch("monitoring", &PatchParams::apply(SSA).force(), &Patch::Apply(obj(monitoring))).await.unwrap();
    elsewhere.patch("c", &PatchParams::apply(SSA).force(), &Patch::Apply(obj(cm))).await.unwrap();
    ns.delete("monitoring", &DeleteParams::default()).await.unwrap();
    assert!(fixture.get("v1", "ConfigMap", Some("monitoring"), "c").is_none(), "deleted with its namespace");
    fixture.assert_no_rejections();
}

#[tokio::test]
async fn status_is_set_by_the_test_and_through_the_subresource() {
    let fixture = KubeFixture::start().unwrap();
    let ds = api(&client(&fixture), "apps", "v1", "DaemonSet", Some("default"));
    ds.patch("node-exporter", &PatchParams::apply(SSA).force(), &Patch::Apply(obj(daemonset("a:1")))).await.unwrap();
    let status =
        json!({"desiredNumberScheduled": 3, "numberReady": 2, "currentNumberScheduled": 3, "numberMisscheduled": 0});
    fixture.set_status("apps/v1", "DaemonSet", Some("default"), "node-exporter", status).unwrap();
    let live = ds.get_status("node-exporter").await.unwrap();
    assert_eq!(live.data["status"]["numberReady"], 2);

    let patch = json!({"status": {"numberReady": 3}});
    let patched = ds.patch_status("node-exporter", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    assert_eq!(patched.data["status"]["numberReady"], 3);
    assert_eq!(patched.data["status"]["desiredNumberScheduled"], 3);
    assert_eq!(patched.metadata.generation, Some(1), "status is not spec");

    // A main-resource apply keeps the status the controller wrote.
    let reapplied = ds
        .patch("node-exporter", &PatchParams::apply(SSA).force(), &Patch::Apply(obj(daemonset("a:2"))))
        .await
        .unwrap();
    assert_eq!(reapplied.data["status"]["numberReady"], 3);
    fixture
        .add_node("pool-a-0", json!({"pool": "a"}), json!([{"key": "gpu", "effect": "NoExecute", "value": "true"}]))
        .unwrap();
    let nodes =
        api(&client(&fixture), "", "v1", "Node", None).list(&ListParams::default().labels("pool=a")).await.unwrap();
    assert_eq!(nodes.items.len(), 1);
    assert_eq!(nodes.items[0].data["spec"]["taints"][0]["effect"], "NoExecute");
}

#[tokio::test]
async fn injected_failures_answer_with_retry_after_then_stop() {
    let fixture = KubeFixture::start().unwrap();
    let cms = api(&client(&fixture), "", "v1", "ConfigMap", Some("default"));
    // kube 5's default client retries 429/503/504, waiting as Retry-After says.
    fixture.fail_next(Fault::new("/configmaps", 2, 429).method("GET").retry_after(1));
    let started = std::time::Instant::now();
    assert!(cms.list(&ListParams::default()).await.is_ok());
    assert!(started.elapsed() >= Duration::from_secs(2), "Retry-After was sent and honoured");
    let statuses: Vec<u16> =
        fixture.requests().iter().filter(|r| r.path.ends_with("/configmaps")).map(|r| r.status).collect();
    assert_eq!(statuses, [429, 429, 200]);

    fixture.fail_next(Fault::new("/configmaps", 1, 500));
    match cms.list(&ListParams::default()).await.unwrap_err() {
        kube::Error::Api(status) => assert_eq!((status.code, status.reason.as_str()), (500, "InternalError")),
        other => panic!("{other}"),
    }
    assert!(cms.list(&ListParams::default()).await.is_ok(), "the fault is used up");
}

#[test]
fn a_missing_or_unsupported_validator_fails_loudly() {
    let missing =
        KubeFixture::builder().kubernetes_validate(std::path::Path::new("/nonexistent/kubernetes-validate")).start();
    assert!(matches!(missing, Err(tessera_kube_fixture::FixtureError::ValidatorMissing { .. })));
    let unsupported = KubeFixture::builder().kubernetes_version("1.99.0").start();
    assert!(matches!(unsupported, Err(tessera_kube_fixture::FixtureError::ValidatorMissing { .. })));
}

#[tokio::test]
async fn replace_with_a_stale_resource_version_conflicts_and_patches_merge() {
    let fixture = KubeFixture::start().unwrap();
    let cms = api(&client(&fixture), "", "v1", "ConfigMap", Some("default"));
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "1"}});
    let created = cms.create(&PostParams::default(), &obj(cm)).await.unwrap();
    let mut newer = created.clone();
    newer.data["data"]["k"] = json!("2");
    let replaced = cms.replace("a", &PostParams::default(), &newer).await.unwrap();
    assert!(rv(&replaced) > rv(&created));
    let mut stale = created.clone();
    stale.data["data"]["k"] = json!("3");
    assert_eq!(api_code(cms.replace("a", &PostParams::default(), &stale).await.unwrap_err()), 409);
    let merged = cms.patch("a", &PatchParams::default(), &Patch::Merge(json!({"data": {"j": "x"}}))).await.unwrap();
    assert_eq!(merged.data["data"], json!({"k": "2", "j": "x"}));
    let managers: Vec<String> =
        merged.metadata.managed_fields.unwrap().iter().filter_map(|m| m.manager.clone()).collect();
    assert!(!managers.is_empty(), "updates are recorded in managedFields");
    fixture.assert_no_rejections();
}

#[tokio::test]
async fn preloaded_real_crds_serve_pod_monitors() {
    let fixture = KubeFixture::builder().preload_real_crds().start().unwrap();
    let monitors = api(&client(&fixture), "monitoring.coreos.com", "v1", "PodMonitor", Some("default"));
    let monitor = |endpoints: Value| {
        obj(json!({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
            "metadata": {"name": "gpu-exporter", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "gpu-exporter"}}, "podMetricsEndpoints": endpoints}
        }))
    };
    let pp = PatchParams::apply(SSA).force();
    let good = monitor(json!([{"port": "metrics", "path": "/metrics", "interval": "30s"}]));
    monitors.patch("gpu-exporter", &pp, &Patch::Apply(good)).await.unwrap();
    fixture.assert_no_rejections();
    let bad = monitor(json!([{"port": "metrics", "scrapeEvery": "30s"}]));
    assert_eq!(api_code(monitors.patch("gpu-exporter", &pp, &Patch::Apply(bad)).await.unwrap_err()), 422);
    assert!(fixture.rejections()[0].message.contains("scrapeEvery"));
}

#[tokio::test]
async fn a_crd_not_in_shared_validates_against_the_applied_schema() {
    let fixture = KubeFixture::start().unwrap();
    let client = client(&fixture);
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.tessera.dev"},
        "spec": {"group": "example.tessera.dev", "scope": "Cluster",
                 "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                     "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object",
                         "properties": {"size": {"type": "integer"}}}}}}}]}
    });
    let crds = api(&client, "apiextensions.k8s.io", "v1", "CustomResourceDefinition", None);
    crds.create(&PostParams::default(), &obj(crd)).await.unwrap();
    let widgets = api(&client, "example.tessera.dev", "v1", "Widget", None);
    let widget = |spec: Value| {
        obj(json!({"apiVersion": "example.tessera.dev/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec}))
    };
    widgets.create(&PostParams::default(), &widget(json!({"size": 3}))).await.unwrap();
    assert_eq!(
        api_code(widgets.create(&PostParams::default(), &widget(json!({"colour": "red"}))).await.unwrap_err()),
        422
    );
    assert_eq!(fixture.rejections()[0].object_id, "example.tessera.dev/v1/Widget//w");
    crds.delete("widgets.example.tessera.dev", &DeleteParams::default()).await.unwrap();
    assert!(fixture.get("example.tessera.dev/v1", "Widget", None, "w").is_none(), "gone with its CRD");
}

#[tokio::test]
async fn the_daemonset_controller_covers_tolerated_nodes_only() {
    let fixture = KubeFixture::start().unwrap();
    fixture.add_node("general-0", json!({"pool": "general"}), json!([])).unwrap();
    fixture
        .add_node("gpu-0", json!({"pool": "gpu"}), json!([{"key": "gpu", "value": "true", "effect": "NoExecute"}]))
        .unwrap();
    let ds = api(&client(&fixture), "apps", "v1", "DaemonSet", Some("default"));
    let mut narrow = daemonset("a:1");
    narrow["spec"]["template"]["spec"]["tolerations"] = json!([{"operator": "Exists", "effect": "NoSchedule"}]);
    ds.patch("node-exporter", &PatchParams::apply(SSA).force(), &Patch::Apply(obj(narrow))).await.unwrap();
    assert_eq!(fixture.run_daemonset_controller().unwrap(), [("default/node-exporter".to_string(), 1)]);
    ds.patch("node-exporter", &PatchParams::apply(SSA).force(), &Patch::Apply(obj(daemonset("a:1")))).await.unwrap();
    fixture.run_daemonset_controller().unwrap();
    let live = ds.get_status("node-exporter").await.unwrap();
    assert_eq!(
        (live.data["status"]["numberReady"].as_u64(), live.data["status"]["desiredNumberScheduled"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(live.data["status"]["observedGeneration"], 2);
}

#[tokio::test]
async fn a_required_bearer_token_is_checked() {
    let fixture = KubeFixture::builder().require_bearer_token("s3cret").start().unwrap();
    let anonymous = api(&client(&fixture), "", "v1", "ConfigMap", Some("default"));
    assert_eq!(api_code(anonymous.list(&ListParams::default()).await.unwrap_err()), 401);
    let mut config = Config::new(fixture.url().parse().unwrap());
    config.auth_info.token = Some("s3cret".to_string().into());
    let authed = api(&Client::try_from(config).unwrap(), "", "v1", "ConfigMap", Some("default"));
    assert!(authed.list(&ListParams::default()).await.is_ok());
    let schemes: Vec<Option<String>> = fixture.requests().iter().map(|r| r.auth_scheme.clone()).collect();
    assert_eq!(schemes, [None, Some("Bearer".to_string())]);
}

#[tokio::test]
async fn watches_stream_existing_objects_then_changes() {
    use futures::StreamExt;
    use kube::api::{WatchEvent, WatchParams};
    let fixture = KubeFixture::start().unwrap();
    let cms = api(&client(&fixture), "", "v1", "ConfigMap", Some("default"));
    let cm = |name: &str, tier: &str| {
        obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"tier": tier}}}))
    };
    cms.create(&PostParams::default(), &cm("before", "x")).await.unwrap();
    let mut events = cms.watch(&WatchParams::default().labels("tier=x").timeout(10), "0").await.unwrap().boxed();
    let first = events.next().await.unwrap().unwrap();
    assert!(matches!(&first, WatchEvent::Added(o) if o.metadata.name.as_deref() == Some("before")), "{first:?}");
    cms.create(&PostParams::default(), &cm("other", "y")).await.unwrap();
    cms.create(&PostParams::default(), &cm("after", "x")).await.unwrap();
    cms.delete("before", &DeleteParams::default()).await.unwrap();
    let next = events.next().await.unwrap().unwrap();
    assert!(matches!(&next, WatchEvent::Added(o) if o.metadata.name.as_deref() == Some("after")), "{next:?}");
    let gone = events.next().await.unwrap().unwrap();
    assert!(matches!(&gone, WatchEvent::Deleted(o) if o.metadata.name.as_deref() == Some("before")), "{gone:?}");

    // From a resourceVersion: only what came after it.
    let listed = cms.list(&ListParams::default()).await.unwrap();
    let rv = listed.metadata.resource_version.unwrap();
    cms.create(&PostParams::default(), &cm("later", "x")).await.unwrap();
    let mut since = cms.watch(&WatchParams::default().timeout(10), &rv).await.unwrap().boxed();
    let only = since.next().await.unwrap().unwrap();
    assert!(matches!(&only, WatchEvent::Added(o) if o.metadata.name.as_deref() == Some("later")), "{only:?}");
}
