//! The fixture's Azure: resource groups, managed clusters, agent pools and the operations that
//! change them, with the rules of ARM and AKS that Tessera must cope with.
//!
//! ## Overview
//!
//! A mutation starts an [`Operation`] that finishes after the configured time: until then the
//! object's `provisioningState` is `Creating`/`Updating`/`Deleting`, its status URLs answer
//! `InProgress` (`Azure-AsyncOperation`) or 202 (`Location`), and the cluster it belongs to is
//! busy: any other mutation of the cluster or its pools gets 409 `OperationNotAllowed`. Time is
//! read on every request ([`Cloud::settle`]), so nothing runs in the background.
//!
//! Every object has an eTag, new on every change; `If-Match` and `If-None-Match` are checked
//! (412). AKS's own rules: a system pool with a custom `NoSchedule`/`NoExecute` taint is refused
//! (`SystemPoolHasRestrictedTaint`), as is a version upgrade whose PUT does not carry every pool at
//! its current version (`NotAllAgentPoolOrchestratorVersionSpecifiedAndUnchanged`), a pool newer
//! than its control plane, and deleting the last system pool. Spot pools get AKS's own taint and
//! label.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

pub const SPOT_TAINT: &str = "kubernetes.azure.com/scalesetpriority=spot:NoSchedule";
pub const SPOT_LABEL: &str = "kubernetes.azure.com/scalesetpriority";
const CRITICAL_ADDONS_ONLY: &str = "CriticalAddonsOnly=true:NoSchedule";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Put,
    Delete,
}

#[derive(Debug, Clone)]
pub struct Operation {
    pub target: String,
    pub kind: Kind,
    pub until: Instant,
    pub location: String,
}

#[derive(Debug, Clone)]
pub struct Object {
    /// The body as served, read-only fields included.
    pub body: Value,
    pub etag: String,
}

/// An ARM error: status, code, message.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

fn refuse(status: u16, code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal { status, code, message: message.into() }
}

#[derive(Default)]
pub struct Cloud {
    pub groups: BTreeMap<String, Object>,
    pub clusters: BTreeMap<String, Object>,
    pub pools: BTreeMap<String, Object>,
    pub operations: BTreeMap<String, Operation>,
    pub operation_time: Duration,
    /// Out-of-band operations (another tool, the console) keeping a cluster busy until then.
    pub busy_until: BTreeMap<String, Instant>,
    next: u64,
}

/// The key of an ARM id: ARM ids are case-insensitive.
pub fn key(id: &str) -> String {
    id.trim_end_matches('/').to_ascii_lowercase()
}

/// The cluster an id belongs to (itself for a cluster, its parent for a pool).
pub fn cluster_of(id: &str) -> String {
    let k = key(id);
    match k.find("/agentpools/") {
        Some(i) => k[..i].to_string(),
        None => k,
    }
}

fn restricted(taints: &Value) -> Option<String> {
    taints.as_array()?.iter().filter_map(Value::as_str).find_map(|t| {
        let custom = t != CRITICAL_ADDONS_ONLY;
        (custom && (t.ends_with(":NoSchedule") || t.ends_with(":NoExecute"))).then(|| t.to_string())
    })
}

