//! Tessera's own alert rules: the coverage promise, watched from inside every cluster.
//!
//! ## Overview
//!
//! `verify` proves coverage when someone runs it; these rules keep proving it between runs. They
//! are one `PrometheusRule` per cluster, beside the chart's default rules (kept on), and are
//! derived from what coverage expects ([`crate::coverage::expected`]), so the DaemonSets they
//! watch are exactly the ones `verify` checks:
//! - [`NODE_NOT_SCRAPED`]: a node whose node-exporter target is not up (stopped, crashed, never
//!   scheduled): its disks and memory are no longer watched;
//! - [`NODE_NOT_COVERED`]: a node without a ready pod of a core DaemonSet (node-exporter, each
//!   custom exporter, fluent-bit, the host tailer), one alert per node and DaemonSet;
//! - [`EXPORTER_DOWN`]: a custom exporter's target that answers no scrape;
//!
//! Each coverage alert waits `coverageAfter` (a rollout replaces pods one node at a time; a gap
//! shorter than that is not worth a page).
//!
//! - [`JOURNAL_TAILER_FAILING`]: the journal host tailer restarting (a wrong journal path makes
//!   fluent-bit's systemd input crash-loop), with the pod's node and pool, as node alerts;
//! - [`COVERAGE_BLIND`]: no node list at all (kube-state-metrics not scraped), which would
//!   otherwise silence every coverage alert above;
//! - [`OPERATOR_DOWN`]: prometheus-operator not scraped, so new monitors and rules stop loading;
//! - [`HEARTBEAT`]: always firing. Prometheus down, or Alertmanager unable to send, is seen
//!   outside the cluster as the heartbeat's absence.
//!
//! Every alert carries `severity` and the [`Site`] labels (`fleet`, `placement`, `cloud`,
//! `region`); node alerts also carry `node` and `pool` (the node's `tessera.dev/pool` label, which
//! kube-state-metrics exports by [`crate::values`]' allowlist).

use serde_json::{Value, json};
use tessera_provider_api::{Alerting, ClusterTemplate};

use crate::charts::{MONITORING_NAMESPACE, MONITORING_RELEASE};
use crate::contract::parse_object_id;
use crate::coverage::{self, Service};
use crate::daemonsets;

pub const HEARTBEAT: &str = "TesseraHeartbeat";
pub const NODE_NOT_SCRAPED: &str = "TesseraNodeNotScraped";
pub const NODE_NOT_COVERED: &str = "TesseraNodeNotCovered";
pub const EXPORTER_DOWN: &str = "TesseraExporterDown";
pub const JOURNAL_TAILER_FAILING: &str = "TesseraJournalTailerFailing";
pub const COVERAGE_BLIND: &str = "TesseraCoverageBlind";
pub const OPERATOR_DOWN: &str = "TesseraOperatorDown";

/// The name of the `PrometheusRule` (and of the `AlertmanagerConfig`) in the monitoring namespace.
pub const NAME: &str = "tessera";

/// The job node-exporter's targets carry (the chart's ServiceMonitor takes it from the Service's
/// `jobLabel` label, `node-exporter`).
pub const NODE_EXPORTER_JOB: &str = "node-exporter";

/// Where a cluster is: the labels every alert carries, so that alerts from every cloud can be
/// routed and read in one place. The same labels are Prometheus' external labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub fleet: String,
    pub placement: String,
    pub cloud: String,
    pub region: String,
}

impl Site {
    pub fn of(cluster: &ClusterTemplate, cloud: &str) -> Self {
        Self {
            fleet: cluster.fleet.clone(),
            placement: cluster.placement.clone(),
            cloud: cloud.into(),
            region: cluster.region.clone(),
        }
    }

    pub fn labels(&self) -> Value {
        json!({ "fleet": self.fleet, "placement": self.placement, "cloud": self.cloud, "region": self.region })
    }
}

/// The job a custom exporter's targets carry: prometheus-operator names a PodMonitor's job
/// `<namespace>/<name>`.
pub fn exporter_job(name: &str) -> String {
    format!("{MONITORING_NAMESPACE}/{name}")
}

/// The `PrometheusRule` holding Tessera's rules for `cluster`.
pub fn prometheus_rule(cluster: &ClusterTemplate, alerting: &Alerting, site: &Site) -> Value {
    json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": { "name": NAME, "namespace": MONITORING_NAMESPACE },
        "spec": { "groups": [{ "name": "tessera.coverage", "rules": rules(cluster, alerting, site) }] },
    })
}

/// The rules file Prometheus loads from a `PrometheusRule` (its `spec`, as the operator writes it).
pub fn rule_file(prometheus_rule: &Value) -> Value {
    prometheus_rule.get("spec").cloned().unwrap_or_else(|| json!({ "groups": [] }))
}

