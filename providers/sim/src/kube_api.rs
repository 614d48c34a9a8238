//! The sim's Kubernetes API: what runs inside a sim cluster.
//!
//! ## Overview
//!
//! Each sim cluster has nodes, one per `desiredSize` of each of its node pools, with the pool's
//! labels and taints, read live from the sim cloud (so a console edit of a pool's taints reaches
//! its nodes at once). Objects applied to the cluster are kept in the sim cloud's store beside
//! the cloud resources, under `<cluster id>|<object id>`. Nodes are ready, unless a test told the
//! cloud to break a placement's upgrades ([`SimCloud::set_unhealthy_after_upgrade`]) and one of
//! the cluster's versions changed.
//!
//! Three things happen here that a real cluster's controllers do:
//! - a Helm release creates the workloads its chart would (no chart is pulled: the sim uses
//!   Tessera's model of the pinned charts, [`tessera_kube::workloads::chart_workloads`], the same
//!   one validation checks coverage on);
//! - logging-operator, once its release is installed, turns a `FluentbitAgent` into the
//!   `<name>-fluentbit` DaemonSet and a `HostTailer` into `<name>-host-tailer`, and puts them back
//!   when they are deleted, as the operator's reconcile loop does;
//! - the scheduler places each DaemonSet's pods on the nodes whose labels match its node selector
//!   and required node affinity and whose taints it tolerates
//!   ([`tessera_kube::coverage::schedules`]); pods are ready at once.

use serde_json::{Value, json};
use tessera_kube::alerting_status::AlertingStatus;
use tessera_kube::contract::{self, id_of};
use tessera_kube::coverage::{self, Node};
use tessera_kube::workloads;
use tessera_provider_api::{Attrs, ProviderError, TAG_ADDRESS};

use crate::cloud::SimCloud;
use crate::kube_record::{CLUSTER_ID_ATTR, CLUSTER_NAME_ATTR, OBJECT_ID_ATTR};
use crate::store::SimResource;

/// The store id of the release or custom resource that made an object.
const OWNER_ATTR: &str = "owner";
/// What the owner applied, to tell a console edit from the owner's own state.
const APPLIED_ATTR: &str = "applied";
const MANIFEST: &str = "manifest";

/// The Kubernetes API of one sim cluster.
pub struct KubeApi<'a> {
    pub cloud: &'a SimCloud,
    pub cluster_id: &'a str,
    pub cluster_name: &'a str,
}

fn fatal(message: String) -> ProviderError {
    ProviderError::Fatal(message)
}

