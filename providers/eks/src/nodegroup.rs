//! Managed node groups: one per pool. Scaling, labels and taints change in place through
//! UpdateNodegroupConfig, the version through UpdateNodegroupVersion; a machine change replaces
//! the group under a new name (see `lower::name_suffix`), beside the old one.
//!
//! The cluster name, node role ARN and subnet ids arrive resolved (references to the cluster's
//! `name`, the node role's `arn` and the subnets' `id`); `read` reports them as `cluster`,
//! `nodeRoleArn` and `subnetIds`, in the order EKS keeps them (the order they were given in).

use std::collections::{BTreeMap, HashMap};

use aws_sdk_eks::types::{
    AmiTypes, CapacityTypes, Nodegroup, NodegroupScalingConfig, NodegroupStatus, Taint, TaintEffect,
    UpdateLabelsPayload, UpdateTaintsPayload,
};
use serde_json::{Value, json};
use tessera_provider_api::{Attrs, Observed, ProviderError, ResourceSpec, TAGS_ATTR};

use crate::attrs::{about, int, string_map, taints, text, texts};
use crate::cluster::{retag, role_not_yet_visible, wait_update};
use crate::error::aws;
use crate::network::not_found_is_none;
use crate::wait::{Seen, until};
use crate::{Clients, EksProvider, not_ours, ours, request_token};

/// Node groups are identified as `cluster/nodegroup`.
pub fn id(cluster: &str, name: &str) -> String {
    format!("{cluster}/{name}")
}

fn split(id: &str) -> Result<(&str, &str), ProviderError> {
    id.split_once('/').ok_or_else(|| ProviderError::Fatal(format!("malformed node group id `{id}`")))
}

/// A taint as lowering writes it. EKS leaves `value` out of a taint that has none, which
/// lowering writes as "" (Kubernetes' empty value); a key or an effect is never absent from a
/// well-formed answer, so an absent one stays null and the schema check names it.
fn taint_json(t: &Taint) -> Value {
    json!({ "key": t.key(), "value": t.value().unwrap_or_default(), "effect": t.effect().map(TaintEffect::as_str) })
}

async fn describe(c: &Clients, id: &str) -> Result<Option<Nodegroup>, ProviderError> {
    let (cluster, name) = split(id)?;
    match c.eks.describe_nodegroup().cluster_name(cluster).nodegroup_name(name).send().await {
        Ok(out) => Ok(out.nodegroup().cloned()),
        Err(e) => not_found_is_none(aws("DescribeNodegroup", e)),
    }
}

pub async fn read(c: &Clients, id: &str) -> Result<Option<Observed>, ProviderError> {
    Ok(describe(c, id).await?.map(|ng| observed(&ng, id)))
}

/// What `read` reports of a node group, from DescribeNodegroup's (or CreateNodegroup's) response.
fn observed(ng: &Nodegroup, id: &str) -> Observed {
    let scaling = ng.scaling_config();
    let mut taints: Vec<Value> = ng.taints().iter().map(taint_json).collect();
    taints.sort_by_key(|t| t.to_string());
    // EKS leaves `labels` and `tags` out when there are none: absent is empty.
    let labels: BTreeMap<&String, &String> = ng.labels().map(|l| l.iter().collect()).unwrap_or_default();
    let tags: BTreeMap<&String, &String> = ng.tags().map(|t| t.iter().collect()).unwrap_or_default();
    let mut attrs = Attrs::new();
    attrs.insert("cluster".into(), json!(ng.cluster_name()));
    attrs.insert("name".into(), json!(ng.nodegroup_name()));
    attrs.insert("instanceType".into(), json!(ng.instance_types().first()));
    attrs.insert("amiType".into(), json!(ng.ami_type().map(AmiTypes::as_str)));
    attrs.insert("capacityType".into(), json!(ng.capacity_type().map(CapacityTypes::as_str)));
    attrs.insert("minSize".into(), json!(scaling.and_then(|s| s.min_size())));
    attrs.insert("maxSize".into(), json!(scaling.and_then(|s| s.max_size())));
    attrs.insert("desiredSize".into(), json!(scaling.and_then(|s| s.desired_size())));
    attrs.insert("labels".into(), json!(labels));
    attrs.insert("taints".into(), json!(taints));
    attrs.insert("version".into(), json!(ng.version()));
    attrs.insert("nodeRoleArn".into(), json!(ng.node_role()));
    attrs.insert("subnetIds".into(), json!(ng.subnets()));
    attrs.insert(TAGS_ATTR.into(), json!(tags));
    attrs.insert("arn".into(), json!(ng.nodegroup_arn()));
    let status = ng.status().map(|s| s.as_str().to_string()).unwrap_or_else(|| "UNKNOWN".into());
    Observed { id: id.into(), status, attrs }
}

