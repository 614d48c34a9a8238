//! Raw spec → normalized [`Fleet`]: every semantic check, all problems collected at once.
//!
//! This module holds the walk over the spec; checks with a model of their own live beside it:
//! [`labels`] (pool labels by the kubelet's rules, taints and tolerations by Kubernetes'),
//! [`alerting`] (receivers, routes, the heartbeat),
//! [`exporters`] (custom exporters and their mount policy), [`credentials`] (secrets are
//! references, never values), [`api_access`] (who reaches each cluster's API),
//! [`placements`] (providers, regions, overrides), [`rollout`] (waves, soak, gates), [`charts`] (each chart's objects: helm's
//! rendering where it can be had offline, else Tessera's model) and [`outcome`] (coverage and the
//! security floor checked on the core-service DaemonSets as they will be built).

mod alerting;
mod api_access;
mod charts;
mod credentials;
mod exporters;
mod labels;
mod outcome;
mod placements;
mod rollout;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use std::sync::Arc;

use serde_saphyr::Location;
use tessera_kube::render::ChartRenderer;
use tessera_provider_api::{
    Arch, Backend, Chart, CoreServices, JournalPath, LogOutput, Logging, Machine, Monitoring, Network, PoolTemplate,
    Taint, nearest_names,
};

use self::labels::is_dns_label;
use super::diagnostic::{Problem, did_you_mean};
use super::model::{ChartCheck, Fleet};
use super::raw::*;

const DEFAULT_CIDR: &str = "10.0.0.0/16";
const DEFAULT_SIM_PROFILE: &str = "eks";
const DEFAULT_JOURNALD_UNITS: [&str; 2] = ["kubelet", "containerd"];
/// The logging-operator outputs a spec may name (the ClusterOutput CRD has more; these are the
/// ones Tessera documents and tests).
const LOG_OUTPUTS: [&str; 6] = ["loki", "elasticsearch", "opensearch", "s3", "cloudwatch", "nullout"];
/// How `remoteWrite` takes its credentials.
const REMOTE_WRITE_REFERENCE: &str = "drop them from the URL and reference a Secret's keys with `remoteWriteAuth: { basicAuth: { username: { secretRef: { name: SECRET, key: KEY } }, password: { secretRef: … } } }` (or `bearerToken: { secretRef: … }`)";
/// AKS, the strictest of the clouds, caps cluster names at 63 characters.
const MAX_CLUSTER_NAME: usize = 63;

/// Checks `raw` against the general rules and each placement's backend (catalog, scope, limits);
/// `charts` renders the core services' charts where it can.
pub fn validate(
    raw: &RawFleet,
    path: &Path,
    backends: &[Arc<dyn Backend>],
    charts: &dyn ChartRenderer,
) -> Result<Fleet, Vec<Problem>> {
    let mut v = Validator {
        problems: Vec::new(),
        warnings: Vec::new(),
        chart_checks: Vec::new(),
        backends,
        fleet_loc: raw.metadata.name.loc(),
    };
    v.header(raw);
    let fleet_name = raw.metadata.name.get().clone();
    v.dns_label(&raw.metadata.name, "fleet name");

    let spec = &raw.spec;
    let before = v.problems.len();
    let version = v.version_format(&spec.kubernetes.version);
    let version_ok = v.problems.len() == before;
    let network = match &spec.network {
        Some(n) => v.network(n),
        None => Network::Managed { cidr: DEFAULT_CIDR.to_string() },
    };
    let network_loc = spec.network.as_ref().and_then(network_loc);
    let api_access = spec.api_access.as_ref().map(|a| v.api_access(a)).unwrap_or_default();
    let pools = v.pools(spec.node_pools.get(), spec.node_pools.loc());
    let core_services = v.core_services(spec.core_services.as_ref());
    let cs = spec.core_services.as_ref();
    let sites = outcome::ServiceSites {
        monitoring_values: cs.and_then(|c| c.monitoring.as_ref()).and_then(|m| m.values.as_ref()),
        logging_values: cs.and_then(|c| c.logging.as_ref()).and_then(|l| l.values.as_ref()),
    };
    // Charts are rendered at the template's Kubernetes version: a placement that overrides it
    // installs them at its own, which a chart that renders differently per version would show.
    let rendered = v.render_charts(&core_services, version_ok.then_some(version.as_str()), charts, &sites);
    v.outcome(&pools, &core_services, &sites, &rendered);

    let template = Template {
        version,
        version_loc: spec.kubernetes.version.loc(),
        network,
        network_loc,
        api_access,
        pools,
        core_services,
    };
    let placements = v.placements(&fleet_name, spec.placements.get(), spec.placements.loc(), &template);
    let names: Vec<String> = spec.placements.get().iter().map(|p| p.name.get().clone()).collect();
    let rollout = spec.rollout.as_ref().and_then(|r| v.rollout(r, &names));

    if v.problems.is_empty() {
        Ok(Fleet {
            name: fleet_name,
            placements,
            source: path.to_path_buf(),
            warnings: v.warnings,
            chart_checks: v.chart_checks,
            rollout,
        })
    } else {
        Err(v.problems)
    }
}

