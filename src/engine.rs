//! The stages wired together, for the CLI and for tests: compile, plan, and apply under a lease.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::compile::{CompileError, ResourceGraph};
use crate::exec::{EventSink, ExecError, ExecOptions, Report};
use crate::plan::{self, Mode, Plan, PlanError};
use crate::providers::Registry;
use crate::recover::{self, RecoverError, Recovered};
use crate::retry::RetryPolicy;
use crate::spec::Fleet;
use crate::state::audit::AuditRecord;
use crate::state::{Lease, StateError, StateStore};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum EngineError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Compile(#[from] CompileError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Exec(#[from] ExecError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Recover(#[from] RecoverError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Rollout(#[from] crate::rollout::RolloutError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Binding(#[from] crate::pipeline::bound::BindError),
    #[error("this plan was already applied (digest {0}); a plan is applied once")]
    #[diagnostic(code(tessera::pipeline::replay), help("make, review and approve a new plan"))]
    Replayed(String),
    #[error("the plan is incomplete: {} could not be planned", .0.join(", "))]
    #[diagnostic(
        code(tessera::apply::incomplete),
        help("the plan lists why each could not be read; plan again once the cloud answers")
    )]
    Incomplete(Vec<String>),
    #[error("{provider} cannot run here: {message}")]
    #[diagnostic(
        code(tessera::apply::preflight),
        help("nothing was changed or recorded; fix the cause and apply again")
    )]
    Preflight { provider: String, message: String },
    #[error("the state is inconsistent: {0}")]
    #[diagnostic(
        code(tessera::state::inconsistent),
        help("the state was edited outside Tessera; restore it from a backup (nothing was written)")
    )]
    Corrupt(String),
    #[error("the plan is stale: {0}")]
    #[diagnostic(
        code(tessera::apply::stale),
        help("make a new plan with `tessera plan SPEC -o PLAN` and review it again")
    )]
    Stale(String),
}

pub struct Engine {
    pub registry: Arc<Registry>,
    pub store: Arc<dyn StateStore>,
    pub retry: RetryPolicy,
    pub lock_ttl: Duration,
    /// How long to wait for a lock held by someone else; zero fails fast.
    pub lock_timeout: Duration,
    pub holder: String,
    /// An audit head published outside the state: every apply checks the chain contains it.
    pub audit_head: Option<String>,
}

impl Engine {
    pub fn new(registry: Arc<Registry>, store: Arc<dyn StateStore>) -> Self {
        Self {
            registry,
            store,
            retry: RetryPolicy::default(),
            lock_ttl: Duration::from_secs(120),
            lock_timeout: Duration::ZERO,
            holder: crate::state::holder::describe_current(),
            audit_head: None,
        }
    }

    pub fn compile(&self, fleet: &Fleet) -> Result<ResourceGraph, CompileError> {
        ResourceGraph::compile(fleet, &self.registry)
    }

    /// Plans. Planning reads and takes no lease, so it works while another run applies. If
    /// intents are open and the lock is free, a crashed run's intents are resolved first (under
    /// the lease), so that the plan is made from what really exists. If another run holds the
    /// lock, its intents are its own business: the plan is made from a fresh read of the cloud,
    /// writes nothing, and says that recovery is pending.
    pub async fn plan(&self, fleet: &Fleet, mode: Mode) -> Result<Plan, EngineError> {
        let graph = self.compile(fleet)?;
        self.plan_graph(fleet, &graph, mode).await
    }

