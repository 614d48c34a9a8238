//! The pipeline-only executor through the CLI: every refusal leaves the cloud and state untouched;
//! a properly approved plan applies once and is audited; credentials never leak; read-only
//! providers send nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use assert_cmd::Command;
use common::moto::Moto;
use tessera::state::{SqliteStore, StateStore};

struct Pipe {
    dir: tempfile::TempDir,
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

impl Pipe {
    /// A repository with three approvers, a policy that makes the sim placements pipeline-only
    /// (so that the sim stands in for a cloud), and the pipeline's identity.
    fn new() -> Self {
        let p = Self { dir: tempfile::tempdir().unwrap() };
        for who in ["alice", "bob", "carol"] {
            p.run(&["keygen", "--out", who]).assert().success();
        }
        let key = |who: &str| std::fs::read_to_string(p.path(&format!("{who}.pub"))).unwrap().trim().to_string();
        let policy = format!(
            "apiVersion: tessera.dev/v1alpha1
kind: Policy
approvers:
  - {{ name: alice, key: {}, lanes: [infra] }}
  - {{ name: bob, key: {}, lanes: [infra] }}
  - {{ name: carol, key: {}, lanes: [local] }}
lanes:
  - {{ name: infra, approvals: 2, providers: [sim, eks], placements: [\"*\"] }}
  - {{ name: local, approvals: 1, providers: [kind] }}
escalations:
  - {{ actions: [delete, replace], types: [\"*.cluster\"], approvals: 2 }}
pipelineOnly:
  providers: [sim, eks]
",
            key("alice"),
            key("bob"),
            key("carol")
        );
        std::fs::write(p.path("policy.yaml"), policy).unwrap();
        p.run(&["creds", "identity", "--out", "pipeline.key"]).assert().success();
        std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/quickstart.yaml"), p.path("fleet.yaml"))
            .unwrap();
        p
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Command {
        let mut c = Command::cargo_bin("tessera").unwrap();
        c.current_dir(self.dir.path())
            .args(args)
            .env("TESSERA_STATE", "sqlite://state.db")
            .env("TESSERA_SIM_CLOUD", "sim.db")
            .env("TESSERA_SIM_TIME_SCALE", "0")
            .env_remove("TESSERA_PIPELINE_IDENTITY")
            .env("NO_COLOR", "1");
        c
    }

    fn plan(&self, name: &str) -> String {
        self.run(&["plan", "fleet.yaml", "-o", name]).assert().success();
        name.to_string()
    }

    fn approve(&self, plan: &str, who: &str) {
        self.run(&["approve", plan, "--key", who]).assert().success();
    }

    fn pipeline_apply(&self, plan: &str) -> Output {
        self.run(&["pipeline", "apply", plan, "--identity-file", "pipeline.key"]).output().unwrap()
    }

    /// What the cloud holds and the state's serial: a refusal must change neither.
    fn snapshot(&self) -> (Vec<String>, serde_json::Value) {
        let sim = self.path("sim.db");
        let mut ids: Vec<String> = if sim.exists() {
            tessera_sim::SimCloud::durable(&sim, Default::default())
                .unwrap()
                .resources()
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect()
        } else {
            Vec::new()
        };
        ids.sort();
        let out = self.run(&["state", "list", "--output", "json"]).output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (ids, v["meta"]["serial"].clone())
    }

    /// Nothing in the cloud, nothing in state.
    fn untouched(&self) -> bool {
        let sim = self.path("sim.db");
        let cloud_empty = !sim.exists()
            || tessera_sim::SimCloud::durable(&sim, Default::default()).unwrap().resources().unwrap().is_empty();
        let out = self.run(&["state", "list", "--output", "json"]).output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        cloud_empty && v["resources"].as_array().unwrap().is_empty()
    }
}

#[track_caller]
fn refused(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(1), "{}", text(o));
    assert!(text(o).contains(needle), "expected `{needle}` in:\n{}", text(o));
}

#[test]
fn unsigned_bad_signature_too_few_and_wrong_lane_are_refused() {
    let p = Pipe::new();
    let plan = p.plan("plan.json");
    refused(&p.pipeline_apply(&plan), "carries no signatures");

    p.approve(&plan, "alice");
    refused(&p.pipeline_apply(&plan), "needs 2 approval(s) from lane `infra`, it has 1");

    // carol's approval is valid, but she is in the wrong lane.
    p.approve(&plan, "carol");
    refused(&p.pipeline_apply(&plan), "it has 1");

    // bob's signature over another digest does not count.
    let mut file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p.path(&plan)).unwrap()).unwrap();
    let other = p.plan("other.json");
    p.approve(&other, "bob");
    let bob: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p.path(&other)).unwrap()).unwrap();
    let mut forged = bob["approvals"][0].clone();
    forged["signature"] = serde_json::json!("00".repeat(64));
    file["approvals"].as_array_mut().unwrap().push(forged);
    std::fs::write(p.path(&plan), serde_json::to_string_pretty(&file).unwrap()).unwrap();
    refused(&p.pipeline_apply(&plan), "signature by `bob` is not valid");
    assert!(p.untouched());
}

#[test]
fn tampered_stale_replayed_workloads_and_no_identity_are_refused() {
    let p = Pipe::new();
    let plan = p.plan("plan.json");
    p.approve(&plan, "alice");
    p.approve(&plan, "bob");

    // No pipeline identity.
    let o = p.run(&["pipeline", "apply", &plan]).output().unwrap();
    refused(&o, "pipeline identity is missing");

    // One byte changed after approval.
    let original = std::fs::read_to_string(p.path(&plan)).unwrap();
    std::fs::write(p.path("tampered.json"), original.replacen("\"maxSize\": 6", "\"maxSize\": 7", 1)).unwrap();
    refused(&p.pipeline_apply("tampered.json"), "modified after it was made");

    // An application workload slipped into the spec after planning.
    let spec = std::fs::read_to_string(p.path("fleet.yaml")).unwrap();
    std::fs::write(
        p.path("fleet.yaml"),
        format!("{spec}---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{ name: web }}\n"),
    )
    .unwrap();
    refused(&p.pipeline_apply(&plan), "application workload");
    std::fs::write(p.path("fleet.yaml"), &spec).unwrap();
    assert!(p.untouched(), "no refusal touched anything");

    // Approved: applies once, is audited, and is refused as a replay afterwards.
    let ok = p.pipeline_apply(&plan);
    assert!(ok.status.success(), "{}", text(&ok));
    let before = p.snapshot();
    refused(&p.pipeline_apply(&plan), "already applied");
    assert_eq!(p.snapshot(), before, "a replay touches nothing");

    let o = p.run(&["audit", "verify"]).output().unwrap();
    assert!(o.status.success() && text(&o).contains("1 record"), "{}", text(&o));
}

#[test]
fn a_plan_is_stale_once_another_has_been_applied() {
    let p = Pipe::new();
    let first = p.plan("first.json");
    let spec = std::fs::read_to_string(p.path("fleet.yaml")).unwrap();
    std::fs::write(p.path("fleet2.yaml"), spec.replace("max: 6 }", "max: 7 }")).unwrap();
    p.run(&["plan", "fleet2.yaml", "-o", "second.json"]).assert().success();
    let second = "second.json".to_string();
    for plan in [&first, &second] {
        p.approve(plan, "alice");
        p.approve(plan, "bob");
    }
    assert!(p.pipeline_apply(&first).status.success());
    let before = p.snapshot();
    refused(&p.pipeline_apply(&second), "stale");
    assert_eq!(p.snapshot(), before, "a stale plan touches nothing");
}

#[test]
fn local_apply_of_a_pipeline_only_placement_is_refused() {
    let p = Pipe::new();
    let o = p.run(&["apply", "fleet.yaml", "--auto-approve"]).output().unwrap();
    refused(&o, "pipeline-only");
    assert!(text(&o).contains("tessera pipeline apply"));
    // Planning and drift stay available with read-only access.
    p.run(&["plan", "fleet.yaml"]).assert().success();
    assert!(p.untouched());
}

#[test]
fn the_audit_chain_detects_changed_removed_and_reordered_records() {
    let p = Pipe::new();
    for (i, max) in [6, 7, 8].iter().enumerate() {
        let spec =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/quickstart.yaml")).unwrap();
        std::fs::write(p.path("fleet.yaml"), spec.replace("max: 6 }", &format!("max: {max} }}"))).unwrap();
        let plan = p.plan(&format!("p{i}.json"));
        p.approve(&plan, "alice");
        p.approve(&plan, "bob");
        assert!(p.pipeline_apply(&plan).status.success());
    }
    p.run(&["audit", "verify"]).assert().success();
    let db = p.path("state.db");
    let tamper = |sql: &str, expect: &str| {
        let backup = std::fs::read(&db).unwrap();
        rusqlite::Connection::open(&db).unwrap().execute_batch(sql).unwrap();
        let o = p.run(&["audit", "verify"]).output().unwrap();
        refused(&o, expect);
        std::fs::write(&db, backup).unwrap();
        for ext in ["db-wal", "db-shm"] {
            let _ = std::fs::remove_file(p.path(&format!("state.{ext}")));
        }
    };
    tamper("UPDATE audit SET record = replace(record, 'alice', 'mallory') WHERE seq = 2", "record 2 was changed");
    tamper("DELETE FROM audit WHERE seq = 2", "removed or reordered");
    tamper(
        "UPDATE audit SET seq = 10 WHERE seq = 1; UPDATE audit SET seq = 1 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 10;",
        "removed or reordered",
    );
    tamper("DELETE FROM audit WHERE seq = 3", "newest audit records were removed");
    p.run(&["audit", "verify"]).assert().success();
}

/// A local HTTP server that only counts the requests it gets.
fn counting_server() -> (String, Arc<AtomicUsize>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}", server.server_addr().to_ip().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for req in server.incoming_requests() {
            c.fetch_add(1, Ordering::SeqCst);
            let _ = req.respond(tiny_http::Response::from_string("{}").with_status_code(500));
        }
    });
    (url, count)
}

