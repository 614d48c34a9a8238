//! Stage 3: refresh and diff. `ResourceGraph` + state + live cloud → [`Plan`].
//!
//! Every resource recorded in state is read from its cloud (refresh). Each desired resource is
//! then classified against what is live: create, update in place, replace (when a changed field
//! cannot be updated in place, when the cloud reports the object failed, or when a dependency is
//! itself replaced), or no-op. Recorded resources the spec no longer has, and deposed objects left
//! by an interrupted replacement, are deleted. Differences between what was recorded and what is
//! live are reported separately as drift: changes made outside Tessera.

mod diff;
mod file;
mod render;

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use tessera_provider_api::{Address, CloudId, Observed, ProviderError, ProviderRef, ResourceSpec};
use tokio::task::JoinSet;

use crate::compile::ResourceGraph;
use crate::providers::{Registry, UnknownProvider};
use crate::retry::RetryPolicy;
use crate::spec::Fleet;
use crate::state::{ResourceRecord, StateError, StateStore};

pub use diff::{Change, Drift, changes, drift};
pub use file::{Approval, PlanFile, PlanFileError};
pub use render::render_human;

pub const PLAN_FORMAT: &str = "tessera.plan/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    Create,
    Update,
    Replace,
    Delete,
}

impl ActionKind {
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
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        !self.actions.is_empty()
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
    #[error(transparent)]
    Provider(#[from] UnknownProvider),
    #[error("refreshing {address} failed: {error}")]
    #[diagnostic(
        code(tessera::plan::refresh),
        help("the cloud could not be read; plans are never made from stale knowledge")
    )]
    Refresh { address: Address, error: ProviderError },
    #[error("a refresh task failed: {0}")]
    ReadPanicked(String),
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
    let live = refresh(&records, registry, retry).await?;
    let current: HashMap<&Address, &ResourceRecord> =
        records.iter().filter(|r| !r.deposed).map(|r| (&r.address, r)).collect();

    let mut actions = Vec::new();
    let mut drifts = Vec::new();
    let mut unchanged = 0;
    let mut replaced: HashSet<Address> = HashSet::new();
    let desired: Vec<&ResourceSpec> = match mode {
        Mode::Apply => graph.in_order(),
        Mode::Destroy => Vec::new(),
    };
    let wanted: HashSet<&Address> = desired.iter().map(|d| &d.address).collect();

    for want in &desired {
        let Some(rec) = current.get(&want.address) else {
            actions.push(action(want, ActionKind::Create, "new resource".into(), Vec::new(), None));
            continue;
        };
        let prior = prior_of(rec);
        let Some(Some(obs)) = live.get(&rec.address) else {
            drifts.push(Drift {
                address: rec.address.clone(),
                field: "(resource)".into(),
                recorded: Some("exists".into()),
                live: None,
            });
            actions.push(action(want, ActionKind::Create, "deleted outside Tessera".into(), Vec::new(), None));
            continue;
        };
        drifts.extend(drift(&rec.address, Some(want), &rec.attrs, &obs.attrs));
        let changed = changes(want, &obs.attrs);
        let replace_reason = if obs.status.to_ascii_uppercase().contains("FAIL") {
            Some(format!("the cloud reports status {}", obs.status))
        } else if rec.provider != want.provider {
            Some(format!("provider changes from {} to {}", rec.provider, want.provider))
        } else if let Some(c) = changed.iter().find(|c| c.forces_replacement) {
            Some(format!("`{}` cannot change in place", c.field))
        } else {
            want.deps.iter().find(|d| replaced.contains(*d)).map(|d| format!("its dependency {d} is replaced"))
        };
        if let Some(reason) = replace_reason {
            replaced.insert(want.address.clone());
            actions.push(action(want, ActionKind::Replace, reason, changed, Some(prior)));
        } else if !changed.is_empty() {
            let fields: Vec<&str> = changed.iter().map(|c| c.field.as_str()).collect();
            actions.push(action(
                want,
                ActionKind::Update,
                format!("{} changed", fields.join(", ")),
                changed,
                Some(prior),
            ));
        } else {
            unchanged += 1;
        }
    }

    // Deletes: recorded objects the spec no longer wants, and deposed leftovers.
    for rec in records.iter().filter(|r| r.deposed || !wanted.contains(&r.address)) {
        let reason = match (rec.deposed, mode) {
            (true, _) => "deposed by an earlier replacement".to_string(),
            (false, Mode::Destroy) => "destroy".to_string(),
            (false, Mode::Apply) => "no longer in the spec".to_string(),
        };
        actions.push(Action {
            address: rec.address.clone(),
            kind: ActionKind::Delete,
            provider: rec.provider.clone(),
            reason,
            changes: Vec::new(),
            desired: None,
            prior: Some(prior_of(rec)),
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
        actions,
        drift: drifts,
        unchanged,
    })
}

fn action(want: &ResourceSpec, kind: ActionKind, reason: String, changes: Vec<Change>, prior: Option<Prior>) -> Action {
    Action {
        address: want.address.clone(),
        kind,
        provider: want.provider.clone(),
        reason,
        changes,
        desired: Some(want.clone()),
        prior,
    }
}

fn prior_of(rec: &ResourceRecord) -> Prior {
    Prior { id: rec.id.clone(), provider: rec.provider.clone(), deps: rec.deps.clone(), deposed: rec.deposed }
}

/// Reads every current recorded object, concurrently within each provider's in-flight budget.
async fn refresh(
    records: &[ResourceRecord],
    registry: &Registry,
    retry: &RetryPolicy,
) -> Result<BTreeMap<Address, Option<Observed>>, PlanError> {
    let mut reads = JoinSet::new();
    for rec in records.iter().filter(|r| !r.deposed) {
        let provider = registry.get(&rec.provider)?;
        let budget = registry.budget(&rec.provider)?;
        let (address, id, retry) = (rec.address.clone(), rec.id.clone(), retry.clone());
        reads.spawn(async move {
            let rtype = address.rtype.clone();
            let result = retry
                .run(
                    || async {
                        let _permit = budget.acquire().await;
                        provider.read(&rtype, &id).await
                    },
                    |_, _| {},
                )
                .await;
            (address, result)
        });
    }
    let mut live = BTreeMap::new();
    while let Some(joined) = reads.join_next().await {
        // A lost read must not look like a deleted resource, or the plan would recreate it.
        let (address, result) = joined.map_err(|e| PlanError::ReadPanicked(e.to_string()))?;
        match result {
            Ok(obs) => {
                live.insert(address, obs);
            }
            Err(ProviderError::NotFound(_)) => {
                live.insert(address, None);
            }
            Err(error) => return Err(PlanError::Refresh { address, error }),
        }
    }
    Ok(live)
}
