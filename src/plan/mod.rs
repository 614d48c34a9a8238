//! Stage 3: refresh and diff. `ResourceGraph` + state + live cloud → [`Plan`].
//!
//! ## Overview
//!
//! Every resource recorded in state is read from its cloud (refresh). Each desired resource is
//! then classified against what is live, in dependency order: create, update in place, replace
//! (when a changed field cannot be updated in place, when the cloud reports the object failed, or
//! when a dependency it references or connects through is itself replaced; one it only comes
//! after is not reason enough), or no-op. Recorded resources the spec no longer has,
//! and deposed objects left by an interrupted replacement, are deleted. Differences between what
//! was recorded and what is live are reported separately as drift: changes made outside Tessera.
//!
//! ### References
//!
//! An attribute that references another resource's output is resolved before it is compared:
//! from the live (or recorded) source when the source stays, and not at all when the source is
//! being created or replaced. An unresolved reference is a change whose new value is "(known
//! after apply)"; the action keeps the reference itself, which is what the plan digest signs and
//! what the executor resolves just before the call.
//!
//! ### Deferred refresh
//!
//! A resource whose provider connects through another resource (a Kubernetes object through its
//! cluster) is read through that connection, after its source has been decided. If the source is
//! being created or replaced there is nothing to connect to yet: its refresh is *deferred*, and
//! the plan says so rather than failing.
//!
//! ### Replacement and generations
//!
//! A replacement runs create-before-destroy unless the resource type (or a dependency being
//! replaced destroy-first) needs destroy-before-create. The new object carries the next
//! generation in its ownership tags, so no lookup by tags can mistake the old object for it.
//!
//! ### Partial failure
//!
//! A resource that cannot be read is reported as *unknown*, with the error, together with
//! everything that depends on it; the rest of the fleet still plans. A plan with unknowns cannot
//! be applied.

mod diff;
mod file;
pub mod leaves;
mod refresh;
mod render;
pub mod verify;
mod versions;

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tessera_provider_api::{Address, CloudId, ProviderRef, Reference, Replacement, ResourceSpec, generation_of};

use crate::compile::ResourceGraph;
use crate::providers::{Registry, UnknownProvider};
use crate::retry::RetryPolicy;
use crate::spec::Fleet;
use crate::state::{ResourceRecord, StateError, StateStore};

pub use diff::{Change, Drift, changes, created, drift};
pub use file::{Approval, PlanFile, PlanFileError, digest};
pub use render::{render_human, render_human_in};

/// v3: resources carry their type's schema version, and no policy or replacement rule (those come
/// from the schema).
pub const PLAN_FORMAT: &str = "tessera.plan/v3";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    Create,
    Update,
    Replace,
    Delete,
}

impl ActionKind {
    /// The operator shown in plans; a replacement's depends on its order (see [`Action::symbol`]).
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Create => "+",
            Self::Update => "~",
            Self::Replace => "-/+",
            Self::Delete => "-",
        }
    }
}

/// The object an action starts from, as recorded in state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prior {
    pub id: CloudId,
    pub provider: ProviderRef,
    pub deps: Vec<Address>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deposed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub address: Address,
    pub kind: ActionKind,
    pub provider: ProviderRef,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// What to create or converge to (create, update, replace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<ResourceSpec>,
    /// What exists now (update, replace, delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior: Option<Prior>,
    /// The order of a replacement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<Replacement>,
    /// The resource could not be read before its connection source exists.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refresh_deferred: bool,
}

impl Action {
    /// `+/-` creates the replacement first, `-/+` destroys first (Terraform's notation).
    pub fn symbol(&self) -> &'static str {
        match (self.kind, self.replacement) {
            (ActionKind::Replace, Some(Replacement::CreateBeforeDestroy)) => "+/-",
            (kind, _) => kind.symbol(),
        }
    }
}

/// A resource the plan could not decide: it (or what it depends on) could not be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unknown {
    pub address: Address,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format: String,
    pub fleet: String,
    /// The spec file the plan was made from, and the digest of its normalized content.
    pub spec_path: String,
    pub spec_digest: String,
    pub lineage: String,
    pub serial: u64,
    pub destroy: bool,
    pub actions: Vec<Action>,
    pub drift: Vec<Drift>,
    pub unchanged: usize,
    /// Resources that could not be planned; a plan with any is reported and never applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown: Vec<Unknown>,
    /// Said once at the top of the plan (a recovery that is pending, for example).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The waves the spec's rollout applies this plan in; `None`: all at once. Covered by the
    /// plan's digest, so an approval covers every wave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<crate::spec::Rollout>,
}

