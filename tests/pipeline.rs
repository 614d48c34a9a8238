//! The pipeline-only executor through the CLI: every refusal leaves the cloud and state untouched;
//! a properly approved plan applies once and is audited; credentials never leak; read-only
//! providers send nothing. The `attack_*` tests are the four ways around the executor that someone
//! with a shell and write access to the repository had (issue 16), each refused with nothing
//! touched; the audit and replay tests run on SQLite and on PostgreSQL.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use assert_cmd::Command;
use common::moto::Moto;
use common::pipe::*;
use tessera::state::{AuditRow, SqliteStore, StateStore};
use tessera_provider_api::ProviderExt;

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
    // Reported by location only (the plan names the file; its content is not echoed), and
    // `validate` says why.
    refused(&p.pipeline_apply(&plan), "is not a valid fleet spec");
    refused(&p.run(&["validate", "fleet.yaml"]).output().unwrap(), "application workload");
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

    // `audit log | head -1`: once the reader is gone, the listing still ends quietly.
    let log = p.run(&["audit", "log"]).output().unwrap();
    assert!(String::from_utf8_lossy(&log.stdout).lines().count() >= 2, "{}", text(&log));
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("tessera"))
        .current_dir(p.dir.path())
        .args(["audit", "log"])
        .env("TESSERA_STATE", format!("sqlite://{}", p.path("state.db").display()))
        .env_remove("TESSERA_POLICY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let closed = child.wait_with_output().unwrap();
    assert!(closed.status.success(), "{}", String::from_utf8_lossy(&closed.stderr));
    assert!(!String::from_utf8_lossy(&closed.stderr).contains("panicked"));
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

/// Recomputes `prev` and `hash` along the chain, as someone rewriting it would.
fn rechain(rows: &mut [AuditRow]) {
    let mut prev = tessera::state::audit::GENESIS.to_string();
    for r in rows.iter_mut() {
        r.prev = prev.clone();
        r.hash = tessera::state::audit::chain(&r.prev, &r.record);
        prev = r.hash.clone();
    }
}

/// Three approved applies, each audited.
fn three_audited_applies(p: &Pipe) {
    let spec = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/quickstart.yaml")).unwrap();
    for (i, max) in [6, 7, 8].iter().enumerate() {
        std::fs::write(p.path("fleet.yaml"), spec.replace("max: 6 }", &format!("max: {max} }}"))).unwrap();
        let plan = p.plan(&format!("p{i}.json"));
        p.approved_apply(&plan, &["alice", "bob"]);
    }
}

fn the_audit_chain_detects_changed_removed_and_reordered_records(backend: Backend) {
    let p = Pipe::with(backend, PIPELINE_ONLY);
    three_audited_applies(&p);
    let o = p.audit_verify(&[]);
    assert!(o.status.success() && text(&o).contains("3 record(s)"), "{}", text(&o));
    let rows = p.audit_rows();
    let tamper = |sql: &str, expect: &str| {
        p.sql(sql);
        refused(&p.audit_verify(&[]), expect);
        p.write_chain(&rows);
    };
    tamper("UPDATE audit SET record = replace(record, 'alice', 'mallory') WHERE seq = 2", "record 2 was changed");
    tamper("DELETE FROM audit WHERE seq = 2", "removed or reordered");
    tamper(
        "UPDATE audit SET seq = 10 WHERE seq = 1; UPDATE audit SET seq = 1 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 10;",
        "removed or reordered",
    );
    tamper("DELETE FROM audit WHERE seq = 3", "newest audit records were removed");
    p.audit_verify(&[]).status.success().then_some(()).expect("restored");
}

/// Attack 3: with write access to the state, change a record (alice → mallory), recompute every
/// hash and the head; or remove the newest records and rewind the head. The old chain said
/// `intact` to both. Now the first fails its signature, and the second fails against the head the
/// pipeline published.
fn attack_3_a_rewritten_or_truncated_audit_chain_is_refused(backend: Backend) {
    let p = Pipe::with(backend, PIPELINE_ONLY);
    three_audited_applies(&p);
    let head = p.run(&["audit", "head"]).output().unwrap();
    assert!(head.status.success(), "{}", text(&head));
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    let rows = p.audit_rows();
    assert_eq!(rows.last().unwrap().hash, head);

    let mut rewritten = rows.clone();
    assert!(rewritten[1].record.contains("alice"));
    rewritten[1].record = rewritten[1].record.replace("alice", "mallory");
    rechain(&mut rewritten);
    p.write_chain(&rewritten);
    refused(&p.audit_verify(&[]), "audit record 2 was changed or moved: its signature does not match");

    let mut reordered = vec![rows[1].clone(), rows[0].clone(), rows[2].clone()];
    for (i, r) in reordered.iter_mut().enumerate() {
        r.seq = i as i64 + 1;
    }
    rechain(&mut reordered);
    p.write_chain(&reordered);
    refused(&p.audit_verify(&[]), "its signature does not match");

    // Truncated with the head rewound: consistent in itself, refused against the published head.
    p.write_chain(&rows[..2]);
    let alone = p.audit_verify(&[]);
    assert!(alone.status.success(), "a rewound chain is consistent in itself: {}", text(&alone));
    refused(&p.audit_verify(&["--head", &head]), "is not in the audit chain");

    // The state's policy binding removed: the chain still names the policy it was made under, and
    // no command writes to the state until the binding is restored (from a backup).
    p.write_chain(&rows);
    let binding = p.bound_policy_row();
    p.sql("DELETE FROM policy");
    refused(&p.audit_verify(&[]), "state is bound to no policy");
    refused(&p.run(&["apply", "fleet.yaml", "--auto-approve"]).output().unwrap(), "no policy binding");
    p.sql(&binding);

    // Restored: intact, and the published head is the newest record.
    let again = p.run(&["apply", "fleet.yaml", "--auto-approve"]).output().unwrap();
    assert!(again.status.success(), "{}", text(&again));
    let o = p.audit_verify(&["--head", &head]);
    assert!(o.status.success() && text(&o).contains("0 record(s) after it"), "{}", text(&o));
}

/// A replay is refused (the plan's digest is claimed in state) and touches nothing.
fn a_plan_is_applied_once(backend: Backend) {
    let p = Pipe::with(backend, PIPELINE_ONLY);
    let plan = p.plan("plan.json");
    p.approved_apply(&plan, &["alice", "bob"]);
    let before = p.snapshot();
    refused(&p.pipeline_apply(&plan), "already applied");
    assert_eq!(p.snapshot(), before, "a replay touches nothing");
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(super::Backend::Sqlite)
            }
            #[test]
            fn postgres() {
                super::$name(super::Backend::Postgres)
            }
        }
    )*};
}

