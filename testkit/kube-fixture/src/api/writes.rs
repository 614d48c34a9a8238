//! Writes: POST create, PUT replace, PATCH (server-side apply, merge, strategic merge as merge,
//! JSON patch), on the main resource or `/status`.
//!
//! ## Overview
//! Each write computes the new object from the live one, validates what the client sent
//! (outside the store lock: the validator may run a subprocess), then commits if the live object
//! did not move meanwhile (else it recomputes). A rejected object is answered 422 and recorded as
//! a rejection. `?dryRun=All` does everything but the commit. Writes to a namespace that does
//! not exist are refused with 404, as a real server does.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Incoming, Shared, establish};
use crate::apply::{self, Scope};
use crate::fields::Lists;
use crate::journal::Rejection;
use crate::registry::ResourceType;
use crate::routes::ResourcePath;
use crate::status::Failure;
use crate::store::{Key, metadata_mut, now};

/// A computed write: the object to store, and what to validate once computed (a patched
/// object; what the client sent whole is validated before computing, as a real server decodes
/// and validates before it looks at storage).
struct Computed {
    object: Value,
    validate: Option<Value>,
}

fn scope(ty: &ResourceType, path: &ResourcePath) -> Scope {
    match path.subresource.as_deref() {
        Some("status") => Scope::Status,
        _ => Scope::Main { status_subresource: ty.status_subresource },
    }
}

fn resource_version(object: &Value) -> Option<&str> {
    object.pointer("/metadata/resourceVersion").and_then(Value::as_str)
}

/// Refuses a body whose apiVersion, kind, name or namespace disagree with the URL.
fn check_identity(body: &Value, ty: &ResourceType, path: &ResourcePath, name: Option<&str>) -> Result<(), Failure> {
    let field = |p: &str| body.pointer(p).and_then(Value::as_str);
    match field("/apiVersion") {
        Some(v) if v == ty.api_version() => {}
        Some(v) => {
            return Err(Failure::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({})",
                ty.api_version()
            )));
        }
        None => return Err(Failure::bad_request("Object 'apiVersion' is missing")),
    }
    match field("/kind") {
        Some(k) if k == ty.kind => {}
        Some(k) => {
            return Err(Failure::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                ty.kind
            )));
        }
        None => return Err(Failure::bad_request("Object 'Kind' is missing")),
    }
    if let (Some(url), Some(sent)) = (name, field("/metadata/name")) {
        if url != sent {
            return Err(Failure::bad_request(format!(
                "the name of the object ({sent}) does not match the name on the URL ({url})"
            )));
        }
    }
    if let (Some(url), Some(sent)) = (path.namespace.as_deref(), field("/metadata/namespace")) {
        if ty.namespaced && url != sent {
            return Err(Failure::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    Ok(())
}

/// Sets what the URL decides: apiVersion, kind, name, namespace.
fn with_identity(mut object: Value, ty: &ResourceType, namespace: Option<&str>, name: &str) -> Value {
    if let Some(map) = object.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(ty.api_version()));
        map.insert("kind".into(), Value::String(ty.kind.clone()));
    }
    if let Some(meta) = metadata_mut(&mut object) {
        meta.insert("name".into(), Value::String(name.to_string()));
        match namespace {
            Some(ns) if ty.namespaced => {
                meta.insert("namespace".into(), Value::String(ns.to_string()));
            }
            _ => {
                meta.remove("namespace");
            }
        }
    }
    object
}

fn set_status(object: &mut Value, status: Option<&Value>) {
    if let Some(map) = object.as_object_mut() {
        match status {
            Some(s) => map.insert("status".into(), s.clone()),
            None => map.remove("status"),
        };
    }
}

fn required_body(req: &Incoming) -> Result<Value, Failure> {
    req.json()?.ok_or_else(|| Failure::bad_request("the request has no body"))
}

pub async fn create(
    shared: &Arc<Shared>,
    req: &Incoming,
    ty: &ResourceType,
    path: &ResourcePath,
) -> Result<(u16, Value), Failure> {
    let body = required_body(req)?;
    check_identity(&body, ty, path, None)?;
    let name = match body.pointer("/metadata/name").and_then(Value::as_str) {
        Some(n) => n.to_string(),
        None => match body.pointer("/metadata/generateName").and_then(Value::as_str) {
            Some(prefix) => format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..5]),
            None => {
                return Err(Failure::invalid(
                    &ty.qualified_kind(),
                    "",
                    "metadata.name: Required value: name or generateName is required",
                ));
            }
        },
    };
    let manager = req.manager();
    validate(shared, req, ty, path, &name, body.clone()).await?;
    write(shared, req, ty, path, &name, true, |live, lists| {
        if live.is_some() {
            return Err(Failure::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", ty.qualified_plural()),
            )
            .with_details(json!({"name": name, "kind": ty.qualified_plural()})));
        }
        let mut object = with_identity(body.clone(), ty, path.namespace.as_deref(), &name);
        if let Some(meta) = metadata_mut(&mut object) {
            meta.remove("managedFields");
        }
        if ty.status_subresource {
            set_status(&mut object, None);
        }
        apply::record_update(
            None,
            &mut object,
            &manager,
            Scope::Main { status_subresource: ty.status_subresource },
            lists,
            &now(),
        );
        Ok(Computed { object, validate: None })
    })
    .await
}

