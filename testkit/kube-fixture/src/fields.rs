//! Field sets in the `FieldsV1` format of `metadata.managedFields`.
//!
//! ## Overview
//! A [`FieldSet`] is a set of paths into an object. A path element is `f:<key>` for a map key,
//! `k:{"name":"c"}` for the item of an associative list (a "list-map"), or `.` for the node
//! itself (a list item, or, for updates, a map that was set). Atomic lists and scalars are
//! leaves. Serialised as `FieldsV1`, a set is a tree of JSON objects whose leaves are `{}`, as the
//! real API server writes it.
//!
//! Which lists are list-maps is not in the object: a real server takes it from the schema. The
//! fixture uses the keys of the built-in kinds that Tessera's objects use (`containers` by
//! `name`, container `ports` by `containerPort`+`protocol`, `volumeMounts` by `mountPath`,
//! `conditions` by `type`, ...), and otherwise a list whose items are all maps with a `name`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

pub type Path = Vec<String>;

/// The node-itself marker.
pub const SELF: &str = ".";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet(BTreeSet<Path>);

impl FieldSet {
    /// The fields set in `value`. With `map_markers`, maps get a `.` too (as updates record them).
    pub fn of(value: &Value, map_markers: bool, lists: Lists) -> FieldSet {
        let mut set = BTreeSet::new();
        collect(value, &mut Vec::new(), lists, map_markers, &mut set);
        FieldSet(set)
    }

    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.0.iter()
    }

    pub fn contains(&self, path: &Path) -> bool {
        self.0.contains(path)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn insert(&mut self, path: Path) {
        self.0.insert(path);
    }

    pub fn remove(&mut self, path: &Path) {
        self.0.remove(path);
    }

    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.difference(&other.0).cloned().collect())
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.union(&other.0).cloned().collect())
    }

    pub fn retain(&mut self, keep: impl Fn(&Path) -> bool) {
        self.0.retain(|p| keep(p));
    }

    /// Some path in the set starts with `prefix`.
    pub fn has_prefix(&self, prefix: &[String]) -> bool {
        self.0.iter().any(|p| p.starts_with(prefix))
    }

    /// The set as a `FieldsV1` tree.
    pub fn to_fields_v1(&self) -> Value {
        #[derive(Default)]
        struct Node(BTreeMap<String, Node>);
        fn to_value(node: &Node) -> Value {
            Value::Object(node.0.iter().map(|(k, child)| (k.clone(), to_value(child))).collect())
        }
        let mut root = Node::default();
        for path in &self.0 {
            let mut node = &mut root;
            for element in path {
                node = node.0.entry(element.clone()).or_default();
            }
        }
        to_value(&root)
    }

    /// Reads a `FieldsV1` tree; anything that is not an object of objects is ignored.
    pub fn from_fields_v1(tree: &Value) -> FieldSet {
        fn walk(node: &Map<String, Value>, prefix: &mut Path, out: &mut BTreeSet<Path>) {
            for (key, child) in node {
                prefix.push(key.clone());
                match child.as_object() {
                    Some(m) if !m.is_empty() => walk(m, prefix, out),
                    _ => {
                        out.insert(prefix.clone());
                    }
                }
                prefix.pop();
            }
        }
        let mut out = BTreeSet::new();
        if let Some(m) = tree.as_object() {
            walk(m, &mut Vec::new(), &mut out);
        }
        FieldSet(out)
    }
}

fn collect(value: &Value, prefix: &mut Path, lists: Lists, map_markers: bool, out: &mut BTreeSet<Path>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            if map_markers && !prefix.is_empty() {
                out.insert(with(prefix, SELF));
            }
            for (key, child) in map {
                prefix.push(format!("f:{key}"));
                collect(child, prefix, lists, map_markers, out);
                prefix.pop();
            }
        }
        Value::Array(items) if lists.keys(prefix, items).is_some() => {
            let keys = lists.keys(prefix, items).unwrap_or_default();
            for item in items {
                prefix.push(item_key(item, &keys));
                out.insert(with(prefix, SELF));
                if let Value::Object(map) = item {
                    for (key, child) in map {
                        prefix.push(format!("f:{key}"));
                        collect(child, prefix, lists, map_markers, out);
                        prefix.pop();
                    }
                }
                prefix.pop();
            }
        }
        _ => {
            if !prefix.is_empty() {
                out.insert(prefix.clone());
            }
        }
    }
}

