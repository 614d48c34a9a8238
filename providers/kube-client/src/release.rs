//! `helm.release`: a chart rendered by helm, applied object by object as Argo CD does.
//!
//! ## Overview
//!
//! An apply (create and update alike):
//! 1. renders the chart ([`crate::helm`]), splits the output, refuses Helm hooks and labels every
//!    object with `app.kubernetes.io/managed-by: tessera` and `tessera.dev/release`
//!    ([`crate::manifests`]);
//! 2. applies the CRDs (server-side apply), waits until each is `Established` and forgets what
//!    discovery knew, so that the chart's custom resources resolve;
//! 3. gives every namespaced object without a namespace the release's, then applies the
//!    Namespaces, then the rest;
//! 4. prunes: deletes, and waits out, every object of the previous inventory that is no longer
//!    rendered;
//! 5. waits until the release's DaemonSets are ready on every node they must cover.
//!
//! An object that exists before Tessera first applies it and carries another release's label (or
//! none) is refused, never taken over; this is checked for every object before anything is
//! written.
//!
//! **The inventory** (the sorted ids of the applied objects) is reported in the observed
//! attributes, so it is in state; the engine hands it back to [`read`] as a read's `recorded`
//! (`Request::Read`, `ProviderExt::read_recorded`). `update` and `delete` receive no record, so
//! the inventory is also kept in the cluster: a ConfigMap `tessera-release-<name>` in the
//! release's namespace (ids only, never values), written before an apply with the union of the
//! old and the new inventory and after the prune with the new one, so that a crash in between
//! still prunes next time. When that ConfigMap is missing (deleted by hand), an update or a
//! delete takes for the previous inventory whatever carries the release label, of every kind the
//! cluster serves (a create does not look).
//!
//! **Secrets** are not kept in state: in `objects`, each value of a Secret's `data` and
//! `stringData` is replaced by its sha256, which still shows when it moved.
//!
//! **CRDs are never deleted**, by a prune or by deleting the release: deleting a CRD deletes every
//! custom resource of its kind in the cluster, Tessera's or not (Helm keeps them for the same
//! reason). **Values are never written** to the cluster or to a log.

use std::collections::{BTreeMap, BTreeSet};

use futures::{StreamExt, TryStreamExt};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tessera_kube::contract::{FIELD_MANAGER, LABEL_MANAGED_BY, LABEL_RELEASE};
use tessera_provider_api::{Attrs, CloudId, Observed, ProviderError, ResourceSpec};

use crate::cluster::{Cluster, object_id, parse_id};
use crate::helm::{self, ChartRef, Render};
use crate::manifests::{self, Phase};
use crate::object::{is_daemonset, owned};
use crate::settings::KubeClientSettings;
use crate::wire::Served;

pub const INVENTORY: &str = "inventory";
pub const OBJECTS: &str = "objects";
pub const IN_SYNC: &str = "inSync";

/// The status of an applied release.
pub const DEPLOYED: &str = "Deployed";

/// Requests in flight at once while applying or pruning a release.
const PARALLEL: usize = 8;

const RECORD_PREFIX: &str = "tessera-release-";

/// A release's spec attributes, checked.
#[derive(Debug, Clone)]
pub struct Release {
    pub name: String,
    pub namespace: String,
    pub chart: ChartRef,
    pub values: Value,
    pub kube_version: String,
}

impl Release {
    pub fn from_spec(spec: &ResourceSpec) -> Result<Self, ProviderError> {
        let text = |key: &str| {
            spec.attrs
                .get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| ProviderError::Fatal(format!("{} needs a `{key}`", spec.address)))
        };
        let digest = match spec.attrs.get("digest") {
            None | Some(Value::Null) => None,
            Some(Value::String(d)) => Some(d.clone()),
            Some(_) => return Err(ProviderError::Fatal(format!("{}: `digest` is a string or null", spec.address))),
        };
        Ok(Self {
            name: text("name")?,
            namespace: text("namespace")?,
            chart: ChartRef { reference: text("chart")?, version: text("version")?, digest },
            values: spec.attrs.get("values").cloned().unwrap_or_else(|| json!({})),
            kube_version: text("kubeVersion")?,
        })
    }

    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// `<namespace>/<name>` taken apart.