impl KubeApi<'_> {
    /// The sim cloud's id of an object of this cluster (what state records).
    pub fn key(&self, object_id: &str) -> String {
        format!("{}|{object_id}", self.cluster_id)
    }

    /// The object id inside a [`KubeApi::key`] of this cluster; `None` for another cluster's.
    pub fn local_id<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_prefix(self.cluster_id).and_then(|rest| rest.strip_prefix('|'))
    }

    fn in_cluster(&self, r: &SimResource) -> bool {
        r.attrs.get(CLUSTER_ID_ATTR).and_then(Value::as_str) == Some(self.cluster_id)
    }

    fn record(&self, rtype: &str, object_id: &str, mut attrs: Attrs, address: Option<&str>) -> SimResource {
        attrs.insert(CLUSTER_ID_ATTR.into(), self.cluster_id.into());
        attrs.insert(CLUSTER_NAME_ATTR.into(), self.cluster_name.into());
        attrs.insert(OBJECT_ID_ATTR.into(), object_id.into());
        if let Some(a) = address {
            attrs.insert("tags".into(), json!({ TAG_ADDRESS: a }));
        }
        SimResource {
            id: self.key(object_id),
            rtype: rtype.into(),
            status: "ACTIVE".into(),
            attrs,
            settles_at: None,
            pending: None,
            created_version: None,
        }
    }

    pub fn get(&self, object_id: &str) -> Result<Option<SimResource>, ProviderError> {
        Ok(self.cloud.kube_get(&self.key(object_id))?.filter(|r| self.in_cluster(r)))
    }

    /// Every object of this cluster.
    pub fn list(&self) -> Result<Vec<SimResource>, ProviderError> {
        self.cloud.kube_list(|r| self.in_cluster(r))
    }

    /// Server-side apply of one object (the sim's field manager owns everything it applies).
    pub fn apply(&self, manifest: &Value, address: Option<&str>) -> Result<String, ProviderError> {
        let id = id_of(manifest).ok_or_else(|| fatal("the object has no apiVersion, kind or metadata.name".into()))?;
        let mut attrs = Attrs::new();
        attrs.insert(MANIFEST.into(), manifest.clone());
        let r = self.record(contract::OBJECT, &id, attrs, address);
        self.cloud.kube_put(&r, address.unwrap_or(&id))?;
        self.reconcile_controllers()?;
        Ok(id)
    }

    /// Deletes an object and what it owns (Kubernetes' garbage collector).
    pub fn delete(&self, object_id: &str) -> Result<bool, ProviderError> {
        let Some(r) = self.get(object_id)? else { return Ok(false) };
        for child in self.owned_by(&r.id)? {
            self.cloud.kube_remove(&child.id)?;
        }
        self.cloud.kube_remove(&r.id)?;
        Ok(true)
    }

    fn owned_by(&self, owner: &str) -> Result<Vec<SimResource>, ProviderError> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|r| r.attrs.get(OWNER_ATTR).and_then(Value::as_str) == Some(owner))
            .collect())
    }

    /// Makes the objects `owner` owns exactly `manifests`: creates or resets each, deletes the rest.
    fn own(&self, owner: &str, manifests: &[Value]) -> Result<Vec<String>, ProviderError> {
        let mut ids = Vec::new();
        for m in manifests {
            let Some(id) = id_of(m) else { continue };
            let mut attrs = Attrs::new();
            attrs.insert(MANIFEST.into(), m.clone());
            attrs.insert(APPLIED_ATTR.into(), m.clone());
            attrs.insert(OWNER_ATTR.into(), owner.into());
            self.cloud.kube_put(&self.record(contract::OBJECT, &id, attrs, None), &id)?;
            ids.push(id);
        }
        for stale in self.owned_by(owner)? {
            let sid = stale.attrs.get(OBJECT_ID_ATTR).and_then(Value::as_str).unwrap_or_default().to_string();
            if !ids.contains(&sid) {
                self.cloud.kube_remove(&stale.id)?;
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Installs or upgrades a release: the chart's workloads, with the computed values.
    pub fn install(&self, release: &Attrs, address: Option<&str>) -> Result<Attrs, ProviderError> {
        let (ns, name) = (str_attr(release, "namespace"), str_attr(release, "name"));
        let release_id = format!("release/{ns}/{name}");
        let key = self.key(&release_id);
        let values = release.get("values").cloned().unwrap_or(Value::Null);
        let manifests = workloads::chart_workloads(str_attr(release, "chart"), name, ns, &values);
        let inventory = self.own(&key, &manifests)?;
        let mut attrs = release.clone();
        attrs.insert("inventory".into(), json!(inventory));
        self.cloud.kube_put(&self.record(contract::RELEASE, &release_id, attrs.clone(), address), &release_id)?;
        self.reconcile_controllers()?;
        Ok(attrs)
    }

    /// The release as the contract reports it: what was applied, its objects' owned fields, and
    /// whether they are all still as applied.
    pub fn release(&self, ns: &str, name: &str) -> Result<Option<Attrs>, ProviderError> {
        let Some(r) = self.get(&format!("release/{ns}/{name}"))? else { return Ok(None) };
        let mut attrs = r.attrs.clone();
        for internal in [CLUSTER_ID_ATTR, CLUSTER_NAME_ATTR, OBJECT_ID_ATTR, "tags"] {
            attrs.remove(internal);
        }
        let inventory: Vec<String> = attrs
            .get("inventory")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        let mut objects = serde_json::Map::new();
        let mut in_sync = true;
        for id in &inventory {
            match self.get(id)? {
                Some(o) => {
                    let live = o.attrs.get(MANIFEST).cloned().unwrap_or(Value::Null);
                    in_sync &= o.attrs.get(APPLIED_ATTR) == Some(&live);
                    objects.insert(id.clone(), live);
                }
                None => in_sync = false,
            }
        }
        attrs.insert("objects".into(), Value::Object(objects));
        attrs.insert("inSync".into(), in_sync.into());
        Ok(Some(attrs))
    }

    pub fn uninstall(&self, ns: &str, name: &str) -> Result<bool, ProviderError> {
        self.delete(&format!("release/{ns}/{name}"))
    }

    /// logging-operator's reconcile loop, when its release is installed.
    fn reconcile_controllers(&self) -> Result<(), ProviderError> {
        let all = self.list()?;
        let operator_installed = all.iter().any(|r| {
            r.rtype == contract::RELEASE
                && r.attrs.get("chart").and_then(Value::as_str).is_some_and(|c| c.ends_with("/logging-operator"))
        });
        if !operator_installed {
            return Ok(());
        }
        for cr in all.iter().filter(|r| r.rtype == contract::OBJECT) {
            let Some(m) = cr.attrs.get(MANIFEST) else { continue };
            let workload = workloads::operator_daemonset(m);
            if let Some(w) = workload {
                let current = self.owned_by(&cr.id)?;
                let applied = current.first().and_then(|c| c.attrs.get(MANIFEST));
                if current.len() != 1 || applied != Some(&w) {
                    self.own(&cr.id, &[w])?;
                }
            }
        }
        Ok(())
    }

    /// A DaemonSet's status as its controller reports it: `desiredNumberScheduled` (the nodes its
    /// pods fit) and `numberReady` (sim pods are ready at once); `None` when there is no such
    /// DaemonSet.
    pub fn daemonset_status(&self, object_id: &str) -> Result<Option<Value>, ProviderError> {
        let nodes = self.nodes()?;
        if self.get(object_id)?.is_none() {
            return Ok(None);
        }
        let n = nodes.iter().filter(|node| node.daemon_pods.get(object_id) == Some(&true)).count();
        Ok(Some(json!({
            "desiredNumberScheduled": n,
            "currentNumberScheduled": n,
            "numberReady": n,
            "numberAvailable": n,
            "numberMisscheduled": 0,
        })))
    }

    /// Whether alerting would work, modelled from what the cluster holds (the sim runs no
    /// Prometheus): the routing is loaded when the monitoring release points its Alertmanager at
    /// Tessera's `AlertmanagerConfig` and that object exists; the heartbeat fires when, in
    /// addition, Tessera's `PrometheusRule` holds the heartbeat rule.
    pub fn alerting_status(&self) -> Result<AlertingStatus, ProviderError> {
        use tessera_kube::alert_rules::{HEARTBEAT, NAME};
        use tessera_kube::charts::{MONITORING_NAMESPACE, MONITORING_RELEASE};
        let object = |api: &str, kind: &str| -> Result<Option<Value>, ProviderError> {
            let id = contract::object_id(api, kind, Some(MONITORING_NAMESPACE), NAME);
            Ok(self.get(&id)?.and_then(|r| r.attrs.get(MANIFEST).cloned()))
        };
        let release = self.get(&format!("release/{MONITORING_NAMESPACE}/{MONITORING_RELEASE}"))?;
        let configured = release
            .as_ref()
            .and_then(|r| r.attrs.get("values"))
            .and_then(|v| v.pointer("/alertmanager/alertmanagerSpec/alertmanagerConfiguration/name"))
            .and_then(Value::as_str)
            == Some(NAME);
        let routing_loaded = configured && object("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig")?.is_some();
        let rules = object("monitoring.coreos.com/v1", "PrometheusRule")?;
        let has_heartbeat =
            rules.as_ref().and_then(|r| r.pointer("/spec/groups")).and_then(Value::as_array).is_some_and(|groups| {
                groups
                    .iter()
                    .filter_map(|g| g.get("rules").and_then(Value::as_array))
                    .flatten()
                    .any(|rule| rule.get("alert").and_then(Value::as_str) == Some(HEARTBEAT))
            });
        let heartbeat_firing = routing_loaded && has_heartbeat;
        let detail = match (routing_loaded, heartbeat_firing) {
            (true, true) => None,
            (false, _) => Some(format!("Alertmanager has not loaded Tessera's routing (AlertmanagerConfig `{NAME}`)")),
            (true, false) => Some(format!("no `{HEARTBEAT}` rule is loaded")),
        };
        // Nothing in a sim cluster breaks in a way Prometheus would page about.
        Ok(AlertingStatus { routing_loaded, heartbeat_firing, detail, critical_firing: Vec::new() })
    }

    /// The cluster's nodes, with the DaemonSet pods the scheduler placed on each.
    pub fn nodes(&self) -> Result<Vec<Node>, ProviderError> {
        self.reconcile_controllers()?;
        let pools = self.cloud.kube_list(|r| {
            r.rtype.ends_with(".nodepool")
                && r.status != "DELETING"
                && r.attrs.get("cluster").and_then(Value::as_str) == Some(self.cluster_name)
        })?;
        // Every node of a cluster a bad upgrade broke (test-only, see the setting).
        let ready = !self.cloud.unhealthy_after_upgrade(self.cluster_id, &pools)?;
        let mut nodes = Vec::new();
        for pool in pools {
            let count = pool.attrs.get("desiredSize").and_then(Value::as_u64).unwrap_or(0);
            let pool_name = pool.address_tag().and_then(|a| a.rsplit('/').next()).unwrap_or(&pool.id).to_string();
            let mut labels: std::collections::BTreeMap<String, String> = pool
                .attrs
                .get("labels")
                .and_then(Value::as_object)
                .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect())
                .unwrap_or_default();
            labels.insert("kubernetes.io/os".into(), "linux".into());
            let taints: Vec<Value> = pool
                .attrs
                .get("taints")
                .and_then(Value::as_array)
                .map(|ts| ts.iter().map(|t| strip_nulls(t.clone())).collect())
                .unwrap_or_default();
            for i in 0..count {
                let name = format!("{}-{pool_name}-{i}", self.cluster_name);
                let mut labels = labels.clone();
                labels.insert("kubernetes.io/hostname".into(), name.clone());
                nodes.push(Node { name, labels, taints: taints.clone(), daemon_pods: Default::default(), ready });
            }
        }
        for ds in self.list()?.iter().filter_map(|r| r.attrs.get(MANIFEST)).filter(|m| m["kind"] == "DaemonSet") {
            let Some(id) = id_of(ds) else { continue };
            let pod_spec = &ds["spec"]["template"]["spec"];
            for node in nodes.iter_mut().filter(|n| coverage::schedules(pod_spec, n)) {
                node.daemon_pods.insert(id.clone(), true);
            }
        }
        Ok(nodes)
    }
}

fn str_attr<'a>(attrs: &'a Attrs, key: &str) -> &'a str {
    attrs.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn strip_nulls(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.retain(|_, x| !x.is_null());
    }
    v
}
