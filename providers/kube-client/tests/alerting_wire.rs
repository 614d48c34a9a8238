//! `kube.alerting` against the Kubernetes API fixture: Alertmanager's answers, as its API v2
//! gives them, reached through the API server's proxy to its Service.

mod support;

use serde_json::json;
use support::*;
use tessera_kube::alert_routing::NOBODY;
use tessera_kube::alert_rules::{HEARTBEAT, NODE_NOT_COVERED, NODE_NOT_SCRAPED};
use tessera_kube::alerting_status::{ALERTING, AlertingStatus, alertmanager_service, critical_path};
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

    let beat = json!([{"labels": {"alertname": HEARTBEAT, "placement": "eu", "severity": "none"}, "status": {"state": "active"}}]);
    fixture.serve_through_proxy("monitoring", &service(), "/api/v2/alerts", beat);
    let quiet = AlertingStatus { routing_loaded: true, heartbeat_firing: true, detail: None, critical_firing: vec![] };
    assert_eq!(status(&kube).await, quiet);

    // Alertmanager's critical alerts, at the query Tessera asks (its filter is Alertmanager's to
    // apply): named once each, the heartbeat never among them.
    let (_, critical_query) =
        critical_path().split_once("/proxy").map(|(a, q)| (a.to_string(), q.to_string())).unwrap();
    let node = |name: &str, node: &str| json!({"labels": {"alertname": name, "severity": "critical", "node": node}, "status": {"state": "active"}});
    let paging = json!([node(NODE_NOT_COVERED, "n1"), node(NODE_NOT_COVERED, "n2"), node(NODE_NOT_SCRAPED, "n2")]);
    fixture.serve_through_proxy("monitoring", &service(), &critical_query, paging);
    fixture.clear_requests();
    let s = status(&kube).await;
    assert_eq!(s.critical_firing, [NODE_NOT_COVERED, NODE_NOT_SCRAPED], "{s:?}");
    assert!(s.ok(), "a critical alert firing is alerting working: {s:?}");
    let asked = fixture
        .requests()
        .into_iter()
        .any(|r| r.path.ends_with("/proxy/api/v2/alerts") && r.query.contains("severity"));
    assert!(asked, "the critical alerts were asked with their filter");
    // The heartbeat's own query still gets the heartbeat list, not the critical one.
    assert!(s.heartbeat_firing);

    // The chart's own default configuration is not Tessera's routing.
    let chart = "route:\n  receiver: \"null\"\nreceivers:\n- name: \"null\"\n";
    fixture.serve_through_proxy("monitoring", &service(), "/api/v2/status", json!({"config": {"original": chart}}));
    assert!(!status(&kube).await.routing_loaded);
}
