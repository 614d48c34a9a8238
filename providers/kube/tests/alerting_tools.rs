//! Tessera's alert rules and routing, checked by the real Prometheus tools from Debian's packages
//! (`promtool` of Prometheus 2.42, `amtool` of Alertmanager 0.25; TESTBED.md, "Prometheus and
//! Alertmanager"). These are older than what kube-prometheus-stack 88.5.3 runs (Prometheus 3.x,
//! Alertmanager 0.28+): a check passing here means the rules and routing use nothing newer than
//! those versions know.
//!
//! The rule unit tests are generated from the rules Tessera renders: each test's expected labels
//! come from the rendered rule's labels plus what its input series carry, and each test looks at
//! the evaluation just before the rule's `for:` has elapsed (no alert) and at the one where it has
//! (the alert).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use support::{Scratch, tool};
use tessera_kube::alert_routing::{alertmanager_config, alertmanager_file};
use tessera_kube::alert_rules::{
    self, COVERAGE_BLIND, EXPORTER_DOWN, HEARTBEAT, JOURNAL_TAILER_FAILING, NODE_EXPORTER_JOB, NODE_NOT_COVERED,
    NODE_NOT_SCRAPED, OPERATOR_DOWN, Site,
};
use tessera_kube::charts::{LOGGING_NAMESPACE, MONITORING_RELEASE};
use tessera_kube::contract::parse_object_id;
use tessera_kube::{coverage, daemonsets};
use tessera_provider_api::{Alerting, Heartbeat, Receiver, ReceiverKind, Route, SecretKeyRef, UrlSource};

// ---------------------------------------------------------------------------------------------
// Tools and scratch directories
// ---------------------------------------------------------------------------------------------

fn promtool() -> PathBuf {
    tool("promtool", "prometheus")
}

fn amtool() -> PathBuf {
    tool("amtool", "prometheus-alertmanager")
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

// ---------------------------------------------------------------------------------------------
// The cluster (every feature on) and the routing (every receiver kind)
// ---------------------------------------------------------------------------------------------

fn secret(key: &str) -> SecretKeyRef {
    SecretKeyRef { name: "alerting".into(), key: key.into() }
}

/// Alerting with one receiver of each kind Alertmanager 0.25 knows (Teams is added separately),
/// a critical and a warning route, and a heartbeat.
fn every_receiver() -> Alerting {
    let receiver = |name: &str, kind: ReceiverKind| Receiver { name: name.into(), kind };
    let route = |receiver: &str, severity: &str| Route {
        receiver: receiver.into(),
        severity: Some(severity.into()),
        labels: Default::default(),
        group_by: vec!["alertname".into(), "placement".into()],
        group_wait: "30s".into(),
        group_interval: "5m".into(),
        repeat_interval: "4h".into(),
    };
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
        ],
        routes: vec![route("oncall", "critical"), route("chat", "warning")],
        heartbeat: Some(Heartbeat { receiver: "hook".into(), interval: "1m".into() }),
        coverage_after: "10m".into(),
    }
}

/// Placeholder values for every Secret key the receivers reference (URLs where a URL is meant).
fn placeholder(r: &SecretKeyRef) -> Option<String> {
    (r.name == "alerting").then(|| match r.key.as_str() {
        "hook" | "slack" | "teams" => format!("https://secret.example.com/{}", r.key),
        other => format!("placeholder-{other}"),
    })
}

fn site() -> Site {
    Site::of(&support::cluster(support::nullout(), Some(every_receiver())), "eks")
}

