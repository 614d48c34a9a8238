//! The resource types the fixture serves, and the discovery documents that describe them.
//!
//! ## Overview
//! A [`ResourceType`] is one `group/version` + plural, as discovery lists it. Built-in kinds come
//! from a fixed table (what Tessera and helm-rendered charts commonly create). Custom kinds come
//! from the CustomResourceDefinitions in the store, and only from those whose `Established`
//! condition is `True`, as a real API server only serves a CRD's kinds once it is established.

use serde_json::{Value, json};

/// One served resource (a `group/version` and plural).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// Empty for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    /// Has a `/status` subresource: writes to the main resource ignore `status`.
    pub status_subresource: bool,
    pub short_names: Vec<String>,
    /// Built-in kinds are validated with `kubernetes-validate`, custom ones against their CRD.
    pub builtin: bool,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// `configmaps` or `daemonsets.apps`, as a real server names a resource in messages.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() { self.plural.clone() } else { format!("{}.{}", self.plural, self.group) }
    }

    /// `DaemonSet.apps`, as a real server names a kind in `Invalid` messages.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() { self.kind.clone() } else { format!("{}.{}", self.kind, self.group) }
    }
}

/// (group, version, kind, plural, namespaced, status subresource, short names)
type BuiltinRow = (&'static str, &'static str, &'static str, &'static str, bool, bool, &'static [&'static str]);

