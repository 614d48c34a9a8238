//! Managed node groups: one per pool. Scaling, labels and taints change in place through
//! UpdateNodegroupConfig, the version through UpdateNodegroupVersion; anything else replaces the
//! group under a new name (see `lower::generation`).

use std::collections::{BTreeMap, HashMap};

use aws_sdk_eks::types::{
    AmiTypes, CapacityTypes, NodegroupScalingConfig, Taint, TaintEffect, UpdateLabelsPayload, UpdateTaintsPayload,
};
use serde_json::{Value, json};
use tessera_provider_api::{Attrs, Observed, ProviderError, ResourceSpec};

use crate::attrs::{int, string_map, taints, text};
use crate::cluster::{retag, wait_update};
use crate::error::aws;
use crate::network::not_found_is_none;
use crate::wait::{Seen, until};
use crate::{Clients, EksProvider, iam, request_token};

/// Node groups are identified as `cluster/nodegroup`.
pub fn id(cluster: &str, name: &str) -> String {
    format!("{cluster}/{name}")
}

fn split(id: &str) -> Result<(&str, &str), ProviderError> {
    id.split_once('/').ok_or_else(|| ProviderError::Fatal(format!("malformed node group id `{id}`")))
}

fn taint_json(t: &Taint) -> Value {
    json!({ "key": t.key().unwrap_or_default(), "value": t.value().unwrap_or_default(), "effect": t.effect().map(TaintEffect::as_str).unwrap_or_default() })
}

pub async fn read(c: &Clients, id: &str) -> Result<Option<Observed>, ProviderError> {
    let (cluster, name) = split(id)?;
    let out = match c.eks.describe_nodegroup().cluster_name(cluster).nodegroup_name(name).send().await {
        Ok(o) => o,
        Err(e) => return not_found_is_none(aws("DescribeNodegroup", e)),
    };
    let Some(ng) = out.nodegroup() else { return Ok(None) };
    let scaling = ng.scaling_config();
    let mut taints: Vec<Value> = ng.taints().iter().map(taint_json).collect();
    taints.sort_by_key(|t| t.to_string());
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
    attrs.insert("subnetIds".into(), json!(ng.subnets()));
    attrs.insert("tags".into(), json!(tags));
    attrs.insert("arn".into(), json!(ng.nodegroup_arn()));
    let status = ng.status().map(|s| s.as_str().to_string()).unwrap_or_else(|| "UNKNOWN".into());
    Ok(Some(Observed { id: id.into(), status, attrs }))
}

fn eks_taints(spec: &ResourceSpec) -> Result<Vec<Taint>, ProviderError> {
    Ok(taints(&spec.attrs)?
        .into_iter()
        .map(|(k, v, e)| Taint::builder().key(k).value(v).effect(TaintEffect::from(e.as_str())).build())
        .collect())
}

async fn settle(p: &EksProvider, c: &Clients, id: &str) -> Result<Observed, ProviderError> {
    until(&p.poll, &format!("node group {id}"), || async {
        let obs = read(c, id).await?.ok_or_else(|| ProviderError::NotFound(format!("node group {id}")))?;
        match obs.status.as_str() {
            "ACTIVE" => Ok(Seen::Done(obs)),
            "CREATE_FAILED" | "DEGRADED" | "DELETE_FAILED" => {
                let (cluster, name) = split(id)?;
                let out = c
                    .eks
                    .describe_nodegroup()
                    .cluster_name(cluster)
                    .nodegroup_name(name)
                    .send()
                    .await
                    .map_err(|e| aws("DescribeNodegroup", e))?;
                let issues: Vec<String> = out
                    .nodegroup()
                    .and_then(|n| n.health())
                    .map(|h| h.issues().iter().filter_map(|i| i.message().map(str::to_string)).collect())
                    .unwrap_or_default();
                Err(ProviderError::Fatal(format!("node group {id} is {}: {}", obs.status, issues.join("; "))))
            }
            other => Ok(Seen::Pending(other.to_string())),
        }
    })
    .await
}

pub async fn create(p: &EksProvider, c: &Clients, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
    let a = &spec.attrs;
    let cluster = text(a, "cluster")?;
    let name = text(a, "name")?;
    let subnets = crate::network::subnets_of(c, spec).await?;
    let role = iam::role_arn(c, text(a, "nodeRole")?).await?;
    let labels: HashMap<String, String> = string_map(a, "labels")?;
    let taints = eks_taints(spec)?;
    let sent = c
        .eks
        .create_nodegroup()
        .cluster_name(cluster)
        .nodegroup_name(name)
        .node_role(role)
        .set_subnets(Some(subnets))
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
        .set_tags(Some(string_map(a, "tags")?))
        .client_request_token(request_token(spec))
        .send()
        .await;
    let id = id(cluster, name);
    if let Err(e) = sent {
        match aws("CreateNodegroup", e) {
            // Ours from an interrupted attempt (same address tag): adopt it.
            ProviderError::Conflict(m) => {
                let existing = read(c, &id).await?.ok_or_else(|| ProviderError::Conflict(m.clone()))?;
                if existing.attrs.get("tags") != spec.attrs.get("tags") {
                    return Err(ProviderError::Fatal(format!("{m} (and it is not tagged as {})", spec.address)));
                }
            }
            other => return Err(other),
        }
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
            // Keep the autoscaler's count, clamped into the new range.
            let current = live
                .attrs
                .get("desiredSize")
                .and_then(Value::as_i64)
                .and_then(|d| i32::try_from(d).ok())
                .unwrap_or(min);
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
            let remove: Vec<String> = live
                .attrs
                .get("labels")
                .and_then(Value::as_object)
                .map(|m| m.keys().filter(|k| !want.contains_key(*k)).cloned().collect())
                .unwrap_or_default();
            req = req.labels(
                UpdateLabelsPayload::builder()
                    .set_add_or_update_labels((!want.is_empty()).then_some(want))
                    .set_remove_labels((!remove.is_empty()).then_some(remove))
                    .build(),
            );
        }
        if has("taints") {
            let want = eks_taints(spec)?;
            let remove: Vec<Taint> = live
                .attrs
                .get("taints")
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter(|t| !spec.attrs.get("taints").and_then(Value::as_array).is_some_and(|w| w.contains(t)))
                        .map(|t| {
                            let f = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
                            Taint::builder()
                                .key(f("key"))
                                .value(f("value"))
                                .effect(TaintEffect::from(f("effect").as_str()))
                                .build()
                        })
                        .collect()
                })
                .unwrap_or_default();
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
