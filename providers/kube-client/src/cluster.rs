//! Operations on one object of a connected cluster, shared by `kube.object` and `helm.release`:
//! resolve its kind, apply, read, delete and wait.
//!
//! ## Overview
//!
//! Every wait goes through the shared poller ([`tessera_provider_api::poll`]):
//! - a custom resource waits for its kind to be served (its CRD established, perhaps by the
//!   same apply);
//! - a CRD waits for its `Established` condition;
//! - a delete waits until the object is gone (404, or a new object of the same name);
//! - a DaemonSet waits until it is ready on every node it must cover: `numberReady ==
//!   desiredNumberScheduled` for the current spec (`observedGeneration >= generation`). Its
//!   deadline is [`KubeClientSettings::rollout`], and running out of it is a retryable error: a
//!   node that is still joining may yet get its pod;
//! - an object whose operator makes DaemonSets (a `FluentbitAgent`, a `HostTailer`) names them in
//!   its [`ANNOTATION_WAIT_FOR`] annotation, and waits for each as for a DaemonSet it applied,
//!   except that one not made yet is pending, not gone.

use std::sync::Mutex;

use serde_json::Value;
use tessera_kube::contract::{ANNOTATION_WAIT_FOR, ObjectId, id_of, parse_object_id};
use tessera_provider_api::ProviderError;
use tessera_provider_api::poll::{self, Seen};

use crate::settings::KubeClientSettings;
use crate::wire::{Served, Wire};

/// Who makes a DaemonSet that is waited for: Tessera applied it (so it must be there), or an
/// operator makes it from a custom resource Tessera applied (so it may not be there yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Made {
    Applied,
    ByOperator,
}

pub struct Cluster {
    pub wire: Wire,
    pub settings: KubeClientSettings,
}

/// An object's id, or a fatal error naming what is missing.
pub fn object_id(manifest: &Value) -> Result<String, ProviderError> {
    id_of(manifest)
        .ok_or_else(|| ProviderError::Fatal("a Kubernetes object needs apiVersion, kind and metadata.name".into()))
}

pub fn parse_id(id: &str) -> Result<ObjectId<'_>, ProviderError> {
    parse_object_id(id).ok_or_else(|| ProviderError::Fatal(format!("`{id}` is not a Kubernetes object id")))
}

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// Whether a DaemonSet's status says it is ready on every node it must cover, and if not, how
/// far it is (for the wait's messages).
pub fn daemonset_ready(ds: &Value) -> Result<(), String> {
    let int = |p: &str| ds.pointer(p).and_then(Value::as_i64);
    // An object the API server has given no generation has had no spec change to wait for.
    let generation = int("/metadata/generation").unwrap_or(0);
    let observed = int("/status/observedGeneration");
    let (Some(desired), Some(ready)) = (int("/status/desiredNumberScheduled"), int("/status/numberReady")) else {
        return Err("without a status".into());
    };
    if observed.is_none_or(|o| o < generation) {
        return Err(format!("at generation {} of {generation}", observed.unwrap_or(0)));
    }
    if ready != desired {
        return Err(format!("ready on {ready} of {desired} nodes"));
    }
    Ok(())
}

impl Cluster {
    /// Where an object's kind is served; `None` when the cluster does not serve it.
    pub async fn served(&self, api_version: &str, kind: &str) -> Result<Option<Served>, ProviderError> {
        self.wire.served(api_version, kind).await
    }

    /// Where an object's kind is served, waiting for a custom resource's CRD to be established.
    pub async fn served_soon(&self, api_version: &str, kind: &str) -> Result<Served, ProviderError> {
        let what = format!("kind {kind} of {api_version}");
        poll::until(&self.settings.poll, &what, || async {
            Ok(match self.wire.served(api_version, kind).await? {
                Some(s) => Seen::Done(s),
                None => Seen::Pending("not served by the API server".into()),
            })
        })
        .await
    }

    /// Refuses a namespaced object that names no namespace (its id would not say where it is).
    pub fn check_scope(served: &Served, manifest: &Value) -> Result<(), ProviderError> {
        let ns = text(manifest, "/metadata/namespace").filter(|n| !n.is_empty());
        if served.namespaced && ns.is_none() {
            return Err(ProviderError::Fatal(format!(
                "{} {} is namespaced and names no metadata.namespace",
                served.resource.kind,
                text(manifest, "/metadata/name").unwrap_or("?")
            )));
        }
        Ok(())
    }

    pub async fn get(&self, id: &str) -> Result<Option<Value>, ProviderError> {
        let o = parse_id(id)?;
        let Some(served) = self.served(o.api_version, o.kind).await? else { return Ok(None) };
        self.wire.get(&served, o.namespace, o.name).await
    }

    /// Applies an object of an already served kind.
    pub async fn apply(&self, served: &Served, manifest: &Value) -> Result<Value, ProviderError> {
        Self::check_scope(served, manifest)?;
        self.wire.apply(served, manifest).await
    }