pub fn parse_release_id(id: &str) -> Result<(&str, &str), ProviderError> {
    id.split_once('/')
        .filter(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains('/'))
        .ok_or_else(|| ProviderError::Fatal(format!("`{id}` is not a release id (`<namespace>/<name>`)")))
}

fn record_id(namespace: &str, name: &str) -> String {
    tessera_kube::contract::object_id("v1", "ConfigMap", Some(namespace), &format!("{RECORD_PREFIX}{name}"))
}

/// A Secret's values replaced by their sha256 (other objects unchanged), for state.
pub fn redacted(mut obj: Value) -> Value {
    let is_secret = obj.get("apiVersion") == Some(&json!("v1")) && obj.get("kind") == Some(&json!("Secret"));
    if !is_secret {
        return obj;
    }
    for field in ["data", "stringData"] {
        if let Some(Value::Object(values)) = obj.get_mut(field) {
            for v in values.values_mut() {
                let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                *v = Value::String(format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes()))));
            }
        }
    }
    obj
}

/// The in-cluster copy of a release's inventory.
pub fn record(namespace: &str, name: &str, inventory: &BTreeSet<String>) -> Value {
    let label = manifests::release_label(&format!("{namespace}/{name}"));
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": format!("{RECORD_PREFIX}{name}"),
            "namespace": namespace,
            "labels": {LABEL_MANAGED_BY: FIELD_MANAGER, LABEL_RELEASE: label},
        },
        "data": {INVENTORY: serde_json::to_string(inventory).unwrap_or_else(|_| "[]".into())},
    })
}

/// The inventory the cluster's record holds, or `None` without a record of ours.
async fn recorded_inventory(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
) -> Result<Option<BTreeSet<String>>, ProviderError> {
    let Some(live) = cluster.get(&record_id(namespace, name)).await? else { return Ok(None) };
    let label = manifests::release_label(&format!("{namespace}/{name}"));
    if live.pointer("/metadata/labels").and_then(|l| l.get(LABEL_RELEASE)).and_then(Value::as_str) != Some(&label) {
        return Err(ProviderError::Fatal(format!(
            "ConfigMap {namespace}/{RECORD_PREFIX}{name} exists and is not ours (its `{LABEL_RELEASE}` label differs)"
        )));
    }
    // Tessera always writes the inventory: a record without it cannot say what to prune.
    let text = live
        .pointer(&format!("/data/{INVENTORY}"))
        .and_then(Value::as_str)
        .ok_or_else(|| ProviderError::Fatal(format!("{} has no `/data/{INVENTORY}`", record_id(namespace, name))))?;
    serde_json::from_str(text).map(Some).map_err(|e| {
        ProviderError::Fatal(format!("the inventory in {} does not parse: {e}", record_id(namespace, name)))
    })
}

async fn write_record(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    inventory: &BTreeSet<String>,
) -> Result<(), ProviderError> {
    let served = cluster.served_soon("v1", "ConfigMap").await?;
    cluster.apply(&served, &record(namespace, name, inventory)).await.map(|_| ())
}

/// The chart's objects as helm renders them, labelled, hooks refused, in helm's order.
pub async fn render(settings: &KubeClientSettings, r: &Release) -> Result<Vec<Value>, ProviderError> {
    let render = Render { release: &r.name, namespace: &r.namespace, values: &r.values, kube_version: &r.kube_version };
    let printed = helm::template(settings, &r.chart, &render).await?;
    let mut objects = manifests::split(&printed)?;
    manifests::refuse_hooks(&objects)?;
    let label = manifests::release_label(&r.id());
    for o in &mut objects {
        manifests::label(o, &label);
    }
    Ok(objects)
}

/// An object of the release, resolved to where its kind is served.
struct Placed {
    id: String,
    served: Served,
    manifest: Value,
}

/// Refuses, before anything is applied, objects that exist and are not this release's.
async fn claim(
    cluster: &Cluster,
    placed: &[Placed],
    prior: &BTreeSet<String>,
    label: &str,
) -> Result<(), ProviderError> {
    let fresh: Vec<&Placed> = placed.iter().filter(|p| !prior.contains(&p.id)).collect();
    let checks: Vec<_> = fresh
        .into_iter()
        .map(|p| async move {
            let o = parse_id(&p.id)?;
            let live = cluster.wire.get(&p.served, o.namespace, o.name).await?;
            let theirs = live.as_ref().is_some_and(|l| {
                l.pointer("/metadata/labels").and_then(|m| m.get(LABEL_RELEASE)).and_then(Value::as_str) != Some(label)
            });
            Ok::<_, ProviderError>(theirs.then(|| p.id.clone()))
        })
        .collect();
    let taken: Vec<String> =
        futures::stream::iter(checks).buffered(PARALLEL).try_collect::<Vec<_>>().await?.into_iter().flatten().collect();
    if taken.is_empty() {
        return Ok(());
    }
    Err(ProviderError::Fatal(format!(
        "these objects exist and are not ours (their `{LABEL_RELEASE}` label is not {label}): {}; delete them, \
         or label them to adopt them",
        taken.join(", ")
    )))
}