const BUILTINS: &[BuiltinRow] = &[
    ("", "v1", "Namespace", "namespaces", false, true, &["ns"]),
    ("", "v1", "Node", "nodes", false, true, &["no"]),
    ("", "v1", "PersistentVolume", "persistentvolumes", false, true, &["pv"]),
    ("", "v1", "ServiceAccount", "serviceaccounts", true, false, &["sa"]),
    ("", "v1", "ConfigMap", "configmaps", true, false, &["cm"]),
    ("", "v1", "Secret", "secrets", true, false, &[]),
    ("", "v1", "Service", "services", true, true, &["svc"]),
    ("", "v1", "Endpoints", "endpoints", true, false, &["ep"]),
    ("", "v1", "Pod", "pods", true, true, &["po"]),
    ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, true, &["pvc"]),
    ("", "v1", "Event", "events", true, false, &["ev"]),
    ("", "v1", "LimitRange", "limitranges", true, false, &["limits"]),
    ("", "v1", "ResourceQuota", "resourcequotas", true, true, &["quota"]),
    ("apps", "v1", "DaemonSet", "daemonsets", true, true, &["ds"]),
    ("apps", "v1", "Deployment", "deployments", true, true, &["deploy"]),
    ("apps", "v1", "StatefulSet", "statefulsets", true, true, &["sts"]),
    ("apps", "v1", "ReplicaSet", "replicasets", true, true, &["rs"]),
    ("apps", "v1", "ControllerRevision", "controllerrevisions", true, false, &[]),
    ("batch", "v1", "Job", "jobs", true, true, &[]),
    ("batch", "v1", "CronJob", "cronjobs", true, true, &["cj"]),
    ("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false, false, &[]),
    ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", false, false, &[]),
    ("rbac.authorization.k8s.io", "v1", "Role", "roles", true, false, &[]),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true, false, &[]),
    (
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
        true,
        &["crd", "crds"],
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        false,
        false,
        &[],
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        false,
        false,
        &[],
    ),
    ("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true, true, &["pdb"]),
    ("networking.k8s.io", "v1", "Ingress", "ingresses", true, true, &["ing"]),
    ("networking.k8s.io", "v1", "IngressClass", "ingressclasses", false, false, &[]),
    ("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true, false, &["netpol"]),
    ("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", false, false, &["pc"]),
    ("storage.k8s.io", "v1", "StorageClass", "storageclasses", false, false, &["sc"]),
    ("coordination.k8s.io", "v1", "Lease", "leases", true, false, &[]),
    ("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true, true, &["hpa"]),
    ("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", true, false, &[]),
];

pub fn builtins() -> Vec<ResourceType> {
    BUILTINS
        .iter()
        .map(|&(group, version, kind, plural, namespaced, status, shorts)| ResourceType {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
            plural: plural.to_string(),
            singular: kind.to_ascii_lowercase(),
            namespaced,
            status_subresource: status,
            short_names: shorts.iter().map(|s| s.to_string()).collect(),
            builtin: true,
        })
        .collect()
}

/// True when a CRD object's `Established` condition is `True`.
pub fn crd_established(crd: &Value) -> bool {
    crd.pointer("/status/conditions").and_then(Value::as_array).is_some_and(|conds| {
        conds.iter().any(|c| {
            c.get("type").and_then(Value::as_str) == Some("Established")
                && c.get("status").and_then(Value::as_str) == Some("True")
        })
    })
}

/// The served versions of a CRD object as resource types (whether established or not).
pub fn crd_resource_types(crd: &Value) -> Vec<ResourceType> {
    let spec = crd.get("spec");
    let str_at = |p: &str| spec.and_then(|s| s.pointer(p)).and_then(Value::as_str).unwrap_or_default().to_string();
    let group = str_at("/group");
    let kind = str_at("/names/kind");
    let plural = str_at("/names/plural");
    let singular = match str_at("/names/singular") {
        s if s.is_empty() => kind.to_ascii_lowercase(),
        s => s,
    };
    let namespaced = str_at("/scope") != "Cluster";
    let short_names: Vec<String> = spec
        .and_then(|s| s.pointer("/names/shortNames"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    let versions = spec.and_then(|s| s.get("versions")).and_then(Value::as_array).cloned().unwrap_or_default();
    versions
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(false))
        .filter_map(|v| {
            let version = v.get("name")?.as_str()?.to_string();
            Some(ResourceType {
                group: group.clone(),
                version,
                kind: kind.clone(),
                plural: plural.clone(),
                singular: singular.clone(),
                namespaced,
                status_subresource: v.pointer("/subresources/status").is_some(),
                short_names: short_names.clone(),
                builtin: false,
            })
        })
        .collect()
}

const VERBS: [&str; 8] = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

/// `APIResourceList` for one group/version.
pub fn resource_list(group_version: &str, types: &[&ResourceType]) -> Value {
    let mut resources = Vec::new();
    for t in types {
        resources.push(json!({
            "name": t.plural,
            "singularName": t.singular,
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": VERBS,
            "shortNames": t.short_names,
        }));
        if t.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", t.plural),
                "singularName": "",
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    json!({ "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources })
}

/// `APIGroup` for a group name and its versions (first is preferred).
pub fn api_group(name: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> =
        versions.iter().map(|v| json!({ "groupVersion": format!("{name}/{v}"), "version": v })).collect();
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": name,
        "versions": versions,
        "preferredVersion": versions.first().cloned().unwrap_or(Value::Null),
    })
}

/// The groups (other than core) of the given types, with their versions in first-seen order.
pub fn groups(types: &[ResourceType]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for t in types.iter().filter(|t| !t.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == t.group) {
            Some((_, versions)) if !versions.contains(&t.version) => versions.push(t.version.clone()),
            Some(_) => {}
            None => out.push((t.group.clone(), vec![t.version.clone()])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_versions_become_resource_types_with_scope_and_status() {
        let crd = json!({
            "spec": {
                "group": "logging-extensions.banzaicloud.io", "scope": "Namespaced",
                "names": {"kind": "HostTailer", "plural": "hosttailers", "singular": "hosttailer"},
                "versions": [
                    {"name": "v1alpha1", "served": true, "storage": true, "subresources": {"status": {}}},
                    {"name": "v0", "served": false, "storage": false}
                ]
            }
        });
        let types = crd_resource_types(&crd);
        assert_eq!(types.len(), 1);
        assert_eq!(types[0].api_version(), "logging-extensions.banzaicloud.io/v1alpha1");
        assert!(types[0].namespaced && types[0].status_subresource && !types[0].builtin);
        assert!(!crd_established(&crd));
    }

    #[test]
    fn resource_lists_carry_status_subresources() {
        let all = builtins();
        let ds: Vec<&ResourceType> = all.iter().filter(|t| t.kind == "DaemonSet").collect();
        let list = resource_list("apps/v1", &ds);
        let names: Vec<&str> =
            list["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["daemonsets", "daemonsets/status"]);
        assert_eq!(list["resources"][0]["shortNames"], json!(["ds"]));
    }
}
