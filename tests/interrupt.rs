//! A real `tessera apply` process, stopped while its core-service steps retry against cluster APIs
//! that refuse every connection (the sim's clusters with `TESSERA_SIM_KUBE_UNREACHABLE`: the
//! cloud answers, the Kubernetes APIs do not, as with a private endpoint seen from outside).
//!
//! SIGINT and SIGTERM must end it within 10 s (a generous ceiling: steps in backoff stop at once,
//! calls in flight get 5 s), each stopped step reported interrupted, and a later run must find
//! state consistent: recovery, plan and apply finish the fleet. An API that stays unreachable
//! fails its steps within the bound (`--unreachable-for`), with one message that names the
//! endpoint, what failed and the fix, and no library log lines on stderr.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const QUICKSTART: &str = "specs/quickstart.yaml";

struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("tempdir") }
    }

    fn tessera(&self) -> Command {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("tessera"));
        c.current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("TESSERA_STATE", format!("sqlite://{}", self.dir.path().join("state.db").display()))
            .env("TESSERA_SIM_CLOUD", self.dir.path().join("sim.db"))
            .env("TESSERA_SIM_TIME_SCALE", "0")
            .env_remove("TESSERA_LOG")
            .env("NO_COLOR", "1");
        c
    }

    fn unreachable_apply(&self, extra: &[&str]) -> Child {
        self.tessera()
            .env("TESSERA_SIM_KUBE_UNREACHABLE", "true")
            .args(extra)
            .args(["--output", "json", "apply", QUICKSTART, "--auto-approve"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tessera starts")
    }
}

/// The JSON events of `child`'s stdout, as they come.
fn events(child: &mut Child) -> mpsc::Receiver<Value> {
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().expect("stdout is piped");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && tx.send(v).is_err()
            {
                break;
            }
        }
    });
    rx
}

fn stderr_of(child: &mut Child) -> std::thread::JoinHandle<String> {
    let mut err = child.stderr.take().expect("stderr is piped");
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut text);
        text
    })
}

/// Waits for the first event `want` accepts, keeping every event seen.
fn wait_for(rx: &mpsc::Receiver<Value>, seen: &mut Vec<Value>, within: Duration, want: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + within;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(v) => {
                let hit = want(&v);
                seen.push(v);
                if hit {
                    return;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no such event within {within:?}; saw {seen:#?}");
}

fn is_kube_retry(v: &Value) -> bool {
    v["event"] == "step_retrying" && v["error"].as_str().is_some_and(|e| e.contains("cannot reach the Kubernetes API"))
}

fn stop_while_retrying(signal: &str) {
    let w = Workdir::new();
    let mut child = w.unreachable_apply(&[]);
    let rx = events(&mut child);
    let stderr = stderr_of(&mut child);
    let mut seen = Vec::new();
    wait_for(&rx, &mut seen, Duration::from_secs(120), is_kube_retry);

    let sent = Command::new("kill").args([signal, &child.id().to_string()]).status().expect("kill runs");
    assert!(sent.success());
    let signalled = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if signalled.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("{signal}: still running 10 s after the signal");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "an interrupted apply is not a success");
    seen.extend(rx.try_iter());
    let stderr = stderr.join().expect("stderr reader");

    let interrupted: Vec<&Value> = seen.iter().filter(|v| v["event"] == "step_interrupted").collect();
    assert!(!interrupted.is_empty(), "the retrying steps are reported interrupted: {seen:#?}");
    let report = seen.iter().find(|v| v["event"] == "report").expect("a report");
    assert_eq!(report["report"]["interrupted"], true);
    let stopped = report["report"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["status"]["status"] == "interrupted")
        .count();
    assert_eq!(stopped, interrupted.len(), "each interrupted step is in the report");
    assert!(stderr.contains("interrupted"), "{stderr}");

    // The next run, with the APIs reachable, recovers, plans and finishes the fleet.
    let out = w.tessera().args(["apply", QUICKSTART, "--auto-approve"]).output().expect("apply");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let plan = w.tessera().args(["plan", QUICKSTART, "--detailed-exitcode"]).output().expect("plan");
    assert_eq!(plan.status.code(), Some(0), "nothing left to do: {}", String::from_utf8_lossy(&plan.stdout));
}

#[test]
fn sigint_stops_an_apply_retrying_against_an_unreachable_api_within_10_s() {
    stop_while_retrying("-INT");
}

#[test]
fn sigterm_stops_an_apply_retrying_against_an_unreachable_api_within_10_s() {
    stop_while_retrying("-TERM");
}

#[test]
fn an_api_that_stays_unreachable_fails_its_steps_within_the_bound_with_one_message() {
    let w = Workdir::new();
    let mut child = w.unreachable_apply(&["--unreachable-for", "3s"]);
    let rx = events(&mut child);
    let stderr = stderr_of(&mut child);
    let started = Instant::now();
    let status = child.wait().expect("wait");
    let took = started.elapsed();
    let seen: Vec<Value> = rx.try_iter().collect();
    let stderr = stderr.join().expect("stderr reader");
    assert!(!status.success());
    // A generous ceiling: each step's bound is 3 s here, and the steps of one API share it.
    assert!(took < Duration::from_secs(60), "took {took:?}");

    let failed: Vec<&str> =
        seen.iter().filter(|v| v["event"] == "step_failed").filter_map(|v| v["error"].as_str()).collect();
    assert!(!failed.is_empty(), "{seen:#?}");
    for error in &failed {
        assert!(error.contains("cannot reach the Kubernetes API at https://"), "names the endpoint: {error}");
        assert!(error.contains("connection refused") && error.contains("Fix:"), "what failed, and the fix: {error}");
        assert!(error.contains("gave up"), "{error}");
    }
    // The clouds' own resources were made; only what runs inside the clusters failed.
    let succeeded = seen.iter().filter(|v| v["event"] == "step_succeeded").count();
    assert!(succeeded >= 15, "networks, clusters and pools of 3 placements: {succeeded}");
    for line in stderr.lines() {
        assert!(!line.contains(" ERROR ") && !line.contains(" WARN "), "no log lines at the default level: {line}");
    }
}

#[test]
fn plan_gives_up_on_an_unreachable_api_once_per_cluster_not_once_per_object() {
    let w = Workdir::new();
    let out = w.tessera().args(["apply", QUICKSTART, "--auto-approve"]).output().expect("apply");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let started = Instant::now();
    let out = w
        .tessera()
        .env("TESSERA_SIM_KUBE_UNREACHABLE", "true")
        .args(["--unreachable-for", "2s", "plan", QUICKSTART])
        .output()
        .expect("plan");
    let took = started.elapsed();
    // 3 clusters of 11 objects each: one bound per object would be over a minute.
    assert!(took < Duration::from_secs(30), "took {took:?}");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "an incomplete plan is an error");
    assert!(text.contains("cannot reach the Kubernetes API"), "{text}");
}
