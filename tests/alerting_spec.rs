//! `coreServices.alerting` as a spec author writes it: what is accepted, and each refusal at its
//! own line (a plain credential, an undefined receiver, a bad duration, a receiver with two
//! integrations), and the warnings (alerting off, nobody to tell).

use std::path::Path;

use tessera::spec::{self, Fleet};
use tessera_provider_api::{Alerting, ReceiverKind, SecretKeyRef, UrlSource};

fn spec_with(alerting: &str) -> String {
    format!(
        r#"apiVersion: tessera.dev/v1alpha1
kind: Fleet
metadata: {{ name: core }}
spec:
  kubernetes: {{ version: "1.31" }}
  nodePools:
    - name: system
      machine: {{ vcpu: 4, memoryGiB: 16 }}
      scale: {{ min: 1, max: 3 }}
  coreServices:
    monitoring: {{ nodeExporter: true }}
{alerting}
  placements:
    - {{ name: aws, provider: sim, sim: {{ profile: eks }}, region: eu-west-1 }}
"#
    )
}

const FULL: &str = r##"    alerting:
      receivers:
        - name: oncall
          pagerduty: { routingKey: { secretRef: { name: alerting, key: pagerduty } } }
        - name: chat
          slack: { channel: "#infra-alerts", webhookUrl: { secretRef: { name: alerting, key: slack-url } } }
        - name: hook
          webhook: { url: "https://hooks.example.com/tessera" }
        - name: genie
          opsgenie: { apiKey: { secretRef: { name: alerting, key: opsgenie } } }
        - name: mail
          email: { to: oncall@example.com, from: tessera@example.com, smarthost: "smtp.example.com:587", authUsername: tessera, authPassword: { secretRef: { name: alerting, key: smtp } } }
        - name: teams
          teams: { webhookUrl: { secretRef: { name: alerting, key: teams } } }
      routes:
        - { severity: critical, receiver: oncall }
        - { severity: warning, receiver: chat, labels: { cloud: eks }, groupBy: [alertname, node], repeatInterval: 12h }
      heartbeat: { receiver: hook, interval: 2m }
      coverageAfter: 5m"##;

fn load(src: &str) -> Result<Fleet, Vec<String>> {
    spec::load_str(Path::new("f.yaml"), src).map_err(|e| e.lines())
}

fn alerting(f: &Fleet) -> Option<&Alerting> {
    f.placements[0].cluster.core_services.monitoring.as_ref()?.alerting.as_ref()
}

#[test]
fn every_receiver_kind_routes_and_heartbeat_are_read() {
    let f = load(&spec_with(FULL)).unwrap();
    let a = alerting(&f).unwrap();
    let kinds: Vec<&str> = a.receivers.iter().map(|r| r.kind.label()).collect();
    assert_eq!(kinds, ["pagerduty", "slack", "webhook", "opsgenie", "email", "teams"]);
    assert_eq!(
        a.receivers[0].kind,
        ReceiverKind::PagerDuty { routing_key: SecretKeyRef { name: "alerting".into(), key: "pagerduty".into() } }
    );
    assert_eq!(
        a.receivers[2].kind,
        ReceiverKind::Webhook { url: UrlSource::Plain("https://hooks.example.com/tessera".into()) }
    );
    assert_eq!(a.routes[0].group_by, Alerting::DEFAULT_GROUP_BY, "defaults fill what a route leaves out");
    assert_eq!(a.routes[0].repeat_interval, "4h");
    assert_eq!(a.routes[1].repeat_interval, "12h");
    assert_eq!(a.routes[1].labels.get("cloud").map(String::as_str), Some("eks"));
    assert_eq!(a.heartbeat.as_ref().map(|h| h.interval.as_str()), Some("2m"));
    assert_eq!(a.coverage_after, "5m");
}

#[test]
fn without_a_block_alerting_is_on_with_nobody_to_tell_and_says_so() {
    let f = load(&spec_with("")).unwrap();
    assert_eq!(alerting(&f), Some(&Alerting::nobody()));
    let off = load(&spec_with("    alerting: { enabled: false }")).unwrap();
    assert_eq!(alerting(&off), None);
    assert!(
        off.warnings.iter().any(|w| w.message.contains("coreServices.alerting is turned off")),
        "{:?}",
        off.warnings
    );
    let nobody = load(&spec_with("    alerting: { routes: [] }")).unwrap();
    assert!(nobody.warnings.iter().any(|w| w.message.contains("no receivers")), "{:?}", nobody.warnings);
}

#[track_caller]
fn refused(alerting: &str, at: &str, needle: &str) {
    let got = load(&spec_with(alerting)).err().unwrap_or_default();
    assert!(
        got.iter().any(|p| p.starts_with(&format!("f.yaml:{at}: ")) && p.contains(needle)),
        "expected a problem at {at} mentioning `{needle}`, got {got:#?}"
    );
}

