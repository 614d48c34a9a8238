//! The cluster: create (with its first pool), read, in-place updates (version, logging,
//! monitoring, release channel, resource labels), delete.
//!
//! Statuses: `PROVISIONING` and `RECONCILING` are waited through; `RUNNING` is done;
//! `DEGRADED` is usable and reported with its `statusMessage`; `ERROR` is fatal with it;
//! `STOPPING` means it is being deleted.

use google_cloud_container_v1::model::cluster::Status;
use google_cloud_container_v1::model::{Cluster, CreateClusterRequest, SetLabelsRequest, UpdateClusterRequest};
use serde_json::{Value, json};
use tessera_provider_api::poll::{Seen, until};
use tessera_provider_api::{Attrs, Observed, ProviderError, ResourceSpec, TAGS_ATTR};

use crate::error::{found, status_text};
use crate::ops::{Outcome, parent_location};
use crate::{GkeProvider, labels, lower, minor, nodepool, present, request, text};

/// The id a spec's cluster has.
pub fn id(spec: &ResourceSpec) -> Result<String, ProviderError> {
    let a = &spec.attrs;
    Ok(lower::cluster_id(text(a, "project")?, text(a, "location")?, text(a, "name")?))
}

async fn get(p: &GkeProvider, id: &str) -> Result<Option<Cluster>, ProviderError> {
    found(p.client().await?.get_cluster().set_name(id).send().await, "clusters.get")
}

pub async fn read(p: &GkeProvider, id: &str) -> Result<Option<Observed>, ProviderError> {
    Ok(get(p, id).await?.map(|cl| observed(&cl, id)))
}

/// The cluster's status, with GKE's message when it has one to say.
fn status(cl: &Cluster) -> String {
    #[allow(deprecated)]
    status_text(cl.status.name(), &cl.status_message, cl.conditions.iter().map(|c| c.message.as_str()))
}

fn components<T>(list: &[T], name: impl Fn(&T) -> Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = list.iter().filter_map(|c| name(c).map(str::to_string)).collect();
    out.sort();
    out
}

/// The enabled components of a logging or monitoring config, `null` without one (Tessera always
/// sets them, so a cluster without them is an answer it cannot read).
fn enabled<T>(list: Option<&Vec<T>>, name: impl Fn(&T) -> Option<&str>) -> Value {
    list.map(|l| json!(components(l, name))).unwrap_or(Value::Null)
}

/// What `read` reports of a cluster. A value the answer lacks is left `null`, for the schema
/// check (`crate::schemas::cluster`) to report.
pub(crate) fn observed(cl: &Cluster, id: &str) -> Observed {
    let project = id.split('/').nth(1).map(present).unwrap_or(Value::Null);
    let mut zones = cl.locations.clone();
    zones.sort();
    let logging = enabled(
        cl.logging_config.as_ref().and_then(|l| l.component_config.as_ref()).map(|c| &c.enable_components),
        |x| x.name(),
    );
    let monitoring = enabled(
        cl.monitoring_config.as_ref().and_then(|m| m.component_config.as_ref()).map(|c| &c.enable_components),
        |x| x.name(),
    );
    // No release channel at all is GKE's "no channel" (UNSPECIFIED), what Tessera sets; a
    // channel this client cannot name is left null.
    let channel = match cl.release_channel.as_ref() {
        None => Some("UNSPECIFIED"),
        Some(r) => r.channel.name(),
    };
    let channel = channel.map(|c| if c == "UNSPECIFIED" { "none" } else { c });
    let network = match &cl.ip_allocation_policy {
        Some(ip) if ip.create_subnetwork => json!({ "cidr": present(&ip.node_ipv4_cidr_block) }),
        _ => json!({ "network": present(&cl.network), "subnetwork": present(&cl.subnetwork) }),
    };
    // Empty until the control plane is up: then no value, not "".
    let endpoint = if cl.endpoint.is_empty() || cl.endpoint.contains("://") {
        present(&cl.endpoint)
    } else {
        json!(format!("https://{}", cl.endpoint))
    };
    let mut attrs = Attrs::new();
    attrs.insert("name".into(), present(&cl.name));
    attrs.insert("project".into(), project);
    attrs.insert("location".into(), present(&cl.location));
    attrs.insert("nodeLocations".into(), json!(zones));
    attrs.insert("version".into(), present(&minor(&cl.current_master_version)));
    attrs.insert("releaseChannel".into(), json!(channel));
    attrs.insert("loggingComponents".into(), logging);
    attrs.insert("monitoringComponents".into(), monitoring);
    attrs.insert("network".into(), network);
    let ip = cl.control_plane_endpoints_config.as_ref().and_then(|c| c.ip_endpoints_config.as_ref());
    // GKE's default when unset: a public endpoint.
    attrs.insert("publicEndpoint".into(), json!(ip.and_then(|i| i.enable_public_endpoint).unwrap_or(true)));
    // No authorized-networks config, or a disabled one, is GKE's "not restricted": no networks.
    let mut networks: Vec<String> = ip
        .and_then(|i| i.authorized_networks_config.as_ref())
        .filter(|n| n.enabled)
        .map(|n| n.cidr_blocks.iter().map(|b| b.cidr_block.clone()).collect())
        .unwrap_or_default();
    networks.sort();
    attrs.insert("authorizedNetworks".into(), json!(networks));
    attrs.insert(TAGS_ATTR.into(), labels::to_tags(&cl.resource_labels));
    attrs.insert("endpoint".into(), endpoint);
    attrs.insert(
        "certificateAuthority".into(),
        cl.master_auth.as_ref().map(|m| present(&m.cluster_ca_certificate)).unwrap_or(Value::Null),
    );
    attrs.insert("currentMasterVersion".into(), present(&cl.current_master_version));
    Observed { id: id.to_string(), status: status(cl), attrs }
}

