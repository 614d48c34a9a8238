//! `spec.rollout`: waves of placements, the soak and the gates. Every placement of the spec must
//! belong to a wave, so that none is changed out of turn; a name that is no placement is refused
//! with the nearest ones.

use tessera_provider_api::nearest_names;

use super::super::diagnostic::{Problem, did_you_mean};
use super::super::model::{AlertsFiring, Gate, Rollout, Wave};
use super::super::raw::{RawGateChoice, RawRollout, RawWave, S};
use super::Validator;

/// Long enough for a node to fail its readiness after an upgrade, short enough to wait for.
const DEFAULT_SOAK: &str = "5m";

impl Validator<'_> {
    /// The waves, each with the placements it takes; `placements` are the spec's, in order.
    pub(super) fn rollout(&mut self, raw: &S<RawRollout>, placements: &[String]) -> Option<Rollout> {
        let r = raw.get();
        let before = self.problems.len();
        let soak = self.duration(r.soak.as_ref(), DEFAULT_SOAK, "soak");
        let soak_ms = tessera_provider_api::duration_ms(&soak).unwrap_or_default();
        let default_gate = match &r.gate {
            Some(g) => self.gate(g),
            None => Some(Gate::default()),
        };
        if r.waves.get().is_empty() {
            self.push(
                Problem::at(r.waves.loc(), "a rollout needs at least one wave")
                    .help("e.g. `waves: [{ placements: [canary] }, { placements: [\"*\"] }]`"),
            );
            return None;
        }
        let mut taken: Vec<Option<usize>> = vec![None; placements.len()];
        let mut waves = Vec::new();
        for (index, w) in r.waves.get().iter().enumerate() {
            waves.push(self.wave(index, w, placements, &mut taken, default_gate));
        }
        let left: Vec<&str> =
            placements.iter().zip(&taken).filter(|(_, t)| t.is_none()).map(|(p, _)| p.as_str()).collect();
        if !left.is_empty() {
            self.push(
                Problem::at(r.waves.loc(), format!("placement(s) {} are in no wave", quoted(&left)))
                    .help("name them in a wave, or end the waves with `{ placements: [\"*\"] }` to take the rest"),
            );
        }
        (self.problems.len() == before).then_some(Rollout { waves, soak, soak_ms })
    }

    fn wave(
        &mut self,
        index: usize,
        raw: &S<RawWave>,
        placements: &[String],
        taken: &mut [Option<usize>],
        default_gate: Option<Gate>,
    ) -> Wave {
        let w = raw.get();
        let mut wave = Wave {
            placements: Vec::new(),
            patterns: w.placements.get().iter().map(|p| p.get().clone()).collect(),
            max_parallel: None,
            gate: match &w.gate {
                Some(g) => self.gate(g),
                None => default_gate,
            },
        };
        if w.placements.get().is_empty() {
            self.push(
                Problem::at(w.placements.loc(), format!("wave {} names no placement", index + 1))
                    .help("name placements or patterns, e.g. `placements: [\"aws-*\"]`"),
            );
        }
        for pattern in w.placements.get() {
            self.wave_pattern(pattern, placements);
        }
        for (i, p) in placements.iter().enumerate() {
            if taken[i].is_none() && wave.names(p) {
                taken[i] = Some(index);
                wave.placements.push(p.clone());
            }
        }
        if let Some(n) = &w.max_parallel {
            if n.get().0 == 0 {
                self.push(
                    Problem::at(n.loc(), "maxParallel must be at least 1")
                        .help("leave it out to change every placement of the wave at once"),
                );
            }
            wave.max_parallel = Some(n.get().0);
        }
        if wave.placements.is_empty() && !w.placements.get().is_empty() {
            self.warnings.push(
                Problem::at(raw.loc(), format!("wave {} takes no placement: earlier waves took them all", index + 1))
                    .help("remove the wave, or reorder the waves"),
            );
        }
        wave
    }

    /// A name without wildcards must be a placement of the spec; a pattern that matches none is
    /// refused too, since a wave that silently takes nothing reorders the rollout.
    fn wave_pattern(&mut self, pattern: &S<String>, placements: &[String]) {
        let text = pattern.get();
        let matcher = wildmatch::WildMatch::new(text);
        if placements.iter().any(|p| matcher.matches(p)) {
            return;
        }
        let help = if text.contains(['*', '?']) {
            format!(
                "it matches none of the placements {}",
                quoted(&placements.iter().map(String::as_str).collect::<Vec<_>>())
            )
        } else {
            did_you_mean(&nearest_names(placements.iter().map(String::as_str), text, 2))
                .unwrap_or_else(|| "name a placement of `spec.placements`, or a pattern such as `aws-*`".into())
        };
        self.push(Problem::at(pattern.loc(), format!("no placement named `{text}`")).help(help));
    }

    /// `none`, or the checks with their defaults.
    fn gate(&mut self, raw: &S<RawGateChoice>) -> Option<Gate> {
        match raw.get() {
            RawGateChoice::Named(n) if n == "none" => None,
            RawGateChoice::Named(n) => {
                self.push(
                    Problem::at(raw.loc(), format!("`{n}` is not a gate")).help(
                        "write `none`, or the checks: `{ coverage: true, nodesReady: true, alertsFiring: none }`",
                    ),
                );
                None
            }
            RawGateChoice::Checks(g) => {
                let defaults = Gate::default();
                let alerts_firing = match g.alerts_firing.as_deref() {
                    None | Some("none") => AlertsFiring::None,
                    Some("any") => AlertsFiring::Any,
                    Some(other) => {
                        self.push(
                            Problem::at(raw.loc(), format!("alertsFiring `{other}` is not one Tessera knows")).help(
                                "`none`: no critical alert may fire for the placement; `any`: alerts are not read",
                            ),
                        );
                        AlertsFiring::None
                    }
                };
                Some(Gate {
                    coverage: g.coverage.unwrap_or(defaults.coverage),
                    nodes_ready: g.nodes_ready.unwrap_or(defaults.nodes_ready),
                    alerts_firing,
                })
            }
        }
    }
}

fn quoted(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}
