//! `apply` (a spec, or a saved plan) and `destroy`: the policy's up-front refusal, the
//! confirmation, a saved plan held to its spec, the run and its summary.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use miette::{IntoDiagnostic, Result, WrapErr, miette};
use serde_json::json;

use super::{Global, OutputFormat, RunArgs, enforced_policy, engine_for_run, load, pipeline_cli, process};
use crate::engine::Engine;
use crate::exec::{EventSink, ExecOptions, JsonLines, Progress, Report};
use crate::pipeline::Authority;
use crate::pipeline::bound::Enforced;
use crate::plan::{Mode, Plan, PlanFile, render_human};
use crate::spec::Fleet;

pub(super) async fn apply(
    g: &Global,
    spec: Option<PathBuf>,
    plan_path: Option<PathBuf>,
    auto_approve: bool,
    run: &RunArgs,
) -> Result<u8> {
    let engine = engine_for_run(g, run).await?;
    match (spec, plan_path) {
        (_, Some(plan_path)) => {
            let file = PlanFile::load(&plan_path)?;
            // A saved plan was reviewed already: applying it is the approval. Under a policy it
            // must carry an approver's signature (its digest only detects corruption, since
            // anyone who edits a plan can recompute it), checked before the spec it names is
            // opened.
            if let Some(policy) = enforce_policy(g, &engine, &file.plan, None, "apply").await? {
                crate::pipeline::check_signed(&policy.policy, &file).wrap_err(
                    "under a policy, `apply --plan` needs a plan signed by one of its approvers (`tessera approve`)",
                )?;
            }
            let fleet = crate::pipeline::plan_spec::load(&file.plan.spec_path, &pipeline_cli::working_dir()?)?;
            held_to_spec(&engine, &file.plan, &fleet).await?;
            execute(g, &engine, file.plan, Some(&fleet), "apply --plan", run).await
        }
        (Some(spec), None) => {
            let fleet = load(&spec)?;
            let plan = engine.plan(&fleet, Mode::Apply).await?;
            confirm_and_run(g, &engine, plan, Some(&fleet), auto_approve, "apply", run).await
        }
        (None, None) => Err(miette!(
            help = "tessera apply specs/quickstart.yaml, or tessera apply --plan PLAN",
            "apply needs a spec or --plan"
        )),
    }
}

/// Outside the pipeline: a plan that changes a pipeline-only placement is refused up front, and
/// the policy in force is bound to state if it is not yet (the first apply under a policy).
/// A placement is pipeline-only through any provider that acts for it ([`Authority`]): its
/// Kubernetes objects are as much the placement's as its cluster.
async fn enforce_policy(
    g: &Global,
    engine: &Engine,
    plan: &Plan,
    fleet: Option<&Fleet>,
    command: &str,
) -> Result<Option<Enforced>> {
    // The state's rules are checked against its signed audit chain before anything else.
    crate::pipeline::bound::check_chain(engine.store.as_ref(), g.audit_head.as_deref()).await?;
    let Some(enforced) = enforced_policy(g, engine.store.as_ref()).await? else { return Ok(None) };
    let policy = &enforced.policy;
    let records = engine.store.resources().await?;
    let authority = Authority::gather(fleet, &records, &plan.actions);
    if let Some(a) = plan.actions.iter().find(|a| policy.pipeline_only_placement(&authority, &a.address.placement)) {
        return Err(miette!(
            help = "make a plan (`tessera plan SPEC -o PLAN`), have it approved (`tessera approve`), and let the pipeline run `tessera pipeline apply PLAN`",
            "refusing to {command}: placement `{}` is pipeline-only under the policy ({}, {}): it would change {}, and every resource of a pipeline-only placement, its Kubernetes objects included, changes only through the pipeline",
            a.address.placement,
            g.policy.display(),
            crate::pipeline::bound::short(&enforced.digest),
            a.address
        ));
    }
    crate::pipeline::bound::bind(engine.store.as_ref(), &enforced, &g.policy).await?;
    Ok(Some(enforced))
}

