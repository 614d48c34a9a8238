//! `tessera reconcile` on the sim, through the library, on tokio's paused clock (the interval,
//! jitter and backoff cost nothing): drift within an interval scraped over HTTP, correct-drift and
//! pipeline-only placements, a followed git branch, a held lock, a killed PostgreSQL connection.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{Harness, fleet_yaml, load};
use serde_json::{Value, json};
use tessera::engine::Engine;
use tessera::pipeline::Policy;
use tessera::plan::{ActionKind, PlanFile};
use tessera::providers::Registry;
use tessera::reconcile::{Config, GitSource, ReconcilePolicy, Reconciler, Recorded, Source, TickResult, http};
use tessera::state::{PostgresStore, StateStore};
use tessera_sim::{Faults, SimCloud};

const INTERVAL: Duration = Duration::from_secs(60);

fn two_placements() -> String {
    fleet_yaml("core", &[("aws", "eks", "eu-west-1"), ("gcp", "gke", "europe-west4")])
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn reconciler(
    engine: Engine,
    source: Source,
    policy: ReconcilePolicy,
    plan_dir: Option<PathBuf>,
) -> (Arc<Reconciler>, Arc<Recorded>) {
    let events = Arc::new(Recorded::default());
    let config = Config { interval: INTERVAL, jitter: 0.1, plan_dir };
    (Arc::new(Reconciler::new(Arc::new(engine), source, policy, config, events.clone())), events)
}

/// A second engine over the harness's cloud and state (the reconciler owns its own).
fn engine_of(h: &Harness) -> Engine {
    Engine::new(Arc::new(Registry::new(h.cloud.clone(), 1.0)), h.store.clone())
}

fn never() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    std::mem::forget(tx);
    rx
}

/// GET over a plain TCP socket, on the blocking pool: while it blocks, the paused clock does not
/// jump ahead.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let path = path.to_string();
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        let status = body.split_whitespace().nth(1).unwrap().parse().unwrap();
        let text = body.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        (status, text)
    })
    .await
    .unwrap()
}

/// `name{labels}` → value, parsed with prometheus-parse.
fn scrape(text: &str) -> BTreeMap<String, f64> {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("a valid text exposition");
    scrape
        .samples
        .into_iter()
        .filter_map(|s| {
            let value = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => return None,
            };
            let mut labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            Some((format!("{}{{{}}}", s.metric, labels.join(",")), value))
        })
        .collect()
}

fn ticks(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| e["event"] == "tick").collect()
}

/// The loop, running in a task until the returned sender says stop.
fn spawn_loop(r: &Arc<Reconciler>, stop_rx: tokio::sync::watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    let r = r.clone();
    tokio::spawn(async move { r.run(stop_rx).await })
}

/// Waits (virtual time, in `step`s) until `seen` holds `n` tick events.
async fn wait_ticks(events: &Recorded, seen: &mut Vec<Value>, n: usize, step: Duration) {
    while ticks(seen).len() < n {
        tokio::time::sleep(step).await;
        seen.extend(events.take());
    }
}

