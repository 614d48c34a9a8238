//! The fixture's objects and what the server sets on them.
//!
//! ## Overview
//! Objects are kept by [`Key`]: group, plural, namespace, name (not version: as on a real server
//! with conversion `None`, every served version reads the same object). [`Store::commit`] is the
//! only write: it keeps `uid` and `creationTimestamp`, bumps the store-wide `resourceVersion` only
//! when the object really changed, and `generation` when anything outside `metadata` and `status`
//! changed. A write that changes nothing leaves the object (and its resourceVersion) as it was.
//! Deleting a Namespace deletes what is in it. Every change is also an [`Event`], broadcast to
//! watches and kept in a bounded history so that a watch can start from an older
//! resourceVersion.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::registry::{self, ResourceType};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub group: String,
    pub plural: String,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    pub name: String,
}

impl Key {
    pub fn new(ty: &ResourceType, namespace: Option<&str>, name: &str) -> Key {
        Key {
            group: ty.group.clone(),
            plural: ty.plural.clone(),
            namespace: if ty.namespaced { namespace.unwrap_or_default().to_string() } else { String::new() },
            name: name.to_string(),
        }
    }
}

/// Namespaces a new cluster has.
const INITIAL_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

/// One change, as a watch streams it: `ADDED`, `MODIFIED` or `DELETED`, with the object as it
/// is after the change (a deleted object carries the resourceVersion of its deletion).
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: &'static str,
    pub key: Key,
    pub object: Value,
    pub resource_version: u64,
}

/// How many past events a watch from an older resourceVersion can be served from.
const HISTORY: usize = 2048;

pub struct Store {
    objects: BTreeMap<Key, Value>,
    last_resource_version: u64,
    builtins: Vec<ResourceType>,
    history: VecDeque<Event>,
    events: broadcast::Sender<Event>,
}

pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

impl Store {
    pub fn new() -> Store {
        let mut store = Store {
            objects: BTreeMap::new(),
            last_resource_version: 0,
            builtins: registry::builtins(),
            history: VecDeque::new(),
            events: broadcast::channel(HISTORY).0,
        };
        for ns in INITIAL_NAMESPACES {
            let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            store.write_namespace(ns, object);
        }
        store
    }

    fn write_namespace(&mut self, name: &str, object: Value) {
        if let Some(ty) = self.builtins.iter().find(|t| t.kind == "Namespace").cloned() {
            self.commit(Key::new(&ty, None, name), object);
        }
    }

    pub fn resource_version(&self) -> u64 {
        self.last_resource_version
    }

    /// Built-in types and those of every established CRD.
    pub fn resource_types(&self) -> Vec<ResourceType> {
        let mut types = self.builtins.clone();
        for crd in self.crds() {
            if registry::crd_established(crd) {
                types.extend(registry::crd_resource_types(crd));
            }
        }
        types
    }

