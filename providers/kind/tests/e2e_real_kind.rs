//! End to end on a real kind and Docker: create, read, delete one small cluster. Runs only
//! where `docker info` and `kind version` succeed; elsewhere it prints `skipped: no docker/kind`
//! and returns, which verifies nothing (the test's name says so). Core services and
//! `tessera verify` on the cluster are the engine's end-to-end test, not this crate's.

mod common;

use std::process::{Command, Stdio};

use tessera_kind::{KindProvider, KindSettings, lower};
use tessera_provider_api::{Provider, ProviderRef};

fn succeeds(program: &str, arg: &str) -> bool {
    Command::new(program).arg(arg).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

#[tokio::test]
async fn real_kind_end_to_end_or_skipped_which_is_not_a_pass() {
    let kind = std::env::var("TESSERA_KIND").unwrap_or_else(|_| "kind".into());
    if !(succeeds("docker", "info") && succeeds(&kind, "version")) {
        println!("skipped: no docker/kind");
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let p = KindProvider::new(KindSettings { state_dir: state.path().to_path_buf(), ..KindSettings::default() });
    let mut t = common::template("1.35", vec![common::pool("system", 0, &[], Vec::new())], true);
    t.fleet = format!("tessera-e2e-{}", std::process::id());
    let spec = p.lower(&t, &ProviderRef::new("kind", "")).remove(0);
    let id = spec.attrs["name"].as_str().unwrap().to_string();
    let made = p.create(&spec).await;
    let read = p.read(lower::CLUSTER, &id).await;
    let deleted = p.delete(lower::CLUSTER, &id).await;
    let made = made.unwrap();
    assert!(made.attrs["endpoint"].as_str().unwrap().starts_with("https://127.0.0.1:"), "{made:?}");
    assert_eq!(read.unwrap(), Some(made));
    deleted.unwrap();
    assert_eq!(p.read(lower::CLUSTER, &id).await.unwrap(), None);
}
