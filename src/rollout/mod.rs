//! Applying a plan in waves: one wave's changes, its soak, its gate, then the next wave.
//!
//! ## Overview
//!
//! A spec's `rollout` orders its placements into waves ([`crate::spec::Rollout`]); the plan
//! carries it, so an approval covers every wave. [`run`] splits the plan by wave ([`waves`]) and
//! for each wave with changes:
//! 1. executes that wave's actions with the ordinary executor ([`crate::exec::execute`]), so each
//!    wave still runs at its own critical path, at most `maxParallel` placements at once;
//! 2. soaks: waits `soak` (scaled by the sim's time scale when every placement of the wave is on
//!    the sim), stopping at once on Ctrl-C;
//! 3. reads the wave's gate ([`gate`]) on every placement of the wave: nodes Ready, coverage as
//!    `tessera verify` reads it, and no critical alert firing where alerting is on.
//!
//! A wave whose changes fail, whose gate does not pass, or that is interrupted **halts** the
//! rollout: later waves do not start, and state records the halt ([`RolloutHalt`]). The next
//! apply reads the halted wave's gate again before it changes anything (unless the halted
//! placements have changes of their own, which then run and are gated as their wave's);
//! once it passes the record is cleared and the rollout goes on from the first wave with changes.
//! `--rollout-restart` forgets the record.
//!
//! `--skip-placement NAME` sets a placement aside (recorded in state with the run, and in the
//! pipeline's signed audit record through the run's notes): its changes wait and its gate is
//! not read, so the rollout goes on without it, until `--unskip-placement NAME`. Every plan says
//! which placements are set aside.
//!
//! A plan without a rollout runs as one ungated wave, as it always has.

pub mod gate;
pub mod waves;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::exec::{self, Event, EventSink, ExecError, ExecOptions, Report, StepKind, StepReport, StepStatus};
use crate::plan::{ActionKind, Plan};
use crate::providers::Registry;
use crate::spec::{Fleet, Gate, Rollout};
use crate::state::{Lease, RolloutHalt, SetAside, StateError, StateStore};
use crate::verify::VerifyError;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RolloutError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Exec(#[from] ExecError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    State(#[from] StateError),
    #[error("a plan with a rollout is applied with its spec: the gates read what the spec's core services must cover")]
    #[diagnostic(code(tessera::rollout::spec))]
    NoSpec,
    #[error("--skip-placement `{name}`: the spec has no such placement")]
    #[diagnostic(code(tessera::rollout::placement), help("the spec's placements: {known}"))]
    NoSuchPlacement { name: String, known: String },
    #[error("--unskip-placement `{name}`: that placement is not set aside")]
    #[diagnostic(code(tessera::rollout::placement), help("set aside now: {known}"))]
    NotSetAside { name: String, known: String },
    #[error("a destroy deletes every placement: --skip-placement and --unskip-placement do not apply to it")]
    #[diagnostic(code(tessera::rollout::destroy))]
    SetAsideInDestroy,
}

impl From<VerifyError> for RolloutError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::State(s) => Self::State(s),
            VerifyError::Provider(p) => Self::Exec(ExecError::Provider(p)),
        }
    }
}

/// Everything a rollout acts with: where state is, the lease, the clouds, the run's options.
pub struct Run<'a> {
    pub store: Arc<dyn StateStore>,
    pub lease: &'a Lease,
    pub registry: Arc<Registry>,
    pub opts: &'a ExecOptions,
    pub events: Arc<dyn EventSink>,
    pub cancel: watch::Receiver<bool>,
}

