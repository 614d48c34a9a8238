//! Managed clusters: create with the system pool in the body, updates (tags, the version, the
//! system pool), delete, and the read that also fetches the cluster's CA through
//! `listClusterUserCredential?format=exec` (a kubeconfig without a token).
//!
//! A version upgrade follows AKS's rule: the cluster PUT carries the new `kubernetesVersion` and
//! every pool's `orchestratorVersion` unchanged (AKS refuses anything else with
//! `NotAllAgentPoolOrchestratorVersionSpecifiedAndUnchanged`); once it has settled, the system
//! pool's version follows here, and each further pool's through its own resource, which depends
//! on the cluster.

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use tessera_provider_api::{Attrs, CloudId, Observed, ProviderError, ResourceSpec};

use crate::arm::{Condition, Ends, Reply};
use crate::model::{
    AadProfile, ApiServerAccessProfile, ClusterProperties, CredentialResults, Identity, ManagedCluster, NetworkProfile,
    PoolProfile, Sku, Tags, TagsObject,
};
use crate::{API, AksProvider, fatal_attrs, not_ours, ours, pool};

pub fn id(subscription: &str, group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.ContainerService/managedClusters/{name}"
    )
}

/// The resource group named in an ARM id (ARM spells the segment in either case).
pub fn group_of(id: &str) -> Option<&str> {
    let mut parts = id.split('/');
    while let Some(p) = parts.next() {
        if p.eq_ignore_ascii_case("resourceGroups") {
            return parts.next();
        }
    }
    None
}

struct Desired {
    name: String,
    group: String,
    location: String,
    version: String,
    dns_prefix: String,
    network: Value,
    system: Value,
    system_count: u32,
    access: ApiServerAccessProfile,
    tags: Tags,
}

fn desired(spec: &ResourceSpec) -> Result<Desired, ProviderError> {
    let text = |k: &str| {
        spec.attrs
            .get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| fatal_attrs("the cluster", format!("no `{k}`")))
    };
    let value = |k: &str| spec.attrs.get(k).cloned().ok_or_else(|| fatal_attrs("the cluster", format!("no `{k}`")));
    let tags: Tags = serde_json::from_value(value("tags")?).map_err(|e| fatal_attrs("the cluster's tags", e))?;
    Ok(Desired {
        name: text("name")?,
        group: text("resourceGroup")?,
        location: text("location")?,
        version: text("kubernetesVersion")?,
        dns_prefix: text("dnsPrefix")?,
        network: value("network")?,
        system: value("systemPool")?,
        system_count: spec
            .attrs
            .get("systemPoolCount")
            .and_then(Value::as_u64)
            .and_then(|c| u32::try_from(c).ok())
            .ok_or_else(|| fatal_attrs("the cluster", "no `systemPoolCount`"))?,
        access: serde_json::from_value(value("apiServerAccess")?)
            .map_err(|e| fatal_attrs("the cluster's API server access", e))?,
        tags,
    })
}

/// The system pool's name, as lowering wrote it.
fn system_name(d: &Desired) -> Result<String, ProviderError> {
    d.system
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| fatal_attrs("the cluster", "no `/systemPool/name`"))
}

fn system_profile(d: &Desired, count: u32) -> Result<PoolProfile, ProviderError> {
    let name = system_name(d)?;
    let mut properties = pool::properties(&d.system, "System", &d.version, count, d.tags.clone())?;
    properties.vnet_subnet_id = d.network.get("vnetSubnetID").and_then(Value::as_str).map(str::to_string);
    Ok(PoolProfile { name, properties })
}

fn network_profile(d: &Desired) -> NetworkProfile {
    let text = |k: &str| d.network.get(k).and_then(Value::as_str).map(str::to_string);
    NetworkProfile { network_plugin: text("networkPlugin"), network_plugin_mode: text("networkPluginMode") }
}

pub async fn get(aks: &AksProvider, id: &str) -> Result<Option<(ManagedCluster, Option<String>)>, ProviderError> {
    let Some(reply) = aks.arm.get(id, API).await? else { return Ok(None) };
    let etag = reply.etag();
    let cluster: ManagedCluster =
        serde_json::from_value(reply.body).map_err(|e| fatal_attrs("the managed cluster answer", e))?;
    Ok(Some((cluster, etag)))
}

