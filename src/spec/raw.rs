//! The spec exactly as written: serde types that mirror the YAML, with source locations kept on
//! every value that validation may need to point at. Nothing here is checked beyond its type;
//! `validate` turns it into the normalized [`crate::spec::Fleet`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;

pub const API_VERSION: &str = "tessera.dev/v1alpha1";
pub const KIND: &str = "Fleet";

/// A value with the place in the YAML it came from. Its JSON Schema is the inner value's.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct S<T>(pub serde_saphyr::Spanned<T>);

impl<T> S<T> {
    pub fn get(&self) -> &T {
        &self.0.value
    }
    pub fn loc(&self) -> serde_saphyr::Location {
        self.0.referenced
    }
}

impl<T: JsonSchema> JsonSchema for S<T> {
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
    fn inline_schema() -> bool {
        T::inline_schema()
    }
}

/// A whole number written as one. A quoted `"4"` or `1_0` is refused: specs arrive through pull
/// requests, and a reviewer should read the number the parser reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Count(pub u32);

impl std::ops::Deref for Count {
    type Target = u32;
    fn deref(&self) -> &u32 {
        &self.0
    }
}

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Unquoted;
        impl serde::de::Visitor<'_> for Unquoted {
            type Value = Count;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an unquoted whole number")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Count, E> {
                u32::try_from(v).map(Count).map_err(|_| E::custom(format!("{v} is too large")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Count, E> {
                u32::try_from(v).map(Count).map_err(|_| E::custom(format!("{v} is not a whole number of at least 0")))
            }
        }
        d.deserialize_any(Unquoted)
    }
}

impl JsonSchema for Count {
    fn schema_name() -> Cow<'static, str> {
        u32::schema_name()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        u32::json_schema(generator)
    }
    fn inline_schema() -> bool {
        true
    }
}

