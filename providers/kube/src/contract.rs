//! What the Kubernetes providers agree on: resource types, ids, attributes and labels.
//!
//! ## Overview
//!
//! Core services lower to two resource types, executed by a provider configured from the
//! cluster's outputs (a [`ProviderRef`](tessera_provider_api::ProviderRef) whose `connection` is
//! the cluster resource). Two providers implement them: `kube` (a real API server, through
//! kube-rs and the real `helm template`) and `simkube` (the sim's in-process Kubernetes API).
//!
//! - [`OBJECT`] (`kube.object`): one Kubernetes object.
//!   - attrs: `{ "manifest": <the object> }`;
//!   - id: [`object_id`], `<apiVersion>/<kind>/<namespace>/<name>`, namespace empty when the
//!     object is cluster-scoped;
//!   - create and update are server-side apply with [`FIELD_MANAGER`], forced;
//!   - observed `manifest` is the live object cut down to the fields [`FIELD_MANAGER`] owns, so
//!     that drift is per owned field and fields that controllers move are never drift;
//!   - a DaemonSet is done when `numberReady` equals `desiredNumberScheduled`, and so is an
//!     object annotated [`ANNOTATION_WAIT_FOR`] once each DaemonSet it names is.
//! - [`RELEASE`] (`helm.release`): a chart rendered with computed values, then applied.
//!   - attrs: `name`, `namespace`, `chart` (an `oci://` reference), `version`, `digest` (or
//!     null), `values`, `kubeVersion` (`major.minor`) and `inSync: true`;
//!   - id: `<namespace>/<name>`;
//!   - observed: the recorded `name`…`kubeVersion` as they were applied (the cluster does not
//!     hold values), `inventory` (sorted ids of the applied objects), `objects` (id → owned
//!     fields, as for `kube.object`) and `inSync`: false when an inventory object is missing or
//!     its owned fields moved, so that the plan re-applies the release.
//!
//! Every object carries [`LABEL_MANAGED_BY`] = [`FIELD_MANAGER`]. Objects of a release carry
//! [`LABEL_RELEASE`] = [`label_value`] of the release id; the objects Tessera lowers itself carry
//! `tessera.dev/fleet` and `tessera.dev/address` = [`label_value`] of their address as labels (so
//! that a lost create is found by its name and recognised as ours), and the address as written in
//! an annotation of the same key.

/// An object whose operator makes DaemonSets (a `FluentbitAgent`, a `HostTailer`) names them
/// here, comma-separated object ids: the apply is done when each exists and is ready, as for a
/// DaemonSet applied directly.
pub const ANNOTATION_WAIT_FOR: &str = "tessera.dev/wait-for-daemonsets";

/// Provider kind for real API servers.
pub const KIND: &str = "kube";
pub const OBJECT: &str = "kube.object";
pub const RELEASE: &str = "helm.release";
pub const FIELD_MANAGER: &str = "tessera";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_RELEASE: &str = "tessera.dev/release";

/// The cluster outputs a Kubernetes provider connects with.
pub const OUTPUT_ENDPOINT: &str = "endpoint";
/// Base64 of the PEM CA bundle, as EKS, AKS and GKE report it.
pub const OUTPUT_CA: &str = "certificateAuthority";
/// The cluster's name in its cloud (for exec authentication).
pub const OUTPUT_NAME: &str = "name";

/// `ProviderRef.scope` key saying how to authenticate: one of [`AUTH_AWS`], [`AUTH_AZURE`],
/// [`AUTH_GCP`], [`AUTH_NONE`]. The region is in `ProviderRef.region`.
pub const SCOPE_AUTH: &str = "auth";
/// `aws eks get-token --cluster-name NAME --region REGION`.
pub const AUTH_AWS: &str = "aws";
/// `kubelogin get-token` (the AKS server id).
pub const AUTH_AZURE: &str = "azure";
/// `gke-gcloud-auth-plugin`.
pub const AUTH_GCP: &str = "gcp";
pub const AUTH_NONE: &str = "none";
/// The client certificate of `kind get kubeconfig --name NAME`, taken at connect time and kept
/// in memory only.
pub const AUTH_KIND: &str = "kind";

