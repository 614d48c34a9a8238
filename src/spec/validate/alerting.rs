//! `coreServices.alerting`: receivers with one integration each and Secret references for every
//! credential, routes that name defined receivers, the heartbeat, and durations as Prometheus and
//! Alertmanager read them.

use std::collections::BTreeMap;

use tessera_provider_api::{Alerting, Heartbeat, Receiver, ReceiverKind, Route, UrlSource, nearest_names};

use super::super::diagnostic::{Problem, did_you_mean};
use super::super::raw::{RawAlerting, RawReceiver, RawRoute, S};
use super::Validator;
use super::labels::is_dns_label;

/// The severities Tessera's rules and the chart's default rules use.
const SEVERITIES: [&str; 3] = ["critical", "warning", "info"];

/// A Prometheus/Alertmanager duration: one or more `<digits><unit>` (`ms`, `s`, `m`, `h`, `d`,
/// `w`, `y`), largest unit first, not zero in all.
pub fn is_duration(text: &str) -> bool {
    const UNITS: [&str; 7] = ["y", "w", "d", "h", "m", "s", "ms"];
    let mut rest = text;
    let mut last = None;
    let mut nonzero = false;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        let (number, tail) = rest.split_at(digits);
        let Some(unit) = UNITS.iter().position(|u| tail.starts_with(u) && !(*u == "m" && tail.starts_with("ms")))
        else {
            return false;
        };
        if last.is_some_and(|l| unit <= l) {
            return false;
        }
        last = Some(unit);
        nonzero |= number.chars().any(|c| c != '0');
        rest = &tail[UNITS[unit].len()..];
    }
    nonzero
}

