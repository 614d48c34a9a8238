//! Pipeline trust, round three (issue 21), through the CLI on the sim: a placement is one unit of
//! authority, whichever provider acts for it; no plan file, spec path, state row or duplicated key
//! widens what the policy allows; a refused run leaves its plan usable; approvers see what they
//! sign; and the lock is taken over only from a provably dead holder.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::pipe::*;

/// A policy whose rules name the *cloud* backend only (`sim`), never the providers that act
/// inside its clusters: the authority of a placement must reach its core services anyway.
fn cloud_only_policy(p: &Pipe) -> String {
    let policy = std::fs::read_to_string(p.path("policy.yaml")).unwrap();
    let all = format!("[{PIPELINE_ONLY}]");
    assert_eq!(policy.matches(&all).count(), 2, "{policy}");
    policy.replace(&all, "[sim]")
}

/// A repository under [`cloud_only_policy`], its fleet applied by the pipeline.
fn applied_under_cloud_only_policy() -> Pipe {
    let p = Pipe::new();
    std::fs::write(p.path("policy.yaml"), cloud_only_policy(&p)).unwrap();
    let plan = p.plan("first.json");
    let shown = text(&p.run(&["show", &plan]).output().unwrap());
    assert!(shown.contains("simkube") || shown.contains("kube.object"), "core services are planned: {shown}");
    p.approved_apply(&plan, &["alice", "bob"]);
    p
}

/// The log output of every cluster, moved to another host: a change of core services only.
fn redirect_logs(p: &Pipe) {
    let spec = std::fs::read_to_string(p.path("fleet.yaml")).unwrap();
    let changed = spec.replace("http://loki.logging.svc:3100", "http://attacker.example:3100");
    assert_ne!(spec, changed);
    std::fs::write(p.path("fleet.yaml"), changed).unwrap();
}

#[test]
fn a_laptop_apply_that_only_touches_core_services_of_a_pipeline_only_placement_is_refused() {
    let p = applied_under_cloud_only_policy();
    redirect_logs(&p);
    let before = p.snapshot();

    // The plan changes only Kubernetes objects of the sim's clusters.
    let plan = p.plan("logs.json");
    let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p.path(&plan)).unwrap()).unwrap();
    let kinds: Vec<&str> =
        file["plan"]["actions"].as_array().unwrap().iter().map(|a| a["provider"]["kind"].as_str().unwrap()).collect();
    assert!(!kinds.is_empty() && kinds.iter().all(|k| *k != "sim"), "only in-cluster providers act: {kinds:?}");

    refused(&p.run(&["apply", "fleet.yaml", "--auto-approve"]).output().unwrap(), "is pipeline-only");
    // Signed by an approver, still not the pipeline's to skip.
    p.approve(&plan, "alice");
    refused(&p.run(&["apply", "--plan", &plan]).output().unwrap(), "is pipeline-only");
    assert_eq!(p.snapshot(), before, "the refusals changed nothing");

    // The provider layer refuses it too, with the CLI's check bypassed.
    let policy = tessera::pipeline::Policy::load(&p.path("policy.yaml")).unwrap();
    let cloud = Arc::new(tessera_sim::SimCloud::durable(&p.path("sim.db"), Default::default()).unwrap());
    let registry = tessera::providers::Registry::new(cloud, 0.0).with_read_only(policy.read_only_guard());
    let store = Arc::new(tessera::state::SqliteStore::open(&p.path("state.db")).unwrap());
    let engine = tessera::engine::Engine::new(Arc::new(registry), store);
    let fleet = tessera::spec::load(&p.path("fleet.yaml")).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let report = rt.block_on(async {
        let plan = engine.plan(&fleet, tessera::plan::Mode::Apply).await.unwrap();
        let (_tx, rx) = tessera::exec::cancel_signal();
        let events = Arc::new(tessera::exec::Quiet);
        engine.apply(&plan, Some(&fleet), "apply", &Default::default(), events, rx).await.unwrap()
    });
    assert_eq!(report.succeeded(), 0, "{report:?}");
    assert!(report.failed() > 0, "{report:?}");
    assert_eq!(p.snapshot(), before, "read-only providers changed nothing");

    // The pipeline applies the same change.
    let plan = p.plan("logs2.json");
    p.approved_apply(&plan, &["alice", "bob"]);
    assert_ne!(p.snapshot(), before);
}