/// The cluster's CA, from the exec-format user kubeconfig (which holds no token).
async fn certificate_authority(aks: &AksProvider, id: &str) -> Result<Option<String>, ProviderError> {
    let url = format!("{id}/listClusterUserCredential?api-version={API}&format=exec");
    let reply = aks.arm.send(Method::POST, &url, API, None, Condition::ReadOnly).await?;
    let results: CredentialResults = serde_json::from_value(reply.body)
        .map_err(|e| ProviderError::Fatal(format!("the user credentials of {id} are malformed: {e}")))?;
    let Some(encoded) = results.kubeconfigs.into_iter().find_map(|k| k.value) else { return Ok(None) };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|e| ProviderError::Fatal(format!("the user kubeconfig of {id} is not base64: {e}")))?;
    let text = String::from_utf8_lossy(&bytes);
    let config: Value = serde_saphyr::from_str(&text)
        .map_err(|e| ProviderError::Fatal(format!("the user kubeconfig of {id} is not YAML: {e}")))?;
    Ok(config.pointer("/clusters/0/cluster/certificate-authority-data").and_then(Value::as_str).map(str::to_string))
}

pub async fn read(aks: &AksProvider, id: &str) -> Result<Option<Observed>, ProviderError> {
    read_knowing(aks, id, None).await
}

/// [`read`], given the CA state recorded: the CA is asked of `listClusterUserCredential` (a POST
/// that Azure's Reader role may not make) only when it is not known yet; a refusal (403) keeps
/// what is known.
pub async fn read_knowing(
    aks: &AksProvider,
    id: &str,
    known_ca: Option<&str>,
) -> Result<Option<Observed>, ProviderError> {
    let Some((cluster, _)) = get(aks, id).await? else { return Ok(None) };
    let props = &cluster.properties;
    // The status, not an attribute: none reported reads as settled (see `types::recover`).
    let state = props.provisioning_state.clone().unwrap_or_default();
    // No pools listed means no system pool: `systemPool` is then null, which the schema check
    // names.
    let profiles = props.agent_pool_profiles.clone().unwrap_or_default();
    let system = profiles.iter().find(|p| p.properties.mode.as_deref() == Some("System"));
    // `rsplit` yields at least one part: the default is never taken.
    let name = id.rsplit('/').next().unwrap_or_default();
    let network = json!({
        "networkPlugin": props.network_profile.as_ref().and_then(|n| n.network_plugin.clone()),
        "networkPluginMode": props.network_profile.as_ref().and_then(|n| n.network_plugin_mode.clone()),
        "vnetSubnetID": system.and_then(|s| s.properties.vnet_subnet_id.clone()),
    });
    let ca = match known_ca {
        Some(ca) => Some(ca.to_string()),
        None if state == "Succeeded" && (props.fqdn.is_some() || props.private_fqdn.is_some()) => {
            match certificate_authority(aks, id).await {
                Ok(ca) => ca,
                Err(ProviderError::Fatal(m)) if m.contains("AuthorizationFailed") || m.contains("403") => None,
                Err(e) => return Err(e),
            }
        }
        None => None,
    };
    let mut attrs = Attrs::new();
    attrs.insert("name".into(), name.into());
    attrs.insert("resourceGroup".into(), json!(group_of(id)));
    attrs.insert("location".into(), cluster.location.clone().into());
    attrs.insert("kubernetesVersion".into(), json!(props.kubernetes_version));
    attrs.insert("dnsPrefix".into(), json!(props.dns_prefix));
    attrs.insert("network".into(), network);
    attrs.insert("systemPool".into(), system.map(|s| pool::profile(&s.name, &s.properties)).unwrap_or(Value::Null));
    attrs.insert("systemPoolCount".into(), json!(system.and_then(|s| s.properties.count)));
    // ARM leaves the profile out of a public cluster with no ranges, and `enablePrivateCluster`
    // is documented to default to false: absent is public and unrestricted.
    let access = props.api_server_access_profile.clone().unwrap_or_default();
    let mut ranges = access.authorized_ip_ranges;
    ranges.sort();
    attrs.insert(
        "apiServerAccess".into(),
        json!({
            "enablePrivateCluster": access.enable_private_cluster.unwrap_or(false),
            "authorizedIPRanges": ranges,
        }),
    );
    // ARM leaves `tags` out of an untagged resource: absent is no tags.
    attrs.insert("tags".into(), json!(cluster.tags.clone().unwrap_or_default()));
    // A private cluster's public FQDN (when AKS keeps one) resolves to its private address.
    let fqdn = props.fqdn.as_ref().or(props.private_fqdn.as_ref());
    attrs.insert("endpoint".into(), json!(fqdn.map(|f| format!("https://{f}:443"))));
    attrs.insert("certificateAuthority".into(), json!(ca));
    Ok(Some(Observed { id: id.to_string(), status: state, attrs }))
}