fn minor(version: &str) -> (u32, u32) {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

impl Cloud {
    pub fn new(operation_time: Duration) -> Self {
        Self { operation_time, ..Self::default() }
    }

    fn etag(&mut self) -> String {
        self.next += 1;
        format!("\"{:08x}-etag\"", self.next)
    }

    fn op_id(&mut self) -> String {
        self.next += 1;
        format!("op-{:06}", self.next)
    }

    /// Finishes every operation whose time has come.
    pub fn settle(&mut self) {
        let now = Instant::now();
        let done: Vec<String> =
            self.operations.iter().filter(|(_, o)| o.until <= now).map(|(id, _)| id.clone()).collect();
        for id in done {
            let Some(op) = self.operations.get(&id).cloned() else { continue };
            match op.kind {
                Kind::Delete => {
                    self.groups.remove(&op.target);
                    self.clusters.remove(&op.target);
                    self.pools.remove(&op.target);
                    let prefix = format!("{}/", op.target);
                    self.clusters.retain(|k, _| !k.starts_with(&prefix));
                    self.pools.retain(|k, _| !k.starts_with(&prefix));
                }
                Kind::Put => {
                    for object in
                        [self.clusters.get_mut(&op.target), self.pools.get_mut(&op.target)].into_iter().flatten()
                    {
                        object.body["properties"]["provisioningState"] = json!("Succeeded");
                    }
                    // The pools a cluster PUT carried settle with it.
                    let prefix = format!("{}/agentpools/", op.target);
                    let running: Vec<String> =
                        self.operations.values().filter(|o| o.until > now).map(|o| o.target.clone()).collect();
                    for (k, pool) in self.pools.iter_mut() {
                        if k.starts_with(&prefix) && !running.contains(k) {
                            pool.body["properties"]["provisioningState"] = json!("Succeeded");
                        }
                    }
                }
            }
            // Kept, done, so late polls still get their answer.
            if let Some(o) = self.operations.get_mut(&id) {
                o.until = Instant::now() - Duration::from_millis(1);
                o.kind = Kind::Put;
                o.target = String::new();
            }
        }
        self.busy_until.retain(|_, until| *until > now);
    }

    pub fn operation_done(&self, id: &str) -> Option<bool> {
        self.operations.get(id).map(|o| o.until <= Instant::now())
    }

    fn busy(&self, cluster: &str) -> bool {
        let now = Instant::now();
        self.busy_until.get(cluster).is_some_and(|u| *u > now)
            || self
                .operations
                .values()
                .any(|o| o.until > now && !o.target.is_empty() && cluster_of(&o.target) == cluster)
    }

    fn start(&mut self, target: &str, kind: Kind, location: &str) -> String {
        let id = self.op_id();
        let op = Operation {
            target: key(target),
            kind,
            until: Instant::now() + self.operation_time,
            location: location.into(),
        };
        self.operations.insert(id.clone(), op);
        id
    }

    fn conditions(
        existing: Option<&Object>,
        if_match: Option<&str>,
        if_none_match: Option<&str>,
    ) -> Result<(), Refusal> {
        if if_none_match == Some("*") && existing.is_some() {
            return Err(refuse(412, "PreconditionFailed", "the resource exists and If-None-Match is *"));
        }
        if let Some(want) = if_match {
            match existing {
                Some(o) if o.etag == want || want == "*" => {}
                _ => return Err(refuse(412, "PreconditionFailed", format!("eTag {want} does not match"))),
            }
        }
        Ok(())
    }

    fn refuse_busy(&self, cluster: &str) -> Result<(), Refusal> {
        if self.busy(cluster) {
            return Err(refuse(
                409,
                "OperationNotAllowed",
                "Operation is not allowed because there's an in progress operation on the managed cluster. Another operation is in progress",
            ));
        }
        Ok(())
    }

    pub fn put_group(
        &mut self,
        id: &str,
        name: &str,
        body: &Value,
        if_none_match: Option<&str>,
    ) -> Result<(u16, Value), Refusal> {
        Self::conditions(self.groups.get(&key(id)), None, if_none_match)?;
        let location = body
            .get("location")
            .and_then(Value::as_str)
            .ok_or_else(|| refuse(400, "LocationRequired", "location is required"))?;
        let existed = self.groups.contains_key(&key(id));
        let served = json!({
            "id": id, "name": name, "type": "Microsoft.Resources/resourceGroups", "location": location,
            "tags": body.get("tags").cloned().unwrap_or(json!({})),
            "properties": { "provisioningState": "Succeeded" },
        });
        let etag = self.etag();
        self.groups.insert(key(id), Object { body: served.clone(), etag });
        Ok((if existed { 200 } else { 201 }, served))
    }

    pub fn delete_group(&mut self, id: &str) -> Option<String> {
        let object = self.groups.get_mut(&key(id))?;
        object.body["properties"]["provisioningState"] = json!("Deleting");
        let location = object.body["location"].as_str().unwrap_or_default().to_string();
        Some(self.start(id, Kind::Delete, &location))
    }

    /// A cluster PUT: create, or update (the version, tags, the pools in the body).
    pub fn put_cluster(
        &mut self,
        id: &str,
        name: &str,
        body: &Value,
        if_match: Option<&str>,
        if_none_match: Option<&str>,
    ) -> Result<(u16, String), Refusal> {
        let k = key(id);
        let group = k.split("/providers/").next().unwrap_or_default().to_string();
        if !self.groups.contains_key(&group) {
            return Err(refuse(404, "ResourceGroupNotFound", format!("Resource group '{group}' could not be found.")));
        }
        Self::conditions(self.clusters.get(&k), if_match, if_none_match)?;
        self.refuse_busy(&k)?;
        let props = body.get("properties").cloned().unwrap_or(json!({}));
        let profiles = props.get("agentPoolProfiles").and_then(Value::as_array).cloned().unwrap_or_default();
        let version = props.get("kubernetesVersion").and_then(Value::as_str).unwrap_or("1.31").to_string();
        let location = body.get("location").and_then(Value::as_str).unwrap_or_default().to_string();
        let existing = self.clusters.get(&k).cloned();
        if existing.is_none() {
            let systems: Vec<&Value> = profiles.iter().filter(|p| p["mode"] == "System").collect();
            if systems.is_empty() {
                return Err(refuse(
                    400,
                    "MustDefineAtLeastOneSystemPool",
                    "A managed cluster needs at least one system pool",
                ));
            }
            for p in &systems {
                if let Some(t) = restricted(&p["nodeTaints"]) {
                    return Err(refuse(
                        400,
                        "SystemPoolHasRestrictedTaint",
                        format!("System pool {} has a restricted taint {t}", p["name"]),
                    ));
                }
                if p["scaleSetPriority"] == "Spot" {
                    return Err(refuse(400, "SystemPoolCannotBeSpot", "A system pool cannot be spot"));
                }
            }
        } else if let Some(current) = &existing {
            // AKS cannot turn a public cluster private or back: that is a new cluster.
            let private = |p: &Value| p.pointer("/apiServerAccessProfile/enablePrivateCluster") == Some(&json!(true));
            if private(&current.body["properties"]) != private(&props) {
                return Err(refuse(
                    400,
                    "PrivateClusterUpdateNotAllowed",
                    "Changing property 'enablePrivateCluster' is not allowed: a cluster is made public or private when it is created",
                ));
            }
            let old = current.body["properties"]["kubernetesVersion"].as_str().unwrap_or_default().to_string();
            if old != version {
                let (a, b) = (minor(&old), minor(&version));
                if b < a || b.1 > a.1 + 1 {
                    return Err(refuse(
                        400,
                        "UpgradeNotAllowed",
                        format!("Upgrading from {old} to {version} is not allowed: one minor at a time, never down"),
                    ));
                }
                let pools: Vec<(String, Value)> = self.pools_of(&k);
                let unchanged = pools.iter().all(|(pool_name, pool)| {
                    profiles.iter().any(|p| {
                        p["name"].as_str() == Some(pool_name)
                            && p.get("orchestratorVersion") == pool["properties"].get("orchestratorVersion")
                    })
                });
                if !unchanged {
                    return Err(refuse(
                        400,
                        "NotAllAgentPoolOrchestratorVersionSpecifiedAndUnchanged",
                        "Using managed cluster api, all Agent pools' OrchestratorVersion must be all specified or all unspecified. If all specified, they must be stay unchanged or the same with control plane.",
                    ));
                }
            }
        }
        let access = props.get("apiServerAccessProfile").cloned().unwrap_or(json!({}));
        let ranges = access.get("authorizedIPRanges").and_then(Value::as_array).map_or(0, Vec::len);
        if access.get("enablePrivateCluster") == Some(&json!(true)) && ranges > 0 {
            return Err(refuse(
                400,
                "AuthorizedIPRangesNotSupportedForPrivateCluster",
                "API server authorized IP ranges are not supported for private clusters",
            ));
        }
        let creating = existing.is_none();
        let mut served = body.clone();
        served["id"] = json!(id);
        served["name"] = json!(name);
        served["type"] = json!("Microsoft.ContainerService/ManagedClusters");
        if let Some(identity) = served.get_mut("identity") {
            identity["principalId"] = json!("00000000-0000-0000-0000-00000000p001");
            identity["tenantId"] = json!("00000000-0000-0000-0000-00000000t001");
        }
        let p = &mut served["properties"];
        p["provisioningState"] = json!(if creating { "Creating" } else { "Updating" });
        p["currentKubernetesVersion"] = json!(format!("{version}.3"));
        let prefix = props["dnsPrefix"].as_str().unwrap_or(name);
        p["fqdn"] = json!(format!("{prefix}-dns.hcp.{location}.azmk8s.io"));
        if access.get("enablePrivateCluster") == Some(&json!(true)) {
            p["privateFQDN"] = json!(format!("{prefix}-dns.privatelink.{location}.azmk8s.io"));
        }
        p["nodeResourceGroup"] =
            json!(format!("MC_{}_{name}_{location}", group.rsplit('/').next().unwrap_or_default()));
        p["maxAgentPools"] = json!(100);
        if let Some(obj) = p.as_object_mut() {
            obj.remove("agentPoolProfiles");
        }
        let etag = self.etag();
        served["eTag"] = json!(etag.clone());
        self.clusters.insert(k.clone(), Object { body: served, etag });
        let state = if creating { "Creating" } else { "Updating" };
        for profile in &profiles {
            let Some(pool_name) = profile["name"].as_str() else { continue };
            let mut properties = profile.clone();
            if let Some(obj) = properties.as_object_mut() {
                obj.remove("name");
            }
            self.store_pool(&format!("{id}/agentPools/{pool_name}"), pool_name, properties, state, &version);
        }
        Ok((if creating { 201 } else { 200 }, self.start(id, Kind::Put, &location)))
    }

    fn store_pool(&mut self, pool_id: &str, name: &str, mut properties: Value, state: &str, cluster_version: &str) {
        let previous = self.pools.get(&key(pool_id)).map(|o| o.body["properties"].clone());
        if properties.get("orchestratorVersion").is_none() {
            let v =
                previous.as_ref().and_then(|p| p.get("orchestratorVersion").cloned()).unwrap_or(json!(cluster_version));
            properties["orchestratorVersion"] = v;
        }
        let version = properties["orchestratorVersion"].as_str().unwrap_or(cluster_version).to_string();
        if properties["scaleSetPriority"] == "Spot" {
            // AKS's own marks on every spot pool.
            let mut taints: Vec<Value> = properties["nodeTaints"].as_array().cloned().unwrap_or_default();
            if !taints.iter().any(|t| t == SPOT_TAINT) {
                taints.push(json!(SPOT_TAINT));
            }
            properties["nodeTaints"] = json!(taints);
            if !properties["nodeLabels"].is_object() {
                properties["nodeLabels"] = json!({});
            }
            properties["nodeLabels"][SPOT_LABEL] = json!("spot");
        }
        properties["provisioningState"] = json!(state);
        properties["currentOrchestratorVersion"] = json!(format!("{version}.3"));
        properties["nodeImageVersion"] = json!("AKSUbuntu-2204gen2containerd-202411.12.0");
        let etag = self.etag();
        properties["eTag"] = json!(etag.clone());
        let body = json!({ "id": pool_id, "name": name, "type": "Microsoft.ContainerService/managedClusters/agentPools", "properties": properties });
        self.pools.insert(key(pool_id), Object { body, etag });
    }

    /// The pools of a cluster: (name, body).
    pub fn pools_of(&self, cluster: &str) -> Vec<(String, Value)> {
        let prefix = format!("{}/agentpools/", key(cluster));
        self.pools
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, o)| (o.body["name"].as_str().unwrap_or_default().to_string(), o.body.clone()))
            .collect()
    }

    /// A cluster as served: with its pools as `agentPoolProfiles`.
    pub fn cluster_body(&self, id: &str) -> Option<Value> {
        let mut body = self.clusters.get(&key(id))?.body.clone();
        let profiles: Vec<Value> = self
            .pools_of(id)
            .into_iter()
            .map(|(name, pool)| {
                let mut p = pool["properties"].clone();
                p["name"] = json!(name);
                p
            })
            .collect();
        body["properties"]["agentPoolProfiles"] = json!(profiles);
        Some(body)
    }

    pub fn delete_cluster(&mut self, id: &str) -> Result<Option<String>, Refusal> {
        let k = key(id);
        if !self.clusters.contains_key(&k) {
            return Ok(None);
        }
        self.refuse_busy(&k)?;
        let location = self.clusters[&k].body["location"].as_str().unwrap_or_default().to_string();
        if let Some(o) = self.clusters.get_mut(&k) {
            o.body["properties"]["provisioningState"] = json!("Deleting");
        }
        Ok(Some(self.start(id, Kind::Delete, &location)))
    }

    pub fn patch_tags(&mut self, id: &str, tags: &Value, if_match: Option<&str>) -> Result<Value, Refusal> {
        let k = key(id);
        Self::conditions(self.clusters.get(&k), if_match, None)?;
        if !self.clusters.contains_key(&k) {
            return Err(refuse(404, "ResourceNotFound", format!("The Resource '{id}' was not found.")));
        }
        self.refuse_busy(&k)?;
        let etag = self.etag();
        if let Some(o) = self.clusters.get_mut(&k) {
            o.body["tags"] = tags.clone();
            o.body["eTag"] = json!(etag.clone());
            o.etag = etag;
        }
        self.cluster_body(id).ok_or_else(|| refuse(404, "ResourceNotFound", "gone"))
    }

    pub fn put_pool(
        &mut self,
        pool_id: &str,
        name: &str,
        body: &Value,
        if_match: Option<&str>,
        if_none_match: Option<&str>,
    ) -> Result<(u16, String), Refusal> {
        let cluster = cluster_of(pool_id);
        let Some(c) = self.clusters.get(&cluster) else {
            return Err(refuse(404, "ResourceNotFound", format!("The managed cluster of '{pool_id}' was not found.")));
        };
        let cluster_version = c.body["properties"]["kubernetesVersion"].as_str().unwrap_or_default().to_string();
        let location = c.body["location"].as_str().unwrap_or_default().to_string();
        Self::conditions(self.pools.get(&key(pool_id)), if_match, if_none_match)?;
        self.refuse_busy(&cluster)?;
        let properties = body.get("properties").cloned().unwrap_or(json!({}));
        if properties["mode"] == "System" {
            if let Some(t) = restricted(&properties["nodeTaints"]) {
                return Err(refuse(
                    400,
                    "SystemPoolHasRestrictedTaint",
                    format!("System pool {name} has a restricted taint {t}"),
                ));
            }
        }
        if let Some(v) = properties.get("orchestratorVersion").and_then(Value::as_str) {
            if minor(v) > minor(&cluster_version) {
                return Err(refuse(
                    400,
                    "NodePoolMcVersionIncompatible",
                    format!("Node pool version {v} is newer than the control plane's {cluster_version}"),
                ));
            }
        }
        let creating = !self.pools.contains_key(&key(pool_id));
        self.store_pool(pool_id, name, properties, if creating { "Creating" } else { "Updating" }, &cluster_version);
        Ok((if creating { 201 } else { 200 }, self.start(pool_id, Kind::Put, &location)))
    }

    pub fn delete_pool(&mut self, pool_id: &str) -> Result<Option<String>, Refusal> {
        let k = key(pool_id);
        let Some(pool) = self.pools.get(&k) else { return Ok(None) };
        let cluster = cluster_of(pool_id);
        self.refuse_busy(&cluster)?;
        if pool.body["properties"]["mode"] == "System" {
            let systems = self.pools_of(&cluster).iter().filter(|(_, p)| p["properties"]["mode"] == "System").count();
            if systems <= 1 {
                return Err(refuse(
                    400,
                    "CannotDeleteLastSystemPool",
                    "A managed cluster needs at least one system pool",
                ));
            }
        }
        let location =
            self.clusters.get(&cluster).and_then(|c| c.body["location"].as_str()).unwrap_or_default().to_string();
        if let Some(o) = self.pools.get_mut(&k) {
            o.body["properties"]["provisioningState"] = json!("Deleting");
        }
        Ok(Some(self.start(pool_id, Kind::Delete, &location)))
    }

    /// Changes a pool out of band (the console, another tool): `edit` gets its properties.
    pub fn edit_pool(&mut self, pool_id: &str, edit: impl FnOnce(&mut Map<String, Value>)) -> bool {
        let etag = self.etag();
        let Some(o) = self.pools.get_mut(&key(pool_id)) else { return false };
        if let Some(props) = o.body["properties"].as_object_mut() {
            edit(props);
            props.insert("eTag".into(), json!(etag.clone()));
        }
        o.etag = etag;
        true
    }
}
