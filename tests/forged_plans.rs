//! A plan file is data anyone can write, and its digest anyone can recompute. Forged plans are
//! refused before anything runs: one that marks a data field as holding references (to pull
//! another cluster's values into this one), one that hides a value behind "(known after apply)",
//! one whose objects differ from what its changes show, one that deletes what the spec wants.
//! The honest plan they were made from is shown and applied.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use tessera::plan::{ActionKind, PlanFile};

struct Workdir(tempfile::TempDir);

impl Workdir {
    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    fn tessera(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_tessera"))
            .current_dir(self.0.path())
            .env("TESSERA_STATE", format!("sqlite://{}", self.path("state.db").display()))
            .env("TESSERA_SIM_CLOUD", self.path("sim.db"))
            .env("TESSERA_SIM_TIME_SCALE", "0")
            .env("NO_COLOR", "1")
            .args(args)
            .output()
            .expect("run tessera")
    }
}

/// Both streams, with miette's wrapping (line breaks and its `│` gutter) folded into spaces.
fn text(o: &Output) -> String {
    let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    all.split(|c: char| c.is_whitespace() || c == '│').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

fn spec(extra: u32) -> String {
    common::one_pool_fleet(
        "forge",
        &format!(
            "  coreServices:
    monitoring:
      values: {{ extra: {extra}, grafana: {{ enabled: false }} }}
    logging: {{ enabled: false, auditLogs: true }}
  placements:
    - {{ name: this, provider: sim, region: eu-west-1 }}
    - {{ name: other, provider: sim, region: us-east-2 }}
"
        ),
    )
}

const RELEASE: &str = "this/helm.release/kube-prometheus-stack";

/// The honest plan, edited by `forge` and sealed again with a recomputed digest.
fn forged(w: &Workdir, name: &str, forge: impl FnOnce(&mut tessera::plan::Plan)) -> String {
    let mut file = PlanFile::load(&w.path("honest.json")).expect("the honest plan");
    forge(&mut file.plan);
    PlanFile::new(file.plan).save(&w.path(name)).expect("save");
    name.to_string()
}

fn release(plan: &mut tessera::plan::Plan) -> &mut tessera::plan::Action {
    plan.actions.iter_mut().find(|a| a.address.to_string() == RELEASE).expect("the release's update")
}

fn recorded_values(w: &Workdir) -> Value {
    let out = w.tessera(&["state", "show", RELEASE, "--output", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v.pointer("/0/attrs/values").cloned().unwrap_or(Value::Null)
}

#[test]
fn forged_plan_files_are_refused_and_the_honest_one_runs() {
    let w = Workdir(tempfile::tempdir().expect("tempdir"));
    std::fs::write(w.path("fleet.yaml"), spec(1)).unwrap();
    let out = w.tessera(&["apply", "fleet.yaml", "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(w.path("fleet.yaml"), spec(2)).unwrap();
    let out = w.tessera(&["plan", "fleet.yaml", "-o", "honest.json"]);
    assert!(out.status.success(), "{}", text(&out));
    let before = recorded_values(&w);

    // 1. A data field marked as holding references: `values` would be "resolved", pulling in
    //    whatever a forged reference names.
    let refs = forged(&w, "refs.json", |p| {
        let d = release(p).desired.as_mut().expect("desired");
        d.ref_attrs.insert("values".into());
        d.attrs.insert("values".into(), json!({"$ref": "other/sim.cluster/main#certificateAuthority"}));
    });
    // 2. A known value shown as "(known after apply)".
    let hidden = forged(&w, "hidden.json", |p| {
        let a = release(p);
        a.changes[0].known_after_apply = true;
        a.changes[0].leaves.clear();
    });
    // 3. The object changed behind changes that still show the honest edit.
    let behind = forged(&w, "behind.json", |p| {
        let d = release(p).desired.as_mut().expect("desired");
        d.attrs.insert("values".into(), json!({"extra": 2, "grafana": {"enabled": true, "adminPassword": "pwned"}}));
    });
    // 4. A delete of what the spec wants.
    let delete = forged(&w, "delete.json", |p| {
        let mut a = release(p).clone();
        a.kind = ActionKind::Delete;
        a.desired = None;
        a.changes.clear();
        a.address = "other/sim.cluster/main".parse().unwrap();
        p.actions.push(a);
    });

    for (file, says) in [
        (&refs, "where references are"),
        (&hidden, "known after apply"),
        (&behind, "new value shown is not the desired one"),
        (&delete, "deletes what the spec still wants"),
    ] {
        let out = w.tessera(&["apply", "--plan", file]);
        assert!(!out.status.success(), "{file} was applied: {}", text(&out));
        assert!(text(&out).contains(says), "{file}: {}", text(&out));
        assert_eq!(recorded_values(&w), before, "{file} changed nothing");
    }
    // What an approver reads is refused too when it contradicts the plan's objects.
    let out = w.tessera(&["show", &hidden]);
    assert!(!out.status.success() && text(&out).contains("does not show what it would do"), "{}", text(&out));

    // The honest plan is shown and applied.
    let out = w.tessera(&["show", "honest.json"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("extra: 1 → 2"), "{}", text(&out));
    let out = w.tessera(&["apply", "--plan", "honest.json"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(recorded_values(&w)["extra"], 2);
    assert!(Path::new(&w.path("honest.json")).exists());
}