#[tokio::test(start_paused = true)]
async fn a_console_edit_is_reported_within_one_interval_and_scraped_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::new(Faults::default());
    let yaml = two_placements();
    h.apply(&load(&yaml)).await;
    let spec = write(dir.path(), "fleet.yaml", &yaml);
    let (r, events) = reconciler(engine_of(&h), Source::File(spec), ReconcilePolicy::default(), None);

    let listener = http::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(http::serve(listener, r.metrics.clone(), r.health.clone(), stop_rx.clone()));
    assert_eq!(get(addr, "/readyz").await.0, 503, "not ready before a tick");
    let run = spawn_loop(&r, stop_rx);
    let mut seen = Vec::new();
    wait_ticks(&events, &mut seen, 1, Duration::from_millis(100)).await;
    assert_eq!(ticks(&seen)[0]["result"], "in_sync", "{seen:?}");
    assert_eq!(get(addr, "/readyz").await.0, 200);
    assert_eq!(get(addr, "/healthz").await.0, 200);

    h.cloud.console_edit("aws/sim.nodepool/system", "maxSize", json!(12)).unwrap();
    let edited = tokio::time::Instant::now();
    let drift_tick = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen.extend(events.take());
        if let Some(t) = ticks(&seen).into_iter().find(|t| t["result"] == "drift") {
            break t.clone();
        }
        assert!(edited.elapsed() < INTERVAL * 2, "no drift reported in two intervals: {seen:?}");
    };
    // The next tick starts at most interval × (1 + jitter) after the last one ended.
    assert!(edited.elapsed() <= INTERVAL.mul_f64(1.1) + Duration::from_secs(5), "{:?}", edited.elapsed());
    assert_eq!(drift_tick["placements"][0]["name"], "aws");
    let drift: Vec<&Value> = seen.iter().filter(|e| e["event"] == "drift").collect();
    assert_eq!(drift.len(), 1, "one event per drifted field: {drift:?}");
    assert_eq!(
        (&drift[0]["address"], &drift[0]["field"], &drift[0]["recorded"], &drift[0]["live"]),
        (&json!("aws/sim.nodepool/system"), &json!("maxSize"), &json!(6), &json!(12))
    );
    assert_eq!(drift[0]["path"], json!(["maxSize"]), "the leaf's path, as a list");

    let (status, text) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    let m = scrape(&text);
    assert_eq!(m.get("tessera_reconcile_drifted_fields{placement=aws}"), Some(&1.0), "{text}");
    assert_eq!(m.get("tessera_reconcile_drifted_resources{placement=aws}"), Some(&1.0), "{text}");
    assert_eq!(m.get("tessera_reconcile_drifted_fields{placement=gcp}"), Some(&0.0), "{text}");
    assert_eq!(m.get("tessera_reconcile_pending_changes{placement=aws}"), Some(&0.0), "{text}");
    assert_eq!(m.get("tessera_reconcile_runs_total{result=drift}"), Some(&1.0), "{text}");
    assert!(m.get("tessera_reconcile_runs_total{result=in_sync}").is_some_and(|v| *v >= 1.0), "{text}");
    assert!(m.get("tessera_reconcile_last_success_timestamp_seconds{}").is_some_and(|v| *v > 1.6e9), "{text}");
    assert!(text.contains("tessera_reconcile_duration_seconds"), "{text}");
    // Report mode: nothing was put back.
    assert_eq!(h.cloud.find_by_address("aws/sim.nodepool/system").unwrap().attrs["maxSize"], 12);

    stop_tx.send(true).unwrap();
    run.await.unwrap();
    assert!(!r.health.alive.load(std::sync::atomic::Ordering::Relaxed), "/healthz now says the loop has stopped");
}

#[tokio::test(start_paused = true)]
async fn autoscaler_moved_node_counts_are_never_drift() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::new(Faults::default());
    let yaml = two_placements();
    h.apply(&load(&yaml)).await;
    let (r, _) =
        reconciler(engine_of(&h), Source::File(write(dir.path(), "f.yaml", &yaml)), ReconcilePolicy::default(), None);
    h.cloud.console_edit("aws/sim.nodepool/system", "desiredSize", json!(5)).unwrap();
    h.cloud.console_edit("gcp/sim.nodepool/infra", "desiredSize", json!(3)).unwrap();
    let t = r.tick(never()).await;
    assert_eq!(t.result, TickResult::InSync, "{t:?}");
    assert!(t.drift.is_empty() && t.pending() == 0);
    // The same tick does see a change to a field Tessera owns.
    h.cloud.console_edit("gcp/sim.nodepool/infra", "maxSize", json!(7)).unwrap();
    assert_eq!(r.tick(never()).await.result, TickResult::Drift);
}

fn test_policy(body: &str) -> Policy {
    let key = hex::encode(ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key().to_bytes());
    let text = format!(
        "apiVersion: tessera.dev/v1alpha1\nkind: Policy\napprovers:\n- {{ name: a, key: {key}, lanes: [local, infra] }}\n{body}"
    );
    Policy::parse(Path::new("policy.yaml"), &text).unwrap()
}

