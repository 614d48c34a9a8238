//! Alert routing as the cluster runs it: one `AlertmanagerConfig`, and the Alertmanager
//! configuration prometheus-operator makes of it.
//!
//! ## Overview
//!
//! [`alertmanager_config`] writes a fleet's [`Alerting`] as the `AlertmanagerConfig` named
//! [`NAME`] in the monitoring namespace. kube-prometheus-stack's Alertmanager takes it as its
//! top-level configuration (`alertmanagerConfiguration`, set by [`crate::values`]), so its routes
//! see every alert, not only those of its own namespace. The tree:
//! - the root goes to [`NOBODY`] (a receiver with no integration): an alert no route takes still
//!   shows in Alertmanager, and is sent nowhere;
//! - first, the heartbeat goes to its receiver every `interval` (to [`NOBODY`] when none is
//!   named), and to no other route;
//! - then each route of the spec, in order; the first that matches takes the alert.
//!
//! Credentials are `SecretKeySelector`s into Secrets of the monitoring namespace: the operator
//! reads them when it builds Alertmanager's configuration. [`alertmanager_file`] does that build
//! for a plain Alertmanager (`amtool check-config`, the end-to-end tests), with the secrets
//! supplied by the caller.

use serde_json::{Map, Value, json};
use tessera_provider_api::{Alerting, ReceiverKind, SecretKeyRef, UrlSource};

use crate::alert_rules::HEARTBEAT;
use crate::charts::MONITORING_NAMESPACE;

/// The `AlertmanagerConfig`'s name (the same as the rules').
pub use crate::alert_rules::NAME;

/// The receiver with no integration: alerts that reach it are shown, never sent.
pub const NOBODY: &str = "tessera-nobody";

/// The `AlertmanagerConfig` (`monitoring.coreos.com/v1alpha1`) for `alerting`.
pub fn alertmanager_config(alerting: &Alerting) -> Value {
    let mut receivers = vec![json!({ "name": NOBODY })];
    receivers.extend(alerting.receivers.iter().map(|r| {
        let mut out = json!({ "name": r.name });
        let (key, config) = receiver_config(&r.kind);
        out[key] = json!([config]);
        out
    }));
    let equal = |name: &str, value: &str| json!({ "name": name, "value": value, "matchType": "=" });
    let heartbeat = alerting.heartbeat.as_ref();
    let beat = heartbeat.map_or(Alerting::DEFAULT_HEARTBEAT_INTERVAL, |h| h.interval.as_str());
    let mut routes = vec![json!({
        "receiver": heartbeat.map_or(NOBODY, |h| h.receiver.as_str()),
        "matchers": [equal("alertname", HEARTBEAT)],
        "groupBy": ["alertname", "placement"],
        "groupWait": "0s",
        // Alertmanager flushes a group every groupInterval and resends only if repeatInterval has
        // passed since the last notification was logged, which is a little after the previous
        // flush: with both equal to the interval, each tick just misses it and the heartbeat
        // arrives every *two* intervals (measured with Alertmanager 0.25). A repeatInterval
        // below groupInterval makes every flush resend, so the beat comes once per interval.
        "groupInterval": beat,
        "repeatInterval": half(beat),
    })];
    routes.extend(alerting.routes.iter().map(|r| {
        let mut matchers: Vec<Value> = r.severity.iter().map(|s| equal("severity", s)).collect();
        matchers.extend(r.labels.iter().map(|(k, v)| equal(k, v)));
        json!({
            "receiver": r.receiver,
            "matchers": matchers,
            "groupBy": r.group_by,
            "groupWait": r.group_wait,
            "groupInterval": r.group_interval,
            "repeatInterval": r.repeat_interval,
        })
    }));
    json!({
        "apiVersion": "monitoring.coreos.com/v1alpha1",
        "kind": "AlertmanagerConfig",
        "metadata": { "name": NAME, "namespace": MONITORING_NAMESPACE },
        "spec": {
            "route": {
                "receiver": NOBODY,
                "groupBy": Alerting::DEFAULT_GROUP_BY,
                "groupWait": Alerting::DEFAULT_GROUP_WAIT,
                "groupInterval": Alerting::DEFAULT_GROUP_INTERVAL,
                "repeatInterval": Alerting::DEFAULT_REPEAT_INTERVAL,
                "routes": routes,
            },
            "receivers": receivers,
        },
    })
}

/// Half a Prometheus duration (`1m` → `30000ms`), or the duration itself if it cannot be read.
fn half(duration: &str) -> String {
    match tessera_provider_api::duration_ms(duration) {
        Some(ms) if ms >= 2 => format!("{}ms", ms / 2),
        _ => duration.into(),
    }
}

fn selector(r: &SecretKeyRef) -> Value {
    json!({ "name": r.name, "key": r.key })
}

