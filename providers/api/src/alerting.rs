//! Who is told what: the neutral alert routing of a fleet, the same on every cloud.
//!
//! ## Overview
//!
//! Alerting rides on monitoring (its Alertmanager is kube-prometheus-stack's). A fleet names its
//! [`Receiver`]s once, routes alerts to them by severity and labels ([`Route`]), and may name a
//! receiver for the always-firing [`Heartbeat`] (a dead man's switch: when it stops arriving, the
//! monitoring itself is down). Every credential is a [`SecretKeyRef`] into a Secret in the
//! monitoring namespace, never a value.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::SecretKeyRef;

/// A Prometheus or Alertmanager duration (`30s`, `5m`, `1h30m`, `500ms`) in milliseconds: one or
/// more `<digits><unit>`, units `y w d h m s ms` largest first, each at most once. `None` when
/// the text is not one, or its value does not fit.
pub fn duration_ms(text: &str) -> Option<u64> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 31_536_000_000),
        ("w", 604_800_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("ms", 1),
        ("m", 60_000),
        ("s", 1_000),
    ];
    // The order units must come in, largest first (`ms` after `s`).
    const RANK: [&str; 7] = ["y", "w", "d", "h", "m", "s", "ms"];
    let mut rest = text;
    let mut last: Option<usize> = None;
    let mut total: u64 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let (number, tail) = rest.split_at(digits);
        let (unit, factor) = UNITS.iter().find(|(u, _)| tail.starts_with(u))?;
        let rank = RANK.iter().position(|r| r == unit)?;
        if last.is_some_and(|l| rank <= l) {
            return None;
        }
        last = Some(rank);
        total = total.checked_add(number.parse::<u64>().ok()?.checked_mul(*factor)?)?;
        rest = &tail[unit.len()..];
    }
    Some(total)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alerting {
    pub receivers: Vec<Receiver>,
    /// In order: the first route that matches an alert takes it.
    pub routes: Vec<Route>,
    pub heartbeat: Option<Heartbeat>,
    /// How long a coverage gap (a node without its exporter or log shipper) lasts before it
    /// alerts: a Prometheus duration.
    pub coverage_after: String,
}

impl Alerting {
    /// Group alerts by these labels unless a route says otherwise.
    pub const DEFAULT_GROUP_BY: [&'static str; 3] = ["alertname", "fleet", "placement"];
    pub const DEFAULT_GROUP_WAIT: &'static str = "30s";
    pub const DEFAULT_GROUP_INTERVAL: &'static str = "5m";
    pub const DEFAULT_REPEAT_INTERVAL: &'static str = "4h";
    pub const DEFAULT_COVERAGE_AFTER: &'static str = "10m";
    pub const DEFAULT_HEARTBEAT_INTERVAL: &'static str = "1m";

    /// Routing with nobody to tell: the rules still run and alerts still show in Alertmanager.
    pub fn nobody() -> Self {
        Self { receivers: vec![], routes: vec![], heartbeat: None, coverage_after: Self::DEFAULT_COVERAGE_AFTER.into() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receiver {
    pub name: String,
    pub kind: ReceiverKind,
}

/// A URL that may be written out (it carries no credential) or must come from a Secret (a
/// webhook whose path is its token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UrlSource {
    Plain(String),
    Secret(SecretKeyRef),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ReceiverKind {
    Webhook {
        url: UrlSource,
    },
    Slack {
        channel: Option<String>,
        webhook_url: SecretKeyRef,
    },
    PagerDuty {
        routing_key: SecretKeyRef,
    },
    Opsgenie {
        api_key: SecretKeyRef,
        api_url: Option<String>,
    },
    Email {
        to: String,
        from: String,
        smarthost: String,
        auth_username: Option<String>,
        auth_password: Option<SecretKeyRef>,
    },
    /// Microsoft Teams through an incoming webhook (Alertmanager 0.26 and later).
    Teams {
        webhook_url: SecretKeyRef,
    },
}

impl ReceiverKind {
    /// The name a spec writes it under.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Webhook { .. } => "webhook",
            Self::Slack { .. } => "slack",
            Self::PagerDuty { .. } => "pagerduty",
            Self::Opsgenie { .. } => "opsgenie",
            Self::Email { .. } => "email",
            Self::Teams { .. } => "teams",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub receiver: String,
    /// `critical`, `warning` or `info`; none matches every severity.
    pub severity: Option<String>,
    /// Further labels an alert must carry, with these values.
    pub labels: BTreeMap<String, String>,
    pub group_by: Vec<String>,
    pub group_wait: String,
    pub group_interval: String,
    pub repeat_interval: String,
}

/// The always-firing alert and who receives it, at least every `interval`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub receiver: String,
    pub interval: String,
}

#[cfg(test)]
mod tests {
    use super::duration_ms;

    #[test]
    fn durations_read_as_prometheus_reads_them() {
        assert_eq!(duration_ms("30s"), Some(30_000));
        assert_eq!(duration_ms("1h30m"), Some(5_400_000));
        assert_eq!(duration_ms("1m500ms"), Some(60_500));
        assert_eq!(duration_ms("2w1d"), Some(15 * 86_400_000));
        for bad in ["", "5", "m", "1.5h", "30m1h", "5 m", "-5m", "1mm", "1s1s", "99999999999999999999s", "600000000y"] {
            assert_eq!(duration_ms(bad), None, "{bad}");
        }
    }
}