on_both_backends!(
    the_audit_chain_detects_changed_removed_and_reordered_records,
    attack_3_a_rewritten_or_truncated_audit_chain_is_refused,
    a_plan_is_applied_once,
);

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
    let registry = eks_registry(&url)
        .with_read_only(Arc::new(|_placement: &str, r: &tessera_provider_api::ProviderRef| r.kind == "eks"));
    let provider = tessera_provider_api::ProviderRef::new("eks", "eu-west-1");
    let eks = registry.for_placement(&provider, "a").unwrap();
    let spec = tessera_provider_api::ResourceSpec::new("a/eks.vpc/main".parse().unwrap(), provider.clone())
        .attr("cidr", "10.0.0.0/16");
    let err = eks.create(&spec).await.unwrap_err();
    assert!(matches!(err, tessera_provider_api::ProviderError::ReadOnly(_)), "{err}");
    assert!(eks.delete(&spec.address, &"vpc-1".to_string()).await.is_err());
    assert_eq!(count.load(Ordering::SeqCst), 0, "no request reached the server");

    // CLI: `tessera apply` of an EKS fleet from a laptop, with a policy present.
    let p = Pipe::new();
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/eks-two-clusters.yaml"), p.path("eks.yaml"))
        .unwrap();
    let o = p.run(&["apply", "eks.yaml", "--auto-approve"]).env("AWS_ENDPOINT_URL", &url).output().unwrap();
    refused(&o, "pipeline-only");
    assert_eq!(count.load(Ordering::SeqCst), 0, "no request reached the server");
}

