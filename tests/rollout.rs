//! Progressive rollout through the CLI on the durable sim: an upgrade goes wave by wave, halts
//! on an unhealthy canary leaving the other placements untouched, reads the halted gate again on
//! the next apply, and resumes once it passes.

mod common;

use common::workdir::Workdir;
use serde_json::Value;

/// `tessera` with the sim's time running: a 10-minute soak lasts 0.6 s.
fn tessera(w: &Workdir) -> assert_cmd::Command {
    let mut c = w.tessera();
    c.env("TESSERA_SIM_TIME_SCALE", "0.001");
    c
}

/// The quickstart at `version`, in two waves: `sim-aws` first, then the rest.
fn spec(w: &Workdir, version: &str) -> String {
    let quickstart = std::fs::read_to_string(format!("{}/specs/quickstart.yaml", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .replace("version: \"1.31\"", &format!("version: \"{version}\""));
    let spec = format!(
        "{quickstart}  rollout:\n    waves:\n      - {{ placements: [sim-aws] }}\n      - {{ placements: [\"*\"] }}\n    soak: 10m\n"
    );
    let path = w.path("fleet.yaml");
    std::fs::write(&path, spec).unwrap();
    path.display().to_string()
}

/// `apply SPEC` with JSON events: the exit code, every event line, and all the output.
fn apply(w: &Workdir, spec: &str, unhealthy: Option<&str>, extra: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let mut c = tessera(w);
    if let Some(p) = unhealthy {
        c.env("TESSERA_SIM_UNHEALTHY_AFTER_UPGRADE", p);
    }
    let out = c.args(["--output", "json", "apply", spec, "--auto-approve"]).args(extra).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let events = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    (out.status.code(), events, format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
}

/// `validate SPEC`'s diagnostics, unwrapped: miette fits them to the terminal's width.
fn validate(w: &Workdir, spec: &std::path::Path) -> (Option<i32>, String) {
    let (code, text) = w.run(&["validate", spec.to_str().unwrap()]);
    let words: Vec<&str> = text.split_whitespace().filter(|w| *w != "│").collect();
    (code, words.join(" "))
}

fn plan_of(w: &Workdir, spec: &str) -> (Option<i32>, String) {
    let out = tessera(w).args(["plan", spec, "--detailed-exitcode"]).output().unwrap();
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn of<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

/// The placements whose steps started, in order of first start.
fn started_placements(events: &[Value]) -> Vec<String> {
    let mut seen = Vec::new();
    for e in of(events, "step_started") {
        let p = e["placement"].as_str().unwrap_or_default().to_string();
        if !seen.contains(&p) {
            seen.push(p);
        }
    }
    seen
}

/// No step of a wave starts before every earlier wave's gate has passed for each of its
/// placements; returns the number of gate reads checked.
fn assert_waves_in_order(events: &[Value]) -> usize {
    let mut passed_waves = std::collections::BTreeSet::new();
    let mut failed_in_wave = std::collections::BTreeMap::<u64, bool>::new();
    let mut checked = 0;
    for e in events {
        match e["event"].as_str() {
            Some("gate_read") => {
                checked += 1;
                let wave = e["wave"].as_u64().unwrap();
                *failed_in_wave.entry(wave).or_default() |= e["passed"] != true;
            }
            Some("wave_started") => {
                let wave = e["wave"].as_u64().unwrap();
                for (w, failed) in &failed_in_wave {
                    assert!(*w < wave && !failed, "wave {wave} started after wave {w}'s gate failed: {events:#?}");
                    passed_waves.insert(*w);
                }
            }
            Some("step_started") => {
                let wave = e["wave"].as_u64().unwrap();
                let earlier_unpassed = failed_in_wave.iter().any(|(w, failed)| *w < wave && *failed);
                assert!(!earlier_unpassed, "a step of wave {wave} started after an earlier gate failed: {e}");
            }
            _ => {}
        }
    }
    checked
}

#[test]
fn an_upgrade_goes_wave_by_wave_halts_on_an_unhealthy_canary_and_resumes_once_it_is_healthy() {
    let w = Workdir::new();
    let v1 = spec(&w, "1.31");

    // The first apply creates the fleet in waves too: the canary is made and gated first.
    let (code, events, out) = apply(&w, &v1, None, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(started_placements(&events)[0], "sim-aws", "{out}");
    assert_eq!(of(&events, "wave_started").len(), 2, "{out}");
    assert!(assert_waves_in_order(&events) >= 3, "every placement's gate was read: {out}");
    let soak = of(&events, "soaking");
    assert_eq!(soak[0]["soak_ms"], 600, "10m at the sim's time scale of 0.001: {out}");

    // The plan shows the waves.
    let v2 = spec(&w, "1.32");
    let (code, plan) = plan_of(&w, &v2);
    assert_eq!(code, Some(2), "{plan}");
    assert!(plan.contains("Rollout") && plan.contains("wave 1  sim-aws"), "{plan}");
    assert!(plan.contains("wave 2  sim-gcp, sim-azure"), "{plan}");

    // The upgrade: the canary's nodes are NotReady after it, so its gate halts the rollout.
    let (code, events, out) = apply(&w, &v2, Some("sim-aws"), &[]);
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(started_placements(&events), ["sim-aws"], "nothing of wave 2 started: {out}");
    let gates = of(&events, "gate_read");
    assert_eq!(gates.len(), 1, "{out}");
    assert_eq!(gates[0]["placement"], "sim-aws");
    assert_eq!(gates[0]["passed"], false);
    assert!(gates[0]["saw"].to_string().contains("nodesReady"), "{out}");
    assert_eq!(of(&events, "rollout_halted").len(), 1, "{out}");
    assert!(out.contains("apply halted: rollout halted at wave 1"), "{out}");
    assert!(out.contains("placement `sim-aws` failed its gate"), "{out}");
    assert_waves_in_order(&events);

    // The other placements are untouched: the plan still upgrades them, and says where it stopped.
    let (code, plan) = plan_of(&w, &v2);
    assert_eq!(code, Some(2), "{plan}");
    assert!(plan.contains("the rollout halted at wave 1 (sim-aws)"), "{plan}");
    assert!(!plan.contains("sim-aws/"), "the canary is upgraded already: {plan}");
    assert!(plan.contains("sim-gcp/") && plan.contains("sim-azure/"), "{plan}");

    // The reconcile loop reports the halt and moves nothing on.
    let out = tessera(&w).args(["reconcile", "--once", &v2]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let tick: Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|e: &Value| e["event"] == "tick")
        .unwrap_or_default();
    assert_eq!(tick["rollout_halted_wave"], 1, "{stdout}");
    assert_eq!(out.status.code(), Some(2), "pending changes: {stdout}");

    // Still unhealthy: the next apply reads the halted gate again and changes nothing.
    let (code, events, out) = apply(&w, &v2, Some("sim-aws"), &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(of(&events, "step_started").is_empty(), "{out}");
    assert_eq!(of(&events, "gate_read").len(), 1, "{out}");

    // Healthy again: the gate passes and the rollout goes on with wave 2.
    let (code, events, out) = apply(&w, &v2, None, &[]);
    assert_eq!(code, Some(0), "{out}");
    let gates = of(&events, "gate_read");
    assert_eq!(gates[0]["placement"], "sim-aws", "the halted wave's gate is read first: {out}");
    assert_eq!(gates[0]["passed"], true, "{out}");
    let started = started_placements(&events);
    assert!(!started.contains(&"sim-aws".to_string()) && started.len() == 2, "{started:?}: {out}");
    assert_waves_in_order(&events);
    let (code, plan) = plan_of(&w, &v2);
    assert_eq!(code, Some(0), "{plan}");
    assert!(!plan.contains("halted"), "the halt is cleared: {plan}");
}

#[test]
fn rollout_restart_forgets_the_halt() {
    let w = Workdir::new();
    let v1 = spec(&w, "1.31");
    assert_eq!(apply(&w, &v1, None, &[]).0, Some(0));
    let v2 = spec(&w, "1.32");
    let (code, _, out) = apply(&w, &v2, Some("sim-aws"), &[]);
    assert_eq!(code, Some(1), "{out}");
    // The canary stays unhealthy, and the operator decides to go on regardless.
    let (code, events, out) = apply(&w, &v2, Some("sim-aws"), &["--rollout-restart"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(of(&events, "gate_read").iter().all(|g| g["placement"] != "sim-aws"), "{out}");
    assert_eq!(started_placements(&events).len(), 2, "{out}");
}

#[test]
fn a_spec_whose_waves_leave_a_placement_out_is_refused_at_its_line() {
    let w = Workdir::new();
    let quickstart = std::fs::read_to_string(format!("{}/specs/quickstart.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let path = w.path("fleet.yaml");
    std::fs::write(
        &path,
        format!("{quickstart}  rollout:\n    waves:\n      - {{ placements: [sim-aws, sim-gpc] }}\n"),
    )
    .unwrap();
    let (code, text) = validate(&w, &path);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("no placement named `sim-gpc`") && text.contains("did you mean") && text.contains("`sim-gcp`"),
        "{text}"
    );
    assert!(text.contains("are in no wave"), "{text}");
    assert!(text.contains("fleet.yaml:72:7"), "a location: {text}");
}

#[test]
fn every_wrong_rollout_setting_is_named_at_its_line_with_how_to_fix_it() {
    let w = Workdir::new();
    let quickstart = std::fs::read_to_string(format!("{}/specs/quickstart.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let rollout = "  rollout:
    soak: 10 minutes
    gate: { alertsFiring: some }
    waves:
      - { placements: [\"gcp-*\"], maxParallel: 0 }
      - { placements: [sim-aws], gate: never }
      - { placements: [\"*\"] }
      - { placements: [sim-gcp] }
";
    let path = w.path("fleet.yaml");
    std::fs::write(&path, format!("{quickstart}{rollout}")).unwrap();
    let (code, text) = validate(&w, &path);
    assert_eq!(code, Some(1), "{text}");
    for expected in [
        "soak `10 minutes` is not a duration",
        "alertsFiring `some` is not one Tessera knows",
        "no placement named `gcp-*`",
        "maxParallel must be at least 1",
        "`never` is not a gate",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
    // Valid, but worth saying: the last wave takes nothing, `*` took it all.
    std::fs::write(&path, format!("{quickstart}  rollout:\n    waves:\n      - {{ placements: [\"*\"] }}\n      - {{ placements: [sim-gcp] }}\n")).unwrap();
    let (code, text) = validate(&w, &path);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("wave 2 takes no placement"), "{text}");
}

#[test]
fn a_placement_set_aside_lets_the_rollout_go_on_and_its_changes_wait_until_it_is_brought_back() {
    let w = Workdir::new();
    assert_eq!(apply(&w, &spec(&w, "1.31"), None, &[]).0, Some(0));
    let v2 = spec(&w, "1.32");
    let (code, _, out) = apply(&w, &v2, Some("sim-aws"), &[]);
    assert_eq!(code, Some(1), "{out}");

    // The canary stays sick; the operator sets it aside and the rollout goes on without it.
    let (code, events, out) = apply(&w, &v2, Some("sim-aws"), &["--skip-placement", "sim-aws"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(of(&events, "gate_read").iter().all(|g| g["placement"] != "sim-aws"), "its gate is not read: {out}");
    let mut started = started_placements(&events);
    started.sort();
    assert_eq!(started, ["sim-azure", "sim-gcp"], "{out}");
    let report = of(&events, "report")[0];
    assert!(report["report"]["notes"].to_string().contains("set aside (apply --skip-placement): sim-aws"), "{out}");

    // A later change waits for it, and every plan says so.
    let grown =
        std::fs::read_to_string(&v2).unwrap().replace("scale: { min: 1, max: 10 }", "scale: { min: 1, max: 12 }");
    std::fs::write(&v2, grown).unwrap();
    let (code, plan) = plan_of(&w, &v2);
    assert_eq!(code, Some(2), "{plan}");
    assert!(plan.contains("placement `sim-aws` is set aside"), "{plan}");
    let (code, events, out) = apply(&w, &v2, None, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(!started_placements(&events).contains(&"sim-aws".to_string()), "{out}");
    let (code, plan) = plan_of(&w, &v2);
    assert_eq!(code, Some(2), "sim-aws's change still waits: {plan}");
    assert!(plan.contains("sim-aws/sim.nodepool/batch") && !plan.contains("sim-gcp/"), "{plan}");

    // Brought back, healthy: its change goes out in its wave, and the fleet matches the spec.
    let (code, events, out) = apply(&w, &v2, None, &["--unskip-placement", "sim-aws"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(started_placements(&events), ["sim-aws"], "{out}");
    let (code, plan) = plan_of(&w, &v2);
    assert_eq!(code, Some(0), "{plan}");
    assert!(!plan.contains("set aside"), "{plan}");

    // A name that is no placement is refused, naming the placements.
    let (code, _, out) = apply(&w, &v2, None, &["--skip-placement", "sim-gpc"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("no such placement") && out.contains("sim-gcp"), "{out}");
}

/// In the pipeline: an approved plan's waves run in one job; a halt and a placement set aside
/// are written into the signed audit chain.
#[test]
fn the_pipeline_runs_the_waves_and_its_audit_chain_records_the_halt_and_the_placement_set_aside() {
    use common::pipe::{Pipe, text};
    let p = Pipe::new();
    let with_waves = |version: &str| {
        let quickstart = std::fs::read_to_string(format!("{}/specs/quickstart.yaml", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
            .replace("version: \"1.31\"", &format!("version: \"{version}\""));
        let rollout = "  rollout:\n    waves:\n      - { placements: [sim-aws] }\n      - { placements: [\"*\"] }\n";
        std::fs::write(p.path("fleet.yaml"), format!("{quickstart}{rollout}")).unwrap();
    };
    let pipeline = |plan: &str, extra: &[&str]| {
        let mut args = vec!["pipeline", "apply", plan, "--identity-file", "pipeline.key"];
        args.extend_from_slice(extra);
        p.run(&args).env("TESSERA_SIM_UNHEALTHY_AFTER_UPGRADE", "sim-aws").output().unwrap()
    };
    with_waves("1.31");
    let first = p.plan("first.plan");
    p.approved_apply(&first, &["alice", "bob"]);

    with_waves("1.32");
    let upgrade = p.plan("upgrade.plan");
    p.approve(&upgrade, "alice");
    p.approve(&upgrade, "bob");
    let o = pipeline(&upgrade, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("rollout halted at wave 1"), "{}", text(&o));

    let rest = p.plan("rest.plan");
    p.approve(&rest, "alice");
    p.approve(&rest, "bob");
    let o = pipeline(&rest, &["--skip-placement", "sim-aws"]);
    assert!(o.status.success(), "{}", text(&o));

    let log = p.run(&["audit", "log"]).output().unwrap();
    let log = text(&log);
    assert!(p.audit_verify(&[]).status.success(), "the chain holds");
    assert!(log.contains("rollout halted at wave 1: placement `sim-aws` failed its gate"), "{log}");
    assert!(log.contains("set aside: sim-aws"), "{log}");
}

/// A halted state: the upgrade to 1.32 halted at wave 1 on the sick canary.
fn halted(w: &Workdir) -> String {
    assert_eq!(apply(w, &spec(w, "1.31"), None, &[]).0, Some(0));
    let v2 = spec(w, "1.32");
    let (code, _, out) = apply(w, &v2, Some("sim-aws"), &[]);
    assert_eq!(code, Some(1), "{out}");
    v2
}

/// Attack: a plan file made after the halt, forged to say it destroys (so it would run without
/// waves) and sealed with a recomputed digest, is refused; nothing of wave 2 changes.
#[test]
fn a_plan_forged_to_look_like_a_destroy_cannot_carry_an_upgrade_past_the_gate() {
    let w = Workdir::new();
    halted(&w);
    // A plan names its spec relative to where it is made: make it where the spec is.
    let honest = w.path("honest.json");
    let made =
        tessera(&w).current_dir(w.dir.path()).args(["plan", "fleet.yaml", "-o", "honest.json"]).output().unwrap();
    assert_eq!(made.status.code(), Some(0), "{}", String::from_utf8_lossy(&made.stderr));
    let mut file = tessera::plan::PlanFile::load(&honest).unwrap();
    file.plan.destroy = true;
    file.plan.rollout = None;
    let forged = w.path("forged.json");
    tessera::plan::PlanFile::new(file.plan).save(&forged).unwrap();
    let out = tessera(&w)
        .current_dir(w.dir.path())
        .env("TESSERA_SIM_UNHEALTHY_AFTER_UPGRADE", "sim-aws")
        .args(["--output", "json", "apply", "--plan", forged.to_str().unwrap()])
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("it says it destroys, yet it creates or changes something"), "{text}");
    assert!(!text.contains("step_started"), "{text}");
}

/// Attack: a run killed (SIGKILL: no handler runs) while its first wave soaks leaves that wave
/// halted, with the soak's end; once the soak is over, the next apply reads the wave's gate
/// before anything of wave 2 starts.
#[test]
fn a_run_killed_during_a_soak_leaves_its_wave_halted_and_the_next_apply_reads_its_gate() {
    use std::io::{BufRead, BufReader};
    let w = Workdir::new();
    assert_eq!(apply(&w, &spec(&w, "1.31"), None, &[]).0, Some(0));
    let v2 = spec(&w, "1.32");
    let long = std::fs::read_to_string(&v2).unwrap().replace("soak: 10m", "soak: 1000h");
    std::fs::write(&v2, long).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("TESSERA_STATE", format!("sqlite://{}", w.path("state.db").display()))
        .env("TESSERA_SIM_CLOUD", w.path("sim.db"))
        .env("TESSERA_SIM_TIME_SCALE", "0.001")
        .env("XDG_CACHE_HOME", w.path("cache"))
        .env("TESSERA_SIM_UNHEALTHY_AFTER_UPGRADE", "sim-aws")
        .args(["--output", "json", "apply", &v2, "--auto-approve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let soaking = BufReader::new(stdout).lines().map_while(Result::ok).any(|l| l.contains("\"event\":\"soaking\""));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(soaking, "the run reached its soak");

    let db = rusqlite::Connection::open(w.path("state.db")).unwrap();
    let record: String = db.query_row("SELECT record FROM rollout", [], |r| r.get(0)).unwrap();
    let record: Value = serde_json::from_str(&record).unwrap();
    assert_eq!(record["halt"]["wave"], 1, "{record}");
    assert!(record["halt"]["reason"].as_str().unwrap().contains("during wave 1's soak"), "{record}");
    let until = record["halt"]["soakUntilMs"].as_u64().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    assert!(until > now + 3_000_000, "about an hour of soak is left: {record}");
    // An hour passes.
    db.execute("UPDATE rollout SET record = json_set(record, '$.halt.soakUntilMs', 0)", []).unwrap();
    drop(db);

    let (code, events, out) = apply(&w, &v2, Some("sim-aws"), &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(of(&events, "step_started").is_empty(), "nothing of wave 2 started: {out}");
    let gates = of(&events, "gate_read");
    assert!(gates.len() == 1 && gates[0]["placement"] == "sim-aws" && gates[0]["passed"] == false, "{out}");
}

/// The halt record as state keeps it, edited in place (as time passing, or another run, would).
fn edit_halt(w: &Workdir, sql_json_edit: &str) {
    let db = rusqlite::Connection::open(w.path("state.db")).unwrap();
    db.execute(&format!("UPDATE rollout SET record = {sql_json_edit}"), []).unwrap();
}

#[test]
fn a_wave_whose_changes_did_not_finish_is_soaked_whole_before_its_gate_is_read_again() {
    let w = Workdir::new();
    let v2 = halted(&w);
    // As a run killed after the wave's last change, before its soak, leaves it.
    edit_halt(&w, "json_set(json_remove(record, '$.halt.soakUntilMs'), '$.halt.soakOwed', json('true'))");
    let (code, events, out) = apply(&w, &v2, Some("sim-aws"), &[]);
    assert_eq!(code, Some(1), "{out}");
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    let soaked = kinds.iter().position(|k| *k == "soaking").expect("a soak");
    let read = kinds.iter().position(|k| *k == "gate_read").expect("a gate read");
    assert!(soaked < read, "{kinds:?}");
    assert_eq!(of(&events, "soaking")[0]["soak_ms"], 600, "the whole soak: {out}");
}

#[test]
fn a_halted_placement_moved_into_an_ungated_wave_is_said_to_be_cleared() {
    let w = Workdir::new();
    let v2 = halted(&w);
    let ungated = std::fs::read_to_string(&v2)
        .unwrap()
        .replace("- { placements: [sim-aws] }", "- { placements: [sim-aws], gate: none }")
        .replace("scale: { min: 1, max: 10 }", "scale: { min: 1, max: 11 }");
    std::fs::write(&v2, ungated).unwrap();
    let (_, plan) = plan_of(&w, &v2);
    assert!(plan.contains("ungated wave: `apply` clears the halt without reading their gate"), "{plan}");
    let (code, events, out) = apply(&w, &v2, Some("sim-aws"), &[]);
    assert_eq!(code, Some(0), "{out}");
    let report = of(&events, "report")[0].to_string();
    assert!(report.contains("which is not gated: the halt is cleared"), "{report}");
}

#[test]
fn a_halted_placement_set_aside_keeps_its_halt_and_brought_back_its_gate_is_read_first() {
    let w = Workdir::new();
    let v2 = halted(&w);
    let (code, _, out) = apply(&w, &v2, Some("sim-aws"), &["--skip-placement", "sim-aws"]);
    assert_eq!(code, Some(0), "{out}");
    let (_, plan) = plan_of(&w, &v2);
    assert!(plan.contains("it was halted, and its gate is read again when it is brought back"), "{plan}");
    // Brought back still sick: its gate is read before anything changes, and halts again.
    let (code, events, out) = apply(&w, &v2, Some("sim-aws"), &["--unskip-placement", "sim-aws"]);
    assert_eq!(code, Some(1), "{out}");
    let gates = of(&events, "gate_read");
    assert!(gates.len() == 1 && gates[0]["placement"] == "sim-aws" && gates[0]["passed"] == false, "{out}");
    // Only what is set aside can be brought back.
    let (code, _, out) = apply(&w, &v2, None, &["--unskip-placement", "nope"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("that placement is not set aside"), "{out}");
}

#[test]
fn a_destroy_takes_every_placement_and_the_rollout_record_with_it() {
    let w = Workdir::new();
    let v2 = halted(&w);
    let out = tessera(&w).args(["destroy", &v2, "--auto-approve", "--skip-placement", "sim-aws"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("do not apply to it"));
    assert_eq!(tessera(&w).args(["destroy", &v2, "--auto-approve"]).output().unwrap().status.code(), Some(0));
    let db = rusqlite::Connection::open(w.path("state.db")).unwrap();
    let rows: i64 = db.query_row("SELECT COUNT(*) FROM rollout", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 0, "no halt is left on clusters that are gone");
    // The fleet comes back, wave by wave, with no halt in its way.
    let (code, _, out) = apply(&w, &v2, None, &[]);
    assert_eq!(code, Some(0), "{out}");
}