#[tokio::test(start_paused = true)]
async fn correct_drift_restores_a_placement_and_leaves_a_pipeline_only_one_to_a_plan_file() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::new(Faults::default());
    let yaml = two_placements();
    h.apply(&load(&yaml)).await;
    let policy = test_policy(
        "lanes:\n- { name: local, approvals: 1, placements: [aws], reconcile: correct-drift }\n- { name: infra, approvals: 1, placements: [gcp], reconcile: correct-drift }\npipelineOnly: { placements: [gcp] }\n",
    );
    let guard = policy.clone();
    let registry = Registry::new(h.cloud.clone(), 1.0).with_read_only(guard.read_only_guard());
    let engine = Engine::new(Arc::new(registry), h.store.clone());
    let plans = dir.path().join("plans");
    // The spec also has a change git wants (infra max 3 → 4): pending, never applied by the loop.
    let changed = yaml.replace("scale: { min: 1, max: 3 }", "scale: { min: 1, max: 4 }");
    let spec = write(dir.path(), "fleet.yaml", &changed);
    let (r, events) = reconciler(engine, Source::File(spec), ReconcilePolicy::new(Some(policy)), Some(plans.clone()));

    h.cloud.console_edit("aws/sim.nodepool/system", "maxSize", json!(12)).unwrap();
    h.cloud.console_edit("gcp/sim.nodepool/system", "maxSize", json!(12)).unwrap();
    h.cloud.console_delete("aws/sim.nodepool/infra").unwrap();
    let t = r.tick(never()).await;
    assert_eq!(t.result, TickResult::Drift, "{t:?}");
    assert_eq!(t.corrected, ["aws/sim.nodepool/system"], "only the in-place drift of aws: {t:?}");
    let live = |a: &str| h.cloud.find_by_address(a).map(|r| r.attrs);
    assert_eq!(live("aws/sim.nodepool/system").unwrap()["maxSize"], 6, "aws put back");
    assert_eq!(live("gcp/sim.nodepool/system").unwrap()["maxSize"], 12, "pipeline-only gcp left alone");
    assert_eq!(live("gcp/sim.nodepool/infra").unwrap()["maxSize"], 3, "the spec change is not applied");
    // The deleted pool is recreated only with the spec's new maximum: a spec change, so pending.
    assert!(live("aws/sim.nodepool/infra").is_err(), "a recreation that carries a spec change waits");
    assert_eq!(t.placements.iter().map(|p| p.pending).sum::<usize>(), 2, "{t:?}");

    let file = PlanFile::load(&plans.join("drift-gcp.plan.json")).expect("a plan file for the pipeline");
    let acts: Vec<(String, ActionKind)> = file.plan.actions.iter().map(|a| (a.address.to_string(), a.kind)).collect();
    assert_eq!(acts, [("gcp/sim.nodepool/system".to_string(), ActionKind::Update)]);
    assert!(!plans.join("drift-aws.plan.json").exists());
    assert_eq!(t.plan_files, [plans.join("drift-gcp.plan.json")]);
    let tick_event = events.take().into_iter().find(|e| e["event"] == "tick").unwrap();
    assert_eq!(tick_event["corrected"], json!(["aws/sim.nodepool/system"]));

    // Once the pipeline has put gcp back, its plan file is withdrawn.
    h.cloud.console_edit("gcp/sim.nodepool/system", "maxSize", json!(6)).unwrap();
    let t = r.tick(never()).await;
    assert!(t.plan_files.is_empty() && !plans.join("drift-gcp.plan.json").exists(), "{t:?}");
}

