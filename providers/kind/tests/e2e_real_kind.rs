//! End to end on a real kind and Docker: create, read, delete one small cluster. Ignored by
//! default; `scripts/test` runs it only where `docker info` and `kind version` succeed, and
//! prints `skipped: no docker/kind` otherwise, so a machine without them never counts it as a
//! pass. Run by hand, it fails when either is missing. Core services and `tessera verify` on
//! the cluster are the engine's end-to-end test (`tests/kind_e2e.rs`).

mod common;

use std::process::{Command, Stdio};

use tessera_kind::{KindBackend, KindProvider, KindSettings, lower};
use tessera_provider_api::{Backend, ProviderExt, ProviderRef};

fn succeeds(program: &str, arg: &str) -> bool {
    Command::new(program).arg(arg).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

#[tokio::test]
#[ignore = "needs Docker and kind: scripts/test runs it where both answer"]
async fn kind_e2e_real_cluster_create_read_delete() {
    let kind = std::env::var("TESSERA_KIND").unwrap_or_else(|_| "kind".into());
    assert!(succeeds("docker", "info") && succeeds(&kind, "version"), "this test needs Docker and kind");
    let state = tempfile::tempdir().unwrap();
    let settings = KindSettings { state_dir: state.path().to_path_buf(), ..KindSettings::default() };
    let p = KindProvider::new(settings.clone());
    let mut extensions = tessera_provider_api::Extensions::default();
    extensions.insert(settings);
    let mut t = common::template("1.35", vec![common::pool("system", 0, &[], Vec::new())], true);
    t.fleet = format!("tessera-e2e-{}", std::process::id());
    let spec = KindBackend.lower(&t, &ProviderRef::new("kind", ""), &extensions).remove(0);
    let id = spec.attrs["name"].as_str().unwrap().to_string();
    let made = p.create(&spec).await;
    let read = p.read(lower::CLUSTER, &id).await;
    let deleted = p.delete(&spec.address, &id).await;
    let made = made.unwrap();
    assert!(made.attrs["endpoint"].as_str().unwrap().starts_with("https://127.0.0.1:"), "{made:?}");
    assert_eq!(read.unwrap(), Some(made));
    deleted.unwrap();
    assert_eq!(p.read(lower::CLUSTER, &id).await.unwrap(), None);
}
