//! Server-side apply and field ownership: how a write changes an object and its
//! `metadata.managedFields`.
//!
//! ## Overview
//! Every write has a manager and a scope (the main resource, or the `status` subresource).
//! - **Apply** (`PATCH` with `application/apply-patch+yaml`): the manager's Apply entry becomes
//!   exactly the fields of the applied configuration. Fields it owned before and no longer sends
//!   are removed unless another manager owns them. A field another manager owns with a different
//!   value is a conflict: refused, or taken over with `force=true`. Maps merge key by key,
//!   list-maps item by item (see [`crate::fields`]), everything else is replaced.
//! - **Update** (create, replace, merge and JSON patches): the manager's Update entry gains the
//!   fields whose value changed, which other managers lose; fields that disappeared leave every
//!   entry.
//!
//! The identity and server-set fields (`apiVersion`, `kind`, `metadata.name`, `uid`,
//! `resourceVersion`, ...) are never owned, as on a real server. On a kind with a status
//! subresource the main resource never writes `status`, and `/status` writes nothing else.

use serde_json::{Map, Value, json};

use crate::fields::{self, FieldSet, Lists, Path, SELF};

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The main resource; `true` when the kind has a status subresource (status is kept).
    Main {
        status_subresource: bool,
    },
    Status,
}

impl Scope {
    fn subresource(self) -> Option<&'static str> {
        match self {
            Scope::Main { .. } => None,
            Scope::Status => Some("status"),
        }
    }
}

/// A server-side apply conflict: (manager, field path as printed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub manager: String,
    pub field: String,
}

#[derive(Debug, Clone)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    subresource: Option<String>,
    time: String,
    fields: FieldSet,
}

fn read_entries(object: &Value) -> Vec<Entry> {
    let Some(list) = object.pointer("/metadata/managedFields").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .map(|e| {
            let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            Entry {
                manager: s("manager"),
                operation: s("operation"),
                api_version: s("apiVersion"),
                subresource: e.get("subresource").and_then(Value::as_str).map(str::to_string),
                time: s("time"),
                fields: FieldSet::from_fields_v1(e.get("fieldsV1").unwrap_or(&Value::Null)),
            }
        })
        .collect()
}

fn write_entries(object: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": e.fields.to_fields_v1(),
            });
            if let (Some(sub), Some(map)) = (&e.subresource, v.as_object_mut()) {
                map.insert("subresource".into(), Value::String(sub.clone()));
            }
            v
        })
        .collect();
    if let Some(meta) = metadata_mut(object) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

fn metadata_mut(object: &mut Value) -> Option<&mut Map<String, Value>> {
    let map = object.as_object_mut()?;
    map.entry("metadata").or_insert_with(|| Value::Object(Map::new())).as_object_mut()
}

const SERVER_METADATA: [&str; 9] = [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
];

/// The part of `object` that `scope` may write, without the fields no manager owns.
fn scoped(object: &Value, scope: Scope) -> Value {
    let mut out = Map::new();
    let Some(map) = object.as_object() else { return Value::Object(out) };
    match scope {
        Scope::Status => {
            if let Some(status) = map.get("status") {
                out.insert("status".into(), status.clone());
            }
        }
        Scope::Main { status_subresource } => {
            for (key, value) in map {
                match key.as_str() {
                    "apiVersion" | "kind" => {}
                    "status" if status_subresource => {}
                    "metadata" => {
                        let mut meta = value.as_object().cloned().unwrap_or_default();
                        meta.retain(|k, _| !SERVER_METADATA.contains(&k.as_str()));
                        if !meta.is_empty() {
                            out.insert(key.clone(), Value::Object(meta));
                        }
                    }
                    _ => {
                        out.insert(key.clone(), value.clone());
                    }
                }
            }
        }
    }
    Value::Object(out)
}

