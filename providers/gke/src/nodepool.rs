//! Node pools: one per pool. Autoscaling bounds change through `setAutoscaling`; labels,
//! taints, resource labels and the version through `nodePools.update`; a machine type, spot or
//! image change replaces the pool under a new name (see `lower::pool_name`), beside the old one.
//!
//! Statuses: `PROVISIONING` and `RECONCILING` are waited through; `RUNNING` is done;
//! `RUNNING_WITH_ERROR` serves and is reported with its `statusMessage`; `ERROR` is fatal with
//! it; `STOPPING` means it is being deleted.

use google_cloud_container_v1::model::node_pool::Status;
use google_cloud_container_v1::model::{
    CreateNodePoolRequest, NodePool, SetNodePoolAutoscalingRequest, UpdateNodePoolRequest,
};
use serde_json::{Map, Value, json};
use tessera_provider_api::poll::{Seen, until};
use tessera_provider_api::{Attrs, Observed, ProviderError, ResourceSpec, TAGS_ATTR, generation_of};

use crate::error::{found, status_text};
use crate::ops::{Outcome, cluster_of};
use crate::{GkeProvider, int, labels, minor, present, request, same_owner, text};

/// Node pools are identified as `projects/P/locations/L/clusters/C/nodePools/N`.
pub fn id(spec: &ResourceSpec) -> Result<String, ProviderError> {
    Ok(format!("{}/nodePools/{}", text(&spec.attrs, "cluster")?, text(&spec.attrs, "name")?))
}

/// The `NodePool` of a create body (also the cluster's first pool), from a pool's attributes.
pub fn pool_body(a: &Attrs) -> Result<Value, ProviderError> {
    Ok(json!({
        "name": text(a, "name")?,
        "initialNodeCount": int(a, "initialNodeCount")?,
        "version": text(a, "version")?,
        "config": {
            "machineType": text(a, "machineType")?,
            "spot": a.get("spot").and_then(Value::as_bool).unwrap_or(false),
            "imageType": text(a, "imageType")?,
            "labels": a.get("labels").cloned().unwrap_or_else(|| json!({})),
            "taints": a.get("taints").cloned().unwrap_or_else(|| json!([])),
            "resourceLabels": labels::to_legal_labels(a.get(TAGS_ATTR))?,
        },
        "autoscaling": autoscaling(a)?,
        // No auto-upgrade: Tessera owns versions. Auto-repair stays on.
        "management": { "autoUpgrade": false, "autoRepair": true },
    }))
}

/// Whole-pool bounds: `total*NodeCount`, which GKE counts over all zones (see `lower`).
fn autoscaling(a: &Attrs) -> Result<Value, ProviderError> {
    Ok(json!({
        "enabled": true,
        "totalMinNodeCount": int(a, "minNodes")?,
        "totalMaxNodeCount": int(a, "maxNodes")?,
        "locationPolicy": "BALANCED",
    }))
}

async fn get(p: &GkeProvider, id: &str) -> Result<Option<NodePool>, ProviderError> {
    found(p.client().await?.get_node_pool().set_name(id).send().await, "nodePools.get")
}

pub async fn read(p: &GkeProvider, id: &str) -> Result<Option<Observed>, ProviderError> {
    Ok(get(p, id).await?.map(|np| observed(&np, id)))
}

fn status(np: &NodePool) -> String {
    #[allow(deprecated)]
    status_text(np.status.name(), &np.status_message, np.conditions.iter().map(|c| c.message.as_str()))
}

/// What `read` reports of a node pool. A value the answer lacks is left `null`, for the schema
/// check (`crate::schemas::nodepool`) to report.
pub(crate) fn observed(np: &NodePool, id: &str) -> Observed {
    let mut attrs = Attrs::new();
    attrs.insert("cluster".into(), json!(cluster_of(id)));
    attrs.insert("name".into(), present(&np.name));
    // A pool without its config is an answer Tessera cannot read: its values stay null.
    if let Some(config) = &np.config {
        let mut taints: Vec<Value> = config
            .taints
            .iter()
            .map(|t| json!({ "key": t.key, "value": t.value, "effect": t.effect.name().unwrap_or("EFFECT_UNSPECIFIED") }))
            .collect();
        taints.sort_by_key(|t| t.to_string());
        let node_labels: Map<String, Value> =
            config.labels.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        attrs.insert("machineType".into(), present(&config.machine_type));
        // proto3's false is the API's default: not a spot pool.
        attrs.insert("spot".into(), json!(config.spot));
        attrs.insert("imageType".into(), present(&config.image_type));
        attrs.insert("labels".into(), Value::Object(node_labels));
        attrs.insert("taints".into(), json!(taints));
        attrs.insert(TAGS_ATTR.into(), labels::to_tags(&config.resource_labels));
    }
    // No autoscaling config is GKE's "not autoscaled": no bounds to report.
    let scaling = np.autoscaling.as_ref();
    attrs.insert("minNodes".into(), json!(scaling.map(|s| s.total_min_node_count)));
    attrs.insert("maxNodes".into(), json!(scaling.map(|s| s.total_max_node_count)));
    attrs.insert("autoscaling".into(), json!(scaling.is_some_and(|s| s.enabled)));
    attrs.insert("initialNodeCount".into(), json!(np.initial_node_count));
    attrs.insert("version".into(), present(&minor(&np.version)));
    attrs.insert("currentVersion".into(), present(&np.version));
    Observed { id: id.to_string(), status: status(np), attrs }
}

