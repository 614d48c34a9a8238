//! What `helm template` printed, made into the objects Tessera applies.
//!
//! ## Overview
//!
//! [`split`] parses the multi-document YAML stream (serde-saphyr) into JSON objects, dropping
//! empty documents (templates that render nothing) and refusing anything that is not an object
//! with `apiVersion`, `kind` and `metadata.name`. [`refuse_hooks`] fails closed on Helm hooks
//! (see the crate docs). [`label`] adds the release labels. [`phase`] orders an apply: CRDs, then
//! Namespaces, then everything else, because the rest may be of the CRDs' kinds or live in the
//! Namespaces.

use serde_json::{Map, Value};
use tessera_kube::contract::{FIELD_MANAGER, LABEL_MANAGED_BY, LABEL_RELEASE};

use crate::error::KubeError;

/// Helm's hook annotation: an object carrying it is run by `helm install` in a phase, not installed.
pub const HOOK_ANNOTATION: &str = "helm.sh/hook";

/// The budget for one rendered release: kube-prometheus-stack with its CRDs is several MB of
/// YAML and well over the parser's default node budget, which is meant for configuration files.
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_documents: 20_000,
            max_nodes: 20_000_000,
            max_events: 50_000_000,
            max_depth: 256,
        },
    }
}

/// The objects of a rendered chart, in the order helm printed them.
pub fn split(rendered: &str) -> Result<Vec<Value>, KubeError> {
    let docs: Vec<Value> = serde_saphyr::from_multiple_with_options(rendered, options())
        .map_err(|e| KubeError::Render(format!("helm printed YAML that does not parse: {e}")))?;
    let mut out = Vec::new();
    for (index, doc) in docs.into_iter().enumerate() {
        match doc {
            Value::Null => {}
            Value::Object(map) if map.is_empty() => {}
            Value::Object(map) => {
                let doc = Value::Object(map);
                if tessera_kube::contract::id_of(&doc).is_none() {
                    return Err(KubeError::Render(format!(
                        "rendered document {} has no apiVersion, kind or metadata.name",
                        index + 1
                    )));
                }
                out.push(doc);
            }
            _ => return Err(KubeError::Render(format!("rendered document {} is not an object", index + 1))),
        }
    }
    Ok(out)
}

fn kind_and_name(obj: &Value) -> String {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("?");
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("?");
    format!("{kind} {name}")
}

/// Refuses every object that still carries a Helm hook annotation, naming them all: Tessera
/// does not run hooks, so the values must turn them off.
pub fn refuse_hooks(objects: &[Value]) -> Result<(), KubeError> {
    let hooks: Vec<String> = objects
        .iter()
        .filter_map(|o| {
            let hook = o.pointer("/metadata/annotations")?.get(HOOK_ANNOTATION)?.as_str()?;
            Some(format!("{} ({HOOK_ANNOTATION}: {hook})", kind_and_name(o)))
        })
        .collect();
    if hooks.is_empty() {
        return Ok(());
    }
    Err(KubeError::Render(format!(
        "the chart renders Helm hooks, which Tessera does not run: {}; turn them off through the \
         release's values (for kube-prometheus-stack: prometheusOperator.admissionWebhooks)",
        hooks.join(", ")
    )))
}

/// The `tessera.dev/release` label value of a release: its id `<namespace>/<name>` with `_` for
/// the `/`, which a label value may not hold (neither namespaces nor release names hold `_`).
/// Longer than a label value may be (63), it keeps a prefix and a hash of the whole.
pub fn release_label(release_id: &str) -> String {
    tessera_kube::contract::label_value(release_id)
}

/// Adds the release's labels (`managed-by`, and the release label).
pub fn label(obj: &mut Value, release_label: &str) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else { return };
    let labels = meta.entry("labels").or_insert_with(|| Value::Object(Map::new()));
    if !labels.is_object() {
        *labels = Value::Object(Map::new());
    }
    if let Value::Object(labels) = labels {
        labels.insert(LABEL_MANAGED_BY.into(), FIELD_MANAGER.into());
        labels.insert(LABEL_RELEASE.into(), release_label.into());
    }
}

/// Sets `namespace` on an object of a namespaced kind that has none (helm leaves it to the
/// client, as `kubectl apply -n` would).
pub fn default_namespace(obj: &mut Value, namespace: &str) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        let missing = meta.get("namespace").and_then(Value::as_str).is_none_or(str::is_empty);
        if missing {
            meta.insert("namespace".into(), namespace.into());
        }
    }
}

