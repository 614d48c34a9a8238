//! Every object Tessera writes itself, for every cloud's variant and every supported log output,
//! validated as the API server would: built-in kinds with `kubernetes-validate --strict` at the
//! cluster's version, custom resources against the real CRDs in `../shared/k8s/crds`.

mod support;

use std::path::PathBuf;

use serde_json::{Value, json};
use tessera_kube::{contract, lower};
use tessera_kube_fixture::validate::Validator;
use tessera_kube_fixture::validate::builtin::BuiltinValidator;
use tessera_provider_api::{
    Address, Alerting, ClusterTemplate, Heartbeat, KubeAccess, LogOutput, ProviderRef, Receiver, ReceiverKind, Route,
    SecretKeyRef, UrlSource,
};

fn validator() -> Validator {
    let crds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/k8s/crds");
    Validator::new(BuiltinValidator::default_tool(), "1.31.0", crds).expect("kubernetes-validate and the real CRDs")
}

/// Alerting with one receiver of each kind, routes with labels, and a heartbeat.
fn every_receiver() -> Alerting {
    let secret = |key: &str| SecretKeyRef { name: "alerting".into(), key: key.into() };
    let receiver = |name: &str, kind: ReceiverKind| Receiver { name: name.into(), kind };
    Alerting {
        receivers: vec![
            receiver("hook", ReceiverKind::Webhook { url: UrlSource::Plain("https://hooks.example.com/t".into()) }),
            receiver("hook-secret", ReceiverKind::Webhook { url: UrlSource::Secret(secret("hook")) }),
            receiver("chat", ReceiverKind::Slack { channel: Some("#infra".into()), webhook_url: secret("slack") }),
            receiver("oncall", ReceiverKind::PagerDuty { routing_key: secret("pd") }),
            receiver(
                "genie",
                ReceiverKind::Opsgenie { api_key: secret("og"), api_url: Some("https://api.eu.opsgenie.com".into()) },
            ),
            receiver(
                "mail",
                ReceiverKind::Email {
                    to: "oncall@example.com".into(),
                    from: "tessera@example.com".into(),
                    smarthost: "smtp.example.com:587".into(),
                    auth_username: Some("tessera".into()),
                    auth_password: Some(secret("smtp")),
                },
            ),
            receiver("teams", ReceiverKind::Teams { webhook_url: secret("teams") }),
        ],
        routes: vec![Route {
            receiver: "oncall".into(),
            severity: Some("critical".into()),
            labels: [("cloud".to_string(), "eks".to_string())].into(),
            group_by: vec!["alertname".into(), "node".into()],
            group_wait: "30s".into(),
            group_interval: "5m".into(),
            repeat_interval: "4h".into(),
        }],
        heartbeat: Some(Heartbeat { receiver: "hook".into(), interval: "1m".into() }),
        coverage_after: "10m".into(),
    }
}

fn access() -> KubeAccess {
    let cluster = Address::new("p", "sim.cluster", "main");
    KubeAccess { cluster: cluster.clone(), provider: ProviderRef::connected("kube", cluster), after: vec![] }
}

fn check(v: &Validator, manifest: &Value) -> Result<(), String> {
    let api = manifest["apiVersion"].as_str().unwrap_or_default();
    let kind = manifest["kind"].as_str().unwrap_or_default();
    match api.split_once('/') {
        Some((group, version)) if group.contains('.') => v.custom(manifest, group, version, kind, None),
        _ => v.builtin(manifest),
    }
}

fn manifests(t: &ClusterTemplate, cloud: &str) -> Vec<Value> {
    lower::lower(t, &access(), cloud)
        .into_iter()
        .filter(|r| r.rtype() == contract::OBJECT)
        .map(|r| r.attrs["manifest"].clone())
        .collect()
}

#[test]
fn every_object_tessera_writes_is_valid_on_every_cloud_and_for_every_output() {
    let v = validator();
    let outputs = [
        ("loki", json!({"url": "http://loki.logging.svc:3100", "configure_kubernetes_labels": true})),
        ("elasticsearch", json!({"host": "es.logging.svc", "port": 9200, "scheme": "https"})),
        ("opensearch", json!({"host": "os.logging.svc", "port": 9200})),
        ("s3", json!({"s3_bucket": "fleet-logs", "s3_region": "eu-west-1", "path": "logs/"})),
        ("cloudwatch", json!({"region": "eu-west-1", "log_group_name": "fleet", "auto_create_stream": true})),
        ("nullout", json!({})),
    ];
    let mut checked = 0;
    for (plugin, settings) in outputs {
        let t = support::cluster(LogOutput { plugin: plugin.into(), settings }, Some(every_receiver()));
        for cloud in ["eks", "aks", "gke", "kind"] {
            for m in manifests(&t, cloud) {
                check(&v, &m).unwrap_or_else(|e| panic!("{cloud}/{plugin}: {e}\n{m}"));
                checked += 1;
            }
        }
    }
    assert_eq!(
        checked,
        6 * 4 * 11,
        "namespaces, exporter DaemonSet and PodMonitor, the PrometheusRule and AlertmanagerConfig, five logging objects"
    );
}

#[test]
fn a_misspelled_output_setting_is_refused_by_the_real_crd() {
    let v = validator();
    let t = support::cluster(
        LogOutput { plugin: "loki".into(), settings: json!({"urll": "http://loki:3100"}) },
        Some(every_receiver()),
    );
    let output = manifests(&t, "eks").into_iter().find(|m| m["kind"] == "ClusterOutput").unwrap();
    let err = check(&v, &output).unwrap_err();
    assert!(err.contains("urll"), "{err}");
}

#[test]
fn a_misspelled_receiver_field_is_refused_by_the_real_crd() {
    let v = validator();
    let t = support::cluster(LogOutput { plugin: "nullout".into(), settings: json!({}) }, Some(every_receiver()));
    let mut routing = manifests(&t, "eks").into_iter().find(|m| m["kind"] == "AlertmanagerConfig").unwrap();
    routing["spec"]["receivers"][1]["webhookConfigs"][0]["ulr"] = json!("https://x");
    let err = check(&v, &routing).unwrap_err();
    assert!(err.contains("ulr"), "{err}");
}
