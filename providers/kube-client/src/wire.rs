//! Requests to the API server, and discovery of where each kind is served.
//!
//! ## Overview
//!
//! Requests are built by kube-rs (`kube::core::Request`: paths, query parameters, the apply
//! patch's content type) and sent through its client (TLS, exec authentication). The answer is
//! read here rather than by kube-rs's typed `Api`, because a throttled answer's `Retry-After`
//! header must reach the engine's retry ([`crate::error::classify`]).
//!
//! Discovery resolves an `apiVersion` and `kind` to the resource's plural and scope with one GET
//! of its group version (`/api/v1`, `/apis/<group>/<version>`), cached until a release's CRDs
//! change ([`Wire::forget_discovery`]). A kind that is not served is `None`: a custom resource
//! whose CRD is not established yet, or a kind the cluster never had.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{APIGroupList, APIResourceList};
use kube::api::{ApiResource, DeleteParams, GetParams, ListParams, Patch, PatchParams};
use kube::core::{DynamicObject, GroupVersionKind, Request, Resource};
use serde_json::Value;
use tessera_kube::contract::FIELD_MANAGER;
use tessera_provider_api::ProviderError;

use crate::error::{classify, retry_after, transport};

/// Where a kind is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub resource: ApiResource,
    pub namespaced: bool,
}

impl Served {
    /// The collection path (`/apis/apps/v1/namespaces/x/daemonsets`).
    pub fn path(&self, namespace: Option<&str>) -> String {
        let ns = if self.namespaced { namespace } else { None };
        DynamicObject::url_path(&self.resource, ns)
    }
}

pub struct Wire {
    client: kube::Client,
    /// The API server's URL, for the message when it cannot be reached.
    endpoint: String,
    served: Mutex<HashMap<(String, String), Option<Served>>>,
}

fn build(
    what: &str,
    r: Result<http::Request<Vec<u8>>, kube::core::request::Error>,
) -> Result<http::Request<Vec<u8>>, ProviderError> {
    r.map_err(|e| ProviderError::Fatal(format!("{what}: {e}")))
}

/// Splits `apps/v1` into (`apps`, `v1`) and `v1` into (``, `v1`).
pub fn group_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

impl Wire {
    pub fn new(client: kube::Client, endpoint: String) -> Self {
        Self { client, endpoint, served: Mutex::new(HashMap::new()) }
    }

    /// Sends a request; `Ok(None)` for 404.
    async fn send(&self, what: &str, req: http::Request<Vec<u8>>) -> Result<Option<Value>, ProviderError> {
        match self.call(what, req).await {
            Err(ProviderError::NotFound(_)) => Ok(None),
            other => other.map(Some),
        }
    }

    /// Sends a request; every answer but 2xx is an error, 404 included.
    async fn call(&self, what: &str, req: http::Request<Vec<u8>>) -> Result<Value, ProviderError> {
        let res = self
            .client
            .send(req.map(kube::client::Body::from))
            .await
            .map_err(|e| transport(what, &self.endpoint, &e))?;
        let status = res.status();
        let after = retry_after(res.headers().get(http::header::RETRY_AFTER));
        let body = res.into_body().collect_bytes().await.map_err(|e| transport(what, &self.endpoint, &e))?;
        let text = String::from_utf8_lossy(&body);
        if !status.is_success() {
            return Err(classify(what, status.as_u16(), &text, after));
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text)
            .map_err(|e| ProviderError::Fatal(format!("{what}: the API server answered with invalid JSON: {e}")))
    }

