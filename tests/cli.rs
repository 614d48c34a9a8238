//! The `tessera` binary as users and pipelines run it.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::{Value, json};

struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("tempdir") }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn tessera(&self) -> Command {
        let mut c = Command::cargo_bin("tessera").expect("binary");
        c.current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("TESSERA_STATE", format!("sqlite://{}", self.path("state.db").display()))
            .env("TESSERA_SIM_CLOUD", self.path("sim.db"))
            .env("TESSERA_SIM_TIME_SCALE", "0")
            .env("NO_COLOR", "1");
        c
    }

    /// Starts a quickstart apply (JSON lines on stdout) at 0.01 × real durations, so that control
    /// planes take seconds, sends `signal` (`-TERM`, `-KILL`) mid-apply and waits for it.
    fn apply_and_signal(&self, signal: &str) -> std::process::Output {
        let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("tessera"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("TESSERA_STATE", format!("sqlite://{}", self.path("state.db").display()))
            .env("TESSERA_SIM_CLOUD", self.path("sim.db"))
            .env("TESSERA_SIM_TIME_SCALE", "0.01")
            .env("NO_COLOR", "1")
            .args(["--output", "json", "apply", QUICKSTART, "--auto-approve"])
            // Files, not pipes: nobody reads a pipe while the test sleeps, and the plan event
            // alone is larger than a pipe's buffer, so the apply would block writing it.
            .stdout(std::fs::File::create(self.path("stdout")).unwrap())
            .stderr(std::fs::File::create(self.path("stderr")).unwrap())
            .spawn()
            .unwrap();
        // Mid-apply: once the executor has started a step (it holds the lock and records
        // intents), not at a fixed time, which a loaded machine may not have reached yet.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !std::fs::read_to_string(self.path("stdout")).unwrap_or_default().contains("\"step_started\"") {
            assert!(std::time::Instant::now() < deadline, "the apply never started a step");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        let sent = std::process::Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
        assert!(sent.success());
        let status = child.wait_with_output().unwrap().status;
        let read = |name: &str| std::fs::read(self.path(name)).unwrap();
        std::process::Output { status, stdout: read("stdout"), stderr: read("stderr") }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write");
        p
    }
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const QUICKSTART: &str = "specs/quickstart.yaml";
/// Each placement's core services: 2 namespaces, 2 Helm releases, the exporter's DaemonSet and
/// PodMonitor, alerting's PrometheusRule and AlertmanagerConfig, and logging's Logging,
/// FluentbitAgent, ClusterOutput, ClusterFlow and HostTailer.
const CORE_SERVICES: usize = 13;
/// 3 placements × (network, cluster, 3 pools, core services).
const QUICKSTART_RESOURCES: usize = 3 * (5 + CORE_SERVICES);

#[test]
fn the_shipped_specs_validate() {
    let w = Workdir::new();
    for spec in [QUICKSTART, "specs/multi-cloud.yaml"] {
        let out = w.tessera().args(["validate", spec]).output().unwrap();
        assert!(out.status.success(), "{spec}: {}", stderr(&out));
        assert!(stdout(&out).contains("is valid"));
    }
}

#[test]
fn an_invalid_spec_exits_1_with_file_line_col() {
    let w = Workdir::new();
    let bad = std::fs::read_to_string(QUICKSTART).unwrap().replace("region: eu-west-1", "region: eu-wst-1");
    let path = w.write("bad.yaml", &bad);
    let out = w.tessera().arg("validate").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let line = bad.lines().position(|l| l.contains("eu-wst-1")).unwrap() + 1;
    assert!(err.contains(&format!("bad.yaml:{line}:")), "{err}");
    assert!(err.contains("did you mean"), "{err}");

    let out = w.tessera().args(["validate", "--output", "json"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    let problem = &v["problems"][0];
    assert!(problem["message"].as_str().unwrap().contains("unknown eks region"), "{problem}");
    assert_eq!(problem["line"], line as u64, "{problem}");
    assert!(problem["column"].as_u64().is_some() && problem["hint"].as_str().unwrap().contains("did you mean"));
}

#[test]
fn plan_apply_plan_with_detailed_exit_codes() {
    let w = Workdir::new();
    let out = w.tessera().args(["plan", QUICKSTART, "--detailed-exitcode"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("{QUICKSTART_RESOURCES} to create")), "{}", stdout(&out));

    let out = w.tessera().args(["apply", QUICKSTART, "--auto-approve"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("Done: {QUICKSTART_RESOURCES} succeeded")), "{}", stdout(&out));

    let out = w.tessera().args(["plan", QUICKSTART, "--detailed-exitcode"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("No changes"));

    let out = w.tessera().args(["state", "list", "--output", "json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["resources"].as_array().unwrap().len(), QUICKSTART_RESOURCES);
    assert_eq!(v["meta"]["serial"], QUICKSTART_RESOURCES);

    let out = w.tessera().args(["destroy", QUICKSTART, "--auto-approve"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = w.tessera().args(["state", "list", "--output", "json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["resources"].as_array().unwrap().is_empty());
}

#[test]
fn apply_without_a_terminal_or_auto_approve_is_refused() {
    let w = Workdir::new();
    let out = w.tessera().args(["apply", QUICKSTART]).write_stdin("yes\n").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("stdin is not a terminal"), "{}", stderr(&out));
    let out = w.tessera().args(["state", "list", "--output", "json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["resources"].as_array().unwrap().is_empty(), "nothing was applied");
}

#[test]
fn a_saved_plan_applies_once_and_is_then_stale() {
    let w = Workdir::new();
    let plan = w.path("plan.json");
    let out = w.tessera().args(["plan", QUICKSTART, "-o"]).arg(&plan).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = w.tessera().args(["apply", "--plan"]).arg(&plan).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = w.tessera().args(["apply", "--plan"]).arg(&plan).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("stale"), "{}", stderr(&out));

    // A tampered plan file is refused before anything runs.
    let text = std::fs::read_to_string(&plan).unwrap().replace("\"maxSize\": 6", "\"maxSize\": 60");
    let tampered = w.write("tampered.json", &text);
    let out = w.tessera().args(["apply", "--plan"]).arg(&tampered).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("modified after it was made"), "{}", stderr(&out));
}

#[test]
fn apply_emits_json_lines_for_ci() {
    let w = Workdir::new();
    let out = w.tessera().args(["apply", QUICKSTART, "--auto-approve", "--output", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let events: Vec<Value> =
        stdout(&out).lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect();
    assert_eq!(events[0]["event"], "plan");
    assert_eq!(events[0]["plan"]["actions"].as_array().unwrap().len(), QUICKSTART_RESOURCES);
    assert_eq!(events[1]["event"], "run_started");
    assert_eq!(events.iter().filter(|e| e["event"] == "step_succeeded").count(), QUICKSTART_RESOURCES);
    assert_eq!(events.last().unwrap()["event"], "report");
}

#[test]
fn drift_exits_2_after_a_console_change() {
    let w = Workdir::new();
    let out = w.tessera().args(["apply", QUICKSTART, "--auto-approve"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = w.tessera().args(["drift", QUICKSTART]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    let cloud = tessera_sim::SimCloud::durable(&w.path("sim.db"), Default::default()).unwrap();
    cloud.console_edit("sim-gcp/sim.nodepool/system", "maxSize", serde_json::json!(20)).unwrap();
    let out = w.tessera().args(["drift", QUICKSTART]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    assert!(text.contains("sim-gcp/sim.nodepool/system") && text.contains("maxSize: recorded 6, found 20"), "{text}");

    let out = w.tessera().args(["drift", QUICKSTART, "--output", "json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["drift"][0]["live"], 20);
    assert_eq!(v["drift"][0]["path"], json!(["maxSize"]));
    assert_eq!((&v["complete"], &v["unknown"]), (&json!(true), &json!([])));

    // Clusters whose API cannot be reached: what could not be read is in the answer, never an
    // empty list that reads as "no drift".
    let out = w
        .tessera()
        .env("TESSERA_SIM_KUBE_UNREACHABLE", "true")
        .args(["drift", QUICKSTART, "--output", "json", "--unreachable-for", "0s"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["complete"], json!(false), "{v}");
    assert!(v["unknown"].as_array().is_some_and(|u| !u.is_empty()), "{v}");
}

#[test]
fn graph_renders_dot_and_mermaid() {
    let w = Workdir::new();
    let out = w.tessera().args(["graph", "specs/multi-cloud.yaml"]).output().unwrap();
    let dot = stdout(&out);
    assert!(dot.starts_with("digraph fleet {"), "{dot}");
    assert!(dot.contains("aws-eu/eks.cluster/main") && dot.contains("->"));
    let out = w.tessera().args(["graph", "specs/multi-cloud.yaml", "--format", "mermaid"]).output().unwrap();
    let mermaid = stdout(&out);
    assert!(mermaid.starts_with("flowchart LR") && mermaid.contains("-->"), "{mermaid}");
    // Between infrastructure nodes (core services come after, and have their own tests):
    // gke, aks: cluster → 2 pools = 2 edges each (GKE makes the subnetwork; AKS uses the named
    // resource group); kind: one cluster; eks: vpc → 3 subnets (3),
    // cluster ← cluster role + 3 subnets (4), each of 2 node groups ← cluster, node role, 3 subnets (10).
    let core: Vec<&str> = mermaid
        .lines()
        .filter(|l| l.contains("/kube.object/") || l.contains("/helm.release/"))
        .filter_map(|l| l.trim().split('[').next())
        .collect();
    let infra_edges = mermaid
        .lines()
        .filter_map(|l| l.trim().split_once(" --> "))
        .filter(|(a, b)| !core.contains(a) && !core.contains(b))
        .count();
    assert_eq!(infra_edges, 2 * 2 + 3 + 4 + 10);
    assert!(core.len() == 4 * CORE_SERVICES, "every placement gets its core services: {}", core.len());
}

#[test]
fn multi_cloud_plans_every_cloud_and_a_missing_kind_refuses_the_run() {
    let w = Workdir::new();
    let out = w.tessera().args(["plan", "specs/multi-cloud.yaml", "--output", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let actions = v["plan"]["actions"].as_array().unwrap();
    let eks = 1 + 3 + 2 + 1 + 2; // vpc, 3 subnets, 2 roles, cluster, 2 node groups
    let aks = 1 + 2; // the cluster (with the system pool Tessera adds) and 2 agent pools, in the named group
    let gke = 1 + 2; // the cluster and 2 node pools
    assert_eq!(
        actions.len(),
        eks + aks + gke + 1 + 4 * CORE_SERVICES,
        "eks, aks, gke, one kind cluster, and core services on each"
    );
    // Without kind, the whole run is refused before anything starts (and before any cloud is
    // called: the cloud placements are taken out, since they would reach for AWS, Azure and GCP).
    let text = std::fs::read_to_string("specs/multi-cloud.yaml").unwrap();
    // `local` is the last placement: its entry runs to the end of the file.
    let (placements, local) = (text.find("  placements:").unwrap(), text.find("    - name: local").unwrap());
    let spec = format!("{}  placements:\n{}", &text[..placements], &text[local..]);
    assert!(!spec.contains("provider: eks") && spec.contains("provider: kind"), "{spec}");
    let path = w.write("local.yaml", &spec);
    let no_kind = w.path("no-such-kind");
    let out = w.tessera().env("TESSERA_KIND", &no_kind).args(["apply", "--auto-approve"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("kind is not installed"), "{}", stderr(&out));
}

#[test]
fn schema_and_completions() {
    let w = Workdir::new();
    let out = w.tessera().arg("schema").output().unwrap();
    let schema: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema["title"], "Tessera Fleet");
    assert!(schema["properties"]["spec"].is_object());
    let out = w.tessera().args(["completions", "bash"]).output().unwrap();
    assert!(stdout(&out).contains("tessera"));
    let committed = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tessera.schema.json")).unwrap();
    let committed: Value = serde_json::from_str(&committed).unwrap();
    assert_eq!(committed, schema, "tessera.schema.json is out of date: run `tessera schema > tessera.schema.json`");
}

#[test]
fn state_history_and_show() {
    let w = Workdir::new();
    w.tessera().args(["apply", QUICKSTART, "--auto-approve"]).assert().success();
    let out = w.tessera().args(["state", "show", "sim-aws/sim.cluster/main"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["attrs"]["version"], "1.31");
    let out = w.tessera().args(["state", "history", "--output", "json", "--limit", "100"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), QUICKSTART_RESOURCES);
    let out = w.tessera().args(["state", "history", "--output", "json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 50, "the newest 50 by default");
    let out = w.tessera().args(["state", "show", "nope/x/y"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn postgres_state_through_the_cli() {
    let w = Workdir::new();
    let base =
        std::env::var("TESSERA_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let url = format!("{base}?schema=cli_{}", uuid::Uuid::new_v4().simple());
    let out = w.tessera().env("TESSERA_STATE", &url).args(["apply", QUICKSTART, "--auto-approve"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out =
        w.tessera().env("TESSERA_STATE", &url).args(["plan", QUICKSTART, "--detailed-exitcode"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = w.tessera().env("TESSERA_STATE", &url).args(["state", "list", "--output", "json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["resources"].as_array().unwrap().len(), QUICKSTART_RESOURCES);
}

/// A call still in flight 5 s after the signal is dropped with its intent open (the cloud may
/// have acted); every other step stops between attempts. Recovery then settles what was open.
#[test]
fn sigterm_mid_apply_leaves_no_lock_and_only_in_flight_intents_open_for_recovery() {
    let w = Workdir::new();
    let out = w.apply_and_signal("-TERM");
    assert_eq!(out.status.code(), Some(1), "an interrupted apply exits 1");
    let lines = stdout(&out);
    assert!(lines.contains("\"interrupted\""), "the run saw the signal as an interruption: {lines}");
    let left_open: Vec<String> = lines
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "step_interrupted" && e["why"].as_str().is_some_and(|w| w.contains("left open")))
        .filter_map(|e| e["address"].as_str().map(str::to_string))
        .collect();

    let intents = w.tessera().args(["--output", "json", "state", "intents"]).output().unwrap();
    let v: Value = serde_json::from_slice(&intents.stdout).unwrap();
    let mut open: Vec<String> =
        v.as_array().unwrap().iter().filter_map(|i| i["address"].as_str().map(str::to_string)).collect();
    open.sort();
    let mut expected = left_open.clone();
    expected.sort();
    assert_eq!(open, expected, "exactly the calls still in flight after the grace period are left open");
    // The lock is gone: a second apply starts at once (no --lock-timeout), recovers, and finishes.
    let out = w.tessera().args(["apply", QUICKSTART, "--auto-approve"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let intents = w.tessera().args(["--output", "json", "state", "intents"]).output().unwrap();
    let v: Value = serde_json::from_slice(&intents.stdout).unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(0), "recovery closed them: {v}");
    let out = w.tessera().args(["plan", QUICKSTART, "--detailed-exitcode"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn bad_flags_and_an_empty_state_url_are_refused_before_anything_runs() {
    let w = Workdir::new();
    for args in [
        vec!["--sim-time-scale", "inf", "plan", QUICKSTART],
        vec!["--sim-time-scale", "NaN", "plan", QUICKSTART],
        vec!["--sim-throttle-rate", "2", "plan", QUICKSTART],
    ] {
        let out = w.tessera().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("invalid value"), "{}", stderr(&out));
    }
    let out = w.tessera().env("TESSERA_STATE", "").args(["apply", QUICKSTART, "--auto-approve"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!w.path("sim.db").exists(), "nothing ran");
}

#[test]
fn unbounded_inputs_are_refused_at_once() {
    let w = Workdir::new();
    let out = w.tessera().args(["apply", "--plan", "/dev/zero", "--auto-approve"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a regular file"), "{}", stderr(&out));
    let out = w.tessera().args(["validate", "/dev/zero"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a regular file"), "{}", stderr(&out));
    let big = w.write("big.yaml", &"#".repeat(5 * 1024 * 1024));
    let out = w.tessera().arg("validate").arg(&big).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("over the limit"), "{}", stderr(&out));
    let fifo = w.path("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let out = w.tessera().args(["--policy"]).arg(&fifo).args(["plan", QUICKSTART]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("not a regular file"), "a FIFO policy is refused, not waited on: {}", stderr(&out));
}

#[test]
fn kind_without_kind_or_docker_is_refused_before_anything_is_recorded() {
    let w = Workdir::new();
    let out = w
        .tessera()
        .env("TESSERA_KIND", w.path("no-such-kind"))
        .args(["apply", "specs/local.yaml", "--auto-approve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("kind is not installed"), "{}", stderr(&out));

    // kind is there, Docker is not: kind's own words, as it says them.
    let kind = w.write(
        "kind",
        "#!/bin/sh\ncase \"$1\" in\n  version) echo 'kind v0.32.0 go1.24 linux/amd64';;\n  *) echo 'ERROR: failed to list clusters: command \"docker ps -a --filter label=io.x-k8s.kind.cluster --format {{.Label \\\"io.x-k8s.kind.cluster\\\"}}\" failed with error: exit status 1' >&2\n     echo 'Command Output: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?' >&2\n     exit 1;;\nesac\n",
    );
    std::fs::set_permissions(&kind, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out =
        w.tessera().env("TESSERA_KIND", &kind).args(["apply", "specs/local.yaml", "--auto-approve"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("Docker is not running"), "{}", stderr(&out));

    let out = w.tessera().args(["--output", "json", "state", "list"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((&v["meta"]["serial"], &v["meta"]["fleet"]), (&json!(0), &Value::Null), "state is untouched: {v}");
    assert_eq!(v["resources"].as_array().map(Vec::len), Some(0));
    for what in ["history", "intents"] {
        let out = w.tessera().args(["--output", "json", "state", what]).output().unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        assert_eq!(v.as_array().map(Vec::len), Some(0), "state {what} is untouched: {v}");
    }
}

#[test]
fn an_apply_right_after_a_sigkill_takes_the_dead_local_lock_over_at_once() {
    let w = Workdir::new();
    w.apply_and_signal("-KILL");

    let started = std::time::Instant::now();
    // No --lock-timeout: with the 2-minute lease still running, only a takeover lets this start.
    let out = w.tessera().args(["apply", QUICKSTART, "--auto-approve"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "no wait for the lease to expire");
    let out = w.tessera().args(["--output", "json", "state", "history", "--limit", "1000"]).output().unwrap();
    let history: Value = serde_json::from_slice(&out.stdout).unwrap();
    let takeover = history
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["change"].as_str().is_some_and(|c| c.starts_with("force-unlock")));
    let by = takeover.map(|e| e["run_id"].to_string()).unwrap_or_default();
    assert!(
        by.contains("that process is gone from this machine"),
        "the takeover is recorded, with who took over: {history}"
    );
}

#[test]
fn an_emptied_state_is_refused_and_builds_nothing_a_second_time() {
    let w = Workdir::new();
    let out = w.tessera().args(["apply", QUICKSTART, "--auto-approve"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let before =
        tessera_sim::SimCloud::durable(&w.path("sim.db"), Default::default()).unwrap().resources().unwrap().len();
    // `: > state.db`, as in the issue.
    std::fs::write(w.path("state.db"), b"").unwrap();
    let out = w.tessera().args(["apply", QUICKSTART, "--auto-approve"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("is damaged: the file is empty"), "{}", stderr(&out));
    let after =
        tessera_sim::SimCloud::durable(&w.path("sim.db"), Default::default()).unwrap().resources().unwrap().len();
    assert_eq!(before, after, "nothing was created a second time");
}

/// Kubernetes moves a control plane one minor at a time and never down: against what state
/// records, `plan` refuses a skip and a downgrade at the version's line, and takes the next minor.
#[test]
fn upgrades_move_one_minor_at_a_time_and_never_down() {
    let w = Workdir::new();
    let spec = |version: &str| {
        format!(
            "apiVersion: tessera.dev/v1alpha1
kind: Fleet
metadata: {{ name: versions }}
spec:
  kubernetes: {{ version: \"{version}\" }}
  nodePools:
    - {{ name: system, machine: {{ vcpu: 4, memoryGiB: 16 }}, scale: {{ min: 1, max: 2 }} }}
  coreServices:
    monitoring: {{ enabled: false }}
    logging: {{ enabled: false, auditLogs: true }}
  placements:
    - {{ name: aws, provider: sim, sim: {{ profile: eks }}, region: eu-west-1 }}
"
        )
    };
    let path = w.write("v.yaml", &spec("1.30"));
    let out = w.tessera().args(["apply", "--auto-approve"]).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    for (version, says) in
        [("1.32", "from 1.30 to 1.32 in one step"), ("1.29", "would downgrade Kubernetes from 1.30 to 1.29")]
    {
        std::fs::write(&path, spec(version)).unwrap();
        let out = w.tessera().arg("plan").arg(&path).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{version}: {}", stdout(&out));
        // Words, whatever the terminal width wrapped.
        let err = stderr(&out).split_whitespace().filter(|w| *w != "│").collect::<Vec<_>>().join(" ");
        assert!(err.contains(says), "{version}: {err}");
        assert!(err.contains("v.yaml:5:"), "at the version's line: {err}");
    }
    std::fs::write(&path, spec("1.31")).unwrap();
    let out = w.tessera().args(["plan", "--detailed-exitcode"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "the next minor plans as an update: {}", stderr(&out));
}

/// Only `apply` makes a state: plan, drift, graph, verify and `state list` read a state that does
/// not exist as empty and leave no file (nor directory) behind, and a plan saved then applies to
/// the state that `apply` creates.
#[test]
fn only_apply_creates_a_state() {
    let w = Workdir::new();
    let state = w.path("not-yet/state.db");
    let url = format!("sqlite://{}", state.display());
    let run = |args: &[&str]| w.tessera().env("TESSERA_STATE", &url).args(args).output().unwrap();
    let plan = w.path("first.plan");
    for args in [
        vec!["plan", QUICKSTART],
        vec!["drift", QUICKSTART],
        vec!["graph", QUICKSTART],
        vec!["state", "list"],
        vec!["plan", QUICKSTART, "-o", plan.to_str().unwrap()],
    ] {
        let out = run(&args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(!state.exists() && !w.path("not-yet").exists(), "{args:?} made a state");
    }
    let out = run(&["apply", "--plan", plan.to_str().unwrap()]);
    assert!(out.status.success(), "a plan made before the state existed applies: {}", stderr(&out));
    assert!(state.exists());
    let out = run(&["plan", QUICKSTART, "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // Once written, the state is not a stranger's: that old plan is stale now.
    let out = run(&["apply", "--plan", plan.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
}