fn rendered_rules() -> Vec<Value> {
    let c = support::cluster(support::nullout(), Some(every_receiver()));
    let alerting = c.core_services.monitoring.as_ref().and_then(|m| m.alerting.clone()).expect("alerting");
    let rule = alert_rules::prometheus_rule(&c, &alerting, &site());
    let file = alert_rules::rule_file(&rule);
    file["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .collect()
}

fn rules_file() -> Value {
    let c = support::cluster(support::nullout(), Some(every_receiver()));
    let alerting = c.core_services.monitoring.as_ref().and_then(|m| m.alerting.clone()).expect("alerting");
    alert_rules::rule_file(&alert_rules::prometheus_rule(&c, &alerting, &site()))
}

// ---------------------------------------------------------------------------------------------
// promtool check rules
// ---------------------------------------------------------------------------------------------

#[test]
fn the_rules_of_a_cluster_with_every_feature_pass_promtool_check_rules() {
    let dir = Scratch::new("rules");
    let file = dir.write("rules.json", &rules_file());
    let out = run(Command::new(promtool()).arg("check").arg("rules").arg(&file));
    assert!(out.status.success(), "promtool check rules refused Tessera's rules:\n{}", text(&out));
    // Every rule Tessera knows is in the file: one per DaemonSet for node coverage.
    let names: Vec<String> =
        rendered_rules().iter().map(|r| r["alert"].as_str().unwrap_or_default().to_string()).collect();
    for name in [
        HEARTBEAT,
        NODE_NOT_SCRAPED,
        NODE_NOT_COVERED,
        EXPORTER_DOWN,
        JOURNAL_TAILER_FAILING,
        COVERAGE_BLIND,
        OPERATOR_DOWN,
    ] {
        assert!(names.iter().any(|n| n == name), "{name} missing from {names:?}");
    }
    let expected = coverage::expected(&support::cluster(support::nullout(), Some(every_receiver()))).len();
    assert_eq!(names.iter().filter(|n| *n == NODE_NOT_COVERED).count(), expected);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains(&format!("{} rules found", names.len())), "{summary}");
}

#[test]
fn promtool_check_rules_refuses_a_broken_rule() {
    // The check above can fail: a rule with PromQL Prometheus cannot parse is refused.
    let mut file = rules_file();
    file["groups"][0]["rules"][1]["expr"] = json!("max by (node (up)");
    let dir = Scratch::new("rules-broken");
    let path = dir.write("rules.json", &file);
    let out = run(Command::new(promtool()).arg("check").arg("rules").arg(&path));
    assert!(!out.status.success(), "promtool accepted broken PromQL:\n{}", text(&out));
}

// ---------------------------------------------------------------------------------------------
// promtool test rules
// ---------------------------------------------------------------------------------------------

/// Prometheus duration → minutes (the unit tests evaluate once a minute).
fn minutes(d: &str) -> u64 {
    let (n, unit) = d.split_at(d.find(|c: char| !c.is_ascii_digit()).unwrap_or(d.len()));
    let n: u64 = n.parse().unwrap_or_else(|_| panic!("duration {d}"));
    match unit {
        "s" => n.div_ceil(60),
        "m" => n,
        "h" => n * 60,
        _ => panic!("duration {d}"),
    }
}

/// The rule's summary with `{{ $labels.x }}` filled from `labels`, as Prometheus expands it.
fn summary(rule: &Value, labels: &Value) -> String {
    let mut s = rule["annotations"]["summary"].as_str().unwrap_or_default().to_string();
    while let Some(start) = s.find("{{ $labels.") {
        let end = s[start..].find("}}").map(|e| start + e + 2).expect("closed template");
        let key = s[start + "{{ $labels.".len()..end - 2].trim();
        let value = labels[key].as_str().unwrap_or_default().to_string();
        s.replace_range(start..end, &value);
    }
    s
}

/// One unit test of `rule`: `series` hold from minute 0; the alert is absent at the evaluation
/// before `for:` has elapsed (`fires_at - 1`) and present, with the rule's labels plus
/// `from_series`, at `fires_at`.
fn unit_test(rule: &Value, series: Vec<(String, String)>, from_series: Value, fires_at: u64) -> Value {
    let name = rule["alert"].as_str().expect("alert");
    let mut labels = rule["labels"].clone();
    for (k, v) in from_series.as_object().cloned().unwrap_or_default() {
        labels[k] = v;
    }
    let annotations = json!({ "summary": summary(rule, &labels) });
    let mut checks = Vec::new();
    if fires_at > 0 {
        checks.push(json!({ "eval_time": format!("{}m", fires_at - 1), "alertname": name, "exp_alerts": [] }));
    }
    checks.push(json!({
        "eval_time": format!("{fires_at}m"),
        "alertname": name,
        "exp_alerts": [{ "exp_labels": labels, "exp_annotations": annotations }],
    }));
    json!({
        "interval": "1m",
        "input_series": series.into_iter().map(|(s, v)| json!({ "series": s, "values": v })).collect::<Vec<_>>(),
        "alert_rule_test": checks,
    })
}

