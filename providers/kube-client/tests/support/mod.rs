//! What the wire tests share: a fixture API server, a `kube` provider connected to it, and a
//! stand-in DaemonSet controller.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Value, json};
use tessera_kube_client::{KubeClientSettings, KubeProvider};
use tessera_kube_fixture::KubeFixture;
use tessera_provider_api::poll::PollPolicy;
use tessera_provider_api::{Address, Attrs, Connection, ProviderRef, ResourceSpec};

pub const CHART: &str = "oci://registry.test/charts/coverage";

pub fn helm() -> PathBuf {
    if let Some(h) = std::env::var_os("TESSERA_HELM").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/bin/helm");
    assert!(local.exists(), "these tests need the real helm: run scripts/test, or set TESSERA_HELM");
    local
}

fn fast(total: Duration) -> PollPolicy {
    PollPolicy { min_delay: Duration::from_millis(20), max_delay: Duration::from_millis(100), total }
}

/// helm, and the test chart for [`CHART`].
pub fn chart_settings() -> KubeClientSettings {
    let mut s = KubeClientSettings { helm: Some(helm()), ..KubeClientSettings::default() };
    s.local_charts.insert(CHART.into(), PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/charts/coverage"));
    s
}

/// [`chart_settings`], every cluster mapped to the fixture, and quick waits.
pub fn settings(fixture: &KubeFixture) -> KubeClientSettings {
    KubeClientSettings {
        endpoint: Some(fixture.url()),
        bearer_token: Some(SecretString::from("fixture-token".to_string())),
        poll: fast(Duration::from_secs(20)),
        rollout: fast(Duration::from_secs(20)),
        ..chart_settings()
    }
}

pub fn cluster_address() -> Address {
    Address::new("aws", "eks.cluster", "main")
}

/// The connection a real EKS cluster would give (its endpoint is replaced by the fixture's).
pub fn connection() -> Connection {
    let mut outputs = Attrs::new();
    outputs.insert("endpoint".into(), json!("https://ABC.gr7.eu-west-1.eks.amazonaws.com"));
    outputs.insert("certificateAuthority".into(), json!("LS0tLS1CRUdJTi0tLS0t"));
    outputs.insert("name".into(), json!("core-aws"));
    Connection { source: cluster_address(), id: "core-aws".into(), outputs }
}

pub fn provider_ref() -> ProviderRef {
    let mut p = ProviderRef::connected("kube", cluster_address());
    p.region = "eu-west-1".into();
    p.scope.insert("auth".into(), "aws".into());
    p
}

pub fn provider(settings: KubeClientSettings) -> KubeProvider {
    KubeProvider::new(provider_ref(), Some(connection()), settings)
}

/// A fixture with two nodes and the `monitoring` namespace, and a provider connected to it.
pub fn env() -> (Arc<KubeFixture>, KubeProvider) {
    let fixture = start();
    namespace(&fixture, "monitoring");
    let kube = provider(settings(&fixture));
    (fixture, kube)
}

/// Runs `work` while a DaemonSet controller rolls out what it applies.
pub async fn rolling_out<T>(fixture: &Arc<KubeFixture>, work: impl std::future::Future<Output = T>) -> T {
    let controller = daemonset_controller(fixture);
    let out = work.await;
    controller.abort();
    out
}

/// The `helm.release` of the local test chart, as `cov` in `monitoring`.
pub fn release_spec(values: Value) -> ResourceSpec {
    ResourceSpec::new(Address::new("aws", "helm.release", "cov"), provider_ref())
        .attr("name", "cov")
        .attr("namespace", "monitoring")
        .attr("chart", CHART)
        .attr("version", "0.3.0")
        .attr("digest", Value::Null)
        .attr("values", values)
        .attr("kubeVersion", "1.31")
        .attr("inSync", true)
}

pub fn start() -> Arc<KubeFixture> {
    let fixture = KubeFixture::builder().kubernetes_version("1.31.0").start().unwrap();
    fixture.add_node("pool-a-0", json!({"pool": "a"}), json!([])).unwrap();
    fixture
        .add_node("pool-gpu-0", json!({"pool": "gpu"}), json!([{"key": "gpu", "value": "true", "effect": "NoExecute"}]))
        .unwrap();
    Arc::new(fixture)
}

pub fn namespace(fixture: &KubeFixture, name: &str) {
    fixture.put_object(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})).unwrap();
}

/// Sets every DaemonSet's status as its controller would once its pods run on both nodes.
pub fn roll_out_daemonsets(fixture: &KubeFixture) {
    for ds in fixture.objects_of("apps/v1", "DaemonSet") {
        let generation = ds.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
        let done = ds.pointer("/status/observedGeneration").and_then(Value::as_i64) == Some(generation);
        if done {
            continue;
        }
        let ns = ds.pointer("/metadata/namespace").and_then(Value::as_str);
        let name = ds.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        let status = json!({
            "observedGeneration": generation, "desiredNumberScheduled": 2, "currentNumberScheduled": 2,
            "numberReady": 2, "numberMisscheduled": 0, "updatedNumberScheduled": 2, "numberAvailable": 2
        });
        fixture.set_status("apps/v1", "DaemonSet", ns, name, status).unwrap();
    }
}

/// A DaemonSet controller: rolls out DaemonSets a little after they are applied.
pub fn daemonset_controller(fixture: &Arc<KubeFixture>) -> tokio::task::JoinHandle<()> {
    let fixture = Arc::clone(fixture);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(150)).await;
            roll_out_daemonsets(&fixture);
        }
    })
}

/// The ownership labels a lowering puts on a `kube.object`.
pub fn owner_labels(address: &str) -> Value {
    json!({"tessera.dev/fleet": "core", "tessera.dev/address": address, "app.kubernetes.io/managed-by": "tessera"})
}