fn with(prefix: &[String], element: &str) -> Path {
    let mut p = prefix.to_vec();
    p.push(element.to_string());
    p
}

/// Which lists are associative, and by which keys.
#[derive(Debug, Clone, Copy)]
pub enum Lists<'a> {
    /// The built-in kinds' list-maps, known by field name (see the module docs).
    Builtin,
    /// A CRD version's `openAPIV3Schema`: a list is a list-map only when its schema says
    /// `x-kubernetes-list-type: map` (its keys in `x-kubernetes-list-map-keys`); any other list
    /// is atomic, as for a real server.
    Schema(&'a Value),
}

impl<'a> Lists<'a> {
    /// `Schema` when there is one (a custom kind), else `Builtin`.
    pub fn from_schema(schema: Option<&'a Value>) -> Lists<'a> {
        schema.map_or(Lists::Builtin, Lists::Schema)
    }

    /// The keys of the list at `path` (a field path), or `None` for an atomic list.
    pub fn keys(&self, path: &[String], items: &[Value]) -> Option<Vec<String>> {
        if items.is_empty() || !items.iter().all(Value::is_object) {
            return None;
        }
        let keys = match self {
            Lists::Builtin => builtin_list_keys(path.last()?.strip_prefix("f:")?, items)?,
            Lists::Schema(root) => schema_list_keys(root, path)?,
        };
        let first = keys.first()?;
        items.iter().all(|i| i.get(first).is_some()).then_some(keys)
    }
}

fn builtin_list_keys(field: &str, items: &[Value]) -> Option<Vec<String>> {
    let all_have = |k: &str| items.iter().all(|i| i.get(k).is_some());
    let keys: &[&str] = match field {
        "ports" if all_have("containerPort") => &["containerPort", "protocol"],
        "ports" if all_have("port") => &["port", "protocol"],
        "volumeMounts" => &["mountPath"],
        "volumeDevices" => &["devicePath"],
        "conditions" => &["type"],
        "hostAliases" => &["ip"],
        "topologySpreadConstraints" => &["topologyKey", "whenUnsatisfiable"],
        "tolerations" | "rules" | "subjects" | "args" | "command" | "matchExpressions" => return None,
        _ if all_have("name") => &["name"],
        _ => return None,
    };
    Some(keys.iter().map(|k| k.to_string()).collect())
}

fn schema_list_keys(root: &Value, path: &[String]) -> Option<Vec<String>> {
    let mut node = root;
    for element in path.iter().filter(|e| *e != SELF) {
        node = match element.strip_prefix("f:") {
            Some(key) => match node.get("properties").and_then(|p| p.get(key)) {
                Some(child) => child,
                None => node.get("additionalProperties").filter(|a| a.is_object())?,
            },
            None => node.get("items")?,
        };
    }
    if node.get("x-kubernetes-list-type").and_then(Value::as_str) != Some("map") {
        return None;
    }
    let keys = node.get("x-kubernetes-list-map-keys")?.as_array()?;
    Some(keys.iter().filter_map(Value::as_str).map(str::to_string).collect())
}

/// `k:{"name":"c"}`: the item's key fields (those it has), sorted, as compact JSON.
pub fn item_key(item: &Value, keys: &[String]) -> String {
    let fields: BTreeMap<&str, &Value> =
        keys.iter().filter_map(|k| item.get(k.as_str()).map(|v| (k.as_str(), v))).collect();
    format!("k:{}", serde_json::to_string(&fields).unwrap_or_default())
}

/// The list item in `items` (the list at `list_path`) whose key element is `element`.
fn find_item(items: &[Value], list_path: &[String], lists: Lists, element: &str) -> Option<usize> {
    let keys = lists.keys(list_path, items)?;
    items.iter().position(|i| item_key(i, &keys) == element)
}

/// The value a path names, if present. A trailing `.` names the node itself.
pub fn value_at<'a>(value: &'a Value, path: &[String], lists: Lists) -> Option<&'a Value> {
    let mut node = value;
    for (i, element) in path.iter().enumerate() {
        if element == SELF {
            return Some(node);
        }
        node = match element.strip_prefix("f:") {
            Some(key) => node.get(key)?,
            None => {
                let items = node.as_array()?;
                &items[find_item(items, &path[..i], lists, element)?]
            }
        };
    }
    Some(node)
}

