//! The `tessera` command line: the miette edge over the library.
//!
//! Exit codes: 0 success (and, with `--detailed-exitcode`, no changes); 1 error; 2 changes or drift.

mod apply;
mod args;
mod pipeline_cli;
mod process;
mod render;
mod show;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, Parser};
use miette::{IntoDiagnostic, Result, WrapErr, miette};
use serde_json::json;
use tessera_sim::{Faults, SimCloud};

pub use args::{
    AuditCommand, Cli, Command, CredsCommand, Global, OutputFormat, PipelineCommand, PolicyCommand, ReconcileArgs,
    RunArgs, StateCommand,
};

use crate::engine::Engine;
use crate::pipeline::bound::Enforced;
use crate::plan::{Mode, Plan, PlanFile, render_human};
use crate::providers::Registry;
use crate::spec::{self, Fleet};
use crate::state::{self, StateStore};

pub(crate) use apply::{confirmed, finished, held_to_spec, run_context, summarize};

const CHANGES: u8 = 2;

pub fn main() -> ExitCode {
    process::quiet_on_closed_pipe();
    let cli = Cli::parse();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(process::log_filter(&cli.global.log))
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<u8> {
    let g = &cli.global;
    match cli.command {
        Command::Validate { spec } => validate(g, &spec),
        Command::Plan { spec, out, destroy, detailed_exitcode } => {
            let fleet = load(&spec)?;
            let engine = reading_engine(g).await?;
            let mode = if destroy { Mode::Destroy } else { Mode::Apply };
            let plan = engine.plan(&fleet, mode).await?;
            let file = PlanFile::new(plan);
            if let Some(out) = &out {
                file.save(out)?;
            }
            match g.output {
                OutputFormat::Json => println!("{}", file.to_json()),
                OutputFormat::Human => {
                    print!("{}", render_human(&file.plan));
                    if let Some(out) = &out {
                        println!("\nSaved to {}. Apply it with: tessera apply --plan {}", out.display(), out.display());
                    }
                }
            }
            incomplete(&file.plan)?;
            Ok(if detailed_exitcode && (file.plan.has_changes() || !file.plan.drift.is_empty()) { CHANGES } else { 0 })
        }
        Command::Apply { spec, plan, auto_approve, run } => apply::apply(g, spec, plan, auto_approve, &run).await,
        Command::Destroy { spec, auto_approve, run } => {
            let fleet = load(&spec)?;
            let engine = engine_for_run(g, &run).await?;
            let plan = engine.plan(&fleet, Mode::Destroy).await?;
            apply::confirm_and_run(g, &engine, plan, Some(&fleet), auto_approve, "destroy", &run).await
        }
        Command::Verify { spec } => verify(g, &spec).await,
        Command::Reconcile(args) => reconcile(g, args).await,
        Command::Drift { spec } => {
            let fleet = load(&spec)?;
            let plan = reading_engine(g).await?.plan(&fleet, Mode::Apply).await?;
            match g.output {
                OutputFormat::Json => {
                    // What could not be read is part of the answer: an empty drift list beside
                    // unread resources is not "no drift".
                    let report =
                        json!({ "drift": plan.drift, "complete": plan.is_complete(), "unknown": plan.unknown });
                    println!("{}", serde_json::to_string_pretty(&report).into_diagnostic()?)
                }
                OutputFormat::Human if plan.drift.is_empty() => {
                    println!("No drift: every resource matches what Tessera recorded.")
                }
                OutputFormat::Human => {
                    println!("Drift: {} change(s) made outside Tessera", plan.drift.len());
                    for d in &plan.drift {
                        let show =
                            |v: &Option<serde_json::Value>| v.as_ref().map_or("(gone)".to_string(), |v| v.to_string());
                        println!(
                            "  {}  {}: recorded {}, found {}",
                            d.address,
                            d.field,
                            show(&d.recorded),
                            show(&d.live)
                        );
                    }
                }
            }
            if !plan.is_complete() {
                for u in &plan.unknown {
                    eprintln!("  could not read {}: {}", u.address, u.error);
                }
            }
            incomplete(&plan)?;
            Ok(if plan.drift.is_empty() { 0 } else { CHANGES })
        }
        Command::Graph { spec, format } => {
            let fleet = load(&spec)?;
            let graph = reading_engine(g).await?.compile(&fleet)?;
            print!("{}", graph.render(format));
            Ok(0)
        }
        Command::Render { spec, placement, out } => {
            let fleet = load(&spec)?;
            let graph = reading_engine(g).await?.compile(&fleet)?;
            render::render(&fleet, &graph, &placement, &out, charts().as_ref(), g.output)
        }
        Command::State { command } => state_command(g, command).await,
        Command::Kubeconfig { placement } => kubeconfig(g, &placement).await,
        Command::Keygen { out, force } => pipeline_cli::keygen(&out, force),
        Command::Approve { plan, key, name, yes } => pipeline_cli::approve(g, &plan, &key, name, yes).await,
        Command::Show { plan } => show::show(g, &plan).await,
        Command::Pipeline { command: PipelineCommand::Apply { plan, identity_file, creds, run } } => {
            pipeline_cli::pipeline_apply(g, &plan, identity_file.as_deref(), creds.as_deref(), &run).await
        }
        Command::Creds { command } => pipeline_cli::creds(command),
        Command::Audit { command } => pipeline_cli::audit(g, command).await,
        Command::Policy { command } => pipeline_cli::policy_command(g, command).await,
        Command::Schema => {
            println!("{}", serde_json::to_string_pretty(&spec::json_schema()).into_diagnostic()?);
            Ok(0)
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "tessera", &mut std::io::stdout());
            Ok(0)
        }
    }
}

