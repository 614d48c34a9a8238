//! The driver against an executable stand-in for `kind` (`tests/standin/kind.sh`): our
//! argument building and error handling only, not kind itself.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::json;
use tessera_kind::{KindBackend, KindProvider, KindSettings, lower};
use tessera_provider_api::{Backend, ProviderError, ProviderExt, ProviderRef, ResourceSpec};

struct Standin {
    bin: tempfile::TempDir,
    state: tempfile::TempDir,
}

impl Standin {
    fn new(mode: &str) -> Self {
        let bin = tempfile::tempdir().unwrap();
        let script = bin.path().join("kind");
        std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/standin/kind.sh"), &script).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(bin.path().join("mode"), mode).unwrap();
        Self { bin, state: tempfile::tempdir().unwrap() }
    }

    fn mode(&self, mode: &str) {
        std::fs::write(self.bin.path().join("mode"), mode).unwrap();
    }

    fn provider(&self) -> KindProvider {
        KindProvider::new(self.settings(Some(self.bin.path().join("kind"))))
    }

    /// `t` lowered as compile lowers it: by the backend, with these settings.
    fn lower(&self, t: &tessera_provider_api::ClusterTemplate) -> Vec<ResourceSpec> {
        let mut settings = tessera_provider_api::Extensions::default();
        settings.insert(self.settings(None));
        let mut specs = KindBackend.lower(t, &ProviderRef::new("kind", ""), &settings);
        // As the engine does: the type's schema fills the rules lowering no longer writes.
        let schemas = KindBackend.schemas();
        for spec in &mut specs {
            schemas.iter().find(|s| s.rtype == spec.rtype()).unwrap().stamp(spec);
        }
        specs
    }

    fn settings(&self, binary: Option<PathBuf>) -> KindSettings {
        KindSettings { binary, state_dir: self.state.path().to_path_buf(), wait: "5m".into() }
    }

    fn args(&self) -> Vec<String> {
        std::fs::read_to_string(self.bin.path().join("args.log"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    fn add_cluster(&self, name: &str) {
        std::fs::write(self.bin.path().join("clusters"), format!("{name}\n")).unwrap();
    }

    fn state_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if e.path().is_dir() { walk(&e.path(), out) } else { out.push(e.path()) }
            }
        }
        let mut out = Vec::new();
        walk(self.state.path(), &mut out);
        out
    }
}

fn spec(s: &Standin, pools: Vec<tessera_provider_api::PoolTemplate>) -> ResourceSpec {
    s.lower(&common::template("1.35", pools, true)).remove(0)
}

fn system() -> Vec<tessera_provider_api::PoolTemplate> {
    vec![common::pool("system", 1, &[], Vec::new())]
}

fn fatal(r: Result<impl std::fmt::Debug, ProviderError>) -> String {
    match r {
        Err(ProviderError::Fatal(m)) => m,
        other => panic!("expected a fatal error, got {other:?}"),
    }
}