#[tokio::test(start_paused = true)]
async fn correct_drift_recreates_a_pool_deleted_outside_tessera() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::new(Faults::default());
    let yaml = fleet_yaml("core", &[("aws", "eks", "eu-west-1")]);
    h.apply(&load(&yaml)).await;
    let policy = test_policy(
        "lanes:\n- { name: local, approvals: 1, reconcile: correct-drift }\n- { name: infra, approvals: 1, providers: [eks] }\n",
    );
    let (r, _) = reconciler(
        engine_of(&h),
        Source::File(write(dir.path(), "f.yaml", &yaml)),
        ReconcilePolicy::new(Some(policy)),
        None,
    );
    h.cloud.console_delete("aws/sim.nodepool/infra").unwrap();
    let t = r.tick(never()).await;
    assert_eq!((t.result, t.corrected.clone()), (TickResult::Drift, vec!["aws/sim.nodepool/infra".to_string()]));
    assert!(h.cloud.find_by_address("aws/sim.nodepool/infra").is_ok());
    assert_eq!(r.tick(never()).await.result, TickResult::InSync);
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(start_paused = true)]
async fn a_new_commit_on_the_followed_branch_shows_as_pending_at_the_next_tick() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(repo.join("specs")).unwrap();
    git(&repo, &["init", "--quiet", "-b", "main"]);
    let yaml = two_placements();
    write(&repo.join("specs"), "fleet.yaml", &yaml);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "--quiet", "-m", "fleet"]);
    let first = git(&repo, &["rev-parse", "HEAD"]);

    let h = Harness::new(Faults::default());
    h.apply(&load(&yaml)).await;
    let source = Source::Git(GitSource {
        repo: repo.display().to_string(),
        git_ref: "main".into(),
        path: "specs/fleet.yaml".into(),
        work_dir: dir.path().join("work"),
    });
    let (r, _) = reconciler(engine_of(&h), source, ReconcilePolicy::default(), None);
    let t = r.tick(never()).await;
    assert_eq!((t.result, t.commit.as_deref()), (TickResult::InSync, Some(first.as_str())), "{t:?}");

    write(&repo.join("specs"), "fleet.yaml", &yaml.replace("scale: { min: 3, max: 6 }", "scale: { min: 3, max: 9 }"));
    git(&repo, &["commit", "--quiet", "-am", "more system nodes"]);
    let second = git(&repo, &["rev-parse", "HEAD"]);
    let t = r.tick(never()).await;
    assert_eq!((t.result, t.commit.as_deref()), (TickResult::Pending, Some(second.as_str())), "{t:?}");
    assert_eq!(t.pending(), 2, "system pool of each placement: {t:?}");
    assert!(t.drift.is_empty());
    let m = scrape(&r.metrics.encode());
    let commit =
        format!("tessera_reconcile_commit_info{{commit={second},source={}@main:specs/fleet.yaml}}", repo.display());
    assert_eq!(m.get(&commit), Some(&1.0), "{m:?}");
    assert_eq!(m.get("tessera_reconcile_pending_changes{placement=gcp}"), Some(&1.0));
    assert_eq!(
        m.keys().filter(|k| k.starts_with("tessera_reconcile_commit_info")).count(),
        1,
        "only the followed commit"
    );

    // A ref that does not exist is an error of the tick, named.
    let bad = Source::Git(GitSource {
        repo: repo.display().to_string(),
        git_ref: "nope".into(),
        path: "specs/fleet.yaml".into(),
        work_dir: dir.path().join("work"),
    });
    let (r, _) = reconciler(engine_of(&h), bad, ReconcilePolicy::default(), None);
    let t = r.tick(never()).await;
    assert_eq!(t.result, TickResult::Error);
    assert!(t.error.as_deref().is_some_and(|e| e.contains("nope")), "{t:?}");
}

#[tokio::test(start_paused = true)]
async fn a_held_lock_skips_the_tick_and_the_loop_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::new(Faults::default());
    let yaml = two_placements();
    h.apply(&load(&yaml)).await;
    let lease = h.store.lock("ci@elsewhere (pid 1)", "apply", 3600).await.unwrap();
    let (r, events) =
        reconciler(engine_of(&h), Source::File(write(dir.path(), "f.yaml", &yaml)), ReconcilePolicy::default(), None);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let run = spawn_loop(&r, stop_rx);
    let mut seen = Vec::new();
    wait_ticks(&events, &mut seen, 1, Duration::from_millis(100)).await;
    assert_eq!(ticks(&seen)[0]["result"], "skipped", "{seen:?}");
    assert!(ticks(&seen)[0]["error"].as_str().unwrap().contains("ci@elsewhere"));
    h.store.unlock(&lease).await.unwrap();
    wait_ticks(&events, &mut seen, 2, Duration::from_secs(1)).await;
    assert_eq!(ticks(&seen)[1]["result"], "in_sync", "the loop carried on: {seen:?}");
    let m = scrape(&r.metrics.encode());
    assert_eq!(m.get("tessera_reconcile_runs_total{result=skipped}"), Some(&1.0));
    assert_eq!(m.get("tessera_reconcile_runs_total{result=error}"), None, "a skip is not an error");
    stop_tx.send(true).unwrap();
    run.await.unwrap();
    // The loop released its own lease: the state can be locked again.
    h.store.lock("next", "apply", 60).await.expect("no lock left behind");
}