/// A plan with resources it could not decide is shown, then fails the command (exit 1).
fn incomplete(plan: &Plan) -> Result<()> {
    if plan.is_complete() {
        return Ok(());
    }
    let unknown = plan.unknown.iter().map(|u| u.address.to_string()).collect();
    Err(crate::engine::EngineError::Incomplete(unknown).into())
}

fn load(path: &Path) -> Result<Fleet> {
    Ok(spec::load_with_charts(path, charts().as_ref())?)
}

/// What renders the core services' charts for validation: the `kube` provider's helm, on charts
/// already on this machine (a command never pulls one). A build without it judges every chart
/// by Tessera's model.
fn charts() -> crate::reconcile::Charts {
    #[cfg(feature = "kube")]
    let charts = tessera_kube_client::CachedCharts::new(tessera_kube_client::KubeClientSettings::default());
    #[cfg(not(feature = "kube"))]
    let charts = tessera_kube::render::ModelOnly;
    Arc::new(charts)
}

async fn verify(g: &Global, path: &Path) -> Result<u8> {
    let fleet = load(path)?;
    let engine = reading_engine(g).await?;
    let coverage = crate::verify::verify(&fleet, &engine.registry, engine.store.as_ref(), &engine.retry).await?;
    let gaps: usize = coverage.iter().map(|c| c.uncovered()).sum();
    let errors = coverage.iter().filter(|c| c.error.is_some()).count();
    let alerting = coverage.iter().filter(|c| c.alerting_broken()).count();
    match g.output {
        OutputFormat::Json => {
            let body = json!({
                "fleet": fleet.name,
                "placements": coverage,
                "uncovered": gaps,
                "alertingBroken": alerting,
                "errors": errors,
            });
            println!("{}", serde_json::to_string_pretty(&body).into_diagnostic()?);
        }
        OutputFormat::Human => {
            for c in &coverage {
                println!("{}", c.placement);
                if let Some(e) = &c.error {
                    println!("  could not be read: {e}");
                }
                let Some(r) = &c.report else { continue };
                println!("  {:<16} {:>5} {:>10} {:>7}", "pool", "nodes", "monitored", "logged");
                for p in &r.pools {
                    println!("  {:<16} {:>5} {:>10} {:>7}", p.pool, p.nodes, p.monitored, p.logged);
                }
                for gap in &r.gaps {
                    println!("  uncovered: {}", gap.describe());
                }
                if c.alerting.is_none() {
                    println!("  alerting: off in the spec");
                }
                if let Some(a) = &c.alerting {
                    let yes = |b: bool| if b { "yes" } else { "NO" };
                    println!(
                        "  alerting: routing loaded {}, heartbeat firing {}",
                        yes(a.routing_loaded),
                        yes(a.heartbeat_firing)
                    );
                    if let Some(d) = &a.detail {
                        println!("    {d}");
                    }
                }
            }
            match (gaps, errors) {
                (0, 0) => println!("Every node is covered."),
                (0, _) => println!("{errors} placement(s) could not be verified."),
                _ => println!("{gaps} uncovered node/DaemonSet pair(s)."),
            }
            if alerting > 0 {
                println!("{alerting} placement(s) whose alerting does not work.");
            }
        }
    }
    Ok(if gaps > 0 || alerting > 0 {
        2
    } else if errors > 0 {
        1
    } else {
        0
    })
}

