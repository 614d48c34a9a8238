//! `kube.alerting`: is a cluster's alerting working? Read by `tessera verify`.
//!
//! ## Overview
//!
//! A read-only type ([`ALERTING`]): `read(ALERTING, "")` answers an [`AlertingStatus`]:
//! - `routingLoaded`: the cluster's Alertmanager runs Tessera's routing. Alertmanager's own
//!   `/api/v2/status` reports the configuration it loaded; it is Tessera's when it has the
//!   receiver [`NOBODY`], which only Tessera's routing defines;
//! - `heartbeatFiring`: Alertmanager holds an active [`HEARTBEAT`] alert, so Prometheus
//!   evaluates Tessera's rules and reaches Alertmanager;
//! - `criticalFiring`: the names of the alerts with `severity="critical"` that Alertmanager holds
//!   active (not silenced, not inhibited), for a rollout's gate: a placement that pages someone
//!   after its upgrade is not healthy. It is no part of [`AlertingStatus::ok`], which says
//!   whether alerting works, not whether the cluster is well.
//!
//! A real cluster is asked through its API server's service proxy ([`status_path`],
//! [`heartbeat_path`], [`critical_path`]); [`judge`] reads the first two answers and
//! [`critical_of`] the third. The sim models the same from the objects it holds (and fires no
//! critical alert).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::alert_routing::NOBODY;
use crate::alert_rules::HEARTBEAT;
use crate::charts::{MONITORING_NAMESPACE, MONITORING_RELEASE};

pub const ALERTING: &str = "kube.alerting";

/// kube-prometheus-stack's Alertmanager Service and its web port.
pub fn alertmanager_service() -> String {
    format!("{MONITORING_RELEASE}-alertmanager")
}
pub const ALERTMANAGER_PORT: u16 = 9093;

fn proxy(path: &str) -> String {
    format!(
        "/api/v1/namespaces/{MONITORING_NAMESPACE}/services/http:{}:{ALERTMANAGER_PORT}/proxy{path}",
        alertmanager_service()
    )
}

/// Alertmanager's status (with the configuration it loaded), through the API server.
pub fn status_path() -> String {
    proxy("/api/v2/status")
}

/// Alertmanager's active heartbeat alerts, through the API server.
pub fn heartbeat_path() -> String {
    proxy(&format!("/api/v2/alerts?active=true&silenced=false&inhibited=false&filter=alertname%3D%22{HEARTBEAT}%22"))
}

/// Alertmanager's active, unsilenced, uninhibited critical alerts, through the API server.
/// Alertmanager filters by the `severity` label itself, so only those alerts cross the proxy.
pub fn critical_path() -> String {
    proxy("/api/v2/alerts?active=true&silenced=false&inhibited=false&filter=severity%3D%22critical%22")
}

/// What `read(ALERTING, "")` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertingStatus {
    pub routing_loaded: bool,
    pub heartbeat_firing: bool,
    /// What was seen, when something is not as it should be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The alertnames of the critical alerts firing ([`critical_of`]), each once, sorted. Empty
    /// when none fires, and when Alertmanager did not answer (then `ok()` is false).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub critical_firing: Vec<String>,
}

impl AlertingStatus {
    /// Alerting works: Tessera's routing is loaded and the heartbeat fires. Critical alerts
    /// firing do not make it false: they are alerting working.
    pub fn ok(&self) -> bool {
        self.routing_loaded && self.heartbeat_firing
    }
}

/// Reads Alertmanager's two answers: its status (`config.original`, the YAML it loaded) and
/// its active heartbeat alerts.
pub fn judge(status: &Value, heartbeats: &Value) -> AlertingStatus {
    let original = status.pointer("/config/original").and_then(Value::as_str).unwrap_or_default();
    let routing_loaded = original.lines().any(|l| {
        let l = l.trim().trim_start_matches("- ").trim();
        l == format!("name: {NOBODY}") || l == format!("receiver: {NOBODY}")
    });
    let firing = heartbeats.as_array().is_some_and(|alerts| {
        alerts.iter().any(|a| {
            a.pointer("/labels/alertname").and_then(Value::as_str) == Some(HEARTBEAT)
                && a.pointer("/status/state").and_then(Value::as_str) == Some("active")
        })
    });
    let detail = match (routing_loaded, firing) {
        (true, true) => None,
        (false, _) => Some(format!(
            "Alertmanager has not loaded Tessera's routing (no receiver `{NOBODY}` in its configuration): is the AlertmanagerConfig `{}` in `{MONITORING_NAMESPACE}` valid, and the operator running?",
            crate::alert_routing::NAME
        )),
        (true, false) => Some(format!(
            "no active `{HEARTBEAT}` alert in Alertmanager: Prometheus is not evaluating Tessera's rules or cannot reach Alertmanager"
        )),
    };
    AlertingStatus { routing_loaded, heartbeat_firing: firing, detail, critical_firing: Vec::new() }
}

