//! The charts Tessera pins, one version each per Tessera release. A spec may override the
//! reference, the version and the digest (`coreServices.*.chart`).

use tessera_provider_api::Chart;

/// prometheus-operator, node-exporter and Prometheus (appVersion v0.93.1).
pub const KUBE_PROMETHEUS_STACK: &str = "oci://ghcr.io/prometheus-community/charts/kube-prometheus-stack";
pub const KUBE_PROMETHEUS_STACK_VERSION: &str = "88.5.3";
/// The kube-logging operator (formerly Banzai Cloud's), with its HostTailer extension.
pub const LOGGING_OPERATOR: &str = "oci://ghcr.io/kube-logging/helm-charts/logging-operator";
pub const LOGGING_OPERATOR_VERSION: &str = "6.7.0";

pub fn kube_prometheus_stack() -> Chart {
    Chart { reference: KUBE_PROMETHEUS_STACK.into(), version: KUBE_PROMETHEUS_STACK_VERSION.into(), digest: None }
}

pub fn logging_operator() -> Chart {
    Chart { reference: LOGGING_OPERATOR.into(), version: LOGGING_OPERATOR_VERSION.into(), digest: None }
}

/// Release names and namespaces. The chart's DaemonSets are named after the release.
pub const MONITORING_NAMESPACE: &str = "monitoring";
pub const MONITORING_RELEASE: &str = "kube-prometheus-stack";
pub const LOGGING_NAMESPACE: &str = "logging";
pub const LOGGING_RELEASE: &str = "logging-operator";

/// Whether an object named `name` in the monitoring namespace could be one the monitoring chart
/// renders (or its operator makes from them): the chart names everything after its release
/// (`<release>`, `<release>-…`), and prometheus-operator names its StatefulSets
/// `prometheus-<release>-…` and `alertmanager-<release>-…`. A custom exporter of such a name
/// would share the object with the chart: two owners, and a plan that never converges.
pub fn monitoring_chart_may_render(name: &str) -> bool {
    let release = MONITORING_RELEASE;
    let prefixed = |p: &str| name == p || name.starts_with(&format!("{p}-"));
    prefixed(release) || prefixed(&format!("prometheus-{release}")) || prefixed(&format!("alertmanager-{release}"))
}
