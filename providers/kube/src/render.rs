//! A chart's objects as `helm template` renders them, asked of whoever can render them offline.
//!
//! ## Overview
//!
//! Coverage is checked on what will run, and for a chart that is what helm renders from the
//! release's values. Rendering needs helm and the chart: I/O, which this crate does not do, and
//! which may not be at hand (charts live in registries that `validate` and `plan` must never
//! need). So this module only says what is asked ([`ChartRelease`]: the chart, release,
//! namespace, values and Kubernetes version the `helm.release` resource installs with, from
//! [`releases`], the same functions [`crate::lower`] uses) and what may come back
//! ([`Rendering`]). A [`ChartRenderer`] is passed in by the caller that has one: the `kube`
//! provider's client renders charts already on the machine and never pulls. Where nothing can
//! render, validation falls back to Tessera's model ([`crate::workloads::chart_workloads`]).

use serde_json::Value;
use tessera_provider_api::{Chart, CoreServices};

use crate::charts::{LOGGING_NAMESPACE, LOGGING_RELEASE, MONITORING_NAMESPACE, MONITORING_RELEASE};
use crate::coverage::Service;
use crate::values;

/// One chart release as it will be installed.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartRelease<'a> {
    pub service: Service,
    pub chart: &'a Chart,
    pub release: &'static str,
    pub namespace: &'static str,
    /// The spec's values with the computed ones laid over them.
    pub values: Value,
    /// `major.minor`.
    pub kube_version: &'a str,
}

/// What a renderer made of a [`ChartRelease`].
#[derive(Debug, Clone, PartialEq)]
pub enum Rendering {
    /// Every object `helm template` printed.
    Objects(Vec<Value>),
    /// Helm or the chart is not on this machine (the reason, for the user); the model is used.
    Unavailable(String),
    /// Helm ran and refused these values (its own words): the install would fail the same way.
    Failed(String),
}

/// Renders charts without the network, or says it cannot.
pub trait ChartRenderer {
    fn render(&self, release: &ChartRelease<'_>) -> Rendering;
}

/// No renderer: every chart is judged by Tessera's model.
pub struct ModelOnly;

impl ChartRenderer for ModelOnly {
    fn render(&self, _: &ChartRelease<'_>) -> Rendering {
        Rendering::Unavailable("this build does not run helm".into())
    }
}

/// The chart releases of `cs` on a cluster of Kubernetes `kube_version`.
pub fn releases<'a>(cs: &'a CoreServices, kube_version: &'a str) -> Vec<ChartRelease<'a>> {
    let mut out = Vec::new();
    if let Some(m) = &cs.monitoring {
        out.push(ChartRelease {
            service: Service::Monitoring,
            chart: &m.chart,
            release: MONITORING_RELEASE,
            namespace: MONITORING_NAMESPACE,
            values: values::monitoring_release(m),
            kube_version,
        });
    }
    if let Some(l) = &cs.logging {
        out.push(ChartRelease {
            service: Service::Logging,
            chart: &l.chart,
            release: LOGGING_RELEASE,
            namespace: LOGGING_NAMESPACE,
            values: values::logging_release(l),
            kube_version,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::RELEASE;
    use tessera_provider_api::{
        Address, ClusterTemplate, KubeAccess, LogOutput, Logging, Monitoring, Network, ProviderRef, Toleration,
    };

    fn cluster() -> ClusterTemplate {
        let m = Monitoring {
            node_exporter: true,
            exporters: vec![],
            tolerations: vec![Toleration::everything()],
            remote_write: None,
            remote_write_auth: None,
            chart: crate::charts::kube_prometheus_stack(),
            values: serde_json::json!({"grafana": {"enabled": false}}),
            alerting: None,
        };
        let l = Logging {
            journald_units: vec!["kubelet".into()],
            journal_path: tessera_provider_api::JournalPath::Auto,
            kubelet_logs: true,
            tolerations: vec![Toleration::everything()],
            output: LogOutput { plugin: "nullout".into(), settings: serde_json::json!({}) },
            chart: crate::charts::logging_operator(),
            values: serde_json::json!({"replicaCount": 2}),
        };
        ClusterTemplate {
            fleet: "core".into(),
            placement: "aws".into(),
            region: "eu-west-1".into(),
            zones: vec![],
            kubernetes_version: "1.31".into(),
            network: Network::Managed { cidr: "10.0.0.0/16".into() },
            pools: vec![],
            core_services: CoreServices { monitoring: Some(m), logging: Some(l), audit_logs: true },
            api_access: Default::default(),
        }
    }

    #[test]
    fn each_release_is_rendered_with_what_lowering_installs() {
        let c = cluster();
        let access = KubeAccess {
            cluster: Address::new("aws", "eks.cluster", "main"),
            provider: ProviderRef::connected("kube", Address::new("aws", "eks.cluster", "main")),
            after: vec![],
        };
        let lowered: Vec<_> =
            crate::lower::lower(&c, &access, "eks").into_iter().filter(|r| r.address.rtype == RELEASE).collect();
        let asked = releases(&c.core_services, &c.kubernetes_version);
        assert_eq!(lowered.len(), 2);
        assert_eq!(asked.len(), lowered.len());
        for (r, spec) in asked.iter().zip(&lowered) {
            assert_eq!(spec.attrs["name"], r.release);
            assert_eq!(spec.attrs["namespace"], r.namespace);
            assert_eq!(spec.attrs["chart"], r.chart.reference.as_str());
            assert_eq!(spec.attrs["version"], r.chart.version.as_str());
            // The install adds the placement's site as Prometheus' external labels, which only
            // label what Prometheus sends and change no object's placement or host access.
            let site = crate::values::site(&crate::alert_rules::Site::of(&c, "eks"));
            let installed =
                if r.service == Service::Monitoring { values::merge(&r.values, &site) } else { r.values.clone() };
            assert_eq!(spec.attrs["values"], installed, "{}: the same values as the install", r.release);
            assert_eq!(spec.attrs["kubeVersion"], r.kube_version);
        }
    }
}
