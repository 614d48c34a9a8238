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