/// A Prometheus label name.
fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Validator<'_> {
    /// A duration, or `default` when not written.
    pub(super) fn duration(&mut self, raw: Option<&S<String>>, default: &str, what: &str) -> String {
        let Some(raw) = raw else { return default.to_string() };
        if !is_duration(raw.get()) {
            self.push(
                Problem::at(raw.loc(), format!("{what} `{}` is not a duration", raw.get()))
                    .help("a whole number and a unit, e.g. `30s`, `5m`, `4h`, `1h30m`"),
            );
        }
        raw.get().clone()
    }

    /// `coreServices.alerting` when monitoring is on; `None` when turned off.
    pub(super) fn alerting(&mut self, raw: Option<&RawAlerting>) -> Option<Alerting> {
        let off = "alerts fire in Prometheus but nobody is told, and no heartbeat leaves the cluster";
        if self.turned_off(raw.and_then(|a| a.enabled.as_ref()), "coreServices.alerting", off) {
            return None;
        }
        let Some(raw) = raw else {
            return Some(Alerting::nobody());
        };
        let mut names: Vec<String> = Vec::new();
        let mut receivers = Vec::new();
        for r in &raw.receivers {
            let name = r.name.get();
            if !is_dns_label(name) || name == tessera_kube::alert_routing::NOBODY {
                self.push(
                    Problem::at(r.name.loc(), format!("receiver name `{name}` is not usable"))
                        .help("use 1 to 63 lowercase letters, digits and '-' (not `tessera-nobody`, Tessera's own)"),
                );
            } else if names.contains(name) {
                self.push(Problem::at(r.name.loc(), format!("receiver `{name}` is defined twice")));
            }
            names.push(name.clone());
            if let Some(kind) = self.receiver_kind(r) {
                receivers.push(Receiver { name: name.clone(), kind });
            }
        }
        if receivers.is_empty() && self.problems.is_empty() {
            self.warnings.push(
                Problem::at(self.fleet_loc, "coreServices.alerting has no receivers: alerts fire and reach nobody")
                    .help("name one, e.g. `receivers: [{ name: hook, webhook: { url: https://hooks.example.com/tessera } }]` and route to it"),
            );
        }
        let routes = raw.routes.iter().filter_map(|r| self.route(r, &names)).collect();
        let heartbeat = raw.heartbeat.as_ref().and_then(|h| {
            let receiver = self.receiver_named(&h.receiver, &names)?;
            let interval =
                self.duration(h.interval.as_ref(), Alerting::DEFAULT_HEARTBEAT_INTERVAL, "heartbeat interval");
            Some(Heartbeat { receiver, interval })
        });
        let coverage_after =
            self.duration(raw.coverage_after.as_ref(), Alerting::DEFAULT_COVERAGE_AFTER, "coverageAfter");
        Some(Alerting { receivers, routes, heartbeat, coverage_after })
    }

    /// The receiver's one integration, its credentials Secret references.
    fn receiver_kind(&mut self, r: &RawReceiver) -> Option<ReceiverKind> {
        let written = [
            r.webhook.is_some(),
            r.slack.is_some(),
            r.pagerduty.is_some(),
            r.opsgenie.is_some(),
            r.email.is_some(),
            r.teams.is_some(),
        ];
        if written.iter().filter(|w| **w).count() != 1 {
            self.push(
                Problem::at(r.name.loc(), format!("receiver `{}` must have exactly one integration", r.name.get()))
                    .help("one of `webhook`, `slack`, `pagerduty`, `opsgenie`, `email`, `teams`; define a receiver per integration and route to each"),
            );
            return None;
        }
        let name = r.name.get();
        let at = |field: &str| format!("receivers[{name}].{field}");
        if let Some(w) = &r.webhook {
            let url = match w.url.get() {
                serde_json::Value::String(text) => {
                    let located = S(serde_saphyr::Spanned {
                        value: text.clone(),
                        referenced: w.url.loc(),
                        defined: w.url.0.defined,
                    });
                    UrlSource::Plain(self.url(&located, "webhook url")?)
                }
                _ => UrlSource::Secret(self.secret_ref(&w.url, &at("webhook.url"))?),
            };
            return Some(ReceiverKind::Webhook { url });
        }
        if let Some(s) = &r.slack {
            let webhook_url = self.secret_ref(&s.webhook_url, &at("slack.webhookUrl"))?;
            return Some(ReceiverKind::Slack { channel: s.channel.as_ref().map(|c| c.get().clone()), webhook_url });
        }
        if let Some(p) = &r.pagerduty {
            return Some(ReceiverKind::PagerDuty {
                routing_key: self.secret_ref(&p.routing_key, &at("pagerduty.routingKey"))?,
            });
        }
        if let Some(o) = &r.opsgenie {
            let api_key = self.secret_ref(&o.api_key, &at("opsgenie.apiKey"))?;
            let api_url = match &o.api_url {
                Some(u) => Some(self.url(u, "opsgenie apiUrl")?),
                None => None,
            };
            return Some(ReceiverKind::Opsgenie { api_key, api_url });
        }
        if let Some(e) = &r.email {
            let auth_password = match &e.auth_password {
                Some(p) => Some(self.secret_ref(p, &at("email.authPassword"))?),
                None => None,
            };
            for (field, value) in [("to", &e.to), ("from", &e.from)] {
                if !value.get().contains('@') {
                    self.push(
                        Problem::at(value.loc(), format!("email `{field}` `{}` is not an address", value.get()))
                            .help("e.g. `oncall@example.com`"),
                    );
                }
            }
            if e.smarthost.get().rsplit_once(':').is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err()) {
                self.push(
                    Problem::at(e.smarthost.loc(), format!("smarthost `{}` is not `host:port`", e.smarthost.get()))
                        .help("e.g. `smtp.example.com:587`"),
                );
            }
            return Some(ReceiverKind::Email {
                to: e.to.get().clone(),
                from: e.from.get().clone(),
                smarthost: e.smarthost.get().clone(),
                auth_username: e.auth_username.as_ref().map(|u| u.get().clone()),
                auth_password,
            });
        }
        let t = r.teams.as_ref()?;
        Some(ReceiverKind::Teams { webhook_url: self.secret_ref(&t.webhook_url, &at("teams.webhookUrl"))? })
    }

    /// A receiver that `receivers` defines.
    fn receiver_named(&mut self, raw: &S<String>, names: &[String]) -> Option<String> {
        let name = raw.get();
        if names.contains(name) {
            return Some(name.clone());
        }
        let known: Vec<&str> = names.iter().map(String::as_str).collect();
        let hint = did_you_mean(&nearest_names(known.iter().copied(), name, 2))
            .unwrap_or_else(|| format!("define it under `alerting.receivers` (defined: {})", known.join(", ")));
        self.push(Problem::at(raw.loc(), format!("no receiver named `{name}`")).help(hint));
        None
    }

    fn route(&mut self, r: &RawRoute, names: &[String]) -> Option<Route> {
        let receiver = self.receiver_named(&r.receiver, names);
        let severity = r.severity.as_ref().and_then(|s| {
            if SEVERITIES.contains(&s.get().as_str()) {
                return Some(s.get().clone());
            }
            self.push(
                Problem::at(s.loc(), format!("unknown severity `{}`", s.get()))
                    .help(format!("one of: {}", SEVERITIES.join(", "))),
            );
            None
        });
        let labels: BTreeMap<String, String> = r.labels.as_ref().map(|l| l.get().clone()).unwrap_or_default();
        if let Some(bad) = labels.keys().find(|k| !is_label_name(k)) {
            let at = r.labels.as_ref().map_or(r.receiver.loc(), |l| l.loc());
            self.push(
                Problem::at(at, format!("`{bad}` is not a label name"))
                    .help("letters, digits and `_`, not starting with a digit, e.g. `placement`, `pool`"),
            );
        }
        let group_by = match &r.group_by {
            Some(keys) => {
                for k in keys.iter().filter(|k| !is_label_name(k.get()) && k.get() != "...") {
                    self.push(Problem::at(k.loc(), format!("`{}` is not a label name", k.get())));
                }
                keys.iter().map(|k| k.get().clone()).collect()
            }
            None => Alerting::DEFAULT_GROUP_BY.iter().map(|s| s.to_string()).collect(),
        };
        let group_wait = self.duration(r.group_wait.as_ref(), Alerting::DEFAULT_GROUP_WAIT, "groupWait");
        let group_interval =
            self.duration(r.group_interval.as_ref(), Alerting::DEFAULT_GROUP_INTERVAL, "groupInterval");
        let repeat_interval =
            self.duration(r.repeat_interval.as_ref(), Alerting::DEFAULT_REPEAT_INTERVAL, "repeatInterval");
        Some(Route { receiver: receiver?, severity, labels, group_by, group_wait, group_interval, repeat_interval })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_prometheus_durations() {
        for ok in ["30s", "5m", "4h", "1h30m", "1d", "500ms", "1w2d"] {
            assert!(is_duration(ok), "{ok}");
        }
        for bad in ["", "0s", "5", "m", "1.5h", "30m1h", "5 m", "-5m", "1mm"] {
            assert!(!is_duration(bad), "{bad}");
        }
    }

    #[test]
    fn label_names() {
        assert!(is_label_name("placement") && is_label_name("_x1"));
        assert!(!is_label_name("1x") && !is_label_name("a-b") && !is_label_name(""));
    }
}