async fn apply_all(cluster: &Cluster, placed: &[Placed]) -> Result<BTreeMap<String, Value>, ProviderError> {
    let applies: Vec<_> = placed
        .iter()
        .map(|p| async move {
            let live = cluster.apply(&p.served, &p.manifest).await?;
            Ok::<_, ProviderError>((p.id.clone(), redacted(owned(&live))))
        })
        .collect();
    futures::stream::iter(applies).buffered(PARALLEL).try_collect().await
}

/// Deletes objects (never CRDs), everything else before Namespaces, and waits until they are gone.
async fn prune(cluster: &Cluster, ids: &BTreeSet<String>) -> Result<(), ProviderError> {
    let phase_of =
        |id: &str| parse_id(id).map(|o| manifests::phase(&json!({"apiVersion": o.api_version, "kind": o.kind})));
    for phase in [Phase::Rest, Phase::Namespaces] {
        let mut batch = Vec::new();
        for id in ids {
            if phase_of(id)? == phase {
                batch.push(id.clone());
            }
        }
        let deletes: Vec<_> = batch.iter().map(|id| cluster.delete(id)).collect();
        futures::stream::iter(deletes).buffer_unordered(PARALLEL).try_collect::<Vec<_>>().await?;
    }
    Ok(())
}

/// What carries the release label, of any kind the cluster serves: the inventory when the
/// record is missing (deleted by hand, or a create that crashed before writing it).
async fn labelled(cluster: &Cluster, label: &str) -> Result<BTreeSet<String>, ProviderError> {
    let selector = format!("{LABEL_RELEASE}={label}");
    let mut out = BTreeSet::new();
    for served in cluster.wire.deletable_kinds().await? {
        for item in cluster.wire.list(&served, &selector).await? {
            out.insert(object_id(&item)?);
        }
    }
    // The record is bookkeeping, not part of the release.
    out.retain(|id| parse_id(id).is_ok_and(|o| !(o.kind == "ConfigMap" && o.name.starts_with(RECORD_PREFIX))));
    Ok(out)
}

/// An object placed where its kind is served, with the release's namespace when it is namespaced
/// and names none; `None` when the kind is not served (yet) and `wait` is off.
async fn place(cluster: &Cluster, mut m: Value, namespace: &str, wait: bool) -> Result<Option<Placed>, ProviderError> {
    let text = |key: &str| {
        m.get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ProviderError::Fatal(format!("an object the chart renders for {namespace} has no `/{key}`")))
    };
    let (api_version, kind) = (text("apiVersion")?, text("kind")?);
    let served = if wait {
        cluster.served_soon(&api_version, &kind).await?
    } else {
        match cluster.served(&api_version, &kind).await? {
            Some(s) => s,
            None => return Ok(None),
        }
    };
    if served.namespaced {
        manifests::default_namespace(&mut m, namespace);
    }
    Ok(Some(Placed { id: object_id(&m)?, served, manifest: m }))
}