/// Applies `plan`, wave by wave when it has a rollout. See the module docs.
pub async fn run(plan: &Plan, fleet: Option<&Fleet>, mut r: Run<'_>) -> Result<Report, RolloutError> {
    if plan.destroy {
        return destroy(plan, r).await;
    }
    let aside = set_aside(&r, fleet).await?;
    let mut notes = Vec::new();
    let waiting = plan.actions.iter().filter(|a| aside.contains(&a.address.placement)).count();
    if !aside.is_empty() {
        notes.push(format!(
            "set aside (apply --skip-placement): {}; {waiting} change(s) of them wait until `apply --unskip-placement`",
            aside.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    let plan = &Plan {
        actions: plan.actions.iter().filter(|a| !aside.contains(&a.address.placement)).cloned().collect(),
        ..plan.clone()
    };
    let halt = r.store.rollout_halt().await?;
    let Some(rollout) = &plan.rollout else {
        if let Some(h) = halt {
            r.store.set_rollout_halt(r.lease, None).await?;
            notes.push(format!(
                "the spec has no rollout any more: the halt at wave {} ({}) was cleared, and every placement changes at once",
                h.wave,
                h.placements.join(", ")
            ));
        }
        let mut report =
            exec::execute(plan, r.store.clone(), r.lease, r.registry.clone(), r.opts, r.events.clone(), r.cancel)
                .await?;
        report.notes = notes;
        return Ok(report);
    };
    let fleet = fleet.ok_or(RolloutError::NoSpec)?;
    let started = tokio::time::Instant::now();
    let waves = waves::split(plan, rollout);
    let stop = Stop { plan, waves: &waves, started };
    let mut report =
        Report { steps: Vec::new(), interrupted: false, retries: 0, elapsed: Duration::ZERO, halted: None, notes };
    // A placement set aside is neither changed nor read.
    let gated =
        |placements: &[String]| -> Vec<String> { placements.iter().filter(|p| !aside.contains(*p)).cloned().collect() };

    if let Some(halt) = halt {
        let halted: Vec<String> =
            gated(&halt.placements).into_iter().filter(|p| fleet.placement(p).is_some()).collect();
        let first_changing = waves.iter().position(|w| !w.plan.actions.is_empty());
        if r.opts.restart_rollout || halted.is_empty() {
            r.store.set_rollout_halt(r.lease, None).await?;
        } else if halted.iter().all(|p| Some(rollout.wave_of(p)) == first_changing) {
            // They run first, in their wave; an ungated wave clears the halt when its changes
            // succeed, and the run says so.
            if let Some(w) = first_changing.filter(|&w| rollout.waves.get(w).is_some_and(|w| w.gate.is_none())) {
                report.notes.push(format!(
                    "the rollout had halted on {}; the spec now puts them in wave {}, which is not gated: the halt is \
                     cleared once its changes succeed, without reading their gate",
                    halted.join(", "),
                    w + 1
                ));
            }
        } else {
            // The halted placements are read before anything changes, unless they are all in the
            // first wave with changes, which then runs (retrying what failed) and is gated first.
            if let Some(still) = reread(&mut r, fleet, rollout, &halt, &halted, &mut report).await? {
                return stop.at(&r, 0, still, report).await;
            }
            r.store.set_rollout_halt(r.lease, None).await?;
        }
    }

    for (i, wave) in waves.iter().enumerate() {
        if wave.plan.actions.is_empty() {
            continue;
        }
        let spec_wave = &rollout.waves[i.min(rollout.waves.len() - 1)];
        let mut placements: Vec<String> = gated(&spec_wave.placements);
        for a in &wave.plan.actions {
            if !placements.contains(&a.address.placement) {
                placements.push(a.address.placement.clone());
            }
        }
        r.events.emit(&Event::WaveStarted {
            wave: wave.number,
            placements: placements.clone(),
            changes: wave.plan.actions.len(),
        });
        // Recorded before anything changes: a run that dies in this wave (SIGKILL, a lost
        // runner) leaves the wave halted, so the next apply reads its gate before going on.
        let pending = format!("the run ended during wave {}'s changes, before its gate was read", wave.number);
        record_halt(&r, plan, wave.number, &placements, &pending, Owed::Whole).await?;
        let opts = ExecOptions {
            wave: Some(wave.number),
            placement_limit: spec_wave.max_parallel.map(|n| n as usize),
            ..r.opts.clone()
        };
        let done = exec::execute(
            &wave.plan,
            r.store.clone(),
            r.lease,
            r.registry.clone(),
            &opts,
            r.events.clone(),
            r.cancel.clone(),
        )
        .await?;
        merge(&mut report, done);
        if report.interrupted {
            let reason = format!("interrupted during wave {}'s changes", wave.number);
            return stop.at(&r, i + 1, halted(wave.number, &placements, reason, Owed::Whole), report).await;
        }
        if !report.is_success() {
            let failed: Vec<String> = report
                .steps
                .iter()
                .filter(|s| !matches!(s.status, StepStatus::Succeeded))
                .map(|s| format!("{} {}: {}", s.kind.verb(), s.address, s.status))
                .collect();
            let reason = format!("{} change(s) did not succeed: {}", failed.len(), failed.join("; "));
            return stop.at(&r, i + 1, halted(wave.number, &placements, reason, Owed::Whole), report).await;
        }
        let Some(gate) = spec_wave.gate else {
            r.store.set_rollout_halt(r.lease, None).await?;
            continue;
        };
        let wait = soak_for(&r, fleet, rollout, &placements);
        let until = now_ms() + wait.as_millis() as u64;
        let pending = format!("the run ended during wave {}'s soak, before its gate was read", wave.number);
        record_halt(&r, plan, wave.number, &placements, &pending, Owed::Until(until)).await?;
        if !soak(&mut r, wave.number, wait).await {
            let reason = format!("interrupted during wave {}'s soak, before its gate was read", wave.number);
            report.interrupted = true;
            return stop.at(&r, i + 1, halted(wave.number, &placements, reason, Owed::Until(until)), report).await;
        }
        if let Some(reason) = read_gate(&r, fleet, wave.number, &placements, Some(&gate)).await? {
            return stop.at(&r, i + 1, halted(wave.number, &placements, reason, Owed::Nothing), report).await;
        }
        r.store.set_rollout_halt(r.lease, None).await?;
    }
    // Every wave with changes passed: a halt recorded under another spec's waves is past too.
    if r.store.rollout_halt().await?.is_some() {
        r.store.set_rollout_halt(r.lease, None).await?;
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// A destroy deletes everything, set aside or not, without waves; once everything is gone, so is
/// what state kept of rollouts (a halt on a cluster that no longer exists could never be read).
async fn destroy(plan: &Plan, r: Run<'_>) -> Result<Report, RolloutError> {
    if !r.opts.skip_placements.is_empty() || !r.opts.unskip_placements.is_empty() {
        return Err(RolloutError::SetAsideInDestroy);
    }
    let report =
        exec::execute(plan, r.store.clone(), r.lease, r.registry.clone(), r.opts, r.events.clone(), r.cancel).await?;
    if report.is_success() && r.store.resources().await?.is_empty() && !r.store.rollout().await?.is_empty() {
        r.store.set_rollout(r.lease, &Default::default(), "destroyed: the rollout record is cleared").await?;
    }
    Ok(report)
}

/// The placements set aside, after this run's `--skip-placement` and `--unskip-placement`
/// (recorded before anything else happens, so the record says what the run did).
async fn set_aside(r: &Run<'_>, fleet: Option<&Fleet>) -> Result<BTreeSet<String>, RolloutError> {
    let mut record = r.store.rollout().await?;
    let (skip, unskip) = (&r.opts.skip_placements, &r.opts.unskip_placements);
    if !skip.is_empty() || !unskip.is_empty() {
        if let Some(fleet) = fleet
            && let Some(unknown) = skip.iter().find(|p| fleet.placement(p).is_none())
        {
            let names: Vec<&str> = fleet.placements.iter().map(|p| p.name.as_str()).collect();
            return Err(RolloutError::NoSuchPlacement { name: unknown.clone(), known: names.join(", ") });
        }
        if let Some(unknown) = unskip.iter().find(|p| !record.set_aside.contains_key(*p)) {
            let known: Vec<&str> = record.set_aside.keys().map(String::as_str).collect();
            return Err(RolloutError::NotSetAside { name: unknown.clone(), known: known.join(", ") });
        }
        for p in unskip {
            // One set aside while halted comes back halted: its gate is read before anything
            // else changes.
            if let Some(SetAside { halted: Some(halt), .. }) = record.set_aside.remove(p) {
                let mut back = record.halt.take().unwrap_or(RolloutHalt { placements: Vec::new(), ..halt.clone() });
                back.placements.push(p.clone());
                back.reason = format!("brought back after being set aside while halted: {}", halt.reason);
                back.soak_owed |= halt.soak_owed;
                record.halt = Some(back);
            }
        }
        for p in skip {
            // A halted placement keeps its halt while it is set aside.
            let halted = record.halt.as_ref().filter(|h| h.placements.contains(p)).cloned();
            if let Some(h) = record.halt.as_mut() {
                h.placements.retain(|q| q != p);
            }
            if record.halt.as_ref().is_some_and(|h| h.placements.is_empty()) {
                record.halt = None;
            }
            record
                .set_aside
                .insert(p.clone(), SetAside { run_id: r.opts.run_id.clone(), at: crate::state::now_secs(), halted });
        }
        let change = format!("set aside: [{}]; brought back: [{}]", skip.join(", "), unskip.join(", "));
        r.store.set_rollout(r.lease, &record, &change).await?;
    }
    Ok(record.set_aside.into_keys().collect())
}

/// A wave's soak: the spec's, scaled by the sim's time scale when every placement of the wave is
/// on the sim.
fn soak_for(r: &Run<'_>, fleet: &Fleet, rollout: &Rollout, placements: &[String]) -> Duration {
    let scale = placements
        .iter()
        .filter_map(|p| fleet.placement(p))
        .map(|p| r.registry.time_scale(&p.provider))
        .fold(0.0_f64, f64::max);
    Duration::from_millis(rollout.soak_ms).mul_f64(scale.max(0.0))
}

/// Waits `wait`. `false`: stopped by Ctrl-C.
async fn soak(r: &mut Run<'_>, wave: usize, wait: Duration) -> bool {
    r.events.emit(&Event::Soaking { wave, soak_ms: wait.as_millis() as u64 });
    if *r.cancel.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(wait) => true,
        _ = r.cancel.changed() => false,
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}

/// What is owed of a halted wave's soak, for the run that reads its gate again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owed {
    /// It soaked: the gate can be read at once.
    Nothing,
    /// It was soaking: the rest, until this time (unix ms).
    Until(u64),
    /// Its changes did not all finish, so it never soaked: the whole soak.
    Whole,
}

/// A halt recorded by an earlier run, read again: the rest of its soak first, if it was cut
/// short, then each halted placement's gate as the wave it is in now says (one in an ungated
/// wave is not read, and the run says so). `Some` when it does not pass.
async fn reread(
    r: &mut Run<'_>,
    fleet: &Fleet,
    rollout: &Rollout,
    halt: &RolloutHalt,
    halted: &[String],
    report: &mut Report,
) -> Result<Option<Halted>, RolloutError> {
    let first_wave = halted.iter().map(|p| rollout.wave_of(p)).min().unwrap_or_default() + 1;
    let owed = if halt.soak_owed { Owed::Whole } else { halt.soak_until_ms.map_or(Owed::Nothing, Owed::Until) };
    let left = match owed {
        Owed::Nothing => Duration::ZERO,
        Owed::Until(until) => Duration::from_millis(until.saturating_sub(now_ms())),
        Owed::Whole => soak_for(r, fleet, rollout, halted),
    };
    if !left.is_zero() && !soak(r, first_wave, left).await {
        report.interrupted = true;
        return Ok(Some(self::halted(first_wave, halted, halt.reason.clone(), owed)));
    }
    let mut by_wave: std::collections::BTreeMap<usize, Vec<String>> = Default::default();
    for p in halted {
        by_wave.entry(rollout.wave_of(p)).or_default().push(p.clone());
    }
    for (wave, placements) in by_wave {
        let Some(gate) = rollout.waves.get(wave).and_then(|w| w.gate) else {
            report.notes.push(format!(
                "the rollout had halted on {}; the spec now puts them in wave {}, which is not gated, so their gate was not read",
                placements.join(", "),
                wave + 1
            ));
            continue;
        };
        if let Some(reason) = read_gate(r, fleet, wave + 1, &placements, Some(&gate)).await? {
            return Ok(Some(Halted { wave: wave + 1, placements, reason, owed: Owed::Nothing }));
        }
    }
    Ok(None)
}

/// Reads the gate of `placements`; `Some(why)` when it does not pass (`gate: None` always does).
async fn read_gate(
    r: &Run<'_>,
    fleet: &Fleet,
    wave: usize,
    placements: &[String],
    gate: Option<&Gate>,
) -> Result<Option<String>, RolloutError> {
    let Some(gate) = gate else { return Ok(None) };
    let verdicts = gate::read(fleet, placements, gate, &r.registry, r.store.as_ref(), &r.opts.retry).await?;
    let mut failed = Vec::new();
    for v in &verdicts {
        r.events.emit(&Event::GateRead {
            wave,
            placement: v.placement.clone(),
            passed: v.passed(),
            saw: v.failures.clone(),
        });
        if !v.passed() {
            failed.push(format!("placement `{}` failed its gate: {}", v.placement, v.failures.join("; ")));
        }
    }
    Ok((!failed.is_empty()).then(|| failed.join("; ")))
}

/// Records that the rollout stands halted at `wave`, and what is owed of its soak. The reason is
/// kept printable: it may quote what a cluster said (an alert's name).
async fn record_halt(
    r: &Run<'_>,
    plan: &Plan,
    wave: usize,
    placements: &[String],
    reason: &str,
    owed: Owed,
) -> Result<String, RolloutError> {
    let reason = crate::spec::printable(reason, 2_000);
    let halt = RolloutHalt {
        wave,
        placements: placements.to_vec(),
        reason: reason.clone(),
        spec_digest: plan.spec_digest.clone(),
        run_id: r.opts.run_id.clone(),
        at: crate::state::now_secs(),
        soak_until_ms: match owed {
            Owed::Until(until) => Some(until),
            _ => None,
        },
        soak_owed: owed == Owed::Whole,
    };
    r.store.set_rollout_halt(r.lease, Some(&halt)).await?;
    Ok(reason)
}

/// Where a run's rollout stops (the wave as numbered now), why, and what is still owed of its
/// soak.
struct Halted {
    wave: usize,
    placements: Vec<String>,
    reason: String,
    owed: Owed,
}

fn halted(wave: usize, placements: &[String], reason: String, owed: Owed) -> Halted {
    Halted { wave, placements: placements.to_vec(), reason, owed }
}

/// What ending a run at a halt needs of the run: its plan, its waves, when it started.
struct Stop<'a> {
    plan: &'a Plan,
    waves: &'a [waves::WavePlan],
    started: tokio::time::Instant,
}

impl Stop<'_> {
    /// Records the halt, reports every action of the waves from `from` on as not started, and
    /// ends the run.
    async fn at(&self, r: &Run<'_>, from: usize, h: Halted, mut report: Report) -> Result<Report, RolloutError> {
        let Halted { wave, placements, reason, owed } = h;
        let (plan, waves, started) = (self.plan, self.waves, self.started);
        let placements = &placements;
        let reason = record_halt(r, plan, wave, placements, &reason, owed).await?;
        r.events.emit(&Event::RolloutHalted { wave, reason: reason.clone() });
        for later in waves.iter().skip(from) {
            for a in &later.plan.actions {
                report.steps.push(StepReport {
                    address: a.address.to_string(),
                    kind: step_kind(a.kind),
                    status: StepStatus::NotStarted,
                    retries: 0,
                });
            }
        }
        report.halted = Some(format!("rollout halted at wave {wave}: {reason}"));
        report.elapsed = started.elapsed();
        Ok(report)
    }
}

fn step_kind(kind: ActionKind) -> StepKind {
    match kind {
        ActionKind::Create => StepKind::Create,
        ActionKind::Update => StepKind::Update,
        ActionKind::Replace => StepKind::Replace,
        ActionKind::Delete => StepKind::Delete,
    }
}

fn merge(into: &mut Report, wave: Report) {
    into.steps.extend(wave.steps);
    into.interrupted |= wave.interrupted;
    into.retries += wave.retries;
}