/// The alertnames, each once and sorted, of the alerts in Alertmanager's answer at
/// [`critical_path`] that are active and critical. The filters of the path are checked again
/// here, so that an answer wider than asked (an Alertmanager that ignored a filter) cannot make
/// a suppressed or non-critical alert count. The heartbeat never counts: it always fires and says
/// nothing about the cluster's health.
pub fn critical_of(alerts: &Value) -> Vec<String> {
    let names: std::collections::BTreeSet<&str> = alerts
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| {
            a.pointer("/labels/severity").and_then(Value::as_str) == Some("critical")
                && a.pointer("/status/state").and_then(Value::as_str) == Some("active")
        })
        .filter_map(|a| a.pointer("/labels/alertname").and_then(Value::as_str))
        .filter(|name| *name != HEARTBEAT)
        .collect();
    names.into_iter().map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn routing_is_ours_when_our_receiver_is_loaded_and_the_heartbeat_is_active() {
        let status =
            json!({"config": {"original": "route:\n  receiver: tessera-nobody\nreceivers:\n- name: tessera-nobody\n"}});
        let beat = json!([{"labels": {"alertname": HEARTBEAT}, "status": {"state": "active"}}]);
        assert!(judge(&status, &beat).ok());
        let chart_default =
            json!({"config": {"original": "route:\n  receiver: \"null\"\nreceivers:\n- name: \"null\"\n"}});
        let s = judge(&chart_default, &beat);
        assert!(!s.routing_loaded && s.detail.unwrap().contains("not loaded"));
        let s = judge(&status, &json!([]));
        assert!(s.routing_loaded && !s.heartbeat_firing);
        let suppressed = json!([{"labels": {"alertname": HEARTBEAT}, "status": {"state": "suppressed"}}]);
        assert!(!judge(&status, &suppressed).heartbeat_firing);
    }

    #[test]
    fn paths_go_through_the_service_proxy() {
        assert!(
            status_path().starts_with(
                "/api/v1/namespaces/monitoring/services/http:kube-prometheus-stack-alertmanager:9093/proxy/"
            )
        );
        assert!(heartbeat_path().contains("TesseraHeartbeat"));
        let critical = critical_path();
        assert!(critical.starts_with(&proxy("/api/v2/alerts?")), "{critical}");
        assert!(critical.contains("filter=severity%3D%22critical%22") && critical.contains("silenced=false"));
    }

    #[test]
    fn critical_alerts_are_the_active_critical_ones_by_name_without_the_heartbeat() {
        let alert = |name: &str, severity: &str, state: &str| json!({"labels": {"alertname": name, "severity": severity, "node": "n"}, "status": {"state": state}});
        let alerts = json!([
            alert("TesseraNodeNotScraped", "critical", "active"),
            alert("TesseraNodeNotScraped", "critical", "active"),
            alert("TesseraNodeNotCovered", "critical", "active"),
            alert("Silenced", "critical", "suppressed"),
            alert("TesseraExporterDown", "warning", "active"),
            alert(HEARTBEAT, "critical", "active"),
            json!({"labels": {"severity": "critical"}, "status": {"state": "active"}}),
        ]);
        assert_eq!(critical_of(&alerts), ["TesseraNodeNotCovered", "TesseraNodeNotScraped"]);
        assert!(critical_of(&json!([])).is_empty());
        assert!(critical_of(&json!({"error": "not a list"})).is_empty());
    }

    #[test]
    fn no_critical_alert_is_left_out_of_the_answer_and_any_is_named() {
        let quiet =
            AlertingStatus { routing_loaded: true, heartbeat_firing: true, detail: None, critical_firing: vec![] };
        assert_eq!(serde_json::to_value(&quiet).unwrap(), json!({"routingLoaded": true, "heartbeatFiring": true}));
        let paged = AlertingStatus { critical_firing: vec!["TesseraNodeNotCovered".into()], ..quiet };
        let v = serde_json::to_value(&paged).unwrap();
        assert_eq!(v["criticalFiring"], json!(["TesseraNodeNotCovered"]));
        assert!(paged.ok(), "a critical alert firing is alerting working");
        let back: AlertingStatus =
            serde_json::from_value(json!({"routingLoaded": true, "heartbeatFiring": false})).unwrap();
        assert!(back.critical_firing.is_empty());
    }
}
