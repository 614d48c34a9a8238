//! Engine benchmarks. Not a timed test: it prints a table for the README.
//!
//! 1. Plan and apply time, and peak memory, for synthetic fleets of 1k, 5k and 10k resources on
//!    the sim with zero latency (so the engine itself is measured). Each size runs in a fresh
//!    child process, so that peak RSS (VmHWM) belongs to that size alone.
//! 2. Apply makespan against its lower bound, on virtual time, with the sim profiles' real-world
//!    durations: a 20-cluster fleet spread over the four profiles and many regions (the critical
//!    path binds), and 20 EKS clusters in one region (the in-flight limit binds: the bound is the
//!    total work divided by the limit).
//! 3. A waved rollout of the 20-cluster spread fleet (waves of 2, 8 and 10 clusters, a 10-minute
//!    soak): its makespan against the sum over waves of each wave's bound, plus the soaks.
//!
//! Run: `cargo bench --bench engine` (`-- makespan`: the virtual-time rows only, which any
//! profile measures alike: `cargo bench --bench engine --profile dev -- makespan`).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera::engine::Engine;
use tessera::exec::{ExecOptions, Quiet, cancel_signal, critical_path, lower_bound};
use tessera::plan::Mode;
use tessera::providers::Registry;
use tessera::spec;
use tessera::state::SqliteStore;
use tessera_sim::{Faults, SimCloud};

const CHILD_ENV: &str = "TESSERA_BENCH_CHILD";

/// A fleet of `placements` clusters with `pools` node pools each: placements × (pools + 2)
/// resources. Core services are left out so that the sizes stay those the targets were set for
/// (each placement's core services would add 11 resources).
fn fleet_yaml(placements: usize, pools: usize, profiles: &[(&str, &str)]) -> String {
    let mut y = String::from(
        "apiVersion: tessera.dev/v1alpha1\nkind: Fleet\nmetadata: { name: bench }\nspec:\n  kubernetes: { version: \"1.31\" }\n  nodePools:\n",
    );
    for i in 0..pools {
        y.push_str(&format!(
            "    - {{ name: p{i}, machine: {{ vcpu: 4, memoryGiB: 16 }}, scale: {{ min: 1, max: 3 }} }}\n"
        ));
    }
    y.push_str("  coreServices:\n    monitoring: { enabled: false }\n    logging: { enabled: false }\n");
    y.push_str("  placements:\n");
    for i in 0..placements {
        let (profile, region) = profiles[i % profiles.len()];
        let region = if region.is_empty() { String::new() } else { format!(", region: {region}") };
        y.push_str(&format!("    - {{ name: c{i}, provider: sim, sim: {{ profile: {profile} }}{region} }}\n"));
    }
    y
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// One size, in this (child) process: prints `resources plan_ms apply_ms replan_ms peak_mib`.
fn run_size(resources: usize) {
    let placements = resources / 100;
    let yaml = fleet_yaml(placements, 98, &[("eks", "eu-west-1")]);
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let fleet = spec::load_str(Path::new("bench.yaml"), &yaml).expect("valid bench spec");
        let cloud = Arc::new(SimCloud::in_memory(Faults::default()));
        let registry = Arc::new(Registry::new(cloud, 0.0).with_sim_max_in_flight(64));
        let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).expect("state"));
        let engine = Engine::new(registry, store);

        let t = Instant::now();
        let plan = engine.plan(&fleet, Mode::Apply).await.expect("plan");
        let plan_ms = t.elapsed().as_secs_f64() * 1e3;
        assert_eq!(plan.actions.len(), resources);

        let t = Instant::now();
        let (_tx, rx) = cancel_signal();
        let report = engine
            .apply(&plan, Some(&fleet), "bench", &ExecOptions::default(), Arc::new(Quiet), rx)
            .await
            .expect("apply");
        let apply_ms = t.elapsed().as_secs_f64() * 1e3;
        assert!(report.is_success());

        let t = Instant::now();
        let again = engine.plan(&fleet, Mode::Apply).await.expect("re-plan");
        let replan_ms = t.elapsed().as_secs_f64() * 1e3;
        assert!(!again.has_changes());
        println!("{resources} {plan_ms:.1} {apply_ms:.1} {replan_ms:.1} {:.1}", peak_rss_mib());
    });
}