fn eks_taints(spec: &ResourceSpec) -> Result<Vec<Taint>, ProviderError> {
    Ok(taints(&spec.attrs)?
        .into_iter()
        .map(|(k, v, e)| Taint::builder().key(k).value(v).effect(TaintEffect::from(e.as_str())).build())
        .collect())
}

async fn settle(p: &EksProvider, c: &Clients, id: &str) -> Result<Observed, ProviderError> {
    until(&p.poll, &format!("node group {id}"), || async {
        let ng = describe(c, id).await?.ok_or_else(|| ProviderError::NotFound(format!("node group {id}")))?;
        let obs = observed(&ng, id);
        match ng.status() {
            Some(NodegroupStatus::Active) => Ok(Seen::Done(obs)),
            Some(NodegroupStatus::CreateFailed | NodegroupStatus::Degraded | NodegroupStatus::DeleteFailed) => {
                let issues: Vec<String> = ng
                    .health()
                    .map(|h| h.issues().iter().filter_map(|i| i.message().map(str::to_string)).collect())
                    .unwrap_or_default();
                Err(ProviderError::Fatal(format!("node group {id} is {}: {}", obs.status, issues.join("; "))))
            }
            _ => Ok(Seen::Pending(obs.status)),
        }
    })
    .await
}

pub async fn create(p: &EksProvider, c: &Clients, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
    let a = &spec.attrs;
    let cluster = text(a, "cluster")?;
    let name = text(a, "name")?;
    let labels: HashMap<String, String> = string_map(a, "labels")?;
    let taints = eks_taints(spec)?;
    let sent = c
        .eks
        .create_nodegroup()
        .cluster_name(cluster)
        .nodegroup_name(name)
        .node_role(text(a, "nodeRoleArn")?)
        .set_subnets(Some(texts(a, "subnetIds")?))
        .scaling_config(
            NodegroupScalingConfig::builder()
                .min_size(int(a, "minSize")?)
                .max_size(int(a, "maxSize")?)
                .desired_size(int(a, "desiredSize")?)
                .build(),
        )
        .instance_types(text(a, "instanceType")?)
        .ami_type(AmiTypes::from(text(a, "amiType")?))
        .capacity_type(CapacityTypes::from(text(a, "capacityType")?))
        .set_labels(Some(labels))
        .set_taints((!taints.is_empty()).then_some(taints))
        .version(text(a, "version")?)
        .set_tags(Some(string_map(a, TAGS_ATTR)?))
        .client_request_token(request_token(spec))
        .send()
        .await;
    let id = id(cluster, name);
    match sent {
        // Usable at once (moto): the response is what a read would report.
        Ok(out) => {
            if let Some(ng) = out.nodegroup().filter(|ng| ng.status() == Some(&NodegroupStatus::Active)) {
                let made = observed(ng, &id);
                if ours(spec, &made.attrs) {
                    return Ok(made);
                }
            }
        }
        Err(e) => match role_not_yet_visible(aws("CreateNodegroup", e)) {
            // Ours from an interrupted attempt (this generation of this address): adopt it.
            // Anyone else's, or the group this one replaces under the same name: refuse.
            ProviderError::Conflict(m) => {
                let existing = read(c, &id).await?.ok_or_else(|| ProviderError::Conflict(m.clone()))?;
                if !ours(spec, &existing.attrs) {
                    return Err(not_ours(spec, &format!("node group {id}")));
                }
            }
            other => return Err(other),
        },
    }
    settle(p, c, &id).await
}