/// Waits until the cluster can take work: RUNNING (or DEGRADED, which still serves).
pub(crate) async fn settle(p: &GkeProvider, id: &str) -> Result<Observed, ProviderError> {
    until(&p.poll, &format!("cluster {id}"), || async {
        let cl = get(p, id).await?.ok_or_else(|| ProviderError::NotFound(format!("cluster {id}")))?;
        match cl.status {
            Status::Running | Status::Degraded => Ok(Seen::Done(observed(&cl, id))),
            Status::Error => Err(ProviderError::Fatal(format!("cluster {id} is {}", status(&cl)))),
            Status::Stopping => Err(ProviderError::Fatal(format!("cluster {id} is being deleted ({})", status(&cl)))),
            _ => Ok(Seen::Pending(status(&cl))),
        }
    })
    .await
}

fn authorized_networks(a: &Attrs) -> Result<Vec<String>, ProviderError> {
    serde_json::from_value(a.get("authorizedNetworks").cloned().ok_or_else(|| crate::missing("authorizedNetworks"))?)
        .map_err(|e| ProviderError::Fatal(format!("authorizedNetworks: {e}")))
}

/// `ControlPlaneEndpointsConfig`: the control plane's IP endpoints, the public one limited to
/// `networks` when there are any (GKE's `MasterAuthorizedNetworksConfig`).
fn endpoints(public: bool, networks: Vec<String>) -> Value {
    let blocks: Vec<Value> = networks.iter().map(|c| json!({ "cidrBlock": c })).collect();
    json!({ "ipEndpointsConfig": {
        "enabled": true,
        "enablePublicEndpoint": public,
        "authorizedNetworksConfig": { "enabled": !blocks.is_empty(), "cidrBlocks": blocks },
    } })
}

fn create_body(spec: &ResourceSpec, parent: &str) -> Result<Value, ProviderError> {
    let a = &spec.attrs;
    let components = |key: &str| a.get(key).cloned().ok_or_else(|| crate::missing(key));
    let mut cluster = json!({
        "name": text(a, "name")?,
        "initialClusterVersion": text(a, "version")?,
        "locations": a.get("nodeLocations").cloned().unwrap_or_else(|| json!([])),
        "resourceLabels": labels::to_legal_labels(a.get(TAGS_ATTR))?,
        // No release channel: Tessera owns the version and its upgrades.
        "releaseChannel": { "channel": "UNSPECIFIED" },
        "loggingConfig": { "componentConfig": { "enableComponents": components("loggingComponents")? } },
        "monitoringConfig": { "componentConfig": { "enableComponents": components("monitoringComponents")? } },
    });
    let network = a.get("network").cloned().unwrap_or(Value::Null);
    if let Some(cidr) = network.get("cidr").and_then(Value::as_str) {
        // A managed network: GKE creates the nodes' subnetwork from the fleet's CIDR.
        cluster["ipAllocationPolicy"] =
            json!({ "useIpAliases": true, "createSubnetwork": true, "nodeIpv4CidrBlock": cidr });
    } else {
        cluster["network"] = network.get("network").cloned().unwrap_or(Value::Null);
        cluster["subnetwork"] = network.get("subnetwork").cloned().unwrap_or(Value::Null);
        cluster["ipAllocationPolicy"] = json!({ "useIpAliases": true });
    }
    let public = a.get("publicEndpoint").and_then(Value::as_bool).ok_or_else(|| crate::missing("publicEndpoint"))?;
    cluster["controlPlaneEndpointsConfig"] = endpoints(public, authorized_networks(a)?);
    if !public {
        // Without a public endpoint, GKE needs the nodes private too.
        cluster["networkConfig"] = json!({ "defaultEnablePrivateNodes": true });
    }
    if let Some(initial) = a.get("initialPool").and_then(Value::as_object) {
        let initial: Attrs = initial.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        cluster["nodePools"] = json!([nodepool::pool_body(&initial)?]);
    }
    Ok(json!({ "parent": parent, "cluster": cluster }))
}

