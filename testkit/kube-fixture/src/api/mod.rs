//! The HTTP API the fixture serves, independent of the HTTP library.
//!
//! ## Overview
//! [`handle`] takes one [`Incoming`] request and answers it: an injected [`Fault`] first, else
//! discovery ([`discovery`]), reads and deletes ([`objects`]) or writes ([`writes`]). Every
//! request is recorded in the journal with the status code it got.

pub mod discovery;
pub mod establish;
pub mod objects;
pub mod watch;
pub mod writes;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

use tokio::sync::mpsc;

use crate::journal::{Fault, Journal, RecordedRequest};
use crate::registry::ResourceType;
use crate::routes::{self, Route};
use crate::status::Failure;
use crate::store::Store;
use crate::validate::Validator;

pub struct Config {
    pub kubernetes_version: String,
    pub crd_established_after: Duration,
    /// `127.0.0.1:PORT`, for `serverAddressByClientCIDRs`.
    pub address: String,
    /// When set, every request must carry `Authorization: Bearer <token>` (else 401).
    pub bearer_token: Option<String>,
}

/// Everything the handlers share; the test API reaches the same store and journal.
pub struct Shared {
    pub store: Mutex<Store>,
    pub journal: Mutex<Journal>,
    /// What a Service answers through the API server's proxy, by [`proxy_key`] (the test sets
    /// it: the fixture runs no pods). A Service with no answer set has no ready endpoints, as a
    /// real server says with 503.
    pub proxied: Mutex<std::collections::HashMap<String, Value>>,
    pub validator: Validator,
    pub config: Config,
}

impl Shared {
    /// A poisoned lock only means a handler thread died mid-request; the data is still usable.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn journal(&self) -> MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct Incoming {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: Option<String>,
    pub user_agent: Option<String>,
    /// The `Authorization` header (never recorded: only its scheme is).
    pub authorization: Option<String>,
    pub body: Bytes,
}

impl Incoming {
    pub fn param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    pub fn flag(&self, name: &str) -> bool {
        self.param(name).is_some_and(|v| v.is_empty() || v == "true" || v == "1")
    }

    fn is_apply(&self) -> bool {
        self.content_type.as_deref().is_some_and(|c| c.starts_with("application/apply-patch"))
    }

    /// The body as JSON; apply bodies may be YAML.
    pub fn json(&self) -> Result<Option<Value>, Failure> {
        if self.body.is_empty() {
            return Ok(None);
        }
        let text =
            std::str::from_utf8(&self.body).map_err(|e| Failure::bad_request(format!("body is not UTF-8: {e}")))?;
        match serde_json::from_str(text) {
            Ok(v) => Ok(Some(v)),
            Err(_) if self.is_apply() => serde_saphyr::from_str(text)
                .map(Some)
                .map_err(|e| Failure::bad_request(format!("error decoding YAML: {e}"))),
            Err(e) => Err(Failure::bad_request(format!("error decoding JSON: {e}"))),
        }
    }

    /// The field manager: `?fieldManager=`, else the user agent's program name.
    pub fn manager(&self) -> String {
        self.param("fieldManager")
            .or_else(|| self.user_agent.as_deref().and_then(|u| u.split('/').next()).map(str::to_string))
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "unknown".into())
    }
}

pub struct Outgoing {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub body: Value,
    /// A watch: the body is this stream of lines instead of `body`.
    pub stream: Option<mpsc::Receiver<Bytes>>,
}

