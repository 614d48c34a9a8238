//! The handle a test holds: start options, the server's URL, and the test API (objects, status,
//! nodes, requests, rejections, faults).
//!
//! ## Overview
//! The test API works on the same store as the server, directly (not over HTTP). Its writes are
//! not validated: they stand for controllers and people acting on the cluster (a kubelet
//! reporting a Node, a controller setting a DaemonSet's status, someone editing an object out of
//! band). They are recorded as Updates in managedFields like any other write.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::api::{Config, Shared};
use crate::apply::{self, Scope};
use crate::crds;
use crate::error::FixtureError;
use crate::fields::Lists;
use crate::journal::{Fault, Journal, RecordedRequest, Rejection};
use crate::registry::ResourceType;
use crate::server::{self, Running};
use crate::store::{Key, Store, now};
use crate::validate::Validator;

/// The manager name of writes made through the test API.
pub const TEST_MANAGER: &str = "tessera-kube-fixture";

/// Options for [`KubeFixture`]; see [`KubeFixture::builder`].
#[derive(Debug, Clone)]
pub struct FixtureBuilder {
    kubernetes_version: String,
    crd_established_after: Duration,
    real_crds_dir: PathBuf,
    preload_real_crds: bool,
    kubernetes_validate: PathBuf,
    bearer_token: Option<String>,
}

impl FixtureBuilder {
    /// The version `/version` reports and `kubernetes-validate -k` checks against (`1.31.0`).
    pub fn kubernetes_version(mut self, version: &str) -> Self {
        self.kubernetes_version = version.to_string();
        self
    }

    /// How long an applied CRD stays un-Established (default: zero, Established at once).
    pub fn crd_established_after(mut self, delay: Duration) -> Self {
        self.crd_established_after = delay;
        self
    }

    /// Where the real CRDs are (default `<workspace>/../shared/k8s/crds`).
    pub fn real_crds_dir(mut self, dir: &Path) -> Self {
        self.real_crds_dir = dir.to_path_buf();
        self
    }

    /// The `kubernetes-validate` command (default: `$TESSERA_KUBERNETES_VALIDATE`, else the one
    /// on PATH).
    pub fn kubernetes_validate(mut self, command: &Path) -> Self {
        self.kubernetes_validate = command.to_path_buf();
        self
    }

    /// Answer 401 to any request without `Authorization: Bearer <token>` (to test that exec
    /// authentication reaches the wire).
    pub fn require_bearer_token(mut self, token: &str) -> Self {
        self.bearer_token = Some(token.to_string());
        self
    }

    /// Start with the real CRDs already applied and Established.
    pub fn preload_real_crds(mut self) -> Self {
        self.preload_real_crds = true;
        self
    }

    pub fn start(self) -> Result<KubeFixture, FixtureError> {
        let validator =
            Validator::new(self.kubernetes_validate.clone(), &self.kubernetes_version, self.real_crds_dir.clone())?;
        let (listener, address) = server::bind()?;
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new()),
            journal: Mutex::new(Journal::default()),
            proxied: Default::default(),
            validator,
            config: Config {
                kubernetes_version: self.kubernetes_version.clone(),
                crd_established_after: self.crd_established_after,
                address: address.to_string(),
                bearer_token: self.bearer_token.clone(),
            },
        });
        let fixture = KubeFixture { running: server::start(listener, Arc::clone(&shared))?, shared };
        if self.preload_real_crds {
            let crds: Vec<Value> = fixture.shared.validator.real_crds().map_err(FixtureError::Invalid)?.to_vec();
            for crd in crds {
                fixture.put_established_crd(crd)?;
            }
        }
        Ok(fixture)
    }
}

/// A running Kubernetes API fixture. Dropping it stops the server.
pub struct KubeFixture {
    shared: Arc<Shared>,
    running: Running,
}

impl KubeFixture {
    pub fn builder() -> FixtureBuilder {
        FixtureBuilder {
            kubernetes_version: "1.31.0".into(),
            crd_established_after: Duration::ZERO,
            real_crds_dir: crds::shared_k8s_dir().join("crds"),
            preload_real_crds: false,
            kubernetes_validate: crate::validate::builtin::BuiltinValidator::default_tool(),
            bearer_token: None,
        }
    }

