//! Reads and deletes: GET one, LIST (with `labelSelector` and `fieldSelector`), DELETE one or a
//! collection.
//!
//! ## Overview
//! Objects are returned in the requested version (the store keeps one copy per object).
//! Deleting a CRD deletes its custom resources; deleting a Namespace deletes what is in it.

use std::sync::Arc;

use serde_json::Value;

use super::{Incoming, Shared, list_of};
use crate::registry::ResourceType;
use crate::routes::ResourcePath;
use crate::selector::Selector;
use crate::status::Failure;
use crate::store::Key;

fn as_version(mut object: Value, ty: &ResourceType) -> Value {
    object["apiVersion"] = Value::String(ty.api_version());
    object
}

pub fn get(shared: &Arc<Shared>, ty: &ResourceType, path: &ResourcePath, name: &str) -> Result<(u16, Value), Failure> {
    let key = Key::new(ty, path.namespace.as_deref(), name);
    let object = shared.store().get(&key).cloned().ok_or_else(|| Failure::not_found(&ty.qualified_plural(), name))?;
    Ok((200, as_version(object, ty)))
}

/// `metadata.name=x`, `metadata.namespace=y` (the field selectors Tessera and kubectl use).
pub fn field_matches(selector: &str, object: &Value) -> Result<bool, Failure> {
    for part in selector.split(',').filter(|p| !p.is_empty()) {
        let (field, negate, value) = match part.split_once("!=") {
            Some((f, v)) => (f, true, v),
            None => match part.split_once("==").or_else(|| part.split_once('=')) {
                Some((f, v)) => (f, false, v),
                None => return Err(Failure::bad_request(format!("invalid field selector {part:?}"))),
            },
        };
        let actual = match field {
            "metadata.name" => object.pointer("/metadata/name"),
            "metadata.namespace" => object.pointer("/metadata/namespace"),
            _ => return Err(Failure::bad_request(format!("field label not supported: {field}"))),
        };
        if (actual.and_then(Value::as_str) == Some(value)) == negate {
            return Ok(false);
        }
    }
    Ok(true)
}

fn selected(
    shared: &Arc<Shared>,
    req: &Incoming,
    ty: &ResourceType,
    path: &ResourcePath,
) -> Result<Vec<Value>, Failure> {
    let labels = Selector::parse(&req.param("labelSelector").unwrap_or_default()).map_err(Failure::bad_request)?;
    let fields = req.param("fieldSelector").unwrap_or_default();
    let store = shared.store();
    let mut out = Vec::new();
    for object in store.list(&ty.group, &ty.plural, path.namespace.as_deref()) {
        if labels.matches(object) && field_matches(&fields, object)? {
            out.push(as_version(object.clone(), ty));
        }
    }
    Ok(out)
}

pub fn list(
    shared: &Arc<Shared>,
    req: &Incoming,
    ty: &ResourceType,
    path: &ResourcePath,
) -> Result<(u16, Value), Failure> {
    let items = selected(shared, req, ty, path)?;
    let rv = shared.store().resource_version();
    Ok((200, list_of(&ty.kind, &ty.api_version(), rv, items)))
}

pub fn delete(
    shared: &Arc<Shared>,
    ty: &ResourceType,
    path: &ResourcePath,
    name: &str,
) -> Result<(u16, Value), Failure> {
    let key = Key::new(ty, path.namespace.as_deref(), name);
    let mut store = shared.store();
    let removed = store.delete(&key).ok_or_else(|| Failure::not_found(&ty.qualified_plural(), name))?;
    if ty.kind == "CustomResourceDefinition" {
        let group = removed.pointer("/spec/group").and_then(Value::as_str).unwrap_or_default().to_string();
        let plural = removed.pointer("/spec/names/plural").and_then(Value::as_str).unwrap_or_default().to_string();
        let keys: Vec<Key> = store
            .list(&group, &plural, None)
            .iter()
            .filter_map(|o| {
                let name = o.pointer("/metadata/name")?.as_str()?;
                let ns = o.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
                Some(Key { group: group.clone(), plural: plural.clone(), namespace: ns.into(), name: name.into() })
            })
            .collect();
        for k in keys {
            store.delete(&k);
        }
    }
    Ok((200, as_version(removed, ty)))
}

pub fn delete_collection(
    shared: &Arc<Shared>,
    req: &Incoming,
    ty: &ResourceType,
    path: &ResourcePath,
) -> Result<(u16, Value), Failure> {
    let items = selected(shared, req, ty, path)?;
    let mut store = shared.store();
    for item in &items {
        let name = item.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        let ns = item.pointer("/metadata/namespace").and_then(Value::as_str);
        store.delete(&Key::new(ty, ns, name));
    }
    let rv = store.resource_version();
    Ok((200, list_of(&ty.kind, &ty.api_version(), rv, items)))
}
