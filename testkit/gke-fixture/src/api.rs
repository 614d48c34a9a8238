//! The fixture's GKE: clusters, node pools and operations, and the rules GKE enforces.
//!
//! ## Overview
//!
//! Every request is routed by the discovery document ([`crate::schema`]); its body (with
//! integer enums named) is validated against the method's request schema, and a refused body is
//! answered 400 `INVALID_ARGUMENT` *and* recorded as a rejection, so the test that sent it fails
//! at [`crate::GkeFixture::assert_no_rejections`]. Every answer is validated against the
//! method's response schema too (a failure there is the fixture's own bug, recorded the same way).
//!
//! A mutating method starts an [`Op`] that is `DONE` after the configured duration; until then
//! the object shows `PROVISIONING`, `RECONCILING` or `STOPPING`, and its effect (the object
//! RUNNING, or gone) lands when the operation ends. The clock is checked on every request.
//! - a second mutating operation on a cluster (itself or any of its pools) while one runs: 400
//!   `FAILED_PRECONDITION`, "Cluster is running incompatible operation …";
//! - more than the project's concurrent-operation limit (default 5): 429 `RESOURCE_EXHAUSTED`;
//! - injected faults: 503 `UNAVAILABLE` for the next N matching requests;
//! - GKE's own checks: `ALREADY_EXISTS` for a taken name, `NOT_FOUND`, a node version newer than
//!   the control plane's or an unknown version refused, `labelFingerprint` must match.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use crate::schema::Discovery;

/// Kubernetes minors the fixture offers, and the patch each resolves to.
pub const VERSIONS: [(&str, &str); 5] = [
    ("1.29", "1.29.12-gke.1120000"),
    ("1.30", "1.30.9-gke.1009000"),
    ("1.31", "1.31.5-gke.1023000"),
    ("1.32", "1.32.1-gke.1357000"),
    ("1.33", "1.33.0-gke.1200000"),
];

/// A base64 PEM, the shape GKE's `masterAuth.clusterCaCertificate` has.
pub const CA: &str = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUZJWFRVUkUKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=";

#[derive(Debug, Clone)]
pub struct Config {
    pub operation_time: Duration,
    pub max_concurrent_operations: usize,
    /// What clusters report as `endpoint`.
    pub endpoint: String,
}

/// One request as the fixture saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The discovery method id (`container.projects.locations.clusters.nodePools.create`).
    pub method_id: Option<String>,
    pub status: u16,
    /// The body with integer enums named.
    pub body: Value,
}

/// A body that did not validate.
#[derive(Debug, Clone)]
pub struct Rejection {
    pub method_id: String,
    pub schema: String,
    pub what: &'static str,
    pub errors: Vec<String>,
    pub body: Value,
}

/// 503 `UNAVAILABLE` for the next `count` requests whose path contains `path` (and method, if
/// given).
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: Option<String>,
    pub path: String,
    pub count: usize,
}

/// One operation, as the fixture ran it.
#[derive(Debug, Clone)]
pub struct Op {
    pub id: String,
    pub project: String,
    pub location: String,
    pub cluster: String,
    pub node_pool: Option<String>,
    pub kind: &'static str,
    pub started: Instant,
    pub ends: Instant,
    pub done: bool,
    /// Started through the test API (another tool), not by a request.
    pub foreign: bool,
    effect: Effect,
}

#[derive(Debug, Clone)]
enum Effect {
    ClusterRunning,
    PoolRunning(String),
    ClusterGone,
    PoolGone(String),
    Nothing,
}

pub struct State {
    pub config: Config,
    /// Clusters by `projects/P/locations/L/clusters/C`, pools inside (`nodePools`), as GKE shows them.
    pub clusters: BTreeMap<String, Value>,
    pub ops: Vec<Op>,
    pub requests: Vec<RecordedRequest>,
    pub rejections: Vec<Rejection>,
    pub faults: Vec<Fault>,
    pub conflicts: usize,
    pub throttled: usize,
    next_op: u64,
}

