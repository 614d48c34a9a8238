//! A cluster deleted outside Tessera is gone: the readers (`verify`, `drift`, `plan`) say so at
//! once for that placement, and go on with the others. The sim fleet has three clusters; one is
//! deleted in the sim's console. Before, `verify` retried that cluster's API as "connection
//! refused", placement after placement, for minutes.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

const QUICKSTART: &str = "specs/quickstart.yaml";
const GONE: &str = "sim-gcp/sim.cluster/main";

/// A ceiling far above what reading three sim clusters takes, far below one retry budget.
const CEILING: Duration = Duration::from_secs(30);

fn tessera(dir: &tempfile::TempDir) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("tessera"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("TESSERA_STATE", format!("sqlite://{}", dir.path().join("state.db").display()))
        .env("TESSERA_SIM_CLOUD", dir.path().join("sim.db"))
        .env("TESSERA_SIM_TIME_SCALE", "0")
        .env("NO_COLOR", "1");
    c
}

fn timed(mut c: Command) -> (std::process::Output, Duration) {
    let started = Instant::now();
    let out = c.output().expect("tessera runs");
    (out, started.elapsed())
}

#[test]
fn a_deleted_cluster_is_reported_at_once_and_the_others_are_verified() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = tessera(&dir).args(["apply", QUICKSTART, "--auto-approve"]).output().expect("apply");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cloud = tessera_sim::SimCloud::durable(&dir.path().join("sim.db"), Default::default()).expect("sim cloud");
    cloud.console_delete(GONE).expect("the cluster is deleted in the console");

    let mut verify = tessera(&dir);
    verify.args(["--output", "json", "verify", QUICKSTART]);
    let (out, took) = timed(verify);
    assert!(took < CEILING, "verify took {took:?}");
    assert_eq!(out.status.code(), Some(1), "a placement could not be verified");
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let placements = v["placements"].as_array().expect("placements");
    assert_eq!(placements.len(), 3, "{v:#}");
    for p in placements {
        if p["placement"] == "sim-gcp" {
            let error = p["error"].as_str().unwrap_or_default();
            assert!(error.contains(GONE) && error.contains("does not exist any more"), "{error}");
        } else {
            assert!(p.get("error").is_none(), "the other placements are read: {p:#}");
        }
    }

    let mut drift = tessera(&dir);
    drift.args(["drift", QUICKSTART]);
    let (out, took) = timed(drift);
    assert!(took < CEILING, "drift took {took:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains(GONE), "{text}");

    let mut plan = tessera(&dir);
    plan.args(["plan", QUICKSTART]);
    let (out, took) = timed(plan);
    assert!(took < CEILING, "plan took {took:?}");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
