//! Helm values checked key by key against a chart's real `values.yaml`.
//!
//! ## Overview
//! A chart silently ignores a misspelled value, so generated values are checked here: every key
//! path of the given values must exist in the chart's `values.yaml`. Maps are descended; lists
//! and scalars are leaves. Below a key that the chart leaves open, anything goes: a key whose
//! default is an empty map `{}` or null, and the keys that charts document as free-form
//! Kubernetes fields or maps ([`FREE_FORM`]: `nodeSelector`, `tolerations`, `resources`, ...).
//!
//! Sub-charts: a top-level section named after a dependency in the chart's `Chart.yaml` is
//! checked against the parent's section and the sub-chart's own `values.yaml` together, found in
//! `<chart>/charts/<name>/values.yaml` or beside the chart in `<chart>/../<name>/values.yaml`
//! (as `shared/k8s/charts` keeps kube-prometheus-stack and prometheus-node-exporter).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::crds::load_yaml;
use crate::error::FixtureError;

/// Keys whose contents are not the chart's to list.
pub const FREE_FORM: &[&str] = &[
    "nodeSelector",
    "tolerations",
    "affinity",
    "resources",
    "podLabels",
    "podAnnotations",
    "labels",
    "annotations",
    "commonLabels",
    "extraArgs",
    "additionalScrapeConfigs",
    "securityContext",
    "containerSecurityContext",
    "podSecurityContext",
    "env",
    "extraEnv",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
];

/// A chart's values and those of its sub-charts that are at hand.
#[derive(Debug, Clone)]
pub struct ChartValues {
    values: Value,
    subcharts: BTreeMap<String, Value>,
}

impl ChartValues {
    pub fn load(values_yaml: &Path) -> Result<ChartValues, FixtureError> {
        let values = load_yaml(values_yaml)?;
        let chart_dir = values_yaml.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut subcharts = BTreeMap::new();
        let chart_yaml = chart_dir.join("Chart.yaml");
        if chart_yaml.exists() {
            let chart = load_yaml(&chart_yaml)?;
            let deps = chart.get("dependencies").and_then(Value::as_array).cloned().unwrap_or_default();
            for dep in deps {
                let Some(name) = dep.get("name").and_then(Value::as_str) else { continue };
                let section = dep.get("alias").and_then(Value::as_str).unwrap_or(name);
                let candidates: [PathBuf; 2] = [
                    chart_dir.join("charts").join(name).join("values.yaml"),
                    chart_dir.join("..").join(name).join("values.yaml"),
                ];
                if let Some(found) = candidates.iter().find(|p| p.exists()) {
                    subcharts.insert(section.to_string(), load_yaml(found)?);
                }
            }
        }
        Ok(ChartValues { values, subcharts })
    }

    /// The sub-chart sections checked against a sub-chart's own values.
    pub fn subcharts(&self) -> impl Iterator<Item = &str> {
        self.subcharts.keys().map(String::as_str)
    }

    /// Key paths (dotted) of `given` that the chart does not have.
    pub fn unknown_keys(&self, given: &Value) -> Vec<String> {
        let mut out = Vec::new();
        let Some(map) = given.as_object() else { return out };
        for (key, value) in map {
            let mut known: Vec<&Value> = self.values.get(key).into_iter().collect();
            if let Some(sub) = self.subcharts.get(key) {
                known.push(sub);
            }
            check_key(key, value, &known, key, &mut out);
        }
        out
    }
}

/// Key paths of `values` that the chart whose `values.yaml` is given does not have.
pub fn unknown_keys(values: &Value, chart_values_yaml: &Path) -> Result<Vec<String>, FixtureError> {
    Ok(ChartValues::load(chart_values_yaml)?.unknown_keys(values))
}

fn open(default: &Value) -> bool {
    default.is_null() || default.as_object().is_some_and(|m| m.is_empty())
}

/// `known` holds the chart's defaults for this key (from the parent and any sub-chart).
fn check_key(key: &str, given: &Value, known: &[&Value], path: &str, out: &mut Vec<String>) {
    if known.is_empty() {
        out.push(path.to_string());
        return;
    }
    if FREE_FORM.contains(&key) || known.iter().any(|k| open(k)) {
        return;
    }
    let Some(map) = given.as_object() else { return };
    let maps: Vec<&Value> = known.iter().copied().filter(|k| k.is_object()).collect();
    if maps.is_empty() {
        return;
    }
    for (child, value) in map {
        let child_known: Vec<&Value> = maps.iter().filter_map(|m| m.get(child)).collect();
        check_key(child, value, &child_known, &format!("{path}.{child}"), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn charts() -> PathBuf {
        crate::crds::shared_k8s_dir().join("charts")
    }

    #[test]
    fn kube_prometheus_stack_keys_and_misspellings() {
        let chart = ChartValues::load(&charts().join("kube-prometheus-stack/values.yaml")).unwrap();
        assert!(chart.subcharts().any(|s| s == "prometheus-node-exporter"));
        let values = json!({
            "prometheus": {"prometheusSpec": {
                "podMonitorSelectorNilUsesHelmValues": false,
                "serviceMonitorSelectorNilUsesHelmValues": false,
                "remoteWrite": [{"url": "http://x"}],
                "additionalScrapeConfigs": [{"job_name": "x"}],
                "podMonitorSelectorNilUsesHelmValue": false
            }},
            "prometheus-node-exporter": {
                "tolerations": [{"operator": "Exists"}],
                "nodeSelector": {"kubernetes.io/os": "linux"},
                "hostRootFsMount": {"enabled": true, "mountPropagation": "HostToContainer"},
                "hostRootFsMnt": {"enabled": true},
                "podLabels": {"anything": "goes"}
            },
            "nodeExportr": {"enabled": true}
        });
        let mut unknown = chart.unknown_keys(&values);
        unknown.sort();
        assert_eq!(
            unknown,
            [
                "nodeExportr",
                "prometheus-node-exporter.hostRootFsMnt",
                "prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValue",
            ]
        );
    }

    #[test]
    fn logging_operator_keys() {
        let values = json!({
            "tolerations": [{"operator": "Exists"}],
            "monitoring": {"serviceMonitor": {"enabled": true}},
            "resources": {"limits": {"memory": "1Gi"}},
            "monitring": {}
        });
        let unknown = unknown_keys(&values, &charts().join("logging-operator/values.yaml")).unwrap();
        assert_eq!(unknown, ["monitring"]);
    }

    #[test]
    fn a_missing_values_file_is_an_error() {
        assert!(unknown_keys(&json!({}), Path::new("/nonexistent/values.yaml")).is_err());
    }
}