/// A destroy with something to destroy: the CLI refuses it up front, and the engine driven
/// directly (past the CLI's check) has every delete refused in the provider layer. The sim cloud
/// still holds every object afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destroy_of_existing_pipeline_only_resources_is_refused_in_both_layers() {
    let p = Pipe::new();
    let plan = p.plan("plan.json");
    p.approved_apply(&plan, &["alice", "bob"]);
    let before = p.snapshot();
    assert!(!before.0.is_empty(), "the pipeline built something to destroy");

    let o = p.run(&["destroy", "fleet.yaml", "--auto-approve"]).output().unwrap();
    refused(&o, "pipeline-only");
    assert_eq!(p.snapshot(), before, "the CLI's refusal touched nothing");

    let policy = Arc::new(tessera::pipeline::Policy::load(&p.path("policy.yaml")).unwrap());
    let cloud = Arc::new(tessera_sim::SimCloud::durable(&p.path("sim.db"), Default::default()).unwrap());
    let registry = tessera::providers::Registry::new(cloud, 0.0).with_read_only(policy.read_only_guard());
    let store = Arc::new(SqliteStore::open(&p.path("state.db")).unwrap());
    let engine = tessera::engine::Engine::new(Arc::new(registry), store);
    let fleet = tessera::spec::load(&p.path("fleet.yaml")).unwrap();
    let destroy = engine.plan(&fleet, tessera::plan::Mode::Destroy).await.unwrap();
    assert!(destroy.is_complete() && destroy.destroy && !destroy.actions.is_empty(), "{:?}", destroy.unknown);
    let (_tx, rx) = tessera::exec::cancel_signal();
    let events = Arc::new(tessera::exec::Recorder::default());
    let report = engine
        .apply(&destroy, Some(&fleet), "destroy", &tessera::exec::ExecOptions::default(), events, rx)
        .await
        .unwrap();
    assert_eq!(report.succeeded(), 0, "{report:?}");
    assert!(
        report
            .steps
            .iter()
            .any(|s| matches!(&s.status, tessera::exec::StepStatus::Failed(m) if m.contains("read-only"))),
        "{report:?}"
    );
    drop(engine);
    assert_eq!(p.snapshot().0, before.0, "every object is still in the cloud");
}

/// Attack 1: the policy failed open. From another directory, with `--state` pointing at the
/// repository's state and no policy there (or `--policy /nonexistent.yaml`, or a laxer copy), the
/// apply of a pipeline-only placement went through. Now the state names its policy.
#[test]
fn attack_1_a_missing_or_different_policy_is_refused_wherever_the_command_runs() {
    let p = Pipe::new();
    let plan = p.plan("plan.json");
    p.approved_apply(&plan, &["alice", "bob"]);
    let spec = std::fs::read_to_string(p.path("fleet.yaml")).unwrap();
    let elsewhere = p.path("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("fleet.yaml"), spec.replace("max: 6 }", "max: 9 }")).unwrap();
    let lax = std::fs::read_to_string(p.path("policy.yaml"))
        .unwrap()
        .replace(&format!("  providers: [{PIPELINE_ONLY}]\n"), "  providers: []\n");
    assert!(lax.contains("pipelineOnly:\n  providers: []\n"), "{lax}");
    std::fs::write(elsewhere.join("lax.yaml"), lax).unwrap();
    let before = p.snapshot();

    let missing = p.run_in(&elsewhere, &["apply", "fleet.yaml", "--auto-approve"]).output().unwrap();
    refused(&missing, "this state is bound to policy");
    let recorded = format!("recorded from {}", p.path("policy.yaml").display());
    assert!(
        unwrapped(&text(&missing)).contains(&unwrapped(&recorded)),
        "names the recorded policy: {}",
        text(&missing)
    );
    refused(&missing, "but policy.yaml does not exist");
    let nonexistent = p
        .run_in(&elsewhere, &["apply", "fleet.yaml", "--auto-approve", "--policy", "/nonexistent.yaml"])
        .output()
        .unwrap();
    refused(&nonexistent, "/nonexistent.yaml does not exist");
    let different =
        p.run_in(&elsewhere, &["apply", "fleet.yaml", "--auto-approve", "--policy", "lax.yaml"]).output().unwrap();
    refused(&different, "this state is bound to policy");
    refused(&p.run_in(&elsewhere, &["destroy", "fleet.yaml", "--auto-approve"]).output().unwrap(), "bound to policy");
    refused(&p.run_in(&elsewhere, &["plan", "fleet.yaml"]).output().unwrap(), "bound to policy");
    assert_eq!(p.snapshot(), before, "no refusal touched anything");

    // With the recorded policy, from anywhere: the rules hold.
    let path = p.path("policy.yaml").display().to_string();
    let o = p.run_in(&elsewhere, &["apply", "fleet.yaml", "--auto-approve", "--policy", &path]).output().unwrap();
    refused(&o, "pipeline-only");
    assert_eq!(p.snapshot(), before);
}

