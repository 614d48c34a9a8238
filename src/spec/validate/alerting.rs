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

/// The longest duration a spec may write: Prometheus and Alertmanager refuse durations beyond
/// about 292 years, and a wait of more than a year is no alert.
const MAX_DURATION_MS: u64 = 365 * 86_400_000;
/// The shortest heartbeat: a dead man's switch needs minutes, not a flood.
const MIN_HEARTBEAT_MS: u64 = 10_000;

/// Known webhook hosts whose URL path is itself the credential (Slack's incoming webhooks,
/// Microsoft Teams' and Office 365 connectors, Discord, Google Chat).
const SECRET_URL_HOSTS: [&str; 6] = [
    "hooks.slack.com",
    "webhook.office.com",
    "outlook.office.com",
    "discord.com",
    "discordapp.com",
    "chat.googleapis.com",
];

/// How a webhook takes a URL that carries a secret: the whole URL from a Secret.
const WEBHOOK_REFERENCE: &str = "put the whole URL in a Secret in the monitoring namespace and write `url: { secretRef: { name: SECRET, key: KEY } }`";
/// Opsgenie's credential is its API key, never in the URL.
const OPSGENIE_REFERENCE: &str =
    "the API key goes in `apiKey: { secretRef: { name: SECRET, key: KEY } }`; `apiUrl` is only the endpoint";

/// Text that Alertmanager would read as more than a value: a template (`{{`), a control
/// character (a header or a second recipient), or nothing at all.
fn is_plain_text(text: &str) -> bool {
    !text.trim().is_empty() && !text.contains("{{") && !text.chars().any(char::is_control)
}

