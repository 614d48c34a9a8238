//! The renderer validation uses: the real helm (`TESSERA_HELM`, or `.tools/bin/helm` as
//! `scripts/test` installs it) on charts already on this machine, never a pull.

mod support;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::{CHART, chart_settings, helm};
use tessera_kube::coverage::Service;
use tessera_kube::render::{ChartRelease, ChartRenderer, Rendering};
use tessera_kube_client::{CachedCharts, KubeClientSettings};
use tessera_provider_api::Chart;

fn chart(reference: &str) -> Chart {
    Chart { reference: reference.into(), version: "0.3.0".into(), digest: None }
}

fn render(renderer: &CachedCharts, chart: &Chart, values: Value) -> Rendering {
    let release = ChartRelease {
        service: Service::Monitoring,
        chart,
        release: "cov",
        namespace: "monitoring",
        values,
        kube_version: "1.31",
    };
    renderer.render(&release)
}

fn objects(r: Rendering) -> Vec<Value> {
    match r {
        Rendering::Objects(o) => o,
        other => panic!("expected objects, got {other:?}"),
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(files_under(&p)) } else { out.push(p) }
    }
    out
}

#[test]
fn a_local_chart_is_rendered_with_the_release_values() {
    let renderer = CachedCharts::new(chart_settings());
    let tolerations = json!([{"key": "gpu", "operator": "Exists", "effect": "NoExecute"}]);
    let objects = objects(render(&renderer, &chart(CHART), json!({"tolerations": tolerations})));
    let ds = objects.iter().find(|o| o["kind"] == "DaemonSet").cloned().unwrap_or_default();
    assert_eq!(ds["metadata"]["name"], json!("cov-exporter"), "{objects:?}");
    assert_eq!(ds["spec"]["template"]["spec"]["tolerations"], tolerations, "the values reached helm");
}

#[test]
fn a_chart_that_is_not_on_this_machine_is_not_pulled() {
    let cache = tempfile::tempdir().unwrap();
    let renderer = CachedCharts::new(KubeClientSettings {
        helm: Some(helm()),
        chart_cache: Some(cache.path().to_path_buf()),
        ..KubeClientSettings::default()
    });
    // A pull from here would fail (nothing listens): only "not available" shows none was tried.
    let r = render(&renderer, &chart("oci://127.0.0.1:1/charts/coverage"), json!({}));
    assert_eq!(r, Rendering::Unavailable("the chart is not in the chart cache".into()));
    assert!(files_under(cache.path()).is_empty(), "nothing was fetched into the cache");
}

#[test]
fn a_cached_pull_is_rendered() {
    let cache = tempfile::tempdir().unwrap();
    let settings = KubeClientSettings {
        helm: Some(helm()),
        chart_cache: Some(cache.path().to_path_buf()),
        ..KubeClientSettings::default()
    };
    let wanted = chart(CHART);
    let r = tessera_kube_client::helm::ChartRef { reference: CHART.into(), version: "0.3.0".into(), digest: None };
    let dir = tessera_kube_client::helm::cache_dir(cache.path(), &r);
    std::fs::create_dir_all(&dir).unwrap();
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/charts/coverage");
    let packaged = std::process::Command::new(helm()).arg("package").arg(&source).arg("-d").arg(&dir).output().unwrap();
    assert!(packaged.status.success(), "{}", String::from_utf8_lossy(&packaged.stderr));

    let objects = objects(render(&CachedCharts::new(settings), &wanted, json!({})));
    assert!(objects.iter().any(|o| o["kind"] == "DaemonSet"), "{objects:?}");
}

#[test]
fn without_helm_the_chart_is_unavailable() {
    let settings = KubeClientSettings { helm: Some("/nonexistent/helm".into()), ..chart_settings() };
    let r = render(&CachedCharts::new(settings), &chart(CHART), json!({}));
    assert_eq!(r, Rendering::Unavailable("no helm at `/nonexistent/helm`".into()));
}

#[test]
fn values_helm_refuses_and_hooks_fail_as_the_install_would() {
    let renderer = CachedCharts::new(chart_settings());
    let Rendering::Failed(why) = render(&renderer, &chart(CHART), json!({"settings": "not a map"})) else {
        panic!("helm must refuse a string where the chart ranges over a map");
    };
    assert!(why.contains("helm template failed"), "{why}");
    let Rendering::Failed(why) = render(&renderer, &chart(CHART), json!({"hookJob": {"enabled": true}})) else {
        panic!("a hook is refused");
    };
    assert!(why.contains("Job cov-admission-create"), "{why}");
}
