//! Coverage checked on outcomes: every pool is reached by every core-service DaemonSet, as the
//! DaemonSets will be built, and each holds to the security floor.
//!
//! ## Model
//!
//! The computed values guard the inputs; a spec's extra chart values and settings still shape
//! what runs. So, before anything is planned, the core services are built as they will run
//! ([`tessera_kube::workloads::build_from`]: the computed values merged with the spec's, the
//! DaemonSets helm renders of each chart where [`super::charts`] could render it, else Tessera's
//! model of them, the operator's DaemonSets, the exporters' own objects), and each pool
//! is tried as a node would be ([`tessera_kube::coverage::pool_node`]: its labels, plus the pool
//! label, `kubernetes.io/os: linux` and its architecture, and its taints), against each DaemonSet with the
//! scheduler's rule ([`tessera_kube::scheduler::why_not`]: node selector, required node affinity,
//! taints and tolerations, node OS). A pool some DaemonSet would not reach is refused where the
//! cause is written: the pool's taint, or the service's `values` that changed the selector or
//! affinity; the message names the pool and the DaemonSet, and says when helm rendered it. A
//! rendered DaemonSet is refused at the same lines as the model's.
//!
//! Placement overrides change machines and scale, never labels, taints or core services, so the
//! template's pools are the placements' pools for this check.

use serde_json::Value;
use tessera_kube::coverage::{Service, pool_node};
use tessera_kube::scheduler::{Unreached, why_not};
use tessera_kube::workloads::{self, Rendered, Source, Workload};
use tessera_kube::{floor, values};
use tessera_provider_api::CoreServices;

use super::super::diagnostic::Problem;
use super::super::raw::{Located, S};
use super::{LocatedPool, Validator};

/// The spec's chart values of each service, which shape the chart's workloads.
#[derive(Default)]
pub(super) struct ServiceSites<'r> {
    pub monitoring_values: Option<&'r S<Located>>,
    pub logging_values: Option<&'r S<Located>>,
}

/// The chart values key under which node-exporter's pod-spec `field` is set.
fn chart_key(field: &str) -> &str {
    match field {
        "volumes" => "extraHostVolumeMounts",
        other => other,
    }
}

fn section(service: Service) -> &'static str {
    match service {
        Service::Monitoring => "coreServices.monitoring",
        Service::Logging => "coreServices.logging",
    }
}

/// The DaemonSet, marked when helm rendered it: a name or a selector that Tessera's model would
/// not make is then explained.
fn ds_id(w: &Workload, rendered: &Rendered) -> String {
    let ns = w.daemonset.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
    let by_helm = w.source == Source::Chart
        && match w.service {
            Service::Monitoring => rendered.monitoring.is_some(),
            Service::Logging => rendered.logging.is_some(),
        };
    format!("DaemonSet {ns}/{}{}", w.name(), if by_helm { " (as helm renders it)" } else { "" })
}

impl Validator<'_> {
    /// Builds the core services as they will run and checks them per pool and on the floor.
    pub(super) fn outcome(
        &mut self,
        pools: &[LocatedPool],
        cs: &CoreServices,
        sites: &ServiceSites,
        rendered: &Rendered,
    ) {
        let built = workloads::build_from(cs, rendered);
        let ds_id = |w: &Workload| ds_id(w, rendered);
        // Where in a service's values `path` (under the chart's node-exporter section) is written.
        let values_at = |service: Service, path: &[&str]| match service {
            Service::Monitoring => sites.monitoring_values.map(|v| {
                let full: Vec<&str> = ["prometheus-node-exporter"].iter().chain(path).copied().collect();
                v.loc_of(&full)
            }),
            Service::Logging => sites.logging_values.map(|v| v.loc_of(path)),
        };
        for w in &built {
            for lp in pools {
                let Some(why) = why_not(w.pod_spec(), &pool_node(&lp.pool)) else { continue };
                let (at, fix) = match &why {
                    Unreached::Taint { key, .. } => {
                        let i = lp.pool.taints.iter().position(|t| t.key == *key);
                        let at = i.and_then(|i| lp.taint_locs.get(i).copied()).unwrap_or(lp.name_loc);
                        let what = format!(
                            "taint `{key}` of pool `{}` is not tolerated by {}.tolerations",
                            lp.pool.name,
                            section(w.service)
                        );
                        let fix = format!(
                            "add `{{key: {key}, operator: Exists}}` to {}.tolerations, or drop the list to tolerate everything",
                            section(w.service)
                        );
                        self.push(Problem::at(at, format!("{what}: {} would not run there", ds_id(w))).help(fix));
                        continue;
                    }
                    _ if w.source == Source::Chart => {
                        let path: Vec<&str> = match &why {
                            Unreached::NodeSelector { key, .. } => vec!["nodeSelector", key.as_str()],
                            Unreached::NodeAffinity => vec!["affinity"],
                            _ => vec!["nodeSelector"],
                        };
                        (
                            values_at(w.service, &path).unwrap_or(lp.name_loc),
                            format!("remove what {}.values adds to the DaemonSet's placement", section(w.service)),
                        )
                    }
                    _ => (lp.name_loc, "core services run on Linux nodes of every pool".to_string()),
                };
                self.push(
                    Problem::at(at, format!("pool `{}` would not run {}: {why}", lp.pool.name, ds_id(w)))
                        .help(format!("every node must be covered; {fix}")),
                );
            }
            // A custom exporter's settings are checked at their own lines, with the same rules.
            if matches!(w.source, Source::Exporter(_)) {
                continue;
            }
            for breach in floor::check(w) {
                let at = values_at(w.service, &[chart_key(breach.field)]).unwrap_or(self.fleet_loc);
                self.push(Problem::at(at, format!("{} would run with {breach}", ds_id(w))).help(format!(
                    "core services keep the pinned images and read-only host mounts; {}",
                    floor::hardware_hint().replace("a hardware exporter", "for hardware metrics, a custom exporter")
                )));
            }
        }
        if let Some(m) = &cs.monitoring {
            if !m.node_exporter && m.exporters.is_empty() {
                self.warnings.push(
                    Problem::at(values_at(Service::Monitoring, &[]).unwrap_or(self.fleet_loc), "coreServices.monitoring runs nothing: node-exporter is off and there is no exporter")
                        .help("no node will be monitored and `tessera verify` reports every node \"not monitored\"; turn `nodeExporter` back on or add an exporter"),
                );
            }
        }
    }

    /// Keys a spec's values add where the chart's placement, host access or selectors are.
    pub(super) fn additions(&mut self, raw: &S<Located>, guard: &values::Guard, chart: &str) {
        for path in values::additions(&raw.get().to_json(), guard) {
            let at = raw.loc_of(&path.split('.').collect::<Vec<_>>());
            self.push(Problem::at(at, format!("`{path}` may not be added to the {chart} values")).help(guard.why));
        }
    }
}
