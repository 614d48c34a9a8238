//! Agent pools (`agentPools/{name}`): the pool bodies Tessera sends, what it reads back, and the
//! calls for the pools that are resources of their own. The system pool, which belongs to the
//! cluster resource, goes through the same functions from [`crate::cluster`].

use reqwest::Method;
use serde_json::{Value, json};
use tessera_provider_api::{Attrs, CloudId, Observed, ProviderError, ResourceSpec};

use crate::arm::{Condition, Ends, provisioning_state};
use crate::lower::{SPOT_LABEL, SPOT_TAINT};
use crate::model::{AgentPool, PoolProperties, Tags};
use crate::{API, AksProvider, fatal_attrs, not_ours, ours};

/// A pool's id: its cluster's id and name.
pub fn id(cluster: &str, name: &str) -> String {
    format!("{cluster}/agentPools/{name}")
}

/// The cluster id in a pool's id.
pub fn cluster_of(pool_id: &str) -> Result<&str, ProviderError> {
    pool_id
        .rsplit_once("/agentPools/")
        .map(|(cluster, _)| cluster)
        .ok_or_else(|| ProviderError::Fatal(format!("`{pool_id}` is not an agent pool id")))
}

/// The properties to send for a pool whose owned fields are `profile` (lowering's shape), at
/// `version`, in `mode`, with `count` nodes, tagged `tags`.
pub fn properties(
    profile: &Value,
    mode: &str,
    version: &str,
    count: u32,
    tags: Tags,
) -> Result<PoolProperties, ProviderError> {
    let mut p: PoolProperties = serde_json::from_value(profile.clone()).map_err(|e| fatal_attrs("the pool", e))?;
    let spot = p.scale_set_priority.as_deref() == Some("Spot");
    if spot {
        // Evicted spot nodes are deleted, and any price up to on-demand is paid (-1).
        p.scale_set_eviction_policy = Some("Delete".into());
        p.spot_max_price = Some(-1.0);
    }
    if p.enable_auto_scaling != Some(true) {
        p.min_count = None;
        p.max_count = None;
    }
    if p.availability_zones.as_ref().is_some_and(Vec::is_empty) {
        p.availability_zones = None;
    }
    p.mode = Some(mode.into());
    p.orchestrator_version = Some(version.into());
    p.count = Some(count);
    p.os_type = Some("Linux".into());
    p.pool_type = Some("VirtualMachineScaleSets".into());
    p.tags = Some(tags);
    Ok(p)
}

/// The owned fields of a live pool, in lowering's shape: the taint and label AKS puts on every
/// spot pool are AKS's, not drift.
///
/// ARM leaves `nodeTaints`, `nodeLabels` and `availabilityZones` out when there are none (absent
/// is empty), and `scaleSetPriority` out of a regular pool (documented default `Regular`).
pub fn profile(name: &str, p: &PoolProperties) -> Value {
    let taints: Vec<String> = {
        let mut t: Vec<String> =
            p.node_taints.clone().unwrap_or_default().into_iter().filter(|t| t != SPOT_TAINT).collect();
        t.sort();
        t
    };
    let mut labels = p.node_labels.clone().unwrap_or_default();
    labels.remove(SPOT_LABEL);
    let autoscaled = p.enable_auto_scaling == Some(true);
    json!({
        "name": name,
        "vmSize": p.vm_size,
        "scaleSetPriority": p.scale_set_priority.clone().unwrap_or_else(|| "Regular".into()),
        "enableAutoScaling": autoscaled,
        "minCount": if autoscaled { p.min_count } else { None },
        "maxCount": if autoscaled { p.max_count } else { None },
        "nodeLabels": labels,
        "nodeTaints": taints,
        "availabilityZones": p.availability_zones.clone().unwrap_or_default(),
    })
}

/// A live pool's attributes, as lowering writes an `aks.agentPool`'s.
fn observed(pool_id: &str, pool: &AgentPool) -> Result<Observed, ProviderError> {
    // `rsplit` yields at least one part: the default is never taken.
    let name = pool_id.rsplit('/').next().unwrap_or_default();
    let p = &pool.properties;
    let Value::Object(mut attrs) = profile(name, p) else { return Err(fatal_attrs("the pool", "not an object")) };
    attrs.insert("cluster".into(), cluster_of(pool_id)?.into());
    attrs.insert("mode".into(), json!(p.mode));
    attrs.insert("count".into(), json!(p.count));
    attrs.insert("orchestratorVersion".into(), json!(p.orchestrator_version));
    attrs.insert("vnetSubnetID".into(), json!(p.vnet_subnet_id));
    // ARM leaves `tags` out of an untagged pool: absent is no tags.
    attrs.insert("tags".into(), json!(p.tags.clone().unwrap_or_default()));
    Ok(Observed {
        id: pool_id.to_string(),
        // The status, not an attribute: none reported reads as settled (see `types::recover`).
        status: p.provisioning_state.clone().unwrap_or_default(),
        attrs: attrs.into_iter().collect::<Attrs>(),
    })
}

pub async fn get(aks: &AksProvider, pool_id: &str) -> Result<Option<(AgentPool, Option<String>)>, ProviderError> {
    let Some(reply) = aks.arm.get(pool_id, API).await? else { return Ok(None) };
    let etag = reply.etag();
    let pool: AgentPool = serde_json::from_value(reply.body).map_err(|e| fatal_attrs("the agent pool answer", e))?;
    Ok(Some((pool, etag)))
}

pub async fn read(aks: &AksProvider, pool_id: &str) -> Result<Option<Observed>, ProviderError> {
    match get(aks, pool_id).await? {
        Some((pool, _)) => observed(pool_id, &pool).map(Some),
        None => Ok(None),
    }
}