/// Waits until the pool serves: RUNNING (or RUNNING_WITH_ERROR, which still does).
pub(crate) async fn settle(p: &GkeProvider, id: &str) -> Result<Observed, ProviderError> {
    until(&p.poll, &format!("node pool {id}"), || async {
        let np = get(p, id).await?.ok_or_else(|| ProviderError::NotFound(format!("node pool {id}")))?;
        match np.status {
            Status::Running | Status::RunningWithError => Ok(Seen::Done(observed(&np, id))),
            Status::Error => Err(ProviderError::Fatal(format!("node pool {id} is {}", status(&np)))),
            Status::Stopping => Err(ProviderError::Fatal(format!("node pool {id} is being deleted ({})", status(&np)))),
            _ => Ok(Seen::Pending(status(&np))),
        }
    })
    .await
}

/// The fields `update` converges, where the live pool differs from the spec.
const CONVERGED: [&str; 6] = ["version", "labels", "taints", "minNodes", "maxNodes", TAGS_ATTR];

pub async fn create(p: &GkeProvider, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
    let id = id(spec)?;
    let cluster = cluster_of(&id).to_string();
    let body = json!({ "parent": cluster, "nodePool": pool_body(&spec.attrs)? });
    let req: CreateNodePoolRequest = request("nodePools.create", body)?;
    let c = p.client().await?;
    let outcome =
        p.mutate(&cluster, "nodePools.create", || c.create_node_pool().with_request(req.clone()).send()).await?;
    if outcome == Outcome::AlreadyExists {
        let existing = read(p, &id).await?.ok_or_else(|| ProviderError::Conflict(format!("node pool {id}")))?;
        // Ours from an interrupted attempt, or the first pool that the cluster's create body
        // made (its address, and an older generation than a replacement's): adopt it.
        let first_pool = same_owner(spec, &existing.attrs) && generation_of(&existing.attrs) < spec.generation();
        if !spec.is_ours(&existing.attrs) && !first_pool {
            return Err(spec.not_ours(&format!("node pool {id}")));
        }
    }
    let live = settle(p, &id).await?;
    let changed: Vec<String> =
        CONVERGED.iter().filter(|f| live.attrs.get(**f) != spec.attrs.get(**f)).map(|f| f.to_string()).collect();
    if changed.is_empty() { Ok(live) } else { update(p, &id, spec, &changed).await }
}

pub async fn update(
    p: &GkeProvider,
    id: &str,
    spec: &ResourceSpec,
    changed: &[String],
) -> Result<Observed, ProviderError> {
    let a = &spec.attrs;
    let has = |f: &str| changed.iter().any(|c| c == f);
    let cluster = cluster_of(id);
    let c = p.client().await?;
    let live = read(p, id).await?.ok_or_else(|| ProviderError::NotFound(format!("node pool {id}")))?;
    // The pool's own image type, so that a version change moves nothing else.
    let image_type = text(&live.attrs, "imageType")?.to_string();

    if has("version") {
        let req: UpdateNodePoolRequest = request(
            "nodePools.update",
            json!({ "name": id, "nodeVersion": text(a, "version")?, "imageType": image_type }),
        )?;
        p.mutate(cluster, "nodePools.update (version)", || c.update_node_pool().with_request(req.clone()).send())
            .await?;
    }
    if has("labels") || has("taints") || has(TAGS_ATTR) {
        // `nodeVersion` and `imageType` are required: the pool's own, so nothing else moves.
        let current = read(p, id).await?.ok_or_else(|| ProviderError::NotFound(format!("node pool {id}")))?;
        let mut body = json!({
            "name": id,
            "nodeVersion": text(&current.attrs, "currentVersion")?,
            "imageType": image_type,
        });
        if has("labels") {
            body["labels"] = json!({ "labels": a.get("labels").cloned().unwrap_or_else(|| json!({})) });
        }
        if has("taints") {
            body["taints"] = json!({ "taints": a.get("taints").cloned().unwrap_or_else(|| json!([])) });
        }
        if has(TAGS_ATTR) {
            body["resourceLabels"] = json!({ "labels": labels::to_legal_labels(a.get(TAGS_ATTR))? });
        }
        let req: UpdateNodePoolRequest = request("nodePools.update", body)?;
        p.mutate(cluster, "nodePools.update", || c.update_node_pool().with_request(req.clone()).send()).await?;
    }
    if has("minNodes") || has("maxNodes") {
        let req: SetNodePoolAutoscalingRequest =
            request("nodePools.setAutoscaling", json!({ "name": id, "autoscaling": autoscaling(a)? }))?;
        p.mutate(cluster, "nodePools.setAutoscaling", || {
            c.set_node_pool_autoscaling().with_request(req.clone()).send()
        })
        .await?;
    }
    settle(p, id).await
}

pub async fn delete(p: &GkeProvider, id: &str) -> Result<(), ProviderError> {
    let c = p.client().await?;
    p.mutate(cluster_of(id), "nodePools.delete", || c.delete_node_pool().set_name(id).send()).await?;
    Ok(())
}