#[tokio::test(start_paused = true)]
async fn failures_back_off_and_a_good_tick_resets_it() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::new(Faults::default());
    let spec = dir.path().join("fleet.yaml");
    let (r, events) = reconciler(engine_of(&h), Source::File(spec.clone()), ReconcilePolicy::default(), None);
    let r =
        Arc::new(Reconciler { config: Config { jitter: 0.0, ..r.config.clone() }, ..Arc::try_unwrap(r).ok().unwrap() });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let start = tokio::time::Instant::now();
    let run = spawn_loop(&r, stop_rx);
    // No spec yet: every tick errs; record when each one happened.
    let mut at = Vec::new();
    while at.len() < 4 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        for e in events.take().iter().filter(|e| e["event"] == "tick") {
            assert_eq!(e["result"], "error");
            at.push(start.elapsed().as_secs());
        }
    }
    let gaps: Vec<u64> = at.windows(2).map(|w| (w[1] - w[0] + 30) / 60).collect();
    assert_eq!(gaps, [1, 2, 4], "one interval, then two, then four: {at:?}");
    std::fs::write(&spec, two_placements()).unwrap();
    h.apply(&load(&two_placements())).await;
    let mut results = Vec::new();
    while results.len() < 2 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        // A tick that fell during the apply above skipped; only those that looked count here.
        let looked = events.take().into_iter().filter(|e| e["event"] == "tick" && e["result"] != "skipped");
        results.extend(looked.map(|e| (e["result"].clone(), start.elapsed().as_secs())));
    }
    assert_eq!(results[0].0, "in_sync");
    assert_eq!((results[1].1 - results[0].1 + 30) / 60, 1, "back to one interval after a good tick: {results:?}");
    stop_tx.send(true).unwrap();
    run.await.unwrap();
}

#[tokio::test]
async fn after_the_postgresql_connection_is_killed_the_loop_recovers_by_itself() {
    let base =
        std::env::var("TESSERA_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let app = format!("reconcile_{}", uuid::Uuid::new_v4().simple());
    let url = format!("{base}?schema=t_{app}&application_name={app}");
    let store: Arc<dyn StateStore> =
        Arc::new(PostgresStore::connect(&url).await.expect("PostgreSQL at 127.0.0.1:5432"));
    // Instant sim durations: this test runs on the real clock, as the database does.
    let registry = Arc::new(Registry::new(Arc::new(SimCloud::in_memory(Faults::default())), 0.0));
    let engine = Engine::new(registry.clone(), store.clone());
    let yaml = two_placements();
    let fleet = load(&yaml);
    let plan = engine.plan(&fleet, tessera::plan::Mode::Apply).await.unwrap();
    let (_tx, rx) = tessera::exec::cancel_signal();
    let applied = engine
        .apply(&plan, Some(&fleet), "test", &Default::default(), Arc::new(tessera::exec::Quiet), rx)
        .await
        .unwrap();
    assert!(applied.is_success());

    let dir = tempfile::tempdir().unwrap();
    let (r, _) = reconciler(
        Engine::new(registry, store),
        Source::File(write(dir.path(), "f.yaml", &yaml)),
        ReconcilePolicy::default(),
        None,
    );
    assert_eq!(r.tick(never()).await.result, TickResult::InSync);

    let (admin, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let killed = admin
        .query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", &[&app])
        .await
        .unwrap();
    assert!(!killed.is_empty(), "the store's connection was found and killed");
    let t = r.tick(never()).await;
    assert_eq!(t.result, TickResult::InSync, "the next tick reconnects: {t:?}");
    let m = scrape(&r.metrics.encode());
    assert_eq!(m.get("tessera_reconcile_runs_total{result=in_sync}"), Some(&2.0));
}

/// A renderer that refuses every chart's values, as a helm would for values it cannot render.
struct RefusingHelm(std::sync::atomic::AtomicUsize);

impl tessera_kube::render::ChartRenderer for RefusingHelm {
    fn render(&self, _: &tessera_kube::render::ChartRelease<'_>) -> tessera_kube::render::Rendering {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tessera_kube::render::Rendering::Failed("helm template failed: values refused".into())
    }
}

#[tokio::test]
async fn each_tick_validates_the_spec_with_the_chart_renderer_it_was_given() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(
        dir.path(),
        "fleet.yaml",
        &common::one_pool_fleet("core", "  placements:\n    - { name: aws, provider: sim, region: eu-west-1 }\n"),
    );
    let source = Source::File(spec);
    // The model alone accepts the spec (its default core services are valid).
    assert!(source.fetch(Arc::new(tessera_kube::render::ModelOnly)).await.is_ok());
    let helm = Arc::new(RefusingHelm(Default::default()));
    let refused = source.fetch(helm.clone()).await;
    assert!(helm.0.load(std::sync::atomic::Ordering::Relaxed) > 0, "the renderer was asked");
    let err = refused.err().map(|e| format!("{e:?}")).unwrap_or_default();
    assert!(err.contains("values refused"), "helm's refusal is the tick's: {err}");
}