/// A change to a stored cluster.
type Edit = Box<dyn Fn(&mut Value)>;

pub struct Answer {
    pub status: u16,
    pub body: Value,
}

fn error(status: u16, code: &str, message: impl Into<String>) -> Answer {
    Answer { status, body: json!({ "error": { "code": status, "message": message.into(), "status": code } }) }
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn resolve(version: &str) -> Option<&'static str> {
    let minor: String = version.split('.').take(2).collect::<Vec<_>>().join(".");
    VERSIONS.iter().find(|(m, _)| *m == minor).map(|(_, full)| *full)
}

fn minor_of(version: &str) -> (u32, u32) {
    let mut it = version.split('.').map(|p| p.split('-').next().unwrap_or("0").parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// A short stable fingerprint of a label set.
pub fn fingerprint(labels: &Value) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in labels.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:016x}", h)[..8].to_string()
}

impl State {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            clusters: BTreeMap::new(),
            ops: Vec::new(),
            requests: Vec::new(),
            rejections: Vec::new(),
            faults: Vec::new(),
            conflicts: 0,
            throttled: 0,
            next_op: 1,
        }
    }

    /// Ends every operation whose time has come, and applies its effect.
    pub fn tick(&mut self) {
        let now = Instant::now();
        let due: Vec<usize> = (0..self.ops.len()).filter(|&i| !self.ops[i].done && self.ops[i].ends <= now).collect();
        for i in due {
            self.ops[i].done = true;
            let op = self.ops[i].clone();
            let key = format!("projects/{}/locations/{}/clusters/{}", op.project, op.location, op.cluster);
            match op.effect {
                Effect::ClusterRunning => {
                    if let Some(c) = self.clusters.get_mut(&key) {
                        c["status"] = json!("RUNNING");
                        if let Some(pools) = c["nodePools"].as_array_mut() {
                            for p in pools.iter_mut().filter(|p| p["status"] == "PROVISIONING") {
                                p["status"] = json!("RUNNING");
                            }
                        }
                    }
                }
                Effect::PoolRunning(pool) => {
                    if let Some(c) = self.clusters.get_mut(&key) {
                        settled(c);
                        if let Some(p) = pool_mut(c, &pool) {
                            settled(p);
                        }
                    }
                }
                Effect::ClusterGone => {
                    self.clusters.remove(&key);
                }
                Effect::PoolGone(pool) => {
                    if let Some(pools) = self.clusters.get_mut(&key).and_then(|c| c["nodePools"].as_array_mut()) {
                        pools.retain(|p| p["name"] != pool.as_str());
                    }
                    if let Some(c) = self.clusters.get_mut(&key) {
                        c["status"] = json!("RUNNING");
                    }
                }
                Effect::Nothing => {
                    if let Some(c) = self.clusters.get_mut(&key) {
                        settled(c);
                    }
                }
            }
        }
    }

    fn running_on(&self, project: &str, location: &str, cluster: &str) -> Option<&Op> {
        self.ops.iter().find(|o| !o.done && o.project == project && o.location == location && o.cluster == cluster)
    }

    /// Starts an operation, or refuses it as GKE does (busy cluster, project limit).
    #[allow(clippy::too_many_arguments)]
    pub fn begin(
        &mut self,
        project: &str,
        location: &str,
        cluster: &str,
        node_pool: Option<&str>,
        kind: &'static str,
        duration: Duration,
        foreign: bool,
    ) -> Result<String, Answer> {
        if let Some(busy) = self.running_on(project, location, cluster).cloned() {
            self.conflicts += 1;
            return Err(error(
                400,
                "FAILED_PRECONDITION",
                format!(
                    "Cluster is running incompatible operation projects/{project}/locations/{location}/operations/{}.",
                    busy.id
                ),
            ));
        }
        let running = self.ops.iter().filter(|o| !o.done && o.project == project).count();
        if running >= self.config.max_concurrent_operations {
            self.throttled += 1;
            return Err(error(
                429,
                "RESOURCE_EXHAUSTED",
                format!(
                    "Too many operations in project {project}: {running} are running (limit {}).",
                    self.config.max_concurrent_operations
                ),
            ));
        }
        let id = format!("operation-{}-{:08x}", self.next_op, self.next_op * 2_654_435_761 % 0xffff_ffff);
        self.next_op += 1;
        let now = Instant::now();
        self.ops.push(Op {
            id: id.clone(),
            project: project.into(),
            location: location.into(),
            cluster: cluster.into(),
            node_pool: node_pool.map(str::to_string),
            kind,
            started: now,
            ends: now + duration,
            done: false,
            foreign,
            effect: Effect::Nothing,
        });
        Ok(id)
    }

    fn set_effect(&mut self, id: &str, effect: Effect) {
        if let Some(op) = self.ops.iter_mut().find(|o| o.id == id) {
            op.effect = effect;
        }
    }

    fn op_json(&self, op: &Op) -> Value {
        let base = format!("projects/{}/locations/{}", op.project, op.location);
        let target = match &op.node_pool {
            Some(p) => format!("{base}/clusters/{}/nodePools/{p}", op.cluster),
            None => format!("{base}/clusters/{}", op.cluster),
        };
        let started = SystemTime::now() - op.started.elapsed();
        let mut v = json!({
            "name": op.id,
            "zone": op.location,
            "location": op.location,
            "operationType": op.kind,
            "status": if op.done { "DONE" } else { "RUNNING" },
            "selfLink": format!("https://container.googleapis.com/v1/{base}/operations/{}", op.id),
            "targetLink": format!("https://container.googleapis.com/v1/{target}"),
            "startTime": rfc3339(started),
        });
        if op.done {
            v["endTime"] = json!(rfc3339(started + (op.ends - op.started)));
        }
        v
    }

    /// Answers one routed request. `vars` are the path's variables in order.
    pub fn handle(&mut self, id: &str, vars: &[String], body: &Value) -> Answer {
        self.tick();
        let v = |i: usize| vars.get(i).map(String::as_str).unwrap_or_default();
        let (project, location) = (v(0), v(1));
        let key = format!("projects/{project}/locations/{location}/clusters/{}", v(2));
        let t = self.config.operation_time;
        let op_answer = |s: &State, op: &str| Answer {
            status: 200,
            body: s.ops.iter().find(|o| o.id == op).map(|o| s.op_json(o)).unwrap_or(Value::Null),
        };
        match id.trim_start_matches("container.projects.locations.") {
            "clusters.list" => {
                let prefix = format!("projects/{project}/locations/");
                let clusters: Vec<Value> = self
                    .clusters
                    .iter()
                    .filter(|(k, _)| {
                        k.starts_with(&prefix) && (location == "-" || k.contains(&format!("/{location}/")))
                    })
                    .map(|(_, c)| c.clone())
                    .collect();
                Answer { status: 200, body: json!({ "clusters": clusters }) }
            }
            "clusters.get" => match self.clusters.get(&key) {
                Some(c) => Answer { status: 200, body: c.clone() },
                None => error(404, "NOT_FOUND", format!("Not found: {key}.")),
            },
            "clusters.create" => {
                let Some(cluster) = body.get("cluster").filter(|c| c.is_object()) else {
                    return error(400, "INVALID_ARGUMENT", "cluster is required");
                };
                let name = cluster["name"].as_str().unwrap_or_default().to_string();
                let key = format!("projects/{project}/locations/{location}/clusters/{name}");
                if self.clusters.contains_key(&key) {
                    return error(409, "ALREADY_EXISTS", format!("Already exists: {key}."));
                }
                let no_public = cluster.pointer("/controlPlaneEndpointsConfig/ipEndpointsConfig/enablePublicEndpoint")
                    == Some(&json!(false));
                let private_nodes = cluster.pointer("/networkConfig/defaultEnablePrivateNodes") == Some(&json!(true));
                if no_public && !private_nodes {
                    return error(400, "INVALID_ARGUMENT", "Disabling the public endpoint requires private nodes.");
                }
                let version = cluster["initialClusterVersion"].as_str().unwrap_or("1.31");
                let Some(full) = resolve(version) else {
                    return error(400, "INVALID_ARGUMENT", format!("Master version \"{version}\" is unsupported."));
                };
                let op = match self.begin(project, location, &name, None, "CREATE_CLUSTER", t, false) {
                    Ok(op) => op,
                    Err(a) => return a,
                };
                let mut c = cluster.clone();
                let locations = c
                    .get("locations")
                    .and_then(Value::as_array)
                    .filter(|l| !l.is_empty())
                    .cloned()
                    .unwrap_or_else(|| vec![json!(format!("{location}-a"))]);
                let labels = c.get("resourceLabels").cloned().unwrap_or(json!({}));
                let mut pools = c.get("nodePools").and_then(Value::as_array).cloned().unwrap_or_default();
                for p in &mut pools {
                    complete_pool(p, &key, full, &locations, "PROVISIONING");
                }
                let extra = json!({
                    "location": location,
                    "zone": location,
                    "locations": locations,
                    "selfLink": format!("https://container.googleapis.com/v1/{key}"),
                    "status": "PROVISIONING",
                    "initialClusterVersion": full,
                    "currentMasterVersion": full,
                    "currentNodeVersion": full,
                    "endpoint": self.config.endpoint,
                    "masterAuth": { "clusterCaCertificate": CA },
                    "labelFingerprint": fingerprint(&labels),
                    "createTime": rfc3339(SystemTime::now()),
                    "nodePools": pools,
                    "network": c.get("network").cloned().filter(|n| n.is_string()).unwrap_or(json!("default")),
                    "id": format!("{:032x}", self.next_op),
                });
                if let (Some(obj), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
                    for (k, v) in extra {
                        obj.insert(k.clone(), v.clone());
                    }
                }
                self.clusters.insert(key, c);
                self.set_effect(&op, Effect::ClusterRunning);
                op_answer(self, &op)
            }
            "clusters.update" => {
                let Some(update) = body.get("update").and_then(Value::as_object) else {
                    return error(400, "INVALID_ARGUMENT", "update is required");
                };
                if update.len() != 1 {
                    return error(400, "INVALID_ARGUMENT", "Exactly one field of update must be set.");
                }
                let Some(master) = self.clusters.get(&key).map(|c| c["currentMasterVersion"].clone()) else {
                    return error(404, "NOT_FOUND", format!("Not found: {key}."));
                };
                let (field, value) = update.iter().next().map(|(k, v)| (k.clone(), v.clone())).unwrap_or_default();
                let (kind, apply): (&'static str, Edit) = match field.as_str() {
                    "desiredMasterVersion" => {
                        let wanted = value.as_str().unwrap_or_default();
                        let Some(full) = resolve(wanted) else {
                            return error(
                                400,
                                "INVALID_ARGUMENT",
                                format!("Master version \"{wanted}\" is unsupported."),
                            );
                        };
                        if minor_of(full) < minor_of(master.as_str().unwrap_or_default()) {
                            return error(400, "INVALID_ARGUMENT", "Master version downgrades are not supported.");
                        }
                        ("UPGRADE_MASTER", Box::new(move |c: &mut Value| c["currentMasterVersion"] = json!(full)))
                    }
                    "desiredLoggingConfig" => {
                        ("UPDATE_CLUSTER", Box::new(move |c: &mut Value| c["loggingConfig"] = value.clone()))
                    }
                    "desiredMonitoringConfig" => {
                        ("UPDATE_CLUSTER", Box::new(move |c: &mut Value| c["monitoringConfig"] = value.clone()))
                    }
                    "desiredControlPlaneEndpointsConfig" => {
                        let public = |c: &Value| {
                            c.pointer("/controlPlaneEndpointsConfig/ipEndpointsConfig/enablePublicEndpoint")
                                != Some(&json!(false))
                        };
                        let current = self.clusters.get(&key).is_some_and(public);
                        let wanted = value.pointer("/ipEndpointsConfig/enablePublicEndpoint") != Some(&json!(false));
                        let private_nodes =
                            self.clusters.get(&key).and_then(|c| c.pointer("/networkConfig/defaultEnablePrivateNodes"))
                                == Some(&json!(true));
                        if current && !wanted && !private_nodes {
                            return error(
                                400,
                                "FAILED_PRECONDITION",
                                "Disabling the public endpoint requires private nodes.",
                            );
                        }
                        (
                            "UPDATE_CLUSTER",
                            Box::new(move |c: &mut Value| c["controlPlaneEndpointsConfig"] = value.clone()),
                        )
                    }
                    "desiredReleaseChannel" => {
                        ("UPDATE_CLUSTER", Box::new(move |c: &mut Value| c["releaseChannel"] = value.clone()))
                    }
                    other => {
                        return error(400, "INVALID_ARGUMENT", format!("the fixture does not serve update.{other}"));
                    }
                };
                let op = match self.begin(project, location, v(2), None, kind, t, false) {
                    Ok(op) => op,
                    Err(a) => return a,
                };
                if let Some(c) = self.clusters.get_mut(&key) {
                    apply(c);
                    c["status"] = json!("RECONCILING");
                }
                op_answer(self, &op)
            }
            "clusters.setResourceLabels" => {
                let Some(current) = self.clusters.get(&key).map(|c| c["labelFingerprint"].clone()) else {
                    return error(404, "NOT_FOUND", format!("Not found: {key}."));
                };
                if body.get("labelFingerprint") != Some(&current) {
                    return error(
                        400,
                        "FAILED_PRECONDITION",
                        "Labels could not be set due to fingerprint mismatch. Expected fingerprint ... got ....",
                    );
                }
                let op = match self.begin(project, location, v(2), None, "SET_LABELS", t, false) {
                    Ok(op) => op,
                    Err(a) => return a,
                };
                let labels = body.get("resourceLabels").cloned().unwrap_or(json!({}));
                if let Some(c) = self.clusters.get_mut(&key) {
                    c["labelFingerprint"] = json!(fingerprint(&labels));
                    c["resourceLabels"] = labels;
                    c["status"] = json!("RECONCILING");
                }
                op_answer(self, &op)
            }
            "clusters.delete" => {
                if !self.clusters.contains_key(&key) {
                    return error(404, "NOT_FOUND", format!("Not found: {key}."));
                }
                let op = match self.begin(project, location, v(2), None, "DELETE_CLUSTER", t, false) {
                    Ok(op) => op,
                    Err(a) => return a,
                };
                if let Some(c) = self.clusters.get_mut(&key) {
                    c["status"] = json!("STOPPING");
                }
                self.set_effect(&op, Effect::ClusterGone);
                op_answer(self, &op)
            }
            "clusters.nodePools.list" => match self.clusters.get(&key) {
                Some(c) => Answer { status: 200, body: json!({ "nodePools": c["nodePools"] }) },
                None => error(404, "NOT_FOUND", format!("Not found: {key}.")),
            },
            "clusters.nodePools.get" => {
                match self
                    .clusters
                    .get(&key)
                    .and_then(|c| c["nodePools"].as_array()?.iter().find(|p| p["name"] == v(3)))
                {
                    Some(p) => Answer { status: 200, body: p.clone() },
                    None => error(404, "NOT_FOUND", format!("Not found: {key}/nodePools/{}.", v(3))),
                }
            }
            "clusters.nodePools.create" => {
                let Some(pool) = body.get("nodePool").filter(|p| p.is_object()).cloned() else {
                    return error(400, "INVALID_ARGUMENT", "nodePool is required");
                };
                let name = pool["name"].as_str().unwrap_or_default().to_string();
                let Some(c) = self.clusters.get(&key) else {
                    return error(404, "NOT_FOUND", format!("Not found: {key}."));
                };
                if c["nodePools"].as_array().is_some_and(|ps| ps.iter().any(|p| p["name"] == name.as_str())) {
                    return error(409, "ALREADY_EXISTS", format!("Already exists: {key}/nodePools/{name}."));
                }
                let master = c["currentMasterVersion"].as_str().unwrap_or_default().to_string();
                let locations = c["locations"].as_array().cloned().unwrap_or_default();
                let version = pool["version"].as_str().map(str::to_string).unwrap_or_else(|| master.clone());
                let Some(full) = resolve(&version) else {
                    return error(400, "INVALID_ARGUMENT", format!("Node version \"{version}\" is unsupported."));
                };
                if minor_of(full) > minor_of(&master) {
                    return error(400, "INVALID_ARGUMENT", "Node version must not be newer than the master version.");
                }
                let op = match self.begin(project, location, v(2), Some(&name), "CREATE_NODE_POOL", t, false) {
                    Ok(op) => op,
                    Err(a) => return a,
                };
                let mut pool = pool;
                complete_pool(&mut pool, &key, full, &locations, "PROVISIONING");
                if let Some(c) = self.clusters.get_mut(&key) {
                    if let Some(ps) = c["nodePools"].as_array_mut() {
                        ps.push(pool);
                    } else {
                        c["nodePools"] = json!([pool]);
                    }
                    c["status"] = json!("RECONCILING");
                }
                self.set_effect(&op, Effect::PoolRunning(name));
                op_answer(self, &op)
            }
            "clusters.nodePools.update" | "clusters.nodePools.setAutoscaling" | "clusters.nodePools.delete" => {
                let pool_name = v(3).to_string();
                let Some(c) = self.clusters.get(&key) else {
                    return error(404, "NOT_FOUND", format!("Not found: {key}."));
                };
                let master = c["currentMasterVersion"].as_str().unwrap_or_default().to_string();
                let Some(pool) = c["nodePools"]
                    .as_array()
                    .and_then(|ps| ps.iter().find(|p| p["name"] == pool_name.as_str()))
                    .cloned()
                else {
                    return error(404, "NOT_FOUND", format!("Not found: {key}/nodePools/{pool_name}."));
                };
                let mut pool = pool;
                let (kind, effect, status) = match id.rsplit('.').next().unwrap_or_default() {
                    "delete" => ("DELETE_NODE_POOL", Effect::PoolGone(pool_name.clone()), "STOPPING"),
                    "setAutoscaling" => {
                        pool["autoscaling"] = body.get("autoscaling").cloned().unwrap_or(json!({}));
                        ("UPDATE_CLUSTER", Effect::PoolRunning(pool_name.clone()), "RECONCILING")
                    }
                    _ => {
                        let Some(node_version) =
                            body.get("nodeVersion").and_then(Value::as_str).filter(|s| !s.is_empty())
                        else {
                            return error(400, "INVALID_ARGUMENT", "node_version is required.");
                        };
                        if body.get("imageType").and_then(Value::as_str).is_none_or(str::is_empty) {
                            return error(400, "INVALID_ARGUMENT", "image_type is required.");
                        }
                        let Some(full) = resolve(node_version) else {
                            return error(
                                400,
                                "INVALID_ARGUMENT",
                                format!("Node version \"{node_version}\" is unsupported."),
                            );
                        };
                        if minor_of(full) > minor_of(&master) {
                            return error(
                                400,
                                "INVALID_ARGUMENT",
                                "Node version must not be newer than the master version.",
                            );
                        }
                        let upgrade = minor_of(full) != minor_of(pool["version"].as_str().unwrap_or_default());
                        pool["version"] = json!(full);
                        for (field, inner, target) in [
                            ("labels", "labels", "labels"),
                            ("taints", "taints", "taints"),
                            ("resourceLabels", "labels", "resourceLabels"),
                        ] {
                            if let Some(v) = body.get(field).map(|f| f.get(inner).cloned().unwrap_or(json!(null))) {
                                pool["config"][target] = if v.is_null() {
                                    if target == "taints" { json!([]) } else { json!({}) }
                                } else {
                                    v
                                };
                            }
                        }
                        (
                            if upgrade { "UPGRADE_NODES" } else { "UPDATE_CLUSTER" },
                            Effect::PoolRunning(pool_name.clone()),
                            "RECONCILING",
                        )
                    }
                };
                let op = match self.begin(project, location, v(2), Some(&pool_name), kind, t, false) {
                    Ok(op) => op,
                    Err(a) => return a,
                };
                if pool["status"] != "ERROR" {
                    pool["status"] = json!(status);
                }
                if let Some(p) = self.clusters.get_mut(&key).and_then(|c| pool_mut(c, &pool_name)) {
                    *p = pool;
                }
                self.set_effect(&op, effect);
                op_answer(self, &op)
            }
            "operations.get" => {
                let wanted = v(2);
                match self.ops.iter().find(|o| o.id == wanted && o.project == project && o.location == location) {
                    Some(o) => Answer { status: 200, body: self.op_json(o) },
                    None => error(404, "NOT_FOUND", format!("Not found: operation {wanted}.")),
                }
            }
            "operations.list" => {
                let ops: Vec<Value> = self
                    .ops
                    .iter()
                    .filter(|o| o.project == project && o.location == location)
                    .map(|o| self.op_json(o))
                    .collect();
                Answer { status: 200, body: json!({ "operations": ops }) }
            }
            other => error(501, "UNIMPLEMENTED", format!("the fixture does not serve {other}")),
        }
    }
}