    /// Starts with the defaults (Kubernetes 1.31.0, CRDs Established at once).
    pub fn start() -> Result<KubeFixture, FixtureError> {
        Self::builder().start()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.running.address)
    }

    pub fn kubernetes_version(&self) -> &str {
        &self.shared.config.kubernetes_version
    }

    /// A kubeconfig for kubectl and helm pointing at the fixture (no credentials).
    pub fn kubeconfig_yaml(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fixture\n  cluster:\n    server: {url}\ncontexts:\n- name: fixture\n  context:\n    cluster: fixture\n    user: fixture\ncurrent-context: fixture\nusers:\n- name: fixture\n  user: {{}}\n",
            url = self.url()
        )
    }

    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), FixtureError> {
        std::fs::write(path, self.kubeconfig_yaml()).map_err(|source| FixtureError::Read { path: path.into(), source })
    }

    fn kind(&self, api_version: &str, kind: &str) -> Result<ResourceType, FixtureError> {
        self.shared
            .store()
            .find_kind(api_version, kind)
            .ok_or_else(|| FixtureError::UnknownKind(format!("{api_version} {kind}")))
    }

    /// Every stored object.
    pub fn objects(&self) -> Vec<Value> {
        self.shared.store().all().cloned().collect()
    }

    /// Stored objects of one kind (any namespace).
    pub fn objects_of(&self, api_version: &str, kind: &str) -> Vec<Value> {
        match self.kind(api_version, kind) {
            Ok(ty) => self.shared.store().list(&ty.group, &ty.plural, None).into_iter().cloned().collect(),
            Err(_) => Vec::new(),
        }
    }

    pub fn get(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let ty = self.kind(api_version, kind).ok()?;
        self.shared.store().get(&Key::new(&ty, namespace, name)).cloned()
    }

    /// By the contract's object id, `<apiVersion>/<kind>/<namespace>/<name>`.
    pub fn get_id(&self, id: &str) -> Option<Value> {
        let mut parts = id.rsplitn(4, '/');
        let name = parts.next()?;
        let namespace = parts.next().filter(|n| !n.is_empty());
        let kind = parts.next()?;
        let api_version = parts.next()?;
        self.get(api_version, kind, namespace, name)
    }

    /// Writes an object out of band (unvalidated), creating or replacing it whole.
    pub fn put_object(&self, object: Value) -> Result<Value, FixtureError> {
        let text = |p: &str| object.pointer(p).and_then(Value::as_str).map(str::to_string);
        let (Some(api_version), Some(kind), Some(name)) = (text("/apiVersion"), text("/kind"), text("/metadata/name"))
        else {
            return Err(FixtureError::Invalid("an object needs apiVersion, kind and metadata.name".into()));
        };
        let ty = self.kind(&api_version, &kind)?;
        let key = Key::new(&ty, text("/metadata/namespace").as_deref(), &name);
        let mut store = self.shared.store();
        let live = store.get(&key).cloned();
        let mut new = object;
        let schema = store.list_schema(&ty);
        let (scope, lists) = (Scope::Main { status_subresource: false }, Lists::from_schema(schema.as_ref()));
        apply::record_update(live.as_ref(), &mut new, TEST_MANAGER, scope, lists, &now());
        Ok(store.commit(key, new))
    }

    /// What `service` in `namespace` answers at `path` through the API server's proxy, e.g. an
    /// Alertmanager's `/api/v2/status`. A `path` with a query (`/api/v2/alerts?filter=…`) is
    /// answered for requests with that query (the same parameters in the same order, however
    /// encoded); a `path` without one for any query it has no answer of its own for.
    pub fn serve_through_proxy(&self, namespace: &str, service: &str, path: &str, answer: Value) {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let key = crate::api::proxy_key(namespace, service, path, query);
        self.shared.proxied.lock().unwrap_or_else(|e| e.into_inner()).insert(key, answer);
    }

    /// Sets an object's `status`, as its controller would.
    pub fn set_status(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        status: Value,
    ) -> Result<Value, FixtureError> {
        let ty = self.kind(api_version, kind)?;
        let key = Key::new(&ty, namespace, name);
        let mut store = self.shared.store();
        let live =
            store.get(&key).cloned().ok_or_else(|| FixtureError::NotFound(format!("{api_version} {kind} {name}")))?;
        let mut new = live.clone();
        new["status"] = status;
        let schema = store.list_schema(&ty);
        apply::record_update(
            Some(&live),
            &mut new,
            TEST_MANAGER,
            Scope::Status,
            Lists::from_schema(schema.as_ref()),
            &now(),
        );
        Ok(store.commit(key, new))
    }

    /// Adds (or replaces) a Ready Node with these labels (a JSON map) and taints (a JSON list).
    pub fn add_node(&self, name: &str, labels: Value, taints: Value) -> Result<Value, FixtureError> {
        let mut all_labels = json!({"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"});
        if let (Some(all), Some(extra)) = (all_labels.as_object_mut(), labels.as_object()) {
            all.extend(extra.clone());
        }
        self.put_object(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": all_labels},
            "spec": {"taints": taints},
            "status": {
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}],
                "nodeInfo": {"osImage": "Fixture Linux", "kubeletVersion": format!("v{}", self.kubernetes_version()),
                             "operatingSystem": "linux", "architecture": "amd64"}
            }
        }))
    }

    /// Acts as the scheduler and DaemonSet controller once: every DaemonSet gets the status it
    /// would have with its pods running and ready on the Nodes they fit (see [`daemonsets`]).
    /// Returns (namespace/name, nodes covered) per DaemonSet.
    ///
    /// [`daemonsets`]: crate::daemonsets
    pub fn run_daemonset_controller(&self) -> Result<Vec<(String, usize)>, FixtureError> {
        let nodes = self.objects_of("v1", "Node");
        let mut covered = Vec::new();
        for ds in self.objects_of("apps/v1", "DaemonSet") {
            let text = |p: &str| ds.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
            let (namespace, name) = (text("/metadata/namespace"), text("/metadata/name"));
            let status = crate::daemonsets::status(&ds, &nodes);
            let count = status["desiredNumberScheduled"].as_u64().unwrap_or_default() as usize;
            self.set_status("apps/v1", "DaemonSet", Some(&namespace), &name, status)?;
            covered.push((format!("{namespace}/{name}"), count));
        }
        Ok(covered)
    }

    /// Deletes an object out of band; returns it.
    pub fn delete_object(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let ty = self.kind(api_version, kind).ok()?;
        self.shared.store().delete(&Key::new(&ty, namespace, name))
    }

    fn put_established_crd(&self, crd: Value) -> Result<(), FixtureError> {
        let stored = self.put_object(crd)?;
        let name = stored.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
        let ty = self.kind("apiextensions.k8s.io/v1", "CustomResourceDefinition")?;
        crate::api::establish::establish_now(&self.shared, &Key::new(&ty, None, &name));
        Ok(())
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.journal().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.shared.journal().requests.clear();
    }

    /// Every object refused by validation so far.
    pub fn rejections(&self) -> Vec<Rejection> {
        self.shared.journal().rejections.clone()
    }

    /// Fails the calling test when any object was refused by validation, listing them.
    #[track_caller]
    pub fn assert_no_rejections(&self) {
        let rejections = self.rejections();
        if !rejections.is_empty() {
            let lines: Vec<String> = rejections
                .iter()
                .map(|r| format!("  {} ({} {}): {}", r.object_id, r.method, r.path, r.message))
                .collect();
            panic!("the Kubernetes fixture rejected {} object(s):\n{}", rejections.len(), lines.join("\n"));
        }
    }

    /// Answers the next matching requests with an error instead of serving them.
    pub fn fail_next(&self, fault: Fault) {
        self.shared.journal().faults.push(fault);
    }
}
