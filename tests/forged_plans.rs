//! A plan file is data anyone can write, and its digest anyone can recompute. Forged plans are
//! refused before anything runs: one that marks a data field as holding references (to pull
//! another cluster's values into this one), one that hides a value behind "(known after apply)",
//! one whose objects differ from what its changes show, one that deletes what the spec wants, one
//! that acts on another object than state records at an address, one that makes a replacement
//! look like an update.
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

/// The cloud id state records at `address`.
fn recorded_id(w: &Workdir, address: &str) -> String {
    let out = w.tessera(&["state", "show", address, "--output", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v.pointer("/0/id").and_then(Value::as_str).expect("a recorded id").to_string()
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

    // 5. The release's update pointed at another recorded object (the other placement's cluster).
    let other_cluster = recorded_id(&w, "other/sim.cluster/main");
    let swapped = forged(&w, "swapped.json", |p| {
        release(p).prior.as_mut().expect("the release's object").id = other_cluster.clone();
    });
    // 6. A delete at an address state has nothing at, of a recorded object: no approval rule on
    //    clusters would see it.
    let ghost = forged(&w, "ghost.json", |p| {
        let mut a = release(p).clone();
        a.kind = ActionKind::Delete;
        a.desired = None;
        a.changes.clear();
        a.address = "this/sim.nodepool/ghost".parse().unwrap();
        a.prior.as_mut().expect("prior").id = other_cluster.clone();
        p.actions.push(a);
    });
    // 7. An update carrying a change that only a replacement can make, and 8. a replacement order
    //    on an update (a replacement shown as an update would pass approval rules on replaces).
    let in_place = forged(&w, "in-place.json", |p| {
        release(p).changes[0].forces_replacement = true;
    });
    let ordered = forged(&w, "ordered.json", |p| {
        release(p).replacement = Some(tessera_provider_api::Replacement::DestroyBeforeCreate);
    });

    for (file, says) in [
        (&refs, "where references are"),
        (&hidden, "known after apply"),
        (&behind, "new value shown is not the desired one"),
        (&delete, "deletes what the spec still wants"),
        (&swapped, "acts on an object state does not record there"),
        (&ghost, "acts on an object state does not record there"),
        (&in_place, "can only change by replacement"),
        (&ordered, "a replacement order on no replacement"),
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

/// A saved plan that replaces a cluster (whose objects inside cannot be read until it exists, so
/// some of their new values are `null`) is shown and applied as saved.
#[test]
fn a_saved_plan_that_replaces_a_cluster_is_shown_and_applied() {
    let w = Workdir(tempfile::tempdir().expect("tempdir"));
    std::fs::write(w.path("fleet.yaml"), spec(1)).unwrap();
    let out = w.tessera(&["apply", "fleet.yaml", "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(w.path("fleet.yaml"), spec(1).replace("region: us-east-2", "region: us-west-2")).unwrap();
    let out = w.tessera(&["plan", "fleet.yaml", "-o", "moved.json"]);
    assert!(out.status.success(), "{}", text(&out));
    let plan = PlanFile::load(&w.path("moved.json")).expect("the plan");
    assert!(plan.plan.actions.iter().any(|a| a.refresh_deferred), "objects inside the new cluster wait for it");
    let null_new = plan.plan.actions.iter().flat_map(|a| &a.changes).any(|c| c.new.is_none());
    assert!(null_new, "a change to `null` (a chart without a digest) reads back as no value");
    let out = w.tessera(&["show", "moved.json"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = w.tessera(&["apply", "--plan", "moved.json"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = w.tessera(&["plan", "fleet.yaml", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