#[tokio::test]
async fn create_runs_the_documented_command_and_reports_endpoint_and_ca_but_never_the_key() {
    let s = Standin::new("");
    let p = s.provider();
    let spec = spec(&s, system());
    let observed = p.create(&spec).await.unwrap();
    let args = s.args();
    assert_eq!(args[..2], ["version", "get clusters"], "preflight first: {args:?}");
    let config = s.state.path().join("f-local/config.json");
    let kc = std::fs::read_to_string(s.bin.path().join("last-kubeconfig-path")).unwrap().trim().to_string();
    assert_eq!(
        args[2],
        format!("create cluster --name f-local --config {} --kubeconfig {kc} --wait 5m", config.display())
    );
    let passed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.bin.path().join("last-config.json")).unwrap()).unwrap();
    assert_eq!(passed, spec.attrs["config"], "kind got the lowered config");
    assert!(!Path::new(&kc).exists(), "the admin kubeconfig kind wrote is removed");
    assert_eq!(observed.id, "f-local");
    assert_eq!(observed.attrs["endpoint"], json!("https://127.0.0.1:40123"));
    assert_eq!(
        observed.attrs["certificateAuthority"],
        json!("TFMwdExTMUNSVWRKVGlCRFJWSlVTVVpKUTBGVVJTMHRMUzB0Q2c9PQ==")
    );
    assert_eq!(observed.attrs["name"], json!("f-local"));
    assert_eq!(observed.attrs["tags"], spec.attrs["tags"]);
    assert!(
        !serde_json::to_string(&observed).unwrap().contains("U1RBTkRJTi1DTElFTlQtS0VZ"),
        "no client key in what state records"
    );
    for f in s.state_files() {
        assert!(
            !std::fs::read_to_string(&f).unwrap().contains("U1RBTkRJTi1DTElFTlQtS0VZ"),
            "{} holds the key",
            f.display()
        );
    }
    let policy = std::fs::read_to_string(s.state.path().join("f-local/audit-policy.yaml")).unwrap();
    assert!(policy.contains("audit.k8s.io/v1") && policy.contains("Metadata"), "{policy}");
}

#[tokio::test]
async fn a_create_repeated_after_a_crash_adopts_the_cluster_it_made() {
    let s = Standin::new("");
    let p = s.provider();
    let spec = spec(&s, system());
    let first = p.create(&spec).await.unwrap();
    let again = p.create(&spec).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(s.args().iter().filter(|a| a.starts_with("create cluster")).count(), 1, "{:?}", s.args());
    assert_eq!(p.find(&spec).await.unwrap(), Some(first.clone()), "recovery finds it too");
    // kind says the nodes exist although `get clusters` did not list them yet: adopted as well.
    s.mode("exists-on-create");
    std::fs::write(s.bin.path().join("clusters"), "").unwrap();
    let err = fatal(p.create(&spec).await.map(|_| ()));
    assert!(err.contains("could not locate any control plane"), "adoption reads the cluster: {err}");
}

#[tokio::test]
async fn an_existing_cluster_with_another_config_or_made_elsewhere_is_refused() {
    let s = Standin::new("");
    let p = s.provider();
    p.create(&spec(&s, system())).await.unwrap();
    let bigger = spec(&s, vec![common::pool("system", 2, &[], Vec::new())]);
    let err = fatal(p.create(&bigger).await);
    assert!(
        err.contains("already exists, made with another config") && err.contains("kind delete cluster --name f-local"),
        "{err}"
    );
    assert_eq!(p.find(&bigger).await.unwrap(), None);

    let other = Standin::new("");
    other.add_cluster("f-local");
    let q = other.provider();
    let err = fatal(q.create(&spec(&other, system())).await);
    assert!(err.contains("made not by Tessera"), "{err}");
    assert!(!other.args().iter().any(|a| a.starts_with("create cluster")));
}

#[tokio::test]
async fn kind_missing_is_one_clear_error_and_nothing_is_written() {
    let s = Standin::new("");
    let p = KindProvider::new(s.settings(Some(s.bin.path().join("no-such-kind"))));
    let err = fatal(p.create(&spec(&s, system())).await);
    assert!(err.starts_with("kind is not installed"), "{err}");
    assert!(
        err.contains("https://kind.sigs.k8s.io/docs/user/quick-start/#installation") && err.contains("TESSERA_KIND"),
        "{err}"
    );
    assert!(s.state_files().is_empty());
    assert!(
        fatal(p.delete(&spec(&s, system()).address, &"f-local".to_string()).await).starts_with("kind is not installed")
    );
}

#[tokio::test]
async fn docker_not_running_is_one_clear_error_before_anything_is_written() {
    let s = Standin::new("docker-down");
    let p = s.provider();
    let err = fatal(p.create(&spec(&s, system())).await);
    assert!(err.starts_with("Docker is not running"), "{err}");
    assert!(err.contains("Cannot connect to the Docker daemon"), "kind's words are kept: {err}");
    assert_eq!(s.args(), ["version", "get clusters"]);
    assert!(s.state_files().is_empty());
    assert!(matches!(p.preflight().await, Err(ProviderError::Fatal(_))));
}