/// `tessera reconcile`: the loop lives in [`crate::reconcile`]; this wires it to the command line.
async fn reconcile(g: &Global, args: ReconcileArgs) -> Result<u8> {
    use crate::reconcile::{Config, GitSource, ReconcilePolicy, Reconciler, Source};
    let engine = engine(g).await?;
    let policy = match enforced_policy(g, engine.store.as_ref()).await? {
        Some(e) => ReconcilePolicy::new(Some(e.policy)),
        None => ReconcilePolicy::default(),
    };
    let source = match args.git {
        Some(repo) => Source::Git(GitSource { repo, git_ref: args.git_ref, path: args.spec, work_dir: args.work_dir }),
        None => Source::File(args.spec),
    };
    let config = Config { interval: args.interval, plan_dir: args.plan_dir, ..Default::default() };
    let events = Arc::new(crate::reconcile::Stdout);
    let r = Reconciler::new(Arc::new(engine), source, policy, config, events).with_charts(charts());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        if process::stop_requested().await {
            let _ = stop_tx.send(true);
        }
    });
    if args.once {
        return Ok(r.tick(stop_rx).await.result.exit_code());
    }
    let listener = crate::reconcile::http::bind(args.listen)
        .await
        .into_diagnostic()
        .wrap_err_with(|| format!("listening on {}", args.listen))?;
    if let Ok(addr) = listener.local_addr() {
        r.events.emit(&crate::reconcile::Event::Listening(addr.to_string()));
    }
    let server =
        tokio::spawn(crate::reconcile::http::serve(listener, r.metrics.clone(), r.health.clone(), stop_rx.clone()));
    r.run(stop_rx).await;
    server.abort();
    Ok(0)
}

fn validate(g: &Global, path: &Path) -> Result<u8> {
    match (spec::load_with_charts(path, charts().as_ref()), g.output) {
        (Ok(fleet), OutputFormat::Human) => {
            for w in &fleet.warnings {
                eprintln!("warning: {}:{}:{}: {}", path.display(), w.line, w.column, w.message);
                if let Some(h) = &w.help {
                    eprintln!("  help: {h}");
                }
            }
            for c in &fleet.chart_checks {
                eprintln!("note: {}", c.describe());
            }
            println!("{} is valid: fleet `{}`, {} placement(s).", path.display(), fleet.name, fleet.placements.len());
            Ok(0)
        }
        (Ok(fleet), OutputFormat::Json) => {
            let warnings: Vec<serde_json::Value> = fleet
                .warnings
                .iter()
                .map(|w| json!({ "path": path, "line": w.line, "column": w.column, "message": w.message, "hint": w.help }))
                .collect();
            let body = json!({ "valid": true, "fleet": fleet.name, "placements": fleet.placements.len(), "warnings": warnings, "charts": fleet.chart_checks });
            println!("{body}");
            Ok(0)
        }
        (Err(e), OutputFormat::Json) => {
            println!("{}", json!({ "valid": false, "problems": e.problems_json() }));
            Ok(1)
        }
        (Err(e), OutputFormat::Human) => Err(e.into()),
    }
}

/// The policy in force for a command on `store`: the one bound to state (the policy file must be
/// that one, wherever the command runs), or, while state has none, the policy file if it exists.
pub(crate) async fn enforced_policy(g: &Global, store: &dyn StateStore) -> Result<Option<Enforced>> {
    Ok(crate::pipeline::bound::resolve(store, &g.policy).await?)
}

/// The registry for every command but `pipeline apply`: pipeline-only providers are read-only.
fn registry(g: &Global, policy: Option<crate::pipeline::Policy>) -> Result<Registry> {
    let registry = base_registry(g)?;
    Ok(match policy {
        Some(p) => registry.with_read_only(p.read_only_guard()),
        None => registry,
    })
}

pub(crate) fn base_registry(g: &Global) -> Result<Registry> {
    if let Some(dir) = g.sim_cloud.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).into_diagnostic().wrap_err_with(|| format!("creating {}", dir.display()))?;
    }
    let faults = Faults {
        throttle_rate: g.sim_throttle_rate,
        failure_rate: g.sim_failure_rate,
        kube_unreachable: g.sim_kube_unreachable,
        seed: std::process::id().into(),
        ..Default::default()
    };
    let cloud = SimCloud::durable(&g.sim_cloud, faults).into_diagnostic().wrap_err("opening the sim cloud")?;
    cloud.set_unhealthy_after_upgrade(
        g.sim_unhealthy_after_upgrade.iter().map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect(),
    );
    Ok(Registry::new(Arc::new(cloud), g.sim_time_scale))
}

