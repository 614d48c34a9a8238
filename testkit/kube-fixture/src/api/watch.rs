//! Watches: `GET <collection>?watch=true`, streamed as one JSON event per line.
//!
//! ## Overview
//! Without `resourceVersion` (or with `0`) the stream opens with an `ADDED` event per existing
//! object, as a real server does; with one, it replays the kept events after it, or answers
//! 410 `Expired` when that version is older than the history. Then every change of a matching
//! object follows, until `timeoutSeconds` (default 300) pass, the client goes away, or the
//! fixture stops. Label and field selectors filter the objects (an object that stops matching
//! simply stops appearing). With `sendInitialEvents=true` (client-go's streaming list, as
//! `kubectl wait` uses it) the initial events end with the `BOOKMARK` annotated
//! `k8s.io/initial-events-end`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::{Incoming, Shared};
use crate::registry::ResourceType;
use crate::routes::ResourcePath;
use crate::selector::Selector;
use crate::status::Failure;
use crate::store::{Event, Key};

const DEFAULT_TIMEOUT_SECONDS: u64 = 300;

pub fn start(
    shared: &Arc<Shared>,
    req: &Incoming,
    ty: &ResourceType,
    path: &ResourcePath,
) -> Result<mpsc::Receiver<Bytes>, Failure> {
    let labels = Selector::parse(&req.param("labelSelector").unwrap_or_default()).map_err(Failure::bad_request)?;
    let fields = req.param("fieldSelector").unwrap_or_default();
    super::objects::field_matches(&fields, &json!({}))?;
    let timeout = req.param("timeoutSeconds").and_then(|t| t.parse().ok()).unwrap_or(DEFAULT_TIMEOUT_SECONDS);
    let from: Option<u64> =
        req.param("resourceVersion").filter(|v| !v.is_empty() && v != "0").and_then(|v| v.parse().ok());
    let (initial, events) = {
        let store = shared.store();
        match from {
            Some(rv) => store.watch(rv).ok_or_else(|| {
                Failure::new(410, "Expired", format!("too old resource version: {rv} ({})", store.resource_version()))
            })?,
            None => {
                let (_, events) = store.watch(store.resource_version()).ok_or_else(Failure::no_resource)?;
                let added = store
                    .list(&ty.group, &ty.plural, path.namespace.as_deref())
                    .into_iter()
                    .map(|o| {
                        let text = |p: &str| o.pointer(p).and_then(Value::as_str);
                        let key = Key::new(ty, text("/metadata/namespace"), text("/metadata/name").unwrap_or_default());
                        Event { kind: "ADDED", key, object: o.clone(), resource_version: store.resource_version() }
                    })
                    .collect();
                (added, events)
            }
        }
    };
    let matches = {
        let (ty, namespace) = (ty.clone(), path.namespace.clone());
        move |e: &Event| {
            e.key.group == ty.group
                && e.key.plural == ty.plural
                && namespace.as_ref().is_none_or(|ns| *ns == e.key.namespace)
                && labels.matches(&e.object)
                && super::objects::field_matches(&fields, &e.object).unwrap_or(false)
        }
    };
    let bookmark = req.flag("sendInitialEvents").then(|| {
        let rv = shared.store().resource_version();
        Bytes::from(format!(
            "{}\n",
            json!({"type": "BOOKMARK", "object": {"kind": ty.kind, "apiVersion": ty.api_version(), "metadata": {
                "resourceVersion": rv.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}}})
        ))
    });
    let (tx, rx) = mpsc::channel(64);
    let api_version = ty.api_version();
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        for event in initial.iter().filter(|e| matches(e)) {
            if tx.send(line(event, &api_version)).await.is_err() {
                return;
            }
        }
        if let Some(mark) = bookmark {
            if tx.send(mark).await.is_err() {
                return;
            }
        }
        let mut events = events;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                received = events.recv() => match received {
                    Ok(event) if matches(&event) => {
                        if tx.send(line(&event, &api_version)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    // Too slow a reader, or the fixture is gone: end the watch; clients re-list.
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    Ok(rx)
}

fn line(event: &Event, api_version: &str) -> Bytes {
    let mut object = event.object.clone();
    object["apiVersion"] = Value::String(api_version.to_string());
    let mut text = serde_json::to_vec(&json!({"type": event.kind, "object": object})).unwrap_or_default();
    text.push(b'\n');
    Bytes::from(text)
}