/// `text` as a label value: at most 63 characters of `[A-Za-z0-9_.-]`, beginning and ending with
/// an alphanumeric. `/` becomes `_`, other characters `-`; a longer value keeps a prefix and a
/// hash of the whole, so that distinct texts stay distinct.
pub fn label_value(text: &str) -> String {
    let mapped: String = text
        .chars()
        .map(|c| match c {
            '/' => '_',
            c if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' => c,
            _ => '-',
        })
        .collect();
    let alnum_ends = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_alphanumeric()) && s.ends_with(|c: char| c.is_ascii_alphanumeric())
    };
    if mapped.len() <= 63 && mapped == text.replace('/', "_") && alnum_ends(&mapped) {
        return mapped;
    }
    let hash = tessera_provider_api::backend::short_hash(&[text], 10);
    let prefix: String = mapped.chars().take(63 - hash.len() - 1).collect();
    let prefix = prefix.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if prefix.is_empty() { hash } else { format!("{prefix}-{hash}") }
}

/// The id of an object: `<apiVersion>/<kind>/<namespace>/<name>`.
pub fn object_id(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> String {
    format!("{api_version}/{kind}/{}/{name}", namespace.unwrap_or(""))
}

/// An object id taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectId<'a> {
    pub api_version: &'a str,
    pub kind: &'a str,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
}

/// Parses an [`object_id`]; `None` when it has too few parts. The api version may hold a `/`
/// (`apps/v1`), so the parts are taken from the right.
pub fn parse_object_id(id: &str) -> Option<ObjectId<'_>> {
    let mut parts = id.rsplitn(4, '/');
    let name = parts.next().filter(|s| !s.is_empty())?;
    let namespace = parts.next()?;
    let kind = parts.next().filter(|s| !s.is_empty())?;
    let api_version = parts.next().filter(|s| !s.is_empty())?;
    Some(ObjectId { api_version, kind, namespace: Some(namespace).filter(|n| !n.is_empty()), name })
}

/// The id of an object given as JSON, or `None` when it lacks apiVersion, kind or name.
pub fn id_of(manifest: &serde_json::Value) -> Option<String> {
    let api_version = manifest.get("apiVersion")?.as_str()?;
    let kind = manifest.get("kind")?.as_str()?;
    let meta = manifest.get("metadata")?;
    let name = meta.get("name")?.as_str()?;
    Some(object_id(api_version, kind, meta.get("namespace").and_then(|n| n.as_str()), name))
}

/// How core services reach a cloud's cluster: the `kube` provider connected through
/// `control_plane`'s outputs, in the placement's region and scope, authenticating with `auth`,
/// once `after` (the node pools) exist.
pub fn access(
    control_plane: tessera_provider_api::Address,
    placement_provider: &tessera_provider_api::ProviderRef,
    auth: &str,
    after: Vec<tessera_provider_api::Address>,
) -> tessera_provider_api::KubeAccess {
    let mut kube = tessera_provider_api::ProviderRef::connected(KIND, control_plane.clone());
    kube.region = placement_provider.region.clone();
    kube.scope = placement_provider.scope.clone();
    kube.scope.insert(SCOPE_AUTH.into(), auth.into());
    tessera_provider_api::KubeAccess { cluster: control_plane, provider: kube, after }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_valid_and_distinct() {
        assert_eq!(label_value("monitoring/kps"), "monitoring_kps");
        let addr = label_value("sim-aws/kube.object/daemonset-smartctl");
        assert_eq!(addr, "sim-aws_kube.object_daemonset-smartctl");
        let long_a = label_value(&format!("{}/a", "x".repeat(80)));
        let long_b = label_value(&format!("{}/b", "x".repeat(80)));
        assert!(long_a.len() <= 63 && long_b.len() <= 63 && long_a != long_b, "{long_a} {long_b}");
        let odd = label_value("a b:c");
        assert!(odd.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)), "{odd}");
        assert_ne!(odd, label_value("a-b-c"), "a text that needed mapping is hashed");
    }

    #[test]
    fn object_ids_round_trip() {
        let id = object_id("apps/v1", "DaemonSet", Some("monitoring"), "node-exporter");
        assert_eq!(id, "apps/v1/DaemonSet/monitoring/node-exporter");
        let parsed = parse_object_id(&id).unwrap();
        assert_eq!(parsed.api_version, "apps/v1");
        assert_eq!(parsed.namespace, Some("monitoring"));
        let ns = object_id("v1", "Namespace", None, "logging");
        assert_eq!(parse_object_id(&ns).unwrap().namespace, None);
        assert_eq!(parse_object_id(&ns).unwrap().api_version, "v1");
        assert!(parse_object_id("v1/Namespace").is_none());
    }
}