/// Applies a release (see the module docs). `fresh` for a create: without a record, nothing of
/// the release is looked for by label.
pub async fn apply(cluster: &Cluster, spec: &ResourceSpec, fresh: bool) -> Result<Observed, ProviderError> {
    let r = Release::from_spec(spec)?;
    let id = r.id();
    let label = manifests::release_label(&id);
    let mut objects = render(&cluster.settings, &r).await?;
    objects.sort_by_key(manifests::phase);
    let prior = match recorded_inventory(cluster, &r.namespace, &r.name).await? {
        Some(prior) => prior,
        None if fresh => BTreeSet::new(),
        None => labelled(cluster, &label).await?,
    };

    // Before anything is written: every object that may exist already (its kind is served; a
    // custom resource of a CRD this apply brings cannot) must be this release's.
    let mut existing = Vec::new();
    for m in &objects {
        existing.extend(place(cluster, m.clone(), &r.namespace, false).await?);
    }
    claim(cluster, &existing, &prior, &label).await?;

    let (crds, rest): (Vec<Value>, Vec<Value>) = objects.into_iter().partition(|o| manifests::phase(o) == Phase::Crds);
    let mut crds_placed = Vec::with_capacity(crds.len());
    for m in crds {
        crds_placed.extend(place(cluster, m, &r.namespace, true).await?);
    }
    let mut applied = apply_all(cluster, &crds_placed).await?;
    for crd in &crds_placed {
        // Placed, so its id (which needs the name) was made.
        let name = crd
            .manifest
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .ok_or_else(|| ProviderError::Fatal(format!("the CRD {} of {id} has no `/metadata/name`", crd.id)))?;
        cluster.established(&crd.served, name).await?;
    }
    if !crds_placed.is_empty() {
        cluster.wire.forget_discovery();
    }

    let mut placed = Vec::with_capacity(rest.len());
    for m in rest {
        placed.extend(place(cluster, m, &r.namespace, true).await?);
    }
    let inventory: BTreeSet<String> = crds_placed.iter().chain(&placed).map(|p| p.id.clone()).collect();
    if inventory.len() != crds_placed.len() + placed.len() {
        return Err(ProviderError::Fatal(format!("the chart of {id} renders the same object twice")));
    }

    let (namespaces, others): (Vec<Placed>, Vec<Placed>) =
        placed.into_iter().partition(|p| manifests::phase(&p.manifest) == Phase::Namespaces);
    applied.extend(apply_all(cluster, &namespaces).await?);
    // After the Namespaces, one of which may be the release's own.
    write_record(cluster, &r.namespace, &r.name, &prior.union(&inventory).cloned().collect()).await?;
    applied.extend(apply_all(cluster, &others).await?);

    let gone: BTreeSet<String> = prior.difference(&inventory).cloned().collect();
    prune(cluster, &gone).await?;
    write_record(cluster, &r.namespace, &r.name, &inventory).await?;

    let daemonsets: Vec<&Placed> = others.iter().filter(|p| is_daemonset(&p.manifest)).collect();
    let rollouts: Vec<_> =
        daemonsets.into_iter().map(|p| cluster.daemonset_rolled_out(&p.served, &p.manifest)).collect();
    futures::future::try_join_all(rollouts).await?;

    let mut attrs = spec.attrs.clone();
    attrs.insert(INVENTORY.into(), json!(inventory));
    attrs.insert(OBJECTS.into(), Value::Object(applied.into_iter().collect::<Map<_, _>>()));
    attrs.insert(IN_SYNC.into(), json!(true));
    Ok(Observed { id, status: DEPLOYED.into(), attrs })
}

/// The release as the cluster has it, given what state recorded of it (see the module docs).
pub async fn read(cluster: &Cluster, id: &CloudId, recorded: &Attrs) -> Result<Option<Observed>, ProviderError> {
    let (namespace, name) = parse_release_id(id)?;
    let in_cluster = recorded_inventory(cluster, namespace, name).await?;
    let inventory: BTreeSet<String> = match recorded.get(INVENTORY) {
        Some(list) => serde_json::from_value(list.clone())
            .map_err(|e| ProviderError::Fatal(format!("the recorded inventory of {id} does not parse: {e}")))?,
        None => match &in_cluster {
            Some(inv) => inv.clone(),
            None => return Ok(None),
        },
    };
    let reads: Vec<_> = inventory
        .iter()
        .map(|oid| async move { Ok::<_, ProviderError>((oid.clone(), cluster.get(oid).await?)) })
        .collect();
    let live: Vec<(String, Option<Value>)> = futures::stream::iter(reads).buffered(PARALLEL).try_collect().await?;
    let objects: Map<String, Value> =
        live.into_iter().filter_map(|(oid, l)| l.map(|l| (oid, redacted(owned(&l))))).collect();
    if objects.is_empty() && in_cluster.is_none() {
        return Ok(None);
    }
    let was = recorded.get(OBJECTS).and_then(Value::as_object);
    let in_sync = inventory
        .iter()
        .all(|oid| objects.get(oid).is_some_and(|now| was.is_none_or(|w| w.get(oid).is_none_or(|then| then == now))));
    let mut attrs = recorded.clone();
    attrs.insert(INVENTORY.into(), json!(inventory));
    attrs.insert(OBJECTS.into(), Value::Object(objects));
    attrs.insert(IN_SYNC.into(), json!(in_sync));
    Ok(Some(Observed { id: id.clone(), status: DEPLOYED.into(), attrs }))
}