/// A Tessera Fleet: one cluster template, deployed once per placement.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "Tessera Fleet")]
pub struct RawFleet {
    /// Always `tessera.dev/v1alpha1`.
    pub api_version: S<String>,
    /// Always `Fleet`.
    pub kind: S<String>,
    pub metadata: RawMetadata,
    pub spec: RawFleetSpec,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawMetadata {
    /// DNS-1123 label; prefixes every cluster name (`<fleet>-<placement>`).
    pub name: S<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawFleetSpec {
    pub kubernetes: RawKubernetes,
    #[serde(default)]
    pub network: Option<RawNetwork>,
    /// Who reaches each cluster's Kubernetes API. Default: a public address open to all, and a
    /// private one inside the network.
    #[serde(default)]
    pub api_access: Option<S<RawApiAccess>>,
    pub node_pools: S<Vec<RawPool>>,
    #[serde(default)]
    pub core_services: Option<RawCoreServices>,
    pub placements: S<Vec<RawPlacement>>,
    /// The order in which `apply` changes placements: waves, each soaked and gated before the
    /// next starts. Default: every placement at once, ungated.
    #[serde(default)]
    pub rollout: Option<S<RawRollout>>,
}

/// Waves of placements, changed one wave after another.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawRollout {
    /// In order. A placement joins the first wave that names it; `*` takes the rest.
    pub waves: S<Vec<S<RawWave>>>,
    /// How long after a wave's last change its gate is read. Default `5m`.
    #[serde(default)]
    pub soak: Option<S<String>>,
    /// What a wave's placements must show before the next wave starts. Default
    /// `{ coverage: true, nodesReady: true, alertsFiring: none }`; `none` gates nothing.
    #[serde(default)]
    pub gate: Option<S<RawGateChoice>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawWave {
    /// Placement names, or patterns with `*` and `?` (`aws-*`, `*`).
    pub placements: S<Vec<S<String>>>,
    /// At most this many of the wave's placements change at once. Default: all of them.
    #[serde(default)]
    pub max_parallel: Option<S<Count>>,
    /// This wave's gate, in place of the rollout's; `none` for a wave whose changes touch no
    /// running cluster.
    #[serde(default)]
    pub gate: Option<S<RawGateChoice>>,
}

/// `none`, or the checks of a gate.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawGateChoice {
    /// `none`: the wave is not gated.
    Named(String),
    Checks(RawGate),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawGate {
    /// Every node runs its core services' DaemonSets, as `tessera verify` checks. Default true.
    #[serde(default)]
    pub coverage: Option<bool>,
    /// Every node is Ready. Default true.
    #[serde(default)]
    pub nodes_ready: Option<bool>,
    /// `none` (default): no alert of severity `critical` may be firing for the placement (read
    /// from its Alertmanager when alerting is on); `any`: alerts are not read. (Unlocated: inside
    /// `none`-or-checks, which is read as a whole first; problems point at the gate.)
    #[serde(default)]
    pub alerts_firing: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawKubernetes {
    /// `major.minor`, e.g. `"1.31"` (quote it: YAML reads 1.30 as the number 1.3).
    pub version: S<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawNetwork {
    /// IPv4 CIDR of a network Tessera creates, `/8` to `/24`. Default `10.0.0.0/16`.
    #[serde(default)]
    pub cidr: Option<S<String>>,
    /// Use a network that exists already (not Tessera's) instead of creating one.
    #[serde(default)]
    pub existing: Option<RawExistingNetwork>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawExistingNetwork {
    /// The network's id: a VPC id (`vpc-…`), a VNet resource id, a VPC network name.
    pub id: S<String>,
    /// The subnets to place the control plane and nodes in.
    pub subnets: S<Vec<String>>,
}

/// Who reaches a cluster's Kubernetes API. Tessera installs the core services through it, from
/// where `apply` runs.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawApiAccess {
    /// The API has an address on the internet. Default true.
    #[serde(default)]
    pub public: Option<S<bool>>,
    /// IPv4 ranges that may use the public address. Default `["0.0.0.0/0"]` (everyone).
    #[serde(default)]
    pub allowed_cidrs: Option<S<Vec<S<String>>>>,
    /// The API has an address inside the cluster's network. Default true.
    #[serde(default)]
    pub private: Option<S<bool>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPool {
    pub name: S<String>,
    pub machine: RawMachine,
    pub scale: S<RawScale>,
    #[serde(default)]
    pub labels: Option<S<BTreeMap<String, String>>>,
    #[serde(default)]
    pub taints: Vec<RawTaint>,
}

/// A machine by what it offers; each provider maps it to an instance type.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawMachine {
    pub vcpu: S<Count>,
    #[serde(rename = "memoryGiB")]
    pub memory_gib: S<Count>,
    /// `amd64` (default) or `arm64`.
    #[serde(default)]
    pub arch: Option<S<String>>,
    /// Spot / preemptible capacity where the provider offers it. Default false.
    #[serde(default)]
    pub spot: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawScale {
    pub min: S<Count>,
    pub max: S<Count>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTaint {
    pub key: S<String>,
    #[serde(default)]
    pub value: Option<S<String>>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: S<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPlacement {
    /// DNS-1123 label, unique in the fleet.
    pub name: S<String>,
    /// `sim`, `eks`, `aks`, `gke` or `kind`.
    pub provider: S<String>,
    /// The provider's region. Not used by `kind`.
    #[serde(default)]
    pub region: Option<S<String>>,
    /// Zones to spread over. Default: the region's first three.
    #[serde(default)]
    pub zones: Option<S<Vec<String>>>,
    /// Where in the cloud: `account`/`profile` (eks), `subscription`/`resourceGroup` (aks),
    /// `project` (gke). Part of the provider's identity and shown in plans.
    #[serde(default)]
    pub scope: Option<BTreeMap<String, S<String>>>,
    /// Options for `provider: sim`.
    #[serde(default)]
    pub sim: Option<RawSimOptions>,
    /// Options for `provider: kind`.
    #[serde(default)]
    pub kind: Option<RawKindOptions>,
    /// Values this placement changes. Overrides change values, never the template's shape.
    #[serde(default)]
    pub overrides: Option<RawOverrides>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSimOptions {
    /// The cloud the sim imitates: `eks` (default), `aks`, `gke` or `kind`.
    pub profile: S<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawKindOptions {
    /// `1` (default) or `3`: three control-plane nodes, to test a highly available topology.
    pub control_planes: S<Count>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawOverrides {
    #[serde(default)]
    pub kubernetes: Option<RawKubernetes>,
    /// This placement's network: networks are regional, so an existing one is usually given here.
    #[serde(default)]
    pub network: Option<RawNetwork>,
    /// This placement's API access, in place of the template's (as a whole).
    #[serde(default)]
    pub api_access: Option<S<RawApiAccess>>,
    #[serde(default)]
    pub node_pools: Vec<RawPoolOverride>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPoolOverride {
    /// Must name a pool of the template.
    pub name: S<String>,
    #[serde(default)]
    pub machine: Option<RawMachine>,
    #[serde(default)]
    pub scale: Option<S<RawScale>>,
}

/// What every cluster of the fleet runs, on every node. On by default: absent, monitoring and
/// logging are both installed.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawCoreServices {
    #[serde(default)]
    pub monitoring: Option<RawMonitoring>,
    #[serde(default)]
    pub logging: Option<RawLogging>,
    /// Who is told what. On when monitoring is on; without receivers, alerts fire and reach
    /// nobody (a warning says so).
    #[serde(default)]
    pub alerting: Option<RawAlerting>,
}

/// Alert routing, the same on every cluster: receivers, routes by severity and labels, and the
/// heartbeat. Every credential is `{ secretRef: { name: SECRET, key: KEY } }`, a key of a Secret in
/// the monitoring namespace.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawAlerting {
    /// Default true. Turning alerting off is reported by `validate`.
    #[serde(default)]
    pub enabled: Option<S<bool>>,
    #[serde(default)]
    pub receivers: Vec<RawReceiver>,
    /// In order: the first route that matches an alert takes it.
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// The always-firing alert, for a dead man's switch outside the cluster.
    #[serde(default)]
    pub heartbeat: Option<RawHeartbeat>,
    /// How long a node goes without its exporter or log shipper before it alerts. Default `10m`.
    #[serde(default)]
    pub coverage_after: Option<S<String>>,
}

/// One receiver: a name and exactly one integration.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawReceiver {
    pub name: S<String>,
    /// `{ url: URL }` (a URL without credentials) or `{ url: { secretRef: … } }`.
    #[serde(default)]
    pub webhook: Option<RawWebhook>,
    #[serde(default)]
    pub slack: Option<RawSlack>,
    #[serde(default)]
    pub pagerduty: Option<RawPagerDuty>,
    #[serde(default)]
    pub opsgenie: Option<RawOpsgenie>,
    #[serde(default)]
    pub email: Option<RawEmail>,
    /// Microsoft Teams (an incoming webhook).
    #[serde(default)]
    pub teams: Option<RawTeams>,
}

// Credential fields are read as any value, so that a plain value is refused at its line with the
// way to reference a Secret rather than as a type error.

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawWebhook {
    #[schemars(with = "serde_json::Value")]
    pub url: S<serde_json::Value>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSlack {
    #[serde(default)]
    pub channel: Option<S<String>>,
    #[schemars(with = "serde_json::Value")]
    pub webhook_url: S<serde_json::Value>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPagerDuty {
    #[schemars(with = "serde_json::Value")]
    pub routing_key: S<serde_json::Value>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawOpsgenie {
    #[schemars(with = "serde_json::Value")]
    pub api_key: S<serde_json::Value>,
    /// Default: Opsgenie's US endpoint.
    #[serde(default)]
    pub api_url: Option<S<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawEmail {
    pub to: S<String>,
    pub from: S<String>,
    /// `host:port` of the SMTP server.
    pub smarthost: S<String>,
    #[serde(default)]
    pub auth_username: Option<S<String>>,
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub auth_password: Option<S<serde_json::Value>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTeams {
    #[schemars(with = "serde_json::Value")]
    pub webhook_url: S<serde_json::Value>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawRoute {
    /// A receiver defined under `receivers`.
    pub receiver: S<String>,
    /// `critical`, `warning` or `info`. Default: every severity.
    #[serde(default)]
    pub severity: Option<S<String>>,
    /// Further labels an alert must carry (`placement`, `cloud`, `pool`, …), with these values.
    #[serde(default)]
    pub labels: Option<S<BTreeMap<String, String>>>,
    /// Default `[alertname, fleet, placement]`.
    #[serde(default)]
    pub group_by: Option<Vec<S<String>>>,
    /// Default `30s`.
    #[serde(default)]
    pub group_wait: Option<S<String>>,
    /// Default `5m`.
    #[serde(default)]
    pub group_interval: Option<S<String>>,
    /// Default `4h`.
    #[serde(default)]
    pub repeat_interval: Option<S<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawHeartbeat {
    pub receiver: S<String>,
    /// How often it is sent. Default `1m`.
    #[serde(default)]
    pub interval: Option<S<String>>,
}

/// A chart other than the one Tessera pins.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawChart {
    /// An `oci://` reference. Default: the pinned chart's.
    #[serde(default)]
    pub reference: Option<S<String>>,
    pub version: S<String>,
    /// `sha256:<64 hex>` of the chart archive.
    #[serde(default)]
    pub digest: Option<S<String>>,
}

/// Node monitoring: prometheus-operator (kube-prometheus-stack) with node-exporter on every node.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawMonitoring {
    /// Default true. Turning monitoring off is reported by `validate`.
    #[serde(default)]
    pub enabled: Option<S<bool>>,
    /// The node-exporter DaemonSet, via prometheus-operator. Default true.
    #[serde(default)]
    pub node_exporter: Option<bool>,
    /// Send every sample to this Prometheus `remoteWrite` URL (no user-info in it).
    #[serde(default)]
    pub remote_write: Option<S<String>>,
    /// Credentials for `remoteWrite`, as references to keys of Secrets in the monitoring
    /// namespace, never values.
    #[serde(default)]
    pub remote_write_auth: Option<RawRemoteWriteAuth>,
    #[serde(default)]
    pub exporters: Vec<RawExporter>,
    /// Default: tolerate every taint, so that every node is monitored.
    #[serde(default)]
    pub tolerations: Option<Vec<S<RawToleration>>>,
    #[serde(default)]
    pub chart: Option<RawChart>,
    /// Extra kube-prometheus-stack values. A value Tessera computes cannot be set here.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Map<String, serde_json::Value>>")]
    pub values: Option<S<Located>>,
}

/// `basicAuth: { username: REF, password: REF }` or `bearerToken: REF`, each REF
/// `{ secretRef: { name: SECRET, key: KEY } }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawRemoteWriteAuth {
    #[serde(default)]
    pub basic_auth: Option<RawBasicAuth>,
    /// Read as any value (as are the basic auth's), so that a plain value is refused at its line
    /// with the way to reference it rather than as a type error.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub bearer_token: Option<S<serde_json::Value>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBasicAuth {
    #[schemars(with = "serde_json::Value")]
    pub username: S<serde_json::Value>,
    #[schemars(with = "serde_json::Value")]
    pub password: S<serde_json::Value>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawExporter {
    pub name: S<String>,
    /// Pinned by tag or digest; `latest` is refused.
    pub image: S<String>,
    #[serde(default)]
    pub privileged: bool,
    /// Host paths mounted read-only at `/host<path>`: only hardware paths (`/dev`, `/sys`,
    /// `/proc`, `/run/udev`, `/lib/modules` and below; see the README's exporter mount policy).
    #[serde(default)]
    pub host_mounts: Vec<S<String>>,
    /// The container port that serves metrics.
    pub port: S<Count>,
    /// Default `/metrics`.
    #[serde(default)]
    pub path: Option<S<String>>,
    /// A Prometheus duration. Default `30s`.
    #[serde(default)]
    pub interval: Option<S<String>>,
}

/// Node logging: logging-operator, with fluent-bit and a journal host tailer on every node.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawLogging {
    /// Default true. Turning logging off is reported by `validate`.
    #[serde(default)]
    pub enabled: Option<S<bool>>,
    #[serde(default)]
    pub journald: Option<RawJournald>,
    /// Ship kubelet logs. Default true.
    #[serde(default)]
    pub kubelet_logs: Option<bool>,
    /// Keep API-server audit logs: the cloud's control-plane logging (EKS log types, AKS
    /// diagnostic settings, GKE Cloud Audit Logs), a file tailer on kind. Default true, also when
    /// `enabled: false`.
    #[serde(default)]
    pub audit_logs: Option<bool>,
    /// Where logs go: one logging-operator output, as its ClusterOutput spells it, e.g.
    /// `loki: {url: http://loki:3100}`. Supported: `loki`, `elasticsearch`, `opensearch`, `s3`,
    /// `cloudwatch`, `nullout`. Default `nullout` (collected, then dropped), with a warning.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Map<String, serde_json::Value>>")]
    pub output: Option<S<serde_json::Value>>,
    /// Default: tolerate every taint, so that every node's logs are shipped.
    #[serde(default)]
    pub tolerations: Option<Vec<S<RawToleration>>>,
    #[serde(default)]
    pub chart: Option<RawChart>,
    /// Extra logging-operator values. A value Tessera computes cannot be set here.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Map<String, serde_json::Value>>")]
    pub values: Option<S<Located>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawJournald {
    /// systemd units to ship. Default `[kubelet, containerd]`.
    #[serde(default)]
    pub units: Option<Vec<S<String>>>,
    /// `auto` (default: per OS image), `/var/log/journal` or `/run/log/journal`.
    #[serde(default)]
    pub path: Option<S<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawToleration {
    #[serde(default)]
    pub key: Option<S<String>>,
    /// `Exists` or `Equal` (default).
    #[serde(default)]
    pub operator: Option<S<String>>,
    #[serde(default)]
    pub value: Option<S<String>>,
    #[serde(default)]
    pub effect: Option<S<String>>,
}

/// Free-form YAML (chart values) with the location of every node, so that a refusal points at
/// the key that causes it rather than at the whole mapping.
#[derive(Debug, Clone)]
pub enum Located {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Seq(Vec<S<Located>>),
    Map(Vec<(S<String>, S<Located>)>),
}

impl Located {
    /// The value as JSON (what the chart receives).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Self::Null => Value::Null,
            Self::Bool(b) => Value::Bool(*b),
            Self::Number(n) => Value::Number(n.clone()),
            Self::String(s) => Value::String(s.clone()),
            Self::Seq(items) => Value::Array(items.iter().map(|i| i.get().to_json()).collect()),
            Self::Map(entries) => {
                Value::Object(entries.iter().map(|(k, v)| (k.get().clone(), v.get().to_json())).collect())
            }
        }
    }
}

impl S<Located> {
    /// Where the deepest key of `path` that exists is written (the value's own place when not
    /// even the first does).
    pub fn loc_of(&self, path: &[&str]) -> serde_saphyr::Location {
        let mut at = self;
        let mut loc = self.loc();
        for key in path {
            let Located::Map(entries) = at.get() else { break };
            let Some((k, v)) = entries.iter().find(|(k, _)| k.get() == key) else { break };
            loc = k.loc();
            at = v;
        }
        loc
    }
}

impl<'de> Deserialize<'de> for Located {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Any;
        impl<'de> serde::de::Visitor<'de> for Any {
            type Value = Located;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E>(self) -> Result<Located, E> {
                Ok(Located::Null)
            }
            fn visit_none<E>(self) -> Result<Located, E> {
                Ok(Located::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Located, E> {
                Ok(Located::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Located, E> {
                Ok(Located::Number(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Located, E> {
                Ok(Located::Number(v.into()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Located, E> {
                serde_json::Number::from_f64(v)
                    .map(Located::Number)
                    .ok_or_else(|| E::custom(format!("{v} is not a finite number")))
            }
            fn visit_str<E>(self, v: &str) -> Result<Located, E> {
                Ok(Located::String(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Located, E> {
                Ok(Located::String(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Located, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<S<Located>>()? {
                    items.push(item);
                }
                Ok(Located::Seq(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Located, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<S<String>>()? {
                    let value = map.next_value::<S<Located>>()?;
                    entries.push((key, value));
                }
                Ok(Located::Map(entries))
            }
        }
        d.deserialize_any(Any)
    }
}

/// Just enough of any YAML document to tell what it is, without rejecting anything.
#[derive(Debug, Deserialize)]
pub struct DocumentHead {
    #[serde(default)]
    pub kind: Option<S<String>>,
}