/// PUTs a pool under `condition` and waits for it to settle.
pub async fn put(
    aks: &AksProvider,
    pool_id: &str,
    properties: PoolProperties,
    condition: Condition<'_>,
) -> Result<(), ProviderError> {
    let body = serde_json::to_value(AgentPool { id: None, name: None, properties })
        .map_err(|e| fatal_attrs("the agent pool body", e))?;
    let reply = aks.arm.send(Method::PUT, pool_id, API, Some(&body), condition).await?;
    let what = format!("agent pool {pool_id}");
    if provisioning_state(&reply.body) == Some("Succeeded") && reply.headers.get("azure-asyncoperation").is_none() {
        return Ok(());
    }
    aks.arm.settle(&reply, pool_id, API, &what).await.map(|_| ())
}

/// Deletes a pool and waits until it is gone.
pub async fn remove(aks: &AksProvider, pool_id: &str) -> Result<(), ProviderError> {
    let reply = aks.arm.send(Method::DELETE, pool_id, API, None, Condition::None).await?;
    match aks.arm.settle(&reply, pool_id, API, &format!("deleting agent pool {pool_id}")).await? {
        Ends::Gone => Ok(()),
        Ends::Settled => Err(ProviderError::Conflict(format!("agent pool {pool_id} is still there after its delete"))),
    }
}

/// The node count to send: a fixed pool's from the spec; an autoscaled pool's stays what the
/// autoscaler made it, within the new bounds.
pub fn count(spec_count: u32, profile: &Value, live: Option<u32>) -> u32 {
    let autoscaled = profile.get("enableAutoScaling").and_then(Value::as_bool) == Some(true);
    let bound = |k: &str| profile.get(k).and_then(Value::as_u64).and_then(|v| u32::try_from(v).ok());
    match (autoscaled, live, bound("minCount"), bound("maxCount")) {
        (true, Some(live), Some(min), Some(max)) => live.clamp(min, max),
        _ => spec_count,
    }
}

fn spec_parts(spec: &ResourceSpec) -> Result<(String, String, Tags), ProviderError> {
    let text = |k: &str| spec.attrs.get(k).and_then(Value::as_str).map(str::to_string);
    let cluster = text("cluster").ok_or_else(|| fatal_attrs("the pool", "no cluster"))?;
    let name = text("name").ok_or_else(|| fatal_attrs("the pool", "no name"))?;
    let tags = spec.attrs.get("tags").cloned().ok_or_else(|| fatal_attrs("the pool", "no tags"))?;
    let tags: Tags = serde_json::from_value(tags).map_err(|e| fatal_attrs("the pool's tags", e))?;
    Ok((cluster, name, tags))
}

fn desired(spec: &ResourceSpec, live_count: Option<u32>) -> Result<PoolProperties, ProviderError> {
    let (_, _, tags) = spec_parts(spec)?;
    let whole = Value::Object(spec.attrs.clone().into_iter().collect());
    let text =
        |k: &str| spec.attrs.get(k).and_then(Value::as_str).ok_or_else(|| fatal_attrs("the pool", format!("no `{k}`")));
    let spec_count = spec
        .attrs
        .get("count")
        .and_then(Value::as_u64)
        .and_then(|c| u32::try_from(c).ok())
        .ok_or_else(|| fatal_attrs("the pool", "no `count`"))?;
    let mut p =
        properties(&whole, text("mode")?, text("orchestratorVersion")?, count(spec_count, &whole, live_count), tags)?;
    p.vnet_subnet_id = spec.attrs.get("vnetSubnetID").and_then(Value::as_str).map(str::to_string);
    Ok(p)
}

pub async fn create(aks: &AksProvider, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
    let (cluster, name, _) = spec_parts(spec)?;
    let pool_id = id(&cluster, &name);
    let _one_at_a_time = aks.serial.lock(&cluster.to_ascii_lowercase()).await;
    match put(aks, &pool_id, desired(spec, None)?, Condition::Absent).await {
        Ok(()) => {}
        // It exists: a repeat of our own create (adopt it once it settles), or someone else's.
        Err(ProviderError::Conflict(_)) => {
            let live =
                read(aks, &pool_id).await?.ok_or_else(|| ProviderError::Conflict(format!("{pool_id} is changing")))?;
            if !ours(spec, &live.attrs) {
                return Err(not_ours(spec, &format!("agent pool {pool_id}")));
            }
            aks.arm.settle(&crate::arm::Reply::empty(), &pool_id, API, &format!("agent pool {pool_id}")).await?;
        }
        Err(e) => return Err(e),
    }
    read(aks, &pool_id).await?.ok_or(ProviderError::NotFound(pool_id))
}

pub async fn update(aks: &AksProvider, spec: &ResourceSpec, pool_id: &CloudId) -> Result<Observed, ProviderError> {
    let cluster = cluster_of(pool_id)?.to_ascii_lowercase();
    let _one_at_a_time = aks.serial.lock(&cluster).await;
    let (live, etag) = get(aks, pool_id).await?.ok_or_else(|| ProviderError::NotFound(pool_id.clone()))?;
    let body = desired(spec, live.properties.count)?;
    let condition = etag.as_deref().map_or(Condition::None, Condition::Matches);
    put(aks, pool_id, body, condition).await?;
    read(aks, pool_id).await?.ok_or_else(|| ProviderError::NotFound(pool_id.clone()))
}

pub async fn delete(aks: &AksProvider, pool_id: &CloudId) -> Result<(), ProviderError> {
    let cluster = cluster_of(pool_id)?.to_ascii_lowercase();
    let _one_at_a_time = aks.serial.lock(&cluster).await;
    remove(aks, pool_id).await
}