/// The release a create of `spec` made, if its record is in the cluster.
pub async fn find(cluster: &Cluster, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
    let r = Release::from_spec(spec)?;
    let Some(inventory) = recorded_inventory(cluster, &r.namespace, &r.name).await? else { return Ok(None) };
    let mut recorded = spec.attrs.clone();
    recorded.insert(INVENTORY.into(), json!(inventory));
    read(cluster, &r.id(), &recorded).await
}

/// Deletes every object of the release except CRDs (from its record, or what carries its
/// label), then the record.
pub async fn delete(cluster: &Cluster, id: &CloudId) -> Result<(), ProviderError> {
    let (namespace, name) = parse_release_id(id)?;
    let recorded = recorded_inventory(cluster, namespace, name).await?;
    let had_record = recorded.is_some();
    let inventory = match recorded {
        Some(inventory) => inventory,
        None => labelled(cluster, &manifests::release_label(id)).await?,
    };
    let crd = |oid: &String| parse_id(oid).is_ok_and(|o| o.kind == "CustomResourceDefinition");
    if !had_record && inventory.iter().all(crd) {
        return Err(ProviderError::NotFound(format!("release {id}")));
    }
    prune(cluster, &inventory).await?;
    // Last, so that a delete that fails half-way is repeated from the same record.
    if had_record {
        cluster.delete(&record_id(namespace, name)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use tessera_provider_api::{Address, ProviderRef};

    use super::*;

    fn spec() -> ResourceSpec {
        ResourceSpec::new(Address::new("aws", "helm.release", "kps"), ProviderRef::new("kube", "eu-west-1"))
            .attr("name", "kps")
            .attr("namespace", "monitoring")
            .attr("chart", "oci://ghcr.io/prometheus-community/charts/kube-prometheus-stack")
            .attr("version", "88.5.3")
            .attr("digest", Value::Null)
            .attr("values", json!({"a": 1}))
            .attr("kubeVersion", "1.31")
            .attr("inSync", true)
    }

    #[test]
    fn a_release_spec_is_checked() {
        let r = Release::from_spec(&spec()).unwrap();
        assert_eq!(r.id(), "monitoring/kps");
        assert_eq!(r.chart.digest, None);
        let no_version =
            ResourceSpec { attrs: spec().attrs.into_iter().filter(|(k, _)| k != "version").collect(), ..spec() };
        assert!(Release::from_spec(&no_version).unwrap_err().to_string().contains("needs a `version`"));
        assert_eq!(parse_release_id("monitoring/kps").unwrap(), ("monitoring", "kps"));
        assert!(parse_release_id("kps").is_err() && parse_release_id("a/b/c").is_err());
    }

    #[test]
    fn secrets_reach_state_as_hashes_only() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                            "data": {"password": "aHVudGVyMg=="}, "stringData": {"token": "t0ken"}});
        let r = redacted(secret);
        assert!(!r.to_string().contains("aHVudGVyMg==") && !r.to_string().contains("t0ken"), "{r}");
        assert!(r["data"]["password"].as_str().unwrap().starts_with("sha256:"));
        let other = redacted(
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"password": "b3RoZXI="}}),
        );
        assert_ne!(r["data"]["password"], other["data"]["password"], "a changed secret still shows");
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}});
        assert_eq!(redacted(cm.clone()), cm);
    }

    #[test]
    fn the_record_holds_ids_and_never_values() {
        let inv: BTreeSet<String> = ["v1/ConfigMap/monitoring/x".to_string()].into();
        let rec = record("monitoring", "kps", &inv);
        assert_eq!(rec["metadata"]["name"], json!("tessera-release-kps"));
        assert_eq!(rec["metadata"]["labels"]["tessera.dev/release"], json!("monitoring_kps"));
        assert_eq!(rec["data"]["inventory"], json!("[\"v1/ConfigMap/monitoring/x\"]"));
        assert_eq!(record_id("monitoring", "kps"), "v1/ConfigMap/monitoring/tessera-release-kps");
    }
}
