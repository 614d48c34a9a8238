//! Stage 4: executing a [`Plan`] against the clouds.
//!
//! ## Overview
//!
//! A plan's actions are first lowered into *steps*, the unit of scheduling. Most actions are one
//! step; a replacement is two. Create-before-destroy creates the new object (it becomes current
//! in state) and deletes the old, now *deposed*, object later, once everything that depended on
//! it has moved or gone. Destroy-before-create deletes the old object first, for names the cloud
//! keeps unique, then creates the new one.
//!
//! Steps form a DAG:
//! - a create, update or replacement waits for the creates/updates/replacements of the
//!   resources it depends on;
//! - a delete (of a removed resource, or of a deposed object) waits for the deletes of every
//!   resource that depended on it; a deposed object's delete also waits for its replacement, and
//!   a destroy-first replacement's create waits for its delete.
//!
//! ### Values between resources
//!
//! The executor keeps the outputs of every object (as committed to state) in memory. Just before
//! a step starts, the references in its desired attributes are resolved from them, and a
//! provider configured from a resource is connected through that resource's outputs: its current
//! object for creates and updates, and the object it had when the run began for deletes (which
//! act on what was made through the old connection). So a cluster and what runs inside it are
//! created in one run, and a provider only ever sees known values.
//!
//! ### Scheduling
//!
//! A step becomes *ready* when all of its dependencies have succeeded. Ready steps wait in one
//! priority queue per provider (`ProviderRef`: kind, profile and region), and each provider has
//! its own in-flight limit (`Provider::max_in_flight`); there is no global parallelism knob,
//! because a throttled AWS region should not slow GKE down. Within a provider the step with the
//! *longest remaining path* goes first: its own duration estimate plus the longest chain of
//! estimates that hangs off it. That starts the 10-minute control planes before the 30-second
//! networks of other placements, which keeps the makespan close to the critical path.
//!
//! A run may also limit how many *placements* have steps under way at once (a rollout wave's
//! `maxParallel`): a placement keeps its slot until every step of it has ended, and one over the
//! limit is admitted only when nothing else runs, so that a limit can never stall the run.
//!
//! ### Failure, retry, timeout
//!
//! Each step retries errors that its provider typed as retryable (exponential backoff with
//! jitter), inside an overall per-step timeout. A step that still fails marks every step that
//! transitively depends on it as skipped; independent branches go on. A timed-out step leaves its
//! intent open in the journal, because its outcome is unknown.
//!
//! ### State
//!
//! Each step opens an intent in the state journal before calling its provider, and commits the
//! outcome (the resource change, the closed intent and the new serial) in one transaction after.
//! State therefore records exactly what the cloud has, action by action, whatever happens to the
//! run as a whole.
//!
//! ### Cancellation
//!
//! When the cancel signal fires (Ctrl-C, SIGTERM), nothing new is started. A step waiting to
//! retry stops at once and is reported *interrupted* (its intent closed as failed: its last
//! attempt failed); a step whose call is in flight gets a grace period ([`step::GRACE`], 5 s) to
//! finish and commit, and is then dropped with its intent left open for recovery. The run ends
//! with a report ([`Report`]) that lists what was interrupted and what never started.

mod events;
mod report;
mod step;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tessera_provider_api::{Address, Connection, Observed, Operation, Provider, ProviderRef, Replacement};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::plan::{ActionKind, Plan};
use crate::providers::{Registry, UnknownProvider};
use crate::retry::RetryPolicy;
use crate::state::{Lease, StateStore};

pub use events::{Event, EventSink, JsonLines, Progress, Quiet, Recorder};
pub use report::{Report, StepReport, StepStatus};
pub use step::GRACE;
use step::{Ended, StepCtx, StepDone};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Create,
    Update,
    /// The create half of a create-before-destroy replacement.
    Replace,
    Delete,
}

