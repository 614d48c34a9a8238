//! A placement's core services as resources: the same on every cloud.
//!
//! ## Overview
//!
//! After a cluster's node pools, each placement gets, through the cluster's Kubernetes provider
//! ([`KubeAccess`]):
//! - the `monitoring` and `logging` namespaces;
//! - a `helm.release` of kube-prometheus-stack (node-exporter on every node), then per custom
//!   exporter a DaemonSet and a PodMonitor; with alerting, Tessera's `PrometheusRule` and its
//!   `AlertmanagerConfig`;
//! - a `helm.release` of logging-operator, then its `Logging`, `FluentbitAgent`, `ClusterOutput`,
//!   `ClusterFlow` and a `HostTailer` for the journal.
//!
//! Objects whose kind a chart defines wait for that release, so their CRDs exist first.

use serde_json::{Value, json};
use tessera_provider_api::{Address, ClusterTemplate, KubeAccess, ResourceSpec, TAG_ADDRESS, TAG_FLEET};

use crate::alert_routing;
use crate::alert_rules::{self, Site};
use crate::charts::{LOGGING_NAMESPACE, LOGGING_RELEASE, MONITORING_NAMESPACE, MONITORING_RELEASE};
use crate::contract::{FIELD_MANAGER, LABEL_MANAGED_BY, OBJECT, RELEASE, label_value};
use crate::journal::journal_dir;
use crate::manifests::{self, KIND_AUDIT_LOG};
use crate::values;

/// Core-service resources for `cluster`, reached through `access`; `cloud` is the cloud the
/// nodes run on (`eks`, `aks`, `gke`, `kind`; a sim placement gives the cloud it imitates).
pub fn lower(cluster: &ClusterTemplate, access: &KubeAccess, cloud: &str) -> Vec<ResourceSpec> {
    let cs = &cluster.core_services;
    let mut l = Lowering { cluster, access, out: Vec::new() };
    if let Some(m) = &cs.monitoring {
        let site = Site::of(cluster, cloud);
        let ns = l.object("namespace-monitoring", manifests::namespace(MONITORING_NAMESPACE), &[]);
        let chart_values = values::merge(&values::monitoring_release(m), &values::site(&site));
        let release = l.release(MONITORING_RELEASE, MONITORING_NAMESPACE, &m.chart, chart_values, &ns);
        let tolerations = values::tolerations_json(&m.tolerations);
        for e in &m.exporters {
            l.object(&format!("daemonset-{}", e.name), manifests::exporter_daemonset(e, &tolerations), &[&ns]);
            l.object(&format!("podmonitor-{}", e.name), manifests::exporter_podmonitor(e), &[&release]);
        }
        if let Some(a) = &m.alerting {
            l.object("prometheusrule-tessera", alert_rules::prometheus_rule(cluster, a, &site), &[&release]);
            l.object("alertmanagerconfig-tessera", alert_routing::alertmanager_config(a), &[&release]);
        }
    }
    if let Some(lg) = &cs.logging {
        let ns = l.object("namespace-logging", manifests::namespace(LOGGING_NAMESPACE), &[]);
        let release = l.release(LOGGING_RELEASE, LOGGING_NAMESPACE, &lg.chart, values::logging_release(lg), &ns);
        let audit_file = (cloud == "kind" && cs.audit_logs).then_some(KIND_AUDIT_LOG);
        let logging = l.object("logging", manifests::logging(), &[&release]);
        l.object("fluentbitagent", manifests::fluentbit_agent(lg), &[&logging]);
        let output = l.object("clusteroutput", manifests::cluster_output(lg), &[&logging]);
        l.object("clusterflow", manifests::cluster_flow(), &[&output]);
        l.object(
            "hosttailer",
            manifests::host_tailer(lg, journal_dir(cloud, lg.journal_path), audit_file),
            &[&release],
        );
    }
    l.out
}

struct Lowering<'a> {
    cluster: &'a ClusterTemplate,
    access: &'a KubeAccess,
    out: Vec<ResourceSpec>,
}

impl Lowering<'_> {
    fn spec(&self, rtype: &str, name: &str, deps: &[&Address]) -> ResourceSpec {
        let address = Address::new(self.cluster.placement.clone(), rtype, name);
        let mut spec = ResourceSpec::new(address, self.access.provider.clone());
        for dep in self.access.after.iter().chain(deps.iter().copied()) {
            spec = spec.depends_on(dep.clone());
        }
        spec
    }

    /// One object, labelled as Tessera's and annotated with its owner.
    fn object(&mut self, name: &str, mut manifest: Value, deps: &[&Address]) -> Address {
        let spec = self.spec(OBJECT, name, deps);
        let meta = &mut manifest["metadata"];
        meta["labels"][LABEL_MANAGED_BY] = json!(FIELD_MANAGER);
        meta["labels"][TAG_FLEET] = json!(label_value(&self.cluster.fleet));
        meta["labels"][TAG_ADDRESS] = json!(label_value(&spec.address.to_string()));
        meta["annotations"][TAG_ADDRESS] = json!(spec.address.to_string());
        let address = spec.address.clone();
        self.out.push(spec.attr("manifest", manifest));
        address
    }

    fn release(
        &mut self,
        name: &str,
        namespace: &str,
        chart: &tessera_provider_api::Chart,
        values: Value,
        ns: &Address,
    ) -> Address {
        let spec = self
            .spec(RELEASE, name, &[ns])
            .attr("name", name)
            .attr("namespace", namespace)
            .attr("chart", chart.reference.clone())
            .attr("version", chart.version.clone())
            .attr("digest", chart.digest.clone())
            .attr("values", values)
            .attr("kubeVersion", self.cluster.kubernetes_version.clone())
            .attr("inSync", true);
        let address = spec.address.clone();
        self.out.push(spec);
        address
    }
}
