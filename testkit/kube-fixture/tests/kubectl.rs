//! The fixture driven by the real kubectl (v1.35, installed by scripts/test into .tools/bin).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tessera_kube_fixture::KubeFixture;

/// `TESSERA_KUBECTL`, else `<workspace>/.tools/bin/kubectl`; never skipped.
fn kubectl_path() -> PathBuf {
    let path = std::env::var_os("TESSERA_KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/bin/kubectl"));
    assert!(path.exists(), "kubectl not found at {} (scripts/test installs it)", path.display());
    path
}

struct Kubectl {
    path: PathBuf,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Kubectl {
    fn new(fixture: &KubeFixture) -> Kubectl {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        fixture.write_kubeconfig(&kubeconfig).unwrap();
        Kubectl { path: kubectl_path(), kubeconfig, _dir: dir }
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(&self.path);
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).args(args);
        cmd.env("HOME", self._dir.path()); // its discovery cache goes there, not to ~/.kube
        if let Some(input) = stdin {
            let file = self._dir.path().join("input.yaml");
            std::fs::write(&file, input).unwrap();
            cmd.arg("-f").arg(file);
        }
        cmd.output().unwrap()
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }
}

const MANIFESTS: &str = "\
apiVersion: v1
kind: Namespace
metadata:
  name: logging
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: logging
  labels:
    app.kubernetes.io/managed-by: tessera
data:
  level: info
";

#[test]
fn kubectl_server_side_apply_get_and_delete() {
    let fixture = KubeFixture::start().unwrap();
    let kubectl = Kubectl::new(&fixture);
    let applied =
        kubectl.ok(&["apply", "--server-side", "--field-manager", "kubectl-test", "--validate=false"], Some(MANIFESTS));
    assert!(applied.contains("namespace/logging serverside-applied"), "{applied}");
    assert!(applied.contains("configmap/settings serverside-applied"), "{applied}");

    let json =
        kubectl.ok(&["get", "configmap", "settings", "-n", "logging", "-o", "json", "--show-managed-fields"], None);
    let cm: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(cm["data"]["level"], "info");
    assert_eq!(cm["metadata"]["managedFields"][0]["manager"], "kubectl-test");
    assert_eq!(cm["metadata"]["managedFields"][0]["fieldsV1"]["f:data"]["f:level"], serde_json::json!({}));

    let listed = kubectl
        .ok(&["get", "configmaps", "-n", "logging", "-l", "app.kubernetes.io/managed-by=tessera", "-o", "name"], None);
    assert_eq!(listed.trim(), "configmap/settings");

    kubectl.ok(&["delete", "configmap", "settings", "-n", "logging"], None);
    assert!(fixture.get("v1", "ConfigMap", Some("logging"), "settings").is_none());
    fixture.assert_no_rejections();
}

#[test]
fn kubectl_sees_an_invalid_object_refused() {
    let fixture = KubeFixture::start().unwrap();
    let kubectl = Kubectl::new(&fixture);
    let bad =
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: x\n  namespace: default\nautomountToken: true\n";
    let out = kubectl.run(&["apply", "--server-side", "--validate=false"], Some(bad));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is invalid") && stderr.contains("automountToken"), "{stderr}");
    assert_eq!(fixture.rejections().len(), 1);
}

#[test]
fn kubectl_wait_watches_a_crd_until_established() {
    let fixture = KubeFixture::builder().crd_established_after(std::time::Duration::from_millis(500)).start().unwrap();
    let kubectl = Kubectl::new(&fixture);
    let crd = std::fs::read_to_string(
        tessera_kube_fixture::crds::shared_k8s_dir().join("crds/logging-extensions.banzaicloud.io_hosttailers.yaml"),
    )
    .unwrap();
    kubectl.ok(&["apply", "--server-side", "--validate=false"], Some(&crd));
    let waited = kubectl.ok(
        &["wait", "--for=condition=Established", "--timeout=20s", "crd/hosttailers.logging-extensions.banzaicloud.io"],
        None,
    );
    assert!(waited.contains("condition met"), "{waited}");
    assert!(fixture.requests().iter().any(|r| r.query.contains("watch=true")), "kubectl waited by watching");
}
