//! `kube.alerting` against the Kubernetes API fixture: Alertmanager's answers, as its API v2
//! gives them, reached through the API server's proxy to its Service.

mod support;

use serde_json::json;
use support::*;
use tessera_kube::alert_routing::NOBODY;
use tessera_kube::alert_rules::HEARTBEAT;
use tessera_kube::alerting_status::{ALERTING, AlertingStatus, alertmanager_service};
use tessera_provider_api::ProviderExt;

fn service() -> String {
    format!("http:{}:9093", alertmanager_service())
}

async fn status(kube: &impl ProviderExt) -> AlertingStatus {
    let read = kube.read(ALERTING, &String::new()).await.unwrap().expect("a status is always answered");
    serde_json::from_value(serde_json::to_value(read.attrs).unwrap()).unwrap()
}

#[tokio::test]
async fn alerting_works_when_alertmanager_runs_tesseras_routing_and_holds_the_heartbeat() {
    let (fixture, kube) = env();
    // No Alertmanager answers yet (the Service has no ready endpoint): reported, not an error.
    let s = status(&kube).await;
    assert!(!s.routing_loaded && !s.heartbeat_firing, "{s:?}");
    assert!(s.detail.as_deref().is_some_and(|d| d.contains("did not answer")), "{s:?}");

    let original = format!("route:\n  receiver: {NOBODY}\nreceivers:\n- name: {NOBODY}\n- name: hook\n");
    fixture.serve_through_proxy("monitoring", &service(), "/api/v2/status", json!({"config": {"original": original}}));
    fixture.serve_through_proxy("monitoring", &service(), "/api/v2/alerts", json!([]));
    let s = status(&kube).await;
    assert!(s.routing_loaded && !s.heartbeat_firing, "{s:?}");

    let beat = json!([{"labels": {"alertname": HEARTBEAT, "placement": "eu"}, "status": {"state": "active"}}]);
    fixture.serve_through_proxy("monitoring", &service(), "/api/v2/alerts", beat);
    assert_eq!(status(&kube).await, AlertingStatus { routing_loaded: true, heartbeat_firing: true, detail: None });

    // The chart's own default configuration is not Tessera's routing.
    let chart = "route:\n  receiver: \"null\"\nreceivers:\n- name: \"null\"\n";
    fixture.serve_through_proxy("monitoring", &service(), "/api/v2/status", json!({"config": {"original": chart}}));
    assert!(!status(&kube).await.routing_loaded);
}