/// A template pool, and where its machine was written (for catalog errors).
#[derive(Clone)]
struct LocatedPool {
    pool: PoolTemplate,
    name_loc: Location,
    machine_loc: Location,
    scale_loc: Location,
    taint_locs: Vec<Location>,
}

struct Template {
    version: String,
    version_loc: Location,
    network: Network,
    /// Where the network was written; `None` for the default.
    network_loc: Option<Location>,
    api_access: api_access::LocatedAccess,
    pools: Vec<LocatedPool>,
    core_services: CoreServices,
}

struct Validator<'b> {
    problems: Vec<Problem>,
    /// What is valid but worth saying (a core service turned off).
    warnings: Vec<Problem>,
    /// What each chart's workloads were checked against.
    chart_checks: Vec<ChartCheck>,
    backends: &'b [Arc<dyn Backend>],
    fleet_loc: Location,
}

fn network_loc(n: &RawNetwork) -> Option<Location> {
    n.cidr.as_ref().map(|c| c.loc()).or_else(|| n.existing.as_ref().map(|e| e.id.loc()))
}

impl Validator<'_> {
    fn push(&mut self, p: Problem) {
        self.problems.push(p);
    }

    fn header(&mut self, raw: &RawFleet) {
        if raw.api_version.get() != API_VERSION {
            self.push(
                Problem::at(raw.api_version.loc(), format!("unsupported apiVersion `{}`", raw.api_version.get()))
                    .help(format!("use `apiVersion: {API_VERSION}`")),
            );
        }
        if raw.kind.get() != KIND {
            self.push(
                Problem::at(raw.kind.loc(), format!("expected `kind: {KIND}`, found `{}`", raw.kind.get()))
                    .help("a spec file holds one Fleet"),
            );
        }
    }

    fn dns_label(&mut self, name: &S<String>, what: &str) -> bool {
        let n = name.get();
        if is_dns_label(n) {
            return true;
        }
        self.push(
            Problem::at(name.loc(), format!("{what} `{n}` is not a DNS-1123 label"))
                .help("use 1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit"),
        );
        false
    }

    fn version_format(&mut self, version: &S<String>) -> String {
        let v = version.get().trim().trim_start_matches('v').to_string();
        let parts: Vec<&str> = v.split('.').collect();
        let numeric = parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        if !(numeric && parts.len() == 2) {
            // A patch version is the cloud's to choose (and to move): a spec pins the minor.
            self.push(
                Problem::at(version.loc(), format!("invalid Kubernetes version `{}`", version.get()))
                    .help("write `major.minor` as a quoted string, e.g. version: \"1.31\"; the cloud picks the patch"),
            );
        }
        v
    }

    fn cidr(&mut self, cidr: &S<String>) -> String {
        let text = cidr.get();
        let net = text.parse::<ipnet::Ipv4Net>().ok().filter(|n| (8..=24).contains(&n.prefix_len()));
        if let Some(net) = net.filter(|n| n.trunc() != *n) {
            self.push(
                Problem::at(cidr.loc(), format!("network CIDR `{text}` has host bits set"))
                    .help(format!("the network is `{}`", net.trunc())),
            );
        } else if net.is_none() {
            self.push(
                Problem::at(cidr.loc(), format!("invalid network CIDR `{text}`"))
                    .help("use an IPv4 CIDR from /8 to /24, e.g. 10.0.0.0/16, with room for one subnet per zone"),
            );
        }
        text.clone()
    }

    fn network(&mut self, n: &RawNetwork) -> Network {
        match (&n.cidr, &n.existing) {
            (Some(cidr), None) => Network::Managed { cidr: self.cidr(cidr) },
            (None, Some(e)) => {
                if e.id.get().trim().is_empty() {
                    self.push(Problem::at(e.id.loc(), "the existing network's `id` is empty"));
                }
                if e.subnets.get().is_empty() {
                    self.push(
                        Problem::at(e.subnets.loc(), "an existing network needs at least one subnet")
                            .help("list the subnet ids to use"),
                    );
                }
                let mut seen = HashSet::new();
                for dup in e.subnets.get().iter().filter(|s| !seen.insert(s.as_str())) {
                    self.push(
                        Problem::at(e.subnets.loc(), format!("subnet `{dup}` is listed twice"))
                            .help("list each subnet once; a cluster spreads over distinct subnets"),
                    );
                }
                Network::Existing { id: e.id.get().clone(), subnets: e.subnets.get().clone() }
            }
            (Some(cidr), Some(_)) => {
                self.push(
                    Problem::at(cidr.loc(), "`cidr` and `existing` exclude each other")
                        .help("give `cidr` for a network Tessera creates, or `existing` for one it does not own"),
                );
                Network::Managed { cidr: cidr.get().clone() }
            }
            (None, None) => Network::Managed { cidr: DEFAULT_CIDR.to_string() },
        }
    }

    fn machine(&mut self, m: &RawMachine) -> Machine {
        let arch = match &m.arch {
            None => Arch::Amd64,
            Some(a) => Arch::parse(a.get()).unwrap_or_else(|| {
                self.push(
                    Problem::at(a.loc(), format!("unknown arch `{}`", a.get()))
                        .help(format!("use one of: {}", Arch::ALL.join(", "))),
                );
                Arch::Amd64
            }),
        };
        for (value, what) in [(&m.vcpu, "vcpu"), (&m.memory_gib, "memoryGiB")] {
            if **value.get() == 0 {
                self.push(Problem::at(value.loc(), format!("`{what}` must be at least 1")));
            }
        }
        Machine { vcpu: m.vcpu.get().0, memory_gib: m.memory_gib.get().0, arch, spot: m.spot.unwrap_or(false) }
    }

    fn scale(&mut self, scale: &S<RawScale>) -> (u32, u32) {
        let s = scale.get();
        let (min, max) = (s.min.get().0, s.max.get().0);
        if min > max {
            self.push(
                Problem::at(scale.loc(), format!("scale.min ({min}) is greater than scale.max ({max})"))
                    .help("set min ≤ max"),
            );
        } else if max == 0 {
            self.push(
                Problem::at(scale.loc(), "scale.max must be at least 1")
                    .help("a pool with no nodes cannot run anything"),
            );
        }
        (min, max)
    }

    fn pools(&mut self, raw: &[RawPool], list_loc: Location) -> Vec<LocatedPool> {
        if raw.is_empty() {
            self.push(Problem::at(list_loc, "a fleet needs at least one node pool"));
        }
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for p in raw {
            self.dns_label(&p.name, "node pool name");
            if !seen.insert(p.name.get().clone()) {
                self.push(
                    Problem::at(p.name.loc(), format!("duplicate node pool name `{}`", p.name.get()))
                        .help("node pool names must be unique within a fleet"),
                );
            }
            let machine = self.machine(&p.machine);
            let (min, max) = self.scale(&p.scale);
            let mut labels = match &p.labels {
                Some(l) => self.labels(l),
                None => BTreeMap::new(),
            };
            // Every node names its pool the same way on every cloud, so that coverage is
            // reported per pool.
            if labels.contains_key(tessera_kube::coverage::POOL_LABEL) {
                let loc = p.labels.as_ref().map_or(p.name.loc(), |l| l.loc());
                self.push(
                    Problem::at(loc, format!("`{}` is set by Tessera", tessera_kube::coverage::POOL_LABEL))
                        .help("remove it: every pool's nodes carry it with the pool's name"),
                );
            }
            labels.insert(tessera_kube::coverage::POOL_LABEL.into(), p.name.get().clone());
            let mut seen_taints = HashSet::new();
            let taints: Vec<Taint> = p.taints.iter().filter_map(|t| self.taint(t, &mut seen_taints)).collect();
            out.push(LocatedPool {
                pool: PoolTemplate { name: p.name.get().clone(), machine, min, max, labels, taints },
                name_loc: p.name.loc(),
                machine_loc: p.machine.vcpu.loc(),
                scale_loc: p.scale.loc(),
                taint_locs: p.taints.iter().map(|t| t.key.loc()).collect(),
            });
        }
        out
    }

    fn core_services(&mut self, raw: Option<&RawCoreServices>) -> CoreServices {
        let monitoring = raw.and_then(|r| r.monitoring.as_ref());
        let logging = raw.and_then(|r| r.logging.as_ref());
        let mut monitoring = self.monitoring(monitoring);
        let alerting = raw.and_then(|r| r.alerting.as_ref());
        match &mut monitoring {
            Some(m) => {
                m.alerting = self.alerting(alerting);
                let values = raw.and_then(|r| r.monitoring.as_ref()).and_then(|m| m.values.as_ref());
                if let (Some(_), Some(v)) = (&m.alerting, values) {
                    self.additions(
                        v,
                        &tessera_kube::values::ALERTING_GUARD,
                        "kube-prometheus-stack (with alerting on)",
                    );
                }
            }
            // Alerting is kube-prometheus-stack's Alertmanager and Prometheus' rules.
            None => {
                if let Some(a) = alerting.filter(|a| a.enabled.as_ref().is_none_or(|e| *e.get())) {
                    let at = a.receivers.first().map_or(self.fleet_loc, |r| r.name.loc());
                    self.push(
                        Problem::at(at, "coreServices.alerting needs monitoring, which is turned off")
                            .help("turn monitoring back on, or remove the alerting block"),
                    );
                }
            }
        }
        CoreServices {
            monitoring,
            logging: self.logging(logging),
            // The cloud keeps the audit log whether or not logs are shipped from the nodes.
            audit_logs: logging.and_then(|l| l.audit_logs).unwrap_or(true),
        }
    }

    /// `enabled: false`, reported: a cluster without it has nodes nobody watches.
    fn turned_off(&mut self, enabled: Option<&S<bool>>, what: &str, consequence: &str) -> bool {
        match enabled {
            Some(e) if !*e.get() => {
                self.warnings.push(
                    Problem::at(e.loc(), format!("{what} is turned off"))
                        .help(format!("{consequence}; remove `enabled: false` to install it")),
                );
                true
            }
            _ => false,
        }
    }

    fn monitoring(&mut self, raw: Option<&RawMonitoring>) -> Option<Monitoring> {
        let off = "no node of any placement will be monitored";
        if self.turned_off(raw.and_then(|m| m.enabled.as_ref()), "coreServices.monitoring", off) {
            return None;
        }
        let mut seen = HashSet::new();
        let exporters = raw.map_or(&[][..], |m| &m.exporters[..]);
        let exporters = exporters.iter().filter_map(|e| self.exporter(e, &mut seen)).collect();
        let tolerations = self.tolerations(raw.and_then(|m| m.tolerations.as_ref()));
        let remote_write =
            raw.and_then(|m| m.remote_write.as_ref()).and_then(|u| self.url(u, "remoteWrite", REMOTE_WRITE_REFERENCE));
        let remote_write_auth = raw.and_then(|m| m.remote_write_auth.as_ref()).and_then(|a| self.remote_write_auth(a));
        let mut m = Monitoring {
            node_exporter: raw.and_then(|m| m.node_exporter).unwrap_or(true),
            exporters,
            tolerations,
            remote_write,
            remote_write_auth,
            chart: self.chart(raw.and_then(|m| m.chart.as_ref()), tessera_kube::charts::kube_prometheus_stack()),
            values: serde_json::json!({}),
            // Decided beside monitoring (`core_services`); on here so that its computed chart
            // values are guarded below.
            alerting: Some(tessera_provider_api::Alerting::nobody()),
        };
        let values = raw.and_then(|m| m.values.as_ref());
        m.values = self.extra_values(values, &tessera_kube::values::monitoring(&m), "kube-prometheus-stack");
        if let Some(v) = values {
            self.additions(v, &tessera_kube::values::MONITORING_GUARD, "kube-prometheus-stack");
        }
        Some(m)
    }

    fn logging(&mut self, raw: Option<&RawLogging>) -> Option<Logging> {
        let off = "no node's journal or kubelet logs will be shipped (control-plane audit logs follow `auditLogs`)";
        if self.turned_off(raw.and_then(|l| l.enabled.as_ref()), "coreServices.logging", off) {
            return None;
        }
        let journald = raw.and_then(|l| l.journald.as_ref());
        let units = match journald.and_then(|j| j.units.as_ref()) {
            Some(units) => {
                let mut seen: Vec<String> = Vec::new();
                for u in units {
                    match self.unit(u) {
                        // `kubelet` and `kubelet.service` are one unit, tailed twice otherwise.
                        Some(name) if seen.contains(&name) => self.push(
                            Problem::at(u.loc(), format!("journald unit `{name}` is listed twice (as `{}`)", u.get()))
                                .help("list each unit once; `.service` is implied"),
                        ),
                        Some(name) => seen.push(name),
                        None => {}
                    }
                }
                seen
            }
            None => DEFAULT_JOURNALD_UNITS.iter().map(|u| u.to_string()).collect(),
        };
        let journal_path = match journald.and_then(|j| j.path.as_ref()) {
            None => JournalPath::Auto,
            Some(p) => match p.get().as_str() {
                "auto" => JournalPath::Auto,
                "/var/log/journal" => JournalPath::Persistent,
                "/run/log/journal" => JournalPath::Volatile,
                other => {
                    self.push(
                        Problem::at(p.loc(), format!("unsupported journal path `{other}`"))
                            .help("use `auto` (chosen per OS image), `/var/log/journal` or `/run/log/journal`"),
                    );
                    JournalPath::Auto
                }
            },
        };
        let tolerations = self.tolerations(raw.and_then(|l| l.tolerations.as_ref()));
        let output = self.log_output(raw.and_then(|l| l.output.as_ref()));
        let mut l = Logging {
            journald_units: units,
            journal_path,
            kubelet_logs: raw.and_then(|l| l.kubelet_logs).unwrap_or(true),
            tolerations,
            output,
            chart: self.chart(raw.and_then(|l| l.chart.as_ref()), tessera_kube::charts::logging_operator()),
            values: serde_json::json!({}),
        };
        let values = raw.and_then(|l| l.values.as_ref());
        l.values = self.extra_values(values, &tessera_kube::values::logging(&l), "logging-operator");
        if let Some(v) = values {
            self.additions(v, &tessera_kube::values::LOGGING_GUARD, "logging-operator");
        }
        Some(l)
    }

    /// A systemd unit name without its `.service` suffix: what `systemdFilter` matches.
    fn unit(&mut self, u: &S<String>) -> Option<String> {
        let name = u.get();
        let valid = !name.is_empty()
            && name.len() <= 255
            && name.chars().all(|c| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c))
            && !name.starts_with('.');
        if valid {
            return Some(name.strip_suffix(".service").unwrap_or(name).to_string());
        }
        self.push(
            Problem::at(u.loc(), format!("`{name}` is not a systemd unit name"))
                .help("use the unit's name, e.g. `kubelet` or `containerd` (letters, digits and `:-_.@`)"),
        );
        None
    }

    /// An http(s) URL without credentials; `reference` says how this field takes a secret.
    fn url(&mut self, u: &S<String>, what: &str, reference: &str) -> Option<String> {
        let url = u.get();
        if !self.url_without_credentials(u, what, reference) {
            return None;
        }
        if url.starts_with("https://") || url.starts_with("http://") {
            return Some(url.clone());
        }
        self.push(
            Problem::at(u.loc(), format!("{what} `{}` is not an http(s) URL", super::secrets::redact_userinfo(url)))
                .help("an `https://` (or `http://`) URL, e.g. `https://hooks.example.com/tessera`"),
        );
        None
    }

    fn chart(&mut self, raw: Option<&RawChart>, pinned: Chart) -> Chart {
        let Some(raw) = raw else { return pinned };
        let reference = match &raw.reference {
            Some(r) if !r.get().starts_with("oci://") => {
                self.push(
                    Problem::at(r.loc(), format!("chart reference `{}` is not an `oci://` reference", r.get()))
                        .help(format!("e.g. `{}`", pinned.reference)),
                );
                pinned.reference
            }
            Some(r) => r.get().clone(),
            None => pinned.reference,
        };
        let version = raw.version.get().trim().to_string();
        if version.is_empty() || version.contains(['*', '^', '~', '>', '<', ' ']) {
            self.push(
                Problem::at(raw.version.loc(), format!("chart version `{version}` is not one exact version"))
                    .help(format!("pin an exact version, e.g. `{}`", pinned.version)),
            );
        }
        let digest = raw.digest.as_ref().and_then(|d| {
            let hex = d.get().strip_prefix("sha256:").unwrap_or("");
            if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                Some(d.get().to_ascii_lowercase())
            } else {
                self.push(
                    Problem::at(d.loc(), "a chart digest is `sha256:` and 64 hex digits")
                        .help("take it from `helm pull` or the registry"),
                );
                None
            }
        });
        Chart { reference, version, digest }
    }

    /// Extra chart values: a mapping that sets none of the values Tessera computes.
    fn extra_values(
        &mut self,
        raw: Option<&S<Located>>,
        computed: &serde_json::Value,
        chart: &str,
    ) -> serde_json::Value {
        let Some(raw) = raw else { return serde_json::json!({}) };
        let values = raw.get().to_json();
        if !values.is_object() {
            self.push(
                Problem::at(raw.loc(), format!("{chart} values must be a mapping"))
                    .help("e.g. `values: { grafana: { enabled: false } }`"),
            );
            return serde_json::json!({});
        }
        for path in tessera_kube::values::conflicts(&values, computed) {
            let at = raw.loc_of(&path.split('.').collect::<Vec<_>>());
            self.push(
                Problem::at(at, format!("`{path}` is computed by Tessera for {chart} and cannot be set here"))
                    .help(format!("Tessera sets `{path}` so that every node is covered; use the core service's own setting (such as `tolerations`) instead")),
            );
        }
        self.chart_value_credentials(raw, &values);
        values
    }

    /// The log output: one supported plugin whose settings are a mapping.
    fn log_output(&mut self, raw: Option<&S<serde_json::Value>>) -> LogOutput {
        let nullout = LogOutput { plugin: "nullout".into(), settings: serde_json::json!({}) };
        let Some(raw) = raw else {
            self.warnings.push(
                Problem::at(self.fleet_loc, "coreServices.logging has no output: logs are collected, then dropped")
                    .help("name one, e.g. `output: { loki: { url: http://loki.logging:3100 } }`"),
            );
            return nullout;
        };
        let entries: Vec<(&String, &serde_json::Value)> =
            raw.get().as_object().map(|m| m.iter().collect()).unwrap_or_default();
        let [(plugin, settings)] = entries[..] else {
            self.push(
                Problem::at(raw.loc(), "an output names exactly one plugin")
                    .help(format!("one of: {}", LOG_OUTPUTS.join(", "))),
            );
            return nullout;
        };
        if !LOG_OUTPUTS.contains(&plugin.as_str()) {
            let hint = did_you_mean(&nearest_names(LOG_OUTPUTS, plugin, 2))
                .unwrap_or_else(|| format!("one of: {}", LOG_OUTPUTS.join(", ")));
            self.push(Problem::at(raw.loc(), format!("unsupported log output `{plugin}`")).help(hint));
            return nullout;
        }
        if !settings.is_object() {
            self.push(Problem::at(raw.loc(), format!("the `{plugin}` output's settings must be a mapping")));
            return nullout;
        }
        self.log_output_credentials(raw.loc(), plugin, settings);
        LogOutput { plugin: plugin.clone(), settings: settings.clone() }
    }
}