/// A Prometheus label name.
fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Validator<'_> {
    /// A duration of at most a year, or `default` when not written.
    pub(super) fn duration(&mut self, raw: Option<&S<String>>, default: &str, what: &str) -> String {
        self.duration_from(raw, default, what, 1)
    }

    /// A duration between `min_ms` and a year, or `default` when not written.
    fn duration_from(&mut self, raw: Option<&S<String>>, default: &str, what: &str, min_ms: u64) -> String {
        let Some(raw) = raw else { return default.to_string() };
        match tessera_provider_api::duration_ms(raw.get()) {
            Some(ms) if (min_ms..=MAX_DURATION_MS).contains(&ms) => {}
            Some(ms) if ms > MAX_DURATION_MS => self.push(
                Problem::at(raw.loc(), format!("{what} `{}` is longer than a year", raw.get()))
                    .help("Prometheus and Alertmanager refuse very long durations, and a wait of more than a year is no alert"),
            ),
            Some(_) => self.push(
                Problem::at(raw.loc(), format!("{what} `{}` is too short", raw.get()))
                    .help(format!("at least {} s", min_ms / 1_000)),
            ),
            None => self.push(
                Problem::at(raw.loc(), format!("{what} `{}` is not a duration", raw.get()))
                    .help("a whole number and a unit, e.g. `30s`, `5m`, `4h`, `1h30m`"),
            ),
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
            let interval = self.duration_from(
                h.interval.as_ref(),
                Alerting::DEFAULT_HEARTBEAT_INTERVAL,
                "heartbeat interval",
                MIN_HEARTBEAT_MS,
            );
            Some(Heartbeat { receiver, interval })
        });
        let coverage_after =
            self.duration(raw.coverage_after.as_ref(), Alerting::DEFAULT_COVERAGE_AFTER, "coverageAfter");
        let alerting = Alerting { receivers, routes, heartbeat, coverage_after };
        if !alerting.receivers.is_empty() {
            self.nobody_warnings(&alerting, raw);
        }
        Some(alerting)
    }

    /// Valid, but someone is not told: critical alerts no route takes, no heartbeat, a receiver
    /// nothing reaches.
    fn nobody_warnings(&mut self, a: &Alerting, raw: &RawAlerting) {
        let at = raw.receivers.first().map_or(self.fleet_loc, |r| r.name.loc());
        let takes_critical =
            a.routes.iter().any(|r| r.labels.is_empty() && r.severity.as_deref().is_none_or(|s| s == "critical"));
        if !takes_critical {
            self.warnings.push(
                Problem::at(
                    at,
                    "no route takes every `critical` alert: a node that is not monitored or not logged pages nobody",
                )
                .help("add `{ severity: critical, receiver: NAME }` to `routes`"),
            );
        }
        if a.heartbeat.is_none() {
            self.warnings.push(
                Problem::at(
                    at,
                    "alerting has no heartbeat: nobody outside the cluster notices when its alerting stops",
                )
                .help("add `heartbeat: { receiver: NAME }` pointing at a dead man's switch"),
            );
        }
        for r in &raw.receivers {
            let name = r.name.get();
            let used = a.routes.iter().any(|route| &route.receiver == name)
                || a.heartbeat.as_ref().is_some_and(|h| &h.receiver == name);
            if !used {
                self.warnings.push(
                    Problem::at(
                        r.name.loc(),
                        format!("receiver `{name}` is named by no route and not by the heartbeat"),
                    )
                    .help("route alerts to it, or remove it"),
                );
            }
        }
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
                    let url = self.url(&located, "webhook url", WEBHOOK_REFERENCE)?;
                    UrlSource::Plain(self.plain_url(&located, url, "webhook url")?)
                }
                _ => UrlSource::Secret(self.secret_ref(&w.url, &at("webhook.url"))?),
            };
            return Some(ReceiverKind::Webhook { url });
        }
        if let Some(s) = &r.slack {
            let webhook_url = self.secret_ref(&s.webhook_url, &at("slack.webhookUrl"))?;
            if let Some(c) = s.channel.as_ref().filter(|c| !is_plain_text(c.get())) {
                self.push(Problem::at(c.loc(), "slack `channel` holds a line break or a template"));
            }
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
                Some(u) => {
                    let url = self.url(u, "opsgenie apiUrl", OPSGENIE_REFERENCE)?;
                    if !url.starts_with("https://") {
                        self.push(
                            Problem::at(u.loc(), "opsgenie apiUrl must be `https://`: the API key is sent to it")
                                .help("e.g. `https://api.eu.opsgenie.com`"),
                        );
                        return None;
                    }
                    Some(self.plain_url(u, url, "opsgenie apiUrl")?)
                }
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
                if !value.get().contains('@')
                    || !is_plain_text(value.get())
                    || value.get().contains(char::is_whitespace)
                {
                    self.push(
                        Problem::at(value.loc(), format!("email `{field}` is not one address"))
                            .help("e.g. `oncall@example.com`: no spaces, line breaks or templates"),
                    );
                }
            }
            if let Some(u) = e.auth_username.as_ref().filter(|u| !is_plain_text(u.get())) {
                self.push(Problem::at(u.loc(), "email `authUsername` holds a line break or a template"));
            }
            let smarthost = e.smarthost.get();
            let host_port = smarthost.rsplit_once(':');
            if !is_plain_text(smarthost)
                || smarthost.contains(char::is_whitespace)
                || host_port.is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
            {
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

    /// A URL written out in the spec (it is shown in plans and kept in state): no query,
    /// fragment or parameters, no template or line break, and not a webhook whose URL is itself
    /// the credential.
    fn plain_url(&mut self, raw: &S<String>, url: String, what: &str) -> Option<String> {
        let after_scheme = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
        let host = after_scheme.split(['/', ':', '?', '#']).next().unwrap_or_default().to_ascii_lowercase();
        let secret_host = SECRET_URL_HOSTS.iter().any(|h| host == *h || host.ends_with(&format!(".{h}")));
        if secret_host {
            self.push(
                Problem::at(raw.loc(), format!("{what} on `{host}` is itself a credential (its path is the token)"))
                    .help(WEBHOOK_REFERENCE),
            );
            return None;
        }
        if url.contains(['?', '#', ';']) || !is_plain_text(&url) || url.contains(char::is_whitespace) {
            self.push(
                Problem::at(raw.loc(), format!("{what} has a query, fragment, parameters, a template or a line break"))
                    .help("a URL in the spec is shown in plans and kept in state: when it carries anything secret, reference it with `{ secretRef: { name: SECRET, key: KEY } }`"),
            );
            return None;
        }
        Some(url)
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
        let labels_at = r.labels.as_ref().map_or(r.receiver.loc(), |l| l.loc());
        if let Some(bad) = labels.keys().find(|k| !is_label_name(k)) {
            self.push(
                Problem::at(labels_at, format!("`{bad}` is not a label name"))
                    .help("letters, digits and `_`, not starting with a digit, e.g. `placement`, `pool`"),
            );
        }
        if labels.contains_key("severity") {
            self.push(
                Problem::at(labels_at, "a route's severity is its `severity`, not a label")
                    .help("write `severity: critical` beside `receiver`"),
            );
        }
        let group_by: Vec<String> = match &r.group_by {
            Some(keys) => {
                let mut seen: Vec<&str> = Vec::new();
                for k in keys {
                    let name = k.get().as_str();
                    if name == "..." && keys.len() > 1 {
                        self.push(
                            Problem::at(k.loc(), "`...` (group by every label) stands alone in `groupBy`")
                                .help("write `groupBy: [\"...\"]` or list the labels"),
                        );
                    } else if name != "..." && !is_label_name(name) {
                        self.push(Problem::at(k.loc(), format!("`{name}` is not a label name")));
                    } else if seen.contains(&name) {
                        self.push(Problem::at(k.loc(), format!("`{name}` is listed twice in `groupBy`")));
                    }
                    seen.push(name);
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

    fn is_duration(text: &str) -> bool {
        tessera_provider_api::duration_ms(text).is_some_and(|ms| ms > 0)
    }

    #[test]
    fn durations_are_prometheus_durations() {
        for ok in ["30s", "5m", "4h", "1h30m", "1d", "500ms", "1w2d"] {
            assert!(is_duration(ok), "{ok}");
        }
        for bad in ["", "0s", "5", "m", "1.5h", "30m1h", "5 m", "-5m", "1mm"] {
            assert!(!is_duration(bad), "{bad}");
        }
    }

    proptest::proptest! {
        /// Any text is judged without panicking; a well-formed duration built from its parts is
        /// always accepted.
        #[test]
        fn any_text_is_judged_and_built_durations_are_accepted(
            text in ".{0,24}",
            parts in proptest::collection::vec((1u32..1000, 0usize..7), 1..4),
        ) {
            let _ = is_duration(&text);
            const UNITS: [&str; 7] = ["y", "w", "d", "h", "m", "s", "ms"];
            let mut units: Vec<usize> = parts.iter().map(|(_, u)| *u).collect();
            units.sort_unstable();
            units.dedup();
            let built: String = units.iter().zip(&parts).map(|(u, (n, _))| format!("{n}{}", UNITS[*u])).collect();
            proptest::prop_assert!(is_duration(&built), "{}", built);
        }
    }

    #[test]
    fn label_names() {
        assert!(is_label_name("placement") && is_label_name("_x1"));
        assert!(!is_label_name("1x") && !is_label_name("a-b") && !is_label_name(""));
    }
}