    /// Deletes an object and waits until it is gone; `false` when it was not there.
    pub async fn delete(&self, id: &str) -> Result<bool, ProviderError> {
        let o = parse_id(id)?;
        let Some(served) = self.served(o.api_version, o.kind).await? else { return Ok(false) };
        let Some(before) = self.wire.get(&served, o.namespace, o.name).await? else { return Ok(false) };
        if !self.wire.delete(&served, o.namespace, o.name).await? {
            return Ok(false);
        }
        let uid = text(&before, "/metadata/uid").map(str::to_string);
        poll::until(&self.settings.poll, &format!("deleting {id}"), || async {
            Ok(match self.wire.get(&served, o.namespace, o.name).await? {
                None => Seen::Done(()),
                // The same name, a new object: the old one is gone.
                Some(live) if uid.is_some() && text(&live, "/metadata/uid") != uid.as_deref() => Seen::Done(()),
                Some(_) => Seen::Pending("terminating".into()),
            })
        })
        .await?;
        Ok(true)
    }

    /// Waits until a CRD reports `Established`.
    pub async fn established(&self, crd: &Served, name: &str) -> Result<(), ProviderError> {
        poll::until(&self.settings.poll, &format!("CRD {name}"), || async {
            let live = self.wire.get(crd, None, name).await?;
            let conditions = live.as_ref().and_then(|l| l.pointer("/status/conditions")).and_then(Value::as_array);
            let established = conditions.is_some_and(|cs| {
                cs.iter().any(|c| text(c, "/type") == Some("Established") && text(c, "/status") == Some("True"))
            });
            Ok(if established { Seen::Done(()) } else { Seen::Pending("not Established".into()) })
        })
        .await
    }

    /// Waits until a DaemonSet is ready on every node it must cover (see the module docs).
    pub async fn daemonset_rolled_out(&self, served: &Served, manifest: &Value) -> Result<(), ProviderError> {
        let id = object_id(manifest)?;
        self.daemonset_ready_soon(served, &id, Made::Applied).await
    }

    /// Waits until each DaemonSet an operator makes for `manifest` (named by its
    /// [`ANNOTATION_WAIT_FOR`] annotation) exists and is ready on every node it must cover.
    pub async fn operator_daemonsets_rolled_out(&self, manifest: &Value) -> Result<(), ProviderError> {
        let named = manifest
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(ANNOTATION_WAIT_FOR))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let ids: Vec<&str> = named.split(',').map(str::trim).filter(|id| !id.is_empty()).collect();
        if ids.is_empty() {
            return Ok(());
        }
        let served = self.served_soon("apps/v1", "DaemonSet").await?;
        let waits: Vec<_> = ids
            .iter()
            .map(|id| {
                let served = &served;
                async move {
                    let o = parse_id(id)?;
                    if o.api_version != "apps/v1" || o.kind != "DaemonSet" || o.namespace.is_none() {
                        return Err(ProviderError::Fatal(format!(
                            "`{ANNOTATION_WAIT_FOR}` names `{id}`, which is not the id of a namespaced apps/v1 DaemonSet"
                        )));
                    }
                    self.daemonset_ready_soon(served, id, Made::ByOperator).await
                }
            })
            .collect();
        futures::future::try_join_all(waits).await.map(|_| ())
    }

    async fn daemonset_ready_soon(&self, served: &Served, id: &str, made: Made) -> Result<(), ProviderError> {
        let o = parse_id(id)?;
        let (name, namespace) = (o.name, o.namespace);
        let last = Mutex::new(String::from("not read yet"));
        let mut policy = self.settings.rollout.clone();
        let deadline = policy.total;
        // The outer timeout ends the wait; the poller's own deadline is later, so that running
        // out of time is the typed (retryable) error below.
        policy.total = deadline + policy.max_delay * 2;
        let what = format!("DaemonSet {id}");
        let wait = poll::until(&policy, &what, || async {
            let how = match (self.wire.get(served, namespace, name).await?, made) {
                (None, Made::Applied) => {
                    return Err(ProviderError::NotFound(format!("DaemonSet {id} disappeared while rolling out")));
                }
                (None, Made::ByOperator) => String::from("not made by its operator yet"),
                (Some(live), _) => match daemonset_ready(&live) {
                    Ok(()) => return Ok(Seen::Done(())),
                    Err(how) => how,
                },
            };
            if let Ok(mut l) = last.lock() {
                *l = how.clone();
            }
            Ok(Seen::Pending(how))
        });
        match tokio::time::timeout(deadline, wait).await {
            Ok(result) => result,
            Err(_) => {
                let how = last.lock().map(|l| l.clone()).unwrap_or_default();
                Err(ProviderError::unavailable(format!(
                    "DaemonSet {id} is {how} after {} s; nodes that are still joining may yet get their pod",
                    deadline.as_secs()
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_daemonset_is_ready_when_every_scheduled_pod_is_ready_for_its_current_spec() {
        let ds = |generation: i64, observed: i64, desired: i64, ready: i64| {
            json!({"metadata": {"generation": generation}, "status": {
                "observedGeneration": observed, "desiredNumberScheduled": desired, "numberReady": ready
            }})
        };
        assert!(daemonset_ready(&ds(2, 2, 3, 3)).is_ok());
        assert!(daemonset_ready(&ds(2, 3, 0, 0)).is_ok(), "no node to cover is covered");
        assert_eq!(daemonset_ready(&ds(2, 2, 3, 2)).unwrap_err(), "ready on 2 of 3 nodes");
        assert_eq!(daemonset_ready(&ds(3, 2, 3, 3)).unwrap_err(), "at generation 2 of 3");
        assert!(daemonset_ready(&json!({"metadata": {"generation": 1}})).is_err());
    }
}