pub async fn handle(shared: Arc<Shared>, req: Incoming) -> Outgoing {
    let fault = shared.journal().take_fault(&req.method, &req.path);
    let watching = req.method == "GET" && req.flag("watch");
    let result = match fault {
        Some(f) => Err(injected(&f)),
        None if !authorized(&shared.config, &req) => Err(Failure::new(401, "Unauthorized", "Unauthorized")),
        None if watching => watch_collection(&shared, &req).map(|rx| (200, Value::Null, Some(rx))),
        None => serve(&shared, &req).await.map(|(status, body)| (status, body, None)),
    };
    let out = match result {
        Ok((status, body, stream)) => Outgoing { status, retry_after: None, body, stream },
        Err(f) => Outgoing { status: f.code, retry_after: f.retry_after, body: f.body(), stream: None },
    };
    let record = RecordedRequest {
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.query.clone(),
        content_type: req.content_type.clone(),
        auth_scheme: req.authorization.as_deref().and_then(|a| a.split_whitespace().next()).map(str::to_string),
        body: req.json().ok().flatten(),
        status: out.status,
    };
    shared.journal().requests.push(record);
    out
}

fn authorized(config: &Config, req: &Incoming) -> bool {
    match &config.bearer_token {
        None => true,
        Some(token) => req.authorization.as_deref().and_then(|a| a.strip_prefix("Bearer ")) == Some(token.as_str()),
    }
}

fn injected(fault: &Fault) -> Failure {
    let mut failure =
        Failure::new(fault.status, fault.reason(), format!("injected by the test (status {})", fault.status));
    failure.retry_after = fault.retry_after_seconds;
    failure
}

async fn serve(shared: &Arc<Shared>, req: &Incoming) -> Result<(u16, Value), Failure> {
    let route = routes::parse(&req.path);
    if !matches!(route, Route::Resource(_)) && req.method != "GET" {
        return Err(Failure::new(405, "MethodNotAllowed", format!("{} is not allowed on {}", req.method, req.path)));
    }
    match route {
        Route::Version => Ok((200, discovery::version(&shared.config.kubernetes_version))),
        Route::CoreVersions => Ok((200, discovery::core_versions(&shared.config.address))),
        Route::Groups => Ok((200, discovery::groups(&shared.store()))),
        Route::Group(group) => discovery::group(&shared.store(), &group).map(|v| (200, v)),
        Route::Discovery { group, version } => {
            discovery::resources(&shared.store(), &group, &version).map(|v| (200, v))
        }
        Route::Resource(path) => {
            let ty =
                shared.store().find_type(&path.group, &path.version, &path.plural).ok_or_else(Failure::no_resource)?;
            if (path.namespace.is_some() && !ty.namespaced)
                || path.subresource.as_deref().is_some_and(|s| s != "status")
                || (!ty.status_subresource && path.subresource.is_some())
            {
                return Err(Failure::no_resource());
            }
            match (req.method.as_str(), path.name.as_deref()) {
                ("GET", Some(name)) => objects::get(shared, &ty, &path, name),
                ("GET", None) if req.flag("watch") => {
                    Err(Failure::bad_request("watch is not supported by the tessera kube fixture; poll with GET"))
                }
                ("GET", None) => objects::list(shared, req, &ty, &path),
                ("DELETE", Some(name)) => objects::delete(shared, &ty, &path, name),
                ("DELETE", None) => objects::delete_collection(shared, req, &ty, &path),
                ("POST", None) if !ty.namespaced || path.namespace.is_some() => {
                    writes::create(shared, req, &ty, &path).await
                }
                ("PUT", Some(name)) => writes::replace(shared, req, &ty, &path, name).await,
                ("PATCH", Some(name)) => writes::patch(shared, req, &ty, &path, name).await,
                (method, _) => {
                    Err(Failure::new(405, "MethodNotAllowed", format!("{method} is not allowed on {}", req.path)))
                }
            }
        }
        Route::ServiceProxy { namespace, service, path } => {
            // The answer for this very query if one is set, else the path's (one service path,
            // e.g. Alertmanager's `/api/v2/alerts`, answers differently by its filters).
            let answer = {
                let proxied = shared.proxied.lock().unwrap_or_else(|e| e.into_inner());
                let with_query = proxy_key(&namespace, &service, &path, &req.query);
                proxied.get(&with_query).or_else(|| proxied.get(&proxy_key(&namespace, &service, &path, ""))).cloned()
            };
            answer.map(|v| (200, v)).ok_or_else(|| {
                Failure::new(503, "ServiceUnavailable", format!("no endpoints available for service \"{service}\""))
            })
        }
        Route::Unknown => Err(Failure::no_resource()),
    }
}