    pub fn find_type(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.resource_types().into_iter().find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<ResourceType> {
        self.resource_types().into_iter().find(|t| t.api_version() == api_version && t.kind == kind)
    }

    pub fn crds(&self) -> impl Iterator<Item = &Value> {
        self.objects.iter().filter(|(k, _)| k.group == "apiextensions.k8s.io").map(|(_, v)| v)
    }

    /// The stored CRD that defines `group`/`kind`.
    pub fn crd_for(&self, group: &str, kind: &str) -> Option<&Value> {
        self.crds().find(|c| {
            c.pointer("/spec/group").and_then(Value::as_str) == Some(group)
                && c.pointer("/spec/names/kind").and_then(Value::as_str) == Some(kind)
        })
    }

    /// The schema that decides a custom kind's list types (`None` for built-in kinds).
    pub fn list_schema(&self, ty: &ResourceType) -> Option<Value> {
        if ty.builtin {
            return None;
        }
        crate::crds::version_schema(self.crd_for(&ty.group, &ty.kind)?, &ty.version).cloned()
    }

    pub fn get(&self, key: &Key) -> Option<&Value> {
        self.objects.get(key)
    }

    pub fn all(&self) -> impl Iterator<Item = &Value> {
        self.objects.values()
    }

    /// Objects of one resource, in one namespace or (None) in all.
    pub fn list(&self, group: &str, plural: &str, namespace: Option<&str>) -> Vec<&Value> {
        self.objects
            .iter()
            .filter(|(k, _)| k.group == group && k.plural == plural && namespace.is_none_or(|ns| k.namespace == ns))
            .map(|(_, v)| v)
            .collect()
    }

    pub fn namespace_exists(&self, name: &str) -> bool {
        self.objects.keys().any(|k| k.group.is_empty() && k.plural == "namespaces" && k.name == name)
    }

    /// Stores `new` under `key` (see the module docs) and returns the stored object.
    pub fn commit(&mut self, key: Key, mut new: Value) -> Value {
        let old = self.objects.get(&key);
        if let Some(old) = old {
            if normalized(old) == normalized(&new) {
                return old.clone();
            }
        }
        let (uid, created, generation) = match old {
            Some(old) => {
                let meta = |k: &str| old.pointer(&format!("/metadata/{k}")).cloned().unwrap_or(Value::Null);
                let generation = meta("generation").as_i64().unwrap_or(1);
                let bump = i64::from(without_meta_and_status(old) != without_meta_and_status(&new));
                (meta("uid"), meta("creationTimestamp"), generation + bump)
            }
            None => (Value::String(uuid::Uuid::new_v4().to_string()), Value::String(now()), 1),
        };
        self.last_resource_version += 1;
        if let Some(meta) = metadata_mut(&mut new) {
            meta.insert("uid".into(), uid);
            meta.insert("creationTimestamp".into(), created);
            meta.insert("generation".into(), json!(generation));
            meta.insert("resourceVersion".into(), Value::String(self.last_resource_version.to_string()));
        }
        if key.group.is_empty() && key.plural == "namespaces" {
            set_namespace_defaults(&mut new, &key.name);
        }
        let kind = if self.objects.insert(key.clone(), new.clone()).is_some() { "MODIFIED" } else { "ADDED" };
        self.publish(kind, key, new.clone());
        new
    }

    fn publish(&mut self, kind: &'static str, key: Key, object: Value) {
        let event = Event { kind, key, object, resource_version: self.last_resource_version };
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(event.clone());
        // No receiver is not an error: nobody is watching.
        let _ = self.events.send(event);
    }

    /// Future events, and the past ones after `resource_version` (`None` when that is older than
    /// the history kept: the watch must re-list, as a real server answers 410 Gone).
    pub fn watch(&self, resource_version: u64) -> Option<(Vec<Event>, broadcast::Receiver<Event>)> {
        let oldest = self.history.front().map_or(self.last_resource_version, |e| e.resource_version.saturating_sub(1));
        if resource_version < oldest {
            return None;
        }
        let past = self.history.iter().filter(|e| e.resource_version > resource_version).cloned().collect();
        Some((past, self.events.subscribe()))
    }

    /// Removes an object (a Namespace with everything in it); returns it.
    pub fn delete(&mut self, key: &Key) -> Option<Value> {
        let removed = self.remove(key)?;
        if key.group.is_empty() && key.plural == "namespaces" {
            let inside: Vec<Key> = self.objects.keys().filter(|k| k.namespace == key.name).cloned().collect();
            for k in inside {
                self.remove(&k);
            }
        }
        Some(removed)
    }

    fn remove(&mut self, key: &Key) -> Option<Value> {
        let mut removed = self.objects.remove(key)?;
        self.last_resource_version += 1;
        if let Some(meta) = metadata_mut(&mut removed) {
            meta.insert("resourceVersion".into(), Value::String(self.last_resource_version.to_string()));
        }
        self.publish("DELETED", key.clone(), removed.clone());
        Some(removed)
    }
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

pub fn metadata_mut(object: &mut Value) -> Option<&mut Map<String, Value>> {
    let map = object.as_object_mut()?;
    map.entry("metadata").or_insert_with(|| Value::Object(Map::new())).as_object_mut()
}

/// What a Namespace always has on a real server.
fn set_namespace_defaults(object: &mut Value, name: &str) {
    if let Some(meta) = metadata_mut(object) {
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert("kubernetes.io/metadata.name".into(), Value::String(name.to_string()));
        }
    }
    if let Some(map) = object.as_object_mut() {
        map.entry("spec").or_insert_with(|| json!({"finalizers": ["kubernetes"]}));
        map.entry("status").or_insert_with(|| json!({"phase": "Active"}));
    }
}

/// The object without what the server sets, to tell a no-op write.
fn normalized(object: &Value) -> Value {
    let mut v = object.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in ["uid", "creationTimestamp", "generation", "resourceVersion"] {
            meta.remove(k);
        }
        if let Some(entries) = meta.get_mut("managedFields").and_then(Value::as_array_mut) {
            for e in entries.iter_mut().filter_map(Value::as_object_mut) {
                e.remove("time");
            }
        }
    }
    v
}

fn without_meta_and_status(object: &Value) -> Value {
    let mut v = object.clone();
    if let Some(map) = v.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm_key() -> Key {
        Key { group: String::new(), plural: "configmaps".into(), namespace: "default".into(), name: "a".into() }
    }

    #[test]
    fn resource_version_and_generation_move_only_on_change() {
        let mut store = Store::new();
        let first = store.commit(cm_key(), json!({"metadata": {"name": "a"}, "data": {"k": "1"}}));
        let rv1: u64 = first["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap();
        assert_eq!(first["metadata"]["generation"], 1);
        let same = store.commit(cm_key(), first.clone());
        assert_eq!(same["metadata"]["resourceVersion"], first["metadata"]["resourceVersion"]);
        let mut changed = first.clone();
        changed["data"]["k"] = json!("2");
        let second = store.commit(cm_key(), changed);
        let rv2: u64 = second["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap();
        assert!(rv2 > rv1);
        assert_eq!(second["metadata"]["generation"], 2);
        assert_eq!(second["metadata"]["uid"], first["metadata"]["uid"]);
        let mut labelled = second.clone();
        labelled["metadata"]["labels"] = json!({"x": "y"});
        assert_eq!(store.commit(cm_key(), labelled)["metadata"]["generation"], 2, "metadata is not spec");
    }

    #[test]
    fn deleting_a_namespace_deletes_its_objects() {
        let mut store = Store::new();
        store.commit(cm_key(), json!({"metadata": {"name": "a"}}));
        let ns =
            Key { group: String::new(), plural: "namespaces".into(), namespace: String::new(), name: "default".into() };
        assert!(store.delete(&ns).is_some());
        assert!(store.get(&cm_key()).is_none());
        assert!(!store.namespace_exists("default"));
    }
}
