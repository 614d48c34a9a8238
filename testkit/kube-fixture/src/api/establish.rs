//! CRDs becoming Established, as the apiextensions controller does it.
//!
//! ## Overview
//! After a CRD is written its status gets `NamesAccepted: True` and `acceptedNames` at once, and
//! `Established: True` after the fixture's configured delay (default: at once). Only then do its
//! kinds appear in discovery and get served. The status is written as an Update of the
//! `status` subresource by `apiextensions-apiserver`, as on a real cluster.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Shared;
use crate::apply::{self, Scope};
use crate::fields::Lists;
use crate::registry;
use crate::store::{Key, now};

const MANAGER: &str = "apiextensions-apiserver";

pub fn after_write(shared: &Arc<Shared>, key: &Key) {
    let delay = shared.config.crd_established_after;
    let established = shared.store().get(key).is_some_and(registry::crd_established);
    if established {
        // Names may have changed; keep acceptedNames current.
        set_conditions(shared, key, true);
        return;
    }
    if delay.is_zero() {
        set_conditions(shared, key, true);
        return;
    }
    set_conditions(shared, key, false);
    let shared = Arc::clone(shared);
    let key = key.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        set_conditions(&shared, &key, true);
    });
}

fn condition(kind: &str, ok: bool, reason: &str, message: &str, time: &str) -> Value {
    json!({
        "type": kind,
        "status": if ok { "True" } else { "False" },
        "reason": reason,
        "message": message,
        "lastTransitionTime": time,
    })
}

fn set_conditions(shared: &Shared, key: &Key, established: bool) {
    let mut store = shared.store();
    let Some(live) = store.get(key).cloned() else { return };
    let time = now();
    let storage_versions: Vec<Value> = live
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    let keep_time = |kind: &str, status: &str| {
        live.pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["type"] == kind && c["status"] == status))
            .and_then(|c| c.get("lastTransitionTime").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| time.clone())
    };
    let names =
        condition("NamesAccepted", true, "NoConflicts", "no conflicts found", &keep_time("NamesAccepted", "True"));
    let est = if established {
        condition(
            "Established",
            true,
            "InitialNamesAccepted",
            "the initial names have been accepted",
            &keep_time("Established", "True"),
        )
    } else {
        condition(
            "Established",
            false,
            "Installing",
            "the initial names have been accepted",
            &keep_time("Established", "False"),
        )
    };
    let mut object = live.clone();
    object["status"] = json!({
        "acceptedNames": live.pointer("/spec/names").cloned().unwrap_or(json!({})),
        "conditions": [names, est],
        "storedVersions": storage_versions,
    });
    apply::record_update(Some(&live), &mut object, MANAGER, Scope::Status, Lists::Builtin, &time);
    store.commit(key.clone(), object);
}

/// Establishes a CRD at once, whatever the configured delay (for preloaded CRDs).
pub fn establish_now(shared: &Shared, key: &Key) {
    set_conditions(shared, key, true);
}
