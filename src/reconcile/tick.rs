//! One tick: fetch the spec, take the lease (or skip), recover, plan, verify coverage, classify,
//! and do what the lane's policy allows.
//!
//! The lease is held from recovery to the end of coverage, so a tick never reads a state an apply
//! is halfway through: a lock held by someone else skips the tick (counted, not an error). It is
//! released before drift is corrected, because the correction is an ordinary apply that takes
//! its own lease and refuses the plan if state moved in between (the plan's serial).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;

use super::Reconciler;
use super::classify::{self, split};
use super::events::Event;
use super::policy::Treatment;
use super::report::{PlacementReport, TickReport, TickResult};
use crate::engine::EngineError;
use crate::exec::{ExecOptions, Quiet};
use crate::pipeline::Authority;
use crate::plan::{ActionKind, Mode, Plan, PlanFile};
use crate::spec::Fleet;
use crate::state::{ResourceRecord, StateError};
use crate::verify::PlacementCoverage;

/// What one tick found before anything was corrected.
struct Found {
    fleet: Fleet,
    plan: Plan,
    records: Vec<ResourceRecord>,
    coverage: Vec<PlacementCoverage>,
}

impl Reconciler {
    /// Runs one tick and reports it (metrics, events). `cancel` stops a correction in flight the
    /// way Ctrl-C stops an apply: steps in flight finish and the lock is released.
    pub async fn tick(&self, cancel: watch::Receiver<bool>) -> TickReport {
        let started = tokio::time::Instant::now();
        let source = self.source.describe();
        let mut report = TickReport {
            result: TickResult::Error,
            source,
            commit: None,
            duration: Duration::ZERO,
            placements: Vec::new(),
            corrected: Vec::new(),
            plan_files: Vec::new(),
            error: None,
            drift: Vec::new(),
            rollout_halted: None,
        };
        match self.tick_inner(&mut report, cancel).await {
            Ok(result) => report.result = result,
            Err(TickError::Skipped(why)) => {
                report.result = TickResult::Skipped;
                report.error = Some(why);
            }
            Err(TickError::Failed(e)) => {
                report.result = TickResult::Error;
                report.error = Some(e);
            }
        }
        report.duration = started.elapsed();
        self.metrics.record(&report);
        for d in &report.drift {
            self.events.emit(&Event::Drift {
                commit: report.commit.clone(),
                placement: d.address.placement.clone(),
                address: d.address.to_string(),
                field: d.field.clone(),
                path: serde_json::to_value(&d.path).unwrap_or_default(),
                recorded: classify::shown(&d.recorded),
                live: classify::shown(&d.live),
            });
        }
        self.events.emit(&Event::Tick(Box::new(report.clone())));
        report
    }

