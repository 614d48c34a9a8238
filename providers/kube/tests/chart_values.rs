//! The values Tessera computes, checked key by key against the real charts' `values.yaml` (in
//! `../shared/k8s/charts`), so that a misspelled key path, which Helm would silently ignore,
//! fails here.

use std::path::PathBuf;

use serde_json::json;
use tessera_kube::{charts, values};
use tessera_kube_fixture::values::ChartValues;
use tessera_provider_api::{JournalPath, LogOutput, Logging, Monitoring, Toleration};

fn chart(name: &str) -> ChartValues {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/k8s/charts").join(name).join("values.yaml");
    ChartValues::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn monitoring() -> Monitoring {
    Monitoring {
        node_exporter: true,
        exporters: vec![],
        tolerations: vec![Toleration::everything()],
        remote_write: Some("https://prom.example/api/v1/write".into()),
        remote_write_auth: None,
        chart: charts::kube_prometheus_stack(),
        values: json!({}),
        alerting: None,
    }
}

#[test]
fn kube_prometheus_stack_values_are_the_charts_own_keys() {
    let kps = chart("kube-prometheus-stack");
    assert!(kps.subcharts().any(|s| s == "prometheus-node-exporter"), "node-exporter's own values are checked too");
    let computed = values::monitoring(&monitoring());
    // kube-state-metrics is a dependency whose own values.yaml is not in shared/ (only the
    // parent's section for it is): `metricLabelsAllowlist` is that chart's key for exporting
    // node labels, and is the one key of it Tessera sets. Every other key is checked.
    let not_in_shared = ["kube-state-metrics.metricLabelsAllowlist".to_string()];
    assert_eq!(kps.unknown_keys(&computed), not_in_shared);
    let mut alerting = monitoring();
    alerting.alerting = Some(tessera_provider_api::Alerting::nobody());
    assert_eq!(kps.unknown_keys(&values::monitoring(&alerting)), not_in_shared, "alerting's values too");
    // Extra values from a spec are merged under the computed ones and checked the same way.
    let merged = values::merge(&json!({"grafana": {"enabled": false}}), &computed);
    assert_eq!(kps.unknown_keys(&merged), not_in_shared);
}

#[test]
fn a_misspelled_key_path_is_caught() {
    let kps = chart("kube-prometheus-stack");
    let typo = json!({"prometheus-node-exporter": {"tolerationz": []}, "prometheusOperator": {"admissionWebhook": {}}});
    let unknown = kps.unknown_keys(&typo);
    assert!(unknown.contains(&"prometheus-node-exporter.tolerationz".to_string()), "{unknown:?}");
    assert!(unknown.contains(&"prometheusOperator.admissionWebhook".to_string()), "{unknown:?}");
}

#[test]
fn logging_operator_values_are_the_charts_own_keys() {
    let lo = chart("logging-operator");
    let l = Logging {
        journald_units: vec!["kubelet".into()],
        journal_path: JournalPath::Auto,
        kubelet_logs: true,
        tolerations: vec![Toleration::everything()],
        output: LogOutput { plugin: "nullout".into(), settings: json!({}) },
        chart: charts::logging_operator(),
        values: json!({}),
    };
    assert_eq!(lo.unknown_keys(&values::logging(&l)), Vec::<String>::new());
}