/// Attack 2: any age identity passed as the pipeline's. Now the policy pins the recipient, and a
/// challenge sealed to it must be opened.
#[test]
fn attack_2_another_identity_is_not_the_pipeline() {
    let p = Pipe::new();
    let plan = p.plan("plan.json");
    p.approve(&plan, "alice");
    p.approve(&plan, "bob");
    p.run(&["creds", "identity", "--out", "other.key"]).assert().success();
    let o = p.run(&["pipeline", "apply", &plan, "--identity-file", "other.key"]).output().unwrap();
    refused(&o, "this identity is not the pipeline's");
    assert!(p.untouched());
    // The same through the environment.
    let other = std::fs::read_to_string(p.path("other.key")).unwrap();
    let o = p.run(&["pipeline", "apply", &plan]).env("TESSERA_PIPELINE_IDENTITY", other.trim()).output().unwrap();
    refused(&o, "not the pipeline's");
    assert!(p.untouched());
    // A policy with no pinned pipeline refuses every identity.
    let unpinned: String = std::fs::read_to_string(p.path("policy.yaml"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("pipeline:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(p.path("policy.yaml"), unpinned).unwrap();
    refused(&p.pipeline_apply(&plan), "pins no pipeline identity");
    assert!(p.untouched());
}

/// A local HTTP server that records the `Authorization` header of every request and refuses it.
fn recording_server() -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}", server.server_addr().to_ip().unwrap());
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    std::thread::spawn(move || {
        for req in server.incoming_requests() {
            let auth = req
                .headers()
                .iter()
                .find(|h| h.field.equiv("Authorization"))
                .map(|h| h.value.to_string())
                .unwrap_or_default();
            s.lock().unwrap().push(auth);
            let _ = req.respond(tiny_http::Response::from_string("{}").with_status_code(403));
        }
    });
    (url, seen)
}

/// Attack 2, the cloud half: `pipeline apply` of an eks plan made mutating AWS calls with the
/// environment's credentials. Now the sealed file is the only source: without its `aws` section
/// the run is refused before any request, and with it every request is signed with the sealed
/// key, never the ambient one.
#[test]
fn attack_2_ambient_aws_credentials_are_ignored_in_the_pipeline() {
    let (url, seen) = recording_server();
    let p = Pipe::new();
    let spec = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/eks-two-clusters.yaml"))
        .unwrap()
        .replace("    - { name: us, provider: eks, region: us-east-2 }\n", "");
    // Only the cloud's own resources: core services talk to the cluster, not to AWS.
    std::fs::write(p.path("fleet.yaml"), common::without_core_services(&spec)).unwrap();
    let plan = p.plan("plan.json");
    p.approve(&plan, "alice");
    p.approve(&plan, "bob");
    let ambient = |c: &mut Command| {
        c.env("AWS_ENDPOINT_URL", &url)
            .env("AWS_ACCESS_KEY_ID", "AKIAAMBIENTXXXXXXXXX")
            .env("AWS_SECRET_ACCESS_KEY", "ambient-secret")
            .env("AWS_REGION", "eu-west-1");
    };
    let mut c = p.run(&["pipeline", "apply", &plan, "--identity-file", "pipeline.key"]);
    ambient(&mut c);
    let o = c.output().unwrap();
    refused(&o, "the sealed credentials have no `aws` section");
    assert!(seen.lock().unwrap().is_empty(), "no request left the process: {:?}", seen.lock().unwrap());

    let identity = std::fs::read_to_string(p.path("pipeline.key")).unwrap();
    std::fs::write(
        p.path("creds.yaml"),
        "aws: { accessKeyId: AKIASEALEDXXXXXXXXXX, secretAccessKey: sealed-secret }\n",
    )
    .unwrap();
    let recipient = age_recipient(&identity);
    p.run(&["creds", "seal", "--recipient", &recipient, "--in", "creds.yaml", "--out", "creds.age"]).assert().success();
    let mut c = p.run(&["pipeline", "apply", &plan, "--identity-file", "pipeline.key", "--creds", "creds.age"]);
    ambient(&mut c);
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(1), "the server refuses everything: {}", text(&o));
    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty(), "the run reached the server: {}", text(&o));
    for auth in seen.iter() {
        assert!(auth.contains("Credential=AKIASEALEDXXXXXXXXXX/"), "signed with the sealed key: {auth}");
        assert!(!auth.contains("AKIAAMBIENT"), "never with the ambient key: {auth}");
    }
}

