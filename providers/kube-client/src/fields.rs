//! The part of a live object that one field manager owns, from `metadata.managedFields`.
//!
//! ## Overview
//!
//! Server-side apply records, per manager, the set of fields it owns as a `FieldsV1` trie:
//! - `f:<name>`: a field of a map or struct;
//! - `k:<json object>`: the element of an associative list (`containers`, `ports`) whose key
//!   fields have these values;
//! - `v:<json value>`: the element of a set-like list of scalars;
//! - `i:<index>`: the element at an index of a list without keys;
//! - `.`: the element itself (beside its fields).
//!
//! An entry without children is a leaf: the manager owns the whole value (a scalar, an atomic
//! list such as `args`, an atomic or empty map). [`project`] cuts a live object down to the
//! fields of one manager's tries (the union of its `Apply` and `Update` entries), so that what
//! Tessera applied can be compared with what is live field by field: defaults the server filled
//! in, `status`, and fields other controllers move (replicas under an HPA) are left out.

use serde_json::{Map, Value};

/// The owned part of `live` according to `manager`'s entries in its `metadata.managedFields`,
/// with `apiVersion`, `kind`, `metadata.name` and `metadata.namespace` always kept (they name the
/// object and appear in no trie). `None` when the manager owns nothing.
pub fn project(live: &Value, manager: &str) -> Option<Value> {
    let entries = live.pointer("/metadata/managedFields")?.as_array()?;
    let tries: Vec<&Value> = entries
        .iter()
        .filter(|e| e.get("manager").and_then(Value::as_str) == Some(manager))
        .filter(|e| e.get("fieldsType").and_then(Value::as_str).is_none_or(|t| t == "FieldsV1"))
        .filter_map(|e| e.get("fieldsV1"))
        .collect();
    if tries.is_empty() {
        return None;
    }
    let mut owned = Value::Object(Map::new());
    for trie in tries {
        if let Some(part) = project_value(live, trie) {
            merge(&mut owned, part);
        }
    }
    let Value::Object(out) = &mut owned else { return None };
    for key in ["apiVersion", "kind"] {
        if let Some(v) = live.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    let meta = out.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        for key in ["name", "namespace"] {
            if let Some(v) = live.pointer(&format!("/metadata/{key}")) {
                meta.insert(key.into(), v.clone());
            }
        }
    }
    Some(owned)
}

/// Whether a trie node has children other than `.`: if not, its whole value is owned.
fn is_leaf(trie: &Value) -> bool {
    trie.as_object().is_none_or(|m| m.keys().all(|k| k == "."))
}

fn project_value(live: &Value, trie: &Value) -> Option<Value> {
    if is_leaf(trie) {
        return Some(live.clone());
    }
    let children = trie.as_object()?;
    match live {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, sub) in children {
                let Some(field) = key.strip_prefix("f:") else { continue };
                if let Some(v) = map.get(field).and_then(|v| project_value(v, sub)) {
                    out.insert(field.to_string(), v);
                }
            }
            Some(Value::Object(out))
        }
        Value::Array(items) => {
            let picked: Vec<Value> = items
                .iter()
                .enumerate()
                .filter_map(|(index, item)| {
                    children
                        .iter()
                        .find(|(key, _)| selects(key, index, item))
                        .and_then(|(_, sub)| project_value(item, sub))
                })
                .collect();
            Some(Value::Array(picked))
        }
        // A trie with children over a scalar: the live value changed shape; it is still ours.
        other => Some(other.clone()),
    }
}

/// Whether the list element at `index` is the one a `k:`, `v:` or `i:` key names.
fn selects(key: &str, index: usize, item: &Value) -> bool {
    if let Some(k) = key.strip_prefix("k:") {
        let Ok(Value::Object(wanted)) = serde_json::from_str::<Value>(k) else { return false };
        wanted.iter().all(|(field, value)| item.get(field) == Some(value))
    } else if let Some(v) = key.strip_prefix("v:") {
        serde_json::from_str::<Value>(v).is_ok_and(|wanted| &wanted == item)
    } else if let Some(i) = key.strip_prefix("i:") {
        i.parse::<usize>().is_ok_and(|i| i == index)
    } else {
        false
    }
}