pub async fn replace(
    shared: &Arc<Shared>,
    req: &Incoming,
    ty: &ResourceType,
    path: &ResourcePath,
    name: &str,
) -> Result<(u16, Value), Failure> {
    let body = required_body(req)?;
    check_identity(&body, ty, path, Some(name))?;
    let manager = req.manager();
    let scope = scope(ty, path);
    if matches!(scope, Scope::Main { .. }) {
        validate(shared, req, ty, path, name, body.clone()).await?;
    }
    write(shared, req, ty, path, name, false, |live, lists| {
        let live = live.ok_or_else(|| Failure::not_found(&ty.qualified_plural(), name))?;
        if let Some(sent) = resource_version(&body) {
            if Some(sent) != resource_version(live) {
                return Err(conflict_modified(ty, name));
            }
        }
        let mut object = match scope {
            Scope::Status => {
                let mut o = live.clone();
                set_status(&mut o, body.get("status"));
                o
            }
            Scope::Main { status_subresource } => {
                let mut o = with_identity(body.clone(), ty, path.namespace.as_deref(), name);
                if status_subresource {
                    set_status(&mut o, live.get("status"));
                }
                o
            }
        };
        apply::record_update(Some(live), &mut object, &manager, scope, lists, &now());
        Ok(Computed { object, validate: None })
    })
    .await
}

fn conflict_modified(ty: &ResourceType, name: &str) -> Failure {
    Failure::new(
        409,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            ty.qualified_plural()
        ),
    )
    .with_details(json!({"name": name, "kind": ty.qualified_plural()}))
}

pub async fn patch(
    shared: &Arc<Shared>,
    req: &Incoming,
    ty: &ResourceType,
    path: &ResourcePath,
    name: &str,
) -> Result<(u16, Value), Failure> {
    let content_type = req.content_type.clone().unwrap_or_default();
    let body = required_body(req)?;
    let scope = scope(ty, path);
    if content_type.starts_with("application/apply-patch") {
        return server_side_apply(shared, req, ty, path, name, body, scope).await;
    }
    enum Kind {
        Merge,
        Json,
    }
    let kind = if content_type.starts_with("application/json-patch+json") {
        Kind::Json
    } else if content_type.starts_with("application/merge-patch+json")
        || content_type.starts_with("application/strategic-merge-patch+json")
    {
        Kind::Merge
    } else {
        return Err(Failure::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format ({content_type})"),
        ));
    };
    let manager = req.manager();
    write(shared, req, ty, path, name, false, |live, lists| {
        let live = live.ok_or_else(|| Failure::not_found(&ty.qualified_plural(), name))?;
        let mut patched = live.clone();
        match kind {
            Kind::Merge => json_patch::merge(&mut patched, &body),
            Kind::Json => {
                let ops: json_patch::Patch = serde_json::from_value(body.clone())
                    .map_err(|e| Failure::bad_request(format!("invalid JSON patch: {e}")))?;
                json_patch::patch(&mut patched, &ops)
                    .map_err(|e| Failure::invalid(&ty.qualified_kind(), name, &e.to_string()))?;
            }
        }
        let mut object = match scope {
            Scope::Status => {
                let mut o = live.clone();
                set_status(&mut o, patched.get("status"));
                o
            }
            Scope::Main { status_subresource } => {
                let mut o = with_identity(patched, ty, path.namespace.as_deref(), name);
                if status_subresource {
                    set_status(&mut o, live.get("status"));
                }
                o
            }
        };
        let validate = matches!(scope, Scope::Main { .. }).then(|| {
            let mut v = object.clone();
            if let Some(meta) = metadata_mut(&mut v) {
                meta.remove("managedFields");
            }
            v
        });
        apply::record_update(Some(live), &mut object, &manager, scope, lists, &now());
        Ok(Computed { object, validate })
    })
    .await
}

