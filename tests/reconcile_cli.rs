//! `tessera reconcile` as a scheduled job (`--once` and its exit codes) and as a service
//! (SIGTERM: the tick in flight finishes, exit 0, the lock released), on the durable sim.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;
use tessera::state::StateStore;

const QUICKSTART: &str = "specs/quickstart.yaml";

struct Workdir(tempfile::TempDir);

impl Workdir {
    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    fn tessera(&self) -> Command {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("tessera"));
        c.current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("TESSERA_STATE", format!("sqlite://{}", self.path("state.db").display()))
            .env("TESSERA_SIM_CLOUD", self.path("sim.db"))
            .env("TESSERA_SIM_TIME_SCALE", "0")
            .env("TESSERA_POLICY", self.path("no-policy.yaml"))
            .env("NO_COLOR", "1");
        c
    }

    fn once(&self, spec: &str) -> (Option<i32>, Vec<Value>, String) {
        let out = self.tessera().args(["reconcile", "--once", spec]).output().unwrap();
        let events = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line: {l}: {e}")))
            .collect();
        (out.status.code(), events, String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn applied() -> Workdir {
    let w = Workdir(tempfile::tempdir().unwrap());
    let out = w.tessera().args(["apply", QUICKSTART, "--auto-approve"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    w
}

#[test]
fn once_exits_0_in_sync_2_on_drift_or_pending_and_1_on_error() {
    let w = applied();
    let (code, events, err) = w.once(QUICKSTART);
    assert_eq!(code, Some(0), "{events:?} {err}");
    assert_eq!(events.len(), 1, "one tick event: {events:?}");
    assert_eq!(events[0]["result"], "in_sync");
    // The quickstart runs core services: every pool's coverage is there, all covered.
    let placements = events[0]["placements"].as_array().unwrap();
    assert_eq!(placements.len(), 3);
    assert!(placements.iter().all(|p| p["uncovered"].as_object().is_some_and(|u| u.len() == 3)), "{placements:?}");

    let cloud = tessera_sim::SimCloud::durable(&w.path("sim.db"), Default::default()).unwrap();
    cloud.console_edit("sim-gcp/sim.nodepool/system", "maxSize", serde_json::json!(20)).unwrap();
    let (code, events, _) = w.once(QUICKSTART);
    assert_eq!(code, Some(2));
    let drift: Vec<&Value> = events.iter().filter(|e| e["event"] == "drift").collect();
    assert_eq!(drift.len(), 1, "{events:?}");
    assert_eq!((drift[0]["placement"].as_str(), drift[0]["live"].as_i64()), (Some("sim-gcp"), Some(20)));
    cloud.console_edit("sim-gcp/sim.nodepool/system", "maxSize", serde_json::json!(6)).unwrap();

    let text = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(QUICKSTART)).unwrap();
    let changed = w.path("changed.yaml");
    std::fs::write(&changed, text.replace("scale: { min: 2, max: 4 }", "scale: { min: 2, max: 5 }")).unwrap();
    let (code, events, _) = w.once(changed.to_str().unwrap());
    assert_eq!((code, events.last().unwrap()["result"].as_str()), (Some(2), Some("pending")), "{events:?}");

    let (code, events, _) = w.once("specs/does-not-exist.yaml");
    assert_eq!((code, events.last().unwrap()["result"].as_str()), (Some(1), Some("error")));
}

#[test]
fn sigterm_finishes_the_tick_and_exits_0_with_the_lock_released() {
    let w = applied();
    let mut child = w
        .tessera()
        .args(["reconcile", QUICKSTART, "--interval", "1h", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut listening = None;
    loop {
        let line = lines.next().expect("an event").unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        if v["event"] == "listening" {
            listening = v["address"].as_str().map(str::to_string);
        }
        if v["event"] == "tick" {
            assert_eq!(v["result"], "in_sync", "{v}");
            break;
        }
    }
    let addr = listening.expect("the listening address is announced first");
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(s, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let sent = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "a clean exit on SIGTERM");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = tessera::state::SqliteStore::open(&w.path("state.db")).unwrap();
        store.lock("next", "apply", 60).await.expect("the loop left no lock behind");
    });
}

/// `reconcile: correct-drift` on a lane of `policy.yaml` (here the example policy's `local` lane,
/// which covers the sim): a console edit is undone by the tick that finds it, and the next tick
/// is in sync.
#[test]
fn a_correct_drift_lane_of_the_policy_file_undoes_a_console_edit() {
    let w = applied();
    let policy =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/policy.yaml")).unwrap();
    let lane = "  - { name: local, approvals: 1, providers: [kind, sim] }";
    assert!(policy.contains(lane));
    let policy =
        policy.replace(lane, "  - { name: local, approvals: 1, providers: [kind, sim], reconcile: correct-drift }");
    std::fs::write(w.path("no-policy.yaml"), policy).unwrap();
    let cloud = tessera_sim::SimCloud::durable(&w.path("sim.db"), Default::default()).unwrap();
    cloud.console_edit("sim-gcp/sim.nodepool/system", "maxSize", serde_json::json!(20)).unwrap();
    let (code, events, err) = w.once(QUICKSTART);
    let tick = events.last().unwrap();
    assert_eq!(tick["corrected"], serde_json::json!(["sim-gcp/sim.nodepool/system"]), "{events:?} {err}");
    assert_eq!(code, Some(2), "drift was found (and undone)");
    let live = cloud.find_by_address("sim-gcp/sim.nodepool/system").unwrap().attrs;
    assert_eq!(live["maxSize"], 6, "back to the spec");
    let (code, events, _) = w.once(QUICKSTART);
    assert_eq!((code, events.last().unwrap()["result"].as_str()), (Some(0), Some("in_sync")));
}