impl StepKind {
    pub fn verb(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Replace => "replace",
            Self::Delete => "delete",
        }
    }

    fn operation(self) -> Operation {
        match self {
            Self::Create | Self::Replace => Operation::Create,
            Self::Update => Operation::Update,
            Self::Delete => Operation::Delete,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ExecOptions {
    pub retry: RetryPolicy,
    /// Per-step limit, retries included. `None`: three times the step's estimate, at least 10 min.
    pub step_timeout: Option<Duration>,
    pub run_id: String,
    /// The rollout wave this run is (from 1), carried by every step's events.
    pub wave: Option<usize>,
    /// At most this many placements have steps under way at once (a wave's `maxParallel`).
    pub placement_limit: Option<usize>,
    /// Forget where an earlier rollout halted, rather than reading that wave's gate first
    /// (`apply --rollout-restart`).
    pub restart_rollout: bool,
    /// Placements to set aside from here on (`apply --skip-placement`), and to bring back.
    pub skip_placements: Vec<String>,
    pub unskip_placements: Vec<String>,
}

impl Default for ExecOptions {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            step_timeout: None,
            run_id: uuid::Uuid::new_v4().to_string(),
            wave: None,
            placement_limit: None,
            restart_rollout: false,
            skip_placements: Vec::new(),
            unskip_placements: Vec::new(),
        }
    }
}

/// Which placements may start steps: all of them, or (with a limit) those already under way and,
/// while fewer than the limit are, new ones. A placement leaves once every step of it has ended.
struct Admission<'p> {
    limit: Option<usize>,
    /// Steps not yet ended, per placement.
    open: HashMap<&'p str, usize>,
    under_way: std::collections::HashSet<&'p str>,
}

impl<'p> Admission<'p> {
    fn new(limit: Option<usize>, placements: impl Iterator<Item = &'p str>) -> Self {
        let mut open = HashMap::new();
        for p in placements {
            *open.entry(p).or_default() += 1;
        }
        Self { limit, open, under_way: Default::default() }
    }

    /// Whether a step of `placement` may start now; `force` admits it whatever the limit (nothing
    /// else can run, so waiting would never end).
    fn admit(&mut self, placement: &'p str, force: bool) -> bool {
        if self.under_way.contains(placement) {
            return true;
        }
        if force || self.limit.is_none_or(|n| self.under_way.len() < n) {
            self.under_way.insert(placement);
            return true;
        }
        false
    }

    fn ended(&mut self, placement: &'p str) {
        if let Some(n) = self.open.get_mut(placement) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.under_way.remove(placement);
            }
        }
    }
}

/// A cancel signal: flips to `true` once (Ctrl-C).
pub fn cancel_signal() -> (watch::Sender<bool>, watch::Receiver<bool>) {
    watch::channel(false)
}

struct Step {
    action: usize,
    kind: StepKind,
    deps: Vec<usize>,
    dependents: Vec<usize>,
    provider: ProviderRef,
    estimate: Duration,
    /// Longest remaining path: own estimate plus the longest chain of dependents.
    priority: Duration,
}