fn rules(cluster: &ClusterTemplate, alerting: &Alerting, site: &Site) -> Vec<Value> {
    let after = alerting.coverage_after.as_str();
    let alert = |name: &str, expr: String, r#for: &str, severity: &str, summary: &str, extra: Value| {
        let mut labels = site.labels();
        labels["severity"] = json!(severity);
        if let Value::Object(m) = extra {
            for (k, v) in m {
                labels[k] = v;
            }
        }
        json!({
            "alert": name,
            "expr": expr,
            "for": r#for,
            "labels": labels,
            "annotations": { "summary": summary },
        })
    };
    let mut out = vec![alert(
        HEARTBEAT,
        "vector(1)".into(),
        "0s",
        "none",
        "Always firing: when it stops arriving, this cluster's alerting is down",
        json!({}),
    )];
    let monitoring = cluster.core_services.monitoring.as_ref();
    if monitoring.is_some_and(|m| m.node_exporter) {
        out.push(alert(
            NODE_NOT_SCRAPED,
            per_node(&format!("kube_node_info unless on(node) (up{{job=\"{NODE_EXPORTER_JOB}\"}} == 1)")),
            after,
            "critical",
            "Node {{ $labels.node }} (pool {{ $labels.pool }}) has no running node-exporter target: it is not monitored",
            json!({}),
        ));
    }
    for expected in coverage::expected(cluster) {
        let Some(id) = parse_object_id(&expected.id) else { continue };
        let (Some(namespace), name) = (id.namespace, id.name) else { continue };
        let service = match expected.service {
            Service::Monitoring => "monitoring",
            Service::Logging => "logging",
        };
        let ready_pods = format!(
            "kube_pod_info{{namespace=\"{namespace}\", created_by_kind=\"DaemonSet\", created_by_name=\"{name}\"}} \
             * on(namespace, pod) group_left() (kube_pod_status_ready{{condition=\"true\"}} == 1)"
        );
        out.push(alert(
            NODE_NOT_COVERED,
            per_node(&format!("kube_node_info unless on(node) ({ready_pods})")),
            after,
            "critical",
            // The rule's own labels (`daemonset`) are not `$labels` in its templates: name it here.
            &format!(
                "Node {{{{ $labels.node }}}} (pool {{{{ $labels.pool }}}}) runs no ready pod of {namespace}/{name}: its core services are incomplete"
            ),
            json!({ "daemonset": name, "service": service }),
        ));
    }
    for e in monitoring.map_or(&[][..], |m| &m.exporters[..]) {
        out.push(alert(
            EXPORTER_DOWN,
            format!("up{{job=\"{}\"}} == 0", exporter_job(&e.name)),
            after,
            "warning",
            "Exporter {{ $labels.job }} on {{ $labels.instance }} answers no scrape",
            json!({ "exporter": e.name }),
        ));
    }
    if cluster.core_services.logging.is_some() {
        let tailer = parse_object_id(&daemonsets::host_tailer_id()).map(|id| id.name.to_string()).unwrap_or_default();
        out.push(alert(
            JOURNAL_TAILER_FAILING,
            {
                let pods = format!("namespace=\"{}\", pod=~\"{tailer}-.*\"", crate::charts::LOGGING_NAMESPACE);
                // The restarts carry no node: kube_pod_info names the pod's node, as node alerts do.
                let failing = format!(
                    "(increase(kube_pod_container_status_restarts_total{{{pods}}}[15m]) > 2) \
                     * on(namespace, pod) group_left(node) max by (namespace, pod, node) (kube_pod_info{{{pods}}})"
                );
                per_node_by(&failing, "namespace, pod, ")
            },
            "0s",
            "warning",
            "The journal host tailer {{ $labels.pod }} on node {{ $labels.node }} keeps restarting: that node's journal is not shipped",
            json!({}),
        ));
    }
    out.push(alert(
        COVERAGE_BLIND,
        "absent(kube_node_info)".into(),
        after,
        "critical",
        "No node list (kube-state-metrics is not scraped): node coverage alerts cannot fire",
        json!({}),
    ));
    out.push(alert(
        OPERATOR_DOWN,
        format!("absent(up{{job=\"{MONITORING_RELEASE}-operator\"}} == 1)"),
        after,
        "warning",
        "prometheus-operator is not scraped: new monitors, rules and routing are not being loaded",
        json!({}),
    ));
    out
}

/// One series per node of `nodes` (a vector with a `node` label), with the node's pool.
fn per_node(nodes: &str) -> String {
    per_node_by(nodes, "")
}

/// [`per_node`], keeping also the labels `by` (each followed by `, `).
fn per_node_by(nodes: &str, by: &str) -> String {
    format!(
        "max by ({by}node, pool) (label_replace(({nodes}) * on(node) group_left(label_tessera_dev_pool) \
         kube_node_labels, \"pool\", \"$1\", \"label_tessera_dev_pool\", \"(.*)\"))"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_node_keeps_node_and_pool() {
        let q = per_node("kube_node_info");
        assert!(q.starts_with("max by (node, pool)"), "{q}");
        assert!(q.contains("label_tessera_dev_pool"), "{q}");
    }

    #[test]
    fn exporter_jobs_are_namespace_and_name() {
        assert_eq!(exporter_job("smartctl"), "monitoring/smartctl");
    }
}
