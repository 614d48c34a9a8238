//! `kube.object`: one Kubernetes object, server-side applied.
//!
//! ## Overview
//!
//! - create and update apply the spec's `manifest` as `tessera`, forced, once its kind is served
//!   (a custom resource waits for its CRD); a DaemonSet then waits until it is ready on every node
//!   it must cover, an object naming DaemonSets its operator makes
//!   ([`tessera_kube::contract::ANNOTATION_WAIT_FOR`]) until each of them is, and a CRD until it is
//!   `Established`;
//! - read is the live object projected onto the fields `tessera` owns ([`crate::fields`]);
//! - delete waits until the object is gone;
//! - find reads the object by its deterministic name and adopts it only if its ownership labels
//!   (`tessera.dev/address`, and `tessera.dev/fleet` and `tessera.dev/generation` as the spec
//!   carries them, in `manifest.metadata.labels`) match the spec's; another object of that name
//!   is refused, and so is a create over it.

use serde_json::{Map, Value, json};
use tessera_kube::contract::FIELD_MANAGER;
use tessera_provider_api::{
    Attrs, CloudId, Observed, ProviderError, ResourceSpec, TAG_ADDRESS, TAG_FLEET, TAG_GENERATION,
};

use crate::cluster::{Cluster, object_id, parse_id};
use crate::fields;

/// The attribute that holds the object.
pub const MANIFEST: &str = "manifest";

/// The status of an object that is there.
pub const LIVE: &str = "Live";

/// What Tessera owns of a live object (its names, when it owns nothing).
pub fn owned(live: &Value) -> Value {
    fields::project(live, FIELD_MANAGER).unwrap_or_else(|| {
        let mut meta = Map::new();
        for key in ["name", "namespace"] {
            if let Some(v) = live.pointer(&format!("/metadata/{key}")) {
                meta.insert(key.into(), v.clone());
            }
        }
        json!({"apiVersion": live.get("apiVersion"), "kind": live.get("kind"), "metadata": meta})
    })
}

pub fn observed(id: CloudId, live: &Value) -> Observed {
    let mut attrs = Attrs::new();
    attrs.insert(MANIFEST.into(), owned(live));
    Observed { id, status: LIVE.into(), attrs }
}

pub fn manifest(spec: &ResourceSpec) -> Result<&Value, ProviderError> {
    spec.attrs
        .get(MANIFEST)
        .filter(|m| m.is_object())
        .ok_or_else(|| ProviderError::Fatal(format!("{} has no `{MANIFEST}` object", spec.address)))
}

fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/labels").and_then(|l| l.get(key)).and_then(Value::as_str)
}

/// Whether `live` is the object `wanted` (a spec's manifest) makes: the same ownership labels.
pub fn ours(wanted: &Value, live: &Value) -> Result<bool, ProviderError> {
    let Some(address) = label(wanted, TAG_ADDRESS) else {
        return Err(ProviderError::Fatal(format!(
            "{} carries no `{TAG_ADDRESS}` label, so an existing object of its name cannot be told apart from one \
             Tessera made",
            object_id(wanted)?
        )));
    };
    let generation = |o: &Value| label(o, TAG_GENERATION).unwrap_or("0").to_string();
    Ok(label(live, TAG_ADDRESS) == Some(address)
        && label(wanted, TAG_FLEET).is_none_or(|f| label(live, TAG_FLEET) == Some(f))
        && generation(live) == generation(wanted))
}

fn not_ours(id: &str) -> ProviderError {
    ProviderError::Fatal(format!(
        "{id} exists and is not ours (its `{TAG_ADDRESS}` label differs); delete it, or label it to adopt it"
    ))
}

pub async fn read(cluster: &Cluster, id: &CloudId) -> Result<Option<Observed>, ProviderError> {
    Ok(cluster.get(id).await?.map(|live| observed(id.clone(), &live)))
}

pub async fn find(cluster: &Cluster, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
    let wanted = manifest(spec)?;
    let id = object_id(wanted)?;
    match cluster.get(&id).await? {
        None => Ok(None),
        Some(live) if ours(wanted, &live)? => Ok(Some(observed(id, &live))),
        Some(_) => Err(not_ours(&id)),
    }
}

/// Applies the spec's object; `claim` first refuses an existing object that is not ours.
pub async fn apply(cluster: &Cluster, spec: &ResourceSpec, claim: bool) -> Result<Observed, ProviderError> {
    let wanted = manifest(spec)?;
    let id = object_id(wanted)?;
    let o = parse_id(&id)?;
    let served = cluster.served_soon(o.api_version, o.kind).await?;
    Cluster::check_scope(&served, wanted)?;
    if claim
        && let Some(live) = cluster.wire.get(&served, o.namespace, o.name).await?
        && !ours(wanted, &live)?
    {
        return Err(not_ours(&id));
    }
    let live = cluster.apply(&served, wanted).await?;
    if is_daemonset(wanted) {
        cluster.daemonset_rolled_out(&served, wanted).await?;
    }
    cluster.operator_daemonsets_rolled_out(wanted).await?;
    if is_crd(wanted) {
        // Done when its kind can be used: custom resources of it are applied next.
        cluster.established(&served, o.name).await?;
        cluster.wire.forget_discovery();
    }
    Ok(observed(id, &live))
}

pub fn is_crd(obj: &Value) -> bool {
    obj.get("apiVersion").and_then(Value::as_str) == Some("apiextensions.k8s.io/v1")
        && obj.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition")
}

pub fn is_daemonset(obj: &Value) -> bool {
    obj.get("apiVersion").and_then(Value::as_str) == Some("apps/v1")
        && obj.get("kind").and_then(Value::as_str) == Some("DaemonSet")
}

pub async fn delete(cluster: &Cluster, id: &CloudId) -> Result<(), ProviderError> {
    if cluster.delete(id).await? { Ok(()) } else { Err(ProviderError::NotFound(id.clone())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(labels: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n", "labels": labels}})
    }

    #[test]
    fn ownership_is_address_fleet_and_generation() {
        let wanted = obj(json!({"tessera.dev/address": "a", "tessera.dev/fleet": "f"}));
        assert!(ours(&wanted, &obj(json!({"tessera.dev/address": "a", "tessera.dev/fleet": "f"}))).unwrap());
        assert!(!ours(&wanted, &obj(json!({"tessera.dev/address": "b", "tessera.dev/fleet": "f"}))).unwrap());
        assert!(!ours(&wanted, &obj(json!({"tessera.dev/address": "a", "tessera.dev/fleet": "g"}))).unwrap());
        assert!(!ours(&wanted, &obj(json!({}))).unwrap());
        let old = obj(json!({"tessera.dev/address": "a", "tessera.dev/fleet": "f"}));
        let next = obj(json!({"tessera.dev/address": "a", "tessera.dev/fleet": "f", "tessera.dev/generation": "1"}));
        assert!(!ours(&next, &old).unwrap(), "a replacement never adopts the object it replaces");
        let err = ours(&obj(json!({})), &old).unwrap_err().to_string();
        assert!(err.contains("carries no `tessera.dev/address` label"), "{err}");
    }

    #[test]
    fn an_object_tessera_owns_nothing_of_still_reads_as_its_names() {
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}, "data": {"a": "b"}});
        assert_eq!(
            owned(&live),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}})
        );
    }
}