/// Makespan, critical path and lower bound of applying `yaml` on virtual time. Under a rollout
/// both add up over its waves with changes, each with its soak: waves run one after another.
fn makespan(yaml: &str) -> (Duration, Duration, Duration) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().expect("runtime");
    rt.block_on(async {
        let fleet = spec::load_str(Path::new("bench.yaml"), yaml).expect("valid");
        let cloud = Arc::new(SimCloud::in_memory(Faults::default()));
        let registry = Arc::new(Registry::new(cloud, 1.0));
        let engine = Engine::new(registry.clone(), Arc::new(SqliteStore::in_memory().expect("state")));
        let plan = engine.plan(&fleet, Mode::Apply).await.expect("plan");
        let waves: Vec<(tessera::plan::Plan, Duration)> = match &plan.rollout {
            Some(rollout) => tessera::rollout::waves::split(&plan, rollout)
                .into_iter()
                .filter(|w| !w.plan.actions.is_empty())
                .map(|w| (w.plan, Duration::from_millis(rollout.soak_ms)))
                .collect(),
            None => vec![(plan.clone(), Duration::ZERO)],
        };
        let (mut critical, mut bound) = (Duration::ZERO, Duration::ZERO);
        for (wave, soak) in &waves {
            critical += critical_path(wave, &registry).expect("critical path");
            bound += lower_bound(wave, &registry).expect("bound") + *soak;
        }
        let start = tokio::time::Instant::now();
        let (_tx, rx) = cancel_signal();
        let report = engine
            .apply(&plan, Some(&fleet), "bench", &ExecOptions::default(), Arc::new(Quiet), rx)
            .await
            .expect("apply");
        assert!(report.is_success(), "the apply did not finish: {:?}", report.halted);
        (start.elapsed(), critical, bound)
    })
}

fn print_makespan(what: &str, (span, critical, bound): (Duration, Duration, Duration)) {
    println!(
        "{what} (virtual time): makespan {}, critical path {}, bound max(critical path, work ÷ in-flight limit) {}, \
         ratio to the bound {:.3}",
        humantime::format_duration(span),
        humantime::format_duration(critical),
        humantime::format_duration(bound),
        span.as_secs_f64() / bound.as_secs_f64()
    );
}

fn spread_fleet() -> String {
    // A multi-region fleet: five clusters per cloud, each cloud's in its own regions (in-flight
    // limits are per provider and region, as the clouds' own rate limits are).
    let profiles = [
        ("eks", "eu-west-1"),
        ("gke", "europe-west4"),
        ("aks", "westeurope"),
        ("kind", ""),
        ("eks", "us-east-1"),
        ("gke", "us-central1"),
        ("aks", "eastus"),
        ("kind", ""),
        ("eks", "us-west-2"),
        ("gke", "us-east1"),
        ("aks", "westus2"),
        ("kind", ""),
        ("eks", "eu-central-1"),
        ("gke", "europe-west1"),
        ("aks", "northeurope"),
        ("kind", ""),
        ("eks", "ap-southeast-1"),
        ("gke", "asia-southeast1"),
        ("aks", "southeastasia"),
        ("kind", ""),
    ];
    fleet_yaml(20, 3, &profiles)
}

fn main() {
    if let Ok(size) = std::env::var(CHILD_ENV) {
        run_size(size.parse().expect("size"));
        return;
    }
    if std::env::args().any(|a| a == "makespan") {
        return print_makespans();
    }
    let exe = std::env::current_exe().expect("own path");
    println!("| resources | plan | apply (sim, zero latency) | re-plan (refresh) | peak RSS |");
    println!("|---:|---:|---:|---:|---:|");
    let mut applies = Vec::new();
    for size in [1_000usize, 5_000, 10_000] {
        let out = Command::new(&exe).env(CHILD_ENV, size.to_string()).output().expect("child");
        let text = String::from_utf8_lossy(&out.stdout);
        let f: Vec<f64> = text.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        if !out.status.success() || f.len() != 5 {
            println!("| {size} | failed: {} |", String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or(""));
            continue;
        }
        applies.push((size, f[1] + f[2]));
        println!("| {size} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} MiB |", f[1], f[2], f[3], f[4]);
    }
    if let (Some(five), Some(ten)) = (applies.iter().find(|a| a.0 == 5_000), applies.iter().find(|a| a.0 == 10_000)) {
        println!("\n10k / 5k (plan + apply): {:.2}×", ten.1 / five.1);
    }
    println!();
    print_makespans();
}

fn print_makespans() {
    print_makespan("20 clusters on eks/gke/aks/kind profiles, many regions", makespan(&spread_fleet()));
    print_makespan("20 EKS clusters in one region", makespan(&fleet_yaml(20, 3, &[("eks", "eu-west-1")])));
    let waves = "  rollout:\n    soak: 10m\n    waves:\n      - { placements: [c0, c1] }\n      - { placements: [c2, c3, c4, c5, c6, c7, c8, c9] }\n      - { placements: [\"*\"] }\n";
    print_makespan(
        "20 clusters over many regions in 3 waves (2, 8, 10) soaking 10m each; bound = sum over waves of max(critical path, work ÷ limit) + soaks",
        makespan(&format!("{}{waves}", spread_fleet())),
    );
}
