//! A wave's gate: each of its placements read as `tessera verify` reads them (nodes, the core
//! DaemonSets' pods, and Alertmanager where alerting is on), then judged against the gate.
//! Reading is [`crate::verify`]'s; judging ([`judge`]) is pure.

use crate::providers::Registry;
use crate::retry::RetryPolicy;
use crate::spec::{AlertsFiring, Fleet, Gate};
use crate::state::StateStore;
use crate::verify::{self, PlacementCoverage, VerifyError};

/// One placement's gate: what it saw that fails it (nothing: passed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub placement: String,
    pub failures: Vec<String>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Reads and judges each of `placements`. A placement of the spec that cannot be read fails its
/// gate: a gate passes on what it saw, never on what it could not see.
pub async fn read(
    fleet: &Fleet,
    placements: &[String],
    gate: &Gate,
    registry: &Registry,
    store: &dyn StateStore,
    retry: &RetryPolicy,
) -> Result<Vec<Verdict>, VerifyError> {
    let wanted = |name: &str| placements.iter().any(|p| p == name);
    let read = verify::verify_placements(fleet, &wanted, registry, store, retry).await?;
    Ok(placements
        .iter()
        .filter(|name| fleet.placement(name).is_some())
        .map(|name| {
            let failures = match read.iter().find(|c| c.placement == *name) {
                Some(coverage) => judge(coverage, gate),
                None => vec![
                    "its cluster has no Kubernetes API Tessera can read, so nothing can be seen of its nodes: \
                     give this wave `gate: none` if that is intended"
                        .into(),
                ],
            };
            Verdict { placement: name.clone(), failures }
        })
        .collect())
}

/// What in `c` fails `gate`.
pub fn judge(c: &PlacementCoverage, gate: &Gate) -> Vec<String> {
    let mut failures = Vec::new();
    if let Some(error) = &c.error {
        failures.push(format!("could not be read: {error}"));
        return failures;
    }
    if gate.nodes_ready && !c.not_ready.is_empty() {
        failures.push(format!("nodesReady: {} not Ready ({})", c.not_ready.len(), shortlist(&c.not_ready)));
    }
    if gate.coverage
        && let Some(report) = &c.report
        && !report.gaps.is_empty()
    {
        let gaps: Vec<String> = report.gaps.iter().map(|g| g.describe()).collect();
        failures.push(format!("coverage: {} gap(s): {}", gaps.len(), shortlist(&gaps)));
    }
    if gate.alerts_firing == AlertsFiring::None
        && let Some(alerting) = &c.alerting
    {
        if !alerting.critical_firing.is_empty() {
            failures.push(format!("alertsFiring: critical alert(s) firing: {}", shortlist(&alerting.critical_firing)));
        } else if !alerting.ok() {
            // Silence is not health: an Alertmanager that cannot say what fires passes nothing.
            failures.push(format!(
                "alertsFiring: the alerts cannot be read: {}",
                alerting.detail.as_deref().unwrap_or("alerting does not work")
            ));
        }
    }
    failures
}

/// The first few of a list, and how many more.
fn shortlist(items: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut text = items.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > SHOWN {
        text.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    text
}
