//! Routing ARM requests to the fixture's [`Cloud`], checking every body against the official
//! description on the way in and on the way out, logging each request, and injecting faults.

use std::sync::Mutex;
use std::time::Instant;

use base64::Engine;

use serde_json::{Value, json};

use crate::cloud::{Cloud, Refusal, key};
use crate::schema::Schemas;

pub const ROOTS: [&str; 5] = ["ManagedCluster", "AgentPool", "TagsObject", "CredentialResults", "CloudError"];

/// One request as the fixture saw it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub at: Instant,
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
}

/// An injected failure: the next `times` requests whose path contains `path` (and, if given,
/// of `method`) get `status` with `Retry-After: retry_after`.
#[derive(Debug, Clone)]
pub struct Fault {
    pub path: String,
    pub method: Option<String>,
    pub times: usize,
    pub status: u16,
    pub retry_after: u64,
}

pub struct Incoming {
    pub method: String,
    pub path: String,
    pub query: String,
    pub authorization: Option<String>,
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
    pub body: Vec<u8>,
    pub base: String,
}

pub struct Outgoing {
    pub status: u16,
    pub body: Option<Value>,
    pub headers: Vec<(&'static str, String)>,
}

pub struct Shared {
    pub cloud: Mutex<Cloud>,
    pub schemas: Schemas,
    pub log: Mutex<Vec<Logged>>,
    pub rejections: Mutex<Vec<String>>,
    pub faults: Mutex<Vec<Fault>>,
    pub retry_after: u64,
    pub api_version: String,
    /// Random throttling of any request (a 429 before it does anything), seeded.
    pub throttle: Mutex<Option<Throttle>>,
    /// Error bodies in ARM's flat shape (`{code, message}`) instead of the nested one.
    pub flat_errors: std::sync::atomic::AtomicBool,
}

/// Answers a share of all requests with 429 `TooManyRequests` and `Retry-After`.
pub struct Throttle {
    pub rate: f64,
    pub retry_after: u64,
    pub rng: rand::rngs::SmallRng,
}

fn error(status: u16, code: &str, message: &str) -> Outgoing {
    Outgoing { status, body: Some(json!({ "error": { "code": code, "message": message } })), headers: Vec::new() }
}

fn refused(r: Refusal) -> Outgoing {
    error(r.status, r.code, &r.message)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn reject(&self, what: String) {
        lock(&self.rejections).push(what);
    }

    /// Checks a body against `root`; a violation is recorded (failing the test) and refused.
    fn checked(&self, root: &str, body: &Value, request: bool, what: &str) -> Result<(), Outgoing> {
        let errors = self.schemas.check(root, body, request);
        if errors.is_empty() {
            return Ok(());
        }
        let side = if request { "request" } else { "response" };
        self.reject(format!("{what}: {side} body breaks {root}: {}", errors.join("; ")));
        Err(error(400, "InvalidRequestContent", &errors.join("; ")))
    }

    fn fault(&self, method: &str, path: &str) -> Option<Outgoing> {
        let mut faults = lock(&self.faults);
        let f = faults
            .iter_mut()
            .find(|f| f.times > 0 && path.contains(&f.path) && f.method.as_deref().is_none_or(|m| m == method))?;
        f.times -= 1;
        let code = match f.status {
            429 => "TooManyRequests",
            409 => "OperationNotAllowed",
            _ => "InternalServerError",
        };
        let mut out = error(f.status, code, "injected by the fixture");
        out.headers.push(("retry-after", f.retry_after.to_string()));
        Some(out)
    }

    pub fn handle(&self, req: Incoming) -> Outgoing {
        let mut out = self.throttled().unwrap_or_else(|| self.route(&req));
        lock(&self.log).push(Logged {
            method: req.method.clone(),
            path: req.path.clone(),
            status: out.status,
            at: Instant::now(),
            if_match: req.if_match.clone(),
            if_none_match: req.if_none_match.clone(),
        });
        if let Some(body) = &out.body {
            let root = if out.status >= 400 { Some("CloudError") } else { response_root(&req.method, &req.path) };
            if let Some(root) = root {
                if let Err(e) = self.checked(root, body, false, &format!("{} {}", req.method, req.path)) {
                    return e;
                }
            }
        }
        // ARM answers some errors flat; the nested form was checked above, the flat one is sent.
        if out.status >= 400 && self.flat_errors.load(std::sync::atomic::Ordering::Relaxed) {
            out.body = out.body.map(|b| b.get("error").cloned().unwrap_or(b));
        }
        out
    }

    fn throttled(&self) -> Option<Outgoing> {
        use rand::Rng;
        let mut throttle = lock(&self.throttle);
        let t = throttle.as_mut()?;
        if !t.rng.random_bool(t.rate.clamp(0.0, 1.0)) {
            return None;
        }
        let mut out = error(429, "TooManyRequests", "Rate limit exceeded, injected by the fixture");
        out.headers.push(("retry-after", t.retry_after.to_string()));
        Some(out)
    }

    fn route(&self, req: &Incoming) -> Outgoing {
        if !req.authorization.as_deref().is_some_and(|a| a.starts_with("Bearer ") && a.len() > 7) {
            return error(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.");
        }
        let path = req.path.trim_end_matches('/');
        let lower = path.to_ascii_lowercase();
        let want_api = if lower.contains("/resourcegroups/") && !lower.contains("/providers/") {
            "2021-04-01"
        } else {
            &self.api_version
        };
        if !lower.contains("/operations/")
            && !lower.contains("/operationresults/")
            && !req.query.contains(&format!("api-version={want_api}"))
        {
            return error(
                400,
                "InvalidApiVersionParameter",
                &format!("expected api-version={want_api}, got `{}`", req.query),
            );
        }
        if let Some(f) = self.fault(&req.method, path) {
            return f;
        }
        let body: Option<Value> = if req.body.is_empty() {
            None
        } else {
            match serde_json::from_slice(&req.body) {
                Ok(v) => Some(v),
                Err(e) => {
                    self.reject(format!("{} {path}: the body is not JSON: {e}", req.method));
                    return error(400, "InvalidRequestContent", "not JSON");
                }
            }
        };
        let mut cloud = lock(&self.cloud);
        cloud.settle();
        let segments: Vec<&str> = path.split('/').collect();
        let seg = |i: usize| segments.get(i).copied().unwrap_or_default();
        let what = format!("{} {path}", req.method);
        // /subscriptions/{s}/providers/Microsoft.ContainerService/locations/{l}/operations|operationresults/{id}
        if lower.contains("/locations/") && (lower.contains("/operations/") || lower.contains("/operationresults/")) {
            let id = seg(segments.len() - 1);
            let Some(done) = cloud.operation_done(id) else { return error(404, "NotFound", "no such operation") };
            if lower.contains("/operationresults/") {
                return if done {
                    Outgoing { status: 204, body: None, headers: Vec::new() }
                } else {
                    self.accepted(None)
                };
            }
            let status = if done { "Succeeded" } else { "InProgress" };
            return Outgoing {
                status: 200,
                body: Some(json!({ "id": path, "name": id, "status": status })),
                headers: self.wait_headers(done),
            };
        }
        let id = path.to_string();
        match (req.method.as_str(), segments.len()) {
            // /subscriptions/{s}/resourcegroups/{g}
            (m, 5) if seg(3).eq_ignore_ascii_case("resourcegroups") => match m {
                "GET" => match cloud.groups.get(&key(&id)) {
                    Some(g) => Outgoing { status: 200, body: Some(g.body.clone()), headers: Vec::new() },
                    None => {
                        error(404, "ResourceGroupNotFound", &format!("Resource group '{}' could not be found.", seg(4)))
                    }
                },
                "PUT" => {
                    let Some(b) = body else {
                        return error(400, "InvalidRequestContent", "a resource group needs a body");
                    };
                    if let Some(tags) = b.get("tags") {
                        if !tags.as_object().is_some_and(|t| t.values().all(Value::is_string)) {
                            self.reject(format!("{what}: tags are not a map of strings"));
                            return error(400, "InvalidRequestContent", "tags are strings");
                        }
                    }
                    match cloud.put_group(&id, seg(4), &b, req.if_none_match.as_deref()) {
                        Ok((status, served)) => Outgoing { status, body: Some(served), headers: Vec::new() },
                        Err(r) => refused(r),
                    }
                }
                "DELETE" => match cloud.delete_group(&id) {
                    Some(op) => self.accepted(Some(self.operation_url(req, &op, "operationresults"))),
                    None => Outgoing { status: 204, body: None, headers: Vec::new() },
                },
                _ => error(405, "MethodNotAllowed", "not here"),
            },
            // …/providers/Microsoft.ContainerService/managedClusters/{name}
            (m, 9) if seg(7).eq_ignore_ascii_case("managedClusters") => match m {
                "GET" => match cloud.cluster_body(&id) {
                    Some(b) => Outgoing { status: 200, body: Some(b), headers: Vec::new() },
                    None => error(404, "ResourceNotFound", &format!("The Resource '{id}' was not found.")),
                },
                "PUT" => {
                    let Some(b) = body else { return error(400, "InvalidRequestContent", "no body") };
                    if let Err(e) = self.checked("ManagedCluster", &b, true, &what) {
                        return e;
                    }
                    match cloud.put_cluster(&id, seg(8), &b, req.if_match.as_deref(), req.if_none_match.as_deref()) {
                        Ok((status, op)) => {
                            let served = cloud.cluster_body(&id);
                            Outgoing { status, body: served, headers: self.lro_headers(req, &op) }
                        }
                        Err(r) => refused(r),
                    }
                }
                "PATCH" => {
                    let Some(b) = body else { return error(400, "InvalidRequestContent", "no body") };
                    if let Err(e) = self.checked("TagsObject", &b, true, &what) {
                        return e;
                    }
                    match cloud.patch_tags(&id, &b["tags"], req.if_match.as_deref()) {
                        Ok(served) => Outgoing { status: 200, body: Some(served), headers: Vec::new() },
                        Err(r) => refused(r),
                    }
                }
                "DELETE" => match cloud.delete_cluster(&id) {
                    Ok(Some(op)) => self.accepted(Some(self.operation_url(req, &op, "operationresults"))),
                    Ok(None) => Outgoing { status: 204, body: None, headers: Vec::new() },
                    Err(r) => refused(r),
                },
                _ => error(405, "MethodNotAllowed", "not here"),
            },
            ("POST", 10) if seg(9).eq_ignore_ascii_case("listClusterUserCredential") => {
                let cluster = segments[..9].join("/");
                let Some(c) = cloud.cluster_body(&cluster) else {
                    return error(404, "ResourceNotFound", "no such cluster");
                };
                if !req.query.contains("format=exec") {
                    self.reject(format!(
                        "{what}: asked for credentials without format=exec (a token would be returned)"
                    ));
                }
                let server = format!("https://{}:443", c["properties"]["fqdn"].as_str().unwrap_or_default());
                let kubeconfig = format!(
                    "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: clusterUser\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: kubelogin\n      args: [get-token, --server-id, 6dae42f8-4368-4678-94ff-3960e28e3630]\ncontexts:\n- name: {name}\n  context: {{cluster: {name}, user: clusterUser}}\ncurrent-context: {name}\n",
                    name = seg(8),
                    ca = crate::CA_DATA,
                );
                let value = base64::engine::general_purpose::STANDARD.encode(kubeconfig.as_bytes());
                Outgoing {
                    status: 200,
                    body: Some(json!({ "kubeconfigs": [{ "name": "clusterUser", "value": value }] })),
                    headers: Vec::new(),
                }
            }
            // …/managedClusters/{name}/agentPools/{pool}
            (m, 11) if seg(9).eq_ignore_ascii_case("agentPools") => match m {
                "GET" => match cloud.pools.get(&key(&id)) {
                    Some(p) => Outgoing { status: 200, body: Some(p.body.clone()), headers: Vec::new() },
                    None => error(404, "ResourceNotFound", &format!("The Resource '{id}' was not found.")),
                },
                "PUT" => {
                    let Some(b) = body else { return error(400, "InvalidRequestContent", "no body") };
                    if let Err(e) = self.checked("AgentPool", &b, true, &what) {
                        return e;
                    }
                    match cloud.put_pool(&id, seg(10), &b, req.if_match.as_deref(), req.if_none_match.as_deref()) {
                        Ok((status, op)) => {
                            let served = cloud.pools.get(&key(&id)).map(|p| p.body.clone());
                            Outgoing { status, body: served, headers: self.lro_headers(req, &op) }
                        }
                        Err(r) => refused(r),
                    }
                }
                "DELETE" => match cloud.delete_pool(&id) {
                    Ok(Some(op)) => self.accepted(Some(self.operation_url(req, &op, "operationresults"))),
                    Ok(None) => Outgoing { status: 204, body: None, headers: Vec::new() },
                    Err(r) => refused(r),
                },
                _ => error(405, "MethodNotAllowed", "not here"),
            },
            _ => error(404, "NotFound", &format!("the fixture serves no {what}")),
        }
    }

    fn operation_url(&self, req: &Incoming, op: &str, kind: &str) -> String {
        let sub = req.path.split('/').nth(2).unwrap_or_default();
        format!(
            "{}/subscriptions/{sub}/providers/Microsoft.ContainerService/locations/fixture/{kind}/{op}?api-version={}",
            req.base, self.api_version
        )
    }

    fn wait_headers(&self, done: bool) -> Vec<(&'static str, String)> {
        if done { Vec::new() } else { vec![("retry-after", self.retry_after.to_string())] }
    }

    fn lro_headers(&self, req: &Incoming, op: &str) -> Vec<(&'static str, String)> {
        let mut h = vec![("azure-asyncoperation", self.operation_url(req, op, "operations"))];
        h.extend(self.wait_headers(false));
        h
    }

    fn accepted(&self, location: Option<String>) -> Outgoing {
        let mut headers = self.wait_headers(false);
        if let Some(l) = location {
            headers.push(("location", l));
        }
        Outgoing { status: 202, body: None, headers }
    }
}

/// Which definition an answer's body follows.
fn response_root(method: &str, path: &str) -> Option<&'static str> {
    let lower = path.to_ascii_lowercase();
    if lower.contains("/operations/") || lower.contains("/operationresults/") {
        return None;
    }
    if lower.ends_with("/listclusterusercredential") {
        return Some("CredentialResults");
    }
    if lower.contains("/agentpools/") {
        return Some("AgentPool");
    }
    if lower.contains("/managedclusters/") && method != "DELETE" {
        return Some("ManagedCluster");
    }
    None
}