/// The key of an answer through the service proxy: `<namespace>/<service><path>`, then `?` and
/// the query's parameters decoded (so `%3D` and `=` in a value are one key), in their order.
pub(crate) fn proxy_key(namespace: &str, service: &str, path: &str, query: &str) -> String {
    let mut key = format!("{namespace}/{service}{path}");
    if !query.is_empty() {
        let params: Vec<String> = form_urlencoded::parse(query.as_bytes()).map(|(k, v)| format!("{k}={v}")).collect();
        key.push('?');
        key.push_str(&params.join("&"));
    }
    key
}

/// The served type of a resource path, or 404 as a real server answers.
fn resolve(shared: &Shared, path: &routes::ResourcePath) -> Result<ResourceType, Failure> {
    let ty = shared.store().find_type(&path.group, &path.version, &path.plural).ok_or_else(Failure::no_resource)?;
    if (path.namespace.is_some() && !ty.namespaced)
        || path.subresource.as_deref().is_some_and(|s| s != "status")
        || (!ty.status_subresource && path.subresource.is_some())
    {
        return Err(Failure::no_resource());
    }
    Ok(ty)
}

fn watch_collection(shared: &Arc<Shared>, req: &Incoming) -> Result<mpsc::Receiver<Bytes>, Failure> {
    match routes::parse(&req.path) {
        Route::Resource(path) if path.name.is_none() => watch::start(shared, req, &resolve(shared, &path)?, &path),
        _ => Err(Failure::bad_request("watch is served on collections only")),
    }
}

/// The `<Kind>List` of `items`.
pub fn list_of(kind: &str, api_version: &str, resource_version: u64, items: Vec<Value>) -> Value {
    json!({
        "kind": format!("{kind}List"),
        "apiVersion": api_version,
        "metadata": {"resourceVersion": resource_version.to_string()},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(content_type: &str, body: &str) -> Incoming {
        Incoming {
            method: "PATCH".into(),
            path: "/api/v1/namespaces/default/configmaps/a".into(),
            query: "fieldManager=tessera&force=true".into(),
            content_type: Some(content_type.into()),
            user_agent: Some("kubectl/v1.35.2 (linux/amd64)".into()),
            authorization: None,
            body: Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn apply_bodies_may_be_yaml_other_bodies_must_be_json() {
        let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: \"1\"\n";
        let parsed = incoming("application/apply-patch+yaml", yaml).json().unwrap().unwrap();
        assert_eq!(parsed["data"]["k"], "1");
        assert!(incoming("application/merge-patch+json", yaml).json().is_err());
        let req = incoming("application/apply-patch+yaml", yaml);
        assert_eq!((req.manager(), req.flag("force"), req.flag("dryRun")), ("tessera".to_string(), true, false));
        let mut unnamed = incoming("application/json", "{}");
        unnamed.query.clear();
        assert_eq!(unnamed.manager(), "kubectl", "the user agent's program when no fieldManager");
    }

    #[test]
    fn a_proxied_query_is_one_key_however_it_is_encoded() {
        let key = |q: &str| proxy_key("monitoring", "http:am:9093", "/api/v2/alerts", q);
        assert_eq!(
            key("active=true&filter=severity%3D%22critical%22"),
            key("active=true&filter=severity=\"critical\"")
        );
        assert_ne!(key("filter=severity%3D%22critical%22"), key("filter=alertname%3D%22X%22"));
        assert_eq!(key(""), "monitoring/http:am:9093/api/v2/alerts", "no query: the path alone");
    }
}