/// Merges the projection of a second trie into the first: maps field by field; lists and
/// scalars are taken from the later projection when the earlier has none.
fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (slot, from) => {
            if slot.is_null() || slot.as_array().is_some_and(Vec::is_empty) {
                *slot = from;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn daemonset() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {
                "name": "node-exporter",
                "namespace": "monitoring",
                "uid": "1234",
                "resourceVersion": "7",
                "labels": {"app": "node-exporter", "team": "someone-else"},
                "managedFields": [
                    {
                        "manager": "tessera",
                        "operation": "Apply",
                        "fieldsType": "FieldsV1",
                        "fieldsV1": {
                            "f:metadata": {"f:labels": {"f:app": {}}},
                            "f:spec": {
                                "f:template": {"f:spec": {
                                    "f:containers": {
                                        "k:{\"name\":\"exporter\"}": {
                                            ".": {},
                                            "f:name": {},
                                            "f:image": {},
                                            "f:args": {},
                                            "f:ports": {
                                                "k:{\"containerPort\":9100,\"protocol\":\"TCP\"}": {
                                                    ".": {}, "f:containerPort": {}
                                                }
                                            }
                                        }
                                    },
                                    "f:tolerations": {}
                                }},
                                "f:selector": {}
                            }
                        }
                    },
                    {
                        "manager": "kubectl-edit",
                        "operation": "Update",
                        "fieldsType": "FieldsV1",
                        "fieldsV1": {"f:metadata": {"f:labels": {"f:team": {}}}}
                    }
                ]
            },
            "spec": {
                "revisionHistoryLimit": 10,
                "selector": {"matchLabels": {"app": "node-exporter"}},
                "template": {"spec": {
                    "containers": [
                        {"name": "sidecar", "image": "injected:1"},
                        {
                            "name": "exporter",
                            "image": "quay.io/prometheus/node-exporter:v1.9.1",
                            "args": ["--path.rootfs=/host"],
                            "imagePullPolicy": "IfNotPresent",
                            "ports": [{"containerPort": 9100, "protocol": "TCP"}]
                        }
                    ],
                    "tolerations": [{"operator": "Exists"}],
                    "dnsPolicy": "ClusterFirst"
                }}
            },
            "status": {"numberReady": 3}
        })
    }

    #[test]
    fn keeps_exactly_the_fields_the_manager_owns() {
        let owned = project(&daemonset(), "tessera").unwrap();
        assert_eq!(
            owned,
            json!({
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "metadata": {"name": "node-exporter", "namespace": "monitoring", "labels": {"app": "node-exporter"}},
                "spec": {
                    "selector": {"matchLabels": {"app": "node-exporter"}},
                    "template": {"spec": {
                        "containers": [{
                            "name": "exporter",
                            "image": "quay.io/prometheus/node-exporter:v1.9.1",
                            "args": ["--path.rootfs=/host"],
                            "ports": [{"containerPort": 9100}]
                        }],
                        "tolerations": [{"operator": "Exists"}]
                    }}
                }
            })
        );
    }

    #[test]
    fn another_managers_fields_and_status_are_never_ours() {
        let owned = project(&daemonset(), "kubectl-edit").unwrap();
        assert_eq!(owned.pointer("/metadata/labels"), Some(&json!({"team": "someone-else"})));
        assert!(owned.get("spec").is_none() && owned.get("status").is_none());
        assert!(project(&daemonset(), "nobody").is_none());
    }

    #[test]
    fn a_changed_owned_field_shows_and_a_removed_one_disappears() {
        let mut live = daemonset();
        live["spec"]["template"]["spec"]["containers"][1]["image"] = json!("evil:latest");
        live["spec"]["template"]["spec"]["tolerations"] = json!([]);
        let owned = project(&live, "tessera").unwrap();
        assert_eq!(owned.pointer("/spec/template/spec/containers/0/image"), Some(&json!("evil:latest")));
        assert_eq!(owned.pointer("/spec/template/spec/tolerations"), Some(&json!([])));

        live["spec"]["template"]["spec"]["containers"].as_array_mut().unwrap().remove(1);
        let owned = project(&live, "tessera").unwrap();
        assert_eq!(owned.pointer("/spec/template/spec/containers"), Some(&json!([])));
    }

    #[test]
    fn set_and_index_elements_are_selected_by_value_and_position() {
        let live = json!({
            "apiVersion": "v1", "kind": "X", "metadata": {"name": "x", "managedFields": [{
                "manager": "m", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:finalizers": {"v:\"a\"": {}}, "f:list": {"i:1": {"f:b": {}}}}
            }]},
            "finalizers": ["a", "b"],
            "list": [{"b": 1, "c": 2}, {"b": 3, "c": 4}]
        });
        let owned = project(&live, "m").unwrap();
        assert_eq!(owned["finalizers"], json!(["a"]));
        assert_eq!(owned["list"], json!([{"b": 3}]));
    }

    #[test]
    fn apply_and_update_entries_of_one_manager_are_merged() {
        let live = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "managedFields": [
                {"manager": "m", "operation": "Apply", "fieldsV1": {"f:data": {"f:a": {}}}},
                {"manager": "m", "operation": "Update", "fieldsV1": {"f:data": {"f:b": {}}}}
            ]},
            "data": {"a": "1", "b": "2", "c": "3"}
        });
        assert_eq!(project(&live, "m").unwrap()["data"], json!({"a": "1", "b": "2"}));
    }
}