pub(crate) async fn engine(g: &Global) -> Result<Engine> {
    let store: Arc<dyn StateStore> = Arc::from(state::open(&g.state).await?);
    engine_on(g, store).await
}

/// [`engine`] for a command that only reads: a state that does not exist is read as empty and
/// not created.
async fn reading_engine(g: &Global) -> Result<Engine> {
    let store: Arc<dyn StateStore> = Arc::from(state::open_for_reading(&g.state).await?);
    engine_on(g, store).await
}

async fn engine_on(g: &Global, store: Arc<dyn StateStore>) -> Result<Engine> {
    let policy = enforced_policy(g, store.as_ref()).await?.map(|e| e.policy);
    let mut engine = Engine::new(Arc::new(registry(g, policy)?), store);
    engine.lock_ttl = g.lock_ttl;
    engine.audit_head = g.audit_head.clone();
    engine.retry.unreachable_for = g.unreachable_for;
    Ok(engine)
}

async fn engine_for_run(g: &Global, run: &RunArgs) -> Result<Engine> {
    let mut e = engine(g).await?;
    if let Some(t) = run.lock_timeout {
        e.lock_timeout = t;
    }
    Ok(e)
}

async fn kubeconfig(g: &Global, placement: &str) -> Result<u8> {
    let store = state::open_for_reading(&g.state).await?;
    let records = store.resources().await?;
    let cluster = records
        .iter()
        .find(|r| !r.deposed && r.address.placement == placement && r.address.rtype.ends_with(".cluster"))
        .ok_or_else(|| {
            miette!(
                help = "apply the fleet first; `tessera state list` shows what exists",
                "no cluster for placement `{placement}` in state"
            )
        })?;
    let policy = enforced_policy(g, store.as_ref()).await?.map(|e| e.policy);
    let provider = registry(g, policy)?.get(&cluster.provider).into_diagnostic()?;
    let config = provider
        .kubeconfig(&cluster.address.rtype, &cluster.attrs)
        .ok_or_else(|| miette!("the {} backend does not issue kubeconfigs", cluster.provider))?;
    let yaml = serde_saphyr::to_string(&config).into_diagnostic()?;
    print!("{yaml}");
    Ok(0)
}

async fn state_command(g: &Global, command: StateCommand) -> Result<u8> {
    let store = state::open_for_reading(&g.state).await?;
    let json_out = g.output == OutputFormat::Json;
    let print_json = |v: serde_json::Value| println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    match command {
        StateCommand::List => {
            let records = store.resources().await?;
            let meta = store.meta().await?;
            if json_out {
                print_json(json!({ "meta": meta, "resources": records }));
            } else {
                println!(
                    "fleet {} · lineage {} · serial {}",
                    meta.fleet.as_deref().unwrap_or("(none)"),
                    meta.lineage,
                    meta.serial
                );
                for r in &records {
                    let deposed = if r.deposed { " (deposed)" } else { "" };
                    println!("{:<50} {:<24} {}{deposed}", r.address.to_string(), r.id, r.status);
                }
            }
        }
        StateCommand::Show { address } => {
            let records = store.resources().await?;
            let found: Vec<_> = records.iter().filter(|r| r.address.to_string() == address).collect();
            if found.is_empty() {
                return Err(miette!(
                    help = "list addresses with `tessera state list`",
                    "no resource `{address}` in state"
                ));
            }
            print_json(serde_json::to_value(&found).into_diagnostic()?);
        }
        StateCommand::History { limit } => {
            let history = store.history(limit).await?;
            if json_out {
                print_json(serde_json::to_value(&history).into_diagnostic()?);
            } else {
                for h in &history {
                    let at =
                        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(h.at));
                    println!("#{:<6} {at}  {:<45} {}", h.serial, h.address, h.change);
                }
            }
        }
        StateCommand::Intents => {
            let intents = store.open_intents().await?;
            if json_out {
                print_json(serde_json::to_value(&intents).into_diagnostic()?);
            } else if intents.is_empty() {
                println!("No open intents.");
            } else {
                for i in &intents {
                    let op = serde_json::to_value(i.op)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    println!("#{} {op} {} (run {})", i.id, i.address, i.run_id);
                }
            }
        }
        StateCommand::Unlock { lock_id } => {
            store.force_unlock(&lock_id, "state unlock").await?;
            println!("Lock {lock_id} removed.");
        }
    }
    Ok(0)
}