/// Attack 4: the plan digest was a checksum, not a seal: edit `maxSize` into a saved plan,
/// recompute its SHA-256, and `apply --plan` applied it. Under a policy `apply --plan` now needs a
/// signature by one of its approvers, which no re-hashing can produce.
#[test]
fn attack_4_an_edited_and_rehashed_plan_is_refused_by_apply_plan() {
    // The sim is not pipeline-only here, so `apply --plan` may run locally at all.
    let p = Pipe::with(Backend::Sqlite, "eks");
    let plan = p.plan("plan.json");
    let rehash = |from: &str, to: &str| {
        let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p.path(from)).unwrap()).unwrap();
        let edited = serde_json::to_string(&file["plan"]).unwrap().replacen("\"maxSize\":6", "\"maxSize\":99", 1);
        assert!(edited.contains("\"maxSize\":99"));
        let plan: tessera::plan::Plan = serde_json::from_str(&edited).unwrap();
        let mut forged = tessera::plan::PlanFile::new(plan);
        forged.approvals = serde_json::from_value(file["approvals"].clone()).unwrap_or_default();
        forged.save(&p.path(to)).unwrap();
    };
    rehash(&plan, "forged.json");
    refused(&p.run(&["apply", "--plan", "forged.json"]).output().unwrap(), "carries no signatures");
    assert!(p.untouched());

    // Signed, then edited and re-hashed: the signature is over the old digest.
    p.approve(&plan, "alice");
    rehash(&plan, "forged-signed.json");
    refused(&p.run(&["apply", "--plan", "forged-signed.json"]).output().unwrap(), "signature by `alice` is not valid");
    assert!(p.untouched());

    let o = p.run(&["apply", "--plan", &plan]).output().unwrap();
    assert!(o.status.success(), "the signed plan applies: {}", text(&o));
}

/// The escalation is stricter than the lane: deleting clusters needs 3 infrastructure approvals
/// where creating them needs 2.
#[test]
fn an_escalation_needs_more_approvals_than_its_lane() {
    let p = Pipe::new();
    let plan = p.plan("plan.json");
    p.approved_apply(&plan, &["alice", "bob"]);
    p.run(&["plan", "fleet.yaml", "--destroy", "-o", "destroy.json"]).assert().success();
    p.approve("destroy.json", "alice");
    p.approve("destroy.json", "bob");
    let before = p.snapshot();
    refused(&p.pipeline_apply("destroy.json"), "needs 3 approval(s) from lane `infra`, it has 2");
    assert_eq!(p.snapshot(), before, "the refusal touched nothing");
    p.approve("destroy.json", "dave");
    let o = p.pipeline_apply("destroy.json");
    assert!(o.status.success(), "{}", text(&o));
    assert!(p.untouched(), "everything was destroyed");
}

