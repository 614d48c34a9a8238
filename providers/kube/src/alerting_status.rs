//! `kube.alerting`: is a cluster's alerting working? Read by `tessera verify`.
//!
//! ## Overview
//!
//! A read-only type ([`ALERTING`]): `read(ALERTING, "")` answers an [`AlertingStatus`]:
//! - `routingLoaded`: the cluster's Alertmanager runs Tessera's routing. Alertmanager's own
//!   `/api/v2/status` reports the configuration it loaded; it is Tessera's when it has the
//!   receiver [`NOBODY`], which only Tessera's routing defines;
//! - `heartbeatFiring`: Alertmanager holds an active [`HEARTBEAT`] alert, so Prometheus
//!   evaluates Tessera's rules and reaches Alertmanager.
//!
//! A real cluster is asked through its API server's service proxy ([`status_path`],
//! [`heartbeat_path`]), and [`judge`] reads the two answers; the sim models the same from the
//! objects it holds.

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

/// What `read(ALERTING, "")` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertingStatus {
    pub routing_loaded: bool,
    pub heartbeat_firing: bool,
    /// What was seen, when something is not as it should be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl AlertingStatus {
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
    AlertingStatus { routing_loaded, heartbeat_firing: firing, detail }
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
    }
}