/// The receiver's integration, as the CRD spells it: (list key, one config).
fn receiver_config(kind: &ReceiverKind) -> (&'static str, Value) {
    match kind {
        ReceiverKind::Webhook { url: UrlSource::Plain(url) } => {
            ("webhookConfigs", json!({ "url": url, "sendResolved": true }))
        }
        ReceiverKind::Webhook { url: UrlSource::Secret(r) } => {
            ("webhookConfigs", json!({ "urlSecret": selector(r), "sendResolved": true }))
        }
        ReceiverKind::Slack { channel, webhook_url } => {
            let mut c = json!({ "apiURL": selector(webhook_url), "sendResolved": true });
            if let Some(ch) = channel {
                c["channel"] = json!(ch);
            }
            ("slackConfigs", c)
        }
        ReceiverKind::PagerDuty { routing_key } => {
            ("pagerdutyConfigs", json!({ "routingKey": selector(routing_key), "sendResolved": true }))
        }
        ReceiverKind::Opsgenie { api_key, api_url } => {
            let mut c = json!({ "apiKey": selector(api_key), "sendResolved": true });
            if let Some(u) = api_url {
                c["apiURL"] = json!(u);
            }
            ("opsgenieConfigs", c)
        }
        ReceiverKind::Email { to, from, smarthost, auth_username, auth_password } => {
            let mut c = json!({ "to": to, "from": from, "smarthost": smarthost, "sendResolved": true });
            if let Some(u) = auth_username {
                c["authUsername"] = json!(u);
            }
            if let Some(p) = auth_password {
                c["authPassword"] = selector(p);
            }
            ("emailConfigs", c)
        }
        ReceiverKind::Teams { webhook_url } => {
            ("msteamsConfigs", json!({ "webhookUrl": selector(webhook_url), "sendResolved": true }))
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RoutingError {
    #[error("Secret `{name}` has no key `{key}` (referenced by receiver `{receiver}`)")]
    MissingSecret { receiver: String, name: String, key: String },
    #[error("the AlertmanagerConfig is malformed at {0}")]
    Malformed(String),
}

/// The Alertmanager configuration (`alertmanager.yml`, as JSON) that prometheus-operator builds
/// from an `AlertmanagerConfig` used as the top-level configuration, reading each referenced
/// Secret key through `secret`.
pub fn alertmanager_file(
    config: &Value,
    secret: &dyn Fn(&SecretKeyRef) -> Option<String>,
) -> Result<Value, RoutingError> {
    let malformed = |at: &str| RoutingError::Malformed(at.to_string());
    let spec = config.get("spec").ok_or_else(|| malformed("spec"))?;
    let route = convert_route(spec.get("route").ok_or_else(|| malformed("spec.route"))?)?;
    let receivers = spec
        .get("receivers")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("spec.receivers"))?
        .iter()
        .map(|r| convert_receiver(r, secret))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({ "route": route, "receivers": receivers }))
}

fn convert_route(route: &Value) -> Result<Value, RoutingError> {
    let mut out = Map::new();
    let renames = [
        ("receiver", "receiver"),
        ("groupBy", "group_by"),
        ("groupWait", "group_wait"),
        ("groupInterval", "group_interval"),
        ("repeatInterval", "repeat_interval"),
        ("continue", "continue"),
    ];
    for (from, to) in renames {
        if let Some(v) = route.get(from) {
            out.insert(to.into(), v.clone());
        }
    }
    if let Some(matchers) = route.get("matchers").and_then(Value::as_array) {
        let text = matchers
            .iter()
            .map(|m| {
                let field = |k: &str| m.get(k).and_then(Value::as_str);
                let (Some(name), Some(value)) = (field("name"), field("value")) else {
                    return Err(RoutingError::Malformed("a route matcher".into()));
                };
                let op = field("matchType").unwrap_or("=");
                Ok(format!("{name}{op}{}", Value::String(value.into())))
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.insert("matchers".into(), json!(text));
    }
    if let Some(routes) = route.get("routes").and_then(Value::as_array) {
        out.insert("routes".into(), Value::Array(routes.iter().map(convert_route).collect::<Result<_, _>>()?));
    }
    Ok(Value::Object(out))
}

/// A receiver integration's fields: (CRD field, file field, whether it is a Secret selector).
type Fields = &'static [(&'static str, &'static str, bool)];

fn convert_receiver(r: &Value, secret: &dyn Fn(&SecretKeyRef) -> Option<String>) -> Result<Value, RoutingError> {
    let name =
        r.get("name").and_then(Value::as_str).ok_or_else(|| RoutingError::Malformed("a receiver's name".into()))?;
    let read = |sel: &Value| -> Result<String, RoutingError> {
        let field = |k: &str| sel.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let r = SecretKeyRef { name: field("name"), key: field("key") };
        secret(&r).ok_or(RoutingError::MissingSecret { receiver: name.into(), name: r.name, key: r.key })
    };
    const KINDS: [(&str, &str, Fields); 6] = [
        ("webhookConfigs", "webhook_configs", &[("url", "url", false), ("urlSecret", "url", true)]),
        ("slackConfigs", "slack_configs", &[("apiURL", "api_url", true), ("channel", "channel", false)]),
        ("pagerdutyConfigs", "pagerduty_configs", &[("routingKey", "routing_key", true)]),
        ("opsgenieConfigs", "opsgenie_configs", &[("apiKey", "api_key", true), ("apiURL", "api_url", false)]),
        (
            "emailConfigs",
            "email_configs",
            &[
                ("to", "to", false),
                ("from", "from", false),
                ("smarthost", "smarthost", false),
                ("authUsername", "auth_username", false),
                ("authPassword", "auth_password", true),
            ],
        ),
        ("msteamsConfigs", "msteams_configs", &[("webhookUrl", "webhook_url", true)]),
    ];
    let mut out = json!({ "name": name });
    for (crd_key, file_key, fields) in KINDS {
        // (CRD list, file list, fields).
        let Some(configs) = r.get(crd_key).and_then(Value::as_array) else { continue };
        let mut converted = Vec::new();
        for c in configs {
            let mut o = Map::new();
            for (from, to, is_secret) in fields {
                match (c.get(*from), is_secret) {
                    (Some(sel), true) => {
                        o.insert((*to).into(), json!(read(sel)?));
                    }
                    (Some(v), false) => {
                        o.insert((*to).into(), v.clone());
                    }
                    (None, _) => {}
                }
            }
            if let Some(send) = c.get("sendResolved") {
                o.insert("send_resolved".into(), send.clone());
            }
            converted.push(Value::Object(o));
        }
        out[file_key] = Value::Array(converted);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_provider_api::{Heartbeat, Receiver, Route};

    fn alerting() -> Alerting {
        Alerting {
            receivers: vec![
                Receiver {
                    name: "oncall".into(),
                    kind: ReceiverKind::PagerDuty {
                        routing_key: SecretKeyRef { name: "alerting".into(), key: "pd".into() },
                    },
                },
                Receiver {
                    name: "hook".into(),
                    kind: ReceiverKind::Webhook { url: UrlSource::Plain("http://h/x".into()) },
                },
            ],
            routes: vec![Route {
                receiver: "oncall".into(),
                severity: Some("critical".into()),
                labels: [("team".to_string(), "infra".to_string())].into(),
                group_by: vec!["alertname".into()],
                group_wait: "30s".into(),
                group_interval: "5m".into(),
                repeat_interval: "4h".into(),
            }],
            heartbeat: Some(Heartbeat { receiver: "hook".into(), interval: "1m".into() }),
            coverage_after: "10m".into(),
        }
    }

    #[test]
    fn the_heartbeat_route_comes_first_and_routes_keep_their_order() {
        let c = alertmanager_config(&alerting());
        let routes = c["spec"]["route"]["routes"].as_array().unwrap();
        assert_eq!(routes[0]["receiver"], "hook");
        assert_eq!(routes[0]["matchers"][0]["value"], HEARTBEAT);
        assert_eq!(routes[1]["receiver"], "oncall");
        assert_eq!(routes[1]["matchers"][0], json!({"name": "severity", "value": "critical", "matchType": "="}));
        assert_eq!(c["spec"]["route"]["receiver"], NOBODY);
    }

    #[test]
    fn the_heartbeat_resends_at_every_group_interval() {
        let c = alertmanager_config(&alerting());
        let beat = &c["spec"]["route"]["routes"][0];
        assert_eq!(beat["groupInterval"], "1m");
        assert_eq!(beat["repeatInterval"], "30000ms");
        assert_eq!(half("1h30m"), "2700000ms");
        assert_eq!(half("3s"), "1500ms");
        assert_eq!(half("soon"), "soon");
        assert_eq!(half("600000000y"), "600000000y", "too long to read: left as written, never a panic");
    }

    #[test]
    fn the_file_reads_each_secret_and_names_a_missing_one() {
        let c = alertmanager_config(&alerting());
        let file = alertmanager_file(&c, &|r| (r.key == "pd").then(|| "KEY".to_string())).unwrap();
        let oncall = file["receivers"].as_array().unwrap().iter().find(|r| r["name"] == "oncall").unwrap();
        assert_eq!(oncall["pagerduty_configs"][0]["routing_key"], "KEY");
        assert_eq!(file["route"]["routes"][1]["matchers"], json!(["severity=\"critical\"", "team=\"infra\""]));
        let missing = alertmanager_file(&c, &|_| None).unwrap_err();
        assert!(
            matches!(missing, RoutingError::MissingSecret { ref receiver, .. } if receiver == "oncall"),
            "{missing}"
        );
    }
}