    async fn tick_inner(
        &self,
        report: &mut TickReport,
        cancel: watch::Receiver<bool>,
    ) -> Result<TickResult, TickError> {
        let fetched = self.source.fetch(self.charts.clone()).await.map_err(|e| TickError::Failed(format!("{e}")))?;
        report.commit = fetched.commit;
        let found = self.look(fetched.fleet).await?;
        report.rollout_halted =
            self.engine.store.rollout_halt().await.map_err(|e| TickError::Failed(e.to_string()))?.map(|h| h.wave);
        let split = split(&found.plan, &found.records);
        let authority = Authority::gather(Some(&found.fleet), &found.records, &found.plan.actions);

        // Per placement: drift, pending, coverage.
        let mut placements: BTreeMap<String, PlacementReport> = found
            .fleet
            .placements
            .iter()
            .map(|p| (p.name.clone(), PlacementReport { name: p.name.clone(), ..Default::default() }))
            .collect();
        for (name, (resources, fields)) in classify::drift_by_placement(&found.plan.drift) {
            let p = slot(&mut placements, &name);
            p.drifted_resources = resources;
            p.drifted_fields = fields;
        }
        for &i in &split.pending {
            slot(&mut placements, &found.plan.actions[i].address.placement).pending += 1;
        }
        let mut coverage_errors = Vec::new();
        let creating_cluster = |placement: &str| {
            found.plan.actions.iter().any(|a| {
                a.address.placement == placement
                    && a.address.rtype.ends_with(".cluster")
                    && matches!(a.kind, ActionKind::Create | ActionKind::Replace)
            })
        };
        for c in &found.coverage {
            if let Some(p) = placements.get_mut(&c.placement) {
                if let Some(r) = &c.report {
                    for pool in &r.pools {
                        p.uncovered.insert(pool.pool.clone(), 0);
                    }
                    let mut nodes: BTreeMap<&str, std::collections::BTreeSet<&str>> = BTreeMap::new();
                    for g in &r.gaps {
                        nodes.entry(g.pool.as_str()).or_default().insert(g.node.as_str());
                    }
                    for (pool, n) in nodes {
                        p.uncovered.insert(pool.to_string(), n.len());
                    }
                }
            }
            // A cluster the spec has and state does not yet is pending, not a coverage error.
            if let Some(e) = &c.error
                && !creating_cluster(&c.placement)
            {
                coverage_errors.push(format!("{}: {e}", c.placement));
            }
        }
        report.placements = placements.into_values().collect();
        report.drift = found.plan.drift.clone();

        // What policy allows, per placement.
        let mut corrections = Vec::new();
        let mut for_pipeline: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for &i in &split.corrections {
            let a = &found.plan.actions[i];
            let pipeline_only = self.policy.is_pipeline_only(&authority, &a.address.placement);
            match self.policy.treatment(&authority, &a.address.placement) {
                Treatment::Report => {}
                Treatment::PlanFile => for_pipeline.entry(a.address.placement.clone()).or_default().push(i),
                Treatment::Correct if pipeline_only => {
                    for_pipeline.entry(a.address.placement.clone()).or_default().push(i)
                }
                Treatment::Correct => {
                    if classify::undoes_drift(a, &found.plan, &found.records, false) {
                        corrections.push(i);
                    }
                }
            }
        }
        if let Some(dir) = &self.config.plan_dir {
            report.plan_files = self.write_plan_files(dir, &found, &for_pipeline, &authority)?;
        }
        if !corrections.is_empty() {
            let mut subset = found.plan.clone();
            subset.actions = corrections.iter().map(|&i| found.plan.actions[i].clone()).collect();
            // Putting back recorded values advances no rollout: the loop never starts one, so a
            // correction runs at once, without waves, soaks or gates.
            subset.rollout = None;
            let opts = ExecOptions::default();
            let applied = self
                .engine
                .apply(
                    &subset,
                    Some(&found.fleet),
                    "reconcile correct-drift",
                    &opts,
                    std::sync::Arc::new(Quiet),
                    cancel,
                )
                .await;
            match applied {
                Ok(r) if r.is_success() => {
                    report.corrected = subset.actions.iter().map(|a| a.address.to_string()).collect()
                }
                Ok(r) => {
                    return Err(TickError::Failed(format!(
                        "correcting drift: {} succeeded, {} failed, {} not started",
                        r.succeeded(),
                        r.failed(),
                        r.not_started()
                    )));
                }
                Err(EngineError::State(e @ StateError::Locked { .. })) => {
                    return Err(TickError::Skipped(e.to_string()));
                }
                Err(e) => return Err(TickError::Failed(format!("correcting drift: {e}"))),
            }
        }
        if !found.plan.is_complete() {
            let unknown: Vec<String> =
                found.plan.unknown.iter().map(|u| format!("{}: {}", u.address, u.error)).collect();
            return Err(TickError::Failed(format!("could not plan {}", unknown.join("; "))));
        }
        if !coverage_errors.is_empty() {
            return Err(TickError::Failed(format!("could not verify coverage: {}", coverage_errors.join("; "))));
        }
        Ok(if !found.plan.drift.is_empty() || report.uncovered() > 0 {
            TickResult::Drift
        } else if report.pending() > 0 {
            TickResult::Pending
        } else {
            TickResult::InSync
        })
    }