pub async fn create(p: &GkeProvider, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
    let id = id(spec)?;
    let parent = parent_location(&id)?.to_string();
    let req: CreateClusterRequest = request("clusters.create", create_body(spec, &parent)?)?;
    let c = p.client().await?;
    let outcome = p.mutate(&id, "clusters.create", || c.create_cluster().with_request(req.clone()).send()).await?;
    if outcome == Outcome::AlreadyExists {
        // Ours from an interrupted attempt (this generation of this address): adopt it.
        let existing = read(p, &id).await?.ok_or_else(|| ProviderError::Conflict(format!("cluster {id}")))?;
        if !spec.is_ours(&existing.attrs) {
            return Err(spec.not_ours(&format!("GKE cluster {id}")));
        }
    }
    settle(p, &id).await
}

pub async fn update(
    p: &GkeProvider,
    id: &str,
    spec: &ResourceSpec,
    changed: &[String],
) -> Result<Observed, ProviderError> {
    let a = &spec.attrs;
    let has = |f: &str| changed.iter().any(|c| c == f);
    let c = p.client().await?;
    let mut updates: Vec<(&str, Value)> = Vec::new();
    // The control plane first: node pools follow in their own updates (they depend on it).
    if has("version") {
        updates.push(("desiredMasterVersion", json!(text(a, "version")?)));
    }
    if has("loggingComponents") {
        updates.push((
            "desiredLoggingConfig",
            json!({ "componentConfig": { "enableComponents": a.get("loggingComponents").cloned().ok_or_else(|| crate::missing("loggingComponents"))? } }),
        ));
    }
    if has("monitoringComponents") {
        updates.push((
            "desiredMonitoringConfig",
            json!({ "componentConfig": { "enableComponents": a.get("monitoringComponents").cloned().ok_or_else(|| crate::missing("monitoringComponents"))? } }),
        ));
    }
    if has("authorizedNetworks") {
        let public =
            a.get("publicEndpoint").and_then(Value::as_bool).ok_or_else(|| crate::missing("publicEndpoint"))?;
        updates.push(("desiredControlPlaneEndpointsConfig", endpoints(public, authorized_networks(a)?)));
    }
    if has("releaseChannel") {
        updates.push(("desiredReleaseChannel", json!({ "channel": "UNSPECIFIED" })));
    }
    // GKE applies one `desired*` field per update.
    for (field, value) in updates {
        let req: UpdateClusterRequest = request("clusters.update", json!({ "name": id, "update": { field: value } }))?;
        p.mutate(id, &format!("clusters.update ({field})"), || c.update_cluster().with_request(req.clone()).send())
            .await?;
    }
    if has(TAGS_ATTR) {
        let labels = labels::to_legal_labels(a.get(TAGS_ATTR))?;
        p.mutate(id, "clusters.setResourceLabels", || async {
            // The fingerprint of the labels being replaced, read afresh on every attempt.
            let live = c.get_cluster().set_name(id).send().await?;
            let req = SetLabelsRequest::new()
                .set_name(id)
                .set_resource_labels(labels.clone())
                .set_label_fingerprint(live.label_fingerprint);
            c.set_labels().with_request(req).send().await
        })
        .await?;
    }
    settle(p, id).await
}

pub async fn delete(p: &GkeProvider, id: &str) -> Result<(), ProviderError> {
    let c = p.client().await?;
    p.mutate(id, "clusters.delete", || c.delete_cluster().set_name(id).send()).await?;
    match get(p, id).await? {
        None => Ok(()),
        Some(cl) => Err(ProviderError::unavailable(format!("cluster {id} is still {} after its delete", status(&cl)))),
    }
}