impl Plan {
    /// A plan of `actions` against an empty state, for unit tests.
    #[cfg(test)]
    pub(crate) fn of(actions: Vec<Action>) -> Self {
        Self {
            format: PLAN_FORMAT.into(),
            fleet: "f".into(),
            spec_path: "specs/f.yaml".into(),
            spec_digest: "d".into(),
            lineage: "l".into(),
            serial: 1,
            destroy: false,
            actions,
            drift: vec![],
            unchanged: 0,
            unknown: vec![],
            notes: vec![],
            rollout: None,
        }
    }

    pub fn has_changes(&self) -> bool {
        !self.actions.is_empty()
    }

    /// Whether every resource was planned; an incomplete plan is not applied.
    pub fn is_complete(&self) -> bool {
        self.unknown.is_empty()
    }

    pub fn count(&self, kind: ActionKind) -> usize {
        self.actions.iter().filter(|a| a.kind == kind).count()
    }

    pub fn summary(&self) -> String {
        format!(
            "{} to create, {} to update, {} to replace, {} to delete, {} unchanged",
            self.count(ActionKind::Create),
            self.count(ActionKind::Update),
            self.count(ActionKind::Replace),
            self.count(ActionKind::Delete),
            self.unchanged
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Apply,
    Destroy,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PlanError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    State(#[from] StateError),
    /// The spec asks for what the recorded fleet cannot become (a version two minors ahead).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Spec(#[from] crate::spec::SpecError),
    #[error(transparent)]
    Provider(#[from] UnknownProvider),
    /// A record's values have a newer shape than this build's schema of its type.
    #[error(
        "{address} was recorded with version {found} of the `{rtype}` schema, and this Tessera knows version \
         {current}: the state was written by a newer Tessera; use that one (this one could misread the object)"
    )]
    #[diagnostic(code(tessera::plan::newer_record))]
    NewerRecord { address: String, rtype: String, found: u32, current: u32 },
}

/// Refreshes state against the cloud and diffs it with `graph` (or with nothing, to destroy).
pub async fn make_plan(
    fleet: &Fleet,
    graph: &ResourceGraph,
    store: &dyn StateStore,
    registry: &Registry,
    retry: &RetryPolicy,
    mode: Mode,
) -> Result<Plan, PlanError> {
    let meta = store.meta().await?;
    if let Some(found) = meta.fleet.as_ref().filter(|f| **f != fleet.name) {
        return Err(StateError::WrongFleet { expected: fleet.name.clone(), found: found.clone() }.into());
    }
    let records = store.resources().await?;
    // Values an older build cannot read the shape of are refused, never diffed as if they were
    // its own (an older shape would be upgraded here, once a schema has a second version).
    for rec in &records {
        let current = registry.schema(&rec.address.rtype).map_or(rec.schema_version, |s| s.version);
        if rec.schema_version > current {
            return Err(PlanError::NewerRecord {
                address: rec.address.to_string(),
                rtype: rec.address.rtype.clone(),
                found: rec.schema_version,
                current,
            });
        }
    }
    let desired: Vec<&ResourceSpec> = match mode {
        Mode::Apply => graph.in_order(),
        Mode::Destroy => Vec::new(),
    };
    let problems = versions::check(fleet, &desired, &records);
    if !problems.is_empty() {
        let source = crate::bounded::read_to_string(&fleet.source, crate::bounded::SPEC).unwrap_or_default();
        return Err(crate::spec::SpecError::invalid(&fleet.source, &source, problems).into());
    }
    let mut d = Decider::new(&records, refresh::direct(&records, registry, retry).await?);
    for want in &desired {
        d.decide(want, registry, retry).await?;
    }
    let wanted: HashSet<&Address> = desired.iter().map(|d| &d.address).collect();

    // Deletes: recorded objects the spec no longer wants, and deposed leftovers.
    for rec in records.iter().filter(|r| r.deposed || !wanted.contains(&r.address)) {
        let reason = match (rec.deposed, mode) {
            (true, _) => "deposed by an earlier replacement".to_string(),
            (false, Mode::Destroy) => "destroy".to_string(),
            (false, Mode::Apply) => "no longer in the spec".to_string(),
        };
        d.actions.push(Action {
            address: rec.address.clone(),
            kind: ActionKind::Delete,
            provider: rec.provider.clone(),
            reason,
            changes: Vec::new(),
            desired: None,
            prior: Some(prior_of(rec)),
            replacement: None,
            refresh_deferred: false,
        });
    }

    Ok(Plan {
        format: PLAN_FORMAT.into(),
        fleet: fleet.name.clone(),
        spec_path: fleet.source.display().to_string(),
        spec_digest: fleet.digest(),
        lineage: meta.lineage,
        serial: meta.serial,
        destroy: mode == Mode::Destroy,
        actions: d.actions,
        drift: d.drift,
        unchanged: d.unchanged,
        unknown: d.unknown,
        notes: Vec::new(),
        rollout: if mode == Mode::Destroy { None } else { fleet.rollout.clone() },
    })
}

/// What the plan has decided so far, walking desired resources in dependency order.
struct Decider<'a> {
    current: HashMap<&'a Address, &'a ResourceRecord>,
    /// The highest generation recorded at each address, deposed objects included.
    generations: HashMap<&'a Address, u64>,
    live: BTreeMap<Address, refresh::Read>,
    /// Sources whose outputs are not known before apply: created or replaced.
    pending: HashSet<Address>,
    replaced: HashSet<Address>,
    destroy_first: HashSet<Address>,
    unknown_set: HashSet<Address>,
    actions: Vec<Action>,
    drift: Vec<Drift>,
    unknown: Vec<Unknown>,
    unchanged: usize,
    /// One clock per connection source: once a cluster's API has been unreachable for the retry
    /// policy's bound, the reads of its other objects fail at once (`crate::retry`).
    reach: HashMap<Address, crate::retry::Reachability>,
}

impl<'a> Decider<'a> {
    fn new(records: &'a [ResourceRecord], live: BTreeMap<Address, refresh::Read>) -> Self {
        let mut generations: HashMap<&Address, u64> = HashMap::new();
        for r in records {
            let g = generations.entry(&r.address).or_default();
            *g = (*g).max(generation_of(&r.attrs));
        }
        Self {
            current: records.iter().filter(|r| !r.deposed).map(|r| (&r.address, r)).collect(),
            generations,
            live,
            pending: HashSet::new(),
            replaced: HashSet::new(),
            destroy_first: HashSet::new(),
            unknown_set: HashSet::new(),
            actions: Vec::new(),
            drift: Vec::new(),
            reach: HashMap::new(),
            unknown: Vec::new(),
            unchanged: 0,
        }
    }