    /// Under the lease: recover a crashed run's intents, plan, read coverage.
    async fn look(&self, fleet: Fleet) -> Result<Found, TickError> {
        let engine = &self.engine;
        let lease = match engine.store.lock(&engine.holder, "reconcile", engine.lock_ttl.as_secs().max(1)).await {
            Ok(l) => l,
            Err(e @ StateError::Locked { .. }) => return Err(TickError::Skipped(e.to_string())),
            Err(e) => return Err(TickError::Failed(e.to_string())),
        };
        let renewer = engine.spawn_renewer(lease.clone());
        let result = async {
            if !engine.store.open_intents().await?.is_empty() {
                crate::recover::recover(engine.store.as_ref(), &engine.registry, &lease, &engine.retry).await?;
            }
            let plan = engine.plan(&fleet, Mode::Apply).await?;
            let records = engine.store.resources().await?;
            let coverage = crate::verify::verify(&fleet, &engine.registry, engine.store.as_ref(), &engine.retry)
                .await
                .map_err(|e| TickError::Failed(e.to_string()))?;
            Ok::<_, TickError>((plan, records, coverage))
        }
        .await;
        renewer.abort();
        // A failed release leaves a lease that expires on its own.
        let _ = engine.store.unlock(&lease).await;
        let (plan, records, coverage) = result?;
        Ok(Found { fleet, plan, records, coverage })
    }

    /// One plan file per pipeline-only placement with drift, named for the placement; rewritten
    /// only when its digest changes (approvals of an unchanged plan stay valid), removed once the
    /// placement has no drift left to undo.
    fn write_plan_files(
        &self,
        dir: &std::path::Path,
        found: &Found,
        for_pipeline: &BTreeMap<String, Vec<usize>>,
        authority: &Authority,
    ) -> Result<Vec<PathBuf>, TickError> {
        std::fs::create_dir_all(dir).map_err(|e| TickError::Failed(format!("creating {}: {e}", dir.display())))?;
        let mut written = Vec::new();
        for p in &found.fleet.placements {
            if self.policy.treatment(authority, &p.name) != Treatment::PlanFile && !for_pipeline.contains_key(&p.name) {
                continue;
            }
            let path = dir.join(format!("drift-{}.plan.json", p.name));
            let Some(actions) = for_pipeline.get(&p.name) else {
                if path.exists() {
                    std::fs::remove_file(&path)
                        .map_err(|e| TickError::Failed(format!("removing {}: {e}", path.display())))?;
                }
                continue;
            };
            let mut plan = found.plan.clone();
            plan.actions = actions.iter().map(|&i| found.plan.actions[i].clone()).collect();
            plan.drift.retain(|d| d.address.placement == p.name);
            plan.notes.push(format!(
                "drift found by `tessera reconcile` on placement `{}`{}: these actions put back what was changed outside Tessera",
                p.name,
                self.source_note()
            ));
            let file = PlanFile::new(plan);
            let unchanged = PlanFile::load(&path).is_ok_and(|old| old.digest == file.digest);
            if !unchanged {
                file.save(&path).map_err(|e| TickError::Failed(e.to_string()))?;
            }
            written.push(path);
        }
        Ok(written)
    }

    fn source_note(&self) -> String {
        match &self.source {
            super::Source::File(_) => String::new(),
            super::Source::Git(g) => format!(" (following {} at {})", super::source::redact(&g.repo), g.git_ref),
        }
    }
}

/// A placement's report, made on first use (state may hold a placement the spec no longer has).
fn slot<'a>(m: &'a mut BTreeMap<String, PlacementReport>, name: &str) -> &'a mut PlacementReport {
    m.entry(name.to_string()).or_insert_with(|| PlacementReport { name: name.to_string(), ..Default::default() })
}

enum TickError {
    Skipped(String),
    Failed(String),
}

impl From<StateError> for TickError {
    fn from(e: StateError) -> Self {
        if matches!(e, StateError::Locked { .. }) { Self::Skipped(e.to_string()) } else { Self::Failed(e.to_string()) }
    }
}

impl From<EngineError> for TickError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::State(s) => s.into(),
            e => Self::Failed(e.to_string()),
        }
    }
}

impl From<crate::recover::RecoverError> for TickError {
    fn from(e: crate::recover::RecoverError) -> Self {
        Self::Failed(e.to_string())
    }
}