pub async fn update(
    p: &EksProvider,
    c: &Clients,
    id: &str,
    spec: &ResourceSpec,
    changed: &[String],
) -> Result<Observed, ProviderError> {
    let (cluster, name) = split(id)?;
    let a = &spec.attrs;
    let has = |f: &str| changed.iter().any(|c| c == f);
    let live = read(c, id).await?.ok_or_else(|| ProviderError::NotFound(format!("node group {id}")))?;

    if has("version") {
        let out = c
            .eks
            .update_nodegroup_version()
            .cluster_name(cluster)
            .nodegroup_name(name)
            .version(text(a, "version")?)
            .send()
            .await
            .map_err(|e| aws("UpdateNodegroupVersion", e))?;
        let update = out
            .update()
            .and_then(|u| u.id())
            .ok_or_else(|| ProviderError::Fatal("UpdateNodegroupVersion returned no update id".into()))?;
        wait_update(p, c, cluster, Some(name), update).await?;
    }

    if has("minSize") || has("maxSize") || has("labels") || has("taints") {
        let mut req = c.eks.update_nodegroup_config().cluster_name(cluster).nodegroup_name(name);
        if has("minSize") || has("maxSize") {
            let (min, max) = (int(a, "minSize")?, int(a, "maxSize")?);
            // Keep the autoscaler's count, clamped into the new range; one that cannot be read
            // is an error, not the minimum (which would scale a busy group down).
            let current = int(&live.attrs, "desiredSize").map_err(|e| about(&format!("node group {id}"), e))?;
            req = req.scaling_config(
                NodegroupScalingConfig::builder()
                    .min_size(min)
                    .max_size(max)
                    .desired_size(current.clamp(min.max(0), max))
                    .build(),
            );
        }
        if has("labels") {
            let want = string_map(a, "labels")?;
            let have = string_map(&live.attrs, "labels").map_err(|e| about(&format!("node group {id}"), e))?;
            let remove: Vec<String> = have.into_keys().filter(|k| !want.contains_key(k)).collect();
            req = req.labels(
                UpdateLabelsPayload::builder()
                    .set_add_or_update_labels((!want.is_empty()).then_some(want))
                    .set_remove_labels((!remove.is_empty()).then_some(remove))
                    .build(),
            );
        }
        if has("taints") {
            let want = eks_taints(spec)?;
            let wanted = taints(a)?;
            let have = taints(&live.attrs).map_err(|e| about(&format!("node group {id}"), e))?;
            let remove: Vec<Taint> = have
                .into_iter()
                .filter(|t| !wanted.contains(t))
                .map(|(k, v, e)| Taint::builder().key(k).value(v).effect(TaintEffect::from(e.as_str())).build())
                .collect();
            req = req.taints(
                UpdateTaintsPayload::builder()
                    .set_add_or_update_taints((!want.is_empty()).then_some(want))
                    .set_remove_taints((!remove.is_empty()).then_some(remove))
                    .build(),
            );
        }
        req.send().await.map_err(|e| aws("UpdateNodegroupConfig", e))?;
        settle(p, c, id).await?;
    }

    if has("tags") {
        retag(c, text(&live.attrs, "arn")?, spec, &live.attrs).await?;
    }
    read(c, id).await?.ok_or_else(|| ProviderError::NotFound(format!("node group {id}")))
}

pub async fn delete(p: &EksProvider, c: &Clients, id: &str) -> Result<(), ProviderError> {
    let (cluster, name) = split(id)?;
    c.eks
        .delete_nodegroup()
        .cluster_name(cluster)
        .nodegroup_name(name)
        .send()
        .await
        .map_err(|e| aws("DeleteNodegroup", e))?;
    until(&p.poll, &format!("deleting node group {id}"), || async {
        match read(c, id).await? {
            None => Ok(Seen::Done(())),
            Some(o) => Ok(Seen::Pending(o.status)),
        }
    })
    .await
}