/// Removes the field or list item a path names (a trailing `.` removes the node itself).
pub fn remove_at(value: &mut Value, path: &[String], lists: Lists) {
    let path: Vec<String> = path.iter().filter(|e| *e != SELF).cloned().collect();
    let Some((last, parents)) = path.split_last() else { return };
    let mut node = value;
    for (i, element) in parents.iter().enumerate() {
        let next = match element.strip_prefix("f:") {
            Some(key) => node.get_mut(key),
            None => {
                let index = node.as_array().and_then(|items| find_item(items, &path[..i], lists, element));
                match (index, node.as_array_mut()) {
                    (Some(i), Some(items)) => items.get_mut(i),
                    _ => None,
                }
            }
        };
        match next {
            Some(n) => node = n,
            None => return,
        }
    }
    if let Some(key) = last.strip_prefix("f:") {
        if let Some(map) = node.as_object_mut() {
            map.remove(key);
        }
    } else if let Some(i) = node.as_array().and_then(|items| find_item(items, parents, lists, last)) {
        if let Some(items) = node.as_array_mut() {
            items.remove(i);
        }
    }
}

/// A path as a real server prints it in conflicts: `.spec.containers[name="c"].image`.
pub fn display(path: &[String]) -> String {
    let mut out = String::new();
    for element in path {
        if let Some(key) = element.strip_prefix("f:") {
            out.push('.');
            out.push_str(key);
        } else if let Some(key) = element.strip_prefix("k:") {
            let fields: BTreeMap<String, Value> = serde_json::from_str(key).unwrap_or_default();
            let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("[{}]", parts.join(",")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(elements: &[&str]) -> Path {
        elements.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn containers_are_keyed_by_name_and_ports_by_port_and_protocol() {
        let obj = json!({"spec": {"containers": [
            {"name": "c", "image": "i", "ports": [{"containerPort": 9100, "protocol": "TCP"}], "args": ["a"]}
        ]}});
        let set = FieldSet::of(&obj, false, Lists::Builtin);
        let c = "k:{\"name\":\"c\"}";
        let port = "k:{\"containerPort\":9100,\"protocol\":\"TCP\"}";
        assert!(set.contains(&p(&["f:spec", "f:containers", c, "."])));
        assert!(set.contains(&p(&["f:spec", "f:containers", c, "f:image"])));
        assert!(set.contains(&p(&["f:spec", "f:containers", c, "f:args"])), "atomic list is a leaf");
        assert!(set.contains(&p(&["f:spec", "f:containers", c, "f:ports", port, "f:containerPort"])));
        assert!(!set.contains(&p(&["f:spec", "."])), "apply sets mark no maps");
        let tree = set.to_fields_v1();
        assert_eq!(tree["f:spec"]["f:containers"][c]["."], json!({}));
        assert_eq!(FieldSet::from_fields_v1(&tree), set);
    }

    #[test]
    fn update_sets_mark_maps_and_tolerations_are_atomic() {
        let obj = json!({"metadata": {"labels": {"a": "b"}}, "spec": {"tolerations": [{"operator": "Exists"}]}});
        let set = FieldSet::of(&obj, true, Lists::Builtin);
        assert!(set.contains(&p(&["f:metadata", "f:labels", "."])));
        assert!(set.contains(&p(&["f:spec", "f:tolerations"])));
    }

    #[test]
    fn paths_reach_and_remove_list_items() {
        let mut obj = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        let b = p(&["f:spec", "f:containers", "k:{\"name\":\"b\"}", "f:image"]);
        assert_eq!(value_at(&obj, &b, Lists::Builtin), Some(&json!("y")));
        assert_eq!(display(&b), ".spec.containers[name=\"b\"].image");
        remove_at(&mut obj, &p(&["f:spec", "f:containers", "k:{\"name\":\"a\"}", "."]), Lists::Builtin);
        assert_eq!(obj, json!({"spec": {"containers": [{"name": "b", "image": "y"}]}}));
    }

    #[test]
    fn custom_resource_lists_are_atomic_unless_the_schema_says_map() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "tailers": {"type": "array", "items": {"type": "object"}},
            "keyed": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
                      "items": {"type": "object"}}}}}});
        let obj = json!({"spec": {"tailers": [{"name": "a"}], "keyed": [{"id": "x", "v": 1}]}});
        let set = FieldSet::of(&obj, false, Lists::Schema(&schema));
        assert!(set.contains(&p(&["f:spec", "f:tailers"])), "no list-type: atomic, even with names");
        assert!(set.contains(&p(&["f:spec", "f:keyed", "k:{\"id\":\"x\"}", "f:v"])));
    }
}