/// Lowers actions to steps and links them (see the module docs for the rules).
fn build_steps(plan: &Plan, registry: &Registry) -> Result<Vec<Step>, UnknownProvider> {
    let mut steps = Vec::new();
    let mut forward: HashMap<&Address, usize> = HashMap::new();
    for (i, a) in plan.actions.iter().enumerate() {
        let kinds: &[StepKind] = match (a.kind, a.replacement) {
            (ActionKind::Create, _) => &[StepKind::Create],
            (ActionKind::Update, _) => &[StepKind::Update],
            (ActionKind::Replace, Some(Replacement::DestroyBeforeCreate)) => &[StepKind::Delete, StepKind::Create],
            (ActionKind::Replace, _) => &[StepKind::Replace, StepKind::Delete],
            (ActionKind::Delete, _) => &[StepKind::Delete],
        };
        for &kind in kinds {
            let idx = steps.len();
            let provider = step_provider(a, kind).clone();
            let estimate = registry.get(&provider)?.estimate(&a.address.rtype, kind.operation());
            steps.push(Step {
                action: i,
                kind,
                deps: Vec::new(),
                dependents: Vec::new(),
                provider,
                estimate,
                priority: Duration::ZERO,
            });
            if kind != StepKind::Delete {
                forward.insert(&a.address, idx);
            }
        }
    }
    // Delete steps, indexed by each address their object depended on.
    let mut deleting_dependents: HashMap<&Address, Vec<usize>> = HashMap::new();
    let mut deleting: HashMap<&Address, usize> = HashMap::new();
    for (idx, s) in steps.iter().enumerate().filter(|(_, s)| s.kind == StepKind::Delete) {
        for dep in plan.actions[s.action].prior.iter().flat_map(|p| &p.deps) {
            deleting_dependents.entry(dep).or_default().push(idx);
        }
        deleting.insert(&plan.actions[s.action].address, idx);
    }
    let mut edges = Vec::new();
    for (idx, s) in steps.iter().enumerate() {
        let a = &plan.actions[s.action];
        match s.kind {
            StepKind::Create | StepKind::Update | StepKind::Replace => {
                for dep in a.desired.iter().flat_map(|d| &d.deps) {
                    if let Some(&d) = forward.get(dep) {
                        edges.push((d, idx));
                    }
                }
                if destroys_first(a)
                    && let Some(&delete) = deleting.get(&a.address)
                {
                    edges.push((delete, idx));
                }
            }
            StepKind::Delete => {
                if a.kind == ActionKind::Replace
                    && !destroys_first(a)
                    && let Some(&create) = forward.get(&a.address)
                {
                    edges.push((create, idx));
                }
                // Whatever depended on this object must be deleted (or moved away) first.
                for &other in deleting_dependents.get(&a.address).into_iter().flatten() {
                    if other != idx {
                        edges.push((other, idx));
                    }
                }
            }
        }
    }
    for (from, to) in edges {
        steps[from].dependents.push(to);
        steps[to].deps.push(from);
    }
    assign_priorities(&mut steps);
    Ok(steps)
}

/// Where a step acts: a delete acts on the object that exists, through the provider it was made
/// with (a replacement that moves a placement to another region deletes in the old one); the
/// other steps act through the provider the spec now wants.
fn step_provider(a: &crate::plan::Action, kind: StepKind) -> &ProviderRef {
    match (kind, &a.prior) {
        (StepKind::Delete, Some(prior)) => &prior.provider,
        _ => &a.provider,
    }
}

fn destroys_first(a: &crate::plan::Action) -> bool {
    a.kind == ActionKind::Replace && a.replacement == Some(Replacement::DestroyBeforeCreate)
}