#[test]
fn the_example_policy_applies_a_fleet_with_default_core_services_through_the_pipeline() {
    let p = Pipe::new();
    // examples/policy.yaml as it is, with this repository's keys and pipeline.
    let example = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policy.yaml")).unwrap();
    let mine = std::fs::read_to_string(p.path("policy.yaml")).unwrap();
    let mine_pipeline: serde_json::Value =
        serde_saphyr::from_str::<serde_json::Value>(&mine).unwrap()["pipeline"].clone();
    let key = |who: &str| std::fs::read_to_string(p.path(&format!("{who}.pub"))).unwrap().trim().to_string();
    let ex: serde_json::Value = serde_saphyr::from_str(&example).unwrap();
    let mut policy = example.clone();
    for (i, who) in ["alice", "bob", "dave"].iter().enumerate() {
        let old = ex["approvers"][i]["key"].as_str().unwrap();
        policy = policy.replace(old, &key(who));
    }
    let (old_r, old_k) = (ex["pipeline"]["recipient"].as_str().unwrap(), ex["pipeline"]["auditKey"].as_str().unwrap());
    policy = policy.replace(old_r, mine_pipeline["recipient"].as_str().unwrap());
    policy = policy.replace(old_k, mine_pipeline["auditKey"].as_str().unwrap());
    // The example's approvers are alice, bob and dana: dana's key is dave's here.
    std::fs::write(p.path("policy.yaml"), &policy).unwrap();
    p.run(&["policy", "check"]).assert().success();

    let plan = p.plan("plan.json");
    let body = std::fs::read_to_string(p.path(&plan)).unwrap();
    assert!(body.contains("\"simkube\""), "default core services are in the plan");
    // The `local` lane (sim and kind, one approval) covers the sim clusters and what runs inside them.
    refused(&p.pipeline_apply(&plan), "carries no signatures");
    p.approve(&plan, "dave");
    let o = p.pipeline_apply(&plan);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn a_plan_naming_a_file_outside_the_tree_is_refused_before_it_is_read_and_never_echoed() {
    let p = Pipe::new();
    let plan = p.plan("plan.json");
    let secret = "AGE-SECRET-KEY-1TOPSECRETVALUETHATMUSTNEVERLEAK";
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("identity.txt"), secret).unwrap();
    std::fs::write(p.path("inside.txt"), secret).unwrap();
    for target in
        [outside.path().join("identity.txt").display().to_string(), "../x/identity.txt".into(), "inside.txt".into()]
    {
        let mut file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(p.path(&plan)).unwrap()).unwrap();
        file["plan"]["specPath"] = serde_json::json!(target);
        std::fs::write(p.path("crafted.json"), serde_json::to_string_pretty(&file).unwrap()).unwrap();
        for run in [p.pipeline_apply("crafted.json"), p.run(&["apply", "--plan", "crafted.json"]).output().unwrap()] {
            let shown = text(&run);
            assert_eq!(run.status.code(), Some(1), "{shown}");
            assert!(!shown.contains("TOPSECRET"), "the file leaked: {shown}");
        }
    }
    assert!(p.untouched());
}

#[test]
fn a_swapped_edited_or_removed_policy_binding_is_refused_before_any_write() {
    let p = Pipe::new();
    let plan = p.plan("plan.json");
    p.approved_apply(&plan, &["alice", "bob"]);
    let head = text(&p.run(&["audit", "head"]).output().unwrap()).trim().to_string();
    std::fs::write(
        p.path("fleet.yaml"),
        std::fs::read_to_string(p.path("fleet.yaml")).unwrap().replace("max: 6 }", "max: 7 }"),
    )
    .unwrap();
    let next = p.plan("next.json");
    for w in ["alice", "bob"] {
        p.approve(&next, w);
    }
    let before = p.snapshot();
    let original = p.bound_policy_row();
    let original_text = std::fs::read_to_string(p.path("policy.yaml")).unwrap();

    // Removed: a laptop apply from a directory without the policy would lift every rule.
    p.sql("DELETE FROM policy;");
    let bare = tempfile::tempdir().unwrap();
    std::fs::copy(p.path("fleet.yaml"), bare.path().join("fleet.yaml")).unwrap();
    refused(&p.run_in(bare.path(), &["apply", "fleet.yaml", "--auto-approve"]).output().unwrap(), "no policy binding");
    refused(&p.pipeline_apply(&next), "no policy binding");
    assert_eq!(p.snapshot(), before);

    // Swapped for a laxer policy (consistent digest): the chain ends under another one.
    let lax = std::fs::read_to_string(p.path("policy.yaml")).unwrap().replace("approvals: 2", "approvals: 1");
    let digest = tessera::pipeline::bound::digest(&lax);
    let q = |s: &str| s.replace('\'', "''");
    p.sql(&format!(
        "INSERT INTO policy (id, digest, text, source, bound_at) VALUES (1, '{digest}', '{}', 'policy.yaml', 0);",
        q(&lax)
    ));
    std::fs::write(p.path("policy.yaml"), &lax).unwrap();
    refused(
        &p.run(&["apply", "fleet.yaml", "--auto-approve"]).output().unwrap(),
        "does not match its signed audit chain",
    );
    refused(&p.pipeline_apply(&next), "does not match its signed audit chain");
    assert_eq!(p.snapshot(), before);

    // Edited in place (text changed, digest kept): refused as corrupt.
    p.sql(&format!(
        "UPDATE policy SET text = text || '# edited', digest = '{}';",
        tessera::pipeline::bound::digest(&std::fs::read_to_string(p.path("policy.yaml")).unwrap())
    ));
    refused(&p.run(&["apply", "fleet.yaml", "--auto-approve"]).output().unwrap(), "is corrupt");
    assert_eq!(p.snapshot(), before);
    p.sql(&format!("DELETE FROM policy; {original}"));

    // A head published elsewhere must be in the chain.
    std::fs::write(p.path("policy.yaml"), &original_text).unwrap();
    refused(
        &p.run(&["--audit-head", &"ab".repeat(32), "apply", "fleet.yaml", "--auto-approve"]).output().unwrap(),
        "is not in the audit chain",
    );
    assert!(!head.is_empty());
}