    /// [`Engine::plan`] for a graph already compiled (and perhaps extended).
    pub async fn plan_graph(&self, fleet: &Fleet, graph: &ResourceGraph, mode: Mode) -> Result<Plan, EngineError> {
        let mut notes = Vec::new();
        if !self.store.open_intents().await?.is_empty() {
            match self.acquire("recover").await {
                Ok(lease) => {
                    let result = recover::recover(self.store.as_ref(), &self.registry, &lease, &self.retry).await;
                    let _ = self.store.unlock(&lease).await;
                    let recovered = result?;
                    if !recovered.is_empty() {
                        tracing::warn!("recovered an interrupted run: {recovered:?}");
                    }
                }
                Err(EngineError::State(StateError::Locked { holder, command, .. })) => notes.push(format!(
                    "another run holds the state lock ({holder}, `{command}`) and has intents open: recovery is \
                     pending, and this plan was made from a fresh read of the cloud without writing state"
                )),
                Err(e) => return Err(e),
            }
        }
        let mut plan = plan::make_plan(fleet, graph, self.store.as_ref(), &self.registry, &self.retry, mode).await?;
        let record = self.store.rollout().await?;
        for (placement, aside) in &record.set_aside {
            let waiting = plan.actions.iter().filter(|a| a.address.placement == *placement).count();
            let halted = if aside.halted.is_some() {
                "; it was halted, and its gate is read again when it is brought back"
            } else {
                ""
            };
            notes.push(format!(
                "placement `{placement}` is set aside (apply --skip-placement, run {}): its {waiting} change(s) below \
                 wait, and its gate is not read, until `apply --unskip-placement {placement}`{halted}",
                aside.run_id
            ));
        }
        let ungated = |halt: &crate::state::RolloutHalt| {
            fleet.rollout.as_ref().is_some_and(|r| {
                halt.placements.iter().all(|p| r.waves.get(r.wave_of(p)).is_some_and(|w| w.gate.is_none()))
            })
        };
        if let Some(halt) = record.halt.as_ref().filter(|_| fleet.rollout.is_none() && mode == Mode::Apply) {
            notes.push(format!(
                "the rollout halted at wave {} ({}), but this spec has no rollout: `apply` clears the halt and changes \
                 every placement at once",
                halt.wave,
                halt.placements.join(", ")
            ));
        } else if let Some(halt) = record.halt.as_ref().filter(|h| ungated(h)) {
            notes.push(format!(
                "the rollout halted at wave {} ({}), but the spec now puts them in an ungated wave: `apply` clears the \
                 halt without reading their gate",
                halt.wave,
                halt.placements.join(", ")
            ));
        } else if let Some(halt) = record.halt {
            notes.push(format!(
                "the rollout halted at wave {} ({}): {}. `apply` reads that wave's gate again before it changes \
                 anything (`apply --rollout-restart` starts over)",
                halt.wave,
                halt.placements.join(", "),
                halt.reason
            ));
        }
        plan.notes = notes;
        Ok(plan)
    }

    /// Takes the lease, refuses a stale plan, executes, releases. `fleet`, when given, must be
    /// the spec the plan was made from, unchanged.
    pub async fn apply(
        &self,
        plan: &Plan,
        fleet: Option<&Fleet>,
        command: &str,
        opts: &ExecOptions,
        events: Arc<dyn EventSink>,
        cancel: watch::Receiver<bool>,
    ) -> Result<Report, EngineError> {
        let lease = self.acquire(command).await?;
        let result = self.apply_locked(plan, fleet, &lease, opts, events, cancel, None).await;
        // Release even on error; a failed release just leaves a lease that expires.
        let _ = self.store.unlock(&lease).await;
        result
    }