pub async fn create(aks: &AksProvider, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
    let d = desired(spec)?;
    let id = id(&aks.subscription, &d.group, &d.name);
    let _one_at_a_time = aks.serial.lock(&id.to_ascii_lowercase()).await;
    let body = ManagedCluster {
        location: d.location.clone(),
        tags: Some(d.tags.clone()),
        identity: Some(Identity { kind: "SystemAssigned".into() }),
        sku: Some(Sku { name: "Base".into(), tier: "Standard".into() }),
        properties: ClusterProperties {
            kubernetes_version: Some(d.version.clone()),
            dns_prefix: Some(d.dns_prefix.clone()),
            enable_rbac: Some(true),
            // Entra ID with Azure RBAC and no local accounts: the kubeconfig signs in through
            // kubelogin, and listClusterUserCredential never hands out a client key.
            aad_profile: Some(AadProfile { managed: true, enable_azure_rbac: true }),
            disable_local_accounts: Some(true),
            agent_pool_profiles: Some(vec![system_profile(&d, d.system_count)?]),
            network_profile: Some(network_profile(&d)),
            api_server_access_profile: Some(d.access.clone()),
            ..ClusterProperties::default()
        },
        ..ManagedCluster::default()
    };
    let body = serde_json::to_value(body).map_err(|e| fatal_attrs("the managed cluster body", e))?;
    let what = format!("managed cluster {}", d.name);
    match aks.arm.send(Method::PUT, &id, API, Some(&body), Condition::Absent).await {
        Ok(reply) => {
            aks.arm.settle(&reply, &id, API, &what).await?;
        }
        // It exists: our own earlier create (adopt it once it settles), or someone else's.
        Err(ProviderError::Conflict(_)) => {
            let live = read(aks, &id).await?.ok_or_else(|| ProviderError::Conflict(format!("{what} is changing")))?;
            if !ours(spec, &live.attrs) {
                return Err(not_ours(spec, &what));
            }
            aks.arm.settle(&Reply::empty(), &id, API, &what).await?;
        }
        Err(e) => return Err(e),
    }
    read(aks, &id).await?.ok_or(ProviderError::NotFound(id))
}

pub async fn update(
    aks: &AksProvider,
    spec: &ResourceSpec,
    id: &CloudId,
    changed: &[String],
) -> Result<Observed, ProviderError> {
    let d = desired(spec)?;
    let _one_at_a_time = aks.serial.lock(&id.to_ascii_lowercase()).await;
    let what = format!("managed cluster {}", d.name);
    let has = |f: &str| changed.iter().any(|c| c == f);
    let live = aks.arm.get(id, API).await?.ok_or_else(|| ProviderError::NotFound(id.clone()))?;
    let etag = live.etag().ok_or_else(|| {
        ProviderError::Conflict(format!("{what} was read without an eTag; it is read again before it is changed"))
    })?;
    let condition = Condition::Matches(&etag);
    // An access change that reaches here is one of ranges: a private cluster's is a replacement.
    if has("kubernetesVersion") || has("apiServerAccess") {
        // The cluster exactly as read (every setting Tessera does not manage kept), every pool
        // at its current version, read-only fields taken out: the control plane moves alone.
        let mut body = writable(live.body.clone());
        body["tags"] = json!(d.tags);
        if has("kubernetesVersion") {
            body["properties"]["kubernetesVersion"] = json!(d.version);
        }
        if has("apiServerAccess") {
            body["properties"]["apiServerAccessProfile"]["authorizedIPRanges"] = json!(d.access.authorized_ip_ranges);
        }
        let doing = if has("kubernetesVersion") { "upgrading" } else { "changing the API access of" };
        let reply = aks.arm.send(Method::PUT, id, API, Some(&body), condition).await?;
        aks.arm.settle(&reply, id, API, &format!("{doing} {what}")).await?;
    } else if has("tags") {
        let body = serde_json::to_value(TagsObject { tags: d.tags.clone() }).map_err(|e| fatal_attrs("the tags", e))?;
        let reply = aks.arm.send(Method::PATCH, id, API, Some(&body), condition).await?;
        aks.arm.settle(&reply, id, API, &format!("tagging {what}")).await?;
    }
    if has("kubernetesVersion") || has("systemPool") || has("systemPoolCount") {
        converge_system_pool(aks, id, &d).await?;
    }
    read(aks, id).await?.ok_or_else(|| ProviderError::NotFound(id.clone()))
}

