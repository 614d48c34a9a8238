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
//! A plan without a rollout runs as one ungated wave, as it always has.

pub mod gate;
pub mod waves;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::exec::{self, Event, EventSink, ExecError, ExecOptions, Report, StepKind, StepReport, StepStatus};
use crate::plan::{ActionKind, Plan};
use crate::providers::Registry;
use crate::spec::{Fleet, Gate, Rollout};
use crate::state::{Lease, RolloutHalt, StateError, StateStore};
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
    let Some(rollout) = &plan.rollout else {
        return Ok(exec::execute(
            plan,
            r.store.clone(),
            r.lease,
            r.registry.clone(),
            r.opts,
            r.events.clone(),
            r.cancel,
        )
        .await?);
    };
    let fleet = fleet.ok_or(RolloutError::NoSpec)?;
    let started = tokio::time::Instant::now();
    let waves = waves::split(plan, rollout);
    let mut report =
        Report { steps: Vec::new(), interrupted: false, retries: 0, elapsed: Duration::ZERO, halted: None };

    if let Some(halt) = r.store.rollout_halt().await? {
        if r.opts.restart_rollout {
            r.store.set_rollout_halt(r.lease, None).await?;
        } else if !halt.placements.iter().any(|p| plan.actions.iter().any(|a| a.address.placement == *p)) {
            // Nothing of the halted wave changes now: its gate, read again, decides.
            let wave = rollout.wave_of(halt.placements.first().map(String::as_str).unwrap_or_default());
            let gate = rollout.waves.get(wave).and_then(|w| w.gate);
            if let Some(reason) = read_gate(&r, fleet, halt.wave, &halt.placements, gate.as_ref()).await? {
                return halt_here(&r, plan, &waves, 0, halt.wave, &halt.placements, reason, report, started).await;
            }
            r.store.set_rollout_halt(r.lease, None).await?;
        }
    }

    for (i, wave) in waves.iter().enumerate() {
        if wave.plan.actions.is_empty() {
            continue;
        }
        let spec_wave = &rollout.waves[i.min(rollout.waves.len() - 1)];
        let mut placements: Vec<String> = spec_wave.placements.clone();
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
            return halt_here(&r, plan, &waves, i + 1, wave.number, &placements, reason, report, started).await;
        }
        if !report.is_success() {
            let failed: Vec<String> = report
                .steps
                .iter()
                .filter(|s| !matches!(s.status, StepStatus::Succeeded))
                .map(|s| format!("{} {}: {}", s.kind.verb(), s.address, s.status))
                .collect();
            let reason = format!("{} change(s) did not succeed: {}", failed.len(), failed.join("; "));
            return halt_here(&r, plan, &waves, i + 1, wave.number, &placements, reason, report, started).await;
        }
        let Some(gate) = spec_wave.gate else { continue };
        if !soak(&mut r, fleet, rollout, wave.number, &placements).await {
            let reason = format!("interrupted during wave {}'s soak, before its gate was read", wave.number);
            report.interrupted = true;
            return halt_here(&r, plan, &waves, i + 1, wave.number, &placements, reason, report, started).await;
        }
        if let Some(reason) = read_gate(&r, fleet, wave.number, &placements, Some(&gate)).await? {
            return halt_here(&r, plan, &waves, i + 1, wave.number, &placements, reason, report, started).await;
        }
    }
    // Every wave with changes passed: a halt recorded under another spec's waves is past too.
    if r.store.rollout_halt().await?.is_some() {
        r.store.set_rollout_halt(r.lease, None).await?;
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Waits the soak, scaled where the whole wave is on the sim. `false`: stopped by Ctrl-C.
async fn soak(r: &mut Run<'_>, fleet: &Fleet, rollout: &Rollout, wave: usize, placements: &[String]) -> bool {
    let scale = placements
        .iter()
        .filter_map(|p| fleet.placement(p))
        .map(|p| r.registry.time_scale(&p.provider))
        .fold(0.0_f64, f64::max);
    let wait = Duration::from_millis(rollout.soak_ms).mul_f64(scale.max(0.0));
    r.events.emit(&Event::Soaking { wave, soak_ms: wait.as_millis() as u64 });
    if *r.cancel.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(wait) => true,
        _ = r.cancel.changed() => false,
    }
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

/// Records the halt, reports every later wave's actions as not started, and ends the run.
#[allow(clippy::too_many_arguments)]
async fn halt_here(
    r: &Run<'_>,
    plan: &Plan,
    waves: &[waves::WavePlan],
    from: usize,
    wave: usize,
    placements: &[String],
    reason: String,
    mut report: Report,
    started: tokio::time::Instant,
) -> Result<Report, RolloutError> {
    let halt = RolloutHalt {
        wave,
        placements: placements.to_vec(),
        reason: reason.clone(),
        spec_digest: plan.spec_digest.clone(),
        run_id: r.opts.run_id.clone(),
        at: crate::state::now_secs(),
    };
    r.store.set_rollout_halt(r.lease, Some(&halt)).await?;
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