#[tokio::test]
async fn any_other_failure_is_fatal_with_kinds_error_line_and_leaves_no_record() {
    let s = Standin::new("create-fails");
    let p = s.provider();
    let err = fatal(p.create(&spec(&s, system())).await);
    assert_eq!(
        err,
        "`kind create cluster` failed: ERROR: failed to create cluster: failed to pull image \"kindest/node\": command \"docker pull\" failed with error: exit status 1"
    );
    assert!(s.state_files().is_empty(), "{:?}", s.state_files());
}

#[tokio::test]
async fn read_lists_then_reads_the_kubeconfig_and_a_missing_cluster_is_none() {
    let s = Standin::new("");
    let p = s.provider();
    assert_eq!(p.read(lower::CLUSTER, &"f-local".to_string()).await.unwrap(), None);
    let made = p.create(&spec(&s, system())).await.unwrap();
    assert_eq!(p.read(lower::CLUSTER, &"f-local".to_string()).await.unwrap(), Some(made));
    assert!(s.args().iter().any(|a| a == "get kubeconfig --name f-local"));
    assert!(fatal(p.read("kind.nodepool", &"x".to_string()).await).contains("no resource type"));
}

#[tokio::test]
async fn delete_removes_the_cluster_and_its_record_and_a_missing_cluster_is_already_gone() {
    let s = Standin::new("");
    let p = s.provider();
    p.delete(&spec(&s, system()).address, &"f-local".to_string()).await.unwrap();
    assert!(!s.args().iter().any(|a| a.starts_with("delete cluster")), "nothing to delete: {:?}", s.args());
    p.create(&spec(&s, system())).await.unwrap();
    p.delete(&spec(&s, system()).address, &"f-local".to_string()).await.unwrap();
    assert!(s.args().iter().any(|a| a == "delete cluster --name f-local"));
    assert!(s.state_files().is_empty());
    assert_eq!(p.read(lower::CLUSTER, &"f-local".to_string()).await.unwrap(), None);
}

#[tokio::test]
async fn only_the_tags_change_in_place() {
    let s = Standin::new("");
    let p = s.provider();
    let mut spec = spec(&s, system());
    p.create(&spec).await.unwrap();
    spec.set_generation(1);
    let updated = p.update(&spec, &"f-local".to_string(), &["tags".into()]).await.unwrap();
    assert_eq!(updated.attrs["tags"], spec.attrs["tags"]);
    let err = fatal(p.update(&spec, &"f-local".to_string(), &["config".into()]).await);
    assert!(err.contains("cannot change `config`") && err.contains("replaced"), "{err}");
}

#[test]
fn lowering_is_one_cluster_that_is_replaced_when_its_pools_change() {
    let s = Standin::new("");
    let _p = s.provider();
    let specs = s.lower(&common::template("1.35", system(), true));
    assert_eq!(specs.len(), 1);
    let c = &specs[0];
    assert_eq!(c.address.to_string(), "local/kind.cluster/main");
    assert_eq!(c.replacement, tessera_provider_api::Replacement::DestroyBeforeCreate);
    for f in ["name", "config", "image", "version"] {
        assert!(c.replace_on.iter().any(|r| r == f), "{f}");
    }
    for o in ["endpoint", "certificateAuthority", "name"] {
        assert!(c.has_output(o), "{o}");
    }
    let t = common::template("1.35", system(), true);
    let access = KindBackend.kube_access(&t, &ProviderRef::new("kind", "")).unwrap();
    assert_eq!(access.provider.kind, "kube");
    assert_eq!(access.provider.connection, Some(c.address.clone()));
    assert_eq!(access.provider.scope.get("auth").map(String::as_str), Some("kind"));
    assert_eq!(access.after, std::slice::from_ref(&c.address));
}