/// When an object is applied within a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Crds,
    Namespaces,
    Rest,
}

pub fn phase(obj: &Value) -> Phase {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    match (api_version, obj.get("kind").and_then(Value::as_str).unwrap_or("")) {
        (a, "CustomResourceDefinition") if a.starts_with("apiextensions.k8s.io/") => Phase::Crds,
        ("v1", "Namespace") => Phase::Namespaces,
        _ => Phase::Rest,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const RENDERED: &str = r#"---
# Source: chart/templates/empty.yaml
---
# Source: chart/crds/crd.yaml
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  enabled: "true"
---
---
apiVersion: v1
kind: Namespace
metadata:
  name: monitoring
"#;

    #[test]
    fn splits_the_stream_and_drops_empty_documents() {
        let objects = split(RENDERED).unwrap();
        let kinds: Vec<&str> = objects.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["CustomResourceDefinition", "ConfigMap", "Namespace"]);
        assert_eq!(objects[1]["data"]["enabled"], json!("true"), "quoted scalars stay strings");
    }

    #[test]
    fn a_document_without_a_name_or_that_is_not_an_object_is_refused() {
        let err = split("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n").unwrap_err().to_string();
        assert!(err.contains("document 1"), "{err}");
        assert!(split("---\n- a\n- b\n").is_err());
        assert!(split("a: [unclosed\n").unwrap_err().to_string().contains("does not parse"));
    }

    #[test]
    fn the_real_crds_parse_within_the_budget() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/k8s/crds");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            panic!("the shared CRDs are at {}", dir.display());
        };
        let mut all = String::new();
        let mut files = 0;
        for e in entries {
            all.push_str("---\n");
            all.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap());
            files += 1;
        }
        let objects = split(&all).unwrap();
        // One CRD per file: however many ../shared holds (11, then 13 with Alertmanager's).
        assert!(files >= 11, "{files} CRD files");
        assert_eq!(objects.len(), files);
        assert!(objects.iter().all(|o| phase(o) == Phase::Crds));
    }

    #[test]
    fn hooks_are_refused_by_name() {
        let objects = vec![
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fine"}}),
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {
                "name": "kps-admission-create",
                "annotations": {"helm.sh/hook": "pre-install,pre-upgrade"}
            }}),
        ];
        let err = refuse_hooks(&objects).unwrap_err().to_string();
        assert!(err.contains("Job kps-admission-create (helm.sh/hook: pre-install,pre-upgrade)"), "{err}");
        assert!(refuse_hooks(&objects[..1]).is_ok());
    }

    #[test]
    fn release_labels_are_valid_label_values() {
        assert_eq!(release_label("monitoring/kps"), "monitoring_kps");
        let long = format!("{}/{}", "n".repeat(40), "r".repeat(40));
        let l = release_label(&long);
        assert!(l.len() <= 63, "{l}");
        assert_ne!(l, release_label(&format!("{}/{}", "n".repeat(40), "s".repeat(40))));
        let valid = |s: &str| {
            s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                && s.starts_with(|c: char| c.is_ascii_alphanumeric())
                && s.ends_with(|c: char| c.is_ascii_alphanumeric())
        };
        assert!(valid(&l) && valid(&release_label("monitoring/kps")), "{l}");
    }

    #[test]
    fn labels_and_namespaces_are_added_without_losing_what_is_there() {
        let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "b"}}});
        label(&mut obj, "monitoring_kps");
        default_namespace(&mut obj, "monitoring");
        assert_eq!(
            obj["metadata"],
            json!({"name": "c", "namespace": "monitoring", "labels": {
                "a": "b", "app.kubernetes.io/managed-by": "tessera", "tessera.dev/release": "monitoring_kps"
            }})
        );
        let mut other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "x"}});
        default_namespace(&mut other, "monitoring");
        assert_eq!(other["metadata"]["namespace"], json!("x"));
    }

    #[test]
    fn crds_come_first_then_namespaces() {
        let mut objects = split(RENDERED).unwrap();
        objects.sort_by_key(phase);
        let kinds: Vec<&str> = objects.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["CustomResourceDefinition", "Namespace", "ConfigMap"]);
    }
}
