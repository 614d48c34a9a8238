//! Upgrades: what the release before the typed resource model wrote (commit 85f3ab4: state
//! schema 1, plan format `tessera.plan/v2`), kept as test data in `tests/data/upgrade-85f3ab4/`:
//! the quickstart applied on the sim with SQLite state, the sim cloud it made, and a saved plan.
//! `README.md` in that folder says how it was made.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

const DATA: &str = "tests/data/upgrade-85f3ab4";

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(DATA).join(name)
}

/// A copy of the old state and sim cloud, so the test data stays as the old release left it.
struct Copy {
    dir: tempfile::TempDir,
}

impl Copy {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for f in ["state.db", "sim-cloud.db"] {
            std::fs::copy(data(f), dir.path().join(f)).unwrap();
        }
        Self { dir }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state.db")
    }

    fn tessera(&self) -> Command {
        let mut c = Command::cargo_bin("tessera").unwrap();
        c.current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("TESSERA_STATE", format!("sqlite://{}", self.state().display()))
            .env("TESSERA_SIM_CLOUD", self.dir.path().join("sim-cloud.db"))
            .env("TESSERA_SIM_TIME_SCALE", "0")
            .env("NO_COLOR", "1");
        c
    }

    fn query(&self, sql: &str) -> Vec<String> {
        let db = rusqlite::Connection::open(self.state()).unwrap();
        let mut stmt = db.prepare(sql).unwrap();
        stmt.query_map([], |r| r.get::<_, rusqlite::types::Value>(0))
            .unwrap()
            .map(|v| format!("{:?}", v.unwrap()))
            .collect()
    }
}

#[test]
fn a_state_written_by_the_previous_release_migrates_and_replans_only_this_releases_core_service_changes() {
    let old = Copy::new();
    assert_eq!(old.query("SELECT version FROM schema_version"), vec!["Integer(1)"], "the data is a version-1 state");
    let resources = old.query("SELECT address FROM resources ORDER BY address");
    assert!(resources.len() > 20, "the quickstart's three clusters and their core services: {resources:?}");

    let out = old
        .tessera()
        .args(["plan", &data("quickstart.yaml").display().to_string(), "--detailed-exitcode"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    // The release after 85f3ab4 added alerting to the core services (on by default): its
    // objects are created and the monitoring release's values gain the site labels; nothing of
    // the clouds changes, and nothing is replaced or deleted.
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("Plan: 6 to create, 3 to update, 0 to replace, 0 to delete"), "{text}");
    for line in text.lines().filter(|l| l.starts_with("  + ") || l.starts_with("  ~ ")) {
        assert!(
            line.contains("/helm.release/kube-prometheus-stack") || line.contains("-tessera  (new resource)"),
            "only alerting's objects and the monitoring release change: {line}\n{text}"
        );
    }
    old.tessera().args(["apply", &data("quickstart.yaml").display().to_string(), "--auto-approve"]).assert().success();
    let replan = old
        .tessera()
        .args(["plan", &data("quickstart.yaml").display().to_string(), "--detailed-exitcode"])
        .output()
        .unwrap();
    assert_eq!(replan.status.code(), Some(0), "a clean re-plan after one apply");

    let current = format!("Integer({})", tessera::state::schema::CURRENT);
    assert_eq!(old.query("SELECT version FROM schema_version"), vec![current], "migrated to this build's version");
    assert_eq!(old.query("SELECT COUNT(*) FROM rollout"), vec!["Integer(0)"], "no rollout halted in an old state");
    let now = old.query("SELECT address FROM resources ORDER BY address");
    assert!(resources.iter().all(|r| now.contains(r)), "nothing lost");
    let versions = old.query("SELECT DISTINCT schema_version FROM resources");
    assert_eq!(versions, vec!["Integer(1)"], "each record says which schema its values have");
}

#[test]
fn a_plan_file_made_by_the_previous_release_is_refused_as_stale() {
    let old = Copy::new();
    let plan = data("plan.json").display().to_string();
    for args in [vec!["apply", "--plan", &plan], vec!["show", &plan]] {
        let out = old.tessera().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} accepted a stale plan");
        assert!(err.contains("tessera.plan/v2") && err.contains("run `tessera plan` again"), "{args:?}: {err}");
    }
}

#[test]
fn a_record_of_a_newer_schema_version_is_refused_not_diffed() {
    let old = Copy::new();
    let spec = data("quickstart.yaml").display().to_string();
    old.tessera().args(["apply", &spec, "--auto-approve"]).assert().success();
    assert_eq!(old.tessera().args(["plan", &spec, "--detailed-exitcode"]).output().unwrap().status.code(), Some(0));
    let db = rusqlite::Connection::open(old.state()).unwrap();
    db.execute("UPDATE resources SET schema_version = 99 WHERE address = 'sim-aws/sim.nodepool/batch'", []).unwrap();
    drop(db);
    for command in ["plan", "apply"] {
        let out = old
            .tessera()
            .args([command, &spec, "--auto-approve"].iter().take(if command == "plan" { 2 } else { 3 }))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{command} went on");
        assert!(err.contains("sim-aws/sim.nodepool/batch") && err.contains("newer Tessera"), "{command}: {err}");
    }
}
