//! Shared test harness: an in-memory sim cloud, SQLite state, and an engine over both.
#![allow(dead_code)]

pub mod chaos;
pub mod moto;
pub mod pipe;
pub mod workdir;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use tessera::engine::{Engine, EngineError};
use tessera::exec::{ExecOptions, Recorder, Report, cancel_signal};
use tessera::plan::{Mode, Plan};
use tessera::providers::Registry;
use tessera::spec::{self, Fleet};
use tessera::state::{SqliteStore, StateStore};
use tessera_sim::{Faults, SimCloud};

/// A fleet spec with the given placements `(name, sim profile, region)` and two pools, one
/// tainted. Infrastructure only: these tests are about the engine, and core services (on by
/// default) have tests of their own.
pub fn fleet_yaml(name: &str, placements: &[(&str, &str, &str)]) -> String {
    let mut yaml = format!(
        "{}
      scale: {{ min: 3, max: 6 }}
      labels: {{ tier: system }}
    - name: infra
      machine: {{ vcpu: 8, memoryGiB: 32 }}
      scale: {{ min: 1, max: 3 }}
      taints: [{{ key: dedicated, value: infra, effect: NoSchedule }}]
  coreServices:
    monitoring: {{ enabled: false }}
    logging: {{ enabled: false, auditLogs: true }}
  placements:
",
        header(name)
    );
    for (p, profile, region) in placements {
        let region = if region.is_empty() { String::new() } else { format!(", region: {region}") };
        yaml.push_str(&format!("    - {{ name: {p}, provider: sim, sim: {{ profile: {profile} }}{region} }}\n"));
    }
    yaml
}

/// A fleet with one small untainted pool, then `rest` (its `coreServices` and `placements`,
/// indented under `spec:`).
pub fn one_pool_fleet(name: &str, rest: &str) -> String {
    format!("{}\n      scale: {{ min: 1, max: 3 }}\n{rest}", header(name))
}

/// A fleet's head, up to its first pool's machine (`system`, 4 vCPU and 16 GiB).
fn header(name: &str) -> String {
    format!(
        "apiVersion: tessera.dev/v1alpha1
kind: Fleet
metadata: {{ name: {name} }}
spec:
  kubernetes: {{ version: \"1.31\" }}
  nodePools:
    - name: system
      machine: {{ vcpu: 4, memoryGiB: 16 }}"
    )
}

/// `spec` with its clusters' core services (monitoring, logging) turned off and control-plane
/// audit logs kept: for infrastructure tests on a cloud whose clusters' Kubernetes API cannot be
/// reached here (moto's EKS clusters have endpoints that do not answer).
pub fn without_core_services(spec: &str) -> String {
    const OFF: &str =
        "  coreServices:\n    monitoring: { enabled: false }\n    logging: { enabled: false, auditLogs: true }\n";
    let placements = spec.find("  placements:").unwrap_or(spec.len());
    let start = spec.find("  coreServices:\n").unwrap_or(placements);
    format!("{}{OFF}{}", &spec[..start], &spec[placements..])
}

pub fn three_clouds() -> String {
    fleet_yaml("core", &[("aws", "eks", "eu-west-1"), ("gcp", "gke", "europe-west4"), ("azure", "aks", "westeurope")])
}

pub fn load(yaml: &str) -> Fleet {
    spec::load_str(Path::new("test.yaml"), yaml).unwrap_or_else(|e| panic!("{:?}", e.lines()))
}

pub struct Harness {
    pub cloud: Arc<SimCloud>,
    pub store: Arc<SqliteStore>,
    pub engine: Engine,
    pub events: Arc<Recorder>,
}

impl Harness {
    pub fn new(faults: Faults) -> Self {
        Self::with_store(faults, Arc::new(SqliteStore::in_memory().expect("in-memory state")))
    }

    pub fn with_store(faults: Faults, store: Arc<SqliteStore>) -> Self {
        Self::with_registry(faults, store, |r| r)
    }

    /// A harness over any state store (its own sim cloud), for tests that share one state.
    pub fn with_shared(store: Arc<dyn StateStore>) -> Shared {
        let cloud = Arc::new(SimCloud::in_memory(Faults::default()));
        let registry = Arc::new(Registry::new(cloud.clone(), 1.0));
        Shared { engine: Engine::new(registry, store), events: Arc::new(Recorder::default()) }
    }

    /// A harness whose registry is adjusted by `f` (e.g. to point the EKS backend at moto).
    pub fn with_registry(faults: Faults, store: Arc<SqliteStore>, f: impl FnOnce(Registry) -> Registry) -> Self {
        let cloud = Arc::new(SimCloud::in_memory(faults));
        // Real-world durations: tests run on tokio's paused clock, so they cost nothing.
        let registry = Arc::new(f(Registry::new(cloud.clone(), 1.0)));
        let engine = Engine::new(registry, store.clone());
        Self { cloud, store, engine, events: Arc::new(Recorder::default()) }
    }

    pub async fn plan(&self, fleet: &Fleet) -> Plan {
        self.engine.plan(fleet, Mode::Apply).await.expect("plan")
    }

    pub async fn try_apply(&self, plan: &Plan, fleet: &Fleet) -> Result<Report, EngineError> {
        let (_tx, rx) = cancel_signal();
        self.engine.apply(plan, Some(fleet), "test", &ExecOptions::default(), self.events.clone(), rx).await
    }

    pub async fn apply_plan(&self, plan: &Plan, fleet: &Fleet) -> Report {
        self.try_apply(plan, fleet).await.expect("apply")
    }

    pub async fn apply(&self, fleet: &Fleet) -> Report {
        let plan = self.plan(fleet).await;
        self.apply_plan(&plan, fleet).await
    }

    pub async fn destroy(&self, fleet: &Fleet) -> Report {
        let plan = self.engine.plan(fleet, Mode::Destroy).await.expect("destroy plan");
        self.apply_plan(&plan, fleet).await
    }

    /// Cloud ids the sim holds.
    pub fn cloud_ids(&self) -> BTreeSet<String> {
        self.cloud.resources().expect("sim resources").into_iter().map(|r| r.id).collect()
    }

    /// Cloud ids state records.
    pub async fn state_ids(&self) -> BTreeSet<String> {
        self.store.resources().await.expect("state").into_iter().map(|r| r.id).collect()
    }
}

/// An engine over a shared state store.
pub struct Shared {
    pub engine: Engine,
    pub events: Arc<Recorder>,
}

impl Shared {
    pub async fn plan(&self, fleet: &Fleet) -> Plan {
        self.engine.plan(fleet, Mode::Apply).await.expect("plan")
    }

    pub async fn try_apply(&self, plan: &Plan, fleet: &Fleet) -> Result<Report, EngineError> {
        let (_tx, rx) = cancel_signal();
        self.engine.apply(plan, Some(fleet), "test", &ExecOptions::default(), self.events.clone(), rx).await
    }
}