    /// Like [`Engine::apply`], for `tessera pipeline apply`: the plan's digest is claimed first
    /// (so a replay is refused) and the run is appended to the audit chain.
    #[allow(clippy::too_many_arguments)]
    pub async fn apply_pipeline(
        &self,
        plan: &Plan,
        fleet: &Fleet,
        digest: &str,
        approvers: &[String],
        opts: &ExecOptions,
        events: Arc<dyn EventSink>,
        cancel: watch::Receiver<bool>,
    ) -> Result<Report, EngineError> {
        let lease = self.acquire("pipeline apply").await?;
        let audit = (digest, approvers);
        let result = self.apply_locked(plan, Some(fleet), &lease, opts, events, cancel, Some(audit)).await;
        let _ = self.store.unlock(&lease).await;
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn apply_locked(
        &self,
        plan: &Plan,
        fleet: Option<&Fleet>,
        lease: &Lease,
        opts: &ExecOptions,
        events: Arc<dyn EventSink>,
        cancel: watch::Receiver<bool>,
        audit: Option<(&str, &[String])>,
    ) -> Result<Report, EngineError> {
        // The rules this state runs under are checked before anything is written.
        crate::pipeline::bound::check_chain(self.store.as_ref(), self.audit_head.as_deref()).await?;
        one_address_per_object(&self.store.resources().await?)?;
        if let Some((digest, _)) = audit
            && (self.store.is_plan_applied(digest).await? || self.audited(digest).await?)
        {
            return Err(EngineError::Replayed(digest.to_string()));
        }
        if !plan.is_complete() {
            return Err(EngineError::Incomplete(plan.unknown.iter().map(|u| u.address.to_string()).collect()));
        }
        self.preflight(plan).await?;
        // A plan made while another run held the lock skipped recovery. Recover now, under this
        // lease: if that changed state, the plan is stale and refused below.
        if !self.store.open_intents().await?.is_empty() {
            recover::recover(self.store.as_ref(), &self.registry, lease, &self.retry).await?;
        }
        check_fresh(plan, fleet, self.store.as_ref()).await?;
        // The plan is used up by its first write, not before: a refusal above (stale, preflight,
        // a held lock) leaves its approvals usable.
        if let Some((digest, _)) = audit
            && !self.store.claim_plan(lease, digest).await?
        {
            return Err(EngineError::Replayed(digest.to_string()));
        }
        self.store.bind_fleet(&plan.fleet).await?;
        let renewer = self.spawn_renewer(lease.clone());
        let run = crate::rollout::Run {
            store: self.store.clone(),
            lease,
            registry: self.registry.clone(),
            opts,
            events,
            cancel,
        };
        let report = crate::rollout::run(plan, fleet, run).await;
        renewer.abort();
        let report = report?;
        if let Some((digest, approvers)) = audit {
            let record = AuditRecord {
                at: crate::state::now_secs(),
                plan_digest: digest.to_string(),
                fleet: plan.fleet.clone(),
                approvers: approvers.to_vec(),
                outcomes: report
                    .steps
                    .iter()
                    .map(|s| format!("{} {}: {}", s.kind.verb(), s.address, s.status))
                    .chain(report.halted.clone())
                    .chain(report.notes.iter().cloned())
                    .chain(
                        opts.restart_rollout
                            .then(|| "rollout restarted (--rollout-restart): any halt was forgotten".to_string()),
                    )
                    .chain(opts.skip_placements.iter().map(|p| format!("set aside: {p}")))
                    .chain(opts.unskip_placements.iter().map(|p| format!("brought back: {p}")))
                    .collect(),
            };
            self.store.append_audit(lease, &serde_json::to_string(&record).unwrap_or_default()).await?;
        }
        Ok(report)
    }

    /// Whether the signed audit chain (checked just before) records a pipeline apply of this
    /// plan: `applied_plans` and the serial are plain rows a state writer can reset, the chain's
    /// records are signed.
    async fn audited(&self, digest: &str) -> Result<bool, EngineError> {
        use crate::state::audit::{Body, SignedEntry};
        let (rows, _) = self.store.audit_log().await?;
        Ok(rows.iter().any(|row| {
            serde_json::from_str::<SignedEntry>(&row.record)
                .ok()
                .and_then(|e| serde_json::from_str::<Body>(&e.body).ok())
                .is_some_and(|b| matches!(b, Body::Apply(r) if r.plan_digest == digest))
        }))
    }

    /// Asks every provider that will create or change something whether it can run here, before
    /// anything is recorded (a `kind` without Docker is refused with nothing written).
    async fn preflight(&self, plan: &Plan) -> Result<(), EngineError> {
        let mut asked = std::collections::BTreeSet::new();
        for a in plan.actions.iter().filter(|a| a.kind != plan::ActionKind::Delete && a.provider.connection.is_none()) {
            if !asked.insert(&a.provider) {
                continue;
            }
            let provider = self.registry.get(&a.provider).map_err(crate::plan::PlanError::from)?;
            provider
                .preflight()
                .await
                .map_err(|e| EngineError::Preflight { provider: a.provider.to_string(), message: e.to_string() })?;
        }
        Ok(())
    }

    /// Resolves open intents by reading the cloud; see [`crate::recover`].
    pub async fn recover(&self, command: &str) -> Result<Recovered, EngineError> {
        let lease = self.acquire(command).await?;
        let result = recover::recover(self.store.as_ref(), &self.registry, &lease, &self.retry).await;
        let _ = self.store.unlock(&lease).await;
        let recovered = result?;
        if !recovered.is_empty() {
            tracing::warn!("recovered an interrupted run: {recovered:?}");
        }
        Ok(recovered)
    }

    async fn acquire(&self, command: &str) -> Result<Lease, EngineError> {
        let deadline = tokio::time::Instant::now() + self.lock_timeout;
        loop {
            match self.store.lock(&self.holder, command, self.lock_ttl.as_secs().max(1)).await {
                Ok(lease) => return Ok(lease),
                // A holder whose process is provably gone (same machine, boot and pid namespace,
                // no such process: see `state::holder`) renews nothing: take its lock over at once
                // instead of waiting out the TTL, and say so in history.
                Err(StateError::Locked { holder, lock_id, .. }) if crate::state::holder::is_gone(&holder) => {
                    let by =
                        format!("{} (took over from {holder}: that process is gone from this machine)", self.holder);
                    match self.store.force_unlock(&lock_id, &by).await {
                        Ok(()) | Err(StateError::NoSuchLock(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(StateError::Locked { .. }) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Keeps the lease alive while the run lasts: renewed at a third of its TTL. A renewal that
    /// fails with a retryable error (the database unreachable for a moment) is retried with
    /// backoff for as long as the last renewed lease still holds; past that the lease may be
    /// another's, the renewer stops, and the fencing token refuses this run's next write.
    pub fn spawn_renewer(&self, lease: Lease) -> tokio::task::JoinHandle<()> {
        use backon::{ExponentialBuilder, Retryable};
        let store = self.store.clone();
        let ttl = self.lock_ttl;
        tokio::spawn(async move {
            let period = (ttl / 3).max(Duration::from_millis(100));
            let mut tick = tokio::time::interval(period);
            tick.tick().await;
            let mut holds_until = tokio::time::Instant::now() + ttl;
            loop {
                tick.tick().await;
                let left = holds_until.saturating_duration_since(tokio::time::Instant::now());
                let backoff = ExponentialBuilder::default()
                    .with_jitter()
                    .with_min_delay(Duration::from_millis(100))
                    .with_max_delay(period)
                    .with_total_delay(Some(left))
                    .without_max_times();
                let renewed = (|| store.renew(&lease, ttl.as_secs().max(1)))
                    .retry(backoff)
                    .when(StateError::is_retryable)
                    .notify(|e: &StateError, d: Duration| {
                        tracing::warn!("could not renew the state lock ({e}); trying again in {d:?}")
                    })
                    .await;
                match renewed {
                    Ok(_) => holds_until = tokio::time::Instant::now() + ttl,
                    Err(e) => {
                        tracing::warn!("could not renew the state lock before it expires: {e}");
                        return;
                    }
                }
            }
        })
    }
}

/// One cloud object is recorded under one address. Two rows naming the same object mean the
/// state was edited (a pipeline-only placement's cluster recorded under another placement, to be
/// replaced from a laptop): nothing is written to such a state.
fn one_address_per_object(records: &[crate::state::ResourceRecord]) -> Result<(), EngineError> {
    let mut seen: std::collections::HashMap<(&str, &str), &tessera_provider_api::Address> =
        std::collections::HashMap::new();
    for r in records {
        if let Some(first) = seen.insert((r.provider.kind.as_str(), r.id.as_str()), &r.address)
            && *first != r.address
        {
            return Err(EngineError::Corrupt(format!(
                "cloud object {} is recorded both as {first} and as {}",
                r.id, r.address
            )));
        }
    }
    Ok(())
}

/// Refuses a plan made against another state, an older serial, or a different spec.
pub async fn check_fresh(plan: &Plan, fleet: Option<&Fleet>, store: &dyn StateStore) -> Result<(), EngineError> {
    let meta = store.meta().await?;
    // A plan made before any state existed applies to a state nothing has written yet.
    let unwritten = plan.lineage == crate::state::NO_STATE_LINEAGE && meta.serial == 0;
    if meta.lineage != plan.lineage && !unwritten {
        return Err(EngineError::Stale(format!(
            "it was made against another state (lineage {}), not this one ({})",
            plan.lineage, meta.lineage
        )));
    }
    if meta.serial != plan.serial {
        return Err(EngineError::Stale(format!(
            "state has moved on since it was made (serial {} then, {} now)",
            plan.serial, meta.serial
        )));
    }
    if let Some(f) = fleet
        && f.digest() != plan.spec_digest
    {
        return Err(EngineError::Stale(format!("the spec {} has changed since the plan was made", f.source.display())));
    }
    Ok(())
}