    /// Where `kind` of `api_version` is served, or `None` when the cluster does not serve it.
    pub async fn served(&self, api_version: &str, kind: &str) -> Result<Option<Served>, ProviderError> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(hit) = self.served.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(hit);
        }
        let (group, version) = group_version(api_version);
        let path = if group.is_empty() { format!("/api/{version}") } else { format!("/apis/{group}/{version}") };
        let what = format!("discovering {api_version}");
        let req =
            http::Request::get(&path).body(Vec::new()).map_err(|e| ProviderError::Fatal(format!("{what}: {e}")))?;
        let found = match self.send(&what, req).await? {
            None => None,
            Some(list) => {
                let list: APIResourceList = serde_json::from_value(list)
                    .map_err(|e| ProviderError::Fatal(format!("{what}: unexpected discovery answer: {e}")))?;
                list.resources.iter().find(|r| r.kind == kind && !r.name.contains('/')).map(|r| Served {
                    resource: ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), &r.name),
                    namespaced: r.namespaced,
                })
            }
        };
        // Only what is served is cached: a CRD being established must be seen on the next look.
        if found.is_some()
            && let Ok(mut m) = self.served.lock()
        {
            m.insert(key, found.clone());
        }
        Ok(found)
    }

    /// Every kind the cluster serves that can be listed and deleted, at each group's preferred
    /// version: for finding a release's objects when its record is gone.
    pub async fn deletable_kinds(&self) -> Result<Vec<Served>, ProviderError> {
        let what = "discovering every kind";
        let get = |path: String| async move {
            let req =
                http::Request::get(&path).body(Vec::new()).map_err(|e| ProviderError::Fatal(format!("{what}: {e}")))?;
            self.send(what, req).await
        };
        let mut versions = vec![String::from("v1")];
        if let Some(groups) = get("/apis".into()).await? {
            let groups: APIGroupList = serde_json::from_value(groups)
                .map_err(|e| ProviderError::Fatal(format!("{what}: unexpected discovery answer: {e}")))?;
            for g in groups.groups {
                let preferred = g.preferred_version.map(|v| v.group_version);
                if let Some(gv) = preferred.or_else(|| g.versions.first().map(|v| v.group_version.clone())) {
                    versions.push(gv);
                }
            }
        }
        let mut out = Vec::new();
        for gv in versions {
            let (group, version) = group_version(&gv);
            let path = if group.is_empty() { format!("/api/{version}") } else { format!("/apis/{gv}") };
            let Some(list) = get(path).await? else { continue };
            let list: APIResourceList = serde_json::from_value(list)
                .map_err(|e| ProviderError::Fatal(format!("{what}: unexpected discovery answer: {e}")))?;
            for r in list.resources {
                let can = |verb: &str| r.verbs.iter().any(|v| v == verb);
                if !r.name.contains('/') && can("list") && can("delete") {
                    out.push(Served {
                        resource: ApiResource::from_gvk_with_plural(
                            &GroupVersionKind::gvk(group, version, &r.kind),
                            &r.name,
                        ),
                        namespaced: r.namespaced,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Drops what discovery learned, after CRDs changed.
    pub fn forget_discovery(&self) {
        if let Ok(mut m) = self.served.lock() {
            m.clear();
        }
    }

    pub async fn get(
        &self,
        served: &Served,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, ProviderError> {
        let what = format!("reading {} {name}", served.resource.kind);
        let req = build(&what, Request::new(served.path(namespace)).get(name, &GetParams::default()))?;
        self.send(&what, req).await
    }

    /// A GET of a path of the API server that is not an object (a Service's proxy); `Ok(None)`
    /// for 404.
    pub async fn get_path(&self, what: &str, path: &str) -> Result<Option<Value>, ProviderError> {
        let req =
            http::Request::get(path).body(Vec::new()).map_err(|e| ProviderError::Fatal(format!("{what}: {e}")))?;
        self.send(what, req).await
    }

    /// Server-side apply as [`FIELD_MANAGER`], forced; returns the live object.
    pub async fn apply(&self, served: &Served, manifest: &Value) -> Result<Value, ProviderError> {
        let name = manifest.pointer("/metadata/name").and_then(Value::as_str).ok_or_else(|| {
            ProviderError::Fatal(format!("a {} to apply has no `/metadata/name`", served.resource.kind))
        })?;
        let namespace = manifest.pointer("/metadata/namespace").and_then(Value::as_str);
        let what = format!("applying {} {name}", served.resource.kind);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let req = build(&what, Request::new(served.path(namespace)).patch(name, &params, &Patch::Apply(manifest)))?;
        // A 404 to an apply is its namespace missing: the create cannot succeed as made.
        self.call(&what, req).await.map_err(|e| match e {
            ProviderError::NotFound(m) => ProviderError::Fatal(m),
            other => other,
        })
    }

    /// Deletes an object (its dependents in the background); `false` when it was not there.
    pub async fn delete(&self, served: &Served, namespace: Option<&str>, name: &str) -> Result<bool, ProviderError> {
        let what = format!("deleting {} {name}", served.resource.kind);
        let req = build(&what, Request::new(served.path(namespace)).delete(name, &DeleteParams::background()))?;
        Ok(self.send(&what, req).await?.is_some())
    }

    /// The objects of a kind, in every namespace, that carry `selector`'s labels (every object
    /// when it is empty), read [`PAGE`] at a time.
    pub async fn list(&self, served: &Served, selector: &str) -> Result<Vec<Value>, ProviderError> {
        let what = format!("listing {}", served.resource.kind);
        let mut items = pages(|token| {
            let mut params = ListParams::default().limit(PAGE);
            if !selector.is_empty() {
                params = params.labels(selector);
            }
            if let Some(token) = &token {
                params = params.continue_token(token);
            }
            let what = what.clone();
            async move {
                let req = build(&what, Request::new(served.path(None)).list(&params))?;
                // A 404 to a list is a kind no longer served (its CRD went): nothing of it.
                Ok(self.send(&what, req).await?.unwrap_or(Value::Null))
            }
        })
        .await?;
        // Lists leave out each item's apiVersion and kind.
        for item in &mut items {
            if let Value::Object(m) = item {
                m.insert("apiVersion".into(), served.resource.api_version.clone().into());
                m.insert("kind".into(), served.resource.kind.clone().into());
            }
        }
        Ok(items)
    }
}

/// Objects asked for per list request; the API server may send fewer, and says where to go on.
pub const PAGE: u32 = 500;

/// The items of every page of a list: `fetch` is given the previous page's `continue` token
/// (none for the first page) until a page has none. A token that expires meanwhile is a 410,
/// which [`classify`] makes retryable, so the whole list is read again. A server that hands back
/// the token it was given would loop forever, so that is an error.
pub async fn pages<F, Fut>(mut fetch: F) -> Result<Vec<Value>, ProviderError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Value, ProviderError>>,
{
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = fetch(token.clone()).await?;
        if let Some(list) = page.get("items").and_then(Value::as_array) {
            items.extend(list.iter().cloned());
        }
        let next =
            page.pointer("/metadata/continue").and_then(Value::as_str).filter(|t| !t.is_empty()).map(str::to_string);
        match next {
            None => return Ok(items),
            Some(next) if Some(&next) == token.as_ref() => {
                return Err(ProviderError::Fatal(
                    "the API server answered a list page with the same continue token it was given".into(),
                ));
            }
            Some(next) => token = Some(next),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_kinds_scope() {
        let ds = Served {
            resource: ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("apps", "v1", "DaemonSet"),
                "daemonsets",
            ),
            namespaced: true,
        };
        assert_eq!(ds.path(Some("monitoring")), "/apis/apps/v1/namespaces/monitoring/daemonsets");
        let ns = Served {
            resource: ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "Namespace"), "namespaces"),
            namespaced: false,
        };
        assert_eq!(ns.path(Some("ignored")), "/api/v1/namespaces");
        assert_eq!(group_version("apps/v1"), ("apps", "v1"));
        assert_eq!(group_version("v1"), ("", "v1"));
    }

    fn page(items: &[&str], token: Option<&str>) -> Value {
        let mut p = serde_json::json!({"items": items.iter().map(|n| serde_json::json!({"name": n})).collect::<Vec<_>>(),
                                       "metadata": {}});
        if let Some(t) = token {
            p["metadata"]["continue"] = t.into();
        }
        p
    }

    #[tokio::test]
    async fn lists_follow_continue_tokens_to_the_last_page() {
        let asked = Mutex::new(Vec::new());
        let items = pages(|token| {
            asked.lock().unwrap().push(token.clone());
            async move {
                Ok(match token.as_deref() {
                    None => page(&["a", "b"], Some("t1")),
                    Some("t1") => page(&["c"], Some("t2")),
                    Some("t2") => page(&["d"], Some("")),
                    Some(other) => panic!("unexpected token {other}"),
                })
            }
        })
        .await
        .unwrap();
        let names: Vec<&str> = items.iter().filter_map(|i| i["name"].as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
        assert_eq!(*asked.lock().unwrap(), [None, Some("t1".to_string()), Some("t2".to_string())]);
    }

    #[tokio::test]
    async fn a_repeated_continue_token_is_an_error_not_a_loop() {
        let err = pages(|_| async { Ok(page(&["a"], Some("same"))) }).await.unwrap_err();
        assert!(err.to_string().contains("same continue token"), "{err}");
    }

    #[tokio::test]
    async fn an_expired_continue_token_is_retryable() {
        let gone =
            r#"{"kind":"Status","reason":"Expired","code":410,"message":"The provided continue parameter is too old"}"#;
        let err = pages(|token| async move {
            match token {
                None => Ok(page(&["a"], Some("t1"))),
                Some(_) => Err(classify("listing Pod", 410, gone, None)),
            }
        })
        .await
        .unwrap_err();
        assert!(err.is_retryable(), "{err}");
    }
}
