//! Raw spec → normalized [`Fleet`]: every semantic check, all problems collected at once.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use std::sync::Arc;

use serde_saphyr::Location;
use tessera_provider_api::{
    Arch, Backend, Catalog, Chart, ClusterTemplate, CoreServices, Exporter, JournalPath, LogOutput, Logging, Machine,
    Monitoring, Network, PoolTemplate, ProviderRef, SpecField, Taint, TaintEffect, Toleration, TolerationOperator,
    nearest_names,
};

use super::diagnostic::{Problem, did_you_mean};
use super::model::{Fleet, Placement};
use super::raw::*;
use crate::backends;

const DEFAULT_CIDR: &str = "10.0.0.0/16";
const DEFAULT_SIM_PROFILE: &str = "eks";
const DEFAULT_JOURNALD_UNITS: [&str; 2] = ["kubelet", "containerd"];
/// The logging-operator outputs a spec may name (the ClusterOutput CRD has more; these are the
/// ones Tessera documents and tests).
const LOG_OUTPUTS: [&str; 6] = ["loki", "elasticsearch", "opensearch", "s3", "cloudwatch", "nullout"];
/// AKS, the strictest of the clouds, caps cluster names at 63 characters.
const MAX_CLUSTER_NAME: usize = 63;

/// Checks `raw` against the general rules and each placement's backend (catalog, scope, limits).
pub fn validate(raw: &RawFleet, path: &Path, backends: &[Arc<dyn Backend>]) -> Result<Fleet, Vec<Problem>> {
    let mut v = Validator { problems: Vec::new(), warnings: Vec::new(), backends, fleet_loc: raw.metadata.name.loc() };
    v.header(raw);
    let fleet_name = raw.metadata.name.get().clone();
    v.dns_label(&raw.metadata.name, "fleet name");

    let spec = &raw.spec;
    let version = v.version_format(&spec.kubernetes.version);
    let network = match &spec.network {
        Some(n) => v.network(n),
        None => Network::Managed { cidr: DEFAULT_CIDR.to_string() },
    };
    let network_loc = spec.network.as_ref().and_then(network_loc);
    let pools = v.pools(spec.node_pools.get(), spec.node_pools.loc());
    let core_services = v.core_services(spec.core_services.as_ref(), &pools);

    let template =
        Template { version, version_loc: spec.kubernetes.version.loc(), network, network_loc, pools, core_services };
    let placements = v.placements(&fleet_name, spec.placements.get(), spec.placements.loc(), &template);

    if v.problems.is_empty() {
        Ok(Fleet { name: fleet_name, placements, source: path.to_path_buf(), warnings: v.warnings })
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
    pools: Vec<LocatedPool>,
    core_services: CoreServices,
}

struct Validator<'b> {
    problems: Vec<Problem>,
    /// What is valid but worth saying (a core service turned off).
    warnings: Vec<Problem>,
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
            let taints: Vec<Taint> = p.taints.iter().filter_map(|t| self.taint(t)).collect();
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

    fn labels(&mut self, labels: &S<BTreeMap<String, String>>) -> BTreeMap<String, String> {
        for (k, val) in labels.get() {
            if !is_qualified_name(k) {
                self.push(Problem::at(labels.loc(), format!("invalid label key `{k}`")).help(
                    "keys are `[prefix/]name`: name of 1-63 alphanumerics, '-', '_' or '.', optional DNS prefix",
                ));
            }
            if !(val.is_empty() || is_label_name(val)) {
                self.push(
                    Problem::at(labels.loc(), format!("invalid value `{val}` for label `{k}`")).help(
                        "values are empty or 1-63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric",
                    ),
                );
            }
        }
        labels.get().clone()
    }

    fn taint(&mut self, t: &RawTaint) -> Option<Taint> {
        if !is_qualified_name(t.key.get()) {
            self.push(
                Problem::at(t.key.loc(), format!("invalid taint key `{}`", t.key.get()))
                    .help("taint keys follow label-key syntax, e.g. `dedicated` or `nvidia.com/gpu`"),
            );
        }
        let effect = self.effect(&t.effect)?;
        Some(Taint { key: t.key.get().clone(), value: t.value.clone(), effect })
    }

    fn effect(&mut self, effect: &S<String>) -> Option<TaintEffect> {
        let parsed = TaintEffect::parse(effect.get());
        if parsed.is_none() {
            let hint = did_you_mean(&nearest_names(TaintEffect::ALL, effect.get(), 1))
                .unwrap_or_else(|| format!("use one of: {}", TaintEffect::ALL.join(", ")));
            self.push(Problem::at(effect.loc(), format!("invalid taint effect `{}`", effect.get())).help(hint));
        }
        parsed
    }

    fn tolerations(&mut self, raw: Option<&Vec<RawToleration>>) -> Vec<Toleration> {
        let Some(raw) = raw else { return vec![Toleration::everything()] };
        raw.iter()
            .filter_map(|t| {
                let operator = match t.operator.as_ref().map(|o| (o, o.get().as_str())) {
                    None | Some((_, "Equal")) => TolerationOperator::Equal,
                    Some((_, "Exists")) => TolerationOperator::Exists,
                    Some((o, other)) => {
                        self.push(
                            Problem::at(o.loc(), format!("invalid toleration operator `{other}`"))
                                .help("use `Exists` or `Equal`"),
                        );
                        return None;
                    }
                };
                let effect = match &t.effect {
                    Some(e) => Some(self.effect(e)?),
                    None => None,
                };
                Some(Toleration { key: t.key.clone(), operator, value: t.value.clone(), effect })
            })
            .collect()
    }

    fn core_services(&mut self, raw: Option<&RawCoreServices>, pools: &[LocatedPool]) -> CoreServices {
        let monitoring = raw.and_then(|r| r.monitoring.as_ref());
        let logging = raw.and_then(|r| r.logging.as_ref());
        CoreServices {
            monitoring: self.monitoring(monitoring, pools),
            logging: self.logging(logging, pools),
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

    fn monitoring(&mut self, raw: Option<&RawMonitoring>, pools: &[LocatedPool]) -> Option<Monitoring> {
        let off = "no node of any placement will be monitored";
        if self.turned_off(raw.and_then(|m| m.enabled.as_ref()), "coreServices.monitoring", off) {
            return None;
        }
        let mut seen = HashSet::new();
        let exporters = raw.map_or(&[][..], |m| &m.exporters[..]);
        let exporters = exporters.iter().filter_map(|e| self.exporter(e, &mut seen)).collect();
        let tolerations = self.tolerations(raw.and_then(|m| m.tolerations.as_ref()));
        self.coverage(
            pools,
            &tolerations,
            "coreServices.monitoring",
            "node-exporter would not run there, leaving those nodes unmonitored",
        );
        let remote_write = raw.and_then(|m| m.remote_write.as_ref()).and_then(|u| self.url(u, "remoteWrite"));
        let mut m = Monitoring {
            node_exporter: raw.and_then(|m| m.node_exporter).unwrap_or(true),
            exporters,
            tolerations,
            remote_write,
            chart: self.chart(raw.and_then(|m| m.chart.as_ref()), tessera_kube::charts::kube_prometheus_stack()),
            values: serde_json::json!({}),
        };
        let values = raw.and_then(|m| m.values.as_ref());
        m.values = self.extra_values(values, &tessera_kube::values::monitoring(&m), "kube-prometheus-stack");
        Some(m)
    }

    fn logging(&mut self, raw: Option<&RawLogging>, pools: &[LocatedPool]) -> Option<Logging> {
        let off = "no node's journal or kubelet logs will be shipped (control-plane audit logs follow `auditLogs`)";
        if self.turned_off(raw.and_then(|l| l.enabled.as_ref()), "coreServices.logging", off) {
            return None;
        }
        let journald = raw.and_then(|l| l.journald.as_ref());
        let units = match journald.and_then(|j| j.units.as_ref()) {
            Some(units) => units.iter().filter_map(|u| self.unit(u)).collect(),
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
        self.coverage(
            pools,
            &tolerations,
            "coreServices.logging",
            "host tailers would not run there, so those nodes' journals would not be shipped",
        );
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

    fn url(&mut self, u: &S<String>, what: &str) -> Option<String> {
        let url = u.get();
        if url.starts_with("https://") || url.starts_with("http://") {
            return Some(url.clone());
        }
        self.push(
            Problem::at(u.loc(), format!("{what} `{url}` is not an http(s) URL"))
                .help("e.g. `https://prometheus.example.com/api/v1/write`"),
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
        raw: Option<&S<serde_json::Value>>,
        computed: &serde_json::Value,
        chart: &str,
    ) -> serde_json::Value {
        let Some(raw) = raw else { return serde_json::json!({}) };
        if !raw.get().is_object() {
            self.push(
                Problem::at(raw.loc(), format!("{chart} values must be a mapping"))
                    .help("e.g. `values: { grafana: { enabled: false } }`"),
            );
            return serde_json::json!({});
        }
        for path in tessera_kube::values::conflicts(raw.get(), computed) {
            self.push(
                Problem::at(raw.loc(), format!("`{path}` is computed by Tessera for {chart} and cannot be set here"))
                    .help(format!("Tessera sets `{path}` so that every node is covered; use the core service's own setting (such as `tolerations`) instead")),
            );
        }
        raw.get().clone()
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
        LogOutput { plugin: plugin.clone(), settings: settings.clone() }
    }

    /// Every taint of every pool must be tolerated, or some nodes go unmonitored or unlogged.
    fn coverage(&mut self, pools: &[LocatedPool], tolerations: &[Toleration], section: &str, consequence: &str) {
        for lp in pools {
            for (taint, loc) in lp.pool.taints.iter().zip(&lp.taint_locs) {
                if !tolerations.iter().any(|t| t.tolerates(taint)) {
                    self.push(
                        Problem::at(
                            *loc,
                            format!("taint `{}` of pool `{}` is not tolerated by {section}.tolerations", taint.key, lp.pool.name),
                        )
                        .help(format!(
                            "{consequence}; add `{{key: {}, operator: Exists}}` to {section}.tolerations, or drop the list to tolerate everything",
                            taint.key
                        )),
                    );
                }
            }
        }
    }

    fn exporter(&mut self, e: &RawExporter, seen: &mut HashSet<String>) -> Option<Exporter> {
        self.dns_label(&e.name, "exporter name");
        if !seen.insert(e.name.get().clone()) {
            self.push(
                Problem::at(e.name.loc(), format!("two exporters are named `{}`", e.name.get()))
                    .help("exporter names name their DaemonSets and must be unique"),
            );
        }
        let image = e.image.get();
        let last = image.rsplit('/').next().unwrap_or(image);
        let pinned = image.contains("@sha256:")
            || last.split_once(':').is_some_and(|(_, tag)| !tag.is_empty() && tag != "latest");
        if !pinned {
            self.push(
                Problem::at(e.image.loc(), format!("exporter image `{image}` is not pinned"))
                    .help("pin a version tag or digest (e.g. `repo/exporter:1.2.3`); `latest` changes under you"),
            );
        }
        for m in &e.host_mounts {
            if !m.get().starts_with('/') || m.get().split('/').any(|part| part == "..") {
                self.push(Problem::at(m.loc(), format!("host mount `{}` is not an absolute path", m.get())));
            }
        }
        let port = match u16::try_from(e.port.get().0) {
            Ok(p) if p > 0 => p,
            _ => {
                self.push(
                    Problem::at(e.port.loc(), format!("port {} is not a TCP port", e.port.get()))
                        .help("use 1 to 65535"),
                );
                return None;
            }
        };
        let path = e.path.as_ref().map_or_else(|| "/metrics".to_string(), |p| p.get().clone());
        if !path.starts_with('/') {
            self.push(Problem::at(
                e.path.as_ref().map_or(e.name.loc(), |p| p.loc()),
                format!("scrape path `{path}` does not start with `/`"),
            ));
        }
        let interval = e.interval.as_ref().map_or_else(|| "30s".to_string(), |i| i.get().clone());
        let valid_interval = interval
            .strip_suffix(['s', 'm', 'h'])
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) && n != "0");
        if !valid_interval {
            self.push(
                Problem::at(
                    e.interval.as_ref().map_or(e.name.loc(), |i| i.loc()),
                    format!("scrape interval `{interval}` is not a duration"),
                )
                .help("e.g. `30s`, `1m`"),
            );
        }
        Some(Exporter {
            name: e.name.get().clone(),
            image: image.clone(),
            privileged: e.privileged,
            host_mounts: e.host_mounts.iter().map(|m| m.get().clone()).collect(),
            port,
            path,
            interval,
        })
    }

    fn placements(
        &mut self,
        fleet: &str,
        raw: &[RawPlacement],
        list_loc: Location,
        template: &Template,
    ) -> Vec<Placement> {
        if raw.is_empty() {
            self.push(
                Problem::at(list_loc, "a fleet needs at least one placement")
                    .help("add e.g. `- { name: local, provider: kind }`"),
            );
        }
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for p in raw {
            if self.dns_label(&p.name, "placement name") {
                let cluster_name = format!("{fleet}-{}", p.name.get());
                if cluster_name.len() > MAX_CLUSTER_NAME {
                    self.push(
                        Problem::at(
                            p.name.loc(),
                            format!("cluster name `{cluster_name}` is longer than {MAX_CLUSTER_NAME} characters"),
                        )
                        .help("shorten the fleet or placement name"),
                    );
                }
            }
            if !seen.insert(p.name.get().clone()) {
                self.push(
                    Problem::at(p.name.loc(), format!("duplicate placement name `{}`", p.name.get()))
                        .help("each placement is one cluster and needs its own name"),
                );
            }
            if let Some(placement) = self.placement(fleet, p, template) {
                out.push(placement);
            }
        }
        out
    }

    fn provider_ref(&mut self, p: &RawPlacement) -> Option<(ProviderRef, Arc<dyn Backend>)> {
        let kind = p.provider.get().as_str();
        let kinds = backends::placement_kinds(self.backends);
        let Some(backend) = backends::find(self.backends, kind).filter(|_| kinds.contains(&kind)) else {
            let hint = did_you_mean(&nearest_names(kinds.iter().copied(), kind, 2))
                .unwrap_or_else(|| format!("use one of: {}", kinds.join(", ")));
            self.push(Problem::at(p.provider.loc(), format!("unknown provider `{kind}`")).help(hint));
            return None;
        };
        let profile = match (&p.sim, kind) {
            (Some(sim), "sim") => {
                let name = sim.profile.get().as_str();
                if tessera_sim::Profile::named(name).is_none() {
                    self.push(
                        Problem::at(sim.profile.loc(), format!("unknown sim profile `{name}`"))
                            .help(format!("use one of: {}", tessera_sim::Profile::NAMES.join(", "))),
                    );
                    return None;
                }
                Some(name.to_string())
            }
            (None, "sim") => Some(DEFAULT_SIM_PROFILE.to_string()),
            (Some(sim), _) => {
                self.push(
                    Problem::at(
                        sim.profile.loc(),
                        format!("`sim` options apply only to `provider: sim`, not `{kind}`"),
                    )
                    .help("remove the `sim` block"),
                );
                None
            }
            (None, _) => None,
        };
        let profile = match (&p.kind, kind) {
            (None, _) => profile,
            (Some(k), "kind") => match k.control_planes.get().0 {
                1 => None,
                // The kind backend's HA topology (three control-plane nodes).
                3 => Some("ha".to_string()),
                n => {
                    self.push(
                        Problem::at(k.control_planes.loc(), format!("{n} control-plane nodes: kind supports 1 or 3"))
                            .help("use 1 (default) or 3 (a highly available topology)"),
                    );
                    return None;
                }
            },
            (Some(k), _) => {
                self.push(
                    Problem::at(
                        k.control_planes.loc(),
                        format!("`kind` options apply only to `provider: kind`, not `{kind}`"),
                    )
                    .help("remove the `kind` block"),
                );
                return None;
            }
        };
        let region = p.region.as_ref().map(|r| r.get().clone()).unwrap_or_default();
        let scope = self.scope(p, backend.as_ref())?;
        Some((ProviderRef { kind: kind.to_string(), region, profile, connection: None, scope }, backend))
    }

    /// The placement's `scope`, checked against the keys its backend takes.
    fn scope(&mut self, p: &RawPlacement, backend: &dyn Backend) -> Option<BTreeMap<String, String>> {
        let keys = backend.scope_keys();
        let given = p.scope.clone().unwrap_or_default();
        let mut ok = true;
        for (key, value) in &given {
            let Some(spec) = keys.iter().find(|k| k.name == key) else {
                ok = false;
                let names: Vec<&str> = keys.iter().map(|k| k.name).collect();
                let hint = did_you_mean(&nearest_names(names.iter().copied(), key, 2)).unwrap_or_else(|| {
                    if names.is_empty() {
                        format!("{} takes no scope: remove it", backend.kind())
                    } else {
                        format!("{} takes: {}", backend.kind(), names.join(", "))
                    }
                });
                self.push(
                    Problem::at(value.loc(), format!("unknown scope key `{key}` for {}", backend.kind())).help(hint),
                );
                continue;
            };
            if let Err(why) = (spec.check)(value.get()) {
                ok = false;
                self.push(
                    Problem::at(value.loc(), format!("invalid {} `{}`: {why}", key, value.get()))
                        .help(format!("e.g. `{}`", spec.example)),
                );
            }
        }
        for missing in keys.iter().filter(|k| k.required && !given.contains_key(k.name)) {
            ok = false;
            self.push(
                Problem::at(
                    p.name.loc(),
                    format!("placement `{}` needs `scope.{}` for {}", p.name.get(), missing.name, backend.kind()),
                )
                .help(format!("add `scope: {{ {} }}` to the placement", missing.example)),
            );
        }
        ok.then(|| given.into_iter().map(|(k, v)| (k, v.get().clone())).collect())
    }

    fn region(&mut self, p: &RawPlacement, catalog: &Catalog) -> Option<Vec<String>> {
        if !catalog.needs_region() {
            if let Some(r) = &p.region {
                self.push(
                    Problem::at(r.loc(), format!("{} has no regions", catalog.provider))
                        .help("remove `region` from this placement"),
                );
            }
            return Some(vec![]);
        }
        let Some(region) = &p.region else {
            self.push(
                Problem::at(p.name.loc(), format!("placement `{}` needs a region", p.name.get()))
                    .help(format!("e.g. `region: {}`", catalog.regions[0].name)),
            );
            return None;
        };
        let Some(found) = catalog.region(region.get()) else {
            let hint = did_you_mean(&catalog.nearest_regions(region.get(), 3))
                .unwrap_or_else(|| "run `tessera validate` on a spec with a known region".into());
            self.push(
                Problem::at(region.loc(), format!("unknown {} region `{}`", catalog.provider, region.get())).help(hint),
            );
            return None;
        };
        match &p.zones {
            None => Some(found.zones.iter().take(3).cloned().collect()),
            Some(zones) => {
                let mut ok = true;
                let mut seen = HashSet::new();
                for z in zones.get() {
                    if !seen.insert(z) {
                        ok = false;
                        self.push(
                            Problem::at(zones.loc(), format!("zone `{z}` is listed twice"))
                                .help("each zone gets one subnet; list it once"),
                        );
                    }
                    if !found.zones.contains(z) {
                        ok = false;
                        let hint = did_you_mean(&nearest_names(found.zones.iter().map(String::as_str), z, 3))
                            .unwrap_or_else(|| format!("zones of {}: {}", found.name, found.zones.join(", ")));
                        self.push(
                            Problem::at(zones.loc(), format!("zone `{z}` is not in region `{}`", found.name))
                                .help(hint),
                        );
                    }
                }
                if zones.get().is_empty() {
                    ok = false;
                    self.push(
                        Problem::at(zones.loc(), "`zones` is empty")
                            .help("list at least one zone, or drop `zones` for the default"),
                    );
                }
                ok.then(|| zones.get().clone())
            }
        }
    }

    fn placement(&mut self, fleet: &str, p: &RawPlacement, template: &Template) -> Option<Placement> {
        let (provider, backend) = self.provider_ref(p)?;
        let catalog = backend.catalog(&provider)?;
        let zones = self.region(p, &catalog);

        let mut version = (template.version.clone(), template.version_loc);
        let mut network = template.network.clone();
        let mut network_at = template.network_loc;
        let mut pools = template.pools.clone();
        if let Some(o) = &p.overrides {
            if let Some(k) = &o.kubernetes {
                version = (self.version_format(&k.version), k.version.loc());
            }
            if let Some(n) = &o.network {
                network = self.network(n);
                network_at = network_loc(n);
            }
            for po in &o.node_pools {
                let Some(target) = pools.iter_mut().find(|lp| lp.pool.name == *po.name.get()) else {
                    let names: Vec<&str> = template.pools.iter().map(|lp| lp.pool.name.as_str()).collect();
                    let hint = did_you_mean(&nearest_names(names.iter().copied(), po.name.get(), 2))
                        .unwrap_or_else(|| "overrides change existing pools; add new pools to spec.nodePools".into());
                    self.push(
                        Problem::at(
                            po.name.loc(),
                            format!("override names pool `{}`, which the template does not have", po.name.get()),
                        )
                        .help(hint),
                    );
                    continue;
                };
                if let Some(m) = &po.machine {
                    target.pool.machine = self.machine(m);
                    target.machine_loc = m.vcpu.loc();
                }
                if let Some(s) = &po.scale {
                    target.scale_loc = s.loc();
                    (target.pool.min, target.pool.max) = self.scale(s);
                }
            }
        }

        if !catalog.supports_version(&version.0) {
            let hint = did_you_mean(&catalog.nearest_versions(&version.0, 2))
                .unwrap_or_else(|| format!("supported: {}", catalog.versions.join(", ")));
            self.push(
                Problem::at(version.1, format!("{} does not offer Kubernetes {}", catalog.provider, version.0))
                    .help(hint),
            );
        }
        for lp in &pools {
            let m = &lp.pool.machine;
            if catalog.machine_type(m).is_none() {
                let near: Vec<String> = catalog
                    .nearest_machines(m, 3)
                    .iter()
                    .map(|t| format!("{{vcpu: {}, memoryGiB: {}}} ({})", t.vcpu, t.memory_gib, t.name))
                    .collect();
                let hint = if near.is_empty() {
                    format!("{} has no {} machines", catalog.provider, m.arch)
                } else {
                    format!("nearest sizes on {}: {}", catalog.provider, near.join(", "))
                };
                self.push(
                    Problem::at(
                        lp.machine_loc,
                        format!(
                            "{} has no {} machine with {} vCPU and {} GiB for pool `{}` (placement `{}`)",
                            catalog.provider,
                            m.arch,
                            m.vcpu,
                            m.memory_gib,
                            lp.pool.name,
                            p.name.get()
                        ),
                    )
                    .help(hint),
                );
            }
        }

        let cluster = ClusterTemplate {
            fleet: fleet.to_string(),
            placement: p.name.get().clone(),
            region: p.region.as_ref().map(|r| r.get().clone()).unwrap_or_default(),
            zones: zones?,
            kubernetes_version: version.0.clone(),
            network,
            pools: pools.iter().map(|lp| lp.pool.clone()).collect(),
            core_services: template.core_services.clone(),
        };
        // The cloud's own limits, each at the field it concerns.
        for v in backend.validate(&cluster, &provider) {
            let at = match &v.field {
                SpecField::FleetName => self.fleet_loc,
                SpecField::PlacementName => p.name.loc(),
                SpecField::Network => network_at.unwrap_or(p.name.loc()),
                SpecField::Pool(name) => {
                    pools.iter().find(|lp| lp.pool.name == *name).map_or(p.name.loc(), |lp| lp.name_loc)
                }
                SpecField::PoolScale(name) => {
                    pools.iter().find(|lp| lp.pool.name == *name).map_or(p.name.loc(), |lp| lp.scale_loc)
                }
                SpecField::Scope(key) => p.scope.as_ref().and_then(|s| s.get(key)).map_or(p.name.loc(), |v| v.loc()),
            };
            let where_ = format!(" (placement `{}`, {})", p.name.get(), backend.kind());
            let problem = Problem::at(at, format!("{}{where_}", v.message)).help(v.help);
            if v.warning {
                self.warnings.push(problem);
            } else {
                self.push(problem);
            }
        }
        Some(Placement { name: p.name.get().clone(), provider, cluster, version_site: version.1.into() })
    }
}

pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// Kubernetes label-key syntax: `[dns-subdomain/]name`.
fn is_qualified_name(s: &str) -> bool {
    match s.split_once('/') {
        None => is_label_name(s),
        Some((prefix, name)) => {
            prefix.len() <= 253 && !prefix.is_empty() && prefix.split('.').all(is_dns_label) && is_label_name(name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_syntax() {
        assert!(is_dns_label("aws-eu"));
        assert!(!is_dns_label("AWS"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(is_qualified_name("nvidia.com/gpu"));
        assert!(is_qualified_name("tier"));
        assert!(!is_qualified_name("bad key"));
        assert!(!is_qualified_name("/x"));
    }
}