async fn server_side_apply(
    shared: &Arc<Shared>,
    req: &Incoming,
    ty: &ResourceType,
    path: &ResourcePath,
    name: &str,
    body: Value,
    scope: Scope,
) -> Result<(u16, Value), Failure> {
    let manager = req.param("fieldManager").filter(|m| !m.is_empty()).ok_or_else(|| {
        Failure::invalid("PatchOptions.meta.k8s.io", "", "fieldManager: Required value: is required for apply patch")
    })?;
    check_identity(&body, ty, path, Some(name))?;
    let force = req.flag("force");
    if matches!(scope, Scope::Main { .. }) {
        validate(shared, req, ty, path, name, body.clone()).await?;
    }
    write(shared, req, ty, path, name, scope != Scope::Status, |live, lists| {
        if scope == Scope::Status && live.is_none() {
            return Err(Failure::not_found(&ty.qualified_plural(), name));
        }
        let merged = apply::apply(live, &body, &manager, force, scope, lists, &now()).map_err(|conflicts| {
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|c| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{}\"", c.manager), "field": c.field}))
                .collect();
            let list: Vec<String> = conflicts.iter().map(|c| format!("conflict with \"{}\": {}", c.manager, c.field)).collect();
            Failure::new(409, "Conflict", format!("Apply failed with {} conflict(s): {}", conflicts.len(), list.join("; ")))
                .with_details(json!({"name": name, "kind": ty.qualified_plural(), "causes": causes}))
        })?;
        let object = with_identity(merged, ty, path.namespace.as_deref(), name);
        Ok(Computed { object, validate: None })
    })
    .await
}

/// Computes, validates and commits one write (see the module docs).
async fn write(
    shared: &Arc<Shared>,
    req: &Incoming,
    ty: &ResourceType,
    path: &ResourcePath,
    name: &str,
    may_create: bool,
    compute: impl Fn(Option<&Value>, Lists) -> Result<Computed, Failure>,
) -> Result<(u16, Value), Failure> {
    let key = Key::new(ty, path.namespace.as_deref(), name);
    for _ in 0..5 {
        let (live, computed) = {
            let store = shared.store();
            if let Some(ns) = path.namespace.as_deref().filter(|_| ty.namespaced) {
                if !store.namespace_exists(ns) {
                    return Err(Failure::not_found("namespaces", ns));
                }
            }
            let live = store.get(&key).cloned();
            if live.is_none() && !may_create {
                return Err(Failure::not_found(&ty.qualified_plural(), name));
            }
            let schema = store.list_schema(ty);
            let computed = compute(live.as_ref(), Lists::from_schema(schema.as_ref()))?;
            (live, computed)
        };
        if let Some(sent) = computed.validate {
            validate(shared, req, ty, path, name, sent).await?;
        }
        if req.param("dryRun").is_some() {
            return Ok((if live.is_some() { 200 } else { 201 }, computed.object));
        }
        let stored = {
            let mut store = shared.store();
            let now_live = store.get(&key);
            if now_live.and_then(resource_version) != live.as_ref().and_then(resource_version) {
                continue;
            }
            store.commit(key.clone(), computed.object)
        };
        if ty.kind == "CustomResourceDefinition" {
            establish::after_write(shared, &key);
        }
        let stored = shared.store().get(&key).cloned().unwrap_or(stored);
        return Ok((if live.is_some() { 200 } else { 201 }, stored));
    }
    Err(conflict_modified(ty, name))
}

/// Validates what the client sent; a refusal is recorded and answered 422.
async fn validate(
    shared: &Arc<Shared>,
    req: &Incoming,
    ty: &ResourceType,
    path: &ResourcePath,
    name: &str,
    object: Value,
) -> Result<(), Failure> {
    let applied_crd = if ty.builtin { None } else { shared.store().crd_for(&ty.group, &ty.kind).cloned() };
    let worker = Arc::clone(shared);
    let (group, version, kind, builtin) = (ty.group.clone(), ty.version.clone(), ty.kind.clone(), ty.builtin);
    let checked = object.clone();
    let verdict = tokio::task::spawn_blocking(move || {
        if builtin {
            worker.validator.builtin(&checked)
        } else {
            worker.validator.custom(&checked, &group, &version, &kind, applied_crd.as_ref())
        }
    })
    .await
    .unwrap_or_else(|e| Err(format!("the validator task failed: {e}")));
    let Err(message) = verdict else { return Ok(()) };
    let namespace = if ty.namespaced { path.namespace.as_deref().unwrap_or_default() } else { "" };
    let object_id = format!("{}/{}/{namespace}/{name}", ty.api_version(), ty.kind);
    shared.journal().rejections.push(Rejection {
        method: req.method.clone(),
        path: req.path.clone(),
        object_id,
        message: message.clone(),
        object,
    });
    Err(Failure::invalid(&ty.qualified_kind(), name, &message))
}