/// An object whose operation ended is RUNNING again, unless it is in ERROR: an operation does
/// not mend what broke (set through the test API, with its `statusMessage`).
fn settled(object: &mut Value) {
    if object["status"] != "ERROR" {
        object["status"] = json!("RUNNING");
    }
}

fn pool_mut<'a>(cluster: &'a mut Value, name: &str) -> Option<&'a mut Value> {
    cluster["nodePools"].as_array_mut()?.iter_mut().find(|p| p["name"] == name)
}

/// A pool as GKE reports it: its version resolved, locations, selfLink, status.
fn complete_pool(p: &mut Value, cluster: &str, version: &str, locations: &[Value], status: &str) {
    let name = p["name"].as_str().unwrap_or_default().to_string();
    p["version"] = json!(version);
    p["locations"] = json!(locations);
    p["status"] = json!(status);
    p["selfLink"] = json!(format!("https://container.googleapis.com/v1/{cluster}/nodePools/{name}"));
    if p["config"].get("diskSizeGb").is_none() && p["config"].is_object() {
        p["config"]["diskSizeGb"] = json!(100);
    }
}

/// Validates `body` against `schema` after naming its enums; a failure is recorded.
pub fn check(
    discovery: &Discovery,
    state: &mut State,
    method_id: &str,
    schema: &str,
    what: &'static str,
    body: &Value,
) -> Result<Value, Vec<String>> {
    let named = discovery.names_for_enums(schema, body);
    let errors = discovery.errors(schema, &named);
    if errors.is_empty() {
        Ok(named)
    } else {
        state.rejections.push(Rejection {
            method_id: method_id.to_string(),
            schema: schema.to_string(),
            what,
            errors: errors.clone(),
            body: named,
        });
        Err(errors)
    }
}