/// A cluster as read, without what ARM reports but never takes (`readOnly` in the description).
fn writable(mut body: Value) -> Value {
    const CLUSTER: [&str; 4] = ["id", "name", "type", "systemData"];
    const PROPERTIES: [&str; 8] = [
        "provisioningState",
        "powerState",
        "maxAgentPools",
        "currentKubernetesVersion",
        "fqdn",
        "privateFQDN",
        "azurePortalFQDN",
        "resourceUID",
    ];
    const POOLS: [&str; 4] = ["provisioningState", "currentOrchestratorVersion", "nodeImageVersion", "eTag"];
    if let Some(o) = body.as_object_mut() {
        for k in CLUSTER.iter().chain(&["eTag"]) {
            o.remove(*k);
        }
    }
    if let Some(identity) = body.get_mut("identity").and_then(Value::as_object_mut) {
        identity.remove("principalId");
        identity.remove("tenantId");
    }
    if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        for k in PROPERTIES {
            p.remove(k);
        }
        for pool in p.get_mut("agentPoolProfiles").and_then(Value::as_array_mut).into_iter().flatten() {
            if let Some(pool) = pool.as_object_mut() {
                for k in POOLS {
                    pool.remove(k);
                }
            }
        }
    }
    body
}

/// Brings the system pool to the spec: in place when its name is the same, else (a new
/// `vmSize`, priority or zones) the new pool first, then the old ones deleted, so the cluster
/// always has a system pool.
async fn converge_system_pool(aks: &AksProvider, id: &str, d: &Desired) -> Result<(), ProviderError> {
    let want = system_name(d)?;
    let (live, _) = get(aks, id).await?.ok_or_else(|| ProviderError::NotFound(id.to_string()))?;
    // No pools listed: none to keep or delete, the wanted one is made.
    let systems: Vec<PoolProfile> = live
        .properties
        .agent_pool_profiles
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.properties.mode.as_deref() == Some("System"))
        .collect();
    let pool_id = pool::id(id, &want);
    let current = systems.iter().find(|p| p.name == want);
    let count = pool::count(d.system_count, &d.system, current.and_then(|p| p.properties.count));
    let body = system_profile(d, count)?.properties;
    match pool::get(aks, &pool_id).await? {
        Some((_, etag)) => {
            let condition = etag.as_deref().map_or(Condition::None, Condition::Matches);
            pool::put(aks, &pool_id, body, condition).await?;
        }
        None => pool::put(aks, &pool_id, body, Condition::Absent).await?,
    }
    // Only the system pools this cluster's spec made (its tags): one someone added stays.
    let address = d.tags.get(tessera_provider_api::TAG_ADDRESS);
    let ours =
        |p: &&PoolProfile| p.properties.tags.as_ref().and_then(|t| t.get(tessera_provider_api::TAG_ADDRESS)) == address;
    for old in systems.iter().filter(|p| p.name != want).filter(ours) {
        pool::remove(aks, &pool::id(id, &old.name)).await?;
    }
    Ok(())
}

pub async fn delete(aks: &AksProvider, id: &CloudId) -> Result<(), ProviderError> {
    let _one_at_a_time = aks.serial.lock(&id.to_ascii_lowercase()).await;
    let reply = aks.arm.send(Method::DELETE, id, API, None, Condition::None).await?;
    match aks.arm.settle(&reply, id, API, &format!("deleting managed cluster {id}")).await? {
        Ends::Gone => Ok(()),
        Ends::Settled => Err(ProviderError::Conflict(format!("managed cluster {id} is still there after its delete"))),
    }
}

/// A kubeconfig for the cluster, authenticating through `kubelogin` (the exec form of
/// `listClusterUserCredential?format=exec`): no token is stored.
pub fn kubeconfig(attrs: &Attrs) -> Option<Value> {
    let name = attrs.get("name")?.as_str()?;
    let server = attrs.get("endpoint")?.as_str()?;
    let ca = attrs.get("certificateAuthority")?.as_str()?;
    let args = ["get-token", "--login", "azurecli", "--server-id", crate::AKS_SERVER_ID];
    Some(tessera_provider_api::kubeconfig::exec(&format!("aks-{name}"), server, ca, "kubelogin", &args))
}