#[test]
fn a_plain_credential_is_refused_at_its_line() {
    // The alerting block starts on line 12 of `spec_with`; each refusal points at the value.
    refused(
        "    alerting:\n      receivers:\n        - name: chat\n          slack: { webhookUrl: \"https://hooks.slack.com/services/T0/B0/XXXX\" }",
        "15:32",
        "must reference a Secret's key",
    );
    refused(
        "    alerting:\n      receivers:\n        - name: oncall\n          pagerduty: { routingKey: 0123456789abcdef }",
        "15:36",
        "must reference a Secret's key",
    );
    refused(
        "    alerting:\n      receivers:\n        - name: hook\n          webhook: { url: \"https://user:pass@hooks.example.com/x\" }",
        "15:27",
        "carries a credential",
    );
}

#[test]
fn routes_name_defined_receivers_and_durations_are_durations() {
    let base = "    alerting:\n      receivers:\n        - name: chat\n          webhook: { url: \"https://h.example.com/x\" }\n";
    refused(
        &format!("{base}      routes:\n        - {{ severity: critical, receiver: caht }}"),
        "17:43",
        "no receiver named `caht`",
    );
    refused(&format!("{base}      heartbeat: {{ receiver: nobody }}"), "16:30", "no receiver named `nobody`");
    refused(
        &format!("{base}      routes:\n        - {{ severity: page, receiver: chat }}"),
        "17:23",
        "unknown severity",
    );
    refused(
        &format!("{base}      routes:\n        - {{ receiver: chat, repeatInterval: 4 hours }}"),
        "17:45",
        "not a duration",
    );
    refused(&format!("{base}      coverageAfter: 0s"), "16:22", "too short");
}

#[test]
fn a_receiver_has_exactly_one_integration_and_a_unique_name() {
    refused(
        "    alerting:\n      receivers:\n        - name: both\n          webhook: { url: \"https://h.example.com/x\" }\n          teams: { webhookUrl: { secretRef: { name: a, key: b } } }",
        "14:17",
        "exactly one integration",
    );
    refused(
        "    alerting:\n      receivers:\n        - name: a\n          webhook: { url: \"https://h.example.com/x\" }\n        - name: a\n          webhook: { url: \"https://h.example.com/y\" }",
        "16:17",
        "defined twice",
    );
}

#[test]
fn alerting_without_monitoring_is_refused() {
    let src = spec_with(
        "    alerting:\n      receivers:\n        - name: hook\n          webhook: { url: \"https://h.example.com/x\" }",
    )
    .replace("monitoring: { nodeExporter: true }", "monitoring: { enabled: false }");
    let got = load(&src).err().unwrap_or_default();
    assert!(got.iter().any(|p| p.contains("needs monitoring")), "{got:#?}");
}

#[test]
fn chart_values_cannot_replace_the_routing_or_the_site_labels() {
    let src = spec_with("").replace(
        "monitoring: { nodeExporter: true }",
        "monitoring:\n      values:\n        alertmanager: { alertmanagerSpec: { alertmanagerConfiguration: { name: mine } } }\n        prometheus: { prometheusSpec: { externalLabels: { placement: other } } }",
    );
    let got = load(&src).err().unwrap_or_default();
    assert!(got.iter().any(|p| p.contains("alertmanagerConfiguration")), "{got:#?}");
    assert!(got.iter().any(|p| p.contains("externalLabels")), "{got:#?}");
}

/// Found by an attacker's review: what would be accepted and then break on a real cluster.
#[test]
fn durations_are_bounded_and_the_heartbeat_is_no_flood() {
    let base = "    alerting:\n      receivers:\n        - name: hook\n          webhook: { url: \"https://h.example.com/x\" }\n";
    refused(&format!("{base}      heartbeat: {{ receiver: hook, interval: 600000000y }}"), "16:46", "not a duration");
    refused(&format!("{base}      heartbeat: {{ receiver: hook, interval: 1ms }}"), "16:46", "too short");
    refused(&format!("{base}      coverageAfter: 999y"), "16:22", "longer than a year");
    refused(
        &format!("{base}      routes:\n        - {{ receiver: hook, groupWait: 400d }}"),
        "17:40",
        "longer than a year",
    );
}

#[test]
fn group_by_and_labels_are_what_alertmanager_accepts() {
    let base = "    alerting:\n      receivers:\n        - name: hook\n          webhook: { url: \"https://h.example.com/x\" }\n      routes:\n";
    refused(&format!("{base}        - {{ receiver: hook, groupBy: [\"...\", alertname] }}"), "17:39", "stands alone");
    refused(&format!("{base}        - {{ receiver: hook, groupBy: [node, node] }}"), "17:45", "listed twice");
    refused(
        &format!("{base}        - {{ receiver: hook, severity: critical, labels: {{ severity: warning }} }}"),
        "17:57",
        "not a label",
    );
}

