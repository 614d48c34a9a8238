//! A placement's cluster as one resource, `kind.cluster`, and how its inside is reached.
//!
//! ## Overview
//!
//! kind makes all nodes with the cluster and cannot change them afterwards, so a placement is
//! one resource: its attributes are the cluster's `name` (`{fleet}-{placement}`), the generated
//! kind `config` ([`crate::config`]), the node `image`, the Kubernetes `version` and the
//! ownership `tags`. A change to any of the first four replaces the cluster, and the plan marks
//! each such field "forces replacement". The old cluster goes first: the name is unique on the
//! host (destroy before create).
//!
//! Outputs: `endpoint`, `certificateAuthority` (base64 of the PEM bundle, as the clouds report
//! it) and `name`. The core services connect through the `kube` provider with
//! `scope.auth = kind`: it asks `kind get kubeconfig --name N` for the client certificate when it
//! connects, so no key is ever in state.

use std::path::Path;

use serde_json::json;
use tessera_kube::contract::{AUTH_KIND, KIND, SCOPE_AUTH};
use tessera_provider_api::{Address, ClusterTemplate, KubeAccess, ProviderRef, ResourceSpec, TAG_ADDRESS, TAG_FLEET};

use crate::config::{KindOptions, cluster_name, kind_config};
use crate::images;

pub const CLUSTER: &str = "kind.cluster";

/// The image recorded when a version has none (validation refuses such a spec first).
pub const UNPINNED: &str = "unpinned";

pub fn cluster_address(cluster: &ClusterTemplate) -> Address {
    Address::new(cluster.placement.clone(), CLUSTER, "main")
}

/// Where the audit policy of cluster `name` is on the host, under the provider's state directory.
pub fn policy_file(state_dir: &Path, name: &str) -> std::path::PathBuf {
    state_dir.join(name).join("audit-policy.yaml")
}

pub fn lower(cluster: &ClusterTemplate, provider: &ProviderRef, state_dir: &Path) -> Vec<ResourceSpec> {
    let address = cluster_address(cluster);
    let name = cluster_name(cluster);
    let options = KindOptions::of(provider).unwrap_or_default();
    let image = images::for_version(&cluster.kubernetes_version).map_or(UNPINNED, |i| i.image);
    let config = kind_config(cluster, options, image, &policy_file(state_dir, &name));
    let spec = ResourceSpec::new(address.clone(), provider.clone())
        .attr("name", name)
        .attr("config", config)
        .attr("image", image)
        .attr("version", cluster.kubernetes_version.clone())
        .attr("tags", json!({ TAG_FLEET: cluster.fleet, TAG_ADDRESS: address.to_string() }));
    // Outputs and replacement rules are the type's, declared in its schema (`types::cluster`).
    vec![spec]
}

/// The kind cluster seen from inside: the `kube` provider, authenticating with the client
/// certificate `kind get kubeconfig` gives, once the cluster (and so every node) exists.
pub fn kube_access(cluster: &ClusterTemplate) -> KubeAccess {
    let address = cluster_address(cluster);
    let mut kube = ProviderRef::connected(KIND, address.clone());
    kube.scope.insert(SCOPE_AUTH.into(), AUTH_KIND.into());
    KubeAccess { cluster: address.clone(), provider: kube, after: vec![address] }
}