    /// The value of a reference, if it is known before apply.
    fn lookup(&self, r: &Reference) -> Option<Value> {
        if self.pending.contains(&r.address) {
            return None;
        }
        match self.live.get(&r.address) {
            Some(refresh::Read::Found(obs)) => obs.output(&r.output),
            _ => self.current.get(&r.address).and_then(|rec| rec.observed().output(&r.output)),
        }
    }

    fn next_generation(&self, address: &Address) -> u64 {
        self.generations.get(address).map_or(0, |g| g + 1)
    }

    async fn decide(&mut self, want: &ResourceSpec, registry: &Registry, retry: &RetryPolicy) -> Result<(), PlanError> {
        if let Some(dep) = want.deps.iter().find(|d| self.unknown_set.contains(*d)) {
            let error = format!("depends on {dep}, which could not be planned");
            self.mark_unknown(want, error);
            return Ok(());
        }
        let Some(rec) = self.current.get(&want.address).copied() else {
            let mut want = want.clone();
            want.set_generation(self.next_generation(&want.address));
            self.push(&want, ActionKind::Create, "new resource".into(), None, false);
            return Ok(());
        };
        let mut want = want.clone();
        want.set_generation(generation_of(&rec.attrs));
        let source = rec.provider.connection.as_ref();
        let deferred = source.is_some_and(|s| self.pending.contains(s));
        let read = match (source, deferred) {
            (_, true) => refresh::Read::Deferred,
            (Some(src), false) => {
                let src_obs = match self.live.get(src) {
                    Some(refresh::Read::Found(o)) => Some(o.clone()),
                    _ => self.current.get(src).map(|r| r.observed()),
                };
                let reach = self.reach.entry(src.clone()).or_default().clone();
                refresh::connected(rec, src, src_obs, registry, retry, &reach).await?
            }
            (None, false) => self.live.remove(&rec.address).unwrap_or(refresh::Read::Gone),
        };
        let obs = match read {
            refresh::Read::Failed(error) => {
                self.mark_unknown(&want, error);
                return Ok(());
            }
            refresh::Read::Gone => {
                self.drift.push(Drift {
                    address: rec.address.clone(),
                    field: "(resource)".into(),
                    path: Vec::new(),
                    recorded: Some("exists".into()),
                    live: None,
                });
                want.set_generation(self.next_generation(&want.address));
                self.push(&want, ActionKind::Create, "deleted outside Tessera".into(), None, false);
                return Ok(());
            }
            refresh::Read::Deferred => None,
            refresh::Read::Found(obs) => Some(obs),
        };
        let resolved = self.resolved(&want);
        let changed = obs.as_ref().map(|o| changes(&resolved, &o.attrs)).unwrap_or_default();
        if let Some(o) = &obs {
            self.drift.extend(drift(&rec.address, Some(&want), &rec.attrs, &o.attrs));
            self.live.insert(rec.address.clone(), refresh::Read::Found(o.clone()));
        }
        let replace_reason = if let Some(o) = obs.as_ref().filter(|o| o.status.to_ascii_uppercase().contains("FAIL")) {
            Some(format!("the cloud reports status {}", o.status))
        } else if rec.provider != want.provider {
            Some(format!("provider changes from {} to {}", rec.provider, want.provider))
        } else if let Some(c) = changed.iter().find(|c| c.forces_replacement) {
            Some(format!("`{}` cannot change in place", c.field))
        } else {
            // A replaced dependency replaces this object only through what ties them: a value of
            // it that this object holds (a reference), or the connection it is reached through.
            // What only comes after it (core services after the node pools) stays: its objects
            // are the same objects, in the same cluster.
            let ties = want.references().into_iter().map(|r| r.address).chain(want.provider.connection.clone());
            ties.filter(|d| self.replaced.contains(d)).min().map(|d| format!("its dependency {d} is replaced"))
        };
        let prior = Some(prior_of(rec));
        if let Some(mut reason) = replace_reason {
            if deferred {
                reason.push_str("; refresh deferred until its connection exists");
            }
            want.set_generation(self.next_generation(&want.address));
            self.push(&want, ActionKind::Replace, reason, prior, deferred);
        } else if deferred {
            // The source is created while this object is recorded: it cannot be read, so it is
            // made again against the new source.
            want.set_generation(self.next_generation(&want.address));
            let reason = "its connection source is new; refresh deferred".to_string();
            self.push(&want, ActionKind::Replace, reason, prior, true);
        } else if !changed.is_empty() {
            let fields: Vec<&str> = changed.iter().map(|c| c.field.as_str()).collect();
            let reason = format!("{} changed", fields.join(", "));
            let mut action = self.action(&want, ActionKind::Update, reason, prior, false);
            action.changes = changed;
            self.actions.push(action);
        } else {
            self.unchanged += 1;
        }
        Ok(())
    }