#[test]
fn refusals_before_the_first_write_leave_the_plan_usable() {
    let p = Pipe::new();
    let plan = p.plan("plan.json");
    p.approve(&plan, "alice");
    p.approve(&plan, "bob");

    // Lock refusal: another run holds the state.
    let store = tessera::state::SqliteStore::open(&p.path("state.db")).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let lease =
        rt.block_on(tessera::state::StateStore::lock(&store, "someone@elsewhere (pid 1)", "apply", 600)).unwrap();
    refused(&p.pipeline_apply(&plan), "state is locked by");
    rt.block_on(tessera::state::StateStore::unlock(&store, &lease)).unwrap();

    // Stale: the state moved on after the plan was made; the plan is refused, not used up.
    p.sql("UPDATE meta SET serial = serial + 1 WHERE id = 1;");
    refused(&p.pipeline_apply(&plan), "stale");
    p.sql("UPDATE meta SET serial = serial - 1 WHERE id = 1;");

    // Then it applies.
    let o = p.pipeline_apply(&plan);
    assert!(o.status.success(), "{}", text(&o));
    refused(&p.pipeline_apply(&plan), "already applied");
}

#[test]
fn a_preflight_refusal_leaves_the_plan_usable() {
    let p = Pipe::new();
    let local = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/local.yaml")).unwrap();
    std::fs::write(p.path("fleet.yaml"), local).unwrap();
    let plan = p.plan("kind.json");
    // The kind lane, and the lane this repository gives Kubernetes providers: both must approve.
    for who in ["carol", "alice", "bob"] {
        p.approve(&plan, who);
    }
    let no_kind = p.path("no-such-kind").display().to_string();
    for _ in 0..2 {
        let o = p
            .run(&["pipeline", "apply", &plan, "--identity-file", "pipeline.key"])
            .env("TESSERA_KIND", &no_kind)
            .output()
            .unwrap();
        refused(&o, "cannot run here");
        assert!(!text(&o).contains("already applied"), "{}", text(&o));
    }
}

