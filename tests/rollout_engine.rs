//! The rollout in the engine, on the sim: its promise over generated wave layouts and faults (no
//! placement of a later wave ever changes while an earlier wave's gate has not passed, in one run
//! or across a halt), and a wave's `maxParallel`.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Harness, fleet_yaml, load};
use proptest::prelude::*;
use tessera::exec::Event;
use tessera::state::StateStore;
use tessera_sim::Faults;

const PROFILES: [(&str, &str); 3] = [("eks", "eu-west-1"), ("gke", "europe-west4"), ("aks", "westeurope")];

/// A fleet of `layout.len()` placements at `version`; placement `i` is in wave `layout[i]`
/// (waves without a placement are left out), soaked 10 minutes (free on the paused clock).
fn spec(layout: &[usize], version: &str) -> String {
    let placements: Vec<(String, &str, &str)> = (0..layout.len())
        .map(|i| (format!("p{i}"), PROFILES[i % PROFILES.len()].0, PROFILES[i % PROFILES.len()].1))
        .collect();
    let refs: Vec<(&str, &str, &str)> = placements.iter().map(|(n, p, r)| (n.as_str(), *p, *r)).collect();
    let mut yaml = fleet_yaml("waves", &refs).replace("version: \"1.31\"", &format!("version: \"{version}\""));
    yaml.push_str("  rollout:\n    soak: 10m\n    waves:\n");
    for wave in 0..=layout.iter().copied().max().unwrap_or_default() {
        let names: Vec<String> = (0..layout.len()).filter(|&i| layout[i] == wave).map(|i| format!("p{i}")).collect();
        if !names.is_empty() {
            yaml.push_str(&format!("      - {{ placements: [{}] }}\n", names.join(", ")));
        }
    }
    yaml
}

/// Checks one run's events against the promise, given the gate a halt before it left open
/// (wave, placements).
fn check_run(events: &[Event], mut open: BTreeMap<usize, BTreeSet<String>>) -> Result<(), String> {
    // The wave where the rollout must stop, and why: nothing of a later wave may start.
    let mut halted: Option<(usize, String)> = None;
    for e in events {
        match e {
            Event::WaveStarted { wave, placements, .. } => {
                open.insert(*wave, placements.iter().cloned().collect());
            }
            Event::GateRead { wave, placement, passed, saw } => {
                if !passed {
                    halted = Some((*wave, format!("{placement}'s gate failed: {saw:?}")));
                } else if let Some(left) = open.get_mut(wave) {
                    left.remove(placement);
                    if left.is_empty() {
                        open.remove(wave);
                    }
                }
            }
            Event::StepFailed { wave: Some(w), address, .. } => halted = Some((*w, format!("{address} failed"))),
            Event::StepStarted { address, wave: Some(w), .. } => {
                if let Some((at, why)) = halted.as_ref().filter(|(at, _)| at < w) {
                    return Err(format!("{address} (wave {w}) started after the rollout halted at wave {at}: {why}"));
                }
                if let Some((earlier, left)) = open.iter().find(|(v, _)| *v < w) {
                    return Err(format!(
                        "{address} (wave {w}) started while wave {earlier}'s gate had not passed for {left:?}"
                    ));
                }
            }
            Event::StepStarted { address, wave: None, .. } => {
                return Err(format!("{address} started outside any wave"));
            }
            _ => {}
        }
    }
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn no_placement_of_a_later_wave_changes_before_the_earlier_gates_pass(
        layout in proptest::collection::vec(0usize..3, 2..5),
        unhealthy in proptest::collection::btree_set(0usize..4, 0..3),
        failure in prop_oneof![Just(0.0), Just(0.2)],
        seed in any::<u64>(),
    ) {
        runtime().block_on(async {
            let h = Harness::new(Faults { failure_rate: failure, seed, ..Faults::default() });
            let unhealthy: BTreeSet<String> = unhealthy.iter().filter(|&&i| i < layout.len()).map(|i| format!("p{i}")).collect();
            h.cloud.set_unhealthy_after_upgrade(unhealthy.clone());
            let runs = [("1.31", false), ("1.31", false), ("1.32", false), ("1.32", false), ("1.32", true)];
            for (version, healed) in runs {
                if healed {
                    h.cloud.set_unhealthy_after_upgrade(BTreeSet::new());
                }
                let fleet = load(&spec(&layout, version));
                let open: BTreeMap<usize, BTreeSet<String>> = h
                    .store
                    .rollout_halt()
                    .await
                    .unwrap()
                    .map(|halt| [(halt.wave, halt.placements.into_iter().collect())].into_iter().collect())
                    .unwrap_or_default();
                let before = h.events.events().len();
                let plan = h.plan(&fleet).await;
                let report = h.apply_plan(&plan, &fleet).await;
                let events = h.events.events()[before..].to_vec();
                if let Err(why) = check_run(&events, open) {
                    return Err(TestCaseError::fail(format!("{why}\nlayout {layout:?}, unhealthy {unhealthy:?}, version {version}")));
                }
                // A halt is recorded exactly when the run stopped before its end.
                let halted = h.store.rollout_halt().await.unwrap();
                prop_assert_eq!(report.halted.is_some(), halted.is_some(), "{:?}", report.halted);
            }
            Ok(())
        })?;
    }
}

/// The most placements with steps under way at once: a placement is under way from its first
/// step's start until its last step has ended.
fn most_placements_at_once(events: &[Event]) -> usize {
    let mut started: BTreeSet<String> = BTreeSet::new();
    let mut total: BTreeMap<String, i64> = BTreeMap::new();
    for e in events {
        if let Event::StepStarted { placement, .. } = e {
            *total.entry(placement.clone()).or_default() += 1;
        }
    }
    let mut most = 0;
    for e in events {
        match e {
            Event::StepStarted { placement, .. } => {
                started.insert(placement.clone());
            }
            Event::StepSucceeded { placement, .. } | Event::StepFailed { placement, .. } => {
                let left = total.entry(placement.clone()).or_default();
                *left -= 1;
                if *left == 0 {
                    started.remove(placement);
                }
            }
            _ => {}
        }
        most = most.max(started.len());
    }
    most
}

#[tokio::test(start_paused = true)]
async fn max_parallel_bounds_the_placements_under_way_in_a_wave_and_still_uses_it() {
    let layout = [0, 0, 0, 0, 0];
    let limited = spec(&layout, "1.31")
        .replace("- { placements: [p0, p1, p2, p3, p4] }", "- { placements: [p0, p1, p2, p3, p4], maxParallel: 2 }");
    assert!(limited.contains("maxParallel: 2"), "{limited}");
    let h = Harness::new(Faults::default());
    let fleet = load(&limited);
    let report = h.apply(&fleet).await;
    assert!(report.is_success(), "{report:?}");
    let most = most_placements_at_once(&h.events.events());
    assert_eq!(most, 2, "at most two placements at once, and two are used");

    let h = Harness::new(Faults::default());
    let report = h.apply(&load(&spec(&layout, "1.31"))).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(most_placements_at_once(&h.events.events()), 5, "without a limit, every placement at once");
}