/// The nodes of the unit tests: node-a in pool system (the one that breaks), node-b in gpu.
fn nodes() -> Vec<(String, String)> {
    let ksm = r#"job="kube-state-metrics", instance="10.0.0.9:8080""#;
    let mut s = Vec::new();
    for (node, pool) in [("node-a", "system"), ("node-b", "gpu")] {
        s.push((format!(r#"kube_node_info{{{ksm}, node="{node}", kernel_version="6.1.0"}}"#), "1x30".into()));
        s.push((
            format!(r#"kube_node_labels{{{ksm}, node="{node}", label_tessera_dev_pool="{pool}"}}"#),
            "1x30".into(),
        ));
    }
    s
}

fn find_rule<'a>(rules: &'a [Value], name: &str, label: Option<(&str, &str)>) -> &'a Value {
    rules
        .iter()
        .find(|r| r["alert"] == name && label.is_none_or(|(k, v)| r["labels"][k] == v))
        .unwrap_or_else(|| panic!("no rule {name} {label:?}"))
}

/// One unit test per Tessera rule (one per DaemonSet for node coverage).
fn unit_tests() -> Vec<Value> {
    let rules = rendered_rules();
    let after = minutes(&every_receiver().coverage_after);
    let node_a = json!({ "node": "node-a", "pool": "system" });
    let mut tests = Vec::new();

    // Heartbeat: `for: 0s`, so it fires at the first evaluation (there is none before it).
    let hb = find_rule(&rules, HEARTBEAT, None);
    assert_eq!(minutes(hb["for"].as_str().unwrap_or("0s")), 0);
    tests.push(unit_test(hb, vec![], json!({}), 0));

    // Node not scraped: node-a's node-exporter target is down, node-b's is up.
    let r = find_rule(&rules, NODE_NOT_SCRAPED, None);
    let mut s = nodes();
    for (node, up) in [("node-a", 0), ("node-b", 1)] {
        s.push((
            format!(r#"up{{job="{NODE_EXPORTER_JOB}", instance="{node}:9100", node="{node}"}}"#),
            format!("{up}x30"),
        ));
    }
    tests.push(unit_test(r, s, node_a.clone(), minutes(r["for"].as_str().unwrap_or_default())));

    // Node not covered, per expected DaemonSet: node-b has a ready pod, node-a's pod is not ready.
    // Every other DaemonSet is ready on both nodes: the rules share one alert name, and the
    // test expects exactly the one alert of the DaemonSet it breaks.
    let expected = coverage::expected(&support::cluster(support::nullout(), Some(every_receiver())));
    for broken in &expected {
        let name = parse_object_id(&broken.id).expect("DaemonSet id").name;
        let r = find_rule(&rules, NODE_NOT_COVERED, Some(("daemonset", name)));
        let mut s = nodes();
        for e in &expected {
            let id = parse_object_id(&e.id).expect("DaemonSet id");
            let (ns, name) = (id.namespace.expect("namespaced"), id.name);
            for node in ["node-a", "node-b"] {
                let ready = u8::from(e.id != broken.id || node == "node-b");
                let pod = format!("{name}-{node}");
                s.push((
                format!(
                    r#"kube_pod_info{{job="kube-state-metrics", namespace="{ns}", pod="{pod}", node="{node}", created_by_kind="DaemonSet", created_by_name="{name}"}}"#
                ),
                "1x30".into(),
            ));
                for (condition, v) in [("true", ready), ("false", 1 - ready)] {
                    s.push((
                    format!(
                        r#"kube_pod_status_ready{{job="kube-state-metrics", namespace="{ns}", pod="{pod}", condition="{condition}"}}"#
                    ),
                        format!("{v}x30"),
                    ));
                }
            }
        }
        tests.push(unit_test(r, s, node_a.clone(), minutes(r["for"].as_str().unwrap_or_default())));
    }

    // Exporter down: the smartctl target answers no scrape.
    let r = find_rule(&rules, EXPORTER_DOWN, Some(("exporter", "smartctl")));
    let job = alert_rules::exporter_job("smartctl");
    let s = vec![(format!(r#"up{{job="{job}", instance="10.0.0.1:9633"}}"#), "0x30".to_string())];
    tests.push(unit_test(
        r,
        s,
        json!({ "job": job, "instance": "10.0.0.1:9633" }),
        minutes(r["for"].as_str().unwrap_or_default()),
    ));

    // Journal tailer failing: node-a's tailer restarts once a minute. Its increase over 15m is
    // 1, 2, 3 at minutes 1, 2, 3: above 2 first at minute 3 (`for: 0s`); at minute 2 not yet.
    let r = find_rule(&rules, JOURNAL_TAILER_FAILING, None);
    let tailer = parse_object_id(&daemonsets::host_tailer_id()).map(|id| id.name.to_string()).expect("tailer id");
    let pod = format!("{tailer}-x7k2p");
    let mut s = nodes();
    s.push((
        format!(
            r#"kube_pod_container_status_restarts_total{{job="kube-state-metrics", namespace="{LOGGING_NAMESPACE}", pod="{pod}", container="fluent-bit"}}"#
        ),
        "0+1x30".into(),
    ));
    s.push((
        format!(
            r#"kube_pod_info{{job="kube-state-metrics", namespace="{LOGGING_NAMESPACE}", pod="{pod}", node="node-a", created_by_kind="DaemonSet", created_by_name="{tailer}"}}"#
        ),
        "1x30".into(),
    ));
    let for_ = minutes(r["for"].as_str().unwrap_or_default());
    tests.push(unit_test(
        r,
        s,
        json!({ "namespace": LOGGING_NAMESPACE, "pod": pod, "node": "node-a", "pool": "system" }),
        3 + for_,
    ));

    // Coverage blind: kube-state-metrics is not scraped, so no node list.
    let r = find_rule(&rules, COVERAGE_BLIND, None);
    let s = vec![(r#"up{job="kube-state-metrics", instance="10.0.0.9:8080"}"#.to_string(), "0x30".to_string())];
    tests.push(unit_test(r, s, json!({}), minutes(r["for"].as_str().unwrap_or_default())));

    // Operator down: its target answers no scrape.
    let r = find_rule(&rules, OPERATOR_DOWN, None);
    let s =
        vec![(format!(r#"up{{job="{MONITORING_RELEASE}-operator", instance="10.0.0.7:8080"}}"#), "0x30".to_string())];
    tests.push(unit_test(r, s, json!({}), minutes(r["for"].as_str().unwrap_or_default())));

    assert!(after > 1, "coverage_after must leave an evaluation before it");
    tests
}

fn promtool_test(tests: Vec<Value>) -> Output {
    let dir = Scratch::new("rule-tests");
    dir.write("rules.json", &rules_file());
    let file =
        dir.write("tests.json", &json!({ "rule_files": ["rules.json"], "evaluation_interval": "1m", "tests": tests }));
    run(Command::new(promtool()).arg("test").arg("rules").arg(&file).current_dir(&dir.0))
}

#[test]
fn every_tessera_rule_fires_after_its_for_period_and_not_before_in_promtool_test_rules() {
    let tests = unit_tests();
    // One per rule Tessera renders: each rule is exercised.
    assert_eq!(tests.len(), rendered_rules().len());
    let out = promtool_test(tests);
    assert!(out.status.success(), "promtool test rules failed:\n{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("SUCCESS"), "{}", text(&out));
}

#[test]
fn promtool_test_rules_rejects_a_wrong_expectation() {
    // The unit tests can fail: expecting node-b (whose exporter is up) instead of node-a, or
    // expecting an alert one evaluation before its `for:` has elapsed, is rejected.
    let tests = unit_tests();
    let node_test = tests
        .iter()
        .find(|t| t["alert_rule_test"].as_array().is_some_and(|c| c.iter().any(|c| c["alertname"] == NODE_NOT_SCRAPED)))
        .cloned()
        .expect("node test");
    let mut wrong_node = node_test.clone();
    wrong_node["alert_rule_test"][1]["exp_alerts"][0]["exp_labels"]["node"] = json!("node-b");
    let out = promtool_test(vec![wrong_node]);
    assert!(!out.status.success(), "a wrong node was accepted:\n{}", text(&out));

    let mut too_early = node_test;
    too_early["alert_rule_test"][0]["exp_alerts"] = too_early["alert_rule_test"][1]["exp_alerts"].clone();
    let out = promtool_test(vec![too_early]);
    assert!(!out.status.success(), "an alert before its for: period was accepted:\n{}", text(&out));
}

#[test]
fn every_alert_carries_severity_and_the_site_labels() {
    let s = site();
    for r in rendered_rules() {
        for (k, v) in [("fleet", &s.fleet), ("placement", &s.placement), ("cloud", &s.cloud), ("region", &s.region)] {
            assert_eq!(r["labels"][k], json!(v), "{r}");
        }
        assert!(r["labels"]["severity"].is_string(), "{r}");
    }
}

// ---------------------------------------------------------------------------------------------
// amtool
// ---------------------------------------------------------------------------------------------

fn alertmanager_yml(alerting: &Alerting) -> Value {
    alertmanager_file(&alertmanager_config(alerting), &placeholder).expect("alertmanager file")
}

fn check_config(dir: &Scratch, file: &Value) -> Output {
    let path = dir.write("alertmanager.json", file);
    run(Command::new(amtool()).arg("check-config").arg(&path))
}

#[test]
fn the_alertmanager_file_with_every_receiver_kind_passes_amtool_check_config() {
    let alerting = every_receiver();
    let file = alertmanager_yml(&alerting);
    let dir = Scratch::new("am");
    let out = check_config(&dir, &file);
    assert!(out.status.success(), "amtool check-config refused:\n{}\n{file:#}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Every receiver was loaded, plus the one with no integration.
    assert!(stdout.contains(&format!("- {} receivers", alerting.receivers.len() + 1)), "{stdout}");
    // Each kind Alertmanager 0.25 knows is in the file.
    for key in ["webhook_configs", "slack_configs", "pagerduty_configs", "opsgenie_configs", "email_configs"] {
        assert!(file["receivers"].as_array().expect("receivers").iter().any(|r| r.get(key).is_some()), "{key}");
    }
}

#[test]
fn amtool_0_25_refuses_teams_which_arrived_in_alertmanager_0_26() {
    // This check rests on the old version: `msteams_configs` is Alertmanager 0.26+. The chart's
    // Alertmanager (0.28+) knows it; Debian's 0.25 does not, so all that can be shown here is
    // that the file names it where 0.26 expects it, and that 0.25 refuses exactly that field.
    let mut alerting = every_receiver();
    alerting
        .receivers
        .push(Receiver { name: "teams".into(), kind: ReceiverKind::Teams { webhook_url: secret("teams") } });
    let file = alertmanager_yml(&alerting);
    let teams = file["receivers"].as_array().expect("receivers").iter().find(|r| r["name"] == "teams").expect("teams");
    assert_eq!(teams["msteams_configs"][0]["webhook_url"], "https://secret.example.com/teams");
    let dir = Scratch::new("am-teams");
    let out = check_config(&dir, &file);
    assert!(
        !out.status.success(),
        "amtool 0.25 accepted msteams_configs (is a newer amtool installed?):\n{}",
        text(&out)
    );
    assert!(text(&out).contains("msteams_configs"), "refused for another reason:\n{}", text(&out));
}

/// `amtool config routes test`: the receivers an alert with `labels` reaches.
fn routes_to(config: &Path, labels: &[(&str, &str)]) -> Vec<String> {
    let mut cmd = Command::new(amtool());
    cmd.arg("config").arg("routes").arg("test").arg(format!("--config.file={}", config.display()));
    for (k, v) in labels {
        cmd.arg(format!("{k}={v}"));
    }
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().split(',').map(|s| s.trim().to_string()).collect()
}

#[test]
fn amtool_routes_critical_to_the_critical_receiver_and_the_heartbeat_only_to_its_receiver() {
    let alerting = every_receiver();
    let dir = Scratch::new("am-routes");
    let path = dir.write("alertmanager.json", &alertmanager_yml(&alerting));
    let s = site();
    let base = [("fleet", s.fleet.as_str()), ("placement", s.placement.as_str()), ("cloud", s.cloud.as_str())];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut l: Vec<(&str, &str)> = base.to_vec();
        l.extend_from_slice(extra);
        l
    };
    // Each route of the spec: an alert of its severity reaches its receiver, and only it.
    for route in &alerting.routes {
        let severity = route.severity.as_deref().expect("severity");
        let mut labels = with(&[("alertname", NODE_NOT_SCRAPED)]);
        labels.push(("severity", severity));
        assert_eq!(routes_to(&path, &labels), vec![route.receiver.clone()], "severity={severity}");
    }
    // The heartbeat reaches its receiver and no other, although it carries a severity too.
    let hb = alerting.heartbeat.as_ref().expect("heartbeat");
    assert_eq!(routes_to(&path, &with(&[("alertname", HEARTBEAT), ("severity", "none")])), vec![hb.receiver.clone()]);
    assert_eq!(
        routes_to(&path, &with(&[("alertname", HEARTBEAT), ("severity", "critical")])),
        vec![hb.receiver.clone()]
    );
    // What no route takes goes to the receiver with no integration.
    assert_eq!(
        routes_to(&path, &with(&[("alertname", "Other"), ("severity", "info")])),
        vec![tessera_kube::alert_routing::NOBODY.to_string()]
    );
    // And the check can fail: a critical alert does not reach the warning receiver.
    assert_ne!(routes_to(&path, &with(&[("alertname", "X"), ("severity", "critical")])), vec!["chat".to_string()]);
}