/// Longest remaining path, computed in reverse topological order (Kahn's algorithm on dependents).
fn assign_priorities(steps: &mut [Step]) {
    let mut pending: Vec<usize> = steps.iter().map(|s| s.dependents.len()).collect();
    let mut queue: VecDeque<usize> = (0..steps.len()).filter(|&i| pending[i] == 0).collect();
    while let Some(i) = queue.pop_front() {
        let tail = steps[i].dependents.iter().map(|&d| steps[d].priority).max().unwrap_or_default();
        steps[i].priority = steps[i].estimate + tail;
        for d in steps[i].deps.clone() {
            pending[d] -= 1;
            if pending[d] == 0 {
                queue.push_back(d);
            }
        }
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ExecError {
    #[error(transparent)]
    Provider(#[from] UnknownProvider),
    #[error(transparent)]
    #[diagnostic(transparent)]
    State(#[from] crate::state::StateError),
}

/// The outputs of every object, as committed: where references and connections are resolved.
struct Outputs {
    current: HashMap<Address, Observed>,
    /// The objects as they were when the run began: deletes connect through these.
    initial: HashMap<Address, Observed>,
}

impl Outputs {
    async fn load(store: &dyn StateStore) -> Result<Self, ExecError> {
        let current: HashMap<Address, Observed> = store
            .resources()
            .await?
            .into_iter()
            .filter(|r| !r.deposed)
            .map(|r| (r.address.clone(), r.observed()))
            .collect();
        Ok(Self { initial: current.clone(), current })
    }

    /// The provider for a step, connected through its source's outputs where it takes them
    /// from a resource.
    fn provider(
        &self,
        registry: &Registry,
        kind: StepKind,
        r: &ProviderRef,
        placement: &str,
    ) -> Result<Arc<dyn Provider>, String> {
        let Some(source) = &r.connection else {
            return registry.for_placement(r, placement).map_err(|e| e.to_string());
        };
        let objects = if kind == StepKind::Delete { &self.initial } else { &self.current };
        let obs = objects
            .get(source)
            .or_else(|| self.current.get(source))
            .ok_or_else(|| format!("its connection source {source} does not exist"))?;
        let conn = Connection { source: source.clone(), id: obs.id.clone(), outputs: obs.attrs.clone() };
        registry.connect_for(r, &conn, placement).map_err(|e| e.to_string())
    }

    /// The action as one step sends it: for a create or update, every reference in its desired
    /// attributes resolved. A delete sends nothing of the desired object (a destroy-first
    /// replacement's new references do not exist yet), so it carries none.
    fn resolve(&self, action: &crate::plan::Action, kind: StepKind) -> Result<crate::plan::Action, String> {
        let mut action = action.clone();
        if kind == StepKind::Delete {
            action.desired = None;
        }
        if let Some(desired) = action.desired.as_mut().filter(|d| d.has_unknown()) {
            let lookup = |r: &tessera_provider_api::Reference| self.current.get(&r.address)?.output(&r.output);
            desired.attrs = desired.resolve(&lookup).map_err(|missing| {
                let names: Vec<String> = missing.iter().map(ToString::to_string).collect();
                format!("unresolved reference(s) {}: the source has no such output", names.join(", "))
            })?;
        }
        Ok(action)
    }

    fn record(&mut self, address: &Address, kind: StepKind, prior_id: Option<&str>, observed: Option<Observed>) {
        match (kind, observed) {
            (StepKind::Delete, _) => {
                if self.current.get(address).map(|o| o.id.as_str()) == prior_id {
                    self.current.remove(address);
                }
            }
            (_, Some(obs)) => {
                self.current.insert(address.clone(), obs);
            }
            (_, None) => {}
        }
    }
}

/// The longest chain of estimates through the plan: no schedule can finish sooner.
pub fn critical_path(plan: &Plan, registry: &Registry) -> Result<Duration, UnknownProvider> {
    Ok(build_steps(plan, registry)?.iter().map(|s| s.priority).max().unwrap_or_default())
}

/// No schedule can finish sooner than this either: the critical path, or the work each provider
/// must do divided by its in-flight limit, whichever is longer.
pub fn lower_bound(plan: &Plan, registry: &Registry) -> Result<Duration, UnknownProvider> {
    let steps = build_steps(plan, registry)?;
    let mut work: HashMap<&ProviderRef, Duration> = HashMap::new();
    for s in &steps {
        *work.entry(&s.provider).or_default() += s.estimate;
    }
    let mut bound = steps.iter().map(|s| s.priority).max().unwrap_or_default();
    for (provider, total) in work {
        let limit = registry.get(provider)?.max_in_flight().max(1) as u32;
        bound = bound.max(total / limit);
    }
    Ok(bound)
}

/// Runs `plan` to completion, failure or cancellation. See the module docs.
pub async fn execute(
    plan: &Plan,
    store: Arc<dyn StateStore>,
    lease: &Lease,
    registry: Arc<Registry>,
    opts: &ExecOptions,
    events: Arc<dyn EventSink>,
    mut cancel: watch::Receiver<bool>,
) -> Result<Report, ExecError> {
    let started = Instant::now();
    let steps = build_steps(plan, &registry)?;
    let mut outputs = Outputs::load(store.as_ref()).await?;
    events.emit(&Event::RunStarted { run_id: opts.run_id.clone(), steps: steps.len() });

    let mut status: Vec<Option<StepStatus>> = vec![None; steps.len()];
    let mut retries: Vec<u64> = vec![0; steps.len()];
    let mut waiting_on: Vec<usize> = steps.iter().map(|s| s.deps.len()).collect();
    let mut ready: HashMap<&ProviderRef, BinaryHeap<(Duration, Reverse<usize>)>> = HashMap::new();
    let mut in_flight: HashMap<&ProviderRef, usize> = HashMap::new();
    let mut limits: HashMap<&ProviderRef, usize> = HashMap::new();
    for (i, s) in steps.iter().enumerate() {
        limits.entry(&s.provider).or_insert(registry.get(&s.provider)?.max_in_flight());
        if waiting_on[i] == 0 {
            ready.entry(&s.provider).or_default().push((s.priority, Reverse(i)));
        }
    }

    // One clock per server: an unreachable cluster API fails all of its steps within the bound.
    let mut reach: HashMap<&ProviderRef, crate::retry::Reachability> = HashMap::new();
    let mut running: JoinSet<StepDone> = JoinSet::new();
    let mut task_step: HashMap<tokio::task::Id, usize> = HashMap::new();
    let mut cancelled = *cancel.borrow();
    let mut admission =
        Admission::new(opts.placement_limit, steps.iter().map(|s| plan.actions[s.action].address.placement.as_str()));
    let placement_of = |i: usize| plan.actions[steps[i].action].address.placement.as_str();
    loop {
        // A second pass admits a placement over the limit only when nothing runs: its steps
        // wait on another's, which a limit must not turn into a run that never ends.
        for force in [false, true] {
            if cancelled || (force && (!running.is_empty() || ready.values().all(BinaryHeap::is_empty))) {
                continue;
            }
            for (provider, queue) in ready.iter_mut() {
                let busy = in_flight.entry(provider).or_default();
                let mut held = Vec::new();
                while *busy < limits[provider] {
                    let Some((priority, Reverse(i))) = queue.pop() else { break };
                    if !admission.admit(placement_of(i), force) {
                        held.push((priority, Reverse(i)));
                        continue;
                    }
                    let s = &steps[i];
                    let action = &plan.actions[s.action];
                    events.emit(&Event::StepStarted {
                        address: action.address.to_string(),
                        placement: action.address.placement.clone(),
                        wave: opts.wave,
                        op: s.kind.verb().into(),
                    });
                    let prepared = outputs.resolve(action, s.kind).and_then(|a| {
                        Ok((outputs.provider(&registry, s.kind, provider, &action.address.placement)?, a))
                    });
                    let (client, action) = match prepared {
                        Ok(p) => p,
                        Err(message) => {
                            // Nothing was sent and no intent opened: fail the step where it stands.
                            let address = action.address.to_string();
                            events.emit(&Event::StepFailed {
                                address,
                                placement: action.address.placement.clone(),
                                wave: opts.wave,
                                op: s.kind.verb().into(),
                                error: message.clone(),
                            });
                            status[i] = Some(StepStatus::Failed(message));
                            admission.ended(placement_of(i));
                            for d in skip_dependents(i, &steps, plan, &mut status, events.as_ref(), opts.wave) {
                                admission.ended(placement_of(d));
                            }
                            continue;
                        }
                    };
                    *busy += 1;
                    let ctx = StepCtx {
                        index: i,
                        kind: s.kind,
                        action,
                        provider: client,
                        provider_ref: (*provider).clone(),
                        store: store.clone(),
                        lease: lease.clone(),
                        run_id: opts.run_id.clone(),
                        retry: opts.retry.clone(),
                        timeout: opts.step_timeout.unwrap_or_else(|| (s.estimate * 3).max(Duration::from_secs(600))),
                        events: events.clone(),
                        cancel: cancel.clone(),
                        reach: reach.entry(*provider).or_default().clone(),
                        wave: opts.wave,
                    };
                    let handle = running.spawn(step::run(ctx));
                    task_step.insert(handle.id(), i);
                }
                queue.extend(held);
            }
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            joined = running.join_next() => {
                let Some(joined) = joined else { break };
                let done = match joined {
                    Ok(done) => done,
                    // A panicking step is a bug; its intent stays open for recovery.
                    Err(e) => StepDone {
                        index: task_step.get(&e.id()).copied().unwrap_or_default(),
                        retries: 0,
                        result: Err(Ended::Failed(format!("internal error, outcome unknown: {e}"))),
                    },
                };
                let i = done.index;
                if let Ok(observed) = &done.result {
                    let a = &plan.actions[steps[i].action];
                    let prior = a.prior.as_ref().map(|p| p.id.as_str());
                    outputs.record(&a.address, steps[i].kind, prior, observed.clone());
                }
                retries[i] = done.retries;
                if let Some(busy) = in_flight.get_mut(&steps[i].provider) {
                    *busy = busy.saturating_sub(1);
                }
                admission.ended(placement_of(i));
                match done.result {
                    Ok(_) => {
                        status[i] = Some(StepStatus::Succeeded);
                        for &d in &steps[i].dependents {
                            waiting_on[d] -= 1;
                            if waiting_on[d] == 0 && status[d].is_none() {
                                ready.entry(&steps[d].provider).or_default().push((steps[d].priority, Reverse(d)));
                            }
                        }
                    }
                    Err(Ended::Failed(message)) => {
                        status[i] = Some(StepStatus::Failed(message));
                        for d in skip_dependents(i, &steps, plan, &mut status, events.as_ref(), opts.wave) {
                            admission.ended(placement_of(d));
                        }
                    }
                    // Its dependents were never going to start: they stay "not started".
                    Err(Ended::Interrupted(why)) => status[i] = Some(StepStatus::Interrupted(why)),
                }
            }
            _ = cancel.changed(), if !cancelled => {
                cancelled = true;
                events.emit(&Event::Interrupted { in_flight: running.len() });
            }
        }
    }

    let report = Report {
        steps: steps
            .iter()
            .enumerate()
            .map(|(i, s)| StepReport {
                address: plan.actions[s.action].address.to_string(),
                kind: s.kind,
                status: status[i].clone().unwrap_or(StepStatus::NotStarted),
                retries: retries[i],
            })
            .collect(),
        interrupted: cancelled,
        retries: retries.iter().sum(),
        elapsed: started.elapsed(),
        halted: None,
        notes: Vec::new(),
    };
    events.emit(&Event::RunFinished {
        succeeded: report.succeeded(),
        failed: report.failed(),
        skipped: report.skipped(),
        not_started: report.not_started(),
        retries: report.retries,
        elapsed_ms: report.elapsed.as_millis() as u64,
    });
    Ok(report)
}

/// Marks every step that depends on `failed` skipped; returns them.
fn skip_dependents(
    failed: usize,
    steps: &[Step],
    plan: &Plan,
    status: &mut [Option<StepStatus>],
    events: &dyn EventSink,
    wave: Option<usize>,
) -> Vec<usize> {
    let because = format!("{} {} failed", steps[failed].kind.verb(), plan.actions[steps[failed].action].address);
    let mut queue: VecDeque<usize> = steps[failed].dependents.iter().copied().collect();
    let mut skipped = Vec::new();
    while let Some(d) = queue.pop_front() {
        if status[d].is_some() {
            continue;
        }
        status[d] = Some(StepStatus::Skipped(because.clone()));
        let address = &plan.actions[steps[d].action].address;
        events.emit(&Event::StepSkipped {
            address: address.to_string(),
            placement: address.placement.clone(),
            wave,
            op: steps[d].kind.verb().into(),
            because: because.clone(),
        });
        skipped.push(d);
        queue.extend(steps[d].dependents.iter().copied());
    }
    skipped
}