/// Merges `applied` into `live` (at field path `path`): maps by key, list-maps by item key, the
/// rest replaced.
fn merge(live: &mut Value, applied: &Value, path: &mut Path, lists: Lists) {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => {
            for (key, value) in a {
                match l.get_mut(key) {
                    Some(existing) => {
                        path.push(format!("f:{key}"));
                        merge(existing, value, path, lists);
                        path.pop();
                    }
                    None => {
                        l.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (Value::Array(l), Value::Array(a)) => match (lists.keys(path, a), lists.keys(path, l)) {
            (Some(keys), Some(_)) => {
                for item in a {
                    let key = fields::item_key(item, &keys);
                    match l.iter_mut().find(|i| fields::item_key(i, &keys) == key) {
                        Some(existing) => {
                            path.push(key);
                            merge(existing, item, path, lists);
                            path.pop();
                        }
                        None => l.push(item.clone()),
                    }
                }
            }
            _ => *l = a.clone(),
        },
        (live, applied) => *live = applied.clone(),
    }
}

/// Removes from `object` the paths of `gone` that no set in `kept` still holds (fields first,
/// then list items and maps, and those only when nothing under them is kept).
fn prune(object: &mut Value, gone: &FieldSet, kept: &FieldSet, lists: Lists) {
    let (markers, leaves): (Vec<&Path>, Vec<&Path>) = gone.paths().partition(|p| p.last().is_some_and(|e| e == SELF));
    for path in leaves {
        if !kept.contains(path) {
            fields::remove_at(object, path, lists);
        }
    }
    let mut markers: Vec<&Path> = markers;
    markers.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for path in markers {
        let node = &path[..path.len() - 1];
        if !kept.has_prefix(node) {
            fields::remove_at(object, path, lists);
        }
    }
}

/// Who an entry of managedFields belongs to.
struct Owner<'a> {
    manager: &'a str,
    operation: &'static str,
    subresource: Option<String>,
    api_version: String,
}

/// Sets the owner's entry to `fields(previous fields)`, its time to `now` when `touched`.
fn upsert(
    entries: &mut Vec<Entry>,
    owner: Owner,
    fields: impl FnOnce(&FieldSet) -> FieldSet,
    touched: bool,
    now: &str,
) {
    let found = entries
        .iter_mut()
        .find(|e| e.manager == owner.manager && e.operation == owner.operation && e.subresource == owner.subresource);
    match found {
        Some(entry) => {
            if touched {
                entry.time = now.to_string();
            }
            entry.fields = fields(&entry.fields);
            entry.api_version = owner.api_version;
        }
        None => entries.push(Entry {
            manager: owner.manager.to_string(),
            operation: owner.operation.to_string(),
            api_version: owner.api_version,
            subresource: owner.subresource,
            time: now.to_string(),
            fields: fields(&FieldSet::default()),
        }),
    }
}

/// The result of server-side applying `applied` by `manager` onto `live` (`None`: creation).
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    scope: Scope,
    lists: Lists,
    now: &str,
) -> Result<Value, Vec<Conflict>> {
    let mut object = live.cloned().unwrap_or_else(|| json!({}));
    let mut entries = read_entries(&object);
    let config = scoped(applied, scope);
    let new_set = FieldSet::of(&config, false, lists);
    let subresource = scope.subresource().map(str::to_string);
    let is_mine = |e: &Entry| e.manager == manager && e.operation == "Apply" && e.subresource == subresource;

    let mut conflicts = Vec::new();
    for entry in entries.iter_mut().filter(|e| e.manager != manager) {
        let clashing: Vec<Path> = new_set
            .paths()
            .filter(|p| p.last().is_some_and(|e| e != SELF))
            .filter(|p| entry.fields.contains(p))
            .filter(|p| fields::value_at(&object, p, lists) != fields::value_at(&config, p, lists))
            .cloned()
            .collect();
        for path in clashing {
            conflicts.push(Conflict { manager: entry.manager.clone(), field: fields::display(&path) });
            entry.fields.remove(&path);
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }

    let previous = entries.iter().find(|e| is_mine(e)).map(|e| e.fields.clone()).unwrap_or_default();
    let others = entries.iter().filter(|e| !is_mine(e)).fold(FieldSet::default(), |acc, e| acc.union(&e.fields));
    prune(&mut object, &previous.difference(&new_set), &others.union(&new_set), lists);
    merge(&mut object, &config, &mut Vec::new(), lists);

    let api_version = applied.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_string();
    let touched = entries.iter().find(|e| is_mine(e)).is_none_or(|e| e.fields != new_set);
    let owner = Owner { manager, operation: "Apply", subresource: subresource.clone(), api_version };
    upsert(&mut entries, owner, |_| new_set, touched, now);
    write_entries(&mut object, &entries);
    Ok(object)
}

/// Records an Update by `manager` that turned `old` into `new` (within `scope`) in `new`'s
/// managedFields, carried over from `old`.
pub fn record_update(old: Option<&Value>, new: &mut Value, manager: &str, scope: Scope, lists: Lists, now: &str) {
    let mut entries = old.map(read_entries).unwrap_or_default();
    let old_config = old.map(|o| scoped(o, scope)).unwrap_or_else(|| json!({}));
    let new_config = scoped(new, scope);
    let new_all = FieldSet::of(&new_config, true, lists);
    let changed: FieldSet = {
        let mut c = new_all.clone();
        c.retain(|p| fields::value_at(&old_config, p, lists) != fields::value_at(&new_config, p, lists));
        c
    };
    let subresource = scope.subresource().map(str::to_string);
    let in_scope = |p: &Path| match scope {
        Scope::Status => p.first().is_some_and(|e| e == "f:status"),
        Scope::Main { status_subresource } => !(status_subresource && p.first().is_some_and(|e| e == "f:status")),
    };
    for entry in entries.iter_mut() {
        let keep_gone = |p: &Path| !in_scope(p) || new_all.contains(p);
        entry.fields.retain(keep_gone);
        if entry.manager != manager {
            entry.fields.retain(|p| !changed.contains(p));
        }
    }
    let api_version = new.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_string();
    let touched = !changed.is_empty();
    let owner = Owner { manager, operation: "Update", subresource, api_version };
    upsert(&mut entries, owner, |existing| existing.union(&changed), touched, now);
    write_entries(new, &entries);
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-12-01T00:00:00Z";
    const MAIN: Scope = Scope::Main { status_subresource: true };

    fn ds(image: &str, extra_label: Option<&str>) -> Value {
        let mut labels = json!({"app": "x"});
        if let Some(l) = extra_label {
            labels[l] = json!("y");
        }
        json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "x", "namespace": "n", "labels": labels},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}},
            "status": {"numberReady": 3}
        })
    }

    #[test]
    fn apply_owns_exactly_what_it_sent_and_ignores_status() {
        let obj = apply(None, &ds("a", None), "tessera", true, MAIN, Lists::Builtin, NOW).unwrap();
        let mf = &obj["metadata"]["managedFields"][0];
        assert_eq!(mf["manager"], "tessera");
        assert_eq!(mf["operation"], "Apply");
        assert_eq!(mf["fieldsType"], "FieldsV1");
        let f = &mf["fieldsV1"];
        assert_eq!(f["f:metadata"]["f:labels"]["f:app"], json!({}));
        assert!(f["f:metadata"].get("f:name").is_none(), "identity is never owned");
        assert_eq!(f["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"]["f:image"], json!({}));
        assert!(f.get("f:status").is_none());
        assert!(obj.get("status").is_none(), "status is written through /status only");
    }

    #[test]
    fn reapply_removes_dropped_fields_and_other_managers_conflict() {
        let first = apply(None, &ds("a", Some("extra")), "tessera", true, MAIN, Lists::Builtin, NOW).unwrap();
        let second = apply(Some(&first), &ds("a", None), "tessera", false, MAIN, Lists::Builtin, NOW).unwrap();
        assert!(second["metadata"]["labels"].get("extra").is_none(), "dropped field is pruned");
        let err = apply(Some(&second), &ds("b", None), "other", false, MAIN, Lists::Builtin, NOW).unwrap_err();
        assert_eq!(err[0].manager, "tessera");
        assert_eq!(err[0].field, ".spec.template.spec.containers[name=\"c\"].image");
        let forced = apply(Some(&second), &ds("b", None), "other", true, MAIN, Lists::Builtin, NOW).unwrap();
        assert_eq!(forced["spec"]["template"]["spec"]["containers"][0]["image"], "b");
        let same = apply(Some(&second), &ds("a", None), "other", false, MAIN, Lists::Builtin, NOW);
        assert!(same.is_ok(), "the same value is shared ownership, not a conflict");
    }

    #[test]
    fn updates_take_changed_fields_from_appliers() {
        let applied = apply(None, &ds("a", None), "tessera", true, MAIN, Lists::Builtin, NOW).unwrap();
        let mut edited = applied.clone();
        edited["spec"]["template"]["spec"]["containers"][0]["image"] = json!("edited");
        record_update(Some(&applied), &mut edited, "kubectl-edit", MAIN, Lists::Builtin, NOW);
        let entries = edited["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        let c = "k:{\"name\":\"c\"}";
        let img =
            |e: &Value| e["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"][c].get("f:image").is_some();
        assert!(!img(&entries[0]) && img(&entries[1]), "the editor now owns the image");
        assert_eq!(entries[1]["operation"], "Update");
    }
}