/// A policy change is a pipeline apply approved in the lane the bound policy names; until it is
/// applied the new file is refused, and afterwards the old one is.
#[test]
fn the_policy_changes_only_through_an_approved_pipeline_apply() {
    let p = Pipe::new();
    let plan = p.plan("plan.json");
    p.approved_apply(&plan, &["alice", "bob"]);
    let old = std::fs::read_to_string(p.path("policy.yaml")).unwrap();
    let new = old.replace("approvals: 2, providers: [sim,", "approvals: 3, providers: [sim,");
    assert_ne!(old, new);
    std::fs::write(p.path("next.yaml"), &new).unwrap();
    refused(&p.run(&["plan", "fleet.yaml", "--policy", "next.yaml"]).output().unwrap(), "bound to policy");

    p.run(&["policy", "plan", "next.yaml", "-o", "change.json"]).assert().success();
    p.approve("change.json", "alice");
    p.approve("change.json", "carol");
    std::fs::write(p.path("policy.yaml"), &new).unwrap();
    refused(&p.pipeline_apply("change.json"), "needs 2 approval(s) from lane `infra`, it has 1");
    p.approve("change.json", "bob");
    std::fs::write(p.path("policy.yaml"), &old).unwrap();
    refused(&p.pipeline_apply("change.json"), "is not the policy this change installs");
    std::fs::write(p.path("policy.yaml"), &new).unwrap();
    p.run(&["creds", "identity", "--out", "other.key"]).assert().success();
    let o = p.run(&["pipeline", "apply", "change.json", "--identity-file", "other.key"]).output().unwrap();
    refused(&o, "not the pipeline's");

    let o = p.pipeline_apply("change.json");
    assert!(o.status.success(), "{}", text(&o));
    // Applied once: the state has moved to its target, so a second run is stale.
    refused(&p.pipeline_apply("change.json"), "the policy change is stale");
    let o = p.audit_verify(&[]);
    assert!(o.status.success() && text(&o).contains("2 record(s)"), "{}", text(&o));
    std::fs::write(p.path("policy.yaml"), &old).unwrap();
    refused(&p.run(&["plan", "fleet.yaml"]).output().unwrap(), "bound to policy");
    std::fs::write(p.path("policy.yaml"), &new).unwrap();

    // The new rules hold: two infrastructure approvals are no longer enough.
    std::fs::write(
        p.path("fleet.yaml"),
        std::fs::read_to_string(p.path("fleet.yaml")).unwrap().replace("max: 6 }", "max: 7 }"),
    )
    .unwrap();
    let next = p.plan("next.json");
    p.approve(&next, "alice");
    p.approve(&next, "bob");
    refused(&p.pipeline_apply(&next), "needs 3 approval(s)");
    p.approve(&next, "dave");
    assert!(p.pipeline_apply(&next).status.success());
    p.audit_verify(&[]).status.success().then_some(()).expect("the chain continues under the new policy");
}

#[test]
fn approve_refuses_a_public_key_and_warns_about_a_key_outside_the_policy() {
    let p = Pipe::new();
    let plan = p.plan("plan.json");
    let o = p.run(&["approve", &plan, "--key", "alice.pub", "--yes"]).output().unwrap();
    refused(&o, "is not a private key");
    assert!(!std::fs::read_to_string(p.path(&plan)).unwrap().contains("\"approvals\""), "nothing was signed");

    p.run(&["keygen", "--out", "eve"]).assert().success();
    let o = p.run(&["approve", &plan, "--key", "eve", "--yes"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not an approver in policy.yaml"), "{}", text(&o));
    let o = p.run(&["approve", &plan, "--key", "alice", "--yes"]).output().unwrap();
    // (The plan itself may say `warning`: alert rules carry that severity.)
    assert!(o.status.success() && !String::from_utf8_lossy(&o.stderr).contains("warning"), "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_credentials_never_reach_state_logs_or_plans() {
    const SECRET: &str = "tEsSeRa-SeCrEt-7c1f0e9a4b2d";
    let moto = Moto::start();
    let p = Pipe::new();
    // Infrastructure only: moto's clusters have no Kubernetes API for core services to reach.
    let spec = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/eks-two-clusters.yaml"))
        .unwrap()
        .replace("    - { name: us, provider: eks, region: us-east-2 }\n", "");
    std::fs::write(p.path("fleet.yaml"), common::without_core_services(&spec)).unwrap();
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
fn the_example_policy_is_valid_and_pins_the_pipeline() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policy.yaml");
    let policy = tessera::pipeline::Policy::load(&path).unwrap();
    assert!(policy.is_pipeline_only("aws-eu", "eks") && !policy.is_pipeline_only("local", "kind"));
    let pipeline = policy.pipeline.expect("the example pins the pipeline");
    assert!(pipeline.recipient.starts_with("age1"));
}

/// The example pipelines check the chain against the head the previous run published, publish
/// the new head, and run with the pinned identity.
#[test]
fn the_example_pipelines_publish_and_check_the_audit_head() {
    for file in ["examples/ci/github-actions.yml", "examples/ci/gitlab-ci.yml"] {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
        for needle in [
            "tessera audit verify --head",
            "tessera audit head",
            "tessera pipeline apply",
            "TESSERA_PIPELINE_IDENTITY",
            "audit-head",
        ] {
            assert!(text.contains(needle), "{file} lacks `{needle}`");
        }
    }
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
    let registry = eks_registry(&url).with_read_only(guard.read_only_guard());
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