pub(super) async fn confirm_and_run(
    g: &Global,
    engine: &Engine,
    plan: Plan,
    fleet: Option<&Fleet>,
    auto_approve: bool,
    command: &str,
    run: &RunArgs,
) -> Result<u8> {
    match g.output {
        OutputFormat::Human => print!("{}", render_human(&plan)),
        OutputFormat::Json => {
            let file = PlanFile::new(plan.clone());
            println!("{}", json!({ "event": "plan", "digest": file.digest, "summary": plan.summary(), "plan": plan }));
        }
    }
    enforce_policy(g, engine, &plan, fleet, command).await?;
    // Setting a placement aside (or bringing it back) is recorded even when nothing else changes.
    let sets_aside = !run.skip_placements.is_empty() || !run.unskip_placements.is_empty();
    if !plan.has_changes() && !sets_aside {
        return Ok(0);
    }
    if !auto_approve
        && !confirmed(
            &format!("Do you want to {command} these changes?"),
            &format!("refusing to {command} without confirmation: stdin is not a terminal"),
            "pass --auto-approve, or save a plan with `tessera plan -o PLAN` and run `tessera apply --plan PLAN`",
        )?
    {
        println!("Cancelled; nothing was changed.");
        return Ok(1);
    }
    execute(g, engine, plan, fleet, command, run).await
}

/// A saved plan must say what it does truthfully and do only what its spec says
/// ([`crate::plan::verify`]): anyone can write a plan file and recompute its digest.
pub(crate) async fn held_to_spec(engine: &Engine, plan: &Plan, fleet: &Fleet) -> Result<()> {
    let graph = engine.compile(fleet)?;
    // Against the state it was made from; a plan made against another serial is refused as stale
    // when it runs, with that reason rather than a list of objects that moved since.
    let meta = engine.store.meta().await?;
    let same_state = meta.serial == plan.serial && meta.lineage == plan.lineage;
    let records = if same_state { engine.store.resources().await? } else { Vec::new() };
    let state = if same_state { crate::plan::verify::matches_state(plan, &records) } else { Ok(()) };
    // A destroy plan runs without waves: it must be one, deleting everything state records and
    // nothing else, or a forged `destroy: true` would carry an upgrade past every gate.
    let deleted: std::collections::BTreeSet<String> = plan.actions.iter().map(|a| a.address.to_string()).collect();
    let recorded: std::collections::BTreeSet<String> =
        records.iter().filter(|r| !r.deposed).map(|r| r.address.to_string()).collect();
    let destroy = if !plan.destroy {
        Ok(())
    } else if plan.actions.iter().any(|a| a.kind != crate::plan::ActionKind::Delete) {
        Err(vec!["it says it destroys, yet it creates or changes something".to_string()])
    } else if same_state && deleted != recorded {
        Err(vec!["it says it destroys, yet it does not delete everything state records".to_string()])
    } else {
        Ok(())
    };
    // The waves are the spec's: a plan file that reorders or drops them would skip a canary.
    let expected_rollout = if plan.destroy { None } else { fleet.rollout.as_ref() };
    let rollout = if plan.rollout.as_ref() == expected_rollout {
        Ok(())
    } else {
        Err(vec!["its rollout waves are not the spec's".to_string()])
    };
    let problems: Vec<String> = [
        crate::plan::verify::consistent(plan),
        crate::plan::verify::matches_spec(plan, &graph),
        state,
        rollout,
        destroy,
    ]
    .into_iter()
    .filter_map(Result::err)
    .flatten()
    .collect();
    if problems.is_empty() {
        return Ok(());
    }
    Err(miette!(
        help = "make the plan again with `tessera plan -o PLAN` from the spec, and have it approved again",
        "the plan file does not hold to its spec; nothing was applied:\n  {}",
        problems.join("\n  ")
    ))
}