#[test]
fn a_url_that_is_itself_a_credential_is_refused_and_never_echoed() {
    let receiver = |yaml: &str| format!("    alerting:\n      receivers:\n        - name: r\n          {yaml}");
    refused(
        &receiver("webhook: { url: \"https://hooks.slack.com/services/T0/B0/SECRETPATH\" }"),
        "15:27",
        "is itself a credential",
    );
    refused(&receiver("webhook: { url: \"https://h.example.com/x#access_token=abc\" }"), "15:27", "fragment");
    refused(&receiver("webhook: { url: \"https://h.example.com/x;token=abc\" }"), "15:27", "parameters");
    refused(
        &receiver("opsgenie: { apiKey: { secretRef: { name: a, key: b } }, apiUrl: \"http://api.opsgenie.com\" }"),
        "15:75",
        "must be `https://`",
    );
    let got = load(&spec_with(&receiver("webhook: { url: \"https://h.example.com/x?token=QSECRET\" }"))).unwrap_err();
    let messages: Vec<&String> = got.iter().filter(|p| p.starts_with("f.yaml:")).collect();
    assert!(!messages.is_empty() && messages.iter().all(|m| !m.contains("QSECRET")), "{got:#?}");
}

#[test]
fn receiver_fields_hold_no_header_or_template_and_secret_refs_name_real_secrets() {
    let receiver = |yaml: &str| format!("    alerting:\n      receivers:\n        - name: r\n          {yaml}");
    refused(
        &receiver("email: { to: \"a@b.c\\nBcc: evil@x.y\", from: t@example.com, smarthost: \"smtp.example.com:587\" }"),
        "15:24",
        "not one address",
    );
    refused(
        &receiver("email: { to: a@b.c, from: '{{ template \"x\" }}@y.z', smarthost: \"smtp.example.com:587\" }"),
        "15:37",
        "not one address",
    );
    refused(
        &receiver("pagerduty: { routingKey: { secretRef: { name: \"Bad Name/../x\", key: k } } }"),
        "15:36",
        "must reference a Secret's key",
    );
    refused(
        &receiver("pagerduty: { routingKey: { secretRef: { name: ok, key: \"k\\n{{x}}\" } } }"),
        "15:36",
        "must reference a Secret's key",
    );
}

#[test]
fn chart_values_cannot_keep_alerts_from_the_routing_while_alerting_is_on() {
    let with_values = |values: &str, alerting: &str| {
        spec_with(alerting)
            .replace("monitoring: { nodeExporter: true }", &format!("monitoring:\n      values: {values}"))
    };
    let drop_critical = "{ prometheus: { prometheusSpec: { additionalAlertRelabelConfigs: [{ sourceLabels: [severity], regex: critical, action: drop }] } } }";
    for values in [
        drop_critical,
        "{ alertmanager: { enabled: false } }",
        "{ alertmanager: { alertmanagerSpec: { replicas: 0 } } }",
        "{ prometheus: { prometheusSpec: { alertingEndpoints: [{ name: other, namespace: x, port: web }] } } }",
        "{ prometheus: { prometheusSpec: { prometheusExternalLabelName: placement } } }",
        "{ prometheus-node-exporter: { prometheus: { monitor: { metricRelabelings: [{ action: drop, regex: \".*\" }] } } } }",
    ] {
        let got = load(&with_values(values, "")).err().unwrap_or_default();
        assert!(got.iter().any(|p| p.contains("may not be added")), "{values}: {got:#?}");
    }
    // With alerting off, the user's own alerting setup is theirs.
    let off = load(&with_values(drop_critical, "    alerting: { enabled: false }"));
    assert!(off.is_ok(), "{:?}", off.err());
}

#[test]
fn routing_that_tells_nobody_is_warned_about() {
    let src = spec_with(
        "    alerting:\n      receivers:\n        - name: hook\n          webhook: { url: \"https://h.example.com/x\" }\n        - name: spare\n          webhook: { url: \"https://h.example.com/y\" }\n      routes:\n        - { severity: warning, receiver: hook }",
    );
    let f = load(&src).unwrap();
    let warnings: Vec<&str> = f.warnings.iter().map(|w| w.message.as_str()).collect();
    assert!(warnings.iter().any(|w| w.contains("no route takes every `critical` alert")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("no heartbeat")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("receiver `spare` is named by no route")), "{warnings:?}");
    let full = load(&spec_with(FULL)).unwrap();
    assert!(
        !full.warnings.iter().any(|w| w.message.contains("no route takes") || w.message.contains("has no heartbeat")),
        "{:?}",
        full.warnings
    );
}
