//! The ids of the core-service DaemonSets, as the charts and operators name them: what coverage
//! expects on every node and what Tessera's objects wait for.

use crate::charts::{LOGGING_NAMESPACE, MONITORING_NAMESPACE, MONITORING_RELEASE};
use crate::contract::object_id;

/// The name of every logging-operator object Tessera writes (the agent, the tailer, the output).
pub const LOGGING_NAME: &str = "tessera";

fn daemonset(namespace: &str, name: &str) -> String {
    object_id("apps/v1", "DaemonSet", Some(namespace), name)
}

/// The chart's node-exporter DaemonSet (the subchart's full name under Tessera's release).
pub fn node_exporter_id() -> String {
    daemonset(MONITORING_NAMESPACE, &format!("{MONITORING_RELEASE}-prometheus-node-exporter"))
}

/// logging-operator names a FluentbitAgent's DaemonSet `<agent>-fluentbit`.
pub fn fluentbit_id() -> String {
    daemonset(LOGGING_NAMESPACE, &format!("{LOGGING_NAME}-fluentbit"))
}

/// logging-operator names a HostTailer's DaemonSet `<tailer>-host-tailer`.
pub fn host_tailer_id() -> String {
    daemonset(LOGGING_NAMESPACE, &format!("{LOGGING_NAME}-host-tailer"))
}

pub fn exporter_id(name: &str) -> String {
    daemonset(MONITORING_NAMESPACE, name)
}
