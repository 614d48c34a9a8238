//! Rendering a local test chart with the real helm (`TESSERA_HELM`, which `scripts/test` sets to
//! `.tools/bin/helm`; that path is tried too).

mod support;

use std::path::PathBuf;

use serde_json::{Value, json};
use support::{chart_settings, helm, release_spec};
use tessera_kube_client::KubeClientSettings;
use tessera_kube_client::manifests::{Phase, phase};
use tessera_kube_client::release::{Release, render};
use tessera_provider_api::ProviderError;

fn settings() -> KubeClientSettings {
    chart_settings()
}

fn release(values: Value) -> Release {
    Release::from_spec(&release_spec(values)).unwrap()
}

fn find<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    objects.iter().find(|o| o["kind"] == kind).unwrap_or_else(|| panic!("no {kind} in {objects:?}"))
}

#[tokio::test]
async fn the_test_chart_renders_with_its_crd_labels_and_computed_tolerations() {
    let tolerations = json!([{"operator": "Exists"}, {"key": "gpu", "operator": "Exists", "effect": "NoExecute"}]);
    let objects = render(&settings(), &release(json!({"tolerations": tolerations}))).await.unwrap();
    let mut kinds: Vec<&str> = objects.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    kinds.sort();
    assert_eq!(kinds, ["ConfigMap", "CustomResourceDefinition", "DaemonSet", "Namespace", "Widget"], "no test pod");

    let ds = find(&objects, "DaemonSet");
    assert_eq!(ds["spec"]["template"]["spec"]["tolerations"], tolerations);
    assert_eq!(ds["metadata"]["name"], json!("cov-exporter"));
    for o in &objects {
        assert_eq!(o["metadata"]["labels"]["app.kubernetes.io/managed-by"], json!("tessera"), "{o}");
        assert_eq!(o["metadata"]["labels"]["tessera.dev/release"], json!("monitoring_cov"), "{o}");
    }
    assert_eq!(phase(find(&objects, "CustomResourceDefinition")), Phase::Crds);
    assert_eq!(phase(find(&objects, "Namespace")), Phase::Namespaces);
    assert_eq!(find(&objects, "Widget")["metadata"]["namespace"], json!("cov-workloads"));
    assert!(find(&objects, "ConfigMap")["metadata"].get("namespace").is_none(), "helm leaves it to the client");
}

#[tokio::test]
async fn values_change_what_is_rendered() {
    let objects = render(&settings(), &release(json!({"extra": {"enabled": true}}))).await.unwrap();
    let names: Vec<&str> =
        objects.iter().filter(|o| o["kind"] == "ConfigMap").map(|o| o["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["cov-settings", "cov-extra"]);
    let ds = find(&objects, "DaemonSet");
    assert!(ds["spec"]["template"]["spec"].get("tolerations").is_none(), "no tolerations unless computed");
}

#[tokio::test]
async fn a_hook_left_on_is_refused_by_name() {
    let err = render(&settings(), &release(json!({"hookJob": {"enabled": true}}))).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ProviderError::Fatal(_)), "{err:?}");
    assert!(msg.contains("Job cov-admission-create (helm.sh/hook: pre-install,pre-upgrade)"), "{msg}");
}

#[tokio::test]
async fn helm_failures_are_fatal_with_helms_own_words() {
    let err = render(&settings(), &release(json!({"settings": "not a map"}))).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ProviderError::Fatal(_)), "{err:?}");
    assert!(
        msg.contains("rendering oci://registry.test/charts/coverage 0.3.0") && msg.contains("helm failed"),
        "{msg}"
    );

    let cache = tempfile::tempdir().unwrap();
    let unreachable = KubeClientSettings {
        helm: Some(helm()),
        chart_cache: Some(cache.path().to_path_buf()),
        ..KubeClientSettings::default()
    };
    let mut r = release(json!({}));
    r.chart.reference = "oci://127.0.0.1:1/charts/coverage".into();
    let msg = render(&unreachable, &r).await.unwrap_err().to_string();
    assert!(msg.contains("pulling oci://127.0.0.1:1/charts/coverage 0.3.0: helm failed"), "{msg}");
    let leftovers: Vec<_> = walk(cache.path());
    assert!(leftovers.iter().all(|p| p.extension().is_none_or(|x| x != "tgz")), "a failed pull caches nothing");
}

#[tokio::test]
async fn a_missing_helm_is_named() {
    let s = KubeClientSettings { helm: Some("/nonexistent/helm".into()), ..settings() };
    let msg = render(&s, &release(json!({}))).await.unwrap_err().to_string();
    assert!(msg.contains("cannot run /nonexistent/helm"), "{msg}");
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn a_pulled_chart_is_rendered_from_the_cache_without_pulling_again() {
    let cache = tempfile::tempdir().unwrap();
    let no_local = KubeClientSettings {
        helm: Some(helm()),
        chart_cache: Some(cache.path().to_path_buf()),
        ..KubeClientSettings::default()
    };
    let r = release(json!({}));
    // What a pull leaves: the chart archive in the cache directory of its reference and version.
    let dir = tessera_kube_client::helm::cache_dir(cache.path(), &r.chart);
    std::fs::create_dir_all(&dir).unwrap();
    let chart = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/charts/coverage");
    let packaged = std::process::Command::new(helm()).arg("package").arg(&chart).arg("-d").arg(&dir).output().unwrap();
    assert!(packaged.status.success(), "{}", String::from_utf8_lossy(&packaged.stderr));

    // registry.test does not resolve: only the cache can have served this render.
    let objects = render(&no_local, &r).await.unwrap();
    assert!(objects.iter().any(|o| o["kind"] == "DaemonSet"));

    let mut other_version = r.clone();
    other_version.chart.version = "0.4.0".into();
    let msg = render(&no_local, &other_version).await.unwrap_err().to_string();
    assert!(
        msg.contains("pulling oci://registry.test/charts/coverage 0.4.0"),
        "another version is another pull: {msg}"
    );
}