/// Asks the person at the terminal; only `yes` is a yes. Without a terminal there is nobody to
/// ask, so that is an error (`refusal`, with `help` saying how to go on without asking).
pub(crate) fn confirmed(question: &str, refusal: &str, help: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(miette!(help = help.to_string(), "{refusal}"));
    }
    // The prompt is for the person at the terminal, never part of what stdout carries.
    eprint!("\n{question} Only 'yes' is accepted: ");
    std::io::stderr().flush().into_diagnostic()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).into_diagnostic()?;
    Ok(answer.trim() == "yes")
}

async fn execute(
    g: &Global,
    engine: &Engine,
    plan: Plan,
    fleet: Option<&Fleet>,
    command: &str,
    run: &RunArgs,
) -> Result<u8> {
    let (events, cancel_rx, opts) = run_context(g, run);
    let report = engine.apply(&plan, fleet, command, &opts, events, cancel_rx).await?;
    summarize(g, &report);
    finished(command, &report)
}

/// How an executing command ends: 0 when every step succeeded; else an error naming the halt,
/// or what did not finish.
pub(crate) fn finished(command: &str, report: &Report) -> Result<u8> {
    if let Some(halted) = &report.halted {
        return Err(miette!(
            help = "nothing of the later waves was changed, and state records where the rollout stopped: fix the \
                    placement, then run apply again (it reads that wave's gate again and goes on once it passes), \
                    set it aside with --skip-placement, or start over with --rollout-restart",
            "{command} halted: {halted}"
        ));
    }
    if report.is_success() {
        return Ok(0);
    }
    Err(miette!(
        help = "state records exactly what was done; fix the cause and run apply again to finish",
        "{command} incomplete: {} succeeded, {} failed, {} skipped, {} interrupted, {} not started{}",
        report.succeeded(),
        report.failed(),
        report.skipped(),
        report.interrupted_steps(),
        report.not_started(),
        if report.interrupted { " (interrupted)" } else { "" }
    ))
}

/// What every executing command needs: where events go, a Ctrl-C signal, execution options.
pub(crate) fn run_context(
    g: &Global,
    run: &RunArgs,
) -> (Arc<dyn EventSink>, tokio::sync::watch::Receiver<bool>, ExecOptions) {
    let events: Arc<dyn EventSink> = match g.output {
        OutputFormat::Json => Arc::new(JsonLines),
        OutputFormat::Human => Arc::new(Progress::new()),
    };
    let (cancel_tx, cancel_rx) = crate::exec::cancel_signal();
    tokio::spawn(async move {
        if process::stop_requested().await {
            let _ = cancel_tx.send(true);
        }
    });
    let retry = crate::retry::RetryPolicy { unreachable_for: g.unreachable_for, ..Default::default() };
    let opts = ExecOptions {
        step_timeout: run.action_timeout,
        retry,
        restart_rollout: run.rollout_restart,
        skip_placements: run.skip_placements.clone(),
        unskip_placements: run.unskip_placements.clone(),
        ..Default::default()
    };
    (events, cancel_rx, opts)
}

pub(crate) fn summarize(g: &Global, report: &Report) {
    match g.output {
        OutputFormat::Json => {
            if let Ok(line) = serde_json::to_string(&json!({ "event": "report", "report": report })) {
                println!("{line}");
            }
        }
        OutputFormat::Human => {
            println!(
                "\n{}: {} succeeded, {} failed, {} skipped, {} interrupted, {} not started, {} retries, in {:.1}s.",
                if report.is_success() { "Done" } else { "Incomplete" },
                report.succeeded(),
                report.failed(),
                report.skipped(),
                report.interrupted_steps(),
                report.not_started(),
                report.retries,
                report.elapsed.as_secs_f64()
            );
            for s in report.steps.iter().filter(|s| !matches!(s.status, crate::exec::StepStatus::Succeeded)) {
                println!("  {} {}: {}", s.kind.verb(), s.address, s.status);
            }
            for note in &report.notes {
                println!("Note: {note}");
            }
        }
    }
}