#[test]
fn one_key_listed_twice_is_refused_and_identity_prints_a_policy_that_checks() {
    let p = Pipe::new();
    let policy = std::fs::read_to_string(p.path("policy.yaml")).unwrap();
    let alice = std::fs::read_to_string(p.path("alice.pub")).unwrap().trim().to_string();
    let dave = std::fs::read_to_string(p.path("dave.pub")).unwrap().trim().to_string();
    std::fs::write(p.path("twice.yaml"), policy.replace(&dave, &alice.to_uppercase())).unwrap();
    refused(&p.run(&["policy", "check", "twice.yaml"]).output().unwrap(), "have the same key");

    // What `creds identity` prints is a `pipeline:` block that `policy check` accepts as it is.
    let out = p.run(&["creds", "identity", "--out", "second.key"]).output().unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    let block: String = printed.lines().skip_while(|l| !l.starts_with("pipeline:")).map(|l| format!("{l}\n")).collect();
    assert!(block.contains("policyLane: infra"), "{printed}");
    let without: String = policy.lines().filter(|l| !l.starts_with("pipeline:")).map(|l| format!("{l}\n")).collect();
    std::fs::write(p.path("fresh.yaml"), format!("{without}{block}")).unwrap();
    let o = p.run(&["policy", "check", "fresh.yaml"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn approvers_see_what_they_sign() {
    let p = Pipe::new();
    let plan = p.plan("plan.json");
    let shown = text(&p.run(&["show", &plan]).output().unwrap());
    for wanted in ["sim-aws/sim.cluster/main", "lane infra: 0 of 2", "nobody yet"] {
        assert!(shown.contains(wanted), "`{wanted}` in:\n{shown}");
    }
    // Without a terminal, signing needs --yes; the summary is printed first.
    let o = p.run(&["approve", &plan, "--key", "alice"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("lane infra") && text(&o).contains("--yes"), "{}", text(&o));
    p.approve(&plan, "alice");
    let shown = text(&p.run(&["show", &plan]).output().unwrap());
    assert!(shown.contains("lane infra: 1 of 2") && shown.contains("signed by alice: valid"), "{shown}");
}

#[test]
fn a_secret_in_the_spec_is_refused_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/quickstart.yaml")).unwrap();
    let cases = [
        (
            "loki: { url: http://loki.logging.svc:3100 }",
            "loki: { url: http://loki.logging.svc:3100, password: hunter2 }",
            "output.loki.password",
        ),
        (
            "loki: { url: http://loki.logging.svc:3100 }",
            "loki: { url: \"http://ops:hunter2@loki.logging.svc:3100\" }",
            "holds a credential",
        ),
        (
            "    monitoring:\n",
            "    monitoring:\n      remoteWrite: \"https://ops:hunter2@prom.example/api/v1/write\"\n",
            "carries a credential",
        ),
        (
            "    monitoring:\n",
            "    monitoring:\n      remoteWrite: https://prom.example/api/v1/write\n      remoteWriteAuth: { bearerToken: hunter2 }\n",
            "must reference a Secret's key",
        ),
        (
            "    monitoring:\n",
            "    monitoring:\n      remoteWrite: \" https://ops:hunter2@prom.example/api/v1/write\"\n",
            "carries a credential",
        ),
        (
            "    monitoring:\n",
            "    monitoring:\n      values: { grafana: { adminPassword: hunter2 } }\n",
            "values.grafana.adminPassword",
        ),
    ];
    for (from, to, needle) in cases {
        let spec = base.replacen(from, to, 1);
        assert_ne!(spec, base);
        let path = dir.path().join("s.yaml");
        std::fs::write(&path, &spec).unwrap();
        let line = spec.lines().position(|l| l.contains("hunter2")).unwrap() + 1;
        let o = assert_cmd::Command::cargo_bin("tessera").unwrap().args(["validate"]).arg(&path).output().unwrap();
        let shown = text(&o);
        assert_eq!(o.status.code(), Some(1), "{shown}");
        assert!(unwrapped(&shown).contains(&unwrapped(needle)), "`{needle}` in {shown}");
        assert!(shown.contains(&format!("s.yaml:{line}:")), "at line {line}: {shown}");
        // The message and hint never repeat the secret (the snippet shows the user's own line).
        let json = assert_cmd::Command::cargo_bin("tessera")
            .unwrap()
            .args(["--output", "json", "validate"])
            .arg(&path)
            .output()
            .unwrap();
        let problems: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        for p in problems["problems"].as_array().unwrap() {
            assert!(!p["message"].to_string().contains("hunter2") && !p["hint"].to_string().contains("hunter2"), "{p}");
        }
    }
    // The reference form validates.
    let ok = base.replacen(
        "    monitoring:\n",
        "    monitoring:\n      remoteWrite: https://prom.example/api/v1/write\n      remoteWriteAuth: { basicAuth: { username: { secretRef: { name: rw, key: user } }, password: { secretRef: { name: rw, key: pass } } } }\n",
        1,
    );
    let path = dir.path().join("ok.yaml");
    std::fs::write(&path, ok).unwrap();
    let o = assert_cmd::Command::cargo_bin("tessera").unwrap().args(["validate"]).arg(&path).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

/// A run in another pid namespace of this host (as a process on another machine with the same
/// hostname looks from here): its pid is absent from this namespace's `/proc`, and its lock must
/// still not be taken over while it lives.
#[test]
fn a_live_holder_in_another_pid_namespace_keeps_its_lock() {
    let unshare = std::process::Command::new("unshare").args(["--pid", "--fork", "--mount-proc", "true"]).status();
    assert!(unshare.is_ok_and(|s| s.success()), "this test needs `unshare --pid` (util-linux, as root)");
    let p = Pipe::new();
    std::fs::remove_file(p.path("policy.yaml")).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("tessera");
    // Inside the namespace the apply gets pid 4000001, a pid no process here can have.
    let script = format!(
        "echo 4000000 > /proc/sys/kernel/ns_last_pid && {} apply fleet.yaml --auto-approve --lock-timeout 30s --sim-time-scale 0.05",
        bin.display()
    );
    let mut holder = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "sh", "-c", &script])
        .current_dir(p.dir.path())
        .env("TESSERA_STATE", format!("sqlite://{}", p.path("state.db").display()))
        .env("TESSERA_SIM_CLOUD", p.path("sim.db"))
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until it holds the lock.
    let store = tessera::state::SqliteStore::open(&p.path("state.db")).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let holder_name = loop {
        if let Ok(lease) = rt.block_on(tessera::state::StateStore::lock(&store, "probe (pid 0)", "probe", 60)) {
            rt.block_on(tessera::state::StateStore::unlock(&store, &lease)).unwrap();
        } else if let Err(tessera::state::StateError::Locked { holder, .. }) =
            rt.block_on(tessera::state::StateStore::lock(&store, "probe (pid 0)", "probe", 60))
        {
            break holder;
        }
        assert!(std::time::Instant::now() < deadline, "the apply in the other namespace never took the lock");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(holder_name.contains("pid 4000001"), "{holder_name}");
    let o = p.run(&["apply", "fleet.yaml", "--auto-approve"]).output().unwrap();
    let _ = holder.kill();
    let _ = holder.wait();
    refused(&o, "state is locked by");
    assert!(!text(&o).contains("took over"), "{}", text(&o));
}

/// A credential a console edit puts into a URL never reaches the drift report, a plan file or
/// state: what providers report has its URL user-info redacted.
#[test]
fn url_credentials_read_back_from_the_cloud_are_redacted_everywhere() {
    let p = Pipe::new();
    std::fs::remove_file(p.path("policy.yaml")).unwrap();
    let o = p.run(&["apply", "fleet.yaml", "--auto-approve"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let cloud = tessera_sim::SimCloud::durable(&p.path("sim.db"), Default::default()).unwrap();
    let url = serde_json::json!({ "tier": "https://ops:hunter2@evil.example/x" });
    cloud.console_edit("sim-aws/sim.nodepool/system", "labels", url).unwrap();
    drop(cloud);

    let drift = p.run(&["drift", "fleet.yaml"]).output().unwrap();
    assert_eq!(drift.status.code(), Some(2), "{}", text(&drift));
    for o in [drift, p.run(&["plan", "fleet.yaml", "-o", "fix.json"]).output().unwrap()] {
        let shown = text(&o);
        assert!(shown.contains("redacted@evil.example") && !shown.contains("hunter2"), "{shown}");
    }
    assert!(!std::fs::read_to_string(p.path("fix.json")).unwrap().contains("hunter2"));
    let o = p.run(&["apply", "fleet.yaml", "--auto-approve"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    for file in ["state.db", "state.db-wal"] {
        let bytes = std::fs::read(p.path(file)).unwrap_or_default();
        assert!(!bytes.windows(7).any(|w| w == b"hunter2"), "{file} holds no credential");
    }
}

/// A state writer who records a pipeline-only placement's cluster under another placement (so
/// that a laptop apply would replace, that is delete, it) gets no write at all.
#[test]
fn one_cloud_object_recorded_under_two_addresses_stops_every_write() {
    let p = Pipe::new();
    std::fs::remove_file(p.path("policy.yaml")).unwrap();
    let o = p.run(&["apply", "fleet.yaml", "--auto-approve"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    p.sql(
        "UPDATE resources SET id = (SELECT id FROM resources WHERE address = 'sim-aws/sim.cluster/main') \
         WHERE address = 'sim-gcp/sim.cluster/main';",
    );
    std::fs::write(
        p.path("fleet.yaml"),
        std::fs::read_to_string(p.path("fleet.yaml")).unwrap().replace("max: 6 }", "max: 7 }"),
    )
    .unwrap();
    let before = p.snapshot();
    refused(&p.run(&["apply", "fleet.yaml", "--auto-approve"]).output().unwrap(), "is recorded both as");
    assert_eq!(p.snapshot(), before, "nothing was written or deleted");
}