    /// `want` with every reference whose value is known replaced by it.
    fn resolved(&self, want: &ResourceSpec) -> ResourceSpec {
        let lookup = |r: &Reference| self.lookup(r);
        want.resolve_known(&lookup)
    }

    fn mark_unknown(&mut self, want: &ResourceSpec, error: String) {
        self.unknown_set.insert(want.address.clone());
        self.pending.insert(want.address.clone());
        self.unknown.push(Unknown { address: want.address.clone(), error });
    }

    fn action(
        &self,
        want: &ResourceSpec,
        kind: ActionKind,
        reason: String,
        prior: Option<Prior>,
        deferred: bool,
    ) -> Action {
        Action {
            address: want.address.clone(),
            kind,
            provider: want.provider.clone(),
            reason,
            changes: Vec::new(),
            desired: Some(want.clone()),
            prior,
            replacement: None,
            refresh_deferred: deferred,
        }
    }

    /// Records a create or a replacement: its outputs are known only after apply.
    fn push(&mut self, want: &ResourceSpec, kind: ActionKind, reason: String, prior: Option<Prior>, deferred: bool) {
        let resolved = self.resolved(want);
        let live = match self.live.get(&want.address) {
            Some(refresh::Read::Found(o)) if kind == ActionKind::Replace => o.attrs.clone(),
            _ => Default::default(),
        };
        let mut action = self.action(want, kind, reason, prior, deferred);
        action.changes = match kind {
            ActionKind::Replace => changes(&resolved, &live),
            _ => created(want, &resolved),
        };
        if kind == ActionKind::Replace {
            self.replaced.insert(want.address.clone());
            let destroy_first = want.replacement == Replacement::DestroyBeforeCreate
                || want.deps.iter().any(|d| self.destroy_first.contains(d));
            let strategy = if destroy_first {
                self.destroy_first.insert(want.address.clone());
                Replacement::DestroyBeforeCreate
            } else {
                Replacement::CreateBeforeDestroy
            };
            action.replacement = Some(strategy);
        }
        self.pending.insert(want.address.clone());
        self.actions.push(action);
    }
}

fn prior_of(rec: &ResourceRecord) -> Prior {
    Prior { id: rec.id.clone(), provider: rec.provider.clone(), deps: rec.deps.clone(), deposed: rec.deposed }
}