/// A registry whose EKS backend talks to `url` with dummy keys.
fn eks_registry(url: &str) -> tessera::providers::Registry {
    tessera::providers::Registry::new(Arc::new(tessera_sim::SimCloud::in_memory(Default::default())), 0.0).with_eks(
        tessera_eks::EksSettings {
            endpoint_url: Some(url.to_string()),
            static_credentials: Some(("k".into(), "s".into())),
            ..Default::default()
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_providers_send_no_request() {
    let (url, count) = counting_server();
    // Provider layer: a mutation is refused before any request.
    let registry = eks_registry(&url).with_read_only(Arc::new(|_placement: &str, kind: &str| kind == "eks"));
    let provider = tessera_provider_api::ProviderRef::new("eks", "eu-west-1");
    let eks = registry.for_placement(&provider, "a").unwrap();
    let spec = tessera_provider_api::ResourceSpec::new("a/eks.vpc/main".parse().unwrap(), provider.clone())
        .attr("cidr", "10.0.0.0/16");
    let err = eks.create(&spec).await.unwrap_err();
    assert!(matches!(err, tessera_provider_api::ProviderError::ReadOnly(_)), "{err}");
    assert!(eks.delete("eks.vpc", &"vpc-1".to_string()).await.is_err());
    assert_eq!(count.load(Ordering::SeqCst), 0, "no request reached the server");

    // CLI: `tessera apply` of an EKS fleet from a laptop, with a policy present.
    let p = Pipe::new();
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/eks-two-clusters.yaml"), p.path("eks.yaml"))
        .unwrap();
    let o = p.run(&["apply", "eks.yaml", "--auto-approve"]).env("AWS_ENDPOINT_URL", &url).output().unwrap();
    refused(&o, "pipeline-only");
    let o = p.run(&["destroy", "eks.yaml", "--auto-approve"]).env("AWS_ENDPOINT_URL", &url).output().unwrap();
    assert!(o.status.success(), "nothing recorded, nothing to destroy: {}", text(&o));
    assert_eq!(count.load(Ordering::SeqCst), 0, "no request reached the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_credentials_never_reach_state_logs_or_plans() {
    const SECRET: &str = "tEsSeRa-SeCrEt-7c1f0e9a4b2d";
    let moto = Moto::start();
    let p = Pipe::new();
    let spec = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/eks-two-clusters.yaml"))
        .unwrap()
        .replace("    - { name: us, provider: eks, region: us-east-2 }\n", "");
    std::fs::write(p.path("fleet.yaml"), spec).unwrap();
    // Every backend's section carries the same secret, so the grep below covers each of them.
    std::fs::write(
        p.path("creds.yaml"),
        format!(
            "aws: {{ accessKeyId: AKIATESSERA, secretAccessKey: {SECRET} }}\n\
             azure: {{ tenantId: t, clientId: c, clientSecret: {SECRET} }}\n\
             gcp: {{ serviceAccountKey: {SECRET} }}\n"
        ),
    )
    .unwrap();
    let identity = std::fs::read_to_string(p.path("pipeline.key")).unwrap();
    let recipient = age_recipient(&identity);
    p.run(&["creds", "seal", "--recipient", &recipient, "--in", "creds.yaml", "--out", "creds.age"]).assert().success();
    std::fs::remove_file(p.path("creds.yaml")).unwrap();

    let plan = p.plan("plan.json");
    p.approve(&plan, "alice");
    p.approve(&plan, "bob");
    let out = p
        .run(&["pipeline", "apply", &plan, "--creds", "creds.age", "--log", "trace"])
        .env("TESSERA_PIPELINE_IDENTITY", identity.trim())
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let store = SqliteStore::open(&p.path("state.db")).unwrap();
    assert_eq!(store.resources().await.unwrap().len(), 9, "the cluster was built with the sealed credentials");
    drop(store);

    let needle = SECRET.as_bytes();
    let leaks = |bytes: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(!leaks(&out.stdout) && !leaks(&out.stderr), "secret in the logs");
    for file in ["state.db", "state.db-wal", "plan.json", "creds.age", "sim.db"] {
        if let Ok(bytes) = std::fs::read(p.path(file)) {
            assert!(!leaks(&bytes), "secret in {file}");
        }
    }
}

/// The recipient of an age identity, via the library (the CLI printed it at creation).
fn age_recipient(identity: &str) -> String {
    use std::str::FromStr;
    let line = identity.lines().find(|l| l.starts_with("AGE-SECRET-KEY-")).unwrap();
    age::x25519::Identity::from_str(line).unwrap().to_public().to_string()
}

#[test]
fn the_example_policy_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policy.yaml");
    let policy = tessera::pipeline::Policy::load(&path).unwrap();
    assert!(policy.is_pipeline_only("aws-eu", "eks") && !policy.is_pipeline_only("local", "kind"));
}

/// A rule written for placements, not provider kinds, holds in the provider layer: the engine is
/// driven directly (no CLI and its up-front refusal), and still no request leaves the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_only_placement_pattern_is_enforced_in_the_provider_layer() {
    let (url, count) = counting_server();
    let policy = tessera::pipeline::Policy::parse(
        Path::new("policy.yaml"),
        "apiVersion: tessera.dev/v1alpha1\nkind: Policy\napprovers: []\nlanes: []\n\
         pipelineOnly:\n  providers: []\n  placements: [\"e*\"]\n",
    );
    let policy = match policy {
        Ok(p) => Arc::new(p),
        Err(e) => panic!("{e}"),
    };
    let guard = policy.clone();
    let registry = eks_registry(&url)
        .with_read_only(Arc::new(move |placement: &str, kind: &str| guard.is_pipeline_only(placement, kind)));
    let spec = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/eks-two-clusters.yaml"))
        .unwrap()
        .replace("    - { name: us, provider: eks, region: us-east-2 }\n", "");
    let fleet = tessera::spec::load_str(Path::new("eks.yaml"), &spec).unwrap();
    assert!(!policy.is_pipeline_only("", "eks"), "eks itself is not pipeline-only here: only the pattern matches");

    let store = Arc::new(tessera::state::SqliteStore::in_memory().unwrap());
    let engine = tessera::engine::Engine::new(Arc::new(registry), store);
    let plan = engine.plan(&fleet, tessera::plan::Mode::Apply).await.unwrap();
    assert!(plan.has_changes());
    let (_tx, rx) = tessera::exec::cancel_signal();
    let events = Arc::new(tessera::exec::Recorder::default());
    let report =
        engine.apply(&plan, Some(&fleet), "apply", &tessera::exec::ExecOptions::default(), events, rx).await.unwrap();
    assert_eq!(report.succeeded(), 0, "{report:?}");
    let refused = report
        .steps
        .iter()
        .filter(|s| matches!(&s.status, tessera::exec::StepStatus::Failed(m) if m.contains("read-only")))
        .count();
    assert!(refused > 0, "{report:?}");
    assert_eq!(count.load(Ordering::SeqCst), 0, "no request reached the server");
}
