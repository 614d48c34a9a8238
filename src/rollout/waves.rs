//! A plan split into its rollout waves: pure, so that the order is tested without a cloud.

use crate::plan::Plan;
use crate::spec::Rollout;

/// One wave's share of a plan.
#[derive(Debug, Clone)]
pub struct WavePlan {
    /// From 1, as plans and events number waves.
    pub number: usize,
    /// The plan with only this wave's actions.
    pub plan: Plan,
}

/// The plan's actions by wave, in wave order; every action is in exactly one wave (an action's
/// wave is its placement's, [`Rollout::wave_of`]). Waves without actions are kept, empty, so that
/// `result[i]` is wave `i + 1`.
pub fn split(plan: &Plan, rollout: &Rollout) -> Vec<WavePlan> {
    let mut waves: Vec<WavePlan> = (0..rollout.waves.len().max(1))
        .map(|i| WavePlan { number: i + 1, plan: Plan { actions: Vec::new(), ..plan.clone() } })
        .collect();
    for action in &plan.actions {
        let i = rollout.wave_of(&action.address.placement).min(waves.len() - 1);
        waves[i].plan.actions.push(action.clone());
    }
    waves
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use tessera_provider_api::{Address, ProviderRef};

    use super::*;
    use crate::plan::{Action, ActionKind};
    use crate::spec::{Gate, Wave};

    fn wave(patterns: &[&str], placements: &[&str]) -> Wave {
        Wave {
            placements: placements.iter().map(|p| p.to_string()).collect(),
            patterns: patterns.iter().map(|p| p.to_string()).collect(),
            max_parallel: None,
            gate: Some(Gate::default()),
        }
    }

    fn action(placement: &str, name: &str) -> Action {
        Action {
            address: Address::new(placement, "sim.nodepool", name),
            kind: ActionKind::Update,
            provider: ProviderRef::new("sim", "local"),
            reason: "test".into(),
            changes: vec![],
            desired: None,
            prior: None,
            replacement: None,
            refresh_deferred: false,
        }
    }

    fn plan(actions: Vec<Action>) -> Plan {
        Plan::of(actions)
    }

    #[test]
    fn actions_go_to_their_placements_wave_and_deleted_placements_by_pattern_or_last() {
        let rollout = Rollout {
            waves: vec![wave(&["canary"], &["canary"]), wave(&["aws-*"], &["aws-a"]), wave(&["*"], &["gcp"])],
            soak: "1m".into(),
            soak_ms: 60_000,
        };
        let p = plan(vec![
            action("gcp", "a"),
            action("canary", "a"),
            action("aws-a", "a"),
            action("aws-gone", "a"),
            action("canary", "b"),
        ]);
        let waves = split(&p, &rollout);
        let names = |w: &WavePlan| {
            w.plan.actions.iter().map(|a| format!("{}/{}", a.address.placement, a.address.name)).collect::<Vec<_>>()
        };
        assert_eq!(names(&waves[0]), ["canary/a", "canary/b"]);
        assert_eq!(names(&waves[1]), ["aws-a/a", "aws-gone/a"], "a deleted placement joins the wave its pattern names");
        assert_eq!(names(&waves[2]), ["gcp/a"]);
        assert_eq!(waves.iter().map(|w| w.number).collect::<Vec<_>>(), [1, 2, 3]);
    }

    proptest! {
        /// Every action lands in exactly one wave, the first that takes its placement, and the
        /// order of actions within a wave is the plan's.
        #[test]
        fn every_action_is_in_the_first_wave_that_takes_its_placement(
            layout in proptest::collection::vec(0usize..4, 1..8),
            picks in proptest::collection::vec(0usize..8, 0..30),
        ) {
            let placements: Vec<String> = (0..layout.len()).map(|i| format!("p{i}")).collect();
            let mut waves: Vec<Wave> = (0..4).map(|_| wave(&[], &[])).collect();
            for (p, &w) in placements.iter().zip(&layout) {
                waves[w].placements.push(p.clone());
                waves[w].patterns.push(p.clone());
            }
            let rollout = Rollout { waves, soak: "1s".into(), soak_ms: 1000 };
            let actions: Vec<Action> = picks.iter().enumerate()
                .map(|(i, &k)| action(&placements[k % placements.len()], &format!("r{i}")))
                .collect();
            let split = split(&plan(actions.clone()), &rollout);
            let total: usize = split.iter().map(|w| w.plan.actions.len()).sum();
            prop_assert_eq!(total, actions.len());
            for (i, w) in split.iter().enumerate() {
                for a in &w.plan.actions {
                    let k: usize = a.address.placement[1..].parse().unwrap_or(usize::MAX);
                    prop_assert_eq!(layout[k], i);
                }
                let order: Vec<&str> = w.plan.actions.iter().map(|a| a.address.name.as_str()).collect();
                let expected: Vec<&str> = actions.iter()
                    .filter(|a| rollout.wave_of(&a.address.placement) == i)
                    .map(|a| a.address.name.as_str())
                    .collect();
                prop_assert_eq!(order, expected);
            }
        }
    }
}
