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
            let expects_nodes = fleet.placement(name).is_some_and(|p| p.cluster.pools.iter().any(|pool| pool.min > 0));
            let failures = match read.iter().find(|c| c.placement == *name) {
                Some(coverage) => judge(coverage, gate, expects_nodes),
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

/// What in `c` fails `gate`; `expects_nodes`: the spec's pools ask for at least one node.
pub fn judge(c: &PlacementCoverage, gate: &Gate, expects_nodes: bool) -> Vec<String> {
    let mut failures = Vec::new();
    if let Some(error) = &c.error {
        failures.push(format!("could not be read: {error}"));
        return failures;
    }
    let nodes = c.report.as_ref().map_or(0, |r| r.pools.iter().map(|p| p.nodes).sum::<usize>());
    if gate.nodes_ready && !c.not_ready.is_empty() {
        failures.push(format!("nodesReady: {} not Ready ({})", c.not_ready.len(), shortlist(&c.not_ready)));
    } else if gate.nodes_ready && expects_nodes && nodes == 0 {
        // Every node of none is Ready: a cluster whose nodes never joined passes nothing.
        failures.push("nodesReady: no node has joined the cluster, and its pools ask for some".into());
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

#[cfg(test)]
mod tests {
    use tessera_kube::alerting_status::AlertingStatus;
    use tessera_kube::coverage::{Gap, PoolCoverage, Report};

    use super::*;

    fn read(nodes: usize, not_ready: &[&str], gaps: usize, alerting: Option<AlertingStatus>) -> PlacementCoverage {
        let gap = |i: usize| Gap {
            node: format!("n{i}"),
            pool: "system".into(),
            daemonset: "node-exporter".into(),
            reason: "missing",
        };
        PlacementCoverage {
            placement: "canary".into(),
            report: Some(Report {
                pools: vec![PoolCoverage { pool: "system".into(), nodes, monitored: nodes, logged: nodes }],
                gaps: (0..gaps).map(gap).collect(),
            }),
            error: None,
            alerting,
            not_ready: not_ready.iter().map(|n| n.to_string()).collect(),
        }
    }

    fn alerting(critical: &[&str], ok: bool) -> Option<AlertingStatus> {
        Some(AlertingStatus {
            routing_loaded: ok,
            heartbeat_firing: ok,
            detail: (!ok).then(|| "Alertmanager did not answer".into()),
            critical_firing: critical.iter().map(|c| c.to_string()).collect(),
        })
    }

    #[test]
    fn a_healthy_placement_passes_and_each_failure_is_named_by_its_check() {
        let all = Gate::default();
        assert!(judge(&read(3, &[], 0, alerting(&[], true)), &all, true).is_empty());
        let f = judge(&read(3, &["n1", "n2", "n3", "n4"], 0, None), &all, true);
        assert_eq!(f, ["nodesReady: 4 not Ready (n1, n2, n3 and 1 more)"]);
        let f = judge(&read(3, &[], 2, None), &all, true);
        assert!(f.len() == 1 && f[0].starts_with("coverage: 2 gap(s): node n0 (pool system) has no pod"), "{f:?}");
        let f = judge(&read(3, &[], 0, alerting(&["TesseraNodeNotScraped"], true)), &all, true);
        assert_eq!(f, ["alertsFiring: critical alert(s) firing: TesseraNodeNotScraped"]);
    }

    #[test]
    fn what_cannot_be_seen_fails_and_what_a_gate_leaves_out_is_not_read() {
        let all = Gate::default();
        let f = judge(&read(0, &[], 0, None), &all, true);
        assert!(f[0].contains("no node has joined"), "{f:?}");
        assert!(judge(&read(0, &[], 0, None), &all, false).is_empty(), "pools that ask for no node");
        let f = judge(&read(3, &[], 0, alerting(&[], false)), &all, true);
        assert!(f[0].contains("the alerts cannot be read"), "{f:?}");
        let unread = PlacementCoverage { error: Some("connection refused".into()), ..read(3, &[], 0, None) };
        assert_eq!(judge(&unread, &all, true), ["could not be read: connection refused"]);
        let nothing = Gate { coverage: false, nodes_ready: false, alerts_firing: AlertsFiring::Any };
        assert!(judge(&read(3, &["n1"], 2, alerting(&["X"], false)), &nothing, true).is_empty());
    }
}
